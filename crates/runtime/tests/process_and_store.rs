//! The runtime with real `process` workers and the file store: exit codes, spawn
//! failures, and surviving a reopen of the data directory.

mod common;

use std::sync::Arc;

use common::*;
use switchyard_protocol::{
    CreateWorkerRequest, ErrorCode, ExitInfo, ResetReason, SystemNote, TranscriptEntry,
    WorkerEvent, WorkerStatus,
};
use switchyard_runtime::{FsStore, Runtime, RuntimeConfig, SubscriptionItem};

fn request(profile: &str) -> CreateWorkerRequest {
    CreateWorkerRequest {
        profile: profile.into(),
        label: None,
        owner: None,
    }
}

fn with_processes() -> RuntimeConfig {
    config()
        .with_profile("cat", process(&["/bin/cat"]))
        .with_profile("exit3", process(&["/bin/sh", "-c", "exit 3"]))
        .with_profile("missing", process(&["/no/such/program"]))
}

#[tokio::test]
async fn cat_round_trip_through_the_runtime() {
    let rt = Runtime::in_memory(with_processes()).await;
    let w = rt.create(request("cat")).await.unwrap();
    assert_eq!(w.status, WorkerStatus::Running);
    let mut sub = rt.subscribe(&w.worker_id, None).unwrap();
    rt.input(&w.worker_id, "ping\n".into()).await.unwrap();
    let out = wait_for(&mut sub, |e| matches!(e, WorkerEvent::Output { .. })).await;
    assert!(matches!(out, WorkerEvent::Output { text, .. } if text == "ping\n"));
    assert_eq!(
        rt.stop(&w.worker_id).await.unwrap().status,
        WorkerStatus::Stopped
    );
}

#[tokio::test]
async fn exit_code_is_recorded_as_exited_with_code() {
    let rt = Runtime::in_memory(with_processes()).await;
    let w = rt.create(request("exit3")).await.unwrap();
    let mut sub = rt.subscribe(&w.worker_id, None).unwrap();
    if w.status != WorkerStatus::Exited {
        wait_for(&mut sub, |e| {
            matches!(
                e,
                WorkerEvent::Status {
                    status: WorkerStatus::Exited,
                    ..
                }
            )
        })
        .await;
    }
    let detail = rt.get(&w.worker_id).unwrap();
    assert_eq!(detail.status, WorkerStatus::Exited);
    assert_eq!(
        detail.exit,
        Some(ExitInfo {
            code: Some(3),
            signal: None
        })
    );
    let page = rt.transcript(&w.worker_id, 0, None).await.unwrap();
    assert!(page.items.iter().any(|i| matches!(&i.entry,
        TranscriptEntry::System { note: SystemNote::Exited, text } if text.contains('3'))));
    // Stopping an ended worker answers its current status.
    assert_eq!(
        rt.stop(&w.worker_id).await.unwrap().status,
        WorkerStatus::Exited
    );
}

#[tokio::test]
async fn a_missing_executable_is_failed_with_a_diagnostic() {
    let rt = Runtime::in_memory(with_processes()).await;
    let w = rt.create(request("missing")).await.unwrap();
    assert_eq!(w.status, WorkerStatus::Failed);
    let page = rt.transcript(&w.worker_id, 0, None).await.unwrap();
    assert!(page.items.iter().any(|i| matches!(&i.entry,
        TranscriptEntry::System { note: SystemNote::Failed, text }
            if text.contains("could not start") && !text.contains("/no/such/program"))));
    assert_eq!(
        rt.input(&w.worker_id, "x".into()).await.unwrap_err().code(),
        ErrorCode::WorkerNotRunning
    );
    // A failed worker does not count against max_workers.
    assert_eq!(rt.info().workers.failed, 1);
}

#[tokio::test]
async fn only_starting_and_running_workers_count_against_max_workers() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = with_processes();
    cfg.limits.max_workers = 1;
    let open = |path: &std::path::Path| {
        let (path, cfg) = (path.to_owned(), cfg.clone());
        async move {
            let store = Arc::new(FsStore::open(path).await.unwrap());
            Runtime::open(cfg, store).await.unwrap()
        }
    };
    let full = |rt: &Runtime| {
        let rt = rt.clone();
        async move {
            rt.create(request("echo")).await.unwrap_err().code() == ErrorCode::WorkerLimitReached
        }
    };
    let first = open(dir.path()).await;
    // A worker that failed to start has ended: it leaves the one slot free.
    let failed = first.create(request("missing")).await.unwrap();
    assert_eq!(failed.status, WorkerStatus::Failed);
    let running = first.create(request("echo")).await.unwrap();
    assert!(full(&first).await, "one running worker fills the slot");
    // A stopped worker leaves it; deleting it changes nothing more.
    first.stop(&running.worker_id).await.unwrap();
    first.delete(&running.worker_id).await.unwrap();
    let again = first.create(request("echo")).await.unwrap();
    assert!(full(&first).await);
    // The process "crashes"; a new runtime finds `again` running in the store and
    // marks it lost, which has ended too.
    let crashed = crashed_copy(dir.path());
    let second = open(crashed.path()).await;
    assert_eq!(
        second.get(&again.worker_id).unwrap().status,
        WorkerStatus::Lost
    );
    second.create(request("echo")).await.unwrap();
    assert!(full(&second).await);
}

