//! Both clients over TLS against loopback peers with certificates minted at test time:
//! one handshake serves many pooled REST calls; IP-address certificates and
//! `tls_server_name`; mTLS; and every failure kind (untrusted, wrong name, expired,
//! not yet valid, client certificate refused or missing, a peer that does not speak
//! TLS, a silent peer) as a typed `TransportError::Tls` within the connect timeout,
//! with no address or port in its text.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use switchyard_e2e::certs::{Ca, Leaf, Validity, server_config};
use switchyard_protocol::WorkerId;
use switchyard_transport::{
    ClientIdentity, ClientTls, HttpRuntimeClient, RemoteEndpoint, RuntimeClient,
    RuntimeEventsClient, SecretToken, TimeoutPhase, TlsFailure, TransportError, UpstreamFrame,
    WorkerQuery, WsEventsClient,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "tok-tls-Vb3n8q";
/// The connect timeout under test: every TLS failure must come back within it.
const CONNECT: Duration = Duration::from_secs(2);
/// Far longer than [`CONNECT`], so a failure that waited for it is caught.
const REQUEST: Duration = Duration::from_secs(30);
/// Slack beyond a deadline under test, for busy 2-core machines.
const MARGIN: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------- peers

/// What a peer does with a connection once TLS is up.
#[derive(Clone, Copy)]
enum Serve {
    /// HTTP/1.1 with keep-alive: every request gets an empty worker list.
    Rest,
    /// A WebSocket upgrade, one event frame, then silence.
    Events,
}

/// A loopback peer; aborted on drop.
struct Peer {
    port: u16,
    /// TCP connections accepted.
    accepted: Arc<AtomicUsize>,
    /// TLS handshakes completed.
    handshakes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a loopback listener that hands every accepted connection to `serve`.
async fn peer<F, Fut>(serve: F) -> Peer
where
    F: Fn(TcpStream, Arc<AtomicUsize>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn({
        let accepted = accepted.clone();
        let handshakes = handshakes.clone();
        async move {
            while let Ok((tcp, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(tcp, handshakes.clone()));
            }
        }
    });
    Peer {
        port,
        accepted,
        handshakes,
        task,
    }
}

/// A TLS peer with `config`. A failed handshake is closed the way the real server
/// closes it: the alert flushed, then a lingering close, so the client reads the
/// alert rather than a reset.
async fn tls_peer(config: Arc<rustls::ServerConfig>, serve: Serve) -> Peer {
    peer(move |tcp, handshakes| {
        let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
        async move {
            let tls = match acceptor.accept(tcp).into_fallible().await {
                Ok(tls) => tls,
                Err((_, mut tcp)) => {
                    let _ = tcp.shutdown().await;
                    let mut sink = [0u8; 4096];
                    let drain = async { while tcp.read(&mut sink).await.is_ok_and(|n| n > 0) {} };
                    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
                    return;
                }
            };
            handshakes.fetch_add(1, Ordering::SeqCst);
            match serve {
                Serve::Rest => {
                    let service = service_fn(|_request| async {
                        let body = json!({"workers": [], "next": null}).to_string();
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                }
                Serve::Events => {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                        return;
                    };
                    let frame = json!({
                        "type": "event", "cursor": "c-1", "worker_id": "w-1",
                        "event": {"kind": "interrupted"},
                    });
                    let _ = ws.send(Message::text(frame.to_string())).await;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            }
        }
    })
    .await
}

/// A peer that accepts TCP and never says a word.
async fn silent_peer() -> Peer {
    peer(|tcp, _| async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(tcp);
    })
    .await
}

/// A plain-HTTP peer: whatever arrives gets `400 Bad Request` in clear text.
async fn plain_http_peer() -> Peer {
    peer(|mut tcp, _| async move {
        let mut buf = [0u8; 1024];
        let _ = tcp.read(&mut buf).await;
        let _ = tcp
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
        let _ = tcp.shutdown().await;
    })
    .await
}

// ---------------------------------------------------------------- clients

/// Client TLS settings: what the backend trusts, its client certificate, the name
/// it verifies.
struct Trust<'a> {
    ca: &'a Ca,
    identity: Option<&'a Leaf>,
    server_name: Option<&'a str>,
}

impl<'a> Trust<'a> {
    fn ca(ca: &'a Ca) -> Self {
        Self {
            ca,
            identity: None,
            server_name: None,
        }
    }

    fn identity(mut self, leaf: &'a Leaf) -> Self {
        self.identity = Some(leaf);
        self
    }

    fn server_name(mut self, name: &'a str) -> Self {
        self.server_name = Some(name);
        self
    }

    fn client_tls(&self) -> ClientTls {
        let identity = self.identity.map(|leaf| ClientIdentity {
            chain: vec![leaf.cert_der.clone()],
            key: leaf.key_der(),
        });
        ClientTls::new(&[self.ca.der()], identity, self.server_name).unwrap()
    }

    fn endpoint(&self, host: &str, port: u16) -> RemoteEndpoint {
        RemoteEndpoint::new(
            format!("https://{host}:{port}"),
            SecretToken::new(TOKEN).unwrap(),
            CONNECT,
            REQUEST,
        )
        .with_tls(self.client_tls())
        .with_label("rt-under-test")
    }

    fn rest(&self, host: &str, port: u16) -> HttpRuntimeClient {
        HttpRuntimeClient::new(self.endpoint(host, port)).unwrap()
    }

    fn events(&self, host: &str, port: u16) -> WsEventsClient {
        WsEventsClient::new(self.endpoint(host, port)).unwrap()
    }
}

fn worker() -> WorkerId {
    WorkerId::new("w-1").unwrap()
}

/// Neither `Display` nor `Debug` of `error` names the address, the host or the port.
fn assert_no_leak(error: &TransportError, port: u16) {
    for text in [error.to_string(), format!("{error:?}")] {
        for needle in [
            "127.0.0.1",
            "localhost",
            "runtime.test",
            &port.to_string(),
            TOKEN,
        ] {
            assert!(!text.contains(needle), "{needle} in {text}");
        }
    }
}

/// Expects `call` to fail with a TLS failure of `kind` within the connect timeout.
async fn expect_tls_failure<T>(
    what: &str,
    port: u16,
    kind: TlsFailure,
    call: impl Future<Output = Result<T, TransportError>>,
) {
    expect_failure(what, port, TransportError::Tls { kind }, call).await;
}

/// Expects `call` to fail with `expected` within the connect timeout.
async fn expect_failure<T>(
    what: &str,
    port: u16,
    expected: TransportError,
    call: impl Future<Output = Result<T, TransportError>>,
) {
    let started = Instant::now();
    let outcome = tokio::time::timeout(REQUEST, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer at all"));
    let elapsed = started.elapsed();
    let Err(error) = outcome else {
        panic!("{what}: expected {expected:?}, the call succeeded");
    };
    assert_eq!(error, expected, "{what}");
    assert!(
        elapsed < CONNECT + MARGIN,
        "{what}: took {elapsed:?}, beyond the {CONNECT:?} connect timeout"
    );
    assert_no_leak(&error, port);
}

// ---------------------------------------------------------------- success

#[tokio::test]
async fn one_tls_handshake_serves_many_pooled_calls() {
    let ca = Ca::new("Test CA");
    let peer = tls_peer(server_config(&ca.server(&["localhost"]), None), Serve::Rest).await;
    let client = Trust::ca(&ca).rest("localhost", peer.port);
    for _ in 0..25 {
        let list = client.list_workers(&WorkerQuery::default()).await.unwrap();
        assert!(list.workers.is_empty());
    }
    assert_eq!(peer.handshakes.load(Ordering::SeqCst), 1, "one handshake");
    assert_eq!(peer.accepted.load(Ordering::SeqCst), 1, "one connection");
}

#[tokio::test]
async fn an_ip_address_certificate_and_tls_server_name_both_verify() {
    let ca = Ca::new("Test CA");
    let by_ip = tls_peer(server_config(&ca.server(&["127.0.0.1"]), None), Serve::Rest).await;
    let by_name = tls_peer(
        server_config(&ca.server(&["runtime.test"]), None),
        Serve::Rest,
    )
    .await;
    Trust::ca(&ca)
        .rest("127.0.0.1", by_ip.port)
        .list_workers(&WorkerQuery::default())
        .await
        .unwrap();
    Trust::ca(&ca)
        .server_name("runtime.test")
        .rest("127.0.0.1", by_name.port)
        .list_workers(&WorkerQuery::default())
        .await
        .unwrap();
    // Without tls_server_name the IP address is verified, and the name is not it.
    expect_tls_failure(
        "a name certificate reached by IP",
        by_name.port,
        TlsFailure::NameMismatch,
        Trust::ca(&ca)
            .rest("127.0.0.1", by_name.port)
            .list_workers(&WorkerQuery::default()),
    )
    .await;
}

#[tokio::test]
async fn events_stream_over_tls_and_mtls() {
    let ca = Ca::new("Test CA");
    let clients = Ca::new("Backends CA");
    let backend = clients.client("backend-1");
    let plain = tls_peer(
        server_config(&ca.server(&["localhost"]), None),
        Serve::Events,
    )
    .await;
    let mutual = tls_peer(
        server_config(&ca.server(&["localhost"]), Some(&clients)),
        Serve::Events,
    )
    .await;
    for (trust, port) in [
        (Trust::ca(&ca), plain.port),
        (Trust::ca(&ca).identity(&backend), mutual.port),
    ] {
        let mut stream = trust
            .events("localhost", port)
            .subscribe(&worker(), None, false)
            .await
            .unwrap();
        let frame = tokio::time::timeout(REQUEST, stream.next())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(&frame, UpstreamFrame::Event { cursor, .. } if cursor == "c-1"),
            "{frame:?}"
        );
    }
}

#[tokio::test]
async fn mtls_with_a_trusted_client_certificate_succeeds() {
    let ca = Ca::new("Test CA");
    let clients = Ca::new("Backends CA");
    let peer = tls_peer(
        server_config(&ca.server(&["localhost"]), Some(&clients)),
        Serve::Rest,
    )
    .await;
    let client = Trust::ca(&ca)
        .identity(&clients.client("backend-1"))
        .rest("localhost", peer.port);
    for _ in 0..5 {
        client.list_workers(&WorkerQuery::default()).await.unwrap();
    }
    assert_eq!(peer.handshakes.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------- failures

/// One failure case: the peer's certificate and client-certificate rule, what the
/// client trusts and presents, and the kind expected.
struct Case {
    name: &'static str,
    server: Leaf,
    client_ca: Option<Ca>,
    trust_foreign: bool,
    identity: Option<Leaf>,
    kind: TlsFailure,
}

impl Case {
    /// What the client trusts and presents in this case: `ca`, or `other` when the
    /// case trusts a foreign CA, and the case's client certificate if any.
    fn trust<'a>(&'a self, ca: &'a Ca, other: &'a Ca) -> Trust<'a> {
        let trust = Trust::ca(if self.trust_foreign { other } else { ca });
        match &self.identity {
            Some(identity) => trust.identity(identity),
            None => trust,
        }
    }
}

fn failure_cases(ca: &Ca) -> Vec<Case> {
    let foreign = Ca::new("Foreign CA");
    let backends = Ca::new("Backends CA");
    let case = |name, server, kind| Case {
        name,
        server,
        client_ca: None,
        trust_foreign: false,
        identity: None,
        kind,
    };
    vec![
        case(
            "signed by another CA",
            foreign.server(&["localhost"]),
            TlsFailure::UntrustedCertificate,
        ),
        Case {
            trust_foreign: true,
            ..case(
                "the client trusts another CA",
                ca.server(&["localhost"]),
                TlsFailure::UntrustedCertificate,
            )
        },
        case(
            "for another name",
            ca.server(&["other.test"]),
            TlsFailure::NameMismatch,
        ),
        case(
            "expired",
            ca.server_with(&["localhost"], Validity::Expired),
            TlsFailure::Expired,
        ),
        case(
            "not valid yet",
            ca.server_with(&["localhost"], Validity::NotYetValid),
            TlsFailure::Expired,
        ),
        Case {
            client_ca: Some(Ca::new("Backends CA")),
            ..case(
                "mTLS without a client certificate",
                ca.server(&["localhost"]),
                TlsFailure::ClientCertificateRefused,
            )
        },
        Case {
            identity: Some(foreign.client("backend-1")),
            client_ca: Some(backends),
            ..case(
                "mTLS with a client certificate from another CA",
                ca.server(&["localhost"]),
                TlsFailure::ClientCertificateRefused,
            )
        },
    ]
}

#[tokio::test]
async fn certificate_and_client_certificate_failures_are_typed_for_both_clients() {
    let ca = Ca::new("Test CA");
    let other = Ca::new("Trusted instead");
    for case in failure_cases(&ca) {
        let trust = case.trust(&ca, &other);
        let config = server_config(&case.server, case.client_ca.as_ref());
        let rest = tls_peer(config.clone(), Serve::Rest).await;
        expect_tls_failure(
            &format!("REST, {}", case.name),
            rest.port,
            case.kind,
            trust
                .rest("localhost", rest.port)
                .list_workers(&WorkerQuery::default()),
        )
        .await;
        let events = tls_peer(config, Serve::Events).await;
        expect_tls_failure(
            &format!("events, {}", case.name),
            events.port,
            case.kind,
            async {
                trust
                    .events("localhost", events.port)
                    .subscribe(&worker(), None, false)
                    .await
                    .map(|_| ())
            },
        )
        .await;
    }
}

/// The WARN lines "TLS towards the runtime failed" logged on this thread while
/// `body` runs (each client names its runtime by its endpoint's label).
async fn tls_warnings_during(body: impl Future<Output = ()>) -> usize {
    use std::sync::Mutex;
    use tracing_subscriber::layer::{Context, SubscriberExt};

    struct Count(Arc<Mutex<usize>>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            struct Message(bool);
            impl tracing::field::Visit for Message {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    if field.name() == "message" {
                        self.0 |=
                            format!("{value:?}").starts_with("TLS towards the runtime failed:");
                    }
                }
            }
            let mut message = Message(false);
            event.record(&mut message);
            if *event.metadata().level() == tracing::Level::WARN && message.0 {
                *self.0.lock().unwrap() += 1;
            }
        }
    }
    let count = Arc::new(Mutex::new(0));
    let subscriber = tracing_subscriber::registry().with(Count(count.clone()));
    let _default = tracing::subscriber::set_default(subscriber);
    body.await;
    *count.lock().unwrap()
}

