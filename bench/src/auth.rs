//! The authentication check alone, in process: how long `Authenticator::authenticate`
//! takes for a bearer token against 1, 10 and 100 configured tokens (a match and a
//! miss: every hash is compared either way), and for a session cookie. The REST
//! scenario measures the same cost end to end; this isolates it from the machine's
//! noise.

use std::time::{Duration, Instant};

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE, HeaderValue};
use switchyard_registry::{Role, RuntimeGrants, WorkerScope};
use switchyard_server::auth::{
    Authenticator, Clock, SessionCodec, SessionKey, TokenEntry, TokenHash,
};

use crate::Result;
use crate::plan::Plan;

/// One measured case.
#[derive(Debug, Clone)]
pub struct AuthCheck {
    /// What was checked, as shown in the report.
    pub what: String,
    /// Configured tokens.
    pub tokens: usize,
    /// Time per check.
    pub per_check: Duration,
}

fn entries(count: usize) -> Vec<TokenEntry> {
    (0..count)
        .map(|i| TokenEntry {
            name: format!("user-{i}"),
            hash: TokenHash::of(&format!("sy_bench-token-{i:04}-padding-to-a-real-length")),
            role: Role::Operator,
            runtimes: RuntimeGrants::All,
            workers: WorkerScope::All,
        })
        .collect()
}

fn time(iterations: u32, mut check: impl FnMut() -> bool) -> Result<Duration> {
    // Warm up, then measure.
    for _ in 0..iterations / 10 {
        std::hint::black_box(check());
    }
    let started = Instant::now();
    let mut accepted = 0u32;
    for _ in 0..iterations {
        accepted += u32::from(std::hint::black_box(check()));
    }
    let elapsed = started.elapsed();
    if accepted != 0 && accepted != iterations {
        return Err("an authentication check changed its answer between runs".into());
    }
    Ok(elapsed / iterations)
}

/// Runs the checks.
pub fn run(plan: &Plan) -> Result<Vec<AuthCheck>> {
    let iterations = if plan.quick { 20_000 } else { 200_000 };
    let codec = SessionCodec::new(
        SessionKey::new(vec![7; 32]).ok_or("a 32-byte key")?,
        Duration::from_secs(3600),
        Clock::system(),
    );
    let mut out = Vec::new();
    for count in [1, 10, 100] {
        let auth = Authenticator::with_tokens(&entries(count), codec.clone());
        let last = format!("sy_bench-token-{:04}-padding-to-a-real-length", count - 1);
        for (what, token, expect) in [
            ("bearer token, accepted", last.as_str(), true),
            (
                "bearer token, refused",
                "sy_not-configured-token-padding-to-a-real-length",
                false,
            ),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(
                AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {token}"))?,
            );
            let per_check = time(iterations, || auth.authenticate(&headers, true).is_ok())?;
            if auth.authenticate(&headers, true).is_ok() != expect {
                return Err(format!("{what}: unexpected answer").into());
            }
            out.push(AuthCheck {
                what: what.to_owned(),
                tokens: count,
                per_check,
            });
        }
        let login = auth.login(&last).map_err(|e| e.detail.message)?;
        let cookie = login.cookie.ok_or("a session cookie")?;
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("theme=dark; switchyard_session={cookie}"))?,
        );
        let per_check = time(iterations, || auth.authenticate(&headers, true).is_ok())?;
        if auth.authenticate(&headers, true).is_err() {
            return Err("the session cookie was refused".into());
        }
        out.push(AuthCheck {
            what: "session cookie, accepted".to_owned(),
            tokens: count,
            per_check,
        });
    }
    for check in &out {
        eprintln!(
            "bench: auth check {:<26} {:>3} tokens  {:>7.2} µs",
            check.what,
            check.tokens,
            check.per_check.as_secs_f64() * 1e6
        );
    }
    Ok(out)
}
