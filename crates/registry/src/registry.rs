//! [`RuntimeRegistry`]: the table of runtimes, routing by `runtime_id + worker_id`,
//! the policy check before every call, and the views kept fresh by call outcomes and
//! background health probes.

use foldhash::{HashMap, HashMapExt};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus_client::encoding::DescriptorEncoder;
use switchyard_protocol::{
    AllWorkersList, BackendRuntime, ErrorCode, ErrorDetail, InputAccepted, NewWorkerRequest,
    ResizeRequest, ResizeResponse, RuntimeId, RuntimeInfo, RuntimeState, TranscriptPage,
    UnavailableEntry, WorkerCounts, WorkerDetail, WorkerId, WorkerList, WorkerStatusResponse,
};
use switchyard_runtime::{DEFAULT_PAGE_LIMIT, RuntimeError};
use switchyard_transport::WorkerQuery;
use tokio::task::JoinHandle;

use crate::caller::Caller;
use crate::error::{RegistryError, SourceError};
use crate::metrics::{
    Call, CallMetrics, RUNTIME_STATES, RuntimeCalls, ScrapeTime, WORKER_STATUSES, encode_gauges,
    state_label, status_label,
};
use crate::owners::OwnerCache;
use crate::policy::{Action, Policy, PolicyRequest};
use crate::source::{RuntimeSource, encode};
use crate::view::{RuntimeView, SharedView};

/// Most workers `GET /api/workers` collects from one runtime (of those the caller
/// reaches: a caller the policy scopes gets up to this many of its own, however
/// many others come first).
pub const LIST_ALL_MAX_PER_RUNTIME: usize = 10_000;

/// Most workers `GET /api/workers` reads from one runtime for a caller the policy
/// scopes, its own and others together, so that one listing (a call per page, all
/// within the runtime's one timeout) stays bounded.
pub const LIST_ALL_MAX_SCANNED_PER_RUNTIME: usize = 20_000;

/// Most workers one page of a filtered listing scans before it answers with what it
/// found and a `next` to continue from.
pub const LIST_SCAN_BUDGET: usize = 10_000;

/// One runtime to register.
///
/// Settings may be added, so build one with [`RegisteredRuntime::new`] and its
/// `with_`/`without_` setters (or set fields):
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use switchyard_protocol::RuntimeId;
/// use switchyard_registry::{EmbeddedSource, RegisteredRuntime};
/// use switchyard_runtime::{Runtime, RuntimeConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let id = RuntimeId::new("jobs").unwrap();
/// let runtime = Runtime::in_memory(RuntimeConfig::new(id.clone(), "Jobs")).await;
/// let registered = RegisteredRuntime::new(id, "Jobs", Arc::new(EmbeddedSource::new(runtime)))
///     .with_call_timeout(Duration::from_secs(10));
/// assert_eq!(registered.call_timeout, Some(Duration::from_secs(10)));
/// # }
/// ```
///
/// A struct literal does not compile:
///
/// ```compile_fail
/// use std::sync::Arc;
/// use switchyard_protocol::RuntimeId;
/// use switchyard_registry::{EmbeddedSource, RegisteredRuntime};
/// use switchyard_runtime::{Runtime, RuntimeConfig};
///
/// # async fn build() {
/// let id = RuntimeId::new("jobs").unwrap();
/// let runtime = Runtime::in_memory(RuntimeConfig::new(id.clone(), "Jobs")).await;
/// let registered = RegisteredRuntime {
///     runtime_id: id,
///     display_name: "Jobs".into(),
///     source: Arc::new(EmbeddedSource::new(runtime)),
///     call_timeout: None,
/// };
/// # }
/// ```
#[non_exhaustive]
pub struct RegisteredRuntime {
    /// Its id in the backend.
    pub runtime_id: RuntimeId,
    /// A name for people.
    pub display_name: String,
    /// How to reach it.
    pub source: Arc<dyn RuntimeSource>,
    /// Upper bound on any one call, beyond the source's own timeouts (for a
    /// source that [bounds each call](RuntimeSource::bounds_each_call), only on
    /// what spans several: paging through every worker); `None` for sources that
    /// cannot hang (embedded).
    pub call_timeout: Option<Duration>,
}

/// The backstop [`RegisteredRuntime::new`] puts on every call to a runtime.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl RegisteredRuntime {
    /// A runtime reached through `source`, every call bounded by
    /// [`DEFAULT_CALL_TIMEOUT`] (one that takes longer fails as `runtime_timeout`),
    /// so that a source that hangs cannot hold up a caller, nor `GET /api/workers`,
    /// which asks every runtime. Change it with
    /// [`RegisteredRuntime::with_call_timeout`]; a source that can never hang (an
    /// in-process one whose calls never wait long) may drop it with
    /// [`RegisteredRuntime::without_call_timeout`]. A source that
    /// [bounds each call](RuntimeSource::bounds_each_call) itself gets the backstop
    /// only on what spans several calls.
    pub fn new(
        runtime_id: RuntimeId,
        display_name: impl Into<String>,
        source: Arc<dyn RuntimeSource>,
    ) -> Self {
        Self {
            runtime_id,
            display_name: display_name.into(),
            source,
            call_timeout: Some(DEFAULT_CALL_TIMEOUT),
        }
    }

    /// No backstop: every call waits for the source, however long it takes.
    pub fn without_call_timeout(mut self) -> Self {
        self.call_timeout = None;
        self
    }

    /// Bounds every call to the runtime: one that takes longer fails as
    /// `runtime_timeout`. Set it for a source that can hang (one that reaches
    /// another system over the network).
    pub fn with_call_timeout(mut self, limit: Duration) -> Self {
        self.call_timeout = Some(limit);
        self
    }
}

