//! [`Shutdown`]: the signal that stops a server (its accept loop, its connections
//! and its WebSocket sessions), and [`Watch`], one connection's cheap view of it.
//!
//! Every connection waits for the signal while it serves requests, so the wait is
//! polled each time the connection is: several times per request. Polling the
//! shared signal itself (a [`CancellationToken`]) locks one list of waiters that
//! every connection of the server shares, which on a server with a thread per core
//! is a lock taken from every core for every request. A [`Watch`] registers with
//! the signal once, with a waker of its own, and afterwards a poll touches only the
//! watch: it stores the connection's waker and reads a flag the signal sets.
//!
//! Invariants:
//! - a watch's registration lives as long as the watch, so the signal always has
//!   the watch's waker to wake;
//! - [`Watch::poll_fired`] stores the caller's waker before it reads the flag, so a
//!   signal that fires between the two still wakes the caller.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;

/// A shutdown signal shared by the accept loop, its connections and WebSocket
/// sessions, with a tracker to wait for the sessions to finish closing. Clones
/// share one signal (and cost one reference count).
#[derive(Debug, Clone)]
pub struct Shutdown(Arc<Signal>);

#[derive(Debug)]
struct Signal {
    token: CancellationToken,
    sessions: TaskTracker,
    /// Where sessions run: the runtime the signal was made on (not a connection
    /// thread's, see `cores.rs`), or the caller's when it was made outside one.
    home: Option<tokio::runtime::Handle>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal that has not fired; its sessions run on the current tokio runtime.
    pub fn new() -> Self {
        Self(Arc::new(Signal {
            token: CancellationToken::new(),
            sessions: TaskTracker::new(),
            home: tokio::runtime::Handle::try_current().ok(),
        }))
    }

    /// Fires the signal.
    pub fn trigger(&self) {
        self.0.token.cancel();
    }

    /// True once fired.
    pub fn is_triggered(&self) -> bool {
        self.0.token.is_cancelled()
    }

    /// Resolves once fired. A wait polled often (a connection's) costs less
    /// through a `Watch` (see the module's notes).
    pub async fn triggered(&self) {
        self.0.token.cancelled().await;
    }

    /// A watch of this signal for one connection.
    pub(super) fn watch(&self) -> Watch {
        Watch {
            fired: Arc::new(Fired::default()),
            registration: Box::pin(self.0.token.clone().cancelled_owned()),
            registered: false,
        }
    }

    /// Runs a long-lived session (a WebSocket) that shutdown waits for, on the
    /// runtime the signal was made on: a session streams while its connection
    /// thread serves other requests, and the work of a session and of the
    /// worker's upstream it follows spreads over that runtime's threads.
    pub fn spawn_session<F>(&self, session: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let signal = &self.0;
        match &signal.home {
            Some(home) => drop(signal.sessions.spawn_on(session, home)),
            None => drop(signal.sessions.spawn(session)),
        }
    }

    /// WebSocket sessions open right now (for the metrics).
    pub fn open_sessions(&self) -> usize {
        self.0.sessions.len()
    }

    /// Waits up to `grace` for every session to finish.
    pub async fn wait_sessions(&self, grace: Duration) {
        let sessions = &self.0.sessions;
        sessions.close();
        if tokio::time::timeout(grace, sessions.wait()).await.is_err() {
            tracing::warn!("some WebSocket sessions did not close within the grace period");
        }
    }
}

/// One connection's view of a [`Shutdown`] (see the module's notes).
pub(super) struct Watch {
    fired: Arc<Fired>,
    /// The wait on the shared signal, polled once with `fired`'s waker and kept
    /// so that the signal keeps that waker.
    registration: Pin<Box<WaitForCancellationFutureOwned>>,
    registered: bool,
}

/// Set by the signal, through the waker the watch registered with it.
#[derive(Default)]
struct Fired {
    flag: AtomicBool,
    /// The connection's task, woken when the flag is set.
    waker: AtomicWaker,
}

impl Wake for Fired {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Ordering::Release);
        self.waker.wake();
    }
}

impl Watch {
    /// Ready once the signal has fired; otherwise wakes `cx`'s task when it does.
    pub(super) fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.registered {
            let waker = Waker::from(self.fired.clone());
            if self
                .registration
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
            {
                return Poll::Ready(());
            }
            self.registered = true;
        }
        self.fired.waker.register(cx.waker());
        if self.fired.flag.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_watch_is_ready_once_the_signal_fires_and_not_before() {
        let shutdown = Shutdown::new();
        let mut watch = shutdown.watch();
        let waiting = tokio::spawn(async move { poll_fn(|cx| watch.poll_fired(cx)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the watch fired before the signal");
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the signal woke the watching task")
            .unwrap();
    }

    #[tokio::test]
    async fn a_watch_made_after_the_signal_fired_is_ready_at_once() {
        let shutdown = Shutdown::new();
        shutdown.trigger();
        let mut watch = shutdown.watch();
        tokio::time::timeout(Duration::from_secs(5), poll_fn(|cx| watch.poll_fired(cx)))
            .await
            .expect("ready at once");
    }

    #[tokio::test]
    async fn the_latest_waker_is_the_one_woken() {
        // A connection's task may be polled with a new waker; the watch must wake
        // that one, not the one it first saw.
        let shutdown = Shutdown::new();
        let mut watch = shutdown.watch();
        let first = Arc::new(Fired::default());
        let first_waker = Waker::from(first.clone());
        assert!(
            watch
                .poll_fired(&mut Context::from_waker(&first_waker))
                .is_pending()
        );
        let waiting = tokio::spawn(async move { poll_fn(|cx| watch.poll_fired(cx)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the task's own waker was woken")
            .unwrap();
    }
}
