//! `switchyard serve`: the backend (built by the registry issue).

use crate::config::ServeArgs;

/// Runs the subcommand; returns the exit status.
pub async fn run(_args: ServeArgs) -> u8 {
    eprintln!("switchyard serve: the backend is not built yet; run `switchyard runtime`");
    1
}
