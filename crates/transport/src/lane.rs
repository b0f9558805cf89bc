//! Lanes: which of a REST client's sets of pipelined connections the requests of a
//! thread use.
//!
//! A connection's socket is registered with the I/O driver of the tokio runtime
//! that opened it, and that driver is what wakes the tasks waiting on it. When a
//! server runs its connections on one single-threaded runtime per CPU, a relayed
//! request and the runtime connection it is pipelined on should live on the same
//! thread: otherwise every answer is read on one thread and handed to another (a
//! wake through the other thread's eventfd, and the cache lines of both). A thread
//! that says which lane it is ([`set_thread_lane`]) gets pipes of its own in every
//! client; threads that do not share lane 0.

use std::cell::Cell;

/// How many lanes a client has: lane 0, shared, and one per thread that names
/// one (lanes past this wrap around).
pub(crate) const LANES: usize = 17;

thread_local! {
    static LANE: Cell<usize> = const { Cell::new(0) };
}

/// Makes the REST requests made on this thread use the pipelined connections of
/// lane `lane` (1 and up; 0 is the lane threads share when they name none), so
/// that they open and use connections of their own. Meant for a thread that runs
/// a single-threaded runtime: the connections are then registered with, and woken
/// by, that runtime only.
pub fn set_thread_lane(lane: usize) {
    LANE.with(|current| current.set(lane));
}

/// This thread's lane, in `0..LANES`.
pub(crate) fn current() -> usize {
    match LANE.with(Cell::get) {
        0 => 0,
        lane => 1 + (lane - 1) % (LANES - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_share_lane_zero_until_they_name_one_and_lanes_wrap() {
        std::thread::spawn(|| {
            assert_eq!(current(), 0);
            set_thread_lane(3);
            assert_eq!(current(), 3);
            set_thread_lane(LANES);
            assert_eq!(current(), 1, "past the last lane it wraps, never to 0");
        })
        .join()
        .unwrap();
        assert_eq!(current(), 0, "another thread's lane is its own");
    }
}
