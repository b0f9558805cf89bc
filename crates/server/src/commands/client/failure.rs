//! [`Failure`]: how a client subcommand ends when it does not succeed: a code and a
//! one-line message for `error: <code>: <message>`, and the exit status.

use switchyard_client::{BackendUrl, ClientError, TlsFailure};
use switchyard_protocol::ErrorCode;

/// A client subcommand's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    code: String,
    message: String,
    exit: u8,
    /// Nothing to print (the reader went away: standard output was closed).
    quiet: bool,
}

impl Failure {
    /// An error: exit status 1.
    pub(crate) fn new(code: impl Into<String>, message: impl ToString) -> Self {
        Self {
            code: code.into(),
            message: one_line(&message.to_string()),
            exit: 1,
            quiet: false,
        }
    }

    /// A usage error: exit status 2.
    pub(crate) fn usage(code: impl Into<String>, message: impl ToString) -> Self {
        Self {
            exit: 2,
            ..Self::new(code, message)
        }
    }

    /// Ends with `exit` and prints nothing.
    pub(crate) fn quiet(exit: u8) -> Self {
        Self {
            code: String::new(),
            message: String::new(),
            exit,
            quiet: true,
        }
    }

    /// A failed call to the backend at `url`. What happened before an answer names
    /// the URL (the user's own, which holds no credentials) and says what to check;
    /// the backend's own errors keep their code and message.
    pub(crate) fn client(url: &BackendUrl, error: &ClientError) -> Self {
        let message = match error {
            ClientError::Unreachable { kind } => format!(
                "could not connect to the backend at {url} ({}); is `switchyard serve` running \
                 there? Use --backend or SWITCHYARD_URL to point elsewhere",
                kind.describe()
            ),
            ClientError::Timeout { timeout_ms } => {
                format!("the backend at {url} did not answer within {timeout_ms} ms")
            }
            ClientError::Protocol { reason, .. } => {
                format!("the backend at {url} answered something unexpected: {reason}")
            }
            ClientError::Tls { kind } => format!(
                "TLS with the backend at {url} failed: {error}{}",
                match kind {
                    TlsFailure::UntrustedCertificate => {
                        " (pass the CA certificate with --ca-file or SWITCHYARD_CA_FILE)"
                    }
                    TlsFailure::ClientCertificateRefused => {
                        " (pass it with --client-cert and --client-key, or SWITCHYARD_CLIENT_CERT and SWITCHYARD_CLIENT_KEY)"
                    }
                    _ => "",
                }
            ),
            ClientError::Api(api) if api.is(ErrorCode::Unauthorized) => format!(
                "{} (this client sends the token from --token-file or SWITCHYARD_TOKEN)",
                api.message
            ),
            other => other.to_string(),
        };
        Self::new(error.code(), message)
    }

    /// The code.
    pub(crate) fn code(&self) -> &str {
        &self.code
    }

    /// The message.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// `<code>: <message>`, for a status line.
    pub(crate) fn describe(&self) -> String {
        format!("{}: {}", self.code, self.message)
    }

    /// Prints `error: <code>: <message>` on standard error (unless quiet) and returns
    /// the exit status.
    pub(crate) fn report(self) -> u8 {
        if !self.quiet {
            eprintln!("error: {}: {}", self.code, self.message);
        }
        self.exit
    }
}

/// `text` on one line: line breaks and other control characters become spaces, so a
/// message can neither break the one-line format nor move a terminal's cursor.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_client::{ApiError, UnreachableKind};

    #[test]
    fn messages_name_the_url_only_before_an_answer() {
        let url = BackendUrl::parse("http://127.0.0.1:9").unwrap();
        let table = [
            (
                ClientError::Unreachable {
                    kind: UnreachableKind::Refused,
                },
                "backend_unreachable",
                "could not connect to the backend at http://127.0.0.1:9 (connection refused)",
            ),
            (
                ClientError::Timeout { timeout_ms: 5 },
                "backend_timeout",
                "the backend at http://127.0.0.1:9 did not answer within 5 ms",
            ),
            (
                ClientError::Api(ApiError::new(
                    Some(404),
                    ErrorCode::RuntimeNotFound,
                    "no runtime nope\nis configured",
                )),
                "runtime_not_found",
                "no runtime nope is configured",
            ),
            (
                ClientError::Api(ApiError::new(
                    Some(401),
                    ErrorCode::Unauthorized,
                    "bad token",
                )),
                "unauthorized",
                "bad token (this client sends the token from --token-file or SWITCHYARD_TOKEN)",
            ),
            (
                ClientError::Tls {
                    kind: TlsFailure::UntrustedCertificate,
                },
                "backend_tls_failed",
                "TLS with the backend at http://127.0.0.1:9 failed: the backend's certificate is not signed by a CA this client trusts; trust the CA that signed it (pass the CA certificate with --ca-file or SWITCHYARD_CA_FILE)",
            ),
            (
                ClientError::Tls {
                    kind: TlsFailure::Expired,
                },
                "backend_tls_failed",
                "TLS with the backend at http://127.0.0.1:9 failed: the backend's certificate has expired or is not valid yet; renew it, and check both machines' clocks",
            ),
            (
                ClientError::Tls {
                    kind: TlsFailure::ClientCertificateRefused,
                },
                "backend_tls_failed",
                "TLS with the backend at http://127.0.0.1:9 failed: the backend refused this client's certificate, or requires one and got none; present a certificate signed by a CA in the backend's client_ca_file (pass it with --client-cert and --client-key, or SWITCHYARD_CLIENT_CERT and SWITCHYARD_CLIENT_KEY)",
            ),
        ];
        for (error, code, start) in table {
            let failure = Failure::client(&url, &error);
            assert_eq!(failure.code, code);
            assert!(failure.message.starts_with(start), "{}", failure.message);
            assert_eq!(failure.exit, 1);
            assert!(!failure.message.contains('\n'));
        }
        assert_eq!(Failure::usage("x", "y").exit, 2);
        assert_eq!(Failure::quiet(0).report(), 0);
    }
}
