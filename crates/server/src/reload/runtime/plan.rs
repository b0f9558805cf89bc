//! What a standalone runtime's reload changes: the settings in force compared with
//! a new, valid configuration. Pure: no I/O, nothing applied (see
//! [`super::RuntimeReloader`] for that).
//!
//! - Every key of [`APPLIES`] takes its new value, for what starts from then on:
//!   the accepted tokens, the display name, the profiles and the limits. None of
//!   them stops, cuts or resizes anything that runs.
//! - Every key of [`RESTART_ONLY`] keeps its running value and is reported as
//!   needing a restart.
//! - Refused (a configuration error naming the key): a configuration without a
//!   token while the runtime listens beyond loopback.

use std::collections::BTreeMap;

use switchyard_runtime::Profile;
use switchyard_transport::SecretToken;

use crate::config::{ConfigError, RuntimeSettings, TokenSource};

/// The keys a reload cannot apply, with what each one is.
pub const RESTART_ONLY: &[(&str, &str)] = &[
    ("listen", "the listen address"),
    (
        "runtime_id",
        "the runtime's id, which its workers, their records and their cursors carry,",
    ),
    ("data_dir", "the store's directory"),
    ("tls", "serving HTTPS or plain HTTP"),
];

/// A key a reload applies: its name, where it applies, and how to tell whether it
/// changed.
#[derive(Clone, Copy)]
pub struct AppliedKey {
    /// The key as the file names it; `tokens` stands for the token source
    /// (`--token-file`, `token_file`, `token_env`): the tokens it holds.
    pub key: &'static str,
    /// Where the new value applies, for the log.
    pub applies: &'static str,
    differs: fn(&RuntimeSettings, &RuntimeSettings) -> bool,
}

impl std::fmt::Debug for AppliedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppliedKey")
            .field("key", &self.key)
            .field("applies", &self.applies)
            .finish_non_exhaustive()
    }
}

/// Where a per-worker size applies.
const NEW_WORKERS: &str = "to workers created from now on (running workers keep theirs)";

/// The keys a reload applies, for what starts from then on; none of them stops, cuts
/// or resizes anything that runs.
pub const APPLIES: &[AppliedKey] = &[
    AppliedKey {
        key: "tokens",
        applies: "to the next request and the next WebSocket handshake; open event streams whose token is gone close (1001)",
        differs: |a, b| !same_tokens(&a.tokens, &b.tokens),
    },
    AppliedKey {
        key: "display_name",
        applies: "at once",
        differs: |a, b| a.runtime.display_name != b.runtime.display_name,
    },
    AppliedKey {
        key: "profiles",
        applies: "to workers created from now on (running workers keep the profile they started from)",
        differs: |a, b| a.runtime.profiles != b.runtime.profiles,
    },
    AppliedKey {
        key: "max_workers",
        applies: "to the next create (no running worker is stopped)",
        differs: |a, b| a.runtime.limits.max_workers != b.runtime.limits.max_workers,
    },
    AppliedKey {
        key: "max_ended_workers",
        applies: "at the next creates, each deleting a few of the workers that ended first past it",
        differs: |a, b| a.runtime.limits.max_ended_workers != b.runtime.limits.max_ended_workers,
    },
    AppliedKey {
        key: "max_input_bytes",
        applies: "to the next input, on every worker",
        differs: |a, b| a.runtime.limits.max_input_bytes != b.runtime.limits.max_input_bytes,
    },
    AppliedKey {
        key: "max_body_bytes",
        applies: "to the requests that start from now on",
        differs: |a, b| a.runtime.limits.max_body_bytes != b.runtime.limits.max_body_bytes,
    },
    AppliedKey {
        key: "transcript_page_max",
        applies: "to the next page asked for",
        differs: |a, b| {
            a.runtime.limits.transcript_page_max != b.runtime.limits.transcript_page_max
        },
    },
    AppliedKey {
        key: "event_backlog",
        applies: NEW_WORKERS,
        differs: |a, b| a.runtime.limits.event_backlog != b.runtime.limits.event_backlog,
    },
    AppliedKey {
        key: "input_queue",
        applies: NEW_WORKERS,
        differs: |a, b| a.runtime.limits.input_queue != b.runtime.limits.input_queue,
    },
    AppliedKey {
        key: "subscriber_queue",
        applies: NEW_WORKERS,
        differs: |a, b| a.runtime.limits.subscriber_queue != b.runtime.limits.subscriber_queue,
    },
    AppliedKey {
        key: "stop_grace_ms",
        applies: "to the stops asked from now on",
        differs: |a, b| a.runtime.limits.stop_grace != b.runtime.limits.stop_grace,
    },
    AppliedKey {
        key: "max_connections",
        applies: "to new connections (none of those open is cut)",
        differs: |a, b| a.max_connections != b.max_connections,
    },
];

