//! `HEAD` on both surfaces (RFC 9110 §9.3.2), in-process: every route that answers
//! `GET` answers `HEAD` with the `GET`'s status and header fields, `Content-Length`
//! included, and not one byte of body on the wire, for every kind of caller (so a
//! `HEAD` is refused exactly where its `GET` is); a `HEAD` never upgrades to an event
//! stream; a route without `GET` answers `HEAD` `405`, and every `405`'s `Allow`
//! names `HEAD` after `GET`; and a `HEAD` relayed to a remote runtime reaches it as a
//! `GET`.
//!
//! The tables of routes are held to the OpenAPI documents (which a unit test holds to
//! the route tables): a new route that answers `GET` fails here until it is listed.

mod backend_common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use backend_common::*;
use serde_json::{Value, json};
use switchyard_e2e::raw_http::{self, comparable};
use switchyard_registry::{Role, WorkerScope};
use switchyard_server::auth::Clock;
use switchyard_server::commands::runtime::RunningRuntime;
use switchyard_server::commands::serve::RunningBackend;

const REMOTE_TOKEN: &str = "runtime-token-for-the-head-tests";
const VIEWER: &str = "sy_head-viewer-0001";
const ADMIN: &str = "sy_head-admin-0002";
const OTHER: &str = "sy_head-remote-only-0003";
const OWN: &str = "sy_head-own-viewer-0004";
const WRONG: &str = "sy_head-not-a-configured-token";
const ALLOWED_ORIGIN: &str = "http://localhost:5173";

/// What a WebSocket client sends to open an event stream.
const UPGRADE: [(&str, &str); 4] = [
    ("connection", "Upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

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
        TestToken {
            name: "owen",
            token: OWN,
            role: Role::Viewer,
            runtimes: &[],
            workers: WorkerScope::Own,
        },
    ]
}

/// A backend with auth on, its embedded runtime `local` and the in-process remote
/// runtime `remote`, an echo worker on each that has echoed a line, and a metrics
/// listener.
struct World {
    remote: RunningRuntime,
    backend: RunningBackend,
    admin: Api,
    /// The worker on `local`, and the one on `remote`.
    workers: (String, String),
}

