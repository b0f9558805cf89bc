//! The runtime with the built-in echo worker: lifecycle, input, cancel, limits,
//! subscriptions and cursors.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use switchyard_protocol::{
    CreateWorkerRequest, ErrorCode, OutgoingFrame, OutputStream, ResetReason, RuntimeCursor,
    SNAPSHOT_TRANSCRIPT_MAX_JSON_BYTES, SystemNote, TRANSCRIPT_PAGE_MAX_JSON_BYTES,
    TranscriptEntry, WorkerEvent, WorkerId, WorkerStatus,
};
use switchyard_runtime::{
    ListQuery, Profile, ProfileSpec, Runtime, RuntimeError, StreamEnd, Subscription,
    SubscriptionItem,
};

fn create(profile: &str) -> CreateWorkerRequest {
    CreateWorkerRequest {
        profile: profile.into(),
        label: None,
        owner: None,
    }
}

fn slow_echo(delay_ms: u64) -> Profile {
    Profile::new(ProfileSpec::Echo {
        delay: Duration::from_millis(delay_ms),
    })
}

#[tokio::test]
async fn echo_round_trip_with_snapshot_events_and_transcript() {
    let rt = Runtime::in_memory(config()).await;
    let w = rt.create(create("echo")).await.unwrap();
    assert_eq!(w.status, WorkerStatus::Running);
    assert_eq!(w.profile, "echo");

    let mut sub = rt.subscribe(&w.worker_id, None).unwrap();
    match next_event(&mut sub).await.1 {
        WorkerEvent::Snapshot { worker, .. } => assert_eq!(worker.status, WorkerStatus::Running),
        other => panic!("first event must be a snapshot, got {other:?}"),
    }
    let accepted = rt.input(&w.worker_id, "hello\n".into()).await.unwrap();
    assert_eq!(
        next_event(&mut sub).await.1,
        WorkerEvent::Input {
            sequence: accepted.sequence,
            text: "hello\n".into()
        }
    );
    assert_eq!(
        next_event(&mut sub).await.1,
        WorkerEvent::Output {
            sequence: accepted.sequence + 1,
            stream: OutputStream::Stdout,
            text: "hello\n".into()
        }
    );

    let page = rt.transcript(&w.worker_id, 0, None).await.unwrap();
    assert_eq!(page.total, 3, "started, input, output: {page:?}");
    assert_eq!(page.next_after, None);
    assert!(
        matches!(page.items[1].entry, TranscriptEntry::Input { ref text } if text == "hello\n")
    );
    let detail = rt.get(&w.worker_id).unwrap();
    assert_eq!(detail.input_count, 1);
    assert_eq!(detail.output_bytes, 6);
}

#[tokio::test]
async fn cancel_drops_pending_output_and_the_worker_keeps_answering() {
    let rt = Runtime::in_memory(config().with_profile("slow", slow_echo(400))).await;
    let w = rt.create(create("slow")).await.unwrap();
    let mut sub = rt.subscribe(&w.worker_id, None).unwrap();
    next_event(&mut sub).await; // snapshot
    for text in ["a", "b", "c"] {
        rt.input(&w.worker_id, text.into()).await.unwrap();
    }
    assert_eq!(
        rt.cancel(&w.worker_id).unwrap().status,
        WorkerStatus::Running
    );
    // Three inputs, then the interruption, and no output of any of them.
    let mut kinds = Vec::new();
    loop {
        let (_, event) = next_event(&mut sub).await;
        let done = event == WorkerEvent::Interrupted;
        kinds.push(event);
        if done {
            break;
        }
    }
    assert!(
        kinds
            .iter()
            .all(|e| !matches!(e, WorkerEvent::Output { .. })),
        "{kinds:?}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    rt.input(&w.worker_id, "d".into()).await.unwrap();
    let event = wait_for(&mut sub, |e| matches!(e, WorkerEvent::Output { .. })).await;
    assert!(
        matches!(event, WorkerEvent::Output { ref text, .. } if text == "d"),
        "only d is echoed: {event:?}"
    );
}

#[tokio::test]
async fn a_full_input_queue_is_worker_busy() {
    let mut cfg = config().with_profile("slow", slow_echo(5_000));
    cfg.limits.input_queue = 2;
    let rt = Runtime::in_memory(cfg).await;
    let w = rt.create(create("slow")).await.unwrap();
    let mut busy = None;
    for i in 0..5 {
        if let Err(e) = rt.input(&w.worker_id, format!("{i}")).await {
            busy = Some(e);
            break;
        }
    }
    let err = busy.expect("the queue must fill up");
    assert_eq!(err.code(), ErrorCode::WorkerBusy);
    assert_eq!(err.to_detail().worker_id.as_ref(), Some(&w.worker_id));
}

#[tokio::test]
async fn oversized_input_is_payload_too_large() {
    let mut cfg = config();
    cfg.limits.max_input_bytes = 8;
    let rt = Runtime::in_memory(cfg).await;
    let w = rt.create(create("echo")).await.unwrap();
    let err = rt
        .input(&w.worker_id, "123456789".into())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PayloadTooLarge);
}

