//! Bounded fan-out from one producer to many subscribers.
//!
//! Each subscriber has its own bounded queue. Publishing never waits: a subscriber
//! whose queue is full is cut off at once (its receiver ends with
//! [`StreamEnd::SlowConsumer`] after the items already queued), so one stalled reader
//! never slows the producer or the other readers. Memory is bounded by
//! `subscribers × capacity` items, and items are usually `Arc`s.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{Notify, mpsc};

/// Why a subscription ended.
///
/// Exhaustive on purpose: every consumer must decide what each ending means (a
/// close code, a source's ending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The subscriber fell too far behind (close code 4408).
    SlowConsumer,
    /// The source went away, for example the worker was deleted (close code 4404).
    Removed,
    /// The process is shutting down (close code 1001).
    Shutdown,
    /// What the viewer's stream was opened with is no longer accepted: its session
    /// was signed out or expired, a reload removed or changed its token, or took
    /// its page's origin out of the allowed ones (close code 1001, reason
    /// `access_ended`). A backend decides this for its viewers, and a runtime for
    /// a stream whose bearer token a reload removed.
    AccessEnded,
}

#[derive(Debug, Default)]
struct EndState {
    reason: OnceLock<StreamEnd>,
    notify: Notify,
    /// The fan-out's tally ([`Fanout::with_tally`]), if it keeps one.
    tally: Option<Arc<AtomicUsize>>,
    /// Whether this subscriber is in `tally`: from its subscribe until its slot is
    /// forgotten or its receiver dropped, whichever comes first.
    counted: AtomicBool,
}

impl EndState {
    fn end(&self, reason: StreamEnd) {
        let _ = self.reason.set(reason);
        self.notify.notify_waiters();
    }

    /// Takes the subscriber out of the tally, once.
    fn uncount(&self) {
        if let Some(tally) = &self.tally
            && self.counted.swap(false, Ordering::AcqRel)
        {
            tally.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

struct Slot<T> {
    tx: mpsc::Sender<T>,
    state: Arc<EndState>,
}

/// The producer side.
pub struct Fanout<T> {
    slots: Vec<Slot<T>>,
    capacity: usize,
    tally: Option<Arc<AtomicUsize>>,
}

impl<T: Clone> Fanout<T> {
    /// A fan-out whose subscribers each queue at most `capacity` items.
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: Vec::new(),
            capacity: capacity.max(1),
            tally: None,
        }
    }

    /// Like [`Fanout::new`], and keeps `tally` (which many fan-outs may share) up to
    /// date with its live subscribers, as [`Fanout::len`] would count them: one
    /// from its subscribe until it is cut off, ended or forgotten, or its receiver
    /// is dropped. Lets a total over many sources be read without visiting them.
    pub fn with_tally(capacity: usize, tally: Arc<AtomicUsize>) -> Self {
        let mut fanout = Self::new(capacity);
        fanout.tally = Some(tally);
        fanout
    }

    /// Forgets the slots whose receivers are gone.
    fn forget_departed(&mut self) {
        self.slots.retain(|slot| {
            let departed = slot.tx.is_closed();
            if departed {
                slot.state.uncount();
            }
            !departed
        });
    }

    /// Adds a subscriber, first forgetting those that left: [`Fanout::publish`]
    /// forgets them too, but a quiet source (an ended worker) never publishes, and
    /// every viewer that came and went would keep its slot and its queue's first
    /// block until the source went away.
    pub fn subscribe(&mut self) -> FanoutReceiver<T> {
        self.subscribe_with_room(0)
    }

    /// [`Fanout::subscribe`] for a subscriber whose queue holds `extra` items more
    /// than the others': one that is owed a burst it did not cause (a replay it asked
    /// for) before live items. Room unused costs nothing (the queue grows in blocks).
    pub fn subscribe_with_room(&mut self, extra: usize) -> FanoutReceiver<T> {
        self.forget_departed();
        let (tx, rx) = mpsc::channel(self.capacity.saturating_add(extra));
        let state = Arc::new(EndState {
            counted: AtomicBool::new(self.tally.is_some()),
            tally: self.tally.clone(),
            ..EndState::default()
        });
        if let Some(tally) = &self.tally {
            tally.fetch_add(1, Ordering::AcqRel);
        }
        self.slots.push(Slot {
            tx,
            state: state.clone(),
        });
        FanoutReceiver { rx, state }
    }

    /// Sends `item` to every subscriber without waiting; cuts off those that are full
    /// and forgets those that left. Returns how many were cut off.
    pub fn publish(&mut self, item: &T) -> usize {
        let mut cut_off = 0;
        self.slots
            .retain(|slot| match slot.tx.try_send(item.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    slot.state.uncount();
                    slot.state.end(StreamEnd::SlowConsumer);
                    cut_off += 1;
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    slot.state.uncount();
                    false
                }
            });
        cut_off
    }

    /// Ends every subscription with `reason` (after what is already queued).
    pub fn close(&mut self, reason: StreamEnd) {
        for slot in self.slots.drain(..) {
            slot.state.uncount();
            slot.state.end(reason);
        }
    }

