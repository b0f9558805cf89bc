//! Connections in-process: `max_connections` (the N+1th connection gets `503
//! overloaded` and is closed, over TLS after the handshake; closing one lets a new
//! one in; a WebSocket session counts; the backend's and the runtime's settings
//! reach the accept loop), and lingering close (a client that sends its whole body
//! before reading gets the early refusal, not a reset).

mod backend_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_common::*;
use http::StatusCode;
use hyper::body::Incoming;
use serde_json::json;
use switchyard_e2e::certs::{Ca, client_config, server_config, server_name};
use switchyard_e2e::client::TestTls;
use switchyard_e2e::raw_http::{RawAnswer, read_answer};
use switchyard_e2e::ws::{connect, next_json};
use switchyard_registry::{Role, WorkerScope};
use switchyard_server::auth::Clock;
use switchyard_server::commands::runtime as runtime_cmd;
use switchyard_server::http::response::json as json_response;
use switchyard_server::http::{
    Answer, ConnectionLimit, Handler, RequestContext, ServeOptions, ServerHandle, ServerTls,
    Shutdown, serve_with,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Answers every request `200 {"ok":true}`.
struct Hello;

impl Handler for Hello {
    async fn handle(&self, _request: http::Request<Incoming>, _ctx: RequestContext) -> Answer {
        json_response(StatusCode::OK, &json!({"ok": true})).into()
    }
}

async fn serve_hello(max: usize, tls: Option<ServerTls>) -> ServerHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_with(
        listener,
        Arc::new(Hello),
        Shutdown::new(),
        ServeOptions {
            tls,
            limit: ConnectionLimit::new(max),
            ..ServeOptions::default()
        },
    )
}

/// Sends `GET path` on `stream` and reads the answer; the connection stays open.
async fn get_on<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, path: &str) -> RawAnswer {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    read_answer(stream).await
}

/// A connection the server has accepted and answered once, kept open.
async fn held(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let answer = get_on(&mut stream, path).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    stream
}

/// Reads everything until the server closes.
async fn read_to_close<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .expect("the server closes in time");
    out
}

fn assert_overloaded(raw: &RawAnswer) {
    assert_eq!(raw.status, 503, "{raw:?}");
    assert_eq!(raw.body["error"]["code"], "overloaded", "{raw:?}");
    assert!(
        raw.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_connections")
    );
    assert_eq!(raw.body["error"]["retry_after_ms"], 1000, "{raw:?}");
    let head = raw.head.to_lowercase();
    assert!(
        head.contains("connection: close") && head.contains("retry-after: 1"),
        "{head}"
    );
}

/// A new connection past the limit: answered 503 overloaded and closed, even when
/// the client sends its request first.
async fn refused(addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    assert_overloaded(&RawAnswer::parse(&read_to_close(&mut stream).await));
}

