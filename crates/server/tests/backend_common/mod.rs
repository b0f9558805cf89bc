//! Shared harness of the backend API tests: real Runtime API servers and backends
//! started in-process on loopback, misbehaving peers (silent, canned answers), and
//! helpers to compare and poll JSON answers.
#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::{Value, json};
use switchyard_protocol::RuntimeId;
use switchyard_runtime::RuntimeConfig;
use switchyard_server::commands::runtime::{self as runtime_cmd, RunningRuntime};
use switchyard_server::commands::serve::{self as serve_cmd, RunningBackend};
use switchyard_server::config::{
    BackendSettings, EmbeddedSettings, RemoteSettings, ServerTlsSettings,
};
use switchyard_transport::SecretToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub use switchyard_e2e::client::{Api, TestResponse, request};

/// Upper bound of any wait that is not itself under test.
pub const WAIT: Duration = Duration::from_secs(30);

/// A health interval long enough that no probe runs during a test.
pub const NO_PROBES: Duration = Duration::from_secs(3600);

pub fn rid(id: &str) -> RuntimeId {
    RuntimeId::new(id).unwrap()
}

/// A runtime configuration with only the `echo` profile.
pub fn runtime_config(id: &str) -> RuntimeConfig {
    RuntimeConfig::new(rid(id), format!("Runtime {id}"))
}

/// Starts a Runtime API server on `listen`, retrying for a while when the address is
/// still busy (a restart on the same port).
pub async fn start_runtime_at(listen: SocketAddr, id: &str, token: Option<&str>) -> RunningRuntime {
    start_runtime_with(listen, id, token, None).await
}

/// Like [`start_runtime_at`], serving HTTPS with `tls` when given.
pub async fn start_runtime_with(
    listen: SocketAddr,
    id: &str,
    token: Option<&str>,
    tls: Option<ServerTlsSettings>,
) -> RunningRuntime {
    start_runtime_from(listen, runtime_config(id), token, tls).await
}

/// Starts a Runtime API server for `config` on `listen` (retrying while the address
/// is busy), serving HTTPS with `tls` when given.
pub async fn start_runtime_from(
    listen: SocketAddr,
    config: RuntimeConfig,
    token: Option<&str>,
    tls: Option<ServerTlsSettings>,
) -> RunningRuntime {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut settings = switchyard_server::config::RuntimeSettings::new(config.clone());
        settings.listen = listen;
        settings.tokens = token.and_then(SecretToken::new).into_iter().collect();
        settings.tls = tls.clone();
        match runtime_cmd::start(settings).await {
            Ok(running) => return running,
            Err(error) if Instant::now() < deadline => {
                eprintln!("runtime start on {listen} failed, retrying: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("could not start a runtime on {listen}: {error}"),
        }
    }
}

/// Starts a Runtime API server on a free loopback port.
pub async fn start_runtime(id: &str, token: Option<&str>) -> RunningRuntime {
    start_runtime_at("127.0.0.1:0".parse().unwrap(), id, token).await
}

/// A remote runtime entry for the backend.
pub fn remote(id: &str, base_url: &str, token: &str, request_timeout: Duration) -> RemoteSettings {
    let mut remote = RemoteSettings::new(rid(id), base_url, SecretToken::new(token).unwrap());
    remote.display_name = format!("Remote {id}");
    remote.request_timeout = request_timeout;
    remote
}

/// Backend settings on a free loopback port, with an embedded runtime `local` when
/// `embedded`, the given remotes, and the given health interval.
pub fn backend_settings(
    embedded: bool,
    remotes: Vec<RemoteSettings>,
    health_interval: Duration,
) -> BackendSettings {
    let mut settings = BackendSettings::defaults();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.health_interval = health_interval;
    settings.remotes = remotes;
    if !embedded {
        settings.embedded = None;
    } else {
        settings.embedded = Some(EmbeddedSettings::new(runtime_config("local")));
    }
    settings
}

/// Starts a backend and a client for it.
pub async fn start_backend(settings: BackendSettings) -> (RunningBackend, Api) {
    let running = serve_cmd::start(settings)
        .await
        .unwrap_or_else(|e| panic!("backend did not start: {e}"));
    let api = Api {
        addr: running.server.local_addr(),
        token: None,
    };
    (running, api)
}

/// `http://ADDR`.
pub fn base_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Asserts the status and, for an error, the contract's error body with `code`.
pub fn assert_error(r: &TestResponse, status: u16, code: &str) {
    assert_eq!(
        r.status.as_u16(),
        status,
        "expected {status} {code}, got {} {}",
        r.status,
        r.text()
    );
    assert_eq!(r.code(), code, "wrong code in {}", r.text());
    let error = r.json["error"]
        .as_object()
        .unwrap_or_else(|| panic!("no error object in {}", r.text()));
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message in {}",
        r.text()
    );
    let content_type = r
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "error content-type {content_type:?}"
    );
}

