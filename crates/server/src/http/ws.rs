//! WebSockets over hyper: the handshake, and a session loop that streams server
//! frames to one client under the contract's rules (control frames only from the
//! client, pings, dead-peer detection, 4408 for a slow consumer, 1001 on shutdown,
//! 1002 for a frame that breaks the WebSocket protocol).
//!
//! An interactive session (`?interactive=true`) also takes `input` and `resize`
//! frames from the client: each is handed to the source at once, in arrival order,
//! and a refusal comes back as an `error` frame while the session goes on; anything
//! else closes it with 1008. With `MAX_PENDING_COMMANDS` (64) still being carried out,
//! the session stops reading until one is done (back-pressure, not refusal).
//!
//! Frames the source already holds when the session wakes go out together, in one
//! write (at most `BATCH_FRAMES` frames or about `BATCH_BYTES`): a worker printing
//! flat out fills the queue faster than one write per frame empties it, and every
//! write is a system call here and a wake-up of the reader there. Nothing waits for
//! a batch to fill, so a lone keystroke's echo goes out as soon as it is there.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt as _, SinkExt, StreamExt};
use http::header::{
    CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use switchyard_protocol::{
    ClientFrame, CloseCode, ErrorCode, ErrorDetail, OutgoingFrame, ServerFrame,
};
use switchyard_runtime::StreamEnd;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::ApiError;
use super::response::{Response, empty};
use super::shutdown::Shutdown;

/// A server-side WebSocket over a hyper upgrade.
pub type WsStream = WebSocketStream<Counted>;

/// A hyper upgrade that counts the bytes written to it, so that a session can tell
/// a write that goes on slowly (a client reading on a slow link) from one that goes
/// nowhere (a client that has stopped reading).
pub struct Counted {
    io: TokioIo<Upgraded>,
    written: Arc<AtomicU64>,
}

impl Counted {
    fn new(upgraded: Upgraded) -> Self {
        Self {
            io: TokioIo::new(upgraded),
            written: Arc::default(),
        }
    }

    /// Bytes written so far, as a counter the session reads while a write waits.
    fn written(&self) -> Arc<AtomicU64> {
        self.written.clone()
    }

    fn count(&self, written: &std::task::Poll<std::io::Result<usize>>) {
        if let std::task::Poll::Ready(Ok(n)) = written {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
    }
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.count(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.count(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Largest message a client of a watch-only session may send (it sends only control
/// frames).
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Commands of one interactive session waiting for their outcome; with this many,
/// the session reads no more frames until one is done, so a client that sends
/// faster than the worker takes (a paste) is slowed down by TCP, not refused.
const MAX_PENDING_COMMANDS: usize = 64;
/// The close reason of an interactive session whose client sent something that is
/// not an `input` or `resize` frame.
const BAD_COMMAND_REASON: &str = "expected_input_or_resize_frame";
/// Read buffer of a server session.
const READ_BUFFER: usize = 4 * 1024;
/// Most frames one write of a session carries.
const BATCH_FRAMES: usize = 32;
/// A session's frames queued for one write go out once they pass this many bytes
/// (tungstenite's write buffer), and a batch takes no more frames after that.
const BATCH_BYTES: usize = 64 * 1024;

/// Timing of a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// How often the server pings; a peer that leaves a ping unanswered for two
    /// intervals (no frame from it, no stalled write going on) is dropped.
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

/// How a submitted command went: `None` once accepted, or the refusal to send back.
pub type CommandOutcome = Pin<Box<dyn Future<Output = Option<ErrorDetail>> + Send>>;

/// Where a session's frames come from (a runtime subscription or a backend viewer),
/// and, for an interactive session, where the client's commands go.
pub trait FrameSource: Send + 'static {
    /// The next frame, or why the stream ended.
    fn next_frame(&mut self) -> impl Future<Output = Result<OutgoingFrame, StreamEnd>> + Send;
    /// Resolves when the source has ended the stream (for example cut off a slow
    /// consumer), even while frames are still queued.
    fn ended(&self) -> impl Future<Output = StreamEnd> + Send;
    /// True when the client may send `input` and `resize` frames.
    fn is_interactive(&self) -> bool {
        false
    }
    /// Queues a client command behind those submitted before it (called as soon as
    /// the frame is read, so commands keep their arrival order). `Err` is a refusal
    /// known at once.
    fn submit(&mut self, _command: ClientFrame) -> Result<CommandOutcome, ErrorDetail> {
        Err(ErrorDetail::new(
            ErrorCode::InvalidRequest,
            "this event stream was not opened with interactive=true",
        ))
    }
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

/// Checks a WebSocket handshake as RFC 6455 (4.1, 4.2.1) has a server check it (an
/// upgrade to `websocket` over HTTP/1.1 or later, one `Sec-WebSocket-Version: 13`,
/// one `Sec-WebSocket-Key` that is 16 bytes in base64) and returns the key. The
/// event routes call it before they subscribe, so a handshake that cannot succeed
/// costs no subscription, and is answered as a plain HTTP error rather than a
/// `101` that carries nothing (hyper does not upgrade an HTTP/1.0 connection).
pub fn check_handshake<B>(request: &http::Request<B>) -> Result<&HeaderValue, ApiError> {
    let headers = request.headers();
    if !is_upgrade_request(headers) {
        return Err(ApiError::invalid_request(
            "this route is a WebSocket: send GET with Connection: Upgrade and Upgrade: websocket",
        ));
    }
    if request.version() < http::Version::HTTP_11 {
        return Err(ApiError::invalid_request(
            "a WebSocket handshake needs HTTP/1.1",
        ));
    }
    let mut versions = headers.get_all(SEC_WEBSOCKET_VERSION).iter();
    if versions.next().map(HeaderValue::as_bytes) != Some(b"13") || versions.next().is_some() {
        // RFC 6455, 4.4: the refusal names the version the server speaks.
        let mut refusal = ApiError::invalid_request("only WebSocket version 13 is supported");
        refusal
            .headers
            .get_or_insert_default()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Err(refusal);
    }
    let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
    let key = keys
        .next()
        .ok_or_else(|| ApiError::invalid_request("missing Sec-WebSocket-Key"))?;
    let nonce = base64::engine::general_purpose::STANDARD.decode(key.as_bytes());
    if keys.next().is_some() || nonce.map_or(true, |nonce| nonce.len() != 16) {
        return Err(ApiError::invalid_request(
            "Sec-WebSocket-Key must be one header: 16 random bytes in base64",
        ));
    }
    Ok(key)
}

/// Validates the handshake headers, answers `101 Switching Protocols`, and once hyper
/// hands over the connection runs `session` as a tracked task of `shutdown`.
pub fn upgrade<F, Fut>(
    request: http::Request<Incoming>,
    shutdown: &Shutdown,
    session: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(WsStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    upgrade_with_limit(request, shutdown, MAX_CLIENT_MESSAGE, session)
}

/// Like [`upgrade`], taking client messages of up to `max_message` bytes (an
/// interactive session's input frames).
pub fn upgrade_with_limit<F, Fut>(
    mut request: http::Request<Incoming>,
    shutdown: &Shutdown,
    max_message: usize,
    session: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(WsStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let accept = derive_accept_key(check_handshake(&request)?.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut request);
    shutdown.spawn_session(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                // Clients send only control frames: a small read buffer (tungstenite
                // allocates it eagerly, 128 KiB by default) keeps an idle session
                // cheap. The write buffer holds one batch of frames (allocated when
                // the first is written); the session flushes after every batch.
                let config = WebSocketConfig::default()
                    .read_buffer_size(READ_BUFFER)
                    .write_buffer_size(BATCH_BYTES)
                    .max_message_size(Some(max_message))
                    .max_frame_size(Some(max_message));
                let ws = WebSocketStream::from_raw_socket(
                    Counted::new(upgraded),
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
        StreamEnd::AccessEnded => CloseCode::AccessEnded,
    }
}

/// What one turn of the session loop decided.
enum Step {
    /// Send this message.
    Send(Message),
    /// Hand this command to the source.
    Command(ClientFrame),
    /// End the session.
    Close(Closing),
}

/// How a session ends.
enum Closing {
    /// The server closes, with this code and reason.
    With(CloseCode, &'static str),
    /// The client closed: its close frame is answered (RFC 6455, 5.5.1).
    Answer,
    /// The connection is gone or its peer dead: nothing more is sent.
    Drop,
}

/// The close of a session for `code`, with its usual reason.
fn close(code: CloseCode) -> Step {
    Step::Close(Closing::With(code, code.reason()))
}

/// The step for the source's next frame: send it, or close as the stream ended.
fn frame_step(frame: Result<OutgoingFrame, StreamEnd>) -> Step {
    match frame {
        Ok(OutgoingFrame::Encoded(text)) => Step::Send(Message::Text(shared_text(text))),
        Ok(OutgoingFrame::Text(text)) => Step::Send(Message::text(text)),
        Ok(frame) => match frame.to_json() {
            Ok(text) => Step::Send(Message::text(text)),
            Err(error) => {
                tracing::error!(%error, "could not serialize a frame");
                close(CloseCode::InternalError)
            }
        },
        Err(end) => close(close_code_for(end)),
    }
}

/// A frame's text encoded once and shared by every viewer it goes to, as bytes
/// tungstenite can hold.
struct SharedText(Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// `text` for tungstenite without a copy: each viewer's message borrows the one
/// encoded frame instead of allocating and copying its own (a frame of a worker
/// printing flat out is several KiB, and a hub frame may go to many viewers).
fn shared_text(text: Arc<str>) -> Utf8Bytes {
    let bytes = Bytes::from_owner(SharedText(text));
    // tungstenite checks the bytes once more (one fast pass; they came from a
    // `str`, so it cannot fail); the copy below is never taken.
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => text,
        Err(_) => Utf8Bytes::from(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// The `error` frame for a refused command.
fn refusal(error: ErrorDetail) -> Step {
    match serde_json::to_string(&ServerFrame::Error { error }) {
        Ok(text) => Step::Send(Message::text(text)),
        Err(_) => close(CloseCode::InternalError),
    }
}

/// The refusal of a resize frame whose `cols` or `rows` is an integer too large or
/// negative for a terminal's size (`ClientFrame::parse` cannot hold it), so that it
/// is answered as every size out of range is; `None` for any other frame.
fn size_out_of_range(text: &str) -> Option<ErrorDetail> {
    let frame: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    let integer = |key: &str| frame.get(key).filter(|v| v.is_i64() || v.is_u64());
    let shaped = frame.len() == 3 && frame.get("type")?.as_str()? == "resize";
    let (cols, rows) = (integer("cols")?, integer("rows")?);
    shaped.then(|| {
        ErrorDetail::new(
            ErrorCode::InvalidRequest,
            format!("cols and rows must each be 1 to 1000, got {cols}x{rows}"),
        )
    })
}

/// Streams `source` to the client until either side ends it; an interactive source
/// also gets the client's commands. Returns the close code it sent, if it closed
/// the session itself (`None`: the client closed it, or the connection dropped).
pub async fn run_session<S: FrameSource>(
    ws: WsStream,
    mut source: S,
    settings: SessionSettings,
    shutdown: Shutdown,
) -> Option<CloseCode> {
    let interactive = source.is_interactive();
    let written = ws.get_ref().written();
    let (mut sink, mut incoming) = ws.split();
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + settings.ping_interval,
        settings.ping_interval,
    );
    // A session busy writing misses ticks: the next comes one interval after the
    // late one, not in a burst.
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When the oldest ping the client has not answered went out; `None` once it has
    // been heard from since (any frame, or a stalled write that went on: it reads).
    // A peer is dead when a ping has gone unanswered for two intervals, never
    // before it has been pinged, so a client kept busy reading a long burst, which
    // the session could not ping meanwhile, is not dropped the moment it ends.
    let mut unanswered: Option<Instant> = None;
    let mut pending: FuturesOrdered<CommandOutcome> = FuturesOrdered::new();
    let mut refusals: VecDeque<ErrorDetail> = VecDeque::new();
    // The messages of the next write, and what came after them from the source when
    // it was not a frame (the stream's end), taken on the next turn.
    let mut batch: Vec<Message> = Vec::new();
    let mut after_batch: Option<Step> = None;
    let close = 'session: loop {
        // Back-pressure: with a full window of commands in flight, the client's
        // frames wait in the socket (and then in the client) until one is done.
        let reading = pending.len() < MAX_PENDING_COMMANDS;
        let mut from_source = false;
        let step = if let Some(step) = after_batch.take() {
            step
        } else if let Some(error) = refusals.pop_front() {
            refusal(error)
        } else {
            tokio::select! {
                biased;
                () = shutdown.triggered() => close(CloseCode::GoingAway),
                message = incoming.next(), if reading => match message {
                    Some(Ok(Message::Text(text))) if interactive => match ClientFrame::parse(&text) {
                        Ok(command) => Step::Command(command),
                        Err(_) => match size_out_of_range(&text) {
                            // A resize whose numbers do not even fit: refused as any
                            // size out of range is, not a broken frame.
                            Some(error) => refusal(error),
                            None => Step::Close(Closing::With(CloseCode::PolicyViolation, BAD_COMMAND_REASON)),
                        },
                    },
                    // An input frame larger than the session reads: too big, said
                    // as such (RFC 6455's 1009), not a broken frame.
                    Some(Err(WsError::Capacity(_))) if interactive => {
                        close(CloseCode::MessageTooBig)
                    }
                    // A data frame, and one the server could not read whole (over the
                    // size limit) or decode (text that is not UTF-8): a data frame all
                    // the same.
                    Some(Ok(Message::Text(_) | Message::Binary(_)))
                    | Some(Err(WsError::Capacity(_) | WsError::Utf8)) => {
                        Step::Close(Closing::With(
                            CloseCode::PolicyViolation,
                            if interactive { BAD_COMMAND_REASON } else { CloseCode::PolicyViolation.reason() },
                        ))
                    }
                    Some(Ok(Message::Close(_))) => Step::Close(Closing::Answer),
                    // A frame that breaks the protocol itself (unmasked, reserved
                    // bits, a fragmented control frame): failed with 1002 (RFC 6455,
                    // 7.4.1), unless the connection is already gone.
                    Some(Err(WsError::Protocol(violation)))
                        if violation != ProtocolError::ResetWithoutClosingHandshake =>
                    {
                        tracing::debug!(%violation, "WebSocket client broke the protocol");
                        close(CloseCode::ProtocolError)
                    }
                    None | Some(Err(_)) => Step::Close(Closing::Drop),
                    Some(Ok(_)) => {
                        unanswered = None;
                        continue;
                    }
                },
                Some(outcome) = pending.next(), if !pending.is_empty() => match outcome {
                    Some(error) => refusal(error),
                    None => continue,
                },
                frame = source.next_frame() => {
                    from_source = true;
                    frame_step(frame)
                }
                _ = ping.tick() => {
                    if !reading {
                        // Its pongs wait unread behind its commands: not its fault.
                        unanswered = None;
                    }
                    match unanswered {
                        Some(sent) if sent.elapsed() >= settings.ping_interval * 2 => {
                            tracing::debug!("WebSocket peer stopped answering pings");
                            Step::Close(Closing::Drop)
                        }
                        _ => {
                            unanswered.get_or_insert_with(Instant::now);
                            Step::Send(Message::Ping(Bytes::new()))
                        }
                    }
                }
            }
        };
        let outgoing = match step {
            Step::Send(message) => message,
            Step::Close(close) => break close,
            Step::Command(command) => {
                unanswered = None;
                match source.submit(command) {
                    Ok(outcome) => pending.push_back(outcome),
                    Err(error) => refusals.push_back(error),
                }
                continue;
            }
        };
        batch.push(outgoing);
        if from_source {
            // The frames the source already holds go out in the same write.
            let mut bytes = batch[0].len();
            while batch.len() < BATCH_FRAMES && bytes < BATCH_BYTES {
                match source.next_frame().now_or_never().map(frame_step) {
                    Some(Step::Send(message)) => {
                        bytes += message.len();
                        batch.push(message);
                    }
                    Some(step) => {
                        after_batch = Some(step);
                        break;
                    }
                    None => break,
                }
            }
        }
        let send = async {
            for message in batch.drain(..) {
                sink.feed(message).await?;
            }
            sink.flush().await
        };
        // A write that had to wait and then went through was read by a live client
        // (the socket takes more only as the peer acknowledges what it holds): heard
        // from, even though its pongs may still wait behind the frames it reads.
        let mut send = std::pin::pin!(send);
        let mut stalled = false;
        let send = std::future::poll_fn(move |cx| match send.as_mut().poll(cx) {
            std::task::Poll::Pending => {
                stalled = true;
                std::task::Poll::Pending
            }
            std::task::Poll::Ready(sent) => std::task::Poll::Ready((sent, stalled)),
        });
        let mut send = std::pin::pin!(send);
        // A send can stall on a client that stopped reading; the source cutting the
        // client off, or shutdown, must still get through. And a write that takes
        // nothing for two ping intervals is a client that has stopped reading (a
        // frozen page, a stuck program): it is too far behind, whether or not the
        // worker goes on to fill its queue (a quiet one never would, and the session
        // would hold it and what it queued for good).
        let mut check = tokio::time::interval_at(
            tokio::time::Instant::now() + settings.ping_interval,
            settings.ping_interval,
        );
        let mut seen = written.load(Ordering::Relaxed);
        let mut still = 0;
        loop {
            tokio::select! {
                biased;
                sent = &mut send => match sent {
                    (Err(_), _) => break 'session Closing::Drop,
                    (Ok(()), true) => {
                        unanswered = None;
                        break;
                    }
                    (Ok(()), false) => break,
                },
                end = source.ended() => {
                    let code = close_code_for(end);
                    break 'session Closing::With(code, code.reason());
                }
                () = shutdown.triggered() => break 'session Closing::With(CloseCode::GoingAway, CloseCode::GoingAway.reason()),
                _ = check.tick() => {
                    let now = written.load(Ordering::Relaxed);
                    still = if now == seen { still + 1 } else { 0 };
                    seen = now;
                    if still >= 2 {
                        tracing::debug!("WebSocket client stopped reading");
                        break 'session Closing::With(CloseCode::SlowConsumer, CloseCode::SlowConsumer.reason());
                    }
                }
            }
        }
    };
    let Ok(mut ws) = sink.reunite(incoming) else {
        return None;
    };
    let grace = settings.close_grace;
    let sent = match close {
        Closing::With(code, reason) => {
            let frame = CloseFrame {
                code: code.code().into(),
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(grace, ws.send(Message::Close(Some(frame)))).await;
            Some(code)
        }
        // Flushing sends the answer tungstenite queued when the close came in (a
        // `close` would refuse to: the peer has closed).
        Closing::Answer => {
            let _ = tokio::time::timeout(grace, ws.flush()).await;
            None
        }
        Closing::Drop => return None,
    };
    // A lingering close (`linger.rs`): the write side is shut, then what the client
    // still sends (its close frame, the rest of a frame too large to read) is read
    // and dropped until it closes, so that no reset destroys the close frame.
    let _ = tokio::time::timeout(grace, ws.get_mut().shutdown()).await;
    sent
}

/// Logs (at INFO) a session closed with 4408 because its client fell too far
/// behind, naming what it watched, so that an operator can tell which viewers are
/// too slow (the metrics count them, without names).
pub fn log_if_too_slow(
    closed: Option<CloseCode>,
    runtime_id: Option<&str>,
    worker_id: &str,
    request_id: &str,
) {
    if closed == Some(CloseCode::SlowConsumer) {
        tracing::info!(
            runtime_id = runtime_id.unwrap_or("-"),
            worker_id,
            request_id,
            "closed an event stream whose client fell too far behind (4408 slow_consumer); it may reconnect from its last cursor"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_frame_reaches_tungstenite_whole_and_uncopied() {
        for text in ["", "{\"type\":\"event\"}", "é\u{10348}\n\"\\"] {
            let frame: Arc<str> = Arc::from(text);
            let lent = shared_text(frame.clone());
            assert_eq!(lent.as_str(), text);
            assert_eq!(
                lent.as_str().as_ptr(),
                frame.as_ptr(),
                "no copy of {text:?}"
            );
        }
    }
}
