//! Bearer-token checks, in constant time, against one or more accepted tokens that a
//! reload can replace ([`BearerTokens`]).

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use switchyard_protocol::ErrorCode;
use switchyard_transport::SecretToken;

use super::ApiError;

/// The bearer tokens a server accepts, any one of them; none turns auth off. Clones
/// share one cell, which [`BearerTokens::replace`] changes for all of them at once
/// (a runtime's reload): each request reads the list once, without a lock, so the
/// new tokens apply to the next request and the next WebSocket handshake, and a
/// WebSocket already open is not cut. `Debug` shows how many, never a token.
#[derive(Clone, Default)]
pub struct BearerTokens(Arc<ArcSwap<Vec<SecretToken>>>);

impl BearerTokens {
    /// Accepts any of `tokens`; none turns auth off.
    pub fn new(tokens: Vec<SecretToken>) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(tokens)))
    }

    /// Accepts `tokens` from the next request on, in every clone.
    pub fn replace(&self, tokens: Vec<SecretToken>) {
        self.0.store(Arc::new(tokens));
    }

    /// The tokens accepted now (empty: auth is off).
    pub fn current(&self) -> Arc<Vec<SecretToken>> {
        self.0.load_full()
    }
}

impl fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerTokens")
            .field("count", &self.0.load().len())
            .finish()
    }
}

/// Checks `Authorization: Bearer <token>` against `accepted`, any one of them;
/// an empty `accepted` means auth is off. The presented token is compared with
/// every accepted one, each in constant time and without stopping at a match, so
/// the time taken does not say which one (or whether any) matched.
pub fn check_bearer(headers: &HeaderMap, accepted: &[SecretToken]) -> Result<(), ApiError> {
    if accepted.is_empty() {
        return Ok(());
    }
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match presented {
        Some(token)
            if accepted
                .iter()
                .fold(false, |found, expected| found | expected.matches(token)) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the bearer token is not valid for this server",
        )),
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "send Authorization: Bearer <token>",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_rules() {
        let token = SecretToken::new("t0k").unwrap();
        let one = std::slice::from_ref(&token);
        assert!(check_bearer(&HeaderMap::new(), &[]).is_ok());
        assert!(check_bearer(&headers("Bearer t0k"), one).is_ok());
        assert!(check_bearer(&headers("bearer t0k"), one).is_ok());
        for bad in ["Bearer t0", "Basic t0k", "t0k", "Bearer "] {
            let err = check_bearer(&headers(bad), one).unwrap_err();
            assert_eq!(err.detail.code, ErrorCode::Unauthorized);
            assert!(!err.detail.message.contains("t0k"));
        }
        assert!(check_bearer(&HeaderMap::new(), one).is_err());
    }

    #[test]
    fn any_of_several_tokens_passes_and_a_replacement_applies_to_the_next_check() {
        let tokens = BearerTokens::new(vec![
            SecretToken::new("old-t0k").unwrap(),
            SecretToken::new("new-t0k").unwrap(),
        ]);
        let check = |value: &str| check_bearer(&headers(value), &tokens.current()).is_ok();
        assert!(check("Bearer old-t0k"));
        assert!(check("Bearer new-t0k"));
        assert!(!check("Bearer other"));
        assert_eq!(format!("{tokens:?}"), "BearerTokens { count: 2 }");

        let clone = tokens.clone();
        clone.replace(vec![SecretToken::new("new-t0k").unwrap()]);
        assert!(!check("Bearer old-t0k"), "a clone's replace applies to all");
        assert!(check("Bearer new-t0k"));
        clone.replace(Vec::new());
        assert!(check("Bearer anything"), "no token: auth is off");
    }
}
