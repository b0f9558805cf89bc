//! The contract's error body on the answers hyper writes by itself.
//!
//! When a request cannot be parsed (a malformed request line or header, headers
//! over hyper's limits, a request target too long) hyper answers on its own,
//! before any handler runs: a bare head (`400`, `431` or `414`, `connection:
//! close`, `content-length: 0`) and then it closes. Every other error of both
//! surfaces carries `{"error":{"code","message"}}`, the browser-defence headers
//! and a request id; these did not. [`TypedParseErrors`] sits directly below
//! hyper, recognises those heads among hyper's writes (a whole write, exactly
//! hyper's fixed form with a well-formed `date`; nothing is looked at beyond a
//! write's first ten bytes unless they are `HTTP/1.1 4`, and nothing is copied
//! unless the write is short enough to be such a head) and writes the same status
//! with the typed body instead.
//!
//! What this does not know is where in the stream a write falls: a body written
//! on its own that is, byte for byte, such a head would be replaced too. No
//! answer of either surface has one (their bodies are JSON, the console's pages
//! and scripts, and WebSocket frames, whose header goes out in the same write);
//! a handler of one's own behind [`super::serve_with`] should not send one.
//!
//! Invariants:
//! - every byte hyper hands over is written, in order; a replaced head is written
//!   whole before anything after it and before a flush or shutdown completes;
//! - only a write that is one of hyper's parse-error heads, whole, is replaced.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use switchyard_protocol::{ErrorCode, ErrorDetail};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::linger::raw_error_response;
use super::serve::RequestId;

/// The status lines hyper gives its parse errors (`proto::h1::role::Server::on_error`),
/// with what the typed answer says.
const PARSE_ERRORS: [(&str, &str); 3] = [
    (
        "400 Bad Request",
        "the request is not valid HTTP/1.1: its request line or a header could not be \
         parsed; fix the client (or the proxy in front of this server)",
    ),
    (
        "431 Request Header Fields Too Large",
        "the request's headers are too large (over 100 headers or about 400 KiB); \
         send fewer or smaller headers (a large cookie?)",
    ),
    (
        "414 URI Too Long",
        "the request target is too long (65,534 bytes at most); move the data into a \
         request body or shorten the query",
    ),
];

/// What hyper writes after the status line of such an answer, up to its `date`.
const BARE_HEADERS: &[u8] = b"\r\nconnection: close\r\ncontent-length: 0\r\ndate: ";

/// The longest such head: the longest status line, the headers, a date, the end.
const LONGEST_HEAD: usize = "HTTP/1.1 431 Request Header Fields Too Large".len() + 46 + 29 + 4;

/// The typed answer for `head` when `head` is one of hyper's parse-error answers,
/// whole (status line, `connection: close`, `content-length: 0`, `date`, end of
/// head); `None` for anything else.
fn typed_answer(head: &[u8]) -> Option<Vec<u8>> {
    let rest = head.strip_prefix(b"HTTP/1.1 ")?;
    let (status_line, message) = PARSE_ERRORS
        .iter()
        .find(|(line, _)| rest.starts_with(line.as_bytes()))?;
    let date_line = rest[status_line.len()..].strip_prefix(BARE_HEADERS)?;
    // An IMF-fixdate ("Wed, 02 Dec 2026 17:07:30 GMT") and the end of the head.
    let date = date_line.strip_suffix(b"\r\n\r\n")?;
    if date.len() != 29
        || !date.ends_with(b" GMT")
        || !date.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
    {
        return None;
    }
    let date = std::str::from_utf8(date).ok()?;
    let request_id = RequestId::random();
    tracing::debug!(
        status = status_line,
        request_id = %request_id,
        "answered a request hyper could not parse"
    );
    Some(raw_error_response(
        status_line,
        ErrorDetail::new(ErrorCode::InvalidRequest, *message),
        &[("x-request-id", request_id.as_str()), ("date", date)],
    ))
}

