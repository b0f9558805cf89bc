//! Backend client authentication: who a request comes from.
//!
//! - [`token`]: generating tokens and hashing them (the configuration holds only
//!   hashes).
//! - [`session`]: the signed, stateless session cookie for browsers.
//! - [`Authenticator`]: turns a request's `Authorization: Bearer` header or session
//!   cookie into a [`Caller`], or refuses it with `401 unauthorized`. Without auth
//!   every request is [`Caller::open`]. A reload replaces its tokens in place
//!   ([`Authenticator::replace`]); the sessions signed out on this process
//!   ([`Authenticator::sign_out`]) stay signed out across reloads, and, with a
//!   [`journal::SignOutJournal`], across restarts and on every backend sharing it.

pub mod journal;
pub mod session;
pub mod signed_out;
pub mod token;

use std::fmt;
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use switchyard_protocol::ErrorCode;
use switchyard_registry::{Caller, Role, RuntimeGrants, WorkerScope};

pub use journal::{JournalError, SignOutJournal};
pub use session::{Clock, SessionCodec, SessionError, SessionKey};
pub use signed_out::{Session, SessionId, SignOut, SignedOut};
pub use token::TokenHash;

/// Names no token may have: `-` (an audit line's caller or owner when there is
/// none) and `anonymous` (the caller when auth is off).
pub const RESERVED_NAMES: [&str; 2] = ["-", switchyard_registry::ANONYMOUS];

use crate::http::ApiError;

/// True for an identity name: 1 to 64 of `A-Z a-z 0-9 . _ - @`, and not one of the
/// names audit lines give callers and owners that are no token's (`-`, `?`
/// cannot be spelt; [`RESERVED_NAMES`]). Names go into audit lines and `owner`
/// fields, so nothing else is allowed.
pub fn valid_name(name: &str) -> bool {
    !RESERVED_NAMES.contains(&name)
        && (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

/// One configured token: an identity and the hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    /// The identity's name (audit lines, `GET /api/session`, worker owners).
    pub name: String,
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// What it may do.
    pub role: Role,
    /// Where it may do it.
    pub runtimes: RuntimeGrants,
    /// Which workers it reaches.
    pub workers: WorkerScope,
}

#[derive(Clone)]
struct Record {
    hash: TokenHash,
    fingerprint: String,
    caller: Caller,
}

#[derive(Clone)]
enum Mode {
    Open,
    Tokens {
        records: Vec<Record>,
        sessions: SessionCodec,
    },
}

/// Establishes the [`Caller`] of each request. Its tokens and session codec can be
/// replaced while it serves: each request reads them once, and what a request
/// established can be checked again later ([`Authenticator::admits`]).
pub struct Authenticator {
    mode: RwLock<Arc<Mode>>,
    /// Bumped by every [`Authenticator::replace`].
    changes: tokio::sync::watch::Sender<u64>,
    /// Sessions signed out here; kept by [`Authenticator::replace`].
    signed_out: SignedOut,
    /// Where sign-outs are kept beyond this process, when configured
    /// ([`Authenticator::keep_sign_outs_in`]); kept by [`Authenticator::replace`].
    journal: OnceLock<Arc<SignOutJournal>>,
    /// Sign-outs made here that the journal could not take yet, oldest first (at
    /// most [`MAX_UNRECORDED`]).
    unrecorded: std::sync::Mutex<Vec<SignOut>>,
    /// How many there are, for `/metrics`.
    unrecorded_gauge: prometheus_client::metrics::gauge::Gauge,
}

/// Most sign-outs kept for a journal that cannot be written; past it the oldest are
/// dropped (they still hold on this process).
const MAX_UNRECORDED: usize = 10_000;

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.mode() {
            Mode::Open => f.write_str("Authenticator::Open"),
            Mode::Tokens { records, .. } => f
                .debug_struct("Authenticator::Tokens")
                .field("tokens", &records.len())
                .finish_non_exhaustive(),
        }
    }
}

/// A login's outcome: who, and the session cookie's value.
#[derive(Debug, Clone)]
pub struct Login {
    /// The identity.
    pub caller: Caller,
    /// The signed cookie value; `None` when auth is off (no session is needed).
    pub cookie: Option<String>,
}

/// Longest an event stream's session goes between looks at the clock
/// ([`Authenticator::expired`]).
pub const EXPIRY_RECHECK: Duration = Duration::from_secs(30);

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

/// What an `Authorization` value holds for this backend: `Some(Some(token))` for
/// `Bearer <token>`, `Some(None)` for a bearer without a usable token (nothing
/// after the scheme, or not visible ASCII), `None` for another scheme (whatever
/// its bytes).
fn bearer_token(value: &HeaderValue) -> Option<Option<&str>> {
    let bytes = value.as_bytes().trim_ascii();
    let scheme_end = bytes
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    if !bytes[..scheme_end].eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    Some(
        std::str::from_utf8(&bytes[scheme_end..])
            .ok()
            .map(str::trim)
            .filter(|token| token.bytes().all(|b| b.is_ascii_graphic())),
    )
}

/// The bearer token of a request, if it sent any `Authorization: Bearer` (the
/// first; headers of other schemes are a proxy's, not ours): `Some(None)` when it
/// is not usable.
fn request_bearer(headers: &HeaderMap) -> Option<Option<&str>> {
    headers.get_all(AUTHORIZATION).iter().find_map(bearer_token)
}

impl Authenticator {
    /// No auth: everyone is [`Caller::open`].
    pub fn open() -> Self {
        Self::with_mode(Mode::Open)
    }

