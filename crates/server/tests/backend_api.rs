//! The backend API (`/api`) in-process, over real Runtime API servers on loopback:
//! embedded and remote runtimes answer alike, and every way a remote can fail
//! (stopped, wrong token, silent, malformed answers) maps to the contract's codes and
//! runtime states without holding up the other runtimes.

mod backend_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use backend_common::*;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "backend-api-test-token-5c1e";

/// A remote runtime as these tests configure it: id, address, token, request timeout.
type RemoteSpec<'a> = (&'a str, SocketAddr, &'a str, Duration);

/// A backend with the embedded `local` runtime and `remotes`, without health probes.
async fn backend_with(
    remotes: &[RemoteSpec<'_>],
) -> (switchyard_server::commands::serve::RunningBackend, Api) {
    let remotes = remotes
        .iter()
        .map(|(id, addr, token, timeout)| remote(id, &base_url(*addr), token, *timeout))
        .collect();
    start_backend(backend_settings(true, remotes, NO_PROBES)).await
}

/// One step of the parity script: its name, status and normalized body.
type Step = (String, u16, Value);

/// Runs the same sequence of calls against one runtime, checking each answer's status
/// and code, and returns the normalized answers.
async fn parity_script(api: &Api, rt: &str) -> Vec<Step> {
    let mut steps: Vec<(String, TestResponse)> = Vec::new();
    let base = format!("/api/runtimes/{rt}/workers");

    let r = api
        .post(&base, json!({"profile": "echo", "label": "parity"}))
        .await;
    assert_status(&r, 201);
    assert_eq!(r.json["runtime_id"], rt, "{}", r.text());
    assert_eq!(r.json["label"], "parity");
    assert_eq!(r.json["profile"], "echo");
    let worker = r.json["worker_id"].as_str().unwrap().to_owned();
    steps.push(("create".into(), r));
    let w = format!("{base}/{worker}");

    let r = api
        .post(&format!("{w}/input"), json!({"text": "hello"}))
        .await;
    assert_status(&r, 202);
    assert!(r.json["sequence"].is_u64(), "{}", r.text());
    steps.push(("input".into(), r));

    let transcript = wait_output(api, &w, "hello").await;
    assert!(transcript["total"].as_u64().unwrap() >= 2, "{transcript}");

    let r = api.get(&format!("{w}/transcript?after=0&limit=1")).await;
    assert_status(&r, 200);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1, "{}", r.text());
    assert!(r.json["next_after"].is_u64(), "{}", r.text());
    steps.push(("transcript page 1".into(), r));

    let r = api.get(&format!("{w}/transcript?limit=100000")).await;
    assert_error(&r, 400, "limit_too_large");
    steps.push(("transcript limit too large".into(), r));

    let r = api.call(Method::POST, &format!("{w}/cancel"), None).await;
    assert_status(&r, 200);
    assert_eq!(r.json["worker_id"], worker.as_str());
    assert_eq!(r.json["status"], "running");
    steps.push(("cancel".into(), r));

    for i in 1..=2 {
        let r = api.call(Method::POST, &format!("{w}/stop"), None).await;
        assert_status(&r, 200);
        assert_eq!(r.json["worker_id"], worker.as_str());
        assert_eq!(r.json["status"], "stopped", "{}", r.text());
        steps.push((format!("stop #{i}"), r));
    }

    let r = api
        .post(&format!("{w}/input"), json!({"text": "late"}))
        .await;
    assert_error(&r, 409, "worker_not_running");
    steps.push(("input to stopped".into(), r));

    let r = api.call(Method::POST, &format!("{w}/cancel"), None).await;
    assert_error(&r, 409, "worker_not_running");
    steps.push(("cancel stopped".into(), r));

    let r = api.get(&base).await;
    assert_status(&r, 200);
    let listed = r.json["workers"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{}", r.text());
    assert_eq!(listed[0]["runtime_id"], rt);
    steps.push(("list".into(), r));

    let r = api.get(&w).await;
    assert_status(&r, 200);
    assert_eq!(r.json["status"], "stopped");
    assert_eq!(r.json["runtime_id"], rt);
    steps.push(("detail".into(), r));

    let r = api.get(&format!("{w}/transcript")).await;
    assert_status(&r, 200);
    steps.push(("transcript after stop".into(), r));

    let r = api.call(Method::DELETE, &w, None).await;
    assert_status(&r, 204);
    assert!(r.raw.is_empty());
    steps.push(("delete".into(), r));

    let r = api.get(&w).await;
    assert_error(&r, 404, "worker_not_found");
    steps.push(("detail after delete".into(), r));

    let r = api.post(&base, json!({"profile": "no-such-profile"})).await;
    assert_error(&r, 400, "unknown_profile");
    steps.push(("unknown profile".into(), r));

    let r = api
        .post(&base, json!({"profile": "echo", "command": "/bin/sh"}))
        .await;
    assert_error(&r, 400, "invalid_request");
    steps.push(("unknown field".into(), r));

    for bad in [".hidden", "a%20b", &"x".repeat(65)] {
        let r = api.get(&format!("{base}/{bad}")).await;
        assert_error(&r, 400, "invalid_id");
        steps.push((format!("bad worker id {bad}"), r));
        let r = api
            .call(Method::POST, &format!("{base}/{bad}/stop"), None)
            .await;
        assert_error(&r, 400, "invalid_id");
        steps.push((format!("stop bad worker id {bad}"), r));
    }

    for (method, tail) in [
        (Method::GET, ""),
        (Method::POST, "/stop"),
        (Method::POST, "/cancel"),
        (Method::DELETE, ""),
        (Method::GET, "/transcript"),
    ] {
        let r = api
            .call(method.clone(), &format!("{base}/w-unknown-1{tail}"), None)
            .await;
        assert_error(&r, 404, "worker_not_found");
        steps.push((format!("unknown worker {method} {tail}"), r));
    }

    let r = api.get(&base).await;
    assert_status(&r, 200);
    assert_eq!(r.json["workers"], json!([]), "{}", r.text());
    steps.push(("list after delete".into(), r));

    steps
        .into_iter()
        .map(|(name, r)| {
            let body = if r.raw.is_empty() {
                Value::Null
            } else {
                normalize(&r.json, &[(worker.as_str(), "<worker>")])
            };
            (name, r.status.as_u16(), body)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_and_remote_runtimes_answer_alike() {
    let remote_rt = start_runtime("remote-host", Some(TOKEN)).await;
    let (backend, api) = backend_with(&[(
        "remote",
        remote_rt.server.local_addr(),
        TOKEN,
        Duration::from_secs(10),
    )])
    .await;

    let local = wait_cached_state(&api, "local", "ready").await;
    let remote_view = wait_cached_state(&api, "remote", "ready").await;
    assert_eq!(local["source"], "embedded");
    assert_eq!(remote_view["source"], "remote");
    let list = api.get("/api/runtimes").await;
    assert_status(&list, 200);
    assert_eq!(list.json["runtimes"].as_array().unwrap().len(), 2);
    for id in ["local", "remote"] {
        let entry = runtime_entry(&list.json, id);
        assert_eq!(entry["state"], "ready", "{entry}");
        assert!(entry["last_error"].is_null(), "{entry}");
        assert!(entry["last_seen"].is_string(), "{entry}");
        assert!(
            entry["profiles"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "echo" && p["kind"] == "echo"),
            "{entry}"
        );
    }

    let on_local = parity_script(&api, "local").await;
    let on_remote = parity_script(&api, "remote").await;
    assert_eq!(on_local.len(), on_remote.len());
    for (l, r) in on_local.iter().zip(&on_remote) {
        assert_eq!(l, r, "embedded and remote answer differently");
    }

    // The refreshed views differ only in id, name, source and times.
    let strip = |mut v: Value| {
        let map = v.as_object_mut().unwrap();
        for key in ["runtime_id", "display_name", "source", "last_seen"] {
            map.remove(key);
        }
        v
    };
    let l = api.get("/api/runtimes/local").await;
    let r = api.get("/api/runtimes/remote").await;
    assert_status(&l, 200);
    assert_status(&r, 200);
    assert_eq!(l.json["runtime_id"], "local");
    assert_eq!(r.json["runtime_id"], "remote");
    assert_eq!(l.json["source"], "embedded");
    assert_eq!(r.json["source"], "remote");
    assert_eq!(l.json["state"], "ready");
    assert_eq!(strip(l.json.clone()), strip(r.json.clone()));

    backend.shutdown().await;
    remote_rt.shutdown().await;
}

/// Starts a backend with the embedded runtime and one remote runtime `remote`, served
/// by a real runtime server.
async fn backend_with_remote(
    health_interval: Duration,
) -> (
    switchyard_server::commands::runtime::RunningRuntime,
    switchyard_server::commands::serve::RunningBackend,
    Api,
) {
    let rt = start_runtime("remote", Some(TOKEN)).await;
    let (backend, api) = start_backend(backend_settings(
        true,
        vec![remote(
            "remote",
            &base_url(rt.server.local_addr()),
            TOKEN,
            Duration::from_secs(10),
        )],
        health_interval,
    ))
    .await;
    wait_cached_state(&api, "remote", "ready").await;
    (rt, backend, api)
}

/// Shuts the remote down and checks the backend reports it unreachable.
async fn check_unreachable_after_shutdown(
    rt: switchyard_server::commands::runtime::RunningRuntime,
    api: &Api,
) {
    create_echo(api, "remote", "before").await;
    rt.shutdown().await;

    for _ in 0..2 {
        let r = api.get("/api/runtimes/remote/workers").await;
        assert_error(&r, 502, "runtime_unreachable");
        assert_eq!(r.json["error"]["runtime_id"], "remote");
    }
    let r = api
        .post(
            "/api/runtimes/remote/workers",
            json!({"profile": "echo", "label": "x"}),
        )
        .await;
    assert_error(&r, 502, "runtime_unreachable");

    let view = api.get("/api/runtimes/remote").await;
    assert_status(&view, 200);
    assert_eq!(view.json["state"], "unreachable", "{}", view.text());
    assert_eq!(view.json["source"], "remote");
    assert_eq!(
        view.json["last_error"]["code"],
        "runtime_unreachable",
        "{}",
        view.text()
    );
    assert!(
        view.json["last_error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(view.json["last_seen"].is_string(), "{}", view.text());

    // The embedded runtime is unaffected.
    let r = api.get("/api/runtimes/local/workers").await;
    assert_status(&r, 200);
    let local = api.get("/api/runtimes/local").await;
    assert_eq!(local.json["state"], "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_remote_is_unreachable_and_a_call_brings_it_back_on_the_same_port() {
    let (rt, backend, api) = backend_with_remote(NO_PROBES).await;
    let addr = rt.server.local_addr();
    check_unreachable_after_shutdown(rt, &api).await;

    let rt = start_runtime_at(addr, "remote", Some(TOKEN)).await;
    assert_eq!(rt.server.local_addr(), addr);

    // No probe runs: the cached view stays unreachable until a call succeeds.
    let list = api.get("/api/runtimes").await;
    assert_eq!(runtime_entry(&list.json, "remote")["state"], "unreachable");

    let r = api.get("/api/runtimes/remote/workers").await;
    assert_status(&r, 200);
    assert_eq!(r.json["workers"], json!([]), "a fresh in-memory runtime");
    let list = api.get("/api/runtimes").await;
    let entry = runtime_entry(&list.json, "remote");
    assert_eq!(entry["state"], "ready", "{entry}");
    assert!(entry["last_error"].is_null(), "{entry}");

    let worker = create_echo(&api, "remote", "after").await;
    let r = api
        .get(&format!("/api/runtimes/remote/workers/{worker}"))
        .await;
    assert_status(&r, 200);

    backend.shutdown().await;
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probe_marks_a_restarted_remote_ready() {
    let (rt, backend, api) = backend_with_remote(Duration::from_millis(200)).await;
    let addr = rt.server.local_addr();
    check_unreachable_after_shutdown(rt, &api).await;

    // The probe sees it down too (the cached view, no call made).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let entry = wait_cached_state(&api, "remote", "unreachable").await;
    assert_eq!(entry["last_error"]["code"], "runtime_unreachable");

    let rt = start_runtime_at(addr, "remote", Some(TOKEN)).await;
    // Only the background probe can turn it ready: no call is made to it.
    let entry = wait_cached_state(&api, "remote", "ready").await;
    assert!(entry["last_error"].is_null(), "{entry}");
    assert!(entry["last_seen"].is_string());

    let r = api.get("/api/runtimes/remote/workers").await;
    assert_status(&r, 200);

    backend.shutdown().await;
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_runtime_auth_failed() {
    let rt = start_runtime("remote", Some(TOKEN)).await;
    let (backend, api) = backend_with(&[(
        "remote",
        rt.server.local_addr(),
        "not-the-token",
        Duration::from_secs(10),
    )])
    .await;

    let r = api.get("/api/runtimes/remote/workers").await;
    assert_error(&r, 502, "runtime_auth_failed");
    assert_eq!(r.json["error"]["runtime_id"], "remote");
    assert!(
        r.headers.get(http::header::WWW_AUTHENTICATE).is_none(),
        "the client's own credentials were fine: no challenge"
    );
    let r = api
        .post("/api/runtimes/remote/workers", json!({"profile": "echo"}))
        .await;
    assert_error(&r, 502, "runtime_auth_failed");
    let r = api
        .call(Method::POST, "/api/runtimes/remote/workers/w-1/stop", None)
        .await;
    assert_error(&r, 502, "runtime_auth_failed");

    let view = api.get("/api/runtimes/remote").await;
    assert_status(&view, 200);
    assert_eq!(view.json["state"], "auth_failed", "{}", view.text());
    assert_eq!(view.json["last_error"]["code"], "runtime_auth_failed");
    let list = api.get("/api/runtimes").await;
    assert_eq!(runtime_entry(&list.json, "remote")["state"], "auth_failed");
    assert_eq!(runtime_entry(&list.json, "local")["state"], "ready");

    backend.shutdown().await;
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_remote_times_out_and_does_not_hold_up_the_embedded_runtime() {
    let silent = SilentPeer::start("127.0.0.1").await;
    let slow = SilentPeer::start("127.0.0.1").await;
    let hang = SilentPeer::start("127.0.0.1").await;
    let (backend, api) = backend_with(&[
        ("silent", silent.addr, TOKEN, Duration::from_millis(500)),
        // A second or more: kept in the connection thread's coarse deadlines
        // (`switchyard_transport::deadline`), which fire within a tick after.
        ("slow", slow.addr, TOKEN, Duration::from_millis(1200)),
        ("hang", hang.addr, TOKEN, Duration::from_secs(20)),
    ])
    .await;
    wait_cached_state(&api, "local", "ready").await;

    // A call to a silent peer answers 504 after its request timeout (500 ms on a
    // tokio timer, 1.2 s on the connection thread's coarse deadlines), not before.
    let input = || Some(json!({"text": "x"}));
    let cases = [
        ("silent", Method::GET, "/workers", None),
        ("silent", Method::GET, "/workers/w-1", None),
        (
            "silent",
            Method::POST,
            "/workers",
            Some(json!({"profile": "echo"})),
        ),
        ("silent", Method::POST, "/workers/w-1/input", input()),
        ("slow", Method::GET, "/workers/w-1", None),
        ("slow", Method::POST, "/workers/w-1/input", input()),
    ];
    for (runtime, method, route, body) in cases {
        let (at_least, under) = match runtime {
            // Upper bounds with a few seconds of slack for a busy machine, still
            // far below the `hang` runtime's 20 s.
            "silent" => (Duration::from_millis(450), Duration::from_secs(4)),
            _ => (Duration::from_millis(1200), Duration::from_millis(4500)),
        };
        let path = format!("/api/runtimes/{runtime}{route}");
        let started = Instant::now();
        let r = api.call(method.clone(), &path, body).await;
        let elapsed = started.elapsed();
        assert_error(&r, 504, "runtime_timeout");
        assert_eq!(r.json["error"]["runtime_id"], runtime);
        assert!(
            elapsed >= at_least,
            "{method} {path} timed out early: {elapsed:?}"
        );
        assert!(elapsed < under, "{method} {path}: {elapsed:?}");
    }

    let started = Instant::now();
    let view = api.get("/api/runtimes/silent").await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_status(&view, 200);
    assert_eq!(view.json["state"], "unreachable", "{}", view.text());
    assert_eq!(view.json["last_error"]["code"], "runtime_timeout");

    // While a call to `hang` waits, the embedded runtime answers at once.
    let before = hang.accepted();
    let hanging = tokio::spawn({
        let api = api.clone();
        async move { api.get("/api/runtimes/hang/workers").await }
    });
    let deadline = Instant::now() + WAIT;
    while hang.accepted() == before {
        assert!(Instant::now() < deadline, "the backend never called `hang`");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..3 {
        let started = Instant::now();
        let worker = create_echo(&api, "local", "meanwhile").await;
        let r = api
            .post(
                &format!("/api/runtimes/local/workers/{worker}/input"),
                json!({"text": "hi"}),
            )
            .await;
        assert_status(&r, 202);
        let r = api.get("/api/runtimes/local").await;
        assert_status(&r, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the embedded runtime was held up: {:?}",
            started.elapsed()
        );
    }
    assert!(
        !hanging.is_finished(),
        "the call to `hang` should still wait"
    );
    hanging.abort();

    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_are_runtime_protocol_errors() {
    let garbage = CannedPeer::ok_json("127.0.0.1", "{not json").await;
    let html = CannedPeer::start("127.0.0.1", |_| Canned {
        status: "200 OK",
        content_type: "text/html",
        body: "<html>hello</html>".into(),
    })
    .await;
    let wrong_shape = CannedPeer::ok_json("127.0.0.1", r#"{"unexpected":true}"#).await;
    let (backend, api) = backend_with(&[
        ("garbage", garbage.addr, TOKEN, Duration::from_secs(5)),
        ("html", html.addr, TOKEN, Duration::from_secs(5)),
        ("shape", wrong_shape.addr, TOKEN, Duration::from_secs(5)),
    ])
    .await;

    for rt in ["garbage", "html", "shape"] {
        for (method, path, body) in [
            (Method::GET, format!("/api/runtimes/{rt}/workers"), None),
            (Method::GET, format!("/api/runtimes/{rt}/workers/w-1"), None),
            (
                Method::POST,
                format!("/api/runtimes/{rt}/workers"),
                Some(json!({"profile": "echo"})),
            ),
            (
                Method::GET,
                format!("/api/runtimes/{rt}/workers/w-1/transcript"),
                None,
            ),
            (
                Method::POST,
                format!("/api/runtimes/{rt}/workers/w-1/stop"),
                None,
            ),
        ] {
            let r = api.call(method.clone(), &path, body).await;
            assert_error(&r, 502, "runtime_protocol_error");
            assert_eq!(r.json["error"]["runtime_id"], rt, "{method} {path}");
        }
        let view = api.get(&format!("/api/runtimes/{rt}")).await;
        assert_status(&view, 200);
        assert_eq!(view.json["state"], "incompatible", "{}", view.text());
        assert_eq!(view.json["last_error"]["code"], "runtime_protocol_error");
    }
    let r = api.get("/api/runtimes/local/workers").await;
    assert_status(&r, 200);

    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_workers_lists_the_others_when_one_runtime_is_dead() {
    let rt = start_runtime("remote", Some(TOKEN)).await;
    let dead = refused_addr().await;
    let (backend, api) = backend_with(&[
        (
            "remote",
            rt.server.local_addr(),
            TOKEN,
            Duration::from_secs(10),
        ),
        ("dead", dead.addr, TOKEN, Duration::from_secs(10)),
    ])
    .await;
    let local_worker = create_echo(&api, "local", "l").await;
    let remote_worker = create_echo(&api, "remote", "r").await;

    let r = api.get("/api/workers").await;
    assert_status(&r, 200);
    let workers = r.json["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2, "{}", r.text());
    let find = |id: &str| {
        workers
            .iter()
            .find(|w| w["worker_id"] == id)
            .unwrap_or_else(|| panic!("no worker {id} in {}", r.text()))
    };
    assert_eq!(find(&local_worker)["runtime_id"], "local");
    assert_eq!(find(&remote_worker)["runtime_id"], "remote");
    assert_only_unavailable(&r, "dead", "runtime_unreachable");

    // Filters pass through to every runtime.
    let r = api.get("/api/workers?status=stopped").await;
    assert_status(&r, 200);
    assert_eq!(r.json["workers"], json!([]), "{}", r.text());
    let r = api.get("/api/workers?status=bogus").await;
    assert_error(&r, 400, "invalid_request");

    backend.shutdown().await;
    rt.shutdown().await;
}

/// `limit` on `GET /api/workers` caps what each runtime contributes; it is not
/// passed on as a page size, which a runtime with a smaller page maximum would
/// refuse (and be reported as not answering).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_workers_limit_is_a_cap_per_runtime() {
    let mut config = runtime_config("small");
    config.limits.transcript_page_max = 2;
    let rt = start_runtime_from("127.0.0.1:0".parse().unwrap(), config, Some(TOKEN), None).await;
    let (backend, api) = backend_with(&[(
        "small",
        rt.server.local_addr(),
        TOKEN,
        Duration::from_secs(10),
    )])
    .await;
    for _ in 0..5 {
        create_echo(&api, "small", "s").await;
    }
    create_echo(&api, "local", "l").await;
    create_echo(&api, "local", "l").await;

    let count = |r: &TestResponse, runtime: &str| {
        r.json["workers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["runtime_id"] == runtime)
            .count()
    };
    // Read in pages of 2, all five.
    for path in ["/api/workers", "/api/workers?limit=100"] {
        let r = api.get(path).await;
        assert_status(&r, 200);
        assert_eq!(r.json["unavailable"], json!([]), "{path}: {}", r.text());
        assert_eq!(count(&r, "small"), 5, "{path}: {}", r.text());
        assert_eq!(count(&r, "local"), 2, "{path}: {}", r.text());
        assert_eq!(r.json.get("truncated"), None, "{path}: nothing left out");
    }
    // Cut at the limit: the runtime with more is named, the other is not.
    let r = api.get("/api/workers?limit=3").await;
    assert_eq!(r.json["unavailable"], json!([]), "{}", r.text());
    assert_eq!(count(&r, "small"), 3, "{}", r.text());
    assert_eq!(count(&r, "local"), 2, "{}", r.text());
    assert_eq!(r.json["truncated"], json!(["small"]), "{}", r.text());
    // Exactly at the limit is not cut.
    let r = api.get("/api/workers?limit=5").await;
    assert_eq!(count(&r, "small"), 5, "{}", r.text());
    assert_eq!(r.json.get("truncated"), None, "{}", r.text());

    backend.shutdown().await;
    rt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_workers_answers_within_the_timeout_of_a_silent_runtime() {
    let silent = SilentPeer::start("127.0.0.1").await;
    let (backend, api) =
        backend_with(&[("silent", silent.addr, TOKEN, Duration::from_millis(500))]).await;
    let local_worker = create_echo(&api, "local", "l").await;

    let started = Instant::now();
    let r = api.get("/api/workers").await;
    let elapsed = started.elapsed();
    assert_status(&r, 200);
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    let workers = r.json["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{}", r.text());
    assert_eq!(workers[0]["worker_id"], local_worker.as_str());
    assert_eq!(workers[0]["runtime_id"], "local");
    assert_only_unavailable(&r, "silent", "runtime_timeout");

    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_errors_and_health() {
    let mut settings = backend_settings(true, Vec::new(), NO_PROBES);
    settings.max_body_bytes = 4096;
    let (backend, api) = start_backend(settings).await;

    let r = api.get("/healthz").await;
    assert_status(&r, 200);
    assert_eq!(r.json["status"], "ok");

    for path in [
        "/api/runtimes/nope",
        "/api/runtimes/nope/workers",
        "/api/runtimes/nope/workers/w-1",
        "/api/runtimes/nope/workers/w-1/transcript",
    ] {
        let r = api.get(path).await;
        assert_error(&r, 404, "runtime_not_found");
        assert_eq!(r.json["error"]["runtime_id"], "nope");
    }
    let r = api
        .post("/api/runtimes/nope/workers", json!({"profile": "echo"}))
        .await;
    assert_error(&r, 404, "runtime_not_found");
    let r = api
        .call(Method::POST, "/api/runtimes/nope/workers/w-1/stop", None)
        .await;
    assert_error(&r, 404, "runtime_not_found");
    let r = api
        .call(Method::DELETE, "/api/runtimes/nope/workers/w-1", None)
        .await;
    assert_error(&r, 404, "runtime_not_found");

    let long = "r".repeat(65);
    for bad in [
        ".hidden",
        "a%20b",
        "a%2Fb",
        "caf%C3%A9",
        "a:b",
        long.as_str(),
    ] {
        for path in [
            format!("/api/runtimes/{bad}"),
            format!("/api/runtimes/{bad}/workers"),
            format!("/api/runtimes/{bad}/workers/w-1"),
        ] {
            let r = api.get(&path).await;
            assert_error(&r, 400, "invalid_id");
        }
    }

    for path in [
        "/api/nope",
        "/api",
        "/nope",
        "/api/runtimes/local/workers/w-1/nope",
    ] {
        let r = api.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text());
        assert!(r.json["error"]["code"].is_string(), "{path}: {}", r.text());
    }

    let big = json!({"profile": "echo", "label": "x".repeat(10_000)});
    let r = api.post("/api/runtimes/local/workers", big).await;
    assert_error(&r, 413, "payload_too_large");
    let worker = create_echo(&api, "local", "small").await;
    let w = format!("/api/runtimes/local/workers/{worker}");
    let r = api
        .post(&format!("{w}/input"), json!({"text": "y".repeat(10_000)}))
        .await;
    assert_error(&r, 413, "payload_too_large");
    let r = raw_call(&api, Method::POST, &format!("{w}/stop"), vec![b' '; 10_000]).await;
    assert_error(&r, 413, "payload_too_large");

    // A declared length over the limit is refused before the body arrives.
    let mut stream = TcpStream::connect(api.addr).await.unwrap();
    let head = format!(
        "POST /api/runtimes/local/workers HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 104857600\r\n\r\n{{",
        api.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(WAIT, stream.read(&mut answer))
        .await
        .expect("an answer without sending the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    for (path, body) in [
        (
            "/api/runtimes/local/workers".to_owned(),
            json!({"profile": "echo", "bogus": 1}),
        ),
        (format!("{w}/input"), json!({"text": "x", "bogus": 1})),
        (format!("{w}/input"), json!({"txt": "x"})),
        ("/api/runtimes/local/workers".to_owned(), json!([1, 2])),
    ] {
        let r = api.post(&path, body).await;
        assert_error(&r, 400, "invalid_request");
    }
    let r = raw_call(
        &api,
        Method::POST,
        "/api/runtimes/local/workers",
        b"{nope".to_vec(),
    )
    .await;
    assert_error(&r, 400, "invalid_request");

    // A bad query is the caller's mistake, answered before any runtime is asked (so
    // `GET /api/workers` does not list every runtime as unavailable for it); an empty
    // value is a bad value, not an absent parameter.
    for (path, code) in [
        ("/api/workers?bogus=1".to_owned(), "invalid_request"),
        ("/api/workers?limit=0".to_owned(), "invalid_request"),
        ("/api/workers?limit=".to_owned(), "invalid_request"),
        ("/api/workers?after=".to_owned(), "invalid_id"),
        (
            "/api/runtimes/local/workers?limit=0".to_owned(),
            "invalid_request",
        ),
        ("/api/runtimes?bogus=1".to_owned(), "invalid_request"),
        (format!("{w}?bogus=1"), "invalid_request"),
        (format!("{w}/transcript?after=-1"), "invalid_request"),
        (format!("{w}/transcript?after="), "invalid_request"),
    ] {
        let r = api.get(&path).await;
        assert_error(&r, 400, code);
    }

    // A method a route does not answer is 405 with the ones it does in Allow (HEAD
    // with GET; `head.rs` has HEAD itself).
    for (method, path, allow) in [
        (Method::PUT, "/api/runtimes".to_owned(), "GET, HEAD"),
        (
            Method::PATCH,
            "/api/session".to_owned(),
            "GET, HEAD, POST, DELETE",
        ),
        (Method::PUT, w.clone(), "GET, HEAD, DELETE"),
        (Method::GET, format!("{w}/input"), "POST"),
        // ... whatever the ids in the path.
        (
            Method::TRACE,
            format!("/api/runtimes/{}/workers/x/events/ws", "a".repeat(65)),
            "GET, HEAD",
        ),
        (Method::PUT, "/api/runtimes/.bad".to_owned(), "GET, HEAD"),
    ] {
        let r = api.call(method.clone(), &path, None).await;
        assert_error(&r, 405, "method_not_allowed");
        assert_eq!(r.headers["allow"], allow, "{method} {path}");
    }

    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_on_a_silent_remote_times_out_within_its_request_timeout() {
    let silent = SilentPeer::start("127.0.0.1").await;
    let (backend, api) =
        backend_with(&[("silent", silent.addr, TOKEN, Duration::from_millis(500))]).await;
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        api.call(Method::POST, "/api/runtimes/silent/workers/w-1/stop", None),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no answer {:?} after the call, with a 500 ms request timeout",
            started.elapsed()
        )
    });
    assert_error(&r, 504, "runtime_timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
    backend.shutdown().await;
}

/// The first frame of a worker's event stream through the backend.
async fn first_frame(api: &Api, rt: &str, worker: &str) -> Value {
    use futures_util::StreamExt;
    let url = format!(
        "ws://{}/api/runtimes/{rt}/workers/{worker}/events/ws",
        api.addr
    );
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("a handshake in time")
        .expect("an upgrade");
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("an open stream")
            .expect("a frame");
        if let Ok(text) = message.to_text()
            && !text.is_empty()
        {
            return serde_json::from_str(text).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_snapshots_name_the_backend_runtime_id() {
    let remote_rt = start_runtime("remote-host", Some(TOKEN)).await;
    let (backend, api) = backend_with(&[(
        "remote",
        remote_rt.server.local_addr(),
        TOKEN,
        Duration::from_secs(10),
    )])
    .await;
    let mut snapshots = Vec::new();
    for rt in ["local", "remote"] {
        let worker = create_echo(&api, rt, "ws").await;
        let r = api
            .post(
                &format!("/api/runtimes/{rt}/workers/{worker}/input"),
                json!({"text": "hi"}),
            )
            .await;
        assert_status(&r, 202);
        wait_output(&api, &format!("/api/runtimes/{rt}/workers/{worker}"), "hi").await;
        let frame = first_frame(&api, rt, &worker).await;
        assert_eq!(frame["type"], "event", "{frame}");
        assert_eq!(frame["runtime_id"], rt, "{frame}");
        assert_eq!(frame["worker_id"], worker.as_str(), "{frame}");
        assert_eq!(frame["event"]["kind"], "snapshot", "{frame}");
        assert_eq!(frame["event"]["worker"]["runtime_id"], rt, "{frame}");
        let mut event = frame["event"].clone();
        event.as_object_mut().unwrap().remove("cursor");
        snapshots.push(normalize(&event, &[(worker.as_str(), "<worker>")]));
    }
    assert_eq!(snapshots[0], snapshots[1]);
    backend.shutdown().await;
    remote_rt.shutdown().await;
}

/// A runtime's own `500 internal`: the client gets `internal` with the backend's
/// request id (nothing of the runtime's text), and the backend's log says which
/// runtime failed which call, with the runtime's message, once while it repeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtimes_internal_error_is_logged_with_the_runtime_and_the_call() {
    logs::install();
    let broken = CannedPeer::start("127.0.0.1", |_| Canned {
        status: "500 Internal Server Error",
        content_type: "application/json",
        body: r#"{"error":{"code":"internal","message":"internal error; quote request id rt-77"}}"#
            .into(),
    })
    .await;
    let (backend, api) =
        backend_with(&[("broken", broken.addr, TOKEN, Duration::from_secs(5))]).await;
    let r = api.get("/api/runtimes/broken/workers/w-1").await;
    assert_error(&r, 500, "internal");
    let request_id = r.headers["x-request-id"].to_str().unwrap().to_owned();
    let message = r.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&request_id) && !message.contains("rt-77"),
        "{message}"
    );
    // Once at ERROR, with the runtime's own message (its request id), however many
    // calls and probes fail after it.
    for _ in 0..3 {
        let r = api.get("/api/runtimes/broken/workers/w-1").await;
        assert_error(&r, 500, "internal");
    }
    let logged: Vec<_> = logs::events()
        .into_iter()
        .filter(|e| e.level == tracing::Level::ERROR && e.field("runtime_id") == Some("broken"))
        .collect();
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert!(
        logged[0]
            .field("runtime_message")
            .is_some_and(|m| m.contains("rt-77")),
        "{logged:#?}"
    );
    assert!(logged[0].field("call").is_some(), "{logged:#?}");
    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lacking_runtime_is_unsupported_a_foreign_server_protocol_a_draining_one_unavailable() {
    let lacking = CannedPeer::start("127.0.0.1", |_| Canned {
        status: "501 Not Implemented",
        content_type: "text/plain",
        body: "not implemented".into(),
    })
    .await;
    let foreign = CannedPeer::start("127.0.0.1", |_| Canned {
        status: "404 Not Found",
        content_type: "text/html",
        body: "<h1>Not Found</h1>".into(),
    })
    .await;
    let draining = start_runtime("draining", Some(TOKEN)).await;
    draining.runtime.shutdown().await.unwrap();
    let (backend, api) = backend_with(&[
        ("lacking", lacking.addr, TOKEN, Duration::from_secs(5)),
        ("foreign", foreign.addr, TOKEN, Duration::from_secs(5)),
        (
            "draining",
            draining.server.local_addr(),
            TOKEN,
            Duration::from_secs(5),
        ),
    ])
    .await;

    // A runtime that says it lacks a route (501) is believed; a server that has no
    // route every runtime serves (404) is not a runtime, or base_url's path is wrong.
    for (rt, status, code) in [
        ("lacking", 501, "unsupported"),
        ("foreign", 502, "runtime_protocol_error"),
    ] {
        let r = api.get(&format!("/api/runtimes/{rt}/workers/w-1")).await;
        assert_error(&r, status, code);
        assert_eq!(r.json["error"]["runtime_id"], rt);
        let r = api
            .post(
                &format!("/api/runtimes/{rt}/workers"),
                json!({"profile": "echo"}),
            )
            .await;
        assert_error(&r, status, code);
        if rt == "foreign" {
            let message = r.json["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("base_url's path"), "{message}");
        }
    }

    let r = api
        .post("/api/runtimes/draining/workers", json!({"profile": "echo"}))
        .await;
    assert_error(&r, 503, "runtime_unavailable");
    assert_eq!(r.json["error"]["runtime_id"], "draining");

    backend.shutdown().await;
    draining.shutdown().await;
}

/// A runtime without a token (on loopback) refuses browsers and any Host but a
/// loopback one; the backend, reaching it by `127.0.0.1` or `localhost`, is neither:
/// every command, the transcript and the event stream go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_without_a_token_serves_the_backend_by_either_loopback_name() {
    use switchyard_e2e::ws::{connect, next_json};

    let rt = start_runtime("open", None).await;
    let port = rt.server.local_addr().port();
    let (backend, api) = start_backend(backend_settings(
        false,
        vec![
            remote(
                "by-ip",
                &format!("http://127.0.0.1:{port}"),
                TOKEN,
                Duration::from_secs(10),
            ),
            remote(
                "by-name",
                &format!("http://localhost:{port}"),
                TOKEN,
                Duration::from_secs(10),
            ),
        ],
        NO_PROBES,
    ))
    .await;
    for runtime in ["by-ip", "by-name"] {
        let base = format!("/api/runtimes/{runtime}/workers");
        let r = api.get(&format!("/api/runtimes/{runtime}")).await;
        assert_eq!(r.json["state"], "ready", "{runtime}: {}", r.text());
        let worker = create_echo(&api, runtime, "open").await;
        let w = format!("{base}/{worker}");
        let mut ws = connect(api.addr, &format!("{w}/events/ws"), &[])
            .await
            .unwrap();
        assert_eq!(next_json(&mut ws).await["event"]["kind"], "snapshot");
        let r = api.post(&format!("{w}/input"), json!({"text": "hi"})).await;
        assert_status(&r, 202);
        wait_output(&api, &w, "hi").await;
        assert_status(&api.get(&w).await, 200);
        assert_status(&api.get(&base).await, 200);
        assert_status(
            &api.call(Method::POST, &format!("{w}/cancel"), None).await,
            200,
        );
        assert_status(
            &api.call(Method::POST, &format!("{w}/stop"), None).await,
            200,
        );
        assert_status(&api.call(Method::DELETE, &w, None).await, 204);
    }
    let r = api.get("/api/workers").await;
    assert_eq!(r.json["unavailable"], json!([]), "{}", r.text());
    backend.shutdown().await;
    rt.shutdown().await;
}
