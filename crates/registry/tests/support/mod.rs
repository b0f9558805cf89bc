//! Test doubles shared by the registry's integration tests.
#![allow(dead_code)] // each test file uses part of it

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use switchyard_protocol::{
    CreateWorkerRequest, ErrorCode, ErrorDetail, InputAccepted, ResizeRequest, ResizeResponse,
    RuntimeInfo, RuntimeSourceKind, TranscriptPage, WorkerDetail, WorkerId, WorkerList,
    WorkerStatusResponse,
};
use switchyard_registry::{
    EmbeddedSource, ResumePoint, RuntimeSource, SourceEnd, SourceError, SourceEvents, SourceItem,
};
use switchyard_runtime::Runtime;
use switchyard_transport::WorkerQuery;
use tokio::sync::Notify;

/// What a [`Probe`]'s subscriptions get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscriptions {
    /// The embedded runtime's stream.
    Up,
    /// Every subscription fails as unreachable (the runtime's events are down).
    Down,
    /// Every subscription fails as the runtime rejecting the backend's credentials.
    AuthRejected,
    /// Every subscription is refused as `invalid_cursor`, with a cursor or without
    /// (a lying runtime).
    CursorRefused,
    /// The stream gives its first item, then breaks as a protocol error (a runtime
    /// that accepts and then fails at once).
    BreakAfterFirst,
    /// The first subscription gives this many items, then breaks; every later one
    /// fails as unreachable (a runtime that went away).
    FirstOnly(usize),
    /// Every stream passes the runtime's items for this long, then breaks as
    /// unreachable (a network that drops long-lived connections now and then).
    BreakAfterHealthy(std::time::Duration),
    /// Every stream gives the snapshot under an epoch of its own at position 1,
    /// then an output at position 3 (a gap: viewers reset and the channel asks for
    /// a fresh snapshot), then nothing: a lying runtime that provokes a
    /// resubscription each time.
    GapAfterSnapshot,
}

/// The [`Subscriptions::GapAfterSnapshot`] stream.
struct Gapped {
    inner: Box<dyn SourceEvents>,
    epoch: Arc<str>,
    given: usize,
}

#[async_trait::async_trait]
impl SourceEvents for Gapped {
    async fn next(&mut self) -> Result<SourceItem, SourceEnd> {
        self.given += 1;
        match self.given {
            1 => match self.inner.next().await? {
                SourceItem::Event { event, .. } => Ok(SourceItem::Event {
                    epoch: self.epoch.clone(),
                    position: 1,
                    event,
                }),
                other => Ok(other),
            },
            2 => Ok(SourceItem::Event {
                epoch: self.epoch.clone(),
                position: 3,
                event: switchyard_protocol::WorkerEvent::Interrupted.into(),
            }),
            _ => std::future::pending().await,
        }
    }
}

/// A stream that passes `inner`'s items until `until`, then ends as unreachable,
/// noting when in `broke_at`.
struct BreakAt {
    inner: Box<dyn SourceEvents>,
    until: tokio::time::Instant,
    broke_at: Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>,
}

#[async_trait::async_trait]
impl SourceEvents for BreakAt {
    async fn next(&mut self) -> Result<SourceItem, SourceEnd> {
        tokio::select! {
            item = self.inner.next() => item,
            () = tokio::time::sleep_until(self.until) => {
                self.broke_at.lock().unwrap().push(tokio::time::Instant::now());
                Err(SourceEnd::Lost(SourceError::Unreachable))
            }
        }
    }
}

/// A stream that ends as a protocol error after `left` more items.
struct BreakAfter {
    inner: Box<dyn SourceEvents>,
    left: usize,
}

#[async_trait::async_trait]
impl SourceEvents for BreakAfter {
    async fn next(&mut self) -> Result<SourceItem, SourceEnd> {
        if self.left == 0 {
            return Err(SourceEnd::Lost(SourceError::Protocol(
                "a frame this backend cannot read".into(),
            )));
        }
        // Counted once it has come: the hub drops a `next` that loses a race
        // (cancel safety), and a count taken before would be lost with it.
        let item = self.inner.next().await;
        self.left -= 1;
        item
    }
}

/// How a [`Probe`] source was used.
#[derive(Default)]
pub struct Uses {
    pub info: AtomicUsize,
    pub subscribe: AtomicUsize,
    /// When each subscription was made (tokio's clock).
    pub subscribed_at: Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>,
    /// The position each subscription asked to resume after, if any.
    pub resumed_after: std::sync::Mutex<Vec<Option<u64>>>,
    /// When each [`Subscriptions::BreakAfterHealthy`] stream broke.
    pub broke_at: Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>,
}

/// An embedded runtime seen through a source that counts its calls, can hold `input`
/// until released, and can run a hook inside `get_worker` (to reconfigure at the
/// worst moment).
pub struct Probe {
    pub inner: EmbeddedSource,
    pub uses: Arc<Uses>,
    pub gate: Option<Arc<Notify>>,
    pub on_get_worker: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// What a subscription gets.
    pub events: Subscriptions,
    /// While set, every subscription fails as unreachable, whatever `events` says.
    pub events_down: Arc<std::sync::atomic::AtomicBool>,
    /// This many inputs are refused as `worker_busy` (as a remote runtime whose
    /// input queue is full answers) before inputs are passed on.
    pub busy_inputs: Arc<AtomicUsize>,
}