/// Of several deletes of one ended worker at once, one deletes it and the others
/// find it gone (`worker_not_found`), on either store: none fails as the store's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_deletes_of_one_worker_delete_it_once() {
    let dir = tempfile::TempDir::new().unwrap();
    for rt in [
        Runtime::in_memory(config()).await,
        Runtime::open(
            config(),
            std::sync::Arc::new(switchyard_runtime::FsStore::open(dir.path()).await.unwrap()),
        )
        .await
        .unwrap(),
    ] {
        for _ in 0..200 {
            let id = rt.create(create("echo")).await.unwrap().worker_id;
            rt.stop(&id).await.unwrap();
            let deletes: Vec<_> = (0..8)
                .map(|_| {
                    let (rt, id) = (rt.clone(), id.clone());
                    tokio::spawn(async move { rt.delete(&id).await })
                })
                .collect();
            let mut codes = Vec::new();
            for delete in deletes {
                codes.push(delete.await.unwrap().map_err(|e| e.code()));
            }
            assert_eq!(codes.iter().filter(|c| c.is_ok()).count(), 1, "{codes:?}");
            assert!(
                codes
                    .iter()
                    .all(|c| matches!(c, Ok(()) | Err(ErrorCode::WorkerNotFound))),
                "{codes:?}"
            );
        }
    }
}

/// A memory store that fails what it is told to (a read-only or full disk).
#[derive(Default)]
struct FailingStore {
    inner: switchyard_runtime::MemoryStore,
    /// The next worker removal fails.
    removal: std::sync::atomic::AtomicBool,
    /// The next worker removal finds the files gone.
    removal_gone: std::sync::atomic::AtomicBool,
    /// Appends of inputs fail while set.
    inputs: std::sync::atomic::AtomicBool,
    /// Appends of output fail while set.
    outputs: std::sync::atomic::AtomicBool,
}

fn disk_error() -> switchyard_runtime::StoreError {
    switchyard_runtime::StoreError::Io {
        path: "workers".into(),
        source: std::io::Error::other("no space left on device"),
    }
}

#[async_trait::async_trait]
impl switchyard_runtime::Store for FailingStore {
    async fn load(
        &self,
        tail: usize,
    ) -> Result<Vec<switchyard_runtime::LoadedWorker>, switchyard_runtime::StoreError> {
        self.inner.load(tail).await
    }
    async fn save_worker(
        &self,
        detail: &switchyard_protocol::WorkerDetail,
    ) -> Result<(), switchyard_runtime::StoreError> {
        self.inner.save_worker(detail).await
    }
    async fn append(
        &self,
        worker: &WorkerId,
        items: &[switchyard_protocol::TranscriptItem],
    ) -> Result<(), switchyard_runtime::StoreError> {
        let on =
            |flag: &std::sync::atomic::AtomicBool| flag.load(std::sync::atomic::Ordering::SeqCst);
        let fails = items.iter().any(|item| match item.entry {
            TranscriptEntry::Input { .. } => on(&self.inputs),
            TranscriptEntry::Output { .. } => on(&self.outputs),
            TranscriptEntry::System { .. } => false,
        });
        if fails {
            return Err(disk_error());
        }
        self.inner.append(worker, items).await
    }
    async fn read_page(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<switchyard_protocol::TranscriptItem>, switchyard_runtime::StoreError> {
        self.inner.read_page(worker, after, limit).await
    }
    async fn remove_worker(&self, worker: &WorkerId) -> Result<(), switchyard_runtime::StoreError> {
        if self
            .removal
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(disk_error());
        }
        if self
            .removal_gone
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.inner.remove_worker(worker).await?;
            return Err(switchyard_runtime::StoreError::NotFound(worker.clone()));
        }
        self.inner.remove_worker(worker).await
    }
    async fn flush(&self) -> Result<(), switchyard_runtime::StoreError> {
        self.inner.flush().await
    }
}

