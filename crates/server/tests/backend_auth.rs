//! Backend client authentication in-process: every route × every kind of caller
//! (no credentials, a wrong token, viewer, operator, admin, a token granted only
//! another runtime), with the audit line of every command; sessions (login, cookie
//! flags, expiry, logout, replicas, a removed token); WebSocket upgrades with a
//! cookie, a bearer token, neither, and from a foreign origin; and no token, hash or
//! cookie in any log event at debug level or in any answer but the `Set-Cookie`.

mod backend_common;

use std::time::Duration;

use backend_common::logs;
use backend_common::*;
use futures_util::StreamExt;
use http::Method;
use serde_json::{Value, json};
use switchyard_e2e::ws::{close_frame, connect, next_json};
use switchyard_registry::{Role, WorkerScope};
use switchyard_server::auth::{Clock, TokenHash};
use switchyard_server::commands::runtime::RunningRuntime;
use switchyard_server::commands::serve::RunningBackend;
use tokio_tungstenite::tungstenite;

const REMOTE_TOKEN: &str = "runtime-token-for-the-auth-tests";
const TTL: Duration = Duration::from_secs(3600);

const VIEWER: &str = "sy_viewer-token-0001";
const OPERATOR: &str = "sy_operator-token-0002";
const ADMIN: &str = "sy_admin-token-0003";
const OTHER: &str = "sy_remote-only-token-0004";
const WRONG: &str = "sy_not-a-configured-token";

fn tokens() -> Vec<TestToken> {
    vec![
        TestToken {
            name: "vera",
            token: VIEWER,
            role: Role::Viewer,
            runtimes: &[],
            workers: WorkerScope::All,
        },
        TestToken {
            name: "otto",
            token: OPERATOR,
            role: Role::Operator,
            runtimes: &[],
            workers: WorkerScope::All,
        },
        TestToken {
            name: "ada",
            token: ADMIN,
            role: Role::Admin,
            runtimes: &[],
            workers: WorkerScope::All,
        },
        TestToken {
            name: "remy",
            token: OTHER,
            role: Role::Operator,
            runtimes: &["rem*"],
            workers: WorkerScope::All,
        },
    ]
}

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Wrong,
    Viewer,
    Operator,
    Admin,
    Other,
}

const WHO: [Who; 6] = [
    Who::Nobody,
    Who::Wrong,
    Who::Viewer,
    Who::Operator,
    Who::Admin,
    Who::Other,
];

impl Who {
    fn token(self) -> Option<&'static str> {
        match self {
            Who::Nobody => None,
            Who::Wrong => Some(WRONG),
            Who::Viewer => Some(VIEWER),
            Who::Operator => Some(OPERATOR),
            Who::Admin => Some(ADMIN),
            Who::Other => Some(OTHER),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Who::Nobody | Who::Wrong => "-",
            Who::Viewer => "vera",
            Who::Operator => "otto",
            Who::Admin => "ada",
            Who::Other => "remy",
        }
    }
}

struct World {
    remote: RunningRuntime,
    backend: RunningBackend,
    api: Api,
    admin: Api,
    clock: Clock,
}

impl World {
    async fn start() -> Self {
        Self::start_with(tokens(), None, |_| {}).await
    }

    async fn start_with(
        tokens: Vec<TestToken>,
        key: Option<Vec<u8>>,
        tweak: impl FnOnce(&mut switchyard_server::config::BackendSettings),
    ) -> Self {
        logs::install();
        let runtime = start_runtime("remote", Some(REMOTE_TOKEN)).await;
        let mut settings = backend_settings(
            true,
            vec![remote(
                "remote",
                &base_url(runtime.server.local_addr()),
                REMOTE_TOKEN,
                Duration::from_secs(10),
            )],
            NO_PROBES,
        );
        let clock = Clock::manual(1_800_000_000);
        settings.auth = token_auth(&tokens, key, TTL, &clock);
        settings.allowed_origins = vec!["http://localhost:5173".to_owned()];
        tweak(&mut settings);
        let (backend, api) = start_backend(settings).await;
        let admin = Api {
            addr: api.addr,
            token: Some(ADMIN.to_owned()),
        };
        Self {
            remote: runtime,
            backend,
            api,
            admin,
            clock,
        }
    }

