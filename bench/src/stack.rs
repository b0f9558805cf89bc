//! Setting the stage: the tools a run needs (installed from Debian's packages when
//! missing), the open-files limit, and a scratch directory in which runtimes, backends
//! and nginx are configured and started on loopback.

use std::fmt::Write as _;
use std::fs;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tempfile::TempDir;

use crate::Result;
use crate::procs::{Service, free_addr};

/// The open-files limit the benchmark asks for (children inherit it).
const WANTED_NOFILE: u64 = 65_536;

/// Where a command is: on `PATH`, or in an `sbin` directory root's `PATH` may lack.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Installs nginx and wrk with apt-get when either is missing.
pub fn ensure_tools() -> Result<()> {
    let missing: Vec<&str> = ["nginx", "wrk"]
        .into_iter()
        .filter(|tool| find_tool(tool).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "bench: {} missing; installing from Debian's packages",
        missing.join(" and ")
    );
    apt(&["update"])?;
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args)?;
    for tool in missing {
        if find_tool(tool).is_none() {
            return Err(format!("{tool} is still missing after apt-get install").into());
        }
    }
    Ok(())
}

fn apt(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("running apt-get ({e})"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get {} failed with {status}", args.join(" ")).into())
    }
}

/// Raises the open-files limit as far as allowed (up to [`WANTED_NOFILE`]); returns
/// the soft limit now in force.
pub fn raise_nofile() -> Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= WANTED_NOFILE {
        return Ok(soft);
    }
    if setrlimit(
        Resource::RLIMIT_NOFILE,
        WANTED_NOFILE,
        WANTED_NOFILE.max(hard),
    )
    .is_ok()
    {
        return Ok(WANTED_NOFILE);
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(hard)
}

/// Options of one `switchyard runtime`.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeOptions {
    /// Lines the `burst` profile prints after its first input.
    pub burst_lines: u64,
    /// Lines the `long-burst` profile prints after its first input.
    pub long_burst_lines: u64,
}

impl RuntimeOptions {
    /// The options `plan` asks for.
    pub fn of(plan: &crate::plan::Plan) -> Self {
        Self {
            burst_lines: plan.burst_lines,
            long_burst_lines: plan.long_burst_lines,
        }
    }
}

/// A scratch directory with a runtime token, in which services are configured and
/// started. Removed when dropped (after the services, which are dropped first by the
/// scenarios that own them).
#[derive(Debug)]
pub struct Stack {
    dir: TempDir,
    bin: PathBuf,
    nginx: PathBuf,
    token: String,
    token_file: PathBuf,
    next: AtomicUsize,
}

