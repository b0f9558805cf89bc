//! A worker's event log: positions, a bounded backlog for resuming, and live fan-out.

use std::collections::VecDeque;
use std::sync::Arc;

use switchyard_protocol::WorkerEvent;

use crate::fanout::{Fanout, FanoutReceiver, StreamEnd};

/// One logged event and its position (from 1, without gaps, per worker and epoch).
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// Position in the worker's log.
    pub position: u64,
    /// The event.
    pub event: Arc<WorkerEvent>,
}

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

/// The log itself. Not synchronised: the worker keeps it under its state lock so that
/// appending, snapshotting and subscribing are atomic with respect to each other.
pub(crate) struct EventLog {
    last_position: u64,
    backlog: VecDeque<LogEntry>,
    backlog_capacity: usize,
    fanout: Fanout<LogEntry>,
}

impl EventLog {
    pub(crate) fn new(backlog_capacity: usize, subscriber_queue: usize) -> Self {
        Self {
            last_position: 0,
            backlog: VecDeque::new(),
            backlog_capacity: backlog_capacity.max(1),
            fanout: Fanout::new(subscriber_queue),
        }
    }

    /// Position of the newest event (0 before any).
    pub(crate) fn last_position(&self) -> u64 {
        self.last_position
    }

    /// Appends an event, keeps it in the backlog and sends it to every subscriber.
    pub(crate) fn append(&mut self, event: WorkerEvent) -> u64 {
        self.last_position += 1;
        let entry = LogEntry {
            position: self.last_position,
            event: Arc::new(event),
        };
        if self.backlog.len() == self.backlog_capacity {
            self.backlog.pop_front();
        }
        self.backlog.push_back(entry.clone());
        let _ = self.fanout.publish(&entry);
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

    #[tokio::test]
    async fn subscribers_see_appends_in_order() {
        let mut log = EventLog::new(3, 8);
        let mut rx = log.subscribe();
        log.append(WorkerEvent::Interrupted);
        log.append(WorkerEvent::Interrupted);
        assert_eq!(rx.recv().await.unwrap().position, 1);
        assert_eq!(rx.recv().await.unwrap().position, 2);
    }
}
