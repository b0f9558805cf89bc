//! The servers as a library: `Backend` and `RuntimeServer` built in code, with
//! runtimes, policies, drivers and listeners of the caller's own, checked through
//! real HTTP calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use switchyard_e2e::client::{Api, TestResponse};
use switchyard_protocol::{CreateWorkerRequest, ExitInfo, OutputStream, ProfileKind, RuntimeId};
use switchyard_registry::{
    Action, Caller, EmbeddedSource, Policy, PolicyDenied, PolicyRequest, RegisteredRuntime,
    RuntimeSource,
};
use switchyard_runtime::{
    Control, Driver, DriverInputs, DriverSink, Ending, Profile, Runtime, RuntimeConfig,
};
use switchyard_server::config::{AuthSettings, BackendSettings, ConfigError};
use switchyard_server::{Backend, RunningBackend, RuntimeServer, StartError};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(30);

fn rid(id: &str) -> RuntimeId {
    RuntimeId::new(id).unwrap()
}

async fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

fn api(running: &RunningBackend) -> Api {
    Api {
        addr: running.local_addr(),
        token: None,
    }
}

/// A runtime in this process, registered as any source would be.
async fn jobs_runtime(id: &str) -> (Runtime, RegisteredRuntime) {
    let runtime = Runtime::in_memory(RuntimeConfig::new(rid(id), format!("Jobs {id}"))).await;
    let source = Arc::new(EmbeddedSource::new(runtime.clone()));
    (runtime, RegisteredRuntime::new(rid(id), "Jobs", source))
}

