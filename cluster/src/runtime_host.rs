//! A runtime host: `switchyard runtime` inside its network namespace, serving HTTPS
//! (client certificates required) on the namespace's address, with a token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::error::ClusterError;
use crate::net::HostLink;
use crate::process::Process;

/// The port every runtime host listens on (each on its own address).
pub const RUNTIME_PORT: u16 = 7701;

/// Lines the `ticker` profile prints, one every [`TICK_MS`] milliseconds.
pub const TICKS: u32 = 1200;

/// Milliseconds between two lines of the `ticker` profile.
pub const TICK_MS: u32 = 50;

/// One runtime host.
#[derive(Debug)]
pub struct RuntimeHost {
    /// Its index in the cluster.
    pub index: usize,
    /// Its runtime id (`rtI`).
    pub runtime_id: String,
    /// Its link.
    pub link: HostLink,
    /// The running process, if any.
    process: Option<Process>,
    config: PathBuf,
    log: PathBuf,
}

impl RuntimeHost {
    /// The runtime id of host `index`.
    pub fn id_of(index: usize) -> String {
        format!("rt{index}")
    }

    /// Writes host `index`'s configuration into `dir` (certificate and key paths from
    /// the cluster's PKI, the shared token file) and starts it in its namespace.
    pub async fn start(
        bin: &Path,
        dir: &Path,
        index: usize,
        link: HostLink,
        tls: (&Path, &Path, &Path),
        token_file: &Path,
    ) -> Result<Self, ClusterError> {
        let runtime_id = Self::id_of(index);
        let config = dir.join(format!("{runtime_id}.toml"));
        let (cert, key, client_ca) = tls;
        let text = runtime_config(
            &runtime_id,
            &link,
            token_file,
            &dir.join(format!("{runtime_id}-data")),
            (cert, key, client_ca),
        );
        std::fs::write(&config, text)
            .map_err(ClusterError::io(format!("writing {}", config.display())))?;
        let mut host = Self {
            index,
            runtime_id,
            link,
            process: None,
            config,
            log: dir.join(format!("rt{index}.log")),
        };
        host.spawn(bin).await?;
        Ok(host)
    }

    async fn spawn(&mut self, bin: &Path) -> Result<(), ClusterError> {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.link.namespace])
            .arg(bin)
            .args(["runtime", "--config"])
            .arg(&self.config)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
        let (process, first) = Process::spawn(&self.runtime_id, command, &self.log).await?;
        let expected = format!("listening on https://{}", self.addr());
        if first != expected {
            return Err(ClusterError::Start {
                what: self.runtime_id.clone(),
                detail: format!("first line {first:?}, expected {expected:?}"),
            });
        }
        self.process = Some(process);
        Ok(())
    }

    /// Where it listens (inside its namespace, reachable from this machine).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.link.addr, RUNTIME_PORT))
    }

    /// Its base URL as the backends reach it directly.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr())
    }

    /// The pid of its process.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::pid)
    }

    /// Stops it (SIGTERM, SIGKILL after 10 s).
    pub async fn stop(&mut self) {
        if let Some(process) = self.process.take() {
            let _ = process.stop(std::time::Duration::from_secs(10)).await;
        }
    }
}

/// The runtime host's configuration file: TLS with client certificates, a token, a
/// data directory, and the profiles the scenarios use.
fn runtime_config(
    runtime_id: &str,
    link: &HostLink,
    token_file: &Path,
    data_dir: &Path,
    (cert, key, client_ca): (&Path, &Path, &Path),
) -> String {
    let ticker = format!(
        "i=0; while [ $i -lt {TICKS} ]; do echo \"tick $i\"; i=$((i+1)); sleep {}; done",
        f64::from(TICK_MS) / 1000.0
    );
    format!(
        "runtime_id = \"{runtime_id}\"\n\
         display_name = \"Runtime host {runtime_id} (namespace {ns}, {addr})\"\n\
         listen = \"{addr}:{RUNTIME_PORT}\"\n\
         token_file = \"{token}\"\n\
         data_dir = \"{data}\"\n\
         \n\
         [tls]\n\
         cert_file = \"{cert}\"\n\
         key_file = \"{key}\"\n\
         client_ca_file = \"{ca}\"\n\
         \n\
         [profiles.ticker]\n\
         kind = \"process\"\n\
         command = [\"/bin/sh\", \"-c\", {ticker:?}]\n\
         description = \"Prints a numbered line every {TICK_MS} ms, {TICKS} in all\"\n",
        ns = link.namespace,
        addr = link.addr,
        token = token_file.display(),
        data = data_dir.display(),
        cert = cert.display(),
        key = key.display(),
        ca = client_ca.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_names_its_address_tls_and_profiles() {
        let link = HostLink::plan(3, 1);
        let text = runtime_config(
            "rt1",
            &link,
            Path::new("/c/runtime.token"),
            Path::new("/c/rt1-data"),
            (
                Path::new("/c/tls/rt1.crt"),
                Path::new("/c/tls/rt1.key"),
                Path::new("/c/tls/ca.crt"),
            ),
        );
        for needle in [
            "listen = \"10.77.3.6:7701\"",
            "client_ca_file = \"/c/tls/ca.crt\"",
            "token_file = \"/c/runtime.token\"",
            "[profiles.ticker]",
            "sleep 0.05",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
