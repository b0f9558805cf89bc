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

    // The API beside it is untouched, and carries no console headers.
    let runtimes = api.get("/api/runtimes").await;
    assert_eq!(runtimes.status.as_u16(), 200);
    assert_eq!(runtimes.json["runtimes"][0]["runtime_id"], "local");
    assert!(!runtimes.headers.contains_key("content-security-policy"));

    backend.shutdown().await;
}