    async fn stop(self) {
        self.backend.shutdown().await;
        self.remote.shutdown().await;
    }

    /// A new echo worker on `runtime`, created by the admin; stopped when `ended`.
    async fn worker(&self, runtime: &str, ended: bool) -> String {
        let id = create_echo(&self.admin, runtime, "fixture").await;
        if ended {
            let r = self
                .admin
                .call(
                    Method::POST,
                    &format!("/api/runtimes/{runtime}/workers/{id}/stop"),
                    None,
                )
                .await;
            assert_status(&r, 200);
        }
        id
    }
}

/// What a route needs from the fixture.
#[derive(Debug, Clone, Copy)]
enum Fixture {
    None,
    Running,
    Ended,
}

/// One route of the matrix: method, path (`{w}` is the worker), body, and the status
/// each caller gets, in [`WHO`] order.
struct Case {
    method: Method,
    path: &'static str,
    fixture: Fixture,
    body: Option<Value>,
    expect: [u16; 6],
    /// The audit action, for commands.
    audit: Option<&'static str>,
}

fn case(
    method: Method,
    path: &'static str,
    fixture: Fixture,
    body: Option<Value>,
    expect: [u16; 6],
    audit: Option<&'static str>,
) -> Case {
    Case {
        method,
        path,
        fixture,
        body,
        expect,
        audit,
    }
}

fn matrix() -> Vec<Case> {
    use Fixture::*;
    //                          nobody wrong viewer operator admin other
    vec![
        case(
            Method::GET,
            "/healthz",
            None,
            Option::None,
            [200, 200, 200, 200, 200, 200],
            Option::None,
        ),
        // A load balancer's readiness probe carries no credentials.
        case(
            Method::GET,
            "/readyz",
            None,
            Option::None,
            [200, 200, 200, 200, 200, 200],
            Option::None,
        ),
        case(
            Method::GET,
            "/api/session",
            None,
            Option::None,
            [401, 401, 200, 200, 200, 200],
            Option::None,
        ),
        // Signing in takes the token in the body (see the loop).
        case(
            Method::POST,
            "/api/session",
            None,
            Some(json!({})),
            [401, 401, 200, 200, 200, 200],
            Some("session_start"),
        ),
        case(
            Method::DELETE,
            "/api/session",
            None,
            Option::None,
            [204, 204, 204, 204, 204, 204],
            Some("session_end"),
        ),
        case(
            Method::GET,
            "/api/runtimes",
            None,
            Option::None,
            [401, 401, 200, 200, 200, 200],
            Option::None,
        ),
        // Admin routes: the metrics.
        case(
            Method::GET,
            "/metrics",
            None,
            Option::None,
            [401, 401, 403, 403, 200, 403],
            Option::None,
        ),
        case(
            Method::GET,
            "/api/runtimes/local",
            None,
            Option::None,
            [401, 401, 200, 200, 200, 403],
            Option::None,
        ),
        case(
            Method::GET,
            "/api/workers",
            None,
            Option::None,
            [401, 401, 200, 200, 200, 200],
            Option::None,
        ),
        case(
            Method::GET,
            "/api/runtimes/local/workers",
            None,
            Option::None,
            [401, 401, 200, 200, 200, 403],
            Option::None,
        ),
        case(
            Method::POST,
            "/api/runtimes/local/workers",
            None,
            Some(json!({"profile": "echo"})),
            [401, 401, 403, 201, 201, 403],
            Some("create"),
        ),
        case(
            Method::GET,
            "/api/runtimes/local/workers/{w}",
            Running,
            Option::None,
            [401, 401, 200, 200, 200, 403],
            Option::None,
        ),
        case(
            Method::POST,
            "/api/runtimes/local/workers/{w}/input",
            Running,
            Some(json!({"text": "hi"})),
            [401, 401, 403, 202, 202, 403],
            Some("input"),
        ),
        case(
            Method::POST,
            "/api/runtimes/local/workers/{w}/cancel",
            Running,
            Option::None,
            [401, 401, 403, 200, 200, 403],
            Some("cancel"),
        ),
        case(
            Method::POST,
            "/api/runtimes/local/workers/{w}/stop",
            Running,
            Option::None,
            [401, 401, 403, 200, 200, 403],
            Some("stop"),
        ),
        case(
            Method::DELETE,
            "/api/runtimes/local/workers/{w}",
            Ended,
            Option::None,
            [401, 401, 403, 204, 204, 403],
            Some("delete"),
        ),
        case(
            Method::GET,
            "/api/runtimes/local/workers/{w}/transcript",
            Running,
            Option::None,
            [401, 401, 200, 200, 200, 403],
            Option::None,
        ),
        case(
            Method::GET,
            "/api/runtimes/local/workers/{w}/events/ws",
            Running,
            Option::None,
            [401, 401, 101, 101, 101, 403],
            Option::None,
        ),
        // The runtime the last token is granted: it may do there what its role allows.
        case(
            Method::GET,
            "/api/runtimes/remote/workers",
            None,
            Option::None,
            [401, 401, 200, 200, 200, 200],
            Option::None,
        ),
        case(
            Method::POST,
            "/api/runtimes/remote/workers",
            None,
            Some(json!({"profile": "echo"})),
            [401, 401, 403, 201, 201, 201],
            Some("create"),
        ),
        case(
            Method::POST,
            "/api/runtimes/remote/workers/{w}/stop",
            Running,
            Option::None,
            [401, 401, 403, 200, 200, 200],
            Some("stop"),
        ),
        case(
            Method::GET,
            "/api/runtimes/remote/workers/{w}/events/ws",
            Running,
            Option::None,
            [401, 401, 101, 101, 101, 101],
            Option::None,
        ),
        // Unknown routes are not revealed before authentication.
        case(
            Method::GET,
            "/api/nope",
            None,
            Option::None,
            [401, 401, 404, 404, 404, 404],
            Option::None,
        ),
        // A runtime outside the grants is 403 whether it exists or not.
        case(
            Method::GET,
            "/api/runtimes/no-such/workers",
            None,
            Option::None,
            [401, 401, 404, 404, 404, 403],
            Option::None,
        ),
    ]
}

