//! Persistence of workers and transcripts behind one trait, with two implementations:
//! [`MemoryStore`] and [`FsStore`].
//!
//! The store is deliberately dumb: it keeps what it is given, in order. Lifecycle
//! decisions (marking workers `lost` after a restart, sequence numbering) belong to
//! the runtime.

mod chunked;
mod fs;
mod memory;
#[cfg(test)]
mod test_support;

pub use fs::FsStore;
pub use memory::{DEFAULT_TRANSCRIPT_BYTES, MemoryStore};

use std::path::PathBuf;

use switchyard_protocol::{TranscriptItem, WorkerDetail, WorkerId};

/// A store failure. Paths appear here for the operator's logs; the HTTP layer maps
/// every variant to `internal` without the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("store I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A worker record could not be parsed.
    #[error(
        "corrupt store record {path}: {reason} (to go on without that worker, move its \
         directory out of the data directory while the runtime is stopped)"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The worker has no record in the store.
    #[error("no stored worker {0}")]
    NotFound(WorkerId),
    /// The store was closed ([`Store::close`]): its runtime has shut down.
    #[error("the store was closed: its runtime has shut down")]
    Closed,
    /// Another store (another runtime, in this process or another) has the data
    /// directory open.
    #[error(
        "the data directory {data_dir} is in use by another switchyard runtime (it holds \
         {data_dir}/lock): stop that one, or give this one a data directory of its own"
    )]
    InUse {
        /// The data directory.
        data_dir: PathBuf,
    },
}

/// A worker as found when a store is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedWorker {
    /// The last saved record.
    pub detail: WorkerDetail,
    /// The highest transcript sequence stored (0 when the transcript is empty).
    pub last_sequence: u64,
    /// The last items of the transcript, oldest first (at most the `tail` asked for).
    pub tail: Vec<TranscriptItem>,
}

/// Where workers and transcripts are kept.
///
/// Calls for one worker are made in order by the runtime (never concurrently for the
/// same worker), and transcript items arrive with strictly increasing sequences.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Loads every stored worker, with up to `tail` last transcript items each.
    /// A torn last transcript line (a crash mid-append) is dropped with a warning;
    /// a corrupt worker record is [`StoreError::Corrupt`].
    async fn load(&self, tail: usize) -> Result<Vec<LoadedWorker>, StoreError>;

    /// Creates or replaces a worker's record, atomically.
    async fn save_worker(&self, detail: &WorkerDetail) -> Result<(), StoreError>;

    /// Appends items to a worker's transcript, in order.
    async fn append(&self, worker: &WorkerId, items: &[TranscriptItem]) -> Result<(), StoreError>;

    /// Reads at most `limit` items with `sequence > after`, in order, without reading
    /// the whole transcript.
    async fn read_page(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<TranscriptItem>, StoreError>;

    /// Removes a worker's record and transcript.
    async fn remove_worker(&self, worker: &WorkerId) -> Result<(), StoreError>;

    /// Makes everything written so far durable.
    async fn flush(&self) -> Result<(), StoreError>;

    /// Called once, by [`crate::Runtime::shutdown`] after the last flush: the runtime
    /// writes no more. A store that holds its place for its own use (the file
    /// store's lock on its data directory) lets it go, so that another runtime may
    /// open it. The default does nothing.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
