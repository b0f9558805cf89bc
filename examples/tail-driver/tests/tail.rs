//! `switchyard-tail` started as a process; a `tail` worker driven through the
//! backend API while the test writes its file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::StatusCode;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use switchyard_e2e::client::Api;
use switchyard_e2e::proc::Switchyard;

const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    _dir: tempfile::TempDir,
    log: PathBuf,
    backend: Switchyard,
    api: Api,
}

async fn setup(initial: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, initial).unwrap();
    let file = format!("app-log={}", log.display());
    let backend = Switchyard::start_program(
        Path::new(env!("CARGO_BIN_EXE_switchyard-tail")),
        &["--listen", "127.0.0.1:0", "--lines", "2", "--file", &file],
        &[],
    )
    .await;
    let api = Api {
        addr: backend.addr,
        token: None,
    };
    Setup {
        _dir: dir,
        log,
        backend,
        api,
    }
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// The worker's output on `stream`, concatenated, once `until` is in it.
async fn wait_output(api: &Api, worker: &str, stream: &str, until: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = api.get(&format!("{worker}/transcript?limit=1000")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let text: String = page.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| item["stream"] == stream)
            .map(|item| item["text"].as_str().unwrap().to_owned())
            .collect();
        if text.contains(until) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{until:?} never came on {stream}: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn start_worker(api: &Api) -> String {
    let created = api
        .post("/api/runtimes/local/workers", json!({"profile": "app-log"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json["status"], "running");
    format!(
        "/api/runtimes/local/workers/{}",
        created.json["worker_id"].as_str().unwrap()
    )
}

#[tokio::test]
async fn a_tail_worker_follows_its_file_through_the_backend() {
    let setup = setup("first\nsecond\nthird\n").await;
    let api = &setup.api;

    let runtime = api.get("/api/runtimes/local").await;
    let profiles = runtime.json["profiles"].as_array().unwrap();
    let tail: Vec<&Value> = profiles.iter().filter(|p| p["kind"] == "tail").collect();
    assert_eq!(tail.len(), 1, "{profiles:?}");
    assert_eq!(tail[0]["name"], "app-log");
    assert!(
        !runtime.text().contains(setup.log.to_str().unwrap()),
        "the file's path is not shown to clients"
    );

    // The last two lines first, then what is appended.
    let worker = start_worker(api).await;
    let shown = wait_output(api, &worker, "stdout", "third\n").await;
    assert_eq!(shown, "second\nthird\n");
    append(&setup.log, "ERROR disk full\nINFO all good\npart");
    let shown = wait_output(api, &worker, "stdout", "INFO all good\n").await;
    assert_eq!(shown, "second\nthird\nERROR disk full\nINFO all good\n");

    // `grep` filters; the worker says so on stderr before it applies.
    let sent = api
        .post(&format!("{worker}/input"), json!({"text": "grep ERROR\n"}))
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text());
    wait_output(
        api,
        &worker,
        "stderr",
        "showing only lines containing \"ERROR\"",
    )
    .await;
    append(&setup.log, "ial line\nINFO hidden\nERROR shown\n");
    let shown = wait_output(api, &worker, "stdout", "ERROR shown\n").await;
    assert_eq!(
        shown,
        "second\nthird\nERROR disk full\nINFO all good\nERROR shown\n"
    );

    // Cancel clears the filter.
    let cancelled = api.post(&format!("{worker}/cancel"), json!({})).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text());
    wait_interrupted(api, &worker).await;
    append(&setup.log, "INFO back\n");
    wait_output(api, &worker, "stdout", "ERROR shown\nINFO back\n").await;

    // Rotation: the file starts over.
    std::fs::write(&setup.log, "fresh\n").unwrap();
    wait_output(api, &worker, "stderr", "truncated or replaced").await;
    wait_output(api, &worker, "stdout", "INFO back\nfresh\n").await;

    // An unknown command is answered, not obeyed.
    api.post(&format!("{worker}/input"), json!({"text": "rm -rf /\n"}))
        .await;
    wait_output(api, &worker, "stderr", "unknown command").await;

    let stopped = api.post(&format!("{worker}/stop"), json!({})).await;
    assert_eq!(stopped.json["status"], "stopped");
    setup.backend.signal(Signal::SIGTERM);
    assert!(setup.backend.wait().await.success());
}

async fn wait_interrupted(api: &Api, worker: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = api.get(&format!("{worker}/transcript?limit=1000")).await;
        if page.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|item| item["note"] == "interrupted")
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", page.json);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_burst_bigger_than_one_read_arrives_whole_and_in_order() {
    let setup = setup("").await;
    let worker = start_worker(&setup.api).await;
    let lines: String = (0..6000)
        .map(|i| format!("line {i:05} {}\n", "x".repeat(60)))
        .collect();
    assert!(lines.len() > 4 * 64 * 1024);
    append(&setup.log, &lines);
    let last = format!("line 05999 {}\n", "x".repeat(60));
    let shown = wait_output(&setup.api, &worker, "stdout", &last).await;
    assert_eq!(shown, lines);
}

#[tokio::test]
async fn a_missing_file_is_waited_for() {
    let setup = setup("").await;
    std::fs::remove_file(&setup.log).unwrap();
    let worker = start_worker(&setup.api).await;
    wait_output(&setup.api, &worker, "stderr", "waiting for it to appear").await;
    std::fs::write(&setup.log, "hello\n").unwrap();
    wait_output(&setup.api, &worker, "stdout", "hello\n").await;
}

#[tokio::test]
async fn a_bad_profile_name_is_refused_at_start() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard-tail"))
        .args(["--listen", "127.0.0.1:0", "--file", "two words=/tmp/x.log"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("profile \"two words\""), "{stderr}");
}
