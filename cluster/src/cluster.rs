//! [`Cluster`]: runtime hosts in namespaces, replicas, HAProxy, relays; started in
//! order, checked ready, and removed in reverse order.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use switchyard_client::{BackendClient, BackendUrl, SecretToken, Timeouts};
use tempfile::TempDir;

use crate::error::ClusterError;
use crate::haproxy::Haproxy;
use crate::net::Network;
use crate::pki::{Pki, host_name};
use crate::relay::{Faults, Relay};
use crate::replica::{BackendFiles, BackendTiming, RemoteEntry, Replica, backend_config};
use crate::runtime_host::RuntimeHost;

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Runtime hosts (namespaces), 1 to 63.
    pub runtimes: usize,
    /// Backend replicas.
    pub replicas: usize,
    /// Runtime hosts the backends reach through a fault-injecting relay (indices),
    /// each starting with the given faults.
    pub relayed: Vec<(usize, Faults)>,
    /// The backends' timing.
    pub timing: BackendTiming,
    /// Whether HAProxy retries what is safe to retry (see [`crate::haproxy`]);
    /// without, it sends to a replica until a health check takes it out.
    pub lb_retries: bool,
    /// The `switchyard` binary; default `$SWITCHYARD_BIN` or the one cargo built
    /// beside the running test.
    pub bin: Option<PathBuf>,
}

impl Default for ClusterOptions {
    /// Two runtime hosts, three replicas, no relay, [`BackendTiming::default`],
    /// HAProxy retrying what is safe.
    fn default() -> Self {
        Self {
            runtimes: 2,
            replicas: 3,
            relayed: Vec::new(),
            timing: BackendTiming::default(),
            lb_retries: true,
            bin: None,
        }
    }
}

/// A running cluster. Dropping it kills every process and removes the namespaces;
/// [`Cluster::shutdown`] stops them cleanly first.
#[derive(Debug)]
pub struct Cluster {
    /// HAProxy, in front of the replicas.
    pub haproxy: Haproxy,
    /// The replicas, `r1`, `r2`, ...
    pub replicas: Vec<Replica>,
    /// The runtime hosts, `rt0`, `rt1`, ...
    pub runtimes: Vec<RuntimeHost>,
    /// Relays, by runtime host index.
    pub relays: Vec<(usize, Relay)>,
    /// The backends' timing.
    pub timing: BackendTiming,
    /// The clients' bearer token (an operator reaching every worker).
    token: SecretToken,
    network: Network,
    dir: Option<TempDir>,
}

