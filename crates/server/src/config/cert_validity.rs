//! When a certificate this process presents may be used, and the warning an
//! operator gets when it may not (or soon may not): the listener's certificate
//! (`tls.cert_file`) and a remote's client certificate (`client_cert_file`).
//!
//! rustls accepts an expired certificate as a server's or client's own (it is the
//! peer that refuses it), so without this check the first sign of a lapsed
//! certificate is every client failing its handshake. The certificate is read with
//! x509-parser (only its validity; rustls has checked the rest) each time the file
//! is read: at start and on every reload.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::CertificateDer;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::tls::NamedFile;

/// A certificate that ends within this long is warned about at start and reload.
pub const ENDS_SOON: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// A certificate's validity period (its `notBefore` and `notAfter`), in seconds
/// since the UNIX epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertificateValidity {
    /// `notBefore`.
    pub not_before: i64,
    /// `notAfter`.
    pub not_after: i64,
}

/// What is wrong, or about to be, with a certificate's validity at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidityNotice {
    /// Past `notAfter`: peers refuse it.
    Expired,
    /// Before `notBefore`: peers refuse it until then (or the clock is wrong).
    NotYetValid,
    /// Ends within [`ENDS_SOON`].
    EndsSoon,
}

impl CertificateValidity {
    /// The validity of a DER certificate; `None` when it cannot be parsed (rustls
    /// has accepted it, so this is only a certificate x509-parser cannot read).
    pub fn of(cert: &CertificateDer<'_>) -> Option<Self> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
        let validity = parsed.validity();
        Some(Self {
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
        })
    }

    /// What to warn about at `now`, if anything.
    pub fn notice(&self, now: SystemTime) -> Option<ValidityNotice> {
        let now = unix_seconds(now);
        if now > self.not_after {
            Some(ValidityNotice::Expired)
        } else if now < self.not_before {
            Some(ValidityNotice::NotYetValid)
        } else if self.not_after - now <= ENDS_SOON.as_secs() as i64 {
            Some(ValidityNotice::EndsSoon)
        } else {
            None
        }
    }
}

/// Logs a warning when the leaf certificate of `chain`, read from `file`, is
/// expired, not yet valid or ends within [`ENDS_SOON`] at `now`; returns what it
/// warned about. `peers` names who refuses it ("clients", "the runtime").
pub(crate) fn warn_if_unusable(
    file: &NamedFile,
    chain: &[CertificateDer<'_>],
    peers: &str,
    now: SystemTime,
) -> Option<ValidityNotice> {
    let validity = CertificateValidity::of(chain.first()?)?;
    let notice = validity.notice(now)?;
    let path = file.path.display();
    let key = &file.key;
    match notice {
        ValidityNotice::Expired => tracing::warn!(
            key = %key,
            file = %path,
            not_after = %date(validity.not_after),
            "the certificate expired {} ago; {peers} refuse it: renew it and reload (SIGHUP)",
            span(unix_seconds(now) - validity.not_after),
        ),
        ValidityNotice::NotYetValid => tracing::warn!(
            key = %key,
            file = %path,
            not_before = %date(validity.not_before),
            "the certificate is not valid for another {}; {peers} refuse it until then: check this machine's clock or the certificate",
            span(validity.not_before - unix_seconds(now)),
        ),
        ValidityNotice::EndsSoon => tracing::warn!(
            key = %key,
            file = %path,
            not_after = %date(validity.not_after),
            "the certificate expires in {}; renew it and reload (SIGHUP) before then",
            span(validity.not_after - unix_seconds(now)),
        ),
    }
    Some(notice)
}

fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    }
}

/// `seconds` as days, or hours under two days, or minutes under two hours (each
/// rounded to the nearest).
fn span(seconds: i64) -> String {
    const HOUR: i64 = 60 * 60;
    const DAY: i64 = 24 * HOUR;
    let nearest = |unit: i64| (seconds + unit / 2) / unit;
    let (count, unit) = if seconds >= 2 * DAY {
        (nearest(DAY), "day")
    } else if seconds >= 2 * HOUR {
        (nearest(HOUR), "hour")
    } else {
        (nearest(60).max(1), "minute")
    };
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

/// A UNIX time as RFC 3339 (UTC), or the number when out of range.
fn date(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 60 * 60;

    fn at(unix: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix as u64)
    }

    #[test]
    fn notices_by_where_now_falls() {
        let validity = CertificateValidity {
            not_before: 100 * DAY,
            not_after: 200 * DAY,
        };
        let check = |now: i64, expected: Option<ValidityNotice>| {
            assert_eq!(validity.notice(at(now)), expected, "at {now}");
        };
        check(99 * DAY, Some(ValidityNotice::NotYetValid));
        check(100 * DAY, None);
        check(186 * DAY - 1, None);
        check(186 * DAY, Some(ValidityNotice::EndsSoon));
        check(200 * DAY, Some(ValidityNotice::EndsSoon));
        check(200 * DAY + 1, Some(ValidityNotice::Expired));
    }

    #[test]
    fn spans_and_dates_read_as_people_write_them() {
        assert_eq!(span(30), "1 minute");
        assert_eq!(span(90 * 60), "90 minutes");
        assert_eq!(span(5 * 60 * 60), "5 hours");
        assert_eq!(span(3 * DAY + 5), "3 days");
        assert_eq!(span(3 * DAY - 5), "3 days");
        assert_eq!(date(0), "1970-01-01T00:00:00Z");
        assert_eq!(date(i64::MAX), i64::MAX.to_string());
    }
}
