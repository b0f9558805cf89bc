//! [`Pipes`]: the `GET`s and inputs to one runtime, pipelined (HTTP/1.1, RFC 9112
//! §9.3.2) on a few keep-alive connections, so that requests in flight together go
//! out in one write and their answers come back in one read: fewer system calls on
//! the backend's side, and on the runtime's, which reads several requests at once.
//!
//! Nothing runs in the background. A connection is split into its read and write
//! halves, and the requests on a [`Pipe`] take turns with each: a request queues
//! itself and, if nobody is writing, writes everything queued (after one yield when
//! others are in flight, so that the requests of the same scheduler turn share the
//! write); then, if nobody is reading, it reads answers in order, handing each to
//! the request it belongs to, until its own has come, parks the read half and wakes
//! the oldest request still waiting to read next. A lone request thus writes and
//! reads its own exchange with no hand-over, as on a pooled connection, and a
//! request never waits for an earlier answer before it is written.
//!
//! When a connection fails, every request whose answer never began gets an error
//! saying whether it was written ([`ExchangeError::ClosedBeforeAnswer`]) or not
//! ([`ExchangeError::NotSent`]); the client sends again what was not written, and
//! a `GET` in either case. An input that was written is not sent again: the
//! runtime may have taken it (as on a pooled connection that fails after the
//! request went out). RFC 9112 advises against pipelining after a non-idempotent
//! request because of that ambiguity; here it costs an input nothing more than on
//! a connection of its own, and an input is quick for a runtime to answer, so the
//! requests behind it do not wait long.
//!
//! Invariants:
//! - answers are matched to requests by order only; after anything that may break
//!   that order (a failed read or write, a malformed or unframed answer, an answer
//!   that closes the connection, a request given up in the middle of a write or of
//!   an answer it had begun to take from the buffer, bytes nobody asked for) the
//!   pipe is *broken*: every request without an answer gets an error, and the
//!   connection is never used again;
//! - a request given up while reading an answer framed by `Content-Length` (a
//!   runtime's always are) leaves it whole in the buffer, so the pipe goes on
//!   while the runtime is answering on it; one whose runtime went silent is
//!   broken instead, so that requests stop queuing behind a stuck answer;
//! - the state's lock is never held across an `await`;
//! - a request that stops waiting (its timeout, its client gone) leaves its entry
//!   behind as abandoned: its answer is read and dropped, keeping the order.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::upstream::{self, ExchangeError, Exchanged, ReadSide, Upstream, WriteSide};

/// Most pipelined connections per runtime: the runtime serves each connection's
/// requests in turn, so more than one lets it use several threads, while fewer
/// make larger batches. Measured on 2 CPUs (backend / nginx req/s, worker detail):
/// 2 pipes opening at 16 gave 1.04 at 16 connections and 1.23 at 64; 4 opening
/// at 8 gave 0.93 and 1.32; 1 gave 0.99 and 1.36.
pub(super) const MAX_PIPES: usize = 2;

/// A new pipe is opened (up to [`MAX_PIPES`]) when every open one has at least this
/// many requests without an answer.
const OPEN_ANOTHER_AT: usize = 16;

/// How recently a pipe must have had an answer for a request that leaves it in
/// the middle of reading to leave it to the next (see [`State::flowing`]).
const FLOWING: Duration = Duration::from_secs(1);

/// The pipes of one runtime.
pub(super) struct Pipes {
    /// Open pipes (broken and expired ones are removed when next chosen from).
    open: Mutex<PipeList>,
    /// How long a pipe may sit without requests before it is closed.
    idle_timeout: Duration,
}

#[derive(Default)]
struct PipeList {
    pipes: Vec<Arc<Pipe>>,
    /// Pipes being connected by some request.
    connecting: usize,
}

/// What [`Pipes::choose`] decided.
pub(super) enum Choice<'a> {
    /// Queue on this pipe.
    Join(Arc<Pipe>),
    /// Connect a new pipe and give it to [`Opening::opened`].
    Open(Opening<'a>),
    /// Every pipe there may be is still connecting: use a pooled connection.
    Elsewhere,
}

/// A pipe being connected: counted against [`MAX_PIPES`] until it is opened or
/// this is dropped (the connect failed or was cancelled).
pub(super) struct Opening<'a> {
    pipes: &'a Pipes,
}

