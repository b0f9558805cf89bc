//! Worker ownership in-process, on an embedded and a real remote runtime: two
//! operators and a viewer who reach only their own workers, a viewer and an admin who
//! reach all, each against workers of every kind of owner on every worker route
//! (table-driven), the event WebSocket included; lists, counts and paging through 250
//! workers of mixed owners; the owner in details, snapshots and audit lines; a body
//! that tries to set `owner`.

mod backend_common;

use std::collections::BTreeSet;
use std::time::Duration;

use backend_common::logs;
use backend_common::*;
use http::Method;
use serde_json::{Value, json};
use switchyard_e2e::ws::{connect, next_json};
use switchyard_protocol::{CreateWorkerRequest, WorkerStatus};
use switchyard_registry::{Role, WorkerScope};
use switchyard_runtime::{Runtime, RuntimeConfig};
use switchyard_server::auth::Clock;
use switchyard_server::commands::runtime::{self as runtime_cmd, RunningRuntime};
use switchyard_server::commands::serve::RunningBackend;
use switchyard_server::config::{EmbeddedSettings, RuntimeSettings};
use tokio_tungstenite::tungstenite;

const REMOTE_TOKEN: &str = "owners-test-runtime-token";
const RUNTIMES: [&str; 2] = ["local", "remote"];

/// A caller of the tests: name, token, role, worker scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Who {
    name: &'static str,
    token: &'static str,
    role: Role,
    scope: WorkerScope,
}

const OLGA: Who = Who {
    name: "olga",
    token: "sy_olga-operator-own",
    role: Role::Operator,
    scope: WorkerScope::Own,
};
const OSCAR: Who = Who {
    name: "oscar",
    token: "sy_oscar-operator-own",
    role: Role::Operator,
    scope: WorkerScope::Own,
};
const VIO: Who = Who {
    name: "vio",
    token: "sy_vio-viewer-own",
    role: Role::Viewer,
    scope: WorkerScope::Own,
};
const VAL: Who = Who {
    name: "val",
    token: "sy_val-viewer-all",
    role: Role::Viewer,
    scope: WorkerScope::All,
};
const ADA: Who = Who {
    name: "ada",
    token: "sy_ada-admin",
    role: Role::Admin,
    scope: WorkerScope::All,
};
const CALLERS: [Who; 5] = [OLGA, OSCAR, VIO, VAL, ADA];

/// The owners fixtures have: each caller's name, and none (made directly on the
/// runtime). `vio` owns workers from before it became a viewer.
const OWNERS: [Option<&str>; 5] = [Some("olga"), Some("oscar"), Some("vio"), Some("ada"), None];

impl Who {
    fn reaches(self, owner: Option<&str>) -> bool {
        self.role == Role::Admin || self.scope == WorkerScope::All || owner == Some(self.name)
    }

    fn api(self, addr: std::net::SocketAddr) -> Api {
        Api {
            addr,
            token: Some(self.token.to_owned()),
        }
    }
}

fn big_runtime(id: &str) -> RuntimeConfig {
    let mut config = runtime_config(id);
    config.limits.max_workers = 1000;
    config
}

struct World {
    remote: RunningRuntime,
    backend: RunningBackend,
    addr: std::net::SocketAddr,
}

impl World {
    async fn start() -> Self {
        logs::install();
        let mut runtime_settings = RuntimeSettings::new(big_runtime("remote"));
        runtime_settings.listen = "127.0.0.1:0".parse().unwrap();
        runtime_settings.tokens = switchyard_transport::SecretToken::new(REMOTE_TOKEN)
            .into_iter()
            .collect();
        let runtime = runtime_cmd::start(runtime_settings).await.unwrap();
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
        settings.embedded = Some(EmbeddedSettings::new(big_runtime("local")));
        let tokens: Vec<TestToken> = CALLERS
            .iter()
            .map(|w| TestToken {
                name: w.name,
                token: w.token,
                role: w.role,
                runtimes: &[],
                workers: w.scope,
            })
            .collect();
        settings.auth = token_auth(&tokens, None, Duration::from_secs(3600), &Clock::system());
        let (backend, api) = start_backend(settings).await;
        Self {
            remote: runtime,
            backend,
            addr: api.addr,
        }
    }

