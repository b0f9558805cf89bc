//! Runtime cursors: opaque to clients, they encode the runtime epoch, the worker and
//! the position of an event in that worker's log.
//!
//! The encoding is URL-safe base64 (no padding) of
//! `r1|<epoch>|<position>|<worker_id>|<check>`, where `check` is a checksum of the rest
//! so that a truncated or hand-edited cursor is rejected rather than misread.
//! Clients must treat the string as opaque; only the runtime that minted a cursor and
//! the backend that proxies it decode it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ids::WorkerId;

const VERSION_TAG: &str = "r1";
/// Longest cursor string accepted; longer input is rejected before decoding.
pub const MAX_CURSOR_LEN: usize = 256;

/// Why a cursor string was rejected. Answered as `400 invalid_cursor`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CursorError {
    /// Not a cursor at all: bad encoding, wrong version, bad fields.
    #[error("the cursor is malformed; reconnect without a cursor to get a fresh snapshot")]
    Malformed,
    /// A well-formed cursor minted for a different worker.
    #[error("the cursor belongs to another worker; reconnect without a cursor")]
    ForeignWorker,
    /// A well-formed cursor of this worker and epoch naming a position its event
    /// stream has not reached (no runtime minted it).
    #[error("the cursor is ahead of this worker's event stream; reconnect without one")]
    Ahead,
}

/// A decoded runtime cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeCursor {
    /// The runtime epoch the position belongs to.
    pub epoch: String,
    /// The worker whose log the position is in.
    pub worker_id: WorkerId,
    /// The event's position in the worker's log (from 1; 0 means "before any event").
    pub position: u64,
}

impl RuntimeCursor {
    /// Encodes the cursor as an opaque string.
    pub fn encode(&self) -> String {
        let body = format!(
            "{VERSION_TAG}|{}|{}|{}",
            self.epoch, self.position, self.worker_id
        );
        URL_SAFE_NO_PAD.encode(format!("{body}|{:08x}", checksum(body.as_bytes())))
    }

    /// Decodes any cursor this module minted.
    pub fn decode(s: &str) -> Result<Self, CursorError> {
        if s.is_empty() || s.len() > MAX_CURSOR_LEN {
            return Err(CursorError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| CursorError::Malformed)?;
        let text = String::from_utf8(raw).map_err(|_| CursorError::Malformed)?;
        let (body, check) = text.rsplit_once('|').ok_or(CursorError::Malformed)?;
        if check != format!("{:08x}", checksum(body.as_bytes())) {
            return Err(CursorError::Malformed);
        }
        let mut parts = body.splitn(4, '|');
        let (Some(tag), Some(epoch), Some(position), Some(worker)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CursorError::Malformed);
        };
        if tag != VERSION_TAG
            || epoch.is_empty()
            || !epoch.bytes().all(|b| b.is_ascii_alphanumeric())
            || position.is_empty()
            || !position.bytes().all(|b| b.is_ascii_digit())
            // One spelling per position, as `encode` writes it: no leading zero.
            || (position.len() > 1 && position.starts_with('0'))
        {
            return Err(CursorError::Malformed);
        }
        Ok(Self {
            epoch: epoch.to_owned(),
            position: position.parse().map_err(|_| CursorError::Malformed)?,
            worker_id: WorkerId::new(worker).map_err(|_| CursorError::Malformed)?,
        })
    }

    /// Decodes a cursor and checks that it was minted for `worker_id`.
    pub fn decode_for(s: &str, worker_id: &WorkerId) -> Result<Self, CursorError> {
        let cursor = Self::decode(s)?;
        if &cursor.worker_id != worker_id {
            return Err(CursorError::ForeignWorker);
        }
        Ok(cursor)
    }
}

/// FNV-1a, 32 bits: detects truncation and typos. Not a security measure; a cursor
/// only selects a position in a log the caller may read anyway.
pub fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> RuntimeCursor {
        RuntimeCursor {
            epoch: "a1b2c3".into(),
            worker_id: WorkerId::new("w-1").unwrap(),
            position: 42,
        }
    }

    fn signed(body: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{body}|{:08x}", checksum(body.as_bytes())))
    }

    #[test]
    fn a_signed_well_formed_body_decodes() {
        assert_eq!(
            RuntimeCursor::decode(&signed("r1|a|1|w")).unwrap().position,
            1
        );
    }

    #[test]
    fn round_trips_and_is_url_safe() {
        let s = cursor().encode();
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(RuntimeCursor::decode(&s).unwrap(), cursor());
    }

    #[test]
    fn rejects_malformed_and_truncated() {
        let s = cursor().encode();
        for bad in [
            "",
            "!!!",
            &s[..s.len() - 3],
            &signed("r2|a|1|w"),
            &signed("r1||1|w"),
            &signed("r1|a|-1|w"),
            &signed("r1|a|01|w"),
            &signed("r1|a|1|../w"),
            &signed("r1|a|99999999999999999999999|w"),
            &URL_SAFE_NO_PAD.encode("r1|a|1|w|00000000"),
            &URL_SAFE_NO_PAD.encode("r1|a|1|w"),
            &"A".repeat(400),
        ] {
            assert_eq!(
                RuntimeCursor::decode(bad),
                Err(CursorError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_a_cursor_of_another_worker() {
        let s = cursor().encode();
        assert_eq!(
            RuntimeCursor::decode_for(&s, &WorkerId::new("w-2").unwrap()),
            Err(CursorError::ForeignWorker)
        );
        assert!(RuntimeCursor::decode_for(&s, &WorkerId::new("w-1").unwrap()).is_ok());
    }
}
