//! Nothing about a remote runtime's whereabouts or credentials crosses to a backend
//! client: every backend route, in success and in every failure mode a remote can
//! have (TLS ones included: a runtime reached over TLS, one whose certificate is for
//! another name, an mTLS runtime the backend has no client certificate for), is
//! collected (status line, headers, body) and searched for the token, the base URL,
//! the host and port, the name TLS verifies, the token file's and the certificate
//! files' paths and the token variable's name.
//! `Debug` and `Display` of the settings, the registry and its errors never hold the
//! token either.

mod backend_common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use backend_common::*;
use http::Method;
use serde_json::{Value, json};
use switchyard_e2e::certs::Ca;
use switchyard_protocol::{NewWorkerRequest, WorkerId};
use switchyard_registry::Caller;
use switchyard_server::commands::runtime::RunningRuntime;
use switchyard_server::commands::serve::RunningBackend;
use switchyard_server::config::{
    BackendSettings, NamedFile, Origin, ServeArgs, ServerTlsFiles, ServerTlsSettings,
    load_backend_settings,
};
use switchyard_transport::WorkerQuery;
use tokio_tungstenite::tungstenite;

/// A port whose decimal digits cannot appear in a masked answer for another reason
/// (the runtime limits `1048576` and `65536` are the only long numbers answers carry).
fn distinctive(port: u16) -> bool {
    port >= 10_000
        && !["1048576", "65536"]
            .iter()
            .any(|n| n.contains(&port.to_string()))
}

async fn runtime_on(ip: &str, id: &str, token: &str) -> RunningRuntime {
    loop {
        let rt = start_runtime_at(format!("{ip}:0").parse().unwrap(), id, Some(token)).await;
        if distinctive(rt.server.local_addr().port()) {
            return rt;
        }
        rt.shutdown().await;
    }
}

/// Like [`runtime_on`], serving HTTPS with `tls`.
async fn tls_runtime_on(ip: &str, id: &str, token: &str, tls: ServerTlsSettings) -> RunningRuntime {
    loop {
        let listen = format!("{ip}:0").parse().unwrap();
        let rt = start_runtime_with(listen, id, Some(token), Some(tls.clone())).await;
        if distinctive(rt.server.local_addr().port()) {
            return rt;
        }
        rt.shutdown().await;
    }
}

/// The listener TLS of a runtime: `<name>.crt`/`<name>.key` in `dir`, and client
/// certificates signed by the CA in `client_ca` when given.
fn server_tls(dir: &std::path::Path, name: &str, client_ca: Option<PathBuf>) -> ServerTlsSettings {
    let named = |key: &str, path: PathBuf| NamedFile {
        origin: Origin::CommandLine,
        key: key.to_owned(),
        path,
    };
    ServerTlsFiles {
        cert: named("--tls-cert", dir.join(format!("{name}.crt"))),
        key: named("--tls-key", dir.join(format!("{name}.key"))),
        client_ca: client_ca.map(|path| named("--tls-client-ca", path)),
    }
    .load()
    .unwrap_or_else(|e| panic!("TLS files for {name}: {e}"))
}

async fn silent_on(ip: &str) -> SilentPeer {
    loop {
        let peer = SilentPeer::start(ip).await;
        if distinctive(peer.addr.port()) {
            return peer;
        }
    }
}

async fn canned_on(
    ip: &str,
    answer: impl Fn(&SeenRequest) -> Canned + Clone + Send + Sync + 'static,
) -> CannedPeer {
    loop {
        let peer = CannedPeer::start(ip, answer.clone()).await;
        if distinctive(peer.addr.port()) {
            return peer;
        }
    }
}

async fn refused_distinctive() -> Refused {
    loop {
        let refused = refused_addr().await;
        if distinctive(refused.addr.port()) {
            return refused;
        }
    }
}

/// A second loopback address if this host routes all of 127/8 to loopback (Linux).
async fn second_loopback() -> &'static str {
    if tokio::net::TcpListener::bind("127.0.0.2:0").await.is_ok() {
        "127.0.0.2"
    } else {
        "127.0.0.1"
    }
}

