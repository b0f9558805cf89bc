//! `switchyard serve`: the backend, with its embedded runtime (if configured) and
//! its remote runtimes in one registry behind the backend API.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use switchyard_registry::{
    AllowAll, EmbeddedSource, HubSettings, ObservationHub, Policy, RegisteredRuntime, RemoteSource,
    RolePolicy, RuntimeRegistry, Scrubber,
};
use switchyard_runtime::{FsStore, MemoryStore, Runtime, Store};
use switchyard_transport::{HttpRuntimeClient, RemoteEndpoint, WsEventsClient};
use tokio::net::TcpListener;

use crate::auth::{Authenticator, SessionCodec, SessionKey};
use crate::backend_api::{AllowedHosts, BackendApi, BackendApiSettings, Readiness};
use crate::config::{
    AuthSettings, BackendSettings, EmbeddedSettings, RemoteSettings, ServeArgs,
    load_backend_settings,
};
use crate::http::ws::SessionSettings;
use crate::http::{ServerHandle, ServerTls, Shutdown, serve_with_tls};

/// How long connections and WebSocket sessions get to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Runs the subcommand; returns the exit status.
pub async fn run(args: ServeArgs) -> u8 {
    let settings = match load_backend_settings(&args, &|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("switchyard serve: {error}");
            return 2;
        }
    };
    let running = match start(settings).await {
        Ok(running) => running,
        Err(message) => {
            eprintln!("switchyard serve: {message}");
            return 1;
        }
    };
    let signals = super::signals::install();
    println!("listening on {}", running.server.url());
    let _ = std::io::stdout().flush();
    signals.terminated().await;
    running.drain().await;
    running.shutdown().await;
    0
}

/// A backend serving the backend API.
pub struct RunningBackend {
    /// The registry.
    pub registry: Arc<RuntimeRegistry>,
    /// The observation hub.
    pub hub: ObservationHub,
    /// The embedded runtime, if configured.
    pub embedded: Option<Runtime>,
    /// The HTTP server.
    pub server: ServerHandle,
    /// What `GET /readyz` answers; draining from [`RunningBackend::drain`] on.
    pub readiness: Readiness,
    /// How long [`RunningBackend::drain`] keeps serving (`drain_ms`).
    pub drain: Duration,
}

impl RunningBackend {
    /// Starts draining: `GET /readyz` answers 503 from now on, while everything else
    /// is served as before for the configured drain period (so that a load balancer
    /// checking `/readyz` stops sending new requests here before they would fail).
    pub async fn drain(&self) {
        self.readiness.start_draining();
        if !self.drain.is_zero() {
            tracing::info!(
                drain_ms = self.drain.as_millis() as u64,
                "draining: /readyz answers 503; serving until the drain period ends"
            );
            tokio::time::sleep(self.drain).await;
        }
    }

    /// Stops accepting, closes WebSockets with 1001, stops the embedded runtime's
    /// workers and flushes its store. Remote runtimes keep running.
    pub async fn shutdown(self) {
        self.readiness.start_draining();
        self.server.shutdown_signal().trigger();
        if let Some(runtime) = &self.embedded
            && let Err(error) = runtime.shutdown().await
        {
            tracing::error!(%error, "could not flush the embedded store on shutdown");
        }
        self.server.shutdown(SHUTDOWN_GRACE).await;
        tracing::info!("backend stopped");
    }
}

/// Builds the registry, starts serving and starts the health probes. Errors are
/// messages for the operator's terminal.
pub async fn start(settings: BackendSettings) -> Result<RunningBackend, String> {
    let (auth, policy) = authentication(&settings)?;
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
    let registry = Arc::new(RuntimeRegistry::new(runtimes, policy).map_err(|e| e.to_string())?);
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("could not listen on {}: {e}", settings.listen))?;
    let hub = ObservationHub::new(
        registry.clone(),
        HubSettings {
            viewer_queue: settings.viewer_queue as usize,
            backlog: settings.event_backlog as usize,
            ..HubSettings::default()
        },
    );
    let allowed_hosts = AllowedHosts::new(&settings.allowed_hosts, listener_addr(&listener));
    if settings.listen.ip().is_unspecified() && settings.allowed_hosts.is_empty() {
        tracing::warn!(
            "listening on all addresses, but only Host names localhost, 127.0.0.1 and [::1] are answered; list the names clients use in allowed_hosts"
        );
    }
    let api = BackendApi::new(
        registry.clone(),
        hub.clone(),
        Arc::new(auth),
        BackendApiSettings {
            max_body_bytes: settings.max_body_bytes,
            allowed_origins: settings.allowed_origins.clone(),
            allowed_hosts,
            // A cookie marked `Secure` is sent back over HTTPS only: right when the
            // backend serves HTTPS, and it would never come back over plain HTTP.
            secure_cookies: settings.tls.is_some(),
            session: SessionSettings::default(),
        },
    );
    let readiness = api.readiness().clone();
    let tls = settings.tls.map(|tls| ServerTls::new(tls.config));
    let server = serve_with_tls(listener, Arc::new(api), Shutdown::new(), tls);
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
        readiness,
        drain: settings.drain,
    })
}

