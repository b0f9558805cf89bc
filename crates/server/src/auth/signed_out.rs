//! The sessions signed out on this process: the one piece of session state a
//! backend keeps, so that a copy of a signed-out cookie is refused here.
//!
//! Entries are kept per token (by the fingerprint the cookie names), each until its
//! session would have expired by the expiry signed into the cookie. A token holds
//! at most [`MAX_PER_TOKEN`] entries: past that, every session of that token issued
//! before now is signed out at once (a cut-off) and its entries are dropped. So a
//! full list signs out too much, never too little, and only for the token that
//! filled it: no caller can push anyone else's sign-outs out.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::session::SessionClaims;

/// Most sessions of one token remembered one by one (about 50 KB); past it the
/// token's older sessions are cut off together.
pub const MAX_PER_TOKEN: usize = 1000;

/// Names one session (one issued cookie) without holding it: the SHA-256 of the
/// cookie's value. `Debug` never shows it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; 32]);

impl SessionId {
    /// The id of the session whose cookie value is `value`.
    pub fn of(value: &str) -> Self {
        Self(Sha256::digest(value.as_bytes()).into())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

/// One verified session, as sign-outs need it: which cookie, which token, when it
/// was issued and when its cookie says it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The cookie's id.
    pub id: SessionId,
    /// The fingerprint of its token ([`super::session::fingerprint`]).
    pub fingerprint: String,
    /// Issued at, Unix seconds.
    pub issued_at: u64,
    /// The expiry signed into the cookie, Unix seconds (a shorter TTL configured
    /// later ends it sooner, but a longer one configured after that would not).
    pub expires_at: u64,
}

impl Session {
    /// The session of the cookie `value`, whose signature gave `claims`.
    pub fn of(value: &str, claims: &SessionClaims) -> Self {
        Self {
            id: SessionId::of(value),
            fingerprint: claims.fingerprint.clone(),
            issued_at: claims.issued_at,
            expires_at: claims.expires_at,
        }
    }
}

/// One token's sign-outs.
#[derive(Default)]
struct TokenSignOuts {
    /// Sessions signed out one by one, each with its signed expiry.
    sessions: HashMap<SessionId, u64>,
    /// Every session of the token issued before this (Unix seconds) is signed out;
    /// 0 for none.
    cut_off: u64,
}

impl TokenSignOuts {
    fn holds(&self, session: &Session) -> bool {
        session.issued_at < self.cut_off || self.sessions.contains_key(&session.id)
    }
}

/// The sessions signed out on this process (see the module's notes). Survives
/// reloads: it belongs to the process, not to a configuration.
pub struct SignedOut {
    tokens: Mutex<HashMap<String, TokenSignOuts>>,
    /// Bumped by every sign-out that changed anything, for [`SignedOut::wait_for`].
    changes: tokio::sync::watch::Sender<u64>,
    per_token: usize,
}

impl fmt::Debug for SignedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignedOut({} sessions)", self.len())
    }
}

impl Default for SignedOut {
    fn default() -> Self {
        Self::with_capacity(MAX_PER_TOKEN)
    }
}

