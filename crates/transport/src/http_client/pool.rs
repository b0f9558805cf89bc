//! [`Pool`]: the idle keep-alive connections to one runtime, shaped for the
//! backend's workload: one request at a time per connection, as many connections
//! as there are requests in flight, the most recently used reused first.
//!
//! A connection is taken out for one exchange and given back only when it can
//! carry another, so the pool never holds a connection that is in use. Nothing runs
//! in the background: a connection idle for longer than the idle timeout is dropped
//! when the pool is next used, and at most `max_idle` are kept.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Idle connections of type `C`.
#[derive(Debug)]
pub(super) struct Pool<C> {
    /// Oldest at the front, most recently given back at the back.
    idle: Mutex<VecDeque<Idle<C>>>,
    /// How long a connection may sit unused before it is dropped.
    idle_timeout: Duration,
    /// Most idle connections kept.
    max_idle: usize,
}

#[derive(Debug)]
struct Idle<C> {
    conn: C,
    since: Instant,
}

impl<C> Pool<C> {
    /// An empty pool.
    pub(super) fn new(idle_timeout: Duration, max_idle: usize) -> Self {
        Self {
            idle: Mutex::new(VecDeque::new()),
            idle_timeout,
            max_idle,
        }
    }

    /// The most recently used idle connection that has not timed out, with how
    /// long it was idle; `None` when there is none (connect a new one).
    pub(super) fn take(&self) -> Option<(C, Duration)> {
        let now = Instant::now();
        let (taken, expired) = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let expired = self.expire(&mut idle, now);
            (idle.pop_back(), expired)
        };
        drop(expired);
        taken.map(|idle| (idle.conn, now.saturating_duration_since(idle.since)))
    }

    /// Gives back a connection that can carry another exchange.
    pub(super) fn put(&self, conn: C) {
        let now = Instant::now();
        let (rejected, expired) = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let expired = self.expire(&mut idle, now);
            if idle.len() < self.max_idle {
                idle.push_back(Idle { conn, since: now });
                (None, expired)
            } else {
                (Some(conn), expired)
            }
        };
        // Connections are closed outside the lock.
        drop(rejected);
        drop(expired);
    }

    /// Idle connections now.
    #[cfg(test)]
    pub(super) fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Removes the connections idle for longer than the timeout (the oldest are at
    /// the front), to be dropped by the caller outside the lock.
    fn expire(&self, idle: &mut VecDeque<Idle<C>>, now: Instant) -> Vec<C> {
        let mut expired = Vec::new();
        while idle
            .front()
            .is_some_and(|i| now.saturating_duration_since(i.since) > self.idle_timeout)
        {
            if let Some(i) = idle.pop_front() {
                expired.push(i.conn);
            }
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_most_recent_and_bounds_the_idle() {
        let pool = Pool::new(Duration::from_secs(60), 2);
        assert!(pool.take().is_none());
        pool.put(1);
        pool.put(2);
        pool.put(3);
        assert_eq!(pool.idle_count(), 2, "the third is closed");
        assert_eq!(pool.take().map(|(c, _)| c), Some(2));
        assert_eq!(pool.take().map(|(c, _)| c), Some(1));
        assert!(pool.take().is_none());
    }

    #[test]
    fn drops_connections_idle_past_the_timeout() {
        // Between `put("new")` and `take()` this thread must not lose the CPU for
        // the whole timeout (else "new" expires too): a timeout far longer than any
        // descheduling on a loaded machine, not 20 ms.
        let timeout = Duration::from_millis(500);
        let pool = Pool::new(timeout, 8);
        pool.put("old");
        std::thread::sleep(timeout * 2);
        pool.put("new");
        assert_eq!(pool.idle_count(), 1);
        let (conn, idle) = pool.take().unwrap();
        assert_eq!(conn, "new");
        assert!(idle < timeout);
        pool.put("x");
        std::thread::sleep(timeout * 2);
        assert!(pool.take().is_none());
    }
}