/// The listener's address (the configured one when it cannot say).
fn listener_addr(listener: &TcpListener) -> std::net::SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Who the backend serves and the policy that matches: everyone as admin with
/// [`AllowAll`], or token holders under the [`RolePolicy`].
fn authentication(settings: &BackendSettings) -> Result<(Authenticator, Arc<dyn Policy>), String> {
    match &settings.auth {
        AuthSettings::Off => {
            if !settings.listen.ip().is_loopback() {
                // The configuration layer refuses this; a settings value built in code
                // must not get around it.
                return Err(format!(
                    "refusing to serve {} without authentication: it is not a loopback address",
                    settings.listen
                ));
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
            let key = match &tokens.session_key {
                Some(key) => key.clone(),
                None => {
                    tracing::info!(
                        "no auth.session_key_file: sessions are signed with a random key and end when the backend restarts"
                    );
                    SessionKey::random()
                        .map_err(|e| format!("could not read the OS's random source: {e}"))?
                }
            };
            let codec = SessionCodec::new(key, tokens.session_ttl, tokens.clock.clone());
            tracing::info!(tokens = tokens.tokens.len(), "client authentication is on");
            Ok((
                Authenticator::with_tokens(&tokens.tokens, codec),
                Arc::new(RolePolicy),
            ))
        }
    }
}

async fn embedded_runtime(
    settings: EmbeddedSettings,
) -> Result<(Runtime, RegisteredRuntime), String> {
    let store: Arc<dyn Store> = match &settings.data_dir {
        Some(dir) => Arc::new(
            FsStore::open(dir.clone())
                .await
                .map_err(|e| format!("could not open the embedded data directory: {e}"))?,
        ),
        None => Arc::new(MemoryStore::new()),
    };
    let runtime_id = settings.runtime.runtime_id.clone();
    let display_name = settings.runtime.display_name.clone();
    let runtime = Runtime::open(settings.runtime, store)
        .await
        .map_err(|e| format!("could not load the embedded runtime's workers: {e}"))?;
    let registered = RegisteredRuntime {
        runtime_id,
        display_name,
        source: Arc::new(EmbeddedSource::new(runtime.clone())),
        call_timeout: None,
    };
    Ok((runtime, registered))
}

fn remote_runtime(settings: RemoteSettings) -> Result<RegisteredRuntime, String> {
    if settings.insecure_http {
        tracing::warn!(
            runtime_id = %settings.runtime_id,
            "remote runtime reached over plain HTTP beyond loopback (insecure_http = true): its token and traffic cross the network in clear; use https://"
        );
    }
    let mut scrubber = Scrubber::new(secrets_of(&settings));
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
    let events = WsEventsClient::new(endpoint.clone())
        .map_err(|e| format!("remote runtime {}: {e}", settings.runtime_id))?
        .with_idle_timeout(settings.stream_idle_timeout);
    let client = HttpRuntimeClient::new(endpoint)
        .map_err(|e| format!("remote runtime {}: {e}", settings.runtime_id))?;
    Ok(RegisteredRuntime {
        runtime_id: settings.runtime_id,
        display_name: settings.display_name,
        source: Arc::new(RemoteSource::new(
            Arc::new(client),
            Arc::new(events),
            scrubber,
        )),
        // The client enforces its own deadlines; this is only a backstop.
        call_timeout: Some(
            settings.connect_timeout + settings.request_timeout + Duration::from_secs(1),
        ),
    })
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

/// What must never reach a client about a remote: its URL, authority, host, the
/// name its certificate is verified for, and its token.
fn secrets_of(settings: &RemoteSettings) -> Vec<String> {
    let mut secrets = vec![
        settings.base_url.clone(),
        settings.token.expose().to_owned(),
    ];
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
