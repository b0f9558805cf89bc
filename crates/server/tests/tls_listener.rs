//! The accept loop with TLS, in-process: the Runtime API over HTTPS and WSS, plain
//! HTTP refused with a 400 that says why, failed handshakes (untrusted server
//! certificate, missing or foreign client certificate) that leave the loop serving
//! everyone else, a silent client that holds up nobody, a configuration swapped
//! while serving (new connections only), shutdown with a handshake pending, and a
//! backend configured with `http://` for a runtime that serves HTTPS only.

mod backend_common;
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{TOKEN, config, settings};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use switchyard_e2e::certs::{Ca, Leaf, client_config, server_config, server_name};
use switchyard_e2e::client::{TestTls, request_tls};
use switchyard_e2e::ws::{connect_tls, next_json};
use switchyard_runtime::Runtime;
use switchyard_server::http::{ServerHandle, ServerTls, Shutdown, serve_with_tls};
use switchyard_server::runtime_api::RuntimeApi;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(20);

/// A Runtime API server over TLS on a free loopback port.
struct TlsServer {
    addr: SocketAddr,
    runtime: Runtime,
    handle: ServerHandle,
}

impl TlsServer {
    async fn start(tls: Arc<rustls::ServerConfig>) -> Self {
        let runtime = Runtime::in_memory(config()).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handle = serve_with_tls(
            listener,
            Arc::new(RuntimeApi::new(runtime.clone(), settings(Some(TOKEN)))),
            Shutdown::new(),
            Some(ServerTls::new(tls)),
        );
        Self {
            addr: handle.local_addr(),
            runtime,
            handle,
        }
    }

    async fn shutdown(self) {
        self.handle.shutdown_signal().trigger();
        let _ = self.runtime.shutdown().await;
        self.handle.shutdown(Duration::from_secs(5)).await;
    }
}

fn trusting(ca: &Ca, identity: Option<&Leaf>) -> TestTls {
    TestTls {
        config: client_config(ca, identity),
        server_name: server_name("localhost"),
    }
}

/// `GET path` with the token over a fresh TLS connection: the status and body, or
/// what went wrong (handshake or exchange), as text.
async fn try_get(tls: &TestTls, addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let attempt = async {
        let stream = tls
            .connect(addr)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("http: {e}"))?;
        tokio::spawn(connection);
        let request = http::Request::get(path)
            .header("host", "localhost")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("exchange: {e:?}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?;
        Ok((
            status,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        ))
    };
    tokio::time::timeout(WAIT, attempt)
        .await
        .unwrap_or_else(|_| Err("no answer in time".into()))
}