#[tokio::test]
async fn the_file_store_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let first = on_disk(dir.path()).await;
    let running = first.create(request("echo")).await.unwrap();
    let stopped = first.create(request("echo")).await.unwrap();
    let mut sub = first.subscribe(&running.worker_id, None).unwrap();
    for text in ["one", "two"] {
        first.input(&running.worker_id, text.into()).await.unwrap();
        wait_for(
            &mut sub,
            |e| matches!(e, WorkerEvent::Output { text: t, .. } if t == text),
        )
        .await;
    }
    let mut fresh = first.subscribe(&running.worker_id, None).unwrap();
    let (position, _) = next_event(&mut fresh).await;
    let old_cursor = fresh.cursor_at(position);
    first.stop(&stopped.worker_id).await.unwrap();
    let before = first.transcript(&running.worker_id, 0, None).await.unwrap();
    // The process "crashes": nothing is shut down, a new runtime opens the directory.
    let crashed = crashed_copy(dir.path());
    let second = on_disk(crashed.path()).await;
    assert_ne!(second.epoch(), first.epoch());
    assert_eq!(
        second.get(&running.worker_id).unwrap().status,
        WorkerStatus::Lost
    );
    assert_eq!(
        second.get(&stopped.worker_id).unwrap().status,
        WorkerStatus::Stopped
    );
    let after = second
        .transcript(&running.worker_id, 0, None)
        .await
        .unwrap();
    assert_eq!(
        &after.items[..before.items.len()],
        &before.items[..],
        "transcript intact"
    );
    assert!(matches!(
        after.items.last().unwrap().entry,
        TranscriptEntry::System {
            note: SystemNote::Lost,
            ..
        }
    ));
    assert_eq!(second.get(&running.worker_id).unwrap().input_count, 2);
    let mut resumed = second
        .subscribe(&running.worker_id, Some(&old_cursor))
        .unwrap();
    assert!(matches!(
        next(&mut resumed).await,
        Ok(SubscriptionItem::Reset(ResetReason::RuntimeRestarted))
    ));
    match next_event(&mut resumed).await.1 {
        WorkerEvent::Snapshot { worker, .. } => assert_eq!(worker.status, WorkerStatus::Lost),
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

#[tokio::test]
async fn owners_are_recorded_counted_checked_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let first = on_disk(dir.path()).await;
    let owned = |owner: Option<&str>| CreateWorkerRequest {
        profile: "echo".into(),
        label: None,
        owner: owner.map(str::to_owned),
    };
    let alice = first.create(owned(Some("alice"))).await.unwrap();
    let alice_2 = first.create(owned(Some("alice"))).await.unwrap();
    let bob = first.create(owned(Some("bob@example.com"))).await.unwrap();
    let nobody = first.create(owned(None)).await.unwrap();
    assert_eq!(alice.owner.as_deref(), Some("alice"));
    assert_eq!(bob.owner.as_deref(), Some("bob@example.com"));
    assert_eq!(nobody.owner, None);
    first.stop(&alice_2.worker_id).await.unwrap();
    for bad in ["", "two words", "line\nbreak", &"x".repeat(65)] {
        let err = first.create(owned(Some(bad))).await.unwrap_err();
        assert_eq!(
            err.code(),
            switchyard_protocol::ErrorCode::InvalidRequest,
            "{bad:?}"
        );
    }
    assert_eq!(first.info().subscribers, 0);
    let watching = [
        first.subscribe(&alice.worker_id, None).unwrap(),
        first.subscribe(&alice.worker_id, None).unwrap(),
        first.subscribe(&nobody.worker_id, None).unwrap(),
    ];
    let info = first.info();
    assert_eq!(info.subscribers, 3, "subscribers of every worker");
    drop(watching);
    assert_eq!(info.owners.len(), 2, "{:?}", info.owners);
    assert_eq!(info.owners["alice"].running, 1);
    assert_eq!(info.owners["alice"].stopped, 1);
    assert_eq!(info.owners["bob@example.com"].running, 1);
    assert_eq!(
        info.workers.running, 3,
        "the unowned worker counts in the total only"
    );

    let crashed = crashed_copy(dir.path());
    let second = on_disk(crashed.path()).await;
    for (worker, owner) in [
        (&alice, Some("alice")),
        (&alice_2, Some("alice")),
        (&bob, Some("bob@example.com")),
        (&nobody, None),
    ] {
        assert_eq!(
            second.get(&worker.worker_id).unwrap().owner.as_deref(),
            owner
        );
    }
    assert_eq!(second.info().owners["alice"].lost, 1);
}

/// A runtime with the default test configuration over a file store in `dir`.
async fn on_disk(dir: &std::path::Path) -> Runtime {
    Runtime::open(config(), Arc::new(FsStore::open(dir).await.unwrap()))
        .await
        .unwrap()
}
