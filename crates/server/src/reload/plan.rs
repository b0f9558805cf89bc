//! What a reload changes: the running settings compared with a new, valid file.
//! Pure: no I/O, nothing applied (see [`super::Reloader`] for that).
//!
//! - Remote runtimes are compared field by field, TLS material by content
//!   ([`crate::config::RemoteSettings::same_as`]): an unchanged one is kept as it runs, a changed
//!   one replaced, a new one added, a missing one removed.
//! - The embedded runtime is added or removed with its table. A changed one is
//!   never replaced (its workers run inside this process, and replacing it would
//!   stop them all): with the same `runtime_id` and `data_dir` its display name,
//!   profiles and limits are reconfigured in place (`Runtime::reconfigure`: what
//!   starts from then on uses them); a new id or data directory keeps it running
//!   as it is and `embedded` is reported as needing a restart.
//! - Tokens (`[auth]`), `allowed_hosts`, `allowed_origins`, the listener's TLS
//!   files, `health_interval_ms`, the limits `max_body_bytes`, `max_connections`
//!   and `drain_ms`, and the hub's `viewer_queue` and `event_backlog` (for the event
//!   streams that open from then on) apply.
//! - Keys the running process cannot change (the listeners, turning TLS on or off,
//!   the sign-out file) keep their running values and are reported as needing a
//!   restart.

use std::path::Path;

use crate::config::{AuthSettings, BackendSettings, ConfigError, EmbeddedSettings, Origin};

/// The keys a reload cannot apply, with what each one is.
pub const RESTART_ONLY: &[(&str, &str)] = &[
    ("listen", "the listen address"),
    ("metrics_listen", "the metrics listener"),
    ("tls", "serving HTTPS or plain HTTP"),
    ("embedded", "the embedded runtime's id or data directory"),
    ("auth.signed_out_file", "the sign-out file"),
];

/// The sign-out file `auth` names.
fn signed_out_file(auth: &AuthSettings) -> Option<&std::path::PathBuf> {
    match auth {
        AuthSettings::Tokens(tokens) => tokens.signed_out_file.as_ref(),
        _ => None,
    }
}

/// What happens to the embedded runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmbeddedChange {
    /// None before, none after.
    None,
    /// Kept as it runs (unchanged, or a new id or data directory waiting for a
    /// restart).
    Keep,
    /// The running one, reconfigured in place: same id and data directory, new
    /// display name, profiles or limits.
    Reconfigure(EmbeddedSettings),
    /// A new one to open.
    Add(EmbeddedSettings),
    /// The running one goes.
    Remove,
}

/// What happens to one remote, in the new file's order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RemoteChange {
    /// Kept exactly as it runs (its id).
    Keep(switchyard_protocol::RuntimeId),
    /// Registered from these settings: new, or replacing the one of the same id.
    Register(Box<crate::config::RemoteSettings>),
}

/// A reload's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The embedded runtime.
    pub embedded: EmbeddedChange,
    /// The remotes, in the new file's order.
    pub remotes: Vec<RemoteChange>,
    /// Keys whose new value waits for a restart (from [`RESTART_ONLY`]), in that
    /// order.
    pub restart_required: Vec<&'static str>,
    /// The settings in force once the plan is applied: the new file's, except the
    /// keys waiting for a restart, which keep their running values.
    pub applied: BackendSettings,
}

/// Compares the running settings with the new ones, read from `file` (`None`: no
/// configuration file). Refuses (as a configuration error naming the key) only what
/// the running process cannot accept: turning authentication off while it listens
/// beyond loopback, and a remote taking the id of the embedded runtime that keeps
/// running until a restart.
pub fn plan(
    running: &BackendSettings,
    next: BackendSettings,
    file: Option<&Path>,
) -> Result<Plan, ConfigError> {
    let origin = || file.map_or(Origin::CommandLine, Origin::file);
    if matches!(next.auth, AuthSettings::Off) && !running.listen.ip().is_loopback() {
        // The file's own `listen` was checked; this is about the address in use.
        return Err(ConfigError::OpenListen {
            origin: origin(),
            key: "auth".to_owned(),
            listen: running.listen,
        });
    }
    let mut applied = next;
    let mut restart_required = Vec::new();
    let mut keep = |key: &'static str, differs: bool| {
        if differs {
            restart_required.push(key);
        }
    };
    keep("listen", applied.listen != running.listen);
    keep(
        "metrics_listen",
        applied.metrics_listen != running.metrics_listen,
    );
    keep("tls", applied.tls.is_some() != running.tls.is_some());
    let embedded = match (&running.embedded, &applied.embedded) {
        (None, None) => EmbeddedChange::None,
        (None, Some(new)) => EmbeddedChange::Add(new.clone()),
        (Some(_), None) => EmbeddedChange::Remove,
        (Some(old), Some(new)) if old == new => EmbeddedChange::Keep,
        (Some(old), Some(new))
            if old.runtime.runtime_id == new.runtime.runtime_id && old.data_dir == new.data_dir =>
        {
            EmbeddedChange::Reconfigure(new.clone())
        }
        (Some(_), Some(_)) => {
            keep("embedded", true);
            EmbeddedChange::Keep
        }
    };
    applied.listen = running.listen;
    applied.metrics_listen = running.metrics_listen;
    if applied.tls.is_some() != running.tls.is_some() {
        applied.tls = running.tls.clone();
    }
    let running_file = signed_out_file(&running.auth);
    keep(
        "auth.signed_out_file",
        signed_out_file(&applied.auth) != running_file,
    );
    if let AuthSettings::Tokens(tokens) = &mut applied.auth {
        tokens.signed_out_file = running_file.cloned();
    }
    if embedded == EmbeddedChange::Keep {
        applied.embedded = running.embedded.clone();
        if let Some(kept) = &applied.embedded
            && let Some(i) = applied
                .remotes
                .iter()
                .position(|r| r.runtime_id == kept.runtime.runtime_id)
        {
            return Err(ConfigError::DuplicateRuntimeId {
                origin: origin(),
                key: format!("remote[{i}].runtime_id"),
                id: kept.runtime.runtime_id.to_string(),
                first:
                    "embedded.runtime_id (the embedded runtime keeps its settings until a restart)"
                        .to_owned(),
            });
        }
    }
    let remotes = applied
        .remotes
        .iter()
        .map(|new| {
            match running
                .remotes
                .iter()
                .find(|old| old.runtime_id == new.runtime_id)
            {
                Some(old) if old.same_as(new) => RemoteChange::Keep(new.runtime_id.clone()),
                _ => RemoteChange::Register(Box::new(new.clone())),
            }
        })
        .collect();
    Ok(Plan {
        embedded,
        remotes,
        restart_required,
        applied,
    })
}
