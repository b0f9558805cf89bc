//! Terminals with client authentication on: who may resize a terminal worker, open
//! its interactive event WebSocket, and type into it, on an embedded runtime and on
//! a remote one, with a real shell on a real pty. Every caller kind of the contract
//! (viewer, operator, admin, a token granted only other runtimes, an operator who
//! does not own the worker) against every terminal command (`POST .../resize`, the
//! `?interactive=true` upgrade, `input` and `resize` frames), with the audit line of
//! each; and a frame refused after the upgrade, audited with its code.

mod backend_common;

use std::time::Duration;

use backend_common::logs;
use backend_common::*;
use futures_util::{SinkExt, StreamExt};
use http::Method;
use serde_json::{Value, json};
use switchyard_e2e::ws::{Ws, connect_with_headers};
use switchyard_protocol::RuntimeId;
use switchyard_registry::{Role, WorkerScope};
use switchyard_runtime::{Profile, ProfileSpec, PtySpec, RuntimeConfig};
use switchyard_server::auth::Clock;
use switchyard_server::commands::runtime::RunningRuntime;
use switchyard_server::commands::serve::RunningBackend;
use tokio_tungstenite::tungstenite::{self, Message};

const REMOTE_TOKEN: &str = "runtime-token-for-the-terminal-auth-tests";
/// A shell prompt no command's output holds by accident.
const PROMPT: &str = "pty$ ";

const VIEWER: &str = "sy_terminal-viewer-0001";
const OPERATOR: &str = "sy_terminal-operator-0002";
const ADMIN: &str = "sy_terminal-admin-0003";
const ELSEWHERE: &str = "sy_terminal-elsewhere-0004";
const NOT_OWNER: &str = "sy_terminal-not-owner-0005";

/// Who calls. The workers are created by the operator, `otto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// `vera`: viewer of every worker.
    Viewer,
    /// `otto`: operator, his own workers.
    Operator,
    /// `ada`: admin.
    Admin,
    /// `remy`: operator of every worker, granted only the runtimes `rem*`.
    Elsewhere,
    /// `olga`: operator, her own workers (not otto's).
    NotOwner,
}

const WHO: [Who; 5] = [
    Who::Viewer,
    Who::Operator,
    Who::Admin,
    Who::Elsewhere,
    Who::NotOwner,
];

impl Who {
    fn token(self) -> &'static str {
        match self {
            Who::Viewer => VIEWER,
            Who::Operator => OPERATOR,
            Who::Admin => ADMIN,
            Who::Elsewhere => ELSEWHERE,
            Who::NotOwner => NOT_OWNER,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Who::Viewer => "vera",
            Who::Operator => "otto",
            Who::Admin => "ada",
            Who::Elsewhere => "remy",
            Who::NotOwner => "olga",
        }
    }
}

fn tokens() -> Vec<TestToken> {
    let token = |who: Who, role, runtimes, workers| TestToken {
        name: who.name(),
        token: who.token(),
        role,
        runtimes,
        workers,
    };
    vec![
        token(Who::Viewer, Role::Viewer, &[], WorkerScope::All),
        token(Who::Operator, Role::Operator, &[], WorkerScope::Own),
        token(Who::Admin, Role::Admin, &[], WorkerScope::Own),
        token(Who::Elsewhere, Role::Operator, &["rem*"], WorkerScope::All),
        token(Who::NotOwner, Role::Operator, &[], WorkerScope::Own),
    ]
}

/// The idle timeout of the `idle` profile: long enough that a test reaches the
/// worker (a create's answer, a WebSocket through the backend) well inside it on a
/// loaded machine, since the runtime's idle clock starts inside the create.
const IDLE: Duration = Duration::from_secs(4);