impl std::fmt::Debug for RegisteredRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredRuntime")
            .field("runtime_id", &self.runtime_id)
            .field("display_name", &self.display_name)
            .field("source", &self.source.kind())
            .field("call_timeout", &self.call_timeout)
            .finish()
    }
}

/// One registered runtime: its source, the view of its health, the owners seen, its
/// call metrics and its health probe. A reconfiguration keeps an unchanged runtime's
/// entry as it is and drops the others'; calls in flight hold their entry until
/// they end.
pub(crate) struct Entry {
    pub(crate) runtime: RegisteredRuntime,
    view: SharedView,
    owners: OwnerCache,
    calls: RuntimeCalls,
    probe: Mutex<Option<JoinHandle<()>>>,
    /// Set while the runtime's last call failed with its own `500 internal` (see
    /// [`Entry::note_internal`]).
    internal_failing: AtomicBool,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.stop_probe();
    }
}

impl Entry {
    pub(crate) fn new(runtime: RegisteredRuntime, calls: &CallMetrics) -> Self {
        Self {
            calls: calls.for_runtime(runtime.runtime_id.as_str()),
            view: SharedView::new(runtime.runtime_id.as_str()),
            runtime,
            owners: OwnerCache::default(),
            internal_failing: AtomicBool::new(false),
            probe: Mutex::new(None),
        }
    }

    pub(crate) fn id(&self) -> &RuntimeId {
        &self.runtime.runtime_id
    }