impl Opening<'_> {
    /// The connection, as a new pipe.
    pub(super) fn opened(self, upstream: Upstream) -> Arc<Pipe> {
        let pipe = Arc::new(Pipe::new(upstream));
        lock(&self.pipes.open).pipes.push(pipe.clone());
        pipe
    }
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        let mut list = lock(&self.pipes.open);
        list.connecting = list.connecting.saturating_sub(1);
    }
}

impl Pipes {
    /// No pipes yet.
    pub(super) fn new(idle_timeout: Duration) -> Self {
        Self {
            open: Mutex::default(),
            idle_timeout,
        }
    }

    /// Where a request should go: the open pipe with the fewest requests without
    /// an answer, unless all are busy and another may be opened.
    pub(super) fn choose(&self) -> Choice<'_> {
        let now = Instant::now();
        let mut list = lock(&self.open);
        list.pipes
            .retain(|pipe| pipe.usable(now, self.idle_timeout));
        let least = list
            .pipes
            .iter()
            .map(|pipe| (pipe.outstanding(), pipe))
            .min_by_key(|(outstanding, _)| *outstanding);
        let room = list.pipes.len() + list.connecting < MAX_PIPES;
        match least {
            Some((outstanding, pipe)) if outstanding < OPEN_ANOTHER_AT || !room => {
                Choice::Join(pipe.clone())
            }
            _ if room => {
                list.connecting += 1;
                Choice::Open(Opening { pipes: self })
            }
            _ => Choice::Elsewhere,
        }
    }
}

/// One pipelined connection.
pub(super) struct Pipe {
    state: Mutex<State>,
}

struct State {
    /// The connection's read half while nobody reads it; `None` while a request
    /// reads answers, and once broken.
    reader: Option<ReadSide>,
    /// The write half while nobody writes; `None` while a request writes, and once
    /// broken.
    writer: Option<WriteSide>,
    /// No request will be sent on it again (see the module's invariants).
    broken: bool,
    /// Requests queued and not yet written, back to back.
    unwritten: Vec<u8>,
    /// One entry per request not yet collected, oldest first; the front one has
    /// sequence number `first`.
    entries: VecDeque<Entry>,
    first: u64,
    /// Sequence number of the next request queued.
    next: u64,
    /// Requests before this one were handed to a write.
    written: u64,
    /// Requests before this one have their answer (or error).
    answered: u64,
    /// When the last request was queued.
    last_used: Instant,
    /// When the last answer was read.
    last_answer: Instant,
}

enum Entry {
    /// Waiting for its answer; the waker of its task once it has polled.
    Waiting(Option<Waker>),
    /// Its answer (or error), to be collected.
    Done(Result<Exchanged, ExchangeError>),
    /// Its request stopped waiting before the answer came.
    Abandoned,
    /// Collected, or abandoned and answered: removed once it reaches the front.
    Gone,
}

/// What a waiting request does next.
enum Turn {
    /// Its answer came.
    Answered(Result<Exchanged, ExchangeError>),
    /// Nobody reads answers: this request does, with the read half.
    Read(ReadSide),
}

impl Pipe {
    fn new(upstream: Upstream) -> Self {
        let (reader, writer) = upstream.split();
        Self {
            state: Mutex::new(State {
                reader: Some(reader),
                writer: Some(writer),
                broken: false,
                unwritten: Vec::new(),
                entries: VecDeque::new(),
                first: 0,
                next: 0,
                written: 0,
                answered: 0,
                last_used: Instant::now(),
                last_answer: Instant::now(),
            }),
        }
    }

    /// Requests queued and not yet answered.
    fn outstanding(&self) -> usize {
        let state = lock(&self.state);
        usize::try_from(state.next - state.answered).unwrap_or(usize::MAX)
    }

    /// Not broken, and either busy or idle for at most `idle_timeout` with its
    /// connection still looking open (a runtime may close a connection it was not
    /// using, and an input written on it would then fail without being resent).
    fn usable(&self, now: Instant, idle_timeout: Duration) -> bool {
        let mut state = lock(&self.state);
        if state.broken {
            return false;
        }
        if state.next > state.answered {
            return true;
        }
        let fresh = now.saturating_duration_since(state.last_used) <= idle_timeout;
        let open = match state.reader.as_mut() {
            Some(reader) => reader.looks_open(),
            // Being handed over after its last answer.
            None => true,
        };
        if !(fresh && open) {
            state.break_pipe(None);
        }
        fresh && open
    }

