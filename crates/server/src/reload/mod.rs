//! Live reload of the backend's configuration, on SIGHUP and `POST
//! /api/admin/reload` (a standalone runtime's SIGHUP reload is [`runtime`]): [`Reloader::reload`] reads the configuration again, checks it
//! as start-up does, compares it with what runs ([`plan`]) and applies it.
//!
//! All or nothing: every step that can fail (reading and checking the file, opening
//! an added embedded runtime's store, building the new remotes' clients) runs before
//! anything changes; an invalid configuration changes nothing and is answered with a
//! [`ConfigError`] naming the key and the file. Then, in this order:
//!
//! 1. the policy and the authenticator (tokens, roles, sessions), in the order that
//!    never lets a caller the new tokens identify pass the old, open policy;
//! 2. the registry's runtimes, in one swap ([`RuntimeRegistry::reconfigure`]), and
//!    the hub follows: viewers of removed runtimes are closed with 4404, channels of
//!    replaced ones resubscribe through the new runtime, unchanged ones are not
//!    touched;
//! 3. the allowed Host names and origins (the next request is judged by them), the
//!    listener's TLS files (new handshakes use them) and the probes' interval;
//! 4. the limits: `max_body_bytes` (requests that start from now on; those in
//!    flight keep the limit they started with), the main listener's
//!    `max_connections` (lowered, no open connection is cut: new ones are refused
//!    until fewer are open), `drain_ms` (the period of a drain that starts from
//!    now on) and the hub's `viewer_queue` and `event_backlog` (the event streams
//!    that open from now on; open ones keep theirs);
//! 5. a removed embedded runtime is shut down (its workers stopped, its store
//!    flushed), once nothing routes to it.
//!
//! Reloads are serialised: a second one waits for the first.

pub(crate) mod metrics;
pub mod plan;
pub mod runtime;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use switchyard_protocol::RuntimeId;
use switchyard_registry::{
    AllowAll, EmbeddedSource, ObservationHub, Planned, Policy, RegisteredRuntime, RolePolicy,
    RuntimeRegistry,
};
use switchyard_runtime::Runtime;

use crate::auth::{Authenticator, SessionKey};
use crate::backend_api::{AllowedHosts, AllowedOrigins, BodyLimit, DrainPeriod};
use crate::commands::serve::{authenticator, embedded_runtime, remote_runtime};
use crate::config::{AuthSettings, BackendSettings, ConfigError, ServeArgs, load_backend_settings};
use crate::http::{ConnectionLimit, ServerTls};
use plan::{EmbeddedChange, Plan, RemoteChange};

/// Reads an environment variable (remotes' `token_env`).
pub type EnvLookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Where a reload reads the configuration: the same flags (and file) as at
/// start-up, and the environment. `A` is the command line: [`ServeArgs`] for a
/// backend, [`crate::config::RuntimeArgs`] for a standalone runtime
/// ([`runtime::RuntimeConfigSource`]).
#[derive(Clone)]
pub struct ConfigSource<A = ServeArgs> {
    /// The command line (flags override the file, as at start).
    pub args: A,
    /// The environment (`token_env` and the like).
    pub env: Arc<EnvLookup>,
}

impl<A: std::fmt::Debug> std::fmt::Debug for ConfigSource<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSource")
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

/// A command line that may name a configuration file (`--config`).
pub trait ConfigArgs {
    /// The `--config` file, if any.
    fn config_file(&self) -> Option<&PathBuf>;
}

impl ConfigArgs for ServeArgs {
    fn config_file(&self) -> Option<&PathBuf> {
        self.config.as_ref()
    }
}

impl ConfigArgs for crate::config::RuntimeArgs {
    fn config_file(&self) -> Option<&PathBuf> {
        self.config.as_ref()
    }
}

impl<A: ConfigArgs> ConfigSource<A> {
    /// The process's own command line and environment.
    pub fn process(args: A) -> Self {
        Self {
            args,
            env: Arc::new(|name| std::env::var(name).ok()),
        }
    }

    /// The configuration file, if there is one.
    pub fn file(&self) -> Option<&PathBuf> {
        self.args.config_file()
    }
}

