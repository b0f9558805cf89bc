//! [`RuntimeRegistry`]: the table of runtimes, routing by `runtime_id + worker_id`,
//! the policy check before every call, and the views kept fresh by call outcomes and
//! background health probes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use switchyard_protocol::{
    AllWorkersList, BackendRuntime, ErrorCode, ErrorDetail, InputAccepted, NewWorkerRequest,
    ResizeRequest, ResizeResponse, RuntimeId, RuntimeInfo, TranscriptPage, UnavailableEntry,
    WorkerDetail, WorkerId, WorkerList, WorkerStatusResponse,
};
use switchyard_runtime::{DEFAULT_PAGE_LIMIT, RuntimeError};
use switchyard_transport::WorkerQuery;
use tokio::task::JoinHandle;

use crate::caller::Caller;
use crate::error::{RegistryError, SourceError};
use crate::owners::OwnerCache;
use crate::policy::{Action, Policy, PolicyRequest};
use crate::source::RuntimeSource;
use crate::view::RuntimeView;

/// Most workers `GET /api/workers` collects from one runtime.
pub const LIST_ALL_MAX_PER_RUNTIME: usize = 10_000;

/// Most workers one page of a filtered listing scans before it answers with what it
/// found and a `next` to continue from.
pub const LIST_SCAN_BUDGET: usize = 10_000;

/// One runtime to register.
pub struct RegisteredRuntime {
    /// Its id in the backend.
    pub runtime_id: RuntimeId,
    /// A name for people.
    pub display_name: String,
    /// How to reach it.
    pub source: Arc<dyn RuntimeSource>,
    /// Upper bound on any one call, beyond the source's own timeouts; `None` for
    /// sources that cannot hang (embedded).
    pub call_timeout: Option<Duration>,
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

struct Entry {
    runtime: RegisteredRuntime,
    view: Mutex<RuntimeView>,
    owners: OwnerCache,
}

impl Entry {
    fn view(&self) -> MutexGuard<'_, RuntimeView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn id(&self) -> &RuntimeId {
        &self.runtime.runtime_id
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        match self.runtime.call_timeout {
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .unwrap_or(Err(SourceError::Timeout)),
            None => call.await,
        }
    }

    fn record<T>(&self, outcome: &Result<T, SourceError>) {
        let mut view = self.view();
        match outcome {
            Ok(_) => view.record_answer(),
            Err(error) => view.record_failure(error),
        }
    }

    async fn refresh(&self) -> Result<RuntimeInfo, SourceError> {
        let outcome = self.bounded(self.runtime.source.info()).await;
        match &outcome {
            Ok(info) => self.view().record_info(info),
            Err(error) => self.view().record_failure(error),
        }
        outcome
    }

    /// The view as `caller` may see it: a caller who reaches only its own workers
    /// sees its own worker counts, not everyone's.
    fn backend_view(&self, own_counts: Option<&str>) -> BackendRuntime {
        let mut view = self.view().clone();
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

/// The registry. Share it behind an `Arc`.
pub struct RuntimeRegistry {
    entries: Vec<Arc<Entry>>,
    by_id: HashMap<RuntimeId, Arc<Entry>>,
    policy: Arc<dyn Policy>,
    probes: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for RuntimeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.runtime))
            .finish()
    }
}

impl Drop for RuntimeRegistry {
    fn drop(&mut self) {
        for probe in self
            .probes
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            probe.abort();
        }
    }
}

