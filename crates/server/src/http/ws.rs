//! WebSockets over hyper: the handshake, and a session loop that streams server
//! frames to one client under the contract's rules (control frames only from the
//! client, pings, dead-peer detection, 4408 for a slow consumer, 1001 on shutdown).

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{
    CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use switchyard_protocol::{CloseCode, OutgoingFrame};
use switchyard_runtime::StreamEnd;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::ApiError;
use super::response::{Response, empty};
use super::serve::Shutdown;

/// A server-side WebSocket over a hyper upgrade.
pub type WsStream = WebSocketStream<TokioIo<Upgraded>>;

/// Largest message a client may send; clients send only control frames.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Read buffer of a server session.
const READ_BUFFER: usize = 4 * 1024;

/// Timing of a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// How often the server pings; a peer silent for two intervals is dropped.
    pub ping_interval: Duration,
    /// How long a close frame may take to get out before the socket is dropped.
    pub close_grace: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(20),
            close_grace: Duration::from_secs(30),
        }
    }
}

/// Where a session's frames come from: a runtime subscription or a backend viewer.
pub trait FrameSource: Send + 'static {
    /// The next frame, or why the stream ended.
    fn next_frame(&mut self) -> impl Future<Output = Result<OutgoingFrame, StreamEnd>> + Send;
    /// Resolves when the source has ended the stream (for example cut off a slow
    /// consumer), even while frames are still queued.
    fn ended(&self) -> impl Future<Output = StreamEnd> + Send;
}

/// True when the request asks for a WebSocket upgrade.
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has_token(CONNECTION, "upgrade") && has_token(UPGRADE, "websocket")
}

/// Validates the handshake headers, answers `101 Switching Protocols`, and once hyper
/// hands over the connection runs `session` as a tracked task of `shutdown`.
pub fn upgrade<F, Fut>(
    mut request: http::Request<Incoming>,
    shutdown: &Shutdown,
    session: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(WsStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let headers = request.headers();
    if !is_upgrade_request(headers) {
        return Err(ApiError::invalid_request(
            "this route is a WebSocket: send GET with Connection: Upgrade and Upgrade: websocket",
        ));
    }
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(ApiError::invalid_request(
            "only WebSocket version 13 is supported",
        ));
    }
    let Some(key) = headers.get(SEC_WEBSOCKET_KEY) else {
        return Err(ApiError::invalid_request("missing Sec-WebSocket-Key"));
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut request);
    shutdown.spawn_session(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                // Clients send only control frames: a small read buffer (tungstenite
                // allocates it eagerly, 128 KiB by default) keeps an idle session
                // cheap; frames are written out at once rather than batched.
                let config = WebSocketConfig::default()
                    .read_buffer_size(READ_BUFFER)
                    .write_buffer_size(0)
                    .max_message_size(Some(MAX_CLIENT_MESSAGE))
                    .max_frame_size(Some(MAX_CLIENT_MESSAGE));
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                session(ws).await;
            }
            Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
        }
    });
    let mut response = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = response.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, value);
    }
    Ok(response)
}

/// The close code for a stream end.
pub fn close_code_for(end: StreamEnd) -> CloseCode {
    match end {
        StreamEnd::SlowConsumer => CloseCode::SlowConsumer,
        StreamEnd::Removed => CloseCode::WorkerNotFound,
        StreamEnd::Shutdown => CloseCode::GoingAway,
    }
}

/// Streams `source` to the client until either side ends it.
pub async fn run_session<S: FrameSource>(
    ws: WsStream,
    mut source: S,
    settings: SessionSettings,
    shutdown: Shutdown,
) {
    let (mut sink, mut incoming) = ws.split();
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + settings.ping_interval,
        settings.ping_interval,
    );
    let mut last_heard = Instant::now();
    let close = loop {
        let outgoing = tokio::select! {
            biased;
            () = shutdown.triggered() => break Some(CloseCode::GoingAway),
            message = incoming.next() => match message {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    break Some(CloseCode::PolicyViolation)
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                Some(Ok(_)) => {
                    last_heard = Instant::now();
                    continue;
                }
            },
            frame = source.next_frame() => match frame {
                Ok(OutgoingFrame::Encoded(text)) => Message::text(&*text),
                Ok(frame) => match frame.to_json() {
                    Ok(text) => Message::text(text),
                    Err(error) => {
                        tracing::error!(%error, "could not serialize a frame");
                        break Some(CloseCode::InternalError);
                    }
                },
                Err(end) => break Some(close_code_for(end)),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > settings.ping_interval * 2 {
                    tracing::debug!("WebSocket peer stopped answering pings");
                    break None;
                }
                Message::Ping(Bytes::new())
            }
        };
        // A send can stall on a client that stopped reading; the source cutting the
        // client off, or shutdown, must still get through.
        tokio::select! {
            biased;
            sent = sink.send(outgoing) => if sent.is_err() { break None },
            end = source.ended() => break Some(close_code_for(end)),
            () = shutdown.triggered() => break Some(CloseCode::GoingAway),
        }
    };
    if let Some(code) = close {
        let frame = CloseFrame {
            code: code.code().into(),
            reason: code.reason().into(),
        };
        let _ = tokio::time::timeout(settings.close_grace, sink.send(Message::Close(Some(frame))))
            .await;
    }
}
