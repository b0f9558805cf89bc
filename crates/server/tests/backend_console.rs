//! The console through the real backend: `/` and `/assets/...` answered by the console
//! module with its headers, beside an untouched `/api`.

mod backend_common;

use std::time::Duration;

use backend_common::*;
use http::Method;
use switchyard_e2e::client::request;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_serves_the_console_beside_its_api() {
    let (backend, api) =
        start_backend(backend_settings(true, vec![], Duration::from_secs(5))).await;

    // (path, status, content type, cache-control)
    let cases = [
        ("/", 200, "text/html; charset=utf-8", "no-cache"),
        (
            "/assets/app.js",
            200,
            "text/javascript; charset=utf-8",
            "no-cache",
        ),
        (
            "/assets/style.css",
            200,
            "text/css; charset=utf-8",
            "no-cache",
        ),
        (
            "/assets/vendor/xterm-6.0.0/xterm.mjs",
            200,
            "text/javascript; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
    ];
    for (path, status, content_type, cache) in cases {
        let r = api.get(path).await;
        assert_eq!(r.status.as_u16(), status, "{path}");
        assert_eq!(r.headers["content-type"], content_type, "{path}");
        assert_eq!(r.headers["cache-control"], cache, "{path}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(r.headers["referrer-policy"], "no-referrer", "{path}");
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
        assert!(!r.raw.is_empty(), "{path}");
    }

    let page = api.get("/").await;
    assert!(page.text().contains("/assets/app.js"));
    let etag = page.headers["etag"].to_str().unwrap().to_owned();
    let again = request(
        api.addr,
        Method::GET,
        "/",
        None,
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(again.status.as_u16(), 304);
    assert!(again.raw.is_empty());

    let head = api.call(Method::HEAD, "/", None).await;
    assert_eq!(head.status.as_u16(), 200);
    assert!(head.raw.is_empty(), "HEAD has no body");

    assert_error(&api.get("/assets/missing.js").await, 404, "route_not_found");
    assert_error(&api.get("/assets/").await, 404, "route_not_found");
    assert_error(
        &api.call(Method::POST, "/", None).await,
        405,
        "method_not_allowed",
    );
    assert_error(&api.get("/index.html").await, 404, "route_not_found");

    // The API beside it is untouched, and carries the API's policy, not the console's.
    let runtimes = api.get("/api/runtimes").await;
    assert_eq!(runtimes.status.as_u16(), 200);
    assert_eq!(runtimes.json["runtimes"][0]["runtime_id"], "local");
    assert_eq!(
        runtimes.headers["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );

    // Without auth the console's session probe hears "no auth": nobody to show, no
    // sign-out.
    let session = api.get("/api/session").await;
    assert_eq!(session.status.as_u16(), 200);
    assert_eq!(
        session.json,
        serde_json::json!({"name": "anonymous", "role": "admin", "auth": false})
    );

    backend.shutdown().await;
}

/// With auth on the console stays public (its sign-in page must load), passes the
/// `Host` allowlist like everything else, and keeps its own policy beside the
/// browser-defence headers; the API behind it still wants credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_on_the_console_is_public_and_still_checked() {
    let mut settings = backend_settings(true, vec![], Duration::from_secs(5));
    settings.auth = token_auth(
        &[TestToken {
            name: "olga",
            token: "sy_console-tests-operator",
            role: switchyard_registry::Role::Operator,
            runtimes: &[],
            workers: switchyard_registry::WorkerScope::Own,
        }],
        None,
        Duration::from_secs(3600),
        &switchyard_server::auth::Clock::system(),
    );
    let (backend, api) = start_backend(settings).await;

    // (path, headers, status)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16);
    let cases: [Case; 6] = [
        ("/", &[], 200),
        ("/assets/app.js", &[], 200),
        ("/assets/session.js", &[], 200),
        ("/assets/missing.js", &[], 404),
        ("/", &[("host", "evil.example:80")], 403),
        ("/assets/app.js", &[("host", "rebound.example")], 403),
    ];
    for (path, headers, status) in cases {
        let r = request(api.addr, Method::GET, path, None, headers).await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{path} {headers:?}: {}",
            r.text()
        );
        assert_eq!(r.headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff", "{path}");
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        if status == 200 {
            assert_eq!(
                csp,
                switchyard_server::console::CONTENT_SECURITY_POLICY_VALUE,
                "{path}"
            );
        }
        if status == 403 {
            assert_error(&r, 403, "host_not_allowed");
        }
    }
    // The page is no way around authentication: the API still answers 401.
    let no_credentials = request(api.addr, Method::GET, "/api/session", None, &[]).await;
    assert_error(&no_credentials, 401, "unauthorized");
    let runtimes = request(api.addr, Method::GET, "/api/runtimes", None, &[]).await;
    assert_error(&runtimes, 401, "unauthorized");
    // Changing methods on the console are refused, not served.
    let post = request(
        api.addr,
        Method::POST,
        "/",
        Some(b"{}".to_vec()),
        &[("content-type", "application/json")],
    )
    .await;
    assert_error(&post, 405, "method_not_allowed");

    backend.shutdown().await;
}
