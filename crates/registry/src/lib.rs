//! The runtime registry: one table of runtimes, embedded or remote, that routes every
//! backend call by `runtime_id + worker_id`, keeps a view of each runtime's health,
//! and consults a policy before every command.
//!
//! - [`RuntimeSource`]: the trait a kind of runtime implements ([`EmbeddedSource`],
//!   [`RemoteSource`]).
//! - [`RuntimeRegistry`]: lookup, routing, views, health probes.
//! - [`Caller`]: who asks, passed with every call.
//! - [`Policy`]: the seam for permission rules; [`AllowAll`] without auth,
//!   [`RolePolicy`] (roles and runtime grants) with auth.

pub mod caller;
pub mod embedded;
pub mod error;
pub mod hub;
pub mod owners;
pub mod policy;
pub mod registry;
pub mod remote;
pub mod source;
pub mod view;

pub use caller::{ANONYMOUS, Caller, GlobError, Role, RuntimeGlob, RuntimeGrants, WorkerScope};
pub use embedded::EmbeddedSource;
pub use error::{RegistryError, SourceError};
pub use hub::{BackendCursor, COMMAND_LANE, CommandTicket, HubSettings, ObservationHub, Viewer};
pub use policy::{Action, AllowAll, Policy, PolicyDenied, PolicyRequest, RolePolicy};
pub use registry::{
    DuplicateRuntimeId, LIST_ALL_MAX_PER_RUNTIME, LIST_SCAN_BUDGET, RegisteredRuntime,
    RuntimeRegistry,
};
pub use remote::{RemoteSource, Scrubber};
pub use source::{ResumePoint, RuntimeSource, SourceEnd, SourceEvents, SourceItem};
pub use view::RuntimeView;
