//! Terminal workers over HTTP, in process: `POST .../resize` and the interactive
//! event WebSocket (`?interactive=true`) on the Runtime API and on the backend API
//! (with an embedded runtime), with a real shell on a real pty.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchyard_e2e::client::{Api, TestResponse};
use switchyard_e2e::ws::{Ws, close_code, connect};
use switchyard_protocol::RuntimeId;
use switchyard_registry::{
    Action, EmbeddedSource, HubSettings, ObservationHub, Policy, PolicyDenied, PolicyRequest,
    RegisteredRuntime, RuntimeRegistry,
};
use switchyard_runtime::{Profile, ProfileSpec, PtySpec, Runtime, RuntimeConfig};
use switchyard_server::auth::Authenticator;
use switchyard_server::backend_api::{AllowedHosts, BackendApi, BackendApiSettings, BodyLimit};
use switchyard_server::http::auth::BearerTokens;
use switchyard_server::http::ws::SessionSettings;
use switchyard_server::http::{ServerHandle, Shutdown, serve};
use switchyard_server::runtime_api::{RuntimeApi, RuntimeApiSettings};
use switchyard_transport::SecretToken;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

const TOKEN: &str = "terminal-test-token-41c9";
const WAIT: Duration = Duration::from_secs(30);
/// A shell prompt that no command's output contains by accident.
const PROMPT: &str = "sw$ ";

fn config(id: &str) -> RuntimeConfig {
    let mut shell = PtySpec::new(["/bin/sh", "-i"]);
    shell.env.insert("PS1".into(), PROMPT.into());
    (shell.cols, shell.rows) = (100, 30);
    // Counts what is pasted into it, once all of it has come.
    let count = PtySpec::new([
        "/bin/sh",
        "-c",
        &format!("stty -echo; head -c {PASTE_BYTES} | wc -c"),
    ]);
    RuntimeConfig::new(RuntimeId::new(id).unwrap(), id)
        .with_profile("sh", Profile::new(ProfileSpec::Pty(shell)))
        .with_profile("count", Profile::new(ProfileSpec::Pty(count)))
}

/// The paste of [`interactive_paste`]: 300 frames of a 1000-byte line.
const PASTE_BYTES: usize = 300_000;

/// Where the tests talk to: the Runtime API or the backend API, and its paths.
struct Surface {
    api: Api,
    /// `/v1/workers` or `/api/runtimes/local/workers`.
    workers: String,
    runtime: Runtime,
    server: ServerHandle,
}

