//! `GET /readyz` and draining, in process: ready while serving; once draining starts
//! `/readyz` answers 503 at once while every other route (REST, new connections, open
//! event streams) is served as before for the drain period; then shutdown closes the
//! event streams with 1001.

mod backend_common;

use std::time::{Duration, Instant};

use backend_common::*;
use serde_json::json;
use switchyard_e2e::ws::{close_frame, connect, next_json};

/// Creates an echo worker on `local` and returns its id.
async fn echo_worker(api: &Api) -> String {
    let r = api
        .post("/api/runtimes/local/workers", json!({"profile": "echo"}))
        .await;
    assert_status(&r, 201);
    r.json["worker_id"].as_str().unwrap().to_owned()
}

/// Sends `text` to the worker as input.
async fn send(api: &Api, worker: &str, text: &str) {
    let r = api
        .post(
            &format!("/api/runtimes/local/workers/{worker}/input"),
            json!({ "text": text }),
        )
        .await;
    assert_status(&r, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_while_the_backend_keeps_serving_for_the_drain_period() {
    // Long enough for the checks below (a few requests and an event) to fit well
    // inside it on a loaded 2-core machine.
    let drain = Duration::from_millis(4000);
    let mut settings = backend_settings(true, Vec::new(), NO_PROBES);
    settings.drain = drain;
    let (backend, api) = start_backend(settings).await;

    let ready = api.get("/readyz").await;
    assert_status(&ready, 200);
    assert_eq!(ready.json, json!({"status": "ok"}));
    // Lenient like /healthz: a load balancer's probe must not fail on a query.
    assert_status(&api.get("/readyz?from=lb").await, 200);
    let refused = api.post("/readyz", json!({})).await;
    assert_error(&refused, 405, "method_not_allowed");

    let worker = echo_worker(&api).await;
    let events = format!("/api/runtimes/local/workers/{worker}/events/ws");
    let mut ws = connect(api.addr, &events, &[]).await.unwrap();
    assert_eq!(next_json(&mut ws).await["event"]["kind"], "snapshot");

    let started = Instant::now();
    let ((), during) = tokio::join!(backend.drain(), async {
        // join! polls the drain first: the flag is set before this block runs.
        let r = api.get("/readyz").await;
        assert_error(&r, 503, "runtime_unavailable");
        assert!(r.text().contains("draining"), "{}", r.text());
        assert_status(&api.get("/healthz").await, 200);
        // New connections and commands are still served, and live events flow.
        send(&api, &worker, "during the drain\n").await;
        let mut outputs = Vec::new();
        while outputs.is_empty() {
            let frame = next_json(&mut ws).await;
            if frame["event"]["kind"] == "output" {
                outputs.push(frame["event"]["text"].as_str().unwrap().to_owned());
            }
        }
        let second = echo_worker(&api).await;
        let r = api
            .get(&format!("/api/runtimes/local/workers/{second}"))
            .await;
        assert_status(&r, 200);
        (outputs, started.elapsed())
    });
    let (outputs, checked_after) = during;
    assert_eq!(outputs, ["during the drain\n"]);
    assert!(
        checked_after < drain,
        "the checks took {checked_after:?}, longer than the drain itself: inconclusive"
    );
    assert!(
        started.elapsed() >= drain,
        "drained for {:?}",
        started.elapsed()
    );
    assert_error(&api.get("/readyz").await, 503, "runtime_unavailable");

    backend.shutdown().await;
    assert_eq!(
        close_frame(&mut ws).await,
        Some((1001, "shutting_down".to_owned()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_drain_ms_draining_is_immediate() {
    let (backend, api) = start_backend(backend_settings(true, Vec::new(), NO_PROBES)).await;
    assert_eq!(backend.drain.current(), Duration::ZERO);
    let started = Instant::now();
    backend.drain().await;
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_error(&api.get("/readyz").await, 503, "runtime_unavailable");
    assert_status(&api.get("/healthz").await, 200);
    backend.shutdown().await;
}
