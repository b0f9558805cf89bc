//! `switchyard-pool` started as a process in front of two real runtime servers,
//! driven through the backend API.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use http::{Method, StatusCode};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use switchyard_e2e::client::Api;
use switchyard_e2e::proc::Switchyard;
use switchyard_e2e::ws;
use switchyard_protocol::RuntimeId;
use switchyard_runtime::RuntimeConfig;
use switchyard_server::{RunningRuntime, RuntimeServer};
use switchyard_transport::SecretToken;

const WAIT: Duration = Duration::from_secs(30);

async fn member(id: &str, token: &str) -> RunningRuntime {
    RuntimeServer::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .runtime_config(RuntimeConfig::new(RuntimeId::new(id).unwrap(), id))
        .token(SecretToken::new(token).unwrap())
        .start()
        .await
        .unwrap()
}

/// The pool process in front of `east` and `west`.
struct Setup {
    _dir: tempfile::TempDir,
    pool: Switchyard,
    api: Api,
    east: Option<RunningRuntime>,
    west: Option<RunningRuntime>,
}

async fn setup() -> Setup {
    let east = member("east-rt", "east-token").await;
    let west = member("west-rt", "west-token").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pool.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\n\
             [[remote]]\nruntime_id = \"east\"\nbase_url = \"{}\"\ntoken_env = \"EAST_TOKEN\"\n\
             [[remote]]\nruntime_id = \"west\"\nbase_url = \"{}\"\ntoken_env = \"WEST_TOKEN\"\n",
            east.url(),
            west.url()
        ),
    )
    .unwrap();
    let pool = start_pool(&config).await;
    let api = Api {
        addr: pool.addr,
        token: None,
    };
    Setup {
        _dir: dir,
        pool,
        api,
        east: Some(east),
        west: Some(west),
    }
}

async fn start_pool(config: &Path) -> Switchyard {
    Switchyard::start_program(
        Path::new(env!("CARGO_BIN_EXE_switchyard-pool")),
        &[
            "--config",
            config.to_str().unwrap(),
            "--pool-id",
            "build",
            "--pool-name",
            "Build pool",
        ],
        &[("EAST_TOKEN", "east-token"), ("WEST_TOKEN", "west-token")],
    )
    .await
}

