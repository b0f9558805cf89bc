//! Settings of `switchyard serve`: the backend file, flags and environment.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use switchyard_protocol::RuntimeId;
use switchyard_runtime::RuntimeConfig;
use switchyard_transport::{ClientTls, DEFAULT_STREAM_IDLE_TIMEOUT, SecretToken};

use super::args::ServeArgs;
use super::auth::AuthSettings;
use super::error::{ConfigError, Origin};
use super::file::{BackendFile, EmbeddedFile, RemoteFile};
use super::parse::{FileContext, read_file};
use super::runtime::DEFAULT_RUNTIME_ID;
use super::tls::{ListenerTlsInput, ServerTlsSettings, is_loopback_url, listener_tls, remote_tls};
use super::{auth, profiles, token, urls, values};
use crate::http::DEFAULT_MAX_CONNECTIONS;

/// Where the backend listens unless told otherwise.
pub const DEFAULT_BACKEND_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7700));

/// Largest request body the backend accepts unless configured: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

/// How often remote runtimes are probed unless configured.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_millis(5000);

/// How long a stopping backend keeps serving after `/readyz` turned 503, unless
/// configured: not at all.
pub const DEFAULT_DRAIN: Duration = Duration::ZERO;

/// A remote's connect timeout unless configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(2000);

/// A remote's request timeout unless configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(5000);

/// The embedded runtime's display name unless configured.
pub const DEFAULT_EMBEDDED_DISPLAY_NAME: &str = "This machine";

/// Everything `switchyard serve` needs to start. `Debug` never shows a token.
///
/// Each new configuration key adds a field, so start from
/// [`BackendSettings::defaults`] (or a file, [`load_backend_settings`]) and set
/// fields, or use the builder's [`crate::BackendBuilder::settings_mut`]:
///
/// ```
/// use std::time::Duration;
/// use switchyard_server::config::BackendSettings;
///
/// let mut settings = BackendSettings::defaults();
/// settings.listen = "127.0.0.1:0".parse().unwrap();
/// settings.drain = Duration::ZERO;
/// let backend = switchyard_server::Backend::from_settings(settings);
/// # drop(backend);
/// ```
///
/// A struct literal (even one that ends with `..BackendSettings::defaults()`) does
/// not compile:
///
/// ```compile_fail
/// use switchyard_server::config::BackendSettings;
///
/// let settings = BackendSettings {
///     listen: "127.0.0.1:0".parse().unwrap(),
///     ..BackendSettings::defaults()
/// };
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackendSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Origins besides the backend's own whose WebSocket upgrades are accepted,
    /// normalized as `scheme://host[:port]`.
    pub allowed_origins: Vec<String>,
    /// Host names accepted in `Host` besides `localhost`, `127.0.0.1`, `[::1]` and the
    /// listen address's host (any port), normalized lower-case, IPv6 in brackets.
    pub allowed_hosts: Vec<String>,
    /// Who the backend serves: everyone (no `[auth]`, or `open = true`) or token
    /// holders.
    pub auth: AuthSettings,
    /// Largest request body accepted.
    pub max_body_bytes: u64,
    /// The in-process runtime, if any.
    pub embedded: Option<EmbeddedSettings>,
    /// Remote runtimes, in file order.
    pub remotes: Vec<RemoteSettings>,
    /// How often remote runtimes are probed.
    pub health_interval: Duration,
    /// On SIGTERM/SIGINT, how long to keep serving with `/readyz` at 503 before
    /// shutting down, so that a load balancer takes this replica out first.
    pub drain: Duration,
    /// Events queued per WebSocket viewer before it is cut off (4408).
    pub viewer_queue: u32,
    /// Events the backend keeps per watched worker for viewers that resume.
    pub event_backlog: u32,
    /// HTTPS (and WSS) only, with this certificate, when set.
    pub tls: Option<ServerTlsSettings>,
    /// Connections open at once on the main listener (WebSocket sessions included);
    /// past it, new ones get `503 overloaded`.
    pub max_connections: usize,
    /// A second listener serving `GET /metrics` without authentication, when set.
    pub metrics_listen: Option<SocketAddr>,
    /// Threads serving the main listener's connections, each with a
    /// single-threaded runtime of its own (see [`crate::http::ServeOptions::cores`]);
    /// 0 serves them on the tokio runtime that starts the backend. Not a key of
    /// the configuration file: one per CPU ([`default_connection_threads`]).
    pub connection_threads: usize,
}

