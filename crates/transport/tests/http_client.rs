//! `HttpRuntimeClient` against real loopback peers: a tiny fake runtime that answers
//! canned responses and records what it got, plus peers that refuse, close at once,
//! or never answer.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchyard_protocol::{
    CreateWorkerRequest, ErrorCode, InputRequest, OutputStream, ResizeRequest, TranscriptEntry,
    WorkerId, WorkerStatus,
};
use switchyard_transport::{
    HttpRuntimeClient, RemoteEndpoint, RuntimeClient, SecretToken, TimeoutPhase, TransportError,
    UnreachableKind, WorkerQuery,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const TOKEN: &str = "tok-s3cr3t-Zq9x";
/// Generous, for calls whose deadline is not under test (busy 2-core machines).
const GENEROUS: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- fake peers

/// What the fake runtime saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    accept: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A canned answer.
#[derive(Clone)]
struct Canned {
    status: u16,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn answer_json(status: u16, body: Value) -> Canned {
    Canned {
        status,
        content_type: Some("application/json"),
        body: serde_json::to_vec(&body).unwrap(),
    }
}

fn answer_raw(status: u16, content_type: Option<&'static str>, body: &str) -> Canned {
    Canned {
        status,
        content_type,
        body: body.as_bytes().to_vec(),
    }
}

fn answer_empty(status: u16) -> Canned {
    Canned {
        status,
        content_type: None,
        body: Vec::new(),
    }
}

type Responder = Arc<dyn Fn(&Seen) -> Canned + Send + Sync>;

/// A loopback peer; aborted on drop.
struct Peer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Peer {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn listen() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// A fake runtime speaking HTTP/1.1 with keep-alive, answering with `respond`.
async fn fake_runtime(respond: impl Fn(&Seen) -> Canned + Send + Sync + 'static) -> Peer {
    let respond: Responder = Arc::new(respond);
    let (listener, port) = listen().await;
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let accepted = accepted.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let respond = respond.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: hyper::Request<Incoming>| {
                        let respond = respond.clone();
                        let seen = seen.clone();
                        async move {
                            let header = |name: &str| {
                                request
                                    .headers()
                                    .get(name)
                                    .map(|v| v.to_str().unwrap().to_owned())
                            };
                            let mut record = Seen {
                                method: request.method().to_string(),
                                path: request.uri().path().to_owned(),
                                query: request.uri().query().map(str::to_owned),
                                authorization: header("authorization"),
                                accept: header("accept"),
                                content_type: header("content-type"),
                                body: Bytes::new(),
                            };
                            record.body = request.into_body().collect().await.unwrap().to_bytes();
                            let canned = respond(&record);
                            seen.lock().unwrap().push(record);
                            let mut response = hyper::Response::builder().status(canned.status);
                            if let Some(ct) = canned.content_type {
                                response = response.header("content-type", ct);
                            }
                            Ok::<_, Infallible>(
                                response.body(Full::new(Bytes::from(canned.body))).unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    };
    Peer {
        port,
        accepted,
        seen,
        task,
    }
}

/// A peer that accepts connections and closes each at once.
async fn closing_peer() -> Peer {
    let (listener, port) = listen().await;
    let accepted = Arc::new(AtomicUsize::new(0));
    let task = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        })
    };
    Peer {
        port,
        accepted,
        seen: Arc::default(),
        task,
    }
}

/// A peer that accepts connections, holds them open and never answers.
async fn silent_peer() -> Peer {
    let (listener, port) = listen().await;
    let accepted = Arc::new(AtomicUsize::new(0));
    let task = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        })
    };
    Peer {
        port,
        accepted,
        seen: Arc::default(),
        task,
    }
}

// ---------------------------------------------------------------- helpers

fn endpoint(base_url: String, request_timeout: Duration) -> RemoteEndpoint {
    RemoteEndpoint::new(
        base_url,
        SecretToken::new(TOKEN).unwrap(),
        Duration::from_secs(5),
        request_timeout,
    )
}

fn client_for(port: u16) -> HttpRuntimeClient {
    client_with_timeout(port, GENEROUS)
}

