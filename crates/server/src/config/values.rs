//! Validation of single values shared by both files: ids, names, addresses, limits.

use std::net::SocketAddr;
use std::time::Duration;

use switchyard_protocol::RuntimeId;
use switchyard_runtime::RuntimeLimits;

use super::error::{ConfigError, Origin};
use super::file::LimitKeys;

/// `prefix` + `key`, for keys inside a table (`embedded.` + `max_workers`).
pub(crate) fn key(prefix: &str, key: &str) -> String {
    format!("{prefix}{key}")
}

fn invalid(origin: &Origin, key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        origin: origin.clone(),
        key: key.to_owned(),
        problem: problem.into(),
    }
}

/// A runtime id per the contract's id rules.
pub(crate) fn runtime_id(
    origin: &Origin,
    key: &str,
    value: &str,
) -> Result<RuntimeId, ConfigError> {
    RuntimeId::new(value).map_err(|e| invalid(origin, key, format!("{value:?}: {e}")))
}

/// A display name: trimmed, not empty.
pub(crate) fn display_name(origin: &Origin, key: &str, value: &str) -> Result<String, ConfigError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(invalid(
            origin,
            key,
            "must not be empty; omit the key for the default",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A listen address: `IP:PORT`.
pub(crate) fn listen(origin: &Origin, key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.trim().parse().map_err(|_| {
        invalid(
            origin,
            key,
            format!("{value:?} is not an IP:PORT address; write e.g. \"127.0.0.1:7701\" or \"[::1]:7701\" (port 0 takes a free port)"),
        )
    })
}

/// A count or size that must be at least 1.
pub(crate) fn positive<T: Copy + PartialEq + Default>(
    origin: &Origin,
    key: &str,
    value: Option<T>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        Some(v) if v == T::default() => Err(invalid(origin, key, "must be at least 1")),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

/// The longest duration a `*_ms` key takes: one hour. Anything longer is a typo
/// that would hold a shutdown, a call or a probe that long (and near `u64::MAX`
/// would overflow a deadline).
pub(crate) const MAX_MILLIS: u64 = 60 * 60 * 1000;

/// The longest idle timeout a profile takes (`idle_timeout_s`): 30 days.
pub(crate) const MAX_IDLE_SECONDS: u64 = 30 * 24 * 60 * 60;

/// The largest body a listener takes (`max_body_bytes`): 1 GiB.
pub(crate) const MAX_BODY_BYTES: u64 = 1 << 30;

/// A duration in milliseconds from 1 to [`MAX_MILLIS`].
pub(crate) fn millis(
    origin: &Origin,
    key: &str,
    value: Option<u64>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    millis_from(origin, key, value, default, 1)
}

/// A duration in milliseconds from `min` to [`MAX_MILLIS`].
pub(crate) fn millis_from(
    origin: &Origin,
    key: &str,
    value: Option<u64>,
    default: Duration,
    min: u64,
) -> Result<Duration, ConfigError> {
    match value {
        Some(ms) if !(min..=MAX_MILLIS).contains(&ms) => Err(invalid(
            origin,
            key,
            format!("must be from {min} to {MAX_MILLIS} (milliseconds; one hour)"),
        )),
        Some(ms) => Ok(Duration::from_millis(ms)),
        None => Ok(default),
    }
}

/// A size in bytes from 1 to `max`.
pub(crate) fn bytes_up_to(
    origin: &Origin,
    key: &str,
    value: Option<u64>,
    default: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    match value {
        Some(v) if !(1..=max).contains(&v) => Err(invalid(
            origin,
            key,
            format!("must be from 1 to {max} (bytes)"),
        )),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

/// The runtime limits, defaults filled in; `prefix` is the table's key path with its
/// trailing dot (empty at top level).
pub(crate) fn limits(
    origin: &Origin,
    prefix: &str,
    keys: &LimitKeys,
) -> Result<RuntimeLimits, ConfigError> {
    let d = RuntimeLimits::default();
    let k = |name: &str| key(prefix, name);
    // `snapshot_items` is not configurable: its default stays.
    let mut limits = d;
    limits.max_workers = positive(origin, &k("max_workers"), keys.max_workers, d.max_workers)?;
    limits.max_ended_workers = positive(
        origin,
        &k("max_ended_workers"),
        keys.max_ended_workers,
        d.max_ended_workers,
    )?;
    limits.max_input_bytes = bytes_up_to(
        origin,
        &k("max_input_bytes"),
        keys.max_input_bytes,
        d.max_input_bytes,
        switchyard_protocol::MAX_INPUT_TEXT_BYTES,
    )?;
    limits.max_body_bytes = bytes_up_to(
        origin,
        &k("max_body_bytes"),
        keys.max_body_bytes,
        d.max_body_bytes,
        MAX_BODY_BYTES,
    )?;
    limits.transcript_page_max = positive(
        origin,
        &k("transcript_page_max"),
        keys.transcript_page_max,
        d.transcript_page_max,
    )?;
    limits.event_backlog = positive(
        origin,
        &k("event_backlog"),
        keys.event_backlog,
        d.event_backlog,
    )?;
    limits.input_queue = positive(origin, &k("input_queue"), keys.input_queue, d.input_queue)?;
    limits.subscriber_queue = positive(
        origin,
        &k("subscriber_queue"),
        keys.subscriber_queue,
        d.subscriber_queue,
    )?;
    // Zero is allowed: SIGKILL right after SIGTERM.
    limits.stop_grace = millis_from(
        origin,
        &k("stop_grace_ms"),
        keys.stop_grace_ms,
        d.stop_grace,
        0,
    )?;
    Ok(limits)
}
