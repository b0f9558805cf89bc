//! HAProxy in front of the replicas: its configuration, its process, and its view
//! of the servers through the admin socket.
//!
//! What the configuration does and why:
//! - `option httpchk` with `GET /readyz` every 250 ms; one failed check takes a
//!   server out (`fall 1`), two good ones bring it back (`rise 2`). A replica that
//!   drains answers 503 there at once and keeps serving for `drain_ms`, so it is out
//!   of rotation before it stops accepting.
//! - WebSockets need nothing but time: `timeout tunnel 1h` once upgraded.
//! - Retries: `retry-on conn-failure empty-response response-timeout` with
//!   `option redispatch` (each retry may go to another server), but only for `GET`
//!   and `HEAD` (`http-request disable-l7-retry` for the rest): a `POST` is retried
//!   only when it could not be sent at all (connection refused), never once a
//!   server may have acted on it.
//! - `X-Served-By` on every answer names the replica, so that tests know which
//!   replica a WebSocket is on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::process::Command;

use crate::error::ClusterError;
use crate::process::Process;

/// How often HAProxy checks each replica's `/readyz`.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// The response header naming the replica that answered.
pub const SERVED_BY: &str = "x-served-by";

/// The backend section's name in the configuration.
const BACKEND: &str = "replicas";

/// Renders the configuration: a frontend on `frontend`, the `servers` (name,
/// address) behind it, the admin socket at `socket`. Without `retries`, HAProxy
/// never retries a request (a load balancer that sends to a replica until its health
/// check fails, as many do).
pub fn config(
    frontend: SocketAddr,
    servers: &[(String, SocketAddr)],
    socket: &Path,
    retries: bool,
) -> String {
    let retry = if retries {
        "\tretries 3\n\toption redispatch 1\n\tretry-on conn-failure empty-response response-timeout\n"
    } else {
        "\tretries 0\n\tretry-on none\n"
    };
    let mut text = format!(
        "global\n\
         \tstats socket {socket} mode 600 level admin\n\
         \tmaxconn 4000\n\
         \n\
         defaults\n\
         \tmode http\n\
         \ttimeout connect 2s\n\
         \ttimeout client 60s\n\
         \ttimeout server 60s\n\
         \ttimeout tunnel 1h\n\
         \ttimeout http-request 10s\n\
         \ttimeout http-keep-alive 10s\n\
         {retry}\
         \n\
         frontend switchyard\n\
         \tbind {frontend}\n\
         \tdefault_backend {BACKEND}\n\
         \n\
         backend {BACKEND}\n\
         \tbalance roundrobin\n\
         \toption httpchk\n\
         \thttp-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost\n\
         \thttp-check expect status 200\n\
         \thttp-request disable-l7-retry if !METH_GET\n\
         \thttp-response set-header {SERVED_BY} %s\n\
         \tdefault-server check inter {inter}ms fastinter {inter}ms downinter {inter}ms fall 1 rise 2\n",
        socket = socket.display(),
        inter = CHECK_INTERVAL.as_millis(),
    );
    for (name, addr) in servers {
        text.push_str(&format!("\tserver {name} {addr}\n"));
    }
    text
}

/// A running HAProxy.
#[derive(Debug)]
pub struct Haproxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    socket: PathBuf,
    process: Option<Process>,
}

