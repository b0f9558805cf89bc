//! TLS on every hop, with the real binary and certificates minted at test time:
//!
//! - REST calls, worker creation, input and the event WebSocket through the backend
//!   to a TLS runtime, and to an mTLS runtime (verified by `tls_server_name`);
//! - a backend without a client certificate against an mTLS runtime, and runtime
//!   certificates for another name, from another CA, or expired: each
//!   `502 runtime_tls_failed` (state `tls_failed`) within the connect timeout, with
//!   no address, port, name or token in any answer or frame;
//! - the backend's own HTTPS listener (curl with `--cacert`; plain HTTP refused;
//!   client certificates with `client_ca_file`; the session cookie marked `Secure`);
//! - plain `http://` to another host needs `insecure_http = true`, and warns;
//! - the runtime re-reading its TLS files on SIGHUP;
//! - a warning at start and on SIGHUP for a certificate of the process's own that
//!   has expired, is not valid yet or ends within 14 days.
//!
//! The tests in this file run one at a time: each starts two to four processes.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use http::Method;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use switchyard_e2e::WAIT;
use switchyard_e2e::certs::{Ca, Leaf, Validity, client_config, server_name};
use switchyard_e2e::client::{Api, TestResponse, TestTls, request_tls};
use switchyard_e2e::proc::{Switchyard, wait_for_log_line};
use switchyard_e2e::ws::{Ws, connect, connect_tls, next_json};
use tokio::io::{AsyncBufReadExt, BufReader};

const TOKEN: &str = "tls-e2e-token-8c2f1d07";
/// The remotes' connect timeout: every TLS failure must come back within it.
const CONNECT_MS: u64 = 1500;
/// Slack beyond it, for a busy 2-core machine.
const MARGIN: Duration = Duration::from_secs(3);

/// One test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------
// Certificates and files.
// ---------------------------------------------------------------------------------

/// A directory with a runtimes CA, a backends CA (for client certificates), the
/// backend's client certificate and the token file.
struct Pki {
    dir: tempfile::TempDir,
    runtimes: Ca,
    backends: Ca,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = Self {
            dir,
            runtimes: Ca::new("Runtimes CA"),
            backends: Ca::new("Backends CA"),
        };
        pki.runtimes.write(pki.dir.path(), "runtimes-ca");
        pki.backends.write(pki.dir.path(), "backends-ca");
        pki.backends
            .client("backend-1")
            .write(pki.dir.path(), "backend-client");
        std::fs::write(pki.dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn show(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Writes `leaf` as `<name>.crt` / `<name>.key`.
    fn write(&self, name: &str, leaf: &Leaf) {
        leaf.write(self.dir.path(), name);
    }

    /// A client that trusts the runtimes CA and verifies `name`.
    fn trust(&self, name: &str) -> TestTls {
        TestTls {
            config: client_config(&self.runtimes, None),
            server_name: server_name(name),
        }
    }
}

/// A `switchyard runtime` over TLS with the certificate `<cert>.crt`, requiring
/// client certificates from the backends CA when `mtls`.
async fn start_runtime(pki: &Pki, id: &str, cert: &str, mtls: bool) -> Switchyard {
    let mut config = format!(
        "runtime_id = \"{id}\"\n\n[tls]\ncert_file = \"{cert}.crt\"\nkey_file = \"{cert}.key\"\n"
    );
    if mtls {
        config.push_str("client_ca_file = \"backends-ca.crt\"\n");
    }
    let file = format!("runtime-{id}.toml");
    std::fs::write(pki.path(&file), config).unwrap();
    let runtime = Switchyard::start(
        &[
            "runtime",
            "--listen",
            "127.0.0.1:0",
            "--config",
            &pki.show(&file),
            "--token-file",
            &pki.show("token"),
        ],
        &[],
    )
    .await;
    assert!(runtime.https, "a runtime with [tls] says https://");
    runtime
}

/// One `[[remote]]` of the backend.
struct RemoteSpec<'a> {
    id: &'a str,
    /// `https://127.0.0.1:PORT`.
    url: String,
    /// Present the backend's client certificate.
    client_cert: bool,
    /// Verify this name instead of the URL's IP address.
    server_name: Option<&'a str>,
}

impl<'a> RemoteSpec<'a> {
    fn new(id: &'a str, runtime: &Switchyard) -> Self {
        Self {
            id,
            url: format!("https://{}", runtime.addr),
            client_cert: false,
            server_name: None,
        }
    }

