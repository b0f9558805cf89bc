//! [`Backend`]: the backend as a library. Build one from a configuration file, from
//! settings, or from nothing; add runtimes of any kind, a policy, a listener, TLS and
//! authentication in code; then serve it until a shutdown future resolves.
//! `switchyard serve` is this builder started from the command line's settings.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use switchyard_registry::{Policy, RegisteredRuntime};
use switchyard_runtime::Profile;
use tokio::net::TcpListener;

use crate::StartError;
use crate::commands::serve::{RunningBackend, start_with};
use crate::config::{
    AuthSettings, BackendSettings, ConfigError, EmbeddedSettings, ServeArgs, ServerTlsSettings,
    load_backend_settings,
};
use crate::reload::{ConfigSource, SetInCode};

/// The backend: one API in front of many runtimes. Start with
/// [`Backend::builder`], [`Backend::from_settings`] or [`Backend::from_config_file`].
///
/// ```
/// use std::sync::Arc;
/// use switchyard_protocol::RuntimeId;
/// use switchyard_registry::{EmbeddedSource, RegisteredRuntime};
/// use switchyard_runtime::{Runtime, RuntimeConfig};
/// use switchyard_server::Backend;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Any `RuntimeSource` will do; here, a runtime in this process.
/// let id = RuntimeId::new("jobs")?;
/// let runtime = Runtime::in_memory(RuntimeConfig::new(id.clone(), "Jobs")).await;
/// let source = Arc::new(EmbeddedSource::new(runtime));
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let backend = Backend::builder()
///     .listener(listener)
///     .runtime(RegisteredRuntime::new(id, "Jobs", source))
///     .start()
///     .await?;
///
/// let client = switchyard_client::BackendClient::new(
///     switchyard_client::BackendUrl::parse(&backend.url())?,
///     None,
///     switchyard_client::Timeouts::default(),
/// )?;
/// let runtimes = client.runtimes().await?;
/// assert_eq!(runtimes.runtimes[0].runtime_id.as_str(), "jobs");
///
/// backend.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Backend;

impl Backend {
    /// A backend with nothing: no runtimes, on `127.0.0.1:7700`, without client
    /// authentication, every other setting at its default.
    pub fn builder() -> BackendBuilder {
        let mut settings = BackendSettings::defaults();
        settings.embedded = None;
        BackendBuilder::new(settings)
    }

    /// A backend with these settings (what `switchyard serve` runs).
    pub fn from_settings(settings: BackendSettings) -> BackendBuilder {
        BackendBuilder::new(settings)
    }

    /// A backend configured by the file at `path`, read as `switchyard serve
    /// --config PATH` reads it (remotes' `token_env` from this process's
    /// environment). Reads files: call it before serving, or off the async threads.
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<BackendBuilder, ConfigError> {
        let args = ServeArgs {
            config: Some(path.as_ref().to_path_buf()),
            ..ServeArgs::default()
        };
        let settings = load_backend_settings(&args, &|name| std::env::var(name).ok())?;
        Ok(BackendBuilder::new(settings).reload_from(ConfigSource::process(args)))
    }
}

/// Builds the policy to serve with around the one the auth settings pick (at start
/// and again whenever a reload picks a new one).
type PolicyWrapper = Arc<dyn Fn(Arc<dyn Policy>) -> Arc<dyn Policy> + Send + Sync>;

/// What the builder does to the policy that the auth settings pick. A reload that
/// changes `[auth]` makes the same choice again, so a policy set in code survives it.
#[derive(Clone)]
pub(crate) enum PolicyChoice {
    /// Keep it: [`switchyard_registry::AllowAll`] without tokens,
    /// [`switchyard_registry::RolePolicy`] with them.
    Default,
    /// Use this one instead.
    Replace(Arc<dyn Policy>),
    /// Wrap the picked one.
    Wrap(PolicyWrapper),
}

impl PolicyChoice {
    /// The policy to serve with, given the one the auth settings picked.
    pub(crate) fn choose(&self, picked: Arc<dyn Policy>) -> Arc<dyn Policy> {
        match self {
            Self::Default => picked,
            Self::Replace(policy) => policy.clone(),
            Self::Wrap(wrap) => wrap(picked),
        }
    }
}

