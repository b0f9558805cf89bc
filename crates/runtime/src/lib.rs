//! The Switchyard worker runtime: workers started from named profiles, their
//! lifecycle, per-worker event logs with bounded backlogs and resumable cursors,
//! transcripts, a terminal emulator per terminal worker, idle timeouts, and the
//! stores that keep it all. No HTTP here: the `switchyard-server` crate serves a
//! [`Runtime`] as the Runtime API, and the backend embeds one directly.
//!
//! - [`Runtime`]: opens over a [`Store`] ([`MemoryStore`], [`FsStore`]) with a
//!   [`RuntimeConfig`] (identity, [`Profile`]s, [`RuntimeLimits`]) and answers every
//!   Runtime API call as a method: `create`, `input`, `stop`, `transcript`,
//!   `subscribe`, ...; [`Runtime::reconfigure`] replaces its profiles and limits
//!   while it runs, for what starts from then on.
//! - [`Driver`]: the seam to the code that runs a worker. The built-in kinds are
//!   drivers ([`EchoDriver`], [`ProcessDriver`], [`PtyDriver`]); implement the trait
//!   for a new kind and put it in a profile with [`Profile::custom`]. The runtime
//!   records whatever a driver reports ([`DriverSink`]) in the same transcript,
//!   events and store as for the built-in kinds.
//! - [`Subscription`]: one worker's live events, from a snapshot or resumed after a
//!   cursor, with the no-gap, no-duplicate guarantee.
//!
//! ```
//! use switchyard_protocol::{CreateWorkerRequest, RuntimeId, TranscriptEntry, WorkerStatus};
//! use switchyard_runtime::{Runtime, RuntimeConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), switchyard_runtime::RuntimeError> {
//! let config = RuntimeConfig::new(RuntimeId::new("local").expect("a valid id"), "Here");
//! let runtime = Runtime::in_memory(config).await;
//!
//! let worker = runtime
//!     .create(CreateWorkerRequest { profile: "echo".into(), label: None, owner: None })
//!     .await?;
//! assert_eq!(worker.status, WorkerStatus::Running);
//! runtime.input(&worker.worker_id, "hello\n".into()).await?;
//!
//! // The echo comes back as output, after the `started` note and the input.
//! let mut subscription = runtime.subscribe(&worker.worker_id, None)?;
//! loop {
//!     let page = runtime.transcript(&worker.worker_id, 0, None).await?;
//!     if let Some(item) = page.items.iter().find(|i| matches!(i.entry, TranscriptEntry::Output { .. })) {
//!         assert!(matches!(&item.entry, TranscriptEntry::Output { text, .. } if text == "hello\n"));
//!         break;
//!     }
//!     let _ = subscription.next().await; // wait for the next event
//! }
//! runtime.shutdown().await.expect("the store flushes");
//! # Ok(())
//! # }
//! ```

pub mod busy;
mod census;
pub mod clock;
pub mod config;
pub mod error;
pub mod fanout;
mod log;
pub mod open_files;
mod runtime;
pub mod store;
mod subscription;
pub mod worker;

/// The attribute a [`Driver`] implementation takes (`#[switchyard_runtime::async_trait]`),
/// here so that a driver needs no other crate for it.
pub use async_trait::async_trait;
pub use config::{
    CustomDriver, DEFAULT_PTY_COLS, DEFAULT_PTY_ROWS, ProcessSpec, Profile, ProfileSpec, PtySpec,
    RuntimeConfig, RuntimeLimits,
};
pub use error::RuntimeError;
pub use fanout::{Fanout, FanoutReceiver, StreamEnd};
pub use log::{EVENT_BACKLOG_BYTES, LogEntry};
pub use runtime::{CAPABILITIES, DEFAULT_PAGE_LIMIT, ListQuery, Runtime};
pub use store::{DEFAULT_TRANSCRIPT_BYTES, FsStore, LoadedWorker, MemoryStore, Store, StoreError};
pub use subscription::{Subscription, SubscriptionItem};
pub use worker::driver::{
    Control, Driver, DriverControls, DriverInputs, DriverSink, EchoDriver, Ending, ProcessDriver,
    PtyDriver, Resize, TerminalSize,
};
