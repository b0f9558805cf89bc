//! The end of a process or pty driver, after its leader was reaped: the output still
//! in flight is read (for a bounded time), and the leader's exit becomes the driver's
//! [`Ending`].

use std::future::Future;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use nix::unistd::Pid;
use switchyard_protocol::{DiagnosticSeverity, ExitInfo};
use tokio::sync::watch;

use super::driver::{DriverSink, Ending};

/// The longest wait for the output to close once the worker's processes have been
/// killed, while something still writes to it. Only a process that left the
/// worker's group or session (e.g. with `setsid`) can keep it open; after this the
/// readers take what is buffered and give up.
pub(super) const PIPE_CLOSE_GRACE: Duration = Duration::from_secs(3);

/// How long the output may stay silent, open, before the readers give up: the
/// worker's own processes are dead by then, so nothing more of theirs can come
/// (what they wrote is buffered, and giving up still reads it), and a process that
/// left the session and keeps the output open, silent, no longer holds the worker's
/// end (and a stop's answer) back by the whole grace.
pub(super) const PIPE_QUIET: Duration = Duration::from_millis(200);

/// Successful reads of a worker's output pipes, counted by the readers
/// ([`super::process::pump_output`]) so that [`read_remaining_output`] can tell a
/// pipe that is still being written from one held open in silence.
pub(super) type ReadCount = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// Waits for `readers_done` (true when a reader gave up on an open pipe) until the
/// readers have read nothing for [`PIPE_QUIET`], or at most [`PIPE_CLOSE_GRACE`],
/// then tells the readers to give up through `give_up` and waits for them. A pipe
/// held open is reported to `sink` as a warning: `held_open` says by what ("a
/// process outside the worker's session kept its terminal open").
pub(super) async fn read_remaining_output(
    readers_done: impl Future<Output = bool>,
    reads: &ReadCount,
    give_up: &watch::Sender<bool>,
    sink: &dyn DriverSink,
    held_open: &str,
) {
    use std::sync::atomic::Ordering;
    tokio::pin!(readers_done);
    let deadline = tokio::time::Instant::now() + PIPE_CLOSE_GRACE;
    let mut seen = reads.load(Ordering::Relaxed);
    let gave_up = loop {
        let wait = PIPE_QUIET.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, readers_done.as_mut()).await {
            Ok(gave_up) => break gave_up,
            Err(_) => {
                let now = reads.load(Ordering::Relaxed);
                if now == seen || tokio::time::Instant::now() >= deadline {
                    let _ = give_up.send(true);
                    break readers_done.await;
                }
                seen = now;
            }
        }
    };
    if gave_up {
        sink.diagnostic(
            DiagnosticSeverity::Warning,
            "output_pipe_held_open",
            format!("{held_open}; output after the worker ended was not read"),
        )
        .await;
    }
}

/// The driver's ending for a leader (`leader`, for the log) that ended with
/// `status`: stopped when a stop was asked for, exited otherwise.
pub(super) fn ending(status: io::Result<ExitStatus>, stop_requested: bool, leader: Pid) -> Ending {
    let exit = match status {
        Ok(status) => exit_info(status),
        Err(err) => {
            tracing::warn!(leader = leader.as_raw(), error = %err, "could not wait for the process");
            ExitInfo {
                code: None,
                signal: None,
            }
        }
    };
    if stop_requested {
        Ending::Stopped(exit)
    } else {
        Ending::Exited(exit)
    }
}

/// How the leader ended, as the protocol reports it.
pub(super) fn exit_info(status: ExitStatus) -> ExitInfo {
    ExitInfo {
        code: status.code(),
        signal: status.signal(),
    }
}