/// The profiles a reload adds, changes and removes, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    /// New profiles.
    pub added: Vec<String>,
    /// Profiles whose settings changed: new workers get the new ones.
    pub changed: Vec<String>,
    /// Profiles no longer configured: creating from them is `400 unknown_profile`;
    /// their running workers run on.
    pub removed: Vec<String>,
}

impl ProfileChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// A reload's plan.
#[derive(Debug, Clone)]
pub struct RuntimePlan {
    /// Keys from [`APPLIES`] whose value changes, in that order.
    pub changed: Vec<&'static str>,
    /// What happens to the profiles (`profiles` is in `changed` when this is not
    /// empty).
    pub profiles: ProfileChanges,
    /// Whether the listener's TLS files are read again (it serves HTTPS, and will).
    pub tls_reload: bool,
    /// Keys whose new value waits for a restart (from [`RESTART_ONLY`]), in that
    /// order.
    pub restart_required: Vec<&'static str>,
    /// The settings in force once the plan is applied: the new ones, except the
    /// keys waiting for a restart, which keep their running values.
    pub applied: RuntimeSettings,
}

/// Compares the settings in force with the new ones, whose tokens came from
/// `tokens_from`. Refuses only what the running process cannot accept: no token,
/// or a short one, while it listens beyond loopback (the new file's own `listen`
/// was checked as at start; this is about the address in use), named by where
/// the tokens came from.
pub fn plan(
    running: &RuntimeSettings,
    next: RuntimeSettings,
    tokens_from: &TokenSource,
) -> Result<RuntimePlan, ConfigError> {
    if next.tokens.is_empty() && !running.listen.ip().is_loopback() {
        return Err(ConfigError::InsecureListen {
            origin: tokens_from.origin.clone(),
            key: tokens_from.key.to_owned(),
            listen: running.listen,
        });
    }
    crate::config::weak_listen_token(
        &next.tokens,
        running.listen,
        tokens_from.origin.clone(),
        tokens_from.key,
    )?;
    let mut applied = next;
    let mut restart_required = Vec::new();
    let mut keep = |key: &'static str, differs: bool| {
        if differs {
            restart_required.push(key);
        }
    };
    keep("listen", applied.listen != running.listen);
    keep(
        "runtime_id",
        applied.runtime.runtime_id != running.runtime.runtime_id,
    );
    keep("data_dir", applied.data_dir != running.data_dir);
    let tls_switched = applied.tls.is_some() != running.tls.is_some();
    keep("tls", tls_switched);
    applied.listen = running.listen;
    // A display name that is the id (the default without `display_name`) stays the
    // running id's while the new id waits for a restart.
    if applied.runtime.display_name == applied.runtime.runtime_id.as_str()
        && running.runtime.display_name == running.runtime.runtime_id.as_str()
    {
        applied.runtime.display_name = running.runtime.display_name.clone();
    }
    applied.runtime.runtime_id = running.runtime.runtime_id.clone();
    applied.data_dir = running.data_dir.clone();
    if tls_switched {
        applied.tls = running.tls.clone();
    }
    let tls_reload = !tls_switched && applied.tls.is_some();

    let profiles = profile_changes(&running.runtime.profiles, &applied.runtime.profiles);
    let changed = APPLIES
        .iter()
        .filter(|key| (key.differs)(running, &applied))
        .map(|key| key.key)
        .collect();
    Ok(RuntimePlan {
        changed,
        profiles,
        tls_reload,
        restart_required,
        applied,
    })
}

/// The same tokens in the same order, compared by content (in constant time).
fn same_tokens(old: &[SecretToken], new: &[SecretToken]) -> bool {
    old.len() == new.len() && old.iter().zip(new).all(|(a, b)| a.matches(b.expose()))
}

/// Profiles added, changed and removed, each list in name order.
pub fn profile_changes(
    old: &BTreeMap<String, Profile>,
    new: &BTreeMap<String, Profile>,
) -> ProfileChanges {
    let mut changes = ProfileChanges::default();
    for (name, profile) in new {
        match old.get(name) {
            None => changes.added.push(name.clone()),
            Some(before) if before != profile => changes.changed.push(name.clone()),
            Some(_) => {}
        }
    }
    changes.removed = old
        .keys()
        .filter(|name| !new.contains_key(*name))
        .cloned()
        .collect();
    changes
}
