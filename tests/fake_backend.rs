//! A scripted stand-in for a backend, for client tests that need the peer to do
//! things on cue that a real backend does only by accident or not at all: drop every
//! stream at once, refuse reconnections or a cursor, remove the worker, answer
//! `401`, with a terminal worker (`snapshot` with a screen, the interactive
//! WebSocket's `input` and `resize` frames) whose every client frame is recorded.
//!
//! It serves one worker, `rt/w1`, over the backend API's paths:
//! `GET /api/runtimes/rt/workers/w1` (its detail), `GET /api/workers` (a list with
//! it, saying `rt` has more than listed), `POST .../w1/input` (always `429
//! worker_busy`: its input queue is full), and its event WebSocket. The WebSocket speaks the contract: no cursor → the
//! snapshot, then live events; `?cursor=cN` → every event after position N, then
//! live; with `?interactive=true` it takes `input` frames (echoed back as `terminal`
//! output, as a terminal in echo mode would) and `resize` frames (answered with a
//! `resized` event and the output `[size COLSxROWS]`). Every request's path, query
//! and `Authorization` header is recorded, as is every client frame.
//!
//! Tests drive it: [`FakeBackend::output`] appends output, [`FakeBackend::cut_all`]
//! drops every open WebSocket (no close frame, as a network loss), and
//! [`FakeBackend::end_worker`] ends the worker with an exit code.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The worker's path under `/api`.
const WORKER_PATH: &str = "/api/runtimes/rt/workers/w1";

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// The path.
    pub path: String,
    /// The query, if any.
    pub query: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

impl SeenRequest {
    /// The value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        form_pairs(query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%2B", "+").replace("%3D", "=")))
        .collect()
}

#[derive(Debug)]
struct State {
    /// Events after the snapshot, with positions from 1.
    events: Vec<Value>,
    /// Transcript sequences handed out so far.
    sequence: u64,
    /// The detail's status and exit code.
    status: &'static str,
    exit_code: Option<i32>,
    /// The screen the snapshot paints.
    screen: String,
    /// Requests seen.
    requests: Vec<SeenRequest>,
    /// Client frames received (JSON), in order.
    frames: Vec<Value>,
    /// The token every request must carry, if any.
    token: Option<String>,
    /// Open WebSocket sessions.
    sessions: Vec<AbortHandle>,
    /// Whether new WebSocket upgrades are refused with 503 (a backend that is down).
    refusing: bool,
    /// Whether the worker was removed (streams close with 4404, routes answer 404).
    removed: bool,
}

impl State {
    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    fn detail(&self) -> Value {
        json!({"worker_id":"w1","runtime_id":"rt","profile":"bash","label":null,
            "status":self.status,"created_at":"2026-01-01T00:00:00Z",
            "updated_at":"2026-01-01T00:00:00Z",
            "exit": self.exit_code.map(|code| json!({"code":code,"signal":null})),
            "input_count":0,"output_bytes":0})
    }
}

