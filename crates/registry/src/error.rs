//! Registry errors: [`SourceError`] from one runtime, [`RegistryError`] for a client.

use switchyard_protocol::{ErrorCode, ErrorDetail, RuntimeId};
use switchyard_runtime::RuntimeError;
use switchyard_transport::{TlsFailure, TransportError};

/// How one runtime failed a call. Messages never hold an address or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Connection refused, reset, or the name did not resolve.
    #[error("the runtime is unreachable; it may be down or restarting, try again shortly")]
    Unreachable,
    /// No answer within the configured timeout.
    #[error("the runtime did not answer in time; try again shortly")]
    Timeout,
    /// The runtime rejected the backend's own credentials.
    #[error(
        "the runtime rejected the backend's credentials; an operator must fix the backend's token for it"
    )]
    AuthFailed,
    /// TLS towards the runtime failed; the kind says which part. The message names
    /// no host, address or file (the operator's log has the details).
    #[error("TLS towards the runtime failed ({}): {}", .0.as_str(), .0.describe())]
    TlsFailed(TlsFailure),
    /// The runtime answered something malformed or unexpected.
    #[error("the runtime answered something unexpected ({0}); it may run an incompatible version")]
    Protocol(String),
    /// The runtime lacks the capability (see `TransportError::Unsupported`).
    #[error("the runtime does not support {0}")]
    Unsupported(String),
    /// The runtime is draining or stopped.
    #[error("the runtime is shutting down or stopped; try again later")]
    Unavailable,
    /// The runtime is up but refused the connection because it is at its
    /// `max_connections` (it answered `503 overloaded`): a moment's congestion, not
    /// a fault, so the runtime's state stays as it was. Clients get
    /// `runtime_unavailable` with the runtime's retry hint (within an hour).
    #[error("the runtime is at its connection limit (max_connections); try again shortly")]
    Overloaded {
        /// The runtime's hint, capped at [`MAX_RETRY_AFTER_MS`].
        retry_after_ms: Option<u64>,
    },
    /// The runtime cut the backend's own event stream off because the backend fell
    /// too far behind its events (close code 4408): the runtime is up, and the
    /// backend resumes from the last event it has.
    #[error(
        "the runtime closed the backend's event stream because the backend fell behind it; resuming from the last event"
    )]
    FellBehind,
    /// The runtime refused the request itself (worker not found, busy, ...): its own
    /// typed answer, passed through.
    #[error("{}", .0.message)]
    Rejected(ErrorDetail),
    /// A bug in the backend or the runtime.
    #[error("internal error")]
    Internal,
    /// The runtime answered `500 internal` (a bug there). Clients see `internal`
    /// with the backend's own request id only; the runtime's message, which quotes
    /// the runtime's request id, is kept for the backend's log.
    #[error("internal error")]
    RuntimeInternal(String),
}

impl SourceError {
    /// The contract code.
    pub fn code(&self) -> ErrorCode {
        match self {
            // The stream was reset by the runtime: of the contract's codes, the one
            // for a dropped connection.
            Self::Unreachable | Self::FellBehind => ErrorCode::RuntimeUnreachable,
            Self::Timeout => ErrorCode::RuntimeTimeout,
            Self::AuthFailed => ErrorCode::RuntimeAuthFailed,
            Self::TlsFailed(_) => ErrorCode::RuntimeTlsFailed,
            Self::Protocol(_) => ErrorCode::RuntimeProtocolError,
            Self::Unsupported(_) => ErrorCode::Unsupported,
            Self::Unavailable | Self::Overloaded { .. } => ErrorCode::RuntimeUnavailable,
            Self::Rejected(detail) => detail.code,
            Self::Internal | Self::RuntimeInternal(_) => ErrorCode::Internal,
        }
    }

    /// True when the runtime answered (so it is up), even if it refused the request.
    pub fn runtime_answered(&self) -> bool {
        matches!(
            self,
            Self::Rejected(_) | Self::Unsupported(_) | Self::FellBehind | Self::Overloaded { .. }
        )
    }
}

