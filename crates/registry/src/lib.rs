//! The runtime registry: one table of runtimes, embedded or remote, that routes every
//! backend call by `runtime_id + worker_id`, keeps a view of each runtime's health,
//! and consults a policy before every command.
//!
//! - [`RuntimeSource`]: the trait a kind of runtime implements ([`EmbeddedSource`],
//!   [`RemoteSource`]).
//! - [`RuntimeRegistry`]: lookup, routing, views, health probes.
//! - [`Policy`]: the seam for permission rules; [`AllowAll`] by default.

pub mod embedded;
pub mod error;
pub mod hub;
pub mod policy;
pub mod registry;
pub mod remote;
pub mod source;
pub mod view;

pub use embedded::EmbeddedSource;
pub use error::{RegistryError, SourceError};
pub use hub::{BackendCursor, COMMAND_LANE, CommandTicket, HubSettings, ObservationHub, Viewer};
pub use policy::{Action, AllowAll, Policy, PolicyDenied, PolicyRequest};
pub use registry::{DuplicateRuntimeId, RegisteredRuntime, RuntimeRegistry};
pub use remote::{RemoteSource, Scrubber};
pub use source::{ResumePoint, RuntimeSource, SourceEnd, SourceEvents, SourceItem};
pub use view::RuntimeView;
