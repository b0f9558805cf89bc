//! A subscriber's view of one worker's events: what it missed, then live events.

use std::collections::VecDeque;
use std::sync::Arc;

use switchyard_protocol::{ResetReason, RuntimeCursor, ServerFrame, WorkerEvent, WorkerId};

use crate::fanout::{FanoutReceiver, StreamEnd};
use crate::log::LogEntry;

/// One item a subscriber receives.
#[derive(Debug, Clone)]
pub enum SubscriptionItem {
    /// A worker event at a log position.
    Event {
        /// Position in the worker's log; the cursor encodes it.
        position: u64,
        /// The event.
        event: Arc<WorkerEvent>,
    },
    /// The subscriber must drop what it holds; a snapshot event follows.
    Reset(ResetReason),
}

/// A live subscription to one worker's events, created by
/// [`crate::Runtime::subscribe`].
///
/// It first yields what the subscription was opened with (a snapshot, or the events
/// after the cursor, or a reset then a snapshot), then live events. Each live event
/// is delivered once, in log order. It ends with [`StreamEnd`] when the subscriber
/// falls behind, the worker is removed, or the runtime shuts down.
pub struct Subscription {
    worker_id: WorkerId,
    epoch: Arc<str>,
    pending: VecDeque<SubscriptionItem>,
    live: FanoutReceiver<LogEntry>,
    last_position: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("worker_id", &self.worker_id)
            .field("pending", &self.pending.len())
            .field("last_position", &self.last_position)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(
        worker_id: WorkerId,
        epoch: Arc<str>,
        pending: VecDeque<SubscriptionItem>,
        live: FanoutReceiver<LogEntry>,
        start_after: u64,
    ) -> Self {
        Self {
            worker_id,
            epoch,
            pending,
            live,
            last_position: start_after,
        }
    }

    /// The worker subscribed to.
    pub fn worker_id(&self) -> &WorkerId {
        &self.worker_id
    }

    /// The next item, or why the subscription ended.
    pub async fn next(&mut self) -> Result<SubscriptionItem, StreamEnd> {
        if let Some(item) = self.pending.pop_front() {
            return Ok(item);
        }
        loop {
            let entry = self.live.recv().await?;
            if entry.position <= self.last_position {
                continue;
            }
            self.last_position = entry.position;
            return Ok(SubscriptionItem::Event {
                position: entry.position,
                event: entry.event,
            });
        }
    }

    /// Resolves when the runtime has ended this subscription (slow consumer, worker
    /// removed, shutdown), even if items are still queued.
    pub async fn ended(&self) -> StreamEnd {
        self.live.ended().await
    }

    /// The opaque cursor for an event at `position` of this subscription's worker.
    pub fn cursor_at(&self, position: u64) -> String {
        RuntimeCursor {
            epoch: self.epoch.to_string(),
            worker_id: self.worker_id.clone(),
            position,
        }
        .encode()
    }

    /// The runtime-surface frame for an item (no `runtime_id`).
    pub fn frame(&self, item: &SubscriptionItem) -> ServerFrame {
        match item {
            SubscriptionItem::Event { position, event } => ServerFrame::Event {
                cursor: self.cursor_at(*position),
                runtime_id: None,
                worker_id: self.worker_id.clone(),
                event: WorkerEvent::clone(event),
            },
            SubscriptionItem::Reset(reason) => ServerFrame::Reset { reason: *reason },
        }
    }
}
