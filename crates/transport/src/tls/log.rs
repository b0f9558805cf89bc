//! [`TlsLog`]: the operator's log lines about TLS failures towards one runtime.
//!
//! Clients get a [`TlsFailure`] kind and nothing else; the operator gets rustls'
//! detail (which certificate, which names) with the runtime's id, once at WARN when
//! a failure starts or changes ([`same_failure`]), then at DEBUG while it repeats, so a runtime that
//! stays misconfigured does not flood the log on every probe and call.

use std::error::Error as StdError;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::failure::tls_failure_in;
use crate::error::{TlsFailure, TransportError};

/// Logs TLS failures of one client, naming the runtime by `label`.
#[derive(Debug, Default)]
pub(crate) struct TlsLog {
    /// How log lines name the runtime (its id; never its address).
    label: String,
    /// Set while the last outcome was a TLS failure (read on every success).
    failing: AtomicBool,
    /// The last failure logged at WARN.
    last: Mutex<Option<(TlsFailure, String)>>,
}

impl TlsLog {
    /// A log for the runtime called `label`.
    pub(crate) fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            ..Self::default()
        }
    }

    /// Logs the TLS detail in `raw` when `mapped` (what `raw` was mapped to) is a
    /// TLS failure.
    pub(crate) fn note(&self, raw: &(dyn StdError + 'static), mapped: &TransportError) {
        if let TransportError::Tls { kind } = mapped {
            let detail = tls_failure_in(raw).map_or_else(String::new, |(_, detail)| detail);
            self.failed(*kind, detail);
        }
    }

    /// Logs a TLS failure of `kind` with `detail`.
    pub(crate) fn failed(&self, kind: TlsFailure, detail: String) {
        self.failing.store(true, Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let entry = (kind, detail);
        if last.as_ref().is_some_and(|last| same_failure(last, &entry)) {
            tracing::debug!(runtime_id = %self.label, kind = %entry.0, detail = %entry.1, "TLS towards the runtime failed again");
        } else {
            tracing::warn!(runtime_id = %self.label, kind = %entry.0, detail = %entry.1, "TLS towards the runtime failed: {}", entry.0.describe());
            *last = Some(entry);
        }
    }

    /// A call got through: the next failure is news again.
    pub(crate) fn succeeded(&self) {
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}

/// True when two failures are the same for the operator: the same kind, and, where
/// the detail names a certificate, details that differ at most in their digits (an
/// expired certificate's detail names the time of each attempt). A refused client
/// certificate or a failed handshake reads as whatever the connection did (an
/// alert, a reset, a broken pipe), so there the kind alone decides.
fn same_failure(a: &(TlsFailure, String), b: &(TlsFailure, String)) -> bool {
    let letters = |detail: &str| {
        detail
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect::<String>()
    };
    a.0 == b.0
        && match a.0 {
            TlsFailure::ClientCertificateRefused
            | TlsFailure::HandshakeFailed
            | TlsFailure::HandshakeTimeout => true,
            _ => letters(&a.1) == letters(&b.1),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_that_repeats_with_other_numbers_is_the_same_failure() {
        let expired = |now: &str| {
            (
                TlsFailure::Expired,
                format!(
                    "certificate expired: verification time {now} (UNIX), but certificate is not valid after 1700000000 (1 days ago)"
                ),
            )
        };
        // (first, second, the same failure)
        let cases = [
            (expired("1764000000"), expired("1764000008"), true),
            (
                expired("1764000000"),
                (TlsFailure::NameMismatch, expired("1").1),
                false,
            ),
            (
                (TlsFailure::UntrustedCertificate, "issuer A".to_owned()),
                (TlsFailure::UntrustedCertificate, "issuer B".to_owned()),
                false,
            ),
            (
                (
                    TlsFailure::ClientCertificateRefused,
                    "received fatal alert: CertificateRequired".to_owned(),
                ),
                (
                    TlsFailure::ClientCertificateRefused,
                    "Connection reset by peer (os error 104)".to_owned(),
                ),
                true,
            ),
        ];
        for (a, b, same) in cases {
            assert_eq!(same_failure(&a, &b), same, "{a:?} / {b:?}");
        }
    }
}
