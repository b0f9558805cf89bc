//! The backend's worker event WebSocket (`/api/runtimes/{rt}/workers/{w}/events/ws`)
//! through the observation hub, against real `switchyard runtime` and `switchyard
//! serve` processes on loopback: one upstream subscription however many viewers,
//! slow viewers cut off alone, a runtime crash and restart, a cut connection resumed
//! without loss or duplicates, backend cursors across reconnects and a backend
//! restart, cursor and `Origin` refusals, and nothing of the runtime's (address,
//! port, token, runtime cursors) in any frame a viewer receives.
//!
//! The tests in this file run one at a time (they share the machine's two or so
//! cores with several processes each, and some measure timing).

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use switchyard_e2e::WAIT;
use switchyard_e2e::client::{Api, TestResponse};
use switchyard_e2e::proc::{Switchyard, wait_for_log_line};
use switchyard_e2e::tcp_proxy::TcpProxy;
use switchyard_e2e::ws::{Ws, connect};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const TOKEN: &str = "rt-secret-5b8e21c4d7";
const RT: &str = "edge-1";

/// One test at a time: each starts two or three processes and some measure timing.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------------
// What must never reach a backend client.
// ---------------------------------------------------------------------------------

/// Collects what a backend client must never see (the runtime's address and port,
/// its token, the runtime cursors of the watched workers) and what it did see.
#[derive(Default)]
struct LeakCheck {
    /// Strings no frame may contain (addresses, `:port`, the token).
    needles: Mutex<Vec<String>>,
    /// Cursors seen directly on the runtime's own event streams.
    runtime_cursors: Mutex<HashSet<String>>,
    /// Every URL-safe-base64 run of 16+ characters seen in backend frames.
    backend_tokens: Mutex<HashSet<String>>,
    frames: AtomicUsize,
}

impl LeakCheck {
    fn forbid_address(&self, addr: SocketAddr) {
        let mut needles = lock(&self.needles);
        needles.push(addr.to_string());
        needles.push(format!(":{}", addr.port()));
    }

