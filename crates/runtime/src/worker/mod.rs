//! Workers: the drivers that run them and the core that records what they do.

pub(crate) mod core;
pub mod driver;
pub(crate) mod echo;
mod idle;
pub mod orphans;
pub(crate) mod process;
pub(crate) mod pty;
pub(crate) mod screen;
mod session;
mod teardown;
pub(crate) mod utf8;

pub(crate) use core::{REPLAY_TOTAL_BYTES, Worker};

use crate::error::{Result, RuntimeError};

/// Runs a call that must not stop half way (it writes the store, then memory) on a
/// task of its own, so that it finishes even if its caller is dropped: an HTTP
/// connection cut mid-call cancels the caller, never the write.
pub(crate) async fn run_to_end<T: Send + 'static>(
    call: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    match tokio::spawn(call).await {
        Ok(done) => done,
        Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
        // Only a tokio runtime shutting down cancels the task.
        Err(_) => Err(RuntimeError::Draining),
    }
}
