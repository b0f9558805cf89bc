//! The backend's browser defences, with auth off and on: a foreign `Host`, a
//! cross-origin POST (by `Origin` and by `Sec-Fetch-Site`), a Blob- or form-style
//! body without JSON's content type, each refused before anything happens (the
//! worker list and transcripts are unchanged afterwards); curl-style requests
//! without those headers still work; CORS only for allowed origins; security headers
//! on every answer.

mod backend_common;

use std::net::SocketAddr;
use std::time::Duration;

use backend_common::*;
use http::Method;
use switchyard_registry::{Role, WorkerScope};
use switchyard_server::auth::Clock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ADMIN: &str = "sy_browser-tests-admin";
const ALLOWED: &str = "http://localhost:5173";

/// A backend with an embedded runtime, `allowed_origins = [ALLOWED]`, and an admin
/// token when `auth`.
async fn backend(auth: bool) -> (switchyard_server::commands::serve::RunningBackend, Api) {
    let mut settings = backend_settings(true, Vec::new(), NO_PROBES);
    settings.allowed_origins = vec![ALLOWED.to_owned()];
    if auth {
        settings.auth = token_auth(
            &[TestToken {
                name: "ada",
                token: ADMIN,
                role: Role::Admin,
                runtimes: &[],
                workers: WorkerScope::All,
            }],
            None,
            Duration::from_secs(3600),
            &Clock::system(),
        );
    }
    let (running, mut api) = start_backend(settings).await;
    if auth {
        api.token = Some(ADMIN.to_owned());
    }
    (running, api)
}

/// One request as raw bytes on a fresh connection (for heads no client library
/// sends: no `Content-Length` at all, any `Host`); the status and the whole answer.
async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut bytes = head.replace('\n', "\r\n").into_bytes();
    bytes.extend_from_slice(b"connection: close\r\n\r\n");
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    (status, answer)
}

/// The authorization header of `api`, if any, as a raw header line.
fn auth_line(api: &Api) -> String {
    api.token
        .as_ref()
        .map(|t| format!("authorization: Bearer {t}\n"))
        .unwrap_or_default()
}

/// The headers of `api` plus `extra`.
fn with_auth<'a>(
    api: &'a Api,
    auth: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut headers = extra.to_vec();
    if api.token.is_some() {
        headers.push(("authorization", auth));
    }
    headers
}

