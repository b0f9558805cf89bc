//! `Runtime::reconfigure`: profiles and limits replaced while the runtime runs apply
//! to what starts from then on; running workers keep what they started with.

mod common;

use std::time::Duration;

use common::*;
use switchyard_protocol::{
    CreateWorkerRequest, ErrorCode, OutputStream, ResetReason, RuntimeId, WorkerEvent, WorkerStatus,
};
use switchyard_runtime::{
    Profile, ProfileSpec, Runtime, RuntimeConfig, RuntimeError, SubscriptionItem,
};

fn create(profile: &str) -> CreateWorkerRequest {
    CreateWorkerRequest {
        profile: profile.into(),
        label: None,
        owner: None,
    }
}

/// An echo profile with a description that tells it apart.
fn echo_described(description: &str) -> Profile {
    Profile::new(ProfileSpec::Echo {
        delay: Duration::ZERO,
    })
    .with_description(description)
}

fn profile_names(rt: &Runtime) -> Vec<String> {
    rt.info().profiles.into_iter().map(|p| p.name).collect()
}

/// Sends `text` and waits for it to come back as output.
async fn echoes(rt: &Runtime, worker: &switchyard_protocol::WorkerId, text: &str) {
    let mut sub = rt.subscribe(worker, None).unwrap();
    let accepted = rt.input(worker, text.into()).await.unwrap();
    let event = wait_for(&mut sub, |e| matches!(e, WorkerEvent::Output { .. })).await;
    assert_eq!(
        event,
        WorkerEvent::Output {
            sequence: accepted.sequence + 1,
            stream: OutputStream::Stdout,
            text: text.into()
        }
    );
}

#[tokio::test]
async fn a_profile_added_after_open_can_be_created() {
    let rt = Runtime::in_memory(config()).await;
    assert_eq!(
        rt.create(create("late")).await.unwrap_err().code(),
        ErrorCode::UnknownProfile
    );
    rt.reconfigure(config().with_profile("late", echo_described("added later")))
        .unwrap();
    assert_eq!(profile_names(&rt), ["echo", "late"]);
    let w = rt.create(create("late")).await.unwrap();
    assert_eq!(w.profile, "late");
    assert_eq!(w.status, WorkerStatus::Running);
    echoes(&rt, &w.worker_id, "hi\n").await;
}

#[tokio::test]
async fn a_removed_profile_refuses_creates_while_its_running_worker_keeps_running() {
    let rt = Runtime::in_memory(config().with_profile("gone", echo_described("soon gone"))).await;
    let w = rt.create(create("gone")).await.unwrap();
    let mut viewer = rt.subscribe(&w.worker_id, None).unwrap();

    let replaced = rt.reconfigure(config()).unwrap();
    assert!(
        replaced.profiles.contains_key("gone"),
        "returns the old one"
    );
    assert_eq!(profile_names(&rt), ["echo"]);
    let refused = rt.create(create("gone")).await.unwrap_err();
    assert!(
        matches!(refused, RuntimeError::UnknownProfile(_)),
        "{refused}"
    );
    assert_eq!(refused.code().status(), 400);
    assert_eq!(refused.code(), ErrorCode::UnknownProfile);

    // The worker runs on, with the profile it started from, and its viewer too.
    let detail = rt.get(&w.worker_id).unwrap();
    assert_eq!(detail.status, WorkerStatus::Running);
    assert_eq!(detail.profile, "gone");
    rt.input(&w.worker_id, "still here\n".into()).await.unwrap();
    let event = wait_for(&mut viewer, |e| matches!(e, WorkerEvent::Output { .. })).await;
    assert!(
        matches!(&event, WorkerEvent::Output { text, .. } if text == "still here\n"),
        "{event:?}"
    );
    rt.stop(&w.worker_id).await.unwrap();
}

#[tokio::test]
async fn the_built_in_echo_stays_and_a_changed_profile_applies_to_new_workers() {
    let rt = Runtime::in_memory(config().with_profile("p", echo_described("first"))).await;
    let mut next = config().with_profile("p", echo_described("second"));
    next.profiles.remove("echo");
    rt.reconfigure(next).unwrap();
    let info = rt.info();
    let described: Vec<(String, Option<String>)> = info
        .profiles
        .into_iter()
        .map(|p| (p.name, p.description))
        .collect();
    assert_eq!(described[0].0, "echo", "echo is added back");
    assert_eq!(described[1], ("p".into(), Some("second".into())));
    rt.create(create("echo")).await.unwrap();
}

