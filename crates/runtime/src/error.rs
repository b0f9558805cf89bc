//! The runtime's one error type. Each variant maps onto exactly one contract code;
//! `Display` is safe to show a client (no paths, no secrets) and says what to do.

use switchyard_protocol::{CursorError, ErrorCode, ErrorDetail, WorkerId, WorkerStatus};

use crate::store::StoreError;

/// Everything a runtime call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A request that breaks a rule not covered by a more specific code.
    #[error("{0}")]
    InvalidRequest(String),
    /// No profile with that name.
    #[error(
        "no profile named {0:?} on this runtime; its profiles are in `switchyard runtimes` and GET /api/runtimes on the backend (GET /v1/runtime on the runtime)"
    )]
    UnknownProfile(String),
    /// Too many workers starting or running.
    #[error("the runtime already runs its maximum of {max} workers; stop one first")]
    WorkerLimitReached {
        /// The configured maximum.
        max: u32,
    },
    /// No such worker.
    #[error("no worker {0}")]
    WorkerNotFound(WorkerId),
    /// The worker is not running (or is ending: its program is gone and its status
    /// not yet recorded, so it takes no more input).
    #[error("worker {worker} {}", not_running_because(*status))]
    WorkerNotRunning {
        /// The worker.
        worker: WorkerId,
        /// Its status.
        status: WorkerStatus,
    },
    /// The worker still runs, so it cannot be removed.
    #[error("worker {0} is still running; stop it first")]
    WorkerRunning(WorkerId),
    /// A terminal-only call (resize) on a worker that is not a terminal.
    #[error("worker {0} is not a terminal; only workers of a pty profile can be resized")]
    NotATerminal(WorkerId),
    /// The worker's input queue is full.
    #[error("worker {0} has a full input queue; retry shortly")]
    WorkerBusy(WorkerId),
    /// The input is over the limit.
    #[error("input is {size} bytes, over the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The input's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A page limit over the maximum.
    #[error("limit {asked} is over the maximum of {max}")]
    LimitTooLarge {
        /// What was asked.
        asked: u64,
        /// The maximum.
        max: u32,
    },
    /// A cursor that is malformed or belongs to another worker.
    #[error(transparent)]
    InvalidCursor(#[from] CursorError),
    /// The runtime is shutting down.
    #[error("the runtime is shutting down; try again when it is back")]
    Draining,
    /// The store failed; details are in the runtime's logs.
    #[error("the runtime's store failed; see the runtime's logs")]
    Store(#[from] StoreError),
}

/// Why a worker of `status` takes no commands, for [`RuntimeError::WorkerNotRunning`].
fn not_running_because(status: WorkerStatus) -> String {
    if status == WorkerStatus::Running {
        "is ending: its program is gone, so it takes no more input".to_owned()
    } else {
        format!("is {status}, not running")
    }
}

impl RuntimeError {
    /// The contract code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::UnknownProfile(_) => ErrorCode::UnknownProfile,
            Self::WorkerLimitReached { .. } => ErrorCode::WorkerLimitReached,
            Self::WorkerNotFound(_) => ErrorCode::WorkerNotFound,
            Self::WorkerNotRunning { .. } => ErrorCode::WorkerNotRunning,
            Self::WorkerRunning(_) => ErrorCode::WorkerRunning,
            Self::NotATerminal(_) => ErrorCode::NotATerminal,
            Self::WorkerBusy(_) => ErrorCode::WorkerBusy,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::LimitTooLarge { .. } => ErrorCode::LimitTooLarge,
            Self::InvalidCursor(_) => ErrorCode::InvalidCursor,
            Self::Draining => ErrorCode::RuntimeUnavailable,
            // After shutdown, as a draining runtime answers.
            Self::Store(StoreError::Closed) => ErrorCode::RuntimeUnavailable,
            Self::Store(_) => ErrorCode::Internal,
        }
    }

    /// The error body detail for a client.
    pub fn to_detail(&self) -> ErrorDetail {
        let detail = ErrorDetail::new(self.code(), self.to_string());
        match self {
            Self::WorkerNotFound(w)
            | Self::WorkerRunning(w)
            | Self::NotATerminal(w)
            | Self::WorkerNotRunning { worker: w, .. } => detail.with_worker(w.clone()),
            Self::WorkerBusy(w) => detail.with_worker(w.clone()).with_retry_after_ms(100),
            _ => detail,
        }
    }
}

/// Result alias for runtime calls.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_worker_not_running_says_why_even_while_its_status_still_says_running() {
        let worker = WorkerId::new("w-1").unwrap();
        let message = |status| {
            RuntimeError::WorkerNotRunning {
                worker: worker.clone(),
                status,
            }
            .to_string()
        };
        assert_eq!(
            message(WorkerStatus::Exited),
            "worker w-1 is exited, not running"
        );
        assert_eq!(
            message(WorkerStatus::Running),
            "worker w-1 is ending: its program is gone, so it takes no more input"
        );
    }

    #[test]
    fn store_errors_do_not_leak_paths_to_clients() {
        let err = RuntimeError::from(StoreError::Corrupt {
            path: PathBuf::from("/secret/data/workers/w/worker.json"),
            reason: "bad".into(),
        });
        let detail = err.to_detail();
        assert_eq!(detail.code, ErrorCode::Internal);
        assert!(!detail.message.contains("/secret"));
    }

    #[test]
    fn busy_carries_a_retry_hint_and_the_worker() {
        let w = WorkerId::new("w1").unwrap();
        let detail = RuntimeError::WorkerBusy(w.clone()).to_detail();
        assert_eq!(detail.code.status(), 429);
        assert_eq!(detail.worker_id, Some(w));
        assert!(detail.retry_after_ms.is_some());
    }
}
