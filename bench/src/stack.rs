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

/// One remote runtime a backend is configured with.
#[derive(Debug, Clone, Copy)]
pub struct RemoteRef<'a> {
    /// Its id in the backend.
    pub runtime_id: &'a str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Whether it serves HTTPS (the backend then trusts the stack's CA).
    pub tls: bool,
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
        crate::certs::generate(dir.path())?;
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
        self.runtime_serving(runtime_id, options, false)
    }

    /// Starts a remote runtime with id `runtime_id` that serves HTTPS only, with a
    /// certificate from the stack's CA (see [`crate::certs`]).
    pub fn tls_runtime(&self, runtime_id: &str, options: RuntimeOptions) -> Result<Service> {
        self.runtime_serving(runtime_id, options, true)
    }

    fn runtime_serving(
        &self,
        runtime_id: &str,
        options: RuntimeOptions,
        tls: bool,
    ) -> Result<Service> {
        let name = self.fresh_name("runtime");
        let config = self.dir().join(format!("{name}.toml"));
        let tls_table = if tls {
            format!(
                "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n\n",
                path_str(&self.dir().join(crate::certs::RUNTIME_CERT))?,
                path_str(&self.dir().join(crate::certs::RUNTIME_KEY))?
            )
        } else {
            String::new()
        };
        // The [tls] table goes last: keys after a table header belong to it.
        let text = format!(
            "runtime_id = \"{runtime_id}\"\n{}\n{tls_table}",
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
        let remotes: Vec<RemoteRef<'_>> = remote
            .map(|(runtime_id, addr)| RemoteRef {
                runtime_id,
                addr,
                tls: false,
            })
            .into_iter()
            .collect();
        self.backend_with(&remotes, embedded)
    }

    /// Starts a backend with `remotes` (over TLS, trusting the stack's CA, for those
    /// that serve HTTPS) and an embedded runtime `local` when `embedded`.
    pub fn backend_with(
        &self,
        remotes: &[RemoteRef<'_>],
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
        for remote in remotes {
            let (scheme, ca) = if remote.tls {
                (
                    "https",
                    format!(
                        "ca_file = \"{}\"\n",
                        path_str(&self.dir().join(crate::certs::CA_CERT))?
                    ),
                )
            } else {
                ("http", String::new())
            };
            let _ = write!(
                text,
                "[[remote]]\n\
                 runtime_id = \"{}\"\n\
                 base_url = \"{scheme}://{}\"\n\
                 token_file = \"{}\"\n\
                 connect_timeout_ms = 2000\n\
                 request_timeout_ms = 30000\n{ca}\n",
                remote.runtime_id,
                remote.addr,
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

    /// Starts a backend with client authentication on and an embedded runtime `local`:
    /// its `[[auth.token]]` lines come from `switchyard token`, exactly as an operator
    /// would make them. Returns the service and the client token.
    pub fn backend_with_auth(&self, embedded: RuntimeOptions) -> Result<(Service, String)> {
        let name = self.fresh_name("backend-auth");
        let token_file = self.dir().join(format!("{name}.client-token"));
        let output = std::process::Command::new(&self.bin)
            .args([
                "token",
                "--name",
                "bench",
                "--role",
                "admin",
                "--token-file",
                path_str(&token_file)?,
            ])
            .output()
            .map_err(|e| format!("switchyard token: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "switchyard token failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let lines = String::from_utf8(output.stdout)?;
        let token = fs::read_to_string(&token_file)?.trim().to_owned();
        let config = self.dir().join(format!("{name}.toml"));
        let text = format!(
            "health_interval_ms = 5000
viewer_queue = 65536

\
             [embedded]
runtime_id = \"local\"
{}
[auth]
{lines}",
            Self::runtime_body("embedded.", embedded)
        );
        fs::write(&config, text)?;
        let service = Service::switchyard(
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
        )?;
        Ok((service, token))
    }

    /// Starts nginx as a reverse proxy to the runtime at `upstream` that adds the
    /// runtime's bearer token, for REST and for event WebSockets.
    pub fn nginx(&self, upstream: SocketAddr) -> Result<Service> {
        self.start_nginx(upstream, None).map(|(service, _)| service)
    }

    /// Starts nginx as [`Stack::nginx`] does, plus a second server that proxies to
    /// the HTTPS runtime at `tls_upstream` over TLS (verifying its certificate with
    /// the stack's CA, upstream keep-alive, TLS session reuse); returns nginx and the
    /// second server's address.
    pub fn nginx_with_tls(
        &self,
        upstream: SocketAddr,
        tls_upstream: SocketAddr,
    ) -> Result<(Service, SocketAddr)> {
        let (service, tls) = self.start_nginx(upstream, Some(tls_upstream))?;
        Ok((service, tls.ok_or("no TLS server")?))
    }

    fn start_nginx(
        &self,
        upstream: SocketAddr,
        tls_upstream: Option<SocketAddr>,
    ) -> Result<(Service, Option<SocketAddr>)> {
        let prefix = self.dir().join(self.fresh_name("nginx"));
        for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            fs::create_dir_all(prefix.join(sub))?;
        }
        let listen = free_addr()?;
        let tls = match tls_upstream {
            Some(upstream) => Some(TlsUpstream {
                listen: free_addr()?,
                upstream,
                ca: self.dir().join(crate::certs::CA_CERT),
            }),
            None => None,
        };
        let conf = prefix.join("nginx.conf");
        fs::write(
            &conf,
            nginx_config(&prefix, listen, upstream, &self.token, tls.as_ref())?,
        )?;
        let mut service = Service::nginx(&self.nginx, &conf, &prefix, listen)?;
        service.check_alive()?;
        Ok((service, tls.map(|t| t.listen)))
    }
}

/// nginx's second server: where it listens, and the HTTPS runtime it proxies to.
#[derive(Debug)]
pub struct TlsUpstream {
    /// The server's (plain HTTP) address.
    pub listen: SocketAddr,
    /// The HTTPS runtime.
    pub upstream: SocketAddr,
    /// The CA that signed the runtime's certificate.
    pub ca: PathBuf,
}

/// nginx's configuration: `daemon off`, everything under `prefix`, one `upstream`
/// with keep-alive connections, the bearer token added to every proxied request; and
/// with `tls`, a second server whose upstream is reached over TLS.
pub fn nginx_config(
    prefix: &Path,
    listen: SocketAddr,
    upstream: SocketAddr,
    token: &str,
    tls: Option<&TlsUpstream>,
) -> Result<String> {
    let p = path_str(prefix)?;
    let tls_server = match tls {
        Some(tls) => tls_server(tls, token)?,
        None => String::new(),
    };
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
{tls_server}}}
"
    ))
}

/// The `upstream` and `server` blocks of nginx's TLS hop: the same routes, proxied
/// with `proxy_pass https://`, the runtime's certificate verified against the CA for
/// the name `localhost`, TLS sessions reused, upstream connections kept alive.
fn tls_server(tls: &TlsUpstream, token: &str) -> Result<String> {
    let ca = path_str(&tls.ca)?;
    let (listen, upstream) = (tls.listen, tls.upstream);
    let ssl = format!(
        "proxy_ssl_trusted_certificate {ca};
            proxy_ssl_verify on;
            proxy_ssl_verify_depth 2;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_ssl_session_reuse on;"
    );
    Ok(format!(
        "
    upstream runtime_tls {{
        server {upstream};
        keepalive 64;
        keepalive_requests 10000000;
    }}

    server {{
        listen {listen};

        location ~ /events/ws$ {{
            proxy_pass https://runtime_tls;
            {ssl}
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection \"upgrade\";
            proxy_set_header Authorization \"Bearer {token}\";
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }}

        location / {{
            proxy_pass https://runtime_tls;
            {ssl}
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Authorization \"Bearer {token}\";
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
