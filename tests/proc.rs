//! Starting the real `switchyard` binary and waiting for its `listening on` line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `switchyard` binary: `$SWITCHYARD_BIN`, or the one cargo built beside the
/// running test executable (`target/<profile>/switchyard`).
pub fn switchyard_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHYARD_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("switchyard");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p switchyard-server)",
        bin.display()
    );
    bin
}

/// A running `switchyard` process.
#[derive(Debug)]
pub struct Switchyard {
    child: Child,
    /// The address from its `listening on` line.
    pub addr: SocketAddr,
    /// True when that line said `https://`.
    pub https: bool,
    /// The address from a `metrics on http://ADDR/metrics` line, once printed.
    metrics: tokio::sync::watch::Receiver<Option<SocketAddr>>,
}

impl Switchyard {
    /// Starts `switchyard <args>` with `envs` added, and waits for its first line.
    pub async fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start_with_stderr(args, envs, Stdio::inherit()).await
    }

    /// Starts `switchyard runtime` on `127.0.0.1:0` as `runtime_id` (in memory), its
    /// token file `dir/<runtime_id>.token` holding `token`.
    pub async fn start_runtime(dir: &Path, runtime_id: &str, token: &str) -> Self {
        let token_file = dir.join(format!("{runtime_id}.token"));
        std::fs::write(&token_file, token).expect("a token file");
        Self::start(
            &[
                "runtime",
                "--listen",
                "127.0.0.1:0",
                "--runtime-id",
                runtime_id,
                "--token-file",
                token_file.to_str().expect("a UTF-8 path"),
            ],
            &[],
        )
        .await
    }

    /// Like [`Switchyard::start`], with standard error written to `log` (a new file),
    /// for tests that read the process's log.
    pub async fn start_logged(args: &[&str], envs: &[(&str, &str)], log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("a log file");
        Self::start_with_stderr(args, envs, Stdio::from(file)).await
    }

    /// Starts another program that announces itself the same way (`listening on
    /// http(s)://ADDR` as its first line), such as an example built on the
    /// `switchyard-server` crate.
    pub async fn start_program(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::spawn(program, args, envs, Stdio::inherit()).await
    }

    /// Like [`Switchyard::start`], with standard error a pipe that nobody reads: a
    /// log reader that has stalled.
    pub async fn start_with_stalled_stderr(args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start_with_stderr(args, envs, Stdio::piped()).await
    }

    async fn start_with_stderr(args: &[&str], envs: &[(&str, &str)], stderr: Stdio) -> Self {
        Self::spawn(&switchyard_bin(), args, envs, stderr).await
    }

    async fn spawn(program: &Path, args: &[&str], envs: &[(&str, &str)], stderr: Stdio) -> Self {
        let mut command = Command::new(program);
        command
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        let mut child = command.spawn().expect("switchyard starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(crate::WAIT, lines.next_line())
            .await
            .expect("a first line in time")
            .expect("stdout readable")
            .expect("a first line before exit");
        let (https, addr) = match first.strip_prefix("listening on https://") {
            Some(addr) => (true, addr),
            None => (
                false,
                first
                    .strip_prefix("listening on http://")
                    .unwrap_or_else(|| panic!("unexpected first line {first:?}")),
            ),
        };
        let addr = addr.parse().expect("an address");
        // Keep draining stdout so the process never blocks on it, noting the
        // metrics listener's line.
        let (metrics_tx, metrics) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line
                    .strip_prefix("metrics on http://")
                    .and_then(|rest| rest.strip_suffix("/metrics"))
                    .and_then(|addr| addr.parse().ok())
                {
                    let _ = metrics_tx.send(Some(addr));
                }
            }
        });
        Self {
            child,
            addr,
            https,
            metrics,
        }
    }

    /// The `metrics_listen` address the process printed (waits for the line).
    pub async fn metrics_addr(&self) -> SocketAddr {
        let mut metrics = self.metrics.clone();
        let addr = tokio::time::timeout(crate::WAIT, metrics.wait_for(Option::is_some))
            .await
            .expect("a `metrics on` line in time")
            .expect("stdout open");
        addr.expect("checked above")
    }

    /// Sends a signal.
    pub fn signal(&self, signal: Signal) {
        let pid = self.child.id().expect("still running") as i32;
        kill(Pid::from_raw(pid), signal).expect("signal delivered");
    }

    /// Waits for the process to exit.
    pub async fn wait(mut self) -> ExitStatus {
        tokio::time::timeout(crate::WAIT, self.child.wait())
            .await
            .expect("exit in time")
            .expect("exit status")
    }

    /// `switchyard <args>` with `envs` added (and the client's own variables,
    /// `SWITCHYARD_URL`, `SWITCHYARD_TOKEN`, `SWITCHYARD_CA_FILE` and the client
    /// certificate's two, only as `envs`
    /// gives them), ready to spawn; killed when dropped.
    pub fn command(args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut command = Command::new(switchyard_bin());
        command
            .args(args)
            .env_remove("SWITCHYARD_URL")
            .env_remove("SWITCHYARD_TOKEN")
            .env_remove("SWITCHYARD_CA_FILE")
            .env_remove("SWITCHYARD_CLIENT_CERT")
            .env_remove("SWITCHYARD_CLIENT_KEY")
            .envs(envs.iter().copied())
            .kill_on_drop(true);
        command
    }

    /// Runs `switchyard <args>` to completion with `envs` added (and standard input
    /// empty), returning its status, stdout and stderr.
    pub async fn output(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
        let output = Self::command(args, envs).stdin(Stdio::null()).output();
        tokio::time::timeout(crate::WAIT, output)
            .await
            .expect("exit in time")
            .expect("runs")
    }

    /// Runs `switchyard <args>` to completion, returning its status and stderr.
    pub async fn run_to_exit(args: &[&str], envs: &[(&str, &str)]) -> (ExitStatus, String) {
        let (status, _, stderr) = Self::run_captured(args, envs).await;
        (status, stderr)
    }

    /// Runs `switchyard <args>` to completion, returning its status, stdout and stderr.
    pub async fn run_captured(
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> (ExitStatus, String, String) {
        let output = Command::new(switchyard_bin())
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .output();
        let output = tokio::time::timeout(crate::WAIT, output)
            .await
            .expect("exit in time")
            .expect("runs");
        (
            output.status,
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// Waits for the `n`th line (from 1) of the log file `log` that holds `needle`
/// (written by a process started with [`Switchyard::start_logged`]); returns it.
/// Fails the test, showing the log, if none comes within [`crate::WAIT`].
pub async fn wait_for_log_line(log: &Path, needle: &str, n: usize) -> String {
    let deadline = tokio::time::Instant::now() + crate::WAIT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().filter(|l| l.contains(needle)).nth(n - 1) {
            return line.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line {n} with {needle:?} in:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
