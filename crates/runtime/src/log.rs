//! A worker's event log: positions, a bounded backlog for resuming, and live fan-out.

use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};

use switchyard_protocol::WorkerEvent;

use crate::fanout::{Fanout, FanoutReceiver, StreamEnd};

/// One logged event and its position (from 1, without gaps, per worker and epoch).
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// Position in the worker's log.
    pub position: u64,
    /// The event.
    pub event: Arc<WorkerEvent>,
    /// The event's frame, encoded by the first of the subscribers it went to live
    /// and shared by the others; only when it went to more than one (one
    /// subscriber encodes its own, without the copy sharing takes), and never in
    /// the backlog, which would keep every frame as long as its event.
    pub(crate) shared_frame: Option<SharedFrame>,
}

/// A frame encoded once for every subscriber that receives it.
pub(crate) type SharedFrame = Arc<OnceLock<Arc<str>>>;

/// Where a resuming subscriber stands relative to the backlog.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Every event after the cursor is still held.
    Replay(Vec<LogEntry>),
    /// Events after the cursor have been dropped from the backlog.
    Expired,
    /// The cursor points past the last event: it was not minted by this log.
    Future,
}

impl PartialEq for LogEntry {
    fn eq(&self, other: &Self) -> bool {
        self.position == other.position
    }
}
impl Eq for LogEntry {}

/// How much of its backlog an ended worker keeps (see [`EventLog::retire`]).
pub(crate) const RETIRED_BACKLOG_BYTES: usize = 64 * 1024;

/// The most a running worker's backlog holds, in event bytes (text and a fixed
/// overhead each), whatever `event_backlog` allows in events: 4096 inputs of 64 KiB
/// would otherwise be 256 MiB. The newest event is always kept.
pub const EVENT_BACKLOG_BYTES: usize = 16 * 1024 * 1024;

/// An event's size in memory, near enough: its text and a fixed overhead.
fn approximate_bytes(event: &WorkerEvent) -> usize {
    const OVERHEAD: usize = 96;
    OVERHEAD
        + match event {
            WorkerEvent::Input { text, .. } | WorkerEvent::Output { text, .. } => text.len(),
            WorkerEvent::Diagnostic { code, message, .. } => code.len() + message.len(),
            _ => 0,
        }
}

/// The log itself. Not synchronised: the worker keeps it under its state lock so that
/// appending, snapshotting and subscribing are atomic with respect to each other.
pub(crate) struct EventLog {
    last_position: u64,
    backlog: VecDeque<LogEntry>,
    backlog_capacity: usize,
    /// What `backlog` holds, as [`approximate_bytes`] counts.
    backlog_bytes: usize,
    fanout: Fanout<LogEntry>,
}

impl EventLog {
    #[cfg(test)]
    pub(crate) fn new(backlog_capacity: usize, subscriber_queue: usize) -> Self {
        Self::with_fanout(backlog_capacity, Fanout::new(subscriber_queue))
    }

    /// A log whose subscribers are counted in `tally` as well (every worker's log
    /// shares the runtime's; see [`Fanout::with_tally`]).
    pub(crate) fn with_tally(
        backlog_capacity: usize,
        subscriber_queue: usize,
        tally: Arc<AtomicUsize>,
    ) -> Self {
        Self::with_fanout(
            backlog_capacity,
            Fanout::with_tally(subscriber_queue, tally),
        )
    }

    fn with_fanout(backlog_capacity: usize, fanout: Fanout<LogEntry>) -> Self {
        Self {
            last_position: 0,
            backlog: VecDeque::new(),
            backlog_capacity: backlog_capacity.max(1),
            backlog_bytes: 0,
            fanout,
        }
    }

    /// Position of the newest event (0 before any).
    pub(crate) fn last_position(&self) -> u64 {
        self.last_position
    }