/// A runtime with `echo`, `sh` (a shell on a pty) and `idle` (the same, stopped
/// after [`IDLE`] without input or viewer).
fn terminal_runtime(id: &str) -> RuntimeConfig {
    let mut shell = PtySpec::new(["/bin/sh", "-i"]);
    shell.env.insert("PS1".into(), PROMPT.into());
    RuntimeConfig::new(RuntimeId::new(id).unwrap(), id)
        .with_profile("sh", Profile::new(ProfileSpec::Pty(shell.clone())))
        .with_profile(
            "idle",
            Profile::new(ProfileSpec::Pty(shell)).with_idle_timeout(IDLE),
        )
}

struct World {
    remote: RunningRuntime,
    backend: RunningBackend,
    addr: std::net::SocketAddr,
}

impl World {
    async fn start() -> Self {
        logs::install();
        let remote = start_runtime_from(
            "127.0.0.1:0".parse().unwrap(),
            terminal_runtime("remote"),
            Some(REMOTE_TOKEN),
            None,
        )
        .await;
        let mut settings = backend_settings(
            true,
            vec![backend_common::remote(
                "remote",
                &base_url(remote.server.local_addr()),
                REMOTE_TOKEN,
                Duration::from_secs(10),
            )],
            NO_PROBES,
        );
        if let Some(embedded) = settings.embedded.as_mut() {
            embedded.runtime = terminal_runtime("local");
        }
        let clock = Clock::manual(1_800_000_000);
        settings.auth = token_auth(&tokens(), None, Duration::from_secs(3600), &clock);
        let (backend, api) = start_backend(settings).await;
        Self {
            remote,
            backend,
            addr: api.addr,
        }
    }

    fn api(&self, who: Who) -> Api {
        Api {
            addr: self.addr,
            token: Some(who.token().to_owned()),
        }
    }

    /// A new `sh` worker on `runtime`, created by the operator.
    async fn shell(&self, runtime: &str) -> String {
        self.create(runtime, "sh").await
    }

    /// A new worker of `profile` on `runtime`, created by the operator.
    async fn create(&self, runtime: &str, profile: &str) -> String {
        let r = self
            .api(Who::Operator)
            .post(
                &format!("/api/runtimes/{runtime}/workers"),
                json!({"profile": profile}),
            )
            .await;
        assert_status(&r, 201);
        assert_eq!(r.json["owner"], "otto");
        r.json["worker_id"].as_str().unwrap().to_owned()
    }

    async fn stop(self) {
        self.backend.shutdown().await;
        self.remote.shutdown().await;
    }
}

/// What one caller gets from each terminal command on one runtime: the status of
/// `POST .../resize` and of the interactive upgrade, with the error code of a
/// refusal (the same code for both). A caller whose upgrade is refused has no
/// socket to send frames on; one whose upgrade is accepted has every frame carried
/// out (the policy is asked again for each, as the caller).
#[derive(Debug, Clone, Copy)]
struct Expect {
    resize: u16,
    upgrade: u16,
    refusal: Option<&'static str>,
}

const ALLOWED: Expect = Expect {
    resize: 200,
    upgrade: 101,
    refusal: None,
};
const FORBIDDEN: Expect = Expect {
    resize: 403,
    upgrade: 403,
    refusal: Some("forbidden"),
};
const NOT_FOUND: Expect = Expect {
    resize: 404,
    upgrade: 404,
    refusal: Some("worker_not_found"),
};

/// The contract's answer for `who` on `runtime`.
fn expected(runtime: &str, who: Who) -> Expect {
    match (runtime, who) {
        // Viewers watch; every terminal command needs the operator role.
        (_, Who::Viewer) => FORBIDDEN,
        (_, Who::Operator | Who::Admin) => ALLOWED,
        // Grants decide where: `rem*` only.
        ("remote", Who::Elsewhere) => ALLOWED,
        (_, Who::Elsewhere) => FORBIDDEN,
        // Another's worker is not revealed: as if it did not exist.
        (_, Who::NotOwner) => NOT_FOUND,
    }
}