/// Asserts a success status.
/// `GET /api/workers` answered with exactly one runtime under `unavailable`:
/// `runtime`, failing with error `code` (and a message).
pub fn assert_only_unavailable(r: &TestResponse, runtime: &str, code: &str) {
    let unavailable = r.json["unavailable"].as_array().unwrap();
    assert_eq!(unavailable.len(), 1, "{}", r.text());
    assert_eq!(unavailable[0]["runtime_id"], runtime);
    assert_eq!(unavailable[0]["error"]["code"], code);
    assert!(unavailable[0]["error"]["message"].is_string());
}

pub fn assert_status(r: &TestResponse, status: u16) {
    assert_eq!(
        r.status.as_u16(),
        status,
        "expected {status}, got {} {}",
        r.status,
        r.text()
    );
}

/// Polls `GET path` until `pred` holds on the JSON answer, or panics after [`WAIT`].
pub async fn poll_until(api: &Api, path: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = api.get(path).await;
        if r.status == StatusCode::OK && pred(&r.json) {
            return r.json;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} on {path}; last answer {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The entry of `runtime_id` in a `GET /api/runtimes` answer.
pub fn runtime_entry<'a>(list: &'a Value, runtime_id: &str) -> &'a Value {
    list["runtimes"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["runtime_id"] == runtime_id))
        .unwrap_or_else(|| panic!("no runtime {runtime_id} in {list}"))
}

/// Polls `GET /api/runtimes` (the cached views, no refresh) until `runtime_id` is in
/// `state`.
pub async fn wait_cached_state(api: &Api, runtime_id: &str, state: &str) -> Value {
    wait_cached_view(api, runtime_id, state, |view| view["state"] == state).await
}

