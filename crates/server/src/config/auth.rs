//! The backend's `[auth]` table: tokens (by hash), roles, runtime grants, worker
//! scopes and sessions. No error here echoes a `token_sha256` value: it might be a
//! token pasted into the wrong key.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use switchyard_registry::{Role, RuntimeGlob, RuntimeGrants, WorkerScope};

use super::error::{ConfigError, Origin};
use super::file::{AuthFile, TokenFile};
use super::parse::FileContext;
use super::values;
use crate::auth::session::DEFAULT_SESSION_TTL;
use crate::auth::{Clock, SessionKey, TokenEntry, TokenHash, valid_name};

/// The longest session accepted: 30 days.
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Who the backend serves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AuthSettings {
    /// No `[auth]` table: everyone is admin, and only a loopback listen is allowed.
    Off,
    /// `[auth] open = true`: everyone is admin, on any address (warned at start).
    Open,
    /// Tokens: every request needs a bearer token or a session cookie.
    Tokens(TokenAuthSettings),
}

impl AuthSettings {
    /// True when requests need credentials.
    pub fn is_on(&self) -> bool {
        matches!(self, Self::Tokens(_))
    }
}

/// `[auth]` with tokens. `Debug` never shows a hash or the session key.
#[derive(Debug, Clone)]
pub struct TokenAuthSettings {
    /// The configured tokens, in file order.
    pub tokens: Vec<TokenEntry>,
    /// The key sessions are signed with; `None` for a random key per process.
    pub session_key: Option<SessionKey>,
    /// How long a session lasts.
    pub session_ttl: Duration,
    /// Where sign-outs are kept across restarts and shared with other backends
    /// (`auth.signed_out_file`, resolved against the configuration's directory);
    /// `None`: each process keeps its own until it stops.
    pub signed_out_file: Option<PathBuf>,
    /// Where sessions read the time (the system clock; tests set their own).
    pub clock: Clock,
}

fn invalid(origin: &Origin, key: String, problem: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        origin: origin.clone(),
        key,
        problem: problem.into(),
    }
}