    /// Appends an event, keeps it in the backlog (within `event_backlog` events and
    /// [`EVENT_BACKLOG_BYTES`]) and sends it to every subscriber.
    pub(crate) fn append(&mut self, event: WorkerEvent) -> u64 {
        self.last_position += 1;
        let entry = LogEntry {
            position: self.last_position,
            event: Arc::new(event),
            shared_frame: None,
        };
        self.backlog_bytes += approximate_bytes(&entry.event);
        self.backlog.push_back(entry.clone());
        while self.backlog.len() > 1
            && (self.backlog.len() > self.backlog_capacity
                || self.backlog_bytes > EVENT_BACKLOG_BYTES)
        {
            if let Some(oldest) = self.backlog.pop_front() {
                self.backlog_bytes -= approximate_bytes(&oldest.event);
            }
        }
        let live = LogEntry {
            shared_frame: self.fanout.may_reach_several().then(SharedFrame::default),
            ..entry
        };
        let _ = self.fanout.publish(&live);
        self.last_position
    }

    /// The events after `position`, if the backlog still holds all of them.
    pub(crate) fn resume_after(&self, position: u64) -> Resume {
        if position > self.last_position {
            return Resume::Future;
        }
        let first_held = self
            .backlog
            .front()
            .map_or(self.last_position + 1, |e| e.position);
        if position + 1 < first_held {
            return Resume::Expired;
        }
        Resume::Replay(
            self.backlog
                .iter()
                .filter(|e| e.position > position)
                .cloned()
                .collect(),
        )
    }

    /// Lets go of most of the backlog once the worker has ended: it logs nothing
    /// more, so the backlog only serves viewers resuming from a cursor, and the
    /// newest [`RETIRED_BACKLOG_BYTES`] of events cover one that was up to date
    /// or nearly (an older cursor gets `reset` and a snapshot, as for any cursor
    /// older than the backlog). A busy worker's full backlog can hold
    /// `event_backlog` outputs of up to 8 KiB each, tens of MiB, which every ended
    /// worker not yet deleted would otherwise keep until the process ends.
    pub(crate) fn retire(&mut self) {
        let mut kept_bytes = 0;
        let keep = self
            .backlog
            .iter()
            .rev()
            .take_while(|entry| {
                kept_bytes += approximate_bytes(&entry.event);
                kept_bytes <= RETIRED_BACKLOG_BYTES
            })
            .count()
            .max(1);
        let drop = self.backlog.len().saturating_sub(keep);
        for dropped in self.backlog.drain(..drop) {
            self.backlog_bytes -= approximate_bytes(&dropped.event);
        }
        self.backlog.shrink_to_fit();
    }

    /// A live receiver of every event appended from now on.
    pub(crate) fn subscribe(&mut self) -> FanoutReceiver<LogEntry> {
        self.fanout.subscribe()
    }

    /// Ends every live subscription.
    pub(crate) fn close(&mut self, reason: StreamEnd) {
        self.fanout.close(reason);
    }

