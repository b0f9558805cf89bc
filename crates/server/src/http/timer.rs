//! [`CoarseTimer`]: hyper's timer (the server's header-read timeout) on the
//! coarse deadlines of the thread that serves the connection
//! (`switchyard_transport::deadline`), so that waiting for a request head costs a
//! slot in that thread's list instead of a tokio timer registered and removed for
//! every request. On a thread without a list, and for deadlines under a second
//! away, it is hyper-util's tokio timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioTimer;
use switchyard_transport::deadline::{self, CoarseSleep};

/// hyper's timer; see the module's notes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CoarseTimer;

impl hyper::rt::Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        match Instant::now().checked_add(duration) {
            Some(deadline) => self.sleep_until(deadline),
            None => TokioTimer::new().sleep(duration),
        }
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        match deadline::sleep_until(deadline) {
            Some(sleep) => Box::pin(HyperSleep(sleep)),
            None => TokioTimer::new().sleep_until(deadline),
        }
    }
}

/// A coarse sleep as hyper's `Sleep`.
struct HyperSleep(CoarseSleep);

impl Future for HyperSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl hyper::rt::Sleep for HyperSleep {}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Timer;
    use switchyard_transport::deadline::Deadlines;

    #[test]
    fn sleeps_a_second_or_more_away_go_on_the_threads_deadlines_others_on_tokio() {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let timer = CoarseTimer;
            runtime.block_on(async {
                let no_list = timer.sleep(Duration::from_secs(30));
                drop(no_list);
                let installed = Deadlines::install();
                let far = timer.sleep_until(Instant::now() + Duration::from_secs(30));
                assert!(installed.deadlines().is_waiting(), "on the thread's list");
                drop(far);
                assert!(!installed.deadlines().is_waiting());
                let near = timer.sleep(Duration::from_millis(10));
                assert!(!installed.deadlines().is_waiting(), "a tokio timer");
                near.await;
            });
        })
        .join()
        .unwrap();
    }
}
