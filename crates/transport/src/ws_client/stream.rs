//! [`EventStream`]: an open worker event stream, as an [`UpstreamStream`].
//!
//! Every text frame is decoded as a server frame and checked against the contract
//! for a runtime's stream; pings are answered (the pong is flushed before the next
//! read), and a silent stream is pinged, so that a runtime that stopped answering is
//! noticed within the idle timeout; close codes become [`UpstreamEnd`]s. Once ended,
//! the stream keeps returning the same end.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchyard_protocol::{EventPayload, ResetReason, WorkerId};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::handshake::Socket;
use crate::error::{TimeoutPhase, TransportError, UnreachableKind};
use crate::events::{UpstreamEnd, UpstreamFrame, UpstreamStream};
use crate::net_error::{self, unreachable};
use crate::reason::shorten;
use crate::secret::SecretToken;

/// How long a close frame (ours, or the reply to the runtime's) may take to get out.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Pings sent per idle timeout of silence: the stream pings after a third of it.
const PINGS_PER_IDLE_TIMEOUT: u32 = 3;

/// An open event stream for one worker.
pub(super) struct EventStream {
    /// `None` once the stream has ended.
    socket: Option<Socket>,
    /// The worker whose events these are; frames for another are malformed.
    worker: WorkerId,
    /// The runtime's token, kept out of the log line of the stream's end.
    token: SecretToken,
    /// How long the stream may stay silent before it counts as lost.
    idle_timeout: Duration,
    /// Until the first data frame (the snapshot, or the first event resumed): by
    /// when it must come, and the timeout that says so. Pongs do not count: a
    /// runtime that upgrades and then sends nothing (answering pings) is lost after
    /// the request timeout, not kept for ever.
    first_frame: Option<(Instant, Duration)>,
    /// How the stream ended, once it has.
    end: Option<UpstreamEnd>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("worker", &self.worker)
            .field("idle_timeout", &self.idle_timeout)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// What to do with the socket when the stream ends.
enum Farewell {
    /// The runtime closed: flush the close reply tungstenite queued, then drop the
    /// socket. (A `close()` here would fail: no sends after a close frame.)
    Reply,
    /// We end the stream: send this close frame, then drop the socket.
    Close(CloseFrame),
    /// The connection is gone or silent: drop it.
    Drop,
}

impl EventStream {
    /// Wraps an upgraded `socket` carrying `worker`'s events; its first data frame
    /// must come within `first_frame_timeout`, when one is due at once.
    pub(super) fn new(
        socket: Socket,
        worker: WorkerId,
        token: SecretToken,
        idle_timeout: Duration,
        first_frame_timeout: Option<Duration>,
    ) -> Self {
        Self {
            socket: Some(socket),
            worker,
            token,
            idle_timeout,
            first_frame: first_frame_timeout.map(|limit| (Instant::now() + limit, limit)),
            end: None,
        }
    }

    /// The end for a failed connection: no farewell, the socket is dropped.
    fn lost(&self, error: TransportError) -> (UpstreamEnd, Farewell) {
        (UpstreamEnd::Lost(error), Farewell::Drop)
    }

    /// The end for a stream silent for `idle_timeout`: a request-phase timeout.
    fn idle(&self) -> (UpstreamEnd, Farewell) {
        self.lost(net_error::timeout(TimeoutPhase::Request, self.idle_timeout))
    }

