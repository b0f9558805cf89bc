//! WebSocket frames sent by servers of both surfaces, and the close codes.

use serde::{Deserialize, Serialize};

use crate::error::ErrorDetail;
use crate::event::WorkerEvent;
use crate::ids::{RuntimeId, WorkerId};

/// Why a client must drop what it holds and take a fresh snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ResetReason {
    /// The cursor is older than the bounded backlog.
    CursorExpired,
    /// The cursor is from an earlier runtime epoch.
    RuntimeRestarted,
}

/// The backend's upstream connection to a runtime, as viewers see it.
///
/// Exhaustive on purpose: the contract fixes `lost` and `restored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpstreamState {
    /// The upstream dropped; the backend is reconnecting.
    Lost,
    /// The upstream is back and resumed where it left off.
    Restored,
}

/// One server-to-client JSON text frame.
// A frame is built, encoded and dropped (or boxed in an `OutgoingFrame`), never kept
// in bulk, so the event variant's size costs nothing worth an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerFrame {
    /// A worker event with the cursor to resume after it.
    Event {
        /// Opaque; pass back as `?cursor=` to resume after this event.
        cursor: String,
        /// Present on backend frames only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        runtime_id: Option<RuntimeId>,
        /// The worker.
        worker_id: WorkerId,
        /// The event.
        event: WorkerEvent,
    },
    /// Drop everything held for this worker; a snapshot follows at once.
    Reset {
        /// Why.
        reason: ResetReason,
    },
    /// Backend only: the upstream connection was lost or restored.
    Upstream {
        /// Lost or restored.
        state: UpstreamState,
        /// Why it was lost; null when restored.
        error: Option<ErrorDetail>,
    },
    /// Interactive sessions only: a client frame was refused (worker not running,
    /// busy, bad size, ...); the connection stays open.
    Error {
        /// Why.
        error: ErrorDetail,
    },
}

/// A frame on its way to a client: a value, or already encoded as JSON text. An
/// encoded frame is shared (`Arc`) so that an event watched by many clients is
/// encoded once, not once per client.
///
/// Exhaustive on purpose: the forms a frame travels in, each of which every writer
/// must know how to send (there is no right default for a form it does not know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutgoingFrame {
    /// A frame to encode (boxed: frames are large, encoded ones are a pointer).
    Value(Box<ServerFrame>),
    /// A frame's JSON text, shared.
    Encoded(std::sync::Arc<str>),
    /// A frame's JSON text for one client (moved into its message, not copied).
    Text(String),
}

impl OutgoingFrame {
    /// The JSON text of the frame.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        match self {
            Self::Value(frame) => serde_json::to_string(&**frame),
            Self::Encoded(text) => Ok(text.to_string()),
            Self::Text(text) => Ok(text.clone()),
        }
    }
}

impl From<ServerFrame> for OutgoingFrame {
    fn from(frame: ServerFrame) -> Self {
        Self::Value(Box::new(frame))
    }
}

/// WebSocket close codes used by both surfaces.
///
/// A code is added when the servers learn a new reason to close, so a match on it
/// needs a wildcard arm (or use [`CloseCode::code`] and [`CloseCode::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1000: normal closure.
    Normal,
    /// 1001: the server is shutting down.
    GoingAway,
    /// 1001 too, with its own reason: what the stream was opened with is no longer
    /// accepted (its session signed out or expired, its token removed or changed,
    /// its page's origin no longer allowed). The client reconnects and meets a
    /// `401` or `403` (or the new rules).
    AccessEnded,
    /// 1002: the client broke the WebSocket protocol itself (an unmasked frame,
    /// reserved bits, a fragmented control frame, ...).
    ProtocolError,
    /// 1008: the client sent a data frame.
    PolicyViolation,
    /// 1009: an interactive client's frame was larger than the session reads (its
    /// limit is the server's request body limit).
    MessageTooBig,
    /// 1011: the server hit an unexpected error.
    InternalError,
    /// 4404: the worker disappeared.
    WorkerNotFound,
    /// 4408: the client fell too far behind (`slow_consumer`).
    SlowConsumer,
}

