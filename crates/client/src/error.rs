//! [`ClientError`]: every way a call to the backend can fail, each with a stable code.
//!
//! No variant holds the token. Texts never hold a hyper or socket error's own
//! description (which may name the peer); they are fixed, or come from the backend's
//! error body.

use serde::Deserialize;
use switchyard_protocol::ErrorCode;
pub use switchyard_transport::TlsFailure;

/// Why the backend could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnreachableKind {
    /// Nothing listens there: the connection was refused.
    Refused,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// The host name did not resolve.
    Dns,
    /// Any other connection failure.
    Other,
}

impl UnreachableKind {
    /// A few words for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Refused => "connection refused",
            Self::Reset => "connection reset",
            Self::Dns => "the host name did not resolve",
            Self::Other => "the connection failed",
        }
    }
}

/// One of the backend's own errors: `{"error":{"code","message",...}}` as answered
/// (with the HTTP status), or as sent in a WebSocket frame (without one).
///
/// The code is kept as the string the backend sent, so that a code this client does
/// not know yet still reaches the user intact; [`ApiError::is`] compares with a known
/// one.
///
/// Fields may be added (the error body has more to say than this client reads yet),
/// so build one with [`ApiError::new`] rather than a struct literal:
///
/// ```compile_fail
/// let error = switchyard_client::ApiError {
///     status: Some(429),
///     code: "worker_busy".into(),
///     message: "retry shortly".into(),
///     retry_after_ms: Some(250),
/// };
/// ```
///
/// ```
/// use switchyard_client::ApiError;
/// use switchyard_protocol::ErrorCode;
///
/// let mut error = ApiError::new(Some(429), ErrorCode::WorkerBusy, "retry shortly");
/// error.retry_after_ms = Some(250);
/// assert!(error.is(ErrorCode::WorkerBusy));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status it came with; `None` inside a WebSocket frame.
    #[serde(skip)]
    pub status: Option<u16>,
    /// The stable snake_case code.
    pub code: String,
    /// The backend's text: what went wrong and what to do.
    pub message: String,
    /// How long to wait before retrying, for `worker_busy` and the like.
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    /// An error with `code` and `message`, as the backend would send it.
    pub fn new(status: Option<u16>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.as_str().to_owned(),
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// Whether the code is `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code == code.as_str()
    }

    /// Decodes an error body (`{"error":{...}}`) that came with `status`; `None` when
    /// the body is not one.
    pub(crate) fn from_body(status: u16, body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Body {
            error: ApiError,
        }
        let Body { mut error } = serde_json::from_slice(body).ok()?;
        error.status = Some(status);
        Some(error)
    }
}

/// A failed call to the backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The backend answered with one of its typed errors.
    #[error("{}", .0.message)]
    Api(ApiError),
    /// The backend could not be reached.
    #[error("could not connect to the backend ({})", kind.describe())]
    Unreachable {
        /// What went wrong.
        kind: UnreachableKind,
    },
    /// No answer within the deadline.
    #[error("the backend did not answer within {timeout_ms} ms")]
    Timeout {
        /// The deadline that passed.
        timeout_ms: u64,
    },
    /// The backend answered something this client cannot use (not HTTP, not the
    /// expected JSON, an error without an error body: another server, or a proxy).
    #[error("the backend answered something unexpected: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
        /// The HTTP status of an answer that was HTTP but not the backend API's (an
        /// error status without an error body); `None` for anything else.
        status: Option<u16>,
    },
    /// The backend URL cannot be used.
    #[error("{reason}")]
    InvalidUrl {
        /// Why.
        reason: String,
    },
    /// The token cannot be sent (it has characters an HTTP header cannot carry).
    #[error("the token has characters that cannot travel in an HTTP header")]
    InvalidToken,
    /// The TLS handshake with an `https://` backend failed, or TLS failed after it
    /// (a client certificate refused).
    #[error("{}", tls_message(*kind))]
    Tls {
        /// What failed.
        kind: TlsFailure,
    },
    /// TLS towards an `https://` backend could not be set up (no trusted CA
    /// certificates, a CA certificate that cannot be used).
    #[error("{reason}")]
    TlsSetup {
        /// Why.
        reason: String,
    },
}

/// What a TLS failure means for a client of the backend, and what to do; no name,
/// address or file.
fn tls_message(kind: TlsFailure) -> &'static str {
    match kind {
        TlsFailure::UntrustedCertificate => {
            "the backend's certificate is not signed by a CA this client trusts; trust the CA that signed it"
        }
        TlsFailure::NameMismatch => {
            "the backend's certificate is not valid for the host name in the URL; use a name (or address) the certificate lists"
        }
        TlsFailure::Expired => {
            "the backend's certificate has expired or is not valid yet; renew it, and check both machines' clocks"
        }
        TlsFailure::ClientCertificateRefused => {
            "the backend refused this client's certificate, or requires one and got none; present a certificate signed by a CA in the backend's client_ca_file"
        }
        TlsFailure::HandshakeFailed => {
            "the TLS handshake with the backend failed; check that it serves HTTPS on that port"
        }
        TlsFailure::HandshakeTimeout => {
            "no TLS handshake with the backend within the connect timeout"
        }
        _ => "TLS with the backend failed; check its certificate and the CA this client trusts",
    }
}

