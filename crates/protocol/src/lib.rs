//! Switchyard wire types.
//!
//! Every value that crosses one of Switchyard's two HTTP surfaces (the runtime API
//! under `/v1` and the backend API under `/api`) is defined here, with its serde
//! shape pinned by tests against literal JSON. This crate does no I/O; every other
//! Switchyard crate, and any client, speaks in these types.
//!
//! - Ids that validate themselves ([`RuntimeId`], [`WorkerId`]): an invalid one
//!   cannot be built or deserialized.
//! - Requests and answers ([`WorkerDetail`], [`RuntimeInfo`], [`TranscriptPage`],
//!   ...), events ([`WorkerEvent`]) and WebSocket frames ([`ServerFrame`],
//!   [`ClientFrame`]).
//! - Errors: [`ErrorCode`] (each knows its HTTP status) and the error body
//!   ([`ErrorBody`]).
//!
//! Enums that a newer server may extend ([`ErrorCode`], [`WorkerEvent`],
//! [`RuntimeState`], ...) are `#[non_exhaustive]`: match them with a wildcard arm.
//!
//! ```
//! use switchyard_protocol::{ErrorBody, ErrorCode, ErrorDetail, WorkerEvent, WorkerId};
//!
//! // Ids are checked when built and when read.
//! assert!(WorkerId::new("w-1").is_ok());
//! assert!(WorkerId::new(".hidden").is_err());
//! assert!(serde_json::from_str::<WorkerId>("\"a b\"").is_err());
//!
//! // An error body, as both surfaces answer it.
//! let body = ErrorBody::from(ErrorDetail::new(ErrorCode::WorkerBusy, "retry shortly"));
//! assert_eq!(ErrorCode::WorkerBusy.status(), 429);
//! assert_eq!(
//!     serde_json::to_string(&body).unwrap(),
//!     r#"{"error":{"code":"worker_busy","message":"retry shortly"}}"#
//! );
//!
//! // An event as a WebSocket frame carries it.
//! let event: WorkerEvent =
//!     serde_json::from_str(r#"{"kind":"exited","code":3,"signal":null}"#).unwrap();
//! assert_eq!(event, WorkerEvent::Exited { code: Some(3), signal: None });
//! ```

#[cfg(any(test, feature = "arbitrary"))]
pub mod arbitrary;
pub mod cursor;
pub mod error;
pub mod event;
pub mod frame;
pub mod ids;
pub mod media;
#[cfg(feature = "openapi")]
mod openapi;
#[cfg(test)]
mod properties;
pub mod relay;
pub mod runtime;
pub mod session;
pub mod terminal;
pub mod time;
pub mod transcript;
pub mod worker;

pub use cursor::{CursorError, RuntimeCursor};
pub use error::{ErrorBody, ErrorCode, ErrorDetail, HTTPS_ONLY_MESSAGE};
pub use event::{
    DiagnosticSeverity, EventKind, EventPayload, MAX_INPUT_TEXT_BYTES, RawEvent,
    SNAPSHOT_SCREEN_MAX_JSON_BYTES, SNAPSHOT_TRANSCRIPT_MAX_JSON_BYTES, WorkerEvent,
};
pub use frame::{CloseCode, OutgoingFrame, ResetReason, ServerFrame, UpstreamState};
pub use ids::{IdError, RuntimeId, WorkerId};
pub use runtime::{
    API_VERSION, BackendRuntime, CustomKind, KindNameError, Limits, ProfileInfo, ProfileKind,
    RuntimeInfo, RuntimeList, RuntimeSourceKind, RuntimeState, RuntimeStatus, WorkerCounts,
};
pub use session::{LoginRequest, Role, SessionInfo};
pub use terminal::{
    ClientFrame, CursorPosition, MAX_TERMINAL_SIDE, MIN_TERMINAL_SIDE, ResizeRequest,
    ResizeResponse, TerminalSnapshot,
};
pub use time::Timestamp;
pub use transcript::{
    OutputStream, SystemNote, TRANSCRIPT_PAGE_MAX_JSON_BYTES, TranscriptEntry, TranscriptItem,
    TranscriptPage, json_text_len_bound,
};
pub use worker::{
    AllWorkersList, CreateWorkerRequest, ExitInfo, Health, InputAccepted, InputRequest,
    NewWorkerRequest, UnavailableEntry, WorkerDetail, WorkerList, WorkerStatus,
    WorkerStatusResponse, is_valid_owner,
};
