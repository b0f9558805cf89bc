//! Connection failures, as the socket layer, rustls, hyper and hyper-util report them,
//! mapped to [`TransportError`]: a TLS failure, an unreachable runtime, a deadline
//! that passed, or an answer that is not HTTP/1.1 or is larger than the client reads.
//!
//! Nothing here formats the error it is given, which may name the peer: texts are
//! fixed, or given by the caller.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use http_body_util::LengthLimitError;

use crate::error::{TimeoutPhase, TlsFailure, TransportError, UnreachableKind};
use crate::tls::tls_failure_in;

/// The runtime could not be reached, for `kind`.
pub(crate) fn unreachable(kind: UnreachableKind) -> TransportError {
    TransportError::Unreachable { kind }
}

/// The `phase` deadline, `limit`, passed.
pub(crate) fn timeout(phase: TimeoutPhase, limit: Duration) -> TransportError {
    TransportError::Timeout {
        phase,
        timeout_ms: millis(limit),
    }
}

/// Whether an I/O failure of this kind means the connection was reset or closed
/// under us.
pub(crate) fn is_reset(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
    )
}

/// Maps an I/O failure's kind, when it says something: `timed_out` for a socket
/// timeout, refused, or reset.
fn io_error(kind: io::ErrorKind, timed_out: TransportError) -> Option<TransportError> {
    match kind {
        io::ErrorKind::TimedOut => Some(timed_out),
        io::ErrorKind::ConnectionRefused => Some(unreachable(UnreachableKind::Refused)),
        kind if is_reset(kind) => Some(unreachable(UnreachableKind::Reset)),
        _ => None,
    }
}

/// Maps a failed TCP connect.
pub(crate) fn connect_error(error: &io::Error, connect_timeout: Duration) -> TransportError {
    io_error(
        error.kind(),
        timeout(TimeoutPhase::Connect, connect_timeout),
    )
    .unwrap_or(unreachable(UnreachableKind::Other))
}

/// Walks the source chain of a failed HTTP exchange for what is known about it: a
/// TLS failure (from the handshake, or an alert read after it) comes first;
/// hyper-util's connector reports name resolution as a "dns error", the socket layer
/// reports `io::ErrorKind`s, hyper reports closed connections and unparsable answers.
///
/// A socket timeout becomes `timed_out`; an unparsable answer a protocol error with
/// the reason `not_http`.
pub(crate) fn classify(
    error: &(dyn StdError + 'static),
    timed_out: TransportError,
    not_http: &str,
) -> TransportError {
    if let Some((kind, _detail)) = tls_failure_in(error) {
        // A handshake that does not finish in time is a timeout, as a TCP connect's
        // is: a hung or overloaded runtime, not a certificate to fix.
        if kind == TlsFailure::HandshakeTimeout {
            return timed_out;
        }
        return TransportError::Tls { kind };
    }
    let mut dns = false;
    let mut io_kind = None;
    let mut parse = false;
    let mut closed = false;
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            io_kind.get_or_insert(io.kind());
        } else if let Some(h) = e.downcast_ref::<hyper::Error>() {
            parse |= h.is_parse();
            closed |= h.is_incomplete_message()
                || h.is_closed()
                || h.is_canceled()
                || h.is_body_write_aborted();
        } else if e.to_string() == "dns error" {
            dns = true;
        }
        current = e.source();
    }
    if dns {
        return unreachable(UnreachableKind::Dns);
    }
    if let Some(error) = io_kind.and_then(|kind| io_error(kind, timed_out)) {
        return error;
    }
    if parse {
        return TransportError::Protocol {
            reason: not_http.into(),
        };
    }
    if closed {
        return unreachable(UnreachableKind::Reset);
    }
    unreachable(UnreachableKind::Other)
}

/// Maps a failure while reading an answer's body through
/// [`Limited`](http_body_util::Limited): a body over the limit is a protocol error
/// with the reason `too_large`; anything else as [`classify`] does, a socket timeout
/// counting against `request_timeout`.
pub(crate) fn body_error(
    error: &(dyn StdError + Send + Sync + 'static),
    too_large: impl FnOnce() -> String,
    request_timeout: Duration,
    not_http: &str,
) -> TransportError {
    if error.is::<LengthLimitError>() {
        return TransportError::Protocol {
            reason: too_large(),
        };
    }
    classify(
        error,
        timeout(TimeoutPhase::Request, request_timeout),
        not_http,
    )
}

/// `d` in whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
