//! The frames of a worker's event WebSocket as this client reads and writes them.
//!
//! Server frames are read leniently where the contract lets a newer backend say more:
//! an event kind this client does not know is passed on as
//! [`Incoming::UnknownEvent`] (its cursor still counts), an unknown frame type is
//! skipped, and error codes are kept as strings. What would make the stream wrong
//! (an event of another worker, an event without a cursor) is malformed.
//!
//! The terminal contract's additions are defined here until `switchyard-protocol`
//! carries them: the client frames `input` and `resize`, the server's `error` frame
//! on an interactive socket, and the `terminal` screen inside a `snapshot`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchyard_protocol::{ResetReason, RuntimeId, UpstreamState, WorkerEvent, WorkerId};

use crate::error::ApiError;
use crate::http::shorten;
use crate::worker_ref::WorkerRef;

/// A frame a client sends on an interactive event WebSocket (`?interactive=true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InteractiveFrame {
    /// Keystrokes or text for the worker, as given.
    Input {
        /// The text.
        text: String,
    },
    /// The viewer's terminal size.
    Resize {
        /// Columns, 1 to 1000.
        cols: u16,
        /// Rows, 1 to 1000.
        rows: u16,
    },
}

/// Where a terminal's cursor is, from the top left, counting from 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct TerminalCursor {
    /// The row.
    #[serde(default)]
    pub row: u16,
    /// The column.
    #[serde(default)]
    pub col: u16,
}

/// A terminal worker's screen as its `snapshot` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TerminalScreen {
    /// Its width.
    pub cols: u16,
    /// Its height.
    pub rows: u16,
    /// Text with escape sequences that paints the screen on an empty terminal of this
    /// size.
    pub screen: String,
    /// Where the cursor is.
    #[serde(default)]
    pub cursor: TerminalCursor,
    /// Whether the program uses the alternate screen.
    #[serde(default)]
    pub alternate: bool,
}

/// One frame from the backend, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A worker event and the cursor to resume after it.
    Event {
        /// Opaque; resume after this event with it.
        cursor: String,
        /// The event.
        event: Box<WorkerEvent>,
        /// A terminal worker's screen, on its `snapshot` events.
        terminal: Option<Box<TerminalScreen>>,
    },
    /// An `output` event of a terminal worker (`stream: "terminal"`). Kept apart
    /// until `switchyard-protocol`'s output streams include the terminal's; then it
    /// arrives as an [`Incoming::Event`].
    TerminalOutput {
        /// Opaque; resume after this event with it.
        cursor: String,
        /// Its transcript sequence.
        sequence: u64,
        /// The terminal's bytes (escape sequences included), as text.
        text: String,
    },
    /// An event of a kind this client does not know (from a newer backend).
    UnknownEvent {
        /// Opaque; resume after this event with it.
        cursor: String,
        /// Its `kind`.
        kind: String,
    },
    /// Drop what is held for the worker; a snapshot follows. `None` for a reason this
    /// client does not know.
    Reset(Option<ResetReason>),
    /// The backend lost, or got back, its connection to the worker's runtime.
    Upstream {
        /// Lost or restored.
        state: UpstreamState,
        /// Why it was lost.
        error: Option<ApiError>,
    },
    /// An interactive frame was refused (worker not running, busy, ...); the socket
    /// stays open.
    Refused(ApiError),
}

/// Every field any server frame has, read flat so that the event can stay raw until
/// its kind is known.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    runtime_id: Option<RuntimeId>,
    #[serde(default)]
    worker_id: Option<WorkerId>,
    #[serde(default)]
    event: Option<Box<RawValue>>,
    #[serde(default)]
    reason: Option<serde_json::Value>,
    #[serde(default)]
    state: Option<UpstreamState>,
    #[serde(default)]
    error: Option<ApiError>,
}

/// The parts of an event read before (or besides) decoding it fully.
#[derive(Deserialize)]
struct EventHead {
    kind: String,
    #[serde(default)]
    terminal: Option<Box<TerminalScreen>>,
}

