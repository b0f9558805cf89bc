//! Live reload with real processes: a backend with two remote `switchyard runtime`
//! processes and viewers attached to each; its configuration file rewritten to
//! remove one remote and add a third, applied by SIGHUP, then by
//! `POST /api/admin/reload` the other way round. The kept runtime's viewers see every
//! event once, in order, with nothing between (its upstream is not even reopened);
//! the removed runtime's viewers are closed with 4404; the added runtime is routable.
//! An invalid file, by SIGHUP or by POST, changes nothing and names its key.
//! The limits apply without a restart: `max_body_bytes` to the requests that start
//! after the reload, `max_connections` to new connections (open ones are never cut),
//! `drain_ms` to the drain that SIGTERM starts. A runtime's token rotated in the
//! README's three steps disturbs no viewer of the backend.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use switchyard_e2e::client::{Api, request};
use switchyard_e2e::proc::Switchyard;
use switchyard_e2e::raw_http::{RawAnswer, read_answer};
use switchyard_e2e::ws::{Ws, close_code, close_frame, connect, next_json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The remotes, each with its own token.
const RUNTIMES: [(&str, &str); 3] = [
    ("a", "reload-token-a-51c0"),
    ("b", "reload-token-b-83d2"),
    ("c", "reload-token-c-27e9"),
];

fn token_of(id: &str) -> &'static str {
    RUNTIMES.iter().find(|(r, _)| *r == id).unwrap().1
}

/// The backend's configuration with the given remotes (`(id, address)`), plus `extra`
/// lines at the end of the last one.
fn config(remotes: &[(&str, SocketAddr)], extra: &str) -> String {
    let mut text = String::from("listen = \"127.0.0.1:0\"\n");
    for (id, addr) in remotes {
        text.push_str(&format!(
            "\n[[remote]]\nruntime_id = \"{id}\"\nbase_url = \"http://{addr}\"\ntoken_file = \"{id}.token\"\n"
        ));
    }
    text.push_str(extra);
    text
}

struct Backend {
    process: Switchyard,
    api: Api,
    config: PathBuf,
    log: PathBuf,
}

impl Backend {
    async fn start(dir: &Path, text: &str) -> Self {
        let config = dir.join("backend.toml");
        std::fs::write(&config, text).unwrap();
        let log = dir.join("backend.log");
        let process =
            Switchyard::start_logged(&["serve", "--config", config.to_str().unwrap()], &[], &log)
                .await;
        let api = Api {
            addr: process.addr,
            token: None,
        };
        Self {
            process,
            api,
            config,
            log,
        }
    }

