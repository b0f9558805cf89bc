//! The worker reaper of `serve` and `runtime`: this same
//! binary, started with the hidden `__reap-orphans` subcommand, kills the workers
//! of a process that ended without stopping them (a crash, `SIGKILL`). See
//! `switchyard_runtime::worker::orphans`.

use std::process::Command;

use switchyard_runtime::worker::orphans;

/// The hidden subcommand that runs the reaper.
pub const SUBCOMMAND: &str = "__reap-orphans";

/// Starts this process's reaper. Without one (the binary cannot be found again,
/// say after it was replaced) the process still runs, with a warning: its workers
/// are then killed on every exit but a crash.
pub fn start() {
    let started = std::env::current_exe().and_then(|exe| {
        let mut command = Command::new(exe);
        command.arg(SUBCOMMAND);
        orphans::install_reaper(command)
    });
    if let Err(error) = started {
        tracing::warn!(%error, "could not start the worker reaper; workers will not be killed if this process crashes");
    }
}

/// The reaper's whole life: reads standard input to its end, then kills what it
/// still holds. Exit status 0.
pub fn run() -> u8 {
    orphans::run_reaper(std::io::stdin().lock());
    0
}