impl Surface {
    async fn runtime_api() -> Self {
        let runtime = Runtime::in_memory(config("rt")).await;
        let settings = RuntimeApiSettings {
            tokens: BearerTokens::new(SecretToken::new(TOKEN).into_iter().collect()),
            max_body_bytes: BodyLimit::new(1024 * 1024),
            session: SessionSettings::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = serve(
            listener,
            Arc::new(RuntimeApi::new(runtime.clone(), settings)),
            Shutdown::new(),
        );
        Self {
            api: Api {
                addr: server.local_addr(),
                token: Some(TOKEN.into()),
            },
            workers: "/v1/workers".into(),
            runtime,
            server,
        }
    }

    async fn backend_api(policy: Arc<dyn Policy>) -> Self {
        let runtime = Runtime::in_memory(config("local")).await;
        let registry = Arc::new(
            RuntimeRegistry::new(
                vec![
                    RegisteredRuntime::new(
                        RuntimeId::new("local").unwrap(),
                        "local",
                        Arc::new(EmbeddedSource::new(runtime.clone())),
                    )
                    .without_call_timeout(),
                ],
                policy,
            )
            .unwrap(),
        );
        let hub = ObservationHub::new(registry.clone(), HubSettings::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = BackendApi::new(
            registry,
            hub,
            Arc::new(Authenticator::open()),
            BackendApiSettings {
                max_body_bytes: BodyLimit::new(1024 * 1024),
                allowed_origins: Default::default(),
                allowed_hosts: AllowedHosts::new(&[], listener.local_addr().unwrap()),
                secure_cookies: false,
                session: SessionSettings::default(),
            },
        );
        let server = serve(listener, Arc::new(api), Shutdown::new());
        Self {
            api: Api {
                addr: server.local_addr(),
                token: None,
            },
            workers: "/api/runtimes/local/workers".into(),
            runtime,
            server,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.api.addr
    }

    async fn create(&self, profile: &str) -> String {
        let r = self
            .api
            .post(&self.workers, json!({"profile": profile}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json["worker_id"].as_str().unwrap().to_owned()
    }

    async fn post(&self, worker: &str, action: &str, body: Value) -> TestResponse {
        self.api
            .post(&format!("{}/{worker}/{action}", self.workers), body)
            .await
    }

    async fn events(
        &self,
        worker: &str,
        query: &str,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let auth = format!("Bearer {TOKEN}");
        let headers: Vec<(&str, &str)> = match self.api.token {
            Some(_) => vec![("authorization", auth.as_str())],
            None => vec![],
        };
        connect(
            self.addr(),
            &format!("{}/{worker}/events/ws{query}", self.workers),
            &headers,
        )
        .await
    }

    async fn interactive(&self, worker: &str) -> Term {
        let ws = self
            .events(worker, "?interactive=true")
            .await
            .expect("the interactive upgrade is accepted");
        Term::new(ws).await
    }

    async fn stop(self) {
        self.server.shutdown_signal().trigger();
        let _ = self.runtime.shutdown().await;
        self.server.shutdown(Duration::from_secs(5)).await;
    }
}

/// A client of an interactive event WebSocket: sends frames, collects frames.
struct Term {
    ws: Ws,
    snapshot: Value,
    output: String,
    mark: usize,
    frames: Vec<Value>,
}

impl Term {
    async fn new(mut ws: Ws) -> Self {
        let first = next_frame(&mut ws).await;
        assert_eq!(first["event"]["kind"], "snapshot", "{first}");
        // Output from before the connection is in the snapshot's transcript.
        let mut output = String::new();
        for item in first["event"]["transcript"].as_array().unwrap() {
            if item["kind"] == "output" {
                output.push_str(item["text"].as_str().unwrap());
            }
        }
        Self {
            ws,
            snapshot: first,
            output,
            mark: 0,
            frames: Vec::new(),
        }
    }

    async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .expect("sent");
    }

    async fn input(&mut self, text: &str) {
        self.send(json!({"type": "input", "text": text})).await;
    }

    async fn next(&mut self) -> Value {
        let frame = next_frame(&mut self.ws).await;
        if frame["event"]["kind"] == "output" {
            assert_eq!(frame["event"]["stream"], "terminal");
            self.output
                .push_str(frame["event"]["text"].as_str().unwrap());
        }
        self.frames.push(frame.clone());
        frame
    }

    /// Waits until the output after the mark holds `needle`; moves the mark past it.
    async fn expect(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(at) = self.output[self.mark..].find(needle) {
                self.mark += at + needle.len();
                return;
            }
            if tokio::time::timeout_at(deadline, self.next())
                .await
                .is_err()
            {
                panic!("no {needle:?} in {:?}", &self.output[self.mark..]);
            }
        }
    }

    /// Waits for a frame that matches.
    async fn expect_frame(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = self.next().await;
            if matches(&frame) {
                return frame;
            }
        }
    }
}

async fn next_frame(ws: &mut Ws) -> Value {
    // One deadline for the frame, however many pings come meanwhile.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a frame in time")
            .expect("the stream is open")
            .expect("no protocol error");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Reads until the server closes; the close code and reason.
async fn close_frame(ws: &mut Ws) -> (WsCloseCode, String) {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a close in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return (frame.code, frame.reason.to_string()),
            Some(Ok(Message::Close(None))) | Some(Err(_)) | None => panic!("closed without a code"),
            Some(Ok(_)) => continue,
        }
    }
}

fn assert_error(r: &TestResponse, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text());
    assert_eq!(r.code(), code, "{}", r.text());
}

// ---------------------------------------------------------------------------------
// Both surfaces
// ---------------------------------------------------------------------------------