/// A runtime over `store`, and the store.
async fn over(store: FailingStore) -> (Runtime, std::sync::Arc<FailingStore>) {
    let store = std::sync::Arc::new(store);
    let rt = Runtime::open(config(), store.clone()).await.unwrap();
    (rt, store)
}

/// An input the store cannot take is refused (the store's error), never half
/// accepted: not counted, not in the transcript, not sent to the program. Output
/// the store cannot take still reaches viewers, with one `transcript_not_saved`
/// diagnostic per run of failures.
#[tokio::test]
async fn what_the_store_cannot_take_is_refused_or_said() {
    let (rt, store) = over(FailingStore::default()).await;
    let id = rt.create(create("echo")).await.unwrap().worker_id;
    let mut sub = rt.subscribe(&id, None).unwrap();
    let before = rt.transcript(&id, 0, None).await.unwrap().items.len() as u64;
    store
        .inputs
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        rt.input(&id, "lost".into()).await.unwrap_err().code(),
        ErrorCode::Internal
    );
    assert_eq!(rt.get(&id).unwrap().input_count, 0);
    store
        .inputs
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        rt.input(&id, "kept".into()).await.unwrap().sequence,
        before + 1,
        "the refused input used no sequence"
    );
    wait_for(
        &mut sub,
        |e| matches!(e, WorkerEvent::Output { text, .. } if text == "kept"),
    )
    .await;

    store
        .outputs
        .store(true, std::sync::atomic::Ordering::SeqCst);
    for text in ["one", "two"] {
        rt.input(&id, text.into()).await.unwrap();
    }
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("output two") {
        match wait_for(&mut sub, |_| true).await {
            WorkerEvent::Output { text, .. } => seen.push(format!("output {text}")),
            WorkerEvent::Diagnostic { code, .. } => seen.push(code),
            _ => {}
        }
    }
    assert_eq!(seen, ["output one", "transcript_not_saved", "output two"]);
    let page = rt.transcript(&id, 0, None).await.unwrap();
    let texts: Vec<_> = page
        .items
        .iter()
        .filter_map(|i| match &i.entry {
            TranscriptEntry::Input { text } | TranscriptEntry::Output { text, .. } => {
                Some(text.as_str())
            }
            TranscriptEntry::System { .. } => None,
        })
        .collect();
    assert_eq!(
        texts,
        ["kept", "kept", "one", "two"],
        "the store has the inputs, not the failed output"
    );
}

/// A delete the store fails leaves the worker as it was (its files would bring it
/// back after a restart), so that a retry deletes it.
#[tokio::test]
async fn a_delete_the_store_fails_can_be_retried() {
    let (rt, _) = over(FailingStore {
        removal: true.into(),
        ..FailingStore::default()
    })
    .await;
    let id = rt.create(create("echo")).await.unwrap().worker_id;
    rt.stop(&id).await.unwrap();
    assert_eq!(
        rt.delete(&id).await.unwrap_err().code(),
        ErrorCode::Internal
    );
    assert_eq!(rt.get(&id).unwrap().status, WorkerStatus::Stopped);
    assert_eq!(rt.info().workers.stopped, 1, "still counted");
    rt.delete(&id).await.unwrap();
    assert_eq!(rt.get(&id).unwrap_err().code(), ErrorCode::WorkerNotFound);
    assert_eq!(rt.info().workers.stopped, 0);

    // Files already gone (a removal that went through but failed after): deleted.
    let (rt, _) = over(FailingStore {
        removal_gone: true.into(),
        ..FailingStore::default()
    })
    .await;
    let id = rt.create(create("echo")).await.unwrap().worker_id;
    rt.stop(&id).await.unwrap();
    rt.delete(&id).await.unwrap();
    assert_eq!(rt.get(&id).unwrap_err().code(), ErrorCode::WorkerNotFound);
    assert_eq!(rt.info().workers.stopped, 0);
}