fn client_with_timeout(port: u16, request_timeout: Duration) -> HttpRuntimeClient {
    let client = HttpRuntimeClient::new(endpoint(
        format!("http://127.0.0.1:{port}"),
        request_timeout,
    ))
    .unwrap();
    assert_no_leak(&format!("{client:?}"), Some(port));
    client
}

/// Neither the token, the loopback address, the port nor the DNS name appear.
fn assert_no_leak(text: &str, port: Option<u16>) {
    let mut forbidden = vec![
        TOKEN.to_owned(),
        "127.0.0.1".to_owned(),
        "nonexistent".to_owned(),
    ];
    if let Some(port) = port {
        forbidden.push(port.to_string());
    }
    for bad in forbidden {
        assert!(!text.contains(&bad), "{bad:?} leaked into {text:?}");
    }
}

/// Unwraps the error and checks its `Display` and `Debug` for leaks.
fn failed<T: std::fmt::Debug>(
    result: Result<T, TransportError>,
    port: Option<u16>,
) -> TransportError {
    let error = result.expect_err("the call should fail");
    assert_no_leak(&format!("{error}"), port);
    assert_no_leak(&format!("{error:?}"), port);
    error
}

fn wid(s: &str) -> WorkerId {
    WorkerId::new(s).unwrap()
}

fn detail_json(id: &str, status: &str) -> Value {
    json!({
        "worker_id": id, "runtime_id": "build-1", "profile": "echo", "label": "demo",
        "status": status, "created_at": "2026-11-26T09:00:00Z",
        "updated_at": "2026-11-26T09:00:01Z", "exit": null,
        "input_count": 0, "output_bytes": 0
    })
}

fn runtime_info_json() -> Value {
    json!({
        "runtime_id": "build-1", "display_name": "Build host 1", "version": "0.1.0",
        "api_version": 1, "status": "running", "epoch": "e1",
        "capabilities": ["events_ws"],
        "profiles": [{"name": "echo", "kind": "echo", "description": null}],
        "workers": {"starting": 0, "running": 1, "exited": 0, "stopped": 0, "failed": 0, "lost": 0},
        "limits": {"max_workers": 64, "max_input_bytes": 65536, "max_body_bytes": 1048576,
            "transcript_page_max": 1000, "event_backlog": 4096, "input_queue": 64},
        "future_field": "ignored"
    })
}

