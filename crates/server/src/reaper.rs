//! Workers that outlive a crash. A runtime stops its `process` and `pty` workers
//! when it shuts down; when its process dies without shutting down (a crash,
//! `SIGKILL`), a small reaper process started beside it kills them instead.
//! `switchyard serve` and `switchyard runtime` start one. A program of your own
//! that serves process or terminal profiles (an embedded runtime, a
//! [`RuntimeServer`](crate::RuntimeServer)) does the same in two lines:
//!
//! ```no_run
//! // In `main`, first thing: when this process was started as the reaper, be
//! // the reaper (this does not return then).
//! switchyard_server::reaper::run_if_asked();
//! // Then, before the first worker starts: start this process's reaper (this
//! // same executable, with the reaper's argument).
//! switchyard_server::reaper::start();
//! // ... build the runtime and serve ...
//! ```
//!
//! Without a reaper everything works, and workers are still stopped on every exit
//! but a crash. See `switchyard_runtime::worker::orphans` for the mechanism.

pub use crate::commands::reaper::SUBCOMMAND;

/// Runs the reaper and exits when this process was started as one (its first
/// argument is [`SUBCOMMAND`]); returns at once otherwise. Call it first in `main`,
/// before anything else runs.
pub fn run_if_asked() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == SUBCOMMAND)
    {
        std::process::exit(i32::from(crate::commands::reaper::run()));
    }
}

/// Starts this process's reaper: this same executable, with [`SUBCOMMAND`] as its
/// argument, so `main` must call [`run_if_asked`] first. A second call does
/// nothing; if the reaper cannot be started, a warning is logged and the process
/// runs on without one.
pub fn start() {
    crate::commands::reaper::start();
}