async fn refusals_create_nothing(auth: bool) {
    let (backend, api) = backend(auth).await;
    let addr = api.addr;
    let bearer = api.token.as_deref().map(bearer).unwrap_or_default();
    let worker = create_echo(&api, "local", "target").await;
    let w = format!("/api/runtimes/local/workers/{worker}");
    let before = worker_keys(&api).await;
    let create = "/api/runtimes/local/workers";
    let body = br#"{"profile":"echo","label":"attack"}"#;
    let json_type = ("content-type", "application/json");

    // (what, method, path, body, headers, status, code)
    type Case<'a> = (
        &'a str,
        Method,
        String,
        Option<&'a [u8]>,
        Vec<(&'a str, &'a str)>,
        u16,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "cross-origin POST (Origin)",
            Method::POST,
            create.into(),
            Some(body),
            vec![json_type, ("origin", "http://evil.example")],
            403,
            "cross_origin_request",
        ),
        (
            "cross-origin POST (Sec-Fetch-Site)",
            Method::POST,
            create.into(),
            Some(body),
            vec![json_type, ("sec-fetch-site", "cross-site")],
            403,
            "cross_origin_request",
        ),
        (
            "same-site POST from a page not listed",
            Method::POST,
            create.into(),
            Some(body),
            vec![json_type, ("sec-fetch-site", "same-site")],
            403,
            "cross_origin_request",
        ),
        (
            "opaque origin",
            Method::POST,
            create.into(),
            Some(body),
            vec![json_type, ("origin", "null")],
            403,
            "cross_origin_request",
        ),
        (
            "Blob-style POST without Content-Type",
            Method::POST,
            create.into(),
            Some(body),
            vec![],
            415,
            "unsupported_media_type",
        ),
        (
            "text/plain POST",
            Method::POST,
            create.into(),
            Some(body),
            vec![("content-type", "text/plain;charset=UTF-8")],
            415,
            "unsupported_media_type",
        ),
        (
            "form POST",
            Method::POST,
            create.into(),
            Some(b"profile=echo"),
            vec![("content-type", "application/x-www-form-urlencoded")],
            415,
            "unsupported_media_type",
        ),
        (
            "cross-site form POST",
            Method::POST,
            create.into(),
            Some(b"profile=echo"),
            vec![
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", "http://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            403,
            "cross_origin_request",
        ),
        (
            "foreign Host (DNS rebinding)",
            Method::POST,
            create.into(),
            Some(body),
            vec![json_type, ("host", "evil.example:7700")],
            403,
            "host_not_allowed",
        ),
        (
            "foreign Host reading",
            Method::GET,
            "/api/workers".into(),
            None,
            vec![("host", "rebound.evil.example")],
            403,
            "host_not_allowed",
        ),
        (
            "cross-origin input",
            Method::POST,
            format!("{w}/input"),
            Some(br#"{"text":"rm -rf /\n"}"#),
            vec![json_type, ("origin", "http://evil.example")],
            403,
            "cross_origin_request",
        ),
        (
            "Blob-style input",
            Method::POST,
            format!("{w}/input"),
            Some(br#"{"text":"rm -rf /\n"}"#),
            vec![],
            415,
            "unsupported_media_type",
        ),
        (
            "cross-origin stop",
            Method::POST,
            format!("{w}/stop"),
            None,
            vec![("sec-fetch-site", "cross-site")],
            403,
            "cross_origin_request",
        ),
        (
            "stop with a text body",
            Method::POST,
            format!("{w}/stop"),
            Some(b"now"),
            vec![("content-type", "text/plain")],
            415,
            "unsupported_media_type",
        ),
        (
            "cross-origin delete",
            Method::DELETE,
            w.clone(),
            None,
            vec![("origin", "http://evil.example")],
            403,
            "cross_origin_request",
        ),
        (
            "cross-origin sign-in",
            Method::POST,
            "/api/session".into(),
            Some(br#"{"token":"x"}"#),
            vec![json_type, ("origin", "http://evil.example")],
            403,
            "cross_origin_request",
        ),
    ];
    for (what, method, path, body, mut headers, status, code) in cases {
        if api.token.is_some() {
            headers.push(("authorization", bearer.as_str()));
        }
        let r = send(addr, method, &path, body, &headers).await;
        assert_eq!(r.status.as_u16(), status, "{what}: {}", r.text());
        assert_error(&r, status, code);
    }

    // Nothing was created, stopped, deleted or typed.
    assert_eq!(worker_keys(&api).await, before);
    let detail = api.get(&w).await;
    assert_eq!(detail.json["status"], "running", "{}", detail.text());
    assert_eq!(detail.json["input_count"], 0, "{}", detail.text());

    // A raw head with no Content-Length at all, and a chunked body without a type.
    let auth = auth_line(&api);
    let (status, answer) = raw(
        addr,
        &format!("POST {create} HTTP/1.1\nhost: {addr}\n{auth}transfer-encoding: chunked\n"),
        b"23\r\n{\"profile\":\"echo\",\"label\":\"attack\"}\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status, 415, "{answer}");
    assert_eq!(worker_keys(&api).await, before);

    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_create_nothing_without_auth() {
    refusals_create_nothing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_create_nothing_with_auth() {
    refusals_create_nothing(true).await;
}

async fn curl_style_requests_work(auth: bool) {
    let (backend, api) = backend(auth).await;
    let addr = api.addr;
    let bearer = api.token.as_deref().map(bearer).unwrap_or_default();
    let json_type = ("content-type", "application/json");
    let own = format!("http://{addr}");

    // Creates: curl, our own page, a listed origin, the Host by name.
    for extra in [
        vec![json_type],
        vec![
            json_type,
            ("origin", own.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
        vec![json_type, ("sec-fetch-site", "none")],
        vec![
            json_type,
            ("origin", ALLOWED),
            ("sec-fetch-site", "same-site"),
        ],
        vec![json_type, ("host", "localhost")],
        vec![("content-type", "application/json; charset=utf-8")],
    ] {
        let headers = with_auth(&api, &bearer, &extra);
        let r = send(
            addr,
            Method::POST,
            "/api/runtimes/local/workers",
            Some(br#"{"profile":"echo"}"#),
            &headers,
        )
        .await;
        assert_status(&r, 201);
    }

    // Bodyless commands without a content type: Content-Length 0, and none at all.
    let worker = create_echo(&api, "local", "curl").await;
    let w = format!("/api/runtimes/local/workers/{worker}");
    let headers = with_auth(&api, &bearer, &[("content-length", "0")]);
    let r = send(addr, Method::POST, &format!("{w}/cancel"), None, &headers).await;
    assert_status(&r, 200);
    let auth = auth_line(&api);
    let (status, answer) = raw(
        addr,
        &format!("POST {w}/stop HTTP/1.1\nhost: {addr}\n{auth}"),
        b"",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = raw(
        addr,
        &format!("DELETE {w} HTTP/1.1\nhost: {addr}\n{auth}"),
        b"",
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    // HTTP/1.0 with a Host (old scripts) works too.
    let (status, answer) = raw(
        addr,
        &format!("GET /api/runtimes HTTP/1.0\nhost: 127.0.0.1\n{auth}"),
        b"",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    // Reads with a foreign Origin are answered (without a CORS grant, the browser
    // keeps the answer from the page).
    let headers = with_auth(&api, &bearer, &[("origin", "http://evil.example")]);
    let r = send(addr, Method::GET, "/api/runtimes", None, &headers).await;
    assert_status(&r, 200);
    assert!(r.headers.get("access-control-allow-origin").is_none());

    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_style_requests_work_without_auth() {
    curl_style_requests_work(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_style_requests_work_with_auth() {
    curl_style_requests_work(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_only_for_allowed_origins_and_never_with_credentials() {
    let (backend, api) = backend(true).await;
    let addr = api.addr;
    let bearer = bearer(ADMIN);

    let preflight = |origin: &'static str| async move {
        send(
            addr,
            Method::OPTIONS,
            "/api/runtimes/local/workers",
            None,
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
        )
        .await
    };
    let r = preflight(ALLOWED).await;
    assert_status(&r, 204);
    assert_eq!(r.headers["access-control-allow-origin"], ALLOWED);
    assert_eq!(
        r.headers.get_all("vary").iter().count(),
        1,
        "{:?}",
        r.headers
    );
    assert!(
        r.headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let allowed_headers = r.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed_headers.contains("authorization") && allowed_headers.contains("content-type"));
    assert!(r.headers.get("access-control-allow-credentials").is_none());

    let r = preflight("http://evil.example").await;
    assert_error(&r, 403, "cross_origin_request");
    assert!(r.headers.get("access-control-allow-origin").is_none());

    // The real request from the allowed origin, with a bearer token.
    let r = send(
        addr,
        Method::POST,
        "/api/runtimes/local/workers",
        Some(br#"{"profile":"echo"}"#),
        &[
            ("origin", ALLOWED),
            ("authorization", bearer.as_str()),
            ("content-type", "application/json"),
        ],
    )
    .await;
    assert_status(&r, 201);
    assert_eq!(r.headers["access-control-allow-origin"], ALLOWED);
    assert!(r.headers.get_all("vary").iter().any(|v| v == "Origin"));
    assert!(r.headers.get("access-control-allow-credentials").is_none());
    // Errors to it carry the grant too, so the page can read the code.
    let r = send(
        addr,
        Method::GET,
        "/api/runtimes",
        None,
        &[("origin", ALLOWED)],
    )
    .await;
    assert_error(&r, 401, "unauthorized");
    assert_eq!(r.headers["access-control-allow-origin"], ALLOWED);

    // No grant for anyone else, even with a good token.
    let r = send(
        addr,
        Method::GET,
        "/api/runtimes",
        None,
        &[
            ("origin", "http://evil.example"),
            ("authorization", bearer.as_str()),
        ],
    )
    .await;
    assert_status(&r, 200);
    assert!(r.headers.get("access-control-allow-origin").is_none());
    // An OPTIONS that is no preflight is routed as usual.
    let r = send(
        addr,
        Method::OPTIONS,
        "/api/runtimes",
        None,
        &[("authorization", bearer.as_str())],
    )
    .await;
    assert_error(&r, 405, "method_not_allowed");

    backend.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers() {
    let (backend, api) = backend(true).await;
    let addr = api.addr;
    let bearer = bearer(ADMIN);
    let answers = [
        send(addr, Method::GET, "/healthz", None, &[]).await,
        send(
            addr,
            Method::GET,
            "/api/runtimes",
            None,
            &[("authorization", bearer.as_str())],
        )
        .await,
        send(addr, Method::GET, "/api/runtimes", None, &[]).await,
        send(
            addr,
            Method::GET,
            "/api/nope",
            None,
            &[("authorization", bearer.as_str())],
        )
        .await,
        send(
            addr,
            Method::GET,
            "/api/runtimes",
            None,
            &[("host", "evil.example")],
        )
        .await,
        send(addr, Method::DELETE, "/api/session", None, &[]).await,
    ];
    for r in &answers {
        let h = &r.headers;
        assert_eq!(
            h["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{} {h:?}",
            r.status
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-frame-options"], "DENY");
    }
    backend.shutdown().await;
}

/// A body that trickles in (a byte now and then, each in time for the connection's
/// idle timer) is cut off once it has taken the body timeout, before any token is
/// checked: nobody holds a connection, and a place under `max_connections`, for
/// longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_is_cut_off_at_the_body_timeout() {
    use switchyard_server::http::body::BODY_TIMEOUT;
    let (_running, api) = backend(true).await;
    let (mut reading, mut writing) = TcpStream::connect(api.addr).await.unwrap().into_split();
    let started = std::time::Instant::now();
    writing
        .write_all(
            b"POST /api/session HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
        )
        .await
        .unwrap();
    let trickle = tokio::spawn(async move {
        while writing.write_all(b" ").await.is_ok() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    let mut answer = Vec::new();
    tokio::time::timeout(
        BODY_TIMEOUT + Duration::from_secs(20),
        reading.read_to_end(&mut answer),
    )
    .await
    .expect("cut off in time")
    .unwrap();
    let elapsed = started.elapsed();
    trickle.abort();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains("invalid_request") && text.contains("did not arrive within 30 s"),
        "{text}"
    );
    assert!(
        elapsed >= BODY_TIMEOUT - Duration::from_secs(1),
        "cut off early: {elapsed:?}"
    );
}
