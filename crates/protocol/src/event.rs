//! Worker events: what a live event stream carries, tagged by `kind`.

use serde::{Deserialize, Serialize};

use crate::terminal::TerminalSnapshot;
use crate::transcript::{OutputStream, TranscriptItem};
use crate::worker::{WorkerDetail, WorkerStatus};

/// How serious a diagnostic is.
///
/// Exhaustive on purpose: a closed scale, and a reader of the wire decodes no other
/// value, so a new one would break older readers whatever the Rust type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DiagnosticSeverity {
    /// For information.
    Info,
    /// Something went wrong but the worker goes on.
    Warning,
    /// Something failed.
    Error,
}

/// The most JSON a runtime puts in a snapshot's `transcript`: the last items that
/// fit, oldest first (possibly none, when the last alone is larger).
pub const SNAPSHOT_TRANSCRIPT_MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

/// The most JSON a runtime puts in a snapshot's `terminal.screen`: a screen whose
/// full painting is larger (a 1000 x 1000 terminal with a colour change in every
/// cell) is painted without colours and attributes, and rows past the budget are
/// left blank.
pub const SNAPSHOT_SCREEN_MAX_JSON_BYTES: usize = 8 * 1024 * 1024;

/// The largest `max_input_bytes` a runtime takes: an input's event (and an echo's
/// output of it), every byte escaped, stays well within the frame a backend takes
/// from a runtime.
pub const MAX_INPUT_TEXT_BYTES: u64 = 2 * 1024 * 1024;

/// One event of a worker's live stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkerEvent {
    /// The whole current state: sent first on a fresh subscription and after a reset.
    Snapshot {
        /// The worker as it is now.
        worker: WorkerDetail,
        /// The transcript's last items, oldest first, within
        /// [`SNAPSHOT_TRANSCRIPT_MAX_JSON_BYTES`].
        transcript: Vec<TranscriptItem>,
        /// A pty worker's current screen; absent for other workers (and for a pty
        /// worker restored after a runtime restart, whose screen was not kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        terminal: Option<Box<TerminalSnapshot>>,
    },
    /// The worker's status changed.
    Status {
        /// The new status.
        status: WorkerStatus,
        /// The status before.
        previous: WorkerStatus,
    },
    /// An input was accepted.
    Input {
        /// Its transcript sequence.
        sequence: u64,
        /// Its text.
        text: String,
    },
    /// The worker produced output.
    Output {
        /// Its transcript sequence.
        sequence: u64,
        /// The stream it came from.
        stream: OutputStream,
        /// The text.
        text: String,
    },
    /// In-flight work was interrupted by a cancel.
    Interrupted,
    /// A pty worker's terminal was resized.
    Resized {
        /// Columns now.
        cols: u16,
        /// Rows now.
        rows: u16,
    },
    /// The worker ended on its own.
    Exited {
        /// Exit code, if it exited normally.
        code: Option<i32>,
        /// Signal number, if a signal ended it.
        signal: Option<i32>,
    },
    /// Something the user should know (spawn failure, skipped record, ...).
    Diagnostic {
        /// How serious it is.
        severity: DiagnosticSeverity,
        /// A stable snake_case code.
        code: String,
        /// Human text.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_shapes() {
        let cases = [
            (
                WorkerEvent::Status {
                    status: WorkerStatus::Running,
                    previous: WorkerStatus::Starting,
                },
                json!({"kind":"status","status":"running","previous":"starting"}),
            ),
            (
                WorkerEvent::Input {
                    sequence: 2,
                    text: "hi".into(),
                },
                json!({"kind":"input","sequence":2,"text":"hi"}),
            ),
            (
                WorkerEvent::Output {
                    sequence: 3,
                    stream: OutputStream::Stdout,
                    text: "hi".into(),
                },
                json!({"kind":"output","sequence":3,"stream":"stdout","text":"hi"}),
            ),
            (WorkerEvent::Interrupted, json!({"kind":"interrupted"})),
            (
                WorkerEvent::Resized {
                    cols: 100,
                    rows: 30,
                },
                json!({"kind":"resized","cols":100,"rows":30}),
            ),
            (
                WorkerEvent::Output {
                    sequence: 4,
                    stream: OutputStream::Terminal,
                    text: "\u{1b}[1m$ ".into(),
                },
                json!({"kind":"output","sequence":4,"stream":"terminal","text":"\u{1b}[1m$ "}),
            ),
            (
                WorkerEvent::Exited {
                    code: None,
                    signal: Some(9),
                },
                json!({"kind":"exited","code":null,"signal":9}),
            ),
            (
                WorkerEvent::Diagnostic {
                    severity: DiagnosticSeverity::Error,
                    code: "spawn_failed".into(),
                    message: "no such file".into(),
                },
                json!({"kind":"diagnostic","severity":"error","code":"spawn_failed","message":"no such file"}),
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(serde_json::to_value(&event).unwrap(), expected);
            assert_eq!(
                serde_json::from_value::<WorkerEvent>(expected).unwrap(),
                event
            );
        }
    }
}

