//! The policy seam: consulted before every command and every observation, and able to
//! filter or redact each event. The default, [`AllowAll`], lets everything through.

use switchyard_protocol::{RuntimeId, WorkerEvent, WorkerId};

/// What a caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Read a runtime's view.
    ViewRuntime,
    /// List a runtime's workers.
    ListWorkers,
    /// Start a worker from a profile.
    CreateWorker {
        /// The profile's name.
        profile: &'a str,
    },
    /// Read a worker's detail.
    ViewWorker,
    /// Send input.
    Input,
    /// Resize a terminal worker.
    Resize,
    /// Cancel in-flight work.
    Cancel,
    /// Stop the worker.
    Stop,
    /// Remove an ended worker.
    Delete,
    /// Read the transcript.
    ReadTranscript,
    /// Watch the live event stream.
    Observe,
}

/// One question to the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyRequest<'a> {
    /// The runtime addressed.
    pub runtime_id: &'a RuntimeId,
    /// The worker addressed, if any.
    pub worker_id: Option<&'a WorkerId>,
    /// What is asked.
    pub action: Action<'a>,
}

/// A refusal; the text is shown to the client with `403 forbidden`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyDenied(pub String);

/// Permission and redaction rules. Implementations must be cheap: they run on every
/// call and every event.
pub trait Policy: Send + Sync + 'static {
    /// Allows or refuses a call before it is routed.
    fn authorize(&self, request: &PolicyRequest<'_>) -> Result<(), PolicyDenied>;

    /// True when [`Policy::filter_event`] may drop or change events. When false, the
    /// hub skips it and encodes each event once for all viewers. The default is true,
    /// so a policy that overrides `filter_event` is never bypassed by mistake.
    fn filters_events(&self) -> bool {
        true
    }

    /// Filters (`None`) or rewrites one event before a viewer sees it.
    fn filter_event(
        &self,
        _runtime_id: &RuntimeId,
        _worker_id: &WorkerId,
        event: WorkerEvent,
    ) -> Option<WorkerEvent> {
        Some(event)
    }
}

/// The pass-through default.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Policy for AllowAll {
    fn authorize(&self, _request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        Ok(())
    }

    fn filters_events(&self) -> bool {
        false
    }
}
