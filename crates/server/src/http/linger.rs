//! Closing connections without losing the last answer: lingering close, and the
//! fixed answers written to a connection before hyper sees it.
//!
//! A server that closes a socket while the client's bytes are still arriving (a
//! request body it refused before reading it: `413` from `Content-Length`, `401`,
//! `403`, `415`) makes the kernel answer them with a TCP reset, and a reset can
//! destroy the answer the client has not read yet. Clients that send the whole body
//! before reading (Python's `urllib`, many scripts) then see "connection reset"
//! instead of the `413`. So every connection hyper closes goes through
//! [`ServerIo::poll_shutdown`]: no more writes (the answer is flushed and a FIN
//! sent), then what the client still sends is read and dropped until it closes its
//! side, for at most [`LINGER_TIME`] and [`LINGER_BYTES`]. A client that closed first
//! costs one `read` that returns 0.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use switchyard_protocol::{ErrorBody, ErrorDetail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Sleep;

use super::limit::ConnectionPermit;
use super::response::API_CSP;
use super::shutdown::Shutdown;

/// Longest a closing connection is drained.
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// Most bytes a closing connection drains before it is closed regardless.
pub const LINGER_BYTES: u64 = 16 * 1024 * 1024;

/// A complete HTTP/1.1 error answer with the contract's error body, for writing to a
/// socket directly (before or instead of hyper): `status_line` is e.g.
/// `503 Service Unavailable`; `Connection: close` is always set, and so are the
/// browser-defence headers every API answer of the backend carries (CSP, `nosniff`,
/// no referrer, no framing): this answer is written before anything knows which
/// surface the connection is for.
pub fn raw_error_response(
    status_line: &str,
    detail: ErrorDetail,
    headers: &[(&str, &str)],
) -> Vec<u8> {
    let body = serde_json::to_string(&ErrorBody::from(detail)).unwrap_or_default();
    let mut head = format!(
        "HTTP/1.1 {status_line}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\
         content-security-policy: {API_CSP}\r\nx-content-type-options: nosniff\r\n\
         referrer-policy: no-referrer\r\nx-frame-options: DENY\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.push_str(&body);
    head.into_bytes()
}

/// Closes `stream` gently: no more writes, then read and drop what the peer still
/// sends for up to `time` (and [`LINGER_BYTES`]), so that what was written is not
/// lost to a reset.
pub async fn linger_close<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, time: Duration) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 8192];
    let drain = async {
        let mut drained = 0u64;
        while let Ok(n) = stream.read(&mut sink).await {
            drained += n as u64;
            if n == 0 || drained >= LINGER_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(time, drain).await;
}

/// Where a connection's close is.
enum Closing {
    /// Serving.
    Open,
    /// The write side is being shut down.
    ShuttingDown,
    /// Reading and dropping what the client still sends.
    Draining {
        deadline: Pin<Box<Sleep>>,
        drained: u64,
    },
    /// Closed.
    Closed,
}

/// The stream a connection is served over: the client's socket (TLS or not), the
/// connection's place under the listener's limit (held until the connection, or the
/// WebSocket it was upgraded to, is gone), and a lingering close when hyper shuts it
/// down.
pub struct ServerIo<S> {
    inner: S,
    _permit: ConnectionPermit,
    shutdown: Shutdown,
    closing: Closing,
}

impl<S> ServerIo<S> {
    /// Wraps `inner`, which holds `permit` while it lives; `shutdown` firing skips the
    /// lingering (the server is stopping: closing fast matters more).
    pub fn new(inner: S, permit: ConnectionPermit, shutdown: Shutdown) -> Self {
        Self {
            inner,
            _permit: permit,
            shutdown,
            closing: Closing::Open,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ServerIo<S> {
    /// Reads and drops until the client closes, errs, or a bound is reached.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Closing::Draining { deadline, drained } = &mut self.closing else {
            return Poll::Ready(());
        };
        let mut sink = [0u8; 8192];
        loop {
            let mut buf = ReadBuf::new(&mut sink);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    *drained += buf.filled().len() as u64;
                    if *drained >= LINGER_BYTES {
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => {
                    return match deadline.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(()),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ServerIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ServerIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    /// Shuts the write side down, then lingers (see the module's documentation).
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match this.closing {
                Closing::Open => this.closing = Closing::ShuttingDown,
                Closing::ShuttingDown => {
                    let shut = ready!(Pin::new(&mut this.inner).poll_shutdown(cx));
                    if shut.is_err() || this.shutdown.is_triggered() {
                        this.closing = Closing::Closed;
                        return Poll::Ready(shut);
                    }
                    this.closing = Closing::Draining {
                        deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                        drained: 0,
                    };
                }
                Closing::Draining { .. } => {
                    ready!(this.poll_drain(cx));
                    this.closing = Closing::Closed;
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_protocol::ErrorCode;

    #[test]
    fn raw_error_responses_are_well_formed() {
        let raw = raw_error_response(
            "503 Service Unavailable",
            ErrorDetail::new(ErrorCode::Overloaded, "busy").with_retry_after_ms(1000),
            &[("retry-after", "1")],
        );
        let text = std::str::from_utf8(&raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(head.contains("\r\nretry-after: 1"), "{head}");
        for header in [
            "content-security-policy: default-src 'none'; frame-ancestors 'none'",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
            "x-frame-options: DENY",
        ] {
            assert!(head.contains(&format!("\r\n{header}\r\n")), "{head}");
        }
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "overloaded");
        assert_eq!(json["error"]["retry_after_ms"], 1000);
    }
}