/// The longest `retry_after_ms` passed on from a runtime's refusal: an hour.
pub const MAX_RETRY_AFTER_MS: u64 = 60 * 60 * 1000;

/// Codes a runtime may answer about a request that the backend passes through as they
/// are. Anything else from a runtime is treated as a protocol error.
const PASS_THROUGH: &[ErrorCode] = &[
    ErrorCode::InvalidRequest,
    ErrorCode::InvalidId,
    ErrorCode::InvalidCursor,
    ErrorCode::LimitTooLarge,
    ErrorCode::UnknownProfile,
    ErrorCode::NotATerminal,
    ErrorCode::WorkerNotFound,
    ErrorCode::WorkerNotRunning,
    ErrorCode::WorkerRunning,
    ErrorCode::PayloadTooLarge,
    ErrorCode::WorkerBusy,
    ErrorCode::WorkerLimitReached,
];

impl From<TransportError> for SourceError {
    fn from(error: TransportError) -> Self {
        match error {
            TransportError::Unreachable { .. } => Self::Unreachable,
            TransportError::Timeout { .. } => Self::Timeout,
            TransportError::AuthRejected => Self::AuthFailed,
            TransportError::Tls { kind } => Self::TlsFailed(kind),
            TransportError::Unsupported { what } => Self::Unsupported(what),
            TransportError::Protocol { reason } => Self::Protocol(reason),
            TransportError::Runtime { detail, .. } => match detail.code {
                ErrorCode::RuntimeUnavailable => Self::Unavailable,
                ErrorCode::Overloaded => Self::Overloaded {
                    retry_after_ms: detail.retry_after_ms.map(|ms| ms.min(MAX_RETRY_AFTER_MS)),
                },
                ErrorCode::Unauthorized => Self::AuthFailed,
                ErrorCode::Unsupported => Self::Unsupported("that request".into()),
                ErrorCode::Internal => Self::RuntimeInternal(detail.message),
                // Not the client's Host: the name the backend reaches the runtime by.
                ErrorCode::HostNotAllowed => Self::Protocol(
                    "it refused the name the backend reaches it by (a runtime without a \
                     token answers only to localhost, 127.x.x.x or [::1]); use one of those in \
                     base_url, or give the runtime a token"
                        .into(),
                ),
                code if PASS_THROUGH.contains(&code) => Self::Rejected(ErrorDetail {
                    code,
                    message: detail.message,
                    runtime_id: None,
                    worker_id: detail.worker_id,
                    // A runtime's hint, kept within an hour: a lying one must not
                    // tell clients to wait for ever.
                    retry_after_ms: detail.retry_after_ms.map(|ms| ms.min(MAX_RETRY_AFTER_MS)),
                }),
                code => Self::Protocol(format!("it answered the error code {code}")),
            },
            // A failure this registry does not know yet; its text names no address.
            other => Self::Protocol(other.to_string()),
        }
    }
}

impl From<RuntimeError> for SourceError {
    fn from(error: RuntimeError) -> Self {
        match error {
            RuntimeError::Draining => Self::Unavailable,
            RuntimeError::Store(store) => {
                tracing::error!(error = %store, "embedded runtime store failure");
                Self::Internal
            }
            other => Self::Rejected(other.to_detail()),
        }
    }
}

/// A registry call's failure, as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No runtime with that id is configured.
    #[error("no runtime {0}; GET /api/runtimes lists them")]
    RuntimeNotFound(RuntimeId),
    /// The policy refused the call.
    #[error("{0}")]
    Forbidden(String),
    /// The client's request is invalid (a bad cursor, ...): the detail says how.
    #[error("{}", .0.message)]
    Invalid(ErrorDetail),
    /// The runtime failed the call.
    #[error("{error}")]
    Source {
        /// Which runtime.
        runtime_id: RuntimeId,
        /// How it failed.
        error: SourceError,
    },
}

