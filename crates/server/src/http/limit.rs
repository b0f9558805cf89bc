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

use std::net::SocketAddr;
use std::sync::Arc;
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
pub struct ConnectionPermit(#[allow(dead_code)] OwnedSemaphorePermit);

#[derive(Debug)]
struct Inner {
    max: usize,
    permits: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    refused: Counter,
}

/// The connection limit of one listener. Cheap to clone; clones share the limit.
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
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            inner: Arc::new(Inner {
                max,
                permits: Arc::new(Semaphore::new(max)),
                refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
                refused: Counter::default(),
            }),
        }
    }

    /// The limit.
    pub fn max(&self) -> usize {
        self.inner.max
    }

    /// Connections open right now (WebSocket sessions included).
    pub fn open(&self) -> usize {
        self.inner.max - self.inner.permits.available_permits()
    }

    /// Connections refused so far (the metrics' counter).
    pub fn refused(&self) -> &Counter {
        &self.inner.refused
    }

    /// A place for a new connection, unless the limit is reached.
    pub fn try_admit(&self) -> Option<ConnectionPermit> {
        self.inner
            .permits
            .clone()
            .try_acquire_owned()
            .ok()
            .map(ConnectionPermit)
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
    }
}
