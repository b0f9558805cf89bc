//! A subscriber's view of one worker's events: what it missed, then live events.

use std::collections::VecDeque;
use std::sync::Arc;

use switchyard_protocol::{
    OutgoingFrame, ResetReason, RuntimeCursor, ServerFrame, WorkerEvent, WorkerId,
};

use crate::fanout::{FanoutReceiver, StreamEnd};
use crate::log::LogEntry;

/// [`ServerFrame::Event`] without a `runtime_id`, borrowing its parts: the same
/// JSON (a test holds them to it) without a copy of the event.
#[derive(serde::Serialize)]
#[serde(tag = "type", rename = "event")]
struct EventFrame<'a> {
    cursor: &'a str,
    worker_id: &'a WorkerId,
    event: &'a WorkerEvent,
}

/// One item a subscriber receives.
///
/// Exhaustive on purpose, as [`StreamEnd`] is: every consumer (a server's
/// WebSocket, the registry's embedded source) must decide what each item means.
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

    /// The next frame to send, or why the subscription ended: [`Subscription::next`]
    /// as the runtime surface's frame ([`Subscription::frame`]), encoded without
    /// copying the event, and once for every subscriber a live event reaches
    /// together.
    pub async fn next_frame(&mut self) -> Result<OutgoingFrame, StreamEnd> {
        if let Some(item) = self.pending.pop_front() {
            return Ok(self.encoded(&item));
        }
        loop {
            let entry = self.live.recv().await?;
            if entry.position <= self.last_position {
                continue;
            }
            self.last_position = entry.position;
            let Some(shared) = &entry.shared_frame else {
                return Ok(self.encoded(&SubscriptionItem::Event {
                    position: entry.position,
                    event: entry.event,
                }));
            };
            if let Some(text) = shared.get() {
                return Ok(OutgoingFrame::Encoded(text.clone()));
            }
            return Ok(match self.event_frame_text(entry.position, &entry.event) {
                Ok(text) => OutgoingFrame::Encoded(shared.get_or_init(|| text.into()).clone()),
                Err(_) => self
                    .frame(&SubscriptionItem::Event {
                        position: entry.position,
                        event: entry.event,
                    })
                    .into(),
            });
        }
    }

    /// `item`'s frame as text (an event's without copying it), or as the value if
    /// it does not encode (the session reports that).
    fn encoded(&self, item: &SubscriptionItem) -> OutgoingFrame {
        let text = match item {
            SubscriptionItem::Event { position, event } => self.event_frame_text(*position, event),
            SubscriptionItem::Reset(_) => serde_json::to_string(&self.frame(item)),
        };
        match text {
            Ok(text) => OutgoingFrame::Text(text),
            Err(_) => self.frame(item).into(),
        }
    }

    /// The JSON of [`Subscription::frame`] for an event, from the event borrowed.
    fn event_frame_text(&self, position: u64, event: &WorkerEvent) -> serde_json::Result<String> {
        serde_json::to_string(&EventFrame {
            cursor: &self.cursor_at(position),
            worker_id: &self.worker_id,
            event,
        })
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
