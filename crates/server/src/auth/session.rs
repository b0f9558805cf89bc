//! Browser sessions: a stateless cookie signed with HMAC-SHA256.
//!
//! The cookie's value is `v1.<payload>.<mac>`, both parts URL-safe base64 without
//! padding. The payload is JSON: the identity's name, a fingerprint of its token's
//! hash, when the session was issued and when it expires. Nothing is stored on the
//! server, so any replica with the same key accepts the cookie, and a session ends
//! when its token leaves the configuration (its fingerprint no longer matches any
//! token), when it expires, or when the key changes.
//!
//! Signing out (`super::signed_out`) is the one thing a process remembers, so that
//! a copy of a signed-out cookie is refused by the process that signed it out
//! (other replicas do not know).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::token::TokenHash;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "switchyard_session";

/// How long a session lasts unless configured: 12 hours.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(43_200);

/// The shortest session key accepted.
pub const MIN_SESSION_KEY_BYTES: usize = 32;

/// Random bytes in a session's nonce.
const NONCE_BYTES: usize = 12;

/// How far a cookie's issue time may lie in the future (replicas' clocks differ).
const CLOCK_SKEW_S: u64 = 60;

/// Domain separation for the MAC and the fingerprint.
const MAC_CONTEXT: &[u8] = b"switchyard session v1\0";
const FINGERPRINT_CONTEXT: &[u8] = b"switchyard session fingerprint v1\0";
const KEY_ID_CONTEXT: &[u8] = b"switchyard session key id v1\0";

/// The key sessions are signed with. `Debug` never shows it.
#[derive(Clone)]
pub struct SessionKey(Arc<[u8]>);

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey([redacted], {} bytes)", self.0.len())
    }
}

impl SessionKey {
    /// A key of at least [`MIN_SESSION_KEY_BYTES`] bytes; `None` if shorter.
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= MIN_SESSION_KEY_BYTES).then(|| Self(bytes.into()))
    }

    /// A random key for this process only: sessions end when it restarts, and other
    /// replicas do not accept them.
    pub fn random() -> Result<Self, getrandom::Error> {
        Ok(Self(super::token::os_random(MIN_SESSION_KEY_BYTES)?.into()))
    }
}

/// Where sessions read the time: the system clock, or a hand-set one in tests.
#[derive(Clone)]
pub struct Clock(ClockKind);

#[derive(Clone)]
enum ClockKind {
    System,
    Manual(Arc<AtomicU64>),
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ClockKind::System => f.write_str("Clock::System"),
            ClockKind::Manual(now) => write!(f, "Clock::Manual({})", now.load(Ordering::SeqCst)),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(ClockKind::System)
    }

    /// A clock that reads `unix_s` until moved with [`Clock::advance`].
    pub fn manual(unix_s: u64) -> Self {
        Self(ClockKind::Manual(Arc::new(AtomicU64::new(unix_s))))
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let ClockKind::Manual(now) = &self.0 {
            now.fetch_add(by.as_secs(), Ordering::SeqCst);
        }
    }

    /// Seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        match &self.0 {
            ClockKind::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            ClockKind::Manual(now) => now.load(Ordering::SeqCst),
        }
    }
}

/// What a cookie says, once its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The identity's name.
    #[serde(rename = "n")]
    pub name: String,
    /// [`fingerprint`] of the token the session was opened with, in hex.
    #[serde(rename = "f")]
    pub fingerprint: String,
    /// Issued at, Unix seconds.
    #[serde(rename = "i")]
    pub issued_at: u64,
    /// Expires at, Unix seconds.
    #[serde(rename = "e")]
    pub expires_at: u64,
    /// Random, so that two sign-ins in the same second are two sessions (signing
    /// out one leaves the other). Empty in cookies issued before it existed.
    #[serde(rename = "r", default, skip_serializing_if = "String::is_empty")]
    pub nonce: String,
}

/// Why a cookie is refused. The messages are for the client; none holds the cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Not a cookie this server issued (malformed, or signed with another key).
    #[error("the session cookie is not valid here; sign in again")]
    Invalid,
    /// Past its expiry.
    #[error("the session has expired; sign in again")]
    Expired,
    /// Its token is no longer configured (or its identity changed).
    #[error("the session's token is no longer accepted; sign in again")]
    Revoked,
    /// Signed out (`DELETE /api/session`) with this cookie.
    #[error("the session was signed out; sign in again")]
    SignedOut,
}

/// A short, one-way fingerprint of a token's hash: lets a cookie name its token
/// without carrying the hash itself.
pub fn fingerprint(hash: &TokenHash) -> String {
    let mut digest = Sha256::new();
    digest.update(FINGERPRINT_CONTEXT);
    digest.update(hash.as_bytes());
    super::token::hex(&digest.finalize()[..16])
}

