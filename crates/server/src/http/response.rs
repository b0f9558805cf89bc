//! Building responses: JSON bodies, error bodies, empty answers.

use bytes::Bytes;
use http::HeaderMap;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use http_body_util::Full;
use serde::Serialize;

/// `Content-Security-Policy` of every non-HTML answer (JSON, errors): nothing may load,
/// nothing may frame it.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Every response body: a complete buffer (Switchyard's answers are small; streams go
/// over WebSockets).
pub type Body = Full<Bytes>;
/// A response of either surface.
pub type Response = http::Response<Body>;

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let mut response = http::Response::new(Full::new(Bytes::from(bytes)));
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(error) => {
            tracing::error!(%error, "could not serialize a response");
            empty(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// A response with `status`, `body` (JSON already encoded: a relayed answer) and a
/// copy of `headers`, which must include its `Content-Type`. Copying a map built
/// once is cheaper than inserting the same headers one by one for every request.
pub fn json_bytes(status: StatusCode, body: Bytes, headers: &HeaderMap) -> Response {
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers.clone();
    response
}

/// A response with no body.
pub fn empty(status: StatusCode) -> Response {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
