//! Mapping a runtime's refusal, an HTTP answer other than the success a call
//! expected, to a [`TransportError`]: the same rules for the REST client's non-2xx
//! answers and the events client's non-101 answers to its upgrade.
//!
//! Texts are built from the route as the contract names it, the status and serde's
//! description of what did not decode; never from a URL.

use std::fmt::Display;

use http::StatusCode;
use switchyard_protocol::{ErrorBody, ErrorCode};

use crate::error::TransportError;
use crate::reason::shorten;

/// Maps a refusal of `route` (method and template, e.g. `GET /v1/workers/{id}`).
///
/// - 401: the runtime rejected our token.
/// - 404/405 carrying `route_not_found`/`method_not_allowed`, or without a contract
///   error body (another server, an older runtime), and any 501: the runtime lacks
///   the route.
/// - Any other status with a contract error body: the runtime's own error, passed
///   through.
/// - Anything else: a protocol error.
pub(crate) fn transport_error(
    route: impl Display,
    status: StatusCode,
    body: &[u8],
) -> TransportError {
    if status == StatusCode::UNAUTHORIZED {
        return TransportError::AuthRejected;
    }
    let parsed = serde_json::from_slice::<ErrorBody>(body);
    let unsupported = || TransportError::Unsupported {
        what: route.to_string(),
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