    /// Starts (or restarts) the background probe: every `interval` while the runtime
    /// is up, backing off (doubling, with jitter, up to 8 × `interval`) while it is
    /// down. The task holds the entry weakly: it ends with the entry.
    pub(crate) fn start_probe(self: &Arc<Self>, interval: Duration) {
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut delay = interval;
            loop {
                let jitter = delay.mul_f64(fastrand::f64() * 0.2);
                tokio::time::sleep(delay + jitter).await;
                let Some(entry) = weak.upgrade() else { return };
                let _ = entry.refresh().await;
                delay = if entry.view.read(RuntimeView::is_down) {
                    (delay * 2).min(interval * 8)
                } else {
                    interval
                };
            }
        });
        let previous = self
            .probe
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(task);
        if let Some(previous) = previous {
            previous.abort();
        }
    }

    /// Stops the background probe, if one runs.
    pub(crate) fn stop_probe(&self) {
        if let Some(probe) = self.probe.lock().unwrap_or_else(|p| p.into_inner()).take() {
            probe.abort();
        }
    }

    /// Runs one call to the runtime, bounded by the backstop timeout unless the
    /// source bounds each call itself, and counts it (its kind, outcome and
    /// latency) in the metrics: every call to a runtime passes here or through
    /// [`Entry::bounded_as_a_whole`].
    async fn bounded<T>(
        &self,
        kind: Call,
        call: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        let backstop = self.runtime.call_timeout;
        let backstop = backstop.filter(|_| !self.runtime.source.bounds_each_call());
        self.within(backstop, kind, call).await
    }

    /// Runs what spans several calls to the runtime (paging through every worker)
    /// bounded by the backstop timeout as a whole, and counts it like one call.
    async fn bounded_as_a_whole<T>(
        &self,
        kind: Call,
        calls: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        self.within(self.runtime.call_timeout, kind, calls).await
    }

    async fn within<T>(
        &self,
        backstop: Option<Duration>,
        kind: Call,
        call: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        let started = Instant::now();
        let outcome = match backstop {
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .unwrap_or(Err(SourceError::Timeout)),
            None => call.await,
        };
        self.calls.record(
            kind,
            started.elapsed(),
            outcome.as_ref().err().map(SourceError::code),
        );
        self.note_internal(kind, outcome.as_ref().err());
        outcome
    }

    /// A runtime's `500 internal` goes to the log naming the runtime, the call and
    /// the runtime's own message (with its request id): at ERROR when it starts, at
    /// DEBUG while it repeats (every probe and call would log it again), so that a
    /// broken runtime cannot crowd out the rest of the log. The client gets only
    /// `internal` and the backend's request id.
    fn note_internal(&self, kind: Call, error: Option<&SourceError>) {
        match error {
            Some(SourceError::RuntimeInternal(message)) => {
                if self.internal_failing.swap(true, Ordering::Relaxed) {
                    tracing::debug!(runtime_id = %self.id(), call = kind.as_str(), runtime_message = %message, "the runtime failed a call with an internal error again");
                } else {
                    tracing::error!(runtime_id = %self.id(), call = kind.as_str(), runtime_message = %message, "the runtime failed a call with an internal error; its own log says why (see its request id in runtime_message)");
                }
            }
            // Only a change is written: the flag's cache line stays shared while
            // calls succeed.
            None if self.internal_failing.load(Ordering::Relaxed) => {
                self.internal_failing.store(false, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    fn record<T>(&self, outcome: &Result<T, SourceError>) {
        match outcome {
            Ok(_) => self.view.record_answer(),
            Err(error) => self.view.update(|view| view.record_failure(error)),
        }
    }

    pub(crate) async fn refresh(&self) -> Result<RuntimeInfo, SourceError> {
        match self.bounded(Call::Info, self.runtime.source.info()).await {
            Ok(info) => {
                self.view.record_info(&info);
                Ok(info)
            }
            Err(error) => {
                let (error, wrong) = describing_itself_failed(error);
                self.view
                    .update(|view| view.record_description_failure(&error, wrong));
                Err(error)
            }
        }
    }

    /// The view as `caller` may see it: a caller who reaches only its own workers
    /// sees its own worker counts, not everyone's.
    fn backend_view(&self, own_counts: Option<&str>) -> BackendRuntime {
        let mut view = self.view.snapshot();
        if let Some(owner) = own_counts {
            view.workers = view.owners.get(owner).copied().unwrap_or_default();
        }
        BackendRuntime {
            runtime_id: self.id().clone(),
            display_name: self.runtime.display_name.clone(),
            source: self.runtime.source.kind(),
            state: view.state,
            last_seen: view.last_seen.map(switchyard_runtime::clock::format),
            last_error: view.last_error,
            capabilities: view.capabilities,
            profiles: view.profiles,
            workers: view.workers,
        }
    }
}

/// A configured runtime id appears twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("runtime id {0} is configured twice")]
pub struct DuplicateRuntimeId(pub RuntimeId);

/// The runtimes in force: in configuration order, and by id. Replaced as a whole
/// by a reconfiguration, so that a call sees one consistent table.
#[derive(Default)]
pub(crate) struct Table {
    pub(crate) entries: Vec<Arc<Entry>>,
    /// Looked up by every call; foldhash, not SipHash (the ids are the operator's).
    by_id: HashMap<RuntimeId, Arc<Entry>>,
}

impl Table {
    /// A table of `entries` in that order; refuses a repeated id.
    pub(crate) fn new(entries: Vec<Arc<Entry>>) -> Result<Self, DuplicateRuntimeId> {
        let mut by_id = HashMap::with_capacity(entries.len());
        for entry in &entries {
            if by_id.insert(entry.id().clone(), entry.clone()).is_some() {
                return Err(DuplicateRuntimeId(entry.id().clone()));
            }
        }
        Ok(Self { entries, by_id })
    }

    pub(crate) fn get(&self, runtime_id: &RuntimeId) -> Option<&Arc<Entry>> {
        self.by_id.get(runtime_id)
    }
}

/// The registry. Share it behind an `Arc`.
///
/// Its table of runtimes and its policy can be replaced while it serves
/// ([`RuntimeRegistry::reconfigure`], [`RuntimeRegistry::set_policy`]): each call
/// reads the table once, at its start, and keeps the runtime's entry (and source)
/// it found until it ends, so a call in flight to a removed runtime finishes (or
/// fails with a typed error) on the runtime it started on.
pub struct RuntimeRegistry {
    pub(crate) table: RwLock<Arc<Table>>,
    policy: RwLock<Arc<dyn Policy>>,
    /// The health probes' interval, once started: new runtimes get a probe too.
    pub(crate) probe_interval: Mutex<Option<Duration>>,
    pub(crate) calls: CallMetrics,
}

impl std::fmt::Debug for RuntimeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.table().entries.iter().map(|e| &e.runtime))
            .finish()
    }
}

impl Drop for RuntimeRegistry {
    fn drop(&mut self) {
        for entry in &self.table().entries {
            entry.stop_probe();
        }
    }
}

impl RuntimeRegistry {
    /// A registry of `runtimes`, in the given order, consulting `policy`.
    pub fn new(
        runtimes: Vec<RegisteredRuntime>,
        policy: Arc<dyn Policy>,
    ) -> Result<Self, DuplicateRuntimeId> {
        let calls = CallMetrics::default();
        let entries = runtimes
            .into_iter()
            .map(|runtime| Arc::new(Entry::new(runtime, &calls)))
            .collect();
        Ok(Self {
            table: RwLock::new(Arc::new(Table::new(entries)?)),
            policy: RwLock::new(policy),
            probe_interval: Mutex::new(None),
            calls,
        })
    }

