//! [`RuntimeServer`]: a standalone worker runtime serving the Runtime API, as a
//! library. `switchyard runtime` is this builder started from the command line's
//! settings; a program of your own can add profiles whose workers a custom
//! [`switchyard_runtime::Driver`] runs, and serve them to backends.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use switchyard_protocol::RuntimeId;
use switchyard_runtime::{Profile, RuntimeConfig};
use switchyard_transport::SecretToken;
use tokio::net::TcpListener;

use crate::StartError;
use crate::commands::runtime::{RunningRuntime, start_with};
use crate::config::{
    ConfigError, DEFAULT_RUNTIME_ID, RuntimeArgs, RuntimeSettings, ServerTlsSettings,
    load_runtime_settings,
};

/// A runtime server: one [`switchyard_runtime::Runtime`] behind the Runtime API
/// (`/v1`), for backends to reach as a remote runtime. Start with
/// [`RuntimeServer::builder`], [`RuntimeServer::from_settings`] or
/// [`RuntimeServer::from_config_file`].
///
/// ```
/// use switchyard_runtime::Profile;
/// use switchyard_server::RuntimeServer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = RuntimeServer::builder()
///     .listener(listener)
///     .profile("demo-echo", Profile::echo().with_description("echo, for the demo"))
///     .serve(async {
///         let _ = stopped.await;
///     });
/// let serving = tokio::spawn(server);
/// stop.send(()).expect("the server is running");
/// serving.await??;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RuntimeServer;

impl RuntimeServer {
    /// A runtime `local` with only the `echo` profile, in memory, on
    /// `127.0.0.1:7701`, without a token (so only on loopback).
    pub fn builder() -> RuntimeServerBuilder {
        let id = RuntimeId::new(DEFAULT_RUNTIME_ID).expect("the default id is valid");
        Self::from_settings(RuntimeSettings::new(RuntimeConfig::new(
            id,
            DEFAULT_RUNTIME_ID,
        )))
    }

    /// A runtime server with these settings (what `switchyard runtime` runs).
    pub fn from_settings(settings: RuntimeSettings) -> RuntimeServerBuilder {
        RuntimeServerBuilder {
            settings,
            listener: None,
        }
    }

    /// A runtime server configured by the file at `path`, read as `switchyard runtime
    /// --config PATH` reads it (`token_env` and `SWITCHYARD_RUNTIME_TOKEN` from this
    /// process's environment). Reads files: call it before serving, or off the async
    /// threads.
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<RuntimeServerBuilder, ConfigError> {
        let args = RuntimeArgs {
            config: Some(path.as_ref().to_path_buf()),
            ..RuntimeArgs::default()
        };
        let settings = load_runtime_settings(&args, &|name| std::env::var(name).ok())?;
        Ok(Self::from_settings(settings))
    }
}

/// What [`start_with`] starts.
pub(crate) struct RuntimeParts {
    pub(crate) settings: RuntimeSettings,
    pub(crate) listener: Option<TcpListener>,
}

/// Builds a runtime server; see [`RuntimeServer`].
#[derive(Debug)]
pub struct RuntimeServerBuilder {
    settings: RuntimeSettings,
    listener: Option<TcpListener>,
}

impl RuntimeServerBuilder {
    /// Adds (or replaces) a profile, for example one whose workers a custom
    /// [`switchyard_runtime::Driver`] runs ([`Profile::custom`]).
    pub fn profile(mut self, name: impl Into<String>, profile: Profile) -> Self {
        self.settings.runtime.profiles.insert(name.into(), profile);
        self
    }

    /// Replaces the runtime's identity, profiles and limits.
    pub fn runtime_config(mut self, config: RuntimeConfig) -> Self {
        self.settings.runtime = config;
        self
    }

    /// The bearer token backends must present (in place of any set before).
    /// Without one, the server listens only on loopback.
    pub fn token(mut self, token: SecretToken) -> Self {
        self.settings.tokens = vec![token];
        self
    }

    /// Accepts any of `tokens`, as a token file of several lines does while a token
    /// is rotated (in place of any set before); none: no auth, loopback only.
    pub fn tokens(mut self, tokens: impl IntoIterator<Item = SecretToken>) -> Self {
        self.settings.tokens = tokens.into_iter().collect();
        self
    }

    /// Keeps workers and transcripts in this directory (in memory without one).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.settings.data_dir = Some(dir.into());
        self
    }

    /// Listens on `addr` (port 0 takes a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.settings.listen = addr;
        self.listener = None;
        self
    }

    /// Serves on a listener that is already bound.
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Serves HTTPS only, with this certificate (see
    /// [`crate::config::ServerTlsFiles::load`]).
    pub fn tls(mut self, tls: ServerTlsSettings) -> Self {
        self.settings.tls = Some(tls);
        self
    }

    /// Every other setting.
    pub fn settings_mut(&mut self) -> &mut RuntimeSettings {
        &mut self.settings
    }

    /// Opens the store, loads the stored workers, binds the listener (unless given
    /// one) and starts serving until [`RunningRuntime::shutdown`].
    pub async fn start(self) -> Result<RunningRuntime, StartError> {
        let mut settings = self.settings;
        for (name, profile) in &settings.runtime.profiles {
            StartError::check_profile(name, profile)?;
        }
        if let Some(listener) = &self.listener {
            settings.listen = listener.local_addr().map_err(|source| StartError::Listen {
                addr: settings.listen,
                source,
            })?;
        }
        start_with(RuntimeParts {
            settings,
            listener: self.listener,
        })
        .await
    }

    /// Starts, serves until `shutdown` resolves, then shuts down cleanly (stops every
    /// worker, flushes the store).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
        let running = self.start().await?;
        shutdown.await;
        running.shutdown().await;
        Ok(())
    }
}