#[tokio::test]
async fn lifecycle_errors_stop_is_idempotent_and_delete_removes() {
    let rt = Runtime::in_memory(config()).await;
    let w = rt.create(create("echo")).await.unwrap();
    let id = w.worker_id.clone();
    assert_eq!(
        rt.delete(&id).await.unwrap_err().code(),
        ErrorCode::WorkerRunning
    );
    let mut sub = rt.subscribe(&id, None).unwrap();
    assert_eq!(rt.stop(&id).await.unwrap().status, WorkerStatus::Stopped);
    assert_eq!(rt.stop(&id).await.unwrap().status, WorkerStatus::Stopped);
    assert_eq!(
        rt.input(&id, "x".into()).await.unwrap_err().code(),
        ErrorCode::WorkerNotRunning
    );
    assert_eq!(
        rt.cancel(&id).unwrap_err().code(),
        ErrorCode::WorkerNotRunning
    );
    rt.delete(&id).await.unwrap();
    assert_eq!(rt.get(&id).unwrap_err().code(), ErrorCode::WorkerNotFound);
    assert_eq!(
        rt.transcript(&id, 0, None).await.unwrap_err().code(),
        ErrorCode::WorkerNotFound
    );
    assert!(rt.subscribe(&id, None).is_err());
    // The subscriber sees the stop, then the removal.
    wait_for(&mut sub, |e| {
        matches!(
            e,
            WorkerEvent::Status {
                status: WorkerStatus::Stopped,
                ..
            }
        )
    })
    .await;
    loop {
        match next(&mut sub).await {
            Ok(_) => continue,
            Err(end) => {
                assert_eq!(end, StreamEnd::Removed);
                break;
            }
        }
    }
}

