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

/// How long to keep waiting for the output to close once the worker's processes have
/// been killed. Only a process that left the worker's group or session (e.g. with
/// `setsid`) can keep it open that long; after this the readers take what is
/// buffered and give up.
pub(super) const PIPE_CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Waits for `readers_done` (true when a reader gave up on an open pipe) at most
/// [`PIPE_CLOSE_GRACE`], then tells the readers to give up through `give_up` and
/// waits for them. A pipe held open is reported to `sink` as a warning:
/// `held_open` says by what ("a process outside the worker's session kept its
/// terminal open").
pub(super) async fn read_remaining_output(
    readers_done: impl Future<Output = bool>,
    give_up: &watch::Sender<bool>,
    sink: &dyn DriverSink,
    held_open: &str,
) {
    tokio::pin!(readers_done);
    let gave_up = match tokio::time::timeout(PIPE_CLOSE_GRACE, readers_done.as_mut()).await {
        Ok(gave_up) => gave_up,
        Err(_) => {
            let _ = give_up.send(true);
            readers_done.await
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
