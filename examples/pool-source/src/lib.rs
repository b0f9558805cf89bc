//! A [`RuntimeSource`] that fronts several runtimes as one: a **pool**.
//!
//! Clients see one runtime (say `build`) with the profiles of all its members and
//! their workers together. A new worker goes to the member with the fewest workers
//! starting or running that has the profile, and when that member does not answer
//! (down, draining, full) to the next one. Every other call goes to the member that
//! runs the worker: a pool worker's id is the member's name, a dot, and the worker's
//! id on that member (`east.w-1a2b...`), so routing needs no table and survives
//! restarts of the pool.
//!
//! Members are any sources: remote runtimes from a backend's configuration
//! ([`switchyard_server::remote_runtime`], as the `switchyard-pool` binary does),
//! embedded runtimes, or other pools.
//!
//! ```
//! use std::sync::Arc;
//! use switchyard_example_pool::PoolSource;
//! use switchyard_protocol::RuntimeId;
//! use switchyard_registry::{EmbeddedSource, RegisteredRuntime};
//! use switchyard_runtime::{Runtime, RuntimeConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut pool = PoolSource::new(RuntimeId::new("build")?, "Build pool");
//! for name in ["east", "west"] {
//!     let runtime = Runtime::in_memory(RuntimeConfig::new(RuntimeId::new(name)?, name)).await;
//!     let member = RegisteredRuntime::new(runtime.config().runtime_id.clone(), name,
//!         Arc::new(EmbeddedSource::new(runtime)));
//!     pool = pool.member(name, member)?;
//! }
//! let registered = pool.into_registered();
//! assert_eq!(registered.runtime_id.as_str(), "build");
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use switchyard_protocol::{
    API_VERSION, CreateWorkerRequest, ErrorCode, ErrorDetail, EventKind, EventPayload,
    InputAccepted, Limits, ResizeRequest, ResizeResponse, RuntimeId, RuntimeInfo,
    RuntimeSourceKind, RuntimeStatus, TranscriptPage, WorkerCounts, WorkerDetail, WorkerEvent,
    WorkerId, WorkerList, WorkerStatus, WorkerStatusResponse,
};
use switchyard_registry::{
    RegisteredRuntime, ResumePoint, RuntimeSource, SourceEnd, SourceError, SourceEvents, SourceItem,
};
use switchyard_transport::WorkerQuery;

/// Longest member name: short, so that `name.worker-id` stays within the 64
/// characters of a worker id.
pub const MAX_MEMBER_NAME: usize = 16;

/// Page size when the client does not ask for one (the runtimes' own default).
const DEFAULT_PAGE: u32 = 100;

/// Why a member cannot join a pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The name breaks the rules.
    #[error(
        "pool member name {0:?} must be 1 to {MAX_MEMBER_NAME} of A-Z a-z 0-9 _ - (no dot); rename the runtime"
    )]
    InvalidName(String),
    /// Two members share a name.
    #[error("pool member {0:?} is listed twice; give each member its own name")]
    DuplicateName(String),
}

/// One runtime of the pool.
struct Member {
    /// The prefix of its workers' pool ids, without the dot.
    name: String,
    source: Arc<dyn RuntimeSource>,
    /// Its own backstop on each call (a remote's connect + request timeout).
    call_timeout: Option<Duration>,
}

impl Member {
    /// Runs one call to the member within its backstop.
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        match self.call_timeout {
            Some(limit) => tokio::time::timeout(limit, call)
                .await
                .unwrap_or(Err(SourceError::Timeout)),
            None => call.await,
        }
    }

    /// The pool id of the member's worker `inner`.
    fn outer(&self, inner: &WorkerId) -> Result<WorkerId, SourceError> {
        WorkerId::new(format!("{}.{inner}", self.name)).map_err(|_| {
            SourceError::Protocol(format!(
                "member {} named a worker whose id is too long for the pool",
                self.name
            ))
        })
    }

    /// A member's refusal, told with the pool's id of the worker.
    fn relabel_error(&self, error: SourceError, inner: &WorkerId) -> SourceError {
        match error {
            SourceError::Rejected(mut detail) => {
                if let Ok(outer) = self.outer(inner) {
                    detail.message = detail.message.replace(inner.as_str(), outer.as_str());
                    if detail.worker_id.as_ref() == Some(inner) {
                        detail.worker_id = Some(outer);
                    }
                }
                SourceError::Rejected(detail)
            }
            other => other,
        }
    }

    /// A member's worker detail, as the pool shows it.
    fn relabel(
        &self,
        mut detail: WorkerDetail,
        pool: &RuntimeId,
    ) -> Result<WorkerDetail, SourceError> {
        detail.worker_id = self.outer(&detail.worker_id)?;
        detail.runtime_id = pool.clone();
        Ok(detail)
    }
}