/// One connection thread per CPU the process may use.
pub fn default_connection_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Default for [`BackendSettings::viewer_queue`].
pub const DEFAULT_VIEWER_QUEUE: u32 = 1024;
/// Default for [`BackendSettings::event_backlog`].
pub const DEFAULT_EVENT_BACKLOG: u32 = 4096;

/// The backend's in-process runtime, for [`crate::BackendBuilder::embedded`].
///
/// Settings may be added (an `[embedded]` key each), so build one with
/// [`EmbeddedSettings::new`] and set fields:
///
/// ```
/// use switchyard_protocol::RuntimeId;
/// use switchyard_runtime::RuntimeConfig;
/// use switchyard_server::config::EmbeddedSettings;
///
/// let config = RuntimeConfig::new(RuntimeId::new("jobs").unwrap(), "Jobs");
/// let mut embedded = EmbeddedSettings::new(config);
/// assert_eq!(embedded.data_dir, None); // in memory
/// embedded.data_dir = Some("/var/lib/switchyard".into());
/// let backend = switchyard_server::Backend::builder().embedded(embedded);
/// # drop(backend);
/// ```
///
/// A struct literal does not compile:
///
/// ```compile_fail
/// use switchyard_protocol::RuntimeId;
/// use switchyard_runtime::RuntimeConfig;
/// use switchyard_server::config::EmbeddedSettings;
///
/// let embedded = EmbeddedSettings {
///     runtime: RuntimeConfig::new(RuntimeId::new("jobs").unwrap(), "Jobs"),
///     data_dir: None,
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmbeddedSettings {
    /// Identity, profiles and limits.
    pub runtime: RuntimeConfig,
    /// Where its store lives; in memory when absent.
    pub data_dir: Option<PathBuf>,
}

impl EmbeddedSettings {
    /// The runtime `runtime` configures, its store in memory (set
    /// [`EmbeddedSettings::data_dir`] to keep it in files).
    pub fn new(runtime: RuntimeConfig) -> Self {
        Self {
            runtime,
            data_dir: None,
        }
    }
}

/// A remote runtime reached over the Runtime API, for a `[[remote]]` table or
/// [`BackendSettings::remotes`] (and [`crate::remote_runtime`]). `Debug` redacts the
/// token.
///
/// Settings may be added (a `[[remote]]` key each), so build one with
/// [`RemoteSettings::new`] and set fields:
///
/// ```
/// use std::time::Duration;
/// use switchyard_protocol::RuntimeId;
/// use switchyard_server::config::{BackendSettings, RemoteSettings};
/// use switchyard_transport::SecretToken;
///
/// let token = SecretToken::new("runtime-secret").expect("not empty");
/// let mut remote = RemoteSettings::new(
///     RuntimeId::new("build-1").unwrap(),
///     "http://127.0.0.1:7701",
///     token,
/// );
/// assert_eq!(remote.display_name, "build-1");
/// assert!(!remote.insecure_http); // loopback
/// remote.display_name = "Build farm 1".into();
/// remote.request_timeout = Duration::from_secs(10);
///
/// let mut settings = BackendSettings::defaults();
/// settings.remotes.push(remote);
/// let backend = switchyard_server::Backend::from_settings(settings);
/// # drop(backend);
/// ```
///
/// A struct literal does not compile:
///
/// ```compile_fail
/// use std::time::Duration;
/// use switchyard_protocol::RuntimeId;
/// use switchyard_server::config::RemoteSettings;
/// use switchyard_transport::SecretToken;
///
/// let remote = RemoteSettings {
///     runtime_id: RuntimeId::new("build-1").unwrap(),
///     display_name: "Build farm 1".into(),
///     base_url: "http://127.0.0.1:7701".into(),
///     token: SecretToken::new("runtime-secret").unwrap(),
///     connect_timeout: Duration::from_secs(2),
///     request_timeout: Duration::from_secs(5),
///     stream_idle_timeout: Duration::from_secs(30),
///     tls: None,
///     insecure_http: false,
/// };
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteSettings {
    /// Its id within this backend.
    pub runtime_id: RuntimeId,
    /// A name for people.
    pub display_name: String,
    /// `http(s)://host:port[/prefix]`, without a trailing slash.
    pub base_url: String,
    /// The bearer token the backend presents.
    pub token: SecretToken,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for one request.
    pub request_timeout: Duration,
    /// How long an open event stream from this runtime may stay silent (the
    /// backend pings it after a third of that) before it counts as lost.
    pub stream_idle_timeout: Duration,
    /// TLS for an `https` base URL: trust anchors, client certificate, name.
    pub tls: Option<ClientTls>,
    /// Plain HTTP to a host that is not loopback, allowed by `insecure_http = true`
    /// (start-up warns about it every time).
    pub insecure_http: bool,
}