/// An `output` event read without the protocol's closed set of streams.
#[derive(Deserialize)]
struct TerminalOutputEvent {
    sequence: u64,
    stream: String,
    text: String,
}

/// The event kinds this client decodes.
const KNOWN_KINDS: [&str; 7] = [
    "snapshot",
    "status",
    "input",
    "output",
    "interrupted",
    "exited",
    "diagnostic",
];

/// Decodes one text frame for `worker`. `Ok(None)`: a frame type this client does not
/// know, to be skipped. `Err`: what is wrong with it.
pub(crate) fn decode(text: &str, worker: &WorkerRef) -> Result<Option<Incoming>, String> {
    let frame: Envelope = serde_json::from_str(text)
        .map_err(|e| format!("not a server frame: {}", shorten(&e.to_string())))?;
    match frame.kind.as_str() {
        "event" => decode_event(frame, worker).map(Some),
        "reset" => Ok(Some(Incoming::Reset(
            frame
                .reason
                .and_then(|reason| serde_json::from_value(reason).ok()),
        ))),
        "upstream" => {
            let state = frame.state.ok_or("an upstream frame without a state")?;
            Ok(Some(Incoming::Upstream {
                state,
                error: frame.error,
            }))
        }
        "error" => {
            let error = frame.error.ok_or("an error frame without an error")?;
            Ok(Some(Incoming::Refused(error)))
        }
        _ => Ok(None),
    }
}