/// Validates the `[auth]` table (absent: [`AuthSettings::Off`]).
pub(crate) fn build(ctx: &FileContext, raw: Option<AuthFile>) -> Result<AuthSettings, ConfigError> {
    let Some(raw) = raw else {
        return Ok(AuthSettings::Off);
    };
    let fo = ctx.origin();
    if raw.open == Some(true) {
        let conflicting = [
            (!raw.token.is_empty(), "auth.token"),
            (raw.session_key_file.is_some(), "auth.session_key_file"),
            (raw.session_ttl_s.is_some(), "auth.session_ttl_s"),
            (raw.signed_out_file.is_some(), "auth.signed_out_file"),
        ];
        if let Some((_, other)) = conflicting.iter().find(|(set, _)| *set) {
            return Err(ConfigError::Conflict {
                origin: fo,
                key: "auth.open".to_owned(),
                other: (*other).to_owned(),
            });
        }
        return Ok(AuthSettings::Open);
    }
    if raw.token.is_empty() {
        return Err(ConfigError::MissingKey {
            origin: fo,
            key: "auth.token".to_owned(),
            hint: "add at least one [[auth.token]] entry (`switchyard token` prints one), or set open = true to serve everyone as admin".to_owned(),
        });
    }
    let mut tokens: Vec<TokenEntry> = Vec::with_capacity(raw.token.len());
    for (i, token) in raw.token.into_iter().enumerate() {
        let entry = token_entry(&fo, i, token)?;
        let key = |name: &str| format!("auth.token[{i}].{name}");
        if let Some(first) = tokens.iter().position(|t| t.name == entry.name) {
            return Err(invalid(
                &fo,
                key("name"),
                format!(
                    "{:?} is already the name of auth.token[{first}]; give every identity a distinct name",
                    entry.name
                ),
            ));
        }
        if let Some(first) = tokens.iter().position(|t| t.hash == entry.hash) {
            return Err(invalid(
                &fo,
                key("token_sha256"),
                format!(
                    "is the same as auth.token[{first}]'s; give every identity its own token (`switchyard token`)"
                ),
            ));
        }
        tokens.push(entry);
    }
    let session_key = match &raw.session_key_file {
        None => None,
        Some(path) => {
            let path = ctx.resolve(path);
            let bytes = fs::read(&path).map_err(|source| ConfigError::SessionKeyUnreadable {
                origin: fo.clone(),
                key: "auth.session_key_file".to_owned(),
                path: path.clone(),
                source,
            })?;
            let len = bytes.len();
            Some(SessionKey::new(bytes).ok_or_else(|| {
                invalid(
                    &fo,
                    "auth.session_key_file".to_owned(),
                    format!(
                        "{} holds {len} bytes; a session key needs at least 32 (e.g. head -c 32 /dev/urandom > {})",
                        path.display(),
                        path.display()
                    ),
                )
            })?)
        }
    };
    let session_ttl = match raw.session_ttl_s {
        None => DEFAULT_SESSION_TTL,
        Some(s) => {
            let s = values::positive(&fo, "auth.session_ttl_s", Some(s), 0)?;
            let ttl = Duration::from_secs(s);
            if ttl > MAX_SESSION_TTL {
                return Err(invalid(
                    &fo,
                    "auth.session_ttl_s".to_owned(),
                    format!("is at most {} (30 days)", MAX_SESSION_TTL.as_secs()),
                ));
            }
            ttl
        }
    };
    let signed_out_file = match (&raw.signed_out_file, &session_key) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(invalid(
                &fo,
                "auth.signed_out_file".to_owned(),
                "needs auth.session_key_file: without a fixed session key every session ends when the backend restarts, and replicas cannot accept each other's cookies",
            ));
        }
        (Some(path), Some(_)) => Some(ctx.resolve(path)),
    };
    Ok(AuthSettings::Tokens(TokenAuthSettings {
        tokens,
        session_key,
        session_ttl,
        signed_out_file,
        clock: Clock::system(),
    }))
}

fn token_entry(fo: &Origin, index: usize, raw: TokenFile) -> Result<TokenEntry, ConfigError> {
    let key = |name: &str| format!("auth.token[{index}].{name}");
    let name = raw.name.trim();
    if !valid_name(name) {
        return Err(invalid(
            fo,
            key("name"),
            "must be 1 to 64 of A-Z a-z 0-9 . _ - @, and not \"-\" or \"anonymous\" (it names the identity in audit lines and as workers' owner)",
        ));
    }
    let hash = TokenHash::from_hex(&raw.token_sha256)
        .map_err(|e| invalid(fo, key("token_sha256"), e.to_string()))?;
    let runtimes = match raw.runtimes {
        None => RuntimeGrants::All,
        Some(list) if list.is_empty() => {
            return Err(invalid(
                fo,
                key("runtimes"),
                "must list at least one runtime id or pattern; omit the key for every runtime",
            ));
        }
        Some(list) => {
            let mut globs = Vec::with_capacity(list.len());
            for (j, pattern) in list.iter().enumerate() {
                let glob = RuntimeGlob::new(pattern.trim()).map_err(|e| {
                    invalid(
                        fo,
                        format!("auth.token[{index}].runtimes[{j}]"),
                        e.to_string(),
                    )
                })?;
                globs.push(glob);
            }
            RuntimeGrants::Only(globs)
        }
    };
    let workers = match (raw.role, raw.workers) {
        (Role::Admin, Some(WorkerScope::Own)) => {
            return Err(invalid(
                fo,
                key("workers"),
                "an admin reaches every worker; remove workers = \"own\" or give the token the operator role",
            ));
        }
        (Role::Admin, _) => WorkerScope::All,
        (_, Some(scope)) => scope,
        (_, None) => WorkerScope::Own,
    };
    Ok(TokenEntry {
        name: name.to_owned(),
        hash,
        role: raw.role,
        runtimes,
        workers,
    })
}
