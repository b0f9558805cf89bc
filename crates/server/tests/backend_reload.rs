//! `POST /api/admin/reload` against an in-process backend started from a real
//! configuration file: admins only, audited; tokens and sessions swapped; a remote's
//! token file fixed; the listener's certificate rotated; an invalid file refused with
//! its key and changing nothing; keys that need a restart reported and kept, limits
//! applied.

mod backend_common;

use std::path::PathBuf;

use http::Method;
use serde_json::{Value, json};
use switchyard_e2e::certs::{Ca, client_config, server_name};
use switchyard_e2e::client::{TestTls, request_tls};
use switchyard_server::Backend;
use switchyard_server::auth::TokenHash;
use switchyard_server::commands::serve::RunningBackend;
use switchyard_server::config::{ServeArgs, load_backend_settings};
use switchyard_server::reload::ConfigSource;

use backend_common::*;

const ADMIN: &str = "tok-admin-reload-6f1d";
const ALICE: &str = "tok-alice-reload-2c8e";
const BOB: &str = "tok-bob-reload-9a4b";
const REMOTE: &str = "tok-remote-reload-77aa";

/// A directory holding the backend's configuration file and what it names.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn config(&self, text: &str) -> PathBuf {
        self.write("backend.toml", text)
    }

    fn args(&self) -> ServeArgs {
        ServeArgs {
            config: Some(self.path("backend.toml")),
            ..ServeArgs::default()
        }
    }
}

/// `[[auth.token]]` lines for `(name, token, role)`.
fn tokens(entries: &[(&str, &str, &str)]) -> String {
    let mut text = String::from("[auth]\n");
    for (name, token, role) in entries {
        text.push_str(&format!(
            "[[auth.token]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"{role}\"\nworkers = \"all\"\n",
            TokenHash::of(token).to_hex()
        ));
    }
    text
}

async fn start(files: &Files) -> (RunningBackend, Api) {
    logs::install();
    let args = files.args();
    let settings = load_backend_settings(&args, &|_| None).unwrap();
    let backend = Backend::from_settings(settings)
        .reload_from(ConfigSource::process(args))
        .start()
        .await
        .unwrap();
    let api = Api {
        addr: backend.server.local_addr(),
        token: None,
    };
    (backend, api)
}

fn as_caller(api: &Api, token: &str) -> Api {
    Api {
        addr: api.addr,
        token: Some(token.to_owned()),
    }
}

