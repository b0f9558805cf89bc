//! The [`Runtime`]: owns workers started from named profiles and answers every
//! Runtime API call. The HTTP layer (server crate) and the backend's embedded
//! source both drive this type directly.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use switchyard_protocol::{
    API_VERSION, CreateWorkerRequest, InputAccepted, ResizeRequest, ResizeResponse, RuntimeId,
    RuntimeInfo, RuntimeStatus, TranscriptPage, WorkerDetail, WorkerId, WorkerList, WorkerStatus,
    WorkerStatusResponse, is_valid_owner,
};

use crate::census::{Census, IdPage};
use crate::config::RuntimeConfig;
use crate::error::{Result, RuntimeError};
use crate::fanout::StreamEnd;
use crate::store::{MemoryStore, Store, StoreError};
use crate::subscription::Subscription;
use crate::worker::Worker;
use crate::worker::core::WorkerContext;

/// Default page size for worker lists and transcripts.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;

/// How long `create` waits for a worker to leave `starting` before answering.
const START_WAIT: Duration = Duration::from_secs(10);

/// The most ended workers one create deletes past `max_ended_workers`.
const PRUNED_PER_CREATE: usize = 4;

/// Capabilities every runtime of this version has.
pub const CAPABILITIES: &[&str] = &[
    "echo",
    "process",
    "pty",
    "transcript",
    "events_ws",
    "interactive_ws",
    "cancel",
    "resize",
];

/// Filter and page for [`Runtime::list`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only workers with this status.
    pub status: Option<WorkerStatus>,
    /// Only workers whose id sorts after this one.
    pub after: Option<WorkerId>,
    /// At most this many (default 100, at most `transcript_page_max`).
    pub limit: Option<u32>,
}

struct Inner {
    /// The runtime's id: fixed for its whole life (workers and records carry it).
    runtime_id: RuntimeId,
    /// What every worker shares, the configuration in force included.
    ctx: Arc<WorkerContext>,
    workers: RwLock<BTreeMap<WorkerId, Arc<Worker>>>,
    create_lock: Arc<tokio::sync::Mutex<()>>,
    /// Deletes go one at a time: of two for one worker, the second finds it gone
    /// (or, if the store failed the first, still there) once the first is done.
    delete_lock: tokio::sync::Mutex<()>,
    draining: AtomicBool,
}

