//! Workers: the drivers that run them and the core that records what they do.

pub(crate) mod core;
pub mod driver;
pub(crate) mod echo;
mod idle;
pub mod orphans;
pub(crate) mod process;
pub(crate) mod pty;
pub(crate) mod screen;
mod session;
mod teardown;
pub(crate) mod utf8;

pub(crate) use core::{REPLAY_TOTAL_BYTES, Worker};

use std::task::Poll;

use crate::error::{Result, RuntimeError};

/// Runs a call that must not stop half way (it writes the store, then memory) so
/// that it finishes even if its caller is dropped: an HTTP connection cut mid-call
/// cancels the caller, never the write.
///
/// The call is first polled in place: one that finishes in that poll (an input on
/// the memory store) costs no task, no wake-up and no hop to another thread, which
/// on a runtime connection serving pipelined inputs one after the other is a hop
/// per input. One that does not is moved, at once and within the same poll, to a
/// task of its own that runs it to the end. Invariant: the caller is never
/// dropped between two polls of the call, so either way the call runs whole.
pub(crate) async fn run_to_end<T: Send + 'static>(
    call: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let mut call = Box::pin(call);
    if let Poll::Ready(done) = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await
    {
        return done;
    }
    // The call registered this caller's waker; polled again on its task, it
    // registers the task's (a stray wake of this caller is harmless).
    match tokio::spawn(call).await {
        Ok(done) => done,
        Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
        // Only a tokio runtime shutting down cancels the task.
        Err(_) => Err(RuntimeError::Draining),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Waker};
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_call_that_finishes_in_its_first_poll_needs_no_task() {
        // No tokio runtime here: a spawn would panic.
        let mut run = std::pin::pin!(run_to_end(async { Ok(7) }));
        let polled = run.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert!(matches!(polled, Poll::Ready(Ok(7))));
    }

    #[tokio::test]
    async fn a_call_still_pending_when_its_caller_is_dropped_runs_to_the_end() {
        let finished = Arc::new(AtomicBool::new(false));
        let call = {
            let finished = finished.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                finished.store(true, Ordering::SeqCst);
                Ok(())
            }
        };
        let cut_off = tokio::time::timeout(Duration::from_millis(5), run_to_end(call)).await;
        assert!(cut_off.is_err(), "the caller was to give up first");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            finished.load(Ordering::SeqCst),
            "the call stopped with its caller"
        );
    }

    #[tokio::test]
    async fn a_panic_in_the_call_reaches_the_caller_either_way() {
        let inline = tokio::spawn(run_to_end(async { panic!("at once") as Result<()> }));
        assert!(inline.await.unwrap_err().is_panic());
        let on_task = tokio::spawn(run_to_end(async {
            tokio::task::yield_now().await;
            panic!("later") as Result<()>
        }));
        assert!(on_task.await.unwrap_err().is_panic());
    }
}