/// Retries `GET path` on new connections until one is served (a closed connection's
/// place comes back once the server has seen it close).
async fn admitted_again(addr: SocketAddr, path: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let _ = stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await;
        let answer = RawAnswer::parse(&read_to_close(&mut stream).await);
        if answer.status == 200 {
            return;
        }
        assert_overloaded(&answer);
        assert!(Instant::now() < deadline, "no place came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn past_max_connections_new_ones_get_503_and_closing_one_lets_another_in() {
    let server = serve_hello(3, None).await;
    let addr = server.local_addr();
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(held(addr, "/").await);
    }
    assert_eq!(server.connections().open(), 3);
    refused(addr).await;
    refused(addr).await;
    assert_eq!(server.connections().refused().get(), 2);
    // The held ones are still served.
    for stream in &mut open {
        assert_eq!(get_on(stream, "/").await.status, 200);
    }
    drop(open.pop());
    admitted_again(addr, "/").await;
    assert!(server.connections().open() <= 3);
    server.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn over_tls_the_503_comes_after_the_handshake() {
    let ca = Ca::new("limit CA");
    let leaf = ca.server(&["localhost"]);
    let server = serve_hello(1, Some(ServerTls::new(server_config(&leaf, None)))).await;
    let addr = server.local_addr();
    let tls = TestTls {
        config: client_config(&ca, None),
        server_name: server_name("localhost"),
    };
    let mut first = tls.connect(addr).await.unwrap();
    assert_eq!(get_on(&mut first, "/").await.status, 200);
    let mut second = tls.connect(addr).await.expect("the handshake completes");
    let _ = second
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    assert_overloaded(&RawAnswer::parse(&read_to_close(&mut second).await));
    drop(second);
    drop(first);
    let deadline = Instant::now() + WAIT;
    loop {
        let mut stream = tls.connect(addr).await.unwrap();
        let answer = get_on(&mut stream, "/").await;
        if answer.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no place came back: {answer:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown(Duration::from_secs(5)).await;
}

/// Waits until the backend counts `count` open connections.
async fn open_becomes(
    backend: &switchyard_server::commands::serve::RunningBackend,
    count: usize,
    what: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while backend.server.connections().open() != count {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_websocket_session_holds_its_connection_on_the_backend() {
    let mut settings = backend_settings(true, Vec::new(), NO_PROBES);
    settings.max_connections = 2;
    let (backend, api) = start_backend(settings).await;
    let worker = create_echo(&api, "local", "ws").await;
    // The connection that created the worker is closed by now; the server may not
    // have seen its end yet.
    open_becomes(&backend, 0, "the create's connection stays open").await;
    let mut ws = connect(
        api.addr,
        &format!("/api/runtimes/local/workers/{worker}/events/ws"),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws).await["event"]["kind"], "snapshot");
    open_becomes(&backend, 1, "the session is not counted").await;
    let _other = held(api.addr, "/healthz").await;
    assert_eq!(
        backend.server.connections().open(),
        2,
        "the session is a connection"
    );
    refused(api.addr).await;
    drop(ws);
    admitted_again(api.addr, "/healthz").await;
    backend.shutdown().await;
}

#[tokio::test]
async fn the_runtime_takes_max_connections_from_its_settings() {
    let mut settings = switchyard_server::config::RuntimeSettings::new(runtime_config("limited"));
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.max_connections = 1;
    let runtime = runtime_cmd::start(settings).await.unwrap();
    let addr = runtime.server.local_addr();
    let held = held(addr, "/v1/health").await;
    refused(addr).await;
    drop(held);
    admitted_again(addr, "/v1/health").await;
    runtime.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Requests hyper cannot parse
// ---------------------------------------------------------------------------------

/// Sends `raw` on a new connection and reads to the close: every answer, in order.
async fn answers_to(addr: SocketAddr, raw: &[u8]) -> Vec<RawAnswer> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read all of an oversized head.
    let _ = stream.write_all(raw).await;
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut bytes)).await;
    assert!(
        read.is_ok(),
        "not closed in time after {:?}; got {:?}",
        String::from_utf8_lossy(&raw[..raw.len().min(40)]),
        String::from_utf8_lossy(&bytes)
    );
    let mut answers = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let head_end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("not an answer: {:?}", String::from_utf8_lossy(rest)))
            + 4;
        let length: usize = String::from_utf8_lossy(&rest[..head_end])
            .lines()
            .find_map(|l| l.strip_prefix("content-length: ")?.trim().parse().ok())
            .unwrap_or(0);
        answers.push(RawAnswer::parse(&rest[..head_end + length]));
        rest = &rest[head_end + length..];
    }
    answers
}

