//! Operating the real binary: the metrics after a scripted workload (parsed with the
//! Prometheus project's own parser), lingering close seen from Python's `urllib`,
//! which sends a whole request body before reading the answer, and a log reader
//! that stalls without stalling the server nor its exit.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use switchyard_e2e::client::{Api, request};
use switchyard_e2e::ports::{Refused, refused_addr};
use switchyard_e2e::proc::Switchyard;
use switchyard_e2e::prometheus::{self, Scrape};
use switchyard_e2e::ws::{Ws, connect, next_json};

const TOKEN: &str = "operations-test-runtime-token";

/// A backend with the embedded `local`, the remote `rt1` and a remote `dead` that
/// nobody serves; its metrics also on a `metrics_listen` port.
async fn start_backend(dir: &Path, remote: SocketAddr, dead: &Refused) -> Switchyard {
    let config = backend_config(dir, remote, dead);
    Switchyard::start(&["serve", "--config", config.to_str().unwrap()], &[]).await
}

/// Writes [`start_backend`]'s configuration into `dir`; its path.
fn backend_config(dir: &Path, remote: SocketAddr, dead: &Refused) -> std::path::PathBuf {
    let config = dir.join("backend.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
health_interval_ms = 200
# Set, so that the gauge does not depend on the machine's open-file limit (the
# default, 10000, is fitted to it).
max_connections = 500

[embedded]
runtime_id = "local"

[[remote]]
runtime_id = "rt1"
base_url = "http://{remote}"
token_file = "rt1.token"

[[remote]]
runtime_id = "dead"
base_url = "http://{dead}"
token_file = "rt1.token"
connect_timeout_ms = 500
request_timeout_ms = 1000
"#,
            dead = dead.addr
        ),
    )
    .unwrap();
    config
}

async fn scrape_text(addr: SocketAddr, path: &str) -> String {
    let r = request(addr, http::Method::GET, path, None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8",
        "the Prometheus text format"
    );
    r.text()
}