/// Warns, once per key of `keys`, that its new value waits for a restart of the
/// `process` (`backend`, `runtime`), saying what it is from `table` (a
/// `RESTART_ONLY` list).
pub(crate) fn warn_restart_required(keys: &[&'static str], table: &[(&str, &str)], process: &str) {
    for key in keys {
        let what = table
            .iter()
            .find(|(k, _)| k == key)
            .map_or("it", |(_, what)| what);
        tracing::warn!(
            key,
            "`{key}` changed in the configuration, but {what} cannot change while the {process} runs: the old value stays in force until a restart"
        );
    }
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The configuration is invalid (or cannot be applied to the running process):
    /// `400 invalid_config`, naming the key and the file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// This backend was not started from a configuration it can read again.
    #[error(
        "this backend was started without a configuration source, so there is nothing to reload"
    )]
    NoSource,
}

/// The runtimes of a reload, by what happened to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RuntimeChanges {
    /// New runtimes.
    pub added: Vec<RuntimeId>,
    /// Runtimes whose settings changed, replaced by new ones.
    pub replaced: Vec<RuntimeId>,
    /// Runtimes no longer configured; their viewers were closed with 4404.
    pub removed: Vec<RuntimeId>,
    /// Runtimes kept as they run: their connections and viewers untouched.
    pub unchanged: Vec<RuntimeId>,
}

/// What a reload did: the answer of `POST /api/admin/reload`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReloadReport {
    /// The runtimes.
    pub runtimes: RuntimeChanges,
    /// Whether the listener's certificate and key were read again (it serves TLS).
    pub tls_reloaded: bool,
    /// Keys whose new values wait for a restart (see [`plan::RESTART_ONLY`]).
    pub restart_required: Vec<&'static str>,
}

/// The parts of a running backend a reload changes.
pub struct ReloadTargets {
    /// The registry (its runtimes and policy).
    pub registry: Arc<RuntimeRegistry>,
    /// The observation hub over it.
    pub hub: ObservationHub,
    /// The authenticator (its tokens and sessions).
    pub auth: Arc<Authenticator>,
    /// The main listener's TLS, when it serves HTTPS.
    pub tls: Option<ServerTls>,
    /// The Host names of each listener (the main one, the metrics one), shared with
    /// their handlers.
    pub hosts: Vec<AllowedHosts>,
    /// The allowed origins, shared with the backend API.
    pub origins: AllowedOrigins,
    /// The request body limit, shared with the backend API.
    pub max_body_bytes: BodyLimit,
    /// The main listener's connection limit, shared with its accept loop and its
    /// metrics (not the `metrics_listen` one's, which is fixed).
    pub limit: ConnectionLimit,
    /// The drain period, shared with the running backend.
    pub drain: DrainPeriod,
}

struct State {
    running: BackendSettings,
    embedded: Option<Runtime>,
}

/// Applies reloads to a running backend. Share it behind an `Arc`.
pub struct Reloader {
    source: Option<ConfigSource>,
    targets: ReloadTargets,
    /// Signs sessions when `[auth]` has no `session_key_file`: one per process, so
    /// that a reload does not end every session.
    session_key: SessionKey,
    state: tokio::sync::Mutex<State>,
    metrics: metrics::ReloadMetrics,
    /// Runtimes added in code (the builder's): kept by every reload.
    pinned: Vec<RuntimeId>,
    /// The builder's policy choice, made again around each policy a reload picks.
    policy_choice: crate::backend::PolicyChoice,
    /// Settings the builder set in code, laid over every file a reload reads.
    set_in_code: SetInCode,
}

/// Settings a backend's builder set in code, which a configuration file cannot
/// express or which the program decided: every reload lays them over the file it
/// reads, as start-up laid them over the first one.
#[derive(Debug, Clone, Default)]
pub(crate) struct SetInCode {
    /// The listen address came from code (`listen`, or a listener bound by the
    /// program): the file's `listen` is not the one in force.
    pub(crate) listen: bool,
    /// The embedded runtime set with `BackendBuilder::embedded`, in place of the
    /// file's.
    pub(crate) embedded: Option<crate::config::EmbeddedSettings>,
    /// Profiles added to the embedded runtime with `BackendBuilder::embedded_profile`.
    pub(crate) embedded_profiles: Vec<(String, switchyard_runtime::Profile)>,
    /// Who the backend serves, set with `BackendBuilder::auth`: a file without
    /// `[auth]` must not turn authentication off.
    pub(crate) auth: Option<crate::config::AuthSettings>,
    /// The listener's TLS, set with `BackendBuilder::tls`.
    pub(crate) tls: Option<crate::config::ServerTlsSettings>,
}

