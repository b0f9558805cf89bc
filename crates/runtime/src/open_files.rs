//! The process's open-file limit, raised for the servers and given back to the
//! workers.
//!
//! A server raises its soft limit on open files to the hard one (see the server
//! crate's `open_files`), since every connection is a descriptor. The programs a
//! runtime starts as workers should not inherit that: some loop over every
//! descriptor up to the limit, or use `select()`, which cannot take descriptors
//! past 1,024. So every worker process gets the limit the process started with
//! back, right after it is spawned ([`restore_in`]; safe code cannot run between
//! `fork` and `exec`, so a program that reads its limit in its very first
//! instructions may still see the raised one).

use std::sync::OnceLock;

use rustix::process::{Pid, Resource, Rlimit, getrlimit, prlimit, setrlimit};

/// The limit the process had before [`raise`] raised it (`None` until then, or
/// when it was not raised).
static ORIGINAL: OnceLock<Option<Rlimit>> = OnceLock::new();

/// Raises the soft limit on open files to the hard one, once per process; the
/// soft limit in force afterwards (`None`: unlimited).
pub fn raise() -> Option<u64> {
    ORIGINAL.get_or_init(|| {
        let limit = getrlimit(Resource::Nofile);
        let below_hard = match (limit.current, limit.maximum) {
            (Some(soft), Some(hard)) => soft < hard,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !below_hard {
            return None;
        }
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => Some(limit),
            Err(error) => {
                tracing::debug!(%error, "could not raise the open-file limit");
                None
            }
        }
    });
    getrlimit(Resource::Nofile).current
}

/// Gives the worker process `pid` the open-file limit this process started with,
/// when [`raise`] changed it. Best effort: a process that already ended is fine.
pub fn restore_in(pid: u32) {
    let Some(Some(original)) = ORIGINAL.get() else {
        return;
    };
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    if let Err(error) = prlimit(Some(pid), Resource::Nofile, *original) {
        tracing::debug!(%error, "could not give a worker the original open-file limit");
    }
}