#[tokio::test]
async fn limits_unknown_profile_and_paging() {
    let mut cfg = config();
    cfg.limits.max_workers = 2;
    cfg.limits.transcript_page_max = 10;
    let rt = Runtime::in_memory(cfg).await;
    assert!(matches!(
        rt.create(create("nope")).await.unwrap_err(),
        RuntimeError::UnknownProfile(_)
    ));
    let a = rt.create(create("echo")).await.unwrap();
    let b = rt.create(create("echo")).await.unwrap();
    assert_eq!(
        rt.create(create("echo")).await.unwrap_err().code(),
        ErrorCode::WorkerLimitReached
    );
    rt.stop(&a.worker_id).await.unwrap();
    let c = rt.create(create("echo")).await.unwrap();

    let page = rt
        .list(&ListQuery {
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.workers.len(), 2);
    let next = page.next.clone().expect("a third worker remains");
    let rest = rt
        .list(&ListQuery {
            after: Some(next),
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(rest.workers.len(), 1);
    assert_eq!(rest.next, None);
    let mut all: Vec<_> = page
        .workers
        .iter()
        .chain(&rest.workers)
        .map(|w| w.worker_id.clone())
        .collect();
    let sorted = {
        let mut s = all.clone();
        s.sort();
        s
    };
    assert_eq!(all, sorted, "ordered by id");
    all.sort();
    let mut expected = vec![
        a.worker_id.clone(),
        b.worker_id.clone(),
        c.worker_id.clone(),
    ];
    expected.sort();
    assert_eq!(all, expected);

    let stopped = rt
        .list(&ListQuery {
            status: Some(WorkerStatus::Stopped),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(stopped.workers.len(), 1);
    assert_eq!(stopped.workers[0].worker_id, a.worker_id);
    assert_eq!(
        rt.list(&ListQuery {
            limit: Some(11),
            ..Default::default()
        })
        .unwrap_err()
        .code(),
        ErrorCode::LimitTooLarge
    );
    assert_eq!(
        rt.transcript(&b.worker_id, 0, Some(11))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::LimitTooLarge
    );
    let info = rt.info();
    assert_eq!(info.workers.running, 2);
    assert_eq!(info.workers.stopped, 1);
    assert!(info.profiles.iter().any(|p| p.name == "echo"));
}

#[tokio::test]
async fn transcript_pages_follow_next_after() {
    let rt = Runtime::in_memory(config()).await;
    let w = rt.create(create("echo")).await.unwrap();
    let mut sub = rt.subscribe(&w.worker_id, None).unwrap();
    for i in 0..10 {
        rt.input(&w.worker_id, format!("{i}")).await.unwrap();
        wait_for(&mut sub, |e| matches!(e, WorkerEvent::Output { .. })).await;
    }
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = rt.transcript(&w.worker_id, after, Some(3)).await.unwrap();
        assert!(page.items.len() <= 3);
        assert_eq!(page.total, 21);
        seen.extend(page.items.iter().map(|i| i.sequence));
        match page.next_after {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(seen, (1..=21).collect::<Vec<_>>());
}

/// A runtime with an echo worker that echoed 20 inputs of 60,000 control bytes:
/// 40 items of about 360 KB of JSON each (every byte written `\u0001`).
async fn echoed_control_bytes() -> (Runtime, switchyard_protocol::WorkerDetail) {
    let rt = Runtime::in_memory(config()).await;
    let w = rt.create(create("echo")).await.unwrap();
    let mut sub = rt.subscribe(&w.worker_id, None).unwrap();
    let text = "\u{1}".repeat(60_000);
    for _ in 0..20 {
        rt.input(&w.worker_id, text.clone()).await.unwrap();
        wait_for(&mut sub, |e| matches!(e, WorkerEvent::Output { .. })).await;
    }
    (rt, w)
}

/// Pages hold at most TRANSCRIPT_PAGE_MAX_JSON_BYTES of JSON whatever `limit`
/// asks: output full of control bytes (six bytes of JSON each) would otherwise make
/// a 1000-item page several times the backend's answer cap.
#[tokio::test]
async fn transcript_pages_stay_within_their_byte_budget() {
    let (rt, w) = echoed_control_bytes().await;
    let (mut after, mut seen, mut pages) = (0, Vec::new(), 0);
    loop {
        let page = rt
            .transcript(&w.worker_id, after, Some(1000))
            .await
            .unwrap();
        let json = serde_json::to_vec(&page).unwrap().len();
        assert!(
            json <= TRANSCRIPT_PAGE_MAX_JSON_BYTES,
            "a page of {json} bytes"
        );
        assert!(!page.items.is_empty());
        pages += 1;
        seen.extend(page.items.iter().map(|i| i.sequence));
        match page.next_after {
            Some(n) => after = n,
            None => break,
        }
    }
    assert!(pages >= 4, "{pages} pages for about 14 MB of JSON");
    let total = rt.transcript(&w.worker_id, 0, Some(1)).await.unwrap().total;
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
}

/// A snapshot carries the last transcript items whose JSON fits in
/// SNAPSHOT_TRANSCRIPT_MAX_JSON_BYTES: fifty items of 64 KiB of control bytes would
/// make a snapshot of about 19 MB, past what a backend takes in one frame.
#[tokio::test]
async fn a_snapshots_transcript_stays_within_its_byte_budget() {
    let (rt, w) = echoed_control_bytes().await;
    let mut viewer = rt.subscribe(&w.worker_id, None).unwrap();
    let (_, snapshot) = next_event(&mut viewer).await;
    let WorkerEvent::Snapshot { transcript, .. } = &snapshot else {
        panic!("expected a snapshot first, got {snapshot:?}");
    };
    let json = serde_json::to_vec(transcript).unwrap().len();
    assert!(json <= SNAPSHOT_TRANSCRIPT_MAX_JSON_BYTES, "{json} bytes");
    let sequences: Vec<u64> = transcript.iter().map(|i| i.sequence).collect();
    let last = rt.transcript(&w.worker_id, 0, Some(1)).await.unwrap().total;
    assert!(sequences.len() >= 5, "{sequences:?}");
    assert_eq!(
        sequences,
        (last + 1 - sequences.len() as u64..=last).collect::<Vec<_>>(),
        "the last items, in order"
    );
}

#[tokio::test]
async fn resume_gives_exactly_the_missed_events() {
    let rt = Runtime::in_memory(config()).await;
    let w = rt.create(create("echo")).await.unwrap();
    let mut sub = rt.subscribe(&w.worker_id, None).unwrap();
    next_event(&mut sub).await;
    rt.input(&w.worker_id, "1".into()).await.unwrap();
    let (input_pos, _) = next_event(&mut sub).await;
    let (output_pos, _) = next_event(&mut sub).await;
    assert_eq!(output_pos, input_pos + 1);
    let cursor = sub.cursor_at(output_pos);
    drop(sub);

    // Missed while away: two inputs and their outputs.
    let mut watcher = rt.subscribe(&w.worker_id, Some(&cursor)).unwrap();
    rt.input(&w.worker_id, "2".into()).await.unwrap();
    rt.input(&w.worker_id, "3".into()).await.unwrap();
    let mut missed = Vec::new();
    for _ in 0..4 {
        missed.push(next_event(&mut watcher).await);
    }
    let positions: Vec<u64> = missed.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        positions,
        (output_pos + 1..=output_pos + 4).collect::<Vec<_>>()
    );

    let mut resumed = rt.subscribe(&w.worker_id, Some(&cursor)).unwrap();
    for (position, event) in &missed {
        let (p, e) = next_event(&mut resumed).await;
        assert_eq!((p, &e), (*position, event));
    }
    // Nothing else is pending: the next item only comes with new activity.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), resumed.next())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn expired_foreign_future_and_other_epoch_cursors() {
    let mut cfg = config();
    cfg.limits.event_backlog = 4;
    let rt = Runtime::in_memory(cfg.clone()).await;
    let w = rt.create(create("echo")).await.unwrap();
    let other = rt.create(create("echo")).await.unwrap();
    let mut sub = rt.subscribe(&w.worker_id, None).unwrap();
    let (first, _) = next_event(&mut sub).await;
    let old_cursor = sub.cursor_at(first);
    for i in 0..5 {
        rt.input(&w.worker_id, format!("{i}")).await.unwrap();
    }
    wait_for(
        &mut sub,
        |e| matches!(e, WorkerEvent::Output { text, .. } if text == "4"),
    )
    .await;

    let mut expired = rt.subscribe(&w.worker_id, Some(&old_cursor)).unwrap();
    assert!(matches!(
        next(&mut expired).await,
        Ok(SubscriptionItem::Reset(ResetReason::CursorExpired))
    ));
    assert!(matches!(
        next_event(&mut expired).await.1,
        WorkerEvent::Snapshot { .. }
    ));

    let foreign = rt
        .subscribe(&other.worker_id, Some(&old_cursor))
        .unwrap_err();
    assert_eq!(foreign.code(), ErrorCode::InvalidCursor);
    let future = RuntimeCursor {
        epoch: rt.epoch().into(),
        worker_id: w.worker_id.clone(),
        position: 9999,
    }
    .encode();
    assert_eq!(
        rt.subscribe(&w.worker_id, Some(&future))
            .unwrap_err()
            .code(),
        ErrorCode::InvalidCursor
    );
    assert_eq!(
        rt.subscribe(&w.worker_id, Some("garbage"))
            .unwrap_err()
            .code(),
        ErrorCode::InvalidCursor
    );

    let earlier_epoch = earlier_epoch_cursor(&w.worker_id);
    let mut restarted = rt.subscribe(&w.worker_id, Some(&earlier_epoch)).unwrap();
    assert!(matches!(
        next(&mut restarted).await,
        Ok(SubscriptionItem::Reset(ResetReason::RuntimeRestarted))
    ));
    assert!(matches!(
        next_event(&mut restarted).await.1,
        WorkerEvent::Snapshot { .. }
    ));
    let unknown = WorkerId::new("w-none").unwrap();
    assert_eq!(
        rt.subscribe(&unknown, None).unwrap_err().code(),
        ErrorCode::WorkerNotFound
    );
}

#[tokio::test]
async fn shutdown_stops_workers_and_ends_subscriptions() {
    let rt = Runtime::in_memory(config()).await;
    let w = rt.create(create("echo")).await.unwrap();
    let mut sub = rt.subscribe(&w.worker_id, None).unwrap();
    rt.shutdown().await.unwrap();
    assert_eq!(rt.get(&w.worker_id).unwrap().status, WorkerStatus::Stopped);
    assert!(rt.is_draining());
    // The transcript says why: not "on request".
    let page = rt.transcript(&w.worker_id, 0, None).await.unwrap();
    assert!(
        matches!(&page.items.last().unwrap().entry, TranscriptEntry::System { note: SystemNote::Stopped, text }
            if text == "stopped: the runtime shut down"),
        "{:?}",
        page.items.last()
    );
    assert_eq!(
        rt.create(create("echo")).await.unwrap_err().code(),
        ErrorCode::RuntimeUnavailable
    );
    loop {
        match next(&mut sub).await {
            Ok(_) => continue,
            Err(end) => {
                assert_eq!(end, StreamEnd::Shutdown);
                break;
            }
        }
    }
}

/// A cursor of `worker` minted by an earlier process (another epoch).
fn earlier_epoch_cursor(worker: &WorkerId) -> String {
    RuntimeCursor {
        epoch: "0123".into(),
        worker_id: worker.clone(),
        position: 1,
    }
    .encode()
}

/// The next frame, failing the test if none arrives in time.
async fn next_frame(sub: &mut Subscription) -> OutgoingFrame {
    tokio::time::timeout(WAIT, sub.next_frame())
        .await
        .expect("no frame within the wait")
        .expect("the subscription ended")
}

/// A frame's text, and whether it is shared.
fn text(frame: &OutgoingFrame) -> (&str, bool) {
    match frame {
        OutgoingFrame::Encoded(text) => (text, true),
        OutgoingFrame::Text(text) => (text, false),
        OutgoingFrame::Value(frame) => panic!("not encoded: {frame:?}"),
    }
}

/// What `next_frame` sends is what `next` and `frame` make of the same items,
/// encoded: a snapshot, an input and an output with characters JSON escapes, a
/// reset. A live event that reaches several subscribers is encoded once and
/// shared; one that reaches a single subscriber is its own text.
#[tokio::test]
async fn frames_are_the_items_encoded_once_for_the_subscribers_an_event_reaches() {
    let rt = Runtime::in_memory(config()).await;
    let w = rt.create(create("echo")).await.unwrap();
    let mut framed = rt.subscribe(&w.worker_id, None).unwrap();
    let mut itemised = rt.subscribe(&w.worker_id, None).unwrap();
    let mut also_framed = rt.subscribe(&w.worker_id, None).unwrap();
    let expected = |sub: &Subscription, item: SubscriptionItem| {
        serde_json::to_string(&sub.frame(&item)).unwrap()
    };

    let snapshot = next_frame(&mut framed).await;
    let item = next(&mut itemised).await.unwrap();
    assert_eq!(text(&snapshot), (expected(&itemised, item).as_str(), false));
    next_frame(&mut also_framed).await;

    rt.input(
        &w.worker_id,
        "tab\t \"quoted\" back\\slash é\u{1b}[0m\n".into(),
    )
    .await
    .unwrap();
    for _ in ["input", "output"] {
        let frame = next_frame(&mut framed).await;
        let item = next(&mut itemised).await.unwrap();
        assert_eq!(text(&frame), (expected(&itemised, item).as_str(), true));
        match (frame, next_frame(&mut also_framed).await) {
            (OutgoingFrame::Encoded(one), OutgoingFrame::Encoded(other)) => {
                assert!(Arc::ptr_eq(&one, &other), "encoded once")
            }
            other => panic!("not shared: {other:?}"),
        }
    }

    // Alone: the input's publication forgets the others, the output is its own.
    drop((itemised, also_framed));
    rt.input(&w.worker_id, "x\n".into()).await.unwrap();
    next_frame(&mut framed).await;
    let output = next_frame(&mut framed).await;
    let (output, shared) = text(&output);
    assert!(!shared && output.contains(r#""text":"x\n""#), "{output}");

    let earlier_epoch = earlier_epoch_cursor(&w.worker_id);
    let mut restarted = rt.subscribe(&w.worker_id, Some(&earlier_epoch)).unwrap();
    assert_eq!(
        text(&next_frame(&mut restarted).await),
        (r#"{"type":"reset","reason":"runtime_restarted"}"#, false)
    );
}
