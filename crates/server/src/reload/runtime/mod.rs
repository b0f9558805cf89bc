//! Live reload of a standalone runtime (`switchyard runtime`) on SIGHUP:
//! [`RuntimeReloader::reload`] reads the configuration again exactly as start-up
//! does (the same file, the same flags winning over it, the same checks, the token
//! source and the TLS files included), compares it with what runs ([`plan`]) and
//! applies it.
//!
//! All or nothing: reading and checking everything comes first, so a file that
//! fails any check (the configuration, a token file, a TLS file) changes nothing and
//! is answered with a [`ConfigError`] naming the key and the file; the settings in
//! force stay. Then, in this order, none of which can fail:
//!
//! 1. the runtime's display name, profiles and limits
//!    ([`switchyard_runtime::Runtime::reconfigure`]): creates use the new profiles
//!    and `max_workers`; running workers keep the profile and buffers they started
//!    with;
//! 2. the accepted tokens ([`BearerTokens`]): the next request and the next
//!    WebSocket handshake are checked against them; an open event WebSocket
//!    whose token is no longer accepted closes with 1001 (`runtime_api/events.rs`);
//! 3. `max_body_bytes` ([`BodyLimit`]: requests that start from now on) and
//!    `max_connections` ([`ConnectionLimit::resize`]: new connections; none open is
//!    cut);
//! 4. the listener's TLS files, when it serves HTTPS (new handshakes use them).
//!
//! Keys a running process cannot change ([`plan::RESTART_ONLY`]) keep their running
//! values and are logged at WARN. Reloads are serialised: a second one waits for
//! the first.

pub mod plan;

use switchyard_runtime::Runtime;

use super::metrics::ReloadMetrics;
use crate::config::{
    ConfigError, Origin, RuntimeArgs, RuntimeSettings, TokenSource, load_runtime_settings_sourced,
};
use crate::http::auth::BearerTokens;
use crate::http::body::BodyLimit;
use crate::http::{ConnectionLimit, ServerTls};
use plan::{ProfileChanges, RuntimePlan};

/// Where a runtime's reload reads its configuration: the command line of
/// `switchyard runtime` (flags override the file, as at start) and the environment
/// (`token_env`, `SWITCHYARD_RUNTIME_TOKEN`).
pub type RuntimeConfigSource = super::ConfigSource<RuntimeArgs>;

/// The parts of a running runtime server a reload changes.
#[derive(Debug, Clone)]
pub struct RuntimeReloadTargets {
    /// The runtime (its display name, profiles and limits).
    pub runtime: Runtime,
    /// The tokens the Runtime API accepts, shared with it.
    pub tokens: BearerTokens,
    /// The request body limit, shared with the Runtime API.
    pub max_body_bytes: BodyLimit,
    /// The listener's connection limit, shared with its accept loop.
    pub limit: ConnectionLimit,
    /// The listener's TLS, when it serves HTTPS.
    pub tls: Option<ServerTls>,
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeReloadReport {
    /// Keys whose new value applies (from [`plan::APPLIES`]), in that order.
    pub changed: Vec<&'static str>,
    /// The profiles added, changed and removed.
    pub profiles: ProfileChanges,
    /// Whether the listener's certificate and key were read again (it serves TLS).
    pub tls_reloaded: bool,
    /// Keys whose new values wait for a restart (see [`plan::RESTART_ONLY`]).
    pub restart_required: Vec<&'static str>,
}

/// Applies reloads to a running runtime server. Share it behind an `Arc`.
pub struct RuntimeReloader {
    source: RuntimeConfigSource,
    targets: RuntimeReloadTargets,
    /// The settings in force; held for a whole reload, which serialises them.
    running: tokio::sync::Mutex<RuntimeSettings>,
    /// The process's reload metrics, when it serves them.
    metrics: Option<ReloadMetrics>,
}

impl std::fmt::Debug for RuntimeReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeReloader")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl RuntimeReloader {
    /// A reloader for a runtime server running with `running` (its profiles as the
    /// runtime holds them, `echo` included), reading `source` again on each reload.
    pub fn new(
        source: RuntimeConfigSource,
        targets: RuntimeReloadTargets,
        running: RuntimeSettings,
    ) -> Self {
        Self {
            source,
            targets,
            running: tokio::sync::Mutex::new(running),
            metrics: None,
        }
    }