/// A worker event's kind, read without decoding the rest of the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// `snapshot`.
    Snapshot,
    /// `status`.
    Status,
    /// `input`.
    Input,
    /// `output`.
    Output,
    /// `interrupted`.
    Interrupted,
    /// `resized`.
    Resized,
    /// `exited`.
    Exited,
    /// `diagnostic`.
    Diagnostic,
    /// A kind this version does not know (a newer runtime): passed on as it is.
    #[serde(other)]
    Other,
}

/// A worker event as a proxy holds it: decoded, or as the JSON text it arrived in with
/// only its `kind` read, so that passing it on costs no decode and re-encode.
///
/// Exhaustive on purpose: the forms an event travels in, each of which every
/// consumer must know how to pass on (there is no right default for a form it does
/// not know).
#[derive(Debug, Clone)]
pub enum EventPayload {
    /// A decoded event (from an embedded runtime).
    Decoded(std::sync::Arc<WorkerEvent>),
    /// An event's JSON object as received (from a remote runtime).
    Json {
        /// Its `kind`.
        kind: EventKind,
        /// The whole object, valid JSON.
        json: RawEvent,
    },
}

/// An event object's JSON text as received, known to be valid JSON: built only from
/// serde_json's `RawValue` or from [`crate::relay::event_frame`]'s checked text.
#[derive(Debug, Clone)]
pub struct RawEvent {
    json: Box<str>,
    /// Whether it is a plain text event, if [`crate::relay::event_frame`] found out
    /// ([`crate::relay::plain_text_event`] then need not read it again).
    plain_text: Option<bool>,
}

impl RawEvent {
    /// The object's text.
    pub fn get(&self) -> &str {
        &self.json
    }

    /// Whether it is a plain text event, if known.
    pub(crate) fn plain_text(&self) -> Option<bool> {
        self.plain_text
    }
}

/// Equal when their text is.
impl PartialEq for RawEvent {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl Eq for RawEvent {}

impl From<Box<serde_json::value::RawValue>> for RawEvent {
    fn from(raw: Box<serde_json::value::RawValue>) -> Self {
        Self {
            json: raw.into(),
            plain_text: None,
        }
    }
}

impl From<crate::relay::CheckedEvent<'_>> for RawEvent {
    fn from(checked: crate::relay::CheckedEvent<'_>) -> Self {
        Self {
            json: checked.get().into(),
            plain_text: checked.plain_text(),
        }
    }
}

/// Written as the JSON it is (through serde_json's `RawValue`, which reads it once
/// more: [`EventPayload`]'s hot path, a backend's event frame, writes the text
/// itself).
impl Serialize for RawEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.json).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

#[derive(Deserialize)]
struct KindOnly {
    kind: EventKind,
}

/// The kind of an event object that starts with its `kind` (as every event this
/// protocol encodes does), read without scanning the rest: output text can be many
/// kilobytes of escapes. `None` when the object does not start that way.
fn kind_from_prefix(json: &str) -> Option<EventKind> {
    let rest = json.strip_prefix("{\"kind\":\"")?;
    let name = &rest[..rest.find('"')?];
    if name.contains('\\') {
        return None;
    }
    Some(match name {
        "snapshot" => EventKind::Snapshot,
        "status" => EventKind::Status,
        "input" => EventKind::Input,
        "output" => EventKind::Output,
        "interrupted" => EventKind::Interrupted,
        "resized" => EventKind::Resized,
        "exited" => EventKind::Exited,
        "diagnostic" => EventKind::Diagnostic,
        _ => EventKind::Other,
    })
}

impl EventPayload {
    /// Keeps `json` (an event object) as it is, reading only its `kind`.
    pub fn from_json(json: Box<serde_json::value::RawValue>) -> Result<Self, serde_json::Error> {
        let kind = match kind_from_prefix(json.get()) {
            Some(kind) => kind,
            None => serde_json::from_str::<KindOnly>(json.get())?.kind,
        };
        Ok(Self::Json {
            kind,
            json: json.into(),
        })
    }