impl CloseCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::GoingAway | Self::AccessEnded => 1001,
            Self::ProtocolError => 1002,
            Self::PolicyViolation => 1008,
            Self::MessageTooBig => 1009,
            Self::InternalError => 1011,
            Self::WorkerNotFound => 4404,
            Self::SlowConsumer => 4408,
        }
    }

    /// The close reason text sent with the code.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Normal => "closed",
            Self::GoingAway => "shutting_down",
            Self::AccessEnded => "access_ended",
            Self::ProtocolError => "protocol_error",
            Self::PolicyViolation => "clients_send_control_frames_only",
            Self::MessageTooBig => "frame_too_big",
            Self::InternalError => "internal",
            Self::WorkerNotFound => "worker_not_found",
            Self::SlowConsumer => "slow_consumer",
        }
    }

    /// The close code for a numeric value, if it is one of ours (1001 is
    /// [`CloseCode::GoingAway`]; the reason tells the two apart).
    pub fn from_code(code: u16) -> Option<Self> {
        [
            Self::Normal,
            Self::GoingAway,
            Self::ProtocolError,
            Self::PolicyViolation,
            Self::MessageTooBig,
            Self::InternalError,
            Self::WorkerNotFound,
            Self::SlowConsumer,
        ]
        .into_iter()
        .find(|c| c.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use serde_json::json;

    #[test]
    fn frame_shapes() {
        let runtime_frame = ServerFrame::Event {
            cursor: "c1".into(),
            runtime_id: None,
            worker_id: WorkerId::new("w").unwrap(),
            event: WorkerEvent::Interrupted,
        };
        assert_eq!(
            serde_json::to_value(&runtime_frame).unwrap(),
            json!({"type":"event","cursor":"c1","worker_id":"w","event":{"kind":"interrupted"}})
        );
        let backend_frame = ServerFrame::Event {
            cursor: "c1".into(),
            runtime_id: Some(RuntimeId::new("local").unwrap()),
            worker_id: WorkerId::new("w").unwrap(),
            event: WorkerEvent::Interrupted,
        };
        assert_eq!(
            serde_json::to_value(&backend_frame).unwrap(),
            json!({"type":"event","cursor":"c1","runtime_id":"local","worker_id":"w","event":{"kind":"interrupted"}})
        );
        assert_eq!(
            serde_json::to_value(ServerFrame::Reset {
                reason: ResetReason::CursorExpired
            })
            .unwrap(),
            json!({"type":"reset","reason":"cursor_expired"})
        );
        assert_eq!(
            serde_json::to_value(ServerFrame::Reset {
                reason: ResetReason::RuntimeRestarted
            })
            .unwrap(),
            json!({"type":"reset","reason":"runtime_restarted"})
        );
        assert_eq!(
            serde_json::to_value(ServerFrame::Upstream {
                state: UpstreamState::Restored,
                error: None
            })
            .unwrap(),
            json!({"type":"upstream","state":"restored","error":null})
        );
        let lost = ServerFrame::Upstream {
            state: UpstreamState::Lost,
            error: Some(ErrorDetail::new(ErrorCode::RuntimeUnreachable, "gone")),
        };
        let v = serde_json::to_value(&lost).unwrap();
        assert_eq!(
            v,
            json!({"type":"upstream","state":"lost","error":{"code":"runtime_unreachable","message":"gone"}})
        );
        assert_eq!(serde_json::from_value::<ServerFrame>(v).unwrap(), lost);
        let refused = ServerFrame::Error {
            error: ErrorDetail::new(ErrorCode::WorkerNotRunning, "worker w is exited")
                .with_worker(WorkerId::new("w").unwrap()),
        };
        let v = serde_json::to_value(&refused).unwrap();
        assert_eq!(
            v,
            json!({"type":"error","error":{"code":"worker_not_running","message":"worker w is exited","worker_id":"w"}})
        );
        assert_eq!(serde_json::from_value::<ServerFrame>(v).unwrap(), refused);
    }

    #[test]
    fn close_codes() {
        assert_eq!(CloseCode::SlowConsumer.code(), 4408);
        assert_eq!(CloseCode::WorkerNotFound.code(), 4404);
        assert_eq!(CloseCode::PolicyViolation.code(), 1008);
        assert_eq!(CloseCode::ProtocolError.code(), 1002);
        assert_eq!(CloseCode::MessageTooBig.code(), 1009);
        assert_eq!(CloseCode::GoingAway.code(), 1001);
        assert_eq!(CloseCode::from_code(4408), Some(CloseCode::SlowConsumer));
        assert_eq!(CloseCode::from_code(4000), None);
    }
}
