//! [`ConnectionLimit`]: `max_connections` of one listener.
//!
//! Every accepted connection takes a permit before anything is read from it (before
//! its TLS handshake too) and keeps it until it closes; a connection upgraded to a
//! WebSocket keeps its permit for the whole session, so WebSocket sessions count as
//! the connections they are. Past the limit, a new connection is answered
//! `503 overloaded` and closed (`refuse`): over TLS after the handshake, since a
//! plain-text answer on a TLS port is unreadable to the client. At most
//! [`MAX_REFUSING`] refusals run at once, each bounded by [`REFUSAL_TIME`]; past
//! that a connection is closed without an answer, so a flood costs bounded work.
//!
//! The limit can change while the listener serves ([`ConnectionLimit::resize`], on
//! a reload): raised, more connections are admitted at once; lowered below the
//! connections open, none of them is cut, and new ones are refused until fewer than
//! the new limit are open. The permits are a counter of open connections checked
//! against the limit, not a semaphore, so that lowering the limit owes nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use switchyard_protocol::{ErrorCode, ErrorDetail};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::linger::{linger_close, raw_error_response};
use super::tls::{self, ServerTls};

/// `max_connections` unless configured (both processes).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// Refusals answered at once; connections past the limit beyond these are closed
/// without an answer.
pub const MAX_REFUSING: usize = 64;

/// Longest one refusal may take, TLS handshake, answer and lingering close included.
pub const REFUSAL_TIME: Duration = Duration::from_secs(3);

/// What a client past the limit is told to wait before retrying.
const RETRY_AFTER_MS: u64 = 1000;

/// The message of `503 overloaded`.
pub const OVERLOADED_MESSAGE: &str =
    "the server is at its connection limit (max_connections); retry shortly";

/// A connection's place under the limit; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionPermit(Arc<Inner>);

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
struct Inner {
    /// The limit now (at least 1).
    max: AtomicUsize,
    /// Connections holding a [`ConnectionPermit`]; over `max` for a while after the
    /// limit is lowered below it.
    open: AtomicUsize,
    refusing: Arc<Semaphore>,
    refused: Counter,
}

/// The connection limit of one listener. Cheap to clone; clones share the limit
/// (and a [`ConnectionLimit::resize`] of any of them changes it for all).
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    inner: Arc<Inner>,
}

impl Default for ConnectionLimit {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_CONNECTIONS)
    }
}

impl ConnectionLimit {
    /// At most `max` connections at once (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                max: AtomicUsize::new(max.max(1)),
                open: AtomicUsize::new(0),
                refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
                refused: Counter::default(),
            }),
        }
    }

    /// The limit now.
    pub fn max(&self) -> usize {
        self.inner.max.load(Ordering::Acquire)
    }

    /// Changes the limit to `max` (at least 1), for every clone. Raised: more
    /// connections are admitted at once, from the next one. Lowered below the
    /// connections open: none of them is closed; new ones are refused until fewer
    /// than `max` are open.
    pub fn resize(&self, max: usize) {
        self.inner.max.store(max.max(1), Ordering::Release);
    }

    /// Connections open right now (WebSocket sessions included). May exceed
    /// [`ConnectionLimit::max`] after the limit was lowered.
    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }

    /// Connections refused so far (the metrics' counter).
    pub fn refused(&self) -> &Counter {
        &self.inner.refused
    }

    /// A place for a new connection, unless the limit is reached.
    pub fn try_admit(&self) -> Option<ConnectionPermit> {
        let max = self.max();
        self.inner
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()
            .map(|_| ConnectionPermit(self.inner.clone()))
    }

    /// Counts a refused connection and, if fewer than [`MAX_REFUSING`] refusals are
    /// running, the right to answer it.
    pub(crate) fn refusal(&self) -> Option<OwnedSemaphorePermit> {
        self.inner.refused.inc();
        self.inner.refusing.clone().try_acquire_owned().ok()
    }
}

/// The fixed answer past the limit.
pub fn overloaded_response() -> Vec<u8> {
    raw_error_response(
        "503 Service Unavailable",
        ErrorDetail::new(ErrorCode::Overloaded, OVERLOADED_MESSAGE)
            .with_retry_after_ms(RETRY_AFTER_MS),
        &[("retry-after", "1")],
    )
}