impl Probe {
    pub fn new(runtime: &Runtime) -> Self {
        Self {
            inner: EmbeddedSource::new(runtime.clone()),
            uses: Arc::default(),
            gate: None,
            on_get_worker: OnceLock::new(),
            events: Subscriptions::Up,
            events_down: Arc::default(),
            busy_inputs: Arc::default(),
        }
    }

    pub fn gated(runtime: &Runtime, gate: Arc<Notify>) -> Self {
        Self {
            gate: Some(gate),
            ..Self::new(runtime)
        }
    }
}

#[async_trait::async_trait]
impl RuntimeSource for Probe {
    fn kind(&self) -> RuntimeSourceKind {
        RuntimeSourceKind::Embedded
    }
    async fn info(&self) -> Result<RuntimeInfo, SourceError> {
        self.uses.info.fetch_add(1, Ordering::SeqCst);
        self.inner.info().await
    }
    async fn list_workers(&self, query: &WorkerQuery) -> Result<WorkerList, SourceError> {
        self.inner.list_workers(query).await
    }
    async fn create_worker(
        &self,
        request: &CreateWorkerRequest,
    ) -> Result<WorkerDetail, SourceError> {
        self.inner.create_worker(request).await
    }
    async fn get_worker(&self, worker: &WorkerId) -> Result<WorkerDetail, SourceError> {
        let answer = self.inner.get_worker(worker).await;
        if let Some(hook) = self.on_get_worker.get() {
            hook();
        }
        answer
    }
    async fn input(&self, worker: &WorkerId, text: String) -> Result<InputAccepted, SourceError> {
        if let Some(gate) = &self.gate {
            gate.notified().await;
        }
        let busy = self
            .busy_inputs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if busy.is_ok() {
            return Err(SourceError::Rejected(
                ErrorDetail::new(ErrorCode::WorkerBusy, "the worker's input queue is full")
                    .with_retry_after_ms(10),
            ));
        }
        self.inner.input(worker, text).await
    }
    async fn resize(
        &self,
        worker: &WorkerId,
        size: ResizeRequest,
    ) -> Result<ResizeResponse, SourceError> {
        self.inner.resize(worker, size).await
    }
    async fn cancel(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
        self.inner.cancel(worker).await
    }
    async fn stop(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
        self.inner.stop(worker).await
    }
    async fn delete(&self, worker: &WorkerId) -> Result<(), SourceError> {
        self.inner.delete(worker).await
    }
    async fn transcript(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<TranscriptPage, SourceError> {
        self.inner.transcript(worker, after, limit).await
    }
    async fn subscribe(
        &self,
        worker: &WorkerId,
        resume: Option<&ResumePoint>,
    ) -> Result<Box<dyn SourceEvents>, SourceError> {
        let earlier = self.uses.subscribe.fetch_add(1, Ordering::SeqCst);
        self.uses
            .subscribed_at
            .lock()
            .unwrap()
            .push(tokio::time::Instant::now());
        self.uses
            .resumed_after
            .lock()
            .unwrap()
            .push(resume.map(|point| point.position));
        if self.events_down.load(Ordering::SeqCst) {
            return Err(SourceError::Unreachable);
        }
        match self.events {
            Subscriptions::Up => self.inner.subscribe(worker, resume).await,
            Subscriptions::Down => Err(SourceError::Unreachable),
            Subscriptions::AuthRejected => Err(SourceError::AuthFailed),
            Subscriptions::CursorRefused => Err(SourceError::Rejected(ErrorDetail::new(
                ErrorCode::InvalidCursor,
                "the runtime refuses every subscription as an invalid cursor",
            ))),
            Subscriptions::BreakAfterFirst => Ok(Box::new(BreakAfter {
                inner: self.inner.subscribe(worker, resume).await?,
                left: 1,
            })),
            Subscriptions::FirstOnly(items) if earlier == 0 => Ok(Box::new(BreakAfter {
                inner: self.inner.subscribe(worker, resume).await?,
                left: items,
            })),
            Subscriptions::FirstOnly(_) => Err(SourceError::Unreachable),
            Subscriptions::GapAfterSnapshot => Ok(Box::new(Gapped {
                inner: self.inner.subscribe(worker, None).await?,
                epoch: format!("lying-{earlier}").into(),
                given: 0,
            })),
            Subscriptions::BreakAfterHealthy(healthy) => Ok(Box::new(BreakAt {
                inner: self.inner.subscribe(worker, resume).await?,
                until: tokio::time::Instant::now() + healthy,
                broke_at: self.uses.broke_at.clone(),
            })),
        }
    }
}

/// A new echo worker on `runtime`.
pub async fn echo_worker(runtime: &Runtime) -> WorkerId {
    runtime
        .create(CreateWorkerRequest {
            profile: "echo".into(),
            label: None,
            owner: None,
        })
        .await
        .unwrap()
        .worker_id
}