/// Requests hyper refuses before any handler runs, and the status each gets: every
/// one answers with the contract's error body (`invalid_request`), the browser
/// defences and a request id, on the backend's listener and on the runtime's (whose
/// writes are coalesced), and closes.
#[tokio::test]
async fn requests_hyper_cannot_parse_get_the_typed_error_body() {
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(2_000_000)
    );
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
        (0..150)
            .map(|i| format!("x-{i}: {i}\r\n"))
            .collect::<String>()
    );
    let long_target = format!(
        "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(70_000)
    );
    let cases: [(&[u8], u16); 6] = [
        (
            b"GET / HTTP/1.1\r\nHost: localhost\r\nno colon here\r\n\r\n",
            400,
        ),
        (b"G@T / HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
        (b"GET / HTTP/9.9\r\nHost: localhost\r\n\r\n", 400),
        (big_header.as_bytes(), 431),
        (many_headers.as_bytes(), 431),
        (long_target.as_bytes(), 414),
    ];
    let backend = serve_hello(100, None).await;
    let mut settings =
        switchyard_server::config::RuntimeSettings::new(runtime_config("parse-errors"));
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.max_connections = 100;
    let runtime = runtime_cmd::start(settings).await.unwrap();
    for (server, addr) in [
        ("backend", backend.local_addr()),
        ("runtime", runtime.server.local_addr()),
    ] {
        for (raw, status) in &cases {
            let request = String::from_utf8_lossy(&raw[..raw.len().min(40)]).into_owned();
            let answers = answers_to(addr, raw).await;
            assert_eq!(answers.len(), 1, "{server}, {request:?}: {answers:?}");
            let answer = &answers[0];
            assert_eq!(answer.status, *status, "{server}, {request:?}: {answer:?}");
            assert_eq!(
                answer.code(),
                "invalid_request",
                "{server}, {request:?}: {answer:?}"
            );
            assert!(!answer.body["error"]["message"].as_str().unwrap().is_empty());
            assert_eq!(
                answer.header("content-type").as_deref(),
                Some("application/json")
            );
            assert_eq!(
                answer.header("x-content-type-options").as_deref(),
                Some("nosniff")
            );
            assert_eq!(answer.header("connection").as_deref(), Some("close"));
            assert_eq!(answer.header("x-request-id").map(|id| id.len()), Some(16));
        }
        // After a good request on the same connection: its answer first, intact.
        let path = if server == "backend" {
            "/"
        } else {
            "/v1/health"
        };
        let pipelined = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\nGARBAGE\r\n\r\n");
        let answers = answers_to(addr, pipelined.as_bytes()).await;
        assert_eq!(answers.len(), 2, "{server}: {answers:?}");
        assert_eq!(answers[0].status, 200, "{server}: {answers:?}");
        assert_eq!(
            (answers[1].status, answers[1].code()),
            (400, "invalid_request"),
            "{server}"
        );
    }
    backend.shutdown(Duration::from_secs(1)).await;
    runtime.shutdown().await;
}

/// Panics on `/panic`, answers everything else `200`.
struct PanicsOnRequest;

impl Handler for PanicsOnRequest {
    async fn handle(&self, request: http::Request<Incoming>, _ctx: RequestContext) -> Answer {
        assert_ne!(request.uri().path(), "/panic", "a bug in a handler");
        json_response(StatusCode::OK, &json!({"ok": true})).into()
    }
}

/// A handler that panics (a bug in a policy or a runtime source a program added)
/// answers `500 internal` with the request id, and the connection and the server
/// go on serving.
#[tokio::test]
async fn a_panicking_handler_answers_500_internal_and_the_connection_goes_on() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = serve_with(
        listener,
        Arc::new(PanicsOnRequest),
        Shutdown::new(),
        ServeOptions::default(),
    );
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let answer = get_on(&mut stream, "/panic").await;
    assert_eq!(answer.status, 500, "{answer:?}");
    assert_eq!(answer.code(), "internal", "{answer:?}");
    let id = answer.header("x-request-id").expect("a request id");
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&id), "{message}");
    assert!(
        !message.contains("a bug in a handler"),
        "the panic stays in the log: {message}"
    );
    assert_eq!(
        answer.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        get_on(&mut stream, "/").await.status,
        200,
        "same connection"
    );
    server.shutdown(Duration::from_secs(1)).await;
}

// ---------------------------------------------------------------------------------
// Lingering close
// ---------------------------------------------------------------------------------

const OPERATOR: &str = "sy_lingering-operator-token";

/// Writes a request with a `size`-byte body completely, as urllib does, and only then
/// reads the answer. Panics when the server stops reading before the body is in
/// (the write stalls) or resets the connection.
async fn send_all_then_read(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    size: usize,
) -> RawAnswer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {size}\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    // Like urllib: the head, then the body. By the time the body goes out, the server
    // has answered and (without lingering) closed: the body then meets a reset.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let body = vec![b'x'; size];
    tokio::time::timeout(WAIT, stream.write_all(&body))
        .await
        .expect("the server reads (and drops) the whole body in time")
        .expect("no reset while sending the body");
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("the answer, not a reset");
    RawAnswer::parse(&answer)
}

