//! A quick check of the backend's event WebSocket through the observation hub with an
//! embedded runtime: snapshot, live events with backend cursors, resume, origin.

use std::time::Duration;

use serde_json::json;
use switchyard_e2e::client::{Api, request};
use switchyard_e2e::ws::{close_code, connect, next_json};
use switchyard_server::RunningBackend;
use switchyard_server::commands::serve::start;
use switchyard_server::config::BackendSettings;

/// A backend with its embedded runtime `local`, an echo worker on it, and the
/// path of that worker's event WebSocket.
async fn backend_with_a_worker() -> (RunningBackend, Api, String) {
    let mut settings = BackendSettings::defaults();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    let backend = start(settings).await.unwrap();
    let api = Api {
        addr: backend.server.local_addr(),
        token: None,
    };
    let created = api
        .post("/api/runtimes/local/workers", json!({"profile": "echo"}))
        .await;
    let id = created.json["worker_id"].as_str().unwrap().to_owned();
    (backend, api, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resume_and_origin_through_the_backend() {
    let (backend, api, id) = backend_with_a_worker().await;
    let addr = api.addr;
    let path = format!("/api/runtimes/local/workers/{id}/events/ws");

    let mut ws = connect(addr, &path, &[]).await.unwrap();
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["type"], "event");
    assert_eq!(snapshot["runtime_id"], "local");
    assert_eq!(snapshot["event"]["kind"], "snapshot");
    api.post(
        &format!("/api/runtimes/local/workers/{id}/input"),
        json!({"text": "a"}),
    )
    .await;
    let input = next_json(&mut ws).await;
    assert_eq!(input["event"]["kind"], "input");
    let output = next_json(&mut ws).await;
    assert_eq!(output["event"]["kind"], "output");
    let cursor = output["cursor"].as_str().unwrap().to_owned();
    drop(ws);

    api.post(
        &format!("/api/runtimes/local/workers/{id}/input"),
        json!({"text": "b"}),
    )
    .await;
    let mut resumed = connect(addr, &format!("{path}?cursor={cursor}"), &[])
        .await
        .unwrap();
    let first = next_json(&mut resumed).await;
    assert_eq!(first["event"]["kind"], "input", "{first}");
    assert_eq!(first["event"]["text"], "b");
    let second = next_json(&mut resumed).await;
    assert_eq!(second["event"]["kind"], "output");
    assert_eq!(backend.hub.channel_count(), 1);

    // Cursors are bound to their worker; origins are checked.
    let other = api
        .post("/api/runtimes/local/workers", json!({"profile": "echo"}))
        .await;
    let other_id = other.json["worker_id"].as_str().unwrap();
    let foreign = format!("/api/runtimes/local/workers/{other_id}/events/ws?cursor={cursor}");
    match connect(addr, &foreign, &[]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("expected 400, got {other:?}"),
    }
    match connect(addr, &path, &[("origin", "http://evil.example")]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    let own = format!("http://{addr}");
    assert!(
        connect(addr, &path, &[("origin", own.as_str())])
            .await
            .is_ok()
    );

    // Deleting the worker closes viewers with 4404.
    api.call(
        http::Method::POST,
        &format!("/api/runtimes/local/workers/{id}/stop"),
        None,
    )
    .await;
    api.call(
        http::Method::DELETE,
        &format!("/api/runtimes/local/workers/{id}"),
        None,
    )
    .await;
    assert_eq!(close_code(&mut resumed).await, Some(4404));
    drop(resumed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    backend.shutdown().await;
}

/// A handshake that cannot succeed (another version, no key) is refused before the
/// hub is asked, so it opens no channel and no upstream subscription (which would
/// otherwise linger for a while after the refusal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_cannot_succeed_opens_no_channel() {
    let (backend, api, id) = backend_with_a_worker().await;
    let addr = api.addr;
    let path = format!("/api/runtimes/local/workers/{id}/events/ws");
    let upgrade = [("connection", "Upgrade"), ("upgrade", "websocket")];
    let key = ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    for (what, extra) in [
        ("version 8", vec![("sec-websocket-version", "8"), key]),
        ("no key", vec![("sec-websocket-version", "13")]),
        (
            "a short key",
            vec![
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "abc"),
            ],
        ),
        ("two keys", vec![("sec-websocket-version", "13"), key, key]),
    ] {
        let headers: Vec<(&str, &str)> = upgrade.iter().copied().chain(extra).collect();
        let r = request(addr, http::Method::GET, &path, None, &headers).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (400, "invalid_request"),
            "{what}"
        );
        assert_eq!(backend.hub.channel_count(), 0, "{what}: a channel opened");
        if what == "version 8" {
            // RFC 6455, 4.4: a refused version is answered with the one spoken.
            assert_eq!(
                r.headers
                    .get("sec-websocket-version")
                    .and_then(|v| v.to_str().ok()),
                Some("13")
            );
        }
    }
    backend.shutdown().await;
}