fn decode_event(frame: Envelope, worker: &WorkerRef) -> Result<Incoming, String> {
    if frame.worker_id.as_ref() != Some(&worker.worker_id) {
        return Err("an event for another worker".into());
    }
    if frame
        .runtime_id
        .as_ref()
        .is_some_and(|rt| *rt != worker.runtime_id)
    {
        return Err("an event for another runtime".into());
    }
    let cursor = frame
        .cursor
        .filter(|c| !c.is_empty())
        .ok_or("an event without a cursor")?;
    let raw = frame.event.ok_or("an event frame without an event")?;
    let head: EventHead = serde_json::from_str(raw.get())
        .map_err(|e| format!("an event without a kind: {}", shorten(&e.to_string())))?;
    if !KNOWN_KINDS.contains(&head.kind.as_str()) {
        return Ok(Incoming::UnknownEvent {
            cursor,
            kind: head.kind,
        });
    }
    let event: WorkerEvent = match serde_json::from_str(raw.get()) {
        Ok(event) => event,
        Err(error) => {
            if head.kind == "output"
                && let Ok(output) = serde_json::from_str::<TerminalOutputEvent>(raw.get())
                && output.stream == "terminal"
            {
                return Ok(Incoming::TerminalOutput {
                    cursor,
                    sequence: output.sequence,
                    text: output.text,
                });
            }
            return Err(format!(
                "a malformed {} event: {}",
                head.kind,
                shorten(&error.to_string())
            ));
        }
    };
    let terminal = match event {
        WorkerEvent::Snapshot { .. } => head.terminal,
        _ => None,
    };
    Ok(Incoming::Event {
        cursor,
        event: Box::new(event),
        terminal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn worker() -> WorkerRef {
        "local/w1".parse().unwrap()
    }

    fn check(frame: serde_json::Value, expected: Result<Option<&str>, &str>) {
        let got = decode(&frame.to_string(), &worker());
        match (&got, expected) {
            (Ok(None), Ok(None)) => {}
            (Ok(Some(incoming)), Ok(Some(shape))) => {
                let text = format!("{incoming:?}");
                assert!(text.starts_with(shape), "{frame}: {text}");
            }
            (Err(reason), Err(fragment)) => {
                assert!(reason.contains(fragment), "{frame}: {reason}");
            }
            _ => panic!("{frame}: got {got:?}, want {expected:?}"),
        }
    }

    #[test]
    fn frames_decode_and_are_checked() {
        let event = |event: serde_json::Value| json!({"type":"event","cursor":"c1","runtime_id":"local","worker_id":"w1","event":event});
        let table = [
            (event(json!({"kind":"interrupted"})), Ok(Some("Event"))),
            (
                event(json!({"kind":"output","sequence":3,"stream":"stdout","text":"hi"})),
                Ok(Some("Event")),
            ),
            (
                event(json!({"kind":"resized","cols":80,"rows":24})),
                Ok(Some("UnknownEvent")),
            ),
            (
                event(
                    json!({"kind":"output","sequence":4,"stream":"terminal","text":"\u{1b}[1m$ "}),
                ),
                Ok(Some("TerminalOutput")),
            ),
            (
                event(json!({"kind":"output","sequence":4,"stream":"smoke","text":"x"})),
                Err("malformed output"),
            ),
            (
                json!({"type":"reset","reason":"cursor_expired"}),
                Ok(Some("Reset(Some(CursorExpired))")),
            ),
            (
                json!({"type":"reset","reason":"moon_phase"}),
                Ok(Some("Reset(None)")),
            ),
            (
                json!({"type":"upstream","state":"lost","error":{"code":"runtime_unreachable","message":"m"}}),
                Ok(Some("Upstream")),
            ),
            (
                json!({"type":"upstream","state":"restored","error":null}),
                Ok(Some("Upstream")),
            ),
            (
                json!({"type":"error","error":{"code":"worker_busy","message":"m"}}),
                Ok(Some("Refused")),
            ),
            (json!({"type":"telemetry","x":1}), Ok(None)),
            (
                json!({"type":"event","cursor":"c1","worker_id":"w2","event":{"kind":"interrupted"}}),
                Err("another worker"),
            ),
            (
                json!({"type":"event","cursor":"c1","runtime_id":"other","worker_id":"w1","event":{"kind":"interrupted"}}),
                Err("another runtime"),
            ),
            (
                json!({"type":"event","cursor":"","worker_id":"w1","event":{"kind":"interrupted"}}),
                Err("without a cursor"),
            ),
            (
                event(json!({"kind":"output","sequence":"x"})),
                Err("malformed output"),
            ),
            (event(json!({"text":"no kind"})), Err("without a kind")),
            (json!({"type":"upstream"}), Err("without a state")),
            (json!({"type":"error"}), Err("without an error")),
            (json!([1, 2]), Err("not a server frame")),
        ];
        for (frame, expected) in table {
            check(frame, expected);
        }
    }

    #[test]
    fn snapshots_carry_a_terminal_screen_when_there_is_one() {
        let detail = json!({"worker_id":"w1","runtime_id":"local","profile":"bash","label":null,
            "status":"running","created_at":"2026-01-01T00:00:00Z",
            "updated_at":"2026-01-01T00:00:00Z","exit":null,"input_count":0,"output_bytes":0});
        let frame = json!({"type":"event","cursor":"c9","runtime_id":"local","worker_id":"w1",
            "event":{"kind":"snapshot","worker":detail,"transcript":[],
                "terminal":{"cols":80,"rows":24,"screen":"\u{1b}[Hhi","cursor":{"row":0,"col":2},"alternate":false}}});
        let Some(Incoming::Event { terminal, .. }) = decode(&frame.to_string(), &worker()).unwrap()
        else {
            panic!("not an event");
        };
        let terminal = terminal.expect("a screen");
        assert_eq!((terminal.cols, terminal.rows), (80, 24));
        assert_eq!(terminal.screen, "\u{1b}[Hhi");
        assert_eq!(terminal.cursor, TerminalCursor { row: 0, col: 2 });
    }

    #[test]
    fn client_frames_have_the_contract_shape() {
        let table = [
            (
                InteractiveFrame::Input {
                    text: "ls\r".into(),
                },
                json!({"type":"input","text":"ls\r"}),
            ),
            (
                InteractiveFrame::Resize {
                    cols: 120,
                    rows: 40,
                },
                json!({"type":"resize","cols":120,"rows":40}),
            ),
        ];
        for (frame, expected) in table {
            assert_eq!(serde_json::to_value(&frame).unwrap(), expected);
        }
    }
}
