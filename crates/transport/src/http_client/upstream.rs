//! [`Upstream`]: one keep-alive HTTP/1.1 connection to a runtime, used by one
//! exchange at a time, entirely within the task that sends the request: the request
//! goes out in one write, the answer is read into a buffer the connection keeps,
//! and its body is handed on without a copy (see [`super::http1`] for the wire
//! format).
//!
//! Between exchanges nobody reads the connection (it sits in the [`Pool`]); before
//! it is used again, a read that cannot block tells whether the runtime closed it
//! meanwhile.
//!
//! [`Pool`]: super::pool::Pool

use std::error::Error as StdError;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Context;

use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode, Uri};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::http1::{self, BodyError, Chunked, Framing, Malformed};
use crate::tls::{HttpsConnector, Stream};

/// Room a connection's write buffer keeps from one request to the next. A larger
/// one (a batch of large inputs) is given back once written, so that one burst does
/// not leave a connection holding its largest batch for the rest of its life.
pub(super) const KEPT_WRITE_ROOM: usize = 64 * 1024;

/// Any error of connecting, to be mapped by the caller.
pub(super) type BoxError = Box<dyn StdError + Send + Sync>;

/// The read buffer's size at first, and the room it grows by when full (it grows
/// further for a larger answer).
const READ_BUFFER: usize = 8 * 1024;

/// The same for a pipelined connection, whose reads bring the answers to a whole
/// batch of requests: eight lists of eight workers are about 21 KiB, three reads
/// of 8 KiB (measured: 0.2 more `recvfrom` per relayed list than per worker
/// detail). A runtime has at most a few pipes per connection thread.
const PIPE_READ_BUFFER: usize = 32 * 1024;

/// How an exchange failed.
#[derive(Debug)]
pub(super) enum ExchangeError {
    /// Writing the request failed: the runtime did not get all of it, so it acted
    /// on nothing and the request may be sent again on another connection.
    NotSent(io::Error),
    /// The connection closed before any byte of the answer.
    ClosedBeforeAnswer,
    /// Reading failed before any byte of the answer (reset, TLS alert, ...).
    ReadBeforeAnswer(io::Error),
    /// Reading the answer failed (reset, TLS alert, ...).
    Read(io::Error),
    /// The connection closed in the middle of the answer.
    Truncated,
    /// The answer is not HTTP/1.1 as this client reads it.
    Malformed(Malformed),
    /// The answer's body is longer than the limit.
    TooLarge,
}

impl ExchangeError {
    /// The I/O error behind it, if any (for the log of TLS failures).
    pub(super) fn io_error(&self) -> Option<&io::Error> {
        match self {
            Self::NotSent(e) | Self::ReadBeforeAnswer(e) | Self::Read(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BodyError> for ExchangeError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::Malformed(m) => Self::Malformed(m),
            BodyError::TooLarge => Self::TooLarge,
        }
    }
}

/// What an exchange gives: status, whether the answer says it is JSON, and the
/// whole body.
#[derive(Debug)]
pub(super) struct Exchanged {
    pub(super) status: StatusCode,
    pub(super) json: bool,
    pub(super) body: Bytes,
}

/// One connection.
pub(super) struct Upstream {
    /// The stream, and what has been read from it and not used yet.
    conn: Reader<Stream>,
    /// The request being written (kept for its capacity).
    write: Vec<u8>,
    /// The last exchange left the connection fit for another.
    reusable: bool,
}

/// The reading side of a connection: the stream (or its read half) and what has
/// been read and not used yet.
pub(super) struct Reader<R> {
    io: R,
    read: BytesMut,
    /// The room `read` starts with and grows by ([`READ_BUFFER`] or
    /// [`PIPE_READ_BUFFER`]).
    room: usize,
    /// Part of an answer was taken from `read` and the rest not yet: a read of it
    /// given up now would leave the stream in the middle of that answer.
    mid_answer: bool,
}

/// The read half of a connection split for pipelining.
pub(super) type ReadSide = Reader<tokio::io::ReadHalf<Stream>>;

/// The write half of a connection split for pipelining.
pub(super) type WriteSide = tokio::io::WriteHalf<Stream>;

impl Upstream {
    /// Connects (TCP, then TLS when the connector has it) to the authority of
    /// `uri`.
    pub(super) async fn connect(connector: &HttpsConnector, uri: Uri) -> Result<Self, BoxError> {
        use tower_service::Service;
        let mut connector = connector.clone();
        poll_fn(|cx| connector.poll_ready(cx)).await?;
        let stream = connector.call(uri).await?.into_inner();
        Ok(Self {
            conn: Reader {
                io: stream,
                read: BytesMut::with_capacity(READ_BUFFER),
                room: READ_BUFFER,
                mid_answer: false,
            },
            write: Vec::with_capacity(512),
            reusable: true,
        })
    }

