//! The working-hours policy in a real backend: the example's binary as a process,
//! and a backend in this process whose clock the test moves.

use std::path::Path;
use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};
use nix::sys::signal::Signal;
use serde_json::json;
use switchyard_e2e::client::Api;
use switchyard_e2e::proc::Switchyard;
use switchyard_example_working_hours::{Clock, Schedule, WorkingHours};
use switchyard_registry::{Role, RuntimeGrants, WorkerScope};
use switchyard_server::auth::{Clock as SessionClock, SessionKey, TokenEntry, TokenHash};
use switchyard_server::config::{AuthSettings, BackendSettings, TokenAuthSettings};
use switchyard_server::{Backend, RunningBackend};
use time::OffsetDateTime;

/// An RFC 3339 time.
fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
}

/// A day of the week on which nobody works today or tomorrow.
fn closed_day() -> &'static str {
    let in_two_days = OffsetDateTime::now_utc() + time::Duration::days(2);
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [in_two_days.weekday().number_days_from_monday() as usize]
}

#[tokio::test]
async fn the_binary_refuses_commands_outside_its_schedule() {
    let schedule = format!("{} 00:00-23:59 +00:00", closed_day());
    let backend = Switchyard::start_program(
        Path::new(env!("CARGO_BIN_EXE_switchyard-working-hours")),
        &["--listen", "127.0.0.1:0", "--schedule", &schedule],
        &[],
    )
    .await;
    let api = Api {
        addr: backend.addr,
        token: None,
    };
    // Reading is always allowed.
    let runtimes = api.get("/api/runtimes").await;
    assert_eq!(runtimes.status, StatusCode::OK);
    assert_eq!(runtimes.json["runtimes"][0]["runtime_id"], "local");
    // Commands are not.
    let refused = api
        .post("/api/runtimes/local/workers", json!({"profile": "echo"}))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    assert_eq!(refused.code(), "forbidden");
    let message = refused.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("not create workers"), "{message}");
    assert!(message.contains("try again in working hours"), "{message}");

    backend.signal(Signal::SIGTERM);
    assert!(backend.wait().await.success());
}

#[tokio::test]
async fn a_bad_schedule_is_a_usage_error() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard-working-hours"))
        .args(["--schedule", "weekdays 9-5"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DAYS OPEN-CLOSE OFFSET"), "{stderr}");
}

/// A clock the test moves.
fn clock_at(start: OffsetDateTime) -> (Clock, Arc<Mutex<OffsetDateTime>>) {
    let now = Arc::new(Mutex::new(start));
    let read = now.clone();
    (Arc::new(move || *read.lock().unwrap()), now)
}

struct Tokens;

impl Tokens {
    const ALICE: &str = "alice-operator-token";
    const VICTOR: &str = "victor-viewer-token";

    fn auth() -> AuthSettings {
        let entry = |name: &str, token: &str, role| TokenEntry {
            name: name.into(),
            hash: TokenHash::of(token),
            role,
            runtimes: RuntimeGrants::All,
            workers: WorkerScope::Own,
        };
        AuthSettings::Tokens(TokenAuthSettings {
            tokens: vec![
                entry("alice", Self::ALICE, Role::Operator),
                entry("victor", Self::VICTOR, Role::Viewer),
            ],
            session_key: Some(SessionKey::new(vec![7; 32]).unwrap()),
            session_ttl: std::time::Duration::from_secs(3600),
            signed_out_file: None,
            clock: SessionClock::system(),
        })
    }
}

async fn backend_with_clock(clock: Clock) -> RunningBackend {
    let schedule: Schedule = "mon-fri 09:00-17:00 +01:00".parse().unwrap();
    let mut settings = BackendSettings::defaults();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.auth = Tokens::auth();
    Backend::from_settings(settings)
        .wrap_policy(move |inner| {
            Arc::new(WorkingHours::new(inner, schedule.clone(), clock.clone()))
        })
        .start()
        .await
        .unwrap()
}

#[tokio::test]
async fn commands_follow_the_clock_and_the_wrapped_policy_still_decides() {
    // Monday 2026-01-05, 09:30 in +01:00.
    let (clock, now) = clock_at(at("2026-01-05T08:30:00Z"));
    let backend = backend_with_clock(clock).await;
    let api = |token: &str| Api {
        addr: backend.local_addr(),
        token: Some(token.into()),
    };
    let (alice, victor) = (api(Tokens::ALICE), api(Tokens::VICTOR));

    // In hours: the operator creates; the viewer is still refused by the roles.
    let created = alice
        .post("/api/runtimes/local/workers", json!({"profile": "echo"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let path = format!(
        "/api/runtimes/local/workers/{}",
        created.json["worker_id"].as_str().unwrap()
    );
    let viewer = victor
        .post("/api/runtimes/local/workers", json!({"profile": "echo"}))
        .await;
    assert_eq!(viewer.status, StatusCode::FORBIDDEN);
    assert!(
        viewer.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("viewer"),
        "the role's refusal: {}",
        viewer.json
    );
    // Ownership stays in force: the viewer does not see alice's worker.
    assert_eq!(victor.get(&path).await.code(), "worker_not_found");

    // Saturday: alice may read her worker, but not send it input.
    *now.lock().unwrap() = at("2026-01-10T09:12:00Z");
    assert_eq!(alice.get(&path).await.status, StatusCode::OK);
    let refused = alice
        .post(&format!("{path}/input"), json!({"text": "hi\n"}))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.json["error"]["message"],
        "this backend takes commands Mon-Fri 09:00-17:00 UTC+01:00 only, and it is Sat 10:12 there: you may read and watch, but not send input; try again in working hours"
    );
    let refused = alice
        .call(Method::POST, &format!("{path}/stop"), None)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Monday again: back to work.
    *now.lock().unwrap() = at("2026-01-12T10:00:00Z");
    let sent = alice
        .post(&format!("{path}/input"), json!({"text": "hi\n"}))
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text());
    backend.shutdown().await;
}
