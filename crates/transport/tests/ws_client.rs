//! `WsEventsClient` against real loopback peers: a small fake WebSocket runtime
//! (tokio-tungstenite's server handshake) that checks the upgrade request, refuses
//! with contract error bodies when told to, and plays a scripted session; plus peers
//! that refuse, never answer the handshake, or go silent.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchyard_protocol::{
    ErrorCode, OutputStream, ResetReason, WorkerEvent, WorkerId, WorkerStatus,
};
use switchyard_transport::{
    RemoteEndpoint, RuntimeEventsClient, SecretToken, TimeoutPhase, TransportError,
    UnreachableKind, UpstreamEnd, UpstreamFrame, UpstreamStream, WsEventsClient,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

mod support;

const TOKEN: &str = "tok-s3cr3t-Wq7v";
const WORKER: &str = "w-1";
/// Generous, for deadlines not under test (busy 2-core machines).
const GENEROUS: Duration = Duration::from_secs(20);
/// Slack allowed beyond a deadline under test.
const MARGIN: Duration = Duration::from_secs(3);

type Ws = WebSocketStream<TcpStream>;

// ---------------------------------------------------------------- fake runtime

/// What the fake runtime saw of one upgrade request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    host: Option<String>,
}

/// A fake runtime listening on loopback; aborted on drop.
struct Fake {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn error_response(status: u16, body: &Value) -> ErrorResponse {
    let text = body.to_string();
    let mut builder = http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", text.len().to_string());
    if status == 401 {
        builder = builder.header("www-authenticate", "Bearer");
    }
    builder.body(Some(text)).unwrap()
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

/// Starts a fake runtime. Every upgrade request is recorded; a wrong bearer token is
/// refused with `401 unauthorized`; with `refuse`, every request is refused with that
/// status and body; otherwise the upgrade is accepted and `session` plays.
async fn fake_runtime<F, Fut>(refuse: Option<(u16, Value)>, session: F) -> Fake
where
    F: Fn(Ws) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let session = Arc::new(session);
    let recorded = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let recorded = recorded.clone();
            let session = session.clone();
            let refuse = refuse.clone();
            tokio::spawn(async move {
                // The callback type is tungstenite's; its error is an HTTP response.
                #[allow(clippy::result_large_err)]
                let callback = move |request: &Request, response: Response| {
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .map(|v| v.to_str().unwrap().to_owned())
                    };
                    let authorization = header("authorization");
                    recorded.lock().unwrap().push(Seen {
                        path: request.uri().path().to_owned(),
                        query: request.uri().query().map(str::to_owned),
                        authorization: authorization.clone(),
                        host: header("host"),
                    });
                    if authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
                        return Err(error_response(
                            401,
                            &error_body("unauthorized", "missing or wrong bearer token"),
                        ));
                    }
                    if let Some((status, body)) = &refuse {
                        return Err(error_response(*status, body));
                    }
                    Ok(response)
                };
                if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await {
                    session(ws).await;
                }
            });
        }
    });
    Fake { port, seen, task }
}

/// A fake runtime that plays `messages` and then closes with `close` (or, with
/// `None`, keeps the connection open and silent).
async fn scripted(messages: Vec<Message>, close: Option<u16>) -> Fake {
    fake_runtime(None, move |mut ws| {
        let messages = messages.clone();
        async move {
            for message in messages {
                if ws.send(message).await.is_err() {
                    return;
                }
            }
            match close {
                Some(code) => close_and_drain(ws, code).await,
                None => hold(ws).await,
            }
        }
    })
    .await
}

/// Sends a close frame and reads until the client's reply (or the end), so the
/// close frame is not lost to a reset.
async fn close_and_drain(mut ws: Ws, code: u16) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: "scripted".into(),
    };
    let _ = ws.send(Message::Close(Some(frame))).await;
    let _ = tokio::time::timeout(GENEROUS, async { while ws.next().await.is_some() {} }).await;
}

/// Keeps the connection open without sending anything.
async fn hold(ws: Ws) {
    tokio::time::sleep(Duration::from_secs(60)).await;
    drop(ws);
}

fn event_text(cursor: &str, worker: &str, event: &WorkerEvent) -> Message {
    let frame = json!({
        "type": "event",
        "cursor": cursor,
        "worker_id": worker,
        "event": event,
    });
    Message::text(frame.to_string())
}

fn output(sequence: u64, text: &str) -> WorkerEvent {
    WorkerEvent::Output {
        sequence,
        stream: OutputStream::Stdout,
        text: text.into(),
    }
}

