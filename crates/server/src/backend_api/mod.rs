//! The backend API (`/api`) over hyper: routes every call through the
//! [`switchyard_registry::RuntimeRegistry`] by `runtime_id + worker_id`.

mod events;
mod readiness;
mod routes;

pub use readiness::{DRAINING_MESSAGE, Readiness};
pub use routes::{BackendApi, BackendApiSettings};
pub(crate) use routes::{drain_body, worker_query};
