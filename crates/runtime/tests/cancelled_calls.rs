//! Calls whose caller goes away mid-way (an HTTP connection cut while the store
//! writes) leave the transcript, the event log and the worker in agreement.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use switchyard_protocol::{
    CreateWorkerRequest, TranscriptEntry, TranscriptItem, WorkerDetail, WorkerEvent, WorkerId,
    WorkerStatus,
};
use switchyard_runtime::{LoadedWorker, MemoryStore, Runtime, Store, StoreError};

/// A store whose writes, once started, finish on their own a little
/// later, whether or not the caller still waits: what the file store does with its
/// blocking-thread writes, made slow enough to cut a caller off in the middle.
struct WriteBehind {
    inner: Arc<MemoryStore>,
    delay: Duration,
}

#[async_trait::async_trait]
impl Store for WriteBehind {
    async fn load(&self, tail: usize) -> Result<Vec<LoadedWorker>, StoreError> {
        self.inner.load(tail).await
    }

    async fn save_worker(&self, detail: &WorkerDetail) -> Result<(), StoreError> {
        let (inner, delay, detail) = (self.inner.clone(), self.delay, detail.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            inner.save_worker(&detail).await
        })
        .await
        .expect("the write task panicked")
    }

    async fn append(&self, worker: &WorkerId, items: &[TranscriptItem]) -> Result<(), StoreError> {
        let (inner, delay) = (self.inner.clone(), self.delay);
        let (worker, items) = (worker.clone(), items.to_vec());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            inner.append(&worker, &items).await
        })
        .await
        .expect("the write task panicked")
    }

    async fn read_page(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<TranscriptItem>, StoreError> {
        self.inner.read_page(worker, after, limit).await
    }

    async fn remove_worker(&self, worker: &WorkerId) -> Result<(), StoreError> {
        self.inner.remove_worker(worker).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
}

/// A runtime on a [`WriteBehind`] store that takes `delay` per write.
async fn runtime(delay: Duration) -> (Runtime, Arc<MemoryStore>) {
    let inner = Arc::new(MemoryStore::new());
    let store = WriteBehind {
        inner: inner.clone(),
        delay,
    };
    (
        Runtime::open(config(), Arc::new(store)).await.unwrap(),
        inner,
    )
}

fn echo() -> CreateWorkerRequest {
    CreateWorkerRequest {
        profile: "echo".into(),
        label: None,
        owner: None,
    }
}

#[tokio::test]
async fn an_input_whose_caller_is_dropped_mid_write_is_recorded_whole() {
    let (rt, _) = runtime(Duration::from_millis(100)).await;
    let w = rt.create(echo()).await.unwrap();
    assert_eq!(w.status, WorkerStatus::Running);
    let id = w.worker_id;
    let mut sub = rt.subscribe(&id, None).unwrap();
    // Once the worker's first writes are done (its echo of `warm` is the last), the
    // next input's turn comes at once and its caller is cut off mid-write.
    rt.input(&id, "warm\n".into()).await.unwrap();
    wait_for_output(&mut sub, "warm\n").await;

    let cut_off = tokio::time::timeout(Duration::from_millis(20), rt.input(&id, "cut\n".into()));
    assert!(
        cut_off.await.is_err(),
        "the caller was to be dropped mid-write"
    );
    let next = rt.input(&id, "next\n".into()).await.unwrap();

    // Every event up to the echo of the second input.
    let mut events = Vec::new();
    loop {
        let (_, event) = next_event(&mut sub).await;
        let done = matches!(&event, WorkerEvent::Output { text, .. } if text == "next\n");
        events.push(event);
        if done {
            break;
        }
    }
    let logged: Vec<(u64, String)> = events
        .iter()
        .filter_map(|e| match e {
            WorkerEvent::Input { sequence, text } => Some((*sequence, text.clone())),
            _ => None,
        })
        .collect();
    let page = rt.transcript(&id, 0, None).await.unwrap();
    let sequences: Vec<u64> = page.items.iter().map(|i| i.sequence).collect();
    assert!(
        sequences.windows(2).all(|p| p[0] < p[1]),
        "transcript sequences repeat or go back: {sequences:?}"
    );
    let stored: Vec<(u64, String)> = page
        .items
        .iter()
        .filter_map(|i| match &i.entry {
            TranscriptEntry::Input { text } if text != "warm\n" => Some((i.sequence, text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(stored, logged, "the transcript and the event log disagree");
    assert_eq!(
        logged.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
        ["cut\n", "next\n"],
        "the dropped caller's input was not recorded whole"
    );
    assert_eq!(logged[1].0, next.sequence);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, WorkerEvent::Output { text, .. } if text == "cut\n")),
        "the dropped caller's input never reached the worker: {events:?}"
    );
}

#[tokio::test]
async fn a_create_whose_caller_is_dropped_mid_write_still_makes_its_worker() {
    let (rt, stored) = runtime(Duration::from_millis(100)).await;
    let cut_off = tokio::time::timeout(Duration::from_millis(20), rt.create(echo()));
    assert!(
        cut_off.await.is_err(),
        "the caller was to be dropped mid-write"
    );

    // The saved record has its worker in memory, which starts and runs.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let listed = rt.list(&Default::default()).unwrap().workers;
        let saved = stored.load(0).await.unwrap();
        if saved.len() == 1 && listed.len() == 1 && listed[0].status == WorkerStatus::Running {
            assert_eq!(saved[0].detail.worker_id, listed[0].worker_id);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "saved {} record(s), {} worker(s) in memory: {listed:?}",
            saved.len(),
            listed.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_input_whose_caller_gives_up_before_its_turn_leaves_nothing() {
    let (rt, _) = runtime(Duration::from_millis(100)).await;
    let id = rt.create(echo()).await.unwrap().worker_id;
    let mut sub = rt.subscribe(&id, None).unwrap();

    // `first` holds the worker's turn while the store writes it; `impatient` waits
    // behind it and gives up before its turn comes.
    let first = tokio::spawn({
        let (rt, id) = (rt.clone(), id.clone());
        async move { rt.input(&id, "first\n".into()).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let impatient = tokio::time::timeout(
        Duration::from_millis(20),
        rt.input(&id, "impatient\n".into()),
    );
    assert!(impatient.await.is_err(), "the caller was to give up first");
    first.await.unwrap().unwrap();
    rt.input(&id, "last\n".into()).await.unwrap();
    wait_for_output(&mut sub, "last\n").await;
    let inputs: Vec<String> = rt
        .transcript(&id, 0, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|i| match i.entry {
            TranscriptEntry::Input { text } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(inputs, ["first\n", "last\n"]);
}

#[tokio::test]
async fn a_create_in_flight_when_the_runtime_shuts_down_is_stopped_with_the_rest() {
    let (rt, _) = runtime(Duration::from_millis(100)).await;
    let creating = tokio::spawn({
        let rt = rt.clone();
        async move { rt.create(echo()).await }
    });
    // The create is writing its record when the shutdown starts.
    tokio::time::sleep(Duration::from_millis(20)).await;
    rt.shutdown().await.unwrap();
    let created = creating.await.unwrap();
    let listed = rt.list(&Default::default()).unwrap().workers;
    assert!(
        listed.iter().all(|w| w.status.is_ended()),
        "a worker outlived the shutdown: {listed:?} (create answered {created:?})"
    );
    assert!(
        rt.create(echo()).await.is_err(),
        "a create after the shutdown must be refused"
    );
}

/// Waits for the worker's output `text`.
async fn wait_for_output(sub: &mut switchyard_runtime::Subscription, text: &str) {
    wait_for(
        sub,
        |e| matches!(e, WorkerEvent::Output { text: t, .. } if t == text),
    )
    .await;
}
