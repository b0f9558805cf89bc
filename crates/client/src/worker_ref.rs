//! [`WorkerRef`]: a worker's full address, `RUNTIME/WORKER`, as users type it.

use std::fmt;
use std::str::FromStr;

use switchyard_protocol::{IdError, RuntimeId, WorkerId};

/// A worker's address on a backend: its runtime and its id. Written and parsed as
/// `RUNTIME/WORKER` (what `switchyard run` prints and every worker command takes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerRef {
    /// The runtime the worker lives on.
    pub runtime_id: RuntimeId,
    /// The worker's id on that runtime.
    pub worker_id: WorkerId,
}

/// Why a string is not `RUNTIME/WORKER`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerRefError {
    /// No `/` between the two ids.
    #[error("expected RUNTIME/WORKER, for example local/w-0001 (as `switchyard ls` shows)")]
    NoSlash,
    /// One of the ids breaks the id rules.
    #[error(transparent)]
    Id(#[from] IdError),
}

impl WorkerRef {
    /// The worker `worker_id` on `runtime_id`.
    pub fn new(runtime_id: RuntimeId, worker_id: WorkerId) -> Self {
        Self {
            runtime_id,
            worker_id,
        }
    }

    /// `/api/runtimes/{rt}/workers/{w}` followed by `tail` (ids need no escaping:
    /// their characters are all URL-safe).
    pub(crate) fn path(&self, tail: &str) -> String {
        format!(
            "/api/runtimes/{}/workers/{}{tail}",
            self.runtime_id.as_str(),
            self.worker_id.as_str()
        )
    }
}

impl FromStr for WorkerRef {
    type Err = WorkerRefError;

    fn from_str(s: &str) -> Result<Self, WorkerRefError> {
        let (runtime, worker) = s.split_once('/').ok_or(WorkerRefError::NoSlash)?;
        Ok(Self {
            runtime_id: RuntimeId::new(runtime)?,
            worker_id: WorkerId::new(worker)?,
        })
    }
}

impl fmt::Display for WorkerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.runtime_id.as_str(),
            self.worker_id.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let r: WorkerRef = "local/w-01".parse().unwrap();
        assert_eq!(r.runtime_id.as_str(), "local");
        assert_eq!(r.worker_id.as_str(), "w-01");
        assert_eq!(r.to_string(), "local/w-01");
        assert_eq!(r.path("/input"), "/api/runtimes/local/workers/w-01/input");
        for (bad, expected) in [
            ("local", WorkerRefError::NoSlash),
            ("/w", WorkerRefError::Id(IdError::Empty("runtime_id"))),
            ("local/", WorkerRefError::Id(IdError::Empty("worker_id"))),
            (
                "a/b/c",
                WorkerRefError::Id(IdError::BadCharacter("worker_id")),
            ),
            ("a/.b", WorkerRefError::Id(IdError::LeadingDot("worker_id"))),
        ] {
            assert_eq!(bad.parse::<WorkerRef>().unwrap_err(), expected, "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn references_round_trip_and_anything_else_is_refused(
            runtime in switchyard_protocol::arbitrary::runtime_id(),
            worker in switchyard_protocol::arbitrary::worker_id(),
            text in "[a-z0-9./_ -]{0,20}",
        ) {
            let r = WorkerRef::new(runtime, worker);
            proptest::prop_assert_eq!(r.to_string().parse::<WorkerRef>(), Ok(r.clone()));
            proptest::prop_assert!(r.path("/x").starts_with("/api/runtimes/"));
            // Parsing is exactly: a slash, an id before it and an id after it.
            let expected = text.split_once('/').is_some_and(|(rt, w)| {
                RuntimeId::new(rt).is_ok() && WorkerId::new(w).is_ok()
            });
            proptest::prop_assert_eq!(text.parse::<WorkerRef>().is_ok(), expected);
        }
    }
}
