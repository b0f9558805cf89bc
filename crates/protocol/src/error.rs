//! The error body and the one enum of error codes, each knowing its HTTP status.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::ids::{RuntimeId, WorkerId};

/// Every error code either surface can answer with. The snake_case name is the
/// stable `code` string on the wire; [`ErrorCode::status`] is its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed request: bad JSON, unknown field, bad query parameter.
    InvalidRequest,
    /// A `runtime_id` or `worker_id` that breaks the id rules.
    InvalidId,
    /// A cursor that is malformed, was minted for another worker, or names a
    /// position the worker's events have not reached.
    InvalidCursor,
    /// A page `limit` over the configured maximum.
    LimitTooLarge,
    /// A profile name the runtime does not define.
    UnknownProfile,
    /// A terminal-only call (resize) on a worker that is not a terminal.
    NotATerminal,
    /// A configuration file offered for reload is invalid.
    InvalidConfig,
    /// Missing or wrong credentials of the caller itself.
    Unauthorized,
    /// A policy refused the call.
    Forbidden,
    /// A WebSocket upgrade from an `Origin` that is not allowed.
    OriginNotAllowed,
    /// The request's `Host` is not one the backend answers to.
    HostNotAllowed,
    /// A state-changing request sent by a page of another origin.
    CrossOriginRequest,
    /// No route matches the path (not a contract code for a resource).
    RouteNotFound,
    /// The path exists but not with this method.
    MethodNotAllowed,
    /// No runtime with that id is configured.
    RuntimeNotFound,
    /// No worker with that id exists on the runtime.
    WorkerNotFound,
    /// The worker is not running, so it cannot take input or be cancelled.
    WorkerNotRunning,
    /// The worker is still running, so it cannot be deleted.
    WorkerRunning,
    /// The request body is over the configured limit.
    PayloadTooLarge,
    /// A request body without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// The worker's input queue is full.
    WorkerBusy,
    /// The runtime already has as many active workers as it allows.
    WorkerLimitReached,
    /// A bug; the message carries a request id to find it in the logs.
    Internal,
    /// The runtime lacks the capability.
    Unsupported,
    /// The runtime could not be reached (refused, reset, DNS).
    RuntimeUnreachable,
    /// The runtime rejected the backend's own credentials.
    RuntimeAuthFailed,
    /// The runtime answered something malformed or unexpected.
    RuntimeProtocolError,
    /// TLS towards the runtime failed (certificate, name, expiry, client
    /// certificate, handshake).
    RuntimeTlsFailed,
    /// The runtime is draining or stopped.
    RuntimeUnavailable,
    /// The server is past its connection limit.
    Overloaded,
    /// The runtime did not answer within the configured timeout.
    RuntimeTimeout,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 31] = [
        Self::InvalidRequest,
        Self::InvalidId,
        Self::InvalidCursor,
        Self::LimitTooLarge,
        Self::UnknownProfile,
        Self::NotATerminal,
        Self::InvalidConfig,
        Self::Unauthorized,
        Self::Forbidden,
        Self::OriginNotAllowed,
        Self::HostNotAllowed,
        Self::CrossOriginRequest,
        Self::RouteNotFound,
        Self::MethodNotAllowed,
        Self::RuntimeNotFound,
        Self::WorkerNotFound,
        Self::WorkerNotRunning,
        Self::WorkerRunning,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::WorkerBusy,
        Self::WorkerLimitReached,
        Self::Internal,
        Self::Unsupported,
        Self::RuntimeUnreachable,
        Self::RuntimeAuthFailed,
        Self::RuntimeProtocolError,
        Self::RuntimeTlsFailed,
        Self::RuntimeUnavailable,
        Self::Overloaded,
        Self::RuntimeTimeout,
    ];

    /// The HTTP status this code is answered with.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidRequest | InvalidId | InvalidCursor | LimitTooLarge | UnknownProfile
            | NotATerminal | InvalidConfig => 400,
            Unauthorized => 401,
            Forbidden | OriginNotAllowed | HostNotAllowed | CrossOriginRequest => 403,
            RouteNotFound | RuntimeNotFound | WorkerNotFound => 404,
            MethodNotAllowed => 405,
            WorkerNotRunning | WorkerRunning => 409,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            WorkerBusy | WorkerLimitReached => 429,
            Internal => 500,
            Unsupported => 501,
            RuntimeUnreachable | RuntimeAuthFailed | RuntimeProtocolError | RuntimeTlsFailed => 502,
            RuntimeUnavailable | Overloaded => 503,
            RuntimeTimeout => 504,
        }
    }

    /// When a server answers with this code, in a few words (for API documents).
    pub fn meaning(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => {
                "the request is malformed: bad JSON, an unknown field or query parameter, a bad value"
            }
            InvalidId => "a runtime_id or worker_id breaks the id rules",
            InvalidCursor => {
                "the cursor is malformed, was minted for another worker, or is ahead of its events"
            }
            LimitTooLarge => "the page limit is over the server's maximum",
            UnknownProfile => "the runtime defines no profile of that name",
            NotATerminal => "the worker is not a terminal",
            InvalidConfig => "the configuration offered for reload is invalid",
            Unauthorized => "missing or wrong credentials of the caller",
            Forbidden => "the caller's role or runtime grants do not allow this",
            OriginNotAllowed => "a WebSocket upgrade from an Origin that is not allowed",
            HostNotAllowed => "the Host is not one the backend answers to",
            CrossOriginRequest => "a state-changing request from another site's page",
            RouteNotFound => "no route has this path",
            MethodNotAllowed => "the path does not answer this method",
            RuntimeNotFound => {
                "no runtime with that id is configured (or the caller may not see it)"
            }
            WorkerNotFound => "no worker with that id (or the caller does not reach it)",
            WorkerNotRunning => "the worker is not running",
            WorkerRunning => "the worker is still running",
            PayloadTooLarge => "the body or the input is over the limit",
            UnsupportedMediaType => "a body that is not Content-Type: application/json",
            WorkerBusy => "the worker's input queue is full; retry after retry_after_ms",
            WorkerLimitReached => "the runtime runs as many workers as it allows",
            Internal => "a bug; the message quotes a request id to find it in the logs",
            Unsupported => "the runtime lacks the capability",
            RuntimeUnreachable => "the runtime could not be reached",
            RuntimeAuthFailed => "the runtime rejected the backend's credentials",
            RuntimeProtocolError => "the runtime answered something malformed or unexpected",
            RuntimeTlsFailed => "TLS towards the runtime failed",
            RuntimeUnavailable => "the runtime is draining or stopped",
            Overloaded => "the server is past its connection limit",
            RuntimeTimeout => "the runtime did not answer in time",
        }
    }

    /// The stable snake_case string of this code.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidRequest => "invalid_request",
            InvalidId => "invalid_id",
            InvalidCursor => "invalid_cursor",
            LimitTooLarge => "limit_too_large",
            UnknownProfile => "unknown_profile",
            NotATerminal => "not_a_terminal",
            InvalidConfig => "invalid_config",
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            OriginNotAllowed => "origin_not_allowed",
            HostNotAllowed => "host_not_allowed",
            CrossOriginRequest => "cross_origin_request",
            RouteNotFound => "route_not_found",
            MethodNotAllowed => "method_not_allowed",
            RuntimeNotFound => "runtime_not_found",
            WorkerNotFound => "worker_not_found",
            WorkerNotRunning => "worker_not_running",
            WorkerRunning => "worker_running",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            WorkerBusy => "worker_busy",
            WorkerLimitReached => "worker_limit_reached",
            Internal => "internal",
            Unsupported => "unsupported",
            RuntimeUnreachable => "runtime_unreachable",
            RuntimeAuthFailed => "runtime_auth_failed",
            RuntimeProtocolError => "runtime_protocol_error",
            RuntimeTlsFailed => "runtime_tls_failed",
            RuntimeUnavailable => "runtime_unavailable",
            Overloaded => "overloaded",
            RuntimeTimeout => "runtime_timeout",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The inside of an error body: code, message and optional context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// The stable code.
    pub code: ErrorCode,
    /// Human text that says what went wrong and what to do.
    pub message: String,
    /// The runtime the error concerns, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<RuntimeId>,
    /// The worker the error concerns, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<WorkerId>,
    /// How long to wait before retrying, for `worker_busy` and the like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorDetail {
    /// An error with just a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            runtime_id: None,
            worker_id: None,
            retry_after_ms: None,
        }
    }

    /// Adds the runtime id.
    pub fn with_runtime(mut self, runtime_id: RuntimeId) -> Self {
        self.runtime_id = Some(runtime_id);
        self
    }

    /// Adds the worker id.
    pub fn with_worker(mut self, worker_id: WorkerId) -> Self {
        self.worker_id = Some(worker_id);
        self
    }

    /// Adds a retry hint.
    pub fn with_retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }
}

