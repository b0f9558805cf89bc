//! [`Viewer`]: one client's view of a watched worker, turning hub items into backend
//! frames (backend cursors, `runtime_id`, policy filtering) and guaranteeing order,
//! no duplicate cursor, and a reset whenever it cannot continue seamlessly.

use std::collections::VecDeque;
use std::sync::Arc;

use switchyard_protocol::{ClientFrame, OutgoingFrame, ResetReason, ServerFrame};
use switchyard_runtime::{FanoutReceiver, StreamEnd};

use super::channel::{Channel, HubItem, Join, Stamped};
use super::commands::{CommandLane, CommandTicket};
use crate::caller::Caller;
use crate::error::RegistryError;
use crate::policy::Policy;
use crate::registry::RuntimeRegistry;

/// A viewer of one worker. Dropping it leaves the channel.
pub struct Viewer {
    channel: Arc<Channel>,
    initial: VecDeque<HubItem>,
    live: FanoutReceiver<HubItem>,
    awaiting_snapshot: bool,
    last: Option<(Arc<str>, u64)>,
    /// The client holds nothing of this stream: it came without a cursor, or was
    /// sent a reset, and nothing was delivered since. A reset then tells it nothing.
    holds_nothing: bool,
    policy: Arc<dyn Policy>,
    caller: Caller,
    /// Set for interactive viewers.
    commands: Option<CommandLane>,
}

impl std::fmt::Debug for Viewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer")
            .field("runtime_id", &self.channel.runtime_id)
            .field("worker_id", &self.channel.worker_id)
            .finish_non_exhaustive()
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.channel.remove_viewer();
    }
}

/// What one hub item becomes for this viewer: a frame, or nothing.
type Step = Option<OutgoingFrame>;

impl Viewer {
    pub(crate) fn new(
        channel: Arc<Channel>,
        join: Join,
        policy: Arc<dyn Policy>,
        caller: Caller,
    ) -> Self {
        Self {
            channel,
            initial: join.initial,
            live: join.live,
            holds_nothing: !join.resumed,
            awaiting_snapshot: join.awaiting_snapshot,
            last: join.last,
            policy,
            caller,
            commands: None,
        }
    }

    pub(crate) fn make_interactive(&mut self, registry: &Arc<RuntimeRegistry>) {
        self.commands = Some(self.channel.commands(registry));
    }

    /// True for a viewer from [`super::ObservationHub::watch_interactive`].
    pub fn is_interactive(&self) -> bool {
        self.commands.is_some()
    }

    /// Who watches (and, for an interactive viewer, whose commands these are).
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Queues an input or resize for the worker, behind every command any viewer of
    /// it submitted before; the ticket resolves to the outcome. The command is
    /// carried out as this viewer's caller, so the policy (role, runtime grants,
    /// ownership) is asked again for each one. A full queue is `worker_busy` at once;
    /// a viewer that is not interactive is `forbidden`.
    pub fn submit(&self, command: ClientFrame) -> Result<CommandTicket, RegistryError> {
        match &self.commands {
            Some(lane) => lane.submit(&self.caller, command),
            None => Err(RegistryError::Forbidden(
                "this event stream was not opened with interactive=true".into(),
            )),
        }
    }

    /// The next frame for the client, or why the stream ended.
    pub async fn next_frame(&mut self) -> Result<OutgoingFrame, StreamEnd> {
        loop {
            let item = match self.initial.pop_front() {
                Some(item) => item,
                None => self.live.recv().await?,
            };
            if let Some(frame) = self.step(item) {
                return Ok(frame);
            }
        }
    }

    /// Resolves when the hub has ended this viewer (cut off as too slow, worker gone).
    pub async fn ended(&self) -> StreamEnd {
        self.live.ended().await
    }

    fn step(&mut self, item: HubItem) -> Step {
        match item {
            HubItem::Upstream { state, error } => {
                Some(ServerFrame::Upstream { state, error }.into())
            }
            // Nothing to drop (a newcomer, or a viewer reset already and given
            // nothing since): the snapshot that follows is all it needs.
            HubItem::Reset(_) if self.holds_nothing => {
                self.awaiting_snapshot = true;
                self.last = None;
                None
            }
            // From upstream (or the join): a snapshot follows without asking.
            HubItem::Reset(reason) => {
                self.awaiting_snapshot = true;
                self.last = None;
                self.holds_nothing = true;
                Some(ServerFrame::Reset { reason }.into())
            }
            HubItem::Event(stamped) => self.event(stamped),
            HubItem::Refused { point, reason } => {
                let mine = self.last.as_ref().is_some_and(|(epoch, position)| {
                    *epoch == point.epoch && *position == point.position
                });
                if mine { self.reset(reason, None) } else { None }
            }
        }
    }

    /// A reset this viewer decided on: it continues from `then` (a snapshot in hand)
    /// or from a fresh snapshot it asks the channel for.
    fn reset(&mut self, reason: ResetReason, then: Option<Stamped>) -> Step {
        self.awaiting_snapshot = true;
        self.last = None;
        self.holds_nothing = true;
        match then {
            Some(snapshot) => self.initial.push_front(HubItem::Event(snapshot)),
            None => self.channel.request_refresh(),
        }
        Some(ServerFrame::Reset { reason }.into())
    }

    fn event(&mut self, stamped: Stamped) -> Step {
        if self.awaiting_snapshot {
            if !stamped.is_snapshot() {
                return None; // the snapshot to come includes it
            }
            self.awaiting_snapshot = false;
            return self.deliver(stamped);
        }
        let Some((epoch, position)) = self.last.clone() else {
            return self.deliver(stamped);
        };
        if *epoch != *stamped.epoch {
            let then = stamped.is_snapshot().then_some(stamped);
            return self.reset(ResetReason::RuntimeRestarted, then);
        }
        if stamped.is_snapshot() {
            if stamped.position > position {
                // Events between what we delivered and this snapshot are unknown.
                return self.reset(ResetReason::CursorExpired, Some(stamped));
            }
            return None; // a refresh for newcomers
        }
        if stamped.position <= position {
            return None; // already delivered
        }
        if stamped.position > position.saturating_add(1) {
            return self.reset(ResetReason::CursorExpired, None);
        }
        self.deliver(stamped)
    }

    fn deliver(&mut self, stamped: Stamped) -> Step {
        self.last = Some((stamped.epoch.clone(), stamped.position));
        self.holds_nothing = false;
        let channel = &self.channel;
        if !self.policy.filters_events() {
            return Some(OutgoingFrame::Encoded(
                stamped.encoded(&channel.runtime_id, &channel.worker_id),
            ));
        }
        let event = match stamped.event.decode() {
            Ok(event) => event,
            Err(error) => {
                // A filtering policy must see what it lets through.
                tracing::warn!(%error, "an event that does not decode is withheld from a filtering policy's viewers");
                return None;
            }
        };
        let event = self.policy.filter_event(
            &self.caller,
            &channel.runtime_id,
            &channel.worker_id,
            event,
        )?;
        Some(
            ServerFrame::Event {
                cursor: stamped
                    .cursor(&channel.runtime_id, &channel.worker_id)
                    .encode(),
                runtime_id: Some(channel.runtime_id.clone()),
                worker_id: channel.worker_id.clone(),
                event,
            }
            .into(),
        )
    }
}
