//! Worker ownership with real processes: a backend (embedded runtime with a data
//! directory) and a remote `switchyard runtime` (with a data directory); owners
//! recorded through the backend survive a restart of the backend and of the remote
//! runtime, and still decide who reaches which worker.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::Method;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use switchyard_e2e::WAIT;
use switchyard_e2e::client::Api;
use switchyard_e2e::proc::Switchyard;
use switchyard_e2e::ws::connect;
use tokio_tungstenite::tungstenite;

struct Setup {
    dir: tempfile::TempDir,
    runtime_port: u16,
    olga: String,
    oscar: String,
}

impl Setup {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("runtime.token"),
            "owners-e2e-runtime-token\n",
        )
        .unwrap();
        let mut auth = String::from("[auth]\nsession_key_file = \"session.key\"\n\n");
        std::fs::write(dir.path().join("session.key"), [9u8; 32]).unwrap();
        let mut tokens = Vec::new();
        for name in ["olga", "oscar"] {
            let file = dir.path().join(format!("{name}.token"));
            let (status, stdout, stderr) = Switchyard::run_captured(
                &[
                    "token",
                    "--name",
                    name,
                    "--role",
                    "operator",
                    "--token-file",
                    &file.display().to_string(),
                ],
                &[],
            )
            .await;
            assert!(status.success(), "{stderr}");
            auth.push_str(&stdout);
            auth.push('\n');
            tokens.push(std::fs::read_to_string(&file).unwrap().trim().to_owned());
        }
        // A port for the remote runtime that stays the same across its restarts.
        let runtime_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.path().join("backend.toml"),
            format!(
                "listen = \"127.0.0.1:0\"\n\n\
                 [embedded]\nruntime_id = \"local\"\ndata_dir = \"local-data\"\n\n\
                 [[remote]]\nruntime_id = \"remote\"\nbase_url = \"http://127.0.0.1:{runtime_port}\"\n\
                 token_file = \"runtime.token\"\nrequest_timeout_ms = 5000\n\n{auth}"
            ),
        )
        .unwrap();
        let mut tokens = tokens.into_iter();
        Self {
            dir,
            runtime_port,
            olga: tokens.next().unwrap(),
            oscar: tokens.next().unwrap(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    async fn runtime(&self) -> Switchyard {
        let listen = format!("127.0.0.1:{}", self.runtime_port);
        let deadline = Instant::now() + WAIT;
        loop {
            // The port may linger for a moment after the previous process exits.
            let probe = std::net::TcpListener::bind(&listen);
            if probe.is_ok() || Instant::now() > deadline {
                drop(probe);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Switchyard::start(
            &[
                "runtime",
                "--listen",
                &listen,
                "--runtime-id",
                "remote",
                "--token-file",
                &self.path("runtime.token"),
                "--data-dir",
                &self.path("remote-data"),
            ],
            &[],
        )
        .await
    }

    async fn backend(&self) -> Switchyard {
        Switchyard::start(&["serve", "--config", &self.path("backend.toml")], &[]).await
    }
}

async fn stop(process: Switchyard) {
    process.signal(Signal::SIGTERM);
    assert!(process.wait().await.success());
}

fn api(addr: SocketAddr, token: &str) -> Api {
    Api {
        addr,
        token: Some(token.to_owned()),
    }
}

/// `runtime/worker` of every worker `api` lists.
async fn listed(api: &Api) -> BTreeSet<String> {
    let r = api.get("/api/workers").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["unavailable"], json!([]), "{}", r.text());
    r.json["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            format!(
                "{}/{}",
                w["runtime_id"].as_str().unwrap(),
                w["worker_id"].as_str().unwrap()
            )
        })
        .collect()
}

/// Waits until the backend reaches the remote runtime again.
async fn wait_remote(api: &Api) {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = api.get("/api/runtimes/remote/workers").await;
        if r.status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the remote never came back: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ws_status(addr: SocketAddr, path: &str, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    match connect(addr, path, &[("authorization", auth.as_str())]).await {
        Ok(_) => 101,
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("{path}: {other}"),
    }
}

/// Each sees exactly its own workers; the other's are 404 on every route, WebSocket
/// included; details name the owner.
async fn check(addr: SocketAddr, setup: &Setup, mine: &[(String, BTreeSet<String>); 2]) {
    for (i, token) in [&setup.olga, &setup.oscar].into_iter().enumerate() {
        let me = api(addr, token);
        let (name, own) = &mine[i];
        let (_, theirs) = &mine[1 - i];
        assert_eq!(&listed(&me).await, own, "{name}'s list");
        for key in own {
            let r = me
                .get(&format!("/api/runtimes/{}", key.replace('/', "/workers/")))
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.json["owner"], name.as_str(), "{}", r.text());
        }
        for key in theirs {
            let w = format!("/api/runtimes/{}", key.replace('/', "/workers/"));
            for (method, tail, body) in [
                (Method::GET, "", None),
                (Method::GET, "/transcript", None),
                (Method::POST, "/input", Some(json!({"text": "x"}))),
                (Method::POST, "/stop", None),
                (Method::DELETE, "", None),
            ] {
                let r = me.call(method.clone(), &format!("{w}{tail}"), body).await;
                assert_eq!(r.status, 404, "{name} {method} {w}{tail}: {}", r.text());
                assert_eq!(r.json["error"]["code"], "worker_not_found");
            }
            assert_eq!(ws_status(addr, &format!("{w}/events/ws"), token).await, 404);
        }
    }
}

#[tokio::test]
async fn ownership_survives_restarts_of_the_backend_and_the_remote_runtime() {
    let setup = Setup::new().await;
    let runtime = setup.runtime().await;
    let backend = setup.backend().await;
    wait_remote(&api(backend.addr, &setup.olga)).await;

    let mut mine: [(String, BTreeSet<String>); 2] = [
        ("olga".to_owned(), BTreeSet::new()),
        ("oscar".to_owned(), BTreeSet::new()),
    ];
    for (i, token) in [&setup.olga, &setup.oscar].into_iter().enumerate() {
        for runtime_id in ["local", "remote"] {
            let r = api(backend.addr, token)
                .post(
                    &format!("/api/runtimes/{runtime_id}/workers"),
                    json!({"profile": "echo"}),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text());
            assert_eq!(r.json["owner"], mine[i].0.as_str());
            mine[i].1.insert(format!(
                "{runtime_id}/{}",
                r.json["worker_id"].as_str().unwrap()
            ));
        }
    }
    check(backend.addr, &setup, &mine).await;

    // The backend restarts: owners come back from the runtimes' stores.
    stop(backend).await;
    let backend = setup.backend().await;
    wait_remote(&api(backend.addr, &setup.olga)).await;
    check(backend.addr, &setup, &mine).await;

    // The remote runtime restarts (a clean shutdown stopped its workers; their owners
    // are kept).
    stop(runtime).await;
    let runtime = setup.runtime().await;
    wait_remote(&api(backend.addr, &setup.olga)).await;
    check(backend.addr, &setup, &mine).await;
    let olga_remote = mine[0].1.iter().find(|k| k.starts_with("remote/")).unwrap();
    let r = api(backend.addr, &setup.olga)
        .get(&format!(
            "/api/runtimes/{}",
            olga_remote.replace('/', "/workers/")
        ))
        .await;
    assert_eq!(r.json["status"], "stopped", "{}", r.text());
    let value: &Value = &r.json["owner"];
    assert_eq!(value, "olga");

    stop(backend).await;
    stop(runtime).await;
}