fn error_json(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

// ---------------------------------------------------------------- success paths

#[tokio::test]
async fn request_shape_carries_method_path_query_bearer_and_json_body() {
    let peer = fake_runtime(|seen| match seen.method.as_str() {
        "POST" => answer_json(201, detail_json("w-1", "running")),
        _ => answer_json(200, json!({"workers": [], "next": null})),
    })
    .await;
    let client = client_for(peer.port);

    client
        .create_worker(&CreateWorkerRequest {
            profile: "echo".into(),
            label: Some("demo & more".into()),
            owner: None,
        })
        .await
        .unwrap();
    client
        .list_workers(&WorkerQuery {
            status: Some(WorkerStatus::Running),
            after: Some(wid("w-1")),
            limit: Some(5),
        })
        .await
        .unwrap();
    client.list_workers(&WorkerQuery::default()).await.unwrap();

    let seen = peer.seen();
    assert_eq!(seen.len(), 3);
    let create = &seen[0];
    assert_eq!(create.method, "POST");
    assert_eq!(create.path, "/v1/workers");
    assert_eq!(create.query, None);
    assert_eq!(
        create.authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    // Only the lines a runtime reads: each extra one costs its parser per request.
    assert_eq!(create.accept, None);
    assert_eq!(create.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        create.json(),
        json!({"profile": "echo", "label": "demo & more"})
    );

    let list = &seen[1];
    assert_eq!(list.method, "GET");
    assert_eq!(list.path, "/v1/workers");
    assert_eq!(
        list.query.as_deref(),
        Some("status=running&limit=5&after=w-1")
    );
    assert_eq!(
        list.authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(list.content_type, None);
    assert!(list.body.is_empty());

    assert_eq!(seen[2].query, None, "an empty query adds no `?`");
}

#[tokio::test]
async fn base_url_path_prefix_is_kept_and_trailing_slash_dropped() {
    let peer = fake_runtime(|_| answer_json(200, runtime_info_json())).await;
    let client = HttpRuntimeClient::new(endpoint(
        format!("http://127.0.0.1:{}/rt/a/", peer.port),
        GENEROUS,
    ))
    .unwrap();
    client.info().await.unwrap();
    assert_eq!(peer.seen()[0].path, "/rt/a/v1/runtime");
}

#[tokio::test]
async fn every_successful_call_decodes() {
    let peer = fake_runtime(|seen| match (seen.method.as_str(), seen.path.as_str()) {
        ("GET", "/v1/runtime") => answer_json(200, runtime_info_json()),
        ("GET", "/v1/workers") => answer_json(
            200,
            json!({"workers": [detail_json("w-1", "running")], "next": "w-1"}),
        ),
        ("POST", "/v1/workers") => answer_json(201, detail_json("w-2", "starting")),
        ("GET", "/v1/workers/w-1") => answer_json(200, detail_json("w-1", "running")),
        ("POST", "/v1/workers/w-1/input") => answer_json(202, json!({"sequence": 4})),
        ("POST", "/v1/workers/w-1/resize") => {
            answer_json(200, json!({"worker_id": "w-1", "cols": 120, "rows": 40}))
        }
        ("POST", "/v1/workers/w-1/cancel") => {
            answer_json(200, json!({"worker_id": "w-1", "status": "running"}))
        }
        ("POST", "/v1/workers/w-1/stop") => {
            answer_json(200, json!({"worker_id": "w-1", "status": "stopped"}))
        }
        ("DELETE", "/v1/workers/w-1") => answer_empty(204),
        ("GET", "/v1/workers/w-1/transcript") => answer_json(
            200,
            json!({"items": [
                    {"sequence": 4, "at": "2026-11-26T09:00:00Z", "kind": "input", "text": "hi\n"},
                    {"sequence": 5, "at": "2026-11-26T09:00:00Z", "kind": "output",
                     "stream": "stdout", "text": "hi\n"}
                ], "next_after": 5, "total": 9}),
        ),
        _ => answer_json(404, error_json("route_not_found", "no route")),
    })
    .await;
    let client = client_for(peer.port);
    let w1 = wid("w-1");

    let info = client.info().await.unwrap();
    assert_eq!(info.runtime_id.as_str(), "build-1");
    assert_eq!(info.api_version, 1);
    assert_eq!(info.workers.running, 1);

    let list = client
        .list_workers(&WorkerQuery {
            limit: Some(1),
            ..WorkerQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(list.workers.len(), 1);
    assert_eq!(list.next, Some(w1.clone()));

    let created = client
        .create_worker(&CreateWorkerRequest {
            profile: "echo".into(),
            label: None,
            owner: None,
        })
        .await
        .unwrap();
    assert_eq!(created.worker_id, wid("w-2"));
    assert_eq!(created.status, WorkerStatus::Starting);

    let detail = client.get_worker(&w1).await.unwrap();
    assert_eq!(detail.status, WorkerStatus::Running);
    assert_eq!(detail.label.as_deref(), Some("demo"));

    let accepted = client
        .input(
            &w1,
            &InputRequest {
                text: "hi\n".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(accepted.sequence, 4);

    let cancelled = client.cancel(&w1).await.unwrap();
    assert_eq!(cancelled.status, WorkerStatus::Running);
    let stopped = client.stop(&w1).await.unwrap();
    assert_eq!(
        (stopped.worker_id, stopped.status),
        (w1.clone(), WorkerStatus::Stopped)
    );

    client.delete(&w1).await.unwrap();

    let page = client.transcript(&w1, 3, Some(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.next_after, Some(5));
    assert_eq!(page.total, 9);
    assert_eq!(
        page.items[1].entry,
        TranscriptEntry::Output {
            stream: OutputStream::Stdout,
            text: "hi\n".into()
        }
    );

    let resized = client
        .resize(
            &w1,
            &ResizeRequest {
                cols: 120,
                rows: 40,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (resized.worker_id, resized.cols, resized.rows),
        (w1.clone(), 120, 40)
    );

    let seen = peer.seen();
    let route = |i: usize| (seen[i].method.as_str(), seen[i].path.as_str());
    assert_eq!(route(0), ("GET", "/v1/runtime"));
    assert_eq!(seen[1].query.as_deref(), Some("limit=1"));
    assert_eq!(seen[4].json(), json!({"text": "hi\n"}));
    assert_eq!(route(5), ("POST", "/v1/workers/w-1/cancel"));
    assert!(seen[5].body.is_empty());
    assert_eq!(route(6), ("POST", "/v1/workers/w-1/stop"));
    assert_eq!(route(7), ("DELETE", "/v1/workers/w-1"));
    assert_eq!(route(8), ("GET", "/v1/workers/w-1/transcript"));
    assert_eq!(seen[8].query.as_deref(), Some("after=3&limit=2"));
    assert_eq!(route(9), ("POST", "/v1/workers/w-1/resize"));
    assert_eq!(seen[9].json(), json!({"cols": 120, "rows": 40}));
    for s in &seen {
        assert_eq!(
            s.authorization.as_deref(),
            Some(&*format!("Bearer {TOKEN}"))
        );
    }
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let peer = fake_runtime(|_| answer_json(200, runtime_info_json())).await;
    let client = client_for(peer.port);
    client.info().await.unwrap();
    // The pool takes the connection back on a spawned task once the answer is read;
    // give it a moment so the second call finds it idle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.info().await.unwrap();
    assert_eq!(peer.seen().len(), 2);
    assert_eq!(
        peer.accepted(),
        1,
        "both calls should share one TCP connection"
    );
}

// ---------------------------------------------------------------- transport failures

#[tokio::test]
async fn refused_connection_is_unreachable_refused() {
    // Bound, never listening: refused, and no other test can take the port.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    let client = client_for(port);
    let error = failed(client.info().await, Some(port));
    assert_eq!(
        error,
        TransportError::Unreachable {
            kind: UnreachableKind::Refused
        }
    );
}

#[tokio::test]
async fn peer_closing_at_once_is_unreachable_reset() {
    let peer = closing_peer().await;
    let client = client_for(peer.port);
    let error = failed(client.info().await, Some(peer.port));
    assert_eq!(
        error,
        TransportError::Unreachable {
            kind: UnreachableKind::Reset
        }
    );
    assert!(peer.accepted() >= 1);
}

#[tokio::test]
async fn unresolvable_host_is_unreachable_dns() {
    let client =
        HttpRuntimeClient::new(endpoint("http://nonexistent.invalid:80".into(), GENEROUS)).unwrap();
    assert_no_leak(&format!("{client:?}"), None);
    let error = failed(client.info().await, None);
    // `.invalid` never resolves; a sandbox without DNS may fail differently, but the
    // runtime must count as unreachable either way.
    assert!(
        matches!(
            error,
            TransportError::Unreachable {
                kind: UnreachableKind::Dns | UnreachableKind::Other
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn silent_peer_times_out_within_request_timeout() {
    let peer = silent_peer().await;
    let timeout = Duration::from_millis(300);
    let client = client_with_timeout(peer.port, timeout);
    let started = Instant::now();
    let error = failed(client.info().await, Some(peer.port));
    let elapsed = started.elapsed();
    assert_eq!(
        error,
        TransportError::Timeout {
            phase: TimeoutPhase::Request,
            timeout_ms: 300
        }
    );
    assert!(elapsed >= timeout, "gave up early: {elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_secs(2),
        "took {elapsed:?}"
    );
}

// ---------------------------------------------------------------- answers

#[tokio::test]
async fn status_401_is_auth_rejected() {
    let peer = fake_runtime(|_| answer_json(401, error_json("unauthorized", "bad token"))).await;
    let error = failed(client_for(peer.port).info().await, Some(peer.port));
    assert_eq!(error, TransportError::AuthRejected);
}

#[tokio::test]
async fn worker_not_found_passes_through() {
    let peer = fake_runtime(|_| {
        answer_json(
            404,
            json!({"error": {"code": "worker_not_found", "message": "no worker w-9",
                "worker_id": "w-9"}}),
        )
    })
    .await;
    let error = failed(
        client_for(peer.port).get_worker(&wid("w-9")).await,
        Some(peer.port),
    );
    let TransportError::Runtime { status, detail } = error else {
        panic!("expected a Runtime error, got {error:?}");
    };
    assert_eq!(status, 404);
    assert_eq!(detail.code, ErrorCode::WorkerNotFound);
    assert_eq!(detail.message, "no worker w-9");
    assert_eq!(detail.worker_id, Some(wid("w-9")));
}

/// A route every runtime serves, answered "no such route" (404/405, typed or not):
/// not a runtime, or the base URL's path is wrong, so a protocol error that says so.
/// A runtime's own 501, and a missing resize route (a runtime without terminals),
/// are `unsupported`.
#[tokio::test]
async fn missing_routes_are_protocol_errors_unless_optional_or_501() {
    let peer = fake_runtime(|seen| match seen.path.as_str() {
        "/v1/workers/w-1/cancel" | "/v1/workers/w-1/resize" => {
            answer_json(404, error_json("route_not_found", "no route"))
        }
        "/v1/workers/w-1/stop" => {
            answer_json(405, error_json("method_not_allowed", "POST is not allowed"))
        }
        "/v1/workers/w-1" => answer_raw(404, Some("text/html"), "<h1>Not Found</h1>"),
        _ => answer_json(501, error_json("unsupported", "no transcripts here")),
    })
    .await;
    let client = client_for(peer.port);
    let port = Some(peer.port);
    let w1 = wid("w-1");
    let unsupported = |what: &str| TransportError::Unsupported { what: what.into() };
    let not_served = |error: TransportError, route: &str| {
        assert!(
            matches!(&error, TransportError::Protocol { reason }
                if reason.contains(&format!("does not serve {route}"))
                    && reason.contains("base_url's path")),
            "{route}: {error:?}"
        );
    };

    not_served(
        failed(client.cancel(&w1).await, port),
        "POST /v1/workers/{id}/cancel",
    );
    not_served(
        failed(client.stop(&w1).await, port),
        "POST /v1/workers/{id}/stop",
    );
    not_served(
        failed(client.get_worker(&w1).await, port),
        "GET /v1/workers/{id}",
    );
    assert_eq!(
        failed(client.transcript(&w1, 0, None).await, port),
        unsupported("GET /v1/workers/{id}/transcript")
    );
    let resize = ResizeRequest { cols: 80, rows: 24 };
    assert_eq!(
        failed(client.resize(&w1, &resize).await, port),
        unsupported("POST /v1/workers/{id}/resize")
    );
}

/// A server that is not a runtime (here one answering every path 404 with HTML)
/// is a protocol error on the route every runtime serves, so the registry calls
/// it `incompatible`, not a `ready` runtime lacking every route.
#[tokio::test]
async fn a_server_without_the_runtime_route_is_protocol() {
    let peer = fake_runtime(|_| answer_raw(404, Some("text/html"), "<h1>Not Found</h1>")).await;
    let client = client_for(peer.port);
    let port = Some(peer.port);
    let error = failed(client.info().await, port);
    assert!(
        matches!(&error, TransportError::Protocol { reason } if reason.contains("not a Switchyard runtime")),
        "{error:?}"
    );
    let peer = fake_runtime(|_| answer_json(501, error_json("unsupported", "no"))).await;
    let error = failed(client_for(peer.port).info().await, Some(peer.port));
    assert!(
        matches!(error, TransportError::Protocol { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn malformed_json_is_protocol() {
    let peer =
        fake_runtime(|_| answer_raw(200, Some("application/json"), "{\"worker_id\": ")).await;
    let error = failed(
        client_for(peer.port).get_worker(&wid("w-1")).await,
        Some(peer.port),
    );
    let TransportError::Protocol { reason } = error else {
        panic!("expected Protocol, got {error:?}");
    };
    assert!(reason.starts_with("expected a WorkerDetail: "), "{reason}");
}

/// `DELETE` is answered `204 No Content`; any other success (a body, junk or
/// not, where none is due) is not taken as the worker removed.
#[tokio::test]
async fn a_delete_answered_other_than_204_is_protocol() {
    for canned in [
        answer_raw(200, Some("application/json"), "{\"runtime_id\": [ not json"),
        answer_raw(200, Some("text/plain"), "deleted"),
        answer_empty(200),
        answer_empty(202),
    ] {
        let shown = format!(
            "{} {:?}",
            canned.status,
            String::from_utf8_lossy(&canned.body)
        );
        let peer = fake_runtime(move |_| canned.clone()).await;
        let error = failed(
            client_for(peer.port).delete(&wid("w-1")).await,
            Some(peer.port),
        );
        assert_eq!(
            error,
            TransportError::Protocol {
                reason: "the runtime did not answer 204 No Content".into()
            },
            "{shown}"
        );
    }
}

#[tokio::test]
async fn valid_json_of_the_wrong_shape_is_protocol() {
    let peer = fake_runtime(|_| {
        let mut detail = detail_json("w-1", "running");
        detail.as_object_mut().unwrap().remove("status");
        answer_json(200, detail)
    })
    .await;
    let error = failed(
        client_for(peer.port).get_worker(&wid("w-1")).await,
        Some(peer.port),
    );
    let TransportError::Protocol { reason } = error else {
        panic!("expected Protocol, got {error:?}");
    };
    assert!(
        reason.starts_with("expected a WorkerDetail: missing field `status`"),
        "{reason}"
    );
}

#[tokio::test]
async fn error_status_without_an_error_body_is_protocol() {
    let peer = fake_runtime(|_| answer_raw(500, Some("text/plain"), "oops")).await;
    let error = failed(client_for(peer.port).info().await, Some(peer.port));
    let TransportError::Protocol { reason } = error else {
        panic!("expected Protocol, got {error:?}");
    };
    assert!(reason.contains("500"), "{reason}");
}

#[tokio::test]
async fn oversized_answer_is_protocol() {
    let big = format!("\"{}\"", "x".repeat(9 * 1024 * 1024));
    let peer = fake_runtime(move |_| answer_raw(200, Some("application/json"), &big)).await;
    let error = failed(client_for(peer.port).info().await, Some(peer.port));
    let TransportError::Protocol { reason } = error else {
        panic!("expected Protocol, got {error:?}");
    };
    assert!(reason.contains("8 MiB"), "{reason}");
}

#[tokio::test]
async fn worker_busy_passes_through_with_retry_after() {
    let peer = fake_runtime(|_| {
        answer_json(
            429,
            json!({"error": {"code": "worker_busy", "message": "input queue full; retry shortly",
                "worker_id": "w-1", "retry_after_ms": 250}}),
        )
    })
    .await;
    let error = failed(
        client_for(peer.port)
            .input(&wid("w-1"), &InputRequest { text: "x".into() })
            .await,
        Some(peer.port),
    );
    let TransportError::Runtime { status, detail } = error else {
        panic!("expected a Runtime error, got {error:?}");
    };
    assert_eq!(status, 429);
    assert_eq!(detail.code, ErrorCode::WorkerBusy);
    assert_eq!(detail.retry_after_ms, Some(250));
    assert_eq!(detail.message, "input queue full; retry shortly");
}

// ---------------------------------------------------------------- construction

#[test]
fn https_without_tls_settings_and_malformed_base_urls_are_refused_without_echoing_them() {
    let make = |url: &str| HttpRuntimeClient::new(endpoint(url.into(), GENEROUS));
    let error = failed(make("https://nonexistent.example:8443"), Some(8443));
    assert_eq!(
        error,
        TransportError::Unsupported {
            what: "an https base_url without TLS settings".into()
        }
    );
    for bad in [
        "nonexistent.example:8443",
        "ftp://nonexistent.example:8443",
        "http://user:pw@nonexistent.example:8443",
        "http://nonexistent.example:8443/?x=1",
        "not a url at all nonexistent",
    ] {
        let error = failed(make(bad), Some(8443));
        assert!(
            matches!(error, TransportError::Unsupported { .. }),
            "{bad}: {error:?}"
        );
    }
}

#[tokio::test]
async fn client_debug_hides_url_and_token() {
    let client =
        HttpRuntimeClient::new(endpoint("http://127.0.0.1:45678".into(), GENEROUS)).unwrap();
    let debug = format!("{client:?}");
    assert_no_leak(&debug, Some(45678));
    assert!(debug.contains("[redacted]"));
}