    fn runtime(&self, runtime: &str) -> &Runtime {
        match runtime {
            "local" => self.backend.embedded.as_ref().unwrap(),
            _ => &self.remote.runtime,
        }
    }

    /// A new echo worker on `runtime` owned by `owner`: created through the backend
    /// by that identity when it may create, else directly on the runtime (as the
    /// backend would have when that identity was an operator). Stopped when `ended`.
    async fn worker(&self, runtime: &str, owner: Option<&str>, ended: bool) -> String {
        let creator = CALLERS
            .iter()
            .find(|w| Some(w.name) == owner && w.role != Role::Viewer);
        let id = match creator {
            Some(who) => {
                let r = who
                    .api(self.addr)
                    .post(
                        &format!("/api/runtimes/{runtime}/workers"),
                        json!({"profile": "echo"}),
                    )
                    .await;
                assert_status(&r, 201);
                assert_eq!(r.json["owner"], json!(owner), "{}", r.text());
                r.json["worker_id"].as_str().unwrap().to_owned()
            }
            None => self
                .runtime(runtime)
                .create(CreateWorkerRequest {
                    profile: "echo".into(),
                    label: None,
                    owner: owner.map(str::to_owned),
                })
                .await
                .unwrap()
                .worker_id
                .to_string(),
        };
        if ended {
            let w = switchyard_protocol::WorkerId::new(&id).unwrap();
            self.runtime(runtime).stop(&w).await.unwrap();
        }
        id
    }

    async fn stop(self) {
        self.backend.shutdown().await;
        self.remote.shutdown().await;
    }
}

/// A worker route of the matrix: method, path tail, body, the status on success,
/// whether it needs an ended worker, whether it is a command (operator role).
struct Route {
    method: Method,
    tail: &'static str,
    body: Option<Value>,
    ok: u16,
    ended: bool,
    command: bool,
}

fn routes() -> Vec<Route> {
    let route = |method, tail, body, ok, ended, command| Route {
        method,
        tail,
        body,
        ok,
        ended,
        command,
    };
    vec![
        route(Method::GET, "", None, 200, false, false),
        route(Method::GET, "/transcript", None, 200, false, false),
        route(Method::GET, "/events/ws", None, 101, false, false),
        route(
            Method::POST,
            "/input",
            Some(json!({"text": "hi"})),
            202,
            false,
            true,
        ),
        route(Method::POST, "/cancel", None, 200, false, true),
        route(Method::POST, "/stop", None, 200, false, true),
        route(Method::DELETE, "", None, 204, true, true),
    ]
}

