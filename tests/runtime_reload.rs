//! A standalone `switchyard runtime` reloading its configuration on SIGHUP, as a real
//! process: a token rotated through a two-line token file while a worker runs and
//! its viewer on the new token stays connected (the one on the old token closes); profiles added and removed, and `max_workers`
//! lowered, for what starts next while running workers carry on; an invalid file
//! (or token file) changing nothing; keys that need a restart logged; and, without
//! `--config`, the `--token-file` read again (and SIGHUP never ending the process).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::Method;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use switchyard_e2e::WAIT;
use switchyard_e2e::client::{Api, TestResponse};
use switchyard_e2e::proc::Switchyard;
use switchyard_e2e::ws::{Ws, close_frame, connect, next_json};

const OLD: &str = "rt-reload-old-token-5d1e";
const NEW: &str = "rt-reload-new-token-a7c3";

/// A runtime started with `--config` (and its token file) in a directory of its own,
/// its log kept at INFO.
struct Runtime {
    dir: tempfile::TempDir,
    process: Switchyard,
    log: PathBuf,
}

impl Runtime {
    async fn start(config: &str, token_file: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("runtime.toml"), config).unwrap();
        std::fs::write(dir.path().join("rt.token"), token_file).unwrap();
        let log = dir.path().join("runtime.log");
        let config = dir.path().join("runtime.toml");
        let process = Switchyard::start_logged(
            &[
                "runtime",
                "--listen",
                "127.0.0.1:0",
                "--config",
                config.to_str().unwrap(),
            ],
            &[("RUST_LOG", "info")],
            &log,
        )
        .await;
        Self { dir, process, log }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    fn api(&self, token: &str) -> Api {
        Api {
            addr: self.process.addr,
            token: Some(token.to_owned()),
        }
    }