/// Polls `GET /api/runtimes` (the cached views, no refresh) until the view of
/// `runtime_id` satisfies `ready` (`what` names the wait); returns that view.
pub async fn wait_cached_view(
    api: &Api,
    runtime_id: &str,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let list = poll_until(api, "/api/runtimes", &format!("{runtime_id} {what}"), |v| {
        v["runtimes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["runtime_id"] == runtime_id && ready(r)))
    })
    .await;
    runtime_entry(&list, runtime_id).clone()
}

/// Polls a worker's transcript until an output item with `text` appears.
pub async fn wait_output(api: &Api, worker_path: &str, text: &str) -> Value {
    poll_until(
        api,
        &format!("{worker_path}/transcript"),
        &format!("output {text:?}"),
        |v| {
            v["items"].as_array().is_some_and(|items| {
                items
                    .iter()
                    .any(|i| i["kind"] == "output" && i["text"].as_str() == Some(text))
            })
        },
    )
    .await
}

/// Creates an echo worker on `runtime_id` and returns its id.
pub async fn create_echo(api: &Api, runtime_id: &str, label: &str) -> String {
    let r = api
        .post(
            &format!("/api/runtimes/{runtime_id}/workers"),
            json!({"profile": "echo", "label": label}),
        )
        .await;
    assert_status(&r, 201);
    r.json["worker_id"].as_str().unwrap().to_owned()
}

/// Keys whose values are timestamps.
const TIME_KEYS: [&str; 4] = ["created_at", "updated_at", "at", "last_seen"];

/// `value` with the given id strings replaced by placeholders wherever they occur
/// (messages included), `runtime_id` and `worker_id` fields replaced, and timestamp
/// fields replaced by `<ts>` (when not null).
pub fn normalize(value: &Value, ids: &[(&str, &str)]) -> Value {
    let mut ids = ids.to_vec();
    ids.sort_by_key(|(id, _)| std::cmp::Reverse(id.len()));
    let mut text = value.to_string();
    for (id, placeholder) in &ids {
        text = text.replace(id, placeholder);
    }
    let mut value: Value = serde_json::from_str(&text).unwrap();
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if TIME_KEYS.contains(&key.as_str()) && !v.is_null() {
                        *v = json!("<ts>");
                    } else if key == "runtime_id" && v.is_string() {
                        *v = json!("<runtime>");
                    } else if key == "worker_id" && v.is_string() {
                        *v = json!("<worker>");
                    } else {
                        walk(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

/// A TCP peer that accepts connections and never answers.
pub struct SilentPeer {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl SilentPeer {
    pub async fn start(ip: &str) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let accepted = accepted.clone();
            async move {
                let mut held = Vec::new();
                while let Ok((stream, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    held.push(stream);
                }
            }
        });
        Self {
            addr,
            accepted,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for SilentPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request as a [`CannedPeer`] saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    /// The whole head as received.
    pub head: String,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A canned answer: status line tail (`"200 OK"`), content type and body.
pub struct Canned {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: String,
}

type Answerer = dyn Fn(&SeenRequest) -> Canned + Send + Sync;

/// A raw-TCP HTTP/1.1 peer answering every request with what `answer` says, then
/// closing the connection.
pub struct CannedPeer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl CannedPeer {
    pub async fn start(
        ip: &str,
        answer: impl Fn(&SeenRequest) -> Canned + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer: Arc<Answerer> = Arc::new(answer);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let _ = serve_one(stream, answer.as_ref()).await;
                });
            }
        });
        Self { addr, task }
    }

    /// Answers every request with `200 OK`, `application/json` and `body`.
    pub async fn ok_json(ip: &str, body: &'static str) -> Self {
        Self::start(ip, move |_| Canned {
            status: "200 OK",
            content_type: "application/json",
            body: body.to_owned(),
        })
        .await
    }
}

impl Drop for CannedPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(mut stream: TcpStream, answer: &Answerer) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let seen = SeenRequest {
        method,
        path,
        headers,
        head,
    };
    let canned = answer(&seen);
    let response = format!(
        "HTTP/1.1 {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        canned.status,
        canned.content_type,
        canned.body.len(),
        canned.body
    );
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await?;
    let _ = stream.shutdown().await;
    Ok(())
}

pub use switchyard_e2e::ports::Refused;

/// A loopback address that refuses connections (see [`Refused`]).
pub async fn refused_addr() -> Refused {
    switchyard_e2e::ports::refused_addr()
}

/// Sends `method path` with a raw body and content type JSON.
pub async fn raw_call(api: &Api, method: Method, path: &str, body: Vec<u8>) -> TestResponse {
    request(
        api.addr,
        method,
        path,
        Some(body),
        &[("content-type", "application/json")],
    )
    .await
}

/// Random hex of 16 digits.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    getrandom_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn getrandom_bytes(out: &mut [u8]) {
    // No RNG crate among the dev-dependencies: mix the clock, the process id and a
    // hashed address through std's randomly keyed SipHash.
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.write_u32(std::process::id());
    let value = hasher.finish().to_le_bytes();
    for (o, v) in out.iter_mut().zip(value.iter().cycle()) {
        *o = *v;
    }
}

// ---------------------------------------------------------------------------------
// Auth fixtures
// ---------------------------------------------------------------------------------

/// One `[[auth.token]]` entry for tests: name, token, role, runtime globs (empty for
/// all), worker scope.
pub struct TestToken {
    pub name: &'static str,
    pub token: &'static str,
    pub role: switchyard_registry::Role,
    pub runtimes: &'static [&'static str],
    pub workers: switchyard_registry::WorkerScope,
}

