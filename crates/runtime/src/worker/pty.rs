//! The `pty` driver: an OS process on a pseudo-terminal, leading its own session with
//! the terminal as its controlling terminal.
//!
//! Built on `pty-process` (async, on tokio's reactor, no `unsafe` of ours): it opens
//! the pty, and spawns the program as a session leader on the terminal side. Inputs
//! are written to the terminal as given; output is read in chunks, decoded as UTF-8
//! without splitting a character and reported on the `terminal` stream. Resize sets
//! the window size (the program gets SIGWINCH), after reporting it. Cancel writes
//! Ctrl-C (`\x03`) ahead of queued input; the terminal's line discipline turns it into
//! SIGINT for the foreground job, as a keyboard would. Stop sends SIGHUP (and SIGCONT,
//! like a hang-up) to the session, SIGTERM after a short while, SIGKILL after the
//! grace period. When the leader ends, the rest of its session is killed, every
//! byte it wrote is read (end of file is `EIO` on Linux once no process holds the
//! terminal side), and the leader is reaped.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use switchyard_protocol::OutputStream;
use tokio::io::AsyncWriteExt;
use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::driver::{Control, DriverInputs, DriverSink, Ending};
use super::orphans::Watched;
use super::process::{BASE_ENV, start_failure};
use super::session::{GroupGuard, signal_session};
use super::teardown::{ReadCount, ending, read_remaining_output};
use crate::config::PtySpec;

/// `TERM` of a pty worker unless its profile sets one: what the runtime's emulator
/// and the usual browser terminals understand.
pub const DEFAULT_TERM: &str = "xterm-256color";

/// Ctrl-C as a keyboard sends it.
const CTRL_C: &[u8] = b"\x03";

/// How long a stop waits after SIGHUP before it sends SIGTERM (at most half the
/// grace period).
const HANGUP_WAIT: Duration = Duration::from_secs(1);

/// Runs `spec` on a new pseudo-terminal until it ends or is stopped.
///
/// The program gets a cleared environment with only `PATH`, `HOME`, `LANG` (from the
/// runtime's environment, or defaults) and `TERM` ([`DEFAULT_TERM`]), plus `spec.env`;
/// `spec.cwd` as working directory when given; a terminal of `spec.cols` x
/// `spec.rows`. Reports [`DriverSink::started`], then every decoded output chunk on
/// [`OutputStream::Terminal`] (awaiting the sink, so a slow sink slows the reader).
/// [`DriverInputs::resizes`] carries new sizes: each is reported ([`DriverSink::resized`]), then set
/// on the terminal, then answered. A closed control channel counts as a stop with
/// [`DriverInputs::stop_grace`].
///
/// Returns [`Ending::Exited`] (ended on its own) or [`Ending::Stopped`] once the
/// leader is reaped and its output read; [`Ending::Failed`] when the program cannot be
/// started (the message names the program, never environment values).
pub(crate) async fn run_pty(
    spec: PtySpec,
    inputs: DriverInputs,
    sink: Arc<dyn DriverSink>,
) -> Ending {
    let DriverInputs {
        inputs,
        mut control,
        mut resizes,
        stop_grace: stop_default_grace,
        ..
    } = inputs;

    // The guard is made on the spawning thread right after the spawn: from then
    // on, however this future ends (dropped while the spawn runs included),
    // nothing of the session survives it, and the reaper holds it at once.
    let spawned = super::process::off_the_async_threads(move || {
        let spawned = spawn(&spec)?;
        let guard = GroupGuard::new(Watched::Session(spawned.sid));
        Ok((spawned, guard))
    })
    .await;
    let (
        Spawned {
            pty,
            mut child,
            terminal,
            sid,
        },
        mut guard,
    ) = match spawned {
        Ok(spawned) => spawned,
        Err(message) => return Ending::Failed(message),
    };
    tracing::debug!(sid = sid.as_raw(), "pty worker started");
    sink.started().await;

    let (reader, writer) = pty.into_split();
    let (give_up_tx, give_up_rx) = watch::channel(false);
    let reads = ReadCount::default();
    let reader = tokio::spawn(super::process::pump_output(
        reader,
        OutputStream::Terminal,
        Arc::clone(&sink),
        Arc::clone(&reads),
        give_up_rx,
    ));
    guard.tasks.push(reader.abort_handle());
    let (urgent_tx, urgent_rx) = mpsc::channel(4);
    let writer = tokio::spawn(feed_terminal(writer, inputs, urgent_rx));
    guard.tasks.push(writer.abort_handle());

    let mut stop_requested = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            command = control.recv() => match command {
                Some(Control::Cancel) => {
                    // A full queue already holds Ctrl-Cs the writer has not written.
                    let _ = urgent_tx.try_send(CTRL_C);
                    sink.interrupted().await;
                }
                Some(Control::Stop { grace }) => {
                    stop_requested = true;
                    break stop(&mut child, sid, &terminal, grace).await;
                }
                None => {
                    tracing::debug!(sid = sid.as_raw(), "control channel closed: stopping");
                    stop_requested = true;
                    break stop(&mut child, sid, &terminal, stop_default_grace).await;
                }
            },
            Some(resize) = resizes.recv() => {
                sink.resized(resize.cols, resize.rows).await;
                set_size(&terminal, resize.cols, resize.rows);
                let _ = resize.done.send(());
            }
        }
    };

    // The leader is reaped; take the rest of its session with it.
    signal_session(sid, &[sid], Signal::SIGKILL).await;
    guard.disarm();
    writer.abort();

    // All output is reported before the driver returns.
    read_remaining_output(
        async { reader.await.unwrap_or(false) },
        &reads,
        &give_up_tx,
        sink.as_ref(),
        "a process outside the worker's session kept its terminal open",
    )
    .await;
    guard.tasks.clear();
    drop(terminal);
    ending(status, stop_requested, sid)
}

