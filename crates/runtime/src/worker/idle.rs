//! Idle workers: a worker whose profile sets an idle timeout is stopped once it has
//! had no input (or resize) and no viewer (no live subscriber at the runtime) for that
//! long. Never while a viewer watches: the idle clock starts when the last one leaves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::core::Worker;

/// How often the watch looks: a quarter of the timeout, within 10 ms to 1 s. A worker
/// is stopped at most that long after its timeout.
fn tick(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Watches `worker` until it ends, stopping it once it has been idle for `timeout`.
pub(crate) async fn watch(worker: Arc<Worker>, timeout: Duration) {
    let tick = tick(timeout);
    let mut watched_until = Instant::now();
    let mut watched = false;
    let mut subscriptions_seen = worker.subscriptions_made();
    loop {
        tokio::select! {
            _ = worker.wait_ended() => return,
            () = tokio::time::sleep(tick) => {}
        }
        let now = Instant::now();
        // A viewer now, or one that came and went since the previous look.
        let subscriptions = worker.subscriptions_made();
        if worker.subscriber_count() > 0 || subscriptions != subscriptions_seen {
            subscriptions_seen = subscriptions;
            watched = true;
            continue;
        }
        if watched {
            // The last viewer left since the previous look: the clock starts now, so
            // the worker is never stopped sooner than the timeout after it left.
            watched = false;
            watched_until = now;
        }
        let idle_since = watched_until.max(worker.last_command());
        if now.duration_since(idle_since) >= timeout {
            tracing::info!(worker_id = %worker.id(), ?timeout, "stopping an idle worker");
            worker.stop_idle(timeout).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_a_quarter_of_the_timeout_within_bounds() {
        assert_eq!(tick(Duration::from_secs(2)), Duration::from_millis(500));
        assert_eq!(tick(Duration::from_millis(8)), Duration::from_millis(10));
        assert_eq!(tick(Duration::from_secs(3600)), Duration::from_secs(1));
    }
}