/// Token auth over `tokens`, sessions signed with `key` (random when `None`), lasting
/// `ttl`, reading time from `clock`.
pub fn token_auth(
    tokens: &[TestToken],
    key: Option<Vec<u8>>,
    ttl: Duration,
    clock: &switchyard_server::auth::Clock,
) -> switchyard_server::config::AuthSettings {
    use switchyard_registry::{RuntimeGlob, RuntimeGrants};
    use switchyard_server::auth::{SessionKey, TokenEntry, TokenHash};
    switchyard_server::config::AuthSettings::Tokens(switchyard_server::config::TokenAuthSettings {
        tokens: tokens
            .iter()
            .map(|t| TokenEntry {
                name: t.name.to_owned(),
                hash: TokenHash::of(t.token),
                role: t.role,
                runtimes: if t.runtimes.is_empty() {
                    RuntimeGrants::All
                } else {
                    RuntimeGrants::Only(
                        t.runtimes
                            .iter()
                            .map(|g| RuntimeGlob::new(g).unwrap())
                            .collect(),
                    )
                },
                workers: t.workers,
            })
            .collect(),
        session_key: key.map(|k| SessionKey::new(k).unwrap()),
        session_ttl: ttl,
        signed_out_file: None,
        clock: clock.clone(),
    })
}

/// Sends `method path` with a raw body and exactly the given headers (besides Host).
pub async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> TestResponse {
    request(addr, method, path, body.map(<[u8]>::to_vec), headers).await
}

/// `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The `switchyard_session=...` pair of a login answer's `Set-Cookie`, ready to send
/// as `Cookie`.
pub fn session_cookie(login: &TestResponse) -> String {
    let set = login
        .headers
        .get(http::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Set-Cookie in {:?}", login.headers));
    set.split(';').next().unwrap().trim().to_owned()
}

/// Every worker id the backend lists, as `runtime_id/worker_id`.
pub async fn worker_keys(api: &Api) -> Vec<String> {
    let r = api.get("/api/workers").await;
    assert_status(&r, 200);
    r.json["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            format!(
                "{}/{}",
                w["runtime_id"].as_str().unwrap(),
                w["worker_id"].as_str().unwrap()
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Captured log events
// ---------------------------------------------------------------------------------

pub mod logs {
    //! A process-wide tracing layer that keeps every event (debug and above) with its
    //! target and fields, so tests can read audit lines and scan logs for secrets.

    use std::collections::BTreeMap;
    use std::fmt;
    use std::sync::{Mutex, OnceLock};

    use tracing::field::{Field, Visit};
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::{Context, SubscriberExt};

    /// One event: level, target and every field as text (`message` included).
    #[derive(Debug, Clone)]
    pub struct Event {
        pub level: tracing::Level,
        pub target: String,
        pub fields: BTreeMap<String, String>,
    }

    impl Event {
        pub fn field(&self, name: &str) -> Option<&str> {
            self.fields.get(name).map(String::as_str)
        }
    }

    static EVENTS: Mutex<Vec<Event>> = Mutex::new(Vec::new());
    static INSTALLED: OnceLock<()> = OnceLock::new();

    struct Capture;

    struct Fields<'a>(&'a mut BTreeMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
            let mut fields = BTreeMap::new();
            event.record(&mut Fields(&mut fields));
            let metadata = event.metadata();
            EVENTS.lock().unwrap().push(Event {
                level: *metadata.level(),
                target: metadata.target().to_owned(),
                fields,
            });
        }
    }

    /// Installs the capturing layer for the whole process (once), at debug level.
    pub fn install() {
        INSTALLED.get_or_init(|| {
            let subscriber = tracing_subscriber::registry()
                .with(Capture.with_filter(tracing_subscriber::filter::LevelFilter::DEBUG));
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
        });
    }

    /// Every event captured so far.
    pub fn events() -> Vec<Event> {
        EVENTS.lock().unwrap().clone()
    }

    /// The audit events of one request.
    pub fn audit_of(request_id: &str) -> Vec<Event> {
        events()
            .into_iter()
            .filter(|e| e.target == "audit" && e.field("request_id") == Some(request_id))
            .collect()
    }
}
