//! `switchyard runtime` as a real process: token file, file store, a `process` worker
//! driven through its whole life, graceful shutdown, restart, and crash recovery.

use std::time::Duration;

use http::Method;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use switchyard_e2e::WAIT;
use switchyard_e2e::client::Api;
use switchyard_e2e::proc::Switchyard;
use switchyard_e2e::ws::{connect, next_json};

const TOKEN: &str = "e2e-token-3f9a7c";

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(
            dir.path().join("runtime.toml"),
            r#"
runtime_id = "e2e"
display_name = "End to end"
stop_grace_ms = 2000

[profiles.shell]
kind = "process"
# Ends at end of input; survives SIGINT (dash's `read` returns 1 when a trapped
# signal interrupts it, as at end of input: the trap's flag tells them apart).
command = ["/bin/sh", "-c", "trap 'echo interrupted; i=1' INT; while :; do i=; if read line; then echo \"got $line\"; elif [ -z \"$i\" ]; then exit 0; fi; done"]
description = "a line-echoing shell loop that survives Ctrl-C"

[profiles.sleepers]
kind = "process"
command = ["/bin/sh", "-c", "sleep 300 & echo \"pids $$ $!\"; wait"]

[profiles.limits]
kind = "process"
command = ["/bin/sh", "-c", "sleep 0.5; echo \"nofile $(ulimit -S -n)\""]

[profiles.terminal_limits]
kind = "pty"
command = ["/bin/sh", "-c", "sleep 0.5; echo \"nofile $(ulimit -S -n)\""]

[profiles.terminal_sleepers]
kind = "pty"
command = ["/bin/sh", "-c", "python3 -c 'import os, time; os.setpgid(0, 0); print(\"pids\", os.getppid(), os.getpid(), flush=True); time.sleep(300)' & wait"]
"#,
        )
        .unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    async fn start(&self) -> (Switchyard, Api) {
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = Switchyard::start(&args, &[]).await;
        self.api(process)
    }

    /// The runtime's arguments: this setup's configuration, token and data.
    fn args(&self) -> Vec<String> {
        [
            "runtime",
            "--listen",
            "127.0.0.1:0",
            "--config",
            &self.path("runtime.toml"),
            "--token-file",
            &self.path("token"),
            "--data-dir",
            &self.path("data"),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn api(&self, process: Switchyard) -> (Switchyard, Api) {
        let api = Api {
            addr: process.addr,
            token: Some(TOKEN.into()),
        };
        (process, api)
    }
}

/// The runtime raises its own soft open-file limit (here from 512 to the hard
/// limit) for its connections; its `process` and `pty` workers get 512 back.
#[tokio::test]
async fn workers_get_the_open_file_limit_the_runtime_started_with() {
    let setup = Setup::new();
    let quoted: Vec<String> = setup.args().iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "ulimit -S -n 512 && exec '{}' {}",
        switchyard_e2e::proc::switchyard_bin().display(),
        quoted.join(" ")
    );
    let process =
        Switchyard::start_program(std::path::Path::new("/bin/sh"), &["-c", &script], &[]).await;
    let (_process, api) = setup.api(process);
    for profile in ["limits", "terminal_limits"] {
        let created = api.post("/v1/workers", json!({"profile": profile})).await;
        assert_eq!(created.status, 201, "{}", created.text());
        let id = created.json["worker_id"].as_str().unwrap().to_owned();
        let items = wait_for_item(&api, &id, output_is("nofile ")).await;
        let line = items
            .iter()
            .find_map(|i| i["text"].as_str().filter(|t| t.contains("nofile ")))
            .unwrap();
        assert!(line.contains("nofile 512"), "{profile}: {line:?}");
    }
}