impl World {
    async fn start() -> Self {
        let remote = start_runtime("remote", Some(REMOTE_TOKEN)).await;
        let mut settings = backend_settings(true, vec![remote_settings(&remote)], NO_PROBES);
        settings.auth = token_auth(&tokens(), None, Duration::from_secs(3600), &Clock::system());
        settings.allowed_origins = vec![ALLOWED_ORIGIN.to_owned()];
        settings.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        let (backend, api) = start_backend(settings).await;
        let admin = Api {
            addr: api.addr,
            token: Some(ADMIN.to_owned()),
        };
        let mut workers = Vec::new();
        for runtime in ["local", "remote"] {
            let id = create_echo(&admin, runtime, "head").await;
            let path = format!("/api/runtimes/{runtime}/workers/{id}");
            let r = admin
                .post(&format!("{path}/input"), json!({"text": "hello\n"}))
                .await;
            assert_status(&r, 202);
            wait_output(&admin, &path, "hello\n").await;
            workers.push(id);
        }
        let local = workers.remove(0);
        Self {
            remote,
            backend,
            admin,
            workers: (local, workers.remove(0)),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.admin.addr
    }

    fn runtime_addr(&self) -> SocketAddr {
        self.remote.server.local_addr()
    }

    async fn stop(self) {
        self.backend.shutdown().await;
        self.remote.shutdown().await;
    }
}

fn remote_settings(runtime: &RunningRuntime) -> switchyard_server::config::RemoteSettings {
    remote(
        "remote",
        &base_url(runtime.server.local_addr()),
        REMOTE_TOKEN,
        Duration::from_secs(10),
    )
}

/// One concrete request of a route: its path and query, and the status an admin
/// (on the backend) or a holder of the token (on a runtime) gets.
struct Ask {
    path: String,
    status: u16,
}

fn ask(path: impl Into<String>, status: u16) -> Ask {
    Ask {
        path: path.into(),
        status,
    }
}

/// One route that answers `GET`: its template, what is asked of it, and whether its
/// body may change from one call to the next (then the `Content-Length` of the `HEAD`
/// and of the `GET` are compared as numbers that are close, not as equal).
struct GetRoute {
    template: &'static str,
    asks: Vec<Ask>,
    volatile: bool,
}

fn route(template: &'static str, asks: Vec<Ask>) -> GetRoute {
    GetRoute {
        template,
        asks,
        volatile: false,
    }
}

fn volatile(template: &'static str, asks: Vec<Ask>) -> GetRoute {
    GetRoute {
        template,
        asks,
        volatile: true,
    }
}

/// Every route of the backend that answers `GET`, but the console's files.
fn backend_gets(local: &str, remote: &str) -> Vec<GetRoute> {
    let l = format!("/api/runtimes/local/workers/{local}");
    let r = format!("/api/runtimes/remote/workers/{remote}");
    vec![
        route("/healthz", vec![ask("/healthz", 200)]),
        route("/readyz", vec![ask("/readyz", 200)]),
        route("/api/openapi.json", vec![ask("/api/openapi.json", 200)]),
        route("/api/session", vec![ask("/api/session", 200)]),
        volatile("/api/runtimes", vec![ask("/api/runtimes", 200)]),
        volatile(
            "/api/runtimes/{runtime_id}",
            vec![
                ask("/api/runtimes/local", 200),
                ask("/api/runtimes/remote", 200),
                ask("/api/runtimes/nowhere", 404),
            ],
        ),
        route(
            "/api/workers",
            vec![
                ask("/api/workers", 200),
                ask("/api/workers?status=running", 200),
                ask("/api/workers?limit=0", 400),
            ],
        ),
        route(
            "/api/runtimes/{runtime_id}/workers",
            vec![
                ask("/api/runtimes/local/workers", 200),
                ask("/api/runtimes/remote/workers", 200),
                ask("/api/runtimes/remote/workers?status=exited", 200),
                ask("/api/runtimes/remote/workers?bogus=1", 400),
            ],
        ),
        route(
            "/api/runtimes/{runtime_id}/workers/{worker_id}",
            vec![
                ask(l.clone(), 200),
                ask(r.clone(), 200),
                ask("/api/runtimes/remote/workers/w-nobody", 404),
                ask("/api/runtimes/remote/workers/.bad", 400),
            ],
        ),
        route(
            "/api/runtimes/{runtime_id}/workers/{worker_id}/transcript",
            vec![
                ask(format!("{l}/transcript"), 200),
                ask(format!("{r}/transcript?after=1&limit=1"), 200),
                ask("/api/runtimes/remote/workers/w-nobody/transcript", 404),
            ],
        ),
        // Without the upgrade's headers an event stream's route is 400, for a `HEAD`
        // as for a `GET` (see `head_never_opens_an_event_stream`).
        route(
            "/api/runtimes/{runtime_id}/workers/{worker_id}/events/ws",
            vec![
                ask(format!("{l}/events/ws"), 400),
                ask(format!("{r}/events/ws?interactive=true"), 400),
            ],
        ),
        volatile("/metrics", vec![ask("/metrics", 200)]),
    ]
}

/// Every route of a standalone runtime that answers `GET`.
fn runtime_gets(worker: &str) -> Vec<GetRoute> {
    let w = format!("/v1/workers/{worker}");
    vec![
        route("/v1/health", vec![ask("/v1/health", 200)]),
        route("/v1/openapi.json", vec![ask("/v1/openapi.json", 200)]),
        route("/v1/runtime", vec![ask("/v1/runtime", 200)]),
        route(
            "/v1/workers",
            vec![
                ask("/v1/workers", 200),
                ask("/v1/workers?limit=1", 200),
                ask("/v1/workers?limit=0", 400),
            ],
        ),
        route(
            "/v1/workers/{worker_id}",
            vec![ask(w.clone(), 200), ask("/v1/workers/w-nobody", 404)],
        ),
        route(
            "/v1/workers/{worker_id}/transcript",
            vec![ask(format!("{w}/transcript?limit=2"), 200)],
        ),
        route(
            "/v1/workers/{worker_id}/events/ws",
            vec![ask(format!("{w}/events/ws"), 400)],
        ),
        volatile("/v1/metrics", vec![ask("/v1/metrics", 200)]),
    ]
}

/// Who asks: a name for messages, and the headers that make them who they are.
struct Who {
    name: &'static str,
    headers: Vec<(&'static str, String)>,
}

fn who(name: &'static str, headers: &[(&'static str, &str)]) -> Who {
    Who {
        name,
        headers: headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
    }
}

