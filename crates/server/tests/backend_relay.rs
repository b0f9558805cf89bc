//! The relay path (worker detail, list and input through a remote runtime) against
//! a lying runtime on 127.0.0.1:0 that answers from a script: truncated, oversized,
//! reset and mistyped answers, answers about another worker, answers that name the
//! runtime's address or token, odd framings, and kept-alive connections it closes
//! behind the backend's back. Every answer is also searched for the runtime's
//! address and token.

mod backend_common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backend_common::*;
use http::Method;
use serde_json::{Value, json};
use switchyard_registry::{Role, WorkerScope};
use switchyard_server::auth::Clock;
use switchyard_server::config::RemoteSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const TOKEN: &str = "relay-test-runtime-token-5f3a";
const DETAIL_PATH: &str = "/v1/workers/w-1";
const LIST_PATH: &str = "/v1/workers";
const INPUT_PATH: &str = "/v1/workers/w-1/input";

/// One request as the lying runtime saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    /// Which connection (0, 1, ... in accepting order).
    connection: usize,
    /// Which scripted request this is on its connection (0, 1, ...).
    on_connection: usize,
    /// The lying runtime's own address, for answers that name it.
    addr: SocketAddr,
}

/// What the lying runtime does, in order; unless it closes or resets, the
/// connection then waits for the next request.
#[derive(Debug, Clone)]
enum Step {
    Write(Vec<u8>),
    Pause(Duration),
    Close,
    Reset,
}

type Script = dyn Fn(&Seen) -> Vec<Step> + Send + Sync;

