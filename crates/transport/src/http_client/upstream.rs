//! [`Upstream`]: one keep-alive HTTP/1.1 connection to a runtime over hyper's
//! `client::conn::http1`, driven by the task that sends the request: no connection
//! task, no channel hop between tasks or threads per request.
//!
//! While an exchange runs, the request's own future polls both the connection and
//! the answer; between exchanges nobody polls it (it sits in the [`Pool`]), so a
//! close by the runtime is noticed when the connection is next taken out.
//!
//! [`Pool`]: super::pool::Pool

use std::error::Error as StdError;
use std::future::poll_fn;
use std::pin::pin;
use std::task::Poll;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, Connection, SendRequest};

use super::answer;
use crate::tls::{Conn, HttpsConnector};

/// Any error of connecting or of an exchange, to be mapped by the caller.
pub(super) type BoxError = Box<dyn StdError + Send + Sync>;

/// Why the connection stopped serving an exchange.
#[derive(Debug)]
pub(super) enum ConnError {
    /// hyper's error: a reset or closed connection, an answer that is not HTTP.
    Hyper(hyper::Error),
    /// The connection ended (the runtime closed it) before the answer was complete.
    Closed,
}

/// How an exchange failed.
#[derive(Debug)]
pub(super) enum ExchangeError {
    /// The connection turned out closed before the request was sent: nothing
    /// reached the runtime, so the request may be sent again on another one.
    NotSent(ConnError),
    /// Sending the request or reading the answer's head failed.
    Head(ConnError),
    /// Reading the answer's body failed, or it is longer than the limit.
    Body(BoxError),
}

/// What an exchange gives: status, whether the answer says it is JSON, and the
/// whole body.
#[derive(Debug)]
pub(super) struct Exchanged {
    pub(super) status: StatusCode,
    pub(super) json: bool,
    pub(super) body: Bytes,
}

/// One connection: hyper's request sender and the connection it drives.
pub(super) struct Upstream {
    sender: SendRequest<Full<Bytes>>,
    conn: Connection<Conn, Full<Bytes>>,
}

impl Upstream {
    /// Connects (TCP, then TLS when the connector has it) to the authority of
    /// `uri` and starts HTTP/1.1 on it.
    pub(super) async fn connect(connector: &HttpsConnector, uri: Uri) -> Result<Self, BoxError> {
        use tower_service::Service;
        let mut connector = connector.clone();
        poll_fn(|cx| connector.poll_ready(cx)).await?;
        let io = connector.call(uri).await?;
        let (sender, conn) = http1::Builder::new().handshake(io).await?;
        Ok(Self { sender, conn })
    }

    /// Sends `request` and reads the whole answer, at most `limit` body bytes.
    pub(super) async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
        limit: usize,
    ) -> Result<Exchanged, ExchangeError> {
        let Self { sender, conn } = self;
        // The connection may still be finishing the previous answer, or be closed.
        drive(conn, poll_fn(|cx| sender.poll_ready(cx)))
            .await
            .and_then(|r| r.map_err(ConnError::Hyper))
            .map_err(ExchangeError::NotSent)?;
        let response = drive(conn, sender.send_request(request))
            .await
            .and_then(|r| r.map_err(ConnError::Hyper))
            .map_err(ExchangeError::Head)?;
        let status = response.status();
        let json = response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| answer::is_json(v.as_bytes()));
        let body = Limited::new(response.into_body(), limit).collect();
        let body = match drive(conn, body).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(error)) => return Err(ExchangeError::Body(error)),
            Err(error) => return Err(ExchangeError::Head(error)),
        };
        Ok(Exchanged { status, json, body })
    }

    /// True when the connection can carry another exchange (the last one ended
    /// cleanly and neither side asked to close).
    pub(super) fn reusable(&mut self) -> bool {
        let Self { sender, conn } = self;
        // One more turn lets the connection finish the answer and go idle.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        if conn.poll_without_shutdown(&mut cx).is_ready() {
            return false;
        }
        sender.is_ready()
    }
}

/// Runs `work` while driving `conn`: the result of `work`, or how the connection
/// ended if it ends first.
async fn drive<T>(
    conn: &mut Connection<Conn, Full<Bytes>>,
    work: impl Future<Output = T>,
) -> Result<T, ConnError> {
    let mut work = pin!(work);
    poll_fn(|cx| {
        // The connection first: it moves the bytes the work waits for.
        let ended = conn.poll_without_shutdown(cx);
        if let Poll::Ready(value) = work.as_mut().poll(cx) {
            return Poll::Ready(Ok(value));
        }
        match ended {
            Poll::Ready(Err(error)) => Poll::Ready(Err(ConnError::Hyper(error))),
            Poll::Ready(Ok(())) => Poll::Ready(Err(ConnError::Closed)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