    /// The table in force.
    pub(crate) fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<dyn Policy> {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `policy` in force for every call that starts from now on (a reload that
    /// turns authentication on or off). Viewers already watching keep the policy
    /// they were admitted under for filtering their events.
    pub fn set_policy(&self, policy: Arc<dyn Policy>) {
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = policy;
    }

    /// The source of a runtime, for the observation hub.
    pub fn source(&self, runtime_id: &RuntimeId) -> Result<Arc<dyn RuntimeSource>, RegistryError> {
        Ok(self.entry(runtime_id)?.runtime.source.clone())
    }

    /// Refreshes one runtime's view now (its source changed: a reload reconfigured
    /// it, say), rather than at its next probe.
    pub async fn refresh(&self, runtime_id: &RuntimeId) -> Result<(), RegistryError> {
        let entry = self.entry(runtime_id)?;
        let _ = entry.refresh().await;
        Ok(())
    }

    /// Refreshes every runtime's view once, concurrently.
    pub async fn refresh_all(&self) {
        let table = self.table();
        futures_util::future::join_all(table.entries.iter().map(|e| e.refresh())).await;
    }

    /// Starts one background probe per runtime: every `interval` while it is up, and
    /// backing off (doubling, with jitter, up to 8 × `interval`) while it is down.
    /// Runtimes added later by [`RuntimeRegistry::reconfigure`] get one too; calling
    /// it again restarts every probe with the new interval.
    pub fn start_health_probes(&self, interval: Duration) {
        *self
            .probe_interval
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(interval);
        for entry in &self.table().entries {
            entry.start_probe(interval);
        }
    }

    /// `GET /api/runtimes`: every runtime the policy lets the caller see, as last seen.
    pub fn runtimes(&self, caller: &Caller) -> Vec<BackendRuntime> {
        self.table()
            .entries
            .iter()
            .filter(|e| {
                self.authorize(caller, e.id(), None, Action::ViewRuntime)
                    .is_ok()
            })
            .map(|e| e.backend_view(self.own_counts(caller)))
            .collect()
    }

    /// The owner whose counts `caller` sees instead of everyone's, if it is scoped to
    /// its own workers.
    fn own_counts<'c>(&self, caller: &'c Caller) -> Option<&'c str> {
        if self.policy().scopes_workers(caller) {
            Some(caller.owner_name().unwrap_or(""))
        } else {
            None
        }
    }

    /// The owner of a worker as far as the registry knows (`Some(None)`: it has none),
    /// for audit lines; no call is made.
    pub fn known_owner(&self, runtime_id: &RuntimeId, worker: &WorkerId) -> Option<Option<String>> {
        let owner = self.table().get(runtime_id)?.owners.get(worker)?;
        Some(owner.map(|o| o.to_string()))
    }

    /// `GET /api/runtimes/{id}`: refreshed now; on failure, the cached view with its
    /// state and last error.
    pub async fn runtime(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
    ) -> Result<BackendRuntime, RegistryError> {
        self.authorize(caller, runtime_id, None, Action::ViewRuntime)?;
        let entry = self.entry(runtime_id)?;
        let _ = entry.refresh().await;
        Ok(entry.backend_view(self.own_counts(caller)))
    }

    /// `GET /api/workers`: every runtime asked concurrently, each bounded by its own
    /// timeout; those that fail are listed under `unavailable`. Runtimes the caller
    /// may not list are left out altogether (not reported as unavailable).
    pub async fn list_all(&self, caller: &Caller, query: &WorkerQuery) -> AllWorkersList {
        let table = self.table();
        let visible: Vec<&Arc<Entry>> = table
            .entries
            .iter()
            .filter(|e| {
                self.authorize(caller, e.id(), None, Action::ListWorkers)
                    .is_ok()
            })
            .collect();
        let scoped = self.policy().scopes_workers(caller);
        let listings = visible.iter().map(|entry| async move {
            // A scoped caller's workers are picked out page by page, so that the
            // cap counts what it may see, not what comes first.
            let reaches = |w: &WorkerDetail| !scoped || self.reaches(caller, entry, w);
            let outcome = entry
                .bounded_as_a_whole(
                    Call::ListWorkers,
                    collect_all(
                        entry.runtime.source.as_ref(),
                        query,
                        entry.view.read(|view| view.page_max),
                        reaches,
                    ),
                )
                .await;
            entry.record(&outcome);
            outcome.map_err(|error| RegistryError::Source {
                runtime_id: entry.id().clone(),
                error,
            })
        });
        let mut all = AllWorkersList {
            workers: Vec::new(),
            unavailable: Vec::new(),
            truncated: Vec::new(),
        };
        for (entry, outcome) in visible
            .iter()
            .zip(futures_util::future::join_all(listings).await)
        {
            match outcome {
                Ok(Collected { workers, more }) => {
                    if more {
                        all.truncated.push(entry.id().clone());
                    }
                    all.workers.extend(
                        workers
                            .into_iter()
                            // Picked out already for a scoped caller; the policy is
                            // asked here for the others (and remembers every owner).
                            .filter(|w| scoped || self.reaches(caller, entry, w))
                            .map(|w| owned_by(w, entry.id())),
                    )
                }
                Err(error) => all.unavailable.push(UnavailableEntry {
                    runtime_id: entry.id().clone(),
                    error: error.to_detail(),
                }),
            }
        }
        all
    }