async fn reload(api: &Api) -> TestResponse {
    api.call(Method::POST, "/api/admin/reload", None).await
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

fn audit_action_and_outcome(r: &TestResponse) -> (String, String) {
    let request_id = r.headers["x-request-id"].to_str().unwrap();
    let lines = logs::audit_of(request_id);
    assert_eq!(lines.len(), 1, "one audit line: {lines:?}");
    (
        lines[0].field("action").unwrap_or("-").to_owned(),
        lines[0].field("outcome").unwrap_or("-").to_owned(),
    )
}

#[tokio::test]
async fn admins_reload_tokens_and_sessions_and_an_invalid_file_changes_nothing() {
    let files = Files::new();
    let base = |entries: &[(&str, &str, &str)]| {
        format!(
            "listen = \"127.0.0.1:0\"\n{}\n[embedded]\nruntime_id = \"local\"\n",
            tokens(entries)
        )
    };
    files.config(&base(&[
        ("root", ADMIN, "admin"),
        ("alice", ALICE, "operator"),
    ]));
    let (backend, api) = start(&files).await;
    let (admin, alice, bob) = (
        as_caller(&api, ADMIN),
        as_caller(&api, ALICE),
        as_caller(&api, BOB),
    );

    // Who may reload, each audited.
    let r = reload(&api).await;
    assert_error(&r, 401, "unauthorized");
    let r = reload(&alice).await;
    assert_error(&r, 403, "forbidden");
    assert_eq!(
        audit_action_and_outcome(&r),
        ("reload".into(), "forbidden".into())
    );
    let r = reload(&admin).await;
    assert_status(&r, 200);
    assert_eq!(
        r.json,
        json!({
            "runtimes": {"added": [], "replaced": [], "removed": [], "unchanged": ["local"]},
            "tls_reloaded": false,
            "restart_required": [],
        })
    );
    assert_eq!(audit_action_and_outcome(&r), ("reload".into(), "ok".into()));
    assert_status(
        &admin.call(Method::GET, "/api/admin/reload", None).await,
        405,
    );

    // Sessions signed with the process's random key outlive a reload; a session
    // whose token is removed ends.
    let login = |token: &str| {
        let api = api.clone();
        let token = token.to_owned();
        async move {
            let r = api.post("/api/session", json!({ "token": token })).await;
            assert_status(&r, 200);
            session_cookie(&r)
        }
    };
    let (root_cookie, alice_cookie) = (login(ADMIN).await, login(ALICE).await);
    let whoami = |cookie: String| {
        let addr = api.addr;
        async move {
            send(
                addr,
                Method::GET,
                "/api/session",
                None,
                &[("cookie", cookie.as_str())],
            )
            .await
        }
    };

    files.config(&base(&[("root", ADMIN, "admin"), ("bob", BOB, "viewer")]));
    assert_status(&reload(&admin).await, 200);
    // The log says whose tokens changed, by name only.
    let changes: Vec<_> = logs::events()
        .into_iter()
        .filter(|e| {
            e.field("message")
                .is_some_and(|m| m.contains("entries changed"))
        })
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].field("added"), Some("bob"));
    assert_eq!(changes[0].field("removed"), Some("alice"));
    assert_eq!(changes[0].field("changed"), Some(""));
    assert_error(&alice.get("/api/runtimes").await, 401, "unauthorized");
    assert_status(&bob.get("/api/runtimes").await, 200);
    assert_error(
        &bob.post("/api/runtimes/local/workers", json!({"profile": "echo"}))
            .await,
        403,
        "forbidden",
    );
    assert_status(&whoami(root_cookie.clone()).await, 200);
    assert_error(&whoami(alice_cookie).await, 401, "unauthorized");

    // An invalid file: refused with its key and file; everything stays as it was.
    let invalid = format!(
        "{}\n[[remote]]\nruntime_id = \"r\"\nbase_url = \"ftp://127.0.0.1:1\"\ntoken_env = \"NOPE\"\n",
        base(&[("root", ADMIN, "admin")])
    );
    files.config(&invalid);
    let r = reload(&admin).await;
    assert_error(&r, 400, "invalid_config");
    let message = r.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("`remote[0].base_url`"), "{message}");
    assert!(
        message.contains(&files.path("backend.toml").display().to_string()),
        "{message}"
    );
    assert_eq!(
        audit_action_and_outcome(&r),
        ("reload".into(), "invalid_config".into())
    );
    assert_status(&bob.get("/api/runtimes").await, 200);
    assert_eq!(
        admin.get("/api/runtimes").await.json["runtimes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_status(&whoami(root_cookie).await, 200);

    // A token file that cannot be read: the answer names its key and the
    // configuration file, never the token file (a remote's secret reference), nor
    // the environment variable of another.
    let hidden = files.path("secret-place/build.token");
    let invalid = format!(
        "{}\n[[remote]]\nruntime_id = \"r\"\nbase_url = \"http://127.0.0.1:1\"\ntoken_file = \"{}\"\n",
        base(&[("root", ADMIN, "admin")]),
        hidden.display()
    );
    files.config(&invalid);
    let r = reload(&admin).await;
    assert_error(&r, 400, "invalid_config");
    let message = r.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("`remote[0].token_file`"), "{message}");
    assert!(!message.contains("secret-place"), "{message}");
    assert!(message.contains("backend's log"), "{message}");

    // A key the process cannot change: reported, and the old value stays; a limit
    // applies to the next request, the hub's sizes to the next event stream.
    let worker = create_echo(&admin, "local", "big-input").await;
    let input = |text: String| {
        let admin = admin.clone();
        let path = format!("/api/runtimes/local/workers/{worker}/input");
        async move { admin.post(&path, json!({ "text": text })).await }
    };
    files.config(&format!(
        "metrics_listen = \"127.0.0.1:0\"\nviewer_queue = 3\nmax_body_bytes = 64\n{}",
        base(&[("root", ADMIN, "admin")])
    ));
    let r = reload(&admin).await;
    assert_status(&r, 200);
    assert_eq!(ids(&r.json["restart_required"]), ["metrics_listen"]);
    assert_eq!(backend.hub.settings().viewer_queue, 3);
    assert_error(&input("x".repeat(100)).await, 413, "payload_too_large");
    assert_status(&input("x".repeat(10)).await, 202);
    files.config(&base(&[("root", ADMIN, "admin")]));
    let r = reload(&admin).await;
    assert_eq!(ids(&r.json["restart_required"]), [] as [&str; 0]);
    assert_eq!(
        backend.hub.settings().viewer_queue,
        1024,
        "the default again"
    );
    assert_status(&input("x".repeat(100)).await, 202);
    backend.shutdown().await;
}