impl RemoteSettings {
    /// The runtime `runtime_id` at `base_url` (`http(s)://host:port[/prefix]`),
    /// reached with `token`, and the rest as a `[[remote]]` table without those keys
    /// has it: its id for a display name, the default timeouts
    /// ([`DEFAULT_CONNECT_TIMEOUT`], [`DEFAULT_REQUEST_TIMEOUT`],
    /// [`DEFAULT_STREAM_IDLE_TIMEOUT`]), and no TLS: an `https` URL needs
    /// [`RemoteSettings::tls`] set, such as
    /// [`ClientTls::with_system_roots`]`(None, None)` (what a table without
    /// `ca_file` trusts), else start-up refuses it.
    ///
    /// [`RemoteSettings::insecure_http`] is set when `base_url` is plain `http` to a
    /// host that is not loopback, so that start-up warns about it as it does for a
    /// file's `insecure_http = true` (code is not refused: the file's rule is the
    /// operator's to keep). The URL itself is checked at start-up
    /// ([`crate::StartError::Remote`]).
    pub fn new(runtime_id: RuntimeId, base_url: impl Into<String>, token: SecretToken) -> Self {
        let base_url = base_url.into();
        let insecure_http = !base_url.starts_with("https://") && !is_loopback_url(&base_url);
        Self {
            display_name: runtime_id.to_string(),
            runtime_id,
            base_url,
            token,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            stream_idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT,
            tls: None,
            insecure_http,
        }
    }

    /// True when `other` reaches the same runtime in every respect: id, name, URL,
    /// token, timeouts and TLS material (certificate and key files compared by their
    /// contents, so rotated files count as a change). A reload replaces a remote
    /// whose settings are not the same.
    pub fn same_as(&self, other: &Self) -> bool {
        // Every field, so that a new one cannot be forgotten here.
        let Self {
            runtime_id,
            display_name,
            base_url,
            token,
            connect_timeout,
            request_timeout,
            tls,
            insecure_http,
            stream_idle_timeout,
        } = self;
        *runtime_id == other.runtime_id
            && *display_name == other.display_name
            && *base_url == other.base_url
            && token.matches(other.token.expose())
            && *connect_timeout == other.connect_timeout
            && *request_timeout == other.request_timeout
            && *tls == other.tls
            && *insecure_http == other.insecure_http
            && *stream_idle_timeout == other.stream_idle_timeout
    }
}

impl BackendSettings {
    /// The settings with no config file: one embedded in-memory runtime `local` with
    /// only the `echo` profile, no remotes.
    pub fn defaults() -> Self {
        let id = RuntimeId::new(DEFAULT_RUNTIME_ID).expect("default id is valid");
        Self {
            listen: DEFAULT_BACKEND_LISTEN,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            auth: AuthSettings::Off,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            embedded: Some(EmbeddedSettings {
                runtime: RuntimeConfig::new(id, DEFAULT_EMBEDDED_DISPLAY_NAME),
                data_dir: None,
            }),
            remotes: Vec::new(),
            health_interval: DEFAULT_HEALTH_INTERVAL,
            drain: DEFAULT_DRAIN,
            viewer_queue: DEFAULT_VIEWER_QUEUE,
            event_backlog: DEFAULT_EVENT_BACKLOG,
            tls: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            metrics_listen: None,
            connection_threads: default_connection_threads(),
        }
    }
}