impl Who {
    fn headers(&self) -> Vec<(&str, &str)> {
        self.headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
    }

    /// True when it carries no credential the server accepts.
    fn is_stranger(&self) -> bool {
        matches!(self.name, "nobody" | "a wrong token")
    }
}

/// [`raw_http::assert_head_is_get_head`], returning the status.
async fn assert_head_is_get_head(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    then: (&str, bool),
    what: &str,
) -> u16 {
    raw_http::assert_head_is_get_head(addr, path, headers, then, what)
        .await
        .status
}

/// Every ask of every route, by every caller: the `HEAD` is the `GET`'s head
/// ([`assert_head_is_get_head`], then a request for `then` on the same
/// connection), and its status is what `expected` says when it says something.
async fn assert_every_head(
    addr: SocketAddr,
    routes: &[GetRoute],
    callers: &[Who],
    then: &str,
    expected: impl Fn(&Who, &GetRoute, &Ask) -> Option<u16>,
) {
    for route in routes {
        for ask in &route.asks {
            for caller in callers {
                let what = format!("{} HEAD {}", caller.name, ask.path);
                let status = assert_head_is_get_head(
                    addr,
                    &ask.path,
                    &caller.headers(),
                    (then, route.volatile),
                    &what,
                )
                .await;
                if let Some(expected) = expected(caller, route, ask) {
                    assert_eq!(status, expected, "{what}");
                }
            }
        }
    }
}