impl RegistryError {
    /// The contract code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::RuntimeNotFound(_) => ErrorCode::RuntimeNotFound,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Invalid(detail) => detail.code,
            Self::Source { error, .. } => error.code(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.code().status()
    }

    /// The error body detail for a client, with `runtime_id` filled in.
    pub fn to_detail(&self) -> ErrorDetail {
        match self {
            Self::RuntimeNotFound(id) => {
                ErrorDetail::new(self.code(), self.to_string()).with_runtime(id.clone())
            }
            Self::Forbidden(message) => ErrorDetail::new(ErrorCode::Forbidden, message.clone()),
            Self::Invalid(detail) => detail.clone(),
            Self::Source { runtime_id, error } => {
                let mut detail = match error {
                    SourceError::Rejected(detail) => detail.clone(),
                    SourceError::Overloaded { retry_after_ms } => {
                        let mut detail = ErrorDetail::new(error.code(), error.to_string());
                        detail.retry_after_ms = *retry_after_ms;
                        detail
                    }
                    other => ErrorDetail::new(other.code(), other.to_string()),
                };
                detail.runtime_id = Some(runtime_id.clone());
                detail
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime refusing the backend's Host is about the backend's configuration,
    /// not the client's request: a protocol error that says what to change.
    #[test]
    fn a_runtime_refusing_the_backends_host_is_a_protocol_error() {
        let error = SourceError::from(TransportError::Runtime {
            status: 403,
            detail: ErrorDetail::new(ErrorCode::HostNotAllowed, "no"),
        });
        let SourceError::Protocol(reason) = &error else {
            panic!("expected a protocol error, got {error:?}");
        };
        assert!(reason.contains("base_url"), "{reason}");
        assert_eq!(error.code(), ErrorCode::RuntimeProtocolError);
    }

    /// A runtime at its connection limit is up and busy: a retryable
    /// `runtime_unavailable` with its hint, not a protocol error (which marks the
    /// runtime incompatible), and the runtime counts as having answered.
    #[test]
    fn a_runtime_at_its_connection_limit_is_unavailable_for_a_moment() {
        let answer = |retry_after_ms: Option<u64>| {
            let mut detail = ErrorDetail::new(ErrorCode::Overloaded, "too many connections");
            detail.retry_after_ms = retry_after_ms;
            SourceError::from(TransportError::Runtime {
                status: 503,
                detail,
            })
        };
        let error = answer(Some(1000));
        assert_eq!(error.code(), ErrorCode::RuntimeUnavailable);
        assert!(error.runtime_answered(), "{error:?}");
        let client = RegistryError::Source {
            runtime_id: RuntimeId::new("build-1").unwrap(),
            error,
        }
        .to_detail();
        assert_eq!(client.code, ErrorCode::RuntimeUnavailable);
        assert_eq!(client.retry_after_ms, Some(1000));
        assert!(
            client.message.contains("connection limit"),
            "{}",
            client.message
        );
        assert_eq!(
            answer(Some(u64::MAX)),
            SourceError::Overloaded {
                retry_after_ms: Some(MAX_RETRY_AFTER_MS)
            }
        );
        assert_eq!(
            answer(None),
            SourceError::Overloaded {
                retry_after_ms: None
            }
        );
    }

    /// A runtime's retry hint is passed on within an hour, its own under it as it is.
    #[test]
    fn a_runtimes_retry_hint_is_kept_within_an_hour() {
        let hint = |ms: u64| {
            let mut detail = ErrorDetail::new(ErrorCode::WorkerBusy, "busy");
            detail.retry_after_ms = Some(ms);
            match SourceError::from(TransportError::Runtime {
                status: 429,
                detail,
            }) {
                SourceError::Rejected(detail) => detail.retry_after_ms,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(hint(250), Some(250));
        assert_eq!(hint(u64::MAX), Some(MAX_RETRY_AFTER_MS));
    }
}
