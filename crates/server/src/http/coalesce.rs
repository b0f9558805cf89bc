//! Answers to pipelined requests written together: a connection's writes are held
//! while hyper works through what it has read, and written in one system call
//! when the connection's task has done all it can ([`FlushAfterPoll`]).
//!
//! The backend pipelines its `GET`s and inputs to a runtime, so a runtime's
//! connection often holds several requests at once. hyper answers them one by one
//! and flushes after each answer: one `writev` per request, each waking the
//! backend's reader. hyper's own remedy (`pipeline_flush`) defers the flush while
//! its read buffer holds more, but then closes a connection without flushing when
//! it stops reading a request's body early (a `413` before the body was read is
//! lost). Here the writes are held below hyper instead: [`CoalescingIo`] keeps
//! them (up to [`MAX_HELD`] bytes), and [`FlushAfterPoll`] writes them out after
//! every poll of the connection, and on its end; a shutdown writes them first.
//!
//! Interleaved A/B on this project's benchmark (the same backend in front of a
//! runtime with and without this, backend/nginx req/s): input 0.87 → 0.95 and
//! worker list 0.95 → 1.10 at 16 connections, worker detail 1.12 → 1.27 at 64
//! (docs/bench/ANALYSIS.md). A client that sends one request at a time gets one
//! write per answer, as before.
//!
//! Invariants:
//! - nothing written stays held past the end of the poll that wrote it unless
//!   the socket is full (the task is then woken when it can take more);
//! - after the connection future ends (closed, or upgraded to a WebSocket) every
//!   write and flush goes straight through.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes held before a write goes out regardless.
pub(super) const MAX_HELD: usize = 64 * 1024;

/// A connection whose writes are held until [`FlushAfterPoll`] writes them.
pub(super) struct CoalescingIo<S> {
    shared: Arc<Mutex<Shared<S>>>,
}

/// A connection's future (hyper's), followed after every poll by a write of what
/// it wrote during the poll.
pub(super) struct FlushAfterPoll<C, S> {
    connection: Pin<Box<C>>,
    shared: Arc<Mutex<Shared<S>>>,
}

struct Shared<S> {
    io: S,
    /// Written by hyper, not yet to the socket.
    held: Vec<u8>,
    /// Writes are held (while the connection future runs).
    holding: bool,
}

/// `io` as a [`CoalescingIo`], and the handle [`FlushAfterPoll::new`] takes.
pub(super) fn coalescing<S>(io: S) -> (CoalescingIo<S>, Flusher<S>) {
    let shared = Arc::new(Mutex::new(Shared {
        io,
        held: Vec::new(),
        holding: true,
    }));
    (
        CoalescingIo {
            shared: shared.clone(),
        },
        Flusher(shared),
    )
}

/// What [`FlushAfterPoll`] writes through.
pub(super) struct Flusher<S>(Arc<Mutex<Shared<S>>>);