/// Polls the transcript until an item satisfies `pred`.
async fn wait_for_item(api: &Api, worker: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = api
            .get(&format!("/v1/workers/{worker}/transcript?limit=1000"))
            .await;
        assert_eq!(page.status, 200, "{}", page.text());
        let items = page.json["items"].as_array().cloned().unwrap_or_default();
        if items.iter().any(&pred) {
            return items;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saw the item; transcript: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn output_is(text: &'static str) -> impl Fn(&Value) -> bool {
    move |item| item["kind"] == "output" && item["text"].as_str().is_some_and(|t| t.contains(text))
}

#[tokio::test]
async fn a_process_worker_through_its_life_then_sigterm_and_restart() {
    let setup = Setup::new();
    let (process, api) = setup.start().await;

    assert_eq!(api.get("/v1/health").await.json, json!({"status": "ok"}));
    let unauthorised = Api {
        addr: api.addr,
        token: None,
    }
    .get("/v1/runtime")
    .await;
    assert_eq!(unauthorised.status, 401);

    let created = api
        .post("/v1/workers", json!({"profile": "shell", "label": "e2e"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json["status"], "running");
    let id = created.json["worker_id"].as_str().unwrap().to_owned();

    let accepted = api
        .post(
            &format!("/v1/workers/{id}/input"),
            json!({"text": "hello\n"}),
        )
        .await;
    assert_eq!(accepted.status, 202);
    assert!(accepted.json["sequence"].as_u64().unwrap() > 0);
    wait_for_item(&api, &id, output_is("got hello")).await;

    let cancelled = api
        .call(Method::POST, &format!("/v1/workers/{id}/cancel"), None)
        .await;
    assert_eq!(cancelled.status, 200);
    assert_eq!(
        cancelled.json,
        json!({"worker_id": id, "status": "running"})
    );
    wait_for_item(&api, &id, output_is("interrupted")).await;
    api.post(
        &format!("/v1/workers/{id}/input"),
        json!({"text": "again\n"}),
    )
    .await;
    wait_for_item(&api, &id, output_is("got again")).await;

    let stopped = api
        .call(Method::POST, &format!("/v1/workers/{id}/stop"), None)
        .await;
    assert_eq!(stopped.status, 200);
    assert_eq!(stopped.json["status"], "stopped");
    let before = api
        .get(&format!("/v1/workers/{id}/transcript?limit=1000"))
        .await
        .json;
    let detail_before = api.get(&format!("/v1/workers/{id}")).await.json;

    process.signal(Signal::SIGTERM);
    let status = process.wait().await;
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM");

    let (process, api) = setup.start().await;
    let after = api
        .get(&format!("/v1/workers/{id}/transcript?limit=1000"))
        .await
        .json;
    assert_eq!(after, before, "the transcript survives a restart intact");
    let detail_after = api.get(&format!("/v1/workers/{id}")).await.json;
    assert_eq!(detail_after["status"], "stopped");
    assert_eq!(detail_after["input_count"], detail_before["input_count"]);
    process.signal(Signal::SIGINT);
    assert_eq!(process.wait().await.code(), Some(0), "clean exit on SIGINT");
}

#[tokio::test]
async fn after_a_crash_running_workers_are_lost_and_old_cursors_reset() {
    let setup = Setup::new();
    let (process, api) = setup.start().await;
    let created = api.post("/v1/workers", json!({"profile": "echo"})).await;
    let id = created.json["worker_id"].as_str().unwrap().to_owned();
    api.post(
        &format!("/v1/workers/{id}/input"),
        json!({"text": "before the crash"}),
    )
    .await;
    wait_for_item(&api, &id, output_is("before the crash")).await;
    let epoch_before = api.get("/v1/runtime").await.json["epoch"].clone();
    let auth = format!("Bearer {TOKEN}");
    let events = format!("/v1/workers/{id}/events/ws");
    let mut ws = connect(api.addr, &events, &[("authorization", &auth)])
        .await
        .unwrap();
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["event"]["kind"], "snapshot");
    let old_cursor = snapshot["cursor"].as_str().unwrap().to_owned();

    process.signal(Signal::SIGKILL);
    process.wait().await;

    let (process, api) = setup.start().await;
    let info = api.get("/v1/runtime").await.json;
    assert_ne!(info["epoch"], epoch_before, "a new epoch on every start");
    let detail = api.get(&format!("/v1/workers/{id}")).await.json;
    assert_eq!(detail["status"], "lost");
    let items = wait_for_item(&api, &id, |i| i["kind"] == "system" && i["note"] == "lost").await;
    assert!(items.iter().any(output_is("before the crash")));
    let resume = format!("{events}?cursor={old_cursor}");
    let mut ws = connect(api.addr, &resume, &[("authorization", &auth)])
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "reset", "reason": "runtime_restarted"})
    );
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["event"]["kind"], "snapshot");
    assert_eq!(snapshot["event"]["worker"]["status"], "lost");
    // A second runtime on the same data directory is refused while this one runs.
    let data = setup.path("data");
    let (status, stderr) = Switchyard::run_to_exit(
        &["runtime", "--listen", "127.0.0.1:0", "--data-dir", &data],
        &[],
    )
    .await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "switchyard runtime: data_dir_in_use: the data directory {data} is in use by another switchyard runtime"
        )),
        "{stderr}"
    );
    assert_eq!(
        api.get(&format!("/v1/workers/{id}")).await.json["status"],
        "lost"
    );
    // A lost worker takes no input.
    let refused = api
        .post(&format!("/v1/workers/{id}/input"), json!({"text": "x"}))
        .await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.code(), "worker_not_running");
    process.signal(Signal::SIGTERM);
    assert_eq!(process.wait().await.code(), Some(0));
}