/// The status of a WebSocket upgrade: 101, or the plain HTTP refusal's.
async fn ws_status(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    match connect(addr, path, headers).await {
        Ok(mut ws) => {
            let first = next_json(&mut ws).await;
            (101, first)
        }
        Err(tungstenite::Error::Http(response)) => {
            let body = response
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            (response.status().as_u16(), body)
        }
        Err(other) => panic!("{path}: {other}"),
    }
}

/// `POST /api/session` with `token`.
async fn post_session(addr: std::net::SocketAddr, token: &str) -> TestResponse {
    send(
        addr,
        Method::POST,
        "/api/session",
        Some(json!({ "token": token }).to_string().as_bytes()),
        &[("content-type", "application/json")],
    )
    .await
}

/// Signs in with `token` and returns the `Cookie` header value of the session.
async fn sign_in(addr: std::net::SocketAddr, token: &str) -> String {
    let r = post_session(addr, token).await;
    assert_status(&r, 200);
    session_cookie(&r)
}

/// An event stream on `path` with one credential header, past its snapshot.
async fn watch(
    addr: std::net::SocketAddr,
    path: &str,
    credential: (&str, &str),
) -> switchyard_e2e::ws::Ws {
    let mut ws = connect(addr, path, &[credential]).await.unwrap();
    assert_eq!(next_json(&mut ws).await["event"]["kind"], "snapshot");
    ws
}

/// Asserts that a quiet event stream stays open (nothing, not even a close, for a
/// moment).
async fn assert_still_open(ws: &mut switchyard_e2e::ws::Ws) {
    let quiet = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(quiet.is_err(), "still open: {quiet:?}");
}

