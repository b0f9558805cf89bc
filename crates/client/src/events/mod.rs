//! One worker's event WebSocket: [`EventSocket`], the frames it carries
//! ([`Incoming`], [`ClientFrame`]) and how it ends ([`StreamEnd`]).

mod frames;
pub(crate) mod handshake;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub use frames::{ClientFrame, Incoming};

use crate::error::{ClientError, UnreachableKind};
use crate::net;
use crate::worker_ref::WorkerRef;
use handshake::Socket;

/// How long our close frame may take to get out.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How an event stream ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamEnd {
    /// The worker was removed (close code 4404).
    #[error("the worker is gone (deleted, or its runtime restarted without keeping its workers)")]
    WorkerGone,
    /// The backend cut this client off for reading too slowly (4408).
    #[error("the backend closed the stream: this client read too slowly")]
    SlowConsumer,
    /// The backend is shutting down or restarting (1001).
    #[error("the backend is shutting down")]
    Shutdown,
    /// The backend no longer accepts what the stream was opened with: its session
    /// was signed out or expired, or a reload removed or changed its token (1001,
    /// reason `access_ended`). Reconnecting meets the new rules (or a `401`).
    #[error(
        "the backend no longer accepts this stream's credentials (signed out, expired, or changed by a reload)"
    )]
    AccessEnded,
    /// The backend refused a frame this client sent (1008).
    #[error("the backend refused a frame this client sent (close code 1008)")]
    PolicyViolation,
    /// Closed with another code, or without a close frame.
    #[error("the backend closed the stream (close code {})", code.map_or("none".to_owned(), |c| c.to_string()))]
    Closed {
        /// The close code, if any.
        code: Option<u16>,
    },
    /// The backend sent something that is not a valid frame for this worker.
    #[error("the backend sent a malformed frame: {reason}")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// The connection failed (reset, silent for too long, ...).
    #[error("{0}")]
    Lost(ClientError),
}

impl StreamEnd {
    /// Whether reconnecting (with the last cursor) is the way on: the connection was
    /// lost, the backend restarted, or it cut this client off as slow.
    pub fn is_resumable(&self) -> bool {
        matches!(
            self,
            Self::SlowConsumer
                | Self::Shutdown
                | Self::AccessEnded
                | Self::Closed { .. }
                | Self::Lost(_)
        )
    }
}

/// An open event WebSocket for one worker.
pub struct EventSocket {
    /// `None` once ended.
    socket: Option<Socket>,
    worker: WorkerRef,
    idle_timeout: Duration,
    end: Option<StreamEnd>,
}

impl std::fmt::Debug for EventSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSocket")
            .field("worker", &self.worker)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl EventSocket {
    pub(crate) fn new(socket: Socket, worker: WorkerRef, idle_timeout: Duration) -> Self {
        Self {
            socket: Some(socket),
            worker,
            idle_timeout,
            end: None,
        }
    }

    /// The worker whose events these are.
    pub fn worker(&self) -> &WorkerRef {
        &self.worker
    }

    /// The next frame, or how the stream ended (then the same end on every call).
    ///
    /// Cancel-safe: a frame being read when the future is dropped is not lost.
    pub async fn next(&mut self) -> Result<Incoming, StreamEnd> {
        if let Some(end) = &self.end {
            return Err(end.clone());
        }
        let result = self.read().await;
        if let Err(end) = &result {
            self.finish(end.clone(), None).await;
        }
        result
    }

    /// Sends an interactive frame (the socket must have been opened `interactive`).
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), StreamEnd> {
        if let Some(end) = &self.end {
            return Err(end.clone());
        }
        let text = serde_json::to_string(frame).map_err(|_| StreamEnd::Malformed {
            reason: "could not encode a client frame".into(),
        })?;
        let Some(socket) = self.socket.as_mut() else {
            return Err(StreamEnd::Closed { code: None });
        };
        let sent = tokio::time::timeout(self.idle_timeout, socket.send(Message::text(text))).await;
        let end = match sent {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => read_error(error),
            Err(_) => StreamEnd::Lost(net::timeout(self.idle_timeout)),
        };
        self.finish(end.clone(), None).await;
        Err(end)
    }

    /// Closes the stream (normal closure), waiting briefly for the close to get out.
    pub async fn close(&mut self) {
        if self.end.is_none() {
            let frame = CloseFrame {
                code: WsCloseCode::Normal,
                reason: "bye".into(),
            };
            self.finish(StreamEnd::Closed { code: Some(1000) }, Some(frame))
                .await;
        }
    }

    /// Records `end`, sends `close` (or flushes a queued close reply) and drops the
    /// socket.
    async fn finish(&mut self, end: StreamEnd, close: Option<CloseFrame>) {
        self.end = Some(end);
        if let Some(mut socket) = self.socket.take() {
            let farewell = async {
                match close {
                    Some(frame) => socket.close(Some(frame)).await,
                    None => socket.flush().await,
                }
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, farewell).await;
        }
    }

    /// Reads until a frame this client passes on, or an end.
    async fn read(&mut self) -> Result<Incoming, StreamEnd> {
        let Some(socket) = self.socket.as_mut() else {
            return Err(StreamEnd::Closed { code: None });
        };
        loop {
            let message = match tokio::time::timeout(self.idle_timeout, socket.next()).await {
                Err(_) => return Err(StreamEnd::Lost(net::timeout(self.idle_timeout))),
                Ok(None) => {
                    return Err(StreamEnd::Lost(net::unreachable(UnreachableKind::Reset)));
                }
                Ok(Some(Err(error))) => return Err(read_error(error)),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => match frames::decode(text.as_str(), &self.worker) {
                    Ok(Some(incoming)) => return Ok(incoming),
                    Ok(None) => tracing::debug!("skipped a frame of an unknown type"),
                    Err(reason) => return Err(StreamEnd::Malformed { reason }),
                },
                Message::Binary(_) => {
                    return Err(StreamEnd::Malformed {
                        reason: "a binary frame (the backend sends JSON text frames)".into(),
                    });
                }
                Message::Ping(_) => {
                    // tungstenite queued the pong; get it out now.
                    match tokio::time::timeout(self.idle_timeout, socket.flush()).await {
                        Err(_) => return Err(StreamEnd::Lost(net::timeout(self.idle_timeout))),
                        Ok(Err(error)) => return Err(read_error(error)),
                        Ok(Ok(())) => {}
                    }
                }
                Message::Pong(_) | Message::Frame(_) => {}
                Message::Close(frame) => {
                    return Err(close_end(
                        frame.as_ref().map(|f| u16::from(f.code)),
                        frame.as_ref().map_or("", |f| f.reason.as_str()),
                    ));
                }
            }
        }
    }
}

