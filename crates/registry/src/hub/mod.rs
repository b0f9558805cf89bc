//! The observation hub: fan-out of workers' live event streams to many viewers over
//! one upstream subscription per watched worker, with backend cursors and
//! self-healing upstreams.
//!
//! Who owns what:
//! - [`ObservationHub`] owns the map of channels (one per watched `runtime_id +
//!   worker_id`), under one lock that joins and removals share, so a channel is never
//!   removed while a viewer joins it.
//! - Each channel's task (`channel::run`) owns the single upstream subscription.
//! - Each [`Viewer`] owns a bounded queue fed by the channel; a viewer that falls
//!   behind is cut off (4408) without slowing the channel or other viewers.
//! - Interactive viewers share the channel's command lane (`commands`): one ordered,
//!   bounded queue per worker, carried out one command at a time.

mod channel;
mod commands;
pub mod cursor;
mod viewer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use switchyard_protocol::{ErrorCode, ErrorDetail, RuntimeId, WorkerId};
use switchyard_runtime::StreamEnd;

pub use channel::HubSettings;
pub use commands::{COMMAND_LANE, CommandTicket};
pub use cursor::{BackendCursor, BackendCursorError};
pub use viewer::Viewer;

use crate::caller::Caller;
use crate::error::RegistryError;
use crate::metrics::{HubMetrics, ScrapeTime, encode_gauges};
use crate::policy::Action;
use crate::reconfigure::Reconfigured;
use crate::registry::RuntimeRegistry;
use crate::source::{ResumePoint, RuntimeSource};
use channel::Channel;

type Key = (RuntimeId, WorkerId);

pub(crate) struct HubInner {
    registry: Arc<RuntimeRegistry>,
    /// Copied into each channel when it opens ([`ObservationHub::resize`] changes it
    /// for the channels that open after).
    settings: Mutex<HubSettings>,
    channels: Mutex<HashMap<Key, Arc<Channel>>>,
    metrics: HubMetrics,
    /// The runtime the hub was made on, where its channels run (a subscription
    /// made on a server's connection thread would otherwise tie the worker's
    /// upstream to that one thread, next to the viewers' sessions); the caller's
    /// when the hub was made outside one.
    home: Option<tokio::runtime::Handle>,
}

impl HubInner {
    fn channels(&self) -> MutexGuard<'_, HashMap<Key, Arc<Channel>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The settings a channel opens with.
    fn settings(&self) -> HubSettings {
        *self.settings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Removes `channel` if nobody watches it; false when a viewer joined meanwhile.
    pub(crate) fn remove_if_idle(&self, channel: &Arc<Channel>) -> bool {
        let mut channels = self.channels();
        if channel.viewer_count() > 0 {
            return false;
        }
        self.forget(&mut channels, channel);
        true
    }

    /// The source a channel of `runtime_id` subscribes through: the one in force now.
    pub(crate) fn source(
        &self,
        runtime_id: &RuntimeId,
    ) -> Result<Arc<dyn RuntimeSource>, RegistryError> {
        self.registry.source(runtime_id)
    }

    /// Removes `channel` unconditionally.
    pub(crate) fn remove(&self, channel: &Arc<Channel>) {
        let mut channels = self.channels();
        self.forget(&mut channels, channel);
    }

    /// Channels and viewers per runtime, for the metrics.
    fn encode_gauges(
        &self,
        encoder: &mut prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> std::fmt::Result {
        let ids = self.registry.runtime_ids();
        let mut per_runtime: HashMap<&RuntimeId, (i64, i64)> =
            ids.iter().map(|id| (id, (0, 0))).collect();
        for channel in self.channels().values() {
            if let Some((channels, viewers)) = per_runtime.get_mut(&channel.runtime_id) {
                *channels += 1;
                *viewers += channel.viewer_count() as i64;
            }
        }
        let counts: Vec<(&RuntimeId, i64, i64)> = ids
            .iter()
            .map(|id| {
                let (channels, viewers) = per_runtime.get(id).copied().unwrap_or_default();
                (id, channels, viewers)
            })
            .collect();
        encode_gauges(
            encoder,
            "switchyard_hub_channels",
            "Workers watched through the hub right now (one upstream event stream each), by runtime",
            counts
                .iter()
                .map(|&(id, channels, _)| ([("runtime_id", id.as_str())], channels)),
        )?;
        encode_gauges(
            encoder,
            "switchyard_hub_viewers",
            "Event-stream viewers attached to the hub right now, by runtime",
            counts
                .iter()
                .map(|&(id, _, viewers)| ([("runtime_id", id.as_str())], viewers)),
        )
    }

    fn forget(&self, channels: &mut HashMap<Key, Arc<Channel>>, channel: &Arc<Channel>) {
        let key = (channel.runtime_id.clone(), channel.worker_id.clone());
        if channels.get(&key).is_some_and(|c| Arc::ptr_eq(c, channel)) {
            channels.remove(&key);
        }
    }
}

/// The hub. Cheap to clone.
#[derive(Clone)]
pub struct ObservationHub {
    inner: Arc<HubInner>,
}

impl std::fmt::Debug for ObservationHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservationHub")
            .field("channels", &self.channel_count())
            .finish_non_exhaustive()
    }
}

impl ObservationHub {
    /// A hub over `registry`.
    pub fn new(registry: Arc<RuntimeRegistry>, settings: HubSettings) -> Self {
        Self {
            inner: Arc::new(HubInner {
                registry,
                settings: Mutex::new(settings),
                channels: Mutex::new(HashMap::new()),
                metrics: HubMetrics::default(),
                home: tokio::runtime::Handle::try_current().ok(),
            }),
        }
    }