/// A worker runtime. Cheap to clone; clones share the same workers.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("runtime_id", &self.inner.runtime_id)
            .field("epoch", &self.epoch())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Opens a runtime over `store`: starts a new epoch, loads every stored worker and
    /// marks those that were running as `lost`. A restored pty worker's final screen
    /// is rebuilt from its transcript (output and resizes), up to 16 MiB of output
    /// per worker and 64 MiB for all of them.
    pub async fn open(config: RuntimeConfig, store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let mut config = config;
        config
            .profiles
            .entry("echo".into())
            .or_insert_with(crate::config::Profile::echo);
        let config = Arc::new(config);
        let ctx = Arc::new(WorkerContext {
            epoch: new_epoch().into(),
            store: store.clone(),
            config: ArcSwap::new(config.clone()),
            active: AtomicUsize::new(0),
            census: Census::default(),
            subscribers: Arc::new(AtomicUsize::new(0)),
        });
        let mut workers = BTreeMap::new();
        let mut terminals = Vec::new();
        // Restored terminal workers get their final screens back before the runtime
        // serves anyone (a viewer, or a backend's hub that keeps the first snapshot it
        // gets), within a total budget so that opening takes a bounded time. A
        // worker found running (now lost) gets its screen from the same read of
        // its transcript that corrects its counters; the others' are rebuilt after.
        let mut budget = crate::worker::REPLAY_TOTAL_BYTES;
        let mut restored = Vec::new();
        for mut loaded in store.load(config.limits.snapshot_items as usize).await? {
            loaded.detail.runtime_id = config.runtime_id.clone();
            let terminal = config
                .profiles
                .get(&loaded.detail.profile)
                .and_then(|profile| profile.spec.driver().terminal());
            let worker = Worker::restore(ctx.clone(), loaded);
            let replayed = match worker
                .mark_lost_if_active(terminal.map(|size| (size, budget)))
                .await
            {
                Ok(replayed) => replayed,
                Err(RuntimeError::Store(e)) => return Err(e),
                Err(_) => None,
            };
            match (replayed, terminal) {
                (Some(read), _) => budget = budget.saturating_sub(read),
                (None, Some(size)) => terminals.push((worker.clone(), size)),
                (None, None) => {}
            }
            restored.push(worker.clone());
            workers.insert(worker.id().clone(), worker);
        }
        // The census orders ended workers by when they ended (`max_ended_workers`
        // deletes the first ones): restored workers join it in the order of their
        // last change, which for an ended worker is its end.
        restored.sort_by_cached_key(|worker| {
            let detail = worker.detail();
            (crate::clock::instant(&detail.updated_at), detail.worker_id)
        });
        for worker in &restored {
            worker.join_census();
        }
        for (worker, size) in terminals {
            match worker.rebuild_screen(size, budget).await {
                Ok(read) => budget = budget.saturating_sub(read),
                Err(RuntimeError::Store(e)) => return Err(e),
                Err(_) => {}
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                runtime_id: config.runtime_id.clone(),
                ctx,
                workers: RwLock::new(workers),
                create_lock: Arc::new(tokio::sync::Mutex::new(())),
                delete_lock: tokio::sync::Mutex::new(()),
                draining: AtomicBool::new(false),
            }),
        })
    }

    /// A runtime kept in memory.
    pub async fn in_memory(config: RuntimeConfig) -> Self {
        match Self::open(config, Arc::new(MemoryStore::new())).await {
            Ok(runtime) => runtime,
            Err(e) => unreachable!("an empty memory store cannot fail to load: {e}"),
        }
    }

    /// The configuration in force: identity, profiles (`echo` included) and limits.
    /// A snapshot: a later [`Runtime::reconfigure`] replaces the runtime's, not this
    /// one.
    pub fn config(&self) -> Arc<RuntimeConfig> {
        self.inner.ctx.config()
    }

    /// The runtime's id (fixed for its whole life).
    pub fn runtime_id(&self) -> &RuntimeId {
        &self.inner.runtime_id
    }

    /// Replaces the display name, the profiles and the limits while the runtime
    /// runs, for what starts from then on; nothing running is stopped, cut off or
    /// resized. Returns the configuration it replaced.
    ///
    /// - Creates use the new profiles (`echo` is added when absent, as by
    ///   [`Runtime::open`]) and the new `max_workers`. A running worker keeps the
    ///   profile it was started from, even one that is removed or changed. Lowered
    ///   below the workers starting or running, `max_workers` refuses creates
    ///   (`worker_limit_reached`) until fewer run; none is stopped.
    /// - The checks made on each call apply to the next call, on every worker:
    ///   `max_input_bytes` (inputs), `transcript_page_max` (pages of transcripts and
    ///   lists) and `stop_grace` (stops asked from then on).
    /// - A worker's buffers keep the sizes it was created with: `event_backlog`,
    ///   `subscriber_queue` and `input_queue` apply to workers created from then on
    ///   (resizing a live event log would drop events a viewer may resume from).
    /// - `max_body_bytes` is the HTTP layer's to enforce (the server changes its
    ///   own copy); the runtime only reports it in [`Runtime::info`], which shows
    ///   the new display name, profiles and limits at once.
    ///
    /// The runtime id cannot change: workers, their stored records and cursors
    /// carry it. A `config` with another id is refused with
    /// [`RuntimeError::InvalidRequest`] and changes nothing.
    pub fn reconfigure(&self, config: RuntimeConfig) -> Result<Arc<RuntimeConfig>> {
        if config.runtime_id != self.inner.runtime_id {
            return Err(RuntimeError::InvalidRequest(format!(
                "the runtime id cannot change while the runtime runs (it is `{}`)",
                self.inner.runtime_id
            )));
        }
        let mut config = config;
        config
            .profiles
            .entry("echo".into())
            .or_insert_with(crate::config::Profile::echo);
        Ok(self.inner.ctx.config.swap(Arc::new(config)))
    }

    /// This process start's epoch; cursors of other epochs reset.
    pub fn epoch(&self) -> &str {
        &self.inner.ctx.epoch
    }

    /// True once [`Runtime::shutdown`] has begun.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// `GET /v1/runtime`. The counts are kept as workers come, change status and
    /// go, so this does not visit the kept workers.
    pub fn info(&self) -> RuntimeInfo {
        let (counts, owners) = self.inner.ctx.census.counts();
        let subscribers = self.inner.ctx.subscribers.load(Ordering::Relaxed) as u64;
        let config = self.config();
        RuntimeInfo {
            runtime_id: config.runtime_id.clone(),
            display_name: config.display_name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: API_VERSION,
            status: if self.is_draining() {
                RuntimeStatus::Draining
            } else {
                RuntimeStatus::Running
            },
            epoch: self.epoch().to_owned(),
            capabilities: CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
            profiles: config.profile_infos(),
            workers: counts,
            owners,
            subscribers,
            limits: config.limits.to_protocol(),
        }
    }

    /// `GET /v1/workers`: a page of workers ordered by id. With a status filter
    /// the page's ids come from the census's index of that status, so a page costs
    /// its own size, however many workers of other statuses are kept.
    pub fn list(&self, query: &ListQuery) -> Result<WorkerList> {
        let limit = self.page_limit(query.limit)? as usize;
        let after = query.after.as_ref();
        let (workers, next) = match query.status {
            Some(status) => self.page_of_status(status, after, limit),
            None => self.page_of_all(after, limit),
        };
        Ok(WorkerList { workers, next })
    }

    /// Up to `limit` workers after `after`, and the cursor of the next page.
    fn page_of_all(
        &self,
        after: Option<&WorkerId>,
        limit: usize,
    ) -> (Vec<WorkerDetail>, Option<WorkerId>) {
        let workers = self.workers();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut range = workers.range::<WorkerId, _>((start, Bound::Unbounded));
        let page: Vec<WorkerDetail> = range
            .by_ref()
            .take(limit)
            .map(|(_, w)| w.detail())
            .collect();
        let next = match range.next() {
            Some(_) => page.last().map(|d| d.worker_id.clone()),
            None => None,
        };
        (page, next)
    }

    /// Up to `limit` workers with `status` after `after`, and the cursor of the
    /// next page. A worker that changed status or went between the census's answer
    /// and this look is left out (the page is then shorter; the cursor still
    /// follows the census's last id).
    fn page_of_status(
        &self,
        status: WorkerStatus,
        after: Option<&WorkerId>,
        limit: usize,
    ) -> (Vec<WorkerDetail>, Option<WorkerId>) {
        let IdPage { ids, more } = self.inner.ctx.census.page(status, after, limit);
        let workers = self.workers();
        let page = ids
            .iter()
            .filter_map(|id| workers.get(id))
            .map(|worker| worker.detail())
            .filter(|detail| detail.status == status)
            .collect();
        let next = if more { ids.last().cloned() } else { None };
        (page, next)
    }

    /// `POST /v1/workers`: starts a worker from a profile and answers once it is
    /// running (or has failed to start).
    pub async fn create(&self, request: CreateWorkerRequest) -> Result<WorkerDetail> {
        if self.is_draining() {
            return Err(RuntimeError::Draining);
        }
        // The profiles in force when the call comes: a worker keeps the profile it
        // was started from, whatever a reconfiguration does after.
        let profile = self
            .config()
            .profiles
            .get(&request.profile)
            .ok_or_else(|| RuntimeError::UnknownProfile(request.profile.clone()))?
            .clone();
        if let Some(owner) = &request.owner
            && !is_valid_owner(owner)
        {
            return Err(RuntimeError::InvalidRequest(
                "owner must be 1 to 64 of A-Z a-z 0-9 . _ - @".into(),
            ));
        }
        self.prune_ended().await;
        let one_at_a_time = Arc::clone(&self.inner.create_lock).lock_owned().await;
        // Checked again under the lock, which a shutdown takes before it stops the
        // workers: no worker starts after that.
        if self.is_draining() {
            return Err(RuntimeError::Draining);
        }
        // The limit in force once this create's turn has come.
        let max = self.inner.ctx.limits().max_workers;
        if self.inner.ctx.active.load(Ordering::SeqCst) >= max as usize {
            return Err(RuntimeError::WorkerLimitReached { max });
        }
        // From the first write on, on a task of its own: a caller dropped mid-way
        // must not leave a saved record without its worker in memory (it would come
        // back as `lost`).
        let runtime = self.clone();
        let worker = crate::worker::run_to_end(async move {
            let _one_at_a_time = one_at_a_time;
            let id = runtime.new_worker_id();
            let worker = Worker::start(
                runtime.inner.ctx.clone(),
                id.clone(),
                runtime.inner.runtime_id.clone(),
                request.profile,
                request.label,
                request.owner,
                profile,
            )
            .await?;
            runtime.workers_mut().insert(id, worker.clone());
            worker.join_census();
            Ok(worker)
        })
        .await?;
        worker.wait_started(START_WAIT).await;
        Ok(worker.detail())
    }

    /// Deletes the workers that ended first while more than `max_ended_workers`
    /// are kept, as `DELETE` would (a create calls it first): ended workers, each
    /// with its transcript, would otherwise grow without end with the workers
    /// created. At most [`PRUNED_PER_CREATE`] per call, so that a lowered limit
    /// (or a data directory from before it) is worked off over several creates,
    /// none of them slow: each create adds at most one ended worker.
    async fn prune_ended(&self) {
        let max = self.inner.ctx.limits().max_ended_workers as usize;
        for _ in 0..PRUNED_PER_CREATE {
            if self.inner.ctx.census.ended() <= max {
                return;
            }
            let Some(oldest) = self.inner.ctx.census.oldest_ended() else {
                return;
            };
            match self.delete(&oldest).await {
                Ok(()) => tracing::info!(
                    worker_id = %oldest,
                    max_ended_workers = max,
                    "deleted the oldest ended worker to keep max_ended_workers"
                ),
                // Another create's pruning, or a client's delete, took it first.
                Err(RuntimeError::WorkerNotFound(_)) => {}
                Err(error) => {
                    tracing::warn!(worker_id = %oldest, %error, "could not delete the oldest ended worker; keeping more than max_ended_workers");
                    return;
                }
            }
        }
    }

    /// `GET /v1/workers/{id}`.
    pub fn get(&self, id: &WorkerId) -> Result<WorkerDetail> {
        Ok(self.worker(id)?.detail())
    }

    /// `POST /v1/workers/{id}/input`.
    pub async fn input(&self, id: &WorkerId, text: String) -> Result<InputAccepted> {
        let sequence = self.worker(id)?.input(text).await?;
        Ok(InputAccepted { sequence })
    }

    /// `POST /v1/workers/{id}/resize`: sets a pty worker's terminal size and answers
    /// once the terminal has it (a `resized` event is logged first).
    pub async fn resize(&self, id: &WorkerId, size: ResizeRequest) -> Result<ResizeResponse> {
        let size = self.worker(id)?.resize(size).await?;
        Ok(ResizeResponse {
            worker_id: id.clone(),
            cols: size.cols,
            rows: size.rows,
        })
    }

    /// `POST /v1/workers/{id}/cancel`.
    pub fn cancel(&self, id: &WorkerId) -> Result<WorkerStatusResponse> {
        let status = self.worker(id)?.cancel()?;
        Ok(WorkerStatusResponse {
            worker_id: id.clone(),
            status,
        })
    }

    /// `POST /v1/workers/{id}/stop`: ends the worker (SIGTERM, SIGKILL after the
    /// grace period) and answers its status once it has ended, or after two seconds
    /// at most (then possibly still `running`; the `status` event tells the end).
    /// Idempotent.
    pub async fn stop(&self, id: &WorkerId) -> Result<WorkerStatusResponse> {
        let status = self.worker(id)?.stop_on_request().await;
        Ok(WorkerStatusResponse {
            worker_id: id.clone(),
            status,
        })
    }

    /// `DELETE /v1/workers/{id}`: removes an ended worker and its transcript.
    ///
    /// The worker stays (listed, counted, watchable) until the store has removed
    /// its files, so that a removal the store fails leaves it as it was, for a retry;
    /// files already gone count as removed.
    pub async fn delete(&self, id: &WorkerId) -> Result<()> {
        let worker = self.worker(id)?;
        if !worker.status().is_ended() {
            return Err(RuntimeError::WorkerRunning(id.clone()));
        }
        worker.join_driver().await;
        let _one_at_a_time = self.inner.delete_lock.lock().await;
        // A delete that went first has taken it.
        let worker = self.worker(id)?;
        match self.inner.ctx.store.remove_worker(id).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
        self.workers_mut().remove(id);
        worker.leave_census();
        worker.close_subscriptions(StreamEnd::Removed);
        Ok(())
    }

    /// `GET /v1/workers/{id}/transcript`.
    pub async fn transcript(
        &self,
        id: &WorkerId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<TranscriptPage> {
        let worker = self.worker(id)?;
        worker.transcript(after, self.page_limit(limit)?).await
    }

    /// Subscribes to a worker's events. Errors (unknown worker, invalid cursor) come
    /// back before anything is streamed, so an HTTP layer can answer them before a
    /// WebSocket upgrade.
    pub fn subscribe(&self, id: &WorkerId, cursor: Option<&str>) -> Result<Subscription> {
        self.worker(id)?.subscribe(cursor, false)
    }

    /// Like [`Runtime::subscribe`]; a resumed subscription also gets a fresh snapshot
    /// after the replayed events, so that a proxy resuming its upstream learns the
    /// current state without a second subscription.
    pub fn subscribe_with_snapshot(
        &self,
        id: &WorkerId,
        cursor: Option<&str>,
    ) -> Result<Subscription> {
        self.worker(id)?.subscribe(cursor, true)
    }

    /// Live subscribers of a worker (for tests and metrics).
    pub fn subscriber_count(&self, id: &WorkerId) -> Result<usize> {
        Ok(self.worker(id)?.subscriber_count())
    }

    /// Drains the runtime: refuses new workers, stops every worker (SIGTERM, then
    /// SIGKILL after the grace period), ends every subscription with
    /// [`StreamEnd::Shutdown`], flushes the store and closes it (the file store lets
    /// its data directory go, for another runtime to open).
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        self.inner.draining.store(true, Ordering::SeqCst);
        // A create that got past its draining check finishes first (see `create`).
        drop(self.inner.create_lock.lock().await);
        let workers: Vec<_> = self.workers().values().cloned().collect();
        let stops = workers.iter().map(|w| async move {
            w.stop_for_shutdown().await;
            w.join_driver().await;
        });
        futures_util::future::join_all(stops).await;
        for worker in &workers {
            worker.close_subscriptions(StreamEnd::Shutdown);
        }
        // Closed even when the flush failed: the data directory is let go either way.
        let flushed = self.inner.ctx.store.flush().await;
        let closed = self.inner.ctx.store.close().await;
        flushed.and(closed)
    }

    fn page_limit(&self, limit: Option<u32>) -> Result<u32> {
        let max = self.inner.ctx.limits().transcript_page_max;
        let limit = limit.unwrap_or(DEFAULT_PAGE_LIMIT.min(max));
        if limit == 0 {
            return Err(RuntimeError::InvalidRequest(
                "limit must be at least 1".into(),
            ));
        }
        if limit > max {
            return Err(RuntimeError::LimitTooLarge {
                asked: u64::from(limit),
                max,
            });
        }
        Ok(limit)
    }

    fn worker(&self, id: &WorkerId) -> Result<Arc<Worker>> {
        self.workers()
            .get(id)
            .cloned()
            .ok_or_else(|| RuntimeError::WorkerNotFound(id.clone()))
    }

    fn workers(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<WorkerId, Arc<Worker>>> {
        self.inner
            .workers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn workers_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<WorkerId, Arc<Worker>>> {
        self.inner
            .workers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A fresh id that sorts by creation time: `w-<millis hex>-<random hex>`.
    fn new_worker_id(&self) -> WorkerId {
        let workers = self.workers();
        loop {
            let millis = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let candidate = format!("w-{millis:011x}-{:06x}", fastrand::u32(..0x100_0000));
            if let Ok(id) = WorkerId::new(candidate)
                && !workers.contains_key(&id)
            {
                return id;
            }
        }
    }
}

/// A new random epoch: 16 hex digits.
fn new_epoch() -> String {
    format!("{:016x}", fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SubscriptionItem;
    use crate::worker::driver::DriverSink;
    use switchyard_protocol::{OutputStream, RuntimeId, WorkerEvent};

    /// A subscriber that never reads is cut off, while another one receives every
    /// event of a 100,000-event burst, in order. The producer goes through the real
    /// recording path (store append, transcript, event log) and yields now and then,
    /// as a real driver does while it awaits its pipes.
    #[tokio::test(flavor = "current_thread")]
    async fn a_stalled_subscriber_is_cut_off_and_another_gets_all_of_a_100k_burst() {
        const BURST: u64 = 100_000;
        let rt = Runtime::in_memory(RuntimeConfig::new(RuntimeId::new("t").unwrap(), "t")).await;
        let detail = rt
            .create(CreateWorkerRequest {
                profile: "echo".into(),
                label: None,
                owner: None,
            })
            .await
            .unwrap();
        let worker = rt.worker(&detail.worker_id).unwrap();
        let stalled = rt.subscribe(&detail.worker_id, None).unwrap();
        let mut reader = rt.subscribe(&detail.worker_id, None).unwrap();

        let producer = {
            let worker = worker.clone();
            tokio::spawn(async move {
                for i in 0..BURST {
                    worker.output(OutputStream::Stdout, i.to_string()).await;
                    if i % 256 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        let mut expected = 0;
        let mut last_position = 0;
        while expected < BURST {
            match reader.next().await.unwrap() {
                SubscriptionItem::Event { position, event } => {
                    assert!(position > last_position, "positions only grow");
                    last_position = position;
                    if let WorkerEvent::Output { text, .. } = &*event {
                        assert_eq!(text, &expected.to_string());
                        expected += 1;
                    }
                }
                SubscriptionItem::Reset(r) => panic!("unexpected reset {r:?}"),
            }
        }
        producer.await.unwrap();
        assert_eq!(stalled.ended().await, StreamEnd::SlowConsumer);
        assert_eq!(rt.subscriber_count(&detail.worker_id).unwrap(), 1);
        assert_eq!(rt.get(&detail.worker_id).unwrap().output_bytes, {
            (0..BURST).map(|i| i.to_string().len() as u64).sum::<u64>()
        });
    }
}
