//! Backend replicas: `switchyard serve` processes on fixed loopback ports with one
//! shared configuration, started, stopped (SIGTERM: drain, then shutdown), killed
//! (SIGKILL) and restarted on the same port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::error::ClusterError;
use crate::process::Process;

/// One `[[remote]]` of the shared backend configuration.
#[derive(Debug, Clone)]
pub struct RemoteEntry {
    /// Its runtime id.
    pub runtime_id: String,
    /// `https://ADDR:PORT`.
    pub base_url: String,
    /// The name to verify when `base_url` has an address the certificate does not
    /// list (a relay on loopback).
    pub tls_server_name: Option<String>,
}

/// Timing of the backends towards the runtimes, and of their shutdown.
#[derive(Debug, Clone, Copy)]
pub struct BackendTiming {
    /// `connect_timeout_ms` of every remote.
    pub connect_timeout: Duration,
    /// `request_timeout_ms` of every remote.
    pub request_timeout: Duration,
    /// `stream_idle_timeout_ms` of every remote.
    pub stream_idle_timeout: Duration,
    /// `health_interval_ms`.
    pub health_interval: Duration,
    /// `drain_ms`.
    pub drain: Duration,
}

impl Default for BackendTiming {
    /// Tighter than the defaults, so that failures show within a test's time: 1 s to
    /// connect, 2 s per request, streams lost after 3 s of silence, probes every
    /// second, and a 1.5 s drain (HAProxy checks every 250 ms and takes a replica
    /// out after one failed check).
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_millis(1000),
            request_timeout: Duration::from_millis(2000),
            stream_idle_timeout: Duration::from_millis(3000),
            health_interval: Duration::from_millis(1000),
            drain: Duration::from_millis(1500),
        }
    }
}

/// Paths (and the one token hash) the backend configuration refers to.
#[derive(Debug, Clone)]
pub struct BackendFiles<'a> {
    /// The key every replica signs session cookies with.
    pub session_key: &'a Path,
    /// The sign-out file every replica shares.
    pub signed_out: &'a Path,
    /// SHA-256 (hex) of the clients' bearer token.
    pub client_token_sha256: &'a str,
    /// The runtimes' token.
    pub token: &'a Path,
    /// The CA that signed the runtimes' certificates.
    pub ca: &'a Path,
    /// The backends' client certificate and key.
    pub client: (&'a Path, &'a Path),
}

/// The name of the clients' token in the backend configuration.
pub const CLIENT_NAME: &str = "cluster-client";

/// The configuration every replica shares: client authentication with one session
/// key (so a session cookie from one replica is good on all) and one sign-out file
/// (so a sign-out on one holds on all), no embedded runtime,
/// every runtime host as a remote over TLS with a client certificate.
pub fn backend_config(
    remotes: &[RemoteEntry],
    files: &BackendFiles,
    timing: BackendTiming,
) -> String {
    let mut text = format!(
        "# Shared by every replica (each gets its own --listen).\n\
         health_interval_ms = {}\n\
         drain_ms = {}\n\
         \n\
         [auth]\n\
         session_key_file = \"{}\"\n\
         signed_out_file = \"{}\"\n\
         \n\
         [[auth.token]]\n\
         name = \"{CLIENT_NAME}\"\n\
         token_sha256 = \"{}\"\n\
         role = \"operator\"\n\
         workers = \"all\"\n",
        timing.health_interval.as_millis(),
        timing.drain.as_millis(),
        files.session_key.display(),
        files.signed_out.display(),
        files.client_token_sha256,
    );
    for remote in remotes {
        text.push_str(&format!(
            "\n[[remote]]\n\
             runtime_id = \"{id}\"\n\
             display_name = \"Runtime host {id}\"\n\
             base_url = \"{url}\"\n\
             token_file = \"{token}\"\n\
             ca_file = \"{ca}\"\n\
             client_cert_file = \"{cert}\"\n\
             client_key_file = \"{key}\"\n\
             connect_timeout_ms = {connect}\n\
             request_timeout_ms = {request}\n\
             stream_idle_timeout_ms = {idle}\n",
            id = remote.runtime_id,
            url = remote.base_url,
            token = files.token.display(),
            ca = files.ca.display(),
            cert = files.client.0.display(),
            key = files.client.1.display(),
            connect = timing.connect_timeout.as_millis(),
            request = timing.request_timeout.as_millis(),
            idle = timing.stream_idle_timeout.as_millis(),
        ));
        if let Some(name) = &remote.tls_server_name {
            text.push_str(&format!("tls_server_name = \"{name}\"\n"));
        }
    }
    text
}