/// A Runtime API impostor: reads each request (head and `Content-Length` body) and
/// follows its script. `GET /v1/runtime` (the backend's probe of a new runtime) is
/// answered `404` outside the script.
struct LyingRuntime {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    probed: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl LyingRuntime {
    async fn start(script: impl Fn(&Seen) -> Vec<Step> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let probed = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let task = tokio::spawn({
            let (accepted, probed, seen) = (accepted.clone(), probed.clone(), seen.clone());
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let connection = accepted.fetch_add(1, Ordering::SeqCst);
                    let conn = Connection {
                        addr,
                        connection,
                        script: script.clone(),
                        probed: probed.clone(),
                        log: seen.clone(),
                    };
                    tokio::spawn(conn.serve(stream));
                }
            }
        });
        Self {
            addr,
            accepted,
            probed,
            seen,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits until the backend's first probe has been answered and the backend has
    /// taken the answer in (its cached view of `runtime_id` is no longer `unknown`:
    /// the answer was read whole, so its connection is idle in the pool), so that
    /// tests start with one idle connection.
    async fn wait_probed(&self, api: &Api, runtime_id: &str) {
        let deadline = std::time::Instant::now() + WAIT;
        while self.probed.load(Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < deadline, "never probed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        wait_cached_view(api, runtime_id, "probed", |view| view["state"] != "unknown").await;
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// This runtime as the backend's remote `id` (5 s request timeout).
    fn as_remote(&self, id: &str) -> RemoteSettings {
        remote(id, &base_url(self.addr), TOKEN, Duration::from_secs(5))
    }
}

impl Drop for LyingRuntime {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One accepted connection of a [`LyingRuntime`].
struct Connection {
    addr: SocketAddr,
    connection: usize,
    script: Arc<Script>,
    probed: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Connection {
    async fn serve(self, mut stream: TcpStream) {
        let mut buf = Vec::new();
        let mut on_connection = 0;
        loop {
            let Some((method, path)) = read_request(&mut stream, &mut buf).await else {
                return;
            };
            if path == "/v1/runtime" {
                let not_here = br#"{"error":{"code":"route_not_found","message":"no"}}"#;
                let answer = answer("404 Not Found", "application/json", not_here);
                if stream.write_all(&answer).await.is_err() {
                    return;
                }
                self.probed.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let seen = Seen {
                method,
                path,
                connection: self.connection,
                on_connection,
                addr: self.addr,
            };
            on_connection += 1;
            self.log.lock().unwrap().push(seen.clone());
            for step in (self.script)(&seen) {
                match step {
                    Step::Write(bytes) => {
                        if stream.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                    Step::Pause(d) => tokio::time::sleep(d).await,
                    Step::Close => return,
                    Step::Reset => {
                        #[allow(deprecated)] // only to make the kernel send RST
                        let _ = stream.set_linger(Some(Duration::ZERO));
                        return;
                    }
                }
            }
        }
    }
}

/// Reads one request; its method and path (query included).
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, String)> {
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..end + length);
    let mut first = head.split_whitespace();
    Some((first.next()?.to_owned(), first.next()?.to_owned()))
}

/// A complete answer, kept alive.
fn answer(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn ok_json(body: &Value) -> Vec<Step> {
    vec![Step::Write(answer(
        "200 OK",
        "application/json",
        body.to_string().as_bytes(),
    ))]
}

/// An honest worker detail, under the runtime's own id `theirs`.
fn detail(id: &str) -> Value {
    json!({
        "worker_id": id, "runtime_id": "theirs", "profile": "echo", "label": "build",
        "status": "running", "created_at": "2026-11-26T09:30:00.123Z",
        "updated_at": "2026-11-26T09:30:01.000Z", "exit": null, "input_count": 2,
        "output_bytes": 10, "owner": null
    })
}

fn list(workers: Vec<Value>) -> Value {
    json!({"workers": workers, "next": null})
}

/// What a client gets: a success with this JSON, or an error.
#[derive(Debug)]
enum Expect {
    Json(u16, Value),
    Error(u16, &'static str),
}

/// One scripted runtime and what the backend must answer about it.
struct Case {
    /// Also the runtime's id in the backend.
    name: &'static str,
    method: Method,
    /// Below `/api/runtimes/{name}`.
    path: &'static str,
    script: fn(&Seen) -> Vec<Step>,
    expect: Expect,
}

/// `Expect::Json` for a detail as the backend shows it (its runtime id).
fn shown(name: &str, mut detail: Value) -> Value {
    detail["runtime_id"] = json!(name);
    detail
}

fn cases() -> Vec<Case> {
    let get = Method::GET;
    vec![
        Case {
            name: "honest",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| ok_json(&detail("w-1")),
            expect: Expect::Json(200, shown("honest", detail("w-1"))),
        },
        Case {
            name: "other-worker",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| ok_json(&detail("w-2")),
            expect: Expect::Error(502, "runtime_protocol_error"),
        },
        Case {
            name: "wrong-type",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| {
                vec![Step::Write(answer(
                    "200 OK",
                    "text/plain",
                    detail("w-1").to_string().as_bytes(),
                ))]
            },
            expect: Expect::Error(502, "runtime_protocol_error"),
        },
        Case {
            name: "truncated",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| {
                let body = detail("w-1").to_string();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len() + 40
                );
                vec![
                    Step::Write([head.as_bytes(), body.as_bytes()].concat()),
                    Step::Close,
                ]
            },
            expect: Expect::Error(502, "runtime_unreachable"),
        },
        Case {
            name: "reset-mid-body",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| {
                let whole = answer(
                    "200 OK",
                    "application/json",
                    detail("w-1").to_string().as_bytes(),
                );
                vec![
                    Step::Write(whole[..whole.len() - 30].to_vec()),
                    Step::Pause(Duration::from_millis(20)),
                    Step::Reset,
                ]
            },
            expect: Expect::Error(502, "runtime_unreachable"),
        },
        Case {
            name: "oversized",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| {
                let label = "x".repeat(9 * 1024 * 1024);
                let mut big = detail("w-1");
                big["label"] = json!(label);
                ok_json(&big)
            },
            expect: Expect::Error(502, "runtime_protocol_error"),
        },
        Case {
            name: "oversized-by-header",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| {
                vec![Step::Write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000000000\r\n\r\n{".to_vec(),
                )]
            },
            expect: Expect::Error(502, "runtime_protocol_error"),
        },
        Case {
            name: "not-json",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| {
                vec![Step::Write(answer(
                    "200 OK",
                    "application/json",
                    b"{not json",
                ))]
            },
            expect: Expect::Error(502, "runtime_protocol_error"),
        },
        Case {
            name: "not-http",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| {
                vec![
                    Step::Write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()),
                    Step::Close,
                ]
            },
            expect: Expect::Error(502, "runtime_protocol_error"),
        },
        Case {
            name: "silent-close",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| vec![Step::Close],
            expect: Expect::Error(502, "runtime_unreachable"),
        },
        Case {
            name: "chunked",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| {
                let body = detail("w-1").to_string();
                let (a, b) = body.split_at(body.len() / 2);
                let wire = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x};x=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\ntrailer: t\r\n\r\n",
                    a.len(),
                    b.len()
                );
                vec![Step::Write(wire.into_bytes())]
            },
            expect: Expect::Json(200, shown("chunked", detail("w-1"))),
        },
        Case {
            name: "bad-chunk",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| {
                vec![Step::Write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n".to_vec(),
                )]
            },
            expect: Expect::Error(502, "runtime_protocol_error"),
        },
        Case {
            name: "unknown-field",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| {
                let mut more = detail("w-1");
                more["data_dir"] = json!("/var/lib/secret-runtime-dir");
                ok_json(&more)
            },
            expect: Expect::Json(200, shown("unknown-field", detail("w-1"))),
        },
        Case {
            name: "secret-owner",
            method: get.clone(),
            path: "/workers/w-1",
            script: |_| {
                let mut lying = detail("w-1");
                lying["owner"] = json!(TOKEN);
                ok_json(&lying)
            },
            expect: Expect::Error(502, "runtime_protocol_error"),
        },
        Case {
            name: "secret-worker-id",
            method: get.clone(),
            path: "/workers",
            script: |_| ok_json(&list(vec![detail(TOKEN)])),
            expect: Expect::Error(502, "runtime_protocol_error"),
        },
        Case {
            name: "honest-list",
            method: get.clone(),
            path: "/workers",
            script: |_| ok_json(&list(vec![detail("w-1"), detail("w-2")])),
            expect: Expect::Json(
                200,
                list(vec![
                    shown("honest-list", detail("w-1")),
                    shown("honest-list", detail("w-2")),
                ]),
            ),
        },
        Case {
            name: "list-wrong-shape",
            method: get.clone(),
            path: "/workers",
            script: |_| ok_json(&json!({"workers": "all of them", "next": null})),
            expect: Expect::Error(502, "runtime_protocol_error"),
        },
        Case {
            name: "list-truncated",
            method: get.clone(),
            path: "/workers",
            script: |_| {
                let whole = answer(
                    "200 OK",
                    "application/json",
                    list(vec![detail("w-1")]).to_string().as_bytes(),
                );
                vec![Step::Write(whole[..whole.len() - 10].to_vec()), Step::Close]
            },
            expect: Expect::Error(502, "runtime_unreachable"),
        },
        Case {
            name: "honest-input",
            method: Method::POST,
            path: "/workers/w-1/input",
            script: |_| {
                vec![Step::Write(answer(
                    "202 Accepted",
                    "application/json",
                    br#"{"sequence":4}"#,
                ))]
            },
            expect: Expect::Json(202, json!({"sequence": 4})),
        },
        Case {
            name: "input-says-more",
            method: Method::POST,
            path: "/workers/w-1/input",
            script: |_| {
                vec![Step::Write(answer(
                    "202 Accepted",
                    "application/json",
                    format!(r#"{{"sequence":4,"debug":"{TOKEN}"}}"#).as_bytes(),
                ))]
            },
            expect: Expect::Json(202, json!({"sequence": 4})),
        },
        Case {
            name: "input-wrong-type",
            method: Method::POST,
            path: "/workers/w-1/input",
            script: |_| {
                vec![Step::Write(answer(
                    "202 Accepted",
                    "text/html",
                    br#"{"sequence":4}"#,
                ))]
            },
            expect: Expect::Error(502, "runtime_protocol_error"),
        },
        Case {
            name: "input-reset",
            method: Method::POST,
            path: "/workers/w-1/input",
            script: |_| {
                vec![
                    Step::Write(
                        b"HTTP/1.1 202 Accepted\r\ncontent-length: 50\r\n\r\n{\"seq".to_vec(),
                    ),
                    Step::Reset,
                ]
            },
            expect: Expect::Error(502, "runtime_unreachable"),
        },
        Case {
            name: "refused-input",
            method: Method::POST,
            path: "/workers/w-1/input",
            script: |_| {
                vec![Step::Write(answer(
                    "409 Conflict",
                    "application/json",
                    br#"{"error":{"code":"worker_not_running","message":"w-1 has ended"}}"#,
                ))]
            },
            expect: Expect::Error(409, "worker_not_running"),
        },
    ]
}

/// What must not appear in any answer about the runtime at `addr`.
fn secrets(addr: SocketAddr) -> Vec<String> {
    vec![
        format!("http://{addr}"),
        addr.to_string(),
        format!(":{}", addr.port()),
        TOKEN.to_owned(),
        "secret-runtime-dir".to_owned(),
    ]
}

fn assert_clean(what: &str, r: &TestResponse, addr: SocketAddr) {
    let text = format!("{:?} {}", r.headers, r.text());
    for secret in secrets(addr) {
        assert!(!text.contains(&secret), "{what}: {secret} in {text}");
    }
}

/// Starts a lying runtime per case and one backend with all of them.
async fn world(cases: &[Case]) -> (Vec<LyingRuntime>, RunningBackendApi) {
    let mut runtimes = Vec::new();
    let mut remotes = Vec::new();
    for case in cases {
        let runtime = LyingRuntime::start(case.script).await;
        remotes.push(runtime.as_remote(case.name));
        runtimes.push(runtime);
    }
    let (backend, api) = start_backend(backend_settings(false, remotes, NO_PROBES)).await;
    (runtimes, RunningBackendApi { backend, api })
}

/// A backend (auth off, no probes) with `runtime` as its one remote, `id`.
async fn backend_over(
    runtime: &LyingRuntime,
    id: &str,
) -> (switchyard_server::commands::serve::RunningBackend, Api) {
    start_backend(backend_settings(
        false,
        vec![runtime.as_remote(id)],
        NO_PROBES,
    ))
    .await
}

struct RunningBackendApi {
    backend: switchyard_server::commands::serve::RunningBackend,
    api: Api,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lie_is_a_typed_error_or_an_answer_without_secrets() {
    let cases = cases();
    let (runtimes, world) = world(&cases).await;
    for (case, runtime) in cases.iter().zip(&runtimes) {
        let path = format!("/api/runtimes/{}{}", case.name, case.path);
        let body = (case.method == Method::POST).then(|| json!({"text": "ping"}));
        let r = world.api.call(case.method.clone(), &path, body).await;
        match &case.expect {
            Expect::Json(status, expected) => {
                assert_status(&r, *status);
                assert_eq!(&r.json, expected, "{}", case.name);
                let content_type = &r.headers[http::header::CONTENT_TYPE];
                assert_eq!(content_type, "application/json", "{}", case.name);
            }
            Expect::Error(status, code) => {
                assert_error(&r, *status, code);
                assert_eq!(r.json["error"]["runtime_id"], case.name, "{}", case.name);
            }
        }
        assert!(r.headers.contains_key("x-request-id"), "{}", case.name);
        assert_clean(case.name, &r, runtime.addr);
        let seen = runtime.seen();
        assert!(!seen.is_empty(), "{}: the runtime was not asked", case.name);
        let upstream = match case.path {
            "/workers" => LIST_PATH,
            "/workers/w-1" => DETAIL_PATH,
            _ => INPUT_PATH,
        };
        assert_eq!(seen[0].path, upstream, "{}", case.name);
    }
    world.backend.shutdown().await;
}

/// Labels, profiles and timestamps that name the runtime's URL, address or token are
/// scrubbed on the relay path exactly as on the typed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_naming_the_runtime_is_scrubbed() {
    let runtime = LyingRuntime::start(|seen| {
        let mut lying = detail("w-1");
        lying["label"] = json!(format!("see http://{} with {TOKEN}", seen.addr));
        lying["profile"] = json!(format!("echo@{}", seen.addr));
        let body = if seen.path == LIST_PATH {
            list(vec![lying, detail("w-2")])
        } else {
            lying
        };
        ok_json(&body)
    })
    .await;
    let (backend, api) = backend_over(&runtime, "liar").await;
    let one = api.get("/api/runtimes/liar/workers/w-1").await;
    assert_status(&one, 200);
    assert_clean("detail", &one, runtime.addr);
    assert_eq!(one.json["label"], "see [redacted] with [redacted]");
    assert_eq!(one.json["profile"], "echo@[redacted]");
    assert_eq!(one.json["runtime_id"], "liar");

    let all = api.get("/api/runtimes/liar/workers").await;
    assert_status(&all, 200);
    assert_clean("list", &all, runtime.addr);
    assert_eq!(all.json["workers"][0], one.json);
    assert_eq!(all.json["workers"][1], shown("liar", detail("w-2")));
    backend.shutdown().await;
}

/// A token too short to scrub as an address (3 bytes) is still scrubbed from
/// everything a lying runtime says, relayed or typed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_token_is_scrubbed_too() {
    const SHORT: &str = "q7z";
    let runtime = LyingRuntime::start(|seen| {
        let mut lying = detail("w-1");
        lying["label"] = json!(format!("label {SHORT}"));
        if seen.path == LIST_PATH {
            ok_json(&list(vec![lying]))
        } else if seen.path == DETAIL_PATH {
            ok_json(&lying)
        } else {
            let body = json!({"error": {"code": "worker_not_found", "message": format!("no worker; token {SHORT}")}});
            vec![Step::Write(answer(
                "404 Not Found",
                "application/json",
                body.to_string().as_bytes(),
            ))]
        }
    })
    .await;
    let settings = remote(
        "short",
        &base_url(runtime.addr),
        SHORT,
        Duration::from_secs(5),
    );
    let (backend, api) = start_backend(backend_settings(false, vec![settings], NO_PROBES)).await;
    for path in ["/workers/w-1", "/workers", "/workers/w-1/transcript"] {
        let r = api.get(&format!("/api/runtimes/short{path}")).await;
        assert!(!r.text().contains(SHORT), "{path}: {}", r.text());
        assert!(r.text().contains("[redacted]"), "{path}: {}", r.text());
    }
    backend.shutdown().await;
}

/// An answer relayed once is relayed again without being read through only when
/// the runtime sends the same bytes again: every answer that differs, by one byte
/// or by a secret, a worker or its last, is checked as the first was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_answer_is_trusted_only_while_its_bytes_are_the_same() {
    let asked = Arc::new(AtomicUsize::new(0));
    let runtime = LyingRuntime::start({
        let asked = asked.clone();
        move |seen| {
            let round = asked.fetch_add(1, Ordering::SeqCst) / 4;
            let mut worker = detail("w-1");
            match round {
                1 => worker["label"] = json!(format!("at {}", seen.addr)),
                3 => worker = detail("w-2"),
                4 => worker["input_count"] = json!(3),
                5 => worker["owner"] = json!(TOKEN),
                _ => {}
            }
            let body = if seen.path == LIST_PATH {
                list(vec![detail("w-0"), worker])
            } else {
                worker
            };
            if round == 6 {
                // The memoised bytes but the last, framed as a whole answer.
                let mut cut = body.to_string();
                cut.pop();
                return vec![Step::Write(answer(
                    "200 OK",
                    "application/json",
                    cut.as_bytes(),
                ))];
            }
            ok_json(&body)
        }
    })
    .await;
    let (backend, api) = backend_over(&runtime, "liar").await;
    runtime.wait_probed(&api, "liar").await;
    let honest = shown("liar", detail("w-1"));
    let mut counted = honest.clone();
    counted["input_count"] = json!(3);
    // Each round asks for the detail, then the list: the same answers twice, then
    // one changed in a new way each round, with honest rounds between.
    let rounds: [(u16, Option<&Value>, &str); 8] = [
        (200, Some(&honest), "honest"),
        (200, None, "a label naming the address"),
        (200, Some(&honest), "honest again"),
        (502, None, "another worker"),
        (200, Some(&counted), "one byte changed"),
        (502, None, "an owner naming the token"),
        (502, None, "a prefix of the same bytes"),
        (200, Some(&honest), "honest at last"),
    ];
    for (round, (status, expected, what)) in rounds.into_iter().enumerate() {
        for _ in 0..2 {
            let one = api.get("/api/runtimes/liar/workers/w-1").await;
            let all = api.get("/api/runtimes/liar/workers").await;
            assert_clean(what, &one, runtime.addr);
            assert_clean(what, &all, runtime.addr);
            let listed = &all.json["workers"][1];
            match (status, expected) {
                (200, Some(expected)) => {
                    assert_status(&one, 200);
                    assert_status(&all, 200);
                    assert_eq!(&one.json, expected, "{what}");
                    assert_eq!(listed, expected, "{what}");
                }
                (200, None) => {
                    assert_status(&one, 200);
                    assert_eq!(one.json["label"], "at [redacted]", "{what}");
                    assert_eq!(listed["label"], "at [redacted]", "{what}");
                }
                _ if round == 3 => {
                    assert_error(&one, 502, "runtime_protocol_error");
                    assert_status(&all, 200);
                    assert_eq!(listed["worker_id"], "w-2", "{what}");
                }
                _ => {
                    assert_error(&one, 502, "runtime_protocol_error");
                    assert_error(&all, 502, "runtime_protocol_error");
                }
            }
        }
    }
    assert_eq!(
        asked.load(Ordering::SeqCst),
        8 * 4,
        "every request reached the runtime"
    );
    backend.shutdown().await;
}

/// The relay path (a caller who reaches every worker) and the typed path (a caller
/// scoped to its own workers, whose lists are filtered) give the same answers, for
/// honest and odd bodies alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_and_typed_answers_are_the_same() {
    let runtime = LyingRuntime::start(|seen| {
        let owned = |id: &str, label: String| {
            let mut d = detail(id);
            d["owner"] = json!("olga");
            d["label"] = json!(label);
            d
        };
        // Canonical, but naming the runtime: relayed only after the search.
        let naming = owned("w-1", format!("at {}", seen.addr));
        // Not canonical (a field the typed value does not know): the typed path.
        let odd = {
            let mut d = owned("w-2", "plain".into());
            d["extra"] = json!({"nested": [1, 2]});
            d
        };
        let body = match seen.path.as_str() {
            LIST_PATH => list(vec![naming, odd]),
            DETAIL_PATH => naming,
            _ => odd,
        };
        ok_json(&body)
    })
    .await;
    let mut settings = backend_settings(false, vec![runtime.as_remote("rt")], NO_PROBES);
    let tokens = [
        TestToken {
            name: "olga",
            token: "sy_relay-olga",
            role: Role::Operator,
            runtimes: &[],
            workers: WorkerScope::Own,
        },
        TestToken {
            name: "ada",
            token: "sy_relay-ada",
            role: Role::Admin,
            runtimes: &[],
            workers: WorkerScope::All,
        },
    ];
    settings.auth = token_auth(&tokens, None, Duration::from_secs(3600), &Clock::system());
    let (backend, api) = start_backend(settings).await;
    let as_who = |token: &str| Api {
        addr: api.addr,
        token: Some(token.to_owned()),
    };
    let (olga, ada) = (as_who("sy_relay-olga"), as_who("sy_relay-ada"));
    for path in [
        "/api/runtimes/rt/workers",
        "/api/runtimes/rt/workers/w-1",
        "/api/runtimes/rt/workers/w-2",
    ] {
        let (typed, relayed) = (olga.get(path).await, ada.get(path).await);
        assert_status(&typed, 200);
        assert_status(&relayed, 200);
        assert_eq!(typed.json, relayed.json, "{path}");
        assert_clean(path, &relayed, runtime.addr);
        // The same headers too; a relayed answer's request id is its own, once.
        let ids = |r: &TestResponse| -> Vec<String> {
            r.headers
                .get_all("x-request-id")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect()
        };
        let (typed_ids, relayed_ids) = (ids(&typed), ids(&relayed));
        assert_eq!((typed_ids.len(), relayed_ids.len()), (1, 1), "{path}");
        assert!(
            relayed_ids[0].len() == 16 && relayed_ids[0].bytes().all(|b| b.is_ascii_hexdigit())
        );
        assert_ne!(typed_ids, relayed_ids, "{path}");
        let names = |r: &TestResponse| {
            let mut names: Vec<_> = r.headers.keys().map(|k| k.as_str().to_owned()).collect();
            names.sort();
            names.retain(|n| n != "date" && n != "content-length");
            names
        };
        assert_eq!(names(&typed), names(&relayed), "{path}");
    }
    let listed = ada.get("/api/runtimes/rt/workers").await;
    assert_eq!(listed.json["workers"][0]["label"], "at [redacted]");
    assert!(listed.json["workers"][1].get("extra").is_none());
    backend.shutdown().await;
}

