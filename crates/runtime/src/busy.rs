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
    busy: impl Fn(&E) -> Option<Option<Duration>>,
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_busy_call_is_tried_again_until_it_goes_through() {
        let tries = AtomicU32::new(0);
        let outcome: Result<u32, &str> = retry_while_busy(
            Duration::from_secs(1),
            |e: &&str| (*e == "busy").then_some(None),
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
            |e: &&str| (*e == "busy").then_some(None),
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
            |_: &&str| Some(Some(Duration::from_secs(5))),
            || async { Err("busy") },
        )
        .await;
        assert_eq!(outcome, Err("busy"));
        let waited = started.elapsed();
        assert!(waited <= Duration::from_secs(1), "{waited:?}");
        assert!(waited >= Duration::from_millis(800), "{waited:?}");
    }
}