impl SignedOut {
    /// Remembers at most `per_token` sessions of each token one by one.
    pub fn with_capacity(per_token: usize) -> Self {
        Self {
            tokens: Mutex::new(HashMap::new()),
            changes: tokio::sync::watch::Sender::new(0),
            per_token: per_token.max(1),
        }
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, TokenSignOuts>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Signs `session` out; `now` is the clock's time (Unix seconds). A session
    /// whose cookie has expired is not remembered: it is refused as expired.
    pub fn insert(&self, session: &Session, now: u64) {
        if session.expires_at <= now {
            return;
        }
        let mut tokens = self.tokens();
        let token = tokens.entry(session.fingerprint.clone()).or_default();
        if token.holds(session) {
            return;
        }
        token.sessions.retain(|_, expires| *expires > now);
        if token.sessions.len() >= self.per_token {
            // Full of live sessions: cut off every one issued before now, and keep
            // only those issued since (this second's) one by one.
            token.cut_off = token.cut_off.max(now);
            token.sessions.clear();
            if session.issued_at < now {
                drop(tokens);
                self.changes.send_modify(|n| *n += 1);
                return;
            }
        }
        token.sessions.insert(session.id, session.expires_at);
        drop(tokens);
        self.changes.send_modify(|n| *n += 1);
    }

    /// True when `session` has been signed out here.
    pub fn contains(&self, session: &Session) -> bool {
        self.tokens()
            .get(&session.fingerprint)
            .is_some_and(|token| token.holds(session))
    }

    /// How many sessions are remembered one by one.
    pub fn len(&self) -> usize {
        self.tokens().values().map(|t| t.sessions.len()).sum()
    }

    /// True when none is (and no token has a cut-off).
    pub fn is_empty(&self) -> bool {
        self.tokens()
            .values()
            .all(|t| t.sessions.is_empty() && t.cut_off == 0)
    }

    /// Resolves once `session` is signed out (at once if it is).
    pub async fn wait_for(&self, session: &Session) {
        let mut changes = self.changes.subscribe();
        loop {
            if self.contains(session) {
                return;
            }
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn session(token: &str, n: u32, issued_at: u64, expires_at: u64) -> Session {
        Session {
            id: SessionId::of(&format!("v1.{token}-cookie-{n}")),
            fingerprint: token.to_owned(),
            issued_at,
            expires_at,
        }
    }

    #[test]
    fn a_signed_out_session_is_kept_until_its_cookie_expires() {
        let out = SignedOut::default();
        assert!(out.is_empty());
        let live = session("a", 1, 10, 100);
        out.insert(&live, 50);
        assert!(out.contains(&live));
        assert!(!out.contains(&session("a", 2, 10, 100)), "another session");
        assert!(!out.contains(&session("b", 1, 10, 100)), "another token");
        // Expired already: not remembered (the cookie is refused as expired).
        out.insert(&session("a", 3, 10, 50), 50);
        assert_eq!(out.len(), 1);
        // Signing out twice changes nothing.
        out.insert(&live, 60);
        assert_eq!(out.len(), 1);
        // Expired entries are dropped when the token signs out again.
        out.insert(&session("a", 4, 90, 200), 150);
        assert_eq!(out.len(), 1);
        assert!(!format!("{:?}", live.id).contains(|c: char| c.is_ascii_digit()));
    }

    #[test]
    fn a_token_that_fills_its_list_cuts_off_its_own_older_sessions_only() {
        let out = SignedOut::with_capacity(3);
        let other = session("victim", 1, 10, 1000);
        out.insert(&other, 100);
        for n in 0..3 {
            out.insert(&session("flood", n, 90, 1000), 100);
        }
        let kept = session("flood", 9, 95, 1000);
        assert!(!out.contains(&kept));
        // Full: the fourth sign-out cuts off every flood session issued before now.
        out.insert(&session("flood", 3, 99, 1000), 100);
        assert!(out.contains(&kept), "issued before the cut-off");
        assert!(
            !out.contains(&session("flood", 10, 100, 1000)),
            "issued at it"
        );
        assert!(out.contains(&other), "another token's sign-out stays");
        assert_eq!(out.len(), 1, "the flood's entries are gone");
        // A session issued in the cut-off's second is remembered one by one.
        let same_second = session("flood", 11, 100, 1000);
        out.insert(&same_second, 100);
        assert!(out.contains(&same_second));
    }

    #[tokio::test]
    async fn waiting_for_a_sign_out_resolves_when_it_comes() {
        let out = Arc::new(SignedOut::default());
        let mine = session("a", 1, 10, 100);
        let waiting = tokio::spawn({
            let (out, mine) = (out.clone(), mine.clone());
            async move { out.wait_for(&mine).await }
        });
        out.insert(&session("a", 2, 10, 100), 20);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "another session's sign-out");
        out.insert(&mine, 20);
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("resolves")
            .unwrap();
        // Already signed out: at once.
        out.wait_for(&mine).await;
    }
}