    /// Reads until a data frame or an end.
    async fn read(&mut self) -> Result<UpstreamFrame, (UpstreamEnd, Farewell)> {
        let idle = self.idle();
        let (idle_timeout, first_frame) = (self.idle_timeout, self.first_frame);
        let Some(socket) = self.socket.as_mut() else {
            // Unreachable in practice: `end` is set whenever the socket is taken.
            return Err((UpstreamEnd::Closed { code: None }, Farewell::Drop));
        };
        let ping_every = self.idle_timeout / PINGS_PER_IDLE_TIMEOUT;
        loop {
            // Silence for a third of the idle timeout gets a ping; the runtime's pong
            // (like anything else from it) starts the wait over. So a runtime that
            // cannot be reached any more (a partition drops every packet, and TCP
            // would stay quiet for minutes) is lost after `idle_timeout`.
            let heard = Instant::now();
            let silent_until = heard + idle_timeout;
            // Whichever comes first: the idle timeout, or the first frame's.
            let (deadline, overdue) = match first_frame {
                Some((by, limit)) if by <= silent_until => (by, limit),
                _ => (silent_until, idle_timeout),
            };
            let timed_out = || {
                (
                    UpstreamEnd::Lost(net_error::timeout(TimeoutPhase::Request, overdue)),
                    Farewell::Drop,
                )
            };
            let mut ping_at = heard + ping_every;
            let message = loop {
                let next = tokio::select! {
                    next = socket.next() => Some(next),
                    () = tokio::time::sleep_until(ping_at.min(deadline)) => None,
                };
                match next {
                    Some(next) => break next,
                    None if Instant::now() >= deadline => return Err(timed_out()),
                    None => {
                        let ping = Message::Ping(Vec::new().into());
                        match tokio::time::timeout_at(deadline, socket.send(ping)).await {
                            Err(_) => return Err(timed_out()),
                            Ok(Err(error)) => return Err(read_error(error)),
                            Ok(Ok(())) => ping_at += ping_every,
                        }
                    }
                }
            };
            let message = match message {
                None => return Err(reset()),
                Some(Err(error)) => return Err(read_error(error)),
                Some(Ok(message)) => message,
            };
            match message {
                Message::Text(text) => {
                    self.first_frame = None;
                    return decode(text.as_str(), &self.worker)
                        .map_err(|reason| malformed(reason, WsCloseCode::Protocol));
                }
                Message::Binary(_) => {
                    return Err(malformed(
                        "a binary frame (runtimes send JSON text frames)".into(),
                        WsCloseCode::Unsupported,
                    ));
                }
                Message::Ping(_) => {
                    // tungstenite queued the pong; get it out now rather than on the
                    // next read, which may be a while if the consumer is slow.
                    match tokio::time::timeout(self.idle_timeout, socket.flush()).await {
                        Err(_) => return Err(idle),
                        Ok(Err(error)) => return Err(read_error(error)),
                        Ok(Ok(())) => {}
                    }
                }
                Message::Pong(_) | Message::Frame(_) => {}
                Message::Close(frame) => {
                    let end = match frame {
                        Some(frame) => close_end(Some(u16::from(frame.code)), &frame.reason),
                        None => close_end(None, ""),
                    };
                    return Err((end, Farewell::Reply));
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl UpstreamStream for EventStream {
    async fn next(&mut self) -> Result<UpstreamFrame, UpstreamEnd> {
        if let Some(end) = &self.end {
            return Err(end.clone());
        }
        match self.read().await {
            Ok(frame) => Ok(frame),
            Err((end, farewell)) => {
                if let Some(mut socket) = self.socket.take() {
                    let farewell = async {
                        match farewell {
                            Farewell::Reply => socket.flush().await,
                            Farewell::Close(frame) => socket.close(Some(frame)).await,
                            Farewell::Drop => Ok(()),
                        }
                    };
                    let _ = tokio::time::timeout(CLOSE_GRACE, farewell).await;
                }
                // The end may repeat what the runtime sent: never its token.
                let shown = self.token.redact(&end.to_string());
                tracing::debug!(worker = self.worker.as_str(), end = %shown, "runtime event stream ended");
                self.end = Some(end.clone());
                Err(end)
            }
        }
    }
}

/// The fields of any server frame, read flat so that the event object can stay raw
/// JSON (serde cannot keep raw values inside a tagged enum).
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    worker_id: Option<WorkerId>,
    #[serde(default)]
    event: Option<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    reason: Option<ResetReason>,
}

/// Decodes one text frame and checks it belongs on `worker`'s runtime stream. The
/// event object is kept as it is; only its `kind` is read. An event frame in the
/// form runtimes write is read without serde (`relay::event_frame`); any other
/// frame, and any frame that reader leaves, is read with serde.
fn decode(text: &str, worker: &WorkerId) -> Result<UpstreamFrame, String> {
    if let Some(parts) = switchyard_protocol::relay::event_frame(text) {
        if parts.worker_id != worker.as_str() {
            return Err("an event for another worker".into());
        }
        if let Some(event) = EventPayload::from_checked(parts.event) {
            return Ok(UpstreamFrame::Event {
                cursor: parts.cursor.to_owned(),
                event,
            });
        }
    }
    let frame: Envelope = serde_json::from_str(text)
        .map_err(|e| format!("not a server frame: {}", shorten(&e.to_string())))?;
    match frame.kind.as_str() {
        "event" => {
            if frame.worker_id.as_ref() != Some(worker) {
                return Err("an event for another worker".into());
            }
            let cursor = frame.cursor.filter(|c| !c.is_empty());
            let Some(cursor) = cursor else {
                return Err("an event without a cursor".into());
            };
            let event = frame.event.ok_or("an event frame without an event")?;
            let event = EventPayload::from_json(event)
                .map_err(|e| format!("not a worker event: {}", shorten(&e.to_string())))?;
            Ok(UpstreamFrame::Event { cursor, event })
        }
        "reset" => frame
            .reason
            .map(UpstreamFrame::Reset)
            .ok_or_else(|| "a reset without a reason".into()),
        "upstream" => Err("an upstream frame, which only a backend sends".into()),
        other => Err(format!("an unknown frame type {:?}", shorten(other))),
    }
}

/// The end for a close frame's code and reason. A runtime that stops accepting the
/// token a stream was opened with (a reload rotated it out) closes it with 1001
/// and the reason `access_ended`: that is our credentials rejected, as a `401`
/// would say on the next try, not the runtime shutting down.
fn close_end(code: Option<u16>, reason: &str) -> UpstreamEnd {
    match code {
        Some(4404) => UpstreamEnd::WorkerGone,
        Some(4408) => UpstreamEnd::SlowConsumer,
        Some(1001) if reason == switchyard_protocol::CloseCode::AccessEnded.reason() => {
            UpstreamEnd::Lost(TransportError::AuthRejected)
        }
        Some(1001) => UpstreamEnd::Shutdown,
        code => UpstreamEnd::Closed { code },
    }
}

/// The end for a malformed frame: we close with `code`.
fn malformed(reason: String, code: WsCloseCode) -> (UpstreamEnd, Farewell) {
    let frame = CloseFrame {
        code,
        reason: "malformed frame".into(),
    };
    (UpstreamEnd::Malformed { reason }, Farewell::Close(frame))
}

/// The end for a connection closed without a close frame.
fn reset() -> (UpstreamEnd, Farewell) {
    (
        UpstreamEnd::Lost(unreachable(UnreachableKind::Reset)),
        Farewell::Drop,
    )
}

/// Maps a failed read (or pong flush). Texts come from tungstenite's own
/// descriptions of frames, which never name the peer.
fn read_error(error: WsError) -> (UpstreamEnd, Farewell) {
    let lost = |kind| (UpstreamEnd::Lost(unreachable(kind)), Farewell::Drop);
    let malformed = |reason: String| {
        (
            UpstreamEnd::Malformed { reason },
            Farewell::Close(CloseFrame {
                code: WsCloseCode::Protocol,
                reason: "malformed frame".into(),
            }),
        )
    };
    match error {
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            (UpstreamEnd::Closed { code: None }, Farewell::Drop)
        }
        // On an open stream only a reset is told apart; any other I/O failure (a
        // timeout included) is `Other`, unlike `net_error::classify`'s mapping.
        WsError::Io(e) if net_error::is_reset(e.kind()) => lost(UnreachableKind::Reset),
        WsError::Io(_) => lost(UnreachableKind::Other),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            lost(UnreachableKind::Reset)
        }
        WsError::Protocol(e) => malformed(format!("a WebSocket protocol violation: {e}")),
        WsError::Capacity(e) => malformed(format!("a frame over the size limit: {e}")),
        WsError::Utf8 => malformed("a text frame that is not valid UTF-8".into()),
        WsError::AttackAttempt => malformed("a frame that looks like an attack".into()),
        _ => lost(UnreachableKind::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_and_checks_frames() {
        let w = WorkerId::new("w1").unwrap();
        let ok =
            json!({"type":"event","cursor":"c1","worker_id":"w1","event":{"kind":"interrupted"}});
        assert!(matches!(
            decode(&ok.to_string(), &w),
            Ok(UpstreamFrame::Event { cursor, .. }) if cursor == "c1"
        ));
        let other =
            json!({"type":"event","cursor":"c1","worker_id":"w2","event":{"kind":"interrupted"}});
        assert!(decode(&other.to_string(), &w).is_err());
        let no_cursor =
            json!({"type":"event","cursor":"","worker_id":"w1","event":{"kind":"interrupted"}});
        assert!(decode(&no_cursor.to_string(), &w).is_err());
        // Read without serde, the event kept byte for byte.
        let event = r#"{"kind":"output","sequence":1,"stream":"stdout","text":"a\n\u001b"}"#;
        let text = format!(r#"{{"type":"event","cursor":"c2","worker_id":"w1","event":{event}}}"#);
        match decode(&text, &w) {
            Ok(UpstreamFrame::Event {
                cursor,
                event: EventPayload::Json { json, .. },
            }) => {
                assert_eq!(cursor, "c2");
                assert_eq!(json.get(), event);
            }
            other => panic!("{other:?}"),
        }
        let other_worker = text.replace("\"w1\"", "\"w2\"");
        assert_eq!(
            decode(&other_worker, &w),
            Err("an event for another worker".into())
        );
        let upstream = json!({"type":"upstream","state":"restored","error":null});
        assert!(decode(&upstream.to_string(), &w).is_err());
        assert!(decode("{", &w).is_err());
    }

    #[test]
    fn close_codes_map_to_ends() {
        assert_eq!(close_end(Some(4404), ""), UpstreamEnd::WorkerGone);
        assert_eq!(close_end(Some(4408), ""), UpstreamEnd::SlowConsumer);
        assert_eq!(close_end(Some(1001), ""), UpstreamEnd::Shutdown);
        assert_eq!(
            close_end(Some(1001), "shutting_down"),
            UpstreamEnd::Shutdown
        );
        assert_eq!(
            close_end(Some(1008), ""),
            UpstreamEnd::Closed { code: Some(1008) }
        );
        assert_eq!(close_end(None, ""), UpstreamEnd::Closed { code: None });
    }

    #[test]
    fn a_stream_whose_token_the_runtime_no_longer_accepts_ends_as_auth_rejected() {
        assert_eq!(
            close_end(Some(1001), "access_ended"),
            UpstreamEnd::Lost(TransportError::AuthRejected)
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use switchyard_protocol::ServerFrame;
        use switchyard_protocol::arbitrary::{json_value, server_frame, worker_id};

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(96))]

            /// What a runtime sends for this worker decodes to the same event or
            /// reset; backend-only frames and other workers' events are malformed.
            #[test]
            fn runtime_frames_decode_as_sent(frame in server_frame(), other in worker_id()) {
                let frame = match frame {
                    ServerFrame::Event { cursor, worker_id, event, .. } => {
                        ServerFrame::Event { cursor, runtime_id: None, worker_id, event }
                    }
                    frame => frame,
                };
                let text = serde_json::to_string(&frame).unwrap();
                match &frame {
                    ServerFrame::Event { cursor, worker_id, event, .. } => {
                        match decode(&text, worker_id) {
                            Ok(UpstreamFrame::Event { cursor: got, event: payload }) => {
                                prop_assert_eq!(&got, cursor);
                                prop_assert_eq!(&payload.decode().unwrap(), event);
                            }
                            other => prop_assert!(false, "{other:?} for {text}"),
                        }
                        // What serde writes for a plain cursor is read without serde.
                        let plain = !cursor.is_empty()
                            && !cursor.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
                        prop_assert_eq!(
                            switchyard_protocol::relay::event_frame(&text).is_some(),
                            plain,
                            "{}", text
                        );
                        if &other != worker_id {
                            prop_assert!(decode(&text, &other).is_err());
                        }
                    }
                    ServerFrame::Reset { reason } => {
                        prop_assert_eq!(decode(&text, &other), Ok(UpstreamFrame::Reset(*reason)));
                    }
                    ServerFrame::Upstream { .. } | ServerFrame::Error { .. } => {
                        prop_assert!(decode(&text, &other).is_err());
                    }
                    // The generator's coverage test names every frame type.
                    other => prop_assert!(false, "a frame type this test does not check: {other:?}"),
                }
            }

            /// Anything else is refused with a bounded reason, never a panic.
            #[test]
            fn any_text_is_a_frame_or_a_bounded_refusal(
                value in json_value(),
                text in any::<String>(),
                worker in worker_id(),
            ) {
                for input in [value.to_string(), text] {
                    if let Err(reason) = decode(&input, &worker) {
                        prop_assert!(reason.chars().count() <= 400, "{}", reason);
                    }
                }
            }

            #[test]
            fn shortened_reasons_are_bounded_prefixes(text in any::<String>()) {
                let short = shorten(&text);
                prop_assert!(short.chars().count() <= 303);
                let kept = short.strip_suffix("...").filter(|_| short != text).unwrap_or(&short);
                prop_assert!(text.starts_with(kept));
            }
        }
    }
}
