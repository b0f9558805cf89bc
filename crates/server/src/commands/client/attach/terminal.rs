//! Attaching to a terminal worker: the local terminal in raw mode, the worker's
//! screen painted from its snapshot, its output written as it arrives, keystrokes
//! sent as `input` frames over the interactive WebSocket, and the window size sent
//! as a `resize` frame on start, on every SIGWINCH and after every reconnection,
//! and before a keystroke when another client has sized the worker to its own
//! window (the size follows the client typed into last, as in the console).
//!
//! Output is placed by its transcript sequence, so what a resumed stream replays is
//! never written twice; a `reset` brings a fresh snapshot, which repaints the screen.
//! Keystrokes typed while disconnected wait (in the bounded queue from the stdin
//! thread) and go out once reconnected; a keystroke frame whose send fails is sent
//! again after the reconnection.
//!
//! Leaving (detach, the worker ending, an error) restores the terminal: raw mode off,
//! attributes reset, cursor shown, bracketed paste and mouse reporting off, and the
//! alternate screen left if the worker's program was using it.

use switchyard_client::{BackendClient, ClientFrame, Followed, Follower, Incoming, SequenceSeam};
use switchyard_protocol::{TerminalSnapshot, TranscriptItem, WorkerDetail, WorkerEvent};
use tokio::signal::unix::{SignalKind, signal};

use super::stdin::{self, Split, StdinReader};
use super::{Hangups, ended_line, exit_status, final_status, tty};
use crate::commands::client::Failure;
use crate::commands::client::logs::{disconnected_line, upstream_line};
use crate::commands::client::output::Output;

/// Clears the screen and homes the cursor before a snapshot's screen is painted.
const CLEAR: &str = "\x1b[H\x1b[2J";

/// Puts a terminal back into a usable state after a program ran on it: attributes,
/// cursor, bracketed paste, mouse reporting.
const RESTORE: &str = "\x1b[0m\x1b[?25h\x1b[?2004l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l";

/// Leaves the alternate screen.
const LEAVE_ALTERNATE: &str = "\x1b[?1049l";

/// Runs terminal mode: `follower` is interactive and resumes after the snapshot
/// `detail`, `transcript` and `screen` came in.
pub(super) async fn run(
    client: &BackendClient,
    follower: Follower,
    detail: &WorkerDetail,
    transcript: &[TranscriptItem],
    screen: &TerminalSnapshot,
) -> Result<u8, Failure> {
    let worker = follower.worker().clone();
    let mut out = Output::new();
    if detail.status.is_ended() {
        out.out(screen.screen.as_bytes()).await?;
        let code = exit_status(detail.status, detail.exit);
        out.note_apart(&ended_line(&worker, detail.status, code))
            .await;
        return Ok(code);
    }
    if !tty::stdin_is_terminal() {
        return Err(Failure::new(
            "not_a_tty",
            format!(
                "{worker} is a terminal; attach to it from a terminal, or watch it with \
                 `switchyard logs -f` and type into it with `switchyard send`"
            ),
        ));
    }
    let raw = tty::RawMode::enable().map_err(|e| {
        Failure::new(
            "internal",
            format!("could not put the terminal in raw mode: {e}"),
        )
    })?;
    let mut session = Session {
        client,
        follower,
        out,
        seam: SequenceSeam::after(transcript.last().map_or(0, |i| i.sequence)),
        alternate: screen.alternate,
        resize_due: true,
        worker_size: (screen.cols, screen.rows),
        unsent: None,
    };
    let result = session.run(screen).await;
    // Restore the terminal before anything else is printed.
    let mut restore = String::from(RESTORE);
    if session.alternate {
        restore.push_str(LEAVE_ALTERNATE);
    }
    let _ = session.out.out(restore.as_bytes()).await;
    drop(raw);
    session.follower.close().await;
    match result {
        Ok(Leave::Detached) => {
            session
                .out
                .note_apart(&format!(
                    "switchyard: detached from {worker}; it keeps running"
                ))
                .await;
            Ok(0)
        }
        Ok(Leave::Ended(code, status)) => {
            session
                .out
                .note_apart(&ended_line(&worker, status, code))
                .await;
            Ok(code)
        }
        Err(failure) => Err(failure),
    }
}