impl Cluster {
    /// Starts everything and waits until HAProxy sees every replica up and every
    /// replica sees every runtime ready. Fails with [`ClusterError::Unprivileged`]
    /// or [`ClusterError::MissingTool`] where a cluster cannot run at all.
    pub async fn start(options: ClusterOptions) -> Result<Self, ClusterError> {
        crate::net::check_privilege()?;
        for (program, hint) in [
            (
                "haproxy",
                "install Debian's haproxy package (cargo xtask cluster-test does when run as root)",
            ),
            (
                "nft",
                "install Debian's nftables package (cargo xtask cluster-test does when run as root)",
            ),
        ] {
            if !crate::sys::has_program(program) {
                return Err(ClusterError::MissingTool { program, hint });
            }
        }
        let bin = options
            .bin
            .clone()
            .unwrap_or_else(switchyard_e2e::proc::switchyard_bin);
        let dir = tempfile::Builder::new()
            .prefix("switchyard-cluster-")
            .tempdir()
            .map_err(ClusterError::io("creating the cluster's directory"))?;
        let path = dir.path().to_owned();
        let mut network = Network::create(options.runtimes)?;
        network.claim_mut().record_dir(&path);

        let token = path.join("runtime.token");
        std::fs::write(&token, format!("{}\n", random_hex(16)))
            .map_err(ClusterError::io("writing the token"))?;
        let session_key = path.join("session.key");
        std::fs::write(&session_key, random_hex(32))
            .map_err(ClusterError::io("writing the session key"))?;
        let client_token = format!("sy_cluster_{}", random_hex(16));
        std::fs::write(path.join("client.token"), &client_token)
            .map_err(ClusterError::io("writing the client token"))?;
        let client_token_sha256: String = Sha256::digest(client_token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let addresses: Vec<String> = network.links().iter().map(|l| l.addr.to_string()).collect();
        let pki = Pki::generate(&path, &addresses)?;

        let mut runtimes = Vec::new();
        for (index, link) in network.links().to_vec().into_iter().enumerate() {
            let (cert, key) = &pki.hosts[index];
            let host =
                RuntimeHost::start(&bin, &path, index, link, (cert, key, &pki.ca), &token).await?;
            if let Some(pid) = host.pid() {
                network.claim_mut().record_pid(pid);
            }
            runtimes.push(host);
        }

        let mut relays = Vec::new();
        let mut remotes = Vec::new();
        for host in &runtimes {
            let relayed = options.relayed.iter().find(|(i, _)| *i == host.index);
            let entry = match relayed {
                Some((_, faults)) => {
                    let relay = Relay::start(host.addr(), *faults)
                        .await
                        .map_err(ClusterError::io("starting a relay"))?;
                    let entry = RemoteEntry {
                        runtime_id: host.runtime_id.clone(),
                        base_url: format!("https://{}", relay.addr),
                        tls_server_name: Some(host_name(host.index)),
                    };
                    relays.push((host.index, relay));
                    entry
                }
                None => RemoteEntry {
                    runtime_id: host.runtime_id.clone(),
                    base_url: host.base_url(),
                    tls_server_name: None,
                },
            };
            remotes.push(entry);
        }
        let signed_out = path.join("signed-out");
        let files = BackendFiles {
            session_key: &session_key,
            signed_out: &signed_out,
            client_token_sha256: &client_token_sha256,
            token: &token,
            ca: &pki.ca,
            client: (&pki.backend.0, &pki.backend.1),
        };
        let config = path.join("backend.toml");
        std::fs::write(&config, backend_config(&remotes, &files, options.timing))
            .map_err(ClusterError::io("writing backend.toml"))?;

        let ports = free_ports(options.replicas + 1)?;
        let mut replicas = Vec::new();
        for (i, addr) in ports[1..].iter().enumerate() {
            let mut replica = Replica::new(&format!("r{}", i + 1), *addr, &bin, &config, &path);
            let pid = replica.start().await?;
            network.claim_mut().record_pid(pid);
            replicas.push(replica);
        }
        let servers: Vec<(String, SocketAddr)> =
            replicas.iter().map(|r| (r.name.clone(), r.addr)).collect();
        let haproxy = Haproxy::start(&path, ports[0], &servers, options.lb_retries).await?;
        if let Some(pid) = haproxy.pid() {
            network.claim_mut().record_pid(pid);
        }
        let cluster = Self {
            haproxy,
            replicas,
            runtimes,
            relays,
            timing: options.timing,
            token: SecretToken::new(client_token).expect("a non-empty token"),
            network,
            dir: Some(dir),
        };
        for replica in &cluster.replicas {
            cluster.haproxy.wait_for(&replica.name, "UP").await?;
            cluster.wait_runtimes_ready(replica.addr).await?;
        }
        Ok(cluster)
    }

    /// Where clients connect (HAProxy's frontend).
    pub fn lb(&self) -> SocketAddr {
        self.haproxy.addr
    }

    /// The cluster's working directory (configuration, certificates, logs).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("/"), TempDir::path)
    }

    /// The network (partitions).
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// A client of the backend API through HAProxy, with the clients' token.
    pub fn client(&self) -> BackendClient {
        Self::client_for(self.lb(), Some(&self.token))
    }

    /// The clients' bearer token (`client.token` in [`Cluster::dir`]).
    pub fn token(&self) -> &SecretToken {
        &self.token
    }

