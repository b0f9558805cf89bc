//! Handler tests of the Runtime API (`/v1`) over real TCP on 127.0.0.1:0: every route,
//! every error code the contract lists for it, auth, body limits, ids, cursors, and the
//! shape of every error body (`{"error":{"code":..,"message":..,...}}`).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{TOKEN, TestResponse, TestServer, WAIT, config, request, settings};
use futures_util::{SinkExt, StreamExt};
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{Map, Value, json};
use switchyard_protocol::WorkerId;
use switchyard_runtime::{Profile, ProfileSpec, RuntimeConfig, RuntimeLimits};
use switchyard_server::runtime_api::RuntimeApiSettings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The headers of a WebSocket handshake, for requests made with the plain client.
const WS_HEADERS: [(&str, &str); 4] = [
    ("connection", "upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// Keys an error object may carry, per the contract.
const ERROR_KEYS: [&str; 5] = [
    "code",
    "message",
    "runtime_id",
    "worker_id",
    "retry_after_ms",
];

/// Ids that break the id rules, as they appear in a path.
fn bad_ids() -> Vec<String> {
    vec![
        ".hidden".to_owned(),
        "a".repeat(65),
        "a%20b".to_owned(),
        "a%2Fb".to_owned(),
        "..".to_owned(),
        "%2E%2E".to_owned(),
        "caf%C3%A9".to_owned(),
        "a%00b".to_owned(),
        "a:b".to_owned(),
    ]
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn text(r: &TestResponse) -> String {
    String::from_utf8_lossy(&r.raw).into_owned()
}

/// What every answer has: a request id, and never the token.
fn check_common(r: &TestResponse) {
    let id = r
        .headers
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id on {} {}", r.status, text(r)));
    assert!(!id.is_empty(), "empty x-request-id");
    assert!(
        !contains(&r.raw, TOKEN.as_bytes()),
        "the token leaked into a body: {}",
        text(r)
    );
    for (name, value) in &r.headers {
        assert!(
            !contains(value.as_bytes(), TOKEN.as_bytes()),
            "the token leaked into header {name}"
        );
    }
}

/// A success answer with `status`; returns its JSON.
fn expect_status(r: &TestResponse, status: StatusCode) -> &Value {
    check_common(r);
    assert_eq!(r.status, status, "unexpected answer: {}", text(r));
    &r.json
}

/// An error answer with `status` and `code`, in exactly the contract's body shape.
fn expect_error<'a>(r: &'a TestResponse, status: StatusCode, code: &str) -> &'a Map<String, Value> {
    check_common(r);
    let body = text(r);
    assert_eq!(r.status, status, "expected {status} {code}, got: {body}");
    assert_eq!(
        r.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "content type of error {body}"
    );
    let top = r
        .json
        .as_object()
        .unwrap_or_else(|| panic!("error body is not a JSON object: {body}"));
    assert_eq!(top.len(), 1, "only `error` at the top level: {body}");
    let error = top
        .get("error")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("no `error` object: {body}"));
    assert_eq!(
        error.get("code").and_then(Value::as_str),
        Some(code),
        "error code of {body}"
    );
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string message: {body}"));
    assert!(!message.trim().is_empty(), "empty message: {body}");
    for key in error.keys() {
        assert!(
            ERROR_KEYS.contains(&key.as_str()),
            "unexpected key {key:?} in {body}"
        );
    }
    if let Some(worker_id) = error.get("worker_id") {
        assert!(worker_id.is_string(), "worker_id is a string: {body}");
    }
    if let Some(retry) = error.get("retry_after_ms") {
        assert!(retry.is_u64(), "retry_after_ms is a whole number: {body}");
    }
    error
}

/// An authorised call; checks what every answer has.
async fn call(server: &TestServer, method: Method, path: &str, body: Option<&str>) -> TestResponse {
    let r = server.call(method, path, body).await;
    check_common(&r);
    r
}

async fn get(server: &TestServer, path: &str) -> TestResponse {
    call(server, Method::GET, path, None).await
}

async fn post(server: &TestServer, path: &str, body: &str) -> TestResponse {
    call(server, Method::POST, path, Some(body)).await
}

/// A request with custom headers; checks what every answer has.
async fn custom(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> TestResponse {
    let r = request(server.addr, method, path, body.map(<[u8]>::to_vec), headers).await;
    check_common(&r);
    r
}

/// A server on `cfg` after `limit` changed its limits.
async fn start_with_limits(
    mut cfg: RuntimeConfig,
    limit: impl FnOnce(&mut RuntimeLimits),
) -> TestServer {
    limit(&mut cfg.limits);
    TestServer::start(cfg).await
}

/// Creates a worker from `profile` and returns its id.
async fn create(server: &TestServer, profile: &str) -> String {
    let body = json!({ "profile": profile }).to_string();
    let r = post(server, "/v1/workers", &body).await;
    let v = expect_status(&r, StatusCode::CREATED);
    assert_eq!(v["status"], "running", "{v}");
    v["worker_id"].as_str().unwrap().to_owned()
}

async fn stop(server: &TestServer, id: &str) {
    let r = call(
        server,
        Method::POST,
        &format!("/v1/workers/{id}/stop"),
        None,
    )
    .await;
    let v = expect_status(&r, StatusCode::OK);
    assert_eq!(v["status"], "stopped", "{v}");
}

async fn input(server: &TestServer, id: &str, text: &str) -> u64 {
    let body = json!({ "text": text }).to_string();
    let r = post(server, &format!("/v1/workers/{id}/input"), &body).await;
    let v = expect_status(&r, StatusCode::ACCEPTED);
    let object = v.as_object().unwrap();
    assert_eq!(object.len(), 1, "{v}");
    v["sequence"]
        .as_u64()
        .unwrap_or_else(|| panic!("no sequence in {v}"))
}

async fn detail(server: &TestServer, id: &str) -> Value {
    let r = get(server, &format!("/v1/workers/{id}")).await;
    expect_status(&r, StatusCode::OK).clone()
}

async fn transcript(server: &TestServer, id: &str, query: &str) -> Value {
    let r = get(server, &format!("/v1/workers/{id}/transcript{query}")).await;
    let page = expect_status(&r, StatusCode::OK).clone();
    assert!(page["items"].is_array(), "{page}");
    assert!(page["total"].is_u64(), "{page}");
    assert!(
        page["next_after"].is_null() || page["next_after"].is_u64(),
        "{page}"
    );
    page
}

/// Polls the transcript until it holds at least `total` items.
async fn wait_for_total(server: &TestServer, id: &str, total: u64) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let page = transcript(server, id, "?limit=1000").await;
        if page["total"].as_u64() >= Some(total) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "the transcript of {id} never reached {total} items: {page}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A configuration with an extra `slow` echo profile that answers after a minute.
fn slow_config() -> RuntimeConfig {
    config().with_profile(
        "slow",
        Profile::new(ProfileSpec::Echo {
            delay: Duration::from_secs(60),
        })
        .with_description("echo after a minute"),
    )
}

fn small_body_settings() -> RuntimeApiSettings {
    RuntimeApiSettings {
        max_body_bytes: switchyard_server::http::body::BodyLimit::new(1024),
        ..settings(Some(TOKEN))
    }
}

/// Writes `head` and `body` on a raw connection and reads one answer back, for
/// requests the HTTP client will not make (lying `Content-Length`, chunked bodies).
async fn raw_exchange(addr: SocketAddr, head: &str, body: &[u8]) -> TestResponse {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut out = head.as_bytes().to_vec();
        out.extend_from_slice(body);
        // The server may answer (and stop reading) before it has it all.
        let _ = stream.write_all(&out).await;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            let n = stream.read(&mut chunk).await.expect("read the answer");
            assert!(
                n > 0,
                "closed before an answer: {}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&buf[..head_end]).unwrap().to_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line in {head}"));
        let mut headers = HeaderMap::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').unwrap();
            headers.append(
                HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                HeaderValue::from_str(value.trim()).unwrap(),
            );
        }
        let length: usize = headers
            .get("content-length")
            .map_or(0, |v| v.to_str().unwrap().parse().unwrap());
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await.expect("read the body");
            assert!(n > 0, "closed in the middle of the body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let raw = Bytes::copy_from_slice(&buf[head_end..head_end + length]);
        let json = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        TestResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            raw,
            json,
        }
    };
    let r = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("an answer in time");
    check_common(&r);
    r
}

