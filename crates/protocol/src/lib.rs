//! Switchyard wire types.
//!
//! Every value that crosses one of Switchyard's two HTTP surfaces (the runtime API
//! under `/v1` and the backend API under `/api`) is defined here, with its serde
//! shape pinned by tests against literal JSON. This crate does no I/O.

#[cfg(any(test, feature = "arbitrary"))]
pub mod arbitrary;
pub mod cursor;
pub mod error;
pub mod event;
pub mod frame;
pub mod ids;
#[cfg(feature = "openapi")]
mod openapi;
#[cfg(test)]
mod properties;
pub mod runtime;
pub mod session;
pub mod terminal;
pub mod time;
pub mod transcript;
pub mod worker;

pub use cursor::{CursorError, RuntimeCursor};
pub use error::{ErrorBody, ErrorCode, ErrorDetail, HTTPS_ONLY_MESSAGE};
pub use event::{DiagnosticSeverity, EventKind, EventPayload, WorkerEvent};
pub use frame::{CloseCode, OutgoingFrame, ResetReason, ServerFrame, UpstreamState};
pub use ids::{IdError, RuntimeId, WorkerId};
pub use runtime::{
    API_VERSION, BackendRuntime, Limits, ProfileInfo, ProfileKind, RuntimeInfo, RuntimeList,
    RuntimeSourceKind, RuntimeState, RuntimeStatus, WorkerCounts,
};
pub use session::{LoginRequest, Role, SessionInfo};
pub use terminal::{
    ClientFrame, CursorPosition, MAX_TERMINAL_SIDE, MIN_TERMINAL_SIDE, ResizeRequest,
    ResizeResponse, TerminalSnapshot,
};
pub use time::Timestamp;
pub use transcript::{OutputStream, SystemNote, TranscriptEntry, TranscriptItem, TranscriptPage};
pub use worker::{
    AllWorkersList, CreateWorkerRequest, ExitInfo, Health, InputAccepted, InputRequest,
    NewWorkerRequest, UnavailableEntry, WorkerDetail, WorkerList, WorkerStatus,
    WorkerStatusResponse, is_valid_owner,
};