/// Builds the backend's settings from `--config` (if any), the flags, and the
/// environment (read through `env`, for remotes' `token_env`). Token files and
/// relative paths in the file resolve against its directory. TLS files (`[tls]`,
/// `--tls-*`, remotes' `ca_file` and client certificates) are read and checked here.
pub fn load_backend_settings(
    args: &ServeArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BackendSettings, ConfigError> {
    let flags_tls = |table| ListenerTlsInput {
        table,
        cert_flag: args.tls_cert.as_deref(),
        key_flag: args.tls_key.as_deref(),
        client_ca_flag: args.tls_client_ca.as_deref(),
    };
    let Some(path) = &args.config else {
        let mut settings = BackendSettings::defaults();
        settings.listen = args.listen.unwrap_or(DEFAULT_BACKEND_LISTEN);
        check_open_listen(
            &settings.auth,
            settings.listen,
            Origin::CommandLine,
            "--listen",
        )?;
        settings.tls = listener_tls(flags_tls(None))?;
        return Ok(settings);
    };
    let (file, ctx): (BackendFile, _) = read_file(path)?;
    let fo = ctx.origin();

    // The file's value is checked even when the flag overrides it: a typo in the
    // file must not wait for the day the flag is left out.
    if let Some(addr) = &file.listen {
        values::listen(&fo, "listen", addr)?;
    }
    let (listen, listen_origin, listen_key) = match (args.listen, &file.listen) {
        (Some(addr), _) => (addr, Origin::CommandLine, "--listen"),
        (None, Some(addr)) => (values::listen(&fo, "listen", addr)?, fo.clone(), "listen"),
        (None, None) => (DEFAULT_BACKEND_LISTEN, Origin::CommandLine, "--listen"),
    };
    let auth = auth::build(&ctx, file.auth)?;
    check_open_listen(&auth, listen, listen_origin, listen_key)?;
    let mut allowed_hosts: Vec<String> = Vec::new();
    for (i, value) in file.allowed_hosts.unwrap_or_default().iter().enumerate() {
        let host = urls::host(value).map_err(|problem| ConfigError::InvalidValue {
            origin: fo.clone(),
            key: format!("allowed_hosts[{i}]"),
            problem: problem.to_owned(),
        })?;
        if !allowed_hosts.contains(&host) {
            allowed_hosts.push(host);
        }
    }
    let mut allowed_origins: Vec<String> = Vec::new();
    for (i, value) in file.allowed_origins.unwrap_or_default().iter().enumerate() {
        let origin = urls::origin(value).map_err(|problem| ConfigError::InvalidValue {
            origin: fo.clone(),
            key: format!("allowed_origins[{i}]"),
            problem: problem.to_owned(),
        })?;
        if !allowed_origins.contains(&origin) {
            allowed_origins.push(origin);
        }
    }
    let max_body_bytes = values::bytes_up_to(
        &fo,
        "max_body_bytes",
        file.max_body_bytes,
        DEFAULT_MAX_BODY_BYTES,
        values::MAX_BODY_BYTES,
    )?;
    // At least 100 ms: every probe is a call to every remote.
    let health_interval = values::millis_from(
        &fo,
        "health_interval_ms",
        file.health_interval_ms,
        DEFAULT_HEALTH_INTERVAL,
        100,
    )?;
    // Zero is allowed: shut down at once, as without the key.
    let drain = values::millis_from(&fo, "drain_ms", file.drain_ms, DEFAULT_DRAIN, 0)?;

    let viewer_queue =
        values::positive(&fo, "viewer_queue", file.viewer_queue, DEFAULT_VIEWER_QUEUE)?;
    let event_backlog = values::positive(
        &fo,
        "event_backlog",
        file.event_backlog,
        DEFAULT_EVENT_BACKLOG,
    )?;

    let max_connections = values::positive(
        &fo,
        "max_connections",
        file.max_connections,
        DEFAULT_MAX_CONNECTIONS as u32,
    )? as usize;
    let metrics_listen = match &file.metrics_listen {
        Some(addr) => {
            let addr = values::listen(&fo, "metrics_listen", addr)?;
            if addr == listen && addr.port() != 0 {
                return Err(ConfigError::InvalidValue {
                    origin: fo.clone(),
                    key: "metrics_listen".to_owned(),
                    problem: format!("{addr} is also `listen`; give the metrics their own port"),
                });
            }
            Some(addr)
        }
        None => None,
    };

    let mut seen: Vec<(RuntimeId, String)> = Vec::new();
    let embedded = match file.embedded {
        Some(raw) => {
            let embedded = embedded(&ctx, raw)?;
            seen.push((
                embedded.runtime.runtime_id.clone(),
                "embedded.runtime_id".to_owned(),
            ));
            Some(embedded)
        }
        None => None,
    };
    let mut remotes = Vec::with_capacity(file.remote.len());
    for (i, raw) in file.remote.into_iter().enumerate() {
        remotes.push(remote(&ctx, i, raw, &mut seen, env)?);
    }
    let tls = listener_tls(flags_tls(file.tls.as_ref().map(|t| (t, &ctx))))?;
    if embedded.is_none() && remotes.is_empty() {
        // Not an error (the contract lists none such): a backend may start empty.
        tracing::warn!("the configuration has no runtimes: no [embedded] table and no [[remote]]");
    }

    Ok(BackendSettings {
        listen,
        allowed_origins,
        allowed_hosts,
        auth,
        max_body_bytes,
        embedded,
        remotes,
        health_interval,
        drain,
        viewer_queue,
        event_backlog,
        tls,
        max_connections,
        metrics_listen,
        connection_threads: default_connection_threads(),
    })
}

/// Without `[auth]` the backend serves everyone as admin, so only on loopback.
fn check_open_listen(
    auth: &AuthSettings,
    listen: SocketAddr,
    origin: Origin,
    key: &str,
) -> Result<(), ConfigError> {
    if matches!(auth, AuthSettings::Off) && !listen.ip().is_loopback() {
        return Err(ConfigError::OpenListen {
            origin,
            key: key.to_owned(),
            listen,
        });
    }
    Ok(())
}

fn embedded(ctx: &FileContext, raw: EmbeddedFile) -> Result<EmbeddedSettings, ConfigError> {
    let fo = ctx.origin();
    let runtime_id = values::runtime_id(
        &fo,
        "embedded.runtime_id",
        raw.runtime_id.as_deref().unwrap_or(DEFAULT_RUNTIME_ID),
    )?;
    let display_name = match &raw.display_name {
        Some(name) => values::display_name(&fo, "embedded.display_name", name)?,
        None => DEFAULT_EMBEDDED_DISPLAY_NAME.to_owned(),
    };
    let limits = values::limits(&fo, "embedded.", &raw.limits())?;
    let mut runtime = RuntimeConfig::new(runtime_id, display_name);
    runtime.limits = limits;
    runtime.profiles = profiles::build(ctx, "embedded.profiles.", raw.profiles)?;
    Ok(EmbeddedSettings {
        runtime,
        data_dir: raw.data_dir.map(|dir| ctx.resolve(&dir)),
    })
}

fn remote(
    ctx: &FileContext,
    index: usize,
    raw: RemoteFile,
    seen: &mut Vec<(RuntimeId, String)>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RemoteSettings, ConfigError> {
    let fo = ctx.origin();
    let table = format!("remote[{index}]");
    let key = |name: &str| format!("{table}.{name}");

    let runtime_id = values::runtime_id(&fo, &key("runtime_id"), &raw.runtime_id)?;
    if let Some((_, first)) = seen.iter().find(|(id, _)| *id == runtime_id) {
        return Err(ConfigError::DuplicateRuntimeId {
            origin: fo,
            key: key("runtime_id"),
            id: runtime_id.to_string(),
            first: first.clone(),
        });
    }
    seen.push((runtime_id.clone(), key("runtime_id")));

    let display_name = match &raw.display_name {
        Some(name) => values::display_name(&fo, &key("display_name"), name)?,
        None => runtime_id.to_string(),
    };
    let base_url = urls::base_url(&raw.base_url).map_err(|problem| ConfigError::InvalidValue {
        origin: fo.clone(),
        key: key("base_url"),
        problem: problem.to_owned(),
    })?;
    let token = match (&raw.token_env, &raw.token_file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Conflict {
                origin: fo,
                key: key("token_env"),
                other: key("token_file"),
            });
        }
        (None, None) => {
            return Err(ConfigError::MissingToken {
                origin: fo,
                key: table,
            });
        }
        (Some(var), None) => token::from_env(&fo, &key("token_env"), var, env)?,
        (None, Some(path)) => token::from_file(&fo, &key("token_file"), &ctx.resolve(path))?,
    };
    let connect_timeout = values::millis(
        &fo,
        &key("connect_timeout_ms"),
        raw.connect_timeout_ms,
        DEFAULT_CONNECT_TIMEOUT,
    )?;
    let request_timeout = values::millis(
        &fo,
        &key("request_timeout_ms"),
        raw.request_timeout_ms,
        DEFAULT_REQUEST_TIMEOUT,
    )?;
    let stream_idle_timeout = values::millis(
        &fo,
        &key("stream_idle_timeout_ms"),
        raw.stream_idle_timeout_ms,
        DEFAULT_STREAM_IDLE_TIMEOUT,
    )?;
    let tls = remote_tls(ctx, &table, &base_url, &raw)?;
    let insecure_http = tls.is_none() && !is_loopback_url(&base_url);
    Ok(RemoteSettings {
        runtime_id,
        display_name,
        base_url,
        token,
        connect_timeout,
        request_timeout,
        stream_idle_timeout,
        tls,
        insecure_http,
    })
}
