//! `switchyard runtime`: a standalone worker runtime serving the Runtime API.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use switchyard_runtime::{FsStore, MemoryStore, Runtime, Store};
use tokio::net::TcpListener;

use crate::StartError;
use crate::config::{RuntimeArgs, RuntimeSettings, ServerTlsFiles, load_runtime_settings};
use crate::http::auth::BearerTokens;
use crate::http::body::BodyLimit;
use crate::http::ws::SessionSettings;
use crate::http::{
    ConnectionLimit, HttpMetrics, ServeOptions, ServerHandle, ServerTls, Shutdown, serve_with,
};
use crate::metrics::{ListenerParts, Metrics};
use crate::reload::metrics::ReloadMetrics;
use crate::reload::runtime::{RuntimeConfigSource, RuntimeReloadTargets, RuntimeReloader};
use crate::runtime_api::{RuntimeApi, RuntimeApiSettings};
use crate::runtime_server::{RuntimeParts, RuntimeServer};

/// How long connections and WebSocket sessions get to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Runs the subcommand; returns the exit status.
pub async fn run(args: RuntimeArgs) -> u8 {
    let settings = match load_runtime_settings(&args, &|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("switchyard runtime: {error}");
            return 2;
        }
    };
    super::reaper::start();
    let running = match RuntimeServer::from_settings(settings).start().await {
        Ok(running) => running,
        Err(error) => {
            eprintln!("switchyard runtime: {}: {error}", error.code());
            return error.exit_code();
        }
    };
    let signals = super::signals::install();
    // SIGHUP reads the same flags and file again (without --config: the token file
    // and TLS files the flags name). Installed before `listening on`, so that a
    // SIGHUP is never the default action, which would end the process.
    let reloader = Arc::new(running.reloader(RuntimeConfigSource::process(args)));
    let reloads = super::signals::on_runtime_hangup(reloader);
    println!("listening on {}", running.server.url());
    let _ = std::io::stdout().flush();
    signals.terminated().await;
    if let Some(reloads) = reloads {
        reloads.abort();
    }
    running.shutdown().await;
    0
}

/// A runtime serving the Runtime API.
pub struct RunningRuntime {
    /// The runtime.
    pub runtime: Runtime,
    /// The HTTP server.
    pub server: ServerHandle,
    /// The TLS files it started serving with (a reload reads the files its
    /// configuration names then).
    pub tls_files: Option<ServerTlsFiles>,
    /// What a reload changes besides the runtime and the listener.
    pub(crate) reload: ReloadParts,
}

/// The shared cells a reload replaces, and the settings the runtime started with.
pub(crate) struct ReloadParts {
    pub(crate) tokens: BearerTokens,
    pub(crate) max_body_bytes: BodyLimit,
    pub(crate) started: RuntimeSettings,
    /// Served at `/v1/metrics`; counted by the reloader.
    pub(crate) metrics: ReloadMetrics,
}

impl std::fmt::Debug for RunningRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningRuntime")
            .field("url", &self.server.url())
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

impl RunningRuntime {
    /// Where it serves: `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// A reloader that reads `source` again on each [`RuntimeReloader::reload`] and
    /// applies it to this server: tokens, profiles and limits for what starts from
    /// then on, the TLS files (see [`crate::reload::runtime`]). The profiles come
    /// from the file alone: a program that added profiles in code
    /// ([`crate::RuntimeServerBuilder::profile`]) changes them with
    /// [`Runtime::reconfigure`] instead. Make one and keep it: a reloader compares
    /// each new configuration with the last one it applied itself.
    pub fn reloader(&self, source: RuntimeConfigSource) -> RuntimeReloader {
        let mut running = self.reload.started.clone();
        // The profiles and limits in force (`echo` included), not as given.
        running.runtime = (*self.runtime.config()).clone();
        RuntimeReloader::new(
            source,
            RuntimeReloadTargets {
                runtime: self.runtime.clone(),
                tokens: self.reload.tokens.clone(),
                max_body_bytes: self.reload.max_body_bytes.clone(),
                limit: self.server.connections().clone(),
                tls: self.server.tls().cloned(),
            },
            running,
        )
        .with_metrics(self.reload.metrics.clone())
    }

