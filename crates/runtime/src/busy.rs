//! Waiting out a full input queue: a terminal's paste arrives faster than its
//! program reads, and an interactive session must deliver every byte of it, in
//! order, rather than refuse the part that did not fit.

use std::future::Future;
use std::time::Duration;

/// How long an interactive input waits for room in a worker's input queue before
/// it is refused with `worker_busy` (as long as `switchyard send` retries).
pub const INPUT_PATIENCE: Duration = Duration::from_secs(10);

/// The wait between two tries when the refusal does not say how long.
const RETRY_DEFAULT: Duration = Duration::from_millis(20);

/// The longest wait between two tries, whatever the refusal says.
const RETRY_MAX: Duration = Duration::from_millis(200);

/// Runs `call` until it is not refused as busy, or `patience` has passed: then the
/// last refusal is the answer. `busy(error)` is `None` for an error that is not a
/// busy refusal (answered at once), or `Some(the wait it asks for)`.
pub async fn retry_while_busy<T, E, Fut>(
    patience: Duration,
    busy: &impl Fn(&E) -> Option<Option<Duration>>,
    mut call: impl FnMut() -> Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let error = match call().await {
            Ok(done) => return Ok(done),
            Err(error) => error,
        };
        let Some(asked) = busy(&error) else {
            return Err(error);
        };
        let wait = asked.unwrap_or(RETRY_DEFAULT).min(RETRY_MAX);
        if tokio::time::Instant::now() + wait > deadline {
            return Err(error);
        }
        tokio::time::sleep(wait).await;
    }
}

/// The patience of one ordered lane of inputs (a session's, a worker's command
/// lane): once an input has waited in vain for all of [`INPUT_PATIENCE`], the
/// program is not reading, and the busy inputs queued behind it are refused at
/// once rather than each after a wait of its own, until one gets through.
#[derive(Debug, Default)]
pub struct LanePatience {
    stalled: bool,
}

impl LanePatience {
    /// [`retry_while_busy`] with this lane's patience: [`INPUT_PATIENCE`], or none
    /// while the lane is stalled.
    pub async fn retry<T, E, Fut>(
        &mut self,
        busy: impl Fn(&E) -> Option<Option<Duration>>,
        call: impl FnMut() -> Fut,
    ) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let patience = if self.stalled {
            Duration::ZERO
        } else {
            INPUT_PATIENCE
        };
        let outcome = retry_while_busy(patience, &busy, call).await;
        self.stalled = matches!(&outcome, Err(error) if busy(error).is_some());
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_busy_call_is_tried_again_until_it_goes_through() {
        let tries = AtomicU32::new(0);
        let outcome: Result<u32, &str> = retry_while_busy(
            Duration::from_secs(1),
            &|e: &&str| (*e == "busy").then_some(None),
            || async {
                let n = tries.fetch_add(1, Ordering::SeqCst);
                if n < 3 { Err("busy") } else { Ok(n) }
            },
        )
        .await;
        assert_eq!(outcome, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_are_answered_at_once_and_busy_ones_after_the_patience() {
        let tries = AtomicU32::new(0);
        let outcome: Result<(), &str> = retry_while_busy(
            Duration::from_secs(1),
            &|e: &&str| (*e == "busy").then_some(None),
            || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err("gone")
            },
        )
        .await;
        assert_eq!((outcome, tries.load(Ordering::SeqCst)), (Err("gone"), 1));

        let started = tokio::time::Instant::now();
        let outcome: Result<(), &str> = retry_while_busy(
            Duration::from_secs(1),
            &|_: &&str| Some(Some(Duration::from_secs(5))),
            || async { Err("busy") },
        )
        .await;
        assert_eq!(outcome, Err("busy"));
        let waited = started.elapsed();
        assert!(waited <= Duration::from_secs(1), "{waited:?}");
        assert!(waited >= Duration::from_millis(800), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_lane_refuses_the_inputs_behind_at_once_until_one_goes_through() {
        let busy = |e: &&str| (*e == "busy").then_some(None);
        let mut lane = LanePatience::default();
        let started = tokio::time::Instant::now();
        let first: Result<(), &str> = lane.retry(busy, || async { Err("busy") }).await;
        assert_eq!(first, Err("busy"));
        assert!(started.elapsed() >= INPUT_PATIENCE - RETRY_MAX);
        // Stalled: the next busy one is refused without a wait.
        let waited_from = tokio::time::Instant::now();
        let second: Result<(), &str> = lane.retry(busy, || async { Err("busy") }).await;
        assert_eq!(second, Err("busy"));
        assert_eq!(waited_from.elapsed(), Duration::ZERO);
        // One that goes through ends the stall: the next busy one waits again.
        let third: Result<u8, &str> = lane.retry(busy, || async { Ok(3) }).await;
        assert_eq!(third, Ok(3));
        let tries = AtomicU32::new(0);
        let fourth: Result<u32, &str> = lane
            .retry(busy, || async {
                if tries.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err("busy")
                } else {
                    Ok(4)
                }
            })
            .await;
        assert_eq!(fourth, Ok(4));
    }
}