async fn resize_route(surface: &Surface) {
    let sh = surface.create("sh").await;
    let r = surface
        .post(&sh, "resize", json!({"cols": 120, "rows": 40}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json, json!({"worker_id": sh, "cols": 120, "rows": 40}));
    // The snapshot a new viewer gets has the new size.
    let term = Term::new(surface.events(&sh, "").await.unwrap()).await;
    let terminal = &term.snapshot["event"]["terminal"];
    assert_eq!(
        (terminal["cols"].as_u64(), terminal["rows"].as_u64()),
        (Some(120), Some(40))
    );
    assert_eq!(terminal["alternate"], false);
    assert!(terminal["screen"].is_string() && terminal["cursor"]["row"].is_u64());

    for (body, status, code) in [
        (json!({"cols": 0, "rows": 40}), 400, "invalid_request"),
        (json!({"cols": 80, "rows": 1001}), 400, "invalid_request"),
        (json!({"cols": 80}), 400, "invalid_request"),
        (
            json!({"cols": 80, "rows": 24, "x": 1}),
            400,
            "invalid_request",
        ),
    ] {
        assert_error(&surface.post(&sh, "resize", body).await, status, code);
    }
    let echo = surface.create("echo").await;
    assert_error(
        &surface
            .post(&echo, "resize", json!({"cols": 80, "rows": 24}))
            .await,
        400,
        "not_a_terminal",
    );
    assert_error(
        &surface
            .post("w-nope", "resize", json!({"cols": 80, "rows": 24}))
            .await,
        404,
        "worker_not_found",
    );
    assert_eq!(surface.post(&sh, "stop", json!({})).await.status, 200);
    assert_error(
        &surface
            .post(&sh, "resize", json!({"cols": 80, "rows": 24}))
            .await,
        409,
        "worker_not_running",
    );
}

async fn interactive_input_and_resize(surface: &Surface) {
    let sh = surface.create("sh").await;
    let mut term = surface.interactive(&sh).await;
    term.expect(PROMPT).await;
    term.input("echo $((6*7))\r").await;
    term.expect("\r\n42\r\n").await;
    term.expect(PROMPT).await;
    // Input sent this way is recorded like any input.
    assert!(
        term.frames
            .iter()
            .any(|f| f["event"]["kind"] == "input" && f["event"]["text"] == "echo $((6*7))\r")
    );

    term.input("stty size\r").await;
    term.expect("\r\n30 100\r\n").await;
    term.expect(PROMPT).await;
    term.send(json!({"type": "resize", "cols": 90, "rows": 20}))
        .await;
    term.expect_frame(|f| f["event"]["kind"] == "resized").await;
    let resized = term.frames.last().unwrap().clone();
    assert_eq!(
        resized["event"],
        json!({"kind": "resized", "cols": 90, "rows": 20})
    );
    term.input("stty size\r").await;
    term.expect("\r\n20 90\r\n").await;

    // A bad size is refused with an error frame; the connection stays open.
    term.send(json!({"type": "resize", "cols": 0, "rows": 20}))
        .await;
    let refused = term.expect_frame(|f| f["type"] == "error").await;
    assert_eq!(refused["error"]["code"], "invalid_request");
    term.input("echo still-$((1+1))\r").await;
    term.expect("still-2").await;

    // Anything that is not an input or resize frame closes with 1008.
    term.send(json!({"type": "stop"})).await;
    let (code, reason) = close_frame(&mut term.ws).await;
    assert_eq!(code, WsCloseCode::Policy);
    assert_eq!(reason, "expected_input_or_resize_frame");
}

async fn interactive_refusals(surface: &Surface) {
    let sh = surface.create("sh").await;
    let mut term = surface.interactive(&sh).await;
    term.expect(PROMPT).await;
    assert_eq!(surface.post(&sh, "stop", json!({})).await.status, 200);
    term.expect_frame(|f| f["event"]["kind"] == "status" && f["event"]["status"] == "stopped")
        .await;
    // An input (or resize) for an ended worker gets an error frame; the connection
    // stays open for the next one.
    for frame in [
        json!({"type": "input", "text": "ls\r"}),
        json!({"type": "resize", "cols": 80, "rows": 24}),
    ] {
        term.send(frame).await;
        let refused = term.expect_frame(|f| f["type"] == "error").await;
        assert_eq!(refused["error"]["code"], "worker_not_running", "{refused}");
        assert_eq!(refused["error"]["worker_id"], sh.as_str());
    }
    // A size whose numbers do not fit a terminal's at all is refused as any size
    // out of range is: an error frame, and the connection stays.
    for (cols, rows) in [
        (json!(65536), json!(24)),
        (json!(-1), json!(24)),
        (json!(80), json!(4294967376u64)),
    ] {
        term.send(json!({"type": "resize", "cols": cols, "rows": rows}))
            .await;
        let refused = term.expect_frame(|f| f["type"] == "error").await;
        assert_eq!(refused["error"]["code"], "invalid_request", "{refused}");
    }
    // An input frame larger than the session reads (the body limit, 1 MiB here)
    // closes with 1009, not as a broken frame.
    {
        let mut big = surface.interactive(&sh).await;
        let text = "x".repeat(2 * 1024 * 1024);
        big.input(&text).await;
        let (code, reason) = close_frame(&mut big.ws).await;
        assert_eq!(u16::from(code), 1009, "{reason}");
        assert_eq!(reason, "frame_too_big");
    }
    // Malformed: not JSON, a binary frame.
    for bad in [Message::text("ls\r"), Message::binary(vec![1u8, 2, 3])] {
        let mut term = surface.interactive(&sh).await;
        term.ws.send(bad).await.unwrap();
        let (code, _) = close_frame(&mut term.ws).await;
        assert_eq!(code, WsCloseCode::Policy);
    }
    // Without interactive=true, any data frame still closes with 1008.
    let mut plain = surface.events(&sh, "").await.unwrap();
    next_frame(&mut plain).await;
    plain
        .send(Message::text(
            json!({"type": "input", "text": "x"}).to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(close_code(&mut plain).await, Some(1008));
    // A bad flag is refused before the upgrade.
    let refused = surface.events(&sh, "?interactive=maybe").await.unwrap_err();
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 400)
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

/// A paste far bigger than the worker's input queue and the session's window of
/// commands, sent without waiting: every byte arrives, in order, and nothing is
/// refused (the session slows the client down instead).
async fn interactive_paste(surface: &Surface) {
    let count = surface.create("count").await;
    let mut term = surface.interactive(&count).await;
    let line = format!("{}\n", "x".repeat(999));
    for _ in 0..PASTE_BYTES / line.len() {
        term.input(&line).await;
    }
    term.expect(&PASTE_BYTES.to_string()).await;
    let refused: Vec<&Value> = term
        .frames
        .iter()
        .filter(|f| f["type"] == "error")
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
}

#[tokio::test]
async fn runtime_api_interactive_paste() {
    let surface = Surface::runtime_api().await;
    interactive_paste(&surface).await;
    surface.stop().await;
}

#[tokio::test]
async fn backend_api_interactive_paste() {
    let surface = Surface::backend_api(Arc::new(switchyard_registry::AllowAll)).await;
    interactive_paste(&surface).await;
    surface.stop().await;
}

#[tokio::test]
async fn runtime_api_resize_route() {
    let surface = Surface::runtime_api().await;
    resize_route(&surface).await;
    surface.stop().await;
}

#[tokio::test]
async fn backend_api_resize_route() {
    let surface = Surface::backend_api(Arc::new(switchyard_registry::AllowAll)).await;
    resize_route(&surface).await;
    surface.stop().await;
}

#[tokio::test]
async fn runtime_api_interactive_websocket() {
    let surface = Surface::runtime_api().await;
    interactive_input_and_resize(&surface).await;
    interactive_refusals(&surface).await;
    surface.stop().await;
}

#[tokio::test]
async fn backend_api_interactive_websocket() {
    let surface = Surface::backend_api(Arc::new(switchyard_registry::AllowAll)).await;
    interactive_input_and_resize(&surface).await;
    interactive_refusals(&surface).await;
    surface.stop().await;
}

/// Refuses input and resize; records what it is asked.
#[derive(Default)]
struct ReadOnly {
    asked: std::sync::Mutex<Vec<String>>,
}

impl Policy for ReadOnly {
    fn authorize(&self, request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("{:?}", request.action));
        match request.action {
            Action::Input | Action::Resize => {
                Err(PolicyDenied("this caller may only watch".into()))
            }
            _ => Ok(()),
        }
    }

    fn filters_events(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn backend_interactive_upgrade_needs_the_input_permission() {
    let policy = Arc::new(ReadOnly::default());
    let surface = Surface::backend_api(policy.clone()).await;
    let sh = surface.create("sh").await;
    policy.asked.lock().unwrap().clear();
    let refused = surface
        .events(&sh, "?interactive=true")
        .await
        .expect_err("refused before the upgrade");
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 403);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "forbidden");
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    assert_eq!(*policy.asked.lock().unwrap(), ["Input"]);
    // Watching is allowed; so is the REST resize refused the same way.
    let term = Term::new(surface.events(&sh, "").await.unwrap()).await;
    assert_eq!(term.snapshot["event"]["kind"], "snapshot");
    assert_error(
        &surface
            .post(&sh, "resize", json!({"cols": 80, "rows": 24}))
            .await,
        403,
        "forbidden",
    );
    surface.stop().await;
}
