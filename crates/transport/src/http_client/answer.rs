//! Turning what happened to a call into a result: decoding answers, and mapping
//! statuses, error bodies and transport failures to [`TransportError`].
//!
//! Nothing here formats a URL, an address or a hyper error: the texts are built from
//! the route template, the status and serde's description of what did not decode.

use std::error::Error as StdError;
use std::time::Duration;

use http::StatusCode;
use serde::de::DeserializeOwned;

use super::Call;
use crate::error::{TimeoutPhase, TransportError};
use crate::net_error;
use crate::reason::shorten;
use crate::refusal;

/// The `Protocol` reason for an answer that is not HTTP/1.1.
const NOT_HTTP: &str = "the answer is not valid HTTP/1.1";

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

/// Maps a non-2xx answer under the shared rules (see [`crate::refusal`]), naming the call
/// by its method and route template.
fn non_success(call: &Call, status: StatusCode, body: &[u8]) -> TransportError {
    refusal::transport_error(
        format_args!("{} {}", call.method, call.template),
        status,
        body,
    )
}

/// Maps a failure of the pooled client (connecting, sending, or reading the head).
pub(super) fn client_error(
    error: &hyper_util::client::legacy::Error,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> TransportError {
    let timed_out = if error.is_connect() {
        net_error::timeout(TimeoutPhase::Connect, connect_timeout)
    } else {
        net_error::timeout(TimeoutPhase::Request, request_timeout)
    };
    net_error::classify(error, timed_out, NOT_HTTP)
}

/// Maps a failure while reading the answer's body, read up to `limit` bytes.
pub(super) fn body_error(
    error: &(dyn StdError + Send + Sync + 'static),
    limit: usize,
    request_timeout: Duration,
) -> TransportError {
    let too_large = || {
        format!(
            "the answer's body is larger than {} MiB",
            limit / (1024 * 1024)
        )
    };
    net_error::body_error(error, too_large, request_timeout, NOT_HTTP)
}