/// A started program and what the driver keeps of its terminal.
struct Spawned {
    /// The terminal's controlling side (master).
    pty: pty_process::Pty,
    /// The session leader.
    child: Child,
    /// A second handle on the master, for window sizes and the foreground group.
    terminal: OwnedFd,
    /// The session id (the leader's pid).
    sid: Pid,
}

/// Opens a pty of the spec's size and starts the program on it; the error is a
/// message for the user.
fn spawn(spec: &PtySpec) -> Result<Spawned, String> {
    let Some(program) = spec.command.first() else {
        return Err("could not start the program: the profile's command is empty".to_owned());
    };
    let failed = |err: &dyn std::fmt::Display| start_failure(program, spec.cwd.as_deref(), err);
    let (pty, pts) = pty_process::open().map_err(|e| failed(&e))?;
    pty.resize(pty_process::Size::new(spec.rows.max(1), spec.cols.max(1)))
        .map_err(|e| failed(&e))?;
    let terminal = pty.as_fd().try_clone_to_owned().map_err(|e| failed(&e))?;

    let mut command = tokio::process::Command::new(program);
    command.args(&spec.command[1..]).env_clear();
    for (name, default) in BASE_ENV {
        let value = match name {
            "TERM" => OsString::from(DEFAULT_TERM),
            _ => std::env::var_os(name).unwrap_or_else(|| OsString::from(default)),
        };
        command.env(name, value);
    }
    command.envs(&spec.env);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    command.kill_on_drop(true);
    let child = pty_process::Command::from(command)
        .spawn(pts)
        .map_err(|e| failed(&e))?;
    let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
        return Err("the program ended before it could be watched".to_owned());
    };
    crate::open_files::restore_in(pid.unsigned_abs());
    Ok(Spawned {
        pty,
        child,
        terminal,
        sid: Pid::from_raw(pid),
    })
}

/// Writes Ctrl-Cs (first) and inputs to the terminal as given. After a write error
/// (the program is gone), the remaining inputs are taken and dropped quietly.
async fn feed_terminal(
    mut terminal: pty_process::OwnedWritePty,
    mut inputs: mpsc::Receiver<String>,
    mut urgent: mpsc::Receiver<&'static [u8]>,
) {
    let mut open = true;
    loop {
        let bytes: Vec<u8> = tokio::select! {
            biased;
            Some(bytes) = urgent.recv() => bytes.to_vec(),
            input = inputs.recv() => match input {
                Some(text) => text.into_bytes(),
                None => return,
            },
        };
        if !open {
            continue;
        }
        let written = async {
            terminal.write_all(&bytes).await?;
            terminal.flush().await
        }
        .await;
        if let Err(err) = written {
            tracing::debug!(error = %err, "writing to the terminal failed; dropping further input");
            open = false;
        }
    }
}

/// SIGHUP (and SIGCONT) to the session; SIGTERM if the leader is still there after
/// [`HANGUP_WAIT`] (at most half of `grace`); SIGKILL once `grace` is over.
async fn stop(
    child: &mut Child,
    sid: Pid,
    terminal: &OwnedFd,
    grace: Duration,
) -> io::Result<ExitStatus> {
    let started = Instant::now();
    for signal in [Signal::SIGHUP, Signal::SIGCONT] {
        signal_session(sid, &groups(sid, terminal), signal).await;
    }
    if let Ok(status) = tokio::time::timeout(HANGUP_WAIT.min(grace / 2), child.wait()).await {
        return status;
    }
    signal_session(sid, &groups(sid, terminal), Signal::SIGTERM).await;
    let rest = grace.saturating_sub(started.elapsed());
    match tokio::time::timeout(rest, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            tracing::debug!(sid = sid.as_raw(), "grace period over: killing the session");
            signal_session(sid, &groups(sid, terminal), Signal::SIGKILL).await;
            child.wait().await
        }
    }
}

/// The leader's process group and the terminal's foreground group.
fn groups(sid: Pid, terminal: &OwnedFd) -> Vec<Pid> {
    let mut groups = vec![sid];
    if let Ok(foreground) = rustix::termios::tcgetpgrp(terminal) {
        groups.push(Pid::from_raw(foreground.as_raw_nonzero().get()));
    }
    groups
}

/// Sets the terminal's window size; the program's foreground job gets SIGWINCH.
fn set_size(terminal: &OwnedFd, cols: u16, rows: u16) {
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    if let Err(err) = rustix::termios::tcsetwinsize(terminal, size) {
        tracing::warn!(error = %err, "could not set the terminal's size");
    }
}