async fn ws_status(addr: std::net::SocketAddr, path: &str, token: &str) -> (u16, Value) {
    let auth = bearer(token);
    match connect(addr, path, &[("authorization", auth.as_str())]).await {
        Ok(mut ws) => (101, next_json(&mut ws).await),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_caller_reaches_exactly_the_workers_it_may_on_every_route() {
    let world = World::start().await;
    let addr = world.addr;
    for runtime in RUNTIMES {
        for route in routes() {
            for who in CALLERS {
                for owner in OWNERS {
                    let worker = world.worker(runtime, owner, route.ended).await;
                    let path = format!("/api/runtimes/{runtime}/workers/{worker}{}", route.tail);
                    let what = format!(
                        "{} {} {} on {owner:?}'s worker",
                        who.name, route.method, path
                    );
                    let expected = if route.command && who.role == Role::Viewer {
                        403
                    } else if !who.reaches(owner) {
                        404
                    } else {
                        route.ok
                    };
                    if route.tail == "/events/ws" {
                        let (status, body) = ws_status(addr, &path, who.token).await;
                        assert_eq!(status, expected, "{what}: {body}");
                        if status == 101 {
                            assert_eq!(body["event"]["kind"], "snapshot", "{what}");
                            assert_eq!(body["event"]["worker"]["owner"], json!(owner), "{what}");
                        } else {
                            assert_eq!(body["error"]["code"], "worker_not_found", "{what}");
                        }
                        continue;
                    }
                    let r = who
                        .api(addr)
                        .call(route.method.clone(), &path, route.body.clone())
                        .await;
                    assert_eq!(r.status.as_u16(), expected, "{what}: {}", r.text());
                    match expected {
                        404 => {
                            assert_error(&r, 404, "worker_not_found");
                            // Exactly what a worker that does not exist gets.
                            let missing = who
                                .api(addr)
                                .call(
                                    route.method.clone(),
                                    &format!(
                                        "/api/runtimes/{runtime}/workers/w-does-not-exist{}",
                                        route.tail
                                    ),
                                    route.body.clone(),
                                )
                                .await;
                            assert_eq!(
                                normalize(&r.json, &[(worker.as_str(), "<w>")]),
                                normalize(&missing.json, &[("w-does-not-exist", "<w>")]),
                                "{what}: a hidden worker must look like a missing one"
                            );
                        }
                        403 => assert_error(&r, 403, "forbidden"),
                        _ => {}
                    }
                    if route.tail.is_empty() && route.method == Method::GET && expected == 200 {
                        assert_eq!(r.json["owner"], json!(owner), "{what}");
                    }
                    if route.command && expected != 403 {
                        let request_id = r.headers["x-request-id"].to_str().unwrap();
                        let audit = logs::audit_of(request_id);
                        assert_eq!(audit.len(), 1, "{what}");
                        assert_eq!(audit[0].field("identity"), Some(who.name), "{what}");
                        assert_eq!(
                            audit[0].field("owner"),
                            Some(owner.unwrap_or("-")),
                            "{what}: the owner beside the actor"
                        );
                    }
                }
            }
        }
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_counts_and_creation_follow_ownership() {
    let world = World::start().await;
    let addr = world.addr;
    // Two workers of each owner on each runtime; one of each ended.
    let mut all: Vec<(String, String, Option<&str>)> = Vec::new();
    for runtime in RUNTIMES {
        for owner in OWNERS {
            for ended in [false, true] {
                let id = world.worker(runtime, owner, ended).await;
                all.push((runtime.to_owned(), id, owner));
            }
        }
    }
    for who in CALLERS {
        let expected: BTreeSet<String> = all
            .iter()
            .filter(|(_, _, owner)| who.reaches(*owner))
            .map(|(rt, id, _)| format!("{rt}/{id}"))
            .collect();
        let api = who.api(addr);
        assert_eq!(
            worker_keys(&api).await.into_iter().collect::<BTreeSet<_>>(),
            expected,
            "{} GET /api/workers",
            who.name
        );
        for runtime in RUNTIMES {
            let r = api.get(&format!("/api/runtimes/{runtime}/workers")).await;
            assert_status(&r, 200);
            let listed: BTreeSet<String> = r.json["workers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| {
                    let owner = all
                        .iter()
                        .find(|(_, id, _)| w["worker_id"] == id.as_str())
                        .map(|(_, _, o)| *o)
                        .unwrap();
                    assert_eq!(w["owner"], json!(owner), "{w}");
                    format!("{runtime}/{}", w["worker_id"].as_str().unwrap())
                })
                .collect();
            let mine: BTreeSet<String> = expected
                .iter()
                .filter(|k| k.starts_with(&format!("{runtime}/")))
                .cloned()
                .collect();
            assert_eq!(listed, mine, "{} on {runtime}", who.name);
            assert_eq!(r.json["next"], Value::Null);
            // Counts: a caller scoped to its own workers sees its own counts only.
            let view = api.get(&format!("/api/runtimes/{runtime}")).await;
            assert_status(&view, 200);
            let counts = &view.json["workers"];
            let total: u64 = ["starting", "running", "exited", "stopped", "failed", "lost"]
                .iter()
                .map(|s| counts[s].as_u64().unwrap())
                .sum();
            assert_eq!(
                total as usize,
                mine.len(),
                "{} counts on {runtime}: {counts}",
                who.name
            );
        }
    }

    // Creating records the creator; a body naming an owner is refused and creates
    // nothing.
    let before = worker_keys(&ADA.api(addr)).await;
    for runtime in RUNTIMES {
        for body in [
            json!({"profile": "echo", "owner": "olga"}),
            json!({"profile": "echo", "owner": null}),
            json!({"profile": "echo", "label": "x", "owner": "oscar"}),
        ] {
            let r = OSCAR
                .api(addr)
                .post(&format!("/api/runtimes/{runtime}/workers"), body)
                .await;
            assert_error(&r, 400, "invalid_request");
        }
        let r = VAL
            .api(addr)
            .post(
                &format!("/api/runtimes/{runtime}/workers"),
                json!({"profile": "echo"}),
            )
            .await;
        assert_error(&r, 403, "forbidden");
    }
    assert_eq!(worker_keys(&ADA.api(addr)).await, before);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_through_250_workers_of_mixed_owners_returns_each_visible_worker_once() {
    let world = World::start().await;
    let addr = world.addr;
    let owners = [Some("olga"), Some("oscar"), None, Some("olga"), Some("vio")];
    for runtime in RUNTIMES {
        let mut made: Vec<(String, Option<&str>)> = Vec::new();
        for i in 0..250 {
            let owner = owners[(i * 7 + i / 3) % owners.len()];
            let w = world
                .runtime(runtime)
                .create(CreateWorkerRequest {
                    profile: "echo".into(),
                    label: None,
                    owner: owner.map(str::to_owned),
                })
                .await
                .unwrap();
            made.push((w.worker_id.to_string(), owner));
            // Keep the active count low: half are ended.
            if i % 2 == 0 {
                world.runtime(runtime).stop(&w.worker_id).await.unwrap();
            }
        }
        for who in CALLERS {
            let mut expected: Vec<String> = made
                .iter()
                .filter(|(_, o)| who.reaches(*o))
                .map(|(id, _)| id.clone())
                .collect();
            expected.sort();
            for limit in [1, 7, 50, 1000] {
                let mut seen = Vec::new();
                let mut after: Option<String> = None;
                let mut pages = 0;
                loop {
                    let path = match &after {
                        Some(a) => {
                            format!("/api/runtimes/{runtime}/workers?limit={limit}&after={a}")
                        }
                        None => format!("/api/runtimes/{runtime}/workers?limit={limit}"),
                    };
                    let r = who.api(addr).get(&path).await;
                    assert_status(&r, 200);
                    let page: Vec<String> = r.json["workers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|w| w["worker_id"].as_str().unwrap().to_owned())
                        .collect();
                    pages += 1;
                    assert!(
                        page.len() <= limit,
                        "{} limit {limit}: {}",
                        who.name,
                        page.len()
                    );
                    match r.json["next"].as_str() {
                        Some(next) => {
                            // No short pages before the end: a page is full while more
                            // follow.
                            assert_eq!(
                                page.len(),
                                limit,
                                "{} limit {limit}: a short page",
                                who.name
                            );
                            assert_eq!(Some(next), page.last().map(String::as_str));
                            after = Some(next.to_owned());
                            seen.extend(page);
                        }
                        None => {
                            seen.extend(page);
                            break;
                        }
                    }
                    assert!(pages < 400, "paging does not end");
                }
                assert_eq!(seen, expected, "{} on {runtime}, limit {limit}", who.name);
            }
            // Filters still apply on top of ownership.
            let r = who
                .api(addr)
                .get(&format!(
                    "/api/runtimes/{runtime}/workers?status=stopped&limit=1000"
                ))
                .await;
            for w in r.json["workers"].as_array().unwrap() {
                assert_eq!(w["status"], "stopped");
                let owner = w["owner"].as_str();
                assert!(who.reaches(owner), "{} sees {w}", who.name);
            }
        }
    }
    // The whole list too, and its statuses are real.
    let r = OLGA.api(addr).get("/api/workers").await;
    for w in r.json["workers"].as_array().unwrap() {
        assert_eq!(w["owner"], "olga", "{w}");
        assert!(
            w["status"]
                .as_str()
                .unwrap()
                .parse::<WorkerStatus>()
                .is_ok()
        );
    }
    world.stop().await;
}