/// The process ids a `sleepers` worker printed as `pids A B`.
async fn pids_of(api: &Api, worker: &str) -> Vec<i32> {
    let items = wait_for_item(api, worker, output_is("pids ")).await;
    let text: String = items
        .iter()
        .filter(|item| item["kind"] == "output")
        .filter_map(|item| item["text"].as_str())
        .collect();
    let line = text.lines().find(|l| l.contains("pids ")).unwrap();
    let pids: Vec<i32> = line
        .split_whitespace()
        .skip(1)
        .map(|p| p.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{line}");
    pids
}

/// Whether `pid` is gone: no such process, or a zombie nobody reaped yet.
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat[stat.rfind(')').unwrap() + 1..]
            .trim_start()
            .starts_with('Z'),
    }
}

/// A runtime killed with SIGKILL runs no destructor, yet its workers' processes do
/// not outlive it: its reaper kills a process worker's group and every group of a
/// pty worker's session (here a job that moved to a group of its own).
#[tokio::test]
async fn a_killed_runtime_takes_its_workers_processes_with_it() {
    let setup = Setup::new();
    let (process, api) = setup.start().await;
    let mut pids = Vec::new();
    for profile in ["sleepers", "terminal_sleepers"] {
        let created = api.post("/v1/workers", json!({"profile": profile})).await;
        assert_eq!(created.status, 201, "{}", created.text());
        let id = created.json["worker_id"].as_str().unwrap().to_owned();
        pids.extend(pids_of(&api, &id).await);
    }
    assert!(pids.iter().all(|&pid| !gone(pid)), "all alive: {pids:?}");

    process.signal(Signal::SIGKILL);
    process.wait().await;

    let deadline = tokio::time::Instant::now() + WAIT;
    while !pids.iter().all(|&pid| gone(pid)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "outlived the runtime: {:?}",
            pids.iter().filter(|&&pid| !gone(pid)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn configuration_errors_exit_with_status_2_naming_the_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "runtime_id = \"x\"\nlisten_port = 1\n").unwrap();
    let config = config.display().to_string();
    let (status, stderr) = Switchyard::run_to_exit(&["runtime", "--config", &config], &[]).await;
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("listen_port"), "{stderr}");
    assert!(stderr.contains("bad.toml"), "{stderr}");

    let (status, stderr) =
        Switchyard::run_to_exit(&["runtime", "--listen", "0.0.0.0:0"], &[]).await;
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("token"), "{stderr}");

    // A data directory that cannot be created: the configuration names it.
    let (status, stderr) = Switchyard::run_to_exit(
        &[
            "runtime",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "/proc/switchyard-no",
        ],
        &[],
    )
    .await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("data_dir"), "{stderr}");
    assert!(stderr.contains("/proc/switchyard-no"), "{stderr}");
}

/// The binary allocates through mimalloc: linked with its `override` feature it
/// defines `malloc` and `free` itself, which Rust's default allocator calls. A
/// static archive the linker never pulled in would leave glibc's in their place
/// without a word.
#[test]
fn the_binary_defines_malloc_and_free_itself() {
    let out = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(switchyard_e2e::proc::switchyard_bin())
        .output()
        .expect("nm (binutils) runs");
    assert!(out.status.success(), "nm failed: {out:?}");
    let symbols = String::from_utf8_lossy(&out.stdout);
    for symbol in ["malloc", "free"] {
        let defined = symbols.lines().any(|line| {
            let mut parts = line.split_whitespace().rev();
            parts.next() == Some(symbol) && parts.next() == Some("T")
        });
        assert!(defined, "the binary does not define {symbol}");
    }
}
