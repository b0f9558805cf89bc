//! The runtime registry: one table of runtimes, embedded or remote, that routes every
//! backend call by `runtime_id + worker_id`, keeps a view of each runtime's health,
//! and consults a policy before every command.
//!
//! - [`RuntimeSource`]: the trait a kind of runtime implements ([`EmbeddedSource`],
//!   [`RemoteSource`]).
//! - [`RuntimeRegistry`]: lookup, routing, views, health probes; its runtimes are
//!   replaced while it serves by [`RuntimeRegistry::reconfigure`] (a reload).
//! - [`Caller`]: who asks, passed with every call.
//! - [`metrics`]: what the registry and the hub count, with bounded labels.
//! - [`Policy`]: the seam for permission rules; [`AllowAll`] without auth,
//!   [`RolePolicy`] (roles and runtime grants) with auth.
//! - [`ObservationHub`]: one upstream event stream per watched worker, however
//!   many viewers, with backend cursors that survive reconnects and restarts.
//!
//! Implement [`RuntimeSource`] to add a kind of runtime (another system's API, a
//! pool of runtimes, an archive), [`Policy`] for rules of your own, and hand them to
//! the `switchyard-server` crate's `Backend` builder; or drive a registry directly:
//!
//! ```
//! use std::sync::Arc;
//! use switchyard_protocol::{NewWorkerRequest, RuntimeId};
//! use switchyard_registry::{
//!     Action, AllowAll, Caller, EmbeddedSource, Policy, PolicyDenied, PolicyRequest,
//!     RegisteredRuntime, RuntimeRegistry,
//! };
//! use switchyard_runtime::{Runtime, RuntimeConfig};
//!
//! /// Workers may be started, but never deleted.
//! struct KeepEverything;
//!
//! impl Policy for KeepEverything {
//!     fn authorize(&self, request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
//!         match request.action {
//!             Action::Delete => Err(PolicyDenied("workers are kept; stop them instead".into())),
//!             _ => AllowAll.authorize(request),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let id = RuntimeId::new("local").expect("a valid id");
//! let runtime = Runtime::in_memory(RuntimeConfig::new(id.clone(), "Here")).await;
//! let registry = RuntimeRegistry::new(
//!     vec![RegisteredRuntime::new(id.clone(), "Here", Arc::new(EmbeddedSource::new(runtime)))],
//!     Arc::new(KeepEverything),
//! )
//! .expect("distinct ids");
//!
//! let caller = Caller::open();
//! let request = NewWorkerRequest { profile: "echo".into(), label: None };
//! let worker = registry.create_worker(&caller, &id, &request).await.expect("created");
//! registry.stop(&caller, &id, &worker.worker_id).await.expect("stopped");
//! let refused = registry.delete(&caller, &id, &worker.worker_id).await.unwrap_err();
//! assert_eq!(refused.status(), 403);
//! # }
//! ```

pub mod caller;
pub mod embedded;
pub mod error;
mod event_check;
pub mod hub;
pub mod metrics;
pub(crate) mod owners;
pub mod policy;
pub mod reconfigure;
pub mod registry;
mod relay;
mod relay_memo;
pub mod remote;
pub mod scrub;
pub mod source;
pub mod view;

/// The attribute [`RuntimeSource`] and [`SourceEvents`] implementations carry.
pub use async_trait::async_trait;
/// What a source's `*_json` calls answer with (the `bytes` crate's type, here so
/// that a source that forwards them needs no other crate for it).
pub use bytes::Bytes;
pub use caller::{ANONYMOUS, Caller, GlobError, Role, RuntimeGlob, RuntimeGrants, WorkerScope};
pub use embedded::EmbeddedSource;
pub use error::{RegistryError, SourceError};
pub use hub::{BackendCursor, COMMAND_LANE, CommandTicket, HubSettings, ObservationHub, Viewer};
pub use policy::{Action, AllowAll, Policy, PolicyDenied, PolicyRequest, RolePolicy, WithRule};
pub use reconfigure::{Planned, ReconfigureError, Reconfigured};
pub use registry::{
    DEFAULT_CALL_TIMEOUT, DuplicateRuntimeId, LIST_ALL_MAX_PER_RUNTIME,
    LIST_ALL_MAX_SCANNED_PER_RUNTIME, LIST_SCAN_BUDGET, RegisteredRuntime, RuntimeRegistry,
};
pub use remote::RemoteSource;
pub use scrub::Scrubber;
pub use source::{ResumePoint, RuntimeSource, SeenWorkers, SourceEnd, SourceEvents, SourceItem};
/// RFC 3339 timestamps as the wire types carry them (`clock::now()`, for a source
/// that fills in a `WorkerDetail` or `RuntimeInfo` of its own).
pub use switchyard_runtime::clock;
/// What [`RuntimeSource::list_workers`] is asked (transport's type, here so that a
/// source needs no other crate for it).
pub use switchyard_transport::WorkerQuery;
pub use view::RuntimeView;