/// The runtime id in `path` (`/api/runtimes/{rt}/...`).
fn runtime_of(path: &str) -> Option<&str> {
    path.strip_prefix("/api/runtimes/")
        .map(|rest| rest.split('/').next().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_kind_of_caller_as_the_contract_says() {
    let world = World::start().await;
    let addr = world.api.addr;
    for case in matrix() {
        for (i, who) in WHO.into_iter().enumerate() {
            let runtime = runtime_of(case.path);
            let worker = match (case.fixture, runtime) {
                (Fixture::None, _) | (_, None) => None,
                (Fixture::Running, Some(rt)) => Some(world.worker(rt, false).await),
                (Fixture::Ended, Some(rt)) => Some(world.worker(rt, true).await),
            };
            let path = case.path.replace("{w}", worker.as_deref().unwrap_or(""));
            let login = case.method == Method::POST && case.path == "/api/session";
            let auth = who.token().filter(|_| !login).map(bearer);
            let mut headers: Vec<(&str, &str)> = Vec::new();
            if let Some(auth) = &auth {
                headers.push(("authorization", auth.as_str()));
            }
            let what = format!("{who:?} {} {}", case.method, case.path);
            let expected = case.expect[i];
            if path.ends_with("/events/ws") {
                let (status, body) = ws_status(addr, &path, &headers).await;
                assert_eq!(status, expected, "{what}: {body}");
                match status {
                    101 => assert_eq!(body["event"]["kind"], "snapshot", "{what}"),
                    401 => assert_eq!(body["error"]["code"], "unauthorized", "{what}"),
                    _ => assert_eq!(body["error"]["code"], "forbidden", "{what}"),
                }
                continue;
            }
            let body = if login {
                Some(
                    json!({ "token": who.token().unwrap_or("") })
                        .to_string()
                        .into_bytes(),
                )
            } else {
                case.body.as_ref().map(|b| b.to_string().into_bytes())
            };
            if body.is_some() {
                headers.push(("content-type", "application/json"));
            }
            let r = send(addr, case.method.clone(), &path, body.as_deref(), &headers).await;
            assert_eq!(r.status.as_u16(), expected, "{what}: {}", r.text());
            match expected {
                401 => {
                    assert_error(&r, 401, "unauthorized");
                    assert_eq!(
                        r.headers.get(http::header::WWW_AUTHENTICATE).unwrap(),
                        "Bearer",
                        "{what}"
                    );
                }
                403 => assert_error(&r, 403, "forbidden"),
                _ => {}
            }
            // What lists show the token granted only `remote`.
            if who == Who::Other && expected == 200 {
                match case.path {
                    "/api/runtimes" => {
                        let ids: Vec<&str> = r.json["runtimes"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|v| v["runtime_id"].as_str().unwrap())
                            .collect();
                        assert_eq!(ids, ["remote"], "{what}");
                    }
                    "/api/workers" => {
                        assert_eq!(r.json["unavailable"], json!([]), "{what}");
                        for w in r.json["workers"].as_array().unwrap() {
                            assert_eq!(w["runtime_id"], "remote", "{what}: {w}");
                        }
                    }
                    _ => {}
                }
            }
            if case.path == "/api/session" && case.method != Method::DELETE && expected == 200 {
                assert_eq!(r.json["name"], who.name(), "{what}");
            }
            // Every command writes one audit line, whatever its outcome.
            if let Some(action) = case.audit {
                let request_id = r.headers["x-request-id"].to_str().unwrap();
                let lines = logs::audit_of(request_id);
                assert_eq!(lines.len(), 1, "{what}: {lines:?}");
                let line = &lines[0];
                assert_eq!(line.level, tracing::Level::INFO);
                assert_eq!(line.field("action"), Some(action), "{what}");
                let identity = if expected == 401 { "-" } else { who.name() };
                assert_eq!(line.field("identity"), Some(identity), "{what}");
                assert_eq!(
                    line.field("runtime_id"),
                    Some(runtime.unwrap_or("-")),
                    "{what}"
                );
                let outcome = r.json["error"]["code"].as_str().unwrap_or("ok");
                assert_eq!(line.field("outcome"), Some(outcome), "{what}");
                let expected_worker = match (&worker, action) {
                    (Some(w), _) => w.clone(),
                    (None, "create") if expected == 201 => {
                        r.json["worker_id"].as_str().unwrap().to_owned()
                    }
                    _ => "-".to_owned(),
                };
                assert_eq!(
                    line.field("worker_id"),
                    Some(expected_worker.as_str()),
                    "{what}"
                );
            }
        }
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_login_cookie_flags_expiry_and_logout() {
    let world = World::start().await;
    let addr = world.api.addr;
    let login = |token: &'static str| post_session(addr, token);

    // Wrong and missing tokens.
    for token in [WRONG, ""] {
        let r = login(token).await;
        assert_error(&r, 401, "unauthorized");
        assert!(r.headers.get(http::header::SET_COOKIE).is_none());
        let audit = logs::audit_of(r.headers["x-request-id"].to_str().unwrap());
        assert_eq!(audit[0].field("action"), Some("session_start"));
        assert_eq!(audit[0].field("outcome"), Some("unauthorized"));
        assert_eq!(audit[0].field("identity"), Some("-"));
    }
    let r = send(
        addr,
        Method::POST,
        "/api/session",
        Some(br#"{"token":"x","extra":1}"#),
        &[("content-type", "application/json")],
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    // Refused by the Host allowlist, before anything else: still audited.
    let r = send(
        addr,
        Method::POST,
        "/api/session",
        Some(format!(r#"{{"token":"{OPERATOR}"}}"#).as_bytes()),
        &[
            ("content-type", "application/json"),
            ("host", "evil.example"),
        ],
    )
    .await;
    assert_error(&r, 403, "host_not_allowed");
    let audit = logs::audit_of(r.headers["x-request-id"].to_str().unwrap());
    assert_eq!(audit.len(), 1, "one line");
    assert_eq!(audit[0].field("action"), Some("session_start"));
    assert_eq!(audit[0].field("outcome"), Some("host_not_allowed"));
    assert_eq!(audit[0].field("identity"), Some("-"));

    let r = login(OPERATOR).await;
    assert_status(&r, 200);
    assert_eq!(
        r.json,
        json!({"name": "otto", "role": "operator", "auth": true})
    );
    assert_eq!(r.headers[http::header::CACHE_CONTROL], "no-store");
    let set_cookie = r.headers[http::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let attributes: Vec<&str> = set_cookie.split("; ").skip(1).collect();
    assert_eq!(
        attributes,
        ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"],
        "{set_cookie}"
    );
    assert!(set_cookie.starts_with("switchyard_session="));
    let audit = logs::audit_of(r.headers["x-request-id"].to_str().unwrap());
    assert_eq!(audit[0].field("identity"), Some("otto"));
    assert_eq!(audit[0].field("outcome"), Some("ok"));
    let cookie = session_cookie(&r);

    // The cookie authenticates reads and commands, as the token's identity and role.
    let with_cookie = [("cookie", cookie.as_str())];
    let r = send(addr, Method::GET, "/api/session", None, &with_cookie).await;
    assert_status(&r, 200);
    assert_eq!(
        r.json,
        json!({"name": "otto", "role": "operator", "auth": true})
    );
    let created = send(
        addr,
        Method::POST,
        "/api/runtimes/local/workers",
        Some(br#"{"profile":"echo"}"#),
        &[
            ("cookie", cookie.as_str()),
            ("content-type", "application/json"),
            ("origin", &format!("http://{addr}")),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_status(&created, 201);
    let audit = logs::audit_of(created.headers["x-request-id"].to_str().unwrap());
    assert_eq!(audit[0].field("identity"), Some("otto"));

    // Not from another origin's page, even one allowed for CORS: it must use a token.
    let r = send(
        addr,
        Method::GET,
        "/api/runtimes",
        None,
        &[
            ("cookie", cookie.as_str()),
            ("origin", "http://localhost:5173"),
        ],
    )
    .await;
    assert_error(&r, 401, "unauthorized");

    // A tampered cookie is refused.
    let tampered = format!("{}x", cookie);
    let r = send(
        addr,
        Method::GET,
        "/api/runtimes",
        None,
        &[("cookie", tampered.as_str())],
    )
    .await;
    assert_error(&r, 401, "unauthorized");

    // Expiry: a second before, still good; at the TTL, gone.
    world.clock.advance(TTL - Duration::from_secs(1));
    let r = send(addr, Method::GET, "/api/session", None, &with_cookie).await;
    assert_status(&r, 200);
    world.clock.advance(Duration::from_secs(1));
    let r = send(addr, Method::GET, "/api/session", None, &with_cookie).await;
    assert_error(&r, 401, "unauthorized");
    assert!(r.text().contains("expired"), "{}", r.text());

    // Logout clears the cookie in the browser.
    let r = send(addr, Method::DELETE, "/api/session", None, &with_cookie).await;
    assert_status(&r, 204);
    assert_eq!(
        r.headers[http::header::SET_COOKIE],
        "switchyard_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_refuses_a_copy_of_the_cookie_and_closes_its_event_streams() {
    let world = World::start().await;
    let addr = world.api.addr;
    // The same person in two browsers: two sessions.
    let (first, second) = (sign_in(addr, VIEWER).await, sign_in(addr, VIEWER).await);
    assert_ne!(first, second);
    let worker = world.worker("local", false).await;
    let path = format!("/api/runtimes/local/workers/{worker}/events/ws");
    let mut first_stream = watch(addr, &path, ("cookie", first.as_str())).await;
    let mut second_stream = watch(addr, &path, ("cookie", second.as_str())).await;
    let bearer_viewer = bearer(VIEWER);
    let mut bearer_stream = watch(addr, &path, ("authorization", bearer_viewer.as_str())).await;

    // A forged cookie signs nothing out.
    let r = send(
        addr,
        Method::DELETE,
        "/api/session",
        None,
        &[("cookie", "switchyard_session=v1.forged.cookie")],
    )
    .await;
    assert_status(&r, 204);
    let with_first = [("cookie", first.as_str())];
    assert_status(
        &send(addr, Method::GET, "/api/session", None, &with_first).await,
        200,
    );

    let r = send(addr, Method::DELETE, "/api/session", None, &with_first).await;
    assert_status(&r, 204);
    let audit = logs::audit_of(r.headers["x-request-id"].to_str().unwrap());
    assert_eq!(audit[0].field("action"), Some("session_end"));
    assert_eq!(audit[0].field("identity"), Some("vera"));
    // A copy of the signed-out cookie (the browser dropped its own) is refused ...
    let r = send(addr, Method::GET, "/api/runtimes", None, &with_first).await;
    assert_error(&r, 401, "unauthorized");
    assert!(r.text().contains("signed out"), "{}", r.text());
    let (status, body) = ws_status(addr, &path, &with_first).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("unauthorized"))
    );
    // ... and the event stream it opened is closed; the other session's, and the
    // token's, go on.
    assert_eq!(
        close_frame(&mut first_stream).await,
        Some((1001, "access_ended".to_owned()))
    );
    let with_second = [("cookie", second.as_str())];
    assert_status(
        &send(addr, Method::GET, "/api/session", None, &with_second).await,
        200,
    );
    for stream in [&mut second_stream, &mut bearer_stream] {
        assert_still_open(stream).await;
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_opened_with_a_cookie_closes_when_the_session_expires() {
    const SHORT: Duration = Duration::from_secs(2);
    let world = World::start_with(tokens(), None, |settings| {
        if let switchyard_server::config::AuthSettings::Tokens(auth) = &mut settings.auth {
            auth.session_ttl = SHORT;
        }
    })
    .await;
    let addr = world.api.addr;
    let cookie = sign_in(addr, VIEWER).await;
    // The test's clock stands still: the session's 2 s run in real time from here.
    let signed_in = tokio::time::Instant::now();
    let worker = world.worker("local", false).await;
    let path = format!("/api/runtimes/local/workers/{worker}/events/ws");
    let mut with_cookie = watch(addr, &path, ("cookie", cookie.as_str())).await;
    let bearer_viewer = bearer(VIEWER);
    let mut with_bearer = watch(addr, &path, ("authorization", bearer_viewer.as_str())).await;

    assert_eq!(
        close_frame(&mut with_cookie).await,
        Some((1001, "access_ended".to_owned()))
    );
    assert!(signed_in.elapsed() >= SHORT - Duration::from_millis(100));
    assert_still_open(&mut with_bearer).await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_with_one_key_share_sessions_and_a_removed_token_ends_them() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("session.key");
    std::fs::write(&key_file, [42u8; 48]).unwrap();
    let key = std::fs::read(&key_file).unwrap();

    let first = World::start_with(tokens(), Some(key.clone()), |_| {}).await;
    let cookie = sign_in(first.api.addr, VIEWER).await;
    let with_cookie = [("cookie", cookie.as_str())];

    // A replica with the same key and tokens accepts it; one with another key does not.
    let replica = World::start_with(tokens(), Some(key.clone()), |_| {}).await;
    let r = send(
        replica.api.addr,
        Method::GET,
        "/api/session",
        None,
        &with_cookie,
    )
    .await;
    assert_status(&r, 200);
    assert_eq!(r.json["name"], "vera");
    let stranger = World::start_with(tokens(), Some(vec![7u8; 32]), |_| {}).await;
    let r = send(
        stranger.api.addr,
        Method::GET,
        "/api/session",
        None,
        &with_cookie,
    )
    .await;
    assert_error(&r, 401, "unauthorized");

    // The configuration without vera's token (the same key): her session has ended,
    // while the others' tokens still work.
    let without_vera: Vec<TestToken> = tokens().into_iter().filter(|t| t.name != "vera").collect();
    let changed = World::start_with(without_vera, Some(key.clone()), |_| {}).await;
    let r = send(
        changed.api.addr,
        Method::GET,
        "/api/session",
        None,
        &with_cookie,
    )
    .await;
    assert_error(&r, 401, "unauthorized");
    let r = send(
        changed.api.addr,
        Method::GET,
        "/api/runtimes",
        None,
        &with_cookie,
    )
    .await;
    assert_error(&r, 401, "unauthorized");
    let r = changed.admin.get("/api/session").await;
    assert_status(&r, 200);

    // Her role changed instead: the session continues with the new role at once.
    let mut promoted = tokens();
    promoted[0].role = Role::Operator;
    let changed_role = World::start_with(promoted, Some(key), |_| {}).await;
    let r = send(
        changed_role.api.addr,
        Method::GET,
        "/api/session",
        None,
        &with_cookie,
    )
    .await;
    assert_eq!(
        r.json,
        json!({"name": "vera", "role": "operator", "auth": true})
    );

    for world in [first, replica, stranger, changed, changed_role] {
        world.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_take_a_cookie_or_a_bearer_token_and_check_the_origin() {
    let world = World::start().await;
    let addr = world.api.addr;
    let worker = world.worker("local", false).await;
    let path = format!("/api/runtimes/local/workers/{worker}/events/ws");
    let cookie = sign_in(addr, VIEWER).await;
    let own = format!("http://{addr}");
    let bearer_viewer = bearer(VIEWER);
    /// (headers, expected status, expected code)
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (vec![("cookie", cookie.as_str())], 101, ""),
        (
            vec![("cookie", cookie.as_str()), ("origin", own.as_str())],
            101,
            "",
        ),
        (
            vec![
                ("cookie", cookie.as_str()),
                ("origin", "http://localhost:5173"),
            ],
            101,
            "",
        ),
        (vec![("authorization", bearer_viewer.as_str())], 101, ""),
        (vec![], 401, "unauthorized"),
        (
            vec![("cookie", "switchyard_session=v1.forged.cookie")],
            401,
            "unauthorized",
        ),
        (
            vec![
                ("cookie", cookie.as_str()),
                ("origin", "http://evil.example"),
            ],
            403,
            "origin_not_allowed",
        ),
        (
            vec![
                ("authorization", bearer_viewer.as_str()),
                ("origin", "http://evil.example"),
            ],
            403,
            "origin_not_allowed",
        ),
        (
            vec![("origin", "http://evil.example")],
            403,
            "origin_not_allowed",
        ),
    ];
    for (headers, status, code) in cases {
        let (got, body) = ws_status(addr, &path, &headers).await;
        assert_eq!(got, status, "{headers:?}: {body}");
        if status == 101 {
            assert_eq!(body["event"]["kind"], "snapshot");
        } else {
            assert_eq!(body["error"]["code"], code, "{headers:?}");
        }
    }
    world.stop().await;
}

/// Every secret a test world hands out: tokens, their hashes, session cookies.
fn secrets(cookies: &[String]) -> Vec<String> {
    let mut secrets = Vec::new();
    for token in [VIEWER, OPERATOR, ADMIN, OTHER, WRONG, REMOTE_TOKEN] {
        secrets.push(token.to_owned());
        secrets.push(TokenHash::of(token).to_hex());
    }
    for cookie in cookies {
        let value = cookie.trim_start_matches("switchyard_session=");
        secrets.push(value.to_owned());
        // Each half of the cookie is a secret on its own (the signature especially).
        secrets.extend(value.split('.').filter(|p| p.len() > 8).map(str::to_owned));
    }
    secrets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_hash_or_cookie_in_logs_or_answers() {
    let world = World::start().await;
    let addr = world.api.addr;
    let mut answers: Vec<TestResponse> = Vec::new();
    let mut cookies = Vec::new();
    for token in [VIEWER, OPERATOR, ADMIN, OTHER, WRONG] {
        let login = post_session(addr, token).await;
        if login.status == 200 {
            cookies.push(session_cookie(&login));
        }
        // The login answer's body and headers other than Set-Cookie carry no secret.
        let mut stripped = login;
        stripped.headers.remove(http::header::SET_COOKIE);
        answers.push(stripped);
    }
    assert_eq!(cookies.len(), 4, "every configured token signs in");
    let worker = world.worker("local", false).await;
    let w = format!("/api/runtimes/local/workers/{worker}");
    for token in [VIEWER, OPERATOR, ADMIN, OTHER, WRONG] {
        let auth = bearer(token);
        for (method, path, body) in [
            (Method::GET, "/api/runtimes".to_owned(), None),
            (Method::GET, "/api/workers".to_owned(), None),
            (Method::GET, w.clone(), None),
            (
                Method::POST,
                format!("{w}/input"),
                Some(json!({"text": "x"})),
            ),
            (Method::POST, format!("{w}/cancel"), None),
            (Method::GET, "/api/session".to_owned(), None),
        ] {
            let body = body.map(|b| b.to_string().into_bytes());
            let mut headers = vec![("authorization", auth.as_str())];
            if body.is_some() {
                headers.push(("content-type", "application/json"));
            }
            answers.push(send(addr, method, &path, body.as_deref(), &headers).await);
        }
    }
    for cookie in &cookies {
        answers.push(
            send(
                addr,
                Method::GET,
                "/api/session",
                None,
                &[("cookie", cookie.as_str())],
            )
            .await,
        );
        answers.push(
            send(
                addr,
                Method::GET,
                &format!("{w}/transcript"),
                None,
                &[("cookie", cookie.as_str())],
            )
            .await,
        );
        let (_, frame) = ws_status(
            addr,
            &format!("{w}/events/ws"),
            &[("cookie", cookie.as_str())],
        )
        .await;
        let _ = frame;
    }
    // A malformed header and a tampered cookie, which the server must not echo.
    let broken = format!("Bearer {ADMIN} extra");
    answers.push(
        send(
            addr,
            Method::GET,
            "/api/runtimes",
            None,
            &[("authorization", broken.as_str())],
        )
        .await,
    );
    let tampered = format!("{}zz", cookies[0]);
    answers.push(
        send(
            addr,
            Method::GET,
            "/api/runtimes",
            None,
            &[("cookie", tampered.as_str())],
        )
        .await,
    );

    let secrets = secrets(&cookies);
    for answer in &answers {
        let mut text = answer.text();
        for (name, value) in &answer.headers {
            text.push_str(&format!("\n{name}: {}", value.to_str().unwrap_or("")));
        }
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret in an answer: {text}"
            );
        }
    }
    let events = logs::events();
    assert!(
        events.iter().any(|e| e.target == "switchyard::http"),
        "request lines are captured"
    );
    for event in events {
        let text = format!("{} {:?}", event.target, event.fields);
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret in a log event: {text}"
            );
        }
    }
    world.stop().await;
}