/// What [`start_with`] starts.
pub(crate) struct BackendParts {
    pub(crate) settings: BackendSettings,
    pub(crate) runtimes: Vec<RegisteredRuntime>,
    pub(crate) policy: PolicyChoice,
    pub(crate) listener: Option<TcpListener>,
    pub(crate) config_source: Option<ConfigSource>,
    pub(crate) set_in_code: SetInCode,
}

/// Builds a backend; see [`Backend`].
pub struct BackendBuilder {
    settings: BackendSettings,
    runtimes: Vec<RegisteredRuntime>,
    embedded_profiles: Vec<(String, Profile)>,
    policy: PolicyChoice,
    listener: Option<TcpListener>,
    config_source: Option<ConfigSource>,
    /// What came from code (kept by reloads; see [`SetInCode`]).
    listen_in_code: bool,
    embedded_in_code: bool,
    auth_in_code: bool,
    tls_in_code: bool,
}

impl std::fmt::Debug for BackendBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendBuilder")
            .field("settings", &self.settings)
            .field("runtimes", &self.runtimes)
            .field(
                "embedded_profiles",
                &self
                    .embedded_profiles
                    .iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
            )
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl BackendBuilder {
    fn new(settings: BackendSettings) -> Self {
        Self {
            settings,
            runtimes: Vec::new(),
            embedded_profiles: Vec::new(),
            policy: PolicyChoice::Default,
            listener: None,
            config_source: None,
            listen_in_code: false,
            embedded_in_code: false,
            auth_in_code: false,
            tls_in_code: false,
        }
    }

    /// Adds a runtime: any [`switchyard_registry::RuntimeSource`], under its id,
    /// after the configured ones. Its [`switchyard_registry::RuntimeSource::shutdown`]
    /// runs when the backend shuts down.
    pub fn runtime(mut self, runtime: RegisteredRuntime) -> Self {
        self.runtimes.push(runtime);
        self
    }

    /// Sets the in-process runtime (replacing a configured one, and the one a
    /// reloaded file configures).
    pub fn embedded(mut self, embedded: EmbeddedSettings) -> Self {
        self.settings.embedded = Some(embedded);
        self.embedded_in_code = true;
        self
    }

    /// Adds (or replaces) a profile of the in-process runtime, for example one whose
    /// workers a custom [`switchyard_runtime::Driver`] runs. Starting fails with
    /// [`StartError::NoEmbeddedRuntime`] when the backend has no embedded runtime.
    pub fn embedded_profile(mut self, name: impl Into<String>, profile: Profile) -> Self {
        self.embedded_profiles.push((name.into(), profile));
        self
    }

    /// Serves with this policy instead of the one the auth settings pick
    /// ([`switchyard_registry::AllowAll`] without tokens,
    /// [`switchyard_registry::RolePolicy`] with them).
    pub fn policy(mut self, policy: impl Policy) -> Self {
        self.policy = PolicyChoice::Replace(Arc::new(policy));
        self
    }

    /// Serves with a policy built around the one the auth settings pick, to add rules
    /// to it rather than replace it. `wrap` is called at start and again after each
    /// reload that changes `[auth]` (which picks a new policy).
    pub fn wrap_policy(
        mut self,
        wrap: impl Fn(Arc<dyn Policy>) -> Arc<dyn Policy> + Send + Sync + 'static,
    ) -> Self {
        self.policy = PolicyChoice::Wrap(Arc::new(wrap));
        self
    }

    /// Reads `source` again on `POST /api/admin/reload`, and on SIGHUP when served
    /// with [`BackendBuilder::serve`] (the configuration file and flags
    /// `switchyard serve` started from; [`Backend::from_config_file`] sets it).
    /// Without one, a reload answers `501 unsupported`. What was set in code with
    /// the builder's methods is kept across reloads: runtimes, the policy, embedded
    /// profiles, the embedded runtime, authentication, TLS and the listen address
    /// or listener (see [`BackendBuilder::settings_mut`] for the rest).
    pub fn reload_from(mut self, source: ConfigSource) -> Self {
        self.config_source = Some(source);
        self
    }

    /// Listens on `addr` (port 0 takes a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.settings.listen = addr;
        self.listener = None;
        self.listen_in_code = true;
        self
    }

    /// Serves on a listener that is already bound (its address counts as the listen
    /// address, for the loopback rule and the `Host` allowlist).
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self.listen_in_code = true;
        self
    }

    /// Serves HTTPS only, with this certificate (see
    /// [`crate::config::ServerTlsFiles::load`]).
    pub fn tls(mut self, tls: ServerTlsSettings) -> Self {
        self.settings.tls = Some(tls);
        self.tls_in_code = true;
        self
    }

    /// Who the backend serves: everyone on loopback, everyone anywhere, or token
    /// holders.
    pub fn auth(mut self, auth: AuthSettings) -> Self {
        self.settings.auth = auth;
        self.auth_in_code = true;
        self
    }

    /// Every other setting (origins, hosts, limits, probes, remotes, ...). What is
    /// changed here applies at start; a reload ([`BackendBuilder::reload_from`])
    /// takes these settings from the file again. What must survive reloads is set
    /// with the builder's own methods (`auth`, `tls`, `listen` or `listener`,
    /// `embedded`, `embedded_profile`, `runtime`, `policy`).
    pub fn settings_mut(&mut self) -> &mut BackendSettings {
        &mut self.settings
    }

    /// Opens the embedded runtime, binds the listener (unless given one), and starts
    /// serving and probing runtimes. The backend serves until
    /// [`RunningBackend::shutdown`].
    pub async fn start(self) -> Result<RunningBackend, StartError> {
        let mut settings = self.settings;
        if let Some((name, _)) = self.embedded_profiles.first()
            && settings.embedded.is_none()
        {
            return Err(StartError::NoEmbeddedRuntime {
                profile: name.clone(),
            });
        }
        let set_in_code = SetInCode {
            listen: self.listen_in_code,
            embedded: settings.embedded.clone().filter(|_| self.embedded_in_code),
            embedded_profiles: self.embedded_profiles,
            auth: Some(settings.auth.clone()).filter(|_| self.auth_in_code),
            tls: settings.tls.clone().filter(|_| self.tls_in_code),
        };
        if let Some(embedded) = settings.embedded.as_mut() {
            for (name, profile) in &set_in_code.embedded_profiles {
                embedded
                    .runtime
                    .profiles
                    .insert(name.clone(), profile.clone());
            }
            // All of them, whether from a file, from settings or from code.
            for (name, profile) in &embedded.runtime.profiles {
                StartError::check_profile(name, profile)?;
            }
        }
        if let Some(listener) = &self.listener {
            settings.listen = listener.local_addr().map_err(|source| StartError::Listen {
                addr: settings.listen,
                source,
            })?;
        }
        start_with(BackendParts {
            settings,
            runtimes: self.runtimes,
            policy: self.policy,
            listener: self.listener,
            config_source: self.config_source,
            set_in_code,
        })
        .await
    }

    /// Starts, serves until `shutdown` resolves, then shuts down cleanly: the
    /// mini-redis pattern. Pass `tokio::signal::ctrl_c()` (mapped to `()`), a
    /// channel's receiver, or anything else. As `switchyard serve` does: with a
    /// configuration source ([`BackendBuilder::reload_from`]) a SIGHUP reloads it
    /// (the handler replaces SIGHUP's default action, ending the process, for the
    /// rest of the process's life), and once `shutdown` resolves the backend
    /// drains for `drain_ms` (`GET /readyz` answers 503) before it stops. For
    /// process and terminal workers that must not outlive a crash, see
    /// [`crate::reaper`].
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
        let running = self.start().await?;
        let reloads = if running.reloader.has_source() {
            crate::commands::signals::on_hangup(running.reloader.clone())
        } else {
            None
        };
        shutdown.await;
        running.drain().await;
        if let Some(reloads) = reloads {
            reloads.abort();
        }
        running.shutdown().await;
        Ok(())
    }
}