impl Stack {
    /// A fresh scratch directory and token for the `switchyard` binary `bin`.
    pub fn new(bin: PathBuf) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("switchyard-bench-")
            .tempdir()?;
        let token = random_token()?;
        let token_file = dir.path().join("runtime.token");
        fs::write(&token_file, format!("{token}\n"))?;
        let nginx = find_tool("nginx").ok_or("nginx is not installed")?;
        Ok(Self {
            dir,
            bin,
            nginx,
            token,
            token_file,
            next: AtomicUsize::new(0),
        })
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The runtimes' bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    fn fresh_name(&self, kind: &str) -> String {
        format!("{kind}-{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// The limits and profiles shared by every runtime (remote and embedded), as TOML
    /// lines; `prefix` is `""` or `"embedded."`.
    fn runtime_body(prefix: &str, options: RuntimeOptions) -> String {
        format!(
            "max_workers = 20000\n\
             input_queue = 1000000\n\
             subscriber_queue = 65536\n\
             \n\
             [{prefix}profiles.burst]\n\
             kind = \"process\"\n\
             command = [\"/bin/sh\", \"-c\", \"read x; exec seq 1 {lines}\"]\n\
             description = \"waits for one input, then prints as fast as it can\"\n\
             \n\
             [{prefix}profiles.long-burst]\n\
             kind = \"process\"\n\
             command = [\"/bin/sh\", \"-c\", \"read x; exec seq 1 {long}\"]\n\
             description = \"the same, for longer\"\n\
             \n\
             [{prefix}profiles.keys]\n\
             kind = \"pty\"\n\
             command = [\"/bin/cat\"]\n\
             description = \"cat on a terminal: the terminal echoes every keystroke\"\n",
            lines = options.burst_lines,
            long = options.long_burst_lines
        )
    }

    /// Starts a remote runtime with id `runtime_id`.
    pub fn runtime(&self, runtime_id: &str, options: RuntimeOptions) -> Result<Service> {
        let name = self.fresh_name("runtime");
        let config = self.dir().join(format!("{name}.toml"));
        let text = format!(
            "runtime_id = \"{runtime_id}\"\n{}",
            Self::runtime_body("", options)
        );
        fs::write(&config, text)?;
        let (config, token) = (path_str(&config)?, path_str(&self.token_file)?);
        Service::switchyard(
            &name,
            &self.bin,
            &[
                "runtime",
                "--listen",
                "127.0.0.1:0",
                "--config",
                config,
                "--token-file",
                token,
            ],
            self.dir().join(format!("{name}.log")),
        )
    }

    /// Starts a backend with the remote runtime `remote` (`(runtime_id, addr)`), if
    /// any, and an embedded runtime `local` when `embedded`.
    pub fn backend(
        &self,
        remote: Option<(&str, SocketAddr)>,
        embedded: Option<RuntimeOptions>,
    ) -> Result<Service> {
        let name = self.fresh_name("backend");
        let config = self.dir().join(format!("{name}.toml"));
        // The same slack per viewer as the runtimes give each subscriber, so that
        // direct and proxied viewers compare like for like.
        let mut text = String::from("health_interval_ms = 5000\nviewer_queue = 65536\n\n");
        if let Some(options) = embedded {
            text.push_str("[embedded]\nruntime_id = \"local\"\n");
            text.push_str(&Self::runtime_body("embedded.", options));
            text.push('\n');
        }
        if let Some((runtime_id, addr)) = remote {
            let _ = write!(
                text,
                "[[remote]]\n\
                 runtime_id = \"{runtime_id}\"\n\
                 base_url = \"http://{addr}\"\n\
                 token_file = \"{}\"\n\
                 connect_timeout_ms = 2000\n\
                 request_timeout_ms = 30000\n",
                path_str(&self.token_file)?
            );
        }
        fs::write(&config, text)?;
        Service::switchyard(
            &name,
            &self.bin,
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--config",
                path_str(&config)?,
            ],
            self.dir().join(format!("{name}.log")),
        )
    }

    /// Starts nginx as a reverse proxy to the runtime at `upstream` that adds the
    /// runtime's bearer token, for REST and for event WebSockets.
    pub fn nginx(&self, upstream: SocketAddr) -> Result<Service> {
        let prefix = self.dir().join("nginx");
        for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            fs::create_dir_all(prefix.join(sub))?;
        }
        let listen = free_addr()?;
        let conf = prefix.join("nginx.conf");
        fs::write(&conf, nginx_config(&prefix, listen, upstream, &self.token)?)?;
        let mut service = Service::nginx(&self.nginx, &conf, &prefix, listen)?;
        service.check_alive()?;
        Ok(service)
    }
}

/// nginx's configuration: `daemon off`, everything under `prefix`, one `upstream`
/// with keep-alive connections, the bearer token added to every proxied request.
pub fn nginx_config(
    prefix: &Path,
    listen: SocketAddr,
    upstream: SocketAddr,
    token: &str,
) -> Result<String> {
    let p = path_str(prefix)?;
    Ok(format!(
        "daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile 65536;
pid {p}/nginx.pid;
error_log {p}/err.log warn;

events {{
    worker_connections 16384;
}}

http {{
    access_log off;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;

    upstream runtime {{
        server {upstream};
        keepalive 64;
        keepalive_requests 10000000;
    }}

    server {{
        listen {listen};

        location ~ /events/ws$ {{
            proxy_pass http://runtime;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection \"upgrade\";
            proxy_set_header Authorization \"Bearer {token}\";
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}

        location / {{
            proxy_pass http://runtime;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Authorization \"Bearer {token}\";
        }}
    }}
}}
"
    ))
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()).into())
}

/// 24 random hex digits from `/dev/urandom`.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 12];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
