//! [`Follower`]: one worker's events across dropped connections.
//!
//! A follower opens the event WebSocket and hands out its frames, remembering the
//! cursor of every event it hands out. When the connection drops (reset, silence, the
//! backend restarting, the backend cutting a slow reader off) it says so once
//! ([`Followed::Disconnected`]), then reconnects with capped exponential backoff and
//! jitter, resuming after the last cursor: the backend replays what was missed, or,
//! when it cannot, sends a `reset` and a fresh `snapshot`. Backend cursors survive a
//! backend restart, so a follower rides through one.
//!
//! Errors that retrying cannot fix end the follow: the worker removed
//! (`worker_not_found`), refused credentials, a malformed stream, an answer that is
//! not the backend API's (another server on its port). A first connection
//! that fails is also an error (the caller decides whether to retry); only
//! reconnections retry on their own.

use std::time::Duration;

use switchyard_protocol::ErrorCode;

use crate::error::{ApiError, ClientError};
use crate::events::{ClientFrame, EventSocket, Incoming, StreamEnd};
use crate::http::BackendClient;
use crate::worker_ref::WorkerRef;

/// The first reconnection delay.
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// The longest reconnection delay.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What [`Follower::next`] hands out.
///
/// More may be told in time (`#[non_exhaustive]`): a match needs a wildcard arm,
/// which may ignore what it does not know, as the frames that follow go on.
///
/// ```compile_fail
/// use switchyard_client::Followed;
///
/// fn describe(followed: &Followed) -> &'static str {
///     match followed {
///         Followed::Frame(_) => "frame",
///         Followed::Disconnected(_) => "disconnected",
///         Followed::Reconnected => "reconnected",
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Followed {
    /// A frame of the stream.
    Frame(Incoming),
    /// The connection dropped, for this reason; the next call reconnects.
    Disconnected(StreamEnd),
    /// Connected again after a drop; the stream goes on after the last cursor (or,
    /// when the backend cannot resume it, with a `reset` and a `snapshot`).
    Reconnected,
}

/// Follows one worker's event stream, reconnecting with its cursor.
#[derive(Debug)]
pub struct Follower {
    client: BackendClient,
    worker: WorkerRef,
    interactive: bool,
    cursor: Option<String>,
    socket: Option<EventSocket>,
    /// Whether a connection was ever made (then failures to connect are retried).
    connected_once: bool,
    /// A drop noticed while sending, reported by the next [`Follower::next`].
    unreported: Option<StreamEnd>,
    backoff: Backoff,
}

impl Follower {
    /// A follower of `worker`'s events, from a fresh snapshot. With `interactive`,
    /// the socket also takes [`ClientFrame`]s.
    pub fn new(client: BackendClient, worker: WorkerRef, interactive: bool) -> Self {
        Self {
            client,
            worker,
            interactive,
            cursor: None,
            socket: None,
            connected_once: false,
            unreported: None,
            backoff: Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX),
        }
    }

    /// Starts after `cursor` (from an earlier stream of the same worker) instead of
    /// from a snapshot.
    pub fn resume_after(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// The cursor of the last event handed out.
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// The worker followed.
    pub fn worker(&self) -> &WorkerRef {
        &self.worker
    }

    /// Whether a connection is open now.
    pub fn is_connected(&self) -> bool {
        self.socket.is_some()
    }

    /// The next frame, a drop, or a reconnection.
    ///
    /// Cancel-safe: dropped while reading, no frame is lost; dropped while
    /// reconnecting, the next call starts the attempt again.
    pub async fn next(&mut self) -> Result<Followed, ClientError> {
        loop {
            if let Some(end) = self.unreported.take() {
                return Ok(Followed::Disconnected(end));
            }
            let Some(socket) = self.socket.as_mut() else {
                let reconnecting = self.connected_once;
                match self.connect().await {
                    Ok(()) if reconnecting => return Ok(Followed::Reconnected),
                    Ok(()) => continue,
                    Err(error) => return Err(error),
                }
            };
            match socket.next().await {
                Ok(incoming) => {
                    if let Some(cursor) = incoming.cursor() {
                        self.cursor = Some(cursor.to_owned());
                    }
                    return Ok(Followed::Frame(incoming));
                }
                Err(end) => {
                    self.socket = None;
                    return match end {
                        StreamEnd::WorkerGone => Err(ClientError::Api(ApiError::new(
                            None,
                            ErrorCode::WorkerNotFound,
                            format!(
                                "{} is gone: deleted, or its runtime restarted without keeping its workers",
                                self.worker
                            ),
                        ))),
                        end if end.is_resumable() => Ok(Followed::Disconnected(end)),
                        end => Err(ClientError::Protocol {
                            status: None,
                            reason: end.to_string(),
                        }),
                    };
                }
            }
        }
    }

    /// Opens the first connection now, if none was made yet (else does nothing), so
    /// that frames can be sent before the first one is read. Fails as the first
    /// [`Follower::next`] would.
    pub async fn connect_now(&mut self) -> Result<(), ClientError> {
        if self.connected_once {
            return Ok(());
        }
        self.connect().await
    }

    /// Sends `frame` on the open connection. When none is open, or sending fails,
    /// the frame is not sent (`Err`); a failure is also reported by the next
    /// [`Follower::next`] as a drop, which then reconnects.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), StreamEnd> {
        let Some(socket) = self.socket.as_mut() else {
            return Err(StreamEnd::Closed { code: None });
        };
        match socket.send(frame).await {
            Ok(()) => Ok(()),
            Err(end) => {
                self.socket = None;
                self.unreported = Some(end.clone());
                Err(end)
            }
        }
    }

    /// Closes the connection, if one is open.
    pub async fn close(&mut self) {
        if let Some(mut socket) = self.socket.take() {
            socket.close().await;
        }
    }

    /// Connects (after the backoff delay when reconnecting), retrying what retrying
    /// can fix once a first connection was made.
    async fn connect(&mut self) -> Result<(), ClientError> {
        loop {
            if self.connected_once {
                tokio::time::sleep(self.backoff.next_delay()).await;
            }
            let opened = self
                .client
                .events(&self.worker, self.cursor.as_deref(), self.interactive)
                .await;
            match opened {
                Ok(socket) => {
                    self.socket = Some(socket);
                    self.connected_once = true;
                    self.backoff.reset();
                    return Ok(());
                }
                // A cursor the backend no longer takes: start over from a snapshot.
                Err(error) if error.is(ErrorCode::InvalidCursor) && self.cursor.is_some() => {
                    tracing::debug!("the backend refused the cursor; following from a snapshot");
                    self.cursor = None;
                }
                Err(error) if self.connected_once && error.is_transient() => {
                    tracing::debug!(%error, "reconnecting to the event stream failed; retrying");
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Capped exponential backoff with jitter (each delay between 75% and 125% of the
/// nominal one).
#[derive(Debug, Clone)]
struct Backoff {
    initial: Duration,
    max: Duration,
    nominal: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            nominal: initial,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.nominal.mul_f64(0.75 + fastrand::f64() / 2.0);
        self.nominal = (self.nominal * 2).min(self.max);
        delay
    }

    fn reset(&mut self) {
        self.nominal = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let nominal = [100, 200, 400, 800, 1000, 1000];
        for ms in nominal {
            let delay = backoff.next_delay();
            let ms = Duration::from_millis(ms);
            assert!(
                delay >= ms.mul_f64(0.75) && delay <= ms.mul_f64(1.25),
                "{delay:?} vs {ms:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(125));
    }
}