    /// Keeps a checked event object as it is, if its `kind` comes first (as every
    /// event this protocol encodes has it); `None` otherwise (read it with serde).
    pub fn from_checked(event: crate::relay::CheckedEvent<'_>) -> Option<Self> {
        let kind = kind_from_prefix(event.get())?;
        Some(Self::Json {
            kind,
            json: event.into(),
        })
    }

    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Decoded(event) => match **event {
                WorkerEvent::Snapshot { .. } => EventKind::Snapshot,
                WorkerEvent::Status { .. } => EventKind::Status,
                WorkerEvent::Input { .. } => EventKind::Input,
                WorkerEvent::Output { .. } => EventKind::Output,
                WorkerEvent::Interrupted => EventKind::Interrupted,
                WorkerEvent::Resized { .. } => EventKind::Resized,
                WorkerEvent::Exited { .. } => EventKind::Exited,
                WorkerEvent::Diagnostic { .. } => EventKind::Diagnostic,
            },
            Self::Json { kind, .. } => *kind,
        }
    }

    /// The decoded event (decoding the JSON form; an unknown kind is an error).
    pub fn decode(&self) -> Result<WorkerEvent, serde_json::Error> {
        match self {
            Self::Decoded(event) => Ok(WorkerEvent::clone(event)),
            Self::Json { json, .. } => serde_json::from_str(json.get()),
        }
    }
}

/// Equal when they are the same event, whatever their form.
impl PartialEq for EventPayload {
    fn eq(&self, other: &Self) -> bool {
        match (self.decode(), other.decode()) {
            (Ok(a), Ok(b)) => a == b,
            _ => serde_json::to_string(self).ok() == serde_json::to_string(other).ok(),
        }
    }
}

impl From<WorkerEvent> for EventPayload {
    fn from(event: WorkerEvent) -> Self {
        Self::Decoded(std::sync::Arc::new(event))
    }
}

impl Serialize for EventPayload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Decoded(event) => event.serialize(serializer),
            Self::Json { json, .. } => json.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod payload_tests {
    use super::*;

    #[test]
    fn json_payloads_keep_their_text_and_know_their_kind() {
        let text = r#"{"kind":"output","sequence":3,"stream":"stdout","text":"a\nb","future":1}"#;
        let raw = serde_json::value::RawValue::from_string(text.to_owned()).unwrap();
        let payload = EventPayload::from_json(raw).unwrap();
        assert_eq!(payload.kind(), EventKind::Output);
        assert_eq!(serde_json::to_string(&payload).unwrap(), text);
        assert!(matches!(
            payload.decode().unwrap(),
            WorkerEvent::Output { sequence: 3, .. }
        ));
        let newer =
            serde_json::value::RawValue::from_string(r#"{"kind":"telemetry"}"#.into()).unwrap();
        assert_eq!(
            EventPayload::from_json(newer).unwrap().kind(),
            EventKind::Other
        );
        let bad = serde_json::value::RawValue::from_string(r#"{"text":"no kind"}"#.into()).unwrap();
        assert!(EventPayload::from_json(bad).is_err());
        // The kind need not come first; then the object is scanned for it.
        let later = serde_json::value::RawValue::from_string(
            r#"{"sequence":1,"kind":"input","text":"x"}"#.into(),
        )
        .unwrap();
        assert_eq!(
            EventPayload::from_json(later).unwrap().kind(),
            EventKind::Input
        );
        let escaped =
            serde_json::value::RawValue::from_string(r#"{"kind":"inp\u0075t"}"#.into()).unwrap();
        assert_eq!(
            EventPayload::from_json(escaped).unwrap().kind(),
            EventKind::Input
        );
        // Every kind this protocol encodes is read from the prefix like serde reads it.
        for event in [
            WorkerEvent::Interrupted,
            WorkerEvent::Resized { cols: 1, rows: 2 },
            WorkerEvent::Exited {
                code: Some(1),
                signal: None,
            },
        ] {
            let raw =
                serde_json::value::RawValue::from_string(serde_json::to_string(&event).unwrap())
                    .unwrap();
            assert_eq!(
                kind_from_prefix(raw.get()),
                Some(EventPayload::from(event).kind())
            );
        }
    }

    #[test]
    fn decoded_payloads_encode_like_the_event() {
        let event = WorkerEvent::Interrupted;
        let payload = EventPayload::from(event.clone());
        assert_eq!(payload.kind(), EventKind::Interrupted);
        assert_eq!(
            serde_json::to_string(&payload).unwrap(),
            serde_json::to_string(&event).unwrap()
        );
    }
}
