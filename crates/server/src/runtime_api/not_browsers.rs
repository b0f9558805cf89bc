//! The Runtime API serves the backend, never a browser ("Browsers never talk to
//! it"). A page open in a browser on the runtime's machine could otherwise drive a
//! runtime on loopback: a `fetch` with a body of no declared type needs no CORS
//! preflight, a WebSocket needs none at all, and a name the page controls can be
//! made to resolve to 127.0.0.1 (DNS rebinding) so that even reading answers passes
//! the browser's same-origin rule. A runtime with a token is out of reach (a page
//! cannot know it); one without a token would start a shell for any page. So:
//!
//! - a request that carries what only browsers send (`Origin`, or `Sec-Fetch-Site`
//!   other than `none`, a typed-in address) is `403 cross_origin_request`;
//! - a request with two `Host` headers is `403 host_not_allowed`;
//! - a runtime without a token answers only to a loopback `Host` (`localhost`,
//!   `127.x.x.x`, `[::1]`, any port), the only names it can be reached by, as it
//!   listens on loopback alone: anything else is `403 host_not_allowed`.
//!
//! The backend's client sends neither header and names the runtime as its
//! `base_url` does. Request bodies must be JSON (see [`crate::http::body`]).

use http::header::{HOST, ORIGIN};
use http::{HeaderMap, HeaderName, Uri};
use switchyard_protocol::ErrorCode;

use crate::backend_api::browser::{host_name, one_host};
use crate::http::ApiError;

/// `Sec-Fetch-Site`, which browsers add to every request they make.
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Refuses a request from a browser, and, when the runtime has no token
/// (`tokenless`), one whose `Host` is not a loopback name.
pub(super) fn refuse_browsers(
    uri: &Uri,
    headers: &HeaderMap,
    tokenless: bool,
) -> Result<(), ApiError> {
    let from_a_page = headers.contains_key(ORIGIN)
        || headers
            .get(SEC_FETCH_SITE)
            .is_some_and(|site| site.as_bytes() != b"none");
    if from_a_page {
        return Err(ApiError::new(
            ErrorCode::CrossOriginRequest,
            "the Runtime API serves the backend only, never a web page; open the backend's \
             console or use its /api instead",
        ));
    }
    one_host(headers)?;
    if tokenless {
        let host = uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| headers.get(HOST).and_then(|h| h.to_str().ok()));
        if !host.is_some_and(|h| is_loopback_name(host_name(h))) {
            return Err(ApiError::new(
                ErrorCode::HostNotAllowed,
                "a runtime without a token answers only to localhost, 127.0.0.1 or [::1]; \
                 reach it by one of those, or give it a token",
            ));
        }
    }
    Ok(())
}

/// `localhost` (any case), or a loopback address in any spelling the
/// configuration accepts for a `base_url` (`127.0.0.2`, `[::1]`,
/// `[0:0:0:0:0:0:0:1]`, `[::ffff:127.0.0.1]`).
fn is_loopback_name(name: &str) -> bool {
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok_and(|ip| {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }),
        None => name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outcome for `headers` (name, value pairs) on a runtime with or without
    /// a token: `Ok` or the error code.
    fn check(headers: &[(&str, &str)], tokenless: bool) -> Result<(), &'static str> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        refuse_browsers(&Uri::from_static("/v1/workers"), &map, tokenless)
            .map_err(|e| e.detail.code.as_str())
    }

    /// Request headers, whether the runtime has no token, and the outcome.
    type Case = (
        &'static [(&'static str, &'static str)],
        bool,
        Result<(), &'static str>,
    );

    #[test]
    fn browsers_are_refused_and_the_backend_is_not() {
        let cases: &[Case] = &[
            // The backend's client, with and without a token.
            (&[("host", "127.0.0.1:7701")], true, Ok(())),
            (&[("host", "build-1.internal:7701")], false, Ok(())),
            (&[("host", "localhost:7701")], true, Ok(())),
            (&[("host", "LOCALHOST")], true, Ok(())),
            (&[("host", "127.0.0.2:7701")], true, Ok(())),
            (&[("host", "[::1]:7701")], true, Ok(())),
            (&[("host", "[0:0:0:0:0:0:0:1]:7701")], true, Ok(())),
            (&[("host", "[::ffff:127.0.0.1]:7701")], true, Ok(())),
            (&[("host", "[::2]:7701")], true, Err("host_not_allowed")),
            // A typed-in address in a browser.
            (
                &[("host", "127.0.0.1:7701"), ("sec-fetch-site", "none")],
                true,
                Ok(()),
            ),
            // A page: any Origin, any other Sec-Fetch-Site, token or not.
            (
                &[
                    ("host", "127.0.0.1:7701"),
                    ("origin", "http://evil.example"),
                ],
                true,
                Err("cross_origin_request"),
            ),
            (
                &[("host", "127.0.0.1:7701"), ("origin", "null")],
                false,
                Err("cross_origin_request"),
            ),
            (
                &[("host", "127.0.0.1:7701"), ("sec-fetch-site", "cross-site")],
                true,
                Err("cross_origin_request"),
            ),
            (
                &[
                    ("host", "127.0.0.1:7701"),
                    ("sec-fetch-site", "same-origin"),
                ],
                false,
                Err("cross_origin_request"),
            ),
            // DNS rebinding: a page's own name resolved to loopback.
            (
                &[("host", "evil.example:7701")],
                true,
                Err("host_not_allowed"),
            ),
            (
                &[("host", "127.0.0.1.evil.example")],
                true,
                Err("host_not_allowed"),
            ),
            (&[], true, Err("host_not_allowed")),
            // Two Host headers: malformed, whichever a check would read.
            (
                &[("host", "localhost"), ("host", "evil.example")],
                true,
                Err("host_not_allowed"),
            ),
            (
                &[("host", "localhost"), ("host", "localhost")],
                false,
                Err("host_not_allowed"),
            ),
        ];
        for (headers, tokenless, expected) in cases {
            assert_eq!(
                check(headers, *tokenless),
                *expected,
                "{headers:?} tokenless={tokenless}"
            );
        }
    }
}