/// The end for a close frame's code and reason.
fn close_end(code: Option<u16>, reason: &str) -> StreamEnd {
    let access_ended = switchyard_protocol::CloseCode::AccessEnded.reason();
    match code {
        Some(4404) => StreamEnd::WorkerGone,
        Some(4408) => StreamEnd::SlowConsumer,
        Some(1001) if reason == access_ended => StreamEnd::AccessEnded,
        Some(1001) => StreamEnd::Shutdown,
        Some(1008) => StreamEnd::PolicyViolation,
        code => StreamEnd::Closed { code },
    }
}

/// Maps a failed read or write. Texts are tungstenite's descriptions of frames,
/// which never name the peer, or fixed.
fn read_error(error: WsError) -> StreamEnd {
    let lost = |kind| StreamEnd::Lost(net::unreachable(kind));
    match error {
        WsError::ConnectionClosed | WsError::AlreadyClosed => StreamEnd::Closed { code: None },
        WsError::Io(e) if net::is_reset(e.kind()) => lost(UnreachableKind::Reset),
        WsError::Protocol(
            tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => lost(UnreachableKind::Reset),
        WsError::Protocol(e) => StreamEnd::Malformed {
            reason: format!("a WebSocket protocol violation: {e}"),
        },
        WsError::Capacity(e) => StreamEnd::Malformed {
            reason: format!("a frame over the size limit: {e}"),
        },
        WsError::Utf8 => StreamEnd::Malformed {
            reason: "a text frame that is not valid UTF-8".into(),
        },
        _ => lost(UnreachableKind::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_map_to_ends() {
        let table = [
            (Some(4404), "worker_not_found", StreamEnd::WorkerGone, false),
            (Some(4408), "slow_consumer", StreamEnd::SlowConsumer, true),
            (Some(1001), "shutting_down", StreamEnd::Shutdown, true),
            (Some(1001), "", StreamEnd::Shutdown, true),
            (Some(1001), "access_ended", StreamEnd::AccessEnded, true),
            (Some(1008), "", StreamEnd::PolicyViolation, false),
            (Some(1000), "", StreamEnd::Closed { code: Some(1000) }, true),
            (None, "", StreamEnd::Closed { code: None }, true),
        ];
        for (code, reason, end, resumable) in table {
            assert_eq!(close_end(code, reason), end);
            assert_eq!(end.is_resumable(), resumable, "{end:?}");
        }
        assert!(!StreamEnd::Malformed { reason: "x".into() }.is_resumable());
        assert!(StreamEnd::Lost(net::timeout(Duration::from_secs(1))).is_resumable());
    }
}
