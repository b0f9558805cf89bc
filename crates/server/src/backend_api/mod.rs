//! The backend API (`/api`) over hyper: browser defences, authentication, sessions
//! and audit lines in front of routing every call through the
//! [`switchyard_registry::RuntimeRegistry`] by `runtime_id + worker_id`, with the
//! caller's identity.

pub mod audit;
pub mod browser;
mod events;
mod readiness;
mod reload;
pub(crate) mod routes;
mod session;

pub use browser::{AllowedHosts, AllowedOrigins};
pub use readiness::{DRAINING_MESSAGE, DrainPeriod, Readiness};
pub use routes::{BackendApi, BackendApiSettings, BodyLimit};
pub(crate) use routes::{drain_body, worker_query};