    fn hangup(&self) {
        self.process.signal(Signal::SIGHUP);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the `n`th log line holding `needle`; returns it.
    async fn wait_for_log(&self, needle: &str, n: usize) -> String {
        switchyard_e2e::proc::wait_for_log_line(&self.log, needle, n).await
    }

    async fn stop(self) -> String {
        self.process.signal(Signal::SIGTERM);
        let log_path = self.log.clone();
        assert_eq!(self.process.wait().await.code(), Some(0));
        std::fs::read_to_string(log_path).unwrap()
    }
}

/// Polls `GET path` with `api` until `done` holds for the answer.
async fn wait_until(api: &Api, path: &str, what: &str, done: impl Fn(&TestResponse) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = api.get(path).await;
        if done(&answer) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {} {}",
            answer.status,
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn profiles(api: &Api) -> Vec<String> {
    let info = api.get("/v1/runtime").await;
    assert_eq!(info.status, 200, "{}", info.text());
    info.json["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn wait_for_profiles(api: &Api, expected: &[&str]) {
    wait_until(api, "/v1/runtime", "the profiles", |r| {
        r.json["profiles"].as_array().is_some_and(|list| {
            list.iter()
                .map(|p| p["name"].as_str().unwrap_or(""))
                .eq(expected.iter().copied())
        })
    })
    .await;
}

async fn create(api: &Api, profile: &str) -> TestResponse {
    api.post("/v1/workers", json!({"profile": profile})).await
}

async fn create_ok(api: &Api, profile: &str) -> String {
    let r = create(api, profile).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json["worker_id"].as_str().unwrap().to_owned()
}

async fn watch(addr: std::net::SocketAddr, worker: &str, token: &str) -> Ws {
    let auth = format!("Bearer {token}");
    let mut ws = connect(
        addr,
        &format!("/v1/workers/{worker}/events/ws"),
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["event"]["kind"], "snapshot");
    ws
}

/// Sends `text` to `worker` and reads `viewer` until the echo comes back.
async fn echoed(api: &Api, viewer: &mut Ws, worker: &str, text: &str) {
    let sent = api
        .post(
            &format!("/v1/workers/{worker}/input"),
            json!({"text": text}),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.text());
    loop {
        let frame: Value = next_json(viewer).await;
        if frame["event"]["kind"] == "output" && frame["event"]["text"] == text {
            return;
        }
    }
}

fn config(extra: &str) -> String {
    format!("runtime_id = \"rt\"\ntoken_file = \"rt.token\"\n{extra}")
}

#[tokio::test]
async fn a_token_is_rotated_through_a_two_line_file_without_cutting_a_worker_or_its_new_viewer() {
    let rt = Runtime::start(&config(""), &format!("{OLD}\n")).await;
    let (old, new) = (rt.api(OLD), rt.api(NEW));
    assert_eq!(old.get("/v1/runtime").await.status, 200);
    assert_eq!(new.get("/v1/runtime").await.status, 401);
    let worker = create_ok(&old, "echo").await;
    let mut viewer = watch(rt.process.addr, &worker, OLD).await;

    // 1. The new token added on a second line: both are accepted.
    rt.write("rt.token", &format!("{OLD}\n{NEW}\n"));
    rt.hangup();
    wait_until(&new, "/v1/runtime", "the new token accepted", |r| {
        r.status == 200
    })
    .await;
    assert_eq!(old.get("/v1/runtime").await.status, 200, "the old one too");
    echoed(&new, &mut viewer, &worker, "with the new token\n").await;
    echoed(&old, &mut viewer, &worker, "with the old token\n").await;
    // What the backend does at this step: reconnect with the new token.
    let mut moved = watch(rt.process.addr, &worker, NEW).await;

    // 2. The old line removed: the old token is refused, as the contract says.
    rt.write("rt.token", &format!("\n{NEW}\n\n"));
    rt.hangup();
    wait_until(&old, "/v1/runtime", "the old token refused", |r| {
        r.status == 401
    })
    .await;
    let refused = old.get("/v1/workers").await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.code(), "unauthorized");
    assert_eq!(
        refused.headers.get("www-authenticate").unwrap(),
        "Bearer",
        "{:?}",
        refused.headers
    );
    let handshake = connect(
        rt.process.addr,
        &format!("/v1/workers/{worker}/events/ws"),
        &[("authorization", &format!("Bearer {OLD}"))],
    )
    .await;
    assert!(handshake.is_err(), "a new handshake with the old token");

    // The stream opened with the old token is closed as going away (a leaked
    // token keeps nothing open); the worker ran through it all, and the stream
    // opened with the new token carries on.
    let (code, reason) = close_frame(&mut viewer).await.expect("a close frame");
    assert_eq!((code, reason.as_str()), (1001, "access_ended"));
    let detail = new.get(&format!("/v1/workers/{worker}")).await;
    assert_eq!(detail.json["status"], "running", "{}", detail.text());
    echoed(&new, &mut moved, &worker, "after the rotation\n").await;

    let log = rt.stop().await;
    assert!(
        !log.contains(OLD) && !log.contains(NEW),
        "a token in the log"
    );
    assert!(
        log.contains("configuration reloaded"),
        "the reloads are logged:\n{log}"
    );
}

#[tokio::test]
async fn profiles_and_max_workers_apply_to_what_starts_next_and_running_workers_carry_on() {
    let first = "[profiles.first]\nkind = \"echo\"\ndescription = \"the first\"\n";
    let rt = Runtime::start(&config(&format!("max_workers = 3\n{first}")), OLD).await;
    let api = rt.api(OLD);
    assert_eq!(profiles(&api).await, ["echo", "first"]);
    let running = create_ok(&api, "first").await;
    let mut viewer = watch(rt.process.addr, &running, OLD).await;

    // `first` removed, `second` added, max_workers lowered to the one running.
    rt.write(
        "runtime.toml",
        &config(
            "max_workers = 1\n\
             [profiles.second]\nkind = \"process\"\ncommand = [\"/bin/cat\"]\n",
        ),
    );
    rt.hangup();
    wait_for_profiles(&api, &["echo", "second"]).await;
    let info = api.get("/v1/runtime").await.json;
    assert_eq!(info["limits"]["max_workers"], 1);

    let refused = create(&api, "first").await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.code(), "unknown_profile");
    let full = create(&api, "second").await;
    assert_eq!(full.status, 429, "{}", full.text());
    assert_eq!(full.code(), "worker_limit_reached");

    // The worker of the removed profile runs on, viewer and all.
    let detail = api.get(&format!("/v1/workers/{running}")).await.json;
    assert_eq!(detail["status"], "running");
    assert_eq!(detail["profile"], "first");
    echoed(&api, &mut viewer, &running, "still here\n").await;

    // Once it has stopped there is room for one from the new profile.
    let stopped = api
        .call(Method::POST, &format!("/v1/workers/{running}/stop"), None)
        .await;
    assert_eq!(stopped.json["status"], "stopped", "{}", stopped.text());
    let cat = create_ok(&api, "second").await;
    let mut cat_viewer = watch(rt.process.addr, &cat, OLD).await;
    echoed(&api, &mut cat_viewer, &cat, "meow\n").await;

    let line = rt.wait_for_log("`profiles` changed", 1).await;
    assert!(
        line.contains("added=\"second\"") || line.contains("added=second"),
        "{line}"
    );
    rt.wait_for_log("`max_workers` changed from 3 to 1", 1)
        .await;
    rt.stop().await;
}

#[tokio::test]
async fn an_invalid_file_or_token_file_changes_nothing_and_restart_only_keys_are_logged() {
    let a = "[profiles.a]\nkind = \"echo\"\n";
    let rt = Runtime::start(&config(a), OLD).await;
    let api = rt.api(OLD);
    let file = rt.path("runtime.toml").display().to_string();

    // An unknown key beside a new profile: refused, naming the key and the file.
    rt.write(
        "runtime.toml",
        &config(&format!(
            "max_wrokers = 1\n{a}[profiles.b]\nkind = \"echo\"\n"
        )),
    );
    rt.hangup();
    let line = rt.wait_for_log("configuration not reloaded", 1).await;
    assert!(
        line.contains("max_wrokers") && line.contains(&file),
        "{line}"
    );
    assert!(line.contains("ERROR"), "{line}");

    // A valid file, but its token file is empty: nothing applies either, the new
    // profile included, and the old token still works.
    rt.write(
        "runtime.toml",
        &config(&format!("{a}[profiles.b]\nkind = \"echo\"\n")),
    );
    rt.write("rt.token", " \n\n");
    rt.hangup();
    let line = rt.wait_for_log("configuration not reloaded", 2).await;
    assert!(
        line.contains("token_file") && line.contains(&file),
        "{line}"
    );
    assert_eq!(profiles(&api).await, ["a", "echo"]);
    assert_eq!(create(&api, "b").await.code(), "unknown_profile");
    create_ok(&api, "a").await;
    // Both refusals are counted where an operator can alert on them.
    let metrics = api.get("/v1/metrics").await.text();
    for line in [
        "switchyard_config_reloads_total{outcome=\"invalid_config\"} 2",
        "switchyard_config_reloads_total{outcome=\"ok\"} 0",
        "switchyard_config_last_reload_successful 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }

    // Restart-only keys keep their running values (and are logged at WARN) while
    // the rest applies.
    rt.write("rt.token", OLD);
    rt.write(
        "runtime.toml",
        &format!(
            "runtime_id = \"renamed\"\nlisten = \"127.0.0.1:7\"\ntoken_file = \"rt.token\"\n\
             data_dir = \"store\"\n{a}[profiles.b]\nkind = \"echo\"\n"
        ),
    );
    rt.hangup();
    wait_for_profiles(&api, &["a", "b", "echo"]).await;
    let info = api.get("/v1/runtime").await.json;
    assert_eq!(info["runtime_id"], "rt");
    // Counted once the reload returns, a moment after its profiles apply.
    wait_until(&api, "/v1/metrics", "the reload counted", |answer| {
        answer
            .text()
            .lines()
            .any(|l| l == "switchyard_config_last_reload_successful 1")
    })
    .await;
    for key in ["runtime_id", "data_dir"] {
        let line = rt
            .wait_for_log(&format!("`{key}` changed in the configuration"), 1)
            .await;
        assert!(line.contains("WARN") && line.contains("restart"), "{line}");
    }
    let log = rt.log();
    assert!(
        !log.contains("`listen` changed"),
        "--listen wins over the file, as at start:\n{log}"
    );
    assert!(!rt.path("store").exists(), "no store opened there");
    let log = rt.stop().await;
    assert!(!log.contains(OLD));
}

/// Without `--config`, SIGHUP reads the `--token-file` again; it never ends the
/// process (before, a runtime without TLS had no SIGHUP handler at all).
#[tokio::test]
async fn without_a_config_file_sighup_reads_the_token_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let token_file: &Path = &dir.path().join("rt.token");
    std::fs::write(token_file, OLD).unwrap();
    let process = Switchyard::start(
        &[
            "runtime",
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let (old, new) = (
        Api {
            addr: process.addr,
            token: Some(OLD.into()),
        },
        Api {
            addr: process.addr,
            token: Some(NEW.into()),
        },
    );
    process.signal(Signal::SIGHUP);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(old.get("/v1/runtime").await.status, 200, "still serving");

    std::fs::write(token_file, NEW).unwrap();
    process.signal(Signal::SIGHUP);
    wait_until(&new, "/v1/runtime", "the new token accepted", |r| {
        r.status == 200
    })
    .await;
    assert_eq!(old.get("/v1/runtime").await.status, 401);
    process.signal(Signal::SIGTERM);
    assert_eq!(process.wait().await.code(), Some(0));
}