#[tokio::test]
async fn the_runtime_api_and_its_event_websocket_over_tls() {
    let ca = Ca::new("Runtimes CA");
    let server = TlsServer::start(server_config(&ca.server(&["localhost"]), None)).await;
    assert!(
        server.handle.url().starts_with("https://"),
        "{}",
        server.handle.url()
    );
    let tls = trusting(&ca, None);
    let api = switchyard_e2e::client::Api {
        addr: server.addr,
        token: Some(TOKEN.into()),
    }
    .with_tls(tls.clone());
    assert_eq!(api.get("/v1/health").await.status, 200);
    let created = api
        .post("/v1/workers", serde_json::json!({"profile": "echo"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let worker = created.json["worker_id"].as_str().unwrap().to_owned();

    let auth = format!("Bearer {TOKEN}");
    let mut ws = connect_tls(
        &tls,
        server.addr,
        &format!("/v1/workers/{worker}/events/ws"),
        &[("authorization", &auth)],
    )
    .await
    .unwrap();
    let first = next_json(&mut ws).await;
    assert_eq!(first["event"]["kind"], "snapshot", "{first}");
    let accepted = api
        .post(
            &format!("/v1/workers/{worker}/input"),
            serde_json::json!({"text": "over tls"}),
        )
        .await;
    assert_eq!(accepted.status, 202);
    loop {
        let frame = next_json(&mut ws).await;
        if frame["event"]["kind"] == "output" {
            assert_eq!(frame["event"]["text"], "over tls");
            break;
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn plain_http_on_the_https_port_gets_a_400_that_says_so_and_nothing_else() {
    let ca = Ca::new("Runtimes CA");
    let server = TlsServer::start(server_config(&ca.server(&["localhost"]), None)).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        format!(
            "GET /v1/runtime HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {TOKEN}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("\"invalid_request\""), "{answer}");
    assert!(answer.contains("HTTPS only"), "{answer}");
    assert!(
        !answer.contains("runtime_id"),
        "the API answered in clear: {answer}"
    );
    // And the listener still serves TLS clients.
    let ok = try_get(&trusting(&ca, None), server.addr, "/v1/health").await;
    assert_eq!(ok.map(|(s, _)| s), Ok(200));
    server.shutdown().await;
}

#[tokio::test]
async fn failed_handshakes_and_silent_clients_leave_the_loop_serving_others() {
    let ca = Ca::new("Runtimes CA");
    let server = TlsServer::start(server_config(&ca.server(&["localhost"]), None)).await;
    // Clients that hold a connection without a word, opened first.
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // Clients that do not trust the server's certificate.
    let stranger = trusting(&Ca::new("Another CA"), None);
    for _ in 0..5 {
        let failed = try_get(&stranger, server.addr, "/v1/health").await;
        assert!(
            failed.as_ref().is_err_and(|e| e.starts_with("handshake")),
            "{failed:?}"
        );
    }
    // Garbage that looks like a TLS record.
    let mut junk = TcpStream::connect(server.addr).await.unwrap();
    junk.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    let _ = junk.shutdown().await;
    // Everyone else is still served.
    let tls = trusting(&ca, None);
    for _ in 0..5 {
        let ok = try_get(&tls, server.addr, "/v1/health").await;
        assert_eq!(ok.map(|(s, _)| s), Ok(200));
    }
    drop(silent);
    server.shutdown().await;
}

#[tokio::test]
async fn mtls_admits_only_client_certificates_signed_by_the_client_ca() {
    let ca = Ca::new("Runtimes CA");
    let backends = Ca::new("Backends CA");
    let server = TlsServer::start(server_config(&ca.server(&["localhost"]), Some(&backends))).await;

    let admitted = try_get(
        &trusting(&ca, Some(&backends.client("backend-1"))),
        server.addr,
        "/v1/runtime",
    )
    .await;
    assert_eq!(admitted.map(|(s, _)| s), Ok(200));

    let foreign = Ca::new("Foreign CA");
    for (what, identity) in [
        ("no client certificate", None),
        (
            "a certificate from another CA",
            Some(foreign.client("backend-1")),
        ),
    ] {
        let refused = try_get(
            &trusting(&ca, identity.as_ref()),
            server.addr,
            "/v1/runtime",
        )
        .await;
        let error = refused.expect_err(what);
        // TLS 1.3: the client's handshake completes, the refusal is an alert read
        // with the first answer; never an HTTP answer.
        assert!(
            error.contains("CertificateRequired")
                || error.contains("BadCertificate")
                || error.contains("UnknownCA")
                || error.contains("DecryptError"),
            "{what}: {error}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_swapped_configuration_serves_new_connections_only() {
    let old_ca = Ca::new("Old CA");
    let new_ca = Ca::new("New CA");
    let server = TlsServer::start(server_config(&old_ca.server(&["localhost"]), None)).await;
    let old_trust = trusting(&old_ca, None);
    let new_trust = trusting(&new_ca, None);

    // A kept-alive connection opened under the old configuration.
    let stream = old_trust.connect(server.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);

    server
        .handle
        .tls()
        .expect("a TLS listener")
        .replace(server_config(&new_ca.server(&["localhost"]), None));

    assert_eq!(
        try_get(&new_trust, server.addr, "/v1/health")
            .await
            .map(|(s, _)| s),
        Ok(200)
    );
    assert!(
        try_get(&old_trust, server.addr, "/v1/health")
            .await
            .is_err()
    );
    let request = http::Request::get("/v1/health")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let kept = sender.send_request(request).await.unwrap();
    assert_eq!(kept.status(), 200, "the open connection keeps its session");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_pending_handshake() {
    let ca = Ca::new("Runtimes CA");
    let server = TlsServer::start(server_config(&ca.server(&["localhost"]), None)).await;
    let _silent = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "shutdown waited {:?} for a silent client",
        started.elapsed()
    );
}

#[tokio::test]
async fn request_tls_helper_reaches_the_server() {
    // The e2e crate's TLS client, as the end-to-end tests use it.
    let ca = Ca::new("Runtimes CA");
    let server = TlsServer::start(server_config(&ca.server(&["127.0.0.1"]), None)).await;
    let tls = TestTls {
        config: client_config(&ca, None),
        server_name: server_name("127.0.0.1"),
    };
    let r = request_tls(
        &tls,
        server.addr,
        http::Method::GET,
        "/v1/health",
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn a_backend_speaking_plain_http_to_a_tls_runtime_is_told_to_use_https() {
    let ca = Ca::new("Runtimes CA");
    let dir = tempfile::tempdir().unwrap();
    ca.server(&["localhost"]).write(dir.path(), "rt");
    let named = |key: &str, file: &str| switchyard_server::config::NamedFile {
        origin: switchyard_server::config::Origin::CommandLine,
        key: key.to_owned(),
        path: dir.path().join(file),
    };
    let tls = switchyard_server::config::ServerTlsFiles {
        cert: named("--tls-cert", "rt.crt"),
        key: named("--tls-key", "rt.key"),
        client_ca: None,
    }
    .load()
    .unwrap();
    let runtime = backend_common::start_runtime_with(
        "127.0.0.1:0".parse().unwrap(),
        "edge",
        Some(TOKEN),
        Some(tls),
    )
    .await;
    let url = format!("http://{}", runtime.server.local_addr());
    let (backend, api) = backend_common::start_backend(backend_common::backend_settings(
        false,
        vec![backend_common::remote("edge", &url, TOKEN, WAIT)],
        backend_common::NO_PROBES,
    ))
    .await;
    let view = api.get("/api/runtimes/edge").await;
    assert_eq!(view.json["state"], "incompatible", "{}", view.text());
    assert_eq!(view.json["last_error"]["code"], "runtime_protocol_error");
    let message = view.json["last_error"]["message"].as_str().unwrap();
    assert!(message.contains("https://"), "{message}");
    let created = api
        .post(
            "/api/runtimes/edge/workers",
            serde_json::json!({"profile": "echo"}),
        )
        .await;
    backend_common::assert_error(&created, 502, "runtime_protocol_error");
    backend.shutdown().await;
    runtime.shutdown().await;
}