/// Kept-alive connections: reused; one the runtime closed while idle is replaced;
/// a GET whose connection closes before its answer goes again on a new one, an
/// input (which the runtime may have acted on) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_connections_are_reused_and_replaced_safely() {
    // Reuse: one connection carries every request.
    let steady = LyingRuntime::start(|_| ok_json(&detail("w-1"))).await;
    // Closes each connection 50 ms after its first answer (once the backend has
    // pooled it), without a word.
    let closing = LyingRuntime::start(|seen| {
        if seen.method == "POST" {
            let mut steps = vec![Step::Write(answer(
                "202 Accepted",
                "application/json",
                br#"{"sequence":1}"#,
            ))];
            steps.extend([Step::Pause(Duration::from_millis(50)), Step::Close]);
            return steps;
        }
        let mut steps = ok_json(&detail("w-1"));
        steps.extend([Step::Pause(Duration::from_millis(50)), Step::Close]);
        steps
    })
    .await;
    // Closes the connection under its second request, unanswered.
    let racing = |seen: &Seen| {
        if seen.on_connection >= 1 {
            return vec![Step::Close];
        }
        if seen.method == "POST" {
            return vec![Step::Write(answer(
                "202 Accepted",
                "application/json",
                br#"{"sequence":1}"#,
            ))];
        }
        ok_json(&detail("w-1"))
    };
    let racing_get = LyingRuntime::start(racing).await;
    let racing_post = LyingRuntime::start(racing).await;
    let mut settings = backend_settings(
        false,
        vec![
            steady.as_remote("steady"),
            closing.as_remote("closing"),
            racing_get.as_remote("racing-get"),
            racing_post.as_remote("racing-post"),
        ],
        NO_PROBES,
    );
    // Connections served on the test's runtime: the backend's probe and every
    // request share one lane of runtime connections (the lanes of connection
    // threads: `each_connection_thread_keeps_runtime_connections_of_its_own`).
    settings.connection_threads = 0;
    let (backend, api) = start_backend(settings).await;
    for (runtime, id) in [
        (&steady, "steady"),
        (&closing, "closing"),
        (&racing_get, "racing-get"),
        (&racing_post, "racing-post"),
    ] {
        runtime.wait_probed(&api, id).await;
    }
    let input = json!({"text": "x"});
    let connections = |r: &LyingRuntime| r.seen().iter().map(|s| s.connection).collect::<Vec<_>>();

    for _ in 0..5 {
        assert_status(&api.get("/api/runtimes/steady/workers/w-1").await, 200);
    }
    assert_eq!(connections(&steady), [0; 5], "one kept-alive connection");
    assert_eq!(steady.accepted(), 1);

    assert_status(&api.get("/api/runtimes/closing/workers/w-1").await, 200);
    // Time for the backend to see the close (an input is never retried, so one sent
    // on the closed connection would fail).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = api
        .post("/api/runtimes/closing/workers/w-1/input", input.clone())
        .await;
    assert_status(&r, 202);
    assert_eq!(
        connections(&closing),
        [0, 1],
        "the connection closed while idle was not used"
    );

    assert_status(&api.get("/api/runtimes/racing-get/workers/w-1").await, 200);
    assert_status(&api.get("/api/runtimes/racing-get/workers/w-1").await, 200);
    assert_eq!(
        connections(&racing_get),
        [0, 0, 1],
        "the GET went again on a new connection"
    );

    let r = api
        .post("/api/runtimes/racing-post/workers/w-1/input", input.clone())
        .await;
    assert_status(&r, 202);
    let r = api
        .post("/api/runtimes/racing-post/workers/w-1/input", input)
        .await;
    assert_error(&r, 502, "runtime_unreachable");
    // (The health probe's GET went on a pipelined connection of its own.)
    let posts = connections(&racing_post);
    assert!(
        posts.len() == 2 && posts[0] == posts[1],
        "an input is never sent twice: {posts:?}"
    );
    backend.shutdown().await;
}

