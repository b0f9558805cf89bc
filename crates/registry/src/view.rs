//! [`RuntimeView`]: what the backend knows about one runtime's health, refreshed by
//! probes and by every call's outcome.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchyard_protocol::{
    API_VERSION, ErrorCode, ErrorDetail, ProfileInfo, RuntimeInfo, RuntimeState, WorkerCounts,
};

use crate::error::SourceError;

/// The cached view of one runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeView {
    /// Health as last seen.
    pub state: RuntimeState,
    /// When it last answered (formatted only when shown: this is set on every call).
    pub last_seen: Option<SystemTime>,
    /// The last failure, cleared by the next success.
    pub last_error: Option<ErrorDetail>,
    /// Capabilities from its last self-description.
    pub capabilities: Vec<String>,
    /// Profiles from its last self-description.
    pub profiles: Vec<ProfileInfo>,
    /// Worker counts from its last self-description.
    pub workers: WorkerCounts,
    /// Worker counts per owner from its last self-description.
    pub owners: BTreeMap<String, WorkerCounts>,
    /// The largest page its lists take (`limits.transcript_page_max`), from its
    /// last self-description.
    pub page_max: Option<u32>,
    /// Set while the runtime does not describe itself as one of ours (its
    /// `api_version` is another, or it answers `GET /v1/runtime` with an error of its
    /// own): answers to other calls do not clear it, only a good description does.
    wrong_description: bool,
}

impl Default for RuntimeView {
    fn default() -> Self {
        Self {
            state: RuntimeState::Unknown,
            last_seen: None,
            last_error: None,
            capabilities: Vec::new(),
            profiles: Vec::new(),
            workers: WorkerCounts::default(),
            owners: BTreeMap::new(),
            page_max: None,
            wrong_description: false,
        }
    }
}

impl RuntimeView {
    /// The runtime answered a call.
    pub fn record_answer(&mut self) {
        if !self.wrong_description {
            self.state = RuntimeState::Ready;
            self.last_error = None;
        }
        self.last_seen = Some(SystemTime::now());
    }

    /// The runtime described itself; a wrong `api_version` makes it `incompatible`.
    pub fn record_info(&mut self, info: &RuntimeInfo) {
        self.last_seen = Some(SystemTime::now());
        self.capabilities = info.capabilities.clone();
        self.profiles = info.profiles.clone();
        self.workers = info.workers;
        self.owners = info.owners.clone();
        self.page_max = Some(info.limits.transcript_page_max);
        self.wrong_description = info.api_version != API_VERSION;
        if !self.wrong_description {
            self.state = RuntimeState::Ready;
            self.last_error = None;
        } else {
            self.state = RuntimeState::Incompatible;
            self.last_error = Some(ErrorDetail::new(
                ErrorCode::RuntimeProtocolError,
                // The runtime's number is not repeated: a lying runtime could
                // make it its port (its own `GET /v1/runtime` shows it).
                format!(
                    "the runtime speaks another api_version than this backend's {API_VERSION}; upgrade one of them"
                ),
            ));
        }
    }

    /// Asking the runtime to describe itself failed; with `wrong`, the runtime
    /// answered with an error of its own (a refusal, a missing route), so it stays
    /// `incompatible` until it describes itself properly, whatever other calls get.
    pub fn record_description_failure(&mut self, error: &SourceError, wrong: bool) {
        if wrong {
            self.wrong_description = true;
        }
        self.record_failure(error);
    }

    /// A call failed.
    pub fn record_failure(&mut self, error: &SourceError) {
        if error.runtime_answered() {
            self.record_answer();
            return;
        }
        self.state = match error {
            SourceError::Unreachable | SourceError::Timeout | SourceError::Unavailable => {
                RuntimeState::Unreachable
            }
            SourceError::AuthFailed => RuntimeState::AuthFailed,
            SourceError::TlsFailed(_) => RuntimeState::TlsFailed,
            SourceError::Protocol(_) => RuntimeState::Incompatible,
            _ => self.state,
        };
        self.last_error = Some(ErrorDetail::new(error.code(), error.to_string()));
    }