    /// Stops accepting, closes WebSockets with 1001, stops every worker and flushes
    /// the store.
    pub async fn shutdown(self) {
        self.server.shutdown_signal().trigger();
        if let Err(error) = self.runtime.shutdown().await {
            tracing::error!(%error, "could not flush the store on shutdown");
        }
        self.server.shutdown(SHUTDOWN_GRACE).await;
        tracing::info!("runtime stopped");
    }
}

/// Starts a runtime server from its settings alone, as `switchyard runtime` does; the
/// same as `RuntimeServer::from_settings(settings).start()` (see [`RuntimeServer`]).
pub async fn start(settings: RuntimeSettings) -> Result<RunningRuntime, StartError> {
    RuntimeServer::from_settings(settings).start().await
}

/// Opens the store, loads the runtime and starts serving: what
/// [`crate::RuntimeServerBuilder::start`] does once its parts are gathered.
pub(crate) async fn start_with(parts: RuntimeParts) -> Result<RunningRuntime, StartError> {
    let RuntimeParts { settings, listener } = parts;
    if settings.tokens.is_empty() && !settings.listen.ip().is_loopback() {
        // The configuration layer refuses this; settings built in code must not get
        // around it.
        return Err(StartError::OpenListen {
            addr: settings.listen,
        });
    }
    crate::config::weak_listen_token(
        &settings.tokens,
        settings.listen,
        crate::config::Origin::Code,
        "tokens",
    )?;
    let store: Arc<dyn Store> = match &settings.data_dir {
        Some(dir) => Arc::new(
            FsStore::open(dir.clone())
                .await
                .map_err(StartError::open_store)?,
        ),
        None => Arc::new(MemoryStore::new()),
    };
    let started = settings.clone();
    let max_body_bytes = BodyLimit::new(settings.runtime.limits.max_body_bytes);
    let tokens = BearerTokens::new(settings.tokens);
    let runtime = Runtime::open(settings.runtime, store)
        .await
        .map_err(StartError::LoadStore)?;
    let listener = match listener {
        Some(listener) => listener,
        None => TcpListener::bind(settings.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: settings.listen,
                source,
            })?,
    };
    let shutdown = Shutdown::new();
    let listener_parts = ListenerParts {
        limit: ConnectionLimit::new(crate::open_files::fit_connections(settings.max_connections)),
        shutdown: shutdown.clone(),
        http: HttpMetrics::default(),
    };
    let reload_metrics = ReloadMetrics::default();
    let metrics =
        Arc::new(Metrics::runtime(&runtime, &listener_parts).with_reload(&reload_metrics));
    let api = RuntimeApi::new(
        runtime.clone(),
        RuntimeApiSettings {
            tokens: tokens.clone(),
            max_body_bytes: max_body_bytes.clone(),
            session: SessionSettings::default(),
        },
    )
    .with_metrics(metrics);
    let tls_files = settings.tls.as_ref().map(|tls| tls.files.clone());
    let tls = settings.tls.map(|tls| ServerTls::new(tls.config));
    if tls.is_none() && !settings.listen.ip().is_loopback() {
        tracing::warn!(
            "serving plain HTTP beyond loopback: the token and all traffic cross the network in clear; configure [tls]"
        );
    }
    let server = serve_with(
        listener,
        Arc::new(api),
        shutdown,
        ServeOptions {
            tls,
            limit: listener_parts.limit,
            metrics: listener_parts.http,
            // The backend pipelines its requests: answer them together.
            coalesce_writes: true,
            ..ServeOptions::default()
        },
    );
    tracing::info!(
        url = %server.url(),
        runtime_id = %runtime.runtime_id(),
        epoch = %runtime.epoch(),
        mtls = tls_files.as_ref().is_some_and(|f| f.client_ca.is_some()),
        "runtime listening"
    );
    Ok(RunningRuntime {
        runtime,
        server,
        tls_files,
        reload: ReloadParts {
            tokens,
            max_body_bytes,
            started,
            metrics: reload_metrics,
        },
    })
}
