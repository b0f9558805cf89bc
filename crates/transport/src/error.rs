//! [`TransportError`]: every way a call to a remote runtime can fail.
//!
//! No variant's `Display` or `Debug` contains the runtime's base URL, host, port or
//! token: these errors travel into logs and, mapped by the registry, to clients.

use switchyard_protocol::ErrorDetail;

/// Why the runtime could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachableKind {
    /// The connection was refused.
    Refused,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// The host name did not resolve.
    Dns,
    /// Any other connection failure.
    Other,
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Establishing the connection.
    Connect,
    /// Waiting for the answer.
    Request,
}

/// A failed call to a remote runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Connection refused, reset, or the name did not resolve.
    #[error("the runtime is unreachable ({kind:?})")]
    Unreachable {
        /// What went wrong.
        kind: UnreachableKind,
    },
    /// No answer within the configured timeout.
    #[error("the runtime did not answer within {timeout_ms} ms ({phase:?})")]
    Timeout {
        /// Which phase timed out.
        phase: TimeoutPhase,
        /// The timeout that passed.
        timeout_ms: u64,
    },
    /// The runtime rejected the backend's credentials (it answered 401).
    #[error("the runtime rejected the backend's credentials")]
    AuthRejected,
    /// The runtime answered with one of its own typed errors.
    #[error("the runtime answered {status} {}: {}", detail.code, detail.message)]
    Runtime {
        /// The HTTP status it answered with.
        status: u16,
        /// Its error body.
        detail: ErrorDetail,
    },
    /// The runtime lacks the route or capability.
    #[error("the runtime does not support {what}")]
    Unsupported {
        /// What was asked for.
        what: String,
    },
    /// The runtime answered something malformed or unexpected.
    #[error("the runtime answered something unexpected: {reason}")]
    Protocol {
        /// What was wrong (never contains the URL or token).
        reason: String,
    },
}
