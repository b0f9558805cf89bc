//! The sessions signed out on this process: the one piece of session state a
//! backend keeps, so that a copy of a signed-out cookie is refused here.
//!
//! Entries are kept per token (by the fingerprint the cookie names); an entry whose
//! cookie has expired (by the expiry signed into it) is dropped at the token's next
//! sign-out. A token holds at most [`MAX_PER_TOKEN`] live entries: past that, every
//! session of that token issued up to now (and up to the latest issue time among
//! its entries, for a replica whose clock runs ahead) is signed out at once (a
//! cut-off) and its entries are dropped. So a full list signs out too much, never
//! too little, and only for the token that filled it: no caller can push anyone
//! else's sign-outs out. Memory: at most one full list (under 100 KB) and a cut-off
//! per token that has signed out under this process's key.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::session::SessionClaims;
use crate::config::MAX_SESSION_TTL;

/// Most live sessions of one token remembered one by one; past it the token's
/// sessions issued so far are cut off together.
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

    /// 64 lowercase hex digits (a journal line; it names the cookie, it is not it).
    pub fn to_hex(&self) -> String {
        super::token::hex(&self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        super::TokenHash::from_hex(text)
            .ok()
            .map(|hash| Self(*hash.as_bytes()))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

/// One verified session, as sign-outs and its event streams need it: which cookie,
/// which token, which session key signed it, when it was issued and when its
/// cookie says it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The cookie's id.
    pub id: SessionId,
    /// The fingerprint of its token ([`super::session::fingerprint`]).
    pub fingerprint: String,
    /// Which session key signed it ([`super::SessionCodec::key_id`]).
    pub key_id: u64,
    /// Issued at, Unix seconds.
    pub issued_at: u64,
    /// The expiry signed into the cookie, Unix seconds (a shorter TTL configured
    /// later ends it sooner, but a longer one configured after that would not).
    pub expires_at: u64,
}

impl Session {
    /// The session of the cookie `value`, whose signature by the key `key_id` gave
    /// `claims`.
    pub fn of(value: &str, claims: &SessionClaims, key_id: u64) -> Self {
        Self {
            id: SessionId::of(value),
            fingerprint: claims.fingerprint.clone(),
            key_id,
            issued_at: claims.issued_at,
            expires_at: claims.expires_at,
        }
    }
}

/// One token's sign-outs.
#[derive(Default)]
struct TokenSignOuts {
    /// Sessions signed out one by one: issued at, the signed expiry, and when it
    /// was signed out.
    sessions: HashMap<SessionId, (u64, u64, u64)>,
    /// Every session of the token issued before this (Unix seconds) is signed out;
    /// 0 for none.
    cut_off: u64,
}

impl TokenSignOuts {
    fn holds(&self, session: &Session) -> bool {
        session.issued_at < self.cut_off || self.sessions.contains_key(&session.id)
    }

    fn cut_off_entry(&self, fingerprint: &str) -> SignOut {
        SignOut::CutOff {
            fingerprint: fingerprint.to_owned(),
            before: self.cut_off,
        }
    }
}

/// What [`SignedOut::insert`] and [`SignedOut::apply`] answer: the entry that holds
/// the session now, and whether it is new here (so worth recording).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its own entry, or its token's cut-off.
    pub entry: SignOut,
    /// False when the session was signed out here already.
    pub new: bool,
}

impl Held {
    fn already(entry: SignOut) -> Self {
        Self { entry, new: false }
    }
}