impl ClientError {
    /// The stable snake_case code: the backend's own for [`ClientError::Api`], else
    /// `backend_unreachable`, `backend_timeout`, `backend_protocol_error`,
    /// `backend_tls_failed` or `invalid_backend_url`, `invalid_token`,
    /// `invalid_tls_config`.
    pub fn code(&self) -> &str {
        match self {
            Self::Tls { .. } => "backend_tls_failed",
            Self::TlsSetup { .. } => "invalid_tls_config",
            Self::Api(error) => &error.code,
            Self::Unreachable { .. } => "backend_unreachable",
            Self::Timeout { .. } => "backend_timeout",
            Self::Protocol { .. } => "backend_protocol_error",
            Self::InvalidUrl { .. } => "invalid_backend_url",
            Self::InvalidToken => "invalid_token",
        }
    }

    /// The backend's error, when it answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(error) => Some(error),
            _ => None,
        }
    }

    /// Whether the backend answered with `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.api().is_some_and(|error| error.is(code))
    }

    /// Whether trying again later may succeed: the backend was not reached or did
    /// not answer in time (a restart in progress), or answered a server-side or
    /// overload error (5xx, 429), with its error body or without one (a proxy in
    /// front of a backend that is restarting). Client errors (4xx) are final, and so
    /// is any other answer that is not the backend API's (not HTTP, not its JSON, a
    /// 404 page): another server is there, which retrying does not change.
    pub fn is_transient(&self) -> bool {
        let server_side = |s: u16| s >= 500 || s == 429;
        match self {
            Self::Api(error) => error.status.is_none_or(server_side),
            Self::Protocol { status, .. } => status.is_some_and(server_side),
            Self::Unreachable { .. } | Self::Timeout { .. } => true,
            // A handshake cut short may be a restart; a certificate will not change.
            Self::Tls { kind } => matches!(
                kind,
                TlsFailure::HandshakeFailed | TlsFailure::HandshakeTimeout
            ),
            Self::InvalidUrl { .. } | Self::InvalidToken | Self::TlsSetup { .. } => false,
        }
    }
}

impl From<ApiError> for ClientError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_decode_with_unknown_codes_and_fields() {
        let body = br#"{"error":{"code":"brand_new","message":"m","retry_after_ms":5,"x":1}}"#;
        let error = ApiError::from_body(429, body).unwrap();
        assert_eq!(error.status, Some(429));
        assert_eq!(error.code, "brand_new");
        assert_eq!(error.retry_after_ms, Some(5));
        let body = br#"{"error":{"code":"worker_not_found","message":"no such worker"}}"#;
        let error = ClientError::from(ApiError::from_body(404, body).unwrap());
        assert!(error.is(ErrorCode::WorkerNotFound));
        assert_eq!(error.code(), "worker_not_found");
        assert_eq!(error.to_string(), "no such worker");
        assert!(ApiError::from_body(500, b"<html>").is_none());
        assert!(ApiError::from_body(500, br#"{"error":"x"}"#).is_none());
    }

    #[test]
    fn codes_and_transience() {
        let api = |status| ClientError::Api(ApiError::new(status, ErrorCode::Internal, "m"));
        let table = [
            (api(Some(500)), "internal", true),
            (api(Some(404)), "internal", false),
            (api(Some(429)), "internal", true),
            (api(None), "internal", true),
            (
                ClientError::Unreachable {
                    kind: UnreachableKind::Refused,
                },
                "backend_unreachable",
                true,
            ),
            (
                ClientError::Timeout { timeout_ms: 1 },
                "backend_timeout",
                true,
            ),
            (
                ClientError::Protocol {
                    reason: "r".into(),
                    status: None,
                },
                "backend_protocol_error",
                false,
            ),
            (
                ClientError::Protocol {
                    reason: "r".into(),
                    status: Some(404),
                },
                "backend_protocol_error",
                false,
            ),
            (
                ClientError::Protocol {
                    reason: "r".into(),
                    status: Some(502),
                },
                "backend_protocol_error",
                true,
            ),
            (
                ClientError::InvalidUrl { reason: "r".into() },
                "invalid_backend_url",
                false,
            ),
            (ClientError::InvalidToken, "invalid_token", false),
            (
                ClientError::Tls {
                    kind: TlsFailure::UntrustedCertificate,
                },
                "backend_tls_failed",
                false,
            ),
            (
                ClientError::Tls {
                    kind: TlsFailure::HandshakeTimeout,
                },
                "backend_tls_failed",
                true,
            ),
            (
                ClientError::TlsSetup { reason: "r".into() },
                "invalid_tls_config",
                false,
            ),
        ];
        for (error, code, transient) in table {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.is_transient(), transient, "{error:?}");
        }
    }
}