async fn create(api: &Api) -> Value {
    let created = api
        .post("/api/runtimes/build/workers", json!({"profile": "echo"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    created.json
}

fn member_of(worker: &Value) -> String {
    let id = worker["worker_id"].as_str().unwrap();
    id.split_once('.').unwrap().0.to_owned()
}

#[tokio::test]
async fn two_runtimes_are_served_as_one_pool() {
    let setup = setup().await;
    let api = &setup.api;

    // One runtime, the pool, with the members' profiles.
    let runtime = api.get("/api/runtimes/build").await;
    assert_eq!(runtime.status, StatusCode::OK, "{}", runtime.text());
    assert_eq!(runtime.json["display_name"], "Build pool");
    assert_eq!(runtime.json["source"], "remote");
    assert_eq!(runtime.json["state"], "ready");
    assert_eq!(runtime.json["profiles"][0]["name"], "echo");
    let listed = api.get("/api/runtimes").await;
    assert_eq!(listed.json["runtimes"].as_array().unwrap().len(), 1);

    // Two workers: one on each member, the least busy first.
    let first = create(api).await;
    let second = create(api).await;
    let members: BTreeSet<String> = [member_of(&first), member_of(&second)].into();
    assert_eq!(members, BTreeSet::from(["east".into(), "west".into()]));
    assert_eq!(first["runtime_id"], "build");
    for running in [&setup.east, &setup.west] {
        let runtime = &running.as_ref().unwrap().runtime;
        assert_eq!(runtime.list(&Default::default()).unwrap().workers.len(), 1);
    }
    let counts = api.get("/api/runtimes/build").await;
    assert_eq!(counts.json["workers"]["running"], 2);

    // Input, transcript and stop go to the member that runs the worker.
    let path = format!(
        "/api/runtimes/build/workers/{}",
        second["worker_id"].as_str().unwrap()
    );
    let sent = api
        .post(
            &format!("{path}/input"),
            json!({"text": "through the pool\n"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = api.get(&format!("{path}/transcript")).await;
        let items = page.json["items"].as_array().unwrap().clone();
        if items
            .iter()
            .any(|i| i["stream"] == "stdout" && i["text"] == "through the pool\n")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{items:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The event stream's snapshot names the pool's worker.
    let mut socket = ws::connect(setup.pool.addr, &format!("{path}/events/ws"), &[])
        .await
        .unwrap();
    let snapshot = ws::next_json(&mut socket).await;
    assert_eq!(snapshot["event"]["kind"], "snapshot");
    assert_eq!(snapshot["worker_id"], second["worker_id"]);
    assert_eq!(
        snapshot["event"]["worker"]["worker_id"],
        second["worker_id"]
    );
    assert_eq!(snapshot["event"]["worker"]["runtime_id"], "build");

    // Pages follow pool ids across members.
    let page = api.get("/api/runtimes/build/workers?limit=1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let next = page.json["next"].as_str().unwrap().to_owned();
    let rest = api
        .get(&format!("/api/runtimes/build/workers?limit=1&after={next}"))
        .await;
    let mut seen = vec![
        page.json["workers"][0]["worker_id"].clone(),
        rest.json["workers"][0]["worker_id"].clone(),
    ];
    seen.sort_by_key(|v| v.as_str().unwrap().to_owned());
    let mut expected = vec![first["worker_id"].clone(), second["worker_id"].clone()];
    expected.sort_by_key(|v| v.as_str().unwrap().to_owned());
    assert_eq!(seen, expected);

    let stopped = api.post(&format!("{path}/stop"), json!({})).await;
    assert_eq!(stopped.json["worker_id"], second["worker_id"]);
    assert_eq!(stopped.json["status"], "stopped");

    // A worker of no member is not found, like any unknown worker.
    let missing = api.get("/api/runtimes/build/workers/north.w-1").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "worker_not_found");
    let removed = api.call(Method::DELETE, &path, None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let gone = api.get(&path).await;
    assert_eq!(gone.code(), "worker_not_found");
    assert!(
        gone.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains(second["worker_id"].as_str().unwrap()),
        "the message names the pool's worker id: {}",
        gone.json
    );
}

#[tokio::test]
async fn a_member_that_goes_down_is_skipped_for_new_workers() {
    let mut setup = setup().await;
    let api = &setup.api;
    setup.west.take().unwrap().shutdown().await;

    // New workers go to the member that answers.
    for _ in 0..2 {
        assert_eq!(member_of(&create(api).await), "east");
    }
    // The pool is shown as down (a list would miss west's workers) ...
    let all = api.get("/api/workers").await;
    let unavailable = all.json["unavailable"].as_array().unwrap();
    assert_eq!(unavailable.len(), 1, "{}", all.json);
    assert_eq!(unavailable[0]["runtime_id"], "build");
    assert_eq!(unavailable[0]["error"]["code"], "runtime_unreachable");
    // ... and nothing of the member's address reaches the client.
    let west_port = all.text();
    assert!(!west_port.contains("127.0.0.1:"), "{west_port}");

    // With no member left, creating is refused with the reason.
    setup.east.take().unwrap().shutdown().await;
    let refused = api
        .post("/api/runtimes/build/workers", json!({"profile": "echo"}))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        refused.text()
    );
    assert_eq!(refused.code(), "runtime_unreachable");
    let unknown = api
        .post("/api/runtimes/build/workers", json!({"profile": "nope"}))
        .await;
    assert_eq!(unknown.code(), "runtime_unreachable", "members are down");

    setup.pool.signal(Signal::SIGTERM);
    assert!(setup.pool.wait().await.success());
}

#[tokio::test]
async fn a_profile_no_member_has_is_unknown() {
    let setup = setup().await;
    let refused = setup
        .api
        .post("/api/runtimes/build/workers", json!({"profile": "nope"}))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    assert_eq!(refused.code(), "unknown_profile");
}

#[tokio::test]
async fn a_configuration_without_remotes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("empty.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n").unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard-pool"))
        .args(["--config", config.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no [[remote]] runtimes to pool"),
        "{stderr}"
    );
}