    /// A client of the backend API at `addr` (a replica, bypassing HAProxy), with
    /// `token` when given.
    pub fn client_for(addr: SocketAddr, token: Option<&SecretToken>) -> BackendClient {
        let url = BackendUrl::parse(&format!("http://{addr}")).expect("a loopback URL parses");
        let mut timeouts = Timeouts::default();
        timeouts.connect = Duration::from_secs(5);
        timeouts.request = Duration::from_secs(30);
        timeouts.stream_idle = Duration::from_secs(60);
        BackendClient::new(url, token, timeouts).expect("a token that fits a header")
    }

    /// Signs in through HAProxy (`POST /api/session` with the clients' token) and
    /// returns the session cookie (`switchyard_session=...`), as a browser gets it.
    pub async fn session_cookie(&self) -> Result<String, ClusterError> {
        let body = serde_json::json!({ "token": self.token.expose() }).to_string();
        let answer = switchyard_e2e::client::request(
            self.lb(),
            http::Method::POST,
            "/api/session",
            Some(body.into_bytes()),
            &[("content-type", "application/json")],
        )
        .await;
        answer
            .headers
            .get(http::header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
            .filter(|_| answer.status == 200)
            .ok_or_else(|| ClusterError::Start {
                what: "signing in".into(),
                detail: format!("{} {}", answer.status, answer.text()),
            })
    }

    /// The relay in front of runtime host `index`.
    pub fn relay(&self, index: usize) -> &Relay {
        &self
            .relays
            .iter()
            .find(|(i, _)| *i == index)
            .unwrap_or_else(|| panic!("runtime host {index} has no relay"))
            .1
    }

    /// Restarts replica `index` after it was stopped or killed, and waits until
    /// HAProxy has it back in rotation and it sees every runtime ready.
    pub async fn restart_replica(&mut self, index: usize) -> Result<Duration, ClusterError> {
        let started = tokio::time::Instant::now();
        let pid = self.replicas[index].start().await?;
        self.network.claim_mut().record_pid(pid);
        let (name, addr) = (self.replicas[index].name.clone(), self.replicas[index].addr);
        self.wait_runtimes_ready(addr).await?;
        self.haproxy.wait_for(&name, "UP").await?;
        Ok(started.elapsed())
    }

    /// Waits until the replica at `addr` sees every runtime `ready`.
    pub async fn wait_runtimes_ready(&self, addr: SocketAddr) -> Result<(), ClusterError> {
        let client = Self::client_for(addr, Some(&self.token));
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        loop {
            let states = match client.runtimes().await {
                Ok(list) => list
                    .runtimes
                    .iter()
                    .map(|r| format!("{}={:?}", r.runtime_id, r.state))
                    .collect::<Vec<_>>(),
                Err(error) => vec![error.to_string()],
            };
            if states.len() == self.runtimes.len() && states.iter().all(|s| s.ends_with("=Ready")) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClusterError::Timeout(format!(
                    "the replica at {addr} to see every runtime ready ({states:?})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops everything cleanly: replicas (SIGTERM: drain and shutdown), HAProxy,
    /// runtime hosts; then removes the namespaces and the working directory.
    pub async fn shutdown(mut self) {
        for replica in &mut self.replicas {
            let _ = replica.stop(Duration::from_secs(15)).await;
        }
        self.haproxy.stop().await;
        for host in &mut self.runtimes {
            host.stop().await;
        }
        self.relays.clear();
        // Dropping removes the network and the directory.
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Processes are killed as their handles drop (kill_on_drop), namespaces are
        // removed when `network` drops. On a failure, keep the logs.
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!("cluster: logs and configuration kept in {}", kept.display());
        }
    }
}

/// `count` free loopback ports (bound together, then released).
fn free_ports(count: usize) -> Result<Vec<SocketAddr>, ClusterError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ClusterError::io("finding free ports"))?;
    listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<Result<Vec<_>, _>>()
        .map_err(ClusterError::io("finding free ports"))
}

/// `bytes` random bytes from the OS's random source, as hex.
fn random_hex(bytes: usize) -> String {
    let mut bytes = vec![0u8; bytes];
    if let Ok(mut urandom) = std::fs::File::open("/dev/urandom") {
        use std::io::Read as _;
        let _ = urandom.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