    fn with_client_cert(mut self) -> Self {
        self.client_cert = true;
        self
    }

    fn verifying(mut self, name: &'a str) -> Self {
        self.server_name = Some(name);
        self
    }

    fn toml(&self) -> String {
        let mut text = format!(
            "\n[[remote]]\nruntime_id = \"{}\"\nbase_url = \"{}\"\ntoken_file = \"token\"\n\
             ca_file = \"runtimes-ca.crt\"\nconnect_timeout_ms = {CONNECT_MS}\nrequest_timeout_ms = 20000\n",
            self.id, self.url
        );
        if self.client_cert {
            text.push_str("client_cert_file = \"backend-client.crt\"\nclient_key_file = \"backend-client.key\"\n");
        }
        if let Some(name) = self.server_name {
            text.push_str(&format!("tls_server_name = \"{name}\"\n"));
        }
        text
    }
}

/// A `switchyard serve` with `head` at the top of its config and `remotes`.
async fn start_backend(pki: &Pki, head: &str, remotes: &[RemoteSpec<'_>]) -> Switchyard {
    start_backend_logged(pki, head, remotes, None).await
}

/// [`start_backend`], its standard error written to `log` when given.
async fn start_backend_logged(
    pki: &Pki,
    head: &str,
    remotes: &[RemoteSpec<'_>],
    log: Option<&std::path::Path>,
) -> Switchyard {
    let mut config = format!("health_interval_ms = 300\n{head}\n");
    for remote in remotes {
        config.push_str(&remote.toml());
    }
    std::fs::write(pki.path("backend.toml"), config).unwrap();
    let config = pki.show("backend.toml");
    let args = ["serve", "--config", &config, "--listen", "127.0.0.1:0"];
    match log {
        Some(log) => Switchyard::start_logged(&args, &[], log).await,
        None => Switchyard::start(&args, &[]).await,
    }
}

// ---------------------------------------------------------------------------------
// What a client must never see.
// ---------------------------------------------------------------------------------

/// Strings that may appear in no answer or frame a backend client gets.
struct Secrets(Vec<String>);

impl Secrets {
    fn new(pki: &Pki, runtimes: &[&Switchyard], names: &[&str]) -> Self {
        let mut needles = vec![
            TOKEN.to_owned(),
            pki.dir.path().display().to_string(),
            "runtimes-ca".to_owned(),
            "backend-client".to_owned(),
        ];
        for runtime in runtimes {
            needles.push(runtime.addr.to_string());
            needles.push(format!(":{}", runtime.addr.port()));
        }
        needles.extend(names.iter().map(|n| (*n).to_owned()));
        Self(needles)
    }

    fn check(&self, what: &str, text: &str) {
        for needle in &self.0 {
            assert!(
                !text.contains(needle.as_str()),
                "{what} holds {needle:?}: {text}"
            );
        }
    }

    fn answer(&self, what: &str, answer: &TestResponse) {
        let mut head = String::new();
        for (name, value) in &answer.headers {
            head.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        self.check(what, &format!("{head}\n{}", answer.text()));
    }
}

// ---------------------------------------------------------------------------------
// Backend calls.
// ---------------------------------------------------------------------------------

async fn runtime_view(api: &Api, id: &str) -> Value {
    let answer = api.get(&format!("/api/runtimes/{id}")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json
}

async fn wait_state(api: &Api, id: &str, state: &str, secrets: &Secrets) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let view = runtime_view(api, id).await;
        secrets.check("runtime view", &view.to_string());
        if view["state"] == state {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never became {state}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The next event frame of `kind`, skipping others, each checked for secrets.
async fn next_event(ws: &mut Ws, kind: &str, secrets: &Secrets) -> Value {
    loop {
        let frame = next_json(ws).await;
        secrets.check("event frame", &frame.to_string());
        if frame["type"] == "event" && frame["event"]["kind"] == kind {
            return frame;
        }
    }
}

/// Creates an echo worker on `rt` through the backend, watches it, sends input and
/// sees it come back as an event and in the transcript, then stops it.
async fn drive_a_worker(api: &Api, rt: &str, secrets: &Secrets) {
    let created = api
        .post(
            &format!("/api/runtimes/{rt}/workers"),
            json!({"profile": "echo"}),
        )
        .await;
    secrets.answer("create", &created);
    assert_eq!(created.status, 201, "{rt}: {}", created.text());
    assert_eq!(created.json["runtime_id"], rt);
    let worker = created.json["worker_id"].as_str().unwrap().to_owned();
    let base = format!("/api/runtimes/{rt}/workers/{worker}");

    let mut ws = connect(api.addr, &format!("{base}/events/ws"), &[])
        .await
        .unwrap_or_else(|e| panic!("{rt}: the event WebSocket: {e}"));
    let snapshot = next_event(&mut ws, "snapshot", secrets).await;
    assert_eq!(snapshot["runtime_id"], rt);

    let accepted = api
        .post(&format!("{base}/input"), json!({"text": "across TLS"}))
        .await;
    secrets.answer("input", &accepted);
    assert_eq!(accepted.status, 202, "{rt}: {}", accepted.text());
    let output = next_event(&mut ws, "output", secrets).await;
    assert_eq!(output["event"]["text"], "across TLS");

    let transcript = api.get(&format!("{base}/transcript")).await;
    secrets.answer("transcript", &transcript);
    assert_eq!(transcript.status, 200);
    let texts: Vec<&str> = transcript.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["text"].as_str())
        .collect();
    assert!(texts.contains(&"across TLS"), "{rt}: {texts:?}");

    let list = api.get(&format!("/api/runtimes/{rt}/workers")).await;
    secrets.answer("list", &list);
    assert!(list.text().contains(&worker), "{rt}: {}", list.text());
    let stopped = api.call(Method::POST, &format!("{base}/stop"), None).await;
    secrets.answer("stop", &stopped);
    assert_eq!(stopped.status, 200, "{rt}: {}", stopped.text());
}

/// Asserts `answer` is `502 runtime_tls_failed` naming `rt` and saying `kind`.
fn assert_tls_failed(answer: &TestResponse, rt: &str, kind: &str) {
    assert_eq!(answer.status, 502, "{rt}: {}", answer.text());
    assert_eq!(
        answer.code(),
        "runtime_tls_failed",
        "{rt}: {}",
        answer.text()
    );
    assert_eq!(answer.json["error"]["runtime_id"], rt);
    let message = answer.json["error"]["message"].as_str().unwrap();
    assert!(message.contains(kind), "{rt}: {message}");
}

// ---------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_create_input_and_events_through_the_backend_to_tls_and_mtls_runtimes() {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new();
    pki.write("rt-ip", &pki.runtimes.server(&["127.0.0.1"]));
    pki.write("rt-named", &pki.runtimes.server(&["runtime-b.test"]));
    let tls = start_runtime(&pki, "edge-tls", "rt-ip", false).await;
    let mtls = start_runtime(&pki, "edge-mtls", "rt-named", true).await;
    let backend = start_backend(
        &pki,
        "",
        &[
            RemoteSpec::new("tls", &tls),
            RemoteSpec::new("mtls", &mtls)
                .with_client_cert()
                .verifying("runtime-b.test"),
        ],
    )
    .await;
    let api = Api {
        addr: backend.addr,
        token: None,
    };
    let secrets = Secrets::new(&pki, &[&tls, &mtls], &["runtime-b.test"]);
    for rt in ["tls", "mtls"] {
        let view = wait_state(&api, rt, "ready", &secrets).await;
        assert_eq!(view["source"], "remote");
        drive_a_worker(&api, rt, &secrets).await;
    }
    let all = api.get("/api/workers").await;
    secrets.answer("all workers", &all);
    assert_eq!(all.json["unavailable"], json!([]), "{}", all.text());
    assert_eq!(all.json["workers"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtls_runtime_refuses_a_backend_without_a_client_certificate() {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new();
    pki.write("rt", &pki.runtimes.server(&["127.0.0.1"]));
    let runtime = start_runtime(&pki, "edge-mtls", "rt", true).await;
    let backend = start_backend(&pki, "", &[RemoteSpec::new("mtls", &runtime)]).await;
    let api = Api {
        addr: backend.addr,
        token: None,
    };
    let secrets = Secrets::new(&pki, &[&runtime], &[]);
    let view = wait_state(&api, "mtls", "tls_failed", &secrets).await;
    assert_eq!(view["last_error"]["code"], "runtime_tls_failed", "{view}");
    assert!(
        view["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("client_certificate_refused"),
        "{view}"
    );

    let created = api
        .post("/api/runtimes/mtls/workers", json!({"profile": "echo"}))
        .await;
    secrets.answer("create", &created);
    assert_tls_failed(&created, "mtls", "client_certificate_refused");
    let listed = api.get("/api/runtimes/mtls/workers").await;
    secrets.answer("list", &listed);
    assert_tls_failed(&listed, "mtls", "client certificate");
    let all = api.get("/api/workers").await;
    secrets.answer("all workers", &all);
    assert_eq!(
        all.json["unavailable"][0]["runtime_id"],
        "mtls",
        "{}",
        all.text()
    );
    assert_eq!(
        all.json["unavailable"][0]["error"]["code"],
        "runtime_tls_failed",
        "{}",
        all.text()
    );
    // The event WebSocket is refused before the upgrade, with the same error.
    match connect(api.addr, "/api/runtimes/mtls/workers/w-1/events/ws", &[]).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 502);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            secrets.check("WebSocket refusal", &body);
            assert!(body.contains("runtime_tls_failed"), "{body}");
        }
        Err(other) => panic!("unexpected WebSocket failure: {other}"),
        Ok(mut ws) => {
            let frame = next_json(&mut ws).await;
            secrets.check("upstream frame", &frame.to_string());
            assert_eq!(frame["error"]["code"], "runtime_tls_failed", "{frame}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_name_foreign_ca_and_expired_certificates_fail_within_the_connect_timeout() {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new();
    let foreign = Ca::new("Foreign CA");
    pki.write("wrong-name", &pki.runtimes.server(&["elsewhere.test"]));
    pki.write("foreign", &foreign.server(&["127.0.0.1"]));
    pki.write(
        "expired",
        &pki.runtimes.server_with(&["127.0.0.1"], Validity::Expired),
    );
    let cases = [
        ("wrongname", "wrong-name", "name_mismatch"),
        ("foreign", "foreign", "untrusted_certificate"),
        ("expired", "expired", "expired_certificate"),
    ];
    let mut runtimes = Vec::new();
    for (id, cert, _) in cases {
        runtimes.push(start_runtime(&pki, id, cert, false).await);
    }
    let remotes: Vec<RemoteSpec<'_>> = cases
        .iter()
        .zip(&runtimes)
        .map(|((id, _, _), runtime)| RemoteSpec::new(id, runtime))
        .collect();
    let backend = start_backend(&pki, "", &remotes).await;
    let api = Api {
        addr: backend.addr,
        token: None,
    };
    let refs: Vec<&Switchyard> = runtimes.iter().collect();
    let secrets = Secrets::new(&pki, &refs, &["elsewhere.test"]);
    for (id, _, kind) in cases {
        let started = Instant::now();
        let created = api
            .post(
                &format!("/api/runtimes/{id}/workers"),
                json!({"profile": "echo"}),
            )
            .await;
        let elapsed = started.elapsed();
        secrets.answer("create", &created);
        assert_tls_failed(&created, id, kind);
        assert!(
            elapsed < Duration::from_millis(CONNECT_MS) + MARGIN,
            "{id}: {elapsed:?}, beyond the {CONNECT_MS} ms connect timeout"
        );
        let view = wait_state(&api, id, "tls_failed", &secrets).await;
        assert_eq!(view["last_error"]["code"], "runtime_tls_failed");
        let detail = api.get(&format!("/api/runtimes/{id}/workers/w-1")).await;
        secrets.answer("detail", &detail);
        assert_tls_failed(&detail, id, kind);
    }
    let all = api.get("/api/runtimes").await;
    secrets.answer("runtimes", &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backends_own_https_listener_answers_curl_and_refuses_plain_http() {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new();
    pki.write(
        "backend-listener",
        &pki.runtimes.server(&["localhost", "127.0.0.1"]),
    );
    let backend = start_backend(
        &pki,
        "[embedded]\nruntime_id = \"local\"\n\n[tls]\ncert_file = \"backend-listener.crt\"\nkey_file = \"backend-listener.key\"\n",
        &[],
    )
    .await;
    assert!(backend.https, "the first line says https://");
    let port = backend.addr.port();
    let https = format!("https://localhost:{port}/api/runtimes");

    let (code, out) = curl(&["--cacert", &pki.show("runtimes-ca.crt"), &https]).await;
    assert_eq!(code, 0, "curl --cacert: {out}");
    assert!(out.contains("\"local\""), "{out}");
    let (code, out) = curl(&[&https]).await;
    assert_eq!(code, 60, "without --cacert curl must not trust it: {out}");
    let (code, out) = curl(&[
        "-w",
        "\\n%{http_code}",
        &format!("http://127.0.0.1:{port}/api/runtimes"),
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("400"), "plain HTTP must get a 400: {out}");
    assert!(
        out.contains("HTTPS only") && !out.contains("\"local\""),
        "{out}"
    );

    // The event WebSocket over WSS, through the backend's own TLS.
    let tls = pki.trust("localhost");
    let api = Api {
        addr: backend.addr,
        token: None,
    }
    .with_tls(tls.clone());
    let created = api
        .post("/api/runtimes/local/workers", json!({"profile": "echo"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let worker = created.json["worker_id"].as_str().unwrap();
    let mut ws = connect_tls(
        &tls,
        backend.addr,
        &format!("/api/runtimes/local/workers/{worker}/events/ws"),
        // The backend's own origin, over TLS.
        &[("origin", &format!("https://{}", backend.addr))],
    )
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws).await["event"]["kind"], "snapshot");
}

/// A client token of the backend with auth on, and its SHA-256 (hex).
const CLIENT_TOKEN: &str = "tls-e2e-client-token-51c3";
const CLIENT_TOKEN_SHA256: &str =
    "8b28e110d3f5a80cd12cf802ffbb20effd1121738cf870d213bd7dcdbd9102fb";

/// The attributes of a `Set-Cookie` answer, lower-cased, without the value.
fn cookie_attributes(answer: &TestResponse) -> Vec<String> {
    let set = answer
        .headers
        .get(http::header::SET_COOKIE)
        .unwrap_or_else(|| panic!("no Set-Cookie: {}", answer.text()))
        .to_str()
        .unwrap();
    set.split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_when_the_backend_serves_https() {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new();
    pki.write(
        "backend-listener",
        &pki.runtimes.server(&["localhost", "127.0.0.1"]),
    );
    let auth = format!(
        "[auth]\n\n[[auth.token]]\nname = \"olga\"\ntoken_sha256 = \"{CLIENT_TOKEN_SHA256}\"\nrole = \"operator\"\n"
    );
    let login_body = json!({ "token": CLIENT_TOKEN }).to_string().into_bytes();
    let json_type = [("content-type", "application/json")];

    // Over HTTPS: `Secure` on the sign-in cookie and on the one that clears it.
    let backend = start_backend(
        &pki,
        &format!(
            "[embedded]\n\n[tls]\ncert_file = \"backend-listener.crt\"\nkey_file = \"backend-listener.key\"\n\n{auth}"
        ),
        &[],
    )
    .await;
    assert!(backend.https);
    let tls = pki.trust("localhost");
    let page = request_tls(&tls, backend.addr, Method::GET, "/", None, &[]).await;
    assert_eq!(
        page.status, 200,
        "the console's sign-in page loads over HTTPS"
    );
    let login = request_tls(
        &tls,
        backend.addr,
        Method::POST,
        "/api/session",
        Some(login_body.clone()),
        &json_type,
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text());
    assert_eq!(login.json["auth"], true);
    let attributes = cookie_attributes(&login);
    for wanted in ["secure", "httponly", "samesite=strict", "path=/"] {
        assert!(
            attributes.iter().any(|a| a == wanted),
            "{wanted} in {attributes:?}"
        );
    }
    let set = login.headers[http::header::SET_COOKIE].to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_owned();
    let who = request_tls(
        &tls,
        backend.addr,
        Method::GET,
        "/api/session",
        None,
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(who.status, 200, "{}", who.text());
    assert_eq!(who.json["name"], "olga");
    let logout = request_tls(
        &tls,
        backend.addr,
        Method::DELETE,
        "/api/session",
        None,
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(logout.status, 204);
    assert!(cookie_attributes(&logout).iter().any(|a| a == "secure"));
    backend.signal(Signal::SIGTERM);
    assert_eq!(backend.wait().await.code(), Some(0));

    // The same backend over plain HTTP: no `Secure` (the browser would never send
    // such a cookie back over http://).
    let backend = start_backend(&pki, &format!("[embedded]\n\n{auth}"), &[]).await;
    assert!(!backend.https);
    let login = switchyard_e2e::client::request(
        backend.addr,
        Method::POST,
        "/api/session",
        Some(login_body),
        &json_type,
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text());
    let attributes = cookie_attributes(&login);
    assert!(attributes.iter().any(|a| a == "httponly"), "{attributes:?}");
    assert!(!attributes.iter().any(|a| a == "secure"), "{attributes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backends_listener_with_client_ca_file_requires_a_client_certificate() {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new();
    pki.write("backend-listener", &pki.runtimes.server(&["localhost"]));
    let backend = start_backend(
        &pki,
        "[embedded]\n\n[tls]\ncert_file = \"backend-listener.crt\"\nkey_file = \"backend-listener.key\"\nclient_ca_file = \"backends-ca.crt\"\n",
        &[],
    )
    .await;
    let url = format!("https://localhost:{}/healthz", backend.addr.port());
    let ca = pki.show("runtimes-ca.crt");
    let (code, out) = curl(&["--cacert", &ca, &url]).await;
    assert_ne!(code, 0, "no client certificate must be refused: {out}");
    let (code, out) = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &pki.show("backend-client.crt"),
        "--key",
        &pki.show("backend-client.key"),
        &url,
    ])
    .await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_another_host_needs_insecure_http_and_warns_at_every_start() {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new();
    let remote = "[[remote]]\nruntime_id = \"far\"\nbase_url = \"http://192.0.2.10:7701\"\ntoken_file = \"token\"\n";
    std::fs::write(pki.path("backend.toml"), remote).unwrap();
    let config = pki.show("backend.toml");
    let (status, stderr) = Switchyard::run_to_exit(&["serve", "--config", &config], &[]).await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("remote[0].base_url") && stderr.contains("insecure_http"),
        "{stderr}"
    );
    assert!(stderr.contains(&config), "{stderr}");

    std::fs::write(
        pki.path("backend.toml"),
        format!("{remote}insecure_http = true\n"),
    )
    .unwrap();
    for _ in 0..2 {
        let mut child = tokio::process::Command::new(switchyard_e2e::proc::switchyard_bin())
            .args(["serve", "--config", &config, "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let warned = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("WARN") && line.contains("insecure_http") && line.contains("far") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(warned, Ok(true), "no insecure_http warning at start");
        child.kill().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_reloads_its_tls_files_on_sighup() {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new();
    let next_ca = Ca::new("Next CA");
    pki.write("rt", &pki.runtimes.server(&["localhost"]));
    let runtime = start_runtime(&pki, "reloading", "rt", false).await;
    let old = pki.trust("localhost");
    let new = TestTls {
        config: client_config(&next_ca, None),
        server_name: server_name("localhost"),
    };
    assert!(handshake_ok(&old, &runtime).await);
    assert!(!handshake_ok(&new, &runtime).await);

    // New files, SIGHUP: new connections get them.
    pki.write("rt", &next_ca.server(&["localhost"]));
    runtime.signal(Signal::SIGHUP);
    let deadline = Instant::now() + WAIT;
    while !handshake_ok(&new, &runtime).await {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!handshake_ok(&old, &runtime).await);
    let health = request_tls(&new, runtime.addr, Method::GET, "/v1/health", None, &[]).await;
    assert_eq!(health.status, 200);

    // A broken key on the next SIGHUP: logged, the running configuration stays.
    std::fs::write(pki.path("rt.key"), "not a key\n").unwrap();
    runtime.signal(Signal::SIGHUP);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(handshake_ok(&new, &runtime).await);
    runtime.signal(Signal::SIGTERM);
    assert_eq!(runtime.wait().await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapsed_and_lapsing_certificates_are_warned_about_at_start_and_on_sighup() {
    let _serial = SERIAL.lock().await;
    let pki = Pki::new();
    let info = [("RUST_LOG", "info")];
    // The runtime's own certificate, expired at start.
    pki.write(
        "rt",
        &pki.runtimes.server_with(&["127.0.0.1"], Validity::Expired),
    );
    std::fs::write(
        pki.path("runtime.toml"),
        "runtime_id = \"lapsing\"\n\n[tls]\ncert_file = \"rt.crt\"\nkey_file = \"rt.key\"\n",
    )
    .unwrap();
    let log = pki.path("runtime.log");
    let args = [
        "runtime",
        "--listen",
        "127.0.0.1:0",
        "--config",
        &pki.show("runtime.toml"),
        "--token-file",
        &pki.show("token"),
    ];
    let runtime = Switchyard::start_logged(&args, &info, &log).await;
    let line = wait_for_log_line(&log, "the certificate expired", 1).await;
    for part in [
        "WARN",
        "tls.cert_file",
        "rt.crt",
        "2021-01-01T00:00:00Z",
        "clients refuse it",
        "renew it",
    ] {
        assert!(line.contains(part), "{part:?} in {line}");
    }

    // Renewed, but ending in three days: SIGHUP reads it and warns again.
    pki.write(
        "rt",
        &pki.runtimes
            .server_with(&["127.0.0.1"], Validity::EndsInThreeDays),
    );
    runtime.signal(Signal::SIGHUP);
    let line = wait_for_log_line(&log, "the certificate expires in 3 days", 1).await;
    assert!(line.contains("WARN") && line.contains("rt.crt"), "{line}");
    wait_for_log_line(&log, "configuration reloaded", 1).await;

    // Valid for years: the next reload says nothing about it.
    pki.write("rt", &pki.runtimes.server(&["127.0.0.1"]));
    runtime.signal(Signal::SIGHUP);
    let text = wait_for_log_line(&log, "configuration reloaded", 2).await;
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        log_text.matches("the certificate").count(),
        2,
        "{text}\n{log_text}"
    );
    runtime.signal(Signal::SIGTERM);
    assert_eq!(runtime.wait().await.code(), Some(0));

    // The backend's client certificate for a remote, not valid yet.
    pki.backends
        .client_with("backend-1", Validity::NotYetValid)
        .write(pki.dir.path(), "backend-client");
    let remote = RemoteSpec {
        id: "far",
        url: "https://127.0.0.1:9".to_owned(),
        client_cert: true,
        server_name: None,
    };
    let log = pki.path("backend.log");
    let backend = start_backend_logged(&pki, "", &[remote], Some(&log)).await;
    let line = wait_for_log_line(&log, "the certificate is not valid for another", 1).await;
    for part in [
        "WARN",
        "remote[0].client_cert_file",
        "backend-client.crt",
        "2200-01-01T00:00:00Z",
        "runtimes refuse it",
    ] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
    backend.signal(Signal::SIGTERM);
    assert_eq!(backend.wait().await.code(), Some(0));
}

/// Whether a TLS handshake with `runtime` succeeds and it answers `/v1/health`.
async fn handshake_ok(tls: &TestTls, runtime: &Switchyard) -> bool {
    match tokio::time::timeout(WAIT, tls.connect(runtime.addr)).await {
        Ok(Ok(_stream)) => true,
        Ok(Err(_)) => false,
        Err(_) => panic!("no handshake answer in time"),
    }
}

/// Runs `curl -sS <args>`; its exit code and output (stdout, then stderr).
async fn curl(args: &[&str]) -> (i32, String) {
    let output = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new("curl")
            .arg("-sS")
            .args(args)
            .output(),
    )
    .await
    .expect("curl ends in time")
    .expect("curl is installed (the TLS end-to-end tests need it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}
