//! [`TransportError`]: every way a call to a remote runtime can fail.
//!
//! No variant's `Display` or `Debug` contains the runtime's base URL, host, port or
//! token: these errors travel into logs and, mapped by the registry, to clients.

use switchyard_protocol::{ErrorCode, ErrorDetail};

/// Why the runtime could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
pub enum TimeoutPhase {
    /// Establishing the connection.
    Connect,
    /// Waiting for the answer.
    Request,
}

/// Which part of TLS towards a runtime failed. Each names a cause an operator can
/// act on; none carries the runtime's name or address (the operator's log has those).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The runtime's certificate is not signed by a trusted CA (`ca_file`, or the
    /// system's roots), or its chain is otherwise invalid (bad signature, revoked,
    /// wrong key usage).
    UntrustedCertificate,
    /// The runtime's certificate is valid, but not for the name (or IP address) the
    /// backend verifies: the base URL's host, or `tls_server_name`.
    NameMismatch,
    /// The runtime's certificate has expired or is not valid yet.
    Expired,
    /// The runtime refused the backend's client certificate, or required one and got
    /// none (mTLS).
    ClientCertificateRefused,
    /// The TLS handshake failed for another reason: the peer does not speak TLS, no
    /// protocol version or cipher in common, or the connection broke mid-handshake.
    HandshakeFailed,
    /// The TLS handshake did not finish within the connect timeout. What
    /// [`handshake`](crate::tls::handshake) reports; the runtime clients make it a
    /// [`TransportError::Timeout`] of the connect phase (a hung or overloaded
    /// runtime, as a black-holed TCP connect), not a TLS failure.
    HandshakeTimeout,
}

impl TlsFailure {
    /// A stable snake_case name, for logs and tests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UntrustedCertificate => "untrusted_certificate",
            Self::NameMismatch => "name_mismatch",
            Self::Expired => "expired_certificate",
            Self::ClientCertificateRefused => "client_certificate_refused",
            Self::HandshakeFailed => "handshake_failed",
            Self::HandshakeTimeout => "handshake_timeout",
        }
    }

    /// What happened and what to do, in words safe for any client: no name, address
    /// or file.
    pub fn describe(self) -> &'static str {
        match self {
            Self::UntrustedCertificate => {
                "the runtime's certificate is not signed by a CA the backend trusts; an operator must set the remote's ca_file to the CA that signed it"
            }
            Self::NameMismatch => {
                "the runtime's certificate is not valid for the name the backend verifies; an operator must fix the certificate's names or the remote's tls_server_name"
            }
            Self::Expired => {
                "the runtime's certificate has expired or is not valid yet; an operator must renew it (or check both clocks)"
            }
            Self::ClientCertificateRefused => {
                "the runtime refused the backend's client certificate, or requires one; an operator must set the remote's client_cert_file and client_key_file to a certificate the runtime's client_ca_file trusts"
            }
            Self::HandshakeFailed => {
                "the TLS handshake with the runtime failed; check that it serves HTTPS on that port with a compatible TLS setup"
            }
            Self::HandshakeTimeout => {
                "the TLS handshake with the runtime did not finish within the connect timeout"
            }
        }
    }
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call to a remote runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// TLS towards the runtime failed: certificate, name, expiry, client certificate
    /// or handshake.
    #[error("TLS towards the runtime failed ({kind}): {}", kind.describe())]
    Tls {
        /// What failed.
        kind: TlsFailure,
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
    /// The runtime lacks a capability: it said so (501), or it has no route for an
    /// optional one (resize). A missing route every runtime serves is `Protocol`.
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

impl TransportError {
    /// A stable code for the failure: the code the runtime answered for
    /// [`TransportError::Runtime`], else the contract's code for the failure as a
    /// backend client sees it (`runtime_unreachable`, `runtime_timeout`,
    /// `runtime_tls_failed`, `runtime_auth_failed`, `unsupported`,
    /// `runtime_protocol_error`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard_protocol::ErrorCode;
    /// use switchyard_transport::{HttpRuntimeClient, RemoteEndpoint, RuntimeClient, SecretToken};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // A port nobody listens on.
    /// let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    /// let endpoint = RemoteEndpoint::new(
    ///     format!("http://127.0.0.1:{port}"),
    ///     SecretToken::new("s3cret").expect("not empty"),
    ///     Duration::from_secs(1),
    ///     Duration::from_secs(5),
    /// );
    /// let client = HttpRuntimeClient::new(endpoint).expect("a valid base URL");
    /// let error = client.info().await.unwrap_err();
    /// assert_eq!(error.code(), ErrorCode::RuntimeUnreachable);
    /// assert_eq!(error.code().as_str(), "runtime_unreachable");
    /// # }
    /// ```
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unreachable { .. } => ErrorCode::RuntimeUnreachable,
            Self::Timeout { .. } => ErrorCode::RuntimeTimeout,
            Self::Tls { .. } => ErrorCode::RuntimeTlsFailed,
            Self::AuthRejected => ErrorCode::RuntimeAuthFailed,
            Self::Runtime { detail, .. } => detail.code,
            Self::Unsupported { .. } => ErrorCode::Unsupported,
            Self::Protocol { .. } => ErrorCode::RuntimeProtocolError,
        }
    }
}
