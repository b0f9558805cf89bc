//! `switchyard serve`: the backend, with its embedded runtime (if configured) and
//! its remote runtimes in one registry behind the backend API.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use switchyard_registry::{
    AllowAll, EmbeddedSource, HubSettings, ObservationHub, Policy, RegisteredRuntime, RemoteSource,
    RolePolicy, RuntimeRegistry, RuntimeSource, Scrubber,
};
use switchyard_runtime::{FsStore, MemoryStore, Runtime, Store};
use switchyard_transport::{HttpRuntimeClient, RemoteEndpoint, TransportError, WsEventsClient};
use tokio::net::TcpListener;

use crate::StartError;
use crate::auth::signed_out::MAX_PER_TOKEN;
use crate::auth::{Authenticator, JournalError, SessionCodec, SessionKey, SignOutJournal};
use crate::backend::{Backend, BackendParts};
use crate::backend_api::{
    AllowedHosts, AllowedOrigins, BackendApi, BackendApiSettings, BodyLimit, DrainPeriod, Readiness,
};
use crate::config::{
    AuthSettings, BackendSettings, EmbeddedSettings, RemoteSettings, ServeArgs, TokenAuthSettings,
    load_backend_settings,
};
use crate::http::ws::SessionSettings;
use crate::http::{
    ConnectionLimit, HttpMetrics, ServeOptions, ServerHandle, ServerTls, Shutdown, serve_with,
};
use crate::metrics::{
    ListenerParts, METRICS_LISTEN_MAX_CONNECTIONS, METRICS_PATH, Metrics, MetricsOnly,
};
use crate::reload::{ConfigSource, ReloadTargets, Reloader};

/// How long WebSocket sessions get to close on shutdown, and connections to finish
/// their requests at least: those get as long as a call to a runtime may take
/// ([`RuntimeRegistry::longest_call`]).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often a backend with a sign-out file reads what other backends sharing it
/// signed out: the longest a copy of a cookie signed out elsewhere is still served.
pub const FOLLOW_SIGN_OUTS: Duration = Duration::from_secs(1);

/// Runs the subcommand; returns the exit status.
pub async fn run(args: ServeArgs) -> u8 {
    let settings = match load_backend_settings(&args, &|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("switchyard serve: {error}");
            return 2;
        }
    };
    // Even without an embedded runtime now: a reload may add one.
    super::reaper::start();
    let running = match Backend::from_settings(settings)
        .reload_from(ConfigSource::process(args))
        .start()
        .await
    {
        Ok(running) => running,
        Err(error) => {
            eprintln!("switchyard serve: {}: {error}", error.code());
            return error.exit_code();
        }
    };
    let signals = super::signals::install();
    // Installed before `listening on`: SIGHUP's default action ends the process.
    let reloads = super::signals::on_hangup(running.reloader.clone());
    println!("listening on {}", running.server.url());
    if let Some(metrics) = &running.metrics_server {
        println!("metrics on {}{METRICS_PATH}", metrics.url());
    }
    let _ = std::io::stdout().flush();
    signals.terminated().await;
    running.drain().await;
    if let Some(reloads) = reloads {
        reloads.abort();
    }
    running.shutdown().await;
    0
}

/// A backend serving the backend API, from [`crate::BackendBuilder::start`].
///
/// Its parts are public to read and use; parts may be added, so it cannot be
/// destructured in full:
///
/// ```compile_fail
/// # async fn f(running: switchyard_server::RunningBackend) {
/// let switchyard_server::RunningBackend {
///     registry, hub, embedded, server, metrics_server, metrics, reloader, readiness,
///     drain, sources,
/// } = running;
/// # }
/// ```
#[non_exhaustive]
pub struct RunningBackend {
    /// The registry.
    pub registry: Arc<RuntimeRegistry>,
    /// The observation hub.
    pub hub: ObservationHub,
    /// The embedded runtime it started with, if configured (a reload may add or
    /// remove one: [`Reloader::embedded`] has the current one).
    pub embedded: Option<Runtime>,
    /// The HTTP server.
    pub server: ServerHandle,
    /// The `metrics_listen` listener, when configured.
    pub metrics_server: Option<ServerHandle>,
    /// What `/metrics` serves.
    pub metrics: Arc<Metrics>,
    /// Applies configuration reloads (SIGHUP, `POST /api/admin/reload`).
    pub reloader: Arc<Reloader>,
    /// What `GET /readyz` answers; draining from [`RunningBackend::drain`] on.
    pub readiness: Readiness,
    /// How long [`RunningBackend::drain`] keeps serving (`drain_ms`): the period in
    /// force when the drain starts (a reload changes it).
    pub drain: DrainPeriod,
    /// The runtime sources added in code ([`crate::BackendBuilder::runtime`]), shut
    /// down with the backend.
    pub sources: Vec<Arc<dyn RuntimeSource>>,
}