// ---------------------------------------------------------------- client side

fn endpoint(base_url: String, token: &str) -> RemoteEndpoint {
    RemoteEndpoint::new(
        base_url,
        SecretToken::new(token).unwrap(),
        GENEROUS,
        GENEROUS,
    )
}

fn client(port: u16) -> WsEventsClient {
    WsEventsClient::new(endpoint(format!("http://127.0.0.1:{port}"), TOKEN)).unwrap()
}

fn worker() -> WorkerId {
    WorkerId::new(WORKER).unwrap()
}

/// Runs `f` with an overall deadline so a hang fails the test instead of stalling it.
async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the test took too long")
}

async fn open(client: &WsEventsClient) -> Box<dyn UpstreamStream> {
    client.subscribe(&worker(), None, false).await.unwrap()
}

/// Neither `Display` nor `Debug` of `value` may name the token, the address or the
/// port.
fn assert_no_leak<T: Debug + Display + ?Sized>(value: &T, port: u16) {
    for text in [format!("{value}"), format!("{value:?}")] {
        assert!(!text.contains(TOKEN), "token in {text}");
        assert!(!text.contains("tok-"), "token in {text}");
        assert!(!text.contains("127.0.0.1"), "address in {text}");
        assert!(!text.contains("localhost"), "host in {text}");
        assert!(!text.contains(&port.to_string()), "port in {text}");
    }
}

/// Reads the stream's end, checks it repeats, and checks it leaks nothing.
async fn end_of(stream: &mut Box<dyn UpstreamStream>, port: u16) -> UpstreamEnd {
    let end = stream.next().await.expect_err("expected the stream to end");
    assert_no_leak(&end, port);
    assert_eq!(stream.next().await.unwrap_err(), end, "the end must repeat");
    assert_eq!(stream.next().await.unwrap_err(), end, "the end must repeat");
    end
}

/// Waits for the stream's end, which must be a request-phase timeout of
/// `timeout_ms` (checked as [`end_of`] does); how long it took.
async fn lost_to_timeout(
    stream: &mut Box<dyn UpstreamStream>,
    port: u16,
    timeout_ms: u64,
    started: Instant,
) -> Duration {
    let end = end_of(stream, port).await;
    let took = started.elapsed();
    assert_eq!(
        end,
        UpstreamEnd::Lost(TransportError::Timeout {
            phase: TimeoutPhase::Request,
            timeout_ms
        })
    );
    took
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn request_carries_path_prefix_cursor_snapshot_and_bearer() {
    bounded(async {
        let fake = scripted(vec![], Some(1000)).await;
        let base = format!("http://127.0.0.1:{}/rt/prefix/", fake.port);
        let client = WsEventsClient::new(endpoint(base, TOKEN)).unwrap();
        let mut stream = client
            .subscribe(&worker(), Some("c 7&x=y".into()), true)
            .await
            .unwrap();
        end_of(&mut stream, fake.port).await;
        let mut stream = client.subscribe(&worker(), None, false).await.unwrap();
        end_of(&mut stream, fake.port).await;

        let seen = fake.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].path, "/rt/prefix/v1/workers/w-1/events/ws");
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(seen[0].query.as_deref().unwrap().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            pairs,
            vec![
                ("cursor".to_owned(), "c 7&x=y".to_owned()),
                ("snapshot".to_owned(), "true".to_owned())
            ]
        );
        assert_eq!(
            seen[0].authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(
            seen[0].host.as_deref(),
            Some(format!("127.0.0.1:{}", fake.port).as_str())
        );
        assert_eq!(seen[1].path, "/rt/prefix/v1/workers/w-1/events/ws");
        assert_eq!(seen[1].query, None, "no cursor, no snapshot: no query");
    })
    .await;
}

#[tokio::test]
async fn events_decode_in_order_then_normal_close() {
    bounded(async {
        let big = "x".repeat(2 * 1024 * 1024);
        let events = [
            WorkerEvent::Status {
                status: WorkerStatus::Running,
                previous: WorkerStatus::Starting,
            },
            WorkerEvent::Input {
                sequence: 1,
                text: "hello\n".into(),
            },
            output(2, "hello\n"),
            output(3, &big),
            WorkerEvent::Interrupted,
        ];
        let messages = events
            .iter()
            .enumerate()
            .map(|(i, e)| event_text(&format!("c{i}"), WORKER, e))
            .collect();
        let fake = scripted(messages, Some(1000)).await;
        let mut stream = open(&client(fake.port)).await;
        for (i, expected) in events.iter().enumerate() {
            assert_eq!(
                stream.next().await.unwrap(),
                UpstreamFrame::Event {
                    cursor: format!("c{i}"),
                    event: expected.clone().into(),
                }
            );
        }
        assert_eq!(
            end_of(&mut stream, fake.port).await,
            UpstreamEnd::Closed { code: Some(1000) }
        );
    })
    .await;
}