/// What signs a session out: the unit of [`SignedOut`]'s state, and a line of a
/// sign-out journal ([`super::journal`]). Another way to sign out adds one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignOut {
    /// One session, signed out at `at` (Unix seconds, the signing-out process's
    /// clock).
    Session {
        /// Its token's fingerprint.
        fingerprint: String,
        /// The cookie's id.
        id: SessionId,
        /// Issued at, Unix seconds.
        issued_at: u64,
        /// The expiry signed into the cookie, Unix seconds.
        expires_at: u64,
        /// When it was signed out.
        at: u64,
    },
    /// Every session of a token issued before `before` (Unix seconds): what a token
    /// that filled its list leaves instead.
    CutOff {
        /// The token's fingerprint.
        fingerprint: String,
        /// The cut-off.
        before: u64,
    },
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
    /// whose cookie has expired is not remembered (it is refused as expired) and
    /// gives `None`; otherwise the entry that now holds it: its own, or its token's
    /// cut-off (what a [`super::journal::SignOutJournal`] records).
    pub fn insert(&self, session: &Session, now: u64) -> Option<Held> {
        let entry = SignOut::Session {
            fingerprint: session.fingerprint.clone(),
            id: session.id,
            issued_at: session.issued_at,
            expires_at: session.expires_at,
            at: now,
        };
        self.apply(&entry, now)
    }

    /// Applies `entry` (made here, or by another process and read from a journal);
    /// `now` is the clock's time. What [`SignedOut::insert`] answers.
    pub fn apply(&self, entry: &SignOut, now: u64) -> Option<Held> {
        let mut tokens = self.tokens();
        let held = match entry {
            SignOut::CutOff {
                fingerprint,
                before,
            } => {
                if before.saturating_add(MAX_SESSION_TTL.as_secs()) <= now {
                    return None;
                }
                let token = tokens.entry(fingerprint.clone()).or_default();
                if *before <= token.cut_off {
                    return Some(Held::already(token.cut_off_entry(fingerprint)));
                }
                token.cut_off = *before;
                token
                    .sessions
                    .retain(|_, (issued, _, _)| *issued >= *before);
                entry.clone()
            }
            SignOut::Session {
                fingerprint,
                id,
                issued_at,
                expires_at,
                at,
            } => {
                if *expires_at <= now {
                    return None;
                }
                let token = tokens.entry(fingerprint.clone()).or_default();
                if *issued_at < token.cut_off {
                    return Some(Held::already(token.cut_off_entry(fingerprint)));
                }
                if let Some((issued_at, expires_at, at)) = token.sessions.get(id) {
                    return Some(Held::already(SignOut::Session {
                        fingerprint: fingerprint.clone(),
                        id: *id,
                        issued_at: *issued_at,
                        expires_at: *expires_at,
                        at: *at,
                    }));
                }
                token.sessions.retain(|_, (_, expires, _)| *expires > now);
                if token.sessions.len() >= self.per_token {
                    // Full of live sessions: cut off every one issued up to the
                    // sign-out, and up to the latest issued among them (a replica's
                    // clock may run ahead), so that every entry dropped is covered.
                    let latest = token
                        .sessions
                        .values()
                        .map(|(issued, _, _)| *issued)
                        .chain([*issued_at, *at])
                        .max()
                        .unwrap_or(*at);
                    token.cut_off = token.cut_off.max(latest.saturating_add(1));
                    token.sessions = HashMap::new();
                    token.cut_off_entry(fingerprint)
                } else {
                    token.sessions.insert(*id, (*issued_at, *expires_at, *at));
                    entry.clone()
                }
            }
        };
        drop(tokens);
        self.changes.send_modify(|n| *n += 1);
        Some(Held {
            entry: held,
            new: true,
        })
    }

    /// Every entry that still holds a session at `now` (cut-offs first, then
    /// sessions, each group in token order): what a compacted journal keeps. Applied
    /// in this order to an empty list, they sign out the same sessions.
    pub fn entries(&self, now: u64) -> Vec<SignOut> {
        let tokens = self.tokens();
        let mut fingerprints: Vec<&String> = tokens.keys().collect();
        fingerprints.sort();
        let cut_offs = fingerprints.iter().filter_map(|fingerprint| {
            let token = &tokens[*fingerprint];
            (token.cut_off > 0 && token.cut_off.saturating_add(MAX_SESSION_TTL.as_secs()) > now)
                .then(|| token.cut_off_entry(fingerprint))
        });
        let mut sessions: Vec<SignOut> = Vec::new();
        for fingerprint in &fingerprints {
            let mut live: Vec<_> = tokens[*fingerprint]
                .sessions
                .iter()
                .filter(|(_, (_, expires, _))| *expires > now)
                .collect();
            live.sort_by_key(|(id, (issued, _, at))| (*at, *issued, id.0));
            sessions.extend(live.into_iter().map(|(id, (issued_at, expires_at, at))| {
                SignOut::Session {
                    fingerprint: (*fingerprint).clone(),
                    id: *id,
                    issued_at: *issued_at,
                    expires_at: *expires_at,
                    at: *at,
                }
            }));
        }
        cut_offs.chain(sessions).collect()
    }

    /// True when `session` has been signed out here.
    pub fn contains(&self, session: &Session) -> bool {
        self.tokens()
            .get(&session.fingerprint)
            .is_some_and(|token| token.holds(session))
    }

    /// How many sessions are remembered one by one (expired ones included until
    /// their token's next sign-out).
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
            key_id: 1,
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
    fn a_token_that_fills_its_list_cuts_off_its_own_sessions_only() {
        let out = SignedOut::with_capacity(3);
        let other = session("victim", 1, 10, 1000);
        out.insert(&other, 100);
        for n in 0..3 {
            out.insert(&session("flood", n, 90, 1000), 100);
        }
        let not_signed_out = session("flood", 9, 95, 1000);
        assert!(!out.contains(&not_signed_out));
        // Full: the fourth sign-out cuts off every flood session issued up to now.
        out.insert(&session("flood", 3, 99, 1000), 100);
        for n in 0..4 {
            assert!(out.contains(&session("flood", n, 90 + 3 * n as u64, 1000)));
        }
        assert!(
            out.contains(&not_signed_out),
            "ended too: too much, not too little"
        );
        assert!(
            out.contains(&session("flood", 10, 100, 1000)),
            "issued this second"
        );
        assert!(
            !out.contains(&session("flood", 11, 101, 1000)),
            "issued after"
        );
        assert!(out.contains(&other), "another token's sign-out stays");
        assert_eq!(out.len(), 1, "the flood's entries are gone");
    }

    #[test]
    fn a_cut_off_covers_every_entry_it_drops_even_this_seconds_and_ahead_of_the_clock() {
        let out = SignedOut::with_capacity(3);
        // Issued this second, and by a replica 30 s ahead.
        let entries = [
            session("t", 0, 100, 1000),
            session("t", 1, 100, 1000),
            session("t", 2, 130, 1000),
        ];
        for entry in &entries {
            out.insert(entry, 100);
        }
        out.insert(&session("t", 3, 100, 1000), 100);
        for entry in &entries {
            assert!(out.contains(entry), "{entry:?}");
        }
        assert!(out.contains(&session("t", 3, 100, 1000)));
        assert!(!out.contains(&session("t", 4, 131, 1000)));
    }

    #[test]
    fn what_holds_a_session_is_answered_and_its_entries_rebuild_the_same_list() {
        let out = SignedOut::with_capacity(2);
        let first = session("t", 0, 100, 1000);
        let held = out.insert(&first, 100).unwrap();
        assert!(held.new);
        assert!(
            matches!(held.entry, SignOut::Session { at: 100, .. }),
            "{held:?}"
        );
        assert_eq!(
            out.insert(&first, 120),
            Some(Held { new: false, ..held }),
            "already held: its entry, not new"
        );
        assert_eq!(out.insert(&session("t", 1, 100, 50), 100), None, "expired");
        out.insert(&session("t", 1, 100, 1000), 100);
        let cut = out.insert(&session("t", 2, 110, 1000), 110).unwrap();
        assert!(cut.new);
        let cut = cut.entry;
        assert_eq!(
            cut,
            SignOut::CutOff {
                fingerprint: "t".into(),
                before: 111
            }
        );
        assert_eq!(
            out.insert(&first, 120).map(|h| (h.entry, h.new)),
            Some((cut.clone(), false)),
            "held by the cut"
        );
        out.insert(&session("u", 0, 200, 300), 200);
        out.insert(&session("u", 1, 200, 2000), 200);
        out.insert(&session("t", 3, 150, 1000), 200);

        // Past u/0's expiry: it is left out.
        let entries = out.entries(400);
        assert_eq!(entries.len(), 3, "{entries:?}");
        assert_eq!(entries[0], cut);
        let rebuilt = SignedOut::with_capacity(2);
        for entry in &entries {
            rebuilt.apply(entry, 400);
        }
        assert_eq!(rebuilt.entries(400), entries);
        for probe in [
            session("t", 9, 110, 1000),
            session("t", 3, 150, 1000),
            session("u", 1, 200, 2000),
        ] {
            assert!(rebuilt.contains(&probe), "{probe:?}");
        }
        assert!(!rebuilt.contains(&session("t", 8, 111, 1000)));
        // A later cut-off read from elsewhere drops the entries it covers.
        rebuilt.apply(
            &SignOut::CutOff {
                fingerprint: "t".into(),
                before: 151,
            },
            400,
        );
        assert_eq!(rebuilt.len(), 1);
        assert!(rebuilt.contains(&session("t", 3, 150, 1000)));
        // A cut-off older than any session can be is not kept.
        let old = SignOut::CutOff {
            fingerprint: "v".into(),
            before: 10,
        };
        assert_eq!(rebuilt.apply(&old, 10 + MAX_SESSION_TTL.as_secs()), None);
        assert!(rebuilt.entries(400).iter().all(|e| e != &old));
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