#[tokio::test]
async fn a_remote_whose_token_file_is_fixed_is_replaced_and_answers() {
    let remote = start_runtime("rt", Some(REMOTE)).await;
    let files = Files::new();
    files.write("rt.token", "tok-wrong");
    files.config(&format!(
        "listen = \"127.0.0.1:0\"\n[[remote]]\nruntime_id = \"rt\"\nbase_url = \"{}\"\ntoken_file = \"rt.token\"\n",
        base_url(remote.server.local_addr())
    ));
    let (backend, api) = start(&files).await;
    let r = api.get("/api/runtimes/rt/workers").await;
    assert_error(&r, 502, "runtime_auth_failed");
    files.write("rt.token", REMOTE);
    let r = reload(&api).await;
    assert_status(&r, 200);
    assert_eq!(ids(&r.json["runtimes"]["replaced"]), ["rt"]);
    assert_status(&api.get("/api/runtimes/rt/workers").await, 200);
    // Nothing changed since: the remote is kept as it is.
    let r = reload(&api).await;
    assert_eq!(ids(&r.json["runtimes"]["unchanged"]), ["rt"]);
    backend.shutdown().await;
    remote.shutdown().await;
}

fn tls_to(ca: &Ca) -> TestTls {
    TestTls {
        config: client_config(ca, None),
        server_name: server_name("localhost"),
    }
}

/// Writes a certificate for `localhost` from `ca` as `backend.crt` / `backend.key`.
fn write_leaf(files: &Files, ca: &Ca) {
    let leaf = ca.server(&["localhost", "127.0.0.1"]);
    files.write("backend.crt", &leaf.cert_pem);
    files.write("backend.key", &leaf.key_pem);
}

async fn handshake_with(addr: std::net::SocketAddr, ca: &Ca) -> bool {
    tls_to(ca).connect(addr).await.is_ok()
}

#[tokio::test]
async fn new_handshakes_use_the_rotated_certificate() {
    let (old_ca, new_ca) = (Ca::new("Old CA"), Ca::new("New CA"));
    let files = Files::new();
    write_leaf(&files, &old_ca);
    files.config(
        "listen = \"127.0.0.1:0\"\n[tls]\ncert_file = \"backend.crt\"\nkey_file = \"backend.key\"\n[embedded]\n",
    );
    let (backend, api) = start(&files).await;
    let addr = api.addr;
    assert!(handshake_with(addr, &old_ca).await);
    assert!(!handshake_with(addr, &new_ca).await);

    write_leaf(&files, &new_ca);
    let r = request_tls(
        &tls_to(&old_ca),
        addr,
        Method::POST,
        "/api/admin/reload",
        None,
        &[],
    )
    .await;
    assert_status(&r, 200);
    assert_eq!(r.json["tls_reloaded"], true);
    assert!(handshake_with(addr, &new_ca).await, "new handshakes");
    assert!(!handshake_with(addr, &old_ca).await);

    // A key that does not match its certificate: refused, the new one stays.
    let stray = new_ca.server(&["localhost"]);
    files.write("backend.key", &stray.key_pem);
    let r = request_tls(
        &tls_to(&new_ca),
        addr,
        Method::POST,
        "/api/admin/reload",
        None,
        &[],
    )
    .await;
    assert_error(&r, 400, "invalid_config");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`tls.cert_file`"),
        "{}",
        r.json
    );
    assert!(handshake_with(addr, &new_ca).await);
    backend.shutdown().await;
}