/// The `invalid_request` message a TLS-only listener answers plain HTTP with. A
/// client that sees it spoke `http://` to an `https://` port.
pub const HTTPS_ONLY_MESSAGE: &str = "this port serves HTTPS only; connect with https:// or wss://";

/// The body of every error response: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

impl From<ErrorDetail> for ErrorBody {
    fn from(error: ErrorDetail) -> Self {
        Self { error }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_serializes_to_its_stable_string() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
    }

    #[test]
    fn statuses_match_the_contract_table() {
        let table = [
            ("invalid_request", 400),
            ("invalid_id", 400),
            ("invalid_cursor", 400),
            ("limit_too_large", 400),
            ("unknown_profile", 400),
            ("not_a_terminal", 400),
            ("invalid_config", 400),
            ("unauthorized", 401),
            ("forbidden", 403),
            ("origin_not_allowed", 403),
            ("host_not_allowed", 403),
            ("cross_origin_request", 403),
            ("runtime_not_found", 404),
            ("worker_not_found", 404),
            ("worker_not_running", 409),
            ("worker_running", 409),
            ("payload_too_large", 413),
            ("unsupported_media_type", 415),
            ("worker_busy", 429),
            ("worker_limit_reached", 429),
            ("internal", 500),
            ("unsupported", 501),
            ("runtime_unreachable", 502),
            ("runtime_auth_failed", 502),
            ("runtime_protocol_error", 502),
            ("runtime_tls_failed", 502),
            ("runtime_unavailable", 503),
            ("overloaded", 503),
            ("runtime_timeout", 504),
        ];
        for (name, status) in table {
            let code: ErrorCode = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(code.status(), status, "{name}");
        }
    }

    #[test]
    fn body_shape_is_pinned() {
        let body = ErrorBody::from(
            ErrorDetail::new(ErrorCode::WorkerBusy, "input queue full; retry shortly")
                .with_worker(WorkerId::new("w1").unwrap())
                .with_retry_after_ms(250),
        );
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"error": {"code": "worker_busy",
                "message": "input queue full; retry shortly",
                "worker_id": "w1", "retry_after_ms": 250}})
        );
        let plain = ErrorBody::from(ErrorDetail::new(ErrorCode::Internal, "x"));
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"error":{"code":"internal","message":"x"}}"#
        );
    }
}