    /// `GET /api/runtimes/{id}/workers`.
    pub async fn list_workers(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        query: &WorkerQuery,
    ) -> Result<WorkerList, RegistryError> {
        self.authorize(caller, runtime_id, None, Action::ListWorkers)?;
        let entry = self.entry(runtime_id)?;
        let entry = &entry;
        let outcome = if self.policy().scopes_workers(caller) {
            self.visible_page(caller, entry, query).await
        } else {
            entry
                .bounded(Call::ListWorkers, entry.runtime.source.list_workers(query))
                .await
                .inspect(|list| {
                    for worker in &list.workers {
                        entry.owners.remember(worker);
                    }
                })
        };
        entry.record(&outcome);
        let mut list = outcome.map_err(|error| RegistryError::Source {
            runtime_id: runtime_id.clone(),
            error,
        })?;
        list.workers = list
            .workers
            .into_iter()
            .map(|w| owned_by(w, runtime_id))
            .collect();
        Ok(list)
    }

    /// `GET /api/runtimes/{id}/workers` as the JSON to answer with. For a caller the
    /// policy scopes to some workers, the page is filtered as by
    /// [`RuntimeRegistry::list_workers`]; for any other caller, every worker the
    /// runtime lists is shown, and its answer may be relayed as it came (see
    /// [`RuntimeSource::list_workers_json`]): the same answer, without decoding it.
    pub async fn list_workers_json(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        query: &WorkerQuery,
    ) -> Result<Bytes, RegistryError> {
        if self.policy().scopes_workers(caller) {
            let list = self.list_workers(caller, runtime_id, query).await?;
            return encode(&list).map_err(|error| RegistryError::Source {
                runtime_id: runtime_id.clone(),
                error,
            });
        }
        self.authorize(caller, runtime_id, None, Action::ListWorkers)?;
        let entry = self.entry(runtime_id)?;
        let owners = &entry.owners;
        let outcome = entry
            .bounded(
                Call::ListWorkers,
                entry
                    .runtime
                    .source
                    .list_workers_json(runtime_id, query, &mut |worker, owner| {
                        owners.remember_parts(worker, owner);
                    }),
            )
            .await;
        entry.record(&outcome);
        outcome.map_err(|error| RegistryError::Source {
            runtime_id: runtime_id.clone(),
            error,
        })
    }