impl std::fmt::Debug for RunningBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningBackend")
            .field("url", &self.server.url())
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl RunningBackend {
    /// Where it serves: `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// Starts draining: `GET /readyz` answers 503 from now on, while everything else
    /// is served as before for the drain period in force now (so that a load balancer
    /// checking `/readyz` stops sending new requests here before they would fail).
    pub async fn drain(&self) {
        self.readiness.start_draining();
        let period = self.drain.current();
        if !period.is_zero() {
            tracing::info!(
                drain_ms = period.as_millis() as u64,
                "draining: /readyz answers 503; serving until the drain period ends"
            );
            tokio::time::sleep(period).await;
        }
    }

    /// Stops accepting, closes WebSockets with 1001, stops the embedded runtime's
    /// workers and flushes its store, and shuts down the sources added in code.
    /// Requests in flight are answered: they get as long as a call to a runtime
    /// may take (a remote's connect and request timeouts), at least 5 s. Sign-outs
    /// the sign-out file could not take yet get one last try. Remote runtimes keep
    /// running.
    pub async fn shutdown(self) {
        // A request waiting on a runtime ends at its call's timeout at the latest
        // (`504 runtime_timeout`); cut before, its client would get no answer.
        let grace = self
            .registry
            .longest_call()
            .map_or(SHUTDOWN_GRACE, |call| call.max(SHUTDOWN_GRACE));
        self.readiness.start_draining();
        self.server.shutdown_signal().trigger();
        if let Some(runtime) = self.reloader.embedded().await
            && let Err(error) = runtime.shutdown().await
        {
            tracing::error!(%error, "could not flush the embedded store on shutdown");
        }
        for source in &self.sources {
            source.shutdown().await;
        }
        if let Some(metrics) = self.metrics_server {
            metrics.shutdown(SHUTDOWN_GRACE).await;
        }
        self.server.shutdown_within(grace, SHUTDOWN_GRACE).await;
        // Sign-outs the sign-out file could not take yet would end with the process.
        self.reloader.authenticator().record_before_exit().await;
        tracing::info!("backend stopped");
    }
}

/// Starts a backend from its settings alone; the same as
/// `Backend::from_settings(settings).start()` (see [`Backend`] for more). A reload
/// has no configuration to read again ([`crate::BackendBuilder::reload_from`]).
pub async fn start(settings: BackendSettings) -> Result<RunningBackend, StartError> {
    Backend::from_settings(settings).start().await
}

