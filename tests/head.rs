//! `HEAD` with the real binary, through a remote runtime: a `switchyard serve` with
//! `[auth]` relays a client's `HEAD` of a worker, a list or a transcript on a
//! `switchyard runtime` process as the `GET` the runtime answers, and gives the client
//! the head of its own `GET` answer (status, fields, `Content-Length`) with no body;
//! a stranger's `HEAD` is refused as its `GET` is; a `HEAD` with a WebSocket
//! handshake's headers opens no stream; and the runtime itself answers `HEAD` the same
//! way under its token.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_e2e::client::Api;
use switchyard_e2e::proc::Switchyard;
use switchyard_e2e::raw_http::{self, assert_head_is_get_head};

const RUNTIME_TOKEN: &str = "head-test-runtime-token";

/// A backend whose only runtime is the remote `rt1`, with `[auth]` and one admin
/// token (made by `switchyard token`), which it returns.
async fn start_backend(dir: &Path, runtime: &Switchyard) -> (Switchyard, String) {
    let token_file = dir.join("admin.token");
    let (status, lines, stderr) = Switchyard::run_captured(
        &[
            "token",
            "--name",
            "ada",
            "--role",
            "admin",
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(status.success(), "switchyard token: {stderr}");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    let config = dir.join("backend.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"

[[remote]]
runtime_id = "rt1"
base_url = "http://{addr}"
token_file = "rt1.token"

[auth]

{lines}"#,
            addr = runtime.addr
        ),
    )
    .unwrap();
    let backend = Switchyard::start(&["serve", "--config", config.to_str().unwrap()], &[]).await;
    (backend, token)
}

/// The runtime's `/v1/metrics`.
async fn runtime_metrics(runtime: &Switchyard) -> String {
    let api = Api {
        addr: runtime.addr,
        token: Some(RUNTIME_TOKEN.to_owned()),
    };
    let r = api.get("/v1/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// The requests counted in `metrics` whose labels contain `labels`.
fn requests(metrics: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_http_requests_total{") && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_head_through_a_remote_runtime_is_its_get_without_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Switchyard::start_runtime(dir.path(), "rt1", RUNTIME_TOKEN).await;
    let (backend, token) = start_backend(dir.path(), &runtime).await;
    let admin = Api {
        addr: backend.addr,
        token: Some(token.clone()),
    };

    // A worker on the remote runtime that has said something.
    let r = admin
        .post("/api/runtimes/rt1/workers", json!({"profile": "echo"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let worker = r.json["worker_id"].as_str().unwrap().to_owned();
    let w = format!("/api/runtimes/rt1/workers/{worker}");
    let r = admin
        .post(&format!("{w}/input"), json!({"text": "hello\n"}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let deadline = Instant::now() + switchyard_e2e::WAIT;
    let echoed = |page: &serde_json::Value| {
        page["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["kind"] == "output"))
    };
    while !echoed(&admin.get(&format!("{w}/transcript")).await.json) {
        assert!(Instant::now() < deadline, "no echo");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let before = runtime_metrics(&runtime).await;
    let bearer = format!("Bearer {token}");
    let admin_headers = [("authorization", bearer.as_str())];
    // (path, its status for the admin, the runtime's route it is relayed to)
    let relayed = [
        (w.clone(), 200, "/v1/workers/{worker_id}"),
        ("/api/runtimes/rt1/workers".to_owned(), 200, "/v1/workers"),
        (
            "/api/runtimes/rt1/workers?status=running&limit=5".to_owned(),
            200,
            "/v1/workers",
        ),
        (
            format!("{w}/transcript?limit=1"),
            200,
            "/v1/workers/{worker_id}/transcript",
        ),
        ("/api/workers".to_owned(), 200, "/v1/workers"),
        // The runtime's own refusal, relabelled by the backend.
        (
            "/api/runtimes/rt1/workers/w-nobody".to_owned(),
            404,
            "/v1/workers/{worker_id}",
        ),
    ];
    for (path, status, _) in &relayed {
        let what = format!("HEAD {path}");
        let head = assert_head_is_get_head(
            backend.addr,
            path,
            &admin_headers,
            ("/healthz", false),
            &what,
        )
        .await;
        assert_eq!(head.status, *status, "{what}: {}", head.head);
        // A stranger is refused as its GET is, before anything reaches the runtime.
        let what = format!("HEAD {path} without credentials");
        let head =
            assert_head_is_get_head(backend.addr, path, &[], ("/healthz", false), &what).await;
        assert_eq!(head.status, 401, "{what}: {}", head.head);
        assert_eq!(head.header("www-authenticate").as_deref(), Some("Bearer"));
    }

    // The runtime saw each of those HEADs, and each GET, as a GET; never a HEAD.
    let after = runtime_metrics(&runtime).await;
    for (path, _, upstream) in &relayed {
        let labels = format!("route=\"{upstream}\",method=\"GET\"");
        assert!(
            requests(&after, &labels) >= requests(&before, &labels) + 2.0,
            "{path}: {upstream} was asked twice more\n{after}"
        );
    }
    assert_eq!(
        requests(&after, "method=\"HEAD\""),
        0.0,
        "the runtime never gets a HEAD from the backend\n{after}"
    );

    // A HEAD with a WebSocket handshake's headers opens no stream: it is answered as
    // a plain GET of the route is (400), and the connection stays HTTP.
    let upgrade = [
        ("authorization", bearer.as_str()),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let events = format!("{w}/events/ws");
    let (head, next) = raw_http::head_then_get(backend.addr, &events, &upgrade, "/healthz").await;
    assert_eq!((head.status, next.status), (400, 200), "{}", head.head);
    let get = raw_http::get(backend.addr, &events, &admin_headers).await;
    assert_eq!(
        raw_http::comparable(&head, false),
        raw_http::comparable(&get, false)
    );
    let r = admin
        .get(&format!("/api/runtimes/rt1/workers/{worker}"))
        .await;
    assert_eq!(r.status, 200);
    let info = Api {
        addr: runtime.addr,
        token: Some(RUNTIME_TOKEN.to_owned()),
    }
    .get("/v1/runtime")
    .await;
    assert_eq!(info.json["subscribers"], 0, "{}", info.text());

    // The runtime answers HEAD itself too, under its token.
    let runtime_bearer = format!("Bearer {RUNTIME_TOKEN}");
    let runtime_headers = [("authorization", runtime_bearer.as_str())];
    for path in [
        format!("/v1/workers/{worker}"),
        "/v1/workers".to_owned(),
        format!("/v1/workers/{worker}/transcript"),
        "/v1/runtime".to_owned(),
        "/v1/health".to_owned(),
    ] {
        let what = format!("HEAD {path} on the runtime");
        let head = assert_head_is_get_head(
            runtime.addr,
            &path,
            &runtime_headers,
            ("/v1/health", false),
            &what,
        )
        .await;
        assert_eq!(head.status, 200, "{what}: {}", head.head);
        let head =
            assert_head_is_get_head(runtime.addr, &path, &[], ("/v1/health", false), &what).await;
        let expected = if path == "/v1/health" { 200 } else { 401 };
        assert_eq!(head.status, expected, "{what} without the token");
    }
    drop(backend);
    drop(runtime);
}
