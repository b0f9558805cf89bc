//! `switchyard attach RUNTIME/WORKER`: join a worker from this terminal.
//!
//! The first frame of the worker's event stream, its `snapshot`, tells what the
//! worker is: a terminal worker's snapshot carries its screen and is joined in
//! [`terminal`] mode (raw mode, keystrokes over the interactive WebSocket, window size
//! kept in step); any other worker is joined in [`lines`] mode (its output streamed,
//! lines of standard input sent as inputs).
//!
//! In both modes Ctrl-] detaches (the worker keeps running; exit status 0), a dropped
//! connection is announced on one status line and resumed from the last cursor, and
//! when the worker ends `attach` exits with the worker's status: its exit code, 128 +
//! the signal that ended it, 0 for a worker stopped without an exit status, 1 for one
//! that failed to start or was lost. In line mode from a pipe or file, the end of
//! input does not detach: attach follows the worker to its end (see [`lines`]).

mod lines;
mod stdin;
mod terminal;
mod tty;

use switchyard_client::{BackendClient, Followed, Follower, Incoming, WorkerRef};
use switchyard_protocol::{
    ExitInfo, TerminalSnapshot, TranscriptItem, WorkerDetail, WorkerEvent, WorkerStatus,
};
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::Failure;
use super::logs::{disconnected_line, upstream_line};
use super::output::Output;

/// What the first snapshot said.
struct Joined {
    /// The cursor of the snapshot.
    cursor: String,
    /// The worker as it was.
    worker: WorkerDetail,
    /// The transcript's last items.
    transcript: Vec<TranscriptItem>,
    /// A terminal worker's screen.
    screen: Option<Box<TerminalSnapshot>>,
}

/// `switchyard attach`.
pub(super) async fn attach(client: &BackendClient, worker: &WorkerRef) -> Result<u8, Failure> {
    let mut out = Output::new();
    let mut follower = Follower::new(client.clone(), worker.clone(), false);
    let joined = first_snapshot(client, &mut follower, &mut out).await?;
    match joined.screen {
        Some(screen) => {
            follower.close().await;
            let follower = Follower::new(client.clone(), worker.clone(), true)
                .resume_after(joined.cursor.clone());
            terminal::run(
                client,
                follower,
                &joined.worker,
                &joined.transcript,
                &screen,
            )
            .await
        }
        None => lines::run(client, follower, &joined.worker, &joined.transcript).await,
    }
}

/// Reads until the stream's first snapshot.
async fn first_snapshot(
    client: &BackendClient,
    follower: &mut Follower,
    out: &mut Output,
) -> Result<Joined, Failure> {
    loop {
        let followed = follower
            .next()
            .await
            .map_err(|e| Failure::client(client.url(), &e))?;
        match followed {
            Followed::Frame(Incoming::Event { cursor, event }) => {
                if let WorkerEvent::Snapshot {
                    worker,
                    transcript,
                    terminal,
                } = *event
                {
                    return Ok(Joined {
                        cursor,
                        worker,
                        transcript,
                        screen: terminal,
                    });
                }
            }
            Followed::Frame(Incoming::Upstream { state, error }) => {
                out.note(&upstream_line(follower.worker(), state, error.as_ref()))
                    .await;
            }
            Followed::Disconnected(end) => out.note(&disconnected_line(&end)).await,
            // Other frames, a reconnection, and news newer than this client.
            _ => {}
        }
    }
}

/// The exit status `attach` ends with when the worker has ended (see the module
/// documentation).
fn exit_status(status: WorkerStatus, exit: Option<ExitInfo>) -> u8 {
    match exit {
        Some(ExitInfo {
            code: Some(code), ..
        }) => (code & 0xff) as u8,
        Some(ExitInfo {
            signal: Some(signal),
            ..
        }) => (128 + (signal & 0x7f)) as u8,
        _ => match status {
            WorkerStatus::Failed | WorkerStatus::Lost => 1,
            _ => 0,
        },
    }
}

/// The worker's final status, read once it has ended (the `status` event does not
/// carry the exit code).
async fn final_status(client: &BackendClient, worker: &WorkerRef, status: WorkerStatus) -> u8 {
    match client.worker(worker).await {
        Ok(detail) => exit_status(detail.status, detail.exit),
        Err(_) => exit_status(status, None),
    }
}

/// A line describing how the worker ended.
fn ended_line(worker: &WorkerRef, status: WorkerStatus, code: u8) -> String {
    format!("switchyard: {worker} ended ({status}); exit status {code}")
}

/// SIGTERM and SIGHUP: the user's session is going away; detach cleanly. (In
/// terminal mode SIGINT too: the keyboard sends Ctrl-C to the worker, so a SIGINT
/// comes from `kill`.)
struct Hangups {
    term: Signal,
    hup: Signal,
    int: Option<Signal>,
}

impl Hangups {
    /// The handlers; with `interrupt`, SIGINT as well.
    fn new(interrupt: bool) -> Result<Self, Failure> {
        let install = |kind| {
            signal(kind).map_err(|e| {
                Failure::new(
                    "internal",
                    format!("could not install a signal handler: {e}"),
                )
            })
        };
        Ok(Self {
            term: install(SignalKind::terminate())?,
            hup: install(SignalKind::hangup())?,
            int: interrupt
                .then(|| install(SignalKind::interrupt()))
                .transpose()?,
        })
    }

    async fn recv(&mut self) {
        let int = async {
            match &mut self.int {
                Some(int) => int.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
            _ = int => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses() {
        let exit = |code, signal| Some(ExitInfo { code, signal });
        let table = [
            (WorkerStatus::Exited, exit(Some(0), None), 0),
            (WorkerStatus::Exited, exit(Some(3), None), 3),
            (WorkerStatus::Exited, exit(Some(256 + 7), None), 7),
            (WorkerStatus::Exited, exit(None, Some(9)), 137),
            (WorkerStatus::Stopped, exit(None, Some(15)), 143),
            (WorkerStatus::Stopped, None, 0),
            (WorkerStatus::Failed, None, 1),
            (WorkerStatus::Lost, None, 1),
        ];
        for (status, exit, expected) in table {
            assert_eq!(exit_status(status, exit), expected, "{status} {exit:?}");
        }
    }
}
