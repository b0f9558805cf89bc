//! Mapping a runtime's refusal, an HTTP answer other than the success a call
//! expected, to a [`TransportError`]: the same rules for the REST client's non-2xx
//! answers and the events client's non-101 answers to its upgrade.
//!
//! Texts are built from the route as the contract names it, the status and serde's
//! description of what did not decode; never from a URL.

use std::fmt::Display;

use http::StatusCode;
use switchyard_protocol::{ErrorBody, ErrorCode, HTTPS_ONLY_MESSAGE};

use crate::error::TransportError;
use crate::reason::shorten;

/// Whether a route is one that every runtime of API version 1 serves (CONTRACT.md's
/// `/v1` table), or one a runtime may lack (resizing a terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteKind {
    /// Served by every runtime: a server that says it has no such route is not a
    /// runtime, or the base URL's path is wrong.
    EveryRuntime,
    /// A capability a runtime may lack.
    Optional,
}

/// Maps a refusal of `route` (method and template, e.g. `GET /v1/workers/{id}`).
///
/// - 401: the runtime rejected our token.
/// - 404/405 carrying `route_not_found`/`method_not_allowed`, or without a contract
///   error body (another server, an older runtime): for an optional route the
///   runtime lacks it (`Unsupported`); for one every runtime serves, a protocol
///   error that points at the base URL.
/// - 501: the runtime says it lacks the capability (`Unsupported`).
/// - Any other status with a contract error body: the runtime's own error, passed
///   through.
/// - Anything else: a protocol error.
pub(crate) fn transport_error(
    route: impl Display,
    kind: RouteKind,
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
    let missing = || match kind {
        RouteKind::Optional => unsupported(),
        RouteKind::EveryRuntime => TransportError::Protocol {
            reason: format!(
                "the server at the base_url does not serve {route}: it is not a Switchyard \
                 runtime, or the base_url's path is wrong"
            ),
        },
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
                return missing();
            }
            Err(_) => return missing(),
            Ok(_) => {}
        },
        _ => {}
    }
    match parsed {
        // Plain HTTP to a runtime that serves HTTPS only: not the caller's request
        // but the backend's base URL is wrong.
        Ok(ErrorBody { error })
            if error.code == ErrorCode::InvalidRequest && error.message == HTTPS_ONLY_MESSAGE =>
        {
            TransportError::Protocol {
                reason: "the runtime serves HTTPS only on that port; use an https:// base_url"
                    .into(),
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_protocol::ErrorDetail;

    #[test]
    fn an_https_only_refusal_is_a_protocol_error_about_the_base_url() {
        let body = |message: &str| {
            serde_json::to_vec(&ErrorBody::from(ErrorDetail::new(
                ErrorCode::InvalidRequest,
                message,
            )))
            .unwrap()
        };
        let error = transport_error(
            "GET /v1/runtime",
            RouteKind::EveryRuntime,
            StatusCode::BAD_REQUEST,
            &body(HTTPS_ONLY_MESSAGE),
        );
        assert!(
            matches!(&error, TransportError::Protocol { reason } if reason.contains("https://")),
            "{error:?}"
        );
        // Any other invalid_request is the runtime's own answer, passed through.
        let error = transport_error(
            "GET /v1/runtime",
            RouteKind::EveryRuntime,
            StatusCode::BAD_REQUEST,
            &body("bad limit"),
        );
        assert!(
            matches!(error, TransportError::Runtime { status: 400, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn a_missing_route_every_runtime_serves_is_a_protocol_error_about_the_base_url() {
        let missing = serde_json::to_vec(&ErrorBody::from(ErrorDetail::new(
            ErrorCode::RouteNotFound,
            "no route",
        )))
        .unwrap();
        for (status, body) in [
            (StatusCode::NOT_FOUND, missing.as_slice()),
            (StatusCode::NOT_FOUND, b"<html>not found</html>".as_slice()),
            (StatusCode::METHOD_NOT_ALLOWED, b"".as_slice()),
        ] {
            let error = transport_error("GET /v1/workers", RouteKind::EveryRuntime, status, body);
            assert!(
                matches!(&error, TransportError::Protocol { reason }
                    if reason.contains("does not serve GET /v1/workers")
                        && reason.contains("base_url's path")),
                "{status}: {error:?}"
            );
            let error = transport_error(
                "POST /v1/workers/{id}/resize",
                RouteKind::Optional,
                status,
                body,
            );
            assert!(
                matches!(error, TransportError::Unsupported { .. }),
                "{error:?}"
            );
        }
        // A runtime that says it lacks the capability is believed, whatever the route.
        let error = transport_error(
            "GET /v1/workers",
            RouteKind::EveryRuntime,
            StatusCode::NOT_IMPLEMENTED,
            b"",
        );
        assert!(
            matches!(error, TransportError::Unsupported { .. }),
            "{error:?}"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use switchyard_protocol::arbitrary::error_body;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// Any answer maps to an error without a panic: 401 is always our
            /// credentials, a contract error body is passed through with its status
            /// (unless it says the route is missing), anything else is the runtime's
            /// protocol error or a missing route.
            #[test]
            fn any_refusal_maps_to_one_typed_error(
                status in 100u16..600,
                body in error_body(),
                junk in proptest::collection::vec(any::<u8>(), 0..64),
            ) {
                let status = StatusCode::from_u16(status).unwrap();
                let encoded = serde_json::to_vec(&body).unwrap();
                let error = transport_error("GET /v1/x", RouteKind::Optional, status, &encoded);
                let route_missing = matches!(
                    body.error.code,
                    ErrorCode::RouteNotFound | ErrorCode::MethodNotAllowed
                ) && matches!(status.as_u16(), 404 | 405);
                let https_only = body.error.code == ErrorCode::InvalidRequest
                    && body.error.message == HTTPS_ONLY_MESSAGE;
                match status.as_u16() {
                    401 => prop_assert!(matches!(error, TransportError::AuthRejected), "{:?}", error),
                    501 => prop_assert!(
                        matches!(error, TransportError::Unsupported { .. }), "{:?}", error
                    ),
                    _ if route_missing => prop_assert!(
                        matches!(error, TransportError::Unsupported { .. }), "{:?}", error
                    ),
                    _ if https_only => prop_assert!(
                        matches!(error, TransportError::Protocol { .. }), "{:?}", error
                    ),
                    code => prop_assert!(
                        matches!(&error, TransportError::Runtime { status, detail }
                            if *status == code && *detail == body.error),
                        "{error:?}"
                    ),
                }
                let error = transport_error("GET /v1/x", RouteKind::Optional, status, &junk);
                if let TransportError::Protocol { reason } = &error {
                    prop_assert!(reason.chars().count() <= 400, "{}", reason);
                }
            }
        }
    }
}