    /// True when the connection still looks open: nothing arrived on it while it
    /// was idle (neither a close nor stray bytes), as far as can be told without
    /// waiting. Call before reusing it.
    pub(super) fn looks_open(&self) -> bool {
        let tcp = match &self.conn.io {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().0,
        };
        let mut probe = [0u8; 1];
        matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends the request and reads the whole answer, at most `limit` body bytes.
    /// `fixed` holds the endpoint's header lines (see [`http1::write_request`]).
    pub(super) async fn exchange(
        &mut self,
        method: &Method,
        target: &[&str],
        fixed: &[u8],
        body: Option<&[u8]>,
        limit: usize,
    ) -> Result<Exchanged, ExchangeError> {
        self.reusable = false;
        let mut write = std::mem::take(&mut self.write);
        write.clear();
        http1::write_request(&mut write, method, target, fixed, body);
        let sent = self.send(&write).await;
        if write.capacity() <= KEPT_WRITE_ROOM {
            self.write = write;
        }
        sent?;
        let (exchanged, keep_alive) = self.conn.read_answer(limit).await?;
        // Bytes beyond the answer were never asked for: do not trust the connection.
        self.reusable = keep_alive && self.conn.nothing_buffered();
        Ok(exchanged)
    }

    /// Writes `request` in one go.
    async fn send(&mut self, request: &[u8]) -> Result<(), ExchangeError> {
        send(&mut self.conn.io, request).await
    }

    /// The connection as a read half (with what was read and not used, in a buffer
    /// of [`PIPE_READ_BUFFER`]) and a write half, for pipelining.
    pub(super) fn split(self) -> (ReadSide, WriteSide) {
        let (read_half, write_half) = tokio::io::split(self.conn.io);
        let mut read = self.conn.read;
        read.reserve(PIPE_READ_BUFFER.saturating_sub(read.len()));
        let reader = Reader {
            io: read_half,
            read,
            room: PIPE_READ_BUFFER,
            mid_answer: self.conn.mid_answer,
        };
        (reader, write_half)
    }

    /// True when the last exchange left the connection fit for another.
    pub(super) fn reusable(&self) -> bool {
        self.reusable
    }
}

/// Writes `requests` (one or more whole requests) in one go.
pub(super) async fn send<W: AsyncWrite + Unpin>(
    io: &mut W,
    requests: &[u8],
) -> Result<(), ExchangeError> {
    io.write_all(requests)
        .await
        .map_err(ExchangeError::NotSent)?;
    io.flush().await.map_err(ExchangeError::NotSent)
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Reads the next answer, at most `limit` body bytes, and whether it lets the
    /// connection carry another (bytes after it stay buffered: with pipelined
    /// requests they are the next answers).
    ///
    /// Given up (the future dropped) while reading an answer framed by
    /// `Content-Length`, as the runtime's are, it takes nothing of that answer
    /// from the buffer: the next call reads it whole ([`Reader::mid_answer`] says
    /// whether that holds).
    pub(super) async fn read_answer(
        &mut self,
        limit: usize,
    ) -> Result<(Exchanged, bool), ExchangeError> {
        let head = loop {
            match http1::parse_head(&self.read).map_err(ExchangeError::Malformed)? {
                Some(head) if head.status.is_informational() => {
                    if head.status == StatusCode::SWITCHING_PROTOCOLS {
                        return Err(ExchangeError::Malformed(Malformed(
                            "the runtime switched protocols unasked",
                        )));
                    }
                    let _ = self.read.split_to(head.len);
                }
                Some(head) => break head,
                None => {
                    let started = !self.read.is_empty();
                    match self.fill().await {
                        Ok(0) if started => return Err(ExchangeError::Truncated),
                        Ok(0) => return Err(ExchangeError::ClosedBeforeAnswer),
                        Ok(_) => {}
                        Err(ExchangeError::Read(e)) if !started => {
                            return Err(ExchangeError::ReadBeforeAnswer(e));
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        let body = match head.framing {
            Framing::Empty => {
                let _ = self.read.split_to(head.len);
                Bytes::new()
            }
            Framing::Length(length) => {
                let length = usize::try_from(length)
                    .ok()
                    .filter(|l| *l <= limit)
                    .ok_or(ExchangeError::TooLarge)?;
                // The head stays in the buffer until the body is whole.
                let whole = head.len + length;
                self.read.reserve(whole.saturating_sub(self.read.len()));
                while self.read.len() < whole {
                    if self.fill().await? == 0 {
                        return Err(ExchangeError::Truncated);
                    }
                }
                let _ = self.read.split_to(head.len);
                self.read.split_to(length).freeze()
            }
            Framing::Chunked => {
                let _ = self.read.split_to(head.len);
                self.mid_answer = true;
                let mut chunked = Chunked::default();
                loop {
                    if let Some(body) = chunked.feed(&mut self.read, limit)? {
                        break body;
                    }
                    if self.fill().await? == 0 {
                        return Err(ExchangeError::Truncated);
                    }
                }
            }
            Framing::UntilClose => {
                let _ = self.read.split_to(head.len);
                self.mid_answer = true;
                loop {
                    if self.read.len() > limit {
                        return Err(ExchangeError::TooLarge);
                    }
                    if self.fill().await? == 0 {
                        break self.read.split().freeze();
                    }
                }
            }
        };
        self.mid_answer = false;
        let keep_alive = head.keep_alive && head.framing != Framing::UntilClose;
        let exchanged = Exchanged {
            status: head.status,
            json: head.json,
            body,
        };
        Ok((exchanged, keep_alive))
    }

    /// True when the connection still looks open while nothing is asked of it:
    /// nothing arrived (neither a close nor stray bytes), as far as can be told
    /// without waiting. Reads a byte if one came (the connection is then no good).
    pub(super) fn looks_open(&mut self) -> bool {
        if !self.read.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        Pin::new(&mut self.io)
            .poll_read(&mut cx, &mut probe)
            .is_pending()
    }

    /// Part of an answer has been taken and the rest not (a read of it was given
    /// up in the middle): the stream cannot be read for the next answer.
    pub(super) fn mid_answer(&self) -> bool {
        self.mid_answer
    }

    /// Nothing read and not yet used is buffered (with pipelined requests, no
    /// answer arrived that nobody asked for).
    pub(super) fn nothing_buffered(&self) -> bool {
        self.read.is_empty()
    }

    /// Reads more of the answer; 0 at the end of the stream.
    ///
    /// Each answer's body is split off the front of the buffer, so the room left
    /// at its end shrinks answer by answer. With less than half the buffer's size
    /// left, the room of answers already dropped is taken back when that costs no
    /// allocation, and a new buffer is allocated when it does: a read into a few
    /// hundred bytes of room would take a batch of answers in many system calls
    /// (measured: lists relayed from a pipe read 1.8–6 KiB at a time, an
    /// allocation costs far less than the reads it saves).
    async fn fill(&mut self) -> Result<usize, ExchangeError> {
        let free = self.read.capacity() - self.read.len();
        let half = self.room / 2;
        if free < half && !self.read.try_reclaim(half) {
            self.read.reserve(self.room);
        }
        self.io
            .read_buf(&mut self.read)
            .await
            .map_err(ExchangeError::Read)
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;

    use super::*;

    /// A stream on which pipelined answers arrive `per_write` at a time (a
    /// runtime's writes), each write whole by the time it is read; it gives a read
    /// as much of the next write as the buffer has room for, and counts the reads.
    struct Arrived {
        writes: std::collections::VecDeque<Vec<u8>>,
        reads: usize,
    }

    impl AsyncRead for Arrived {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.reads += 1;
            if let Some(write) = self.writes.front_mut() {
                let n = buf.remaining().min(write.len());
                buf.put_slice(&write[..n]);
                write.drain(..n);
                if write.is_empty() {
                    self.writes.pop_front();
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    /// Reads `writes` × `per_write` answers with bodies of `body` bytes from a
    /// pipe's reader, keeping every body (as the requests do until they have
    /// written them to their clients); the reads it took.
    async fn reads_for(writes: usize, per_write: usize, body: usize) -> usize {
        let answer = [
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {body}\r\n\r\n"
            )
            .into_bytes(),
            vec![b'x'; body],
        ]
        .concat();
        let io = Arrived {
            writes: (0..writes).map(|_| answer.repeat(per_write)).collect(),
            reads: 0,
        };
        let mut reader = Reader {
            io,
            read: BytesMut::with_capacity(PIPE_READ_BUFFER),
            room: PIPE_READ_BUFFER,
            mid_answer: false,
        };
        let mut kept = Vec::new();
        for _ in 0..writes * per_write {
            let (answer, keep_alive) = reader.read_answer(1 << 20).await.unwrap();
            assert!(keep_alive);
            assert_eq!(answer.body.len(), body);
            kept.push(answer.body);
        }
        reader.io.reads
    }

    /// Eight lists of eight workers written together: one read takes them all.
    #[tokio::test]
    async fn a_batch_of_answers_is_taken_in_one_read() {
        assert_eq!(reads_for(1, 8, 2_000).await, 1);
    }

    /// Batch after batch, every answer still held: each batch in one read, never
    /// a read into the few bytes left at the end of the buffer.
    #[tokio::test]
    async fn each_batch_is_taken_in_one_read() {
        for (writes, per_write) in [(8, 3), (12, 5), (4, 8)] {
            assert_eq!(
                reads_for(writes, per_write, 2_000).await,
                writes,
                "{writes} writes of {per_write} answers"
            );
        }
    }
}
