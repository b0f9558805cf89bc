//! [`RepollSelfWakes`]: a connection's future polled again at once when it woke
//! itself while being polled, instead of being handed back to the scheduler.
//!
//! hyper 1.x's HTTP/1 server wakes its own connection task once for every request
//! with a body: taking the body's bytes wakes the sender's waker
//! (`hyper::body::chan::Receiver::poll_next`), and the sender is the connection's
//! dispatcher, in the same task. Tokio treats a wake during a poll as a yield: the
//! task goes to the back of the run queue and an idle worker thread is woken to
//! steal it (a futex wake and a context switch, measured at 1.9 `futex` calls and
//! 1.4 context switches per `POST .../input` through a remote runtime), and then
//! the task is polled a second time anyway. Here such a wake only marks the poll,
//! and the future is polled again before the task returns, a few times at most
//! (after that the wake goes to the scheduler, which keeps it fair).
//!
//! Invariant: no wake is lost. The waker's state moves `IDLE -> POLLING ->
//! (WOKEN ->) IDLE` under compare-and-swap: a wake that finds `POLLING` makes the
//! poll loop go round again, and one that finds `IDLE` wakes the task, whose waker
//! was registered before the poll began.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// How many times in a row a future that keeps waking itself is polled again
/// before its wake is left to the scheduler.
const MAX_REPOLLS: usize = 4;

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN: u8 = 2;

pin_project_lite::pin_project! {
    /// `inner`, polled again at once (up to [`MAX_REPOLLS`] times) when it wakes
    /// itself during a poll; see the module's notes. `waker`, which `inner` is
    /// polled with, wakes `shared`.
    pub(crate) struct RepollSelfWakes<F> {
        #[pin]
        inner: F,
        shared: Arc<Shared>,
        waker: Waker,
    }
}

/// What the waker given to the inner future shares with the poll loop.
struct Shared {
    /// `IDLE`, `POLLING` or `WOKEN` (woken while polling).
    state: AtomicU8,
    /// The task's own waker, for wakes while nobody polls.
    task: AtomicWaker,
}

impl<F: Future> RepollSelfWakes<F> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: F) -> Self {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(IDLE),
            task: AtomicWaker::new(),
        });
        Self {
            inner,
            waker: Waker::from(shared.clone()),
            shared,
        }
    }
}

impl<F: Future> Future for RepollSelfWakes<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        this.shared.task.register(cx.waker());
        let mut inner_cx = Context::from_waker(this.waker);
        for _ in 0..MAX_REPOLLS {
            this.shared.state.store(POLLING, Ordering::Release);
            if let Poll::Ready(output) = this.inner.as_mut().poll(&mut inner_cx) {
                this.shared.state.store(IDLE, Ordering::Release);
                return Poll::Ready(output);
            }
            let settled = this.shared.state.compare_exchange(
                POLLING,
                IDLE,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            if settled.is_ok() {
                return Poll::Pending;
            }
            // Woken during the poll: go round again.
        }
        this.shared.state.store(IDLE, Ordering::Release);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let marked =
            self.state
                .compare_exchange(POLLING, WOKEN, Ordering::AcqRel, Ordering::Acquire);
        match marked {
            // The poll loop goes round again (or already will).
            Ok(_) | Err(WOKEN) => {}
            Err(_) => self.task.wake(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts the task's wakes.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_once<F: Future + Unpin>(future: &mut F, task: &Arc<CountingWaker>) -> Poll<F::Output> {
        let waker = Waker::from(task.clone());
        Pin::new(future).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn a_wake_during_the_poll_is_a_second_poll_not_a_wake_of_the_task() {
        let mut polls = 0;
        let mut future = RepollSelfWakes::new(std::future::poll_fn(|cx| {
            polls += 1;
            if polls == 1 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(polls)
        }));
        let task = Arc::new(CountingWaker::default());
        assert_eq!(poll_once(&mut future, &task), Poll::Ready(2));
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_wake_after_the_poll_wakes_the_task() {
        let mut saved: Option<Waker> = None;
        let mut future = RepollSelfWakes::new(std::future::poll_fn(|cx| {
            saved = Some(cx.waker().clone());
            Poll::<()>::Pending
        }));
        let task = Arc::new(CountingWaker::default());
        assert!(poll_once(&mut future, &task).is_pending());
        drop(future);
        saved.expect("polled").wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_future_that_always_wakes_itself_is_left_to_the_scheduler() {
        let mut polls = 0;
        let mut future = RepollSelfWakes::new(std::future::poll_fn(|cx| {
            polls += 1;
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        }));
        let task = Arc::new(CountingWaker::default());
        assert!(poll_once(&mut future, &task).is_pending());
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        drop(future);
        assert_eq!(polls, MAX_REPOLLS);
    }

    #[test]
    fn wakes_from_other_threads_are_never_lost() {
        // A future woken from another thread at random moments: every poll that
        // returns pending must be followed by a wake of the task (or a repoll).
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            for _ in 0..200 {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1);
                let sender = tokio::spawn(async move {
                    for i in 0..100 {
                        if tx.send(i).await.is_err() {
                            return;
                        }
                    }
                });
                let received = tokio::spawn(RepollSelfWakes::new(async move {
                    let mut n = 0;
                    while rx.recv().await.is_some() {
                        n += 1;
                    }
                    n
                }));
                let n = tokio::time::timeout(std::time::Duration::from_secs(10), received)
                    .await
                    .expect("a lost wake would hang the receiver")
                    .expect("no panic");
                assert_eq!(n, 100);
                sender.await.expect("no panic");
            }
        });
    }
}
