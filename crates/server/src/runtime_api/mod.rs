//! The Runtime API (`/v1`) over hyper: routing, auth and the mapping of runtime
//! errors onto the contract's answers. No worker logic lives here; every handler
//! delegates to [`switchyard_runtime::Runtime`]. A `HEAD` is answered as its `GET`,
//! head only, and never upgrades to an event stream (see [`crate::http::Handler`]).

mod events;
mod not_browsers;
pub(crate) mod routes;

pub use routes::{RuntimeApi, RuntimeApiSettings};
