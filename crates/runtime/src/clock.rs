//! Wall-clock timestamps in the contract's RFC 3339 UTC form.

use std::time::SystemTime;

use switchyard_protocol::Timestamp;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The current time as an RFC 3339 UTC timestamp with millisecond precision.
pub fn now() -> Timestamp {
    format(SystemTime::now())
}

/// `at` as an RFC 3339 UTC timestamp with millisecond precision.
pub fn format(at: SystemTime) -> Timestamp {
    let now = OffsetDateTime::from(at);
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    Timestamp(
        now.format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into()),
    )
}

/// When `at` was, for ordering (an unreadable one sorts first).
pub fn instant(at: &Timestamp) -> OffsetDateTime {
    OffsetDateTime::parse(&at.0, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_rfc3339_utc() {
        let t = super::now().0;
        assert!(t.ends_with('Z'), "{t}");
        assert!(
            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).is_ok()
        );
    }
}
