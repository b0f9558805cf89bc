//! Browser defences of the backend API, on with or without auth: the `Host`
//! allowlist (DNS rebinding), the cross-origin check on state-changing requests
//! (CSRF from any web page), JSON-only request bodies (form and Blob posts that skip
//! the CORS preflight), CORS answered only for `allowed_origins`, and security
//! headers on every response.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD,
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, HeaderMap, HeaderValue, ORIGIN, REFERRER_POLICY,
    VARY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{Method, StatusCode, Uri};
use switchyard_protocol::{ErrorCode, media};

use crate::http::response::empty;
use crate::http::{ApiError, Response};

pub use crate::http::response::API_CSP;

/// `Content-Security-Policy` of HTML pages the backend serves: resources from its own
/// origin only, no inline script, no framing.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The methods a cross-origin client may use (after a preflight).
const CORS_METHODS: &str = "GET, POST, DELETE";
/// The request headers a cross-origin client may send.
const CORS_HEADERS: &str = "Authorization, Content-Type";
/// How long a browser may cache a preflight answer, in seconds.
const CORS_MAX_AGE: &str = "600";

/// The host names a listener answers to: `localhost`, `127.0.0.1`, `[::1]`, the
/// listen address's host, and the configured ones; any port. Clones share one list,
/// which [`AllowedHosts::replace`] changes for all of them at once (a reload); each
/// request reads it without a lock.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    names: Arc<ArcSwap<Vec<String>>>,
    listen: SocketAddr,
}

impl AllowedHosts {
    /// The defaults for `listen`, plus `extra` (normalized: lower-case, IPv6 in
    /// brackets, no port).
    pub fn new(extra: &[String], listen: SocketAddr) -> Self {
        Self {
            names: Arc::new(ArcSwap::from_pointee(host_names(extra, listen))),
            listen,
        }
    }

    /// Answers to the defaults plus `extra` from now on, in every clone.
    pub fn replace(&self, extra: &[String]) {
        self.names.store(Arc::new(host_names(extra, self.listen)));
    }

    /// The accepted names.
    pub fn names(&self) -> Vec<String> {
        self.names.load().as_ref().clone()
    }

    /// The request's `Host` (the target URI's authority when it has one, as HTTP
    /// says), if its host name is allowed; else `403 host_not_allowed`.
    pub fn check<'h>(&self, uri: &'h Uri, headers: &'h HeaderMap) -> Result<&'h str, ApiError> {
        one_host(headers)?;
        let host = uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| headers.get(HOST).and_then(|h| h.to_str().ok()));
        match host {
            Some(host) if self.allows(host_name(host)) => Ok(host),
            _ => Err(ApiError::new(
                ErrorCode::HostNotAllowed,
                "this backend does not answer to that Host name; an operator can add it to allowed_hosts",
            )),
        }
    }
}

impl AllowedHosts {
    /// Whether `name` (without port; in any case) is one of the allowed names
    /// (which are lower-case).
    fn allows(&self, name: &str) -> bool {
        self.names
            .load()
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(name))
    }
}

