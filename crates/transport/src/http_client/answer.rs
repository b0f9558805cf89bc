//! Turning what happened to a call into a result: decoding answers, and mapping
//! statuses, error bodies and transport failures to [`TransportError`].
//!
//! Nothing here formats a URL, an address or a hyper error: the texts are built from
//! the route template, the status and serde's description of what did not decode.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use http::StatusCode;
use http_body_util::LengthLimitError;
use serde::de::DeserializeOwned;
use switchyard_protocol::{ErrorBody, ErrorCode};

use super::{Call, millis};
use crate::error::{TimeoutPhase, TransportError, UnreachableKind};

/// Longest serde description kept in a `Protocol` reason.
const MAX_REASON_CHARS: usize = 300;

/// Decodes a 2xx answer as `T`, or maps a non-2xx one.
pub(super) fn decode<T: DeserializeOwned>(
    call: &Call,
    status: StatusCode,
    body: &[u8],
    what: &str,
) -> Result<T, TransportError> {
    if !status.is_success() {
        return Err(non_success(call, status, body));
    }
    serde_json::from_slice(body).map_err(|e| TransportError::Protocol {
        reason: format!("expected {what}: {}", shorten(&e.to_string())),
    })
}

/// Accepts any 2xx answer (its body is ignored), or maps a non-2xx one.
pub(super) fn expect_success(
    call: &Call,
    status: StatusCode,
    body: &[u8],
) -> Result<(), TransportError> {
    if status.is_success() {
        Ok(())
    } else {
        Err(non_success(call, status, body))
    }
}

/// Maps a non-2xx answer.
///
/// - 401: the runtime rejected our token.
/// - 404/405 carrying `route_not_found`/`method_not_allowed`, or without a contract
///   error body (another server, an older runtime), and any 501: the runtime lacks
///   the route.
/// - Any other status with a contract error body: the runtime's own error, passed
///   through.
/// - Anything else: a protocol error.
fn non_success(call: &Call, status: StatusCode, body: &[u8]) -> TransportError {
    if status == StatusCode::UNAUTHORIZED {
        return TransportError::AuthRejected;
    }
    let parsed = serde_json::from_slice::<ErrorBody>(body);
    let unsupported = || TransportError::Unsupported {
        what: format!("{} {}", call.method, call.template),
    };
    match status {
        StatusCode::NOT_IMPLEMENTED => return unsupported(),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => match &parsed {
            Ok(ErrorBody { error })
                if matches!(
                    error.code,
                    ErrorCode::RouteNotFound | ErrorCode::MethodNotAllowed
                ) =>
            {
                return unsupported();
            }
            Err(_) => return unsupported(),
            Ok(_) => {}
        },
        _ => {}
    }
    match parsed {
        Ok(ErrorBody { error }) => TransportError::Runtime {
            status: status.as_u16(),
            detail: error,
        },
        Err(e) => TransportError::Protocol {
            reason: format!(
                "expected an error body with status {}: {}",
                status.as_u16(),
                shorten(&e.to_string())
            ),
        },
    }
}

/// Maps a failure of the pooled client (connecting, sending, or reading the head).
pub(super) fn client_error(
    error: &hyper_util::client::legacy::Error,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> TransportError {
    classify(error, error.is_connect(), connect_timeout, request_timeout)
}

/// Maps a failure while reading the answer's body.
pub(super) fn body_error(
    error: &(dyn StdError + Send + Sync + 'static),
    limit: usize,
    request_timeout: Duration,
) -> TransportError {
    if error.is::<LengthLimitError>() {
        return TransportError::Protocol {
            reason: format!(
                "the answer's body is larger than {} MiB",
                limit / (1024 * 1024)
            ),
        };
    }
    classify(error, false, Duration::ZERO, request_timeout)
}

/// Walks the source chain for what is known about the failure: hyper-util's
/// connector reports name resolution as a "dns error", the socket layer reports
/// `io::ErrorKind`s, hyper reports closed connections and unparsable answers.
fn classify(
    error: &(dyn StdError + 'static),
    is_connect: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> TransportError {
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
    let unreachable = |kind| TransportError::Unreachable { kind };
    if dns {
        return unreachable(UnreachableKind::Dns);
    }
    match io_kind {
        Some(io::ErrorKind::TimedOut) if is_connect => {
            return TransportError::Timeout {
                phase: TimeoutPhase::Connect,
                timeout_ms: millis(connect_timeout),
            };
        }
        Some(io::ErrorKind::TimedOut) => {
            return TransportError::Timeout {
                phase: TimeoutPhase::Request,
                timeout_ms: millis(request_timeout),
            };
        }
        Some(io::ErrorKind::ConnectionRefused) => return unreachable(UnreachableKind::Refused),
        Some(
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected,
        ) => return unreachable(UnreachableKind::Reset),
        _ => {}
    }
    if parse {
        return TransportError::Protocol {
            reason: "the answer is not valid HTTP/1.1".into(),
        };
    }
    if closed {
        return unreachable(UnreachableKind::Reset);
    }
    unreachable(UnreachableKind::Other)
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}
