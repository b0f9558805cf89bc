//! Draining, with the real binary: on SIGTERM `switchyard serve` turns `GET /readyz`
//! to 503 at once, keeps serving everything else (REST, open event streams) for
//! `drain_ms`, then shuts down as always: event streams closed with 1001, exit 0.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;
use switchyard_e2e::client::Api;
use switchyard_e2e::proc::Switchyard;
use switchyard_e2e::ws::{close_code, connect, next_json};

/// Long enough for the checks below to fit well inside the drain on a loaded
/// machine (they are a few requests, but a 2-core CI runner under a full test run
/// can take a second or more for them).
const DRAIN: Duration = Duration::from_millis(6000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_for_drain_ms_then_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("backend.toml");
    std::fs::write(
        &config,
        format!("drain_ms = {}\n[embedded]\n", DRAIN.as_millis()),
    )
    .unwrap();
    let backend = Switchyard::start(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let api = Api {
        addr: backend.addr,
        token: None,
    };
    assert_eq!(api.get("/readyz").await.status, 200);
    let created = api
        .post("/api/runtimes/local/workers", json!({"profile": "echo"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let worker = created.json["worker_id"].as_str().unwrap().to_owned();
    let path = format!("/api/runtimes/local/workers/{worker}");
    let mut ws = connect(api.addr, &format!("{path}/events/ws"), &[])
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["event"]["kind"], "snapshot");

    // The drain starts when the process gets the signal: measure from before it is
    // sent, so that `closed >= DRAIN` holds however late this thread runs again.
    let signalled = Instant::now();
    backend.signal(Signal::SIGTERM);
    loop {
        let r = api.get("/readyz").await;
        if r.status == 503 {
            assert_eq!(r.code(), "runtime_unavailable", "{}", r.text());
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            signalled.elapsed() < DRAIN / 2,
            "/readyz still 200 {:?} after SIGTERM",
            signalled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Draining, not stopping: the API and the open stream still work.
    assert_eq!(api.get("/healthz").await.status, 200);
    let sent = api
        .post(&format!("{path}/input"), json!({"text": "still here\n"}))
        .await;
    assert_eq!(sent.status, 202, "{}", sent.text());
    loop {
        let frame = next_json(&mut ws).await;
        if frame["event"]["kind"] == "output" {
            assert_eq!(frame["event"]["text"], "still here\n");
            break;
        }
    }
    let checked = signalled.elapsed();
    assert!(checked < DRAIN, "checks took {checked:?}: inconclusive");

    assert_eq!(close_code(&mut ws).await, Some(1001));
    let closed = signalled.elapsed();
    assert!(
        closed >= DRAIN,
        "closed {closed:?} after SIGTERM, before the drain ended"
    );
    assert!(backend.wait().await.success());
}
