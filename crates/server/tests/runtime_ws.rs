//! The Runtime API's worker event WebSocket with a real client.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use http::Method;
use switchyard_protocol::{CreateWorkerRequest, ServerFrame, WorkerDetail, WorkerEvent};
use switchyard_runtime::{ProcessSpec, Profile, ProfileSpec};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(server: &TestServer, worker: &str, cursor: Option<&str>) -> Ws {
    let mut path = format!("/v1/workers/{worker}/events/ws");
    if let Some(c) = cursor {
        path.push_str(&format!("?cursor={c}"));
    }
    let mut request = server.ws_url(&path).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (ws, response) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("connect in time")
        .expect("upgrade accepted");
    assert_eq!(response.status(), 101);
    ws
}

/// The next server frame; panics on a close or a timeout.
async fn frame(ws: &mut Ws) -> ServerFrame {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("stream open")
            .expect("no protocol error");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("a valid frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Reads until the server closes; returns the close code.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

fn event(frame: &ServerFrame) -> (&str, &WorkerEvent) {
    match frame {
        ServerFrame::Event {
            cursor,
            event,
            runtime_id,
            ..
        } => {
            assert!(runtime_id.is_none(), "runtime frames carry no runtime_id");
            (cursor, event)
        }
        other => panic!("expected an event frame, got {other:?}"),
    }
}

async fn create(server: &TestServer, profile: &str) -> WorkerDetail {
    let body = serde_json::to_string(&CreateWorkerRequest {
        profile: profile.into(),
        label: None,
        owner: None,
    })
    .unwrap();
    let response = server.call(Method::POST, "/v1/workers", Some(&body)).await;
    assert_eq!(response.status, 201, "{:?}", response.json);
    serde_json::from_value(response.json).unwrap()
}

async fn input(server: &TestServer, worker: &str, text: &str) {
    let body = serde_json::json!({ "text": text }).to_string();
    let response = server
        .call(
            Method::POST,
            &format!("/v1/workers/{worker}/input"),
            Some(&body),
        )
        .await;
    assert_eq!(response.status, 202, "{:?}", response.json);
}

#[tokio::test]
async fn snapshot_then_live_events_in_order_and_resume_gets_exactly_the_missed_ones() {
    let server = TestServer::start(config()).await;
    let w = create(&server, "echo").await;
    let id = w.worker_id.as_str();
    let mut ws = connect(&server, id, None).await;
    let first = frame(&mut ws).await;
    assert!(matches!(event(&first).1, WorkerEvent::Snapshot { .. }));
    input(&server, id, "one").await;
    let f = frame(&mut ws).await;
    assert!(matches!(event(&f).1, WorkerEvent::Input { text, .. } if text == "one"));
    let f = frame(&mut ws).await;
    let (cursor, e) = event(&f);
    assert!(matches!(e, WorkerEvent::Output { text, .. } if text == "one"));
    let cursor = cursor.to_owned();
    ws.close(None).await.unwrap();

    // Away: two round trips happen.
    input(&server, id, "two").await;
    input(&server, id, "three").await;
    let mut resumed = connect(&server, id, Some(&cursor)).await;
    let mut texts = Vec::new();
    let mut cursors = std::collections::HashSet::new();
    for _ in 0..4 {
        let f = frame(&mut resumed).await;
        let (c, e) = event(&f);
        assert!(
            cursors.insert(c.to_owned()),
            "no cursor twice on one connection"
        );
        match e {
            WorkerEvent::Input { text, .. } => texts.push(format!("in:{text}")),
            WorkerEvent::Output { text, .. } => texts.push(format!("out:{text}")),
            other => panic!("only the missed events: {other:?}"),
        }
    }
    assert_eq!(texts, ["in:two", "out:two", "in:three", "out:three"]);
    // Nothing more until something happens.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), resumed.next())
            .await
            .is_err()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_expired_cursor_gives_reset_then_snapshot() {
    let mut cfg = config();
    cfg.limits.event_backlog = 4;
    let server = TestServer::start(cfg).await;
    let w = create(&server, "echo").await;
    let id = w.worker_id.as_str();
    let mut ws = connect(&server, id, None).await;
    let f = frame(&mut ws).await;
    let old = event(&f).0.to_owned();
    for i in 0..5 {
        input(&server, id, &i.to_string()).await;
    }
    let mut resumed = connect(&server, id, Some(&old)).await;
    assert_eq!(
        serde_json::to_value(frame(&mut resumed).await).unwrap(),
        serde_json::json!({"type":"reset","reason":"cursor_expired"})
    );
    assert!(matches!(
        event(&frame(&mut resumed).await).1,
        WorkerEvent::Snapshot { .. }
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_and_foreign_cursors_are_400_before_the_upgrade() {
    let server = TestServer::start(config()).await;
    let a = create(&server, "echo").await;
    let b = create(&server, "echo").await;
    let sub = server.runtime.subscribe(&a.worker_id, None).unwrap();
    let foreign = sub.cursor_at(0);
    for (worker, cursor) in [
        (b.worker_id.as_str(), foreign.as_str()),
        (a.worker_id.as_str(), "not-a-cursor"),
    ] {
        let mut request = server
            .ws_url(&format!("/v1/workers/{worker}/events/ws?cursor={cursor}"))
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400);
                let body: serde_json::Value =
                    serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
                assert_eq!(body["error"]["code"], "invalid_cursor");
            }
            other => panic!("expected a plain 400, got {other:?}"),
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_data_frame_closes_with_1008() {
    let server = TestServer::start(config()).await;
    let w = create(&server, "echo").await;
    let mut ws = connect(&server, w.worker_id.as_str(), None).await;
    frame(&mut ws).await;
    ws.send(Message::text("hello?")).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1008));
    server.shutdown().await;
}

/// A data frame the server cannot even read whole (over the size limit, or text
/// that is not UTF-8) is still a data frame: 1008, and the close frame gets
/// through although the client's bytes were left unread (no reset).
#[tokio::test]
async fn an_oversized_or_undecodable_data_frame_closes_with_1008_too() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let server = TestServer::start(config()).await;
    let w = create(&server, "echo").await;
    let frames = [
        Message::binary(vec![b'x'; 70_000]),
        Message::Frame(Frame::message(
            vec![0xff, 0xfe],
            OpCode::Data(Data::Text),
            true,
        )),
    ];
    for message in frames {
        let mut ws = connect(&server, w.worker_id.as_str(), None).await;
        frame(&mut ws).await;
        ws.send(message).await.unwrap();
        assert_eq!(close_code(&mut ws).await, Some(1008));
    }
    server.shutdown().await;
}

/// A frame that breaks the WebSocket protocol itself (a fragmented control frame,
/// a continuation with nothing to continue) fails the connection with 1002 (RFC
/// 6455, 7.4.1), not a silent drop.
#[tokio::test]
async fn a_frame_that_breaks_the_protocol_closes_with_1002() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let server = TestServer::start(config()).await;
    let w = create(&server, "echo").await;
    let mut fragmented_ping = Frame::ping(b"ping".to_vec());
    fragmented_ping.header_mut().is_final = false;
    let frames = [
        fragmented_ping,
        Frame::message(b"tail".to_vec(), OpCode::Data(Data::Continue), true),
    ];
    for broken in frames {
        let mut ws = connect(&server, w.worker_id.as_str(), None).await;
        frame(&mut ws).await;
        ws.send(Message::Frame(broken)).await.unwrap();
        assert_eq!(close_code(&mut ws).await, Some(1002));
    }
    server.shutdown().await;
}

/// A client that closes gets its close frame answered (RFC 6455, 5.5.1), so a
/// browser sees a clean close with its own code, not 1006.
#[tokio::test]
async fn a_client_close_is_answered() {
    let server = TestServer::start(config()).await;
    let w = create(&server, "echo").await;
    let mut ws = connect(&server, w.worker_id.as_str(), None).await;
    frame(&mut ws).await;
    ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: WsCloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1000), "the close is echoed");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_with_1001() {
    let server = TestServer::start(config()).await;
    let w = create(&server, "echo").await;
    let mut ws = connect(&server, w.worker_id.as_str(), None).await;
    frame(&mut ws).await;
    let closing = tokio::spawn(server.shutdown());
    assert_eq!(close_code(&mut ws).await, Some(1001));
    closing.await.unwrap();
}

#[tokio::test]
async fn deleting_the_worker_closes_with_4404() {
    let server = TestServer::start(config()).await;
    let w = create(&server, "echo").await;
    let id = w.worker_id.as_str();
    let mut ws = connect(&server, id, None).await;
    frame(&mut ws).await;
    assert_eq!(
        server
            .call(Method::POST, &format!("/v1/workers/{id}/stop"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        server
            .call(Method::DELETE, &format!("/v1/workers/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(close_code(&mut ws).await, Some(4404));
    server.shutdown().await;
}

/// A worker printing flat out: the session writes the frames it finds queued
/// together, and the client still gets every event once, in order, then the
/// worker's exit, then the close when it is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_arrives_whole_and_in_order_then_the_exit_and_the_close() {
    let cfg = config().with_profile(
        "burst",
        Profile::new(ProfileSpec::Process(ProcessSpec::new([
            "sh",
            "-c",
            "read x; exec seq 1 50000",
        ]))),
    );
    let server = TestServer::start(cfg).await;
    let w = create(&server, "burst").await;
    let id = w.worker_id.as_str();
    let mut ws = connect(&server, id, None).await;
    assert!(matches!(
        event(&frame(&mut ws).await).1,
        WorkerEvent::Snapshot { .. }
    ));
    input(&server, id, "go\n").await;
    let expected: String = (1..=50000).map(|n| format!("{n}\n")).collect();
    let (mut printed, mut last_sequence, mut outputs) = (String::new(), None, 0);
    let exit = loop {
        let f = frame(&mut ws).await;
        match event(&f).1 {
            WorkerEvent::Input { .. } => {}
            WorkerEvent::Output { sequence, text, .. } => {
                assert!(last_sequence < Some(*sequence), "in order, once each");
                last_sequence = Some(*sequence);
                printed.push_str(text);
                outputs += 1;
            }
            WorkerEvent::Exited { code, .. } => break *code,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(
        printed == expected,
        "{} of {} bytes",
        printed.len(),
        expected.len()
    );
    assert!(outputs > 1, "a burst of several events");
    assert_eq!(exit, Some(0));
    let deleted = server
        .call(Method::DELETE, &format!("/v1/workers/{id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(close_code(&mut ws).await, Some(4404));
    server.shutdown().await;
}

/// One client stops reading while a worker produces a lot of output: it is closed
/// with 4408 and a second client on the same worker receives every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_gets_4408_while_another_keeps_up() {
    let mut cfg = config();
    cfg.limits.subscriber_queue = 64;
    cfg = cfg.with_profile(
        "echo",
        Profile::new(ProfileSpec::Echo {
            delay: Duration::ZERO,
        }),
    );
    let server = TestServer::start(cfg).await;
    let w = create(&server, "echo").await;
    let id = w.worker_id.as_str();
    let mut stalled = connect(&server, id, None).await;
    let mut reader = connect(&server, id, None).await;
    frame(&mut stalled).await;
    frame(&mut reader).await;

    // 64 KiB per input: socket buffers fill after a few MB, then the stalled client's
    // queue of 64 events overflows. The reader keeps up because we wait for each echo.
    let text = "x".repeat(60 * 1024);
    let mut rounds = 0;
    let mut last_position_text = String::new();
    while rounds < 400 {
        input(&server, id, &text).await;
        loop {
            let f = frame(&mut reader).await;
            if let WorkerEvent::Output { text: t, .. } = event(&f).1 {
                last_position_text = t.clone();
                break;
            }
        }
        rounds += 1;
    }
    assert_eq!(last_position_text.len(), text.len());
    // The stalled client now reads: what was buffered, then the 4408 close.
    let code = close_code(&mut stalled).await;
    assert_eq!(code, Some(4408));
    assert_eq!(u16::from(WsCloseCode::from(4408)), 4408);
    server.shutdown().await;
}

/// The server pings; a peer that answers stays, a peer that never answers is dropped.
#[tokio::test]
async fn pings_keep_live_peers_and_drop_dead_ones() {
    use switchyard_server::http::ws::SessionSettings;
    let mut settings = settings(Some(TOKEN));
    // A grace of two intervals: a live peer is never dropped because this busy
    // machine held the test's one thread for a while.
    settings.session = SessionSettings {
        ping_interval: Duration::from_millis(500),
        close_grace: Duration::from_secs(1),
    };
    let server = TestServer::start_with(config(), settings).await;
    let w = create(&server, "echo").await;
    let id = w.worker_id.clone();

    // A live client: tungstenite answers pings while we read.
    let mut live = connect(&server, id.as_str(), None).await;
    frame(&mut live).await;
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        while let Some(Ok(message)) = live.next().await {
            if let Message::Ping(_) = message {
                pings += 1;
                if pings == 4 {
                    return pings;
                }
            }
        }
        pings
    });
    assert_eq!(
        tokio::time::timeout(WAIT, reader).await.unwrap().unwrap(),
        4,
        "still connected after 4 pings"
    );

    // A dead peer: completes the handshake, then never reads nor answers.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    let handshake = format!(
        "GET /v1/workers/{id}/events/ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {TOKEN}\r\n\r\n",
        server.addr
    );
    raw.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    raw.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let subscribers = server.runtime.subscriber_count(&id).unwrap();
        if subscribers == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dead peer was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}

/// The runtime answers the backend's keepalive pings: a stream on an idle worker,
/// opened by the transport's client with an idle timeout far below the server's own
/// ping interval (20 s), stays open for several idle timeouts and then still carries
/// the worker's events.
#[tokio::test]
async fn the_transport_clients_pings_keep_an_idle_stream_open() {
    use switchyard_transport::{
        RemoteEndpoint, RuntimeEventsClient, SecretToken, UpstreamFrame, WsEventsClient,
    };
    let server = TestServer::start(config()).await;
    let w = create(&server, "echo").await;
    let endpoint = RemoteEndpoint::new(
        format!("http://{}", server.addr),
        SecretToken::new(TOKEN).unwrap(),
        WAIT,
        WAIT,
    );
    let client = WsEventsClient::new(endpoint)
        .unwrap()
        .with_idle_timeout(Duration::from_millis(1200));
    let mut stream = client.subscribe(&w.worker_id, None, false).await.unwrap();
    assert!(matches!(
        stream.next().await,
        Ok(UpstreamFrame::Event { .. })
    ));
    let quiet = tokio::time::timeout(Duration::from_millis(3600), stream.next()).await;
    assert!(quiet.is_err(), "the idle stream ended: {quiet:?}");
    input(&server, w.worker_id.as_str(), "after the quiet").await;
    let frame = tokio::time::timeout(WAIT, stream.next()).await.unwrap();
    assert!(
        matches!(frame, Ok(UpstreamFrame::Event { .. })),
        "{frame:?}"
    );
    server.shutdown().await;
}

/// A client that reads steadily but slower than a burst of output arrives is alive:
/// the server's writes to it stall and go on as it reads. It is never dropped as a
/// dead peer for the time the burst takes to drain, however many ping intervals that
/// is (before, the session could not ping while it was busy writing, then dropped
/// the client, without a close frame, at the first tick after the burst, for not
/// having answered pings it had never been sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_but_steady_reader_of_a_long_burst_is_not_dropped_as_dead() {
    use switchyard_server::http::ws::SessionSettings;
    let mut settings = settings(Some(TOKEN));
    settings.session = SessionSettings {
        ping_interval: Duration::from_millis(300),
        close_grace: Duration::from_secs(1),
    };
    let cfg = config().with_profile(
        "echo",
        Profile::new(ProfileSpec::Echo {
            delay: Duration::ZERO,
        }),
    );
    // Small socket buffers on both ends (a listener's are its connections'), so the
    // burst cannot all wait in the kernel: the server's writes stall and go on only
    // as the client reads, and a ping is never far behind the frames.
    let listener = tokio::net::TcpSocket::new_v4().unwrap();
    listener.set_send_buffer_size(16 * 1024).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let server = TestServer::start_on(listener.listen(64).unwrap(), cfg, settings).await;
    let w = create(&server, "echo").await;
    let id = w.worker_id.as_str();

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let mut request = server
        .ws_url(&format!("/v1/workers/{id}/events/ws"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    frame(&mut ws).await;

    // 40 frames of 60 KiB, read one every 60 ms: about 2.4 s, eight ping intervals.
    let text = "x".repeat(60 * 1024);
    for _ in 0..20 {
        input(&server, id, &text).await;
    }
    let started = std::time::Instant::now();
    let mut events = 0;
    while events < 40 {
        let message = match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(message)) => message,
            Some(Err(e)) => panic!("dropped after {events} events: {e}"),
            None => panic!("dropped after {events} events"),
        };
        match message {
            Message::Text(_) => {
                events += 1;
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected message after {events} events: {other:?}"),
        }
    }
    assert!(
        started.elapsed() > Duration::from_millis(900),
        "the burst drained in {:?}, within the dead-peer grace: nothing tested",
        started.elapsed()
    );
    // Still open and live: the next event arrives.
    input(&server, id, "after the burst").await;
    let f = frame(&mut ws).await;
    assert!(matches!(event(&f).1, WorkerEvent::Input { text, .. } if text == "after the burst"));
    server.shutdown().await;
}

/// A client that stops reading while its session has frames to write is closed as
/// too slow once the write has taken nothing for two ping intervals, even though
/// the worker goes quiet long before its queue would fill (before, the session
/// waited on the write for good, holding the subscription and what it queued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_though_its_queue_never_fills() {
    use switchyard_server::http::ws::SessionSettings;
    let mut settings = settings(Some(TOKEN));
    settings.session = SessionSettings {
        ping_interval: Duration::from_millis(300),
        close_grace: Duration::from_millis(500),
    };
    let cfg = config().with_profile(
        "echo",
        Profile::new(ProfileSpec::Echo {
            delay: Duration::ZERO,
        }),
    );
    // Small socket buffers on both ends: the frames cannot all wait in the kernel.
    let listener = tokio::net::TcpSocket::new_v4().unwrap();
    listener.set_send_buffer_size(16 * 1024).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let server = TestServer::start_on(listener.listen(64).unwrap(), cfg, settings).await;
    let w = create(&server, "echo").await;
    let id = w.worker_id.clone();

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let mut request = server
        .ws_url(&format!("/v1/workers/{id}/events/ws"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    frame(&mut ws).await;

    // 20 frames of 60 KiB, far below the subscriber queue (1024), then nothing.
    let text = "x".repeat(60 * 1024);
    for _ in 0..10 {
        input(&server, id.as_str(), &text).await;
    }
    // The client reads nothing more: its session ends on its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.runtime.subscriber_count(&id).unwrap() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a client that stopped reading still holds its session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(ws);
    server.shutdown().await;
}
