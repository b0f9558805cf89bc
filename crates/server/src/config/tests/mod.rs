//! Tests of the configuration layer, with temporary files and a fake environment.

mod auth_settings;
mod backend_settings;
mod errors;
mod examples;
mod runtime_settings;
pub(crate) mod support;
mod tls;