/// A runtime that stays misconfigured is logged once at WARN per client, however
/// many calls and probes fail, for every failure kind; a refused client certificate
/// included, whose handshake looks complete to the client before the runtime's
/// alert arrives (a completed handshake is not a success).
#[tokio::test]
async fn a_repeating_tls_failure_is_logged_once_per_client() {
    let ca = Ca::new("Test CA");
    let other = Ca::new("Trusted instead");
    for case in failure_cases(&ca) {
        let trust = case.trust(&ca, &other);
        let config = server_config(&case.server, case.client_ca.as_ref());
        let rest = tls_peer(config.clone(), Serve::Rest).await;
        let events = tls_peer(config, Serve::Events).await;
        let warnings = tls_warnings_during(async {
            let rest = trust.rest("localhost", rest.port);
            let events = trust.events("localhost", events.port);
            for _ in 0..3 {
                assert!(rest.list_workers(&WorkerQuery::default()).await.is_err());
                assert!(events.subscribe(&worker(), None, false).await.is_err());
            }
        })
        .await;
        assert_eq!(warnings, 2, "{}: one per client", case.name);
    }
}

#[tokio::test]
async fn a_peer_that_does_not_speak_tls_is_a_failed_handshake() {
    let ca = Ca::new("Test CA");
    let peer = plain_http_peer().await;
    expect_tls_failure(
        "REST to plain HTTP",
        peer.port,
        TlsFailure::HandshakeFailed,
        Trust::ca(&ca)
            .rest("localhost", peer.port)
            .list_workers(&WorkerQuery::default()),
    )
    .await;
    expect_tls_failure(
        "events to plain HTTP",
        peer.port,
        TlsFailure::HandshakeFailed,
        async {
            Trust::ca(&ca)
                .events("localhost", peer.port)
                .subscribe(&worker(), None, false)
                .await
                .map(|_| ())
        },
    )
    .await;
}