    /// True when calls are expected to fail until the runtime comes back.
    pub fn is_down(&self) -> bool {
        matches!(
            self.state,
            RuntimeState::Unreachable
                | RuntimeState::AuthFailed
                | RuntimeState::TlsFailed
                | RuntimeState::Incompatible
        )
    }
}

/// A runtime's [`RuntimeView`] as the registry shares it between the threads that
/// serve requests, with a way around its lock for the common case: every answer
/// from a runtime records itself in the view, and while the view already says
/// `ready` with no error an answer changes nothing but `last_seen`, which is then
/// kept in an atomic that is written at most once per millisecond (the resolution
/// it is shown at). Requests served on several cores then do not take one lock
/// (and move one cache line between the cores) for every answer.
///
/// Invariants:
/// - `settled` is written only under the lock, right after the view changes, and
///   says whether the view is ready with no error;
/// - the `last_seen` of [`SharedView::snapshot`] is the later of the view's and
///   the atomic's.
#[derive(Debug, Default)]
pub(crate) struct SharedView {
    /// The runtime's id, for the log line of a change of state.
    runtime_id: String,
    view: Mutex<RuntimeView>,
    settled: AtomicBool,
    /// The latest answer's time recorded without the lock, in milliseconds since
    /// the Unix epoch (0: none).
    seen_millis: AtomicU64,
    /// The id the runtime last called itself when that was not `runtime_id`, so
    /// that the warning about it is logged once per name, not on every refresh.
    misnamed: Mutex<Option<String>>,
}

impl SharedView {
    /// The view of the runtime `runtime_id`, not seen yet.
    pub(crate) fn new(runtime_id: &str) -> Self {
        Self {
            runtime_id: runtime_id.to_owned(),
            ..Self::default()
        }
    }

    /// The runtime answered a call.
    pub(crate) fn record_answer(&self) {
        if self.settled.load(Ordering::Acquire) {
            let now = unix_millis(SystemTime::now());
            if now > self.seen_millis.load(Ordering::Relaxed) {
                self.seen_millis.fetch_max(now, Ordering::Relaxed);
            }
        } else {
            self.update(RuntimeView::record_answer);
        }
    }

    /// The runtime described itself. One that calls itself by another id than the
    /// configuration gives it is served all the same (the backend's id is the one
    /// clients see), but a warning says so once per name: it is most often a
    /// `base_url` pointing at another runtime than meant.
    pub(crate) fn record_info(&self, info: &RuntimeInfo) {
        self.update(|view| view.record_info(info));
        let reported = info.runtime_id.as_str();
        if self.is_newly_misnamed(reported) {
            tracing::warn!(
                runtime_id = self.runtime_id,
                reported_id = reported,
                "the runtime calls itself by another id; check that this runtime's base_url points at the runtime meant (clients see the configured id)"
            );
        }
    }

    /// True when `reported` is not the configured id and was not the id reported
    /// last: the warning is due.
    fn is_newly_misnamed(&self, reported: &str) -> bool {
        let mut misnamed = self.misnamed.lock().unwrap_or_else(|p| p.into_inner());
        if reported == self.runtime_id {
            *misnamed = None;
            return false;
        }
        if misnamed.as_deref() == Some(reported) {
            return false;
        }
        *misnamed = Some(reported.to_owned());
        true
    }

    /// Changes the view under its lock; a change of state is logged (INFO when the
    /// runtime becomes ready, WARN when it goes down, with the error clients see).
    pub(crate) fn update<R>(&self, change: impl FnOnce(&mut RuntimeView) -> R) -> R {
        let mut view = self.lock();
        let before = view.state;
        let result = change(&mut view);
        let settled = view.state == RuntimeState::Ready && view.last_error.is_none();
        self.settled.store(settled, Ordering::Release);
        if view.state != before {
            let error = view.last_error.as_ref().map(|e| e.message.as_str());
            if view.is_down() {
                tracing::warn!(
                    runtime_id = self.runtime_id,
                    state = crate::metrics::state_label(view.state),
                    previous = crate::metrics::state_label(before),
                    error = error.unwrap_or("-"),
                    "runtime state changed"
                );
            } else {
                tracing::info!(
                    runtime_id = self.runtime_id,
                    state = crate::metrics::state_label(view.state),
                    previous = crate::metrics::state_label(before),
                    "runtime state changed"
                );
            }
        }
        result
    }