    /// Checks one backend frame (or refusal body) now for the fixed needles, and
    /// remembers its cursor-like tokens for [`Self::assert_clean`].
    fn frame(&self, raw: &str, value: &Value) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        for needle in lock(&self.needles).iter() {
            assert!(
                !raw.contains(needle.as_str()),
                "a backend frame holds the runtime's {needle:?}: {}",
                shorten(raw)
            );
        }
        let mut tokens = Vec::new();
        collect_tokens(value, &mut tokens);
        if !tokens.is_empty() {
            lock(&self.backend_tokens).extend(tokens);
        }
    }

    /// No runtime cursor appears in (or as part of) any token a viewer saw.
    fn assert_clean(&self) {
        let runtime = lock(&self.runtime_cursors);
        assert!(
            !runtime.is_empty(),
            "no runtime cursor collected: the check would be vacuous"
        );
        let lengths: HashSet<usize> = runtime.iter().map(String::len).collect();
        let backend = lock(&self.backend_tokens);
        assert!(self.frames.load(Ordering::Relaxed) > 0);
        for token in backend.iter() {
            for &len in &lengths {
                if token.len() < len {
                    continue;
                }
                for start in 0..=token.len() - len {
                    let window = &token[start..start + len];
                    assert!(
                        !runtime.contains(window),
                        "a backend frame holds the runtime cursor {window}"
                    );
                }
            }
        }
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Runs of URL-safe base64 characters (16 or more) in every string of `value` up to
/// 4 KiB; longer strings are the tests' own payloads, checked for equality elsewhere.
fn collect_tokens(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.len() <= 4096 => out.extend(
            s.split(|c| !is_token_char(c))
                .filter(|t| t.len() >= 16)
                .map(str::to_owned),
        ),
        Value::Array(items) => items.iter().for_each(|v| collect_tokens(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_tokens(v, out)),
        _ => {}
    }
}

fn shorten(s: &str) -> String {
    if s.len() <= 600 {
        return s.to_owned();
    }
    let mut end = 600;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

// ---------------------------------------------------------------------------------
// Backend cursors. They are opaque to clients; the tests peek at the position inside
// (the encoding is documented in crates/registry/src/hub/cursor.rs) only to check
// that cursors strictly grow, which the contract promises.
// ---------------------------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The (epoch, position) inside a backend cursor.
fn cursor_place(cursor: &str) -> (String, u64) {
    let text = b64_decode(cursor)
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| panic!("backend cursor {cursor} is not base64 text"));
    let parts: Vec<&str> = text.split('|').collect();
    match parts[..] {
        ["b1", _, _, epoch, position, _] => (
            epoch.to_owned(),
            position.parse().expect("a numeric position"),
        ),
        _ => panic!("unexpected backend cursor layout {text:?}"),
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let state = std::collections::hash_map::RandomState::new();
    (0..n)
        .map(|i| {
            let mut h = state.build_hasher();
            h.write_usize(i);
            h.finish() as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Processes.
// ---------------------------------------------------------------------------------

/// A runtime (optionally behind a [`TcpProxy`]) and a backend that knows it as `RT`.
struct World {
    dir: tempfile::TempDir,
    runtime: Option<Switchyard>,
    /// The runtime's own API, with its token.
    rt: Api,
    backend: Option<Switchyard>,
    /// The backend's API (no auth).
    api: Api,
    proxy: Option<TcpProxy>,
    leaks: Arc<LeakCheck>,
    /// The backend logs to [`World::backend_log`] instead of the test's output.
    backend_logged: bool,
}

impl World {
    async fn start(via_proxy: bool) -> Self {
        Self::start_with(via_proxy, "", "").await
    }

    /// Starts a runtime and a backend in front of it (through a TCP proxy when
    /// `via_proxy`), with extra top-level lines in each one's configuration.
    async fn start_with(via_proxy: bool, runtime_extra: &str, backend_extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(
            dir.path().join("runtime.toml"),
            format!("runtime_id = \"{RT}\"\ndisplay_name = \"Edge one\"\n{runtime_extra}\n"),
        )
        .unwrap();
        let runtime = start_runtime(dir.path(), "127.0.0.1:0").await;
        let rt = Api {
            addr: runtime.addr,
            token: Some(TOKEN.into()),
        };
        let leaks = Arc::new(LeakCheck::default());
        leaks.forbid_address(runtime.addr);
        lock(&leaks.needles).push(TOKEN.into());
        let proxy = if via_proxy {
            let proxy = TcpProxy::start(runtime.addr).await;
            leaks.forbid_address(proxy.addr);
            Some(proxy)
        } else {
            None
        };
        let upstream = proxy.as_ref().map_or(runtime.addr, |p| p.addr);
        let token_file = dir.path().join("token");
        std::fs::write(
            dir.path().join("backend.toml"),
            format!(
                r#"health_interval_ms = 200
{backend_extra}

[[remote]]
runtime_id = "{RT}"
display_name = "Edge one"
base_url = "http://{upstream}"
token_file = {token_file:?}
connect_timeout_ms = 1000
request_timeout_ms = 5000
"#
            ),
        )
        .unwrap();
        let mut world = Self {
            dir,
            runtime: Some(runtime),
            rt,
            backend: None,
            api: Api {
                addr: upstream, // replaced just below
                token: None,
            },
            proxy,
            leaks,
            backend_logged: false,
        };
        world.start_backend().await;
        world
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The backend's log file, at INFO, once [`World::log_backend_to_file`] has
    /// restarted it so (otherwise its log goes to the test's output, as the
    /// harness sets it).
    fn backend_log(&self) -> PathBuf {
        self.path("backend.log")
    }

    /// Restarts the backend with its log (at INFO) in [`World::backend_log`].
    async fn log_backend_to_file(&mut self) {
        self.backend_logged = true;
        self.restart_backend().await;
    }

    async fn start_backend(&mut self) {
        let config = self.path("backend.toml").display().to_string();
        let args = ["serve", "--config", &config, "--listen", "127.0.0.1:0"];
        let backend = if self.backend_logged {
            Switchyard::start_logged(&args, &[("RUST_LOG", "info")], &self.backend_log()).await
        } else {
            Switchyard::start(&args, &[]).await
        };
        self.api = Api {
            addr: backend.addr,
            token: None,
        };
        self.backend = Some(backend);
        self.wait_runtime_state("ready").await;
    }

    /// SIGTERM, a clean exit, and the same configuration started again.
    async fn restart_backend(&mut self) {
        let backend = self.backend.take().expect("a backend");
        backend.signal(Signal::SIGTERM);
        assert_eq!(
            backend.wait().await.code(),
            Some(0),
            "backend exits cleanly"
        );
        self.start_backend().await;
    }

    async fn kill_runtime(&mut self) {
        let runtime = self.runtime.take().expect("a runtime");
        runtime.signal(Signal::SIGKILL);
        runtime.wait().await;
    }

    /// Starts the runtime again on the same port and data directory.
    async fn restart_runtime_same_port(&mut self) {
        assert!(self.runtime.is_none(), "kill it first");
        let listen = self.rt.addr.to_string();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if std::net::TcpListener::bind(self.rt.addr).is_ok() {
                let dir = self.dir.path().to_owned();
                let listen = listen.clone();
                // A failed start (port still busy) panics inside the harness; catch it.
                let started = tokio::spawn(async move { start_runtime(&dir, &listen).await });
                if let Ok(runtime) = started.await {
                    assert_eq!(runtime.addr, self.rt.addr);
                    self.runtime = Some(runtime);
                    return;
                }
            }
            assert!(Instant::now() < deadline, "port {listen} never came free");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_runtime_state(&self, state: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let answer = self.api.get(&format!("/api/runtimes/{RT}")).await;
            if answer.json["state"] == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "runtime never became {state}: {}",
                answer.text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn create_echo(&self) -> String {
        let created = self
            .api
            .post(
                &format!("/api/runtimes/{RT}/workers"),
                json!({"profile": "echo"}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text());
        assert_eq!(created.json["status"], "running", "{}", created.text());
        created.json["worker_id"].as_str().unwrap().to_owned()
    }

    /// An input straight to the runtime (bypassing the backend and any proxy).
    async fn input_direct(&self, worker: &str, text: &str) {
        let accepted = self
            .rt
            .post(
                &format!("/v1/workers/{worker}/input"),
                json!({"text": text}),
            )
            .await;
        assert_eq!(accepted.status, 202, "{}", accepted.text());
    }

    /// Inputs straight to the runtime, in order.
    async fn inputs_direct(&self, worker: &str, texts: &[String]) {
        for text in texts {
            self.input_direct(worker, text).await;
        }
    }

    /// Inputs through the backend, in order.
    async fn inputs_backend(&self, worker: &str, texts: &[String]) {
        for text in texts {
            self.input_backend(worker, text).await;
        }
    }

    /// An input through the backend.
    async fn input_backend(&self, worker: &str, text: &str) {
        let accepted = self
            .api
            .post(
                &format!("/api/runtimes/{RT}/workers/{worker}/input"),
                json!({"text": text}),
            )
            .await;
        assert_eq!(accepted.status, 202, "{}", accepted.text());
    }

    async fn subscribers(&self) -> u64 {
        let info = self.rt.get("/v1/runtime").await;
        assert_eq!(info.status, 200, "{}", info.text());
        info.json["subscribers"]
            .as_u64()
            .unwrap_or_else(|| panic!("no subscribers count: {}", info.text()))
    }

    /// Waits until the runtime reports `want` subscribers for `stable` in a row.
    async fn wait_subscribers(&self, want: u64, stable: Duration) -> Duration {
        let start = Instant::now();
        let mut since: Option<Instant> = None;
        loop {
            let now = self.subscribers().await;
            if now == want {
                let first = *since.get_or_insert_with(Instant::now);
                if first.elapsed() >= stable {
                    return first - start;
                }
            } else {
                since = None;
            }
            assert!(
                start.elapsed() < WAIT,
                "subscribers stayed at {now}, expected {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn events_path(worker: &str, cursor: Option<&str>) -> String {
        match cursor {
            Some(c) => format!("/api/runtimes/{RT}/workers/{worker}/events/ws?cursor={c}"),
            None => format!("/api/runtimes/{RT}/workers/{worker}/events/ws"),
        }
    }

    /// A viewer through the backend; panics if the upgrade is refused.
    async fn viewer(&self, worker: &str, cursor: Option<&str>) -> Viewer {
        let ws = connect(self.api.addr, &Self::events_path(worker, cursor), &[])
            .await
            .unwrap_or_else(|e| panic!("viewer refused: {}", describe(&e)));
        Viewer::new(ws, self.leaks.clone())
    }

    /// `n` viewers through the backend, each past its first snapshot.
    async fn viewers(&self, worker: &str, n: usize) -> Vec<Viewer> {
        let mut viewers = Vec::with_capacity(n);
        for _ in 0..n {
            let mut viewer = self.viewer(worker, None).await;
            viewer.snapshot().await;
            viewers.push(viewer);
        }
        viewers
    }

    /// A viewer resuming from `cursor`: it gets exactly `away`, then a marker sent
    /// through the backend (labelled `label`); returns its last cursor after closing.
    async fn resume_with_marker(
        &self,
        worker: &str,
        cursor: &str,
        away: &[String],
        label: &str,
    ) -> String {
        let mut viewer = self.viewer(worker, Some(cursor)).await;
        viewer.expect_io(away).await;
        let marker = texts(label, 1);
        self.input_backend(worker, &marker[0]).await;
        viewer.expect_io(&marker).await;
        let cursor = viewer.last_cursor.clone().unwrap();
        viewer.close().await;
        cursor
    }

    /// A refused upgrade: its status and JSON body (checked for leaks too).
    async fn refusal(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        match connect(self.api.addr, path, headers).await {
            Ok(_) => panic!("{path} was upgraded, expected a refusal"),
            Err(WsError::Http(response)) => {
                let raw = response.body().clone().unwrap_or_default();
                let text = String::from_utf8_lossy(&raw).into_owned();
                let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                self.leaks.frame(&text, &json);
                (response.status().as_u16(), json)
            }
            Err(other) => panic!("{path}: {other}"),
        }
    }

    /// Reads the runtime's own event stream for `worker` in the background, keeping
    /// its cursors as things no backend frame may contain.
    async fn tap(&self, worker: &str) -> Tap {
        let auth = format!("Bearer {TOKEN}");
        let mut ws = connect(
            self.rt.addr,
            &format!("/v1/workers/{worker}/events/ws"),
            &[("authorization", &auth)],
        )
        .await
        .expect("the runtime's own stream");
        let leaks = self.leaks.clone();
        let events = Arc::new(AtomicUsize::new(0));
        let counter = events.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                    if let Some(cursor) = frame["cursor"].as_str() {
                        lock(&leaks.runtime_cursors).insert(cursor.to_owned());
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
        Tap { task, events }
    }

    /// Polls the runtime's transcript until it holds `outputs` output items.
    async fn wait_outputs(&self, worker: &str, outputs: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut count = 0;
            let mut after = 0u64;
            loop {
                let page: TestResponse = self
                    .rt
                    .get(&format!(
                        "/v1/workers/{worker}/transcript?after={after}&limit=100"
                    ))
                    .await;
                assert_eq!(page.status, 200, "{}", page.text());
                let items = page.json["items"].as_array().cloned().unwrap_or_default();
                count += items.iter().filter(|i| i["kind"] == "output").count();
                match page.json["next_after"].as_u64() {
                    Some(next) if !items.is_empty() => after = next,
                    _ => break,
                }
            }
            if count >= outputs {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {count} of {outputs} outputs"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn start_runtime(dir: &Path, listen: &str) -> Switchyard {
    let config = dir.join("runtime.toml").display().to_string();
    let token = dir.join("token").display().to_string();
    let data = dir.join("data").display().to_string();
    Switchyard::start(
        &[
            "runtime",
            "--listen",
            listen,
            "--config",
            &config,
            "--token-file",
            &token,
            "--data-dir",
            &data,
        ],
        &[],
    )
    .await
}

fn describe(error: &WsError) -> String {
    match error {
        WsError::Http(response) => format!(
            "HTTP {} {}",
            response.status(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
        ),
        other => other.to_string(),
    }
}

/// A reader of the runtime's own stream (see [`World::tap`]); dropping it closes it.
struct Tap {
    task: JoinHandle<()>,
    events: Arc<AtomicUsize>,
}

impl Tap {
    async fn wait_events(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.events.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "tap saw only {} of {n} events",
                self.events.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------
// Viewers.
// ---------------------------------------------------------------------------------

/// One backend WebSocket client that checks, frame by frame, what holds on any
/// connection: no leak, no cursor twice, positions strictly growing within an epoch,
/// and a new epoch only right after a `reset`.
struct Viewer {
    ws: Ws,
    leaks: Arc<LeakCheck>,
    cursors: HashSet<String>,
    place: Option<(String, u64)>,
    after_reset: bool,
    /// The last event cursor received.
    last_cursor: Option<String>,
}

impl Viewer {
    fn new(ws: Ws, leaks: Arc<LeakCheck>) -> Self {
        Self {
            ws,
            leaks,
            cursors: HashSet::new(),
            place: None,
            after_reset: false,
            last_cursor: None,
        }
    }

    /// The next text frame, checked; panics on a close, an error or a timeout.
    async fn next(&mut self) -> Value {
        match self.next_or_close().await {
            Ok(frame) => frame,
            Err(code) => panic!("the backend closed the viewer ({code:?})"),
        }
    }

    /// The next text frame, or the close code when the backend closes instead.
    async fn next_or_close(&mut self) -> Result<Value, Option<u16>> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time");
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(other)) => panic!("unexpected message {other:?}"),
                Some(Err(error)) => panic!("viewer connection failed: {error}"),
                None => return Err(None),
            };
            let frame: Value = serde_json::from_str(text.as_str()).expect("a JSON frame");
            self.leaks.frame(text.as_str(), &frame);
            self.check(&frame);
            return Ok(frame);
        }
    }

    fn check(&mut self, frame: &Value) {
        match frame["type"].as_str() {
            Some("event") => {
                assert_eq!(frame["runtime_id"], RT, "{frame}");
                let cursor = frame["cursor"].as_str().expect("an event cursor");
                assert!(
                    self.cursors.insert(cursor.to_owned()),
                    "cursor {cursor} twice on one connection"
                );
                let (epoch, position) = cursor_place(cursor);
                if let Some((last_epoch, last_position)) = &self.place {
                    if *last_epoch == epoch {
                        assert!(
                            position > *last_position,
                            "cursor went from {last_position} to {position}"
                        );
                    } else {
                        assert!(self.after_reset, "a new epoch without a reset: {frame}");
                    }
                }
                self.place = Some((epoch, position));
                self.after_reset = false;
                self.last_cursor = Some(cursor.to_owned());
            }
            Some("reset") => self.after_reset = true,
            Some("upstream") => {}
            _ => panic!("unknown frame {frame}"),
        }
    }

    /// The next frame, which must be a snapshot event; returns it.
    async fn snapshot(&mut self) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["type"], "event", "{frame}");
        assert_eq!(frame["event"]["kind"], "snapshot", "{frame}");
        frame
    }

    /// Reads exactly the input and output events of `texts` (inputs in order, outputs
    /// in order, each output after its input, transcript sequences growing) and
    /// nothing else; returns their cursors.
    async fn expect_io(&mut self, texts: &[String]) -> Vec<String> {
        let (mut inputs, mut outputs) = (0, 0);
        let mut sequence = 0u64;
        let mut cursors = Vec::with_capacity(texts.len() * 2);
        while inputs < texts.len() || outputs < texts.len() {
            let frame = self.next().await;
            assert_eq!(frame["type"], "event", "expected an event: {frame}");
            let event = &frame["event"];
            let text = event["text"].as_str().unwrap_or_default();
            match event["kind"].as_str() {
                Some("input") => {
                    assert!(inputs < texts.len(), "an extra input {}", shorten(text));
                    assert!(
                        text == texts[inputs],
                        "input {inputs}: {} instead of {}",
                        shorten(text),
                        shorten(&texts[inputs])
                    );
                    inputs += 1;
                }
                Some("output") => {
                    assert!(outputs < inputs, "output before its input");
                    assert_eq!(event["stream"], "stdout");
                    assert!(
                        text == texts[outputs],
                        "output {outputs}: {} instead of {}",
                        shorten(text),
                        shorten(&texts[outputs])
                    );
                    outputs += 1;
                }
                _ => panic!("unexpected event {}", shorten(&frame.to_string())),
            }
            let seq = event["sequence"].as_u64().expect("a sequence");
            assert!(seq > sequence, "sequence {seq} after {sequence}");
            sequence = seq;
            cursors.push(frame["cursor"].as_str().unwrap().to_owned());
        }
        cursors
    }

    /// Asserts that no text frame arrives for `period`.
    async fn quiet(&mut self, period: Duration) {
        if let Ok(frame) = tokio::time::timeout(period, self.next_or_close()).await {
            panic!("expected silence, got {frame:?}");
        }
    }

    /// Closes from our side and waits for the server's close.
    async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

fn texts(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:05}")).collect()
}

/// Every viewer gets exactly `texts` as input and output events, in order.
async fn expect_io_all(viewers: &mut [Viewer], texts: &[String]) {
    for viewer in viewers {
        viewer.expect_io(texts).await;
    }
}

// ---------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_viewers_share_one_upstream_and_all_get_a_ten_thousand_event_burst() {
    let _serial = SERIAL.lock().await;
    // Room for the whole burst in each viewer's queue: this test is about fan-out
    // and cursors, not about whether 50 test readers keep up on a loaded machine
    // (falling behind is the stalled-viewer test's subject; speed is the bench's).
    let world = World::start_with(false, "", "viewer_queue = 16384").await;
    let worker = world.create_echo().await;

    let viewers = world.viewers(&worker, 50).await;
    world.wait_subscribers(1, Duration::from_millis(600)).await;

    // The runtime's own stream, for the cursors that must not leak (a second
    // subscriber on the runtime while it runs).
    let tap = world.tap(&worker).await;
    world.wait_subscribers(2, Duration::from_millis(200)).await;

    let burst = Arc::new(texts("burst", 5000));
    let readers: Vec<_> = viewers
        .into_iter()
        .map(|mut viewer| {
            let burst = burst.clone();
            tokio::spawn(async move {
                let cursors = viewer.expect_io(&burst).await;
                (viewer, cursors)
            })
        })
        .collect();
    let started = Instant::now();
    for text in burst.iter() {
        world.input_direct(&worker, text).await;
    }
    let sent_in = started.elapsed();

    let mut viewers = Vec::new();
    let mut reference: Option<Vec<String>> = None;
    for reader in readers {
        let (viewer, cursors) = reader.await.expect("a viewer got the whole burst");
        assert_eq!(cursors.len(), 10_000);
        match &reference {
            None => reference = Some(cursors),
            Some(first) => assert!(*first == cursors, "viewers saw different cursors"),
        }
        viewers.push(viewer);
    }
    eprintln!(
        "burst: 5000 inputs sent in {sent_in:?}, all 50 viewers done after {:?}",
        started.elapsed()
    );

    tap.wait_events(10_001).await;
    drop(tap);
    // Still exactly one upstream for the 50 viewers.
    world.wait_subscribers(1, Duration::from_millis(500)).await;

    for viewer in viewers {
        viewer.close().await;
    }
    let gone_after = world.wait_subscribers(0, Duration::ZERO).await;
    eprintln!("the upstream closed {gone_after:?} after the last viewer left");
    assert!(
        gone_after < Duration::from_secs(6),
        "the upstream outlived its viewers by {gone_after:?}"
    );
    world.leaks.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_viewer_is_closed_with_4408_and_the_others_get_everything() {
    let _serial = SERIAL.lock().await;
    let mut world = World::start(false).await;
    world.log_backend_to_file().await;
    let worker = world.create_echo().await;
    let tap = world.tap(&worker).await;

    let mut stalled = world.viewer(&worker, None).await;
    stalled.snapshot().await;
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut viewer = world.viewer(&worker, None).await;
        viewer.snapshot().await;
        readers.push(viewer);
    }
    world.wait_subscribers(2, Duration::from_millis(300)).await;

    let padding = "x".repeat(32 * 1024);
    let payloads: Arc<Vec<String>> =
        Arc::new((0..1500).map(|i| format!("big-{i:05}-{padding}")).collect());
    let readers: Vec<_> = readers
        .into_iter()
        .map(|mut viewer| {
            let payloads = payloads.clone();
            tokio::spawn(async move {
                viewer.expect_io(&payloads).await;
                viewer
            })
        })
        .collect();
    let started = Instant::now();
    for text in payloads.iter() {
        world.input_direct(&worker, text).await;
    }
    for reader in readers {
        reader.await.expect("a reading viewer got every event");
    }
    eprintln!("1500 large inputs delivered in {:?}", started.elapsed());

    // The stalled viewer now reads what was buffered: a gapless prefix, then 4408.
    let (mut inputs, mut outputs) = (0usize, 0usize);
    let code = loop {
        match stalled.next_or_close().await {
            Ok(frame) => {
                assert_eq!(frame["type"], "event", "{}", shorten(&frame.to_string()));
                let event = &frame["event"];
                let text = event["text"].as_str().unwrap_or_default();
                match event["kind"].as_str() {
                    Some("input") => {
                        assert!(text == payloads[inputs], "a gap in the inputs at {inputs}");
                        inputs += 1;
                    }
                    Some("output") => {
                        assert!(outputs < inputs);
                        assert!(
                            text == payloads[outputs],
                            "a gap in the outputs at {outputs}"
                        );
                        outputs += 1;
                    }
                    _ => panic!("unexpected {}", shorten(&frame.to_string())),
                }
            }
            Err(code) => break code,
        }
    };
    eprintln!("the stalled viewer read {inputs} inputs and {outputs} outputs before closing");
    assert!(
        inputs + outputs < 3000,
        "the stalled viewer was never cut off"
    );
    assert_eq!(code, Some(4408), "slow consumers are closed with 4408");
    // The operator's log names what the closed viewer watched.
    let line = wait_for_log_line(&world.backend_log(), "4408 slow_consumer", 1).await;
    assert!(line.contains(RT) && line.contains(&worker), "{line}");
    drop(tap);
    world.leaks.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_crash_and_restart_gives_lost_then_reset_and_a_lost_snapshot() {
    let _serial = SERIAL.lock().await;
    let mut world = World::start(false).await;
    let worker = world.create_echo().await;
    let tap = world.tap(&worker).await;

    let mut viewers = world.viewers(&worker, 2).await;
    let before = texts("before-crash", 3);
    world.inputs_backend(&worker, &before).await;
    expect_io_all(&mut viewers, &before).await;
    let old_cursor = viewers[0].last_cursor.clone().unwrap();
    tap.wait_events(7).await;
    drop(tap);

    world.kill_runtime().await;
    for viewer in &mut viewers {
        let lost = viewer.next().await;
        assert_eq!(lost["type"], "upstream", "{lost}");
        assert_eq!(lost["state"], "lost", "{lost}");
        assert!(lost["error"]["code"].is_string(), "{lost}");
        assert!(lost["error"]["message"].is_string(), "{lost}");
        eprintln!("on the crash: {lost}");
    }
    world.restart_runtime_same_port().await;

    for viewer in &mut viewers {
        // After `lost`: `restored` (before or after the reset) and `reset`, then the
        // snapshot at once.
        let mut order = vec!["lost"];
        let snapshot = loop {
            let frame = viewer.next().await;
            match (frame["type"].as_str(), frame["state"].as_str()) {
                (Some("upstream"), Some("restored")) => {
                    assert!(!order.contains(&"restored"), "restored twice");
                    assert!(frame["error"].is_null(), "{frame}");
                    order.push("restored");
                }
                (Some("reset"), _) => {
                    assert_eq!(
                        frame,
                        json!({"type": "reset", "reason": "runtime_restarted"})
                    );
                    order.push("reset");
                    let snapshot = viewer.snapshot().await;
                    order.push("snapshot");
                    break snapshot;
                }
                _ => panic!("after {order:?}: unexpected {frame}"),
            }
        };
        assert_eq!(snapshot["event"]["worker"]["status"], "lost", "{snapshot}");
        if !order.contains(&"restored") {
            let frame = viewer.next().await;
            assert_eq!(
                frame,
                json!({"type": "upstream", "state": "restored", "error": null})
            );
            order.push("restored");
        }
        eprintln!("after the crash a viewer saw {order:?}");
    }

    // An old-epoch cursor resumes as reset + snapshot.
    let mut late = world.viewer(&worker, Some(&old_cursor)).await;
    assert_eq!(
        late.next().await,
        json!({"type": "reset", "reason": "runtime_restarted"})
    );
    let snapshot = late.snapshot().await;
    assert_eq!(snapshot["event"]["worker"]["status"], "lost");
    late.quiet(Duration::from_secs(1)).await;

    // The same once the hub has let the worker go (a fresh upstream from that cursor).
    late.close().await;
    for viewer in viewers {
        viewer.close().await;
    }
    world.wait_subscribers(0, Duration::ZERO).await;
    let mut late = world.viewer(&worker, Some(&old_cursor)).await;
    assert_eq!(
        late.next().await,
        json!({"type": "reset", "reason": "runtime_restarted"})
    );
    let snapshot = late.snapshot().await;
    assert_eq!(snapshot["event"]["worker"]["status"], "lost");
    late.quiet(Duration::from_secs(1)).await;
    late.close().await;

    // The new epoch's runtime cursors are off limits too.
    let tap = world.tap(&worker).await;
    tap.wait_events(1).await;
    drop(tap);
    world.leaks.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_resumes_with_exactly_the_missed_events() {
    let _serial = SERIAL.lock().await;
    let world = World::start(true).await;
    let proxy = world.proxy.as_ref().unwrap();
    let worker = world.create_echo().await;
    let tap = world.tap(&worker).await;

    let mut viewers = world.viewers(&worker, 3).await;
    let first = texts("first", 5);
    world.inputs_backend(&worker, &first).await;
    expect_io_all(&mut viewers, &first).await;

    // Down: cut every connection and refuse new ones until the missed events exist.
    proxy.set_refusing(true);
    let accepted = proxy.accepted();
    assert!(proxy.cut_all() >= 1, "the upstream went through the proxy");
    for viewer in &mut viewers {
        let lost = viewer.next().await;
        assert_eq!(lost["type"], "upstream", "{lost}");
        assert_eq!(lost["state"], "lost", "{lost}");
        assert!(lost["error"]["code"].is_string(), "{lost}");
    }
    // The backend tries again (and is turned away) while the events are missed.
    let deadline = Instant::now() + WAIT;
    while proxy.accepted() == accepted {
        assert!(Instant::now() < deadline, "the backend never tried again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missed = texts("missed", 20);
    world.inputs_direct(&worker, &missed).await;
    world.wait_outputs(&worker, 25).await;
    proxy.set_refusing(false);

    for viewer in &mut viewers {
        assert_eq!(
            viewer.next().await,
            json!({"type": "upstream", "state": "restored", "error": null})
        );
        viewer.expect_io(&missed).await;
    }
    // Nothing else came in between: the next frames are exactly the next input's.
    let after = texts("after", 1);
    world.input_backend(&worker, &after[0]).await;
    expect_io_all(&mut viewers, &after).await;
    tap.wait_events(1 + 2 * 26).await;
    drop(tap);
    world.leaks.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_cursor_resumes_exactly_across_reconnects_and_a_backend_restart() {
    let _serial = SERIAL.lock().await;
    let mut world = World::start(false).await;
    let worker = world.create_echo().await;
    let tap = world.tap(&worker).await;

    let mut viewer = world.viewer(&worker, None).await;
    viewer.snapshot().await;
    let first = texts("first", 3);
    world.inputs_backend(&worker, &first).await;
    viewer.expect_io(&first).await;
    let cursor = viewer.last_cursor.clone().unwrap();
    viewer.close().await;

    // 1. Back at once (the hub still holds the worker's channel).
    let away = texts("away-a", 4);
    world.inputs_backend(&worker, &away).await;
    let cursor = world
        .resume_with_marker(&worker, &cursor, &away, "marker-a")
        .await;

    // 2. Back after the hub let the upstream go.
    world.wait_subscribers(1, Duration::ZERO).await; // the tap only
    let away = texts("away-b", 3);
    world.inputs_direct(&worker, &away).await;
    world.wait_outputs(&worker, 3 + 4 + 1 + 3).await;
    let cursor = world
        .resume_with_marker(&worker, &cursor, &away, "marker-b")
        .await;

    // 3. Back after a backend restart; the events happened while it was down.
    let backend = world.backend.take().unwrap();
    backend.signal(Signal::SIGTERM);
    assert_eq!(backend.wait().await.code(), Some(0));
    let away = texts("away-c", 3);
    world.inputs_direct(&worker, &away).await;
    world.wait_outputs(&worker, 3 + 4 + 1 + 3 + 1 + 3).await;
    world.start_backend().await;
    let cursor = world
        .resume_with_marker(&worker, &cursor, &away, "marker-c")
        .await;

    // 4. And once more after a restart with nothing missed: nothing replayed.
    world.restart_backend().await;
    let mut viewer = world.viewer(&worker, Some(&cursor)).await;
    let marker = texts("marker-d", 1);
    world.input_backend(&worker, &marker[0]).await;
    viewer.expect_io(&marker).await;
    viewer.close().await;

    tap.wait_events(1 + 2 * 17).await;
    drop(tap);
    world.leaks.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_forged_and_truncated_cursors_and_foreign_origins_are_refused() {
    let _serial = SERIAL.lock().await;
    let world = World::start(false).await;
    let a = world.create_echo().await;
    let b = world.create_echo().await;
    let tap = world.tap(&a).await;

    let mut viewer = world.viewer(&a, None).await;
    let snapshot_cursor = viewer.snapshot().await["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let one = texts("one", 1);
    world.input_backend(&a, &one[0]).await;
    let event_cursor = viewer.expect_io(&one).await.pop().unwrap();
    tap.wait_events(3).await;
    let runtime_cursor = lock(&world.leaks.runtime_cursors)
        .iter()
        .next()
        .cloned()
        .unwrap();

    let invalid = |(status, body): (u16, Value), what: &str| {
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"]["code"], "invalid_cursor", "{what}: {body}");
        assert!(body["error"]["message"].is_string(), "{what}: {body}");
    };
    // Another worker's cursors.
    for cursor in [&snapshot_cursor, &event_cursor] {
        invalid(
            world
                .refusal(&World::events_path(&b, Some(cursor)), &[])
                .await,
            "a cursor of another worker",
        );
    }
    // Forged: random base64, and a random base64 that decodes to cursor-like text.
    let forged = b64_encode(&random_bytes(48));
    invalid(
        world
            .refusal(&World::events_path(&a, Some(&forged)), &[])
            .await,
        "random base64",
    );
    let (epoch, position) = cursor_place(&event_cursor);
    let lookalike = b64_encode(format!("b1|{RT}|{a}|{epoch}|{position}|00000000").as_bytes());
    invalid(
        world
            .refusal(&World::events_path(&a, Some(&lookalike)), &[])
            .await,
        "a hand-made cursor",
    );
    // Truncated real cursors.
    for cut in [1, 4, event_cursor.len() / 2] {
        let truncated = &event_cursor[..event_cursor.len() - cut];
        invalid(
            world
                .refusal(&World::events_path(&a, Some(truncated)), &[])
                .await,
            "a truncated cursor",
        );
    }
    // The runtime's own cursor is not a backend cursor.
    invalid(
        world
            .refusal(&World::events_path(&a, Some(&runtime_cursor)), &[])
            .await,
        "a runtime cursor",
    );

    // Origins.
    let (status, body) = world
        .refusal(
            &World::events_path(&a, None),
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "origin_not_allowed", "{body}");
    let own = format!("http://{}", world.api.addr);
    let ws = connect(
        world.api.addr,
        &World::events_path(&a, None),
        &[("origin", &own)],
    )
    .await
    .unwrap_or_else(|e| panic!("own origin refused: {}", describe(&e)));
    let mut own_viewer = Viewer::new(ws, world.leaks.clone());
    own_viewer.snapshot().await;
    own_viewer.close().await;
    let mut plain = world.viewer(&a, Some(&event_cursor)).await;
    let two = texts("two", 1);
    world.input_backend(&a, &two[0]).await;
    plain.expect_io(&two).await;
    plain.close().await;
    viewer.close().await;
    drop(tap);
    world.leaks.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_frame_holds_the_runtimes_address_port_token_or_cursors() {
    let _serial = SERIAL.lock().await;
    let mut world = World::start(true).await;
    let worker = world.create_echo().await;
    let tap = world.tap(&worker).await;

    let mut viewer = world.viewer(&worker, None).await;
    viewer.snapshot().await;
    let first = texts("first", 10);
    world.inputs_backend(&worker, &first).await;
    viewer.expect_io(&first).await;
    tap.wait_events(21).await;
    drop(tap);

    // A cut connection: `lost` carries an error, which must not name the upstream.
    world.proxy.as_ref().unwrap().cut_all();
    let lost = viewer.next().await;
    assert_eq!(lost["state"], "lost", "{lost}");
    let restored = viewer.next().await;
    assert_eq!(restored["state"], "restored", "{restored}");

    // A crash: `lost` again, and what a newcomer is told while the runtime is down.
    world.kill_runtime().await;
    let lost = viewer.next().await;
    assert_eq!(lost["state"], "lost", "{lost}");
    let (status, body) = world.refusal(&World::events_path(&worker, None), &[]).await;
    assert!(status >= 500, "{status} {body}");
    let (status, body) = world
        .refusal(
            &World::events_path(&worker, viewer.last_cursor.clone().as_deref()),
            &[],
        )
        .await;
    assert!(status >= 500, "{status} {body}");

    world.restart_runtime_same_port().await;
    let tap = world.tap(&worker).await;
    loop {
        let frame = viewer.next().await;
        if frame["event"]["kind"] == "snapshot" {
            break;
        }
    }
    let mut second = world.viewer(&worker, None).await;
    second.snapshot().await;
    tap.wait_events(1).await;
    drop(tap);
    world.leaks.assert_clean();
    assert!(world.leaks.frames.load(Ordering::Relaxed) > 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_cannot_resume_gives_reset_and_a_fresh_snapshot() {
    let _serial = SERIAL.lock().await;
    // A runtime that keeps only 16 events per worker for resuming.
    let world = World::start_with(true, "event_backlog = 16", "").await;
    let proxy = world.proxy.as_ref().unwrap();
    let worker = world.create_echo().await;
    let tap = world.tap(&worker).await;

    let mut viewers = world.viewers(&worker, 2).await;
    let first = texts("first", 3);
    world.inputs_backend(&worker, &first).await;
    expect_io_all(&mut viewers, &first).await;
    let old_cursor = viewers[0].last_cursor.clone().unwrap();

    proxy.set_refusing(true);
    let accepted = proxy.accepted();
    assert!(proxy.cut_all() >= 1);
    for viewer in &mut viewers {
        let lost = viewer.next().await;
        assert_eq!(lost["state"], "lost", "{lost}");
    }
    let deadline = Instant::now() + WAIT;
    while proxy.accepted() == accepted {
        assert!(Instant::now() < deadline, "the backend never tried again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 60 events while away: more than the runtime keeps.
    let missed = texts("missed", 30);
    world.inputs_direct(&worker, &missed).await;
    world.wait_outputs(&worker, 33).await;
    proxy.set_refusing(false);

    for viewer in &mut viewers {
        let mut order = vec!["lost"];
        let snapshot = loop {
            let frame = viewer.next().await;
            match (frame["type"].as_str(), frame["state"].as_str()) {
                (Some("upstream"), Some("restored")) => {
                    assert!(!order.contains(&"restored"), "restored twice");
                    order.push("restored");
                }
                (Some("reset"), _) => {
                    assert_eq!(frame, json!({"type": "reset", "reason": "cursor_expired"}));
                    order.push("reset");
                    let snapshot = viewer.snapshot().await;
                    order.push("snapshot");
                    break snapshot;
                }
                _ => panic!("after {order:?}: unexpected {frame}"),
            }
        };
        let detail = &snapshot["event"]["worker"];
        assert_eq!(detail["status"], "running", "{snapshot}");
        assert_eq!(detail["input_count"], 33, "{snapshot}");
        if !order.contains(&"restored") {
            assert_eq!(
                viewer.next().await,
                json!({"type": "upstream", "state": "restored", "error": null})
            );
            order.push("restored");
        }
        eprintln!("after the expired resume a viewer saw {order:?}");
    }
    // Live again, exactly.
    let after = texts("after", 2);
    world.inputs_backend(&worker, &after).await;
    expect_io_all(&mut viewers, &after).await;
    // A backend cursor from before the gap is expired too.
    let mut late = world.viewer(&worker, Some(&old_cursor)).await;
    assert_eq!(
        late.next().await,
        json!({"type": "reset", "reason": "cursor_expired"})
    );
    // The snapshot the hub holds (from the reset), then every event after it.
    let snapshot = late.snapshot().await;
    assert_eq!(snapshot["event"]["worker"]["input_count"], 33, "{snapshot}");
    late.expect_io(&after).await;
    late.quiet(Duration::from_secs(1)).await;
    tap.wait_events(1 + 2 * 35).await;
    drop(tap);
    world.leaks.assert_clean();
}