/// A peer that takes the connection and never answers the TLS handshake is a
/// connect timeout, as a black-holed TCP connect is: a hung or overloaded runtime,
/// not a certificate to fix.
#[tokio::test]
async fn a_silent_peer_is_a_connect_timeout_at_the_connect_timeout() {
    let ca = Ca::new("Test CA");
    let peer = silent_peer().await;
    let started = Instant::now();
    let timed_out = || TransportError::Timeout {
        phase: TimeoutPhase::Connect,
        timeout_ms: CONNECT.as_millis() as u64,
    };
    expect_failure(
        "REST to a silent peer",
        peer.port,
        timed_out(),
        Trust::ca(&ca)
            .rest("localhost", peer.port)
            .list_workers(&WorkerQuery::default()),
    )
    .await;
    assert!(
        started.elapsed() >= CONNECT - Duration::from_millis(100),
        "gave up before the connect timeout: {:?}",
        started.elapsed()
    );
    expect_failure("events to a silent peer", peer.port, timed_out(), async {
        Trust::ca(&ca)
            .events("localhost", peer.port)
            .subscribe(&worker(), None, false)
            .await
            .map(|_| ())
    })
    .await;
}

// ---------------------------------------------------------------- construction

#[test]
fn client_tls_refuses_unusable_settings() {
    let ca = Ca::new("Test CA");
    let leaf = ca.client("backend-1");
    let other = ca.client("backend-2");
    assert_eq!(
        ClientTls::new(&[], None, None).unwrap_err(),
        switchyard_transport::TlsSetupError::NoRoots
    );
    let mismatched = ClientIdentity {
        chain: vec![leaf.cert_der.clone()],
        key: other.key_der(),
    };
    assert_eq!(
        ClientTls::new(&[ca.der()], Some(mismatched), None).unwrap_err(),
        switchyard_transport::TlsSetupError::KeyMismatch
    );
    assert_eq!(
        ClientTls::new(&[ca.der()], None, Some("not a name!")).unwrap_err(),
        switchyard_transport::TlsSetupError::BadServerName
    );
    // TLS settings belong to https base URLs only, and https needs them.
    let tls = ClientTls::new(&[ca.der()], None, None).unwrap();
    let endpoint = RemoteEndpoint::new(
        "http://127.0.0.1:1",
        SecretToken::new(TOKEN).unwrap(),
        CONNECT,
        REQUEST,
    );
    assert!(matches!(
        HttpRuntimeClient::new(endpoint.clone().with_tls(tls.clone())).unwrap_err(),
        TransportError::Unsupported { .. }
    ));
    let debug = format!("{:?}", endpoint.with_tls(tls));
    assert!(
        !debug.contains("127.0.0.1") && !debug.contains(TOKEN),
        "{debug}"
    );
}

