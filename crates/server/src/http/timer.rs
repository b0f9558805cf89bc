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
