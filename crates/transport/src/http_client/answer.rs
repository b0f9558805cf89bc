//! Turning what happened to a call into a result: decoding answers, and mapping
//! statuses, error bodies and transport failures to [`TransportError`].
//!
//! Nothing here formats a URL, an address or a hyper error: the texts are built from
//! the route template, the status and serde's description of what did not decode.

use std::time::Duration;

use http::StatusCode;
use serde::de::DeserializeOwned;

use super::http1::Malformed;
use super::upstream::ExchangeError;
use super::{Answer, Call};
use crate::error::{TimeoutPhase, TransportError, UnreachableKind};
use crate::net_error;
use crate::refusal::{self, RouteKind};
use crate::rest::decode_answer;

/// The `Protocol` reason for an answer that is not HTTP/1.1.
pub(super) const NOT_HTTP: &str = "the answer is not valid HTTP/1.1";

/// The `Protocol` reason for a successful answer that does not say it is JSON.
const NOT_JSON: &str = "the answer's Content-Type is not application/json";

/// Decodes a 2xx JSON answer as `T`, or maps a non-2xx one.
pub(super) fn decode<T: DeserializeOwned>(
    call: &Call,
    answer: &Answer,
    what: &str,
) -> Result<T, TransportError> {
    decode_answer(json_body(call, answer)?, what)
}

/// The body of a 2xx answer that says it is JSON, or the error: a non-2xx answer
/// mapped, or a protocol error for another content type.
pub(super) fn json_body<'a>(call: &Call, answer: &'a Answer) -> Result<&'a [u8], TransportError> {
    if !answer.status.is_success() {
        return Err(non_success(call, answer.status, &answer.body));
    }
    if !answer.json {
        return Err(TransportError::Protocol {
            reason: NOT_JSON.into(),
        });
    }
    Ok(&answer.body)
}

/// The `Protocol` reason for a success other than the `204 No Content` a call
/// without an answer body (`DELETE`) gets.
const NOT_NO_CONTENT: &str = "the runtime did not answer 204 No Content";

/// Accepts `204 No Content` (what the Runtime API answers a call that has nothing
/// to return), or maps a non-2xx answer; any other success (a body where none is
/// due) is a protocol error, not taken as done.
pub(super) fn expect_no_content(call: &Call, answer: &Answer) -> Result<(), TransportError> {
    if answer.status == StatusCode::NO_CONTENT && answer.body.is_empty() {
        Ok(())
    } else if answer.status.is_success() {
        Err(TransportError::Protocol {
            reason: NOT_NO_CONTENT.into(),
        })
    } else {
        Err(non_success(call, answer.status, &answer.body))
    }
}

/// Maps a non-2xx answer under the shared rules (see [`crate::refusal`]), naming the call
/// by its method and route template.
fn non_success(call: &Call, status: StatusCode, body: &[u8]) -> TransportError {
    let kind = if call.template == super::RESIZE_ROUTE {
        RouteKind::Optional
    } else {
        RouteKind::EveryRuntime
    };
    refusal::transport_error(
        format_args!("{} {}", call.method, call.template),
        kind,
        status,
        body,
    )
}

/// Maps a failed exchange on an open connection (bodies read up to `limit`).
pub(super) fn exchange_error(
    error: &ExchangeError,
    limit: usize,
    request_timeout: Duration,
) -> TransportError {
    match error {
        ExchangeError::NotSent(e) | ExchangeError::ReadBeforeAnswer(e) | ExchangeError::Read(e) => {
            net_error::classify(
                e,
                net_error::timeout(TimeoutPhase::Request, request_timeout),
                NOT_HTTP,
            )
        }
        ExchangeError::ClosedBeforeAnswer | ExchangeError::Truncated => {
            net_error::unreachable(UnreachableKind::Reset)
        }
        ExchangeError::Malformed(Malformed(reason)) => TransportError::Protocol {
            reason: (*reason).into(),
        },
        ExchangeError::TooLarge => TransportError::Protocol {
            reason: too_large(limit),
        },
    }
}

/// The reason for an answer whose body is larger than `limit`.
fn too_large(limit: usize) -> String {
    format!(
        "the answer's body is larger than {} MiB",
        limit / (1024 * 1024)
    )
}
