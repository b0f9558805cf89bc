//! Signalling a worker's processes: one process group (`signal_group`, and
//! `GroupGuard`, which kills it if its driver is dropped), or a pty worker's whole
//! session.
//!
//! A pty worker's program leads its own session, and an interactive shell puts each
//! job in a process group of its own within it, so signalling the leader's group is
//! not enough. The session's groups are found in `/proc` (Linux); where that cannot
//! be read, the leader's group and the terminal's foreground group are signalled.

use std::collections::BTreeSet;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::task::AbortHandle;

use super::orphans::{self, Watched};

/// The process groups with a member in session `sid`, read from `/proc`. Blocking
/// (reads procfs); run it off the async threads.
pub(crate) fn session_groups(sid: Pid) -> BTreeSet<i32> {
    let mut groups = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return groups;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((pgrp, session)) = group_and_session(&stat)
            && session == sid.as_raw()
        {
            groups.insert(pgrp);
        }
    }
    groups
}

/// The process group and session of a `/proc/<pid>/stat` line.
fn group_and_session(stat: &str) -> Option<(i32, i32)> {
    // After the command name in parentheses (which may itself hold ')'): state,
    // ppid, pgrp, session, ...
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(2);
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some((pgrp, session))
}

/// Sends `signal` to every process group of session `sid`, and to `extra` groups
/// (the leader's, the terminal's foreground group) whether or not `/proc` lists them.
pub(crate) async fn signal_session(sid: Pid, extra: &[Pid], signal: Signal) {
    let mut groups = tokio::task::spawn_blocking(move || session_groups(sid))
        .await
        .unwrap_or_default();
    groups.extend(extra.iter().map(|p| p.as_raw()));
    for group in groups {
        signal_group(Pid::from_raw(group), signal);
    }
}

/// Sends `signal` to one process group; a group that is already gone is not an error.
pub(crate) fn signal_group(pgid: Pid, signal: Signal) {
    if pgid.as_raw() <= 1 {
        return;
    }
    match killpg(pgid, signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(err) => {
            tracing::warn!(pgid = pgid.as_raw(), ?signal, error = %err, "could not signal a process group");
        }
    }
}

/// Kills a worker's process group (for a pty worker, its session leader's) and
/// its helper tasks if the driver is dropped before it finishes (its future
/// cancelled), so nothing outlives it.
///
/// It also tells the process's reaper, if there is one ([`orphans`]), about the
/// worker's processes for its lifetime, so that they are killed even when the whole
/// runtime is (and no guard is dropped).
pub(crate) struct GroupGuard {
    /// The group to kill; `None` once it has been killed on the normal path
    /// ([`GroupGuard::disarm`]).
    group: Option<Pid>,
    /// Tasks to abort.
    pub tasks: Vec<AbortHandle>,
    /// What the reaper holds for this worker until the guard is dropped.
    watched: Watched,
}

impl GroupGuard {
    /// A guard of `watched`'s group (a session's is its leader's), with no tasks yet.
    pub fn new(watched: Watched) -> Self {
        orphans::adopt(watched);
        let group = match watched {
            Watched::Group(pgid) => pgid,
            Watched::Session(sid) => sid,
        };
        Self {
            group: Some(group),
            tasks: Vec::new(),
            watched,
        }
    }
}

impl GroupGuard {
    /// The worker's processes were killed on the normal path: nothing to kill on
    /// drop, and the reaper forgets them now (their ids may be reused once the last
    /// of them is reaped).
    pub fn disarm(&mut self) {
        if self.group.take().is_some() {
            orphans::release(self.watched);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            signal_group(group, Signal::SIGKILL);
            orphans::release(self.watched);
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_past_odd_command_names() {
        assert_eq!(
            group_and_session("42 (sleep) S 1 40 39 34816 0"),
            Some((40, 39))
        );
        assert_eq!(group_and_session("42 (a) b (c)) R 7 8 9 0"), Some((8, 9)));
        assert_eq!(group_and_session("garbage"), None);
        assert_eq!(group_and_session("1 (x) S 1"), None);
    }

    #[test]
    fn this_process_is_found_in_its_own_session() {
        let sid = nix::unistd::getsid(None).unwrap();
        let pgrp = nix::unistd::getpgrp();
        assert!(session_groups(sid).contains(&pgrp.as_raw()));
    }
}