/// Signs and checks session cookies.
#[derive(Debug, Clone)]
pub struct SessionCodec {
    key: SessionKey,
    /// [`SessionCodec::key_id`], computed once.
    key_id: u64,
    ttl: Duration,
    clock: Clock,
}

type HmacSha256 = Hmac<Sha256>;

impl SessionCodec {
    /// A codec with `key`, sessions lasting `ttl`, reading time from `clock`.
    pub fn new(key: SessionKey, ttl: Duration, clock: Clock) -> Self {
        let mut mac = HmacSha256::new_from_slice(&key.0).expect("HMAC takes any key length");
        mac.update(KEY_ID_CONTEXT);
        let tag = mac.finalize().into_bytes();
        let key_id = u64::from_be_bytes(tag[..8].try_into().expect("a SHA-256 tag has 32 bytes"));
        Self {
            key,
            key_id,
            ttl,
            clock,
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Names the session key without revealing it: the first 8 bytes of an HMAC of
    /// a fixed text under it. Event streams compare it to end when a reload
    /// changes the key.
    pub fn key_id(&self) -> u64 {
        self.key_id
    }

    fn mac(&self) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key.0).expect("HMAC takes any key length");
        mac.update(MAC_CONTEXT);
        mac
    }

    /// A signed cookie value for `name`, whose token has `hash`, starting now.
    pub fn issue(&self, name: &str, hash: &TokenHash) -> String {
        let now = self.clock.now();
        let claims = SessionClaims {
            name: name.to_owned(),
            fingerprint: fingerprint(hash),
            issued_at: now,
            expires_at: now.saturating_add(self.ttl.as_secs()),
            // The OS's random source does not fail once the system is up; if it did,
            // sign-ins in one second would share a session, and so a sign-out.
            nonce: match super::token::os_random(NONCE_BYTES) {
                Ok(bytes) => URL_SAFE_NO_PAD.encode(bytes),
                Err(error) => {
                    tracing::warn!(%error, "no random nonce for a session: the OS's random source failed");
                    String::new()
                }
            },
        };
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims always serialize"));
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("v1.{payload}.{tag}")
    }

    /// Seconds since the Unix epoch, by this codec's clock.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The claims of a cookie value whose signature is this key's, whatever its age.
    pub fn signed_claims(&self, value: &str) -> Option<SessionClaims> {
        let rest = value.strip_prefix("v1.")?;
        let (payload, tag) = rest.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        // Constant-time comparison of the tags.
        mac.verify_slice(&tag).ok()?;
        URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
    }

    /// How long a session issued at `issued_at` whose cookie says `expires_at` has
    /// left (zero once it has ended).
    pub fn time_left(&self, issued_at: u64, expires_at: u64) -> Duration {
        let ends = expires_at.min(issued_at.saturating_add(self.ttl.as_secs()));
        Duration::from_secs(ends.saturating_sub(self.clock.now()))
    }

    /// Checks a cookie value's signature and age. The caller still has to find the
    /// token whose fingerprint it names.
    pub fn verify(&self, value: &str) -> Result<SessionClaims, SessionError> {
        let claims = self.signed_claims(value).ok_or(SessionError::Invalid)?;
        let now = self.clock.now();
        if claims.issued_at > now.saturating_add(CLOCK_SKEW_S) {
            return Err(SessionError::Invalid);
        }
        // A shorter TTL configured since the cookie was issued applies at once.
        if self
            .time_left(claims.issued_at, claims.expires_at)
            .is_zero()
        {
            return Err(SessionError::Expired);
        }
        Ok(claims)
    }

