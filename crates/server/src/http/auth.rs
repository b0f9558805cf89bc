//! Bearer-token checks, in constant time, against one or more accepted tokens that a
//! reload can replace ([`BearerTokens`]).

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use switchyard_protocol::ErrorCode;
use switchyard_transport::SecretToken;
use tokio::sync::watch;

use super::ApiError;

/// The bearer tokens a server accepts, any one of them; none turns auth off. Clones
/// share one cell, which [`BearerTokens::replace`] changes for all of them at once
/// (a runtime's reload): each request reads the list once, without a lock, so the
/// new tokens apply to the next request and the next WebSocket handshake; a
/// WebSocket opened with a token that a replacement removes ends
/// ([`BearerTokens::revoked`]). `Debug` shows how many, never a token.
#[derive(Clone, Default)]
pub struct BearerTokens(Arc<Shared>);

#[derive(Default)]
struct Shared {
    tokens: ArcSwap<Vec<SecretToken>>,
    /// Ticks after every replacement, for [`BearerTokens::revoked`].
    changes: watch::Sender<u64>,
}

impl BearerTokens {
    /// Accepts any of `tokens`; none turns auth off.
    pub fn new(tokens: Vec<SecretToken>) -> Self {
        Self(Arc::new(Shared {
            tokens: ArcSwap::from_pointee(tokens),
            changes: watch::Sender::new(0),
        }))
    }

    /// Accepts `tokens` from the next request on, in every clone, and ends the
    /// sessions opened with a token no longer among them.
    pub fn replace(&self, tokens: Vec<SecretToken>) {
        self.0.tokens.store(Arc::new(tokens));
        self.0.changes.send_modify(|tick| *tick += 1);
    }

    /// The tokens accepted now (empty: auth is off).
    pub fn current(&self) -> Arc<Vec<SecretToken>> {
        self.0.tokens.load_full()
    }

    /// True while a request made with `opened_with` (what [`check_bearer`] found;
    /// `None` when auth was off) would still be let in: auth is off now, or the
    /// token is still accepted.
    pub fn admits(&self, opened_with: Option<&SecretToken>) -> bool {
        let now = self.0.tokens.load();
        match opened_with {
            _ if now.is_empty() => true,
            None => false,
            Some(token) => now.iter().fold(false, |found, accepted| {
                found | accepted.matches(token.expose())
            }),
        }
    }

    /// Resolves once a replacement stops admitting `opened_with` (checked now, then
    /// after every replacement); never while it is admitted. A long-lived session
    /// (an event WebSocket) ends when this resolves.
    pub async fn revoked(&self, opened_with: Option<&SecretToken>) {
        let mut changes = self.0.changes.subscribe();
        while self.admits(opened_with) {
            // The sender lives as long as `self`: `changed` cannot fail here.
            let _ = changes.changed().await;
        }
    }
}

impl fmt::Debug for BearerTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerTokens")
            .field("count", &self.0.tokens.load().len())
            .finish()
    }
}

/// Checks `Authorization: Bearer <token>` against `accepted`, any one of them;
/// an empty `accepted` means auth is off. The presented token is compared with
/// every accepted one, each in constant time and without stopping at a match, so
/// the time taken does not say which one (or whether any) matched. Returns the
/// accepted token it matched (`None` when auth is off): what a long-lived session
/// keeps to learn when a reload removes it ([`BearerTokens::revoked`]).
pub fn check_bearer(
    headers: &HeaderMap,
    accepted: &[SecretToken],
) -> Result<Option<SecretToken>, ApiError> {
    if accepted.is_empty() {
        return Ok(None);
    }
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let Some(token) = presented else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "send Authorization: Bearer <token>",
        ));
    };
    let matched = accepted.iter().fold(None, |found, expected| {
        // Every comparison is made, whatever matched before.
        let matches = expected.matches(token);
        found.or(matches.then_some(expected))
    });
    match matched {
        Some(expected) => Ok(Some(expected.clone())),
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the bearer token is not valid for this server",
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

    fn token(text: &str) -> SecretToken {
        SecretToken::new(text).unwrap()
    }

    /// Spawns a task that ends when `tokens` stops admitting what `presented`
    /// was let in with.
    fn watch_revocation(tokens: &BearerTokens, presented: &str) -> tokio::task::JoinHandle<()> {
        let opened_with = check_bearer(&headers(presented), &tokens.current()).unwrap();
        let tokens = tokens.clone();
        tokio::spawn(async move { tokens.revoked(opened_with.as_ref()).await })
    }

    async fn ends(task: tokio::task::JoinHandle<()>, what: &str) {
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .unwrap_or_else(|_| panic!("{what}: not revoked"))
            .unwrap();
    }

    async fn still_running(task: &tokio::task::JoinHandle<()>, what: &str) {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!task.is_finished(), "{what}: revoked");
    }

    #[test]
    fn the_check_returns_the_accepted_token_that_matched() {
        let accepted = [token("first-t0k"), token("second-t0k")];
        let matched = check_bearer(&headers("Bearer second-t0k"), &accepted).unwrap();
        assert_eq!(
            matched.as_ref().map(SecretToken::expose),
            Some("second-t0k")
        );
        assert!(check_bearer(&headers("Bearer x"), &[]).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_replacement_revokes_the_sessions_opened_with_a_token_it_removes() {
        let tokens = BearerTokens::new(vec![token("old-t0k"), token("new-t0k")]);
        let old = watch_revocation(&tokens, "Bearer old-t0k");
        let new = watch_revocation(&tokens, "Bearer new-t0k");
        still_running(&old, "before any reload").await;

        tokens.replace(vec![token("new-t0k"), token("newer-t0k")]);
        ends(old, "the removed token's session").await;
        still_running(&new, "a kept token's session").await;

        // Auth turned off lets everyone in: nothing is revoked.
        tokens.replace(Vec::new());
        still_running(&new, "auth turned off").await;
        tokens.replace(vec![token("other-t0k")]);
        ends(new, "its token gone when auth came back").await;
    }

    #[tokio::test]
    async fn turning_auth_on_revokes_the_sessions_opened_without_a_token() {
        let tokens = BearerTokens::new(Vec::new());
        let open = watch_revocation(&tokens, "Bearer anything");
        tokens.replace(Vec::new());
        still_running(&open, "auth still off").await;
        tokens.replace(vec![token("now-t0k")]);
        ends(open, "auth turned on").await;
    }
}