/// Builds the registry, starts serving and starts the health probes: what
/// [`crate::BackendBuilder::start`] does once its parts are gathered.
pub(crate) async fn start_with(parts: BackendParts) -> Result<RunningBackend, StartError> {
    let BackendParts {
        settings,
        runtimes: added,
        policy: choose_policy,
        listener,
        config_source: source,
        set_in_code,
    } = parts;
    let running_settings = settings.clone();
    let session_key = SessionKey::random().map_err(StartError::RandomSource)?;
    let (auth, policy) = authentication(&settings, &session_key)?;
    let policy = choose_policy.choose(policy);
    let auth = Arc::new(auth);
    keep_sign_outs(&settings.auth, &auth).await?;
    let pinned: Vec<_> = added.iter().map(|r| r.runtime_id.clone()).collect();
    let sources = added.iter().map(|r| r.source.clone()).collect();
    let mut runtimes = Vec::new();
    let mut embedded = None;
    if let Some(settings) = settings.embedded {
        let (runtime, registered) = embedded_runtime(settings).await?;
        embedded = Some(runtime);
        runtimes.push(registered);
    }
    for remote in settings.remotes {
        runtimes.push(remote_runtime(remote)?);
    }
    runtimes.extend(added);
    let registry = Arc::new(RuntimeRegistry::new(runtimes, policy)?);
    let listener = match listener {
        Some(listener) => listener,
        None => TcpListener::bind(settings.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: settings.listen,
                source,
            })?,
    };
    let mut hub_settings = HubSettings::default();
    hub_settings.viewer_queue = settings.viewer_queue as usize;
    hub_settings.backlog = settings.event_backlog as usize;
    let hub = ObservationHub::new(registry.clone(), hub_settings);
    let allowed_hosts = AllowedHosts::new(&settings.allowed_hosts, listener_addr(&listener));
    let allowed_origins = AllowedOrigins::new(settings.allowed_origins.clone());
    // The metrics listener answers to the same names (its own address aside), and a
    // reload changes them for both.
    let metrics_listener = match settings.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Listen { addr, source })?,
        ),
        None => None,
    };
    let metrics_hosts = metrics_listener
        .as_ref()
        .map(|l| AllowedHosts::new(&settings.allowed_hosts, listener_addr(l)));
    if settings.listen.ip().is_unspecified() && settings.allowed_hosts.is_empty() {
        tracing::warn!(
            "listening on all addresses, but only Host names localhost, 127.0.0.1 and [::1] are answered; list the names clients use in allowed_hosts"
        );
    }
    let shutdown = Shutdown::new();
    // Other backends' sign-outs, read from the sign-out file until shutdown.
    tokio::spawn({
        let (stop, auth) = (shutdown.clone(), Arc::downgrade(&auth));
        async move {
            tokio::select! {
                () = stop.triggered() => {}
                () = Authenticator::follow_journal(auth, FOLLOW_SIGN_OUTS) => {}
            }
        }
    });
    let listener_parts = ListenerParts {
        limit: ConnectionLimit::new(crate::open_files::fit_connections(settings.max_connections)),
        shutdown: shutdown.clone(),
        http: HttpMetrics::default(),
    };
    let tls = settings
        .tls
        .as_ref()
        .map(|tls| ServerTls::new(tls.config.clone()));
    let max_body_bytes = BodyLimit::new(settings.max_body_bytes);
    let drain = DrainPeriod::new(settings.drain);
    let reloader = Arc::new(
        Reloader::new(
            source,
            ReloadTargets {
                registry: registry.clone(),
                hub: hub.clone(),
                auth: auth.clone(),
                tls: tls.clone(),
                hosts: std::iter::once(allowed_hosts.clone())
                    .chain(metrics_hosts.clone())
                    .collect(),
                origins: allowed_origins.clone(),
                max_body_bytes: max_body_bytes.clone(),
                limit: listener_parts.limit.clone(),
                drain: drain.clone(),
            },
            running_settings,
            embedded.clone(),
            session_key,
        )
        .keeping_from_code(pinned, choose_policy, set_in_code),
    );
    let api = BackendApi::new(
        registry.clone(),
        hub.clone(),
        auth.clone(),
        BackendApiSettings {
            max_body_bytes,
            allowed_origins,
            allowed_hosts,
            // A cookie marked `Secure` is sent back over HTTPS only: right when the
            // backend serves HTTPS, and it would never come back over plain HTTP.
            secure_cookies: settings.tls.is_some(),
            session: SessionSettings::default(),
        },
    )
    .with_reloader(reloader.clone());
    let readiness = api.readiness().clone();
    let mut metrics = Metrics::backend(&registry, &hub, &listener_parts);
    readiness.register_metrics(metrics.registry_mut());
    reloader.register_metrics(metrics.registry_mut());
    auth.register_metrics(metrics.registry_mut());
    let metrics = Arc::new(metrics);
    let api = api.with_metrics(metrics.clone());
    let metrics_server = match (metrics_listener, metrics_hosts) {
        (Some(listener), Some(hosts)) => {
            Some(serve_metrics(listener, hosts, &metrics, &listener_parts))
        }
        _ => None,
    };
    let server = serve_with(
        listener,
        Arc::new(api),
        shutdown,
        ServeOptions {
            tls,
            limit: listener_parts.limit,
            metrics: listener_parts.http,
            cores: settings.connection_threads,
            ..ServeOptions::default()
        },
    );
    tokio::spawn({
        let registry = registry.clone();
        async move { registry.refresh_all().await }
    });
    registry.start_health_probes(settings.health_interval);
    tracing::info!(url = %server.url(), "backend listening");
    Ok(RunningBackend {
        registry,
        hub,
        embedded,
        server,
        sources,
        metrics_server,
        metrics,
        reloader,
        readiness,
        drain,
    })
}