/// With two connection threads, each client connection is served on one of them
/// and each thread relays on runtime connections of its own, reused request after
/// request (a connection's socket is woken by the thread that opened it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_connection_thread_keeps_runtime_connections_of_its_own() {
    let runtime = LyingRuntime::start(|_| ok_json(&detail("w-1"))).await;
    let mut settings = backend_settings(false, vec![runtime.as_remote("steady")], NO_PROBES);
    settings.connection_threads = 2;
    let (backend, api) = start_backend(settings).await;
    runtime.wait_probed(&api, "steady").await;

    // Two kept-alive client connections, open together: one on each thread.
    let first = KeptAlive::open(api.addr).await;
    first.get_detail().await;
    let second = KeptAlive::open(api.addr).await;
    for _ in 0..3 {
        second.get_detail().await;
        first.get_detail().await;
    }
    let seen = runtime.seen();
    let on = |requests: &[Seen]| requests.iter().map(|s| s.connection).collect::<Vec<_>>();
    // Requests alternate: first, then (second, first) three times.
    let firsts: Vec<usize> = [0, 2, 4, 6].iter().map(|&i| seen[i].connection).collect();
    let seconds: Vec<usize> = [1, 3, 5].iter().map(|&i| seen[i].connection).collect();
    assert!(
        firsts.iter().all(|&c| c == firsts[0]) && seconds.iter().all(|&c| c == seconds[0]),
        "each thread reuses its runtime connection: {:?}",
        on(&seen)
    );
    assert_ne!(
        firsts[0],
        seconds[0],
        "the two threads relay on connections of their own: {:?}",
        on(&seen)
    );
    assert_ne!(
        firsts[0], 0,
        "the probe's connection belongs to the main runtime"
    );
    assert_eq!(runtime.accepted(), 3, "the probe's and one per thread");
    drop((first, second));
    backend.shutdown().await;
}