/// A peer that repeats what it was sent (its `Authorization` and `Host` headers,
/// hence the token and the authority) inside error messages and inside values that
/// do not decode, so any pass-through of its words would leak them.
fn echoing_answer(seen: &SeenRequest) -> Canned {
    let host = seen.header("host").unwrap_or_default();
    let auth = seen.header("authorization").unwrap_or_default();
    let words = format!(
        "you sent {auth:?} to http://{host}{} via {host}; full request: {}",
        seen.path, seen.head
    );
    if seen.path.starts_with("/v1/runtime") {
        return Canned {
            status: "200 OK",
            content_type: "application/json",
            body: json!({"status": words}).to_string(),
        };
    }
    let workers_route = seen.path == "/v1/workers" || seen.path.starts_with("/v1/workers?");
    if workers_route {
        if seen.method == "GET" {
            return Canned {
                status: "200 OK",
                content_type: "application/json",
                body: json!({"workers": words, "next": null}).to_string(),
            };
        }
        return Canned {
            status: "400 Bad Request",
            content_type: "application/json",
            body: json!({"error": {"code": "invalid_request", "message": words}}).to_string(),
        };
    }
    if seen.path.ends_with("/transcript") || seen.path.contains("/transcript?") {
        return Canned {
            status: "200 OK",
            content_type: "application/json",
            body: json!({"items": [], "next_after": words, "total": 0}).to_string(),
        };
    }
    Canned {
        status: "404 Not Found",
        content_type: "application/json",
        body: json!({"error": {"code": "worker_not_found", "message": words, "worker_id": "w-x"}})
            .to_string(),
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One answer as a client saw it.
struct Seen {
    label: String,
    /// Status line and headers.
    head: String,
    body: String,
    /// Head and body with request ids, dates, timestamps and worker ids masked, for
    /// the search of bare port numbers.
    masked: String,
}

/// Everything secret about the remotes, and where the answers are kept.
struct Leaks {
    token: String,
    /// Strings that may appear nowhere in any answer.
    needles: Vec<String>,
    /// Port numbers that may not appear in a masked answer.
    ports: Vec<String>,
    seen: Vec<Seen>,
    worker_ids: Vec<String>,
}

const TIME_KEYS: [&str; 5] = ["created_at", "updated_at", "at", "last_seen", "epoch"];

fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && s.contains('T')
}

fn mask_json(v: &mut Value, ids: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if let Value::String(s) = v
                    && (key == "worker_id" || key == "next")
                {
                    ids.push(s.clone());
                }
                if TIME_KEYS.contains(&key.as_str()) && !v.is_null() {
                    *v = json!("<ts>");
                } else {
                    mask_json(v, ids);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_json(v, ids)),
        Value::String(s) if looks_like_timestamp(s) => *v = json!("<ts>"),
        _ => {}
    }
}

