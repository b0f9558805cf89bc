//! The client against peers that misbehave: the fake backend dropping streams,
//! refusing reconnections, refusing a cursor, removing the worker; and raw sockets
//! that answer garbage or nothing at all.

use std::net::SocketAddr;
use std::time::Duration;

use switchyard_client::{
    BackendClient, BackendUrl, ClientError, ClientFrame, Followed, Follower, Incoming, StreamEnd,
    Timeouts, UnreachableKind, WorkerRef,
};
use switchyard_e2e::fake_backend::FakeBackend;
use switchyard_protocol::{ErrorCode, OutputStream, WorkerEvent};
use tokio::net::TcpListener;

fn client(url: &str, timeouts: Timeouts) -> BackendClient {
    BackendClient::new(BackendUrl::parse(url).unwrap(), None, timeouts).unwrap()
}

fn worker() -> WorkerRef {
    "rt/w1".parse().unwrap()
}

async fn next(follower: &mut Follower) -> Followed {
    tokio::time::timeout(Duration::from_secs(10), follower.next())
        .await
        .expect("something within 10 s")
        .expect("no error")
}

/// The next frame's cursor and, for output, its text.
async fn next_output(follower: &mut Follower) -> (String, String) {
    match next(follower).await {
        Followed::Frame(Incoming::Event { cursor, event }) => match *event {
            WorkerEvent::Output {
                stream: OutputStream::Terminal,
                text,
                ..
            } => (cursor, text),
            other => panic!("expected terminal output, got {other:?}"),
        },
        other => panic!("expected output, got {other:?}"),
    }
}