/// The paths of `document` with the methods of each, upper case.
fn document_methods(document: &Value) -> Vec<(String, BTreeSet<String>)> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("a path item")
                .keys()
                .filter(|k| {
                    [
                        "get", "put", "post", "delete", "options", "head", "patch", "trace",
                    ]
                    .contains(&k.as_str())
                })
                .map(|k| k.to_ascii_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// The templates of `document` that answer `GET`.
fn get_templates(document: &Value) -> BTreeSet<String> {
    document_methods(document)
        .into_iter()
        .filter(|(_, methods)| methods.contains("GET"))
        .map(|(path, _)| path)
        .collect()
}

fn templates_of(routes: &[GetRoute]) -> BTreeSet<String> {
    routes.iter().map(|r| r.template.to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_get_route_answers_head_with_its_head_for_every_caller() {
    let world = World::start().await;
    let addr = world.addr();
    let (local, remote) = world.workers.clone();
    let routes = backend_gets(&local, &remote);
    let document = world.admin.get("/api/openapi.json").await.json;
    assert_eq!(
        templates_of(&routes),
        get_templates(&document),
        "the table lists every backend route that answers GET"
    );
    let login = world
        .admin
        .post("/api/session", json!({ "token": VIEWER }))
        .await;
    assert_status(&login, 200);
    let cookie = session_cookie(&login);
    let callers = [
        who("nobody", &[]),
        who("a wrong token", &[("authorization", &bearer(WRONG))]),
        who("a viewer", &[("authorization", &bearer(VIEWER))]),
        who("a viewer's session", &[("cookie", &cookie)]),
        who("an own-workers viewer", &[("authorization", &bearer(OWN))]),
        who(
            "a token granted only remote",
            &[("authorization", &bearer(OTHER))],
        ),
        who("an admin", &[("authorization", &bearer(ADMIN))]),
        who(
            "an admin on an allowed origin's page",
            &[
                ("authorization", &bearer(ADMIN)),
                ("origin", ALLOWED_ORIGIN),
            ],
        ),
        who(
            "an admin naming another host",
            &[("authorization", &bearer(ADMIN)), ("host", "evil.example")],
        ),
    ];
    let public = ["/healthz", "/readyz", "/api/openapi.json"];
    // The comparison means something: strangers are refused, the admin gets what
    // the table says, another host is refused before all.
    assert_every_head(
        addr,
        &routes,
        &callers,
        "/healthz",
        |caller, route, ask| match caller.name {
            "an admin" => Some(ask.status),
            "an admin naming another host" => Some(403),
            _ if caller.is_stranger() && !public.contains(&route.template) => Some(401),
            _ => None,
        },
    )
    .await;
    // The console's files too, for strangers as for the signed-in.
    for path in [
        "/",
        "/assets/app.js",
        "/assets/style.css",
        "/assets/missing.js",
    ] {
        for caller in &callers {
            let what = format!("{} HEAD {path}", caller.name);
            assert_head_is_get_head(addr, path, &caller.headers(), ("/healthz", false), &what)
                .await;
        }
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_runtime_get_route_answers_head_with_its_head_for_every_caller() {
    let world = World::start().await;
    let addr = world.runtime_addr();
    let token = Api {
        addr,
        token: Some(REMOTE_TOKEN.to_owned()),
    };
    let document = token.get("/v1/openapi.json").await.json;
    let routes = runtime_gets(&world.workers.1);
    assert_eq!(
        templates_of(&routes),
        get_templates(&document),
        "the table lists every runtime route that answers GET"
    );
    let callers = [
        who("nobody", &[]),
        who("a wrong token", &[("authorization", &bearer(WRONG))]),
        who("the token", &[("authorization", &bearer(REMOTE_TOKEN))]),
        who(
            "the token from a page",
            &[
                ("authorization", &bearer(REMOTE_TOKEN)),
                ("origin", "http://localhost"),
            ],
        ),
    ];
    assert_every_head(
        addr,
        &routes,
        &callers,
        "/v1/health",
        |caller, route, ask| match caller.name {
            "the token" => Some(ask.status),
            "the token from a page" => Some(403),
            _ if route.template != "/v1/health" => Some(401),
            _ => None,
        },
    )
    .await;
    world.stop().await;
}

/// `path` of a document's template, its ids filled in.
fn concrete(template: &str, worker: &str) -> String {
    template
        .replace("{runtime_id}", "remote")
        .replace("{worker_id}", worker)
}

/// `Allow` as a set, checking that `HEAD` comes right after `GET` where both are.
fn allowed(allow: Option<String>, what: &str) -> BTreeSet<String> {
    let allow = allow.unwrap_or_else(|| panic!("{what}: a 405 without Allow"));
    let methods: Vec<String> = allow.split(", ").map(str::to_owned).collect();
    if let Some(get) = methods.iter().position(|m| m == "GET") {
        assert_eq!(
            methods.get(get + 1).map(String::as_str),
            Some("HEAD"),
            "{what}: Allow: {allow}"
        );
    }
    methods.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_405_lists_head_after_get_and_a_route_without_get_refuses_head() {
    let world = World::start().await;
    let surfaces = [
        (
            world.addr(),
            ADMIN,
            "/api/openapi.json",
            "/healthz",
            world.workers.1.clone(),
        ),
        (
            world.runtime_addr(),
            REMOTE_TOKEN,
            "/v1/openapi.json",
            "/v1/health",
            world.workers.1.clone(),
        ),
    ];
    for (addr, token, document, then, worker) in surfaces {
        let api = Api {
            addr,
            token: Some(token.to_owned()),
        };
        let auth = bearer(token);
        let headers = [("authorization", auth.as_str())];
        let document = api.get(document).await.json;
        let paths = document_methods(&document);
        assert!(paths.len() > 5, "{document}");
        for (template, methods) in paths {
            let path = concrete(&template, &worker);
            let mut expected = methods.clone();
            if methods.contains("GET") {
                expected.insert("HEAD".to_owned());
            } else {
                // No GET, so no HEAD: 405, as its GET is, with the same Allow.
                let what = format!("HEAD {path}");
                let status =
                    assert_head_is_get_head(addr, &path, &headers, (then, false), &what).await;
                assert_eq!(status, 405, "{what}");
                let (head, _) = raw_http::head_then_get(addr, &path, &headers, then).await;
                assert_eq!(allowed(head.header("allow"), &what), expected, "{what}");
            }
            // A method no route answers: 405 with the route's methods, HEAD after GET.
            let what = format!("PUT {path}");
            let r = send(addr, http::Method::PUT, &path, None, &headers).await;
            assert_error(&r, 405, "method_not_allowed");
            let allow = r
                .headers
                .get("allow")
                .map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(allowed(allow, &what), expected, "{what}");
        }
    }
    world.stop().await;
}

/// The value of the samples of `family` in a metrics text whose labels contain
/// `label`, added up.
fn sum_of(text: &str, family: &str, label: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{family}{{")) && line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_never_opens_an_event_stream() {
    let world = World::start().await;
    let (local, remote) = world.workers.clone();
    let admin = bearer(ADMIN);
    let viewer = bearer(VIEWER);
    let with = |extra: &[(&'static str, &'static str)], auth: Option<&str>| {
        let mut headers: Vec<(String, String)> = UPGRADE
            .iter()
            .chain(extra)
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(auth) = auth {
            headers.push(("authorization".to_owned(), auth.to_owned()));
        }
        headers
    };
    let backend_cases = [
        // (path, headers of the HEAD, status)
        (
            format!("/api/runtimes/local/workers/{local}/events/ws"),
            with(&[], Some(&admin)),
            400,
        ),
        (
            format!("/api/runtimes/remote/workers/{remote}/events/ws"),
            with(&[], Some(&admin)),
            400,
        ),
        (
            format!("/api/runtimes/remote/workers/{remote}/events/ws?interactive=true"),
            with(&[], Some(&viewer)),
            400,
        ),
        // Refused as its GET would be, before anything else.
        (
            format!("/api/runtimes/local/workers/{local}/events/ws"),
            with(&[], None),
            401,
        ),
        (
            format!("/api/runtimes/local/workers/{local}/events/ws"),
            with(&[("origin", "http://evil.example")], Some(&admin)),
            403,
        ),
    ];
    for (path, headers, status) in backend_cases {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let what = format!("HEAD {path} with {headers:?}");
        let (head, next) = raw_http::head_then_get(world.addr(), &path, &headers, "/healthz").await;
        assert_eq!(head.status, status, "{what}: {}", head.head);
        assert_eq!(head.body_len, 0, "{what}");
        assert!(
            head.header("content-length").is_some(),
            "{what}: {}",
            head.head
        );
        assert_eq!(head.header("upgrade"), None, "{what}");
        // Still HTTP on that connection: the next request was answered.
        assert_eq!(next.status, 200, "{what}");
        // Answered as the same GET without the upgrade's headers would be, when it
        // got that far (the refusals above come before the upgrade is looked at).
        let plain: Vec<(&str, &str)> = headers
            .iter()
            .copied()
            .filter(|(n, _)| !UPGRADE.iter().any(|(u, _)| u == n))
            .collect();
        if status == 400 {
            let get = raw_http::get(world.addr(), &path, &plain).await;
            assert_eq!(get.code(), "invalid_request", "{what}");
            assert_eq!(comparable(&head, false), comparable(&get, false), "{what}");
        }
    }
    let runtime_path = format!("/v1/workers/{remote}/events/ws");
    let token = bearer(REMOTE_TOKEN);
    let headers = with(&[], Some(&token));
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let (head, next) =
        raw_http::head_then_get(world.runtime_addr(), &runtime_path, &headers, "/v1/health").await;
    assert_eq!((head.status, next.status), (400, 200), "{}", head.head);

    // Nobody watches: no viewer in the hub, no subscriber on either runtime.
    let metrics = world.admin.get("/metrics").await.text();
    assert_eq!(
        sum_of(&metrics, "switchyard_hub_viewers", ""),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        sum_of(&metrics, "switchyard_hub_channels", ""),
        0.0,
        "{metrics}"
    );
    let embedded = world.backend.embedded.as_ref().expect("local");
    assert_eq!(embedded.info().subscribers, 0);
    assert_eq!(world.remote.runtime.info().subscribers, 0);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_answers_head_and_lists_it_in_allow() {
    let world = World::start().await;
    let addr = world
        .backend
        .metrics_server
        .as_ref()
        .expect("metrics_listen")
        .local_addr();
    let status =
        assert_head_is_get_head(addr, "/metrics", &[], ("/metrics", true), "HEAD /metrics").await;
    assert_eq!(status, 200);
    let refused = assert_head_is_get_head(
        addr,
        "/metrics",
        &[("host", "evil.example")],
        ("/metrics", false),
        "HEAD /metrics naming another host",
    )
    .await;
    assert_eq!(refused, 403);
    let r = send(addr, http::Method::PUT, "/metrics", None, &[]).await;
    assert_error(&r, 405, "method_not_allowed");
    assert_eq!(r.headers["allow"], "GET, HEAD");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_through_a_remote_runtime_reaches_it_as_a_get() {
    let world = World::start().await;
    let remote = &world.workers.1;
    let auth = bearer(ADMIN);
    let headers = [("authorization", auth.as_str())];
    let runtime_metrics = || async {
        let runtime = Api {
            addr: world.runtime_addr(),
            token: Some(REMOTE_TOKEN.to_owned()),
        };
        runtime.get("/v1/metrics").await.text()
    };
    let before = runtime_metrics().await;
    let w = format!("/api/runtimes/remote/workers/{remote}");
    // (path, the runtime's route it is relayed to)
    let relayed = [
        (w.clone(), "/v1/workers/{worker_id}"),
        ("/api/runtimes/remote/workers".to_owned(), "/v1/workers"),
        (
            format!("{w}/transcript"),
            "/v1/workers/{worker_id}/transcript",
        ),
        ("/api/runtimes/remote".to_owned(), "/v1/runtime"),
        // Relayed as an error: the runtime's 404, relabelled.
        (
            "/api/runtimes/remote/workers/w-nobody".to_owned(),
            "/v1/workers/{worker_id}",
        ),
    ];
    for (path, _) in &relayed {
        let what = format!("HEAD {path}");
        let volatile = path == "/api/runtimes/remote";
        assert_head_is_get_head(world.addr(), path, &headers, ("/healthz", volatile), &what).await;
    }
    let after = runtime_metrics().await;
    for (path, upstream) in &relayed {
        let route = format!("route=\"{upstream}\"");
        let gets = |text: &str| {
            sum_of(
                text,
                "switchyard_http_requests_total",
                &format!("{route},method=\"GET\""),
            )
        };
        assert!(
            gets(&after) >= gets(&before) + 2.0,
            "{path}: the runtime saw the HEAD and the GET as GETs\n{after}"
        );
    }
    assert!(
        !after.contains("method=\"HEAD\""),
        "the runtime never sees a HEAD:\n{after}"
    );
    // The backend counts them as what they were.
    let backend = world.admin.get("/metrics").await.text();
    assert!(
        sum_of(
            &backend,
            "switchyard_http_requests_total",
            "route=\"/api/runtimes/{runtime_id}/workers/{worker_id}\",method=\"HEAD\""
        ) >= 2.0,
        "{backend}"
    );
    world.stop().await;
}
