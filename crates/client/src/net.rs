//! Connection failures, as the socket layer, hyper and hyper-util report them, mapped
//! to [`ClientError`]s. Nothing here formats the error it is given (it may name the
//! peer): the texts are fixed.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use crate::error::{ClientError, UnreachableKind};

/// The reason given when an answer is not HTTP/1.1.
pub(crate) const NOT_HTTP: &str =
    "the answer is not valid HTTP/1.1 (is this a Switchyard backend?)";

/// The backend could not be reached, for `kind`.
pub(crate) fn unreachable(kind: UnreachableKind) -> ClientError {
    ClientError::Unreachable { kind }
}

/// The deadline `limit` passed.
pub(crate) fn timeout(limit: Duration) -> ClientError {
    ClientError::Timeout {
        timeout_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
    }
}

/// Whether an I/O failure of this kind means the connection was reset or closed.
pub(crate) fn is_reset(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
    )
}

/// Maps an I/O failure's kind when it says something; `timed_out` for a timeout.
fn io_error(kind: io::ErrorKind, timed_out: &ClientError) -> Option<ClientError> {
    match kind {
        io::ErrorKind::TimedOut => Some(timed_out.clone()),
        io::ErrorKind::ConnectionRefused => Some(unreachable(UnreachableKind::Refused)),
        kind if is_reset(kind) => Some(unreachable(UnreachableKind::Reset)),
        _ => None,
    }
}

/// Maps a failed TCP connect.
pub(crate) fn connect_error(error: &io::Error, connect_timeout: Duration) -> ClientError {
    io_error(error.kind(), &timeout(connect_timeout)).unwrap_or(unreachable(UnreachableKind::Other))
}

/// Walks the source chain of a failed exchange: a TLS failure (the handshake, or an
/// alert after it), hyper-util's connector reports name resolution as a "dns error",
/// the socket layer `io::ErrorKind`s, hyper closed connections and unparsable
/// answers. A socket timeout becomes `timed_out`.
pub(crate) fn classify(error: &(dyn StdError + 'static), timed_out: ClientError) -> ClientError {
    if let Some((kind, detail)) = switchyard_transport::tls::tls_failure_in(error) {
        // rustls' words may name the host: for the user's own debug log only.
        tracing::debug!(kind = kind.as_str(), %detail, "TLS with the backend failed");
        return ClientError::Tls { kind };
    }
    let mut dns = false;
    let mut io_kind = None;
    let mut parse = false;
    let mut closed = false;
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            io_kind.get_or_insert(io.kind());
        } else if let Some(h) = e.downcast_ref::<hyper::Error>() {
            parse |= h.is_parse();
            closed |= h.is_incomplete_message() || h.is_closed() || h.is_canceled();
        } else if e.to_string() == "dns error" {
            dns = true;
        }
        current = e.source();
    }
    if dns {
        return unreachable(UnreachableKind::Dns);
    }
    if let Some(error) = io_kind.and_then(|kind| io_error(kind, &timed_out)) {
        return error;
    }
    if parse {
        return ClientError::Protocol {
            status: None,
            reason: NOT_HTTP.into(),
        };
    }
    if closed {
        return unreachable(UnreachableKind::Reset);
    }
    unreachable(UnreachableKind::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose source is an I/O error, as hyper's and hyper-util's are.
    #[derive(Debug)]
    struct Wrapper(io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapper")
        }
    }

    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn io_kinds_map() {
        let limit = Duration::from_millis(5);
        let table = [
            (
                io::ErrorKind::ConnectionRefused,
                unreachable(UnreachableKind::Refused),
            ),
            (
                io::ErrorKind::ConnectionReset,
                unreachable(UnreachableKind::Reset),
            ),
            (io::ErrorKind::TimedOut, timeout(limit)),
            (
                io::ErrorKind::PermissionDenied,
                unreachable(UnreachableKind::Other),
            ),
        ];
        for (kind, expected) in table {
            assert_eq!(connect_error(&io::Error::from(kind), limit), expected);
            let wrapped = Wrapper(io::Error::from(kind));
            assert_eq!(classify(&wrapped, timeout(limit)), expected, "{kind:?}");
        }
    }
}