fn raw_head(method: &str, path: &str, extra: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: {}\r\n\
         content-type: application/json\r\n{extra}\r\n",
        bearer()
    )
}

// ---------------------------------------------------------------------------------
// Health and auth
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn health_needs_no_auth_and_reveals_only_its_status() {
    let server = TestServer::start(config()).await;
    let auth = bearer();
    let variants: [&[(&str, &str)]; 3] = [
        &[],
        &[("authorization", "Bearer wrong-token")],
        &[("authorization", auth.as_str())],
    ];
    for headers in variants {
        let r = custom(&server, Method::GET, "/v1/health", None, headers).await;
        assert_eq!(expect_status(&r, StatusCode::OK), &json!({"status": "ok"}));
        assert!(r.headers.get(WWW_AUTHENTICATE).is_none());
        assert!(!contains(&r.raw, b"rt-test"), "health names the runtime");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_protected_route_answers_401_without_the_right_bearer_token() {
    let server = TestServer::start(config()).await;
    let id = create(&server, "echo").await;
    let w = format!("/v1/workers/{id}");
    let routes: Vec<(Method, String, Option<&str>, bool)> = vec![
        (Method::GET, "/v1/runtime".into(), None, false),
        (Method::GET, "/v1/workers".into(), None, false),
        (Method::GET, "/v1/workers?limit=1".into(), None, false),
        (
            Method::POST,
            "/v1/workers".into(),
            Some(r#"{"profile":"echo"}"#),
            false,
        ),
        (Method::GET, w.clone(), None, false),
        (Method::DELETE, w.clone(), None, false),
        (Method::PUT, w.clone(), None, false),
        (
            Method::POST,
            format!("{w}/input"),
            Some(r#"{"text":"hi"}"#),
            false,
        ),
        (Method::POST, format!("{w}/cancel"), None, false),
        (Method::POST, format!("{w}/stop"), None, false),
        (Method::GET, format!("{w}/transcript"), None, false),
        (Method::GET, format!("{w}/events/ws"), None, false),
        (Method::GET, format!("{w}/events/ws"), None, true),
        (
            Method::GET,
            format!("{w}/events/ws?cursor=junk"),
            None,
            true,
        ),
        (Method::GET, "/v1/workers/nobody".into(), None, false),
        (
            Method::GET,
            "/v1/workers/nobody/events/ws".into(),
            None,
            true,
        ),
    ];
    let auth_variants: Vec<Option<String>> = vec![
        None,
        Some("Bearer wrong-token".into()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer x{TOKEN}")),
        Some(format!("Basic {TOKEN}")),
        Some(format!("Token {TOKEN}")),
        Some(TOKEN.to_owned()),
        Some("Bearer".into()),
        Some("Bearer ".into()),
    ];
    for (method, path, body, ws) in &routes {
        for auth in &auth_variants {
            let mut headers: Vec<(&str, &str)> = Vec::new();
            if let Some(auth) = auth {
                headers.push(("authorization", auth.as_str()));
            }
            if body.is_some() {
                headers.push(("content-type", "application/json"));
            }
            if *ws {
                headers.extend(WS_HEADERS);
            }
            let r = custom(
                &server,
                method.clone(),
                path,
                body.map(str::as_bytes),
                &headers,
            )
            .await;
            expect_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
            let challenge = r
                .headers
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("no WWW-Authenticate on {method} {path} ({auth:?})"));
            assert!(
                challenge.starts_with("Bearer"),
                "WWW-Authenticate: {challenge}"
            );
        }
    }
    // Nothing was done on the worker's behalf.
    let d = detail(&server, &id).await;
    assert_eq!(d["status"], "running");
    assert_eq!(d["input_count"], 0);
    let r = get(&server, "/v1/workers").await;
    assert_eq!(
        expect_status(&r, StatusCode::OK)["workers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_worker_id_without_a_token_is_still_401() {
    let server = TestServer::start(config()).await;
    for id in bad_ids() {
        for suffix in [
            "",
            "/input",
            "/cancel",
            "/stop",
            "/transcript",
            "/events/ws",
        ] {
            let path = format!("/v1/workers/{id}{suffix}");
            let r = custom(&server, Method::GET, &path, None, &[]).await;
            expect_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
            assert!(r.headers.get(WWW_AUTHENTICATE).is_some());
        }
    }
    server.shutdown().await;
}

/// Cancel, stop and delete take no body: none, or `{}`; a field is unknown.
#[tokio::test(flavor = "multi_thread")]
async fn bodyless_commands_refuse_fields() {
    let server = TestServer::start(config()).await;
    let id = create(&server, "echo").await;
    let auth = bearer();
    let json_ct = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    for action in ["cancel", "stop"] {
        let path = format!("/v1/workers/{id}/{action}");
        let r = custom(&server, Method::POST, &path, Some(br#"{"x":1}"#), &json_ct).await;
        expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
        let r = custom(&server, Method::POST, &path, Some(b"not json"), &json_ct).await;
        expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let path = format!("/v1/workers/{id}/stop");
    let plain = [
        ("authorization", auth.as_str()),
        ("content-type", "text/plain"),
    ];
    let r = custom(&server, Method::POST, &path, Some(b"{}"), &plain).await;
    expect_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let r = custom(&server, Method::POST, &path, Some(b" { } "), &json_ct).await;
    expect_status(&r, StatusCode::OK);
    let r = custom(
        &server,
        Method::DELETE,
        &format!("/v1/workers/{id}"),
        Some(br#"{"x":1}"#),
        &json_ct,
    )
    .await;
    expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    let r = custom(
        &server,
        Method::DELETE,
        &format!("/v1/workers/{id}"),
        None,
        &[("authorization", auth.as_str())],
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_route_without_a_token_is_401_not_404() {
    let server = TestServer::start(config()).await;
    for path in ["/v1/nope", "/v1/workers/w-1/nope", "/nope"] {
        let r = custom(&server, Method::GET, path, None, &[]).await;
        expect_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let auth = bearer();
    let r = custom(
        &server,
        Method::GET,
        "/v1/nope",
        None,
        &[("authorization", &auth)],
    )
    .await;
    expect_error(&r, StatusCode::NOT_FOUND, "route_not_found");
    server.shutdown().await;
}

/// A web page must not reach a runtime, least of all one without a token on
/// loopback: a `fetch` with a body of no declared type (no preflight), a WebSocket,
/// a page whose own name was made to resolve to 127.0.0.1.
#[tokio::test(flavor = "multi_thread")]
async fn browsers_are_refused_with_or_without_a_token() {
    let open = TestServer::start_with(config(), settings(None)).await;
    let guarded = TestServer::start(config()).await;
    let auth = bearer();
    let body = Some(br#"{"profile":"echo"}"#.as_slice());
    for (server, authorization) in [(&open, None), (&guarded, Some(auth.as_str()))] {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut headers: Vec<(&str, &str)> = extra.to_vec();
            headers.extend(authorization.map(|a| ("authorization", a)));
            headers
        };
        for page in [
            [("origin", "http://evil.example")],
            [("sec-fetch-site", "cross-site")],
            [("sec-fetch-site", "same-origin")],
        ] {
            let r = custom(server, Method::POST, "/v1/workers", body, &with(&page)).await;
            expect_error(&r, StatusCode::FORBIDDEN, "cross_origin_request");
            let r = custom(server, Method::GET, "/v1/workers", None, &with(&page)).await;
            expect_error(&r, StatusCode::FORBIDDEN, "cross_origin_request");
        }
        // The WebSocket handshake a page's `new WebSocket(...)` sends.
        let id = create(&guarded, "echo").await;
        let path = format!("/v1/workers/{id}/events/ws");
        let mut headers = with(&[("origin", "http://evil.example")]);
        headers.extend(WS_HEADERS);
        let r = custom(server, Method::GET, &path, None, &headers).await;
        expect_error(&r, StatusCode::FORBIDDEN, "cross_origin_request");
    }
    // DNS rebinding: only a runtime without a token checks the name it is reached by.
    let rebound = [("host", "evil.example:7701")];
    let r = custom(&open, Method::GET, "/v1/workers", None, &rebound).await;
    expect_error(&r, StatusCode::FORBIDDEN, "host_not_allowed");
    let r = custom(
        &guarded,
        Method::GET,
        "/v1/workers",
        None,
        &[("host", "build-1.internal:7701"), ("authorization", &auth)],
    )
    .await;
    expect_status(&r, StatusCode::OK);
    // Nothing was started by the pages.
    let r = custom(&open, Method::GET, "/v1/workers", None, &[]).await;
    assert_eq!(expect_status(&r, StatusCode::OK)["workers"], json!([]));
    open.shutdown().await;
    guarded.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_auth_off_every_route_works_without_a_header() {
    let server = TestServer::start_with(config(), settings(None)).await;
    let json_ct = [("content-type", "application/json")];
    let r = custom(&server, Method::GET, "/v1/runtime", None, &[]).await;
    assert_eq!(expect_status(&r, StatusCode::OK)["api_version"], 1);
    let r = custom(
        &server,
        Method::POST,
        "/v1/workers",
        Some(br#"{"profile":"echo"}"#),
        &json_ct,
    )
    .await;
    let id = expect_status(&r, StatusCode::CREATED)["worker_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let w = format!("/v1/workers/{id}");
    let r = custom(&server, Method::GET, "/v1/workers", None, &[]).await;
    assert_eq!(
        expect_status(&r, StatusCode::OK)["workers"][0]["worker_id"],
        id.as_str()
    );
    let r = custom(&server, Method::GET, &w, None, &[]).await;
    assert_eq!(expect_status(&r, StatusCode::OK)["worker_id"], id.as_str());
    let r = custom(
        &server,
        Method::POST,
        &format!("{w}/input"),
        Some(br#"{"text":"hi"}"#),
        &json_ct,
    )
    .await;
    expect_status(&r, StatusCode::ACCEPTED);
    let r = custom(&server, Method::POST, &format!("{w}/cancel"), None, &[]).await;
    expect_status(&r, StatusCode::OK);
    let r = custom(&server, Method::GET, &format!("{w}/transcript"), None, &[]).await;
    expect_status(&r, StatusCode::OK);
    // An Authorization header is ignored when auth is off.
    let r = custom(
        &server,
        Method::GET,
        &format!("{w}/transcript"),
        None,
        &[("authorization", "Bearer whatever")],
    )
    .await;
    expect_status(&r, StatusCode::OK);
    let (mut ws, response) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(server.ws_url(&format!("{w}/events/ws"))),
    )
    .await
    .expect("handshake in time")
    .expect("upgrade without a token");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let _ = ws.close(None).await;
    let r = custom(&server, Method::POST, &format!("{w}/stop"), None, &[]).await;
    assert_eq!(expect_status(&r, StatusCode::OK)["status"], "stopped");
    let r = custom(&server, Method::DELETE, &w, None, &[]).await;
    check_common(&r);
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Runtime info
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn runtime_info_describes_the_runtime_and_counts_workers() {
    let server = TestServer::start(config()).await;
    let r = get(&server, "/v1/runtime").await;
    let info = expect_status(&r, StatusCode::OK).clone();
    assert_eq!(info["api_version"], 1, "{info}");
    assert_eq!(info["runtime_id"], "rt-test");
    assert_eq!(info["display_name"], "Test runtime");
    assert_eq!(info["status"], "running");
    assert!(!info["version"].as_str().unwrap().is_empty());
    let epoch = info["epoch"].as_str().unwrap().to_owned();
    assert!(!epoch.is_empty());
    assert!(info["capabilities"].is_array());
    let profiles = info["profiles"].as_array().unwrap();
    assert!(
        profiles
            .iter()
            .any(|p| p["name"] == "echo" && p["kind"] == "echo"),
        "{info}"
    );
    for status in ["starting", "running", "exited", "stopped", "failed", "lost"] {
        assert_eq!(info["workers"][status], 0, "{info}");
    }
    assert_eq!(info["limits"]["max_workers"], 64, "{info}");
    assert!(info["limits"]["transcript_page_max"].is_u64());

    let first = create(&server, "echo").await;
    let _second = create(&server, "echo").await;
    let r = get(&server, "/v1/runtime").await;
    assert_eq!(expect_status(&r, StatusCode::OK)["workers"]["running"], 2);
    stop(&server, &first).await;
    let r = get(&server, "/v1/runtime").await;
    let info = expect_status(&r, StatusCode::OK);
    assert_eq!(info["workers"]["running"], 1, "{info}");
    assert_eq!(info["workers"]["stopped"], 1, "{info}");
    assert_eq!(
        info["epoch"],
        epoch.as_str(),
        "the epoch is stable within a process"
    );

    let other = TestServer::start(config()).await;
    let r = get(&other, "/v1/runtime").await;
    assert_ne!(
        expect_status(&r, StatusCode::OK)["epoch"],
        epoch.as_str(),
        "every start has its own epoch"
    );
    other.shutdown().await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Creating workers
// ---------------------------------------------------------------------------------

fn assert_timestamp(v: &Value) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is a string: {v}"));
    assert!(
        s.len() >= 20 && s.contains('T') && s.ends_with('Z'),
        "RFC 3339 UTC: {s}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn create_answers_201_with_the_worker_detail() {
    let server = TestServer::start(config()).await;
    let r = post(
        &server,
        "/v1/workers",
        r#"{"profile":"echo","label":"my label"}"#,
    )
    .await;
    let d = expect_status(&r, StatusCode::CREATED).clone();
    let id = d["worker_id"].as_str().unwrap().to_owned();
    assert!(WorkerId::new(id.clone()).is_ok(), "a valid id: {id}");
    assert_eq!(d["runtime_id"], "rt-test");
    assert_eq!(d["profile"], "echo");
    assert_eq!(d["label"], "my label");
    assert_eq!(d["status"], "running");
    assert_timestamp(&d["created_at"]);
    assert_timestamp(&d["updated_at"]);
    assert!(d["exit"].is_null(), "{d}");
    assert_eq!(d["input_count"], 0);
    assert_eq!(d["output_bytes"], 0);

    let got = detail(&server, &id).await;
    for key in [
        "worker_id",
        "runtime_id",
        "profile",
        "label",
        "status",
        "created_at",
        "exit",
        "input_count",
        "output_bytes",
    ] {
        assert_eq!(got[key], d[key], "{key} of {got}");
    }

    let r = post(&server, "/v1/workers", r#"{"profile":"echo"}"#).await;
    let d = expect_status(&r, StatusCode::CREATED);
    assert!(d["label"].is_null(), "no label: {d}");
    assert_ne!(d["worker_id"], id.as_str());

    // Content-Type with parameters is still JSON.
    let r = custom(
        &server,
        Method::POST,
        "/v1/workers",
        Some(br#"{"profile":"echo"}"#),
        &[
            ("authorization", bearer().as_str()),
            ("content-type", "application/json; charset=utf-8"),
        ],
    )
    .await;
    expect_status(&r, StatusCode::CREATED);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_rejects_bad_requests_without_starting_anything() {
    let server = TestServer::start(config()).await;
    let r = post(&server, "/v1/workers", r#"{"profile":"nope"}"#).await;
    expect_error(&r, StatusCode::BAD_REQUEST, "unknown_profile");
    let r = post(&server, "/v1/workers", r#"{"profile":"Echo"}"#).await;
    expect_error(&r, StatusCode::BAD_REQUEST, "unknown_profile");

    for body in [
        r#"{"profile":"echo","command":["sh"]}"#,
        r#"{"profile":"echo","env":{"A":"b"}}"#,
        r#"{"profile":"echo","cwd":"/"}"#,
        r#"{"profile":"echo""#,
        r#"{"label":"x"}"#,
        r#"{"profile":7}"#,
        r#""echo""#,
        "null",
        "not json",
        "",
    ] {
        let r = post(&server, "/v1/workers", body).await;
        let e = expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(!e["message"].as_str().unwrap().is_empty(), "{body}");
    }
    let auth = bearer();
    // A body of any other type, or of none, is not read (`fetch` sends a body of
    // no declared type without asking the server first).
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut headers = vec![("authorization", auth.as_str())];
        headers.extend(content_type.map(|t| ("content-type", t)));
        let r = custom(
            &server,
            Method::POST,
            "/v1/workers",
            Some(br#"{"profile":"echo"}"#),
            &headers,
        )
        .await;
        expect_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    // A type that is not visible ASCII is not JSON either (it was once taken for no
    // type at all).
    let body = br#"{"profile":"echo"}"#;
    let head = format!(
        "POST /v1/workers HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: {auth}\r\n\
         content-type: application/json\u{e4}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let r = raw_exchange(server.addr, &head, body).await;
    expect_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let r = post(&server, "/v1/workers?profile=echo", r#"{"profile":"echo"}"#).await;
    expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");

    let r = get(&server, "/v1/workers").await;
    let list = expect_status(&r, StatusCode::OK);
    assert_eq!(list["workers"], json!([]), "nothing was started: {list}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_arrays_are_not_request_objects() {
    let server = TestServer::start(config()).await;
    let r = post(&server, "/v1/workers", r#"["echo"]"#).await;
    expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    let r = post(&server, "/v1/workers", r#"["echo","label"]"#).await;
    expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    let id = create(&server, "echo").await;
    let r = post(&server, &format!("/v1/workers/{id}/input"), r#"["hi"]"#).await;
    expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_over_max_workers_is_429_worker_limit_reached() {
    let server = start_with_limits(config(), |limits| limits.max_workers = 1).await;
    let first = create(&server, "echo").await;
    let r = post(&server, "/v1/workers", r#"{"profile":"echo"}"#).await;
    expect_error(&r, StatusCode::TOO_MANY_REQUESTS, "worker_limit_reached");
    // Ended workers do not count.
    stop(&server, &first).await;
    create(&server, "echo").await;
    let r = post(&server, "/v1/workers", r#"{"profile":"echo"}"#).await;
    expect_error(&r, StatusCode::TOO_MANY_REQUESTS, "worker_limit_reached");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Listing workers
// ---------------------------------------------------------------------------------

async fn list(server: &TestServer, query: &str) -> Value {
    let r = get(server, &format!("/v1/workers{query}")).await;
    let v = expect_status(&r, StatusCode::OK).clone();
    assert!(v["workers"].is_array(), "{v}");
    assert!(v["next"].is_null() || v["next"].is_string(), "{v}");
    v
}

fn ids_of(page: &Value) -> Vec<String> {
    page["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["worker_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pages_by_id_filters_by_status_and_rejects_bad_queries() {
    let server = TestServer::start(config()).await;
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(create(&server, "echo").await);
    }
    created.sort();

    let all = list(&server, "").await;
    assert_eq!(ids_of(&all), created);
    assert!(all["next"].is_null());

    // Pages of two: next is the last id of each page, null on the last one.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = list(&server, &query).await;
        let ids = ids_of(&page);
        pages += 1;
        assert!(ids.len() <= 2, "{page}");
        seen.extend(ids.clone());
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), ids.last().map(String::as_str), "{page}");
                query = format!("?limit=2&after={next}");
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created);
    // A page that ends exactly at the last worker has no next.
    let exact = list(&server, "?limit=5").await;
    assert_eq!(ids_of(&exact).len(), 5);
    assert!(exact["next"].is_null(), "{exact}");
    let rest = list(&server, &format!("?after={}", created[4])).await;
    assert_eq!(rest["workers"], json!([]));

    // Status filter.
    stop(&server, &created[1]).await;
    stop(&server, &created[3]).await;
    let stopped = list(&server, "?status=stopped").await;
    assert_eq!(
        ids_of(&stopped),
        vec![created[1].clone(), created[3].clone()]
    );
    assert!(
        stopped["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["status"] == "stopped")
    );
    let running = list(&server, "?status=running&limit=2").await;
    assert_eq!(
        ids_of(&running),
        vec![created[0].clone(), created[2].clone()]
    );
    assert_eq!(running["next"], created[2].as_str());
    let running = list(
        &server,
        &format!("?status=running&limit=2&after={}", created[2]),
    )
    .await;
    assert_eq!(ids_of(&running), vec![created[4].clone()]);
    assert!(running["next"].is_null());
    assert_eq!(list(&server, "?status=failed").await["workers"], json!([]));

    for query in [
        "?status=bogus",
        "?status=RUNNING",
        "?limit=abc",
        "?limit=-1",
        "?limit=1.5",
        "?bogus=1",
        "?limit=1&limit=2",
        "?limit=0",
        "?limit=",
        "?status=",
    ] {
        let r = get(&server, &format!("/v1/workers{query}")).await;
        expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let r = get(&server, "/v1/workers?limit=1001").await;
    expect_error(&r, StatusCode::BAD_REQUEST, "limit_too_large");
    let r = get(&server, "/v1/workers?limit=1000").await;
    expect_status(&r, StatusCode::OK);
    for after in bad_ids().into_iter().chain([String::new()]) {
        let r = get(&server, &format!("/v1/workers?after={after}")).await;
        expect_error(&r, StatusCode::BAD_REQUEST, "invalid_id");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_limit_is_bounded_by_the_page_max_and_defaults_within_it() {
    let server = start_with_limits(config(), |limits| limits.transcript_page_max = 3).await;
    for _ in 0..5 {
        create(&server, "echo").await;
    }
    let page = list(&server, "").await;
    assert_eq!(
        ids_of(&page).len(),
        3,
        "default page within the max: {page}"
    );
    assert_eq!(
        page["next"].as_str(),
        ids_of(&page).last().map(String::as_str)
    );
    let r = get(&server, "/v1/workers?limit=4").await;
    expect_error(&r, StatusCode::BAD_REQUEST, "limit_too_large");
    assert_eq!(ids_of(&list(&server, "?limit=3").await).len(), 3);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------
// One worker: get, delete, ids
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn get_and_delete_a_worker() {
    let server = TestServer::start(config()).await;
    for missing in [
        "nobody",
        "w-00000000000-000000",
        "a".repeat(64).as_str(),
        "A.b_c-9",
    ] {
        let r = get(&server, &format!("/v1/workers/{missing}")).await;
        let e = expect_error(&r, StatusCode::NOT_FOUND, "worker_not_found");
        if let Some(w) = e.get("worker_id") {
            assert_eq!(w, missing);
        }
        let r = call(
            &server,
            Method::DELETE,
            &format!("/v1/workers/{missing}"),
            None,
        )
        .await;
        expect_error(&r, StatusCode::NOT_FOUND, "worker_not_found");
    }

    let id = create(&server, "echo").await;
    let r = call(&server, Method::DELETE, &format!("/v1/workers/{id}"), None).await;
    let e = expect_error(&r, StatusCode::CONFLICT, "worker_running");
    assert_eq!(e["worker_id"], id.as_str());
    assert_eq!(detail(&server, &id).await["status"], "running");

    stop(&server, &id).await;
    let r = call(&server, Method::DELETE, &format!("/v1/workers/{id}"), None).await;
    check_common(&r);
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", text(&r));
    assert!(r.raw.is_empty());
    for path in [
        format!("/v1/workers/{id}"),
        format!("/v1/workers/{id}/transcript"),
    ] {
        let r = get(&server, &path).await;
        expect_error(&r, StatusCode::NOT_FOUND, "worker_not_found");
    }
    let r = call(&server, Method::DELETE, &format!("/v1/workers/{id}"), None).await;
    expect_error(&r, StatusCode::NOT_FOUND, "worker_not_found");
    assert!(!ids_of(&list(&server, "").await).contains(&id));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_worker_ids_are_400_invalid_id_on_every_worker_route() {
    let server = TestServer::start(config()).await;
    let auth = bearer();
    for id in bad_ids() {
        let w = format!("/v1/workers/{id}");
        let cases: Vec<(Method, String, Option<&str>)> = vec![
            (Method::GET, w.clone(), None),
            (Method::DELETE, w.clone(), None),
            (Method::POST, format!("{w}/input"), Some(r#"{"text":"hi"}"#)),
            (Method::POST, format!("{w}/cancel"), None),
            (Method::POST, format!("{w}/stop"), None),
            (Method::GET, format!("{w}/transcript"), None),
            (Method::GET, format!("{w}/events/ws"), None),
        ];
        for (method, path, body) in cases {
            let r = call(&server, method.clone(), &path, body).await;
            expect_error(&r, StatusCode::BAD_REQUEST, "invalid_id");
        }
        let mut headers = vec![("authorization", auth.as_str())];
        headers.extend(WS_HEADERS);
        let r = custom(
            &server,
            Method::GET,
            &format!("{w}/events/ws"),
            None,
            &headers,
        )
        .await;
        expect_error(&r, StatusCode::BAD_REQUEST, "invalid_id");
    }
    // The server is still fine.
    create(&server, "echo").await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn input_is_accepted_with_growing_sequences() {
    let server = TestServer::start(config()).await;
    let id = create(&server, "echo").await;
    let mut last = 0;
    for text in ["one\n", "two\n", "", "ünïcødé ✓"] {
        let sequence = input(&server, &id, text).await;
        assert!(sequence > last, "sequences grow: {sequence} after {last}");
        last = sequence;
    }
    // started + 4 inputs + 4 outputs.
    wait_for_total(&server, &id, 9).await;
    let d = detail(&server, &id).await;
    assert_eq!(d["input_count"], 4, "{d}");
    let bytes = ["one\n", "two\n", "", "ünïcødé ✓"]
        .iter()
        .map(|t| t.len())
        .sum::<usize>();
    assert_eq!(d["output_bytes"], bytes as u64, "{d}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn input_errors() {
    let server = TestServer::start(config()).await;
    let r = post(&server, "/v1/workers/nobody/input", r#"{"text":"hi"}"#).await;
    let e = expect_error(&r, StatusCode::NOT_FOUND, "worker_not_found");
    if let Some(w) = e.get("worker_id") {
        assert_eq!(w, "nobody");
    }

    let id = create(&server, "echo").await;
    let path = format!("/v1/workers/{id}/input");
    for body in [
        "{}",
        r#"{"text":null}"#,
        r#"{"text":5}"#,
        r#"{"input":"hi"}"#,
        r#"{"text":"hi","extra":1}"#,
        r#"{"text":"hi""#,
        "\"hi\"",
        "",
    ] {
        let r = post(&server, &path, body).await;
        expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let r = custom(
        &server,
        Method::POST,
        &path,
        Some(br#"{"text":"hi"}"#),
        &[
            ("authorization", bearer().as_str()),
            ("content-type", "text/plain"),
        ],
    )
    .await;
    expect_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert_eq!(detail(&server, &id).await["input_count"], 0);

    stop(&server, &id).await;
    let r = post(&server, &path, r#"{"text":"hi"}"#).await;
    let e = expect_error(&r, StatusCode::CONFLICT, "worker_not_running");
    assert_eq!(e["worker_id"], id.as_str());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_are_413_payload_too_large() {
    let server = TestServer::start_with(config(), small_body_settings()).await;
    let id = create(&server, "echo").await;
    let input_path = format!("/v1/workers/{id}/input");

    // A 4 KiB JSON body through the ordinary client (it declares its length).
    let big = json!({ "text": "x".repeat(4096 - 11) }).to_string();
    assert_eq!(big.len(), 4096);
    let r = post(&server, &input_path, &big).await;
    expect_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let big_create = json!({ "profile": "echo", "label": "l".repeat(4096) }).to_string();
    let r = post(&server, "/v1/workers", &big_create).await;
    expect_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let r = post(&server, &format!("/v1/workers/{id}/cancel"), &big).await;
    expect_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // Just under the limit is fine.
    let fits = json!({ "text": "y".repeat(1000) }).to_string();
    assert!(fits.len() <= 1024);
    input(&server, &id, &"y".repeat(1000)).await;

    // A Content-Length that claims more than the limit, with no body sent at all: the
    // answer comes without waiting for the body.
    for path in [
        input_path.as_str(),
        "/v1/workers",
        format!("/v1/workers/{id}/stop").as_str(),
    ] {
        let head = raw_head("POST", path, "content-length: 50000000\r\n");
        let r = raw_exchange(server.addr, &head, b"").await;
        expect_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }

    // A chunked body (no declared length) that grows past the limit.
    let mut chunked = Vec::new();
    for _ in 0..4 {
        chunked.extend_from_slice(format!("{:x}\r\n", 1024).as_bytes());
        chunked.extend_from_slice(&[b'z'; 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = raw_head("POST", &input_path, "transfer-encoding: chunked\r\n");
    let r = raw_exchange(server.addr, &head, &chunked).await;
    expect_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // A chunked body under the limit, in pieces that split its JSON, is read whole.
    let mut pieces = Vec::new();
    for piece in [&b"{\"text\":"[..], b"\"sp", b"lit\"}"] {
        pieces.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        pieces.extend_from_slice(piece);
        pieces.extend_from_slice(b"\r\n");
    }
    pieces.extend_from_slice(b"0\r\n\r\n");
    let head = raw_head("POST", &input_path, "transfer-encoding: chunked\r\n");
    let r = raw_exchange(server.addr, &head, &pieces).await;
    expect_status(&r, StatusCode::ACCEPTED);

    // Only the two small inputs got through; the worker is unharmed.
    let d = detail(&server, &id).await;
    assert_eq!(d["status"], "running");
    assert_eq!(d["input_count"], 2, "{d}");
    let r = get(&server, "/v1/workers").await;
    assert_eq!(
        expect_status(&r, StatusCode::OK)["workers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn input_text_over_max_input_bytes_is_413() {
    let server = start_with_limits(config(), |limits| limits.max_input_bytes = 16).await;
    let id = create(&server, "echo").await;
    let path = format!("/v1/workers/{id}/input");
    for text in ["x".repeat(17), "é".repeat(9), "x".repeat(1000)] {
        let r = post(&server, &path, &json!({ "text": text }).to_string()).await;
        expect_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
    input(&server, &id, &"x".repeat(16)).await;
    assert_eq!(detail(&server, &id).await["input_count"], 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_input_queue_is_429_worker_busy() {
    let server = start_with_limits(slow_config(), |limits| limits.input_queue = 1).await;
    let id = create(&server, "slow").await;
    let path = format!("/v1/workers/{id}/input");
    let mut accepted = 0;
    let busy = loop {
        let r = post(&server, &path, r#"{"text":"hi"}"#).await;
        if r.status == StatusCode::ACCEPTED {
            accepted += 1;
            assert!(accepted <= 2, "a queue of one never filled up");
            continue;
        }
        break r;
    };
    assert!(accepted >= 1, "the first input is always accepted");
    let e = expect_error(&busy, StatusCode::TOO_MANY_REQUESTS, "worker_busy");
    assert_eq!(e["worker_id"], id.as_str(), "{e:?}");
    assert!(e["retry_after_ms"].is_u64(), "{e:?}");
    // The worker is still running, and stops promptly despite the queued work.
    assert_eq!(detail(&server, &id).await["status"], "running");
    stop(&server, &id).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Cancel and stop
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn cancel_interrupts_and_stop_is_idempotent() {
    let server = TestServer::start(slow_config()).await;
    for path in ["/v1/workers/nobody/cancel", "/v1/workers/nobody/stop"] {
        let r = call(&server, Method::POST, path, None).await;
        expect_error(&r, StatusCode::NOT_FOUND, "worker_not_found");
    }

    let id = create(&server, "slow").await;
    input(&server, &id, "never echoed").await;
    let r = call(
        &server,
        Method::POST,
        &format!("/v1/workers/{id}/cancel"),
        None,
    )
    .await;
    let v = expect_status(&r, StatusCode::OK);
    assert_eq!(v["worker_id"], id.as_str(), "{v}");
    assert_eq!(v["status"], "running", "{v}");
    // started, input, interrupted; the pending output was dropped.
    let page = wait_for_total(&server, &id, 3).await;
    let kinds: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["kind"].as_str().unwrap(), i["note"].as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("system", Some("started")),
            ("input", None),
            ("system", Some("interrupted"))
        ]
    );
    assert_eq!(detail(&server, &id).await["status"], "running");
    input(&server, &id, "still running").await;

    for _ in 0..2 {
        let r = call(
            &server,
            Method::POST,
            &format!("/v1/workers/{id}/stop"),
            None,
        )
        .await;
        let v = expect_status(&r, StatusCode::OK);
        assert_eq!(v["worker_id"], id.as_str(), "{v}");
        assert_eq!(v["status"], "stopped", "{v}");
    }
    let d = detail(&server, &id).await;
    assert_eq!(d["status"], "stopped");
    assert_eq!(d["output_bytes"], 0, "{d}");

    let r = call(
        &server,
        Method::POST,
        &format!("/v1/workers/{id}/cancel"),
        None,
    )
    .await;
    let e = expect_error(&r, StatusCode::CONFLICT, "worker_not_running");
    assert_eq!(e["worker_id"], id.as_str());
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Transcript
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn transcript_pages_show_inputs_outputs_and_notes_in_order() {
    let server = TestServer::start(config()).await;
    let id = create(&server, "echo").await;
    let mut total = 1;
    for text in ["one", "two", "three"] {
        input(&server, &id, text).await;
        total += 2;
        wait_for_total(&server, &id, total).await;
    }
    let r = call(
        &server,
        Method::POST,
        &format!("/v1/workers/{id}/cancel"),
        None,
    )
    .await;
    expect_status(&r, StatusCode::OK);
    wait_for_total(&server, &id, 8).await;
    stop(&server, &id).await;

    let page = transcript(&server, &id, "").await;
    assert_eq!(page["total"], 9, "{page}");
    assert!(page["next_after"].is_null(), "{page}");
    let items = page["items"].as_array().unwrap();
    let expected = [
        ("system", "started"),
        ("input", "one"),
        ("output", "one"),
        ("input", "two"),
        ("output", "two"),
        ("input", "three"),
        ("output", "three"),
        ("system", "interrupted"),
        ("system", "stopped"),
    ];
    assert_eq!(items.len(), expected.len(), "{page}");
    for (n, (item, (kind, what))) in items.iter().zip(expected).enumerate() {
        assert_eq!(item["sequence"], n as u64 + 1, "{item}");
        assert_eq!(item["kind"], kind, "{item}");
        assert_timestamp(&item["at"]);
        match kind {
            "system" => assert_eq!(item["note"], what, "{item}"),
            "output" => {
                assert_eq!(item["text"], what, "{item}");
                assert_eq!(item["stream"], "stdout", "{item}");
            }
            _ => assert_eq!(item["text"], what, "{item}"),
        }
    }

    // Paging by after + limit.
    let seqs = |page: &Value| -> Vec<u64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["sequence"].as_u64().unwrap())
            .collect()
    };
    let p1 = transcript(&server, &id, "?limit=4").await;
    assert_eq!(seqs(&p1), vec![1, 2, 3, 4]);
    assert_eq!(p1["next_after"], 4);
    assert_eq!(p1["total"], 9);
    let p2 = transcript(&server, &id, "?after=4&limit=4").await;
    assert_eq!(seqs(&p2), vec![5, 6, 7, 8]);
    assert_eq!(p2["next_after"], 8);
    let p3 = transcript(&server, &id, "?after=8&limit=4").await;
    assert_eq!(seqs(&p3), vec![9]);
    assert!(p3["next_after"].is_null(), "{p3}");
    assert_eq!(p3["total"], 9);
    let p4 = transcript(&server, &id, "?after=9").await;
    assert_eq!(p4["items"], json!([]));
    assert!(p4["next_after"].is_null());
    assert_eq!(p4["total"], 9);
    let exact = transcript(&server, &id, "?after=0&limit=9").await;
    assert_eq!(seqs(&exact), (1..=9).collect::<Vec<_>>());
    assert!(exact["next_after"].is_null(), "{exact}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transcript_limit_defaults_to_100() {
    let server = TestServer::start(config()).await;
    let id = create(&server, "echo").await;
    for n in 0..60 {
        input(&server, &id, &format!("line {n}")).await;
    }
    wait_for_total(&server, &id, 121).await;
    let page = transcript(&server, &id, "").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 100, "{page}");
    assert_eq!(page["next_after"], 100);
    assert_eq!(page["total"], 121);
    let rest = transcript(&server, &id, "?after=100").await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 21);
    assert!(rest["next_after"].is_null());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transcript_default_limit_stays_within_a_small_page_max() {
    let server = start_with_limits(config(), |limits| limits.transcript_page_max = 10).await;
    let id = create(&server, "echo").await;
    let page = transcript(&server, &id, "").await;
    assert_eq!(page["total"], 1, "{page}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transcript_errors() {
    let server = start_with_limits(config(), |limits| limits.transcript_page_max = 5).await;
    let r = get(&server, "/v1/workers/nobody/transcript").await;
    expect_error(&r, StatusCode::NOT_FOUND, "worker_not_found");
    let id = create(&server, "echo").await;
    let base = format!("/v1/workers/{id}/transcript");
    for limit in ["6", "1000", "4294967295"] {
        let r = get(&server, &format!("{base}?limit={limit}")).await;
        expect_error(&r, StatusCode::BAD_REQUEST, "limit_too_large");
    }
    let page = transcript(&server, &id, "?limit=5").await;
    assert_eq!(page["total"], 1);
    for query in [
        "?limit=abc",
        "?limit=-1",
        "?limit=99999999999999999999",
        "?after=abc",
        "?after=-1",
        "?cursor=1",
        "?after=1&after=2",
    ] {
        let r = get(&server, &format!("{base}{query}")).await;
        expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    }
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Events (WebSocket) route
// ---------------------------------------------------------------------------------

async fn ws_get(server: &TestServer, path: &str) -> TestResponse {
    let auth = bearer();
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(WS_HEADERS);
    custom(server, Method::GET, path, None, &headers).await
}

#[tokio::test(flavor = "multi_thread")]
async fn events_route_answers_errors_as_plain_http_before_the_upgrade() {
    let server = TestServer::start(config()).await;
    let a = create(&server, "echo").await;
    let b = create(&server, "echo").await;

    // Not a WebSocket handshake.
    let r = get(&server, &format!("/v1/workers/{a}/events/ws")).await;
    expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    // A handshake with the wrong version or no key.
    let auth = bearer();
    for (skip, replace) in [
        (
            "sec-websocket-version",
            Some(("sec-websocket-version", "8")),
        ),
        ("sec-websocket-key", None),
    ] {
        let mut headers = vec![("authorization", auth.as_str())];
        headers.extend(WS_HEADERS.into_iter().filter(|(n, _)| *n != skip));
        headers.extend(replace);
        let path = format!("/v1/workers/{a}/events/ws");
        let r = custom(&server, Method::GET, &path, None, &headers).await;
        expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
        if skip == "sec-websocket-version" {
            // RFC 6455, 4.4: a refused version is answered with the one spoken.
            assert_eq!(
                r.headers
                    .get("sec-websocket-version")
                    .and_then(|v| v.to_str().ok()),
                Some("13")
            );
        }
    }

    // Unknown worker.
    let r = ws_get(&server, "/v1/workers/nobody/events/ws").await;
    expect_error(&r, StatusCode::NOT_FOUND, "worker_not_found");

    // Garbage cursors.
    for cursor in [
        "garbage",
        "AAAA",
        "cjF8YXwxfHc",
        "%FF%FE",
        "x".repeat(300).as_str(),
    ] {
        let r = ws_get(
            &server,
            &format!("/v1/workers/{a}/events/ws?cursor={cursor}"),
        )
        .await;
        expect_error(&r, StatusCode::BAD_REQUEST, "invalid_cursor");
    }
    // A real cursor minted for another worker.
    let sub = server
        .runtime
        .subscribe(&WorkerId::new(a.clone()).unwrap(), None)
        .unwrap();
    let foreign = sub.cursor_at(0);
    let r = ws_get(
        &server,
        &format!("/v1/workers/{b}/events/ws?cursor={foreign}"),
    )
    .await;
    expect_error(&r, StatusCode::BAD_REQUEST, "invalid_cursor");
    assert!(
        !contains(&r.raw, foreign.as_bytes()),
        "the cursor is echoed back"
    );

    // Unknown query parameters.
    let r = ws_get(&server, &format!("/v1/workers/{a}/events/ws?after=1")).await;
    expect_error(&r, StatusCode::BAD_REQUEST, "invalid_request");
    server.shutdown().await;
}

async fn ws_connect(
    server: &TestServer,
    path: &str,
) -> (
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    http::Response<Option<Vec<u8>>>,
) {
    let mut req = server.ws_url(path).into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", bearer().parse().unwrap());
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake in time")
        .expect("a successful upgrade")
}

async fn next_json(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("an open stream")
            .expect("a good frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_route_upgrades_to_101_and_streams_a_snapshot_first() {
    let server = TestServer::start(config()).await;
    let id = create(&server, "echo").await;
    let path = format!("/v1/workers/{id}/events/ws");
    let (mut ws, response) = ws_connect(&server, &path).await;
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert!(response.headers().contains_key("x-request-id"));
    let frame = next_json(&mut ws).await;
    assert_eq!(frame["type"], "event", "{frame}");
    assert_eq!(frame["worker_id"], id.as_str(), "{frame}");
    assert_eq!(frame["event"]["kind"], "snapshot", "{frame}");
    assert!(frame["cursor"].is_string(), "{frame}");
    assert!(!frame.to_string().contains(TOKEN));
    let _ = ws.send(Message::Close(None)).await;

    // A cursor this worker minted is accepted.
    let cursor = frame["cursor"].as_str().unwrap().to_owned();
    let (mut ws, response) = ws_connect(&server, &format!("{path}?cursor={cursor}")).await;
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let _ = ws.close(None).await;
    let sub = server
        .runtime
        .subscribe(&WorkerId::new(id.clone()).unwrap(), None)
        .unwrap();
    let (mut ws, response) =
        ws_connect(&server, &format!("{path}?cursor={}", sub.cursor_at(0))).await;
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let _ = ws.close(None).await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let server = TestServer::start(config()).await;
    for path in [
        "/",
        "/v1",
        "/v2/runtime",
        "/api/runtimes",
        "/v1/runtime/extra",
        "/v1/healthz",
        "/v1/workers/x/unknown",
        "/v1/workers/x/events",
        "/v1/workers/x/events/ws/more",
    ] {
        let r = get(&server, path).await;
        expect_error(&r, StatusCode::NOT_FOUND, "route_not_found");
    }

    let id = create(&server, "echo").await;
    let w = format!("/v1/workers/{id}");
    let cases: Vec<(Method, String)> = vec![
        (Method::POST, "/v1/health".into()),
        (Method::DELETE, "/v1/runtime".into()),
        (Method::POST, "/v1/runtime".into()),
        (Method::PUT, "/v1/workers".into()),
        (Method::DELETE, "/v1/workers".into()),
        (Method::POST, w.clone()),
        (Method::PATCH, w.clone()),
        (Method::GET, format!("{w}/input")),
        (Method::PUT, format!("{w}/input")),
        (Method::GET, format!("{w}/cancel")),
        (Method::GET, format!("{w}/stop")),
        (Method::DELETE, format!("{w}/stop")),
        (Method::POST, format!("{w}/transcript")),
        (Method::POST, format!("{w}/events/ws")),
        // A method the route never answers is a 405 whatever the ids in the path.
        (
            Method::TRACE,
            format!("/v1/workers/{}/events/ws", "a".repeat(65)),
        ),
        (Method::PUT, "/v1/workers/.bad".into()),
    ];
    for (method, path) in cases {
        let r = call(&server, method, &path, None).await;
        expect_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
    // The worker was not touched by any of that.
    let d = detail(&server, &id).await;
    assert_eq!(d["status"], "running");
    assert_eq!(d["input_count"], 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_carries_its_own_request_id() {
    let server = TestServer::start(config()).await;
    let mut ids = std::collections::HashSet::new();
    for path in [
        "/v1/health",
        "/v1/runtime",
        "/v1/workers",
        "/v1/nope",
        "/v1/workers/.x",
    ] {
        let r = get(&server, path).await;
        let id = r.headers["x-request-id"].to_str().unwrap().to_owned();
        assert!(ids.insert(id), "request ids repeat");
    }
    let r = custom(&server, Method::GET, "/v1/runtime", None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    server.shutdown().await;
}

/// A handshake RFC 6455 has a server refuse (4.1, 4.2.1) is a plain `400
/// invalid_request` before the upgrade, like every other error known then: over
/// HTTP/1.0 (before, `101` and then nothing, as hyper upgrades no HTTP/1.0
/// connection), with a key that is not 16 bytes in base64, with two keys or two
/// versions. The handshake with the same headers done right is still upgraded.
#[tokio::test(flavor = "multi_thread")]
async fn handshakes_rfc_6455_refuses_are_400_before_the_upgrade() {
    let server = TestServer::start(config()).await;
    let a = create(&server, "echo").await;
    let auth = bearer();
    let good_key = "dGhlIHNhbXBsZSBub25jZQ==";
    let handshake = |version: &str, extra: &str| {
        format!(
            "GET /v1/workers/{a}/events/ws {version}\r\nHost: {}\r\nAuthorization: {auth}\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\n{extra}\r\n",
            server.addr
        )
    };
    let key = |key: &str| format!("Sec-WebSocket-Key: {key}\r\n");
    let v13 = "Sec-WebSocket-Version: 13\r\n";
    for (what, head) in [
        (
            "HTTP/1.0",
            handshake("HTTP/1.0", &format!("{v13}{}", key(good_key))),
        ),
        (
            "an empty key",
            handshake("HTTP/1.1", &format!("{v13}{}", key(""))),
        ),
        (
            "a short key",
            handshake("HTTP/1.1", &format!("{v13}{}", key("abc"))),
        ),
        (
            "a key of 15 bytes",
            handshake("HTTP/1.1", &format!("{v13}{}", key("AAAAAAAAAAAAAAAAAAAA"))),
        ),
        (
            "two keys",
            handshake(
                "HTTP/1.1",
                &format!("{v13}{}{}", key(good_key), key(good_key)),
            ),
        ),
        (
            "two versions",
            handshake("HTTP/1.1", &format!("{v13}{v13}{}", key(good_key))),
        ),
    ] {
        let r = raw_exchange(server.addr, &head, b"").await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (400, "invalid_request"),
            "{what}: {}",
            r.text()
        );
    }
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(handshake("HTTP/1.1", &format!("{v13}{}", key(good_key))).as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    server.shutdown().await;
}

/// A cursor of this worker and epoch that names a position the worker's stream has
/// not reached is `400 invalid_cursor` saying so, not called malformed (it decodes
/// fine); the cursor of its newest event still opens the stream.
#[tokio::test(flavor = "multi_thread")]
async fn a_cursor_ahead_of_the_stream_is_invalid_cursor_saying_so() {
    let server = TestServer::start(config()).await;
    let a = create(&server, "echo").await;
    let id = WorkerId::new(a.clone()).unwrap();
    let sub = server.runtime.subscribe(&id, None).unwrap();
    let at = |position| sub.cursor_at(position);
    // A new echo worker has logged a few events (its start), not a thousand.
    let r = ws_get(
        &server,
        &format!("/v1/workers/{a}/events/ws?cursor={}", at(1000)),
    )
    .await;
    let error = expect_error(&r, StatusCode::BAD_REQUEST, "invalid_cursor");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("ahead"), "{message}");
    assert!(!message.contains("malformed"), "{message}");
    let r = ws_get(
        &server,
        &format!("/v1/workers/{a}/events/ws?cursor={}", at(1)),
    )
    .await;
    assert_eq!(r.status, StatusCode::SWITCHING_PROTOCOLS, "{}", r.text());
    server.shutdown().await;
}