/// A kept-alive HTTP/1.1 connection to the backend.
struct KeptAlive {
    sender: tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<String>>,
}

impl KeptAlive {
    async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        Self {
            sender: tokio::sync::Mutex::new(sender),
        }
    }

    /// `GET /api/runtimes/steady/workers/w-1`, answered 200.
    async fn get_detail(&self) {
        let request = http::Request::get("/api/runtimes/steady/workers/w-1")
            .header("host", "127.0.0.1")
            .body(String::new())
            .unwrap();
        let mut sender = self.sender.lock().await;
        // The connection takes the next request only once it has read the last
        // answer to its end, which it may not have done yet on a busy machine.
        tokio::time::timeout(WAIT, sender.ready())
            .await
            .expect("ready in time")
            .expect("the connection is open");
        let response = tokio::time::timeout(WAIT, sender.send_request(request))
            .await
            .expect("answered in time")
            .unwrap();
        assert_eq!(response.status(), 200);
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
    }
}

/// A runtime that answers slowly is cut off by the request timeout, and a body that
/// never ends too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_endless_answer_is_a_timeout() {
    let slow =
        LyingRuntime::start(|_| vec![Step::Pause(Duration::from_secs(5)), Step::Close]).await;
    let dribbling = LyingRuntime::start(|_| {
        let mut steps = vec![Step::Write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"
                .to_vec(),
        )];
        for _ in 0..50 {
            steps.push(Step::Pause(Duration::from_millis(100)));
            steps.push(Step::Write(b" ".to_vec()));
        }
        steps
    })
    .await;
    let short = Duration::from_millis(500);
    let (backend, api) = start_backend(backend_settings(
        false,
        vec![
            remote("slow", &base_url(slow.addr), TOKEN, short),
            remote("dribbling", &base_url(dribbling.addr), TOKEN, short),
        ],
        NO_PROBES,
    ))
    .await;
    for id in ["slow", "dribbling"] {
        let started = std::time::Instant::now();
        let r = api.get(&format!("/api/runtimes/{id}/workers/w-1")).await;
        assert_error(&r, 504, "runtime_timeout");
        assert!(started.elapsed() < Duration::from_secs(3), "{id}");
    }
    backend.shutdown().await;
}