// ---------------------------------------------------------------- equality

#[test]
fn client_tls_values_are_equal_exactly_when_built_from_the_same_material() {
    let (ca, other_ca) = (Ca::new("Equality CA"), Ca::new("Other CA"));
    let (client, other_client) = (ca.client("backend"), ca.client("backend-2"));
    let identity = |leaf: &Leaf| {
        Some(ClientIdentity {
            chain: vec![leaf.cert_der.clone()],
            key: leaf.key_der(),
        })
    };
    let build = |roots: &Ca, leaf: Option<&Leaf>, name: Option<&str>| {
        ClientTls::new(&[roots.der()], leaf.and_then(identity), name).unwrap()
    };
    let base = build(&ca, Some(&client), None);
    // (what differs, equal?)
    let cases = [
        ("nothing", build(&ca, Some(&client), None), true),
        ("the CA", build(&other_ca, Some(&client), None), false),
        (
            "the client certificate",
            build(&ca, Some(&other_client), None),
            false,
        ),
        ("no client certificate", build(&ca, None, None), false),
        (
            "the name to verify",
            build(&ca, Some(&client), Some("rt.internal")),
            false,
        ),
    ];
    for (differs, tls, equal) in cases {
        assert_eq!(base == tls, equal, "{differs}");
    }
}
