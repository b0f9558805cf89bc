//! [`RuntimeSource`]: what a kind of runtime implements to join the registry.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use switchyard_protocol::{
    CreateWorkerRequest, EventPayload, InputAccepted, ResetReason, ResizeRequest, ResizeResponse,
    RuntimeId, RuntimeInfo, RuntimeSourceKind, TranscriptPage, WorkerDetail, WorkerId, WorkerList,
    WorkerStatusResponse,
};
use switchyard_transport::WorkerQuery;

use crate::error::SourceError;

/// Told the id and owner of every worker an answer names, in order (the registry
/// remembers owners and checks who may see what from it).
pub type SeenWorkers<'a> = &'a mut (dyn FnMut(&str, Option<&str>) + Send);

/// Where to resume a worker's event stream: a position in one runtime epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    /// The runtime epoch.
    pub epoch: Arc<str>,
    /// The last position seen.
    pub position: u64,
}

/// One item of a source's event stream.
///
/// Items may be added (`#[non_exhaustive]`): a source that wraps another passes an
/// item it does not handle itself on as it is, so a match needs a wildcard arm.
///
/// ```compile_fail
/// use switchyard_registry::SourceItem;
///
/// fn describe(item: &SourceItem) -> &'static str {
///     match item {
///         SourceItem::Event { .. } => "event",
///         SourceItem::Reset(_) => "reset",
///     }
/// }
/// ```
///
/// ```
/// use switchyard_registry::SourceItem;
///
/// /// A wrapper's pass-through: relabel events, hand on everything else.
/// fn relabel(item: SourceItem, epoch: &std::sync::Arc<str>) -> SourceItem {
///     match item {
///         SourceItem::Event { position, event, .. } => {
///             SourceItem::Event { epoch: epoch.clone(), position, event }
///         }
///         other => other,
///     }
/// }
/// # let _ = relabel;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SourceItem {
    /// An event at a position of a runtime epoch.
    Event {
        /// The runtime epoch.
        epoch: Arc<str>,
        /// Its position in the worker's log.
        position: u64,
        /// The event (decoded, or as the JSON a remote sent).
        event: EventPayload,
    },
    /// The runtime could not resume; a snapshot follows.
    Reset(ResetReason),
}

/// How a source's event stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceEnd {
    /// The worker is gone for good.
    WorkerGone,
    /// The stream broke (runtime shutting down, connection lost, cut off as too
    /// slow, malformed frame); resubscribing may work.
    Lost(SourceError),
}

/// An open event stream of one worker.
#[async_trait::async_trait]
pub trait SourceEvents: Send + 'static {
    /// The next item, or how the stream ended. Do not call again after an end.
    async fn next(&mut self) -> Result<SourceItem, SourceEnd>;
}

