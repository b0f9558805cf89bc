//! Worker processes must not outlive their runtime, even one killed with `SIGKILL`,
//! when no destructor runs and no guard of a worker's process group fires.
//!
//! The program that embeds the runtime may start a **reaper** ([`install_reaper`]):
//! a small child process (the `switchyard` binary runs [`run_reaper`] for it) that
//! the runtime tells, over a socket that is the reaper's standard input, each
//! worker's process group (a process worker) or session (a pty worker) as it starts
//! and as it ends. When the socket closes, which is when the runtime's process has
//! ended however it ended, the reaper kills every group it still holds and exits.
//! Without a reaper nothing changes: workers are killed when their driver ends or
//! is dropped, which covers every exit but a crash.
//!
//! The lines: `g <pgid>` (a process group), `s <sid>` (every group of a session),
//! `- <id>` (ended; forget it).
//!
//! **Invariant: the runtime never blocks on the reaper.** Its end of the socket is
//! non-blocking; what does not fit waits in a buffer of at most
//! [`PENDING_LIMIT`] bytes, written before the next line. If the reaper reads so
//! little that the buffer would overflow, the runtime kills it (no line is ever
//! dropped, so a reaper never holds a worker it was not told has ended) and goes on
//! without one, with a warning: its workers are still killed on every exit but a
//! crash. The reaper acts only on whole lines, so a line cut short by a crash
//! mid-write is ignored.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::session::{session_groups, signal_group};

/// Bytes of lines kept while the reaper is slow to read them.
pub const PENDING_LIMIT: usize = 64 * 1024;

/// What a reaper kills for one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watched {
    /// A process worker's process group.
    Group(Pid),
    /// A pty worker's session: each of its process groups.
    Session(Pid),
}

impl Watched {
    fn id(self) -> Pid {
        match self {
            Self::Group(pid) | Self::Session(pid) => pid,
        }
    }
}

/// The runtime's end of the socket to the reaper, when one is installed.
static REAPER: OnceLock<Mutex<Channel>> = OnceLock::new();

/// The socket, the bytes not yet written to it, and the reaper's process.
struct Channel {
    socket: Option<UnixStream>,
    pending: Vec<u8>,
    reaper: Pid,
}

/// Starts `command` as this process's reaper: it must run [`run_reaper`] on its
/// standard input (the `switchyard` binary does, for its hidden `__reap-orphans`
/// subcommand). The reaper gets a process group of its own, so a terminal's Ctrl-C
/// reaches the runtime, which stops its workers itself, and not the reaper. A
/// second call does nothing. Call it before the first worker starts.
pub fn install_reaper(mut command: Command) -> io::Result<()> {
    if REAPER.get().is_some() {
        return Ok(());
    }
    let (ours, theirs) = UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let mut child = command
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()?;
    let channel = Channel {
        socket: Some(ours),
        pending: Vec::new(),
        reaper: Pid::from_raw(i32::try_from(child.id()).unwrap_or(0)),
    };
    if REAPER.set(Mutex::new(channel)).is_err() {
        // Another thread installed one meanwhile: this one is not needed.
        let _ = child.kill();
        let _ = child.wait();
        return Ok(());
    }
    // Wait for the reaper, so that one ending early does not linger as a zombie.
    std::thread::Builder::new()
        .name("switchyard-reaper-wait".to_owned())
        .spawn(move || {
            if let Ok(status) = child.wait() {
                tracing::warn!(%status, "the worker reaper ended before the runtime; workers will not be killed if the runtime crashes");
            }
        })?;
    Ok(())
}

/// Tells the reaper, if there is one, that `watched` started.
pub(crate) fn adopt(watched: Watched) {
    match watched {
        Watched::Group(pgid) => tell(&format!("g {}\n", pgid.as_raw())),
        Watched::Session(sid) => tell(&format!("s {}\n", sid.as_raw())),
    }
}

/// Tells the reaper, if there is one, that `watched` ended.
pub(crate) fn release(watched: Watched) {
    tell(&format!("- {}\n", watched.id().as_raw()));
}

/// Sends `line` without blocking: after what is pending, or into the pending
/// buffer; if the buffer would overflow, ends the reaper instead (see the module).
fn tell(line: &str) {
    let Some(channel) = REAPER.get() else {
        return;
    };
    let mut channel = channel
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if channel.socket.is_none() {
        return;
    }
    flush(&mut channel);
    if channel.pending.len() + line.len() > PENDING_LIMIT {
        tracing::warn!(
            "the worker reaper is not reading; ending it: workers will not be killed if the runtime crashes"
        );
        if channel.reaper.as_raw() > 1 {
            let _ = nix::sys::signal::kill(channel.reaper, Signal::SIGKILL);
        }
        channel.socket = None;
        channel.pending = Vec::new();
        return;
    }
    channel.pending.extend_from_slice(line.as_bytes());
    flush(&mut channel);
}

/// Writes what is pending until the socket would block.
fn flush(channel: &mut Channel) {
    let Channel {
        socket, pending, ..
    } = channel;
    let Some(stream) = socket.as_mut() else {
        return;
    };
    while !pending.is_empty() {
        match stream.write(pending) {
            Ok(0) => break,
            Ok(n) => {
                pending.drain(..n);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                tracing::warn!(%error, "the worker reaper is gone; workers will not be killed if the runtime crashes");
                *socket = None;
                pending.clear();
                break;
            }
        }
    }
}

