//! Backend cursors: opaque to clients, bound to `runtime_id + worker_id`, and
//! resumable after a backend restart because they carry everything needed (the
//! runtime epoch and position) and depend on no secret or in-memory state.
//!
//! Encoding: URL-safe base64 of `b1|<runtime_id>|<worker_id>|<epoch>|<position>|<check>`.
//! The checksum rejects truncated or edited cursors; it is not a security measure (a
//! cursor only picks a position in a stream the caller may watch anyway).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use switchyard_protocol::cursor::{MAX_CURSOR_LEN, checksum};
use switchyard_protocol::{RuntimeId, WorkerId};

const TAG: &str = "b1";

/// A decoded backend cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendCursor {
    /// The runtime it belongs to.
    pub runtime_id: RuntimeId,
    /// The worker it belongs to.
    pub worker_id: WorkerId,
    /// The runtime epoch of the position.
    pub epoch: String,
    /// The position in the worker's log.
    pub position: u64,
}

/// Why a backend cursor was rejected (answered `400 invalid_cursor`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendCursorError {
    /// Not a cursor this backend minted, or damaged.
    #[error("the cursor is malformed; reconnect without a cursor to get a fresh snapshot")]
    Malformed,
    /// A valid cursor of another runtime or worker.
    #[error("the cursor belongs to another worker; reconnect without a cursor")]
    Foreign,
}

impl BackendCursor {
    /// The opaque string.
    pub fn encode(&self) -> String {
        let body = format!(
            "{TAG}|{}|{}|{}|{}",
            self.runtime_id, self.worker_id, self.epoch, self.position
        );
        URL_SAFE_NO_PAD.encode(format!("{body}|{:08x}", checksum(body.as_bytes())))
    }

    /// Decodes a cursor and checks it belongs to `runtime_id + worker_id`.
    pub fn decode_for(
        s: &str,
        runtime_id: &RuntimeId,
        worker_id: &WorkerId,
    ) -> Result<Self, BackendCursorError> {
        let cursor = Self::decode(s)?;
        if &cursor.runtime_id != runtime_id || &cursor.worker_id != worker_id {
            return Err(BackendCursorError::Foreign);
        }
        Ok(cursor)
    }