    /// The `Set-Cookie` value that starts a session.
    pub fn set_cookie(&self, value: &str, secure: bool) -> String {
        format!(
            "{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
            self.ttl.as_secs(),
            if secure { "; Secure" } else { "" }
        )
    }
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Every value of the session cookie in a request's `Cookie` headers.
pub fn cookie_values(headers: &http::HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name.trim() == COOKIE_NAME).then(|| value.trim().trim_matches('"'))
        })
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codec(key: u8, ttl: u64, clock: &Clock) -> SessionCodec {
        SessionCodec::new(
            SessionKey::new(vec![key; 32]).unwrap(),
            Duration::from_secs(ttl),
            clock.clone(),
        )
    }

    #[test]
    fn a_cookie_round_trips_until_it_expires() {
        let clock = Clock::manual(1_000_000);
        let codec = codec(7, 100, &clock);
        let hash = TokenHash::of("t");
        let value = codec.issue("alice", &hash);
        let claims = codec.verify(&value).unwrap();
        assert_eq!(claims.name, "alice");
        assert_eq!(claims.fingerprint, fingerprint(&hash));
        assert_eq!(claims.issued_at, 1_000_000);
        assert_eq!(claims.expires_at, 1_000_100);
        // Two sign-ins in the same second are two sessions.
        let twin = codec.issue("alice", &hash);
        assert_ne!(twin, value);
        assert_ne!(codec.verify(&twin).unwrap().nonce, claims.nonce);
        // A cookie from before nonces (none in its claims) is still accepted.
        let old = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(
                &json!({"n": "alice", "f": fingerprint(&hash), "i": 1_000_000, "e": 1_000_100}),
            )
            .unwrap(),
        );
        let mut mac = codec.mac();
        mac.update(old.as_bytes());
        let old = format!(
            "v1.{old}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(codec.verify(&old).unwrap().nonce, "");
        clock.advance(Duration::from_secs(99));
        assert!(codec.verify(&value).is_ok());
        clock.advance(Duration::from_secs(1));
        assert_eq!(codec.verify(&value), Err(SessionError::Expired));
    }

    #[test]
    fn another_key_a_shorter_ttl_or_an_edit_refuses_it() {
        let clock = Clock::manual(1_000_000);
        let value = codec(7, 100, &clock).issue("alice", &TokenHash::of("t"));
        // Same key, another replica: accepted.
        assert!(codec(7, 100, &clock).verify(&value).is_ok());
        assert_eq!(
            codec(8, 100, &clock).verify(&value),
            Err(SessionError::Invalid)
        );
        clock.advance(Duration::from_secs(50));
        assert_eq!(
            codec(7, 10, &clock).verify(&value),
            Err(SessionError::Expired)
        );
        // Edited payloads and tags, truncations, junk.
        let codec = codec(7, 100, &clock);
        let (head, tag) = value.rsplit_once('.').unwrap();
        let forged_claims = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&SessionClaims {
                name: "admin".into(),
                fingerprint: fingerprint(&TokenHash::of("t")),
                issued_at: 1_000_000,
                expires_at: 9_000_000,
                nonce: String::new(),
            })
            .unwrap(),
        );
        for bad in [
            String::new(),
            "v1".to_owned(),
            "v1..".to_owned(),
            head.to_owned(),
            format!("{head}.{}", &tag[1..]),
            format!("{head}x.{tag}"),
            format!("v1.{forged_claims}.{tag}"),
            format!("v2{}", &value[2..]),
            value.replace('.', "!"),
        ] {
            assert_eq!(codec.verify(&bad), Err(SessionError::Invalid), "{bad}");
        }
    }

    #[test]
    fn a_cookie_from_the_future_is_refused() {
        let clock = Clock::manual(1_000_000);
        let value = codec(7, 100_000, &clock).issue("alice", &TokenHash::of("t"));
        let earlier = Clock::manual(1_000_000 - 61);
        assert_eq!(
            codec(7, 100_000, &earlier).verify(&value),
            Err(SessionError::Invalid)
        );
        let slightly_earlier = Clock::manual(1_000_000 - 59);
        assert!(codec(7, 100_000, &slightly_earlier).verify(&value).is_ok());
    }

    #[test]
    fn cookie_attributes() {
        let clock = Clock::manual(0);
        let codec = codec(7, 3600, &clock);
        assert_eq!(
            codec.set_cookie("v", false),
            "switchyard_session=v; HttpOnly; SameSite=Strict; Path=/; Max-Age=3600"
        );
        assert!(codec.set_cookie("v", true).ends_with("; Secure"));
        assert_eq!(
            clear_cookie(false),
            "switchyard_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
        );
    }

    #[test]
    fn finds_the_cookie_among_others() {
        let mut headers = http::HeaderMap::new();
        headers.append(
            http::header::COOKIE,
            "theme=dark; switchyard_session=abc; other=1"
                .parse()
                .unwrap(),
        );
        headers.append(
            http::header::COOKIE,
            "switchyard_session=def".parse().unwrap(),
        );
        headers.append(http::header::COOKIE, "switchyard_session=".parse().unwrap());
        assert_eq!(cookie_values(&headers).collect::<Vec<_>>(), ["abc", "def"]);
        assert_eq!(cookie_values(&http::HeaderMap::new()).count(), 0);
    }

    #[test]
    fn short_keys_are_refused_and_debug_hides_keys() {
        assert!(SessionKey::new(vec![1; 31]).is_none());
        let key = SessionKey::new(vec![0xab; 32]).unwrap();
        assert!(!format!("{key:?}").contains("ab"), "{key:?}");
        assert!(SessionKey::random().is_ok());
    }
}
