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