#[tokio::test]
async fn early_refusals_reach_a_client_that_sends_its_whole_body_first() {
    let mut settings = backend_settings(true, Vec::new(), NO_PROBES);
    settings.auth = token_auth(
        &[TestToken {
            name: "otto",
            token: OPERATOR,
            role: Role::Operator,
            runtimes: &[],
            workers: WorkerScope::All,
        }],
        None,
        Duration::from_secs(3600),
        &Clock::system(),
    );
    let (backend, api) = start_backend(settings).await;
    let worker = create_echo(
        &switchyard_e2e::client::Api {
            addr: api.addr,
            token: Some(OPERATOR.into()),
        },
        "local",
        "linger",
    )
    .await;
    let input = format!("/api/runtimes/local/workers/{worker}/input");
    let auth = bearer(OPERATOR);
    let two_mib = 2 * 1024 * 1024;
    // (what, headers, status, code)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: [Case; 4] = [
        (
            "413 from Content-Length",
            vec![
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            413,
            "payload_too_large",
        ),
        (
            "401 without credentials",
            vec![("content-type", "application/json")],
            401,
            "unauthorized",
        ),
        (
            "415 for a body that is not JSON",
            vec![("authorization", &auth), ("content-type", "text/plain")],
            415,
            "unsupported_media_type",
        ),
        (
            "403 from another site",
            vec![
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("origin", "https://evil.example"),
            ],
            403,
            "cross_origin_request",
        ),
    ];
    for (what, headers, status, code) in &cases {
        for _ in 0..3 {
            let answer = send_all_then_read(api.addr, &input, headers, two_mib).await;
            assert_eq!(
                (answer.status, answer.body["error"]["code"].as_str()),
                (*status, Some(*code)),
                "{what}: {answer:?}"
            );
        }
    }
    // A small body within the limit is read and answered as usual.
    let answer = send_all_then_read(
        api.addr,
        &input,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        0,
    )
    .await;
    assert_eq!(
        answer.status, 400,
        "an empty body is not a JSON object: {answer:?}"
    );
    backend.shutdown().await;
}

/// A connection that stops in the middle of a request head is closed once the
/// header-read timeout passes, while one that keeps sending requests is served:
/// on a connection thread (where the timeout is one of the thread's coarse
/// deadlines, `switchyard_transport::deadline`) and on the caller's runtime
/// (a tokio timer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_head_is_closed_after_the_header_read_timeout() {
    let timeout = Duration::from_millis(1500);
    for cores in [1, 0] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = serve_with(
            listener,
            Arc::new(Hello),
            Shutdown::new(),
            ServeOptions {
                cores,
                header_read_timeout: Some(timeout),
                ..ServeOptions::default()
            },
        );
        let mut busy = held(server.local_addr(), "/").await;
        // Before the connection exists, so that the server cannot start its timer
        // before this clock does.
        let started = Instant::now();
        let mut stalled = TcpStream::connect(server.local_addr()).await.unwrap();
        stalled
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            .await
            .unwrap();
        let closed = tokio::spawn(async move {
            let mut rest = Vec::new();
            let _ = stalled.read_to_end(&mut rest).await;
            started.elapsed()
        });
        while !closed.is_finished() && started.elapsed() < WAIT {
            assert_eq!(get_on(&mut busy, "/").await.status, 200, "cores: {cores}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let closed_after = tokio::time::timeout(WAIT, closed)
            .await
            .unwrap_or_else(|_| panic!("cores {cores}: the stalled connection stayed open"))
            .unwrap();
        assert!(
            closed_after >= timeout,
            "cores {cores}: early, {closed_after:?}"
        );
        assert!(
            closed_after < timeout + Duration::from_secs(3),
            "cores {cores}: late, {closed_after:?}"
        );
        assert_eq!(get_on(&mut busy, "/").await.status, 200, "cores: {cores}");
        server.shutdown(Duration::from_secs(1)).await;
    }
}