/// Several runtimes served as one. See the crate documentation.
pub struct PoolSource {
    id: RuntimeId,
    display_name: String,
    /// Sorted by `name.`, the order of their workers' pool ids.
    members: Vec<Member>,
}

impl std::fmt::Debug for PoolSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolSource")
            .field("id", &self.id)
            .field(
                "members",
                &self.members.iter().map(|m| &m.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl PoolSource {
    /// An empty pool that clients will see as `id`.
    pub fn new(id: RuntimeId, display_name: impl Into<String>) -> Self {
        Self {
            id,
            display_name: display_name.into(),
            members: Vec::new(),
        }
    }

    /// Adds a member under `name`, the prefix of its workers' ids in the pool. The
    /// member's own `call_timeout` bounds every call the pool makes to it.
    pub fn member(mut self, name: &str, runtime: RegisteredRuntime) -> Result<Self, PoolError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_MEMBER_NAME
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(PoolError::InvalidName(name.to_owned()));
        }
        if self.members.iter().any(|m| m.name == name) {
            return Err(PoolError::DuplicateName(name.to_owned()));
        }
        self.members.push(Member {
            name: name.to_owned(),
            source: runtime.source,
            call_timeout: runtime.call_timeout,
        });
        // Pool ids sort as `name.` prefixes do ('-' sorts before '.'): keep members
        // in that order so that listing them one after the other is in id order.
        self.members.sort_by_key(|m| format!("{}.", m.name));
        Ok(self)
    }

    /// The pool as the backend registers it. The pool bounds each call to a member
    /// itself, so the registration needs no backstop of its own.
    pub fn into_registered(self) -> RegisteredRuntime {
        RegisteredRuntime::new(self.id.clone(), self.display_name.clone(), Arc::new(self))
    }

    /// The member running the worker whose pool id is `outer`, and its id there.
    fn route(&self, outer: &WorkerId) -> Result<(&Member, WorkerId), SourceError> {
        let not_found = || {
            SourceError::Rejected(
                ErrorDetail::new(ErrorCode::WorkerNotFound, format!("no worker {outer}"))
                    .with_worker(outer.clone()),
            )
        };
        let (name, inner) = outer.as_str().split_once('.').ok_or_else(not_found)?;
        let member = self
            .members
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(not_found)?;
        let inner = WorkerId::new(inner).map_err(|_| not_found())?;
        Ok((member, inner))
    }

    /// The members that could take a worker of `profile`, least busy first, from
    /// their answers to `info`; and the error of the last that did not answer.
    async fn placement(&self, profile: &str) -> (Vec<&Member>, Option<SourceError>) {
        let infos = join_all(self.members.iter().map(|m| m.call(m.source.info()))).await;
        let mut candidates = Vec::new();
        let mut failure = None;
        for (member, info) in self.members.iter().zip(infos) {
            match info {
                Ok(info)
                    if info.status == RuntimeStatus::Running
                        && info.profiles.iter().any(|p| p.name == profile) =>
                {
                    let busy = info.workers.get(WorkerStatus::Starting)
                        + info.workers.get(WorkerStatus::Running);
                    candidates.push((busy, member));
                }
                Ok(info) if info.status != RuntimeStatus::Running => {
                    failure = Some(SourceError::Unavailable);
                }
                Ok(_) => {}
                Err(error) => failure = Some(error),
            }
        }
        // Stable: equally busy members keep their name order.
        candidates.sort_by_key(|(busy, _)| *busy);
        (candidates.into_iter().map(|(_, m)| m).collect(), failure)
    }
}

/// Whether a failed create should be tried on the next member.
fn try_next(error: &SourceError) -> bool {
    match error {
        SourceError::Unreachable
        | SourceError::Timeout
        | SourceError::Unavailable
        | SourceError::TlsFailed(_)
        | SourceError::AuthFailed => true,
        SourceError::Rejected(detail) => detail.code == ErrorCode::WorkerLimitReached,
        _ => false,
    }
}

fn add_counts(total: &mut WorkerCounts, more: &WorkerCounts) {
    for status in WorkerStatus::ALL {
        for _ in 0..more.get(status) {
            total.add(status);
        }
    }
}