fn lock<S>(shared: &Mutex<Shared<S>>) -> MutexGuard<'_, Shared<S>> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: AsyncWrite + Unpin> Shared<S> {
    /// Writes everything held, then flushes the socket.
    fn poll_write_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.held.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.held))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.held.drain(..n);
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Holds `bufs` (`len` bytes in all), writing what is held first when they
    /// would not fit; `None` when they are to be written directly instead.
    fn poll_hold(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
        len: usize,
    ) -> Poll<io::Result<Option<usize>>> {
        if !self.holding {
            ready!(self.poll_write_held(cx))?;
            return Poll::Ready(Ok(None));
        }
        if self.held.len() + len > MAX_HELD {
            ready!(self.poll_write_held(cx))?;
            if len > MAX_HELD {
                return Poll::Ready(Ok(None));
            }
        }
        for buf in bufs {
            self.held.extend_from_slice(buf);
        }
        Poll::Ready(Ok(Some(len)))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CoalescingIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut lock(&self.shared).io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CoalescingIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut shared = lock(&self.shared);
        match ready!(shared.poll_hold(cx, &[io::IoSlice::new(buf)], buf.len()))? {
            Some(held) => Poll::Ready(Ok(held)),
            None => Pin::new(&mut shared.io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        let mut shared = lock(&self.shared);
        match ready!(shared.poll_hold(cx, bufs, len))? {
            Some(held) => Poll::Ready(Ok(held)),
            None => Pin::new(&mut shared.io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut shared = lock(&self.shared);
        if shared.holding {
            // Written after the poll, with whatever else the poll writes.
            return Poll::Ready(Ok(()));
        }
        shared.poll_write_held(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut shared = lock(&self.shared);
        ready!(shared.poll_write_held(cx))?;
        Pin::new(&mut shared.io).poll_shutdown(cx)
    }
}

impl<C, S> FlushAfterPoll<C, S> {
    /// Drives `connection`, writing what it held after every poll (see the module).
    pub(super) fn new(connection: C, flusher: Flusher<S>) -> Self {
        Self {
            connection: Box::pin(connection),
            shared: flusher.0,
        }
    }

    /// The connection future, to ask it to shut down gracefully.
    pub(super) fn connection(&mut self) -> Pin<&mut C> {
        self.connection.as_mut()
    }
}

impl<C: Future, S: AsyncWrite + Unpin> Future for FlushAfterPoll<C, S> {
    type Output = C::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let outcome = self.connection.as_mut().poll(cx);
        let mut shared = lock(&self.shared);
        if outcome.is_ready() {
            shared.holding = false;
        }
        // A failed write shows again on the connection's next read or write; a
        // full socket wakes this task when it can take more.
        let _ = shared.poll_write_held(cx);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Polls `io`'s writes from inside a [`FlushAfterPoll`] whose connection
    /// writes `chunks`, one per poll turn, then ends.
    async fn written_by_polls(chunks: Vec<&'static [u8]>) -> Vec<u8> {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let (mut io, flusher) = coalescing(ours);
        let connection = async move {
            for chunk in chunks {
                io.write_all(chunk).await.unwrap();
                io.flush().await.unwrap();
            }
            io.shutdown().await.unwrap();
        };
        FlushAfterPoll::new(connection, flusher).await;
        let mut all = Vec::new();
        theirs.read_to_end(&mut all).await.unwrap();
        all
    }

    /// The next `n` bytes the peer reads, which must come within 5 s (`why`).
    async fn read_soon(theirs: &mut tokio::io::DuplexStream, n: usize, why: &str) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            theirs.read_exact(&mut buf),
        )
        .await
        .unwrap_or_else(|_| panic!("not read in time: {why}"))
        .unwrap();
        buf
    }

    #[tokio::test]
    async fn what_a_poll_writes_goes_out_together_and_nothing_is_lost_at_the_end() {
        let all = written_by_polls(vec![b"one ", b"two ", b"three"]).await;
        assert_eq!(all, b"one two three");
    }

    #[tokio::test]
    async fn held_writes_go_out_after_the_poll_that_wrote_them() {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let (mut io, flusher) = coalescing(ours);
        let (go, mut wait) = tokio::sync::mpsc::channel::<()>(1);
        let connection = async move {
            io.write_all(b"first").await.unwrap();
            io.flush().await.unwrap();
            // Nothing more until told: the poll ends here.
            wait.recv().await;
            io.write_all(b" second").await.unwrap();
        };
        let task = tokio::spawn(FlushAfterPoll::new(connection, flusher));
        let first = read_soon(&mut theirs, 5, "written once the poll ended").await;
        assert_eq!(first, b"first");
        go.send(()).await.unwrap();
        task.await.unwrap();
        let mut rest = [0u8; 7];
        theirs.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b" second");
    }

    #[tokio::test]
    async fn a_full_socket_holds_back_the_writer_and_every_byte_arrives() {
        // A peer that takes 1 KiB at a time, far less than is written.
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let (mut io, flusher) = coalescing(ours);
        let payload: Vec<u8> = (0..4 * MAX_HELD).map(|i| (i % 251) as u8).collect();
        let sent = payload.clone();
        let connection = async move {
            for chunk in sent.chunks(3000) {
                io.write_all(chunk).await.unwrap();
                io.flush().await.unwrap();
            }
            io.shutdown().await.unwrap();
        };
        let writer = tokio::spawn(FlushAfterPoll::new(connection, flusher));
        let mut all = Vec::new();
        theirs.read_to_end(&mut all).await.unwrap();
        writer.await.unwrap();
        assert_eq!(all.len(), payload.len());
        assert!(all == payload, "bytes arrive whole and in order");
    }

    #[tokio::test]
    async fn after_the_connection_ends_writes_go_straight_through() {
        // As after an upgrade: the connection future is done, the I/O lives on.
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        let (mut io, flusher) = coalescing(ours);
        FlushAfterPoll::new(async {}, flusher).await;
        io.write_all(b"upgraded").await.unwrap();
        io.flush().await.unwrap();
        let upgraded = read_soon(&mut theirs, 8, "flushed at once").await;
        assert_eq!(upgraded, b"upgraded");
    }
}