#[tokio::test]
async fn lowering_max_workers_refuses_creates_until_fewer_run_and_stops_none() {
    let rt = Runtime::in_memory(config()).await;
    let a = rt.create(create("echo")).await.unwrap();
    let b = rt.create(create("echo")).await.unwrap();

    let mut lower = config();
    lower.limits.max_workers = 2;
    rt.reconfigure(lower).unwrap();
    assert_eq!(rt.info().limits.max_workers, 2);
    let refused = rt.create(create("echo")).await.unwrap_err();
    assert!(
        matches!(refused, RuntimeError::WorkerLimitReached { max: 2 }),
        "{refused}"
    );
    assert_eq!(refused.code().status(), 429);
    for w in [&a, &b] {
        assert_eq!(rt.get(&w.worker_id).unwrap().status, WorkerStatus::Running);
    }

    let mut one = config();
    one.limits.max_workers = 1;
    rt.reconfigure(one).unwrap();
    assert!(rt.create(create("echo")).await.is_err());
    rt.stop(&a.worker_id).await.unwrap();
    assert!(
        rt.create(create("echo")).await.is_err(),
        "one still runs: the limit is 1"
    );
    rt.stop(&b.worker_id).await.unwrap();
    rt.create(create("echo")).await.unwrap();
    assert_eq!(
        rt.create(create("echo")).await.unwrap_err().code(),
        ErrorCode::WorkerLimitReached
    );

    // Raised: creates go through again.
    rt.reconfigure(config()).unwrap();
    rt.create(create("echo")).await.unwrap();
}

#[tokio::test]
async fn per_call_limits_apply_to_the_next_call_on_running_workers() {
    let rt = Runtime::in_memory(config()).await;
    let w = rt.create(create("echo")).await.unwrap();
    let mut small = config();
    small.limits.max_input_bytes = 4;
    small.limits.transcript_page_max = 2;
    rt.reconfigure(small).unwrap();
    assert_eq!(
        rt.input(&w.worker_id, "12345".into())
            .await
            .unwrap_err()
            .code(),
        ErrorCode::PayloadTooLarge
    );
    rt.input(&w.worker_id, "1234".into()).await.unwrap();
    assert_eq!(
        rt.transcript(&w.worker_id, 0, Some(3))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::LimitTooLarge
    );
    assert_eq!(rt.info().limits.max_input_bytes, 4);
}

#[tokio::test]
async fn the_runtime_id_cannot_change_and_a_refusal_changes_nothing() {
    let rt = Runtime::in_memory(config()).await;
    let other = RuntimeConfig::new(RuntimeId::new("another").unwrap(), "Another")
        .with_profile("late", echo_described("never"));
    let refused = rt.reconfigure(other).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InvalidRequest);
    let info = rt.info();
    assert_eq!(info.runtime_id.as_str(), "test");
    assert_eq!(info.display_name, "Test runtime");
    assert_eq!(profile_names(&rt), ["echo"]);

    let mut renamed = config();
    renamed.display_name = "Renamed".into();
    rt.reconfigure(renamed).unwrap();
    assert_eq!(rt.info().display_name, "Renamed");
    assert_eq!(rt.runtime_id().as_str(), "test");
}

/// Resumes `worker` from its first event after ten inputs: whether the backlog
/// still held it.
async fn resumes_after_ten_inputs(rt: &Runtime, worker: &switchyard_protocol::WorkerId) -> bool {
    let mut sub = rt.subscribe(worker, None).unwrap();
    let (first, _) = next_event(&mut sub).await;
    let cursor = sub.cursor_at(first);
    for i in 0..10 {
        rt.input(worker, format!("{i}")).await.unwrap();
    }
    wait_for(
        &mut sub,
        |e| matches!(e, WorkerEvent::Output { text, .. } if text == "9"),
    )
    .await;
    let mut resumed = rt.subscribe(worker, Some(&cursor)).unwrap();
    match next(&mut resumed).await {
        Ok(SubscriptionItem::Event { .. }) => true,
        Ok(SubscriptionItem::Reset(ResetReason::CursorExpired)) => false,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_workers_buffers_keep_the_sizes_it_was_created_with() {
    let rt = Runtime::in_memory(config()).await;
    let before = rt.create(create("echo")).await.unwrap();
    let mut small = config();
    small.limits.event_backlog = 4;
    rt.reconfigure(small).unwrap();
    let after = rt.create(create("echo")).await.unwrap();
    assert!(
        resumes_after_ten_inputs(&rt, &before.worker_id).await,
        "the running worker keeps its backlog of 4096"
    );
    assert!(
        !resumes_after_ten_inputs(&rt, &after.worker_id).await,
        "a worker created after the change has a backlog of 4"
    );
}