    /// Live subscribers attached now.
    pub(crate) fn subscriber_count(&self) -> usize {
        self.fanout.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(r: Resume) -> Vec<u64> {
        match r {
            Resume::Replay(v) => v.into_iter().map(|e| e.position).collect(),
            other => panic!("expected replay, got {other:?}"),
        }
    }

    #[test]
    fn backlog_is_bounded_and_resume_knows_when_it_expired() {
        let mut log = EventLog::new(3, 8);
        assert_eq!(positions(log.resume_after(0)), Vec::<u64>::new());
        for _ in 0..5 {
            log.append(WorkerEvent::Interrupted);
        }
        assert_eq!(log.last_position(), 5);
        assert_eq!(positions(log.resume_after(2)), vec![3, 4, 5]);
        assert_eq!(positions(log.resume_after(4)), vec![5]);
        assert_eq!(positions(log.resume_after(5)), Vec::<u64>::new());
        assert_eq!(log.resume_after(1), Resume::Expired);
        assert_eq!(log.resume_after(0), Resume::Expired);
        assert_eq!(log.resume_after(6), Resume::Future);
    }

    #[test]
    fn the_backlog_holds_at_most_its_bytes_and_always_the_newest_event() {
        let mut log = EventLog::new(4096, 8);
        let big = || WorkerEvent::Input {
            sequence: 1,
            text: "x".repeat(1024 * 1024),
        };
        for _ in 0..40 {
            log.append(big());
        }
        // As many of the 1 MiB inputs as the budget holds (15), the newest.
        let fit = EVENT_BACKLOG_BYTES / approximate_bytes(&big());
        assert_eq!(fit, 15);
        let newest = log.last_position();
        assert_eq!(
            positions(log.resume_after(newest - fit as u64)),
            ((newest - fit as u64 + 1)..=newest).collect::<Vec<_>>()
        );
        assert_eq!(log.resume_after(newest - fit as u64 - 1), Resume::Expired);
        assert!(log.backlog_bytes <= EVENT_BACKLOG_BYTES);
        // One event larger than the budget is still kept, alone.
        log.append(WorkerEvent::Input {
            sequence: 2,
            text: "y".repeat(EVENT_BACKLOG_BYTES),
        });
        assert_eq!(positions(log.resume_after(newest)), vec![newest + 1]);
        assert_eq!(log.resume_after(newest - 1), Resume::Expired);
        // Retiring keeps the count right.
        log.retire();
        assert_eq!(
            log.backlog_bytes,
            log.backlog
                .iter()
                .map(|e| approximate_bytes(&e.event))
                .sum::<usize>()
        );
    }

    #[tokio::test]
    async fn subscribers_see_appends_in_order() {
        let mut log = EventLog::new(3, 8);
        let mut rx = log.subscribe();
        log.append(WorkerEvent::Interrupted);
        log.append(WorkerEvent::Interrupted);
        assert_eq!(rx.recv().await.unwrap().position, 1);
        assert_eq!(rx.recv().await.unwrap().position, 2);
    }

    /// An event published to several subscribers carries one cell for its frame,
    /// shared by them; published to one, none; and the backlog never keeps one.
    #[tokio::test]
    async fn only_events_that_reach_several_subscribers_carry_a_shared_frame() {
        let mut log = EventLog::new(8, 8);
        let mut one = log.subscribe();
        log.append(WorkerEvent::Interrupted);
        assert!(one.recv().await.unwrap().shared_frame.is_none());
        let mut other = log.subscribe();
        log.append(WorkerEvent::Interrupted);
        let (a, b) = (one.recv().await.unwrap(), other.recv().await.unwrap());
        assert!(Arc::ptr_eq(
            a.shared_frame.as_ref().unwrap(),
            b.shared_frame.as_ref().unwrap()
        ));
        assert!(log.backlog.iter().all(|e| e.shared_frame.is_none()));
    }

    #[test]
    fn a_retired_log_keeps_only_its_newest_events_and_still_resumes_from_them() {
        let mut log = EventLog::new(4096, 8);
        let output = |sequence| WorkerEvent::Output {
            sequence,
            stream: switchyard_protocol::OutputStream::Stdout,
            text: "x".repeat(8 * 1024),
        };
        for sequence in 1..=1000 {
            log.append(output(sequence));
        }
        log.append(WorkerEvent::Interrupted);
        log.retire();
        let kept = log.backlog.len();
        assert!(
            (2..=8).contains(&kept),
            "kept {kept} events (64 KiB of 8 KiB outputs is 7)"
        );
        assert!(log.backlog.capacity() < 16, "the backlog's room was kept");
        assert_eq!(positions(log.resume_after(1001)), Vec::<u64>::new());
        assert_eq!(positions(log.resume_after(1000)), vec![1001]);
        assert_eq!(log.resume_after(900), Resume::Expired);

        let mut one_big = EventLog::new(16, 8);
        one_big.append(WorkerEvent::Output {
            sequence: 1,
            stream: switchyard_protocol::OutputStream::Stdout,
            text: "y".repeat(RETIRED_BACKLOG_BYTES * 2),
        });
        one_big.retire();
        assert_eq!(
            positions(one_big.resume_after(0)),
            vec![1],
            "the last event always stays"
        );
    }
}