impl Leaks {
    fn record(&mut self, label: String, status: String, headers: &http::HeaderMap, body: &[u8]) {
        let mut head = format!("HTTP/1.1 {status}\n");
        let mut masked_head = head.clone();
        let mut request_ids = Vec::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            head.push_str(&format!("{name}: {value}\n"));
            if name == "x-request-id" {
                request_ids.push(value);
            } else if name != "date" {
                masked_head.push_str(&format!("{name}: {value}\n"));
            }
        }
        let body_text = String::from_utf8_lossy(body).into_owned();
        let mut masked = match serde_json::from_slice::<Value>(body) {
            Ok(mut value) => {
                mask_json(&mut value, &mut self.worker_ids);
                value.to_string()
            }
            Err(_) => body_text.clone(),
        };
        for id in self.worker_ids.iter().chain(&request_ids) {
            if !id.is_empty() {
                masked = masked.replace(id.as_str(), "<id>");
            }
        }
        self.seen.push(Seen {
            label,
            head,
            body: body_text,
            masked: format!("{masked_head}\n{masked}"),
        });
    }

    async fn call(
        &mut self,
        api: &Api,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let r = api.call(method.clone(), path, body).await;
        self.record(
            format!("{method} {path}"),
            r.status.to_string(),
            &r.headers,
            &r.raw,
        );
        r
    }

    async fn raw(&mut self, api: &Api, method: Method, path: &str, body: Vec<u8>) -> TestResponse {
        let r = raw_call(api, method.clone(), path, body).await;
        self.record(
            format!("{method} {path} (raw)"),
            r.status.to_string(),
            &r.headers,
            &r.raw,
        );
        r
    }

    /// Opens the worker's event stream through the backend and keeps the handshake
    /// answer and the first frames.
    async fn websocket(&mut self, api: &Api, path: &str) {
        let url = format!("ws://{}{path}", api.addr);
        let label = format!("WS {path}");
        match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await {
            Err(_) => panic!("{label}: no handshake answer in time"),
            Ok(Ok((mut ws, response))) => {
                self.record(
                    label.clone(),
                    response.status().to_string(),
                    response.headers(),
                    b"",
                );
                use futures_util::StreamExt;
                for _ in 0..4 {
                    match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
                        Ok(Some(Ok(message))) => {
                            let text = message.into_data();
                            self.record(
                                format!("{label} frame"),
                                "frame".into(),
                                &http::HeaderMap::new(),
                                &text[..],
                            );
                        }
                        _ => break,
                    }
                }
            }
            Ok(Err(tungstenite::Error::Http(response))) => {
                let body = response.body().clone().unwrap_or_default();
                self.record(
                    label,
                    response.status().to_string(),
                    response.headers(),
                    &body,
                );
            }
            Ok(Err(other)) => {
                let text = other.to_string();
                self.record(
                    label,
                    "error".into(),
                    &http::HeaderMap::new(),
                    text.as_bytes(),
                );
            }
        }
    }

    /// Every route of one runtime, with a real worker when `create` succeeds, and the
    /// client errors that reach the runtime.
    async fn exercise(&mut self, api: &Api, rt: &str) {
        let base = format!("/api/runtimes/{rt}/workers");
        self.call(api, Method::GET, &format!("/api/runtimes/{rt}"), None)
            .await;
        self.call(api, Method::GET, &base, None).await;
        self.call(
            api,
            Method::GET,
            &format!("{base}?status=running&limit=5"),
            None,
        )
        .await;
        let created = self
            .call(
                api,
                Method::POST,
                &base,
                Some(json!({"profile": "echo", "label": "leak-check"})),
            )
            .await;
        let worker = created.json["worker_id"]
            .as_str()
            .unwrap_or("w-none")
            .to_owned();
        let w = format!("{base}/{worker}");
        self.call(api, Method::GET, &w, None).await;
        self.call(
            api,
            Method::POST,
            &format!("{w}/input"),
            Some(json!({"text": "ping"})),
        )
        .await;
        if created.status.as_u16() == 201 {
            wait_output(api, &w, "ping").await;
        }
        self.websocket(api, &format!("{w}/events/ws")).await;
        self.call(api, Method::GET, &format!("{w}/transcript"), None)
            .await;
        self.call(
            api,
            Method::GET,
            &format!("{w}/transcript?after=1&limit=1"),
            None,
        )
        .await;
        self.call(
            api,
            Method::GET,
            &format!("{w}/transcript?limit=100000"),
            None,
        )
        .await;
        self.call(api, Method::POST, &format!("{w}/cancel"), None)
            .await;
        self.call(api, Method::DELETE, &w, None).await;
        // A stop waits 30 s beyond the request timeout for a silent peer (see
        // backend_api.rs, stop_on_a_silent_remote_times_out_within_its_request_timeout).
        if rt != "silent" {
            self.call(api, Method::POST, &format!("{w}/stop"), None)
                .await;
            self.call(api, Method::POST, &format!("{w}/stop"), None)
                .await;
        }
        self.call(
            api,
            Method::POST,
            &format!("{w}/input"),
            Some(json!({"text": "late"})),
        )
        .await;
        self.call(api, Method::POST, &format!("{w}/cancel"), None)
            .await;
        self.call(api, Method::DELETE, &w, None).await;
        self.call(api, Method::GET, &w, None).await;
        self.call(
            api,
            Method::POST,
            &base,
            Some(json!({"profile": "missing"})),
        )
        .await;
        self.call(
            api,
            Method::POST,
            &base,
            Some(json!({"profile": "echo", "x": 1})),
        )
        .await;
        self.raw(api, Method::POST, &base, b"{broken".to_vec())
            .await;
        self.raw(api, Method::POST, &base, vec![b' '; 8192]).await;
        self.call(api, Method::GET, &format!("{base}/.bad"), None)
            .await;
        self.call(
            api,
            Method::GET,
            &format!("{base}/w-unknown-1/transcript"),
            None,
        )
        .await;
        self.call(api, Method::PUT, &w, None).await;
        self.call(api, Method::GET, "/api/workers", None).await;
        self.call(api, Method::GET, "/api/runtimes", None).await;
    }

    /// Records the frames of an open event stream until one contains `until`.
    async fn record_frames(&mut self, label: &str, ws: &mut Ws, until: &str) {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let message = tokio::time::timeout_at(deadline, ws.next())
                .await
                .unwrap_or_else(|_| panic!("{label}: no frame with {until} in time"));
            let Some(Ok(message)) = message else {
                panic!("{label}: the stream ended before a frame with {until}");
            };
            let data = message.into_data();
            self.record(
                format!("{label} frame"),
                "frame".into(),
                &http::HeaderMap::new(),
                &data[..],
            );
            if String::from_utf8_lossy(&data).contains(until) {
                return;
            }
        }
    }

    fn codes(&self) -> String {
        self.seen
            .iter()
            .map(|s| format!("{} -> {}", s.label, s.body))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Asserts no answer holds a needle, or a port number once masked.
    fn assert_clean(&self) {
        assert!(!self.seen.is_empty());
        for seen in &self.seen {
            let all = format!("{}\n{}", seen.head, seen.body);
            for needle in &self.needles {
                assert!(
                    !all.contains(needle.as_str()),
                    "{}: the answer contains {needle:?}:\n{all}",
                    seen.label
                );
            }
            for port in &self.ports {
                assert!(
                    !seen.masked.contains(port.as_str()),
                    "{}: the answer contains the port {port}:\n{}",
                    seen.label,
                    seen.masked
                );
            }
        }
    }

    /// Asserts some answer to a call whose label contains `label_part` has `text` in
    /// its body.
    fn assert_saw(&self, label_part: &str, text: &str) {
        assert!(
            self.seen
                .iter()
                .any(|s| s.label.contains(label_part) && s.body.contains(text)),
            "no answer with {text} for {label_part}; saw:\n{}",
            self.codes()
        );
    }

    /// Asserts some answer to such a call has the error code `code`.
    fn assert_saw_code(&self, label_part: &str, code: &str) {
        self.assert_saw(label_part, &format!("\"code\":\"{code}\""));
    }

    /// Asserts `text` (a Debug or Display rendering) holds no needle.
    fn assert_text_clean(&self, what: &str, text: &str) {
        for needle in &self.needles {
            assert!(
                !text.contains(needle.as_str()),
                "{what} contains {needle:?}: {text}"
            );
        }
    }
}

