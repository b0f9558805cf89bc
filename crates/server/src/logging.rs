//! The binary's log: lines go to standard error through a bounded queue and a
//! thread of their own, so that a reader that stalls (a paused pipe, a log driver
//! under pressure) never blocks a thread that serves connections.
//!
//! Invariants:
//! - writing a log line never blocks the thread that logs it: the line is queued,
//!   or, with [`BUFFERED_LINES`] already queued, dropped and counted;
//! - the count is served as `switchyard_log_lines_dropped_total` (see
//!   `metrics.rs`) once the binary has set up its log;
//! - at exit, dropping the guard `init` returns waits up to [`EXIT_WAIT`] for the
//!   lines still queued to be written, and never longer, nor writes anywhere else
//!   (a stalled standard error cannot hold the exit; standard output stays the
//!   `listening on` line's). A second signal's immediate exit skips that wait.
//!
//! Not `tracing_appender::non_blocking`: its guard prints to standard output when
//! the queue is full at exit, and with standard output closed its print panics
//! into a stalled standard error and the process never ends.
//!
//! A program that uses the crates as a library may call [`init`] too; one that
//! installs its own subscriber is asked to do the same (README, "Metrics").

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Lines the queue holds before new ones are dropped: at a few hundred bytes a
/// line, a few MiB at most.
pub const BUFFERED_LINES: usize = 16_384;

/// The longest the exit waits for queued lines to be written.
pub const EXIT_WAIT: Duration = Duration::from_secs(1);

/// The dropped lines of the binary's log, once [`init`] has run.
static DROPPED: OnceLock<Arc<AtomicU64>> = OnceLock::new();

/// What the log thread is sent.
enum Message {
    /// One formatted line (or several, as the formatter wrote them at once).
    Line(Vec<u8>),
    /// Everything sent before has been written: say so.
    Flushed(SyncSender<()>),
}