/// What the members say together: counts and worker limits add up, other limits
/// are the strictest, capabilities are those all members have, profiles those any
/// member has, and the epoch changes when any member's does.
fn combine(id: &RuntimeId, display_name: &str, infos: Vec<RuntimeInfo>) -> RuntimeInfo {
    let mut workers = WorkerCounts::default();
    let mut owners: BTreeMap<String, WorkerCounts> = BTreeMap::new();
    let mut profiles = Vec::new();
    let mut capabilities: Option<Vec<String>> = None;
    let mut limits: Option<Limits> = None;
    let mut subscribers = 0;
    let mut epochs = Vec::new();
    let mut draining = !infos.is_empty();
    for info in infos {
        add_counts(&mut workers, &info.workers);
        for (owner, counts) in &info.owners {
            add_counts(owners.entry(owner.clone()).or_default(), counts);
        }
        for profile in info.profiles {
            if !profiles
                .iter()
                .any(|p: &switchyard_protocol::ProfileInfo| p.name == profile.name)
            {
                profiles.push(profile);
            }
        }
        capabilities = Some(match capabilities {
            None => info.capabilities,
            Some(all) => all
                .into_iter()
                .filter(|c| info.capabilities.contains(c))
                .collect(),
        });
        limits = Some(match limits {
            None => info.limits,
            Some(l) => Limits {
                max_workers: l.max_workers.saturating_add(info.limits.max_workers),
                max_input_bytes: l.max_input_bytes.min(info.limits.max_input_bytes),
                max_body_bytes: l.max_body_bytes.min(info.limits.max_body_bytes),
                transcript_page_max: l.transcript_page_max.min(info.limits.transcript_page_max),
                event_backlog: l.event_backlog.min(info.limits.event_backlog),
                input_queue: l.input_queue.min(info.limits.input_queue),
            },
        });
        subscribers += info.subscribers;
        epochs.push(info.epoch);
        draining &= info.status == RuntimeStatus::Draining;
    }
    profiles.sort_by(|a, b| a.name.cmp(&b.name));
    RuntimeInfo {
        runtime_id: id.clone(),
        display_name: display_name.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        api_version: API_VERSION,
        status: if draining {
            RuntimeStatus::Draining
        } else {
            RuntimeStatus::Running
        },
        epoch: epochs.join("+"),
        capabilities: capabilities.unwrap_or_default(),
        profiles,
        workers,
        owners,
        subscribers,
        limits: limits.unwrap_or(Limits {
            max_workers: 0,
            max_input_bytes: 0,
            max_body_bytes: 0,
            transcript_page_max: 0,
            event_backlog: 0,
            input_queue: 0,
        }),
    }
}

#[async_trait::async_trait]
impl RuntimeSource for PoolSource {
    fn kind(&self) -> RuntimeSourceKind {
        if self
            .members
            .iter()
            .any(|m| m.source.kind() == RuntimeSourceKind::Remote)
        {
            RuntimeSourceKind::Remote
        } else {
            RuntimeSourceKind::Embedded
        }
    }

    /// Every member's view, combined; the pool is down when any member is (so that
    /// the backend shows it, rather than a pool silently missing workers).
    async fn info(&self) -> Result<RuntimeInfo, SourceError> {
        let answers = join_all(self.members.iter().map(|m| m.call(m.source.info()))).await;
        let infos = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(combine(&self.id, &self.display_name, infos))
    }

    /// The members' workers one member after the other, which is pool id order. A
    /// page that ends exactly at a member's last worker still has a `next`; the page
    /// after it may then be empty.
    async fn list_workers(&self, query: &WorkerQuery) -> Result<WorkerList, SourceError> {
        let mut left = query.limit.unwrap_or(DEFAULT_PAGE);
        let after = query.after.as_ref().map(|after| {
            // An id of no member still orders: start after it.
            let (name, inner) = after
                .as_str()
                .split_once('.')
                .unwrap_or((after.as_str(), ""));
            (format!("{name}."), inner.to_owned())
        });
        let mut workers = Vec::new();
        for member in &self.members {
            if left == 0 {
                break;
            }
            let prefix = format!("{}.", member.name);
            let member_after = match &after {
                Some((start, _)) if prefix < *start => continue,
                Some((start, inner)) if prefix == *start => WorkerId::new(inner.as_str()).ok(),
                _ => None,
            };
            let page = member
                .call(member.source.list_workers(&WorkerQuery {
                    status: query.status,
                    after: member_after,
                    limit: Some(left),
                }))
                .await?;
            left = left.saturating_sub(page.workers.len() as u32);
            for detail in page.workers {
                workers.push(member.relabel(detail, &self.id)?);
            }
            if page.next.is_some() {
                // This member has more: continue with it next time.
                left = 0;
            }
        }
        let next = if left == 0 {
            workers.last().map(|w: &WorkerDetail| w.worker_id.clone())
        } else {
            None
        };
        Ok(WorkerList { workers, next })
    }