/// The whole set-up: real runtimes and misbehaving peers, and a backend loaded from a
/// config file whose remotes take their token from a token file or a variable.
struct World {
    leaks: Leaks,
    settings: BackendSettings,
    backend: RunningBackend,
    api: Api,
    ok: RunningRuntime,
    tls: (RunningRuntime, RunningRuntime, RunningRuntime),
    gone: Option<RunningRuntime>,
    wrong: RunningRuntime,
    draining: RunningRuntime,
    _peers: (SilentPeer, CannedPeer, CannedPeer, CannedPeer),
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let hex = random_hex();
    let token = format!("leak-tok-{hex}");
    let other_token = format!("leak-other-{hex}");
    let var = format!("LEAK_ENV_{}", hex.to_ascii_uppercase());
    let dir = tempfile::Builder::new()
        .prefix(&format!("leak-dir-{hex}-"))
        .tempdir()
        .unwrap();
    let token_file: PathBuf = dir.path().join(format!("leak-secret-{hex}.token"));
    std::fs::write(&token_file, format!("{token}\n")).unwrap();

    let ip2 = second_loopback().await;
    let ok = runtime_on(ip2, "ok-host", &token).await;
    let gone = runtime_on("127.0.0.1", "gone-host", &token).await;
    let wrong = runtime_on("127.0.0.1", "wrong-host", &other_token).await;
    let draining = runtime_on("127.0.0.1", "draining-host", &token).await;
    draining.runtime.shutdown().await.unwrap();
    let silent = silent_on("127.0.0.1").await;
    let garbage = canned_on("127.0.0.1", |_| Canned {
        status: "200 OK",
        content_type: "application/json",
        body: "{not json".into(),
    })
    .await;
    let unsupported = canned_on("127.0.0.1", |_| Canned {
        status: "501 Not Implemented",
        content_type: "text/plain",
        body: "not here".into(),
    })
    .await;
    let echoing = canned_on(ip2, echoing_answer).await;
    let refused = refused_distinctive().await;