/// The `metrics_listen` listener: `GET /metrics` without authentication, plain HTTP,
/// for the same `Host` names as the main listener (a rebound page reads nothing).
fn serve_metrics(
    listener: TcpListener,
    hosts: AllowedHosts,
    metrics: &Arc<Metrics>,
    main: &ListenerParts,
) -> ServerHandle {
    let addr = listener_addr(&listener);
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "metrics_listen is not a loopback address: anyone who reaches it reads the metrics without credentials"
        );
    }
    let server = serve_with(
        listener,
        Arc::new(MetricsOnly::new(metrics.clone(), hosts)),
        main.shutdown.clone(),
        ServeOptions {
            tls: None,
            limit: ConnectionLimit::new(METRICS_LISTEN_MAX_CONNECTIONS),
            metrics: main.http.clone(),
            ..ServeOptions::default()
        },
    );
    tracing::info!(url = %server.url(), "metrics listening");
    server
}

/// The listener's address (the configured one when it cannot say).
fn listener_addr(listener: &TcpListener) -> std::net::SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Who the backend serves and the policy that matches: everyone as admin with
/// [`AllowAll`], or token holders under the [`RolePolicy`]. Sessions are signed with
/// `random_key` when `[auth]` names no key file.
fn authentication(
    settings: &BackendSettings,
    random_key: &SessionKey,
) -> Result<(Authenticator, Arc<dyn Policy>), StartError> {
    match &settings.auth {
        AuthSettings::Off => {
            if !settings.listen.ip().is_loopback() {
                // The configuration layer refuses this; a settings value built in code
                // must not get around it.
                return Err(StartError::OpenListen {
                    addr: settings.listen,
                });
            }
            Ok((Authenticator::open(), Arc::new(AllowAll)))
        }
        AuthSettings::Open => {
            tracing::warn!(
                "[auth] open = true: anyone who reaches {} is served as admin, without credentials",
                settings.listen
            );
            Ok((Authenticator::open(), Arc::new(AllowAll)))
        }
        AuthSettings::Tokens(tokens) => {
            if tokens.session_key.is_none() {
                tracing::info!(
                    "no auth.session_key_file: sessions are signed with a random key and end when the backend restarts"
                );
            }
            tracing::info!(tokens = tokens.tokens.len(), "client authentication is on");
            Ok((
                authenticator(&settings.auth, random_key),
                Arc::new(RolePolicy),
            ))
        }
    }
}

/// Opens the sign-out file `auth` names, if any: `to` signs out what it holds and
/// records its sign-outs in it from now on.
async fn keep_sign_outs(auth: &AuthSettings, to: &Arc<Authenticator>) -> Result<(), StartError> {
    let AuthSettings::Tokens(TokenAuthSettings {
        signed_out_file: Some(path),
        clock,
        ..
    }) = auth
    else {
        return Ok(());
    };
    let (file, now) = (path.clone(), clock.now());
    let (journal, entries) =
        tokio::task::spawn_blocking(move || SignOutJournal::open(&file, MAX_PER_TOKEN, now))
            .await
            .map_err(|_| {
                StartError::SignOutFile(JournalError::Io {
                    path: path.clone(),
                    source: std::io::Error::other("the task opening it stopped"),
                })
            })?
            .map_err(StartError::SignOutFile)?;
    tracing::info!(
        path = %journal.path().display(),
        signed_out = entries.len(),
        "sign-outs are kept in a file"
    );
    to.keep_sign_outs_in(Arc::new(journal), &entries);
    Ok(())
}

/// The authenticator of `auth`: open, or its tokens with sessions signed by its key
/// (`random_key` when it names none).
pub(crate) fn authenticator(auth: &AuthSettings, random_key: &SessionKey) -> Authenticator {
    match auth {
        AuthSettings::Off | AuthSettings::Open => Authenticator::open(),
        AuthSettings::Tokens(tokens) => {
            let key = tokens
                .session_key
                .clone()
                .unwrap_or_else(|| random_key.clone());
            let codec = SessionCodec::new(key, tokens.session_ttl, tokens.clock.clone());
            Authenticator::with_tokens(&tokens.tokens, codec)
        }
    }
}