    /// Whether a publication may reach more than one subscriber (those that left
    /// but are not yet forgotten count: no walk through the slots).
    pub fn may_reach_several(&self) -> bool {
        self.slots.len() > 1
    }

    /// How many subscribers are attached.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| !s.tx.is_closed()).count()
    }

    /// True when nobody is subscribed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for Fanout<T> {
    fn drop(&mut self) {
        for slot in self.slots.drain(..) {
            slot.state.uncount();
            slot.state.end(StreamEnd::Removed);
        }
    }
}

/// The subscriber side.
#[derive(Debug)]
pub struct FanoutReceiver<T> {
    rx: mpsc::Receiver<T>,
    state: Arc<EndState>,
}

impl<T> Drop for FanoutReceiver<T> {
    fn drop(&mut self) {
        self.state.uncount();
    }
}

impl<T> FanoutReceiver<T> {
    /// The next item, or why the subscription ended.
    pub async fn recv(&mut self) -> Result<T, StreamEnd> {
        match self.rx.recv().await {
            Some(item) => Ok(item),
            None => Err(self
                .state
                .reason
                .get()
                .copied()
                .unwrap_or(StreamEnd::Removed)),
        }
    }

    /// Resolves once the subscription has been ended by the producer (cut off, removed
    /// or shut down), even while items are still queued. Lets a writer that is stuck on
    /// a slow socket give up.
    pub async fn ended(&self) -> StreamEnd {
        loop {
            let notified = self.state.notify.notified();
            if let Some(reason) = self.state.reason.get() {
                return *reason;
            }
            notified.await;
        }
    }

    /// Why the subscription ended, if it has.
    pub fn end_reason(&self) -> Option<StreamEnd> {
        self.state.reason.get().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_subscriber_is_cut_off_and_the_others_get_everything() {
        let mut fanout = Fanout::new(4);
        let mut stalled = fanout.subscribe();
        let mut reader = fanout.subscribe();
        for i in 0..4 {
            fanout.publish(&i);
            assert_eq!(reader.recv().await, Ok(i));
        }
        assert_eq!(fanout.publish(&4), 1, "one subscriber cut off");
        assert_eq!(reader.recv().await, Ok(4));
        assert_eq!(fanout.publish(&5), 0, "and only once");
        assert_eq!(fanout.len(), 1);
        assert_eq!(stalled.ended().await, StreamEnd::SlowConsumer);
        for i in 0..4 {
            assert_eq!(stalled.recv().await, Ok(i));
        }
        assert_eq!(stalled.recv().await, Err(StreamEnd::SlowConsumer));
    }

    #[tokio::test]
    async fn subscribers_that_left_a_quiet_source_do_not_pile_up() {
        let mut fanout = Fanout::<u8>::new(2);
        let mut staying = fanout.subscribe();
        for _ in 0..1000 {
            drop(fanout.subscribe());
        }
        let _last = fanout.subscribe();
        assert_eq!(fanout.slots.len(), 2, "slots of departed subscribers kept");
        assert_eq!(fanout.len(), 2);
        fanout.publish(&7);
        assert_eq!(staying.recv().await, Ok(7));
    }

    #[tokio::test]
    async fn close_and_drop_end_subscriptions_with_their_reason() {
        let mut fanout = Fanout::<u8>::new(2);
        let mut a = fanout.subscribe();
        fanout.close(StreamEnd::Shutdown);
        assert_eq!(a.recv().await, Err(StreamEnd::Shutdown));
        let mut b = fanout.subscribe();
        drop(fanout);
        assert_eq!(b.recv().await, Err(StreamEnd::Removed));
    }

    #[tokio::test]
    async fn departed_subscribers_are_forgotten() {
        let mut fanout = Fanout::<u8>::new(2);
        let a = fanout.subscribe();
        drop(a);
        fanout.publish(&1);
        assert!(fanout.is_empty());
    }

    #[tokio::test]
    async fn a_shared_tally_counts_what_len_counts_across_fanouts() {
        let tally = Arc::new(AtomicUsize::new(0));
        let count = || tally.load(Ordering::Acquire);
        let mut one = Fanout::<u8>::with_tally(1, tally.clone());
        let mut other = Fanout::<u8>::with_tally(1, tally.clone());
        let stalled = one.subscribe();
        let mut reader = one.subscribe();
        let leaving = other.subscribe();
        let closed = other.subscribe();
        assert_eq!(count(), 4);

        drop(leaving);
        assert_eq!(count(), 3, "a dropped receiver leaves at once");
        one.publish(&1);
        assert_eq!(reader.recv().await, Ok(1));
        assert_eq!(one.publish(&2), 1);
        assert_eq!(count(), 2, "a cut-off subscriber leaves");
        drop(stalled);
        assert_eq!(count(), 2, "and is not taken out twice");
        other.close(StreamEnd::Shutdown);
        assert_eq!(count(), 1, "ended subscribers leave");
        drop(closed);
        drop(one);
        assert_eq!(count(), 0, "a dropped fan-out's subscribers leave");
        drop(reader);
        assert_eq!(count(), 0);
        assert_eq!(other.len(), 0);
    }
}