    /// Sets the queue of each viewer (`viewer_queue` items before it is cut off) and
    /// the backlog of each watched worker (`backlog` events) for the event streams
    /// that open from now on: a worker's stream opens with its first viewer and
    /// closes after the linger once its last viewer has left. Streams already open
    /// keep the sizes they opened with (their viewers' queues are in use). A reload
    /// calls this.
    pub fn resize(&self, viewer_queue: usize, backlog: usize) {
        let mut settings = self
            .inner
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        settings.viewer_queue = viewer_queue;
        settings.backlog = backlog;
    }

    /// The settings the next channel opens with.
    pub fn settings(&self) -> HubSettings {
        self.inner.settings()
    }

    /// Registers the hub's metrics: its counters by runtime, and a collector that
    /// counts channels and viewers per runtime when scraped (every configured runtime
    /// is listed, at 0 when nobody watches its workers).
    pub fn register_metrics(&self, metrics: &mut prometheus_client::registry::Registry) {
        self.inner.metrics.register(metrics);
        metrics.register_collector(Box::new(ScrapeTime {
            source: Arc::downgrade(&self.inner),
            encode: HubInner::encode_gauges,
        }));
    }

    /// The registry it watches through.
    pub fn registry(&self) -> &Arc<RuntimeRegistry> {
        &self.inner.registry
    }

    /// Workers watched right now (one upstream each).
    pub fn channel_count(&self) -> usize {
        self.inner.channels().len()
    }

    /// Follows a reconfiguration of the registry (call it right after
    /// [`RuntimeRegistry::reconfigure`]): every viewer of a removed runtime is closed
    /// as for a worker that is gone (4404) and its channel ends with its upstream;
    /// every channel of a replaced runtime resubscribes through the new runtime from
    /// its last position, so its viewers continue without a gap or a duplicate (or
    /// get a reset and a snapshot, when the new runtime cannot resume). Channels of
    /// unchanged runtimes are not touched.
    pub fn runtimes_changed(&self, changes: &Reconfigured) {
        let mut closed = Vec::new();
        let mut refreshed = Vec::new();
        {
            let mut channels = self.inner.channels();
            channels.retain(|(runtime_id, _), channel| {
                if changes.removed.contains(runtime_id) {
                    closed.push(channel.clone());
                    false
                } else {
                    if changes.replaced.contains(runtime_id) {
                        refreshed.push(channel.clone());
                    }
                    true
                }
            });
        }
        for channel in closed {
            channel.retire(StreamEnd::Removed);
        }
        for channel in refreshed {
            channel.source_replaced();
        }
    }

    /// Starts watching a worker. Everything that can be refused is refused here,
    /// before a WebSocket upgrade: policy, a bad or foreign cursor, an unknown runtime
    /// or worker, an unreachable runtime.
    pub async fn watch(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker_id: &WorkerId,
        cursor: Option<&str>,
    ) -> Result<Viewer, RegistryError> {
        let registry = &self.inner.registry;
        registry.authorize(caller, runtime_id, Some(worker_id), Action::Observe)?;
        let cursor = cursor
            .map(|c| BackendCursor::decode_for(c, runtime_id, worker_id))
            .transpose()
            .map_err(|e| {
                RegistryError::Invalid(ErrorDetail::new(ErrorCode::InvalidCursor, e.to_string()))
            })?;
        // Existence (and reachability) before the upgrade.
        registry.get_worker(caller, runtime_id, worker_id).await?;
        let channel = {
            let mut channels = self.inner.channels();
            let key = (runtime_id.clone(), worker_id.clone());
            let channel = match channels.get(&key) {
                Some(channel) => channel.clone(),
                None => {
                    let channel = Arc::new(Channel::new(
                        runtime_id.clone(),
                        worker_id.clone(),
                        self.inner.settings(),
                        self.inner.metrics.for_runtime(runtime_id.as_str()),
                    ));
                    let resume = cursor.as_ref().map(|c| ResumePoint {
                        epoch: c.epoch.as_str().into(),
                        position: c.position,
                    });
                    let run = channel::run(channel.clone(), Arc::downgrade(&self.inner), resume);
                    match &self.inner.home {
                        Some(home) => drop(home.spawn(run)),
                        None => drop(tokio::spawn(run)),
                    }
                    channels.insert(key, channel.clone());
                    channel
                }
            };
            channel.add_viewer();
            channel
        };
        let join = match channel.join(cursor.as_ref()) {
            Ok(join) => join,
            Err(channel::CursorAhead) => {
                channel.remove_viewer();
                return Err(RegistryError::Invalid(ErrorDetail::new(
                    ErrorCode::InvalidCursor,
                    "the cursor is ahead of this worker's event stream; reconnect without one",
                )));
            }
        };
        Ok(Viewer::new(
            channel,
            join,
            registry.policy(),
            caller.clone(),
        ))
    }

    /// Like [`ObservationHub::watch`], for a viewer that may also send input and
    /// resize the terminal ([`Viewer::submit`]). The policy must allow `caller`
    /// [`Action::Input`] besides [`Action::Observe`] (checked first, so a caller
    /// without the command role is `forbidden` before anything else is learnt); each
    /// command is checked again (input or resize) when it is carried out.
    pub async fn watch_interactive(
        &self,
        caller: &Caller,
        runtime_id: &RuntimeId,
        worker_id: &WorkerId,
        cursor: Option<&str>,
    ) -> Result<Viewer, RegistryError> {
        let registry = &self.inner.registry;
        registry.authorize(caller, runtime_id, Some(worker_id), Action::Input)?;
        let mut viewer = self.watch(caller, runtime_id, worker_id, cursor).await?;
        viewer.make_interactive(registry);
        Ok(viewer)
    }
}