    /// Queues `request` (one whole request) and waits for its answer, at most `limit`
    /// body bytes: it writes the queue when nobody else is writing, and reads
    /// answers when nobody else is reading.
    pub(super) async fn exchange(
        self: &Arc<Self>,
        request: &[u8],
        limit: usize,
    ) -> Result<Exchanged, ExchangeError> {
        let (seq, writer, busy) = {
            let mut state = lock(&self.state);
            if state.broken {
                return Err(ExchangeError::NotSent(io::ErrorKind::NotConnected.into()));
            }
            state.unwritten.extend_from_slice(request);
            state.entries.push_back(Entry::Waiting(None));
            state.next += 1;
            state.last_used = Instant::now();
            let busy = state.next - state.answered > 1;
            (state.next - 1, state.writer.take(), busy)
        };
        let mut ticket = Ticket {
            pipe: self,
            seq,
            collected: false,
        };
        if let Some(writer) = writer {
            Writer {
                pipe: self,
                done: false,
            }
            .write_queued(writer, busy)
            .await;
        }
        loop {
            match poll_fn(|cx| ticket.turn(cx)).await {
                Turn::Answered(result) => return result,
                Turn::Read(reader) => {
                    Driver {
                        pipe: self,
                        reader: Some(reader),
                    }
                    .read_until(seq, limit)
                    .await;
                }
            }
        }
    }
}

/// A request's place in a pipe; dropped before its answer came, the entry is left
/// abandoned.
struct Ticket<'a> {
    pipe: &'a Arc<Pipe>,
    seq: u64,
    collected: bool,
}

impl Ticket<'_> {
    fn turn(&mut self, cx: &mut Context<'_>) -> Poll<Turn> {
        let mut state = lock(&self.pipe.state);
        let state = &mut *state;
        let waiting = match state.entry(self.seq) {
            Some(Entry::Waiting(_)) => true,
            Some(Entry::Done(_)) => false,
            // Unreachable: only this ticket abandons or collects its entry.
            _ => {
                self.collected = true;
                return Poll::Ready(Turn::Answered(Err(ExchangeError::ClosedBeforeAnswer)));
            }
        };
        if !waiting {
            let result = match state
                .entry(self.seq)
                .map(|e| std::mem::replace(e, Entry::Gone))
            {
                Some(Entry::Done(result)) => result,
                _ => Err(ExchangeError::ClosedBeforeAnswer),
            };
            self.collected = true;
            state.trim();
            return Poll::Ready(Turn::Answered(result));
        }
        if let Some(reader) = state.reader.take() {
            return Poll::Ready(Turn::Read(reader));
        }
        if let Some(Entry::Waiting(waker)) = state.entry(self.seq) {
            match waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
        }
        Poll::Pending
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.collected {
            return;
        }
        let mut state = lock(&self.pipe.state);
        let state = &mut *state;
        if let Some(entry) = state.entry(self.seq) {
            *entry = match entry {
                Entry::Waiting(_) => Entry::Abandoned,
                _ => Entry::Gone,
            };
        }
        state.trim();
        // It may have been woken to read: pass that on.
        if state.reader.is_some() {
            state.wake_next_reader();
        }
    }
}

/// The request writing a pipe's queue. Dropped before it parked the write half
/// again (its request timed out or its client went away, maybe in the middle of a
/// write), it breaks the pipe: queued requests would otherwise never go out.
struct Writer<'a> {
    pipe: &'a Arc<Pipe>,
    done: bool,
}

impl Writer<'_> {
    /// Writes everything queued, batch after batch, then parks the write half.
    async fn write_queued(mut self, mut io: WriteSide, busy: bool) {
        // When others are in flight, more requests are likely to come in the same
        // turn of the scheduler: let them join the first write. (A lone request
        // does not wait: a yield costs a poll of the I/O driver.)
        if busy {
            super::end_of_turn::end_of_turn().await;
        }
        let mut batch = Vec::new();
        loop {
            {
                let mut state = lock(&self.pipe.state);
                if state.broken {
                    self.done = true;
                    return;
                }
                if state.unwritten.is_empty() {
                    state.writer = Some(io);
                    self.done = true;
                    return;
                }
                std::mem::swap(&mut batch, &mut state.unwritten);
                state.written = state.next;
            }
            let sent = upstream::send(&mut io, &batch).await;
            // Swapped back into the queue next turn: kept, unless a burst made it
            // large.
            if batch.capacity() > upstream::KEPT_WRITE_ROOM {
                batch = Vec::new();
            }
            batch.clear();
            if sent.is_err() {
                // Whether the runtime got them is unknown: every unanswered request
                // is sent again.
                lock(&self.pipe.state).break_pipe(None);
                self.done = true;
                return;
            }
        }
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.pipe.state).break_pipe(None);
        }
    }
}

