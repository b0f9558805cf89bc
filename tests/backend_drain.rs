//! Draining, with the real binary: on SIGTERM `switchyard serve` turns `GET /readyz`
//! to 503 at once, keeps serving everything else (REST, open event streams) for
//! `drain_ms`, then shuts down as always: event streams closed with 1001, exit 0.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;
use switchyard_e2e::client::Api;
use switchyard_e2e::proc::Switchyard;
use switchyard_e2e::raw_http::read_answer;
use switchyard_e2e::ws::{close_code, connect, next_json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Long enough for the checks below to fit well inside the drain on a loaded
/// machine (they are a few requests, but a 2-core CI runner under a full test run
/// can take a second or more for them).
const DRAIN: Duration = Duration::from_millis(6000);

/// A backend serving `config` on a port of its choosing.
async fn serve(config: &Path) -> Switchyard {
    Switchyard::start(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_for_drain_ms_then_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("backend.toml");
    std::fs::write(
        &config,
        format!("drain_ms = {}\n[embedded]\n", DRAIN.as_millis()),
    )
    .unwrap();
    let backend = serve(&config).await;
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

/// A runtime that takes every connection and never answers; tells `asked` each
/// request path it reads.
async fn silent_runtime(asked: tokio::sync::mpsc::UnboundedSender<String>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let asked = asked.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = stream.read(&mut chunk).await {
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&chunk[..n]);
                    while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        let text = String::from_utf8_lossy(&head[..end]).into_owned();
                        let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
                        let _ = asked.send(path);
                        head.drain(..end + 4);
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_shutdown_is_answered_within_its_runtime_timeout() {
    // A call to a remote may take its request timeout; one in flight when the
    // backend shuts down gets its answer (here the 504 of a runtime that never
    // answers), not a connection closed without one.
    let (asked, mut paths) = tokio::sync::mpsc::unbounded_channel();
    let runtime = silent_runtime(asked).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("slow.token");
    std::fs::write(&token_file, "a-token-for-the-silent-runtime").unwrap();
    let config = dir.path().join("backend.toml");
    std::fs::write(
        &config,
        format!(
            "[[remote]]\nruntime_id = \"slow\"\nbase_url = \"http://{runtime}\"\n\
             token_file = \"{}\"\nrequest_timeout_ms = 8000\n",
            token_file.display()
        ),
    )
    .unwrap();
    let backend = serve(&config).await;
    let mut client = TcpStream::connect(backend.addr).await.unwrap();
    client
        .write_all(
            b"GET /api/runtimes/slow/workers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    // The backend is waiting on the runtime for this request.
    loop {
        let path = tokio::time::timeout(switchyard_e2e::WAIT, paths.recv())
            .await
            .expect("the backend asks the runtime in time")
            .unwrap();
        if path.starts_with("/v1/workers") {
            break;
        }
    }
    backend.signal(Signal::SIGTERM);
    let answer = read_answer(&mut client).await;
    assert_eq!(answer.status, 504, "{}", answer.head);
    assert_eq!(answer.code(), "runtime_timeout", "{:?}", answer.body);
    assert!(backend.wait().await.success());
}
