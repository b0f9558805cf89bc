//! `/api/session`: browsers trade a token for a signed, HttpOnly, SameSite=Strict
//! cookie (`POST`), ask who they are (`GET`), and sign out (`DELETE`).

use http::header::{CACHE_CONTROL, HeaderValue, SET_COOKIE};
use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use switchyard_protocol::{LoginRequest, SessionInfo};
use switchyard_registry::Caller;

use super::audit::Audit;
use crate::auth::Authenticator;
use crate::auth::session::clear_cookie;
use crate::http::body::read_json;
use crate::http::response::{empty, json};
use crate::http::{ApiError, Response};

fn info(caller: &Caller, auth: bool) -> Response {
    let mut response = json(
        StatusCode::OK,
        &SessionInfo {
            name: caller.name().to_owned(),
            role: caller.role(),
            auth,
        },
    );
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn set_cookie(response: &mut Response, value: String) {
    match HeaderValue::from_str(&value) {
        Ok(value) => {
            response.headers_mut().insert(SET_COOKIE, value);
        }
        // Cookie values are base64 and fixed attributes: always valid.
        Err(_) => tracing::error!("a session cookie could not be put in a header"),
    }
}

/// True when the cookie must carry `Secure`: the backend serves TLS itself
/// (`served_over_tls`), or a proxy in front that ended TLS says the client came over
/// HTTPS (`X-Forwarded-Proto: https`, or `proto=https` in `Forwarded`). Trusting
/// the header cannot weaken anything: a client that claims HTTPS over plain HTTP
/// only gets a cookie its own browser will not send back over plain HTTP.
pub(super) fn secure_cookie(served_over_tls: bool, headers: &HeaderMap) -> bool {
    served_over_tls || forwarded_https(headers)
}

fn forwarded_https(headers: &HeaderMap) -> bool {
    let first = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
    };
    if first("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https")) {
        return true;
    }
    first("forwarded").is_some_and(|element| {
        element.split(';').any(|pair| {
            pair.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("proto")
                    && v.trim().trim_matches('"').eq_ignore_ascii_case("https")
            })
        })
    })
}

/// `POST /api/session` `{"token":"..."}`: 200 `{"name","role","auth"}` with the
/// session cookie, or `401 unauthorized`. Without auth: the anonymous admin with
/// `"auth": false`, no cookie.
pub(super) async fn login(
    auth: &Authenticator,
    headers: &HeaderMap,
    body: Incoming,
    limit: u64,
    secure: bool,
    audit: &mut Audit,
) -> Result<Response, ApiError> {
    let request: LoginRequest = read_json(headers, body, limit).await?;
    let login = auth.login(&request.token)?;
    drop(request);
    audit.identify(&login.caller);
    let mut response = info(&login.caller, auth.is_on());
    if let (Some(cookie), Some(sessions)) = (login.cookie, auth.sessions()) {
        set_cookie(&mut response, sessions.set_cookie(&cookie, secure));
    }
    Ok(response)
}

/// `GET /api/session`: who the request's credentials are (`"auth": false` and the
/// anonymous admin without auth).
pub(super) fn current(caller: &Caller, auth: bool) -> Response {
    info(caller, auth)
}

/// `DELETE /api/session`: 204, and the browser drops the cookie (the caller has
/// signed the request's cookie out with [`crate::auth::Authenticator::sign_out`]).
pub(super) fn logout(secure: bool) -> Response {
    let mut response = empty(StatusCode::NO_CONTENT);
    set_cookie(&mut response, clear_cookie(secure));
    no_store(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_over_tls_or_behind_a_proxy_that_ended_it() {
        /// Served over TLS, request headers, and whether the cookie is `Secure`.
        type Case = (bool, &'static [(&'static str, &'static str)], bool);
        let cases: &[Case] = &[
            (true, &[], true),
            (false, &[], false),
            (false, &[("x-forwarded-proto", "https")], true),
            (false, &[("x-forwarded-proto", "HTTPS, http")], true),
            (false, &[("x-forwarded-proto", "http")], false),
            (false, &[("x-forwarded-proto", "http, https")], false),
            (
                false,
                &[("forwarded", "for=1.2.3.4;proto=https;host=a")],
                true,
            ),
            (false, &[("forwarded", "proto=\"https\"")], true),
            (false, &[("forwarded", "proto=http, proto=https")], false),
            (false, &[("forwarded", "for=1.2.3.4")], false),
        ];
        for (tls, pairs, secure) in cases {
            let mut headers = HeaderMap::new();
            for (name, value) in *pairs {
                headers.insert(*name, HeaderValue::from_str(value).unwrap());
            }
            assert_eq!(secure_cookie(*tls, &headers), *secure, "{tls} {pairs:?}");
        }
    }
}
