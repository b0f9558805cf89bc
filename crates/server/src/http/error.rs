//! [`ApiError`]: an error answer of either surface, in the contract's body shape.

use http::header::{ALLOW, HeaderValue, WWW_AUTHENTICATE};
use http::{HeaderMap, StatusCode};
use switchyard_protocol::{ErrorBody, ErrorCode, ErrorDetail};

use super::response::{Response, json};

/// An error on its way to a client: the contract's detail, plus the rare header that
/// goes with it (`WWW-Authenticate` on 401, `Allow` on 405, `Sec-WebSocket-Version`
/// on a refused WebSocket version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What the client sees inside `{"error": ...}`.
    pub detail: ErrorDetail,
    /// The `Allow` header of a `405`: the methods the path answers.
    pub allow: Option<Box<str>>,
    /// Any other header the answer carries (none, mostly; boxed, so that an error
    /// stays small).
    pub headers: Option<Box<HeaderMap>>,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            detail: ErrorDetail::new(code, message),
            allow: None,
            headers: None,
        }
    }

    /// `400 invalid_request`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// `500 internal`, naming the request id so operators can find the log line.
    pub fn internal(request_id: &str) -> Self {
        Self::new(
            ErrorCode::Internal,
            format!("internal error; quote request id {request_id} when reporting it"),
        )
    }

    /// The HTTP response.
    pub fn into_response(self) -> Response {
        let code = self.detail.code;
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json(status, &ErrorBody::from(self.detail));
        if code == ErrorCode::Unauthorized {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            response.headers_mut().insert(ALLOW, allow);
        }
        if let Some(headers) = self.headers {
            response.headers_mut().extend(*headers);
        }
        response
    }
}

impl From<ErrorDetail> for ApiError {
    fn from(detail: ErrorDetail) -> Self {
        Self {
            detail,
            allow: None,
            headers: None,
        }
    }
}

impl From<switchyard_protocol::IdError> for ApiError {
    fn from(error: switchyard_protocol::IdError) -> Self {
        Self::new(ErrorCode::InvalidId, error.to_string())
    }
}