impl Haproxy {
    /// Writes the configuration into `dir`, checks it (`haproxy -c`), starts HAProxy
    /// in the foreground, and waits until its frontend accepts connections.
    pub async fn start(
        dir: &Path,
        frontend: SocketAddr,
        servers: &[(String, SocketAddr)],
        retries: bool,
    ) -> Result<Self, ClusterError> {
        let socket = dir.join("haproxy.sock");
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config(frontend, servers, &socket, retries))
            .map_err(ClusterError::io("writing haproxy.cfg"))?;
        let path_text = path.display().to_string();
        crate::sys::run_async("haproxy", &["-c", "-q", "-f", &path_text]).await?;
        // -db: in the foreground. HAProxy prints no first line, so a shell prints one
        // and then becomes HAProxy (exec keeps the pid).
        let mut command = Command::new("sh");
        command.args([
            "-c",
            &format!("echo started; exec haproxy -db -f '{path_text}'"),
        ]);
        let (process, _) = Process::spawn("haproxy", command, &dir.join("haproxy.log")).await?;
        let haproxy = Self {
            addr: frontend,
            socket,
            process: Some(process),
        };
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        while tokio::net::TcpStream::connect(frontend).await.is_err()
            || haproxy.servers().await.is_err()
        {
            if tokio::time::Instant::now() > deadline {
                return Err(ClusterError::Timeout("HAProxy to listen".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(haproxy)
    }

    /// The pid of its process.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::pid)
    }

    /// Sends one command to the admin socket and returns the answer.
    pub async fn admin(&self, command: &str) -> Result<String, ClusterError> {
        let mut stream = UnixStream::connect(&self.socket)
            .await
            .map_err(ClusterError::io("connecting to HAProxy's admin socket"))?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(ClusterError::io("writing to HAProxy's admin socket"))?;
        let mut answer = String::new();
        tokio::time::timeout(crate::WAIT, stream.read_to_string(&mut answer))
            .await
            .map_err(|_| ClusterError::Timeout("HAProxy's admin socket".into()))?
            .map_err(ClusterError::io("reading HAProxy's admin socket"))?;
        Ok(answer)
    }

    /// Each server's name and status (`UP`, `DOWN`, `UP 1/2`, ...), from `show stat`.
    pub async fn servers(&self) -> Result<Vec<(String, String)>, ClusterError> {
        Ok(server_states(&self.admin("show stat").await?))
    }

    /// Waits until server `name`'s status starts with `status` (`UP` or `DOWN`).
    pub async fn wait_for(&self, name: &str, status: &str) -> Result<Duration, ClusterError> {
        let started = tokio::time::Instant::now();
        loop {
            let states = self.servers().await?;
            if states.iter().any(|(server, state)| {
                server == name && state.split_whitespace().next() == Some(status)
            }) {
                return Ok(started.elapsed());
            }
            if started.elapsed() > crate::WAIT {
                return Err(ClusterError::Timeout(format!(
                    "HAProxy to see {name} {status} (servers: {states:?})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops HAProxy.
    pub async fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            let _ = process.stop(Duration::from_secs(5)).await;
        }
    }
}

/// The (server, status) pairs of the replicas backend in `show stat` CSV.
fn server_states(csv: &str) -> Vec<(String, String)> {
    let mut lines = csv.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let column = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(px), Some(sv), Some(status)) = (column("pxname"), column("svname"), column("status"))
    else {
        return Vec::new();
    };
    lines
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|f| f.get(px) == Some(&BACKEND))
        .filter(|f| !matches!(f.get(sv), Some(&"BACKEND") | Some(&"FRONTEND") | None))
        .filter_map(|f| Some((f.get(sv)?.to_string(), f.get(status)?.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_checks_readyz_carries_websockets_and_retries_only_gets() {
        let text = config(
            "127.0.0.1:8000".parse().unwrap(),
            &[
                ("r1".into(), "127.0.0.1:8001".parse().unwrap()),
                ("r2".into(), "127.0.0.1:8002".parse().unwrap()),
            ],
            Path::new("/tmp/x/haproxy.sock"),
            true,
        );
        for needle in [
            "bind 127.0.0.1:8000",
            "http-check send meth GET uri /readyz",
            "timeout tunnel 1h",
            "retry-on conn-failure empty-response response-timeout",
            "http-request disable-l7-retry if !METH_GET",
            "server r1 127.0.0.1:8001",
            "server r2 127.0.0.1:8002",
            "fall 1 rise 2",
            "stats socket /tmp/x/haproxy.sock",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        let bare = config(
            "127.0.0.1:8000".parse().unwrap(),
            &[],
            Path::new("/tmp/x/haproxy.sock"),
            false,
        );
        assert!(
            bare.contains("retry-on none") && !bare.contains("redispatch"),
            "{bare}"
        );
    }

    /// HAProxy itself accepts the configuration (when it is installed; CI installs
    /// it for the cluster tests, and this check says so when it is skipped).
    #[test]
    fn haproxy_accepts_the_configuration() {
        if !crate::sys::has_program("haproxy") {
            eprintln!("haproxy is not installed: configuration check skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.cfg");
        for retries in [true, false] {
            std::fs::write(
                &path,
                config(
                    "127.0.0.1:8000".parse().unwrap(),
                    &[("r1".into(), "127.0.0.1:8001".parse().unwrap())],
                    &dir.path().join("haproxy.sock"),
                    retries,
                ),
            )
            .unwrap();
            crate::sys::run("haproxy", &["-c", "-q", "-f", path.to_str().unwrap()]).unwrap();
        }
    }

    #[test]
    fn server_states_come_from_show_stat() {
        let csv = "# pxname,svname,qcur,status,weight\n\
                   switchyard,FRONTEND,,OPEN,\n\
                   replicas,r1,0,UP,1\n\
                   replicas,r2,0,DOWN,1\n\
                   replicas,r3,0,UP 1/2,1\n\
                   replicas,BACKEND,0,UP,2\n";
        assert_eq!(
            server_states(csv),
            [
                ("r1".to_string(), "UP".to_string()),
                ("r2".into(), "DOWN".into()),
                ("r3".into(), "UP 1/2".into())
            ]
        );
        assert!(server_states("").is_empty());
    }
}
