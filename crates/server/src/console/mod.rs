//! The console: the web page the backend serves at `/`, with its scripts and styles
//! at `/assets/...`, all compiled into the binary (no build step, nothing fetched at
//! run time). This module's one job is to map a request path to an embedded file
//! with its content type, caching headers and the browser-defence headers.
//!
//! Content-Security-Policy: scripts only from this origin (no inline script, no
//! `eval`), connections (fetch, WebSocket) only to this origin, no framing
//! (`frame-ancestors 'none'`). Styles allow `'unsafe-inline'` because xterm.js's DOM
//! renderer injects `<style>` elements (theme, cell size) and sets `style`
//! attributes (true-colour cells); the console's own markup and scripts use neither.

mod assets;

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue,
    IF_NONE_MATCH, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use http::{Method, StatusCode};
use http_body_util::Full;
use switchyard_protocol::ErrorCode;

pub use assets::{Asset, Caching};

use crate::http::{ApiError, Response};

/// The policy every console response carries.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self'; font-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// True for the paths the console owns: `/` and everything under `/assets/`.
pub fn owns(path: &str) -> bool {
    path == "/" || path.starts_with("/assets/")
}

/// The answer to a `GET` or `HEAD` of `path`: the file, `304` when `If-None-Match`
/// names its current ETag, or `404 route_not_found`. (Served, a `HEAD` comes here as
/// its `GET`, and the server sends the head alone: see `http::Handler`.)
pub fn respond(method: &Method, path: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(crate::http::router::method_not_allowed(
            method,
            path,
            &[Method::GET],
        ));
    }
    let asset = assets::find(path).ok_or_else(|| {
        ApiError::new(
            ErrorCode::RouteNotFound,
            format!("no console file {path}; open / for the console"),
        )
    })?;
    let fresh = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == asset.etag
        });
    let mut response = if fresh {
        let mut response = http::Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = http::Response::new(Full::new(Bytes::from_static(asset.body)));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        response
    };
    let h = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        h.insert(ETAG, etag);
    }
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(match asset.caching {
            Caching::Revalidate => "no-cache",
            Caching::Immutable => "public, max-age=31536000, immutable",
        }),
    );
    add_security_headers(h);
    Ok(response)
}

/// The browser-defence headers of a page: CSP, `nosniff`, no referrer.
pub fn add_security_headers(headers: &mut HeaderMap) {
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, if_none_match: Option<&str>) -> Result<Response, ApiError> {
        let mut headers = HeaderMap::new();
        if let Some(tag) = if_none_match {
            headers.insert(IF_NONE_MATCH, HeaderValue::from_str(tag).unwrap());
        }
        respond(&Method::GET, path, &headers)
    }

    fn header<'r>(response: &'r Response, name: &str) -> &'r str {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("{name} is set"))
    }

    #[test]
    fn files_carry_type_caching_and_security_headers() {
        // (path, content type, cache-control)
        let cases = [
            ("/", "text/html; charset=utf-8", "no-cache"),
            (
                "/assets/app.js",
                "text/javascript; charset=utf-8",
                "no-cache",
            ),
            (
                "/assets/vendor/addon-fit-0.11.0/addon-fit.mjs",
                "text/javascript; charset=utf-8",
                "public, max-age=31536000, immutable",
            ),
        ];
        for (path, content_type, cache) in cases {
            let response = get(path, None).unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&response, "content-type"), content_type, "{path}");
            assert_eq!(header(&response, "cache-control"), cache, "{path}");
            assert_eq!(header(&response, "x-content-type-options"), "nosniff");
            assert_eq!(header(&response, "referrer-policy"), "no-referrer");
            let csp = header(&response, "content-security-policy");
            assert!(csp.contains("script-src 'self';"), "{csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert!(!csp.contains("unsafe-eval"), "{csp}");
            assert!(header(&response, "etag").starts_with('"'));
        }
    }

    #[test]
    fn a_matching_etag_is_answered_304_without_a_body() {
        let etag = header(&get("/", None).unwrap(), "etag").to_owned();
        // (If-None-Match, expected status)
        let cases = [
            (etag.clone(), StatusCode::NOT_MODIFIED),
            (format!("W/{etag}"), StatusCode::NOT_MODIFIED),
            (format!("\"other\", {etag}"), StatusCode::NOT_MODIFIED),
            ("*".to_owned(), StatusCode::NOT_MODIFIED),
            ("\"stale\"".to_owned(), StatusCode::OK),
        ];
        for (tag, status) in cases {
            let response = get("/", Some(&tag)).unwrap();
            assert_eq!(response.status(), status, "If-None-Match: {tag}");
            assert_eq!(header(&response, "etag"), etag);
            assert_eq!(header(&response, "cache-control"), "no-cache");
            assert!(response.headers().contains_key("content-security-policy"));
        }
    }

    #[test]
    fn unknown_paths_and_other_methods_are_typed_errors() {
        let code = |r: Result<Response, ApiError>| r.err().map(|e| e.detail.code);
        assert_eq!(
            code(get("/assets/missing.js", None)),
            Some(ErrorCode::RouteNotFound)
        );
        assert_eq!(
            code(respond(&Method::POST, "/", &HeaderMap::new())),
            Some(ErrorCode::MethodNotAllowed)
        );
        assert!(respond(&Method::HEAD, "/", &HeaderMap::new()).is_ok());
        assert!(owns("/") && owns("/assets/app.js"));
        assert!(!owns("/api/runtimes") && !owns("/healthz") && !owns("/assetsx"));
    }
}