/// Why the session ended.
enum Leave {
    /// Ctrl-], or the user's session going away.
    Detached,
    /// The worker ended: attach's exit status, and the worker's status.
    Ended(u8, switchyard_protocol::WorkerStatus),
}

/// One attached terminal.
struct Session<'a> {
    client: &'a BackendClient,
    follower: Follower,
    out: Output,
    /// The last output sequence written.
    seam: SequenceSeam,
    /// Whether the worker's program is on the alternate screen (as far as its output
    /// said).
    alternate: bool,
    /// The window size is to be sent (start, SIGWINCH, reconnection).
    resize_due: bool,
    /// The worker's size (columns, rows) as last heard (snapshot, `resized`) or
    /// sent. Another client on the same worker may size it to its own window; the
    /// size follows the client typed into last, so a key here first sends this
    /// window's size when the two differ.
    worker_size: (u16, u16),
    /// Keystrokes whose send failed, to send after reconnecting.
    unsent: Option<String>,
}

impl Session<'_> {
    async fn run(&mut self, screen: &TerminalSnapshot) -> Result<Leave, Failure> {
        self.paint(screen).await?;
        // Connected before the loop, so that the window size goes out at once rather
        // than after the worker's next output.
        self.follower
            .connect_now()
            .await
            .map_err(|e| Failure::client(self.client.url(), &e))?;
        let StdinReader { mut text, mut end } = stdin::spawn(Split::Raw).map_err(|e| {
            Failure::new(
                "internal",
                format!("could not start reading the terminal: {e}"),
            )
        })?;
        let mut resizes = signal(SignalKind::window_change())
            .map_err(|e| Failure::new("internal", format!("could not handle SIGWINCH: {e}")))?;
        let mut hangups = Hangups::new(true)?;
        loop {
            if self.follower.is_connected() {
                self.flush_pending().await;
            }
            let accepting_keys = self.follower.is_connected() && self.unsent.is_none();
            tokio::select! {
                followed = self.follower.next() => {
                    let followed = followed.map_err(|e| Failure::client(self.client.url(), &e))?;
                    match followed {
                        Followed::Frame(incoming) => {
                            if let Some(leave) = self.incoming(incoming).await? {
                                return Ok(leave);
                            }
                        }
                        // Once per drop: the follower then reconnects on its own.
                        Followed::Disconnected(reason) => {
                            self.status_line(&format!(
                                "{}; Ctrl-] detaches",
                                disconnected_line(&reason)
                            ))
                            .await;
                        }
                        Followed::Reconnected => self.resize_due = true,
                        _ => {}
                    }
                }
                keys = text.recv(), if accepting_keys => match keys {
                    Some(keys) => {
                        self.reclaim_size();
                        self.flush_pending().await;
                        self.send_keys(keys).await;
                    }
                    None => return Ok(Leave::Detached),
                },
                _ = &mut end => {
                    // Keystrokes typed before Ctrl-] in the same read still go out.
                    while let Ok(keys) = text.try_recv() {
                        self.send_keys(keys).await;
                    }
                    return Ok(Leave::Detached);
                }
                _ = resizes.recv() => self.resize_due = true,
                _ = hangups.recv() => return Ok(Leave::Detached),
            }
        }
    }

    /// Before a keystroke: when the worker is not at this window's size (another
    /// client sized it), the size is due again, to go out ahead of the key.
    fn reclaim_size(&mut self) {
        if tty::size().is_some_and(|size| size != self.worker_size) {
            self.resize_due = true;
        }
    }

    /// Sends what is due once connected: the window size, then keystrokes whose send
    /// failed before.
    async fn flush_pending(&mut self) {
        if self.resize_due
            && let Some((cols, rows)) = tty::size()
            && self
                .follower
                .send(&ClientFrame::Resize { cols, rows })
                .await
                .is_ok()
        {
            self.resize_due = false;
            self.worker_size = (cols, rows);
        }
        if let Some(keys) = self.unsent.take() {
            self.send_keys(keys).await;
        }
    }

    /// Sends keystrokes; kept for after the reconnection when sending fails.
    async fn send_keys(&mut self, keys: String) {
        let frame = ClientFrame::Input { text: keys };
        if self.follower.send(&frame).await.is_err() {
            let ClientFrame::Input { text } = frame else {
                return;
            };
            self.unsent = Some(match self.unsent.take() {
                Some(mut earlier) => {
                    earlier.push_str(&text);
                    earlier
                }
                None => text,
            });
        }
    }

    /// Handles one frame; `Some` when the session is over.
    async fn incoming(&mut self, incoming: Incoming) -> Result<Option<Leave>, Failure> {
        match incoming {
            Incoming::Event { event, .. } => match *event {
                WorkerEvent::Output { sequence, text, .. } if self.seam.shown(sequence) => {
                    self.track_alternate(&text);
                    self.out.out(text.as_bytes()).await?;
                }
                WorkerEvent::Input { sequence, .. } => {
                    self.seam.shown(sequence);
                }
                WorkerEvent::Snapshot {
                    worker,
                    transcript,
                    terminal,
                } => {
                    if let Some(last) = transcript.last() {
                        self.seam.shown(last.sequence);
                    }
                    if let Some(screen) = terminal {
                        self.worker_size = (screen.cols, screen.rows);
                        self.paint(&screen).await?;
                        self.resize_due = true;
                    }
                    if worker.status.is_ended() {
                        let code = exit_status(worker.status, worker.exit);
                        return Ok(Some(Leave::Ended(code, worker.status)));
                    }
                }
                WorkerEvent::Status { status, .. } if status.is_ended() => {
                    let code = final_status(self.client, self.follower.worker(), status).await;
                    return Ok(Some(Leave::Ended(code, status)));
                }
                WorkerEvent::Resized { cols, rows } => self.worker_size = (cols, rows),
                WorkerEvent::Diagnostic { code, message, .. } => {
                    self.status_line(&format!("switchyard: {code}: {message}"))
                        .await;
                }
                // Other status changes, interruptions, resizes, exits (the status
                // follows), and kinds newer than this client.
                _ => {}
            },
            // A worker that has ended refuses the window size sent after a
            // reconnection: nothing typed was lost, and its end is reported as such.
            Incoming::Refused(error) if error.code == "worker_not_running" => {}
            Incoming::Refused(error) => {
                self.status_line(&format!(
                    "switchyard: the worker refused a keystroke or resize: {}: {}",
                    error.code, error.message
                ))
                .await;
            }
            Incoming::Upstream { state, error } => {
                let line = upstream_line(self.follower.worker(), state, error.as_ref());
                self.status_line(&line).await;
            }
            // Resets (the snapshot that follows repaints), unknown events, and frames
            // newer than this client.
            _ => {}
        }
        Ok(None)
    }

    /// Paints a snapshot's screen on a cleared terminal.
    async fn paint(&mut self, screen: &TerminalSnapshot) -> Result<(), Failure> {
        self.alternate = screen.alternate;
        let mut text = String::with_capacity(CLEAR.len() + screen.screen.len());
        text.push_str(CLEAR);
        text.push_str(&screen.screen);
        self.out.out(text.as_bytes()).await
    }

    /// A status line of its own in raw mode (carriage returns included), on standard
    /// error.
    async fn status_line(&mut self, line: &str) {
        let clean: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.out
            .err_raw(format!("\r\n[{clean}]\r\n").as_bytes())
            .await;
    }

    /// Notes whether the program entered or left the alternate screen.
    fn track_alternate(&mut self, text: &str) {
        for (enter, leave) in [
            ("\x1b[?1049h", "\x1b[?1049l"),
            ("\x1b[?1047h", "\x1b[?1047l"),
            ("\x1b[?47h", "\x1b[?47l"),
        ] {
            match (text.rfind(enter), text.rfind(leave)) {
                (Some(e), Some(l)) => self.alternate = e > l,
                (Some(_), None) => self.alternate = true,
                (None, Some(_)) => self.alternate = false,
                (None, None) => {}
            }
        }
    }
}