    /// Counts every reload in `metrics` (the runtime server's `/v1/metrics`).
    pub(crate) fn with_metrics(mut self, metrics: ReloadMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Reads the configuration again and applies it (see the module's steps), then
    /// logs what changed (never a token) and, at WARN, each key that waits for a
    /// restart. Waits for a reload in progress. An error changes nothing.
    pub async fn reload(&self) -> Result<RuntimeReloadReport, ConfigError> {
        let result = self.reload_once().await;
        if let Some(metrics) = &self.metrics {
            metrics.record(result.is_ok());
        }
        result
    }

    async fn reload_once(&self) -> Result<RuntimeReloadReport, ConfigError> {
        let mut running = self.running.lock().await;
        let file = self.source.file().cloned();
        let (next, tokens_from) = read(self.source.clone()).await?;
        let plan = plan::plan(&running, next, &tokens_from)?;
        let report = self.apply(&mut running, plan, file.as_deref())?;
        let names = |names: &[String]| names.join(",");
        tracing::info!(
            changed = report.changed.join(","),
            profiles_added = names(&report.profiles.added),
            profiles_changed = names(&report.profiles.changed),
            profiles_removed = names(&report.profiles.removed),
            tls_reloaded = report.tls_reloaded,
            "configuration reloaded"
        );
        super::warn_restart_required(&report.restart_required, plan::RESTART_ONLY, "runtime");
        Ok(report)
    }

    /// Applies a plan. Only the runtime's reconfiguration could refuse, and comes
    /// first: the plan keeps the runtime id, so a refusal would be a bug, and then
    /// nothing has changed.
    fn apply(
        &self,
        running: &mut RuntimeSettings,
        plan: RuntimePlan,
        file: Option<&std::path::Path>,
    ) -> Result<RuntimeReloadReport, ConfigError> {
        let targets = &self.targets;
        let RuntimePlan {
            changed,
            profiles,
            tls_reload,
            restart_required,
            applied,
        } = plan;

        // 1. The runtime: profiles, limits, display name.
        if let Err(error) = targets.runtime.reconfigure(applied.runtime.clone()) {
            return Err(ConfigError::InvalidValue {
                origin: file.map_or(Origin::CommandLine, Origin::file),
                key: "runtime_id".to_owned(),
                problem: error.to_string(),
            });
        }

        // 2. The tokens, for the next request and handshake.
        targets.tokens.replace(applied.tokens.clone());

        // 3. The limits the HTTP layer enforces.
        targets
            .max_body_bytes
            .replace(applied.runtime.limits.max_body_bytes);
        targets
            .limit
            .resize(crate::open_files::fit_connections(applied.max_connections));

        // 4. The listener's TLS files.
        let tls_reloaded = match (&targets.tls, &applied.tls) {
            (Some(tls), Some(settings)) if tls_reload => {
                tls.replace(settings.config.clone());
                true
            }
            _ => false,
        };

        log_changes(running, &applied, &changed, &profiles);
        *running = applied;
        Ok(RuntimeReloadReport {
            changed,
            profiles,
            tls_reloaded,
            restart_required,
        })
    }
}

/// One INFO line per changed key: where it applies and, for a number, its old and
/// new values. Tokens are only counted.
fn log_changes(
    old: &RuntimeSettings,
    new: &RuntimeSettings,
    changed: &[&'static str],
    profiles: &ProfileChanges,
) {
    for key in changed {
        let applies = plan::APPLIES
            .iter()
            .find(|k| k.key == *key)
            .map_or("", |k| k.applies);
        let (from, to) = match *key {
            "tokens" => {
                if new.tokens.is_empty() {
                    tracing::warn!(
                        "the configuration names no token any more: the runtime answers without one, on loopback only"
                    );
                }
                (old.tokens.len() as u64, new.tokens.len() as u64)
            }
            "display_name" => {
                tracing::info!(
                    key,
                    from = old.runtime.display_name,
                    to = new.runtime.display_name,
                    "`{key}` changed; it applies {applies}"
                );
                continue;
            }
            "profiles" => {
                tracing::info!(
                    key,
                    added = profiles.added.join(","),
                    changed = profiles.changed.join(","),
                    removed = profiles.removed.join(","),
                    "`{key}` changed; it applies {applies}"
                );
                continue;
            }
            other => limit_values(other, old, new),
        };
        tracing::info!(
            key,
            from,
            to,
            "`{key}` changed from {from} to {to}; it applies {applies}"
        );
    }
}

/// The old and new values of a numeric key of [`plan::APPLIES`].
fn limit_values(key: &str, old: &RuntimeSettings, new: &RuntimeSettings) -> (u64, u64) {
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let value = |s: &RuntimeSettings| {
        let limits = &s.runtime.limits;
        match key {
            "max_workers" => u64::from(limits.max_workers),
            "max_ended_workers" => u64::from(limits.max_ended_workers),
            "max_input_bytes" => limits.max_input_bytes,
            "max_body_bytes" => limits.max_body_bytes,
            "transcript_page_max" => u64::from(limits.transcript_page_max),
            "event_backlog" => u64::from(limits.event_backlog),
            "input_queue" => u64::from(limits.input_queue),
            "subscriber_queue" => u64::from(limits.subscriber_queue),
            "stop_grace_ms" => millis(limits.stop_grace),
            "max_connections" => s.max_connections as u64,
            _ => 0,
        }
    };
    (value(old), value(new))
}

/// Reads and checks the configuration as start-up does, off the async threads (it
/// reads files).
async fn read(source: RuntimeConfigSource) -> Result<(RuntimeSettings, TokenSource), ConfigError> {
    let RuntimeConfigSource { args, env } = source;
    let load = move || load_runtime_settings_sourced(&args, &|name| env(name));
    match tokio::task::spawn_blocking(load).await {
        Ok(result) => result,
        Err(error) => Err(ConfigError::InvalidValue {
            origin: Origin::CommandLine,
            key: "--config".to_owned(),
            problem: format!("reading the configuration failed: {error}"),
        }),
    }
}

#[cfg(test)]
mod tests;
