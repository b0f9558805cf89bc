//! The Switchyard worker runtime: workers started from named profiles (`echo`,
//! `process`), their lifecycle, per-worker event logs with bounded backlogs and
//! resumable cursors, transcripts, and the stores that keep them. No HTTP here.
//!
//! Entry point: [`Runtime`]. Persistence: [`Store`] with [`MemoryStore`] and
//! [`FsStore`]. Live events: [`Runtime::subscribe`] gives a [`Subscription`].

pub mod clock;
pub mod config;
pub mod error;
pub mod fanout;
mod log;
mod runtime;
pub mod store;
mod subscription;
pub mod worker;

pub use config::{ProcessSpec, Profile, ProfileSpec, RuntimeConfig, RuntimeLimits};
pub use error::RuntimeError;
pub use fanout::{Fanout, FanoutReceiver, StreamEnd};
pub use log::LogEntry;
pub use runtime::{CAPABILITIES, DEFAULT_PAGE_LIMIT, ListQuery, Runtime};
pub use store::{FsStore, LoadedWorker, MemoryStore, Store, StoreError};
pub use subscription::{Subscription, SubscriptionItem};