    /// A copy of the view as it stands.
    pub(crate) fn snapshot(&self) -> RuntimeView {
        let mut view = self.lock().clone();
        let seen = self.seen_millis.load(Ordering::Relaxed);
        if seen > view.last_seen.map_or(0, unix_millis) {
            view.last_seen = Some(UNIX_EPOCH + Duration::from_millis(seen));
        }
        view
    }

    /// Reads the view under its lock (`last_seen` aside, which may be older than
    /// the snapshot's).
    pub(crate) fn read<R>(&self, read: impl FnOnce(&RuntimeView) -> R) -> R {
        read(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, RuntimeView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Milliseconds since the Unix epoch (0 before it).
fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_calling_itself_by_another_id_is_warned_about_once_per_name() {
        let shared = SharedView::new("build-1");
        assert!(!shared.is_newly_misnamed("build-1"));
        assert!(shared.is_newly_misnamed("build-2"));
        assert!(!shared.is_newly_misnamed("build-2"), "said once");
        assert!(shared.is_newly_misnamed("build-3"), "a new name is said");
        assert!(!shared.is_newly_misnamed("build-1"), "the right name again");
        assert!(shared.is_newly_misnamed("build-3"), "and wrong again");
    }

    #[test]
    fn answers_to_a_settled_view_advance_last_seen_without_changing_it() {
        let shared = SharedView::default();
        shared.record_answer();
        let first = shared.snapshot();
        assert_eq!(first.state, RuntimeState::Ready);
        let first_seen = first.last_seen.expect("an answer sets last_seen");
        std::thread::sleep(Duration::from_millis(5));
        // Ready with no error: this one takes the lock-free path.
        shared.record_answer();
        let second = shared.snapshot();
        assert!(second.last_seen.unwrap() > first_seen, "{second:?}");
        assert_eq!(second.state, RuntimeState::Ready);
    }

    #[test]
    fn a_failure_unsettles_the_view_and_the_next_answer_restores_it() {
        let shared = SharedView::default();
        shared.record_answer();
        shared.update(|view| view.record_failure(&SourceError::Unreachable));
        let down = shared.snapshot();
        assert_eq!(down.state, RuntimeState::Unreachable);
        assert!(down.last_error.is_some());
        // Not settled any more: the answer goes through the lock and clears it.
        shared.record_answer();
        let back = shared.snapshot();
        assert_eq!(back.state, RuntimeState::Ready);
        assert_eq!(back.last_error, None);
    }

    /// Also: its number (which a lying runtime could make its port) is not
    /// repeated in the error.
    #[test]
    fn a_runtime_of_another_api_version_stays_incompatible_when_it_answers() {
        let shared = SharedView::default();
        let info: RuntimeInfo = serde_json::from_value(serde_json::json!({
            "runtime_id": "r1", "display_name": "r1", "version": "0", "api_version": 35985,
            "status": "running", "epoch": "e1", "capabilities": [], "profiles": [],
            "workers": {"starting": 0, "running": 0, "exited": 0, "stopped": 0, "failed": 0, "lost": 0},
            "limits": {"max_workers": 1, "max_input_bytes": 1, "max_body_bytes": 1,
                       "transcript_page_max": 1, "event_backlog": 1, "input_queue": 1}
        }))
        .unwrap();
        shared.update(|view| view.record_info(&info));
        shared.record_answer();
        let view = shared.snapshot();
        assert_eq!(view.state, RuntimeState::Incompatible);
        let message = view.last_error.unwrap().message;
        assert!(!message.contains("35985"), "{message}");
    }
}