    // TLS: a runtime verified by a name that is not in its URL, one whose
    // certificate is for another name, and an mTLS one the backend has no client
    // certificate for. Every file lives in the (secret) directory.
    let tls_name = format!("leak-name-{hex}.test");
    let runtimes_ca = Ca::new("Leak runtimes CA");
    let backends_ca = Ca::new("Leak backends CA");
    let ca_file = runtimes_ca.write(dir.path(), &format!("leak-ca-{hex}"));
    let backends_ca_file = backends_ca.write(dir.path(), "leak-backends-ca");
    runtimes_ca.server(&[&tls_name]).write(dir.path(), "tls-ok");
    runtimes_ca
        .server(&["wrong-name.test"])
        .write(dir.path(), "tls-wrong");
    runtimes_ca.server(&[ip2]).write(dir.path(), "tls-mtls");
    let tls_ok = tls_runtime_on(
        ip2,
        "tls-host",
        &token,
        server_tls(dir.path(), "tls-ok", None),
    )
    .await;
    let tls_wrong = tls_runtime_on(
        "127.0.0.1",
        "tls-wrong-host",
        &token,
        server_tls(dir.path(), "tls-wrong", None),
    )
    .await;
    let tls_mtls = tls_runtime_on(
        ip2,
        "tls-mtls-host",
        &token,
        server_tls(dir.path(), "tls-mtls", Some(backends_ca_file)),
    )
    .await;
    let ca_line = format!("ca_file = {:?}\n", ca_file.display().to_string());

    let ok_url = format!("http://{}", ok.server.local_addr());
    let gone_url = format!("http://localhost:{}", gone.server.local_addr().port());
    let https = |addr: SocketAddr| format!("https://{addr}");
    let remotes: Vec<(&str, String, bool, u64)> = vec![
        ("ok", ok_url, true, 10_000),
        ("tls", https(tls_ok.server.local_addr()), true, 10_000),
        (
            "tlsname",
            https(tls_wrong.server.local_addr()),
            true,
            10_000,
        ),
        ("nocert", https(tls_mtls.server.local_addr()), false, 10_000),
        ("gone", gone_url, false, 10_000),
        (
            "wrongtok",
            base_url(wrong.server.local_addr()),
            true,
            10_000,
        ),
        (
            "draining",
            base_url(draining.server.local_addr()),
            false,
            10_000,
        ),
        ("silent", base_url(silent.addr), true, 500),
        ("garbage", base_url(garbage.addr), true, 10_000),
        ("unsup", base_url(unsupported.addr), false, 10_000),
        ("echo", base_url(echoing.addr), true, 10_000),
        ("refused", base_url(refused.addr), true, 10_000),
    ];

    let mut toml = String::from(
        "listen = \"127.0.0.1:0\"\nmax_body_bytes = 4096\nhealth_interval_ms = 300\n\n[embedded]\nruntime_id = \"local\"\n",
    );
    let mut needles = vec![
        tls_name.clone(),
        "wrong-name.test".to_owned(),
        ca_file.display().to_string(),
        token.clone(),
        other_token.clone(),
        var.clone(),
        token_file.display().to_string(),
        token_file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
        dir.path().display().to_string(),
        format!("leak-dir-{hex}"),
    ];
    let mut ports = Vec::new();
    for (id, url, from_file, timeout) in &remotes {
        let source = if *from_file {
            format!("token_file = {:?}", token_file.display().to_string())
        } else {
            format!("token_env = {var:?}")
        };
        let tls = match *id {
            "tls" => format!("{ca_line}tls_server_name = {tls_name:?}\n"),
            "tlsname" | "nocert" => ca_line.clone(),
            _ => String::new(),
        };
        toml.push_str(&format!(
            "\n[[remote]]\nruntime_id = {id:?}\nbase_url = {url:?}\n{source}\nconnect_timeout_ms = 2000\nrequest_timeout_ms = {timeout}\n{tls}"
        ));
        let uri: http::Uri = url.parse().unwrap();
        let authority = uri.authority().unwrap();
        let port = authority.port_u16().unwrap();
        needles.push(url.clone());
        needles.push(authority.to_string());
        needles.push(authority.host().to_owned());
        needles.push(format!(":{port}"));
        ports.push(port.to_string());
    }
    needles.sort();
    needles.dedup();
    let config = dir.path().join(format!("leak-config-{hex}.toml"));
    std::fs::write(&config, toml).unwrap();

