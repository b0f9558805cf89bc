//! The WebSocket half: the [`RuntimeEventsClient`] trait the registry depends on for
//! a worker's live event stream, and the typed frames and endings of that stream.

use switchyard_protocol::{EventPayload, ResetReason, WorkerId};

use crate::error::TransportError;

/// One frame of a runtime's worker event stream, checked. The event itself is kept
/// as the JSON text it arrived in (only its `kind` is read): a proxy passes it on
/// without decoding and re-encoding it.
///
/// Exhaustive on purpose, as [`UpstreamEnd`] is: every consumer (the registry's
/// remote source) must decide what each frame means.
#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamFrame {
    /// A worker event and the runtime cursor to resume after it.
    Event {
        /// The runtime's opaque cursor (never shown to backend clients).
        cursor: String,
        /// The event, as received.
        event: EventPayload,
    },
    /// The runtime could not resume; a snapshot follows.
    Reset(ResetReason),
}

/// How a runtime event stream ended.
///
/// Exhaustive on purpose: every consumer must decide what each ending means (a
/// source's ending, a reconnection or not).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamEnd {
    /// The worker was deleted (close code 4404).
    #[error("the worker is gone")]
    WorkerGone,
    /// The runtime cut us off as a slow consumer (close code 4408).
    #[error("the runtime closed the stream: too slow")]
    SlowConsumer,
    /// The runtime is shutting down (close code 1001).
    #[error("the runtime is shutting down")]
    Shutdown,
    /// Closed with another code, or without a close frame after one was sent.
    #[error("the runtime closed the stream (code {code:?})")]
    Closed {
        /// The close code, if any.
        code: Option<u16>,
    },
    /// The runtime sent something that is not a valid frame for this worker.
    #[error("the runtime sent a malformed frame: {reason}")]
    Malformed {
        /// What was wrong (never contains the URL or token).
        reason: String,
    },
    /// The connection failed (reset, silent for too long, ...).
    #[error("the connection to the runtime was lost: {0}")]
    Lost(TransportError),
}

/// An open event stream.
#[async_trait::async_trait]
pub trait UpstreamStream: Send + 'static {
    /// The next frame, or how the stream ended. After an end, do not call again.
    async fn next(&mut self) -> Result<UpstreamFrame, UpstreamEnd>;
}

/// Opens worker event streams on one remote runtime.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait RuntimeEventsClient: Send + Sync + 'static {
    /// Subscribes to `worker`'s events, resuming after `cursor` when given. With
    /// `snapshot_after_replay`, the runtime sends a fresh snapshot after the replayed
    /// events (so a proxy that resumes also learns the current state).
    ///
    /// Refusals known before the upgrade come back as [`TransportError`]: 401 as
    /// `AuthRejected`, `worker_not_found` and `invalid_cursor` as `Runtime`.
    async fn subscribe(
        &self,
        worker: &WorkerId,
        cursor: Option<String>,
        snapshot_after_replay: bool,
    ) -> Result<Box<dyn UpstreamStream>, TransportError>;
}