async fn snapshot(follower: &mut Follower) -> String {
    match next(follower).await {
        Followed::Frame(Incoming::Event { cursor, event, .. }) => {
            assert!(matches!(*event, WorkerEvent::Snapshot { .. }), "{event:?}");
            cursor
        }
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dropped_stream_is_announced_then_resumed_after_the_last_cursor() {
    let fake = FakeBackend::start("", None).await;
    let mut follower = Follower::new(client(&fake.url(), Timeouts::default()), worker(), false);
    assert_eq!(snapshot(&mut follower).await, "c0");
    fake.output("a");
    assert_eq!(next_output(&mut follower).await, ("c1".into(), "a".into()));
    assert_eq!(follower.cursor(), Some("c1"));

    assert_eq!(fake.cut_all(), 1);
    assert!(matches!(
        next(&mut follower).await,
        Followed::Disconnected(StreamEnd::Lost(_))
    ));
    fake.output("b");
    assert_eq!(next(&mut follower).await, Followed::Reconnected);
    assert_eq!(next_output(&mut follower).await, ("c2".into(), "b".into()));
    let cursors: Vec<Option<String>> = fake
        .event_requests()
        .iter()
        .map(|r| r.param("cursor"))
        .collect();
    assert_eq!(cursors, [None, Some("c1".into())]);
}

#[tokio::test]
async fn reconnections_retry_what_may_pass_but_a_first_connection_does_not() {
    let fake = FakeBackend::start("", None).await;
    fake.set_refusing(true);
    let mut refused = Follower::new(client(&fake.url(), Timeouts::default()), worker(), false);
    let error = refused.next().await.unwrap_err();
    assert_eq!(error.code(), "overloaded");

    fake.set_refusing(false);
    let mut follower = Follower::new(client(&fake.url(), Timeouts::default()), worker(), false);
    snapshot(&mut follower).await;
    fake.set_refusing(true);
    fake.cut_all();
    assert!(matches!(
        next(&mut follower).await,
        Followed::Disconnected(_)
    ));
    let reopen = fake.clone();
    tokio::spawn(async move {
        // Open again once some attempts were refused (however slowly they come).
        while reopen.event_requests().len() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        reopen.set_refusing(false);
    });
    assert_eq!(next(&mut follower).await, Followed::Reconnected);
    assert!(
        fake.event_requests().len() >= 5,
        "refused attempts were retried, then one got through: {:?}",
        fake.event_requests()
    );
}

#[tokio::test]
async fn a_refused_cursor_starts_over_from_a_snapshot() {
    let fake = FakeBackend::start("", None).await;
    let mut follower = Follower::new(client(&fake.url(), Timeouts::default()), worker(), false)
        .resume_after("c999");
    snapshot(&mut follower).await;
    let cursors: Vec<Option<String>> = fake
        .event_requests()
        .iter()
        .map(|r| r.param("cursor"))
        .collect();
    assert_eq!(cursors, [Some("c999".into()), None]);
}

#[tokio::test]
async fn a_removed_worker_ends_the_follow() {
    let fake = FakeBackend::start("", None).await;
    let mut follower = Follower::new(client(&fake.url(), Timeouts::default()), worker(), false);
    snapshot(&mut follower).await;
    fake.remove_worker();
    let error = tokio::time::timeout(Duration::from_secs(10), follower.next())
        .await
        .unwrap()
        .unwrap_err();
    assert!(error.is(ErrorCode::WorkerNotFound), "{error:?}");
    assert!(
        error.to_string().contains("rt/w1 is gone: deleted"),
        "{error}"
    );
}

#[tokio::test]
async fn interactive_frames_reach_the_backend() {
    let fake = FakeBackend::start("", None).await;
    let mut follower = Follower::new(client(&fake.url(), Timeouts::default()), worker(), true);
    let resize = ClientFrame::Resize { cols: 80, rows: 24 };
    assert!(follower.send(&resize).await.is_err(), "not connected yet");
    follower.connect_now().await.unwrap();
    follower.send(&resize).await.unwrap();
    follower
        .send(&ClientFrame::Input {
            text: "ls\r".into(),
        })
        .await
        .unwrap();
    snapshot(&mut follower).await;
    // The fake answers a resize with a `resized` event and output; input with its
    // echo.
    match next(&mut follower).await {
        Followed::Frame(Incoming::Event { event, .. }) => {
            assert_eq!(*event, WorkerEvent::Resized { cols: 80, rows: 24 })
        }
        other => panic!("expected the resized event, got {other:?}"),
    }
    assert_eq!(next_output(&mut follower).await.1, "[size 80x24]");
    assert_eq!(next_output(&mut follower).await.1, "ls");
    assert_eq!(fake.resizes(), [(80, 24)]);
    assert_eq!(fake.typed(), "ls\r");
    assert_eq!(
        fake.event_requests()[0].param("interactive").as_deref(),
        Some("true")
    );
}

/// A TCP server that answers every connection with `answer` (or nothing, when
/// `None`, holding the connection open).
async fn canned(answer: Option<&'static [u8]>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    switchyard_e2e::raw_http::serve_canned(listener, answer);
    addr
}

#[tokio::test]
async fn lying_silent_and_absent_peers_are_typed_errors() {
    let mut quick = Timeouts::default();
    quick.connect = Duration::from_secs(2);
    quick.request = Duration::from_millis(300);
    quick.stream_idle = Duration::from_secs(2);
    let refused = switchyard_e2e::ports::refused_addr();
    let closed = refused.addr;
    let garbage = canned(Some(b"hello there\r\n\r\n")).await;
    let silent = canned(None).await;
    let html = canned(Some(
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 6\r\nconnection: close\r\n\r\n<html>",
    ))
    .await;
    let not_json = canned(Some(
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
    ))
    .await;
    let table: [(SocketAddr, &str, &str); 5] = [
        (closed, "backend_unreachable", "connection refused"),
        (garbage, "backend_protocol_error", "not valid HTTP/1.1"),
        (silent, "backend_timeout", "300 ms"),
        (
            html,
            "backend_protocol_error",
            "status 502 without an error body",
        ),
        (not_json, "backend_protocol_error", "does not decode"),
    ];
    for (addr, code, fragment) in table {
        let client = client(&format!("http://{addr}"), quick);
        let error = client.runtimes().await.unwrap_err();
        assert_eq!(error.code(), code, "{addr}: {error:?}");
        assert!(error.to_string().contains(fragment), "{error}");
        let error = client.events(&worker(), None, false).await.unwrap_err();
        assert_eq!(error.code(), code, "events {addr}: {error:?}");
    }
    assert_eq!(
        client(&format!("http://{closed}"), quick)
            .runtimes()
            .await
            .unwrap_err(),
        ClientError::Unreachable {
            kind: UnreachableKind::Refused
        }
    );
}