/// The audit lines of one request, checked for the caller and the worker; their
/// actions and outcomes in order.
fn audited(request_id: &str, who: Who, runtime: &str, worker: &str) -> Vec<(String, String)> {
    logs::audit_of(request_id)
        .into_iter()
        .map(|line| {
            assert_eq!(line.level, tracing::Level::INFO);
            assert_eq!(line.field("identity"), Some(who.name()), "{line:?}");
            assert_eq!(line.field("runtime_id"), Some(runtime), "{line:?}");
            assert_eq!(line.field("worker_id"), Some(worker), "{line:?}");
            if line.field("outcome") == Some("ok") {
                assert_eq!(line.field("owner"), Some("otto"), "{line:?}");
            }
            (
                line.field("action").unwrap().to_owned(),
                line.field("outcome").unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, o)| (a.to_string(), o.to_string()))
        .collect()
}

/// The request id of an answer's headers.
fn request_id(headers: &http::HeaderMap) -> String {
    headers["x-request-id"].to_str().unwrap().to_owned()
}

/// Opens the interactive event WebSocket as `who`: the socket and its request id,
/// or the refusal's status, code and request id.
async fn open_interactive(
    addr: std::net::SocketAddr,
    path: &str,
    who: Who,
) -> Result<(Ws, String), (u16, String, String)> {
    let auth = bearer(who.token());
    match connect_with_headers(
        addr,
        &format!("{path}/events/ws?interactive=true"),
        &[("authorization", auth.as_str())],
    )
    .await
    {
        Ok((ws, headers)) => Ok((ws, request_id(&headers))),
        Err(tungstenite::Error::Http(response)) => {
            let body: Value = response
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((
                response.status().as_u16(),
                body["error"]["code"].as_str().unwrap_or("").to_owned(),
                request_id(response.headers()),
            ))
        }
        Err(other) => panic!("{path}: {other}"),
    }
}

/// The next text frame as JSON.
async fn next_frame(ws: &mut Ws) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a frame in time")
            .expect("the stream is open")
            .expect("no protocol error");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Reads frames until one matches; every output's text is appended to `screen`.
async fn until(ws: &mut Ws, screen: &mut String, matches: impl Fn(&Value, &str) -> bool) -> Value {
    loop {
        let frame = next_frame(ws).await;
        if frame["event"]["kind"] == "output" {
            screen.push_str(frame["event"]["text"].as_str().unwrap());
        }
        if matches(&frame, screen) {
            return frame;
        }
    }
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// Polls until `request_id` has `n` audit lines (frames are audited once their
/// outcome is known, after the answer reaches the client).
async fn wait_audit(request_id: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while logs::audit_of(request_id).len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{request_id}: {:?}",
            logs::audit_of(request_id)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_commands_answer_every_kind_of_caller_as_the_contract_says() {
    let world = World::start().await;
    for runtime in ["local", "remote"] {
        let worker = world.shell(runtime).await;
        let path = format!("/api/runtimes/{runtime}/workers/{worker}");
        for (i, who) in WHO.into_iter().enumerate() {
            let expect = expected(runtime, who);
            let what = format!("{who:?} on {runtime}");

            // POST .../resize
            let (cols, rows) = (90 + i as u16, 20 + i as u16);
            let r = world
                .api(who)
                .post(
                    &format!("{path}/resize"),
                    json!({"cols": cols, "rows": rows}),
                )
                .await;
            assert_eq!(r.status.as_u16(), expect.resize, "{what}: {}", r.text());
            let outcome = match expect.refusal {
                Some(code) => {
                    assert_error(&r, expect.resize, code);
                    code
                }
                None => {
                    assert_eq!(
                        r.json,
                        json!({"worker_id": worker, "cols": cols, "rows": rows})
                    );
                    "ok"
                }
            };
            assert_eq!(
                audited(&request_id(&r.headers), who, runtime, &worker),
                pairs(&[("resize", outcome)]),
                "{what}"
            );

            // The interactive upgrade, then an input and a resize frame.
            match open_interactive(world.addr, &path, who).await {
                Err((status, code, id)) => {
                    assert_eq!(status, expect.upgrade, "{what}");
                    assert_eq!(Some(code.as_str()), expect.refusal, "{what}");
                    assert_eq!(
                        audited(&id, who, runtime, &worker),
                        pairs(&[("interactive", &code)]),
                        "{what}"
                    );
                }
                Ok((mut ws, id)) => {
                    assert_eq!(expect.upgrade, 101, "{what}: upgraded");
                    let snapshot = next_frame(&mut ws).await;
                    assert_eq!(snapshot["event"]["kind"], "snapshot", "{what}");
                    let mut screen = String::new();
                    let marker = format!("typed-by-{}", who.name());
                    send(
                        &mut ws,
                        json!({"type": "input", "text": format!("echo {marker}-$((40+2))\r")}),
                    )
                    .await;
                    let done = format!("{marker}-42");
                    until(&mut ws, &mut screen, |_, s| s.contains(&done)).await;
                    let (cols, rows) = (cols + 10, rows + 10);
                    send(
                        &mut ws,
                        json!({"type": "resize", "cols": cols, "rows": rows}),
                    )
                    .await;
                    let resized = until(&mut ws, &mut screen, |f, _| {
                        f["event"]["kind"] == "resized" || f["type"] == "error"
                    })
                    .await;
                    assert_eq!(
                        resized["event"],
                        json!({"kind": "resized", "cols": cols, "rows": rows}),
                        "{what}"
                    );
                    wait_audit(&id, 3).await;
                    assert_eq!(
                        audited(&id, who, runtime, &worker),
                        pairs(&[("interactive", "ok"), ("input", "ok"), ("resize", "ok")]),
                        "{what}"
                    );
                    let _ = ws.close(None).await;
                }
            }
        }
        // The worker's transcript holds exactly the inputs of the callers allowed to
        // type, each recorded once.
        let transcript = world
            .api(Who::Admin)
            .call(Method::GET, &format!("{path}/transcript"), None)
            .await;
        let inputs: Vec<&str> = transcript.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "input")
            .map(|i| i["text"].as_str().unwrap())
            .collect();
        let typed: Vec<String> = WHO
            .into_iter()
            .filter(|who| expected(runtime, *who).upgrade == 101)
            .map(|who| format!("echo typed-by-{}-$((40+2))\r", who.name()))
            .collect();
        assert_eq!(inputs, typed, "{runtime}");
    }
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_refused_after_the_upgrade_is_answered_and_audited_with_its_code() {
    let world = World::start().await;
    for runtime in ["local", "remote"] {
        let worker = world.shell(runtime).await;
        let path = format!("/api/runtimes/{runtime}/workers/{worker}");
        let (mut ws, id) = open_interactive(world.addr, &path, Who::Operator)
            .await
            .unwrap_or_else(|refused| panic!("{runtime}: {refused:?}"));
        next_frame(&mut ws).await;
        let mut screen = String::new();
        let stop = world
            .api(Who::Operator)
            .call(Method::POST, &format!("{path}/stop"), None)
            .await;
        assert_status(&stop, 200);
        until(&mut ws, &mut screen, |f, _| {
            f["event"]["kind"] == "status" && f["event"]["status"] == "stopped"
        })
        .await;
        // Each refused frame: an error frame, the socket stays open, one audit line
        // with the refusal's code.
        for frame in [
            json!({"type": "input", "text": "ls\r"}),
            json!({"type": "resize", "cols": 80, "rows": 24}),
            json!({"type": "resize", "cols": 0, "rows": 24}),
        ] {
            send(&mut ws, frame.clone()).await;
            let refused = until(&mut ws, &mut screen, |f, _| f["type"] == "error").await;
            let code = if frame["cols"] == 0 {
                "invalid_request"
            } else {
                "worker_not_running"
            };
            assert_eq!(refused["error"]["code"], code, "{runtime} {frame}");
        }
        wait_audit(&id, 4).await;
        let lines: Vec<(String, String)> = logs::audit_of(&id)
            .into_iter()
            .map(|l| {
                assert_eq!(l.field("identity"), Some("otto"));
                assert_eq!(l.field("worker_id"), Some(worker.as_str()));
                (
                    l.field("action").unwrap().to_owned(),
                    l.field("outcome").unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            lines,
            pairs(&[
                ("interactive", "ok"),
                ("input", "worker_not_running"),
                ("resize", "worker_not_running"),
                ("resize", "invalid_request"),
            ]),
            "{runtime}"
        );
        // No input text in any audit line.
        assert!(
            logs::events()
                .iter()
                .filter(|e| e.target == "audit")
                .all(|e| e.fields.values().all(|v| !v.contains("ls\r"))),
        );
    }
    world.stop().await;
}

/// The worker's status, as the admin sees it.
async fn status(world: &World, path: &str) -> String {
    let r = world.api(Who::Admin).get(path).await;
    assert_status(&r, 200);
    r.json["status"].as_str().unwrap().to_owned()
}

/// Polls until the worker has ended; how long that took from `since`.
async fn ended(world: &World, path: &str, since: tokio::time::Instant) -> Duration {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = status(world, path).await;
        if status != "running" && status != "starting" {
            assert_eq!(status, "stopped", "{path}");
            return since.elapsed();
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeouts_count_only_the_viewers_the_policy_admits() {
    let world = World::start().await;
    for runtime in ["local", "remote"] {
        // Callers refused before the upgrade join no channel, so they do not keep an
        // idle worker running.
        // The idle clock starts inside the create: measure from before it.
        let started = tokio::time::Instant::now();
        let refused = world.create(runtime, "idle").await;
        let path = format!("/api/runtimes/{runtime}/workers/{refused}");
        let mut attempts = 0;
        while status(&world, &path).await == "running" {
            for (who, query, code) in [
                (Who::NotOwner, "", 404),
                (Who::Viewer, "?interactive=true", 403),
            ] {
                let auth = bearer(who.token());
                let outcome = connect_with_headers(
                    world.addr,
                    &format!("{path}/events/ws{query}"),
                    &[("authorization", auth.as_str())],
                )
                .await;
                match outcome {
                    Err(tungstenite::Error::Http(response)) => {
                        assert_eq!(response.status().as_u16(), code, "{who:?}")
                    }
                    other => panic!("{who:?} was not refused: {:?}", other.map(|_| ())),
                }
                attempts += 1;
            }
            assert!(started.elapsed() < WAIT, "{path} still runs");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(attempts >= 4, "refused during the timeout: {attempts}");
        // Stopped by the timeout (not before it), with nobody admitted watching.
        assert!(ended(&world, &path, started).await >= IDLE);

        // A viewer the policy admits (a read-only one) counts: the worker runs while
        // it watches, and stops once it has left.
        let watched = world.create(runtime, "idle").await;
        let path = format!("/api/runtimes/{runtime}/workers/{watched}");
        let auth = bearer(VIEWER);
        let (mut ws, _) = connect_with_headers(
            world.addr,
            &format!("{path}/events/ws"),
            &[("authorization", auth.as_str())],
        )
        .await
        .expect("a viewer may watch");
        let snapshot = next_frame(&mut ws).await;
        assert_eq!(
            snapshot["event"]["worker"]["status"], "running",
            "{runtime}: {snapshot}"
        );
        // Watched for longer than the timeout (and its watch's tick) after the
        // worker was built: still running.
        tokio::time::sleep(IDLE + Duration::from_secs(1)).await;
        assert_eq!(status(&world, &path).await, "running", "{runtime}");
        ws.close(None).await.unwrap();
        drop(ws);
        ended(&world, &path, tokio::time::Instant::now()).await;
    }
    world.stop().await;
}