fn ids(answer: &TestResponse) -> Vec<String> {
    answer.json["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["runtime_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Asks `api` for a reload that must be refused as `400 invalid_config`; its message.
async fn reload_refused(api: &Api) -> String {
    let refused = api.post("/api/admin/reload", json!({})).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    assert_eq!(refused.code(), "invalid_config");
    refused.json["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls the transcript until `pred` holds for its items.
async fn wait_transcript(api: &Api, path: &str, pred: impl Fn(&serde_json::Value) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = api.get(&format!("{path}/transcript")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        if page.json["items"].as_array().unwrap().iter().any(&pred) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "transcript never matched: {}",
            page.json
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_backend_from_nothing_serves_the_sources_added_in_code() {
    let (jobs, registered) = jobs_runtime("jobs").await;
    let backend = Backend::builder()
        .listener(loopback().await)
        .runtime(registered)
        .start()
        .await
        .unwrap();
    let api = api(&backend);
    assert!(backend.url().starts_with("http://127.0.0.1:"));

    // Nothing but what was added: no embedded `local`.
    assert_eq!(ids(&api.get("/api/runtimes").await), ["jobs"]);
    let created = api
        .post("/api/runtimes/jobs/workers", json!({"profile": "echo"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json["runtime_id"], "jobs");
    let worker = created.json["worker_id"].as_str().unwrap();
    assert_eq!(jobs.list(&Default::default()).unwrap().workers.len(), 1);

    // Shutting the backend down shuts its sources down: the runtime stops its workers.
    backend.shutdown().await;
    assert!(jobs.is_draining());
    assert!(
        jobs.get(&worker.parse().unwrap())
            .unwrap()
            .status
            .is_ended()
    );
}

/// Refuses deletes, with its own message; everything else as `inner` says.
struct NoDeletes(Arc<dyn Policy>);

impl Policy for NoDeletes {
    fn authorize(&self, request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        if request.action == Action::Delete {
            return Err(PolicyDenied(
                "workers are kept here; stop them instead".into(),
            ));
        }
        self.0.authorize(request)
    }

    fn authorize_admin(&self, caller: &Caller) -> Result<(), PolicyDenied> {
        self.0.authorize_admin(caller)
    }
}

/// Refuses every command: a read-only backend.
struct ReadOnly;

impl Policy for ReadOnly {
    fn authorize(&self, request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        if request.action.is_command() {
            return Err(PolicyDenied("this backend is read-only".into()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_policy_set_in_code_decides() {
    let wrapped_default = Arc::new(AtomicBool::new(false));
    let seen = wrapped_default.clone();
    let backend = Backend::from_settings(BackendSettings::defaults())
        .listener(loopback().await)
        .wrap_policy(move |inner| {
            // Without tokens the backend picks AllowAll, the one policy that filters
            // no events.
            seen.store(!inner.filters_events(), Ordering::SeqCst);
            Arc::new(NoDeletes(inner))
        })
        .start()
        .await
        .unwrap();
    assert!(
        wrapped_default.load(Ordering::SeqCst),
        "the wrapped policy is the default one"
    );
    let api = api(&backend);
    let created = api
        .post("/api/runtimes/local/workers", json!({"profile": "echo"}))
        .await;
    let worker = created.json["worker_id"].as_str().unwrap().to_owned();
    let path = format!("/api/runtimes/local/workers/{worker}");
    let stopped = api.post(&format!("{path}/stop"), json!({})).await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text());

    let refused = api.call(http::Method::DELETE, &path, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "forbidden");
    assert_eq!(
        refused.json["error"]["message"],
        "workers are kept here; stop them instead"
    );
    assert_eq!(api.get(&path).await.status, StatusCode::OK, "still there");
    backend.shutdown().await;

    // `policy` replaces the default outright.
    let backend = Backend::from_settings(BackendSettings::defaults())
        .listener(loopback().await)
        .policy(ReadOnly)
        .start()
        .await
        .unwrap();
    let api = self::api(&backend);
    assert_eq!(api.get("/api/runtimes").await.status, StatusCode::OK);
    let refused = api
        .post("/api/runtimes/local/workers", json!({"profile": "echo"}))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    assert_eq!(
        refused.json["error"]["message"],
        "this backend is read-only"
    );
    backend.shutdown().await;
}

/// Answers each input line with its length.
struct Count;

#[async_trait::async_trait]
impl Driver for Count {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Custom(switchyard_protocol::CustomKind::new("count").unwrap())
    }

    async fn run(&self, mut worker: DriverInputs, sink: Arc<dyn DriverSink>) -> Ending {
        sink.started().await;
        loop {
            tokio::select! {
                control = worker.control.recv() => match control {
                    Some(Control::Cancel) => sink.interrupted().await,
                    Some(_) | None => {
                        return Ending::Stopped(ExitInfo { code: None, signal: None });
                    }
                },
                Some(text) = worker.inputs.recv() => {
                    let answer = format!("{} bytes\n", text.len());
                    sink.output(OutputStream::Stdout, answer).await;
                }
            }
        }
    }
}

#[tokio::test]
async fn a_custom_driver_runs_in_the_embedded_runtime() {
    let backend = Backend::from_settings(BackendSettings::defaults())
        .listener(loopback().await)
        .embedded_profile(
            "count",
            Profile::custom(Count).with_description("counts bytes"),
        )
        .start()
        .await
        .unwrap();
    let api = api(&backend);
    let runtime = api.get("/api/runtimes/local").await;
    let profiles = runtime.json["profiles"].as_array().unwrap().clone();
    assert!(
        profiles
            .contains(&json!({"name": "count", "kind": "count", "description": "counts bytes"})),
        "{profiles:?}"
    );
    let created = api
        .post("/api/runtimes/local/workers", json!({"profile": "count"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let path = format!(
        "/api/runtimes/local/workers/{}",
        created.json["worker_id"].as_str().unwrap()
    );
    let sent = api
        .post(&format!("{path}/input"), json!({"text": "hello\n"}))
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED);
    wait_transcript(&api, &path, |item| item["text"] == "6 bytes\n").await;
    backend.shutdown().await;
}

#[tokio::test]
async fn start_errors_are_typed() {
    // A profile for an embedded runtime the backend does not have.
    let err = Backend::builder()
        .listener(loopback().await)
        .embedded_profile("count", Profile::custom(Count))
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StartError::NoEmbeddedRuntime { profile } if profile == "count"),
        "{err}"
    );
    assert_eq!(err.code(), "no_embedded_runtime");

    // Profiles a configuration file would refuse.
    let err = Backend::from_settings(BackendSettings::defaults())
        .listener(loopback().await)
        .embedded_profile("two words", Profile::custom(Count))
        .start()
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.exit_code()),
        ("invalid_profile", 2),
        "{err}"
    );
    let err = RuntimeServer::builder()
        .listener(loopback().await)
        .profile("echo", Profile::custom(Count))
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StartError::InvalidProfile { name, .. } if name == "echo"),
        "{err}"
    );

    // A source under the embedded runtime's id.
    let (_, clash) = jobs_runtime("local").await;
    let err = Backend::from_settings(BackendSettings::defaults())
        .listener(loopback().await)
        .runtime(clash)
        .start()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "duplicate_runtime_id", "{err}");
    assert!(err.to_string().contains("local"), "{err}");

    // A port in use.
    let taken = loopback().await;
    let addr = taken.local_addr().unwrap();
    let err = Backend::builder().listen(addr).start().await.unwrap_err();
    assert!(
        matches!(err, StartError::Listen { addr: a, .. } if a == addr),
        "{err}"
    );
    assert_eq!(err.exit_code(), 1);

    // Every address without authentication: refused, whether bound by the builder
    // or given as a listener.
    let open = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = Backend::builder().listener(open).start().await.unwrap_err();
    assert_eq!(err.code(), "open_listen", "{err}");
    let open = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = RuntimeServer::builder()
        .listener(open)
        .start()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "open_listen", "{err}");
    // A runtime beyond loopback with a token too short to stand guessing.
    let mut weak = RuntimeServer::builder().listener(TcpListener::bind("0.0.0.0:0").await.unwrap());
    weak.settings_mut().tokens = vec![switchyard_transport::SecretToken::new("short").unwrap()];
    let err = weak.start().await.unwrap_err();
    assert_eq!(err.code(), "invalid_config", "{err}");
    assert!(err.to_string().contains("at least 16 characters"), "{err}");
    assert!(
        err.to_string()
            .starts_with("settings given in code: invalid value for `tokens`"),
        "named as set in code: {err}"
    );
    // ... unless the backend is open on purpose.
    let open = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let backend = Backend::builder()
        .listener(open)
        .auth(AuthSettings::Open)
        .start()
        .await
        .unwrap();
    backend.shutdown().await;
}

#[tokio::test]
async fn a_backend_from_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backend.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:0\"\n[embedded]\nruntime_id = \"here\"\n\
         [embedded.profiles.shout]\nkind = \"echo\"\n",
    )
    .unwrap();
    let (_, registered) = jobs_runtime("jobs").await;
    let backend = Backend::from_config_file(&path)
        .unwrap()
        .runtime(registered)
        .start()
        .await
        .unwrap();
    let api = api(&backend);
    assert_eq!(ids(&api.get("/api/runtimes").await), ["here", "jobs"]);
    backend.shutdown().await;

    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nlisten_to = 1\n").unwrap();
    let err = Backend::from_config_file(&path).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{err}");
    let err = StartError::from(err);
    assert_eq!((err.code(), err.exit_code()), ("invalid_config", 2));
}

/// A reload reads the file again, and keeps what was added in code: the runtimes
/// (the file cannot name them) and the policy (made again around the one the
/// reload picks).
#[tokio::test]
async fn a_reload_keeps_the_runtimes_and_the_policy_added_in_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backend.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:0\"\n[embedded]\nruntime_id = \"here\"\n",
    )
    .unwrap();
    let (jobs, registered) = jobs_runtime("jobs").await;
    let wraps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = wraps.clone();
    let backend = Backend::from_config_file(&path)
        .unwrap()
        .runtime(registered)
        .wrap_policy(move |inner| {
            counted.fetch_add(1, Ordering::SeqCst);
            Arc::new(NoDeletes(inner))
        })
        .start()
        .await
        .unwrap();
    let api = api(&backend);
    assert_eq!(ids(&api.get("/api/runtimes").await), ["here", "jobs"]);
    let created = api
        .post("/api/runtimes/jobs/workers", json!({"profile": "echo"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let worker = created.json["worker_id"].as_str().unwrap().to_owned();

    // The file drops the embedded runtime: only it goes.
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\n").unwrap();
    let reloaded = api.post("/api/admin/reload", json!({})).await;
    assert_eq!(reloaded.status, StatusCode::OK, "{}", reloaded.text());
    assert_eq!(reloaded.json["runtimes"]["removed"], json!(["here"]));
    assert_eq!(reloaded.json["runtimes"]["unchanged"], json!(["jobs"]));
    assert_eq!(ids(&api.get("/api/runtimes").await), ["jobs"]);
    assert!(
        wraps.load(Ordering::SeqCst) >= 2,
        "the reload wrapped its policy too"
    );

    // The code's runtime still serves its workers, and the code's policy still decides.
    let path = format!("/api/runtimes/jobs/workers/{worker}");
    assert_eq!(api.get(&path).await.status, StatusCode::OK);
    let refused = api.call(http::Method::DELETE, &path, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    assert_eq!(
        refused.json["error"]["message"],
        "workers are kept here; stop them instead"
    );
    assert_eq!(jobs.list(&Default::default()).unwrap().workers.len(), 1);

    // A file that takes the id of the runtime added in code changes nothing.
    std::fs::write(
        dir.path().join("backend.toml"),
        "listen = \"127.0.0.1:0\"\n[embedded]\nruntime_id = \"jobs\"\n",
    )
    .unwrap();
    let message = reload_refused(&api).await;
    assert!(
        message.contains("embedded.runtime_id") && message.contains("added in code"),
        "{message}"
    );
    assert_eq!(ids(&api.get("/api/runtimes").await), ["jobs"]);
    backend.shutdown().await;
}

/// What was set in code besides runtimes and policy is kept by a reload too: the
/// embedded runtime's profiles added in code and the listener the program bound
/// (the file's default `listen` is not "changed"). A file that drops the embedded
/// runtime those profiles need is refused and changes nothing.
#[tokio::test]
async fn a_reload_keeps_the_profiles_and_the_listener_set_in_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backend.toml");
    // No `listen`: the file's would be the default, 127.0.0.1:7700.
    std::fs::write(&path, "[embedded]\nruntime_id = \"here\"\n").unwrap();
    let backend = Backend::from_config_file(&path)
        .unwrap()
        .listener(loopback().await)
        .embedded_profile("count", Profile::custom(Count))
        .start()
        .await
        .unwrap();
    let api = api(&backend);
    let create_count = || api.post("/api/runtimes/here/workers", json!({"profile": "count"}));
    assert_eq!(create_count().await.status, StatusCode::CREATED);

    let reloaded = api.post("/api/admin/reload", json!({})).await;
    assert_eq!(reloaded.status, StatusCode::OK, "{}", reloaded.text());
    assert_eq!(
        reloaded.json["restart_required"],
        json!([]),
        "{}",
        reloaded.json
    );
    assert_eq!(reloaded.json["runtimes"]["unchanged"], json!(["here"]));
    let created = create_count().await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());

    // A change to the embedded runtime keeps the code's profile beside the file's.
    std::fs::write(
        &path,
        "[embedded]\nruntime_id = \"here\"\n[embedded.profiles.shout]\nkind = \"echo\"\n",
    )
    .unwrap();
    let reloaded = api.post("/api/admin/reload", json!({})).await;
    assert_eq!(reloaded.status, StatusCode::OK, "{}", reloaded.text());
    assert_eq!(create_count().await.status, StatusCode::CREATED);
    let shout = api
        .post("/api/runtimes/here/workers", json!({"profile": "shout"}))
        .await;
    assert_eq!(shout.status, StatusCode::CREATED, "{}", shout.text());

    std::fs::write(&path, "").unwrap();
    let message = reload_refused(&api).await;
    assert!(
        message.contains("\"count\"") && message.contains("embedded"),
        "{message}"
    );
    assert_eq!(
        create_count().await.status,
        StatusCode::CREATED,
        "nothing changed"
    );
    backend.shutdown().await;
}

/// Authentication set in code is kept by a reload: a file without `[auth]` does
/// not turn it off.
#[tokio::test]
async fn a_reload_keeps_the_authentication_set_in_code() {
    use switchyard_registry::{Role, RuntimeGrants, WorkerScope};
    use switchyard_server::auth::{Clock, TokenEntry, TokenHash};
    use switchyard_server::config::TokenAuthSettings;

    const ADMIN: &str = "admin-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backend.toml");
    std::fs::write(&path, "[embedded]\nruntime_id = \"here\"\n").unwrap();
    let backend = Backend::from_config_file(&path)
        .unwrap()
        .listener(loopback().await)
        .auth(AuthSettings::Tokens(TokenAuthSettings {
            tokens: vec![TokenEntry {
                name: "root".into(),
                hash: TokenHash::of(ADMIN),
                role: Role::Admin,
                runtimes: RuntimeGrants::All,
                workers: WorkerScope::All,
            }],
            session_key: None,
            session_ttl: Duration::from_secs(3600),
            signed_out_file: None,
            clock: Clock::system(),
        }))
        .start()
        .await
        .unwrap();
    let anonymous = api(&backend);
    let admin = Api {
        addr: backend.local_addr(),
        token: Some(ADMIN.into()),
    };
    assert_eq!(
        anonymous.get("/api/runtimes").await.status,
        StatusCode::UNAUTHORIZED
    );
    let reloaded = admin.post("/api/admin/reload", json!({})).await;
    assert_eq!(reloaded.status, StatusCode::OK, "{}", reloaded.text());
    assert_eq!(
        anonymous.get("/api/runtimes").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(admin.get("/api/runtimes").await.status, StatusCode::OK);
    backend.shutdown().await;
}

/// Profiles of an embedded runtime set in code with `embedded(...)` are checked
/// as a file's are.
#[tokio::test]
async fn profiles_of_an_embedded_runtime_set_in_code_are_checked() {
    let mut runtime = RuntimeConfig::new(rid("here"), "Here");
    runtime
        .profiles
        .insert("two words".to_owned(), Profile::echo());
    let err = Backend::builder()
        .listener(loopback().await)
        .embedded(switchyard_server::config::EmbeddedSettings::new(runtime))
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StartError::InvalidProfile { name, .. } if name == "two words"),
        "{err}"
    );
}

/// `serve` with a configuration source reloads it on SIGHUP, as `switchyard serve`
/// does (without a handler, SIGHUP would end this test's process).
#[tokio::test]
async fn serve_reloads_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backend.toml");
    std::fs::write(&path, "[embedded]\nruntime_id = \"here\"\n").unwrap();
    let listener = loopback().await;
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(
        Backend::from_config_file(&path)
            .unwrap()
            .listener(listener)
            .serve(async {
                let _ = stopped.await;
            }),
    );
    let api = Api { addr, token: None };
    // The handler is in place once the process catches SIGHUP (bit 1 of SigCgt).
    let deadline = tokio::time::Instant::now() + WAIT;
    while !catches_sighup() {
        assert!(tokio::time::Instant::now() < deadline, "no SIGHUP handler");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let display_name = || async {
        let runtimes = api.get("/api/runtimes").await;
        runtimes.json["runtimes"][0]["display_name"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(display_name().await, "This machine");
    std::fs::write(
        &path,
        "[embedded]\nruntime_id = \"here\"\ndisplay_name = \"Renamed\"\n",
    )
    .unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    while display_name().await != "Renamed" {
        assert!(tokio::time::Instant::now() < deadline, "not reloaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, serving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// True when this process has a handler for SIGHUP (`/proc/self/status`).
fn catches_sighup() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let caught = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .unwrap();
    caught & 1 != 0
}

#[tokio::test]
async fn serve_runs_until_the_shutdown_future_resolves() {
    let listener = loopback().await;
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(
        Backend::from_settings(BackendSettings::defaults())
            .listener(listener)
            .serve(async {
                let _ = stopped.await;
            }),
    );
    let api = Api { addr, token: None };
    let deadline = tokio::time::Instant::now() + WAIT;
    while api.get("/healthz").await.status != StatusCode::OK {
        assert!(tokio::time::Instant::now() < deadline, "never served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!serving.is_finished());
    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, serving)
        .await
        .expect("serve returns after the shutdown future")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port is closed"
    );
}

#[tokio::test]
async fn a_runtime_server_serves_custom_profiles_to_a_backend() {
    let runtime = RuntimeServer::builder()
        .listener(loopback().await)
        .runtime_config(RuntimeConfig::new(rid("counting"), "Counting"))
        .profile("count", Profile::custom(Count))
        .token(switchyard_transport::SecretToken::new("runtime-secret").unwrap())
        .start()
        .await
        .unwrap();
    let v1 = Api {
        addr: runtime.local_addr(),
        token: Some("runtime-secret".into()),
    };
    let info = v1.get("/v1/runtime").await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.text());
    assert_eq!(info.json["runtime_id"], "counting");
    assert!(
        info.json["profiles"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "count", "kind": "count", "description": null})),
        "{}",
        info.json
    );

    // A backend reaches it as a remote, and the custom kind passes through.
    let mut settings = BackendSettings::defaults();
    settings.embedded = None;
    let mut far = switchyard_server::config::RemoteSettings::new(
        rid("far"),
        runtime.url(),
        switchyard_transport::SecretToken::new("runtime-secret").unwrap(),
    );
    far.display_name = "Far".into();
    settings.remotes.push(far);
    let backend = Backend::from_settings(settings)
        .listener(loopback().await)
        .start()
        .await
        .unwrap();
    let api = api(&backend);
    let request = CreateWorkerRequest {
        profile: "count".into(),
        label: None,
        owner: None,
    };
    let created = api
        .post(
            "/api/runtimes/far/workers",
            json!({"profile": request.profile}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let path = format!(
        "/api/runtimes/far/workers/{}",
        created.json["worker_id"].as_str().unwrap()
    );
    api.post(&format!("{path}/input"), json!({"text": "abc"}))
        .await;
    wait_transcript(&api, &path, |item| item["text"] == "3 bytes\n").await;
    backend.shutdown().await;
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_source_added_in_code_is_shut_down_with_the_backend() {
    /// Counts shutdowns; otherwise the embedded runtime it wraps.
    struct Watched(EmbeddedSource, Arc<AtomicBool>);

    #[async_trait::async_trait]
    impl RuntimeSource for Watched {
        fn kind(&self) -> switchyard_protocol::RuntimeSourceKind {
            self.0.kind()
        }
        async fn info(
            &self,
        ) -> Result<switchyard_protocol::RuntimeInfo, switchyard_registry::SourceError> {
            self.0.info().await
        }
        async fn list_workers(
            &self,
            query: &switchyard_transport::WorkerQuery,
        ) -> Result<switchyard_protocol::WorkerList, switchyard_registry::SourceError> {
            self.0.list_workers(query).await
        }
        async fn create_worker(
            &self,
            request: &CreateWorkerRequest,
        ) -> Result<switchyard_protocol::WorkerDetail, switchyard_registry::SourceError> {
            self.0.create_worker(request).await
        }
        async fn get_worker(
            &self,
            worker: &switchyard_protocol::WorkerId,
        ) -> Result<switchyard_protocol::WorkerDetail, switchyard_registry::SourceError> {
            self.0.get_worker(worker).await
        }
        async fn input(
            &self,
            worker: &switchyard_protocol::WorkerId,
            text: String,
        ) -> Result<switchyard_protocol::InputAccepted, switchyard_registry::SourceError> {
            self.0.input(worker, text).await
        }
        async fn resize(
            &self,
            worker: &switchyard_protocol::WorkerId,
            size: switchyard_protocol::ResizeRequest,
        ) -> Result<switchyard_protocol::ResizeResponse, switchyard_registry::SourceError> {
            self.0.resize(worker, size).await
        }
        async fn cancel(
            &self,
            worker: &switchyard_protocol::WorkerId,
        ) -> Result<switchyard_protocol::WorkerStatusResponse, switchyard_registry::SourceError>
        {
            self.0.cancel(worker).await
        }
        async fn stop(
            &self,
            worker: &switchyard_protocol::WorkerId,
        ) -> Result<switchyard_protocol::WorkerStatusResponse, switchyard_registry::SourceError>
        {
            self.0.stop(worker).await
        }
        async fn delete(
            &self,
            worker: &switchyard_protocol::WorkerId,
        ) -> Result<(), switchyard_registry::SourceError> {
            self.0.delete(worker).await
        }
        async fn transcript(
            &self,
            worker: &switchyard_protocol::WorkerId,
            after: u64,
            limit: Option<u32>,
        ) -> Result<switchyard_protocol::TranscriptPage, switchyard_registry::SourceError> {
            self.0.transcript(worker, after, limit).await
        }
        async fn subscribe(
            &self,
            worker: &switchyard_protocol::WorkerId,
            resume: Option<&switchyard_registry::ResumePoint>,
        ) -> Result<Box<dyn switchyard_registry::SourceEvents>, switchyard_registry::SourceError>
        {
            self.0.subscribe(worker, resume).await
        }
        async fn shutdown(&self) {
            self.1.store(true, Ordering::SeqCst);
        }
    }

    let (runtime, _) = jobs_runtime("watched").await;
    let down = Arc::new(AtomicBool::new(false));
    let source = Arc::new(Watched(EmbeddedSource::new(runtime), down.clone()));
    let backend = Backend::builder()
        .listener(loopback().await)
        .runtime(RegisteredRuntime::new(rid("watched"), "Watched", source))
        .start()
        .await
        .unwrap();
    assert_eq!(ids(&api(&backend).get("/api/runtimes").await), ["watched"]);
    assert!(!down.load(Ordering::SeqCst));
    backend.shutdown().await;
    assert!(down.load(Ordering::SeqCst), "shutdown reached the source");
}