    /// One page of the workers `caller` reaches, for a caller the policy scopes:
    /// runtime pages are read from `query.after` on and filtered until the page is
    /// full (`query.limit`, else the runtime's default), the runtime has no more, or
    /// [`LIST_SCAN_BUDGET`] workers were scanned. `next` continues exactly after what
    /// was scanned, so paging never skips or repeats a worker, and a full page says
    /// `next: null` when nothing visible is left in what it read.
    async fn visible_page(
        &self,
        caller: &Caller,
        entry: &Entry,
        query: &WorkerQuery,
    ) -> Result<WorkerList, SourceError> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE_LIMIT) as usize;
        let mut query = query.clone();
        let mut workers = Vec::new();
        let mut scanned = 0;
        loop {
            let page = entry
                .bounded(Call::ListWorkers, entry.runtime.source.list_workers(&query))
                .await?;
            let mut rest = page.workers.into_iter();
            while let Some(worker) = rest.next() {
                scanned += 1;
                if !self.reaches(caller, entry, &worker) {
                    continue;
                }
                workers.push(worker);
                if workers.len() >= limit {
                    let more_here = rest.any(|w| self.reaches(caller, entry, &w));
                    let next = (more_here || page.next.is_some())
                        .then(|| workers.last().map(|w| w.worker_id.clone()))
                        .flatten();
                    return Ok(WorkerList { workers, next });
                }
            }
            match page.next {
                None => {
                    return Ok(WorkerList {
                        workers,
                        next: None,
                    });
                }
                Some(next) if query.after.as_ref().is_some_and(|after| next <= *after) => {
                    return Err(SourceError::Protocol(
                        "its worker list's next page does not advance".into(),
                    ));
                }
                Some(next) if scanned >= LIST_SCAN_BUDGET => {
                    return Ok(WorkerList {
                        workers,
                        next: Some(next),
                    });
                }
                Some(next) => query.after = Some(next),
            }
        }
    }

    /// Remembers `worker`'s owner and asks the policy whether `caller` reaches it.
    fn reaches(&self, caller: &Caller, entry: &Entry, worker: &WorkerDetail) -> bool {
        let owner = entry.owners.remember(worker);
        self.policy()
            .reaches_worker(caller, entry.id(), owner.as_deref())
    }

    /// `POST /api/runtimes/{id}/workers`. The new worker's owner is the caller (none
    /// without auth): the registry decides it, never the request.
    pub async fn create_worker(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        request: &NewWorkerRequest,
    ) -> Result<WorkerDetail, RegistryError> {
        let action = Action::CreateWorker {
            profile: &request.profile,
        };
        let request = request
            .clone()
            .owned_by(caller.owner_name().map(str::to_owned));
        let request = &request;
        let (detail, entry) = self
            .call_on(caller, runtime_id, None, action, |s| async move {
                s.create_worker(request).await
            })
            .await?;
        entry.owners.remember(&detail);
        Ok(owned_by(detail, runtime_id))
    }

    /// `GET /api/runtimes/{id}/workers/{worker_id}`.
    pub async fn get_worker(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker: &WorkerId,
    ) -> Result<WorkerDetail, RegistryError> {
        let (detail, entry) = self
            .call_on(
                caller,
                runtime_id,
                Some(worker),
                Action::ViewWorker,
                |s| async move { s.get_worker(worker).await },
            )
            .await?;
        if !self.reaches(caller, &entry, &detail) {
            return Err(not_found(runtime_id, worker));
        }
        Ok(owned_by(detail, runtime_id))
    }

    /// `GET /api/runtimes/{id}/workers/{worker_id}` as the JSON to answer with: the
    /// same checks and answer as [`RuntimeRegistry::get_worker`], the runtime's
    /// answer possibly relayed as it came (see [`RuntimeSource::get_worker_json`]).
    pub async fn get_worker_json(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker: &WorkerId,
    ) -> Result<Bytes, RegistryError> {
        let entry = self.entry(runtime_id).ok();
        let entry = entry.as_deref();
        let mut owner = None;
        let seen = &mut owner;
        let body = self
            .call(
                caller,
                runtime_id,
                Some(worker),
                Action::ViewWorker,
                |s| async move {
                    s.get_worker_json(runtime_id, worker, &mut |id, o| {
                        *seen = Some(match entry {
                            Some(entry) => entry.owners.remember_parts(id, o),
                            None => o.map(Arc::from),
                        });
                    })
                    .await
                },
            )
            .await?;
        let reached = match owner {
            Some(owner) => self
                .policy()
                .reaches_worker(caller, runtime_id, owner.as_deref()),
            None => false,
        };
        if !reached {
            return Err(not_found(runtime_id, worker));
        }
        Ok(body)
    }

    /// `POST .../input`.
    pub async fn input(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker: &WorkerId,
        text: String,
    ) -> Result<InputAccepted, RegistryError> {
        self.call(
            caller,
            runtime_id,
            Some(worker),
            Action::Input,
            |s| async move { s.input(worker, text).await },
        )
        .await
    }

    /// `POST .../input` answered with the JSON to send (the runtime's, for a remote).
    pub async fn input_json(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker: &WorkerId,
        text: String,
    ) -> Result<Bytes, RegistryError> {
        self.call(
            caller,
            runtime_id,
            Some(worker),
            Action::Input,
            |s| async move { s.input_json(worker, text).await },
        )
        .await
    }

    /// `POST .../resize`: a size out of 1 to 1000 is refused here, without a call.
    pub async fn resize(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker: &WorkerId,
        size: ResizeRequest,
    ) -> Result<ResizeResponse, RegistryError> {
        size.validate()
            .map_err(|m| RegistryError::Invalid(ErrorDetail::new(ErrorCode::InvalidRequest, m)))?;
        self.call(
            caller,
            runtime_id,
            Some(worker),
            Action::Resize,
            |s| async move { s.resize(worker, size).await },
        )
        .await
    }

    /// `POST .../cancel`.
    pub async fn cancel(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker: &WorkerId,
    ) -> Result<WorkerStatusResponse, RegistryError> {
        self.call(
            caller,
            runtime_id,
            Some(worker),
            Action::Cancel,
            |s| async move { s.cancel(worker).await },
        )
        .await
    }

    /// `POST .../stop`.
    pub async fn stop(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker: &WorkerId,
    ) -> Result<WorkerStatusResponse, RegistryError> {
        self.call(
            caller,
            runtime_id,
            Some(worker),
            Action::Stop,
            |s| async move { s.stop(worker).await },
        )
        .await
    }

    /// `DELETE .../workers/{worker_id}`.
    pub async fn delete(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker: &WorkerId,
    ) -> Result<(), RegistryError> {
        self.call(
            caller,
            runtime_id,
            Some(worker),
            Action::Delete,
            |s| async move { s.delete(worker).await },
        )
        .await
    }

    /// `GET .../transcript`.
    pub async fn transcript(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker: &WorkerId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<TranscriptPage, RegistryError> {
        self.call(
            caller,
            runtime_id,
            Some(worker),
            Action::ReadTranscript,
            |s| async move { s.transcript(worker, after, limit).await },
        )
        .await
    }

    /// Checks the policy for `caller` doing `action`.
    pub fn authorize(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker_id: Option<&WorkerId>,
        action: Action<'_>,
    ) -> Result<(), RegistryError> {
        self.policy()
            .authorize(&PolicyRequest {
                caller,
                runtime_id,
                worker_id,
                action,
            })
            .map_err(|denied| RegistryError::Forbidden(denied.0))
    }

    /// Checks the policy for `caller` using an admin route (metrics, reload).
    pub fn authorize_admin(&self, caller: &Caller) -> Result<(), RegistryError> {
        self.policy()
            .authorize_admin(caller)
            .map_err(|denied| RegistryError::Forbidden(denied.0))
    }

    fn entry(&self, runtime_id: &RuntimeId) -> Result<Arc<Entry>, RegistryError> {
        self.table()
            .get(runtime_id)
            .cloned()
            .ok_or_else(|| RegistryError::RuntimeNotFound(runtime_id.clone()))
    }

    /// Asks the policy, looks the runtime up, runs the call bounded in time, records
    /// the outcome in the runtime's view and maps the error. The policy comes first,
    /// so a runtime outside a caller's grants is refused whether or not it exists.
    async fn call<'a, T, F, Fut>(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker_id: Option<&WorkerId>,
        action: Action<'_>,
        call: F,
    ) -> Result<T, RegistryError>
    where
        F: FnOnce(Arc<dyn RuntimeSource>) -> Fut,
        Fut: Future<Output = Result<T, SourceError>> + 'a,
    {
        self.call_on(caller, runtime_id, worker_id, action, call)
            .await
            .map(|(answer, _)| answer)
    }

    /// [`RuntimeRegistry::call`], also giving back the runtime's entry the call ran
    /// on (the one in force when it started).
    async fn call_on<'a, T, F, Fut>(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker_id: Option<&WorkerId>,
        action: Action<'_>,
        call: F,
    ) -> Result<(T, Arc<Entry>), RegistryError>
    where
        F: FnOnce(Arc<dyn RuntimeSource>) -> Fut,
        Fut: Future<Output = Result<T, SourceError>> + 'a,
    {
        self.authorize(caller, runtime_id, worker_id, action)?;
        let entry = self.entry(runtime_id)?;
        let policy = self.policy();
        if let Some(worker) = worker_id
            && action != Action::ViewWorker
            && (policy.scopes_workers(caller) || (action.is_command() && policy.tracks_owners()))
        {
            self.check_reach(caller, &entry, worker).await?;
        }
        let outcome = entry
            .bounded(Call::of(&action), call(entry.runtime.source.clone()))
            .await;
        entry.record(&outcome);
        match outcome {
            Ok(answer) => Ok((answer, entry)),
            Err(error) => Err(RegistryError::Source {
                runtime_id: runtime_id.clone(),
                error,
            }),
        }
    }
}