/// The request reading a pipe's answers. Dropped (its request timed out, its
/// client went away), it parks the read half and wakes the next request to read,
/// unless it was in the middle of an answer it had begun to take from the buffer
/// (never one framed by `Content-Length`) or the runtime has stopped answering on
/// this pipe (see [`State::flowing`]): then it breaks the pipe.
struct Driver<'a> {
    pipe: &'a Arc<Pipe>,
    /// The read half; `None` once the pipe is broken.
    reader: Option<ReadSide>,
}

impl Driver<'_> {
    /// Reads answers and hands them out until `own` has its answer or the pipe
    /// breaks.
    async fn read_until(mut self, own: u64, limit: usize) {
        loop {
            if lock(&self.pipe.state).is_answered(own) {
                return;
            }
            let Some(reader) = self.reader.as_mut() else {
                return;
            };
            let read = reader.read_answer(limit).await;
            let unasked_bytes = !reader.nothing_buffered();
            let mut state = lock(&self.pipe.state);
            let broken = match read {
                Ok((exchanged, keep_alive)) => {
                    state.last_answer = Instant::now();
                    state.answer(Ok(exchanged));
                    let unasked = state.answered == state.next && unasked_bytes;
                    (!keep_alive || unasked).then_some(None)
                }
                Err(error) => Some(Some(error)),
            };
            if let Some(error) = broken {
                state.break_pipe(error);
                self.reader = None;
                return;
            }
        }
    }
}

impl Drop for Driver<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.pipe.state);
        match self.reader.take() {
            Some(reader) if !state.broken && !reader.mid_answer() && state.flowing(&reader) => {
                state.reader = Some(reader);
                state.wake_next_reader();
            }
            Some(_) => state.break_pipe(None),
            // Broken by `read_until` already.
            None => {}
        }
    }
}

impl State {
    fn entry(&mut self, seq: u64) -> Option<&mut Entry> {
        let index = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.entries.get_mut(index)
    }

    /// Answers are coming: part of the next one is in `reader`'s buffer, or the
    /// last came less than [`FLOWING`] ago. A pipe whose runtime has gone silent
    /// is given up when a reader leaves, so that the requests behind it get an
    /// error at once (and `GET`s a fresh connection) instead of waiting there.
    fn flowing(&self, reader: &ReadSide) -> bool {
        !reader.nothing_buffered() || self.last_answer.elapsed() < FLOWING
    }

    fn is_answered(&self, seq: u64) -> bool {
        seq < self.answered
    }

    /// Gives the next answer to its request.
    fn answer(&mut self, result: Result<Exchanged, ExchangeError>) {
        let seq = self.answered;
        self.answered += 1;
        if let Some(entry) = self.entry(seq) {
            // An abandoned entry's answer is dropped (the entry becomes `Gone`).
            if let Entry::Waiting(waker) = std::mem::replace(entry, Entry::Gone) {
                *entry = Entry::Done(result);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        }
        self.trim();
    }

    /// Breaks the pipe: the request being answered gets `error` (if any), every
    /// other request without an answer an error that lets it be sent again.
    fn break_pipe(&mut self, mut error: Option<ExchangeError>) {
        self.broken = true;
        self.reader = None;
        self.writer = None;
        self.unwritten = Vec::new();
        while self.answered < self.next {
            let seq = self.answered;
            let result = match error.take() {
                Some(error) => error,
                None if seq < self.written => ExchangeError::ClosedBeforeAnswer,
                None => ExchangeError::NotSent(io::ErrorKind::NotConnected.into()),
            };
            self.answer(Err(result));
        }
    }

    /// Wakes the oldest request still waiting, to read the answers.
    fn wake_next_reader(&mut self) {
        let from = usize::try_from(self.answered - self.first).unwrap_or(usize::MAX);
        for entry in self.entries.iter_mut().skip(from) {
            if let Entry::Waiting(waker) = entry {
                if let Some(waker) = waker.take() {
                    waker.wake();
                }
                return;
            }
        }
    }

    /// Drops collected entries from the front.
    fn trim(&mut self) {
        while matches!(self.entries.front(), Some(Entry::Gone)) {
            self.entries.pop_front();
            self.first += 1;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
