//! [`end_of_turn`]: waits until the scheduler has run the other tasks that were
//! ready in this turn, as `tokio::task::yield_now` does, but is not ended early by
//! a poll that comes before the scheduler wakes the task.
//!
//! `yield_now` asks the scheduler to wake the task after the tasks ready now have
//! run, and is done at its *next poll*, whenever that comes. A connection task can
//! poll its handler again within the same turn, unwoken by the scheduler: hyper's
//! HTTP/1 dispatcher goes round its loop again after reading a request's body, and
//! the server's `RepollSelfWakes` polls again when the body's channel woke the
//! task. A pipe's writer that yielded so that the requests of this turn could join
//! its write then wrote alone (measured: one `sendto` per input to the runtime,
//! where worker details went out eleven to a write).
//!
//! Invariant: done only once the scheduler's deferred wake has fired (at once when
//! there is no scheduler to defer it, as `yield_now` does outside a runtime).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Done once the scheduler has run this turn's other ready tasks (see the module).
pub(super) async fn end_of_turn() {
    let fired = Arc::new(Fired::default());
    let mut yielded = pin!(tokio::task::yield_now());
    let mut deferred = false;
    poll_fn(|cx| {
        if fired.done.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        fired.task.register(cx.waker());
        if !deferred {
            deferred = true;
            // Its first poll only asks for the deferred wake, given `fired`'s waker.
            let waker = Waker::from(fired.clone());
            if yielded
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                return Poll::Ready(());
            }
        }
        if fired.done.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// The deferred wake's target: marks the turn over, then wakes the task.
#[derive(Default)]
struct Fired {
    done: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Fired {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.done.store(true, Ordering::Release);
        self.task.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Polled again and again within one poll of its task (as hyper's dispatcher
    /// does), it stays pending; the other task ready in the same turn runs before
    /// it is done.
    #[tokio::test(flavor = "current_thread")]
    async fn an_early_poll_does_not_end_the_turn() {
        let order = Arc::new(AtomicUsize::new(0));
        let other = {
            let order = order.clone();
            tokio::spawn(async move { order.fetch_add(1, Ordering::SeqCst) })
        };
        let mut turn = pin!(end_of_turn());
        let early = poll_fn(|cx| {
            // Five polls in one: only the first asks the scheduler for a wake.
            let pending = (0..5).all(|_| turn.as_mut().poll(cx).is_pending());
            Poll::Ready(pending)
        })
        .await;
        assert!(early, "an early poll ended the turn");
        assert_eq!(order.load(Ordering::SeqCst), 0, "the other task ran first");
        turn.await;
        assert_eq!(
            order.load(Ordering::SeqCst),
            1,
            "the turn ended before the task ready in it ran"
        );
        assert_eq!(other.await.unwrap(), 0);
    }

    /// Outside a runtime there is no scheduler to defer the wake: done at once.
    #[test]
    fn without_a_scheduler_it_is_done_at_once() {
        let mut turn = pin!(end_of_turn());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(turn.as_mut().poll(&mut cx).is_ready());
    }
}