/// `GET /api/workers` pages through each runtime; a runtime whose every page comes
/// just inside the request timeout would keep the whole listing waiting page after
/// page, so one runtime's pages are bounded as a whole (the backstop: connect +
/// request timeout + 1 s) and it is listed as unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_paging_slowly_is_cut_off_as_a_whole_in_the_listing_of_all() {
    let page_time = Duration::from_millis(300);
    let slow = LyingRuntime::start(move |seen| {
        if !seen.path.starts_with("/v1/workers") {
            return ok_json(&detail("w-1"));
        }
        // One worker a page, each page 300 ms late, and always a next one.
        let after: u32 = seen
            .path
            .split("after=w-")
            .nth(1)
            .and_then(|n| n.get(..6))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let id = format!("w-{:06}", after + 1);
        let mut steps = vec![Step::Pause(page_time)];
        steps.extend(ok_json(&json!({ "workers": [detail(&id)], "next": id })));
        steps
    })
    .await;
    let rt = remote(
        "slow",
        &base_url(slow.addr),
        TOKEN,
        Duration::from_millis(500),
    );
    let (backend, api) = start_backend(backend_settings(true, vec![rt], NO_PROBES)).await;
    slow.wait_probed(&api, "slow").await;

    let started = std::time::Instant::now();
    let r = api.get("/api/workers").await;
    let took = started.elapsed();
    assert_status(&r, 200);
    // connect_timeout 2 s + request_timeout 0.5 s + 1 s; unbounded it would page on.
    assert!(took < Duration::from_secs(6), "the listing took {took:?}");
    assert_only_unavailable(&r, "slow", "runtime_timeout");
    assert!(
        slow.seen().len() > 5,
        "the runtime was paged through for a while first"
    );
    backend.shutdown().await;
}