/// Scrapes until `ready` holds on the parsed answer (views follow health probes).
async fn scrape_until(
    addr: SocketAddr,
    what: &str,
    ready: impl Fn(&Scrape) -> bool,
) -> (String, Scrape) {
    let deadline = Instant::now() + switchyard_e2e::WAIT;
    loop {
        let text = scrape_text(addr, "/metrics").await;
        let Some(scrape) = prometheus::parse(&text) else {
            panic!("checked by the caller: a parser is installed");
        };
        if ready(&scrape) {
            return (text, scrape);
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn created_worker(r: &switchyard_e2e::client::TestResponse) -> String {
    assert_eq!(r.status, 201, "{}", r.text());
    r.json["worker_id"].as_str().unwrap().to_owned()
}

/// An echo worker on `runtime` through the backend, and a viewer of it that has read
/// its snapshot: the worker's id, its path under `/api`, and the viewer.
async fn watched_echo_worker(api: &Api, runtime: &str) -> (String, String, Ws) {
    let worker = created_worker(
        &api.post(
            &format!("/api/runtimes/{runtime}/workers"),
            json!({"profile": "echo"}),
        )
        .await,
    );
    let path = format!("/api/runtimes/{runtime}/workers/{worker}");
    let mut viewer = connect(api.addr, &format!("{path}/events/ws"), &[])
        .await
        .unwrap();
    assert_eq!(next_json(&mut viewer).await["event"]["kind"], "snapshot");
    (worker, path, viewer)
}

/// Reads frames until `outputs` output events have arrived, then until the stream
/// is quiet; returns how many event frames there were.
async fn read_events(ws: &mut Ws, outputs: usize) -> usize {
    let mut events = 0;
    let mut seen = 0;
    while seen < outputs {
        let frame = next_json(ws).await;
        assert_eq!(frame["type"], "event", "{frame}");
        events += 1;
        if frame["event"]["kind"] == "output" {
            seen += 1;
        }
    }
    while let Ok(frame) = tokio::time::timeout(Duration::from_millis(300), next_json(ws)).await {
        assert_eq!(frame["type"], "event", "{frame}");
        events += 1;
    }
    events
}

#[tokio::test]
async fn metrics_count_a_scripted_workload_with_bounded_labels() {
    if prometheus::python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let runtime = Switchyard::start_runtime(dir.path(), "rt1", TOKEN).await;
    let dead = refused_addr();
    let backend = start_backend(dir.path(), runtime.addr, &dead).await;
    let metrics_addr = backend.metrics_addr().await;
    let api = Api {
        addr: backend.addr,
        token: None,
    };

    // The workload: a worker on each live runtime, a viewer, inputs, a transcript, a
    // call to the dead remote, and a miss.
    let (remote_worker, w, mut viewer) = watched_echo_worker(&api, "rt1").await;
    let local_worker = created_worker(
        &api.post("/api/runtimes/local/workers", json!({"profile": "echo"}))
            .await,
    );
    for text in ["one\n", "two\n"] {
        let r = api
            .post(&format!("{w}/input"), json!({ "text": text }))
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    let events = 1 + read_events(&mut viewer, 2).await;
    let r = api.get(&format!("{w}/transcript")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api.get("/api/runtimes/dead/workers").await;
    assert_eq!(r.code(), "runtime_unreachable", "{}", r.text());
    let r = api.get("/api/runtimes/local/workers/w-nobody").await;
    assert_eq!(r.code(), "worker_not_found", "{}", r.text());

    // Worker counts come from the views, which the health probes refresh.
    let (text, scrape) = scrape_until(metrics_addr, "the probes to count the workers", |s| {
        s.value(
            "switchyard_runtime_workers",
            &[("runtime_id", "rt1"), ("status", "running")],
        ) == Some(1.0)
            && s.value(
                "switchyard_runtime_workers",
                &[("runtime_id", "local"), ("status", "running")],
            ) == Some(1.0)
    })
    .await;

    let requests = |route: &str, method: &str, status: &str| {
        scrape.value(
            "switchyard_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    let wt = "/api/runtimes/{runtime_id}/workers/{worker_id}";
    for (route, method, status, count) in [
        (
            "/api/runtimes/{runtime_id}/workers".to_owned(),
            "POST",
            "201",
            2.0,
        ),
        (format!("{wt}/input"), "POST", "202", 2.0),
        (format!("{wt}/transcript"), "GET", "200", 1.0),
        (format!("{wt}/events/ws"), "GET", "101", 1.0),
        (
            "/api/runtimes/{runtime_id}/workers".to_owned(),
            "GET",
            "502",
            1.0,
        ),
        (wt.to_owned(), "GET", "404", 1.0),
    ] {
        assert_eq!(
            requests(&route, method, status),
            Some(count),
            "{route} {method} {status}\n{text}"
        );
    }
    assert_eq!(
        scrape.value(
            "switchyard_http_request_duration_seconds_count",
            &[("route", &format!("{wt}/input")), ("method", "POST")]
        ),
        Some(2.0)
    );

    let calls = |runtime: &str, call: &str, outcome: &str| {
        scrape.value(
            "switchyard_upstream_calls_total",
            &[
                ("runtime_id", runtime),
                ("call", call),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(calls("rt1", "create_worker", "ok"), Some(1.0), "{text}");
    assert_eq!(calls("rt1", "input", "ok"), Some(2.0), "{text}");
    assert_eq!(calls("rt1", "transcript", "ok"), Some(1.0), "{text}");
    assert_eq!(calls("local", "create_worker", "ok"), Some(1.0), "{text}");
    assert_eq!(
        calls("local", "get_worker", "worker_not_found"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        calls("dead", "list_workers", "runtime_unreachable"),
        Some(1.0),
        "{text}"
    );
    assert!(
        calls("dead", "info", "runtime_unreachable").unwrap_or(0.0) >= 1.0,
        "the probes failed too\n{text}"
    );
    assert!(calls("rt1", "info", "ok").unwrap_or(0.0) >= 1.0, "{text}");
    assert_eq!(
        scrape.value(
            "switchyard_upstream_call_duration_seconds_count",
            &[("runtime_id", "rt1"), ("call", "input")]
        ),
        Some(2.0)
    );

    let state = |runtime: &str, state: &str| {
        scrape.value(
            "switchyard_runtime_state",
            &[("runtime_id", runtime), ("state", state)],
        )
    };
    assert_eq!(state("rt1", "ready"), Some(1.0));
    assert_eq!(state("dead", "unreachable"), Some(1.0));
    assert_eq!(state("dead", "ready"), Some(0.0));
    assert_eq!(
        scrape.sum("switchyard_runtime_state", &[("runtime_id", "dead")]),
        1.0,
        "one state at a time"
    );

    let rt1 = [("runtime_id", "rt1")];
    assert_eq!(scrape.value("switchyard_hub_channels", &rt1), Some(1.0));
    assert_eq!(scrape.value("switchyard_hub_viewers", &rt1), Some(1.0));
    assert_eq!(
        scrape.value("switchyard_hub_channels", &[("runtime_id", "dead")]),
        Some(0.0)
    );
    assert_eq!(
        scrape.value("switchyard_hub_events_relayed_total", &rt1),
        Some(events as f64),
        "every event the viewer got was relayed once\n{text}"
    );
    assert_eq!(
        scrape.value("switchyard_hub_upstream_reconnects_total", &rt1),
        Some(0.0)
    );
    assert_eq!(
        scrape.value("switchyard_hub_viewers_cut_off_total", &rt1),
        Some(0.0)
    );
    assert_eq!(
        scrape.value("switchyard_websocket_sessions", &[]),
        Some(1.0)
    );
    assert!(scrape.value("switchyard_connections", &[]).unwrap() >= 1.0);
    assert_eq!(scrape.value("switchyard_connections_max", &[]), Some(500.0));
    assert_eq!(
        scrape.value("switchyard_connections_refused_total", &[]),
        Some(0.0)
    );
    assert_eq!(
        scrape.value(
            "switchyard_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    let started = scrape.value("process_start_time_seconds", &[]).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        started <= now && started > now - 600.0,
        "{started} vs {now}"
    );
    for (family, kind) in [
        ("switchyard_http_requests", "counter"),
        ("switchyard_http_request_duration_seconds", "histogram"),
        ("switchyard_upstream_call_duration_seconds", "histogram"),
        ("switchyard_runtime_state", "gauge"),
    ] {
        assert_eq!(
            scrape.families.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }

    // Bounded labels: no worker id anywhere, runtime ids only configured ones, routes
    // only templates.
    for worker in [&remote_worker, &local_worker, "w-nobody"] {
        assert!(
            !text.contains(worker),
            "worker id {worker} in the metrics:\n{text}"
        );
    }
    assert_eq!(scrape.label_values("runtime_id"), ["dead", "local", "rt1"]);
    for route in scrape.label_values("route") {
        assert!(
            route == "unmatched" || route == "console" || !route.contains("w-"),
            "route label {route:?} is not a template"
        );
    }

    // The upstream dies: the hub reconnects (and counts it); viewers are told.
    runtime.signal(Signal::SIGTERM);
    let lost = next_json(&mut viewer).await;
    assert_eq!(lost["type"], "upstream", "{lost}");
    scrape_until(metrics_addr, "a reconnect attempt", |s| {
        s.value("switchyard_hub_upstream_reconnects_total", &rt1)
            .unwrap_or(0.0)
            >= 1.0
    })
    .await;

    // The main listener's /metrics answers too (auth off: everyone is admin), and
    // the metrics listener serves nothing else.
    assert!(
        scrape_text(backend.addr, "/metrics")
            .await
            .contains("switchyard_http_requests_total")
    );
    let r = request(metrics_addr, http::Method::GET, "/api/runtimes", None, &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (404, "route_not_found"),
        "{}",
        r.text()
    );
    let r = request(metrics_addr, http::Method::POST, "/metrics", None, &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (405, "method_not_allowed"),
        "{}",
        r.text()
    );
    let r = request(
        metrics_addr,
        http::Method::GET,
        "/metrics",
        None,
        &[("host", "evil.example")],
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "host_not_allowed"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn the_runtime_serves_its_metrics_under_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Switchyard::start_runtime(dir.path(), "rt1", TOKEN).await;
    let auth = format!("Bearer {TOKEN}");
    let r = request(runtime.addr, http::Method::GET, "/v1/metrics", None, &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (401, "unauthorized"),
        "{}",
        r.text()
    );
    let api = Api {
        addr: runtime.addr,
        token: Some(TOKEN.into()),
    };
    let worker = created_worker(&api.post("/v1/workers", json!({"profile": "echo"})).await);
    let r = request(
        runtime.addr,
        http::Method::GET,
        "/v1/metrics",
        None,
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(!text.contains(&worker), "{text}");
    let Some(scrape) = prometheus::parse(&text) else {
        return;
    };
    assert_eq!(
        scrape.value("switchyard_workers", &[("status", "running")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(scrape.value("switchyard_draining", &[]), Some(0.0));
    assert_eq!(
        scrape.value(
            "switchyard_http_requests_total",
            &[
                ("route", "/v1/workers"),
                ("method", "POST"),
                ("status", "201")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        scrape.value(
            "switchyard_http_requests_total",
            &[
                ("route", "/v1/metrics"),
                ("method", "GET"),
                ("status", "401")
            ]
        ),
        Some(1.0),
        "the refused scrape counts too\n{text}"
    );
}

/// Python's urllib POSTs `bytes` bytes to `url` (sending the whole body before it
/// reads anything) `times` times; the JSON list of `[status, code]` it saw, or
/// `["error", description]` for a failure such as a reset.
fn urllib_posts(url: &str, bytes: usize, times: usize, headers: Value) -> Vec<Value> {
    let script = r#"
import json, sys, urllib.request, urllib.error
url, size, times, headers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
body = b'{"text":"' + b"x" * size + b'"}'
seen = []
for _ in range(times):
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as answer:
            seen.append([answer.status, None])
    except urllib.error.HTTPError as error:
        seen.append([error.code, json.loads(error.read())["error"]["code"]])
    except Exception as error:
        seen.append(["error", f"{type(error).__name__}: {error}"])
print(json.dumps(seen))
"#;
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            url,
            &bytes.to_string(),
            &times.to_string(),
            &headers.to_string(),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON list")
}

#[tokio::test]
async fn urllib_posting_2_mib_reads_the_413_from_both_processes() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Switchyard::start_runtime(dir.path(), "rt1", TOKEN).await;
    let dead = refused_addr();
    let backend = start_backend(dir.path(), runtime.addr, &dead).await;
    let two_mib = 2 * 1024 * 1024;
    for (url, headers) in [
        (
            format!(
                "http://{}/api/runtimes/local/workers/w1/input",
                backend.addr
            ),
            json!({"Content-Type": "application/json"}),
        ),
        (
            format!("http://{}/v1/workers/w1/input", runtime.addr),
            json!({"Content-Type": "application/json", "Authorization": format!("Bearer {TOKEN}")}),
        ),
    ] {
        let seen = tokio::task::spawn_blocking(move || urllib_posts(&url, two_mib, 10, headers))
            .await
            .unwrap();
        for answer in &seen {
            assert_eq!(
                answer,
                &json!([413, "payload_too_large"]),
                "all answers: {seen:?}"
            );
        }
    }
}

/// Under an open-file limit too small for the default `max_connections` (256, soft
/// and hard, so it cannot be raised), the backend serves as many connections as fit
/// (256 less a quarter: 192) and answers the next with `503 overloaded`, instead of
/// failing to accept it and leaving the client without an answer.
#[tokio::test]
async fn past_what_the_open_file_limit_holds_a_client_gets_503_overloaded() {
    use switchyard_e2e::raw_http::{RawAnswer, read_answer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let script = format!(
        "ulimit -n 256 && exec '{}' serve --listen 127.0.0.1:0",
        switchyard_e2e::proc::switchyard_bin().display()
    );
    let backend = Switchyard::start_program(Path::new("/bin/sh"), &["-c", &script], &[]).await;
    const GET: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut held = Vec::new();
    for n in 0..192 {
        let mut stream = tokio::net::TcpStream::connect(backend.addr).await.unwrap();
        stream.write_all(GET).await.unwrap();
        let answer = read_answer(&mut stream).await;
        assert_eq!(answer.status, 200, "connection {n}: {answer:?}");
        held.push(stream);
    }
    let mut past = tokio::net::TcpStream::connect(backend.addr).await.unwrap();
    let _ = past.write_all(GET).await;
    let mut bytes = Vec::new();
    tokio::time::timeout(switchyard_e2e::WAIT, past.read_to_end(&mut bytes))
        .await
        .expect("answered and closed in time")
        .expect("readable");
    let answer = RawAnswer::parse(&bytes);
    assert_eq!(
        (answer.status, answer.code()),
        (503, "overloaded"),
        "{answer:?}"
    );
    // A place comes back when a connection closes.
    drop(held.pop());
    let deadline = Instant::now() + switchyard_e2e::WAIT;
    loop {
        let mut stream = tokio::net::TcpStream::connect(backend.addr).await.unwrap();
        stream.write_all(GET).await.unwrap();
        if read_answer(&mut stream).await.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no place came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Standard error is a pipe nobody reads (a paused `| less`, a log driver under
/// pressure): once it is full, the server must go on answering, dropping log lines
/// and counting them, not block its threads on the write. The runtime logs a line
/// per request at `info`; 20000 requests, pipelined on one connection, overflow the
/// pipe (64 KiB) and the log's buffer (16384 lines) several times over.
#[tokio::test]
async fn a_stalled_log_reader_never_stalls_the_server() {
    const REQUESTS: usize = 20_000;
    let runtime = Switchyard::start_with_stalled_stderr(
        &["runtime", "--listen", "127.0.0.1:0"],
        &[("RUST_LOG", "info")],
    )
    .await;
    pipelined_health_checks(runtime.addr, REQUESTS).await;
    // The log could not keep up: lines were dropped, and counted.
    let metrics = Api {
        addr: runtime.addr,
        token: None,
    }
    .get("/v1/metrics")
    .await;
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    let dropped = metrics
        .text()
        .lines()
        .find_map(|line| line.strip_prefix("switchyard_log_lines_dropped_total "))
        .unwrap_or_else(|| panic!("no dropped-lines counter in:\n{}", metrics.text()))
        .parse::<f64>()
        .unwrap();
    assert!(dropped > 0.0, "lines dropped: {dropped}");
    // Nor does it hold the exit: SIGTERM still ends the process, cleanly, soon.
    runtime.signal(Signal::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(20), runtime.wait())
        .await
        .expect("the runtime exits despite its stalled log");
    assert!(status.success(), "{status:?}");
}

/// Sends `requests` health checks pipelined on one connection (a multiple of 100),
/// and reads every answer.
async fn pipelined_health_checks(addr: SocketAddr, requests: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let hundred = b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(100);
        for _ in 0..requests / 100 {
            write.write_all(&hundred).await.unwrap();
        }
        write
    });
    // Counts the answers as they come, each ending with the health body.
    let body = "{\"status\":\"ok\"}";
    let (mut answers, mut unread, mut buffer) = (0, Vec::new(), vec![0; 64 * 1024]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while answers < requests {
        let got = tokio::time::timeout_at(deadline, read.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("the server stalled after {answers} answers"))
            .unwrap();
        assert!(got > 0, "closed after {answers} answers");
        unread.extend_from_slice(&buffer[..got]);
        let text = String::from_utf8_lossy(&unread).into_owned();
        if let Some(end) = text.rfind(body).map(|at| at + body.len()) {
            answers += text[..end].matches("HTTP/1.1 200 OK").count();
            unread.drain(..end);
        }
    }
    let _write = writer.await.unwrap();
}

/// Whether the runtime at `addr` is draining: `GET /v1/runtime` says so, or the
/// connection is refused (a slow answer is not taken for one: the caller asks
/// again).
async fn draining(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /v1/runtime HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        std::io::Result::Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(2), ask).await {
        Ok(Ok(answer)) => answer.contains("\"draining\"") || !answer.starts_with("HTTP/1.1 200"),
        Ok(Err(_)) => true,
        Err(_) => false,
    }
}

/// A second signal exits at once, without the clean shutdown the first one began
/// (here held up by a worker that ignores SIGTERM, with a long stop grace), even
/// with standard error a full pipe that nobody reads: saying so cannot block.
#[tokio::test]
async fn a_second_signal_exits_at_once_even_with_a_stalled_log_reader() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runtime.toml");
    std::fs::write(
        &config,
        r#"runtime_id = "stubborn-rt"
listen = "127.0.0.1:0"
stop_grace_ms = 60000

[profiles.stubborn]
kind = "process"
command = ["/bin/sh", "-c", "trap '' TERM INT; echo up; while :; do sleep 1; done"]
"#,
    )
    .unwrap();
    let runtime = Switchyard::start_with_stalled_stderr(
        &["runtime", "--config", config.to_str().unwrap()],
        &[("RUST_LOG", "trace")],
    )
    .await;
    let api = Api {
        addr: runtime.addr,
        token: None,
    };
    let created = api
        .post("/v1/workers", json!({"profile": "stubborn"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    // Fill the pipe: the log's writer now blocks, holding standard error.
    pipelined_health_checks(runtime.addr, 2_000).await;
    runtime.signal(Signal::SIGTERM);
    // Two signals sent before the first is taken may arrive as one: wait until the
    // runtime drains (or no longer accepts connections).
    let deadline = Instant::now() + switchyard_e2e::WAIT;
    while !draining(runtime.addr).await {
        assert!(
            Instant::now() < deadline,
            "the first SIGTERM was never taken"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runtime.signal(Signal::SIGTERM);
    let started = Instant::now();
    let status = runtime.wait().await;
    // 128 + SIGTERM's number, as a shell reports a process a SIGTERM ended.
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the second signal took {:?}",
        started.elapsed()
    );
}

/// A `RUST_LOG` that does not parse is not silently replaced: the log says so and
/// which filter applies instead.
#[tokio::test]
async fn an_invalid_rust_log_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("backend.log");
    let backend = Switchyard::start_logged(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("RUST_LOG", "warn,[bad")],
        &log,
    )
    .await;
    let line = switchyard_e2e::proc::wait_for_log_line(&log, "RUST_LOG is not a valid", 1).await;
    assert!(
        line.contains("WARN") && line.contains("logging at `info`"),
        "{line}"
    );
    backend.signal(Signal::SIGTERM);
    assert!(backend.wait().await.success());
}

/// No level of the log holds a remote's token or a frame's text: at `RUST_LOG=trace`
/// the WebSocket library's own lines (its handshake request, with `Authorization`,
/// and every frame) are capped at INFO.
#[tokio::test]
async fn even_at_trace_the_log_holds_no_token_and_no_frame_text() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Switchyard::start_runtime(dir.path(), "rt1", TOKEN).await;
    let dead = refused_addr();
    let config = backend_config(dir.path(), runtime.addr, &dead);
    let log = dir.path().join("backend.log");
    let backend = Switchyard::start_logged(
        &["serve", "--config", config.to_str().unwrap()],
        &[("RUST_LOG", "trace")],
        &log,
    )
    .await;
    let api = Api {
        addr: backend.addr,
        token: None,
    };
    let (_, w, mut viewer) = watched_echo_worker(&api, "rt1").await;
    let secret_text = "text-only-the-transcript-may-hold";
    let r = api
        .post(&format!("{w}/input"), json!({ "text": secret_text }))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    read_events(&mut viewer, 1).await;
    // Trace is on: the log has lines, from the backend's own crates among them.
    switchyard_e2e::proc::wait_for_log_line(&log, "TRACE", 1).await;
    backend.signal(Signal::SIGTERM);
    assert!(backend.wait().await.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(TOKEN), "the runtime's token in the log");
    assert!(!text.contains(secret_text), "a frame's text in the log");
}