/// The names of [`AllowedHosts::new`].
fn host_names(extra: &[String], listen: SocketAddr) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let ip = listen.ip();
    let listen_host = match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    if !ip.is_unspecified() && !hosts.contains(&listen_host) {
        hosts.push(listen_host);
    }
    for host in extra {
        let host = host.to_ascii_lowercase();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

/// The origins besides the backend's own that may use it from a browser (CORS, with
/// bearer tokens) and open its WebSockets, normalized `scheme://host[:port]`. Clones
/// share one list, which [`AllowedOrigins::replace`] changes for all of them at once
/// (a reload); each request reads it without a lock.
#[derive(Debug, Clone)]
pub struct AllowedOrigins(Arc<OriginList>);

#[derive(Debug)]
struct OriginList {
    origins: ArcSwap<Vec<String>>,
    /// Bumped by every [`AllowedOrigins::replace`].
    changes: tokio::sync::watch::Sender<u64>,
}

impl AllowedOrigins {
    /// These origins.
    pub fn new(origins: Vec<String>) -> Self {
        Self(Arc::new(OriginList {
            origins: ArcSwap::from_pointee(origins),
            changes: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// Allows `origins` from now on, in every clone.
    pub fn replace(&self, origins: Vec<String>) {
        self.0.origins.store(Arc::new(origins));
        self.0.changes.send_modify(|n| *n += 1);
    }

    /// The origins allowed now.
    pub fn current(&self) -> arc_swap::Guard<Arc<Vec<String>>> {
        self.0.origins.load()
    }

    /// Whether `origin` (an `Origin` header) is one of the origins allowed now.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        let origin = normalized_origin(origin);
        self.current()
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(&origin))
    }

    /// Resolves once `origin` is no longer allowed (at once if it is not now): a
    /// WebSocket opened from its page then closes.
    pub async fn removed(&self, origin: &HeaderValue) {
        let mut changes = self.0.changes.subscribe();
        while self.allows(origin) {
            if changes.changed().await.is_err() {
                // The sender lives as long as `self`: never.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Default for AllowedOrigins {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

/// An `Origin` value as the allowed origins are written: trimmed, without a
/// trailing slash, lower-case.
fn normalized_origin(value: &HeaderValue) -> String {
    value
        .to_str()
        .unwrap_or("")
        .trim()
        .trim_end_matches('/')
        .to_ascii_lowercase()
}

impl From<Vec<String>> for AllowedOrigins {
    fn from(origins: Vec<String>) -> Self {
        Self::new(origins)
    }
}

/// A request with more than one `Host` header names no host (RFC 9112, 3.2 makes
/// it malformed): `403 host_not_allowed`, whichever of them a check would read.
pub(crate) fn one_host(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.get_all(HOST).iter().nth(1).is_some() {
        return Err(ApiError::new(
            ErrorCode::HostNotAllowed,
            "the request has more than one Host header; send one",
        ));
    }
    Ok(())
}

/// The host name of a `Host` value: without port or trailing dot, in the case it
/// was written in (compared without case; not copied: this runs for every request).
pub(crate) fn host_name(host: &str) -> &str {
    let host = host.trim();
    let name = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.trim_end_matches('.')
}

/// Where a request says it comes from (`Origin`).
///
/// Exhaustive on purpose: the four cases divide every request, and every check must
/// decide each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOrigin {
    /// No `Origin`: not a browser's cross-origin request (curl, scripts, navigation).
    Absent,
    /// The backend's own origin.
    Own,
    /// An origin listed in `allowed_origins`.
    Allowed(HeaderValue),
    /// Any other origin, `null` included.
    Foreign,
}

impl RequestOrigin {
    /// Classifies `Origin` against the request's (already allowed) `host` and the
    /// allowed origins (normalized `scheme://host[:port]`). A request with more than
    /// one `Origin` (which no browser sends) is foreign, whatever they name: the
    /// backend does not guess which one a check should believe.
    pub fn of(headers: &HeaderMap, host: &str, allowed: &[String]) -> Self {
        let mut origins = headers.get_all(ORIGIN).iter();
        let Some(value) = origins.next() else {
            return Self::Absent;
        };
        if origins.next().is_some() {
            return Self::Foreign;
        }
        let origin = normalized_origin(value);
        let host = host.to_ascii_lowercase();
        if origin == format!("http://{host}") || origin == format!("https://{host}") {
            Self::Own
        } else if allowed.iter().any(|a| a.eq_ignore_ascii_case(&origin)) {
            Self::Allowed(value.clone())
        } else {
            Self::Foreign
        }
    }

    /// Whether a session cookie may authenticate this request. A cookie proves only
    /// that the browser holds it, not which page asked, so it counts only when the
    /// page is the backend's own (or no page is involved). WebSocket upgrades also
    /// take it from allowed origins, which cannot send a bearer token there.
    pub fn admits_cookie(&self, websocket: bool) -> bool {
        match self {
            Self::Absent | Self::Own => true,
            Self::Allowed(_) => websocket,
            Self::Foreign => false,
        }
    }
}

/// POST, PUT, PATCH and DELETE: the methods that change something.
pub fn is_state_changing(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// Refuses a state-changing request from another site with `403
/// cross_origin_request`: one whose `Origin` is neither the backend's own nor
/// allowed, or one whose `Sec-Fetch-Site` is other than `same-origin` or `none`
/// (unless its `Origin` is explicitly allowed, whose pages are same-site at best).
/// Requests with neither header (curl, scripts) pass.
pub fn check_cross_origin(
    method: &Method,
    headers: &HeaderMap,
    origin: &RequestOrigin,
) -> Result<(), ApiError> {
    if !is_state_changing(method) {
        return Ok(());
    }
    let refused = || {
        ApiError::new(
            ErrorCode::CrossOriginRequest,
            "this request comes from another site's page and would change something; pages must be served by the backend or listed in allowed_origins",
        )
    };
    match origin {
        RequestOrigin::Foreign => Err(refused()),
        RequestOrigin::Allowed(_) => Ok(()),
        RequestOrigin::Own | RequestOrigin::Absent => {
            // Every value must say so: a second header (no browser sends one) is
            // not taken on the first one's word.
            let mut sites = headers.get_all("sec-fetch-site").iter();
            let same_site = sites.all(|v| matches!(v.to_str(), Ok("same-origin" | "none")));
            if same_site { Ok(()) } else { Err(refused()) }
        }
    }
}

/// The WebSocket upgrade's rule: `Origin` absent, the backend's own, or allowed;
/// otherwise `403 origin_not_allowed`.
pub fn check_websocket_origin(origin: &RequestOrigin) -> Result<(), ApiError> {
    match origin {
        RequestOrigin::Foreign => Err(ApiError::new(
            ErrorCode::OriginNotAllowed,
            "this page's origin may not open the backend's WebSockets; add it to allowed_origins",
        )),
        _ => Ok(()),
    }
}

pub use crate::http::body::has_body;

/// True for `application/json`, with or without parameters.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| media::is_json(v.as_bytes()))
}

/// A state-changing request with a body must send it as `application/json`; otherwise
/// `415 unsupported_media_type`. A bodyless one (`cancel`, `stop`, `DELETE`, with no
/// `Content-Length` or `Content-Length: 0`) needs no `Content-Type`.
pub fn check_body_type(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    // JSON first: the common case needs one header looked up, not three.
    if !is_state_changing(method) || is_json(headers) || !has_body(headers) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "send request bodies as JSON with Content-Type: application/json",
    ))
}

/// True for a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(ORIGIN)
        && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight: allowed origins get the methods, headers and cache time
/// a cross-origin client may use (the router adds the grant itself, [`cors_headers`],
/// as to every answer to an allowed origin; no credentials: bearer tokens only);
/// everyone else `403 cross_origin_request` without CORS headers, which the browser
/// reports as a failed preflight.
pub fn preflight(origin: &RequestOrigin) -> Result<Response, ApiError> {
    let RequestOrigin::Allowed(_) = origin else {
        return Err(ApiError::new(
            ErrorCode::CrossOriginRequest,
            "this origin is not in allowed_origins; the backend grants it no cross-origin access",
        ));
    };
    let mut response = empty(StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(CORS_METHODS),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(CORS_HEADERS),
    );
    headers.insert(
        ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(CORS_MAX_AGE),
    );
    Ok(response)
}

/// The CORS grant on an answer to an allowed origin. No
/// `Access-Control-Allow-Credentials`: browsers neither send cookies with nor expose
/// answers to credentialed cross-origin requests.
pub fn cors_headers(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.append(VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("x-request-id, www-authenticate"),
    );
}

/// Security headers on every answer: a CSP (the page policy for HTML, nothing at all
/// for anything else; a policy the answer already carries, the console's, is kept), no
/// MIME sniffing, no referrer, no framing. An answer built from a map this function
/// filled once (the relayed answers) is recognised by its `X-Frame-Options`, which
/// only this function sets, and left as it is.
pub fn security_headers(headers: &mut HeaderMap) {
    if headers.contains_key(X_FRAME_OPTIONS) {
        return;
    }
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        let html = headers.get(CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .trim_ascii_start()
                .get(..9)
                .is_some_and(|t| t.eq_ignore_ascii_case(b"text/html"))
        });
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(if html { PAGE_CSP } else { API_CSP }),
        );
    }
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hosts_are_checked_by_name_at_any_port() {
        let hosts = AllowedHosts::new(
            &["switchyard.example.com".to_owned()],
            "10.1.2.3:7700".parse().unwrap(),
        );
        // (Host header, allowed)
        let cases: &[(Option<&str>, bool)] = &[
            (Some("localhost"), true),
            (Some("localhost:7700"), true),
            (Some("LOCALHOST:1"), true),
            (Some("localhost.:7700"), true),
            (Some("127.0.0.1:7700"), true),
            (Some("[::1]:7700"), true),
            (Some("[::1]"), true),
            (Some("10.1.2.3:9999"), true),
            (Some("switchyard.example.com"), true),
            (Some("Switchyard.Example.com:443"), true),
            (Some("evil.example"), false),
            (Some("evil.example:7700"), false),
            (Some("localhost.evil.example"), false),
            (Some("127.0.0.2:7700"), false),
            (Some("[::2]:7700"), false),
            (Some(""), false),
            (None, false),
        ];
        let uri: Uri = "/api/runtimes".parse().unwrap();
        for (host, allowed) in cases {
            let h = match host {
                Some(value) => headers(&[("host", value)]),
                None => HeaderMap::new(),
            };
            let got = hosts.check(&uri, &h);
            assert_eq!(got.is_ok(), *allowed, "{host:?}");
            if let Err(err) = got {
                assert_eq!(err.detail.code, ErrorCode::HostNotAllowed);
            }
        }
        // An absolute-form target's authority is the host that counts.
        let absolute: Uri = "http://evil.example/api/runtimes".parse().unwrap();
        assert!(
            hosts
                .check(&absolute, &headers(&[("host", "localhost")]))
                .is_err()
        );
        // Two Host headers name no host, whichever is allowed.
        let two = headers(&[("host", "localhost"), ("host", "evil.example")]);
        let err = hosts.check(&uri, &two).unwrap_err();
        assert_eq!(err.detail.code, ErrorCode::HostNotAllowed);
    }

    #[test]
    fn an_unspecified_listen_address_adds_no_host() {
        let hosts = AllowedHosts::new(&[], "0.0.0.0:7700".parse().unwrap());
        assert_eq!(hosts.names(), ["localhost", "127.0.0.1", "[::1]"]);
        let hosts = AllowedHosts::new(&[], "[::1]:7700".parse().unwrap());
        assert_eq!(hosts.names(), ["localhost", "127.0.0.1", "[::1]"]);
    }

    #[tokio::test]
    async fn an_origin_is_removed_when_a_replace_takes_it_out_and_not_before() {
        let origins = AllowedOrigins::new(vec!["http://a.test".into(), "http://b.test".into()]);
        let a = HeaderValue::from_static("http://A.test/");
        assert!(origins.allows(&a));
        let mut removed = Box::pin(origins.removed(&a));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(removed.as_mut().poll(&mut cx).is_pending());
        origins.clone().replace(vec!["http://a.test".into()]);
        assert!(
            removed.as_mut().poll(&mut cx).is_pending(),
            "a is still allowed"
        );
        origins.replace(vec!["http://b.test".into()]);
        tokio::time::timeout(std::time::Duration::from_secs(5), removed)
            .await
            .expect("removed once a is taken out");
        assert!(!origins.allows(&a));
    }

    #[test]
    fn origins_are_classified() {
        let allowed = ["http://localhost:5173".to_owned()];
        let host = "127.0.0.1:7700";
        // (the request's Origin headers, how it is classified)
        let cases: &[(&[&str], &str)] = &[
            (&[], "absent"),
            (&["http://127.0.0.1:7700"], "own"),
            (&["https://127.0.0.1:7700/"], "own"),
            (&["http://localhost:5173"], "allowed"),
            (&["HTTP://LOCALHOST:5173"], "allowed"),
            (&["http://localhost:5174"], "foreign"),
            (&["http://127.0.0.1:7701"], "foreign"),
            (&["http://evil.example"], "foreign"),
            (&["null"], "foreign"),
            // More than one, in either order, even if each alone would pass.
            (&["http://127.0.0.1:7700", "http://evil.example"], "foreign"),
            (&["http://evil.example", "http://127.0.0.1:7700"], "foreign"),
            (
                &["http://localhost:5173", "http://localhost:5173"],
                "foreign",
            ),
        ];
        for (origin, expected) in cases {
            let pairs: Vec<(&str, &str)> = origin.iter().map(|o| ("origin", *o)).collect();
            let h = headers(&pairs);
            let got = match RequestOrigin::of(&h, host, &allowed) {
                RequestOrigin::Absent => "absent",
                RequestOrigin::Own => "own",
                RequestOrigin::Allowed(_) => "allowed",
                RequestOrigin::Foreign => "foreign",
            };
            assert_eq!(got, *expected, "{origin:?}");
        }
    }

    #[test]
    fn cross_origin_state_changes_are_refused() {
        let allowed = ["http://localhost:5173".to_owned()];
        let host = "127.0.0.1:7700";
        // (method, Origin, Sec-Fetch-Site, allowed)
        let cases: &[(Method, Option<&str>, Option<&str>, bool)] = &[
            (Method::POST, None, None, true),
            (Method::POST, Some("http://127.0.0.1:7700"), None, true),
            (
                Method::POST,
                Some("http://127.0.0.1:7700"),
                Some("same-origin"),
                true,
            ),
            (Method::POST, None, Some("none"), true),
            (Method::POST, None, Some("same-origin"), true),
            (Method::POST, None, Some("cross-site"), false),
            (Method::POST, None, Some("same-site"), false),
            (
                Method::POST,
                Some("http://127.0.0.1:7700"),
                Some("cross-site"),
                false,
            ),
            (Method::POST, Some("http://evil.example"), None, false),
            (
                Method::POST,
                Some("http://evil.example"),
                Some("same-origin"),
                false,
            ),
            (Method::POST, Some("null"), None, false),
            (Method::DELETE, Some("http://evil.example"), None, false),
            (Method::PUT, None, Some("cross-site"), false),
            (Method::PATCH, None, Some("cross-site"), false),
            (
                Method::POST,
                Some("http://localhost:5173"),
                Some("same-site"),
                true,
            ),
            // Reads are not state changes: the Origin rule for them is CORS.
            (
                Method::GET,
                Some("http://evil.example"),
                Some("cross-site"),
                true,
            ),
        ];
        for (method, origin, site, expected) in cases {
            let mut pairs = Vec::new();
            if let Some(o) = origin {
                pairs.push(("origin", *o));
            }
            if let Some(s) = site {
                pairs.push(("sec-fetch-site", *s));
            }
            let h = headers(&pairs);
            let origin_kind = RequestOrigin::of(&h, host, &allowed);
            let got = check_cross_origin(method, &h, &origin_kind);
            assert_eq!(got.is_ok(), *expected, "{method} {origin:?} {site:?}");
            if let Err(err) = got {
                assert_eq!(err.detail.code, ErrorCode::CrossOriginRequest);
            }
        }
    }

    /// A second `Sec-Fetch-Site` or `Content-Type` (no browser sends one) is not
    /// taken on the first one's word, in either order.
    #[test]
    fn a_repeated_fetch_site_or_content_type_is_refused() {
        let host = "localhost:8080";
        let allowed: Vec<String> = Vec::new();
        for sites in [["same-origin", "cross-site"], ["cross-site", "same-origin"]] {
            let h = headers(&[("sec-fetch-site", sites[0]), ("sec-fetch-site", sites[1])]);
            let origin = RequestOrigin::of(&h, host, &allowed);
            assert!(
                check_cross_origin(&Method::POST, &h, &origin).is_err(),
                "{sites:?}"
            );
        }
        let json = headers(&[
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-site", "none"),
        ]);
        let origin = RequestOrigin::of(&json, host, &allowed);
        assert!(check_cross_origin(&Method::POST, &json, &origin).is_ok());
        for types in [
            ["application/json", "text/plain"],
            ["text/plain", "application/json"],
        ] {
            let h = headers(&[
                ("content-length", "2"),
                ("content-type", types[0]),
                ("content-type", types[1]),
            ]);
            assert!(
                crate::http::body::check_content_type(&h).is_err(),
                "{types:?}"
            );
        }
    }

    #[test]
    fn bodies_must_be_json() {
        /// (method, headers, allowed)
        type Case<'a> = (Method, &'a [(&'a str, &'a str)], bool);
        let cases: &[Case<'_>] = &[
            (Method::POST, &[], true),
            (Method::POST, &[("content-length", "0")], true),
            (Method::POST, &[("content-length", "2")], false),
            (
                Method::POST,
                &[("content-length", "2"), ("content-type", "text/plain")],
                false,
            ),
            (
                Method::POST,
                &[
                    ("content-length", "2"),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                false,
            ),
            (
                Method::POST,
                &[
                    ("content-length", "2"),
                    ("content-type", "multipart/form-data; boundary=x"),
                ],
                false,
            ),
            (
                Method::POST,
                &[
                    ("content-length", "2"),
                    ("content-type", "application/json"),
                ],
                true,
            ),
            (
                Method::POST,
                &[
                    ("content-length", "2"),
                    ("content-type", "Application/JSON; charset=utf-8"),
                ],
                true,
            ),
            (
                Method::POST,
                &[
                    ("content-length", "2"),
                    ("content-type", "application/jsonx"),
                ],
                false,
            ),
            (Method::POST, &[("transfer-encoding", "chunked")], false),
            (
                Method::POST,
                &[
                    ("transfer-encoding", "chunked"),
                    ("content-type", "application/json"),
                ],
                true,
            ),
            (Method::DELETE, &[("content-length", "2")], false),
            (Method::GET, &[("content-length", "2")], true),
        ];
        for (method, pairs, expected) in cases {
            let got = check_body_type(method, &headers(pairs));
            assert_eq!(got.is_ok(), *expected, "{method} {pairs:?}");
            if let Err(err) = got {
                assert_eq!(err.detail.code, ErrorCode::UnsupportedMediaType);
                assert_eq!(err.detail.code.status(), 415);
            }
        }
    }

    #[test]
    fn preflights_are_answered_for_allowed_origins_only() {
        let allowed_value = HeaderValue::from_static("http://localhost:5173");
        let ok = preflight(&RequestOrigin::Allowed(allowed_value.clone())).unwrap();
        assert_eq!(ok.status(), StatusCode::NO_CONTENT);
        let h = ok.headers();
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], CORS_MAX_AGE);
        assert!(
            h[ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap()
                .contains("Authorization")
        );
        assert!(!h.contains_key("access-control-allow-credentials"));
        for origin in [
            RequestOrigin::Foreign,
            RequestOrigin::Own,
            RequestOrigin::Absent,
        ] {
            let err = preflight(&origin).unwrap_err();
            assert_eq!(err.detail.code, ErrorCode::CrossOriginRequest);
        }
    }

    #[test]
    fn security_headers_depend_on_the_content() {
        let mut json = HeaderMap::new();
        json.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        security_headers(&mut json);
        assert_eq!(json[CONTENT_SECURITY_POLICY], API_CSP);
        assert_eq!(json[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(json[REFERRER_POLICY], "no-referrer");
        let mut page = HeaderMap::new();
        page.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        security_headers(&mut page);
        assert_eq!(page[CONTENT_SECURITY_POLICY], PAGE_CSP);
        assert!(!PAGE_CSP.contains("unsafe-inline"));
        assert!(PAGE_CSP.contains("frame-ancestors 'none'"));
        // A page's own policy (the console's) is kept.
        let mut console = HeaderMap::new();
        console.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        console.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(crate::console::CONTENT_SECURITY_POLICY_VALUE),
        );
        security_headers(&mut console);
        assert_eq!(
            console[CONTENT_SECURITY_POLICY],
            crate::console::CONTENT_SECURITY_POLICY_VALUE
        );
        assert_eq!(console[X_FRAME_OPTIONS], "DENY");
    }
}