    async fn create_worker(
        &self,
        request: &CreateWorkerRequest,
    ) -> Result<WorkerDetail, SourceError> {
        let (candidates, mut failure) = self.placement(&request.profile).await;
        for member in candidates {
            match member.call(member.source.create_worker(request)).await {
                Ok(detail) => return member.relabel(detail, &self.id),
                Err(error) if try_next(&error) => {
                    tracing::warn!(pool = %self.id, member = %member.name, %error, "a pool member did not take the worker; trying the next");
                    failure = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(failure.unwrap_or_else(|| {
            SourceError::Rejected(ErrorDetail::new(
                ErrorCode::UnknownProfile,
                format!(
                    "no member of the pool has a profile named {:?}; GET the runtime to see its profiles",
                    request.profile
                ),
            ))
        }))
    }

    async fn get_worker(&self, worker: &WorkerId) -> Result<WorkerDetail, SourceError> {
        let (member, inner) = self.route(worker)?;
        let detail = member
            .call(member.source.get_worker(&inner))
            .await
            .map_err(|e| member.relabel_error(e, &inner))?;
        member.relabel(detail, &self.id)
    }

    async fn input(&self, worker: &WorkerId, text: String) -> Result<InputAccepted, SourceError> {
        let (member, inner) = self.route(worker)?;
        member
            .call(member.source.input(&inner, text))
            .await
            .map_err(|e| member.relabel_error(e, &inner))
    }

    async fn resize(
        &self,
        worker: &WorkerId,
        size: ResizeRequest,
    ) -> Result<ResizeResponse, SourceError> {
        let (member, inner) = self.route(worker)?;
        let mut answer = member
            .call(member.source.resize(&inner, size))
            .await
            .map_err(|e| member.relabel_error(e, &inner))?;
        answer.worker_id = worker.clone();
        Ok(answer)
    }

    async fn cancel(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
        let (member, inner) = self.route(worker)?;
        let mut answer = member
            .call(member.source.cancel(&inner))
            .await
            .map_err(|e| member.relabel_error(e, &inner))?;
        answer.worker_id = worker.clone();
        Ok(answer)
    }

    async fn stop(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
        let (member, inner) = self.route(worker)?;
        let mut answer = member
            .call(member.source.stop(&inner))
            .await
            .map_err(|e| member.relabel_error(e, &inner))?;
        answer.worker_id = worker.clone();
        Ok(answer)
    }

    async fn delete(&self, worker: &WorkerId) -> Result<(), SourceError> {
        let (member, inner) = self.route(worker)?;
        member
            .call(member.source.delete(&inner))
            .await
            .map_err(|e| member.relabel_error(e, &inner))
    }

    async fn transcript(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<TranscriptPage, SourceError> {
        let (member, inner) = self.route(worker)?;
        member
            .call(member.source.transcript(&inner, after, limit))
            .await
            .map_err(|e| member.relabel_error(e, &inner))
    }

    /// The member's own stream (its epoch and positions pass through, so resuming
    /// works as with the member itself), with snapshots naming the pool's worker.
    async fn subscribe(
        &self,
        worker: &WorkerId,
        resume: Option<&ResumePoint>,
    ) -> Result<Box<dyn SourceEvents>, SourceError> {
        let (member, inner) = self.route(worker)?;
        let events = member
            .call(member.source.subscribe(&inner, resume))
            .await
            .map_err(|e| member.relabel_error(e, &inner))?;
        Ok(Box::new(PoolEvents {
            events,
            worker_id: worker.clone(),
        }))
    }

    async fn shutdown(&self) {
        join_all(self.members.iter().map(|m| m.source.shutdown())).await;
    }
}

/// A member's event stream whose snapshots name the pool's worker id.
struct PoolEvents {
    events: Box<dyn SourceEvents>,
    worker_id: WorkerId,
}

#[async_trait::async_trait]
impl SourceEvents for PoolEvents {
    async fn next(&mut self) -> Result<SourceItem, SourceEnd> {
        let item = self.events.next().await?;
        let SourceItem::Event {
            epoch,
            position,
            event,
        } = item
        else {
            return Ok(item);
        };
        if event.kind() != EventKind::Snapshot {
            return Ok(SourceItem::Event {
                epoch,
                position,
                event,
            });
        }
        let event = match event.decode() {
            Ok(WorkerEvent::Snapshot {
                mut worker,
                transcript,
                terminal,
            }) => {
                worker.worker_id = self.worker_id.clone();
                EventPayload::from(WorkerEvent::Snapshot {
                    worker,
                    transcript,
                    terminal,
                })
            }
            _ => {
                return Err(SourceEnd::Lost(SourceError::Protocol(
                    "a member sent a snapshot that does not decode".into(),
                )));
            }
        };
        Ok(SourceItem::Event {
            epoch,
            position,
            event,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool_of(names: &[&str]) -> Result<PoolSource, PoolError> {
        let mut pool = PoolSource::new(RuntimeId::new("p").unwrap(), "P");
        for name in names {
            let source: Arc<dyn RuntimeSource> = Arc::new(NoRuntime);
            pool = pool.member(
                name,
                RegisteredRuntime::new(RuntimeId::new("m").unwrap(), "M", source),
            )?;
        }
        Ok(pool)
    }

    /// A member that is never called in these tests.
    struct NoRuntime;

    #[async_trait::async_trait]
    impl RuntimeSource for NoRuntime {
        fn kind(&self) -> RuntimeSourceKind {
            RuntimeSourceKind::Embedded
        }
        async fn info(&self) -> Result<RuntimeInfo, SourceError> {
            Err(SourceError::Unreachable)
        }
        async fn list_workers(&self, _: &WorkerQuery) -> Result<WorkerList, SourceError> {
            Err(SourceError::Unreachable)
        }
        async fn create_worker(
            &self,
            _: &CreateWorkerRequest,
        ) -> Result<WorkerDetail, SourceError> {
            Err(SourceError::Unreachable)
        }
        async fn get_worker(&self, _: &WorkerId) -> Result<WorkerDetail, SourceError> {
            Err(SourceError::Unreachable)
        }
        async fn input(&self, _: &WorkerId, _: String) -> Result<InputAccepted, SourceError> {
            Err(SourceError::Unreachable)
        }
        async fn resize(
            &self,
            _: &WorkerId,
            _: ResizeRequest,
        ) -> Result<ResizeResponse, SourceError> {
            Err(SourceError::Unreachable)
        }
        async fn cancel(&self, _: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
            Err(SourceError::Unreachable)
        }
        async fn stop(&self, _: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
            Err(SourceError::Unreachable)
        }
        async fn delete(&self, _: &WorkerId) -> Result<(), SourceError> {
            Err(SourceError::Unreachable)
        }
        async fn transcript(
            &self,
            _: &WorkerId,
            _: u64,
            _: Option<u32>,
        ) -> Result<TranscriptPage, SourceError> {
            Err(SourceError::Unreachable)
        }
        async fn subscribe(
            &self,
            _: &WorkerId,
            _: Option<&ResumePoint>,
        ) -> Result<Box<dyn SourceEvents>, SourceError> {
            Err(SourceError::Unreachable)
        }
    }

    #[test]
    fn member_names_are_checked() {
        let cases: [(&[&str], Option<PoolError>); 5] = [
            (&["east", "west"], None),
            (&["a.b"], Some(PoolError::InvalidName("a.b".into()))),
            (&[""], Some(PoolError::InvalidName(String::new()))),
            (
                &["seventeen-letters"],
                Some(PoolError::InvalidName("seventeen-letters".into())),
            ),
            (
                &["east", "east"],
                Some(PoolError::DuplicateName("east".into())),
            ),
        ];
        for (names, expected) in cases {
            assert_eq!(pool_of(names).err(), expected, "{names:?}");
        }
    }

    #[test]
    fn members_are_kept_in_pool_id_order() {
        // '-' sorts before '.', so "a-b." < "a.": the pool lists a-b's workers first.
        let pool = pool_of(&["a", "b", "a-b"]).unwrap();
        let names: Vec<&str> = pool.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a-b", "a", "b"]);
    }

    #[test]
    fn worker_ids_route_to_their_member() {
        let pool = pool_of(&["east", "west"]).unwrap();
        let id = |s: &str| WorkerId::new(s).unwrap();
        let (member, inner) = pool.route(&id("west.w-1.2")).unwrap();
        assert_eq!((member.name.as_str(), inner.as_str()), ("west", "w-1.2"));
        for unknown in ["north.w-1", "w-1", "east."] {
            let err = pool.route(&id(unknown)).map(|_| ()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::WorkerNotFound, "{unknown}");
        }
        let long = id(&"w".repeat(60));
        let err = pool.members[0].outer(&long).unwrap_err();
        assert_eq!(err.code(), ErrorCode::RuntimeProtocolError);
    }
}
