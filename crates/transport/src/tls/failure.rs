//! Recognising TLS failures: rustls' errors mapped to [`TlsFailure`] kinds, and the
//! search of an error's source chain for one.
//!
//! The detail returned beside a kind is rustls' own description (it may name the
//! host the certificate was or was not valid for): it goes to the operator's log,
//! never into a [`TransportError`](crate::TransportError).

use std::error::Error as StdError;
use std::io;

use rustls::{AlertDescription, CertificateError};

use super::connect::TlsConnectError;
use crate::error::TlsFailure;

/// The kind of a rustls error.
pub(crate) fn classify_rustls(error: &rustls::Error) -> TlsFailure {
    match error {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                TlsFailure::NameMismatch
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => TlsFailure::Expired,
            _ => TlsFailure::UntrustedCertificate,
        },
        // What a server says when it does not accept the client's certificate (or
        // required one and got none).
        rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate,
        ) => TlsFailure::ClientCertificateRefused,
        _ => TlsFailure::HandshakeFailed,
    }
}

/// The first TLS failure in `error`'s source chain, with its detail for the log:
/// one the connector already classified, or a rustls error carried by an I/O error
/// (how tokio-rustls reports them, also after the handshake: with TLS 1.3 a server
/// refuses a client certificate in an alert the client reads with its first answer).
pub fn tls_failure_in(error: &(dyn StdError + 'static)) -> Option<(TlsFailure, String)> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<TlsConnectError>() {
            return Some((tls.kind, tls.detail.clone()));
        }
        if let Some(rustls) = e.downcast_ref::<rustls::Error>() {
            return Some((classify_rustls(rustls), rustls.to_string()));
        }
        // `io::Error::source` skips the wrapped error itself, so look inside.
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref)
            && let Some(rustls) = inner.downcast_ref::<rustls::Error>()
        {
            return Some((classify_rustls(rustls), rustls.to_string()));
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_errors_map_to_kinds() {
        let cert = |e| rustls::Error::InvalidCertificate(e);
        let alert = rustls::Error::AlertReceived;
        let cases = [
            (
                cert(CertificateError::UnknownIssuer),
                TlsFailure::UntrustedCertificate,
            ),
            (
                cert(CertificateError::BadSignature),
                TlsFailure::UntrustedCertificate,
            ),
            (
                cert(CertificateError::Revoked),
                TlsFailure::UntrustedCertificate,
            ),
            (
                cert(CertificateError::NotValidForName),
                TlsFailure::NameMismatch,
            ),
            (cert(CertificateError::Expired), TlsFailure::Expired),
            (cert(CertificateError::NotValidYet), TlsFailure::Expired),
            (
                alert(AlertDescription::CertificateRequired),
                TlsFailure::ClientCertificateRefused,
            ),
            (
                alert(AlertDescription::BadCertificate),
                TlsFailure::ClientCertificateRefused,
            ),
            (
                alert(AlertDescription::UnknownCA),
                TlsFailure::ClientCertificateRefused,
            ),
            (
                alert(AlertDescription::HandshakeFailure),
                TlsFailure::HandshakeFailed,
            ),
            (
                alert(AlertDescription::ProtocolVersion),
                TlsFailure::HandshakeFailed,
            ),
            (
                rustls::Error::NoCertificatesPresented,
                TlsFailure::HandshakeFailed,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(classify_rustls(&error), kind, "{error}");
        }
    }

    #[test]
    fn finds_rustls_errors_inside_io_errors_and_chains() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] io::Error);

        let io = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let found = tls_failure_in(&Outer(io)).unwrap();
        assert_eq!(found.0, TlsFailure::UntrustedCertificate);
        assert!(found.1.contains("UnknownIssuer"), "{}", found.1);

        let plain = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        assert!(tls_failure_in(&Outer(plain)).is_none());

        let connect = TlsConnectError {
            kind: TlsFailure::HandshakeTimeout,
            detail: "no handshake in 2000 ms".into(),
        };
        assert_eq!(
            tls_failure_in(&connect).unwrap().0,
            TlsFailure::HandshakeTimeout
        );
    }
}