/// Answers a connection past the limit with `503 overloaded` (after the TLS
/// handshake when the listener has TLS) and closes it gently, all within
/// [`REFUSAL_TIME`]. The request is not read: the answer goes out at once, and the
/// lingering close reads and drops whatever the client sends meanwhile.
pub(crate) async fn refuse(stream: TcpStream, peer: SocketAddr, tls: Option<ServerTls>) {
    let answer = async {
        let answer = overloaded_response();
        match tls {
            None => {
                let mut stream = stream;
                if stream.write_all(&answer).await.is_ok() {
                    linger_close(stream, REFUSAL_TIME).await;
                }
            }
            Some(tls) => {
                if let Some(mut stream) = tls::accept(stream, &tls, peer).await
                    && stream.write_all(&answer).await.is_ok()
                {
                    linger_close(stream, REFUSAL_TIME).await;
                }
            }
        }
    };
    if tokio::time::timeout(REFUSAL_TIME, answer).await.is_err() {
        tracing::debug!(%peer, "a refusal past max_connections did not complete in time");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_come_back_when_dropped_and_refusals_are_counted_and_capped() {
        let limit = ConnectionLimit::new(2);
        let a = limit.try_admit().unwrap();
        let _b = limit.try_admit().unwrap();
        assert_eq!(limit.open(), 2);
        assert!(limit.try_admit().is_none());
        drop(a);
        assert_eq!(limit.open(), 1);
        assert!(limit.try_admit().is_some());
        let slots: Vec<_> = (0..MAX_REFUSING)
            .map(|_| limit.refusal().unwrap())
            .collect();
        assert!(
            limit.refusal().is_none(),
            "at most MAX_REFUSING answered at once"
        );
        assert_eq!(limit.refused().get(), MAX_REFUSING as u64 + 1);
        drop(slots);
        assert!(limit.refusal().is_some());
    }

    #[test]
    fn the_limit_is_at_least_one() {
        assert_eq!(ConnectionLimit::new(0).max(), 1);
        let limit = ConnectionLimit::new(3);
        limit.resize(0);
        assert_eq!(limit.max(), 1);
    }

    #[test]
    fn a_raised_limit_admits_more_at_once() {
        let limit = ConnectionLimit::new(2);
        let shared = limit.clone();
        let mut held: Vec<_> = (0..2).map(|_| limit.try_admit().unwrap()).collect();
        assert!(limit.try_admit().is_none());
        shared.resize(4);
        assert_eq!(limit.max(), 4, "clones share the limit");
        held.push(limit.try_admit().expect("a third place"));
        held.push(limit.try_admit().expect("a fourth place"));
        assert!(limit.try_admit().is_none(), "not a fifth");
        assert_eq!(limit.open(), 4);
        drop(held);
        assert_eq!(limit.open(), 0);
    }

    #[test]
    fn a_lowered_limit_keeps_the_open_connections_and_refuses_until_below_it() {
        let limit = ConnectionLimit::new(4);
        let mut held: Vec<_> = (0..4).map(|_| limit.try_admit().unwrap()).collect();
        limit.resize(2);
        assert_eq!(
            (limit.max(), limit.open()),
            (2, 4),
            "the open connections are kept"
        );
        assert!(limit.try_admit().is_none(), "4 open, limit 2");
        held.pop();
        assert!(limit.try_admit().is_none(), "3 open, limit 2");
        held.pop();
        assert_eq!(limit.open(), 2);
        assert!(limit.try_admit().is_none(), "2 open, limit 2");
        held.pop();
        let again = limit.try_admit().expect("1 open, limit 2: admitted again");
        assert_eq!(limit.open(), 2);
        assert!(limit.try_admit().is_none(), "at the new limit");
        drop(again);
        drop(held);
        assert_eq!(limit.open(), 0);
        // Raised again, back up to where it was.
        limit.resize(4);
        let back: Vec<_> = (0..4).map(|_| limit.try_admit().unwrap()).collect();
        assert!(limit.try_admit().is_none());
        drop(back);
    }
}
