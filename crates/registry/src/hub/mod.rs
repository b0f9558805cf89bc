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

pub use channel::HubSettings;
pub use commands::{COMMAND_LANE, CommandTicket};
pub use cursor::{BackendCursor, BackendCursorError};
pub use viewer::Viewer;

use crate::caller::Caller;
use crate::error::RegistryError;
use crate::policy::Action;
use crate::registry::RuntimeRegistry;
use crate::source::ResumePoint;
use channel::Channel;

type Key = (RuntimeId, WorkerId);

pub(crate) struct HubInner {
    registry: Arc<RuntimeRegistry>,
    settings: HubSettings,
    channels: Mutex<HashMap<Key, Arc<Channel>>>,
}

impl HubInner {
    fn channels(&self) -> MutexGuard<'_, HashMap<Key, Arc<Channel>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Removes `channel` unconditionally.
    pub(crate) fn remove(&self, channel: &Arc<Channel>) {
        let mut channels = self.channels();
        self.forget(&mut channels, channel);
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
                settings,
                channels: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The registry it watches through.
    pub fn registry(&self) -> &Arc<RuntimeRegistry> {
        &self.inner.registry
    }

    /// Workers watched right now (one upstream each).
    pub fn channel_count(&self) -> usize {
        self.inner.channels().len()
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
        let source = registry.source(runtime_id)?;
        let channel = {
            let mut channels = self.inner.channels();
            let key = (runtime_id.clone(), worker_id.clone());
            let channel = match channels.get(&key) {
                Some(channel) => channel.clone(),
                None => {
                    let channel = Arc::new(Channel::new(
                        runtime_id.clone(),
                        worker_id.clone(),
                        self.inner.settings,
                    ));
                    let resume = cursor.as_ref().map(|c| ResumePoint {
                        epoch: c.epoch.as_str().into(),
                        position: c.position,
                    });
                    tokio::spawn(channel::run(
                        channel.clone(),
                        source,
                        Arc::downgrade(&self.inner),
                        resume,
                    ));
                    channels.insert(key, channel.clone());
                    channel
                }
            };
            channel.add_viewer();
            channel
        };
        let join = channel.join(cursor.as_ref());
        Ok(Viewer::new(
            channel,
            join,
            registry.policy().clone(),
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
