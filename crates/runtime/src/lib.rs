//! The Switchyard worker runtime: workers started from named profiles (`echo`,
//! `process`, `pty`), their lifecycle, a terminal emulator per pty worker, per-worker
//! event logs with bounded backlogs and resumable cursors, transcripts, idle
//! timeouts, and the stores that keep them. No HTTP here.

pub mod clock;
pub mod config;
pub mod error;
pub mod fanout;
mod log;
mod runtime;
pub mod store;
mod subscription;
pub mod worker;

pub use config::{
    DEFAULT_PTY_COLS, DEFAULT_PTY_ROWS, ProcessSpec, Profile, ProfileSpec, PtySpec, RuntimeConfig,
    RuntimeLimits,
};
pub use error::RuntimeError;
pub use fanout::{Fanout, FanoutReceiver, StreamEnd};
pub use log::LogEntry;
pub use runtime::{CAPABILITIES, DEFAULT_PAGE_LIMIT, ListQuery, Runtime};
pub use store::{FsStore, LoadedWorker, MemoryStore, Store, StoreError};
pub use subscription::{Subscription, SubscriptionItem};