/// Opens the embedded runtime's store and the runtime, registered as `embedded`.
pub(crate) async fn embedded_runtime(
    settings: EmbeddedSettings,
) -> Result<(Runtime, RegisteredRuntime), StartError> {
    let store: Arc<dyn Store> = match &settings.data_dir {
        Some(dir) => Arc::new(
            FsStore::open(dir.clone())
                .await
                .map_err(StartError::open_store)?,
        ),
        None => Arc::new(MemoryStore::new()),
    };
    let runtime_id = settings.runtime.runtime_id.clone();
    let display_name = settings.runtime.display_name.clone();
    let runtime = Runtime::open(settings.runtime, store)
        .await
        .map_err(StartError::LoadStore)?;
    let registered = RegisteredRuntime::new(
        runtime_id,
        display_name,
        Arc::new(EmbeddedSource::new(runtime.clone())),
    )
    .without_call_timeout();
    Ok((runtime, registered))
}

/// A remote runtime as the registry drives it: the transport's REST and WebSocket
/// clients behind a [`RemoteSource`] that scrubs the runtime's URL, host and token
/// from everything it says, with a backstop timeout on every call. To front
/// configured remotes with a source of your own (a pool, a cache), build them with
/// this and keep the [`RegisteredRuntime::source`].
pub fn remote_runtime(settings: RemoteSettings) -> Result<RegisteredRuntime, StartError> {
    if settings.insecure_http {
        tracing::warn!(
            runtime_id = %settings.runtime_id,
            "remote runtime reached over plain HTTP beyond loopback (insecure_http = true): its token and traffic cross the network in clear; use https://"
        );
    }
    let mut scrubber =
        Scrubber::new(addresses_of(&settings)).with_token(settings.token.expose().to_owned());
    for address in addresses_in_any_text(&settings) {
        scrubber = scrubber.with_secret(address);
    }
    if let Some(port) = port_of(&settings.base_url) {
        scrubber = scrubber.with_number(port);
    }
    let endpoint = RemoteEndpoint::new(
        settings.base_url,
        settings.token,
        settings.connect_timeout,
        settings.request_timeout,
    )
    .with_label(settings.runtime_id.as_str());
    let endpoint = match settings.tls {
        Some(tls) => endpoint.with_tls(tls),
        None => endpoint,
    };
    let remote_error = |source: TransportError| StartError::Remote {
        runtime_id: settings.runtime_id.clone(),
        source: Box::new(source),
    };
    let events = WsEventsClient::new(endpoint.clone())
        .map_err(&remote_error)?
        .with_idle_timeout(settings.stream_idle_timeout);
    let client = HttpRuntimeClient::new(endpoint).map_err(remote_error)?;
    Ok(RegisteredRuntime::new(
        settings.runtime_id,
        settings.display_name,
        Arc::new(RemoteSource::new(
            Arc::new(client),
            Arc::new(events),
            scrubber,
        )),
    )
    // The client enforces its own deadlines; this is only a backstop.
    .with_call_timeout(
        settings.connect_timeout + settings.request_timeout + Duration::from_secs(1),
    ))
}

/// The port of a base URL, explicit or implied by its scheme.
fn port_of(base_url: &str) -> Option<u16> {
    let uri = base_url.parse::<http::Uri>().ok()?;
    uri.port_u16().or(match uri.scheme_str() {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    })
}

/// What is redacted even from a worker's own output and input: the base URL and
/// the address with its port (`host:port`), which no worker needs to show a
/// browser. The host name alone is ordinary data there (`hostname` prints it, a
/// shell's prompt shows it), and so is a port number alone.
fn addresses_in_any_text(settings: &RemoteSettings) -> Vec<String> {
    let mut addresses = vec![settings.base_url.trim_end_matches('/').to_owned()];
    if let Ok(uri) = settings.base_url.parse::<http::Uri>()
        && let Some(authority) = uri.authority()
        && authority.port().is_some()
    {
        addresses.push(authority.to_string());
    }
    addresses
}

/// Where a remote is, which must never reach a client: its URL, authority, host,
/// and the name its certificate is verified for (its token goes to the scrubber
/// apart: see [`Scrubber::with_secret`]). Its own words (details, diagnostics,
/// notes, errors) are scrubbed of all of them.
fn addresses_of(settings: &RemoteSettings) -> Vec<String> {
    let mut secrets = vec![settings.base_url.clone()];
    if let Some(name) = settings
        .tls
        .as_ref()
        .and_then(|tls| tls.server_name_override())
    {
        secrets.push(name);
    }
    if let Ok(uri) = settings.base_url.parse::<http::Uri>()
        && let Some(authority) = uri.authority()
    {
        secrets.push(authority.to_string());
        secrets.push(authority.host().to_owned());
    }
    secrets
}
