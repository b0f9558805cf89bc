//! The binary's log: lines go to standard error through a bounded buffer and a
//! thread of their own, so that a reader that stalls (a paused pipe, a log driver
//! under pressure) never blocks a thread that serves connections.
//!
//! Invariants:
//! - writing a log line never blocks the async threads: the line is queued, or, with
//!   [`BUFFERED_LINES`] already queued, dropped and counted;
//! - the count is served as `switchyard_log_lines_dropped_total` (see
//!   `metrics.rs`) once the binary has set up its log;
//! - lines still queued at exit are written (for up to about a second) when the
//!   guard `init` returns is dropped.
//!
//! A program that uses the crates as a library and installs its own subscriber is
//! asked to do the same (README, "Logs").

use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};

/// Lines the buffer holds before new ones are dropped: at a few hundred bytes a
/// line, a few MiB at most.
pub const BUFFERED_LINES: usize = 16_384;

/// The dropped lines of the binary's log, once [`init`] has run.
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Logs to standard error, filtered by `RUST_LOG` (else `default`), through the
/// bounded buffer. Keep the guard until the process ends: dropping it writes what
/// is still queued.
pub(crate) fn init(default: &str) -> Option<WorkerGuard> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("switchyard-log")
        .finish(std::io::stderr());
    let dropped = writer.error_counter();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init()
        .ok()?;
    let _ = DROPPED.set(dropped);
    Some(guard)
}

/// Lines of the binary's log dropped so far because its reader fell behind;
/// `None` when the binary has not set the log up (a program with its own).
pub fn dropped_lines() -> Option<u64> {
    DROPPED
        .get()
        .map(|counter| u64::try_from(counter.dropped_lines()).unwrap_or(u64::MAX))
}