/// A server connection whose parse-error answers from hyper carry the typed body
/// (see the module).
pub(super) struct TypedParseErrors<S> {
    inner: S,
    /// A typed answer accepted from hyper, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> TypedParseErrors<S> {
    /// Wraps a connection's stream, to be handed to hyper.
    pub(super) fn new(inner: S) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

impl<S: AsyncWrite + Unpin> TypedParseErrors<S> {
    /// Writes the pending typed answer, if any, to its end.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, written)) = &mut self.pending {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            if *written == answer.len() {
                self.pending = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `head` as written when it is a parse-error answer (its typed form is
    /// then pending); `None` when it is to be written as it is.
    fn replace(&mut self, head: &[u8], cx: &mut Context<'_>) -> Option<io::Result<usize>> {
        let answer = typed_answer(head)?;
        self.pending = Some((answer, 0));
        // Written at once as far as the socket takes it; the rest by the next
        // write, flush or shutdown (hyper flushes and shuts down next).
        match self.poll_pending(cx) {
            Poll::Ready(Err(error)) => Some(Err(error)),
            _ => Some(Ok(head.len())),
        }
    }
}

/// The first bytes of every parse-error answer.
const PREFIX: &[u8] = b"HTTP/1.1 4";

impl<S: AsyncRead + Unpin> AsyncRead for TypedParseErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TypedParseErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if buf.starts_with(PREFIX)
            && let Some(outcome) = this.replace(buf, cx)
        {
            return Poll::Ready(outcome);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if bufs.first().is_some_and(|b| b.starts_with(PREFIX))
            && bufs.iter().map(|b| b.len()).sum::<usize>() <= LONGEST_HEAD
        {
            let head: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if let Some(outcome) = this.replace(&head, cx) {
                return Poll::Ready(outcome);
            }
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const DATE: &str = "Wed, 02 Dec 2026 17:07:30 GMT";

    fn hyper_head(status_line: &str) -> String {
        format!(
            "HTTP/1.1 {status_line}\r\nconnection: close\r\ncontent-length: 0\r\ndate: {DATE}\r\n\r\n"
        )
    }

    /// What a client reads after `writes` went through the wrapper, flushed and shut down.
    /// The pipe is 7 bytes wide, so that every write is taken in pieces.
    async fn written(writes: &[&[u8]], vectored: bool) -> Vec<u8> {
        let (near, mut far) = tokio::io::duplex(7);
        let reader = tokio::spawn(async move {
            let mut out = Vec::new();
            far.read_to_end(&mut out).await.unwrap();
            out
        });
        let mut io = TypedParseErrors::new(near);
        for write in writes {
            if vectored {
                // Split like hyper's queued buffers: the head in pieces.
                let (a, b) = write.split_at(write.len() / 2);
                let slices = [io::IoSlice::new(a), io::IoSlice::new(b)];
                let n = io.write_vectored(&slices).await.unwrap();
                io.write_all(&write[n..]).await.unwrap();
            } else {
                io.write_all(write).await.unwrap();
            }
        }
        io.shutdown().await.unwrap();
        drop(io);
        reader.await.unwrap()
    }

    fn check(head: &str, expected: Option<(&str, &str)>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for vectored in [false, true] {
            let out = runtime.block_on(written(&[head.as_bytes()], vectored));
            let text = String::from_utf8(out).unwrap();
            match expected {
                None => assert_eq!(text, head, "left as it was"),
                Some((status_line, message_start)) => {
                    let (answer_head, body) = text.split_once("\r\n\r\n").unwrap();
                    assert!(
                        answer_head.starts_with(&format!("HTTP/1.1 {status_line}\r\n")),
                        "{answer_head}"
                    );
                    assert!(answer_head.contains("\r\nconnection: close\r\n"));
                    assert!(answer_head.contains("\r\nx-content-type-options: nosniff\r\n"));
                    assert!(answer_head.contains("\r\nx-request-id: "));
                    assert!(answer_head.contains(&format!("\r\ndate: {DATE}")));
                    let json: serde_json::Value = serde_json::from_str(body).unwrap();
                    assert_eq!(json["error"]["code"], "invalid_request");
                    let message = json["error"]["message"].as_str().unwrap();
                    assert!(message.starts_with(message_start), "{message}");
                }
            }
        }
    }

    #[test]
    fn hypers_parse_error_answers_get_the_typed_body() {
        for (line, _) in PARSE_ERRORS {
            assert!(hyper_head(line).len() <= LONGEST_HEAD, "{line}");
        }
        check(
            &hyper_head("400 Bad Request"),
            Some(("400 Bad Request", "the request is not valid HTTP/1.1")),
        );
        check(
            &hyper_head("431 Request Header Fields Too Large"),
            Some((
                "431 Request Header Fields Too Large",
                "the request's headers are too large",
            )),
        );
        check(
            &hyper_head("414 URI Too Long"),
            Some(("414 URI Too Long", "the request target is too long")),
        );
    }

    #[test]
    fn other_answers_pass_unchanged() {
        // A handler's 400 (it has a body and its own headers).
        check(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
            None,
        );
        // hyper's form, but with a body after the head, or no date, or another status.
        check(&format!("{}x", hyper_head("400 Bad Request")), None);
        check(
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            None,
        );
        check(&hyper_head("404 Not Found"), None);
        check(&hyper_head("400 Bad Request").replace(DATE, "today"), None);
        // Not an answer head at all (a WebSocket frame, a body).
        check("\u{1}\u{2}HTTP/1.1 400", None);
        check("", None);
    }

    #[test]
    fn what_was_written_before_stays_before_the_typed_answer() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let first = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".as_slice();
        let bare = hyper_head("400 Bad Request");
        let out = runtime.block_on(written(&[first, bare.as_bytes()], false));
        assert!(out.starts_with(first));
        let rest = String::from_utf8(out[first.len()..].to_vec()).unwrap();
        assert!(rest.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{rest}");
        assert!(rest.contains("\"code\":\"invalid_request\""), "{rest}");
    }
}