/// Makes a [`QueuedLine`] per event, as `tracing_subscriber::fmt` asks.
#[derive(Clone)]
struct Queue {
    lines: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

/// One event's text, gathered as the formatter writes it and queued whole when
/// dropped.
struct QueuedLine {
    text: Vec<u8>,
    queue: Queue,
}

impl Write for QueuedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for QueuedLine {
    fn drop(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.text);
        if let Err(TrySendError::Full(_)) = self.queue.lines.try_send(Message::Line(text)) {
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<'a> MakeWriter<'a> for Queue {
    type Writer = QueuedLine;

    fn make_writer(&'a self) -> QueuedLine {
        QueuedLine {
            text: Vec::new(),
            queue: self.clone(),
        }
    }
}

/// Writes what is queued to standard error, in order, for as long as the process
/// runs; a line that cannot be written is skipped. Standard error is locked for
/// each line only: the binary's own messages (`eprintln!`) share it.
fn write_lines(lines: Receiver<Message>) {
    for message in lines {
        match message {
            Message::Line(text) => {
                let _ = std::io::stderr().lock().write_all(&text);
            }
            Message::Flushed(done) => {
                let _ = std::io::stderr().lock().flush();
                let _ = done.try_send(());
            }
        }
    }
}

/// Held by the binary until it exits; dropping it waits (at most [`EXIT_WAIT`])
/// for the lines still queued.
#[must_use = "dropping the guard at once waits for the log to be written"]
pub struct LogGuard {
    lines: SyncSender<Message>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let deadline = Instant::now() + EXIT_WAIT;
        let (done, flushed) = sync_channel(1);
        let mut flush = Message::Flushed(done);
        loop {
            match self.lines.try_send(flush) {
                Ok(()) => break,
                Err(TrySendError::Full(again)) if Instant::now() < deadline => {
                    flush = again;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return,
            }
        }
        let _ = flushed.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Logs to standard error, filtered by `RUST_LOG` (else `default`, a filter such
/// as `"info"`), through the bounded queue, as the binary does: a program that
/// embeds the servers may call it instead of installing a subscriber of its own.
/// Keep the guard until the process ends. `None` when a log was already set up
/// (or the log thread could not start: then nothing is logged).
pub fn init(default: &str) -> Option<LogGuard> {
    let (filter, invalid) = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => (filter, None),
        Err(error) => {
            let set = std::env::var_os(tracing_subscriber::EnvFilter::DEFAULT_ENV).is_some();
            (
                tracing_subscriber::EnvFilter::new(default),
                set.then(|| error.to_string()),
            )
        }
    };
    let filter = cap_wire_logging(filter);
    let in_force = filter.to_string();
    let (lines, queued) = sync_channel(BUFFERED_LINES);
    std::thread::Builder::new()
        .name("switchyard-log".into())
        .spawn(move || write_lines(queued))
        .ok()?;
    let dropped = Arc::new(AtomicU64::new(0));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Queue {
            lines: lines.clone(),
            dropped: dropped.clone(),
        })
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init()
        .ok()?;
    let _ = DROPPED.set(dropped);
    tracing::debug!(filter = %in_force, "the log's filter");
    if let Some(problem) = invalid {
        tracing::warn!(
            "RUST_LOG is not a valid log filter ({problem}); logging at `{default}` instead: fix it (for example RUST_LOG=warn, or RUST_LOG=info,switchyard_registry=debug)"
        );
    }
    Some(LogGuard { lines })
}

/// Crates whose TRACE and DEBUG lines hold the bytes on the wire (tungstenite logs
/// each frame received and each handshake request, `Authorization` included): at
/// most INFO whatever `RUST_LOG` asks, so that no level of the log holds a token or
/// a frame's text.
const WIRE_LOGGING_CRATES: &[&str] = &["tungstenite", "tokio_tungstenite"];

fn cap_wire_logging(mut filter: tracing_subscriber::EnvFilter) -> tracing_subscriber::EnvFilter {
    for target in WIRE_LOGGING_CRATES {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Lines of the binary's log dropped so far because its reader fell behind;
/// `None` when the binary has not set the log up (a program with its own).
pub fn dropped_lines() -> Option<u64> {
    DROPPED.get().map(|counter| counter.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue of `capacity` with its receiver (no log thread).
    fn queue(capacity: usize) -> (Queue, Receiver<Message>) {
        let (lines, queued) = sync_channel(capacity);
        let queue = Queue {
            lines,
            dropped: Arc::default(),
        };
        (queue, queued)
    }

    #[test]
    fn each_event_is_queued_whole_and_past_a_full_queue_dropped_and_counted() {
        let (queue, queued) = queue(2);
        for text in ["one ", "two ", "three "] {
            let mut line = queue.make_writer();
            line.write_all(text.as_bytes()).unwrap();
            line.write_all(b"line\n").unwrap();
        }
        drop(queue.make_writer()); // nothing written: nothing queued
        let lines: Vec<Vec<u8>> = queued
            .try_iter()
            .map(|message| match message {
                Message::Line(text) => text,
                Message::Flushed(_) => unreachable!(),
            })
            .collect();
        assert_eq!(lines, [b"one line\n".to_vec(), b"two line\n".to_vec()]);
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_guard_waits_no_longer_than_the_exit_wait_for_a_stalled_log() {
        // Nobody reads the queue: the flush can never be confirmed.
        let (queue, _queued) = queue(1);
        queue.make_writer().write_all(b"fills the queue\n").unwrap();
        let started = Instant::now();
        drop(LogGuard {
            lines: queue.lines.clone(),
        });
        let waited = started.elapsed();
        assert!(waited >= EXIT_WAIT, "{waited:?}");
        assert!(waited < EXIT_WAIT * 3, "{waited:?}");
    }

    #[test]
    fn the_guard_returns_once_the_queued_lines_are_written() {
        let (lines, queued) = sync_channel(4);
        let writer = std::thread::spawn(move || {
            let mut written = Vec::new();
            for message in queued {
                match message {
                    Message::Line(text) => written.extend(text),
                    Message::Flushed(done) => {
                        done.send(()).unwrap();
                        return written;
                    }
                }
            }
            written
        });
        lines.send(Message::Line(b"last words\n".to_vec())).unwrap();
        let started = Instant::now();
        drop(LogGuard { lines });
        assert!(started.elapsed() < EXIT_WAIT);
        assert_eq!(writer.join().unwrap(), b"last words\n");
    }
}