/// The reaper: reads the runtime's lines (see the module) from `input` until it ends,
/// then sends `SIGKILL` to every group still held (for a session, to each group
/// with a member in it, found in `/proc`). Returns how many it killed. Blocking: it
/// is a process's whole job.
pub fn run_reaper(mut input: impl BufRead) -> usize {
    let mut held: HashMap<i32, Watched> = HashMap::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        // A line cut short (the runtime died mid-write) says nothing for sure.
        let Some(line) = line
            .strip_suffix(b"\n")
            .and_then(|l| std::str::from_utf8(l).ok())
        else {
            continue;
        };
        let Some((kind, id)) = line.split_once(' ') else {
            continue;
        };
        let Ok(id) = id.trim().parse::<i32>() else {
            continue;
        };
        if id <= 1 {
            continue;
        }
        match kind {
            "g" => {
                held.insert(id, Watched::Group(Pid::from_raw(id)));
            }
            "s" => {
                held.insert(id, Watched::Session(Pid::from_raw(id)));
            }
            "-" => {
                held.remove(&id);
            }
            _ => {}
        }
    }
    for watched in held.values() {
        match *watched {
            Watched::Group(pgid) => signal_group(pgid, Signal::SIGKILL),
            Watched::Session(sid) => {
                let mut groups = session_groups(sid);
                groups.insert(sid.as_raw());
                for group in groups {
                    signal_group(Pid::from_raw(group), Signal::SIGKILL);
                }
            }
        }
    }
    held.len()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::time::{Duration, Instant};

    use super::*;

    /// A `sleep` in a process group of its own (a second `sleep` in the same
    /// group); returns the leader.
    fn sleeping_group() -> std::process::Child {
        Command::new("/bin/sh")
            .args(["-c", "sleep 300 & exec sleep 300"])
            .process_group(0)
            .spawn()
            .expect("spawn sh")
    }

    fn ended(child: &mut std::process::Child) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if child.try_wait().expect("try_wait").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn group_of(child: &std::process::Child) -> i32 {
        i32::try_from(child.id()).expect("pid")
    }

    #[test]
    fn what_is_held_at_the_end_is_killed_and_what_ended_is_not() {
        let mut kept = sleeping_group();
        let mut released = sleeping_group();
        let (k, r) = (group_of(&kept), group_of(&released));
        // Garbage, init's group and a last line cut short are ignored.
        let input = format!("g {k}\ng {r}\n- {r}\nnonsense\n\u{ff}\ng 1\ng x\n- {k}");
        assert_eq!(run_reaper(Cursor::new(input)), 1);
        assert!(ended(&mut kept), "the held group was killed");
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            released.try_wait().expect("try_wait").is_none(),
            "a released group is left alone"
        );
        signal_group(Pid::from_raw(r), Signal::SIGKILL);
        assert!(ended(&mut released));
    }

    /// A reaper that never reads is ended once its lines would overflow the
    /// buffer, and no call waits for it. (The only test that installs a reaper in
    /// this process: one that never reads kills nothing.)
    #[test]
    fn a_reaper_that_does_not_read_is_ended_not_waited_for() {
        let mut command = Command::new("sleep");
        command.arg("300");
        install_reaper(command).expect("start sleep as the reaper");
        let channel = REAPER.get().expect("installed");
        let reaper = channel.lock().unwrap().reaper;
        let mut lines = 0;
        while channel.lock().unwrap().socket.is_some() {
            assert!(lines < 1_000_000, "the buffer never overflowed");
            adopt(Watched::Group(Pid::from_raw(4_000_000)));
            lines += 1;
        }
        assert!(
            eventually(|| nix::sys::signal::kill(reaper, None).is_err()),
            "the reaper was killed and waited for"
        );
        // Further lines go nowhere, at once.
        release(Watched::Group(Pid::from_raw(4_000_000)));
        assert!(channel.lock().unwrap().pending.is_empty());
    }

    /// The processes of session `sid` that are not zombies.
    fn live_members(sid: i32) -> usize {
        std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
            .filter(|stat| {
                let after = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
                let fields: Vec<&str> = after.split_whitespace().collect();
                fields.len() > 3 && fields[0] != "Z" && fields[3] == sid.to_string()
            })
            .count()
    }

    fn eventually(mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn a_session_is_killed_group_by_group() {
        // A new session (setsid does not fork: the child leads no group) whose
        // leader starts a process in a process group of its own.
        let mut leader = Command::new("setsid")
            .args([
                "/bin/sh",
                "-c",
                "python3 -c 'import os, time; os.setpgid(0, 0); time.sleep(300)' & wait",
            ])
            .spawn()
            .expect("spawn setsid");
        let sid = i32::try_from(leader.id()).expect("pid");
        assert!(
            eventually(|| session_groups(Pid::from_raw(sid)).len() >= 2),
            "a second group in the session: {:?}",
            session_groups(Pid::from_raw(sid))
        );
        assert_eq!(run_reaper(Cursor::new(format!("s {sid}\n"))), 1);
        assert!(ended(&mut leader), "the session leader was killed");
        assert!(
            eventually(|| live_members(sid) == 0),
            "every group of the session was killed"
        );
    }
}
