//! `switchyard runtime`: a standalone worker runtime serving the Runtime API.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use switchyard_runtime::{FsStore, MemoryStore, Runtime, Store};
use tokio::net::TcpListener;

use crate::config::{RuntimeArgs, RuntimeSettings, load_runtime_settings};
use crate::http::ws::SessionSettings;
use crate::http::{ServerHandle, Shutdown, serve};
use crate::runtime_api::{RuntimeApi, RuntimeApiSettings};

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
    let running = match start(settings).await {
        Ok(running) => running,
        Err(message) => {
            eprintln!("switchyard runtime: {message}");
            return 1;
        }
    };
    let signals = super::signals::install();
    println!("listening on http://{}", running.server.local_addr());
    let _ = std::io::stdout().flush();
    signals.terminated().await;
    running.shutdown().await;
    0
}

/// A runtime serving the Runtime API.
pub struct RunningRuntime {
    /// The runtime.
    pub runtime: Runtime,
    /// The HTTP server.
    pub server: ServerHandle,
}

impl RunningRuntime {
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

/// Opens the store, loads the runtime and starts serving. Errors are messages for
/// the operator's terminal.
pub async fn start(settings: RuntimeSettings) -> Result<RunningRuntime, String> {
    let store: Arc<dyn Store> = match &settings.data_dir {
        Some(dir) => Arc::new(
            FsStore::open(dir.clone())
                .await
                .map_err(|e| format!("could not open the data directory: {e}"))?,
        ),
        None => Arc::new(MemoryStore::new()),
    };
    let max_body_bytes = settings.runtime.limits.max_body_bytes;
    let runtime = Runtime::open(settings.runtime, store)
        .await
        .map_err(|e| format!("could not load the stored workers: {e}"))?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| format!("could not listen on {}: {e}", settings.listen))?;
    let api = RuntimeApi::new(
        runtime.clone(),
        RuntimeApiSettings {
            token: settings.token,
            max_body_bytes,
            session: SessionSettings::default(),
        },
    );
    let server = serve(listener, Arc::new(api), Shutdown::new());
    tracing::info!(
        addr = %server.local_addr(),
        runtime_id = %runtime.config().runtime_id,
        epoch = %runtime.epoch(),
        "runtime listening"
    );
    Ok(RunningRuntime { runtime, server })
}