    fn rewrite(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    async fn runtime_ids(&self) -> Vec<String> {
        let r = self.api.get("/api/runtimes").await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json["runtimes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["runtime_id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn wait_for_runtimes(&self, expected: &[&str]) {
        let deadline = Instant::now() + switchyard_e2e::WAIT;
        loop {
            let ids = self.runtime_ids().await;
            if ids == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "runtimes are {ids:?}, waiting for {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for_log(&self, needle: &str) -> String {
        switchyard_e2e::proc::wait_for_log_line(&self.log, needle, 1).await
    }

    async fn create(&self, runtime: &str) -> String {
        let r = self
            .api
            .post(
                &format!("/api/runtimes/{runtime}/workers"),
                json!({"profile": "echo"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json["worker_id"].as_str().unwrap().to_owned()
    }

    async fn input(&self, runtime: &str, worker: &str, text: &str) {
        let r = self
            .api
            .post(
                &format!("/api/runtimes/{runtime}/workers/{worker}/input"),
                json!({ "text": text }),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
    }

    async fn watch(&self, runtime: &str, worker: &str) -> Ws {
        let mut ws = connect(
            self.api.addr,
            &format!("/api/runtimes/{runtime}/workers/{worker}/events/ws"),
            &[],
        )
        .await
        .unwrap();
        let first = next_json(&mut ws).await;
        assert_eq!(first["event"]["kind"], "snapshot", "{first}");
        ws
    }

    async fn reload(&self) -> switchyard_e2e::client::TestResponse {
        self.api
            .call(http::Method::POST, "/api/admin/reload", None)
            .await
    }
}

/// How many times the runtime at `addr` upgraded an event WebSocket (its own
/// request counter): the backend's upstreams to it.
async fn upstreams_opened(addr: SocketAddr, id: &str) -> u64 {
    let auth = format!("Bearer {}", token_of(id));
    let r = request(
        addr,
        http::Method::GET,
        "/v1/metrics",
        None,
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    text.lines()
        .find(|line| {
            line.starts_with("switchyard_http_requests_total{")
                && line.contains("route=\"/v1/workers/{worker_id}/events/ws\"")
                && line.contains("status=\"101\"")
        })
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0, |value| value.parse::<f64>().unwrap() as u64)
}

/// The backend's metric lines that start with `prefix`, as `name{labels} value`.
async fn backend_metric(backend: &Backend, line_start: &str) -> String {
    metric_at(backend.api.addr, line_start).await
}

/// The first metric line that starts with `line_start` on the listener at `addr`
/// (the main one, or `metrics_listen`).
async fn metric_at(addr: SocketAddr, line_start: &str) -> String {
    let r = request(addr, http::Method::GET, "/metrics", None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    text.lines()
        .find(|line| line.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
        .to_owned()
}

/// Waits until the gauge `name` (no labels) reads `value` on the `metrics_listen`
/// listener at `addr`, which answers however many connections the main one has.
async fn wait_for_gauge(addr: SocketAddr, name: &str, value: u64) {
    let deadline = Instant::now() + switchyard_e2e::WAIT;
    loop {
        let line = metric_at(addr, &format!("{name} ")).await;
        if line == format!("{name} {value}") {
            return;
        }
        assert!(Instant::now() < deadline, "{line}, waiting for {value}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asks `GET /healthz` on `stream` (kept alive) and reads the answer.
async fn healthz_on(stream: &mut TcpStream) -> RawAnswer {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    read_answer(stream).await
}

/// A new connection to `addr` and its answer to `GET /healthz`; the connection is
/// kept open (the answer said 200) or closed by the server (a refusal).
async fn connect_and_ask(addr: SocketAddr) -> (TcpStream, RawAnswer) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let answer = healthz_on(&mut stream).await;
    (stream, answer)
}

/// A connection to `addr` that the backend admitted and answered, held open until
/// dropped.
async fn held_connection(addr: SocketAddr) -> TcpStream {
    let (stream, answer) = connect_and_ask(addr).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    stream
}

/// Asserts that a new connection to `addr` is refused: `503 overloaded`, then closed.
async fn assert_refused(addr: SocketAddr, why: &str) {
    let (mut stream, answer) = connect_and_ask(addr).await;
    assert_eq!(
        (answer.status, answer.code()),
        (503, "overloaded"),
        "{why}: {answer:?}"
    );
    assert!(
        answer.head.to_ascii_lowercase().contains("retry-after: 1"),
        "{why}: {answer:?}"
    );
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(switchyard_e2e::WAIT, stream.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(_))),
        "{why}: the server closes a refused connection"
    );
}

/// Sends `count` inputs named `prefix-N` to a worker, a few milliseconds apart.
fn send_inputs(
    backend: &Backend,
    runtime: &'static str,
    worker: &str,
    prefix: &'static str,
    count: usize,
) -> tokio::task::JoinHandle<()> {
    let api = backend.api.clone();
    let path = format!("/api/runtimes/{runtime}/workers/{worker}/input");
    tokio::spawn(async move {
        for i in 0..count {
            let r = api
                .post(&path, json!({ "text": format!("{prefix}-{i}\n") }))
                .await;
            assert_eq!(r.status, 202, "{}", r.text());
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    })
}

/// Reads `count` inputs and their outputs named `prefix-N` from a viewer and checks
/// that they came exactly once each, in order, as nothing but event frames (no
/// `upstream` lost or restored, no `reset`, no snapshot) with growing cursors.
async fn expect_seamless(viewer: &mut Ws, prefix: &str, count: usize) {
    let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
    let mut cursors = Vec::new();
    while outputs.len() < count {
        let frame: Value = next_json(viewer).await;
        assert_eq!(frame["type"], "event", "only events: {frame}");
        let kind = frame["event"]["kind"].as_str().unwrap_or_default();
        let text = frame["event"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match kind {
            "input" => inputs.push(text),
            "output" => outputs.push(text),
            other => panic!("unexpected {other} event: {frame}"),
        }
        let cursor = frame["cursor"].as_str().unwrap().to_owned();
        assert!(!cursors.contains(&cursor), "a cursor twice: {frame}");
        cursors.push(cursor);
    }
    let expected: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}\n")).collect();
    assert_eq!(inputs, expected, "every input once, in order");
    assert_eq!(outputs, expected, "every output once, in order");
    // Nothing else is queued.
    if let Ok(frame) = tokio::time::timeout(Duration::from_millis(300), next_json(viewer)).await {
        panic!("nothing more expected, got {frame}");
    }
}

#[tokio::test]
async fn reload_removes_adds_and_keeps_remotes_without_disturbing_the_kept_ones_viewers() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let a = Switchyard::start_runtime(dir, "a", token_of("a")).await;
    let b = Switchyard::start_runtime(dir, "b", token_of("b")).await;
    let c = Switchyard::start_runtime(dir, "c", token_of("c")).await;
    let (with_a_b, with_a_c) = (
        config(&[("a", a.addr), ("b", b.addr)], ""),
        config(&[("a", a.addr), ("c", c.addr)], ""),
    );
    let backend = Backend::start(dir, &with_a_b).await;
    assert_eq!(backend.runtime_ids().await, ["a", "b"]);

    let wa = backend.create("a").await;
    let wb = backend.create("b").await;
    let mut on_a = backend.watch("a", &wa).await;
    let mut also_on_a = backend.watch("a", &wa).await;
    let mut on_b = backend.watch("b", &wb).await;
    assert_eq!(
        upstreams_opened(a.addr, "a").await,
        1,
        "one upstream for both"
    );

    // 1. SIGHUP: b removed, c added, while a's worker is busy.
    backend.rewrite(&with_a_c);
    let inputs = send_inputs(&backend, "a", &wa, "hup", 20);
    tokio::time::sleep(Duration::from_millis(100)).await;
    backend.process.signal(Signal::SIGHUP);
    backend.wait_for_runtimes(&["a", "c"]).await;
    inputs.await.unwrap();
    expect_seamless(&mut on_a, "hup", 20).await;
    expect_seamless(&mut also_on_a, "hup", 20).await;
    assert_eq!(close_code(&mut on_b).await, Some(4404));
    let r = backend
        .api
        .get(&format!("/api/runtimes/b/workers/{wb}"))
        .await;
    assert_eq!(r.code(), "runtime_not_found", "{}", r.text());
    let wc = backend.create("c").await;
    backend.input("c", &wc, "hello c\n").await;
    let mut on_c = backend.watch("c", &wc).await;

    // 2. An invalid file, by SIGHUP and by POST: nothing changes, the key is named.
    let invalid = config(
        &[("a", a.addr), ("c", c.addr)],
        "connect_timeout_ms = \"soon\"\n",
    );
    backend.rewrite(&invalid);
    backend.process.signal(Signal::SIGHUP);
    let line = backend.wait_for_log("configuration not reloaded").await;
    assert!(line.contains("remote[1].connect_timeout_ms"), "{line}");
    let r = backend.reload().await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.code(), "invalid_config");
    let message = r.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("remote[1].connect_timeout_ms"),
        "{message}"
    );
    assert!(
        message.contains(&backend.config.display().to_string()),
        "{message}"
    );
    assert_eq!(backend.runtime_ids().await, ["a", "c"]);
    for (metric, value) in [
        ("switchyard_config_reloads_total{outcome=\"ok\"}", "1"),
        (
            "switchyard_config_reloads_total{outcome=\"invalid_config\"}",
            "2",
        ),
        ("switchyard_config_last_reload_successful ", "0"),
    ] {
        let line = backend_metric(&backend, metric).await;
        assert!(line.ends_with(&format!(" {value}")), "{line}");
    }
    let inputs = send_inputs(&backend, "a", &wa, "invalid", 3);
    inputs.await.unwrap();
    expect_seamless(&mut on_a, "invalid", 3).await;
    expect_seamless(&mut also_on_a, "invalid", 3).await;

    // 3. POST: the other way round, c removed and b back, while a's worker is busy.
    backend.rewrite(&with_a_b);
    let inputs = send_inputs(&backend, "a", &wa, "post", 20);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = backend.reload().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json,
        json!({
            "runtimes": {"added": ["b"], "replaced": [], "removed": ["c"], "unchanged": ["a"]},
            "tls_reloaded": false,
            "restart_required": [],
        })
    );
    assert_eq!(backend.runtime_ids().await, ["a", "b"]);
    let line = backend_metric(&backend, "switchyard_config_last_reload_successful ").await;
    assert!(line.ends_with(" 1"), "{line}");
    inputs.await.unwrap();
    expect_seamless(&mut on_a, "post", 20).await;
    expect_seamless(&mut also_on_a, "post", 20).await;
    assert_eq!(close_code(&mut on_c).await, Some(4404));
    // b's worker is still on its runtime, and reachable again.
    let r = backend
        .api
        .get(&format!("/api/runtimes/b/workers/{wb}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut on_b = backend.watch("b", &wb).await;
    backend.input("b", &wb, "back\n").await;
    assert_eq!(next_json(&mut on_b).await["event"]["kind"], "input");

    assert_eq!(
        upstreams_opened(a.addr, "a").await,
        1,
        "the kept runtime's upstream was never reopened"
    );
    backend.process.signal(Signal::SIGTERM);
    assert!(backend.process.wait().await.success());
}

/// Waits until the runtime at `addr` answers `GET /v1/runtime` with `token` by
/// `status`.
async fn wait_for_token(addr: SocketAddr, token: &str, status: u16, what: &str) {
    let api = Api {
        addr,
        token: Some(token.to_owned()),
    };
    let deadline = Instant::now() + switchyard_e2e::WAIT;
    while api.get("/v1/runtime").await.status != status {
        assert!(Instant::now() < deadline, "{what}: still not {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// README's "Rotating a runtime's token", step by step, with a backend's viewer
/// watching a busy worker throughout: it sees every event once, in order, with no
/// `upstream` frame between. Step 3 closes the runtime's streams still opened with
/// the old token, and the backend moved its own to the new one at step 2.
#[tokio::test]
async fn a_runtime_token_rotated_in_the_documented_order_disturbs_no_viewer() {
    const NEW: &str = "reload-token-a-rotated-9f4e";
    let old = token_of("a");
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let runtime_dir = dir.join("runtime");
    std::fs::create_dir(&runtime_dir).unwrap();
    let runtime_token = runtime_dir.join("a.token");
    let a = Switchyard::start_runtime(&runtime_dir, "a", old).await;
    std::fs::write(dir.join("a.token"), old).unwrap();
    let backend = Backend::start(dir, &config(&[("a", a.addr)], "")).await;
    let worker = backend.create("a").await;
    let mut viewer = backend.watch("a", &worker).await;

    // 1. The runtime accepts the new token as well as the old one.
    std::fs::write(&runtime_token, format!("{old}\n{NEW}\n")).unwrap();
    let inputs = send_inputs(&backend, "a", &worker, "one", 10);
    a.signal(Signal::SIGHUP);
    wait_for_token(a.addr, NEW, 200, "the new token").await;
    inputs.await.unwrap();
    expect_seamless(&mut viewer, "one", 10).await;

    // 2. The backend sends the new one.
    std::fs::write(dir.join("a.token"), NEW).unwrap();
    let inputs = send_inputs(&backend, "a", &worker, "two", 10);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = backend.reload().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["runtimes"]["replaced"], json!(["a"]), "{}", r.text());
    inputs.await.unwrap();
    expect_seamless(&mut viewer, "two", 10).await;
    // The channel has left the old upstream for one with the new token (it does so
    // on its own task, after the reload answered).
    let deadline = Instant::now() + switchyard_e2e::WAIT;
    while upstreams_opened(a.addr, "a").await < 2 {
        assert!(Instant::now() < deadline, "the upstream did not move");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 3. The runtime forgets the old one.
    std::fs::write(&runtime_token, NEW).unwrap();
    let inputs = send_inputs(&backend, "a", &worker, "three", 10);
    a.signal(Signal::SIGHUP);
    wait_for_token(a.addr, old, 401, "the old token").await;
    inputs.await.unwrap();
    expect_seamless(&mut viewer, "three", 10).await;
    let inputs = send_inputs(&backend, "a", &worker, "after", 3);
    inputs.await.unwrap();
    expect_seamless(&mut viewer, "after", 3).await;
}

/// A runtime that stops accepting the backend's token (rotated out on the runtime's
/// side only) ends the backend's upstream with 1001 `access_ended`: its viewers are
/// told `upstream lost` with `runtime_auth_failed`, what the runtime's view says
/// too, not that the runtime is shutting down.
#[tokio::test]
async fn a_token_the_runtime_stops_accepting_is_lost_as_runtime_auth_failed() {
    let old = token_of("a");
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let runtime_dir = dir.join("runtime");
    std::fs::create_dir(&runtime_dir).unwrap();
    let a = Switchyard::start_runtime(&runtime_dir, "a", old).await;
    std::fs::write(dir.join("a.token"), old).unwrap();
    let backend = Backend::start(dir, &config(&[("a", a.addr)], "")).await;
    let worker = backend.create("a").await;
    let mut viewer = backend.watch("a", &worker).await;

    std::fs::write(
        runtime_dir.join("a.token"),
        "reload-token-a-only-the-runtime",
    )
    .unwrap();
    a.signal(Signal::SIGHUP);
    let lost = next_json(&mut viewer).await;
    assert_eq!(
        (lost["type"].as_str(), lost["state"].as_str()),
        (Some("upstream"), Some("lost")),
        "{lost}"
    );
    assert_eq!(lost["error"]["code"], "runtime_auth_failed", "{lost}");
    assert_eq!(lost["error"]["runtime_id"], "a", "{lost}");
}

/// `allowed_hosts` and `allowed_origins` apply on reload, on the main listener and
/// the metrics listener alike, and taking a name out applies as well: an event
/// WebSocket opened from the page of an origin a reload takes out is closed (1001),
/// one opened without an `Origin` stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_the_allowed_hosts_and_origins() {
    let dir = tempfile::TempDir::new().unwrap();
    let base = "listen = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n\
                [embedded]\nruntime_id = \"local\"\n";
    let backend = Backend::start(dir.path(), base).await;
    let metrics = backend.process.metrics_addr().await;
    let main = backend.api.addr;
    let (host, origin) = ("app.example", "http://app.example");

    // `(status of /healthz for Host app.example, status of /metrics for it,
    // whether a preflight from http://app.example is granted)`.
    let observe = || async move {
        let health = request(main, http::Method::GET, "/healthz", None, &[("host", host)])
            .await
            .status
            .as_u16();
        let scraped = request(
            metrics,
            http::Method::GET,
            "/metrics",
            None,
            &[("host", host)],
        )
        .await
        .status
        .as_u16();
        let preflight = request(
            main,
            http::Method::OPTIONS,
            "/api/runtimes",
            None,
            &[("origin", origin), ("access-control-request-method", "GET")],
        )
        .await;
        let granted = preflight
            .headers
            .get("access-control-allow-origin")
            .is_some_and(|v| v == origin);
        (health, scraped, granted)
    };
    assert_eq!(observe().await, (403, 403, false), "before the reload");

    // Top-level keys go before the `[embedded]` table.
    let (top, embedded) = base.split_once("[embedded]").unwrap();
    backend.rewrite(&format!(
        "{top}allowed_hosts = [\"{host}\"]\nallowed_origins = [\"{origin}\"]\n[embedded]{embedded}"
    ));
    let r = backend.reload().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["restart_required"], json!([]), "{}", r.text());
    assert_eq!(observe().await, (200, 200, true), "after adding them");

    let worker = backend.create("local").await;
    let path = format!("/api/runtimes/local/workers/{worker}/events/ws");
    let mut from_page = connect(main, &path, &[("origin", origin)]).await.unwrap();
    assert_eq!(next_json(&mut from_page).await["event"]["kind"], "snapshot");
    let mut no_page = backend.watch("local", &worker).await;

    backend.rewrite(base);
    let r = backend.reload().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(observe().await, (403, 403, false), "after taking them out");
    assert_eq!(
        close_frame(&mut from_page).await,
        Some((1001, "access_ended".to_owned()))
    );
    backend.input("local", &worker, "still here\n").await;
    loop {
        let frame = next_json(&mut no_page).await;
        if frame["event"]["kind"] == "output" {
            assert_eq!(frame["event"]["text"], "still here\n", "{frame}");
            break;
        }
    }
}

/// The main listener's configuration with `extra` top-level keys, a metrics
/// listener (to watch the connection gauges from outside the main listener's limit)
/// and an embedded runtime.
fn limits_config(extra: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n{extra}\n\
         [embedded]\nruntime_id = \"local\"\n"
    )
}

/// A reload that lowers `max_body_bytes` applies to the next request: a body over
/// the new limit is `413 payload_too_large`, one under it passes; a request that
/// started before the reload keeps the limit it started with. Raising it again
/// applies as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_max_body_bytes_to_the_requests_that_start_after_it() {
    let dir = tempfile::TempDir::new().unwrap();
    let backend = Backend::start(dir.path(), &limits_config("max_body_bytes = 4096")).await;
    let worker = backend.create("local").await;
    let path = format!("/api/runtimes/local/workers/{worker}/input");
    let input = |len: usize| {
        let api = backend.api.clone();
        let path = path.clone();
        async move { api.post(&path, json!({ "text": "x".repeat(len) })).await }
    };
    // `{"text":"..."}` is 11 bytes besides the text.
    let r = input(1000).await;
    assert_eq!(r.status, 202, "under the first limit: {}", r.text());

    // A request under way when the reload comes: its head is read (the server
    // asked for the body with `100 Continue`, so the handler is reading it), its
    // body not yet sent.
    let body = json!({ "text": "y".repeat(1000) }).to_string();
    let mut under_way = TcpStream::connect(backend.api.addr).await.unwrap();
    under_way
        .write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nexpect: 100-continue\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let go_on = read_answer(&mut under_way).await;
    assert_eq!(go_on.status, 100, "{go_on:?}");

    backend.rewrite(&limits_config("max_body_bytes = 256"));
    let r = backend.reload().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["restart_required"], json!([]), "{}", r.text());

    let r = input(1000).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (413, "payload_too_large"),
        "over the new limit: {}",
        r.text()
    );
    let r = input(200).await;
    assert_eq!(r.status, 202, "under the new limit: {}", r.text());

    under_way.write_all(body.as_bytes()).await.unwrap();
    let done = read_answer(&mut under_way).await;
    assert_eq!(
        done.status, 202,
        "the request under way keeps its limit: {done:?}"
    );

    // Raised again (to the default, by taking the key out).
    backend.rewrite(&limits_config(""));
    let r = backend.reload().await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = input(5000).await;
    assert_eq!(r.status, 202, "under the default limit: {}", r.text());
    backend.process.signal(Signal::SIGTERM);
    assert!(backend.process.wait().await.success());
}

/// A reload that lowers `max_connections` below the connections open cuts none of
/// them, refuses new ones with `503 overloaded` until fewer than the new limit are
/// open, and the gauge says the new limit; raising it admits more at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_max_connections_to_new_connections_and_cuts_none() {
    let dir = tempfile::TempDir::new().unwrap();
    let backend = Backend::start(dir.path(), &limits_config("max_connections = 3")).await;
    let (main, metrics) = (backend.api.addr, backend.process.metrics_addr().await);
    wait_for_gauge(metrics, "switchyard_connections_max", 3).await;
    let mut first = held_connection(main).await;
    let mut second = held_connection(main).await;
    wait_for_gauge(metrics, "switchyard_connections", 2).await;

    // Lowered to 1 (by SIGHUP: no connection needed) while 2 are open.
    backend.rewrite(&limits_config("max_connections = 1"));
    backend.process.signal(Signal::SIGHUP);
    wait_for_gauge(metrics, "switchyard_connections_max", 1).await;
    assert_refused(main, "2 open, limit 1").await;
    for held in [&mut first, &mut second] {
        let answer = healthz_on(held).await;
        assert_eq!(answer.status, 200, "an open connection is kept: {answer:?}");
    }
    drop(first);
    wait_for_gauge(metrics, "switchyard_connections", 1).await;
    assert_refused(main, "1 open, limit 1").await;
    drop(second);
    wait_for_gauge(metrics, "switchyard_connections", 0).await;
    let only = held_connection(main).await;
    assert_refused(main, "at the new limit").await;
    let refused = metric_at(metrics, "switchyard_connections_refused_total ").await;
    assert_eq!(refused, "switchyard_connections_refused_total 3");

    // Raised to 3 (by POST, on the one place there is).
    drop(only);
    wait_for_gauge(metrics, "switchyard_connections", 0).await;
    backend.rewrite(&limits_config("max_connections = 3"));
    let r = backend.reload().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["restart_required"], json!([]), "{}", r.text());
    wait_for_gauge(metrics, "switchyard_connections_max", 3).await;
    wait_for_gauge(metrics, "switchyard_connections", 0).await;
    let held = [
        held_connection(main).await,
        held_connection(main).await,
        held_connection(main).await,
    ];
    assert_refused(main, "3 open, limit 3").await;
    drop(held);
    backend.process.signal(Signal::SIGTERM);
    assert!(backend.process.wait().await.success());
}

/// SIGTERM drains for the `drain_ms` in force when it comes: a reload that shortens
/// it from minutes to a moment applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_drain_ms_to_the_next_shutdown() {
    const DRAIN: Duration = Duration::from_millis(1500);
    let dir = tempfile::TempDir::new().unwrap();
    // Longer than the process is given to exit (`switchyard_e2e::WAIT`).
    let backend = Backend::start(dir.path(), &limits_config("drain_ms = 600000")).await;
    backend.rewrite(&limits_config(&format!("drain_ms = {}", DRAIN.as_millis())));
    let r = backend.reload().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["restart_required"], json!([]), "{}", r.text());

    let signalled = Instant::now();
    backend.process.signal(Signal::SIGTERM);
    let readyz = request(backend.api.addr, http::Method::GET, "/readyz", None, &[]).await;
    // Sent just after the signal: 503 once the drain started (or 200 if the
    // signal is not handled yet); served either way.
    assert!(
        [200, 503].contains(&readyz.status.as_u16()),
        "{}",
        readyz.text()
    );
    assert!(backend.process.wait().await.success());
    let exited = signalled.elapsed();
    assert!(exited >= DRAIN, "exited {exited:?} after SIGTERM");
}