#[tokio::test]
async fn reset_decodes_and_a_snapshot_follows() {
    bounded(async {
        let messages = vec![
            Message::text(json!({"type":"reset","reason":"cursor_expired"}).to_string()),
            event_text("c9", WORKER, &WorkerEvent::Interrupted),
            Message::text(json!({"type":"reset","reason":"runtime_restarted"}).to_string()),
        ];
        let fake = scripted(messages, Some(1000)).await;
        let mut stream = open(&client(fake.port)).await;
        assert_eq!(
            stream.next().await.unwrap(),
            UpstreamFrame::Reset(ResetReason::CursorExpired)
        );
        assert!(matches!(
            stream.next().await.unwrap(),
            UpstreamFrame::Event { cursor, .. } if cursor == "c9"
        ));
        assert_eq!(
            stream.next().await.unwrap(),
            UpstreamFrame::Reset(ResetReason::RuntimeRestarted)
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_fields_in_frames_are_ignored() {
    bounded(async {
        let frame = json!({
            "type": "event", "cursor": "c1", "worker_id": WORKER,
            "event": {"kind": "interrupted"}, "extra": 1
        });
        let fake = scripted(vec![Message::text(frame.to_string())], Some(1000)).await;
        let mut stream = open(&client(fake.port)).await;
        match stream.next().await.unwrap() {
            UpstreamFrame::Event { event, .. } => {
                assert_eq!(event.decode().unwrap(), WorkerEvent::Interrupted)
            }
            other => panic!("expected an event, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn bad_frames_are_malformed() {
    bounded(async {
        let cases: Vec<(&str, Message)> = vec![
            (
                "another worker",
                event_text("c1", "someone-else", &WorkerEvent::Interrupted),
            ),
            ("empty cursor", event_text("", WORKER, &WorkerEvent::Interrupted)),
            ("garbage", Message::text("this is not json {")),
            (
                "unknown frame type",
                Message::text(json!({"type":"nope"}).to_string()),
            ),
            (
                "upstream frame",
                Message::text(
                    json!({"type":"upstream","state":"lost","error":{"code":"runtime_unreachable","message":"m"}})
                        .to_string(),
                ),
            ),
            ("binary", Message::binary(b"{}".to_vec())),
        ];
        for (name, bad) in cases {
            let good = event_text("c0", WORKER, &WorkerEvent::Interrupted);
            let fake = scripted(vec![good, bad], None).await;
            let mut stream = open(&client(fake.port)).await;
            assert!(
                matches!(stream.next().await, Ok(UpstreamFrame::Event { .. })),
                "{name}"
            );
            let end = end_of(&mut stream, fake.port).await;
            assert!(
                matches!(end, UpstreamEnd::Malformed { .. }),
                "{name}: {end:?}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn close_codes_map_to_ends() {
    bounded(async {
        let cases = [
            (4404, UpstreamEnd::WorkerGone),
            (4408, UpstreamEnd::SlowConsumer),
            (1001, UpstreamEnd::Shutdown),
            (1000, UpstreamEnd::Closed { code: Some(1000) }),
            (1008, UpstreamEnd::Closed { code: Some(1008) }),
        ];
        for (code, expected) in cases {
            let event = event_text("c1", WORKER, &WorkerEvent::Interrupted);
            let fake = scripted(vec![event], Some(code)).await;
            let mut stream = open(&client(fake.port)).await;
            assert!(matches!(
                stream.next().await,
                Ok(UpstreamFrame::Event { .. })
            ));
            assert_eq!(end_of(&mut stream, fake.port).await, expected, "{code}");
        }
    })
    .await;
}

#[tokio::test]
async fn close_replies_reach_the_runtime() {
    bounded(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = Arc::new(Mutex::new(Some(tx)));
        let fake = fake_runtime(None, move |mut ws| {
            let tx = tx.clone();
            async move {
                let frame = CloseFrame {
                    code: CloseCode::from(4404),
                    reason: "worker_not_found".into(),
                };
                ws.send(Message::Close(Some(frame))).await.unwrap();
                let reply = tokio::time::timeout(GENEROUS, ws.next()).await;
                let got_close = matches!(reply, Ok(Some(Ok(Message::Close(_)))));
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(got_close);
                }
            }
        })
        .await;
        let mut stream = open(&client(fake.port)).await;
        assert_eq!(
            end_of(&mut stream, fake.port).await,
            UpstreamEnd::WorkerGone
        );
        assert!(rx.await.unwrap(), "the runtime should get a close reply");
    })
    .await;
}

#[tokio::test]
async fn dropped_tcp_mid_stream_is_lost_unreachable() {
    bounded(async {
        let fake = fake_runtime(None, |mut ws| async move {
            let _ = ws
                .send(event_text("c1", WORKER, &WorkerEvent::Interrupted))
                .await;
            drop(ws); // no close frame: the TCP connection just ends
        })
        .await;
        let mut stream = open(&client(fake.port)).await;
        assert!(matches!(
            stream.next().await,
            Ok(UpstreamFrame::Event { .. })
        ));
        assert_eq!(
            end_of(&mut stream, fake.port).await,
            UpstreamEnd::Lost(TransportError::Unreachable {
                kind: UnreachableKind::Reset
            })
        );
    })
    .await;
}

#[tokio::test]
async fn refused_port_is_unreachable_refused() {
    bounded(async {
        // Bound, never listening: refused, and no other test can take the port.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = socket.local_addr().unwrap().port();
        let err = client(port)
            .subscribe(&worker(), None, false)
            .await
            .err()
            .expect("nothing listens there");
        assert_eq!(
            err,
            TransportError::Unreachable {
                kind: UnreachableKind::Refused
            }
        );
        assert_no_leak(&err, port);
    })
    .await;
}

#[tokio::test]
async fn wrong_token_is_auth_rejected() {
    bounded(async {
        let fake = scripted(vec![], Some(1000)).await;
        let base = format!("http://127.0.0.1:{}", fake.port);
        let client = WsEventsClient::new(endpoint(base, "tok-wrong-one")).unwrap();
        let err = client
            .subscribe(&worker(), None, false)
            .await
            .err()
            .expect("refused");
        assert_eq!(err, TransportError::AuthRejected);
        assert_no_leak(&err, fake.port);
        assert_eq!(
            fake.seen()[0].authorization.as_deref(),
            Some("Bearer tok-wrong-one")
        );
    })
    .await;
}

#[tokio::test]
async fn contract_refusals_are_runtime_errors() {
    bounded(async {
        for (status, code) in [
            (404, ErrorCode::WorkerNotFound),
            (400, ErrorCode::InvalidCursor),
        ] {
            let body = error_body(code.as_str(), "refused before the upgrade");
            let fake = fake_runtime(Some((status, body)), hold).await;
            let err = client(fake.port)
                .subscribe(&worker(), Some("bogus".into()), false)
                .await
                .err()
                .expect("refused");
            assert_no_leak(&err, fake.port);
            match err {
                TransportError::Runtime {
                    status: got,
                    detail,
                } => {
                    assert_eq!(got, status);
                    assert_eq!(detail.code, code);
                    assert_eq!(detail.message, "refused before the upgrade");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
    })
    .await;
}

/// What a runtime writes (a refusal's message, a frame it sends) reaches the debug
/// log, never with its token: a lying runtime that repeats the token finds it
/// redacted there.
#[tokio::test]
async fn the_token_a_runtime_repeats_stays_out_of_the_logs() {
    let logs = support::logs_during(async {
        let refusal = error_body("worker_not_found", &format!("no {TOKEN} here"));
        let fake = fake_runtime(Some((404, refusal)), hold).await;
        assert!(
            client(fake.port)
                .subscribe(&worker(), Some("c".into()), false)
                .await
                .is_err()
        );
        let fake = scripted(
            vec![Message::text(format!(r#"{{"type":"x{TOKEN}"}}"#))],
            None,
        )
        .await;
        let mut stream = open(&client(fake.port)).await;
        assert!(stream.next().await.is_err());
    })
    .await;
    assert!(logs.contains("runtime event subscription failed"), "{logs}");
    assert!(logs.contains("runtime event stream ended"), "{logs}");
    assert!(logs.contains("[redacted]"), "{logs}");
    assert!(!logs.contains(TOKEN), "{logs}");
}

#[tokio::test]
async fn a_missing_route_and_odd_answers_are_protocol_errors_and_a_501_unsupported() {
    bounded(async {
        // Every runtime serves the events route: a server without it is not one, or
        // the base URL's path is wrong.
        let fake = fake_runtime(Some((404, error_body("route_not_found", "no route"))), hold).await;
        let err = open_err(&client(fake.port)).await;
        assert!(
            matches!(&err, TransportError::Protocol { reason } if reason.contains("base_url's path")),
            "{err:?}"
        );
        assert_no_leak(&err, fake.port);

        let fake = fake_runtime(Some((501, error_body("unsupported", "no events"))), hold).await;
        let err = open_err(&client(fake.port)).await;
        assert!(matches!(err, TransportError::Unsupported { .. }), "{err:?}");
        assert_no_leak(&err, fake.port);

        let fake = fake_runtime(Some((500, json!("not an error body"))), hold).await;
        let err = open_err(&client(fake.port)).await;
        assert!(matches!(err, TransportError::Protocol { .. }), "{err:?}");
        assert_no_leak(&err, fake.port);
    })
    .await;
}

async fn open_err(client: &WsEventsClient) -> TransportError {
    client
        .subscribe(&worker(), None, false)
        .await
        .err()
        .expect("expected a refusal")
}

#[tokio::test]
async fn silent_handshake_times_out_within_request_timeout() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp); // accept, never read or answer
            }
        });
        let mut ep = endpoint(format!("http://127.0.0.1:{port}"), TOKEN);
        ep.request_timeout = Duration::from_millis(300);
        let client = WsEventsClient::new(ep).unwrap();
        let started = Instant::now();
        let err = open_err(&client).await;
        let took = started.elapsed();
        assert_eq!(
            err,
            TransportError::Timeout {
                phase: TimeoutPhase::Request,
                timeout_ms: 300
            }
        );
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_millis(300) + MARGIN, "{took:?}");
        assert_no_leak(&err, port);
        holder.abort();
    })
    .await;
}

#[tokio::test]
async fn silent_stream_ends_after_the_idle_timeout() {
    bounded(async {
        let fake = scripted(
            vec![event_text("c1", WORKER, &WorkerEvent::Interrupted)],
            None,
        )
        .await;
        let client = client(fake.port).with_idle_timeout(Duration::from_millis(300));
        let mut stream = open(&client).await;
        assert!(matches!(
            stream.next().await,
            Ok(UpstreamFrame::Event { .. })
        ));
        let started = Instant::now();
        let took = lost_to_timeout(&mut stream, fake.port, 300, started).await;
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_millis(300) + MARGIN, "{took:?}");
    })
    .await;
}

/// A runtime that upgrades and then sends nothing (though it answers pings) is lost
/// after the request timeout, not kept while its pongs come: the stream's first
/// frame (the snapshot) must come within it.
#[tokio::test]
async fn an_upgrade_without_a_first_frame_is_lost_at_the_request_timeout() {
    bounded(async {
        // Reads (so tungstenite answers the client's pings) and sends nothing.
        let fake = fake_runtime(None, |mut ws| async move {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        let mut ep = endpoint(format!("http://127.0.0.1:{}", fake.port), TOKEN);
        ep.request_timeout = Duration::from_millis(400);
        // Pings every 100 ms: without the first-frame deadline the pongs would keep
        // the stream for ever.
        let client = WsEventsClient::new(ep)
            .unwrap()
            .with_idle_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let mut stream = open(&client).await;
        let took = lost_to_timeout(&mut stream, fake.port, 400, started).await;
        assert!(took < Duration::from_millis(400) + MARGIN, "{took:?}");
    })
    .await;
}

#[tokio::test]
async fn runtime_pings_get_pongs() {
    bounded(async {
        let fake = fake_runtime(None, |mut ws| async move {
            ws.send(Message::Ping(b"are-you-there".to_vec().into()))
                .await
                .unwrap();
            let answered = tokio::time::timeout(GENEROUS, async {
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Pong(payload) = message {
                        return &payload[..] == b"are-you-there";
                    }
                }
                false
            })
            .await
            .unwrap_or(false);
            let text = if answered { "pong-seen" } else { "no-pong" };
            let _ = ws.send(event_text("c1", WORKER, &output(1, text))).await;
            close_and_drain(ws, 1000).await;
        })
        .await;
        let mut stream = open(&client(fake.port)).await;
        assert_eq!(
            stream.next().await.unwrap(),
            UpstreamFrame::Event {
                cursor: "c1".into(),
                event: output(1, "pong-seen").into(),
            }
        );
    })
    .await;
}

#[tokio::test]
async fn pings_keep_a_quiet_stream_alive() {
    bounded(async {
        let fake = fake_runtime(None, |mut ws| async move {
            // Pings for twice the idle timeout, each a sixth of it after the last
            // (room for a busy machine's pauses).
            for _ in 0..12 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
            let _ = ws
                .send(event_text("c1", WORKER, &WorkerEvent::Interrupted))
                .await;
            close_and_drain(ws, 1000).await;
        })
        .await;
        let client = client(fake.port).with_idle_timeout(Duration::from_millis(1200));
        let mut stream = open(&client).await;
        assert!(matches!(
            stream.next().await,
            Ok(UpstreamFrame::Event { .. })
        ));
    })
    .await;
}

/// A runtime that never pings but answers pings (tungstenite does so while the
/// session reads) keeps a quiet stream open: the client's own pings get pongs.
#[tokio::test]
async fn client_pings_keep_a_quiet_stream_alive_when_the_runtime_never_pings() {
    bounded(async {
        let fake = fake_runtime(None, |mut ws| async move {
            let _ = ws
                .send(event_text("c1", WORKER, &WorkerEvent::Interrupted))
                .await;
            // Read (and so answer pings) for three idle timeouts, sending nothing.
            let pings = tokio::time::timeout(Duration::from_millis(3600), async {
                let mut pings = 0;
                while let Some(Ok(message)) = ws.next().await {
                    pings += usize::from(matches!(message, Message::Ping(_)));
                }
                pings
            })
            .await;
            assert!(pings.is_err(), "the client closed the quiet stream");
            let _ = ws.send(event_text("c2", WORKER, &output(1, "late"))).await;
            close_and_drain(ws, 1000).await;
        })
        .await;
        let client = client(fake.port).with_idle_timeout(Duration::from_millis(1200));
        let mut stream = open(&client).await;
        assert!(matches!(
            stream.next().await,
            Ok(UpstreamFrame::Event { .. })
        ));
        assert_eq!(
            stream.next().await.unwrap(),
            UpstreamFrame::Event {
                cursor: "c2".into(),
                event: output(1, "late").into(),
            }
        );
    })
    .await;
}

/// The client pings a silent stream after a third of its idle timeout, and one that
/// answers nothing (a partition: the bytes go nowhere) is lost at the idle timeout.
#[tokio::test]
async fn a_silent_runtime_is_pinged_then_lost() {
    bounded(async {
        let (pinged_tx, pinged_rx) = tokio::sync::oneshot::channel::<Duration>();
        let pinged_tx = Arc::new(Mutex::new(Some(pinged_tx)));
        let fake = fake_runtime(None, move |mut ws| {
            let pinged_tx = pinged_tx.clone();
            async move {
                let opened = Instant::now();
                // Read until the first ping, note when, then stop reading (no pongs).
                while let Some(Ok(message)) = ws.next().await {
                    if matches!(message, Message::Ping(_)) {
                        if let Some(tx) = pinged_tx.lock().unwrap().take() {
                            let _ = tx.send(opened.elapsed());
                        }
                        break;
                    }
                }
                hold(ws).await;
            }
        })
        .await;
        let client = client(fake.port).with_idle_timeout(Duration::from_millis(600));
        let mut stream = open(&client).await;
        let started = Instant::now();
        let took = lost_to_timeout(&mut stream, fake.port, 600, started).await;
        assert!(took >= Duration::from_millis(550), "{took:?}");
        assert!(took < Duration::from_millis(600) + MARGIN, "{took:?}");
        let first_ping = pinged_rx.await.expect("the client pinged");
        assert!(
            first_ping >= Duration::from_millis(150) && first_ping < Duration::from_millis(600),
            "first ping after {first_ping:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn base_url_rules_and_debug_redaction() {
    for bad in [
        "https://127.0.0.1:7701",
        "ws://127.0.0.1:7701",
        "http://user:tok-s3cr3t-Wq7v@127.0.0.1:7701",
        "http://127.0.0.1:7701/?token=tok-s3cr3t-Wq7v",
    ] {
        let err = WsEventsClient::new(endpoint(bad.into(), TOKEN)).unwrap_err();
        assert!(matches!(err, TransportError::Unsupported { .. }), "{bad}");
        assert_no_leak(&err, 7701);
    }
    let client = WsEventsClient::new(endpoint("http://127.0.0.1:7701/x".into(), TOKEN)).unwrap();
    let debug = format!("{client:?}");
    assert!(!debug.contains(TOKEN) && !debug.contains("127.0.0.1") && !debug.contains("7701"));
}