/// The fake backend, listening on `127.0.0.1:<free port>` until dropped.
#[derive(Debug, Clone)]
pub struct FakeBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    _acceptor: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl FakeBackend {
    /// Starts it with a running terminal worker showing `screen`; requests must carry
    /// `Bearer <token>` when `token` is given (else `401 unauthorized`).
    pub async fn start(screen: &str, token: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(State {
            events: Vec::new(),
            sequence: 1,
            status: "running",
            exit_code: None,
            screen: screen.to_owned(),
            requests: Vec::new(),
            frames: Vec::new(),
            token: token.map(str::to_owned),
            sessions: Vec::new(),
            refusing: false,
            removed: false,
        }));
        let changed = Arc::new(Notify::new());
        let fake = Self {
            addr,
            state,
            changed,
            _acceptor: Arc::new(AbortOnDrop(tokio::spawn(async {}).abort_handle())),
        };
        let serving = fake.clone();
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let fake = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let fake = fake.clone();
                        async move { Ok::<_, Infallible>(fake.handle(request)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Self {
            _acceptor: Arc::new(AbortOnDrop(acceptor.abort_handle())),
            ..fake
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state().requests.clone()
    }

    /// The event WebSocket requests seen so far.
    pub fn event_requests(&self) -> Vec<SeenRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/events/ws"))
            .collect()
    }

    /// Every client frame received so far.
    pub fn frames(&self) -> Vec<Value> {
        self.state().frames.clone()
    }

    /// The text of every `input` frame received so far, joined.
    pub fn typed(&self) -> String {
        self.frames()
            .iter()
            .filter(|f| f["type"] == "input")
            .filter_map(|f| f["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// The `resize` frames received so far, as (cols, rows).
    pub fn resizes(&self) -> Vec<(u64, u64)> {
        self.frames()
            .iter()
            .filter(|f| f["type"] == "resize")
            .map(|f| {
                (
                    f["cols"].as_u64().unwrap_or(0),
                    f["rows"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    /// The cursor of the last event, `cN`.
    pub fn last_cursor(&self) -> String {
        format!("c{}", self.state().events.len())
    }

    /// Appends a terminal output event.
    pub fn output(&self, text: &str) {
        {
            let mut state = self.state();
            let sequence = state.next_sequence();
            state
                .events
                .push(json!({"kind":"output","sequence":sequence,"stream":"terminal","text":text}));
        }
        self.changed.notify_waiters();
    }

    /// Ends the worker: an `exited` event with `code`, then the `status` event.
    pub fn end_worker(&self, code: i32) {
        {
            let mut state = self.state();
            state.next_sequence();
            state
                .events
                .push(json!({"kind":"exited","code":code,"signal":null}));
            state
                .events
                .push(json!({"kind":"status","status":"exited","previous":"running"}));
            state.status = "exited";
            state.exit_code = Some(code);
        }
        self.changed.notify_waiters();
    }

    /// Drops every open WebSocket without a close frame; returns how many.
    pub fn cut_all(&self) -> usize {
        let sessions: Vec<AbortHandle> = self.state().sessions.drain(..).collect();
        let live = sessions.iter().filter(|s| !s.is_finished()).count();
        for session in sessions {
            session.abort();
        }
        live
    }

    /// Removes the worker: open streams close with 4404, its routes answer `404
    /// worker_not_found`.
    pub fn remove_worker(&self) {
        self.state().removed = true;
        self.changed.notify_waiters();
    }

    /// While `refusing`, event WebSocket upgrades are answered `503`, as a backend
    /// that is restarting might.
    pub fn set_refusing(&self, refusing: bool) {
        self.state().refusing = refusing;
    }

    fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let seen = SeenRequest {
            path: path.clone(),
            query: request.uri().query().map(str::to_owned),
            authorization: authorization.clone(),
        };
        let (token, refusing, removed) = {
            let mut state = self.state();
            state.requests.push(seen.clone());
            (state.token.clone(), state.refusing, state.removed)
        };
        if let Some(token) = token
            && authorization.as_deref() != Some(format!("Bearer {token}").as_str())
        {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong token",
            );
        }
        if removed && path.starts_with(WORKER_PATH) {
            return error(StatusCode::NOT_FOUND, "worker_not_found", "no worker w1");
        }
        match path.as_str() {
            // Its one runtime says it has more than it listed (`truncated`).
            "/api/workers" => json_response(
                StatusCode::OK,
                &json!({"workers":[self.state().detail()],"unavailable":[],"truncated":["rt"]}),
            ),
            WORKER_PATH => json_response(StatusCode::OK, &self.state().detail()),
            p if p == format!("{WORKER_PATH}/input") => json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({"error":{"code":"worker_busy",
                    "message":"worker w1 has a full input queue; retry shortly",
                    "retry_after_ms":1000}}),
            ),
            p if p == format!("{WORKER_PATH}/events/ws") => {
                if refusing {
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "overloaded",
                        "the fake is refusing",
                    );
                }
                self.upgrade(request, &seen)
            }
            _ => error(StatusCode::NOT_FOUND, "route_not_found", "no such route"),
        }
    }

    fn upgrade(&self, request: Request<Incoming>, seen: &SeenRequest) -> Response<Full<Bytes>> {
        let Some(key) = request.headers().get("sec-websocket-key").cloned() else {
            return error(StatusCode::BAD_REQUEST, "invalid_request", "not an upgrade");
        };
        let start = match seen.param("cursor") {
            None => None,
            Some(cursor) => match cursor
                .strip_prefix('c')
                .and_then(|n| n.parse::<usize>().ok())
            {
                Some(position) if position <= self.state().events.len() => Some(position),
                _ => {
                    return error(StatusCode::BAD_REQUEST, "invalid_cursor", "bad cursor");
                }
            },
        };
        let interactive = seen.param("interactive").as_deref() == Some("true");
        let fake = self.clone();
        let session = tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(request).await else {
                return;
            };
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            fake.session(ws, start, interactive).await;
        });
        self.state().sessions.push(session.abort_handle());
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
            .body(Full::new(Bytes::new()))
            .expect("a response")
    }

    async fn session(
        &self,
        ws: WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>,
        start: Option<usize>,
        interactive: bool,
    ) {
        let (mut sink, mut stream) = ws.split();
        let mut outgoing: VecDeque<String> = VecDeque::new();
        let mut sent = match start {
            Some(position) => position,
            None => {
                let state = self.state();
                let snapshot = json!({"kind":"snapshot","worker":state.detail(),
                    "transcript":[{"sequence":1,"at":"2026-01-01T00:00:00Z","kind":"system",
                        "note":"started","text":"started"}],
                    "terminal":{"cols":80,"rows":24,"screen":state.screen,
                        "cursor":{"row":0,"col":0},"alternate":false}});
                let position = state.events.len();
                outgoing.push_back(frame(position, snapshot));
                position
            }
        };
        loop {
            let changed = self.changed.notified();
            if self.state().removed {
                let close = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 4404.into(),
                    reason: "worker_not_found".into(),
                };
                let _ = sink.send(Message::Close(Some(close))).await;
                return;
            }
            {
                let state = self.state();
                while sent < state.events.len() {
                    outgoing.push_back(frame(sent + 1, state.events[sent].clone()));
                    sent += 1;
                }
            }
            while let Some(text) = outgoing.pop_front() {
                if sink.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = changed => {}
                message = stream.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if !interactive {
                            let _ = sink.close().await;
                            return;
                        }
                        self.client_frame(text.as_str());
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
                _ = tokio::time::sleep(Duration::from_secs(10)) => {
                    if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn client_frame(&self, text: &str) {
        let frame: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        self.state().frames.push(frame.clone());
        match frame["type"].as_str() {
            Some("input") => {
                let text = frame["text"].as_str().unwrap_or("").to_owned();
                // A terminal in echo mode shows printable keystrokes.
                let echo: String = text.chars().filter(|c| !c.is_control()).collect();
                if !echo.is_empty() {
                    self.output(&echo);
                }
            }
            Some("resize") => {
                let (cols, rows) = (frame["cols"].clone(), frame["rows"].clone());
                self.state()
                    .events
                    .push(json!({"kind":"resized","cols":cols,"rows":rows}));
                self.output(&format!("[size {cols}x{rows}]"));
            }
            _ => {}
        }
    }
}

fn frame(position: usize, event: Value) -> String {
    json!({"type":"event","cursor":format!("c{position}"),"runtime_id":"rt",
        "worker_id":"w1","event":event})
    .to_string()
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a response")
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({"error":{"code":code,"message":message}}))
}
