//! The frames of a worker's event WebSocket as this client reads them, and the
//! client frames it sends on an interactive socket ([`ClientFrame`], the protocol's
//! own type).
//!
//! Server frames are read leniently where the contract lets a newer backend say more:
//! an event kind this client does not know is passed on as
//! [`Incoming::UnknownEvent`] (its cursor still counts), an unknown frame type is
//! skipped, and error codes are kept as strings. What would make the stream wrong
//! (an event of another worker, an event without a cursor, a known kind that does
//! not decode) is malformed. Terminal workers need nothing apart: their output is an
//! `output` event with stream `terminal`, their screen is the `snapshot`'s
//! `terminal` ([`switchyard_protocol::TerminalSnapshot`]), and a resize is a
//! `resized` event.

use serde::Deserialize;
use serde_json::value::RawValue;
pub use switchyard_protocol::ClientFrame;
use switchyard_protocol::{ResetReason, RuntimeId, UpstreamState, WorkerEvent, WorkerId};

use crate::error::ApiError;
use crate::http::shorten;
use crate::worker_ref::WorkerRef;

/// One frame from the backend, checked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Incoming {
    /// A worker event and the cursor to resume after it.
    Event {
        /// Opaque; resume after this event with it.
        cursor: String,
        /// The event (a terminal worker's `snapshot` carries its screen).
        event: Box<WorkerEvent>,
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

impl Incoming {
    /// The cursor of an event (known kind or not): where to resume after it.
    pub fn cursor(&self) -> Option<&str> {
        match self {
            Incoming::Event { cursor, .. } | Incoming::UnknownEvent { cursor, .. } => Some(cursor),
            _ => None,
        }
    }
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

/// The kind of an event, read before decoding it fully.
#[derive(Deserialize)]
struct EventHead {
    kind: String,
}

/// The event kinds this client decodes (the protocol's).
const KNOWN_KINDS: [&str; 8] = [
    "snapshot",
    "status",
    "input",
    "output",
    "interrupted",
    "resized",
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
    let event: WorkerEvent = serde_json::from_str(raw.get()).map_err(|error| {
        format!(
            "a malformed {} event: {}",
            head.kind,
            shorten(&error.to_string())
        )
    })?;
    Ok(Incoming::Event {
        cursor,
        event: Box::new(event),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_protocol::CursorPosition;

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
                Ok(Some(
                    "Event { cursor: \"c1\", event: Resized { cols: 80, rows: 24 } }",
                )),
            ),
            (
                event(
                    json!({"kind":"output","sequence":4,"stream":"terminal","text":"\u{1b}[1m$ "}),
                ),
                Ok(Some(
                    "Event { cursor: \"c1\", event: Output { sequence: 4, stream: Terminal",
                )),
            ),
            // A kind from a newer backend passes, with its cursor.
            (
                event(json!({"kind":"bell","volume":11})),
                Ok(Some("UnknownEvent { cursor: \"c1\", kind: \"bell\" }")),
            ),
            (
                event(json!({"kind":"resized","cols":"wide"})),
                Err("malformed resized"),
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
        let snapshot = |terminal: Option<serde_json::Value>| {
            let mut event = json!({"kind":"snapshot","worker":detail,"transcript":[]});
            if let Some(terminal) = terminal {
                event["terminal"] = terminal;
            }
            json!({"type":"event","cursor":"c9","runtime_id":"local","worker_id":"w1","event":event})
        };
        let screen = |frame: serde_json::Value| match decode(&frame.to_string(), &worker()) {
            Ok(Some(Incoming::Event { event, .. })) => match *event {
                WorkerEvent::Snapshot { terminal, .. } => Ok(terminal),
                other => panic!("not a snapshot: {other:?}"),
            },
            other => Err(format!("{other:?}")),
        };
        let terminal = screen(snapshot(Some(
            json!({"cols":80,"rows":24,"screen":"\u{1b}[Hhi","cursor":{"row":0,"col":2},"alternate":false}),
        )))
        .unwrap()
        .expect("a screen");
        assert_eq!((terminal.cols, terminal.rows), (80, 24));
        assert_eq!(terminal.screen, "\u{1b}[Hhi");
        assert_eq!(terminal.cursor, CursorPosition { row: 0, col: 2 });
        // Not a terminal: no screen.
        assert_eq!(screen(snapshot(None)), Ok(None));
        // A screen that is not the contract's shape makes the event malformed.
        let bad = screen(snapshot(Some(json!({"cols":80,"rows":24})))).unwrap_err();
        assert!(bad.contains("malformed snapshot"), "{bad}");
    }

    #[test]
    fn client_frames_have_the_contract_shape() {
        let table = [
            (
                ClientFrame::Input {
                    text: "ls\r".into(),
                },
                json!({"type":"input","text":"ls\r"}),
            ),
            (
                ClientFrame::Resize {
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

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use switchyard_protocol::ServerFrame;
        use switchyard_protocol::arbitrary::{json_value, runtime_id, server_frame, worker_id};

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(96))]

            /// Every frame a backend sends decodes to what it says, for its worker.
            #[test]
            fn backend_frames_decode_as_sent(
                frame in server_frame(),
                runtime in runtime_id(),
                other in worker_id(),
            ) {
                let frame = match frame {
                    ServerFrame::Event { cursor, worker_id, event, .. } => ServerFrame::Event {
                        cursor,
                        runtime_id: Some(runtime.clone()),
                        worker_id,
                        event,
                    },
                    frame => frame,
                };
                let text = serde_json::to_string(&frame).unwrap();
                let worker_ref = |worker_id: &WorkerId| WorkerRef::new(runtime.clone(), worker_id.clone());
                match frame {
                    ServerFrame::Event { cursor, worker_id, event, .. } => {
                        let got = decode(&text, &worker_ref(&worker_id));
                        prop_assert_eq!(
                            got,
                            Ok(Some(Incoming::Event { cursor, event: Box::new(event) }))
                        );
                        if other != worker_id {
                            prop_assert!(decode(&text, &worker_ref(&other)).is_err());
                        }
                    }
                    ServerFrame::Reset { reason } => {
                        prop_assert_eq!(
                            decode(&text, &worker_ref(&other)),
                            Ok(Some(Incoming::Reset(Some(reason))))
                        );
                    }
                    ServerFrame::Upstream { state, error } => {
                        let got = decode(&text, &worker_ref(&other));
                        match got {
                            Ok(Some(Incoming::Upstream { state: s, error: e })) => {
                                prop_assert_eq!(s, state);
                                prop_assert_eq!(
                                    e.map(|e| (e.code, e.message, e.retry_after_ms)),
                                    error.map(|e| (e.code.as_str().to_owned(), e.message, e.retry_after_ms))
                                );
                            }
                            other => prop_assert!(false, "{other:?}"),
                        }
                    }
                    ServerFrame::Error { error } => {
                        match decode(&text, &worker_ref(&other)) {
                            Ok(Some(Incoming::Refused(e))) => {
                                prop_assert_eq!(e.code, error.code.as_str());
                                prop_assert_eq!(e.message, error.message);
                            }
                            other => prop_assert!(false, "{other:?}"),
                        }
                    }
                    // The generator's coverage test names every frame type.
                    other => prop_assert!(false, "a frame type this test does not check: {other:?}"),
                }
            }

            /// Anything else is a frame, a skip or a bounded refusal; never a panic.
            #[test]
            fn any_text_decodes_or_is_refused(value in json_value(), text in any::<String>()) {
                let worker: WorkerRef = "local/w1".parse().unwrap();
                for input in [value.to_string(), text] {
                    if let Err(reason) = decode(&input, &worker) {
                        prop_assert!(reason.chars().count() <= 400, "{}", reason);
                    }
                }
            }
        }
    }
}