impl SetInCode {
    /// Lays these settings over `next`, read from `origin` (the backend runs
    /// `running`).
    fn apply(
        &self,
        next: &mut BackendSettings,
        running: &BackendSettings,
        origin: crate::config::Origin,
    ) -> Result<(), ConfigError> {
        if self.listen {
            next.listen = running.listen;
        }
        if let Some(embedded) = &self.embedded {
            next.embedded = Some(embedded.clone());
        }
        if let Some(auth) = &self.auth {
            next.auth = auth.clone();
        }
        if let Some(tls) = &self.tls {
            next.tls = Some(tls.clone());
        }
        if let Some((name, _)) = self.embedded_profiles.first()
            && next.embedded.is_none()
        {
            return Err(ConfigError::InvalidValue {
                origin,
                key: "embedded".to_owned(),
                problem: format!(
                    "this program adds the profile {name:?} to the embedded runtime in code, \
                     so the configuration must keep an embedded runtime"
                ),
            });
        }
        if let Some(embedded) = next.embedded.as_mut() {
            for (name, profile) in &self.embedded_profiles {
                embedded
                    .runtime
                    .profiles
                    .insert(name.clone(), profile.clone());
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader for a backend running `running` (with `embedded`, its embedded
    /// runtime), reading `source` again on each reload.
    pub fn new(
        source: Option<ConfigSource>,
        targets: ReloadTargets,
        running: BackendSettings,
        embedded: Option<Runtime>,
        session_key: SessionKey,
    ) -> Self {
        Self {
            source,
            targets,
            session_key,
            state: tokio::sync::Mutex::new(State { running, embedded }),
            metrics: metrics::ReloadMetrics::default(),
            pinned: Vec::new(),
            policy_choice: crate::backend::PolicyChoice::Default,
            set_in_code: SetInCode::default(),
        }
    }

    /// Keeps what the backend's builder added in code across reloads: the runtimes
    /// `pinned` (a reload never removes or replaces them; the file cannot name them)
    /// and the policy choice, made again around each policy a reload picks.
    pub(crate) fn keeping_from_code(
        mut self,
        pinned: Vec<RuntimeId>,
        policy: crate::backend::PolicyChoice,
        set_in_code: SetInCode,
    ) -> Self {
        self.pinned = pinned;
        self.policy_choice = policy;
        self.set_in_code = set_in_code;
        self
    }

    /// Registers the reload metrics: reloads by outcome, whether the last one
    /// succeeded and when the configuration in force was last applied.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }

    /// True when it has a configuration to read again (else a reload is `501
    /// unsupported`).
    pub fn has_source(&self) -> bool {
        self.source.is_some()
    }

    /// The authenticator a reload updates.
    pub(crate) fn authenticator(&self) -> &Arc<Authenticator> {
        &self.targets.auth
    }

    /// The embedded runtime running now, if any.
    pub async fn embedded(&self) -> Option<Runtime> {
        self.state.lock().await.embedded.clone()
    }

    /// Reads the configuration again and applies it (see the module's steps). Waits
    /// for a reload in progress. An error changes nothing.
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let source = self.source.clone().ok_or(ReloadError::NoSource)?;
        let mut state = self.state.lock().await;
        let prepared = self.check(source, &state.running).await;
        self.metrics.record(prepared.is_ok());
        let (plan, prepared) = prepared?;
        let report = self.apply(&mut state, plan, prepared).await;
        let ids = |ids: &[RuntimeId]| {
            ids.iter()
                .map(RuntimeId::as_str)
                .collect::<Vec<_>>()
                .join(",")
        };
        tracing::info!(
            added = ids(&report.runtimes.added),
            replaced = ids(&report.runtimes.replaced),
            removed = ids(&report.runtimes.removed),
            unchanged = ids(&report.runtimes.unchanged),
            tls_reloaded = report.tls_reloaded,
            "configuration reloaded"
        );
        warn_restart_required(&report.restart_required, plan::RESTART_ONLY, "backend");
        Ok(report)
    }

    /// Reads, checks and plans the configuration, and prepares what it needs.
    async fn check(
        &self,
        source: ConfigSource,
        running: &BackendSettings,
    ) -> Result<(Plan, Prepared), ConfigError> {
        let file = source.file().cloned();
        let mut next = read(source).await?;
        self.set_in_code.apply(&mut next, running, self.origin())?;
        let plan = plan::plan(running, next, file.as_deref())?;
        self.check_pinned(&plan.applied, file.as_deref())?;
        let prepared = self.prepare(&plan).await?;
        Ok((plan, prepared))
    }

    /// Refuses a file that names a runtime id the builder added in code: the
    /// runtimes could not be told apart.
    fn check_pinned(
        &self,
        next: &BackendSettings,
        file: Option<&std::path::Path>,
    ) -> Result<(), ConfigError> {
        let embedded = next
            .embedded
            .iter()
            .map(|e| (&e.runtime.runtime_id, "embedded.runtime_id".to_owned()));
        let remotes = next
            .remotes
            .iter()
            .enumerate()
            .map(|(i, r)| (&r.runtime_id, format!("remote[{i}].runtime_id")));
        for (id, key) in embedded.chain(remotes) {
            if self.pinned.contains(id) {
                return Err(ConfigError::DuplicateRuntimeId {
                    origin: file.map_or(
                        crate::config::Origin::CommandLine,
                        crate::config::Origin::file,
                    ),
                    key,
                    id: id.to_string(),
                    first: "a runtime added in code".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Everything that can fail, before anything changes: the authenticator, the
    /// added embedded runtime, the new remotes' clients.
    async fn prepare(&self, plan: &Plan) -> Result<Prepared, ConfigError> {
        let auth = authenticator(&plan.applied.auth, &self.session_key);
        let embedded = match &plan.embedded {
            EmbeddedChange::Add(settings) => Some(
                embedded_runtime(settings.clone())
                    .await
                    .map_err(|problem| ConfigError::InvalidValue {
                        origin: self.origin(),
                        key: "embedded.data_dir".to_owned(),
                        problem: problem.to_string(),
                    })?,
            ),
            _ => None,
        };
        let mut remotes = Vec::with_capacity(plan.remotes.len());
        for (i, change) in plan.remotes.iter().enumerate() {
            remotes.push(match change {
                RemoteChange::Keep(id) => Planned::Keep(id.clone()),
                RemoteChange::Register(settings) => {
                    Planned::Register(remote_runtime((**settings).clone()).map_err(|problem| {
                        ConfigError::InvalidValue {
                            origin: self.origin(),
                            key: format!("remote[{i}]"),
                            problem: problem.to_string(),
                        }
                    })?)
                }
            });
        }
        Ok(Prepared {
            auth,
            embedded,
            remotes,
        })
    }

    fn origin(&self) -> crate::config::Origin {
        match self.source.as_ref().and_then(ConfigSource::file) {
            Some(file) => crate::config::Origin::file(file),
            None => crate::config::Origin::CommandLine,
        }
    }

    /// Applies a prepared plan; cannot fail.
    async fn apply(&self, state: &mut State, plan: Plan, prepared: Prepared) -> ReloadReport {
        let targets = &self.targets;
        let Prepared {
            auth,
            embedded,
            remotes,
        } = prepared;
        // 1. Who is served. With tokens, the role policy goes in first (it lets the
        // old open callers, who are admins, do everything they did); without, the
        // open authenticator goes in first (its callers are admins under either).
        log_auth_changes(&state.running.auth, &plan.applied.auth);
        let picked: Arc<dyn Policy> = match plan.applied.auth {
            AuthSettings::Tokens(_) => Arc::new(RolePolicy),
            AuthSettings::Off | AuthSettings::Open => Arc::new(AllowAll),
        };
        let policy = self.policy_choice.choose(picked);
        if plan.applied.auth.is_on() {
            targets.registry.set_policy(policy);
            targets.auth.replace(auth);
        } else {
            targets.auth.replace(auth);
            targets.registry.set_policy(policy);
        }

        // 2. The runtimes, embedded first as at start-up.
        let mut table = Vec::with_capacity(remotes.len() + 1);
        let mut removed_embedded = None;
        match (&plan.embedded, embedded) {
            (EmbeddedChange::Add(settings), Some((runtime, registered))) => {
                table.push(Planned::Register(registered));
                tracing::info!(runtime_id = %settings.runtime.runtime_id, "embedded runtime added");
                removed_embedded = state.embedded.replace(runtime);
            }
            (EmbeddedChange::Keep, _) => {
                if let Some(kept) = &state.running.embedded {
                    table.push(Planned::Keep(kept.runtime.runtime_id.clone()));
                }
            }
            (EmbeddedChange::Reconfigure(settings), _) => {
                if let Some(runtime) = &state.embedded {
                    table.push(reconfigure_embedded(
                        runtime,
                        settings,
                        state.running.embedded.as_ref(),
                    ));
                }
            }
            (EmbeddedChange::Remove, _) => removed_embedded = state.embedded.take(),
            _ => {}
        }
        // A reconfigured embedded runtime describes itself anew at once: its view
        // (profiles, limits) would otherwise be the old one until the next probe.
        let reconfigured = match &plan.embedded {
            EmbeddedChange::Reconfigure(settings) => Some(settings.runtime.runtime_id.clone()),
            _ => None,
        };
        table.extend(remotes);
        table.extend(self.pinned.iter().cloned().map(Planned::Keep));
        let report = match targets.registry.reconfigure(table) {
            Ok(done) => {
                targets.hub.runtimes_changed(&done);
                RuntimeChanges {
                    added: done.added,
                    replaced: done.replaced,
                    removed: done.removed,
                    unchanged: done.unchanged,
                }
            }
            Err(error) => {
                // The plan comes from a checked configuration (ids are distinct) and
                // the running table: this is a bug, and nothing changed.
                tracing::error!(%error, "the reload's runtimes could not be applied; the runtimes stay as they were");
                RuntimeChanges::default()
            }
        };

        if let Some(id) = reconfigured {
            let _ = targets.registry.refresh(&id).await;
        }

        // 3. The browser defences, TLS files and probes.
        for hosts in &targets.hosts {
            hosts.replace(&plan.applied.allowed_hosts);
        }
        targets
            .origins
            .replace(plan.applied.allowed_origins.clone());
        let tls_reloaded = match (&targets.tls, &plan.applied.tls) {
            (Some(tls), Some(settings)) => {
                tls.replace(settings.config.clone());
                true
            }
            _ => false,
        };
        if plan.applied.health_interval != state.running.health_interval {
            targets
                .registry
                .start_health_probes(plan.applied.health_interval);
        }

        // 4. The limits: for the requests, connections and drain that start from now.
        targets.max_body_bytes.replace(plan.applied.max_body_bytes);
        targets.limit.resize(crate::open_files::fit_connections(
            plan.applied.max_connections,
        ));
        targets.drain.replace(plan.applied.drain);
        targets.hub.resize(
            plan.applied.viewer_queue as usize,
            plan.applied.event_backlog as usize,
        );
        let (old, new) = (&state.running, &plan.applied);
        let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        for (key, from, to) in [
            ("max_body_bytes", old.max_body_bytes, new.max_body_bytes),
            (
                "max_connections",
                old.max_connections as u64,
                new.max_connections as u64,
            ),
            ("drain_ms", millis(old.drain), millis(new.drain)),
            (
                "viewer_queue",
                old.viewer_queue.into(),
                new.viewer_queue.into(),
            ),
            (
                "event_backlog",
                old.event_backlog.into(),
                new.event_backlog.into(),
            ),
        ] {
            if from != to {
                tracing::info!(key, from, to, "`{key}` changed from {from} to {to}");
            }
        }

        // 5. A removed embedded runtime: nothing routes to it any more.
        if let Some(runtime) = removed_embedded {
            if let Err(error) = runtime.shutdown().await {
                tracing::error!(%error, "could not flush the removed embedded runtime's store");
            }
            tracing::info!("embedded runtime removed; its workers were stopped");
        }
        state.running = plan.applied;
        ReloadReport {
            runtimes: report,
            tls_reloaded,
            restart_required: plan.restart_required,
        }
    }
}

/// What [`Reloader::prepare`] built.
struct Prepared {
    auth: Authenticator,
    embedded: Option<(Runtime, RegisteredRuntime)>,
    remotes: Vec<Planned>,
}

/// Reads and checks the configuration as start-up does, off the async threads (it
/// reads files).
async fn read(source: ConfigSource) -> Result<BackendSettings, ConfigError> {
    let ConfigSource { args, env } = source;
    match tokio::task::spawn_blocking(move || load_backend_settings(&args, &|name| env(name))).await
    {
        Ok(result) => result,
        Err(error) => Err(ConfigError::InvalidValue {
            origin: crate::config::Origin::CommandLine,
            key: "--config".to_owned(),
            problem: format!("reading the configuration failed: {error}"),
        }),
    }
}

/// Reconfigures the running embedded `runtime` in place with `settings` (same id
/// and data directory; see [`plan`]): what starts from now on uses the new profiles
/// and limits, nothing running is touched. Its entry in the registry is kept, or,
/// when the display name changed (which the registry's entry holds), registered
/// again over the same runtime (its viewers resume from their cursors).
fn reconfigure_embedded(
    runtime: &Runtime,
    settings: &crate::config::EmbeddedSettings,
    running: Option<&crate::config::EmbeddedSettings>,
) -> Planned {
    let config = &settings.runtime;
    match runtime.reconfigure(config.clone()) {
        Ok(_) => tracing::info!(
            runtime_id = %config.runtime_id,
            profiles = config.profiles.len(),
            "embedded runtime reconfigured; new workers use its new profiles and limits"
        ),
        // Only a new id is refused, and the plan reconfigures only the same id.
        Err(error) => tracing::error!(%error, "embedded runtime not reconfigured"),
    }
    let renamed = running.is_none_or(|running| running.runtime.display_name != config.display_name);
    if renamed {
        Planned::Register(
            RegisteredRuntime::new(
                config.runtime_id.clone(),
                config.display_name.clone(),
                Arc::new(EmbeddedSource::new(runtime.clone())),
            )
            .without_call_timeout(),
        )
    } else {
        Planned::Keep(config.runtime_id.clone())
    }
}

/// Logs (at INFO) how `[auth]` changed: the mode, and the names of the tokens added,
/// removed, or changed (role, scope or secret). Names only, never a hash.
fn log_auth_changes(old: &AuthSettings, new: &AuthSettings) {
    let mode = |auth: &AuthSettings| match auth {
        AuthSettings::Off => "off",
        AuthSettings::Open => "open",
        AuthSettings::Tokens(_) => "tokens",
    };
    if mode(old) != mode(new) {
        tracing::info!(
            from = mode(old),
            to = mode(new),
            "`auth` changed from {} to {}",
            mode(old),
            mode(new)
        );
    }
    let tokens = |auth: &AuthSettings| match auth {
        AuthSettings::Tokens(settings) => settings.tokens.clone(),
        AuthSettings::Off | AuthSettings::Open => Vec::new(),
    };
    let (old, new) = (tokens(old), tokens(new));
    let named = |list: &[crate::auth::TokenEntry], name: &str| {
        list.iter()
            .filter(|t| t.name == name)
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut names: Vec<&str> = old.iter().chain(&new).map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    for name in names {
        match (named(&old, name), named(&new, name)) {
            (before, after) if before.is_empty() => added.extend(after.iter().map(|_| name)),
            (_, after) if after.is_empty() => removed.push(name),
            (before, after) if before != after => changed.push(name),
            _ => {}
        }
    }
    added.dedup();
    if !(added.is_empty() && removed.is_empty() && changed.is_empty()) {
        tracing::info!(
            added = added.join(","),
            removed = removed.join(","),
            changed = changed.join(","),
            "`[[auth.token]]` entries changed (by name)"
        );
    }
}

#[cfg(test)]
mod tests;