impl RuntimeRegistry {
    /// Registers the registry's metrics: the upstream-call families, and a collector
    /// that reads each runtime's view (state, worker counts by status) when scraped.
    pub fn register_metrics(self: &Arc<Self>, metrics: &mut prometheus_client::registry::Registry) {
        self.calls.register(metrics);
        metrics.register_collector(Box::new(ScrapeTime {
            source: Arc::downgrade(self),
            encode: Self::encode_views,
        }));
    }

    /// The longest any one call to a registered runtime may take: the largest
    /// [`RegisteredRuntime::call_timeout`], `None` when no runtime bounds its calls.
    /// A backend that shuts down gives the requests in flight this long to be
    /// answered.
    pub fn longest_call(&self) -> Option<Duration> {
        self.table()
            .entries
            .iter()
            .filter_map(|e| e.runtime.call_timeout)
            .max()
    }

    /// The ids of the registered runtimes, in configuration order.
    pub fn runtime_ids(&self) -> Vec<RuntimeId> {
        self.table()
            .entries
            .iter()
            .map(|e| e.id().clone())
            .collect()
    }

    fn encode_views(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let table = self.table();
        let views: Vec<(&str, RuntimeState, WorkerCounts)> = table
            .entries
            .iter()
            .map(|e| {
                let (state, workers) = e.view.read(|view| (view.state, view.workers));
                (e.id().as_str(), state, workers)
            })
            .collect();
        encode_gauges(
            encoder,
            "switchyard_runtime_state",
            "The backend's view of each runtime: 1 for its current state, 0 for the others",
            views.iter().flat_map(|&(id, current, _)| {
                RUNTIME_STATES.into_iter().map(move |state| {
                    (
                        [("runtime_id", id), ("state", state_label(state))],
                        i64::from(state == current),
                    )
                })
            }),
        )?;
        encode_gauges(
            encoder,
            "switchyard_runtime_workers",
            "Workers of each runtime by status, as of the runtime's last self-description (health probe)",
            views.iter().flat_map(|&(id, _, counts)| {
                WORKER_STATUSES.into_iter().map(move |status| {
                    (
                        [("runtime_id", id), ("status", status_label(status))],
                        i64::try_from(counts.get(status)).unwrap_or(i64::MAX),
                    )
                })
            }),
        )
    }
}