    fn decode(s: &str) -> Result<Self, BackendCursorError> {
        let malformed = |_| BackendCursorError::Malformed;
        if s.is_empty() || s.len() > 2 * MAX_CURSOR_LEN {
            return Err(BackendCursorError::Malformed);
        }
        let text = String::from_utf8(
            URL_SAFE_NO_PAD
                .decode(s)
                .map_err(|_| BackendCursorError::Malformed)?,
        )
        .map_err(|_| BackendCursorError::Malformed)?;
        let (body, check) = text.rsplit_once('|').ok_or(BackendCursorError::Malformed)?;
        if check != format!("{:08x}", checksum(body.as_bytes())) {
            return Err(BackendCursorError::Malformed);
        }
        let parts: Vec<&str> = body.split('|').collect();
        let [tag, runtime, worker, epoch, position] = parts[..] else {
            return Err(BackendCursorError::Malformed);
        };
        if tag != TAG
            || epoch.is_empty()
            || !epoch.bytes().all(|b| b.is_ascii_alphanumeric())
            || position.is_empty()
            || !position.bytes().all(|b| b.is_ascii_digit())
            // One spelling per position, as `encode` writes it: no leading zero.
            || (position.len() > 1 && position.starts_with('0'))
        {
            return Err(BackendCursorError::Malformed);
        }
        Ok(Self {
            runtime_id: RuntimeId::new(runtime).map_err(|_| BackendCursorError::Malformed)?,
            worker_id: WorkerId::new(worker).map_err(|_| BackendCursorError::Malformed)?,
            epoch: epoch.to_owned(),
            position: position.parse().map_err(malformed)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> BackendCursor {
        BackendCursor {
            runtime_id: RuntimeId::new("build-1").unwrap(),
            worker_id: WorkerId::new("w-1").unwrap(),
            epoch: "abc123".into(),
            position: 77,
        }
    }

    #[test]
    fn round_trips_for_its_own_worker_only() {
        let s = cursor().encode();
        let rt = RuntimeId::new("build-1").unwrap();
        let w = WorkerId::new("w-1").unwrap();
        assert_eq!(BackendCursor::decode_for(&s, &rt, &w).unwrap(), cursor());
        let other_w = WorkerId::new("w-2").unwrap();
        let other_rt = RuntimeId::new("build-2").unwrap();
        assert_eq!(
            BackendCursor::decode_for(&s, &rt, &other_w),
            Err(BackendCursorError::Foreign)
        );
        assert_eq!(
            BackendCursor::decode_for(&s, &other_rt, &w),
            Err(BackendCursorError::Foreign)
        );
    }

    #[test]
    fn forged_and_truncated_cursors_are_malformed() {
        let s = cursor().encode();
        let rt = RuntimeId::new("build-1").unwrap();
        let w = WorkerId::new("w-1").unwrap();
        let forged = URL_SAFE_NO_PAD.encode("b1|build-1|w-1|abc123|99|00000000");
        // Well checksummed, but a position spelled with a leading zero: one cursor
        // has one spelling (found by the property below).
        let body = "b1|build-1|w-1|abc123|01";
        let zero = URL_SAFE_NO_PAD.encode(format!("{body}|{:08x}", checksum(body.as_bytes())));
        let runtime_cursor = switchyard_protocol::RuntimeCursor {
            epoch: "abc123".into(),
            worker_id: w.clone(),
            position: 1,
        }
        .encode();
        for bad in [
            &s[..s.len() - 2],
            &s[1..],
            "",
            "x",
            forged.as_str(),
            zero.as_str(),
            runtime_cursor.as_str(),
        ] {
            assert_eq!(
                BackendCursor::decode_for(bad, &rt, &w),
                Err(BackendCursorError::Malformed),
                "{bad}"
            );
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use switchyard_protocol::arbitrary::{runtime_id, worker_id};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn backend_cursors_round_trip_for_their_own_worker_only(
            runtime in runtime_id(),
            worker in worker_id(),
            other_runtime in runtime_id(),
            other_worker in worker_id(),
            epoch in "[A-Za-z0-9]{1,32}",
            position in any::<u64>(),
        ) {
            let cursor = BackendCursor {
                runtime_id: runtime.clone(),
                worker_id: worker.clone(),
                epoch,
                position,
            };
            let text = cursor.encode();
            prop_assert!(text.len() <= 2 * MAX_CURSOR_LEN);
            prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(BackendCursor::decode_for(&text, &runtime, &worker), Ok(cursor));
            if other_runtime != runtime {
                prop_assert_eq!(
                    BackendCursor::decode_for(&text, &other_runtime, &worker),
                    Err(BackendCursorError::Foreign)
                );
            }
            if other_worker != worker {
                prop_assert_eq!(
                    BackendCursor::decode_for(&text, &runtime, &other_worker),
                    Err(BackendCursorError::Foreign)
                );
            }
            for end in 0..text.len() {
                prop_assert_eq!(
                    BackendCursor::decode_for(&text[..end], &runtime, &worker),
                    Err(BackendCursorError::Malformed)
                );
            }
        }

        #[test]
        fn backend_cursor_decoding_never_panics(
            s in any::<String>(),
            b64 in "[A-Za-z0-9_-]{0,600}",
            body in "b1(\\|[A-Za-z0-9._|-]{0,20}){0,6}",
        ) {
            let rt = RuntimeId::new("r").unwrap();
            let w = WorkerId::new("w").unwrap();
            let _ = BackendCursor::decode_for(&s, &rt, &w);
            let _ = BackendCursor::decode_for(&b64, &rt, &w);
            // Correctly checksummed bodies of any shape reach the field checks.
            let signed = URL_SAFE_NO_PAD.encode(format!("{body}|{:08x}", checksum(body.as_bytes())));
            if let Ok(cursor) = BackendCursor::decode(&signed) {
                prop_assert_eq!(cursor.encode(), signed);
            }
        }
    }
}
