//! The processes a benchmark starts: `switchyard runtime`, `switchyard serve` and
//! nginx. Each is a [`Service`] that is ended when dropped (SIGTERM, then SIGKILL), so
//! everything stops at the end of a run and also when a scenario fails or panics.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Result;

/// How long a service may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a service may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A process started by the benchmark; terminated when dropped.
#[derive(Debug)]
pub struct Service {
    name: String,
    child: Child,
    /// Where it accepts connections.
    pub addr: SocketAddr,
    /// Where its standard error (or error log) goes.
    pub log: PathBuf,
}

impl Service {
    /// Starts `switchyard <args>` and waits for its `listening on http(s)://ADDR` line.
    /// Standard error goes to `log`.
    pub fn switchyard(name: &str, bin: &Path, args: &[&str], log: PathBuf) -> Result<Self> {
        let stderr = fs::File::create(&log)?;
        let mut child = Command::new(bin)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting {} ({e})", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the process never blocks writing to stdout.
            for _ in lines {}
        });
        let mut service = Self {
            name: name.to_owned(),
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let first = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            _ => {
                return Err(format!(
                    "{name} did not print its address; its log:\n{}",
                    service.log_tail()
                )
                .into());
            }
        };
        service.addr = first
            .strip_prefix("listening on http://")
            .or_else(|| first.strip_prefix("listening on https://"))
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| format!("{name}: unexpected first line {first:?}"))?;
        Ok(service)
    }

    /// Starts `nginx -c conf -p prefix` (the config must say `daemon off`) and waits
    /// until `addr` accepts connections.
    pub fn nginx(bin: &Path, conf: &Path, prefix: &Path, addr: SocketAddr) -> Result<Self> {
        let log = prefix.join("err.log");
        let child = Command::new(bin)
            .arg("-c")
            .arg(conf)
            .arg("-p")
            .arg(prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting nginx ({e})"))?;
        let mut service = Self {
            name: "nginx".to_owned(),
            child,
            addr,
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect(addr).is_ok() {
                return Ok(service);
            }
            if let Ok(Some(status)) = service.child.try_wait() {
                return Err(format!(
                    "nginx exited with {status}; its error log:\n{}",
                    service.log_tail()
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err("nginx did not start listening in time".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory in bytes (`VmRSS` from `/proc/<pid>/status`).
    pub fn rss_bytes(&self) -> Result<u64> {
        rss_of(self.pid())
    }

    /// The last lines of the service's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(format!(
                "{} exited with {status}; its log:\n{}",
                self.name,
                self.log_tail()
            )
            .into()),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // nginx: SIGTERM is its fast shutdown, which also ends its workers.
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("bench: {} did not stop in time; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory in bytes of process `pid`.
pub fn rss_of(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or("no VmRSS in /proc/<pid>/status")?;
    Ok(kib * 1024)
}

/// A loopback address with a port that was free a moment ago.
pub fn free_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}