#[tokio::test]
async fn a_backend_without_a_configuration_source_cannot_reload() {
    let (backend, api) = start_backend(backend_settings(true, vec![], NO_PROBES)).await;
    assert_error(&reload(&api).await, 501, "unsupported");
    backend.shutdown().await;
}

/// A viewer of `worker` on the embedded runtime `local`, past its snapshot.
async fn watch_local(api: &Api, worker: &str) -> switchyard_e2e::ws::Ws {
    let mut ws = switchyard_e2e::ws::connect(
        api.addr,
        &format!("/api/runtimes/local/workers/{worker}/events/ws"),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        switchyard_e2e::ws::next_json(&mut ws).await["event"]["kind"],
        "snapshot"
    );
    ws
}

#[tokio::test]
async fn the_embedded_runtime_is_added_removed_and_reconfigured_in_place() {
    let files = Files::new();
    let with = "listen = \"127.0.0.1:0\"\n[embedded]\nruntime_id = \"local\"\n";
    let without = "listen = \"127.0.0.1:0\"\n";
    files.config(with);
    let (backend, api) = start(&files).await;
    let worker = create_echo(&api, "local", "kept").await;
    let embedded = backend.reloader.embedded().await.expect("one at start");
    let mut watching = watch_local(&api, &worker).await;
    let echoed = |text: &'static str| {
        let api = api.clone();
        let worker = worker.clone();
        async move {
            let r = api
                .post(
                    &format!("/api/runtimes/local/workers/{worker}/input"),
                    json!({"text": text}),
                )
                .await;
            assert_status(&r, 202);
        }
    };

    // A new profile and a limit: applied in place, nothing waits for a restart, the
    // running worker and its viewer carry on.
    let profile = "[embedded.profiles.slow]\nkind = \"echo\"\ndelay_ms = 10\n";
    files.config(&format!("{with}max_workers = 3\n{profile}"));
    let r = reload(&api).await;
    assert_status(&r, 200);
    assert_eq!(ids(&r.json["runtimes"]["unchanged"]), ["local"]);
    assert!(ids(&r.json["restart_required"]).is_empty(), "{}", r.text());
    // The runtimes' list shows the new profile at once, not at the next probe.
    let runtimes = api.get("/api/runtimes").await;
    let profiles: Vec<&str> = runtimes.json["runtimes"][0]["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(profiles.contains(&"slow"), "{}", runtimes.text());
    let slow = api
        .post("/api/runtimes/local/workers", json!({"profile": "slow"}))
        .await;
    assert_status(&slow, 201);
    create_echo(&api, "local", "third").await;
    assert_error(
        &api.post("/api/runtimes/local/workers", json!({"profile": "echo"}))
            .await,
        429,
        "worker_limit_reached",
    );
    echoed("one").await;
    loop {
        let frame = switchyard_e2e::ws::next_json(&mut watching).await;
        if frame["event"]["kind"] == "output" {
            assert_eq!(frame["event"]["text"], "one");
            break;
        }
    }

    // A new display name: the registry's entry is replaced over the same runtime;
    // its workers and viewers carry on.
    files.config(&format!(
        "{}max_workers = 3\n{profile}",
        with.replace(
            "runtime_id = \"local\"\n",
            "runtime_id = \"local\"\ndisplay_name = \"Here\"\n"
        )
    ));
    let r = reload(&api).await;
    assert_status(&r, 200);
    assert_eq!(ids(&r.json["runtimes"]["replaced"]), ["local"]);
    let runtimes = api.get("/api/runtimes").await;
    let local = runtimes.json["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["runtime_id"] == "local")
        .cloned()
        .unwrap();
    assert_eq!(local["display_name"], "Here");
    echoed("two").await;
    loop {
        let frame = switchyard_e2e::ws::next_json(&mut watching).await;
        if frame["event"]["kind"] == "output" && frame["event"]["text"] == "two" {
            break;
        }
    }

    // A data directory cannot apply to the running runtime: it keeps running as
    // it is, and the answer says so.
    files.config(&format!("{with}data_dir = \"var\"\n"));
    let r = reload(&api).await;
    assert_status(&r, 200);
    assert_eq!(ids(&r.json["runtimes"]["unchanged"]), ["local"]);
    assert_eq!(ids(&r.json["restart_required"]), ["embedded"]);
    let r = api
        .get(&format!("/api/runtimes/local/workers/{worker}"))
        .await;
    assert_eq!(r.json["status"], "running", "{}", r.text());
    drop(watching);

    // Removed: its viewers are closed with 4404 and its workers stopped.
    let mut viewer = watch_local(&api, &worker).await;
    files.config(without);
    let r = reload(&api).await;
    assert_status(&r, 200);
    assert_eq!(ids(&r.json["runtimes"]["removed"]), ["local"]);
    assert_eq!(
        switchyard_e2e::ws::close_code(&mut viewer).await,
        Some(4404)
    );
    assert_error(
        &api.get("/api/runtimes/local/workers").await,
        404,
        "runtime_not_found",
    );
    assert_eq!(
        embedded.get(&worker.parse().unwrap()).unwrap().status,
        switchyard_protocol::WorkerStatus::Stopped
    );
    assert!(backend.reloader.embedded().await.is_none());

    // Added again: a new runtime (in memory, so without the old worker).
    files.config(with);
    let r = reload(&api).await;
    assert_status(&r, 200);
    assert_eq!(ids(&r.json["runtimes"]["added"]), ["local"]);
    assert_error(
        &api.get(&format!("/api/runtimes/local/workers/{worker}"))
            .await,
        404,
        "worker_not_found",
    );
    create_echo(&api, "local", "new").await;
    backend.shutdown().await;
}

#[tokio::test]
async fn event_streams_of_a_removed_or_changed_token_are_closed_and_the_others_stay() {
    let files = Files::new();
    let base = |entries: &[(&str, &str, &str)]| {
        format!(
            "listen = \"127.0.0.1:0\"\n{}\n[embedded]\nruntime_id = \"local\"\n",
            tokens(entries)
        )
    };
    let (root, alice, bob) = (
        ("root", ADMIN, "admin"),
        ("alice", ALICE, "viewer"),
        ("bob", BOB, "viewer"),
    );
    files.config(&base(&[root, alice, bob]));
    let (backend, api) = start(&files).await;
    let admin = as_caller(&api, ADMIN);
    let worker = create_echo(&admin, "local", "watched").await;
    let path = format!("/api/runtimes/local/workers/{worker}/events/ws");
    let watch = |token: &'static str| {
        let path = path.clone();
        let addr = api.addr;
        async move {
            let auth = bearer(token);
            let mut ws = switchyard_e2e::ws::connect(addr, &path, &[("authorization", &auth)])
                .await
                .unwrap();
            let first = switchyard_e2e::ws::next_json(&mut ws).await;
            assert_eq!(first["event"]["kind"], "snapshot");
            ws
        }
    };
    let (mut as_root, mut as_alice, mut as_bob) =
        (watch(ADMIN).await, watch(ALICE).await, watch(BOB).await);

    // Alice removed, bob's token rotated (same name and role), root unchanged.
    const BOB_AGAIN: &str = "tok-bob-rotated-1f3c";
    files.config(&base(&[root, ("bob", BOB_AGAIN, "viewer")]));
    assert_status(&reload(&admin).await, 200);
    assert_eq!(
        switchyard_e2e::ws::close_frame(&mut as_alice).await,
        Some((1001, "access_ended".to_owned()))
    );
    assert_eq!(
        switchyard_e2e::ws::close_frame(&mut as_bob).await,
        Some((1001, "access_ended".to_owned()))
    );
    let r = admin
        .post(
            &format!("/api/runtimes/local/workers/{worker}/input"),
            json!({"text": "still here\n"}),
        )
        .await;
    assert_status(&r, 202);
    let input = switchyard_e2e::ws::next_json(&mut as_root).await;
    assert_eq!(
        input["event"]["kind"], "input",
        "root's stream goes on: {input}"
    );
    // Their reconnections meet the new configuration.
    let refused = send(
        api.addr,
        Method::GET,
        &path,
        None,
        &[
            ("authorization", &bearer(ALICE)),
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    )
    .await;
    assert_error(&refused, 401, "unauthorized");
    watch(BOB_AGAIN).await;
    backend.shutdown().await;
}