impl RuntimeRegistry {
    /// Learns `worker`'s owner (remembered, or asked of the runtime once) and refuses
    /// a worker `caller` does not reach as `worker_not_found`, exactly as the runtime
    /// answers for one that does not exist.
    async fn check_reach(
        &self,
        caller: &Caller,
        entry: &Entry,
        worker: &WorkerId,
    ) -> Result<(), RegistryError> {
        let ask = || async {
            let outcome = entry
                .bounded(Call::GetWorker, entry.runtime.source.get_worker(worker))
                .await;
            entry.record(&outcome);
            outcome.map_err(|error| RegistryError::Source {
                runtime_id: entry.id().clone(),
                error,
            })
        };
        let (owner, remembered) = match entry.owners.get(worker) {
            Some(owner) => (owner, true),
            None => (entry.owners.remember(&ask().await?), false),
        };
        if self
            .policy()
            .reaches_worker(caller, entry.id(), owner.as_deref())
        {
            return Ok(());
        }
        // Not reached. A remembered owner would answer at once, where a worker that
        // does not exist costs a call (failing while the runtime is down or slow):
        // the runtime is asked anyway, so that the answer (and about its time) does
        // not tell another owner's worker from none.
        if remembered {
            ask().await?;
        }
        Err(not_found(entry.id(), worker))
    }
}

/// The answer for a worker that does not exist, or that the caller does not reach.
fn not_found(runtime_id: &RuntimeId, worker: &WorkerId) -> RegistryError {
    RegistryError::Source {
        runtime_id: runtime_id.clone(),
        error: SourceError::from(RuntimeError::WorkerNotFound(worker.clone())),
    }
}

/// The workers of every page of a runtime that `keep` keeps, up to `query.limit`
/// (at most [`LIST_ALL_MAX_PER_RUNTIME`]) kept or [`LIST_ALL_MAX_SCANNED_PER_RUNTIME`]
/// read. `query.limit` caps what is kept of each runtime; it is no page size (a
/// runtime whose page maximum is lower would refuse it, and be reported as not
/// answering). Pages are as large as the runtime takes (`page_max`, from its last
/// self-description: ten times fewer round trips than its default at 1,000), or
/// of its default size when that is unknown or refused (the runtime restarted
/// with a smaller maximum since).
async fn collect_all(
    source: &dyn RuntimeSource,
    query: &WorkerQuery,
    page_max: Option<u32>,
    mut keep: impl FnMut(&WorkerDetail) -> bool,
) -> Result<Collected, SourceError> {
    let cap = query
        .limit
        .map_or(LIST_ALL_MAX_PER_RUNTIME, |limit| limit as usize)
        .min(LIST_ALL_MAX_PER_RUNTIME);
    let mut query = WorkerQuery {
        limit: page_max.filter(|&max| max > 0),
        ..query.clone()
    };
    let mut workers = Vec::new();
    let mut scanned = 0;
    loop {
        let page = match source.list_workers(&query).await {
            Err(SourceError::Rejected(refused))
                if refused.code == ErrorCode::LimitTooLarge && query.limit.is_some() =>
            {
                query.limit = None;
                source.list_workers(&query).await?
            }
            answer => answer?,
        };
        scanned += page.workers.len();
        workers.extend(page.workers.into_iter().filter(&mut keep));
        match page.next {
            // Pages are ordered by worker id: a `next` that does not advance would
            // loop forever (and list the same workers again).
            Some(next) if query.after.as_ref().is_some_and(|after| next <= *after) => {
                return Err(SourceError::Protocol(
                    "its worker list's next page does not advance".into(),
                ));
            }
            Some(next) if workers.len() < cap && scanned < LIST_ALL_MAX_SCANNED_PER_RUNTIME => {
                query.after = Some(next)
            }
            next => {
                // More to list: the runtime has a next page, or this one held more
                // than the cap.
                let more = next.is_some() || workers.len() > cap;
                workers.truncate(cap);
                return Ok(Collected { workers, more });
            }
        }
    }
}

/// What [`collect_all`] listed of one runtime.
struct Collected {
    workers: Vec<WorkerDetail>,
    /// Whether the runtime has more than `workers` (cut at the cap or the scan
    /// budget).
    more: bool,
}

/// A remote runtime names itself by its own id; the backend shows its configured id.
fn owned_by(mut detail: WorkerDetail, runtime_id: &RuntimeId) -> WorkerDetail {
    detail.runtime_id = runtime_id.clone();
    detail
}

/// A runtime that answers its self-description (`GET /v1/runtime`) with a refusal
/// or "no such route" is not ready, whatever it answers other calls: the failure
/// becomes a protocol error that names what it answered, and `true` (the view stays
/// `incompatible` until a good description). Other failures (unreachable, timeout,
/// credentials, TLS, draining, an internal error) are what they are.
fn describing_itself_failed(error: SourceError) -> (SourceError, bool) {
    match error {
        SourceError::Rejected(ref detail) => (
            SourceError::Protocol(format!(
                "it answered its description (GET /v1/runtime) with the error code {}",
                detail.code
            )),
            true,
        ),
        SourceError::Unsupported(_) => (
            SourceError::Protocol(
                "it does not serve its description (GET /v1/runtime); is base_url the runtime's address?".into(),
            ),
            true,
        ),
        other => (other, false),
    }
}