/// One runtime as the registry drives it. Implement this to add a kind of runtime
/// (the registry never knows how a source reaches its runtime). Implementations use
/// `#[switchyard_registry::async_trait]` on their `impl`.
///
/// Every method is one call to the runtime; the registry has asked the policy
/// before it calls, bounds it in time, records its outcome in the runtime's view,
/// and maps its error for the client. What a source promises in return:
/// - worker ids it mints are valid [`WorkerId`]s, stable for the worker's life;
///   [`RuntimeSource::list_workers`] answers pages in worker id order and honours
///   the query's `after`, `limit` and `status`;
/// - a refusal with a contract code is [`SourceError::Rejected`], shown to the
///   client as it is, so its message holds no address, path or token;
/// - [`RuntimeSource::subscribe`] starts with a snapshot (resuming: the events
///   after the resume point, then a fresh snapshot, as [`EmbeddedSource`] and
///   [`RemoteSource`] do; or a [`SourceItem::Reset`] then a snapshot when it no
///   longer has them or the runtime's epoch changed); positions only grow within
///   an epoch;
///
/// [`EmbeddedSource`]: crate::EmbeddedSource
/// [`RemoteSource`]: crate::RemoteSource
/// - a query without a `limit` gets the source's own default page; the registry
///   pages through every worker (`GET /api/workers`) with pages of
///   `limits.transcript_page_max` from [`RuntimeSource::info`], so that number is
///   a page size the source can answer;
/// - a worker that ends stays subscribable (its stream goes quiet after the
///   ending's events) until it is deleted, when the stream ends with
///   [`SourceEnd::WorkerGone`];
/// - [`RuntimeSource::kind`] only tells people what the runtime is: in-process
///   (`Embedded`) or reached over a network (`Remote`);
/// - a source that wraps another forwards the methods with defaults too (the
///   `*_json` answers, [`RuntimeSource::bounds_each_call`],
///   [`RuntimeSource::shutdown`]), or it loses what the inner source does there.
#[async_trait::async_trait]
pub trait RuntimeSource: Send + Sync + 'static {
    /// Embedded or remote, as `GET /api/runtimes` shows it.
    fn kind(&self) -> RuntimeSourceKind;
    /// True when every call of this source ends within deadlines of its own (a
    /// network client with connect and request timeouts): the registry then
    /// applies its backstop ([`crate::RegisteredRuntime::call_timeout`]) only to
    /// what spans several calls (paging through every worker), saving a timer
    /// per call. False by default: every call is bounded by the backstop.
    fn bounds_each_call(&self) -> bool {
        false
    }
    /// The runtime's self-description.
    async fn info(&self) -> Result<RuntimeInfo, SourceError>;
    /// A page of workers.
    async fn list_workers(&self, query: &WorkerQuery) -> Result<WorkerList, SourceError>;
    /// Starts a worker.
    async fn create_worker(
        &self,
        request: &CreateWorkerRequest,
    ) -> Result<WorkerDetail, SourceError>;
    /// One worker's detail.
    async fn get_worker(&self, worker: &WorkerId) -> Result<WorkerDetail, SourceError>;
    /// Sends input.
    async fn input(&self, worker: &WorkerId, text: String) -> Result<InputAccepted, SourceError>;
    /// Resizes a terminal worker.
    async fn resize(
        &self,
        worker: &WorkerId,
        size: ResizeRequest,
    ) -> Result<ResizeResponse, SourceError>;
    /// Interrupts in-flight work.
    async fn cancel(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError>;
    /// Ends the worker.
    async fn stop(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError>;
    /// Removes an ended worker.
    async fn delete(&self, worker: &WorkerId) -> Result<(), SourceError>;
    /// A transcript page.
    async fn transcript(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<TranscriptPage, SourceError>;
    // Answers as a backend client receives them: the JSON bytes to send, worker
    // details labelled with the backend's id for the runtime, `as_runtime`. The
    // defaults encode the typed answers; a source that receives JSON (a remote) may
    // pass the runtime's bytes on instead, where that is provably the same answer.

    /// [`RuntimeSource::list_workers`] as JSON; `seen` is told each worker.
    async fn list_workers_json(
        &self,
        as_runtime: &RuntimeId,
        query: &WorkerQuery,
        seen: SeenWorkers<'_>,
    ) -> Result<Bytes, SourceError> {
        labelled_list(self.list_workers(query).await?, as_runtime, seen)
    }

    /// [`RuntimeSource::get_worker`] as JSON; `seen` is told the worker.
    async fn get_worker_json(
        &self,
        as_runtime: &RuntimeId,
        worker: &WorkerId,
        seen: SeenWorkers<'_>,
    ) -> Result<Bytes, SourceError> {
        labelled_detail(self.get_worker(worker).await?, as_runtime, seen)
    }

    /// [`RuntimeSource::input`] as JSON.
    async fn input_json(&self, worker: &WorkerId, text: String) -> Result<Bytes, SourceError> {
        encode(&self.input(worker, text).await?)
    }

    /// Subscribes to a worker's events: from `resume` (missed events, then a fresh
    /// snapshot, then live; or reset then snapshot when the runtime cannot resume), or
    /// without it (snapshot, then live).
    async fn subscribe(
        &self,
        worker: &WorkerId,
        resume: Option<&ResumePoint>,
    ) -> Result<Box<dyn SourceEvents>, SourceError>;

    /// The backend is shutting down: a source that runs workers itself stops them
    /// and flushes what it keeps. Called once, after the backend stopped accepting
    /// requests; calls may still arrive from work in flight and may fail. The default
    /// does nothing (right for a source whose runtime lives elsewhere).
    async fn shutdown(&self) {}
}

/// `list` as a backend client receives it: each worker told to `seen` and
/// labelled with the backend's id for the runtime, `as_runtime`; encoded.
pub(crate) fn labelled_list(
    mut list: WorkerList,
    as_runtime: &RuntimeId,
    seen: SeenWorkers<'_>,
) -> Result<Bytes, SourceError> {
    for worker in &mut list.workers {
        seen(worker.worker_id.as_str(), worker.owner.as_deref());
        worker.runtime_id = as_runtime.clone();
    }
    encode(&list)
}

/// [`labelled_list`] for one worker's detail.
pub(crate) fn labelled_detail(
    mut detail: WorkerDetail,
    as_runtime: &RuntimeId,
    seen: SeenWorkers<'_>,
) -> Result<Bytes, SourceError> {
    seen(detail.worker_id.as_str(), detail.owner.as_deref());
    detail.runtime_id = as_runtime.clone();
    encode(&detail)
}

/// `value` as the JSON a backend answers with.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Bytes, SourceError> {
    serde_json::to_vec(value).map(Bytes::from).map_err(|error| {
        tracing::error!(%error, "could not encode an answer");
        SourceError::Internal
    })
}