    let args = ServeArgs {
        config: Some(config),
        ..ServeArgs::default()
    };
    let env_token = token.clone();
    let env_var = var.clone();
    let settings = load_backend_settings(&args, &move |name| {
        (name == env_var).then(|| env_token.clone())
    })
    .unwrap_or_else(|e| panic!("config did not load: {e}"));
    assert_eq!(settings.remotes.len(), remotes.len());
    let (backend, api) = start_backend(settings.clone()).await;
    wait_cached_state(&api, "ok", "ready").await;

    World {
        leaks: Leaks {
            token,
            needles,
            ports,
            seen: Vec::new(),
            worker_ids: Vec::new(),
        },
        settings,
        backend,
        api,
        ok,
        tls: (tls_ok, tls_wrong, tls_mtls),
        gone: Some(gone),
        wrong,
        draining,
        _peers: (silent, garbage, unsupported, echoing),
        _dir: dir,
    }
}

const FAILING: [&str; 10] = [
    "gone", "wrongtok", "draining", "silent", "garbage", "unsup", "echo", "refused", "tlsname",
    "nocert",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_backend_answer_reveals_a_remote() {
    let mut world = world().await;
    let api = world.api.clone();
    let leaks = &mut world.leaks;

    leaks.call(&api, Method::GET, "/healthz", None).await;
    leaks.call(&api, Method::GET, "/api/runtimes", None).await;
    leaks.call(&api, Method::GET, "/api/workers", None).await;
    leaks.call(&api, Method::GET, "/api/nope", None).await;
    leaks
        .call(&api, Method::GET, "/api/runtimes/nope", None)
        .await;
    leaks
        .call(&api, Method::GET, "/api/runtimes/.bad/workers", None)
        .await;

    for rt in ["local", "ok", "tls", "gone"] {
        leaks.exercise(&api, rt).await;
    }
    // A client watching a worker of `gone` while it goes away.
    let created = leaks
        .call(
            &api,
            Method::POST,
            "/api/runtimes/gone/workers",
            Some(json!({"profile": "echo"})),
        )
        .await;
    let worker = created.json["worker_id"].as_str().unwrap().to_owned();
    let url = format!(
        "ws://{}/api/runtimes/gone/workers/{worker}/events/ws",
        api.addr
    );
    let (mut watch, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    leaks
        .record_frames("WS watch of gone", &mut watch, "\"snapshot\"")
        .await;
    world.gone.take().unwrap().shutdown().await;
    leaks
        .record_frames("WS watch of gone", &mut watch, "\"upstream\"")
        .await;
    for rt in FAILING {
        leaks.exercise(&api, rt).await;
    }
    // Let the health probes fill in their own last errors, then read every view.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    leaks.call(&api, Method::GET, "/api/runtimes", None).await;
    leaks.call(&api, Method::GET, "/api/workers", None).await;
    for rt in FAILING {
        leaks
            .call(&api, Method::GET, &format!("/api/runtimes/{rt}"), None)
            .await;
    }

    // Every failure mode was reached.
    leaks.assert_saw("/api/runtimes/ok/workers", "\"worker_id\"");
    leaks.assert_saw("/api/runtimes/tls/workers", "\"worker_id\"");
    leaks.assert_saw("WS /api/runtimes/tls/workers", "\"snapshot\"");
    leaks.assert_saw_code("/api/runtimes/tlsname/workers", "runtime_tls_failed");
    leaks.assert_saw_code("/api/runtimes/nocert/workers", "runtime_tls_failed");
    leaks.assert_saw("GET /api/runtimes/nocert", "\"tls_failed\"");
    leaks.assert_saw_code("/api/runtimes/gone/workers", "runtime_unreachable");
    leaks.assert_saw_code("/api/runtimes/refused/workers", "runtime_unreachable");
    leaks.assert_saw_code("/api/runtimes/wrongtok/workers", "runtime_auth_failed");
    leaks.assert_saw_code("/api/runtimes/draining/workers", "runtime_unavailable");
    leaks.assert_saw_code("/api/runtimes/silent/workers", "runtime_timeout");
    leaks.assert_saw_code("/api/runtimes/garbage/workers", "runtime_protocol_error");
    leaks.assert_saw_code("/api/runtimes/unsup/workers", "unsupported");
    leaks.assert_saw_code("/api/runtimes/echo/workers", "invalid_request");
    leaks.assert_saw_code("/api/runtimes/echo/workers", "runtime_protocol_error");
    leaks.assert_saw_code("/api/runtimes/echo/workers/w-none", "worker_not_found");
    leaks.assert_saw("/api/runtimes/echo/workers", "[redacted]");

    leaks.assert_clean();

    world.backend.shutdown().await;
    world.ok.shutdown().await;
    world.tls.0.shutdown().await;
    world.tls.1.shutdown().await;
    world.tls.2.shutdown().await;
    world.wrong.shutdown().await;
    world.draining.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_registry_and_errors_never_print_the_token() {
    let mut world = world().await;
    let leaks = &world.leaks;
    let token = leaks.token.clone();

    let settings = format!("{:?}", world.settings);
    assert!(!settings.contains(&token), "settings Debug: {settings}");
    for remote in &world.settings.remotes {
        let text = format!("{remote:?} {:?} {}", remote.token, remote.token);
        assert!(!text.contains(&token), "remote Debug: {text}");
    }
    leaks.assert_text_clean("registry Debug", &format!("{:?}", world.backend.registry));

    world.gone.take().unwrap().shutdown().await;
    let registry = world.backend.registry.clone();
    let worker = WorkerId::new("w-none").unwrap();
    let create = NewWorkerRequest {
        profile: "echo".into(),
        label: Some("x".into()),
    };
    let mut errors = Vec::new();
    let open = Caller::open();
    for rt in FAILING.iter().chain(&["nope"]) {
        let rt = rid(rt);
        errors.extend(
            registry
                .list_workers(&open, &rt, &WorkerQuery::default())
                .await
                .err(),
        );
        errors.extend(registry.create_worker(&open, &rt, &create).await.err());
        errors.extend(registry.get_worker(&open, &rt, &worker).await.err());
        errors.extend(registry.input(&open, &rt, &worker, "x".into()).await.err());
        errors.extend(registry.cancel(&open, &rt, &worker).await.err());
        if rt.as_str() != "silent" {
            errors.extend(registry.stop(&open, &rt, &worker).await.err());
        }
        errors.extend(registry.delete(&open, &rt, &worker).await.err());
        errors.extend(
            registry
                .transcript(&open, &rt, &worker, 0, None)
                .await
                .err(),
        );
        match registry.runtime(&open, &rt).await {
            Ok(view) => leaks.assert_text_clean("runtime view", &format!("{view:?}")),
            Err(error) => errors.push(error),
        }
    }
    assert!(errors.len() >= FAILING.len() * 6, "{errors:?}");
    for error in &errors {
        leaks.assert_text_clean("RegistryError Debug", &format!("{error:?}"));
        leaks.assert_text_clean("RegistryError Display", &format!("{error}"));
        leaks.assert_text_clean("RegistryError detail", &format!("{:?}", error.to_detail()));
        if let switchyard_registry::RegistryError::Source { error, .. } = error {
            leaks.assert_text_clean("SourceError Debug", &format!("{error:?}"));
        }
    }
    let all = registry.list_all(&open, &WorkerQuery::default()).await;
    leaks.assert_text_clean("list_all", &format!("{all:?}"));
    assert!(all.unavailable.len() >= FAILING.len() - 1, "{all:?}");
    leaks.assert_text_clean("views", &format!("{:?}", registry.runtimes(&open)));

    world.backend.shutdown().await;
    world.ok.shutdown().await;
    world.tls.0.shutdown().await;
    world.tls.1.shutdown().await;
    world.tls.2.shutdown().await;
    world.wrong.shutdown().await;
    world.draining.shutdown().await;
}

/// A runtime (or a proxy in front of it) whose error message names its port alone,
/// without the host: the backend must not repeat the port to its clients either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_naming_its_own_port_does_not_leak_it() {
    let token = format!("leak-tok-{}", random_hex());
    let peer = loop {
        let port_holder = std::sync::Arc::new(std::sync::OnceLock::<u16>::new());
        let holder = port_holder.clone();
        let peer = CannedPeer::start("127.0.0.1", move |_| Canned {
            status: "404 Not Found",
            content_type: "application/json",
            body: json!({"error": {
                "code": "worker_not_found",
                "message": format!("no such worker on port {}", holder.get().copied().unwrap_or(0)),
            }})
            .to_string(),
        })
        .await;
        port_holder.set(peer.addr.port()).unwrap();
        if distinctive(peer.addr.port()) {
            break peer;
        }
    };
    let port = peer.addr.port().to_string();
    let (backend, api) = start_backend(backend_settings(
        false,
        vec![remote(
            "named",
            &base_url(peer.addr),
            &token,
            Duration::from_secs(5),
        )],
        NO_PROBES,
    ))
    .await;
    let r = api.get("/api/runtimes/named/workers/w-1").await;
    assert_error(&r, 404, "worker_not_found");
    assert!(
        !r.text().contains(&port),
        "the remote's port {port} reached the client: {}",
        r.text()
    );
    backend.shutdown().await;
}

/// A remote's own words in a worker's events and transcript are scrubbed like its
/// REST answers: the worker detail a snapshot carries (a label naming the runtime's
/// address), and a worker that cannot start names no path of the runtime's host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_transcripts_carry_none_of_the_remotes_secrets() {
    use switchyard_e2e::ws::{connect, next_json};
    use switchyard_runtime::{ProcessSpec, Profile, ProfileSpec};

    let token = format!("leak-tok-{}", random_hex());
    let config = runtime_config("far").with_profile(
        "broken",
        Profile::new(ProfileSpec::Process({
            let mut spec = ProcessSpec::new(["/srv/secret-tree/bin/agent"]);
            spec.cwd = Some("/srv/secret-tree/work".into());
            spec
        })),
    );
    let rt = start_runtime_from("127.0.0.1:0".parse().unwrap(), config, Some(&token), None).await;
    let authority = rt.server.local_addr().to_string();
    let (backend, api) = start_backend(backend_settings(
        false,
        vec![remote(
            "far",
            &base_url(rt.server.local_addr()),
            &token,
            Duration::from_secs(5),
        )],
        NO_PROBES,
    ))
    .await;
    let base = "/api/runtimes/far/workers";

    let created = api
        .post(
            base,
            json!({"profile": "echo", "label": format!("at {authority}")}),
        )
        .await;
    assert_status(&created, 201);
    assert_eq!(created.json["label"], "at [redacted]");
    let worker = created.json["worker_id"].as_str().unwrap();
    let mut ws = connect(api.addr, &format!("{base}/{worker}/events/ws"), &[])
        .await
        .unwrap();
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["event"]["kind"], "snapshot", "{snapshot}");
    assert_eq!(snapshot["event"]["worker"]["label"], "at [redacted]");
    assert!(!snapshot.to_string().contains(&authority), "{snapshot}");

    let failed = api.post(base, json!({"profile": "broken"})).await;
    assert_status(&failed, 201);
    assert_eq!(failed.json["status"], "failed", "{}", failed.text());
    let failed = failed.json["worker_id"].as_str().unwrap();
    let transcript = api.get(&format!("{base}/{failed}/transcript")).await;
    let mut ws = connect(api.addr, &format!("{base}/{failed}/events/ws"), &[])
        .await
        .unwrap();
    let snapshot = next_json(&mut ws).await;
    for (what, text) in [
        ("transcript", transcript.text()),
        ("snapshot", snapshot.to_string()),
    ] {
        assert!(text.contains("could not start"), "{what}: {text}");
        assert!(!text.contains("secret-tree"), "{what}: {text}");
    }

    backend.shutdown().await;
    rt.shutdown().await;
}