impl RuntimeRegistry {
    /// A registry of `runtimes`, in the given order, consulting `policy`.
    pub fn new(
        runtimes: Vec<RegisteredRuntime>,
        policy: Arc<dyn Policy>,
    ) -> Result<Self, DuplicateRuntimeId> {
        let mut entries = Vec::new();
        let mut by_id = HashMap::new();
        for runtime in runtimes {
            let id = runtime.runtime_id.clone();
            let entry = Arc::new(Entry {
                runtime,
                view: Mutex::new(RuntimeView::default()),
                owners: OwnerCache::default(),
            });
            if by_id.insert(id.clone(), entry.clone()).is_some() {
                return Err(DuplicateRuntimeId(id));
            }
            entries.push(entry);
        }
        Ok(Self {
            entries,
            by_id,
            policy,
            probes: Mutex::new(Vec::new()),
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> &Arc<dyn Policy> {
        &self.policy
    }

    /// The source of a runtime, for the observation hub.
    pub fn source(&self, runtime_id: &RuntimeId) -> Result<Arc<dyn RuntimeSource>, RegistryError> {
        Ok(self.entry(runtime_id)?.runtime.source.clone())
    }

    /// Refreshes every runtime's view once, concurrently.
    pub async fn refresh_all(&self) {
        futures_util::future::join_all(self.entries.iter().map(|e| e.refresh())).await;
    }

    /// Starts one background probe per runtime: every `interval` while it is up, and
    /// backing off (doubling, with jitter, up to 8 × `interval`) while it is down.
    pub fn start_health_probes(&self, interval: Duration) {
        let mut probes = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        for entry in &self.entries {
            let entry = entry.clone();
            probes.push(tokio::spawn(async move {
                let mut delay = interval;
                loop {
                    let jitter = delay.mul_f64(fastrand::f64() * 0.2);
                    tokio::time::sleep(delay + jitter).await;
                    let _ = entry.refresh().await;
                    delay = if entry.view().is_down() {
                        (delay * 2).min(interval * 8)
                    } else {
                        interval
                    };
                }
            }));
        }
    }

    /// `GET /api/runtimes`: every runtime the policy lets the caller see, as last seen.
    pub fn runtimes(&self, caller: &Caller) -> Vec<BackendRuntime> {
        self.entries
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
        if self.policy.scopes_workers(caller) {
            Some(caller.owner_name().unwrap_or(""))
        } else {
            None
        }
    }

    /// The owner of a worker as far as the registry knows (`Some(None)`: it has none),
    /// for audit lines; no call is made.
    pub fn known_owner(&self, runtime_id: &RuntimeId, worker: &WorkerId) -> Option<Option<String>> {
        let owner = self.by_id.get(runtime_id)?.owners.get(worker)?;
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
        let visible: Vec<&Arc<Entry>> = self
            .entries
            .iter()
            .filter(|e| {
                self.authorize(caller, e.id(), None, Action::ListWorkers)
                    .is_ok()
            })
            .collect();
        let listings = visible.iter().map(|entry| async move {
            let outcome = entry
                .bounded(collect_all(entry.runtime.source.as_ref(), query))
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
        };
        for (entry, outcome) in visible
            .iter()
            .zip(futures_util::future::join_all(listings).await)
        {
            match outcome {
                Ok(workers) => all.workers.extend(
                    workers
                        .into_iter()
                        .filter(|w| self.reaches(caller, entry, w))
                        .map(|w| owned_by(w, entry.id())),
                ),
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
        let outcome = if self.policy.scopes_workers(caller) {
            self.visible_page(caller, entry, query).await
        } else {
            entry
                .bounded(entry.runtime.source.list_workers(query))
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
                .bounded(entry.runtime.source.list_workers(&query))
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
        self.policy
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
        let detail = self
            .call(caller, runtime_id, None, action, |s| async move {
                s.create_worker(request).await
            })
            .await?;
        if let Some(entry) = self.by_id.get(runtime_id) {
            entry.owners.remember(&detail);
        }
        Ok(owned_by(detail, runtime_id))
    }

    /// `GET /api/runtimes/{id}/workers/{worker_id}`.
    pub async fn get_worker(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker: &WorkerId,
    ) -> Result<WorkerDetail, RegistryError> {
        let detail = self
            .call(
                caller,
                runtime_id,
                Some(worker),
                Action::ViewWorker,
                |s| async move { s.get_worker(worker).await },
            )
            .await?;
        let entry = self.entry(runtime_id)?;
        if !self.reaches(caller, entry, &detail) {
            return Err(not_found(runtime_id, worker));
        }
        Ok(owned_by(detail, runtime_id))
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
        self.policy
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
        self.policy
            .authorize_admin(caller)
            .map_err(|denied| RegistryError::Forbidden(denied.0))
    }

    fn entry(&self, runtime_id: &RuntimeId) -> Result<&Arc<Entry>, RegistryError> {
        self.by_id
            .get(runtime_id)
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
        self.authorize(caller, runtime_id, worker_id, action)?;
        let entry = self.entry(runtime_id)?;
        if let Some(worker) = worker_id
            && action != Action::ViewWorker
            && (self.policy.scopes_workers(caller)
                || (action.is_command() && self.policy.tracks_owners()))
        {
            self.check_reach(caller, entry, worker).await?;
        }
        let outcome = entry.bounded(call(entry.runtime.source.clone())).await;
        entry.record(&outcome);
        outcome.map_err(|error| RegistryError::Source {
            runtime_id: runtime_id.clone(),
            error,
        })
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
        let owner = match entry.owners.get(worker) {
            Some(owner) => owner,
            None => {
                let outcome = entry.bounded(entry.runtime.source.get_worker(worker)).await;
                entry.record(&outcome);
                let detail = outcome.map_err(|error| RegistryError::Source {
                    runtime_id: entry.id().clone(),
                    error,
                })?;
                entry.owners.remember(&detail)
            }
        };
        if self
            .policy
            .reaches_worker(caller, entry.id(), owner.as_deref())
        {
            Ok(())
        } else {
            Err(not_found(entry.id(), worker))
        }
    }
}

/// The answer for a worker that does not exist, or that the caller does not reach.
fn not_found(runtime_id: &RuntimeId, worker: &WorkerId) -> RegistryError {
    RegistryError::Source {
        runtime_id: runtime_id.clone(),
        error: SourceError::from(RuntimeError::WorkerNotFound(worker.clone())),
    }
}

/// Every page of a runtime's workers, up to [`LIST_ALL_MAX_PER_RUNTIME`].
async fn collect_all(
    source: &dyn RuntimeSource,
    query: &WorkerQuery,
) -> Result<Vec<WorkerDetail>, SourceError> {
    let mut query = query.clone();
    let mut workers = Vec::new();
    loop {
        let page = source.list_workers(&query).await?;
        workers.extend(page.workers);
        match page.next {
            // Pages are ordered by worker id: a `next` that does not advance would
            // loop forever (and list the same workers again).
            Some(next) if query.after.as_ref().is_some_and(|after| next <= *after) => {
                return Err(SourceError::Protocol(
                    "its worker list's next page does not advance".into(),
                ));
            }
            Some(next) if workers.len() < LIST_ALL_MAX_PER_RUNTIME => query.after = Some(next),
            _ => return Ok(workers),
        }
    }
}

/// A remote runtime names itself by its own id; the backend shows its configured id.
fn owned_by(mut detail: WorkerDetail, runtime_id: &RuntimeId) -> WorkerDetail {
    detail.runtime_id = runtime_id.clone();
    detail
}