    fn with_mode(mode: Mode) -> Self {
        Self {
            mode: RwLock::new(Arc::new(mode)),
            changes: tokio::sync::watch::Sender::new(0),
            signed_out: SignedOut::default(),
            journal: OnceLock::new(),
            unrecorded: std::sync::Mutex::new(Vec::new()),
            unrecorded_gauge: Default::default(),
        }
    }

    fn mode(&self) -> Arc<Mode> {
        self.mode.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Serves with `other`'s tokens and sessions (or none) from the next request on:
    /// a reload. Sessions whose token is gone end, and stay ended if a later reload
    /// brings the token back; a changed role applies at once.
    /// A token whose hash and rights did not change keeps its [`Caller`], so what it
    /// established stays admitted ([`Authenticator::admits`]).
    pub fn replace(&self, other: Authenticator) {
        let mut next = Arc::unwrap_or_clone(other.mode());
        let mut current = self.mode.write().unwrap_or_else(|p| p.into_inner());
        if let Mode::Tokens {
            records: old,
            sessions,
        } = &**current
        {
            let kept = match &next {
                Mode::Tokens { records, .. } => records.as_slice(),
                Mode::Open => &[],
            };
            self.cut_off_removed(old, kept, sessions.now());
        }
        if let (Mode::Tokens { records: old, .. }, Mode::Tokens { records: new, .. }) =
            (&**current, &mut next)
        {
            for record in new.iter_mut() {
                if let Some(kept) = old
                    .iter()
                    .find(|o| o.hash == record.hash && o.caller.same_rights(&record.caller))
                {
                    record.caller = kept.caller.clone();
                }
            }
        }
        *current = Arc::new(next);
        drop(current);
        self.changes.send_modify(|n| *n += 1);
    }

    /// True while `caller` (as this authenticator established it for a request)
    /// would still be established the same way: its token is still configured with
    /// the same rights, or auth is still off. A long-lived session (a WebSocket)
    /// asks this after every [`Authenticator::replace`].
    pub fn admits(&self, caller: &Caller) -> bool {
        match &*self.mode() {
            Mode::Open => caller.same_as(&Caller::open()),
            Mode::Tokens { records, .. } => records.iter().any(|r| r.caller.same_as(caller)),
        }
    }

    /// Ticks after every [`Authenticator::replace`].
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Resolves once `caller` is no longer admitted (checked now, then after every
    /// replacement); never while it is.
    pub async fn revoked(&self, caller: &Caller) {
        let mut changes = self.changes.subscribe();
        loop {
            if !self.admits(caller) {
                return;
            }
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Auth by the given tokens, with sessions signed by `sessions`.
    pub fn with_tokens(tokens: &[TokenEntry], sessions: SessionCodec) -> Self {
        let records = tokens
            .iter()
            .map(|t| Record {
                hash: t.hash,
                fingerprint: session::fingerprint(&t.hash),
                caller: Caller::identified(t.name.clone(), t.role, t.runtimes.clone(), t.workers),
            })
            .collect();
        Self::with_mode(Mode::Tokens { records, sessions })
    }

    /// True when requests must carry credentials.
    pub fn is_on(&self) -> bool {
        matches!(*self.mode(), Mode::Tokens { .. })
    }

    /// The session codec, when auth is on.
    pub fn sessions(&self) -> Option<SessionCodec> {
        match &*self.mode() {
            Mode::Open => None,
            Mode::Tokens { sessions, .. } => Some(sessions.clone()),
        }
    }

    /// The caller of a request. A bearer token, when present, decides alone; else the
    /// session cookie, when `cookies` allows it (the request is not from a foreign
    /// origin). Missing or wrong credentials are `401 unauthorized`, and so is a
    /// cookie signed out here.
    pub fn authenticate(&self, headers: &HeaderMap, cookies: bool) -> Result<Caller, ApiError> {
        self.authenticate_session(headers, cookies)
            .map(|(caller, _)| caller)
    }

    /// [`Authenticator::authenticate`], and the session that identified the caller
    /// when a cookie did.
    pub fn authenticate_session(
        &self,
        headers: &HeaderMap,
        cookies: bool,
    ) -> Result<(Caller, Option<Session>), ApiError> {
        let mode = self.mode();
        let Mode::Tokens { records, sessions } = &*mode else {
            return Ok((Caller::open(), None));
        };
        // A bearer token decides alone. Another scheme (the `Basic` of a proxy in
        // front that authenticates on its own) is not ours: a cookie may still
        // identify the caller.
        if let Some(token) = request_bearer(headers) {
            let token = token
                .filter(|t| !t.is_empty())
                .ok_or_else(|| unauthorized("send Authorization: Bearer <token>"))?;
            return find(records, token)
                .map(|r| (r.caller.clone(), None))
                .ok_or_else(|| unauthorized("the bearer token is not valid for this backend"));
        }
        let mut refused = None;
        if cookies {
            for value in session::cookie_values(headers) {
                match sessions.verify(value).and_then(|claims| {
                    // A token no longer configured says so first, whether or not its
                    // removal also signed this session out.
                    let record = records
                        .iter()
                        .find(|r| r.fingerprint == claims.fingerprint)
                        .filter(|r| r.caller.name() == claims.name)
                        .ok_or(SessionError::Revoked)?;
                    let session = Session::of(value, &claims, sessions.key_id());
                    if self.signed_out.contains(&session) {
                        return Err(SessionError::SignedOut);
                    }
                    Ok((record.caller.clone(), Some(session)))
                }) {
                    Ok(found) => return Ok(found),
                    Err(error) => refused = refused.or(Some(error)),
                }
            }
        }
        Err(match refused {
            Some(error) => unauthorized(&error.to_string()),
            None => unauthorized(
                "credentials are required: send Authorization: Bearer <token>, or sign in with POST /api/session",
            ),
        })
    }

    /// Signs out, as of `now`, every session of the tokens in `old` that `kept` no
    /// longer has (under the same name): a reload that brings a token back then
    /// admits new sign-ins with it, not the cookies it had before (a cut-off, as a
    /// token that fills its list of sign-outs leaves; with a sign-out file it is
    /// written there within a second, for a restart and the other backends).
    fn cut_off_removed(&self, old: &[Record], kept: &[Record], now: u64) {
        for gone in old.iter().filter(|o| {
            !kept
                .iter()
                .any(|k| k.fingerprint == o.fingerprint && k.caller.name() == o.caller.name())
        }) {
            // Sessions are stamped in whole seconds: one issued in this very second
            // is cut off too (as is a sign-in in the same second after a return,
            // which errs on the safe side; it signs in again a second later).
            let entry = SignOut::CutOff {
                fingerprint: gone.fingerprint.clone(),
                before: now.saturating_add(1),
            };
            if let Some(held) = self.signed_out.apply(&entry, now)
                && held.new
                && self.journal.get().is_some()
            {
                // Written by the journal's follower at its next turn.
                let mut unrecorded = self.unrecorded();
                if unrecorded.len() < MAX_UNRECORDED {
                    unrecorded.push(held.entry);
                }
                self.unrecorded_gauge.set(unrecorded.len() as i64);
            }
        }
    }

    /// `DELETE /api/session`: signs out every session cookie of the request whose
    /// signature is this backend's key's and whose signed expiry is still ahead
    /// (even one that a shorter TTL or a removed token has ended already, so that
    /// it stays ended if either comes back), whoever's it is and wherever the
    /// request comes from: signing out a cookie harms no one but its holder, and
    /// browsers send the cookie only from the backend's own pages. From then on
    /// this process refuses a copy of it, and its event streams close
    /// ([`Authenticator::signed_out`]).
    /// With a journal, the sign-out is recorded in it before this returns; when it
    /// cannot be (logged), the session is signed out on this process at once and
    /// written at the next try ([`Authenticator::follow_journal`], every second).
    pub async fn sign_out(&self, headers: &HeaderMap) {
        let Mode::Tokens { sessions, .. } = &*self.mode() else {
            return;
        };
        let now = sessions.now();
        let mut fresh: Vec<SignOut> = Vec::new();
        for value in session::cookie_values(headers) {
            if let Some(claims) = sessions.signed_claims(value) {
                let session = Session::of(value, &claims, sessions.key_id());
                if let Some(held) = self.signed_out.insert(&session, now)
                    && held.new
                    && !fresh.contains(&held.entry)
                {
                    fresh.push(held.entry);
                }
            }
        }
        if fresh.is_empty() || self.journal.get().is_none() {
            return;
        }
        // Not written yet: it holds here, waits for the next try (the follower's,
        // within a second) and is logged; the browser still drops its cookie.
        let _ = self.record(fresh, now).await;
    }

    /// Writes `fresh` and every sign-out not recorded yet to the journal; keeps them
    /// for the next try when it cannot (logged). Only sign-outs new here are
    /// written, so a repeated sign-out costs no I/O.
    async fn record(&self, fresh: Vec<SignOut>, now: u64) -> Result<(), ()> {
        let Some(journal) = self.journal.get().cloned() else {
            return Ok(());
        };
        let retry = fresh.is_empty();
        let mut batch = std::mem::take(&mut *self.unrecorded());
        let waited = batch.len();
        for entry in fresh {
            if !batch.contains(&entry) {
                batch.push(entry);
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let pending = batch.clone();
        let written = tokio::task::spawn_blocking(move || journal.append(&batch, now)).await;
        let error = match written {
            Ok(Ok(others)) => {
                self.apply(&others, now);
                self.unrecorded_gauge.set(self.unrecorded().len() as i64);
                if waited > 0 {
                    tracing::info!(
                        sign_outs = waited,
                        "the sign-out file took the sign-outs that waited for it"
                    );
                }
                return Ok(());
            }
            Ok(Err(error)) => error.to_string(),
            Err(error) => error.to_string(),
        };
        // A retry of what already failed (every second) says nothing new: the
        // gauge shows it.
        if !retry {
            tracing::error!(
                error,
                sign_outs = pending.len(),
                "sign-outs could not be recorded; they hold on this backend and are retried every second"
            );
        }
        let batch = pending;
        let mut unrecorded = self.unrecorded();
        unrecorded.extend(batch);
        if unrecorded.len() > MAX_UNRECORDED {
            let dropped = unrecorded.len() - MAX_UNRECORDED;
            unrecorded.drain(..dropped);
            tracing::error!(
                dropped,
                "sign-outs waiting for the sign-out file were dropped; they hold on this backend until it restarts"
            );
        }
        self.unrecorded_gauge.set(unrecorded.len() as i64);
        Err(())
    }

    /// Registers `switchyard_sign_outs_unrecorded`: sign-outs made here that the
    /// sign-out file could not take yet (0 without one).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "switchyard_sign_outs_unrecorded",
            "Sign-outs this backend holds but could not write to auth.signed_out_file yet (retried every second); other backends and a restart would not know them",
            self.unrecorded_gauge.clone(),
        );
    }

    fn unrecorded(&self) -> std::sync::MutexGuard<'_, Vec<SignOut>> {
        self.unrecorded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps sign-outs in `journal` from now on, signing out first what it holds
    /// (`entries`, from [`SignOutJournal::open`]). Once per authenticator: a second
    /// journal is refused (`false`).
    pub fn keep_sign_outs_in(&self, journal: Arc<SignOutJournal>, entries: &[SignOut]) -> bool {
        let now = self.now();
        self.apply(entries, now);
        self.journal.set(journal).is_ok()
    }

    /// Signs out what other backends sharing the journal have signed out since the
    /// last look, every `interval`, until `auth` is dropped. Without a journal,
    /// returns at once.
    pub async fn follow_journal(auth: Weak<Authenticator>, interval: Duration) {
        let mut failing = false;
        loop {
            tokio::time::sleep(interval).await;
            let Some(journal) = auth.upgrade().and_then(|a| a.journal.get().cloned()) else {
                return;
            };
            let read = tokio::task::spawn_blocking(move || journal.read_new()).await;
            let Some(auth) = auth.upgrade() else { return };
            let read = read
                .map_err(|error| error.to_string())
                .and_then(|read| read.map_err(|error| error.to_string()));
            match read {
                Ok(entries) => {
                    if failing {
                        tracing::info!("the sign-out file can be read again");
                        failing = false;
                    }
                    auth.apply(&entries, auth.now());
                }
                Err(error) if !failing => {
                    tracing::warn!(error, "sign-outs by other backends cannot be read");
                    failing = true;
                }
                Err(_) => {}
            }
            // Sign-outs made here that could not be written yet (logged by it).
            let _ = auth.record(Vec::new(), auth.now()).await;
        }
    }

    /// For a backend that stops: one last try to write the sign-outs made here that
    /// the sign-out file could not take yet. What it still cannot take ends with the
    /// process (other backends, and this one once restarted, accept those sessions
    /// until they expire), logged at ERROR with how many.
    pub async fn record_before_exit(&self) {
        if self.unrecorded().is_empty() {
            return;
        }
        if self.record(Vec::new(), self.now()).await.is_err() {
            tracing::error!(
                sign_outs = self.unrecorded().len(),
                "sign-outs the sign-out file could not take are lost as this backend stops: other backends, and this one once restarted, accept those sessions until they expire"
            );
        }
    }

    /// The session clock's time (Unix seconds); the system's without auth.
    fn now(&self) -> u64 {
        match &*self.mode() {
            Mode::Tokens { sessions, .. } => sessions.now(),
            Mode::Open => Clock::system().now(),
        }
    }

    fn apply(&self, entries: &[SignOut], now: u64) {
        for entry in entries {
            self.signed_out.apply(entry, now);
        }
    }

    /// Resolves once `session` is signed out on this process.
    pub async fn signed_out(&self, session: &Session) {
        self.signed_out.wait_for(session).await;
    }

    /// Resolves once `session` has ended by time or key: at its expiry, sooner when
    /// a reload shortens the TTL, at once when a reload changes the session key
    /// (looked at again after every [`Authenticator::replace`], and at least every
    /// [`EXPIRY_RECHECK`], so that a step of the wall clock is noticed). Never while
    /// auth is off (a reload turning auth off revokes every identified caller
    /// anyway: [`Authenticator::revoked`]).
    pub async fn expired(&self, session: &Session) {
        let mut changes = self.changes.subscribe();
        loop {
            let left = match &*self.mode() {
                Mode::Tokens { sessions, .. } if sessions.key_id() != session.key_id => return,
                Mode::Tokens { sessions, .. } => Some(
                    sessions
                        .time_left(session.issued_at, session.expires_at)
                        .min(EXPIRY_RECHECK),
                ),
                Mode::Open => None,
            };
            let at_expiry = async {
                match left {
                    Some(left) => tokio::time::sleep(left).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = at_expiry => {
                    if left.is_some_and(|left| left < EXPIRY_RECHECK) {
                        return;
                    }
                }
                changed = changes.changed() => {
                    if changed.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }

    /// `POST /api/session`: checks `token` and, when auth is on, signs a session for it.
    pub fn login(&self, token: &str) -> Result<Login, ApiError> {
        match &*self.mode() {
            Mode::Open => Ok(Login {
                caller: Caller::open(),
                cookie: None,
            }),
            Mode::Tokens { records, sessions } => {
                let record = find(records, token.trim())
                    .ok_or_else(|| unauthorized("the token is not valid for this backend"))?;
                Ok(Login {
                    caller: record.caller.clone(),
                    cookie: Some(sessions.issue(record.caller.name(), &record.hash)),
                })
            }
        }
    }
}

/// The record whose hash is the presented token's, comparing against every record in
/// constant time so that timing does not tell which entry (if any) matched.
fn find<'r>(records: &'r [Record], presented: &str) -> Option<&'r Record> {
    let digest = TokenHash::of(presented);
    let mut found: u32 = 0; // index + 1 of the match; 0 for none
    for (i, record) in records.iter().enumerate() {
        let equal = record.hash.as_bytes().ct_eq(digest.as_bytes());
        found.conditional_assign(&(i as u32 + 1), equal);
    }
    (found as usize).checked_sub(1).map(|i| &records[i])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;
    use http::header::COOKIE;
    use switchyard_registry::RuntimeGlob;

    use super::*;

    fn entry(name: &str, token: &str, role: Role) -> TokenEntry {
        TokenEntry {
            name: name.into(),
            hash: TokenHash::of(token),
            role,
            runtimes: RuntimeGrants::Only(vec![RuntimeGlob::new("local").unwrap()]),
            workers: WorkerScope::Own,
        }
    }

    fn authenticator(tokens: &[TokenEntry], clock: &Clock) -> Authenticator {
        keyed_authenticator(tokens, clock, 9, 60)
    }

    /// Auth by `tokens`, sessions signed with a key of 32 `key` bytes lasting
    /// `ttl_s` seconds.
    fn keyed_authenticator(
        tokens: &[TokenEntry],
        clock: &Clock,
        key: u8,
        ttl_s: u64,
    ) -> Authenticator {
        Authenticator::with_tokens(
            tokens,
            SessionCodec::new(
                SessionKey::new(vec![key; 32]).unwrap(),
                Duration::from_secs(ttl_s),
                clock.clone(),
            ),
        )
    }

    /// The headers of a request carrying `login`'s session cookie.
    fn cookie(login: Login) -> HeaderMap {
        headers(&[(
            COOKIE,
            &format!("switchyard_session={}", login.cookie.unwrap()),
        )])
    }

    fn headers(pairs: &[(http::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens_identify_their_entry() {
        let clock = Clock::manual(1000);
        let tokens = [
            entry("alice", "tok-a", Role::Operator),
            entry("bob", "tok-b", Role::Viewer),
        ];
        let auth = authenticator(&tokens, &clock);
        // (Authorization header, expected identity or None for 401)
        let cases: &[(&str, Option<&str>)] = &[
            ("Bearer tok-a", Some("alice")),
            ("bearer tok-b", Some("bob")),
            ("Bearer  tok-b ", Some("bob")),
            ("Bearer tok-c", None),
            ("Bearer tok-a2", None),
            ("Bearer ", None),
            ("Basic tok-a", None),
            ("tok-a", None),
        ];
        for (value, expected) in cases {
            let got = auth.authenticate(&headers(&[(AUTHORIZATION, value)]), true);
            match expected {
                Some(name) => assert_eq!(got.unwrap().name(), *name, "{value}"),
                None => {
                    let err = got.unwrap_err();
                    assert_eq!(err.detail.code, ErrorCode::Unauthorized, "{value}");
                    assert!(!err.detail.message.contains("tok-"), "{value}");
                }
            }
        }
        let err = auth.authenticate(&HeaderMap::new(), true).unwrap_err();
        assert_eq!(err.detail.code, ErrorCode::Unauthorized);
        let alice = auth
            .authenticate(&headers(&[(AUTHORIZATION, "Bearer tok-a")]), true)
            .unwrap();
        assert_eq!(alice.role(), Role::Operator);
        assert_eq!(alice.owner_name(), Some("alice"));
    }

    /// A reload that removes a token ends its sessions for good: bringing the
    /// token back (a rolled-back file) admits new sign-ins, not the old cookies.
    #[test]
    fn sessions_of_a_removed_token_stay_ended_when_it_comes_back() {
        let clock = Clock::manual(1000);
        let tokens = [
            entry("alice", "tok-a", Role::Operator),
            entry("bob", "tok-b", Role::Viewer),
        ];
        let auth = authenticator(&tokens, &clock);
        let bob_before = cookie(auth.login("tok-b").unwrap());
        let alice = cookie(auth.login("tok-a").unwrap());
        clock.advance(Duration::from_secs(5));

        auth.replace(authenticator(&tokens[..1], &clock));
        assert!(auth.authenticate(&bob_before, true).is_err());
        clock.advance(Duration::from_secs(5));
        auth.replace(authenticator(&tokens, &clock));
        let err = auth.authenticate(&bob_before, true).unwrap_err();
        assert_eq!(err.detail.message, SessionError::SignedOut.to_string());
        // Signing in again works at once, in the same second as the return.
        let bob_after = cookie(auth.login("tok-b").unwrap());
        assert_eq!(auth.authenticate(&bob_after, true).unwrap().name(), "bob");
        assert_eq!(
            auth.authenticate(&alice, true).unwrap().name(),
            "alice",
            "untouched"
        );

        // Auth turned off and on again (same key): every earlier session stays ended.
        clock.advance(Duration::from_secs(1));
        auth.replace(Authenticator::open());
        clock.advance(Duration::from_secs(1));
        auth.replace(authenticator(&tokens, &clock));
        assert!(auth.authenticate(&alice, true).is_err());
        assert!(auth.authenticate(&bob_after, true).is_err());
    }

    /// Sessions are stamped in whole seconds: one issued in the very second its
    /// token is removed (or auth is turned off) is ended with the others.
    #[test]
    fn a_session_issued_in_the_second_of_its_tokens_removal_stays_ended() {
        let clock = Clock::manual(1000);
        let tokens = [
            entry("alice", "tok-a", Role::Operator),
            entry("bob", "tok-b", Role::Viewer),
        ];
        let auth = authenticator(&tokens, &clock);
        let bob = cookie(auth.login("tok-b").unwrap());
        auth.replace(authenticator(&tokens[..1], &clock));
        clock.advance(Duration::from_secs(1));
        auth.replace(authenticator(&tokens, &clock));
        let err = auth.authenticate(&bob, true).unwrap_err();
        assert_eq!(err.detail.message, SessionError::SignedOut.to_string());

        let alice = cookie(auth.login("tok-a").unwrap());
        auth.replace(Authenticator::open());
        clock.advance(Duration::from_secs(1));
        auth.replace(authenticator(&tokens, &clock));
        assert!(auth.authenticate(&alice, true).is_err());
        // A second later, signing in works again.
        let alice_after = cookie(auth.login("tok-a").unwrap());
        assert_eq!(
            auth.authenticate(&alice_after, true).unwrap().name(),
            "alice"
        );
    }

    #[test]
    fn sessions_identify_until_expiry_removal_or_a_foreign_origin() {
        let clock = Clock::manual(1000);
        let tokens = [
            entry("alice", "tok-a", Role::Operator),
            entry("bob", "tok-b", Role::Viewer),
        ];
        let auth = authenticator(&tokens, &clock);
        let login = auth.login("tok-b").unwrap();
        assert_eq!(login.caller.name(), "bob");
        let cookie = format!("switchyard_session={}", login.cookie.unwrap());
        let with_cookie = headers(&[(COOKIE, &cookie)]);
        assert_eq!(auth.authenticate(&with_cookie, true).unwrap().name(), "bob");
        // Not accepted where cookies are not (a request from another origin).
        assert!(auth.authenticate(&with_cookie, false).is_err());
        // A bearer token decides alone, even next to a valid cookie.
        let both = headers(&[(COOKIE, &cookie), (AUTHORIZATION, "Bearer wrong")]);
        assert!(auth.authenticate(&both, true).is_err());
        // Another scheme (a proxy's Basic) leaves the cookie to decide.
        let basic = headers(&[(COOKIE, &cookie), (AUTHORIZATION, "Basic dXNlcjpwdw==")]);
        assert_eq!(auth.authenticate(&basic, true).unwrap().name(), "bob");
        let basic_alone = headers(&[(AUTHORIZATION, "Basic dXNlcjpwdw==")]);
        assert!(auth.authenticate(&basic_alone, true).is_err());
        // A bearer decides even behind another scheme's header, and a malformed
        // one is refused rather than passed over.
        let basic_then_bearer = headers(&[
            (COOKIE, &cookie),
            (AUTHORIZATION, "Basic dXNlcjpwdw=="),
            (AUTHORIZATION, "Bearer wrong"),
        ]);
        assert!(auth.authenticate(&basic_then_bearer, true).is_err());
        let tab = headers(&[(COOKIE, &cookie), (AUTHORIZATION, "Bearer\twrong")]);
        assert!(auth.authenticate(&tab, true).is_err());
        let mut latin1 = with_cookie.clone();
        latin1.append(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Basic caf\xe9").unwrap(),
        );
        assert_eq!(auth.authenticate(&latin1, true).unwrap().name(), "bob");
        let mut latin1_bearer = with_cookie.clone();
        latin1_bearer.append(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer caf\xe9").unwrap(),
        );
        assert!(auth.authenticate(&latin1_bearer, true).is_err());

        // The same key without bob's token: the session has ended.
        let without_bob = authenticator(&tokens[..1], &clock);
        let err = without_bob.authenticate(&with_cookie, true).unwrap_err();
        assert_eq!(err.detail.message, SessionError::Revoked.to_string());
        // bob's token given to someone else's name: ended too.
        let renamed = authenticator(&[entry("robert", "tok-b", Role::Viewer)], &clock);
        assert!(renamed.authenticate(&with_cookie, true).is_err());
        // A role change applies to the open session at once.
        let promoted = authenticator(&[entry("bob", "tok-b", Role::Admin)], &clock);
        assert_eq!(
            promoted.authenticate(&with_cookie, true).unwrap().role(),
            Role::Admin
        );

        clock.advance(Duration::from_secs(60));
        let err = auth.authenticate(&with_cookie, true).unwrap_err();
        assert_eq!(err.detail.message, SessionError::Expired.to_string());

        assert!(auth.login("nope").is_err());
    }

    #[tokio::test]
    async fn a_signed_out_cookie_is_refused_here_across_reloads_and_others_are_not() {
        let clock = Clock::manual(1000);
        let tokens = [entry("alice", "tok-a", Role::Operator)];
        let auth = authenticator(&tokens, &clock);
        let cookie_of = |login: Login| format!("switchyard_session={}", login.cookie.unwrap());
        let first = headers(&[(COOKIE, &cookie_of(auth.login("tok-a").unwrap()))]);
        let second = headers(&[(COOKIE, &cookie_of(auth.login("tok-a").unwrap()))]);
        let (_, session) = auth.authenticate_session(&first, true).unwrap();
        assert!(session.is_some(), "a cookie names its session");
        let bearer = headers(&[(AUTHORIZATION, "Bearer tok-a")]);
        assert_eq!(auth.authenticate_session(&bearer, true).unwrap().1, None);

        // Forged and unknown cookies sign nothing out.
        auth.sign_out(&headers(&[(COOKIE, "switchyard_session=v1.forged.x")]))
            .await;
        auth.sign_out(&HeaderMap::new()).await;
        assert!(auth.signed_out.is_empty());

        auth.sign_out(&first).await;
        let err = auth.authenticate(&first, true).unwrap_err();
        assert_eq!(err.detail.message, SessionError::SignedOut.to_string());
        // The same identity's other session, and its token, go on.
        assert_eq!(auth.authenticate(&second, true).unwrap().name(), "alice");
        assert_eq!(auth.authenticate(&bearer, true).unwrap().name(), "alice");
        // A reload keeps what was signed out.
        auth.replace(authenticator(&tokens, &clock));
        assert_eq!(
            auth.authenticate(&first, true).unwrap_err().detail.message,
            SessionError::SignedOut.to_string()
        );
        assert!(auth.authenticate(&second, true).is_ok());
        // An expired cookie is not remembered (it is refused as expired anyway).
        clock.advance(Duration::from_secs(60));
        auth.sign_out(&second).await;
        assert_eq!(auth.signed_out.len(), 1);
    }

    /// A backend's authenticator keeping its sign-outs in `file`, as a start does.
    fn journaled(
        tokens: &[TokenEntry],
        clock: &Clock,
        file: &std::path::Path,
    ) -> Arc<Authenticator> {
        let auth = Arc::new(authenticator(tokens, clock));
        let (journal, entries) = SignOutJournal::open(file, 1000, clock.now()).unwrap();
        assert!(auth.keep_sign_outs_in(Arc::new(journal), &entries));
        auth
    }

    #[tokio::test]
    async fn a_journal_keeps_sign_outs_across_restarts_and_shares_them_with_other_backends() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("signed-out");
        let clock = Clock::manual(1000);
        let tokens = [entry("alice", "tok-a", Role::Operator)];
        let one = journaled(&tokens, &clock, &file);
        let other = journaled(&tokens, &clock, &file);
        tokio::spawn(Authenticator::follow_journal(
            Arc::downgrade(&other),
            Duration::from_millis(20),
        ));
        let cookie = headers(&[(
            COOKIE,
            &format!(
                "switchyard_session={}",
                one.login("tok-a").unwrap().cookie.unwrap()
            ),
        )]);
        let kept = headers(&[(
            COOKIE,
            &format!(
                "switchyard_session={}",
                one.login("tok-a").unwrap().cookie.unwrap()
            ),
        )]);
        let (_, session) = other.authenticate_session(&cookie, true).unwrap();
        one.sign_out(&cookie).await;
        assert!(one.authenticate(&cookie, true).is_err());
        // Signing out again (the same cookie twice, too) writes nothing.
        let len = std::fs::metadata(&file).unwrap().len();
        let twice = headers(&[
            (COOKIE, cookie.get(COOKIE).unwrap().to_str().unwrap()),
            (COOKIE, cookie.get(COOKIE).unwrap().to_str().unwrap()),
        ]);
        one.sign_out(&twice).await;
        assert_eq!(std::fs::metadata(&file).unwrap().len(), len);
        // The other backend reads it at its next look, and its streams end.
        tokio::time::timeout(Duration::from_secs(10), other.signed_out(&session.unwrap()))
            .await
            .expect("signed out on the other backend too");
        assert_eq!(
            other
                .authenticate(&cookie, true)
                .unwrap_err()
                .detail
                .message,
            SessionError::SignedOut.to_string()
        );
        assert!(other.authenticate(&kept, true).is_ok());
        // A restart reads it back.
        drop(one);
        let restarted = journaled(&tokens, &clock, &file);
        assert!(restarted.authenticate(&cookie, true).is_err());
        assert!(restarted.authenticate(&kept, true).is_ok());
        assert!(
            !restarted.keep_sign_outs_in(
                Arc::new(SignOutJournal::open(&file, 1000, 1000).unwrap().0),
                &[]
            ),
            "one journal per authenticator"
        );

        // The file goes bad: the sign-out holds here, and waits (counted) for it.
        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        restarted.sign_out(&kept).await;
        assert!(
            restarted.authenticate(&kept, true).is_err(),
            "held here at once"
        );
        assert_eq!(restarted.unrecorded().len(), 1, "waiting for the file");
        assert_eq!(restarted.unrecorded_gauge.get(), 1);
        // Once the file can be written again, the follower records what waited.
        std::fs::remove_dir(&file).unwrap();
        tokio::spawn(Authenticator::follow_journal(
            Arc::downgrade(&restarted),
            Duration::from_millis(20),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let recorded = SignOutJournal::open(&file, 1000, 1000).map(|(_, e)| e.len());
            if recorded.as_ref().is_ok_and(|n| *n == 1) && restarted.unrecorded_gauge.get() == 0 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{recorded:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let fresh = journaled(&tokens, &clock, &file);
        assert!(
            fresh.authenticate(&kept, true).is_err(),
            "after a restart too"
        );
    }

    #[tokio::test]
    async fn a_sign_out_holds_until_the_cookie_expires_whatever_the_ttl_does_meanwhile() {
        let clock = Clock::manual(1000);
        let tokens = [entry("alice", "tok-a", Role::Operator)];
        let with_ttl = |ttl: u64| keyed_authenticator(&tokens, &clock, 9, ttl);
        let auth = with_ttl(60);
        let cookie = format!(
            "switchyard_session={}",
            auth.login("tok-a").unwrap().cookie.unwrap()
        );
        let with_cookie = headers(&[(COOKIE, &cookie)]);
        // A reload shortens the TTL: the session has ended by it; signed out anyway.
        auth.replace(with_ttl(10));
        clock.advance(Duration::from_secs(20));
        assert!(auth.authenticate(&with_cookie, true).is_err());
        auth.sign_out(&with_cookie).await;
        // The TTL back as it was: the cookie's own expiry is ahead, but it stays out.
        auth.replace(with_ttl(60));
        assert_eq!(
            auth.authenticate(&with_cookie, true)
                .unwrap_err()
                .detail
                .message,
            SessionError::SignedOut.to_string()
        );
    }

    #[tokio::test]
    async fn a_session_ends_sooner_when_a_reload_shortens_it_or_changes_the_key() {
        // The manual clock stands still: what is left runs in real time.
        let clock = Clock::manual(1000);
        let tokens = [entry("alice", "tok-a", Role::Operator)];
        let with_ttl = |ttl: u64| keyed_authenticator(&tokens, &clock, 9, ttl);
        let auth = Arc::new(with_ttl(3600));
        let cookie = format!(
            "switchyard_session={}",
            auth.login("tok-a").unwrap().cookie.unwrap()
        );
        let (_, session) = auth
            .authenticate_session(&headers(&[(COOKIE, &cookie)]), true)
            .unwrap();
        let session = session.unwrap();
        let expired = tokio::spawn({
            let (auth, session) = (auth.clone(), session.clone());
            async move { auth.expired(&session).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!expired.is_finished(), "an hour left");
        let start = std::time::Instant::now();
        auth.replace(with_ttl(1));
        tokio::time::timeout(Duration::from_secs(10), expired)
            .await
            .expect("expires at the shortened end")
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(900));
        // Another session key: at once (its cookie no longer verifies).
        let other_key = keyed_authenticator(&tokens, &clock, 8, 3600);
        auth.replace(with_ttl(3600));
        let same_key =
            tokio::time::timeout(Duration::from_millis(300), auth.expired(&session)).await;
        assert!(same_key.is_err(), "the same key: not yet");
        auth.replace(other_key);
        tokio::time::timeout(Duration::from_secs(10), auth.expired(&session))
            .await
            .expect("a new key ends it");
        // Auth turned off: never (the caller's revocation closes its streams).
        auth.replace(Authenticator::open());
        let never = tokio::time::timeout(Duration::from_millis(1500), auth.expired(&session)).await;
        assert!(never.is_err());
    }

    #[test]
    fn a_replaced_authenticator_serves_the_new_tokens_from_the_next_request() {
        let clock = Clock::manual(1000);
        let auth = authenticator(&[entry("alice", "tok-a", Role::Operator)], &clock);
        let bearer = |token: &str| headers(&[(AUTHORIZATION, &format!("Bearer {token}"))]);
        let cookie = format!(
            "switchyard_session={}",
            auth.login("tok-a").unwrap().cookie.unwrap()
        );
        let with_cookie = headers(&[(COOKIE, &cookie)]);
        assert!(auth.authenticate(&with_cookie, true).is_ok());

        auth.replace(authenticator(
            &[
                entry("alice", "tok-a", Role::Viewer),
                entry("carol", "tok-c", Role::Admin),
            ],
            &clock,
        ));
        assert_eq!(
            auth.authenticate(&bearer("tok-c"), true).unwrap().name(),
            "carol"
        );
        assert_eq!(
            auth.authenticate(&with_cookie, true).unwrap().role(),
            Role::Viewer,
            "the open session takes the new role"
        );

        auth.replace(authenticator(
            &[entry("carol", "tok-c", Role::Admin)],
            &clock,
        ));
        assert!(auth.authenticate(&bearer("tok-a"), true).is_err());
        assert_eq!(
            auth.authenticate(&with_cookie, true)
                .unwrap_err()
                .detail
                .message,
            SessionError::Revoked.to_string(),
            "a removed token's session ends"
        );

        auth.replace(Authenticator::open());
        assert!(!auth.is_on());
        assert!(auth.admits(&Caller::open()));
        assert_eq!(
            auth.authenticate(&HeaderMap::new(), true).unwrap().role(),
            Role::Admin
        );
    }

    #[tokio::test]
    async fn what_a_request_established_stays_admitted_until_its_token_changes() {
        let clock = Clock::manual(1000);
        let bearer = |token: &str| headers(&[(AUTHORIZATION, &format!("Bearer {token}"))]);
        let alice = entry("alice", "tok-a", Role::Operator);
        let bob = entry("bob", "tok-b", Role::Viewer);
        let auth = Arc::new(authenticator(&[alice.clone(), bob.clone()], &clock));
        let as_alice = auth.authenticate(&bearer("tok-a"), true).unwrap();
        let as_bob = auth.authenticate(&bearer("tok-b"), true).unwrap();
        let bob_revoked = tokio::spawn({
            let (auth, bob) = (auth.clone(), as_bob.clone());
            async move { auth.revoked(&bob).await }
        });
        assert!(auth.admits(&as_alice) && auth.admits(&as_bob));
        assert!(!auth.admits(&Caller::open()));

        // The same entries again: nothing changes for either.
        auth.replace(authenticator(&[alice.clone(), bob.clone()], &clock));
        assert!(auth.admits(&as_alice) && auth.admits(&as_bob));
        tokio::task::yield_now().await;
        assert!(!bob_revoked.is_finished());

        // Alice's token rotated (same name and role), bob demoted: neither is
        // admitted any more; a new request gets the new identity.
        let rotated = entry("alice", "tok-a2", Role::Operator);
        let demoted = TokenEntry {
            role: Role::Viewer,
            workers: WorkerScope::All,
            ..bob.clone()
        };
        auth.replace(authenticator(&[rotated, demoted], &clock));
        assert!(!auth.admits(&as_alice));
        assert!(!auth.admits(&as_bob));
        tokio::time::timeout(Duration::from_secs(10), bob_revoked)
            .await
            .expect("revoked resolves")
            .unwrap();
        let again = auth.authenticate(&bearer("tok-a2"), true).unwrap();
        assert!(auth.admits(&again));

        // Open mode admits the open caller only.
        auth.replace(Authenticator::open());
        assert!(!auth.admits(&again));
        assert!(auth.admits(&auth.authenticate(&HeaderMap::new(), true).unwrap()));
    }

    #[test]
    fn open_mode_lets_everyone_in_as_admin() {
        let auth = Authenticator::open();
        assert!(!auth.is_on());
        let caller = auth.authenticate(&HeaderMap::new(), true).unwrap();
        assert_eq!(caller.role(), Role::Admin);
        let login = auth.login("anything").unwrap();
        assert!(login.cookie.is_none());
    }

    #[test]
    fn find_matches_any_position() {
        let records: Vec<Record> = ["a", "b", "c"]
            .iter()
            .map(|t| Record {
                hash: TokenHash::of(t),
                fingerprint: String::new(),
                caller: Caller::open(),
            })
            .collect();
        for (i, t) in ["a", "b", "c"].iter().enumerate() {
            assert!(std::ptr::eq(find(&records, t).unwrap(), &records[i]));
        }
        assert!(find(&records, "d").is_none());
        assert!(find(&[], "a").is_none());
    }
}