/// One replica.
#[derive(Debug)]
pub struct Replica {
    /// `r1`, `r2`, ...: also its server name in HAProxy.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    bin: PathBuf,
    config: PathBuf,
    log_dir: PathBuf,
    process: Option<Process>,
    starts: u32,
}

impl Replica {
    /// A replica that is not started yet.
    pub fn new(name: &str, addr: SocketAddr, bin: &Path, config: &Path, log_dir: &Path) -> Self {
        Self {
            name: name.to_owned(),
            addr,
            bin: bin.to_owned(),
            config: config.to_owned(),
            log_dir: log_dir.to_owned(),
            process: None,
            starts: 0,
        }
    }

    /// True while its process runs.
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// The pid of its process.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::pid)
    }

    /// Starts it (again) on its port, retrying for a while if the port is still
    /// held. Each start logs to its own file.
    pub async fn start(&mut self) -> Result<u32, ClusterError> {
        assert!(self.process.is_none(), "{} is already running", self.name);
        let expected = format!("listening on http://{}", self.addr);
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        loop {
            self.starts += 1;
            let log = self
                .log_dir
                .join(format!("{}-{}.log", self.name, self.starts));
            let mut command = Command::new(&self.bin);
            command
                .arg("serve")
                .arg("--config")
                .arg(&self.config)
                .args(["--listen", &self.addr.to_string()])
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
                );
            match Process::spawn(&self.name, command, &log).await {
                Ok((process, first)) if first == expected => {
                    let pid = process.pid();
                    self.process = Some(process);
                    return Ok(pid);
                }
                Ok((process, first)) => {
                    let _ = process.kill().await;
                    return Err(ClusterError::Start {
                        what: self.name.clone(),
                        detail: format!("first line {first:?}, expected {expected:?}"),
                    });
                }
                Err(error) if tokio::time::Instant::now() < deadline => {
                    eprintln!("cluster: {} did not start, retrying: {error}", self.name);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// SIGTERM: the replica drains (`/readyz` 503 for `drain_ms`) and shuts down.
    /// Waits for the exit (SIGKILL after `limit`); true when it exited 0.
    pub async fn stop(&mut self, limit: Duration) -> Result<bool, ClusterError> {
        match self.process.take() {
            Some(process) => Ok(process.stop(limit).await?.success()),
            None => Ok(true),
        }
    }

    /// SIGKILL: the replica vanishes without a word.
    pub async fn kill(&mut self) -> Result<(), ClusterError> {
        if let Some(process) = self.process.take() {
            process.kill().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_configuration_lists_every_remote_with_tls_and_timing() {
        let files = BackendFiles {
            session_key: Path::new("/c/session.key"),
            signed_out: Path::new("/c/signed-out"),
            client_token_sha256: "ab12",
            token: Path::new("/c/runtime.token"),
            ca: Path::new("/c/tls/ca.crt"),
            client: (
                Path::new("/c/tls/backend.crt"),
                Path::new("/c/tls/backend.key"),
            ),
        };
        let remotes = [
            RemoteEntry {
                runtime_id: "rt0".into(),
                base_url: "https://10.77.3.2:7701".into(),
                tls_server_name: None,
            },
            RemoteEntry {
                runtime_id: "rt1".into(),
                base_url: "https://127.0.0.1:40001".into(),
                tls_server_name: Some("rt1.cluster.test".into()),
            },
        ];
        let text = backend_config(&remotes, &files, BackendTiming::default());
        assert_eq!(text.matches("[[remote]]").count(), 2);
        for needle in [
            "drain_ms = 1500",
            "health_interval_ms = 1000",
            "base_url = \"https://10.77.3.2:7701\"",
            "tls_server_name = \"rt1.cluster.test\"",
            "client_key_file = \"/c/tls/backend.key\"",
            "stream_idle_timeout_ms = 3000",
            "session_key_file = \"/c/session.key\"",
            "signed_out_file = \"/c/signed-out\"",
            "token_sha256 = \"ab12\"",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        assert!(!text.contains("[embedded]"));
    }
}
