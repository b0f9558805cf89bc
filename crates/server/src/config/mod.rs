//! Configuration of the `switchyard` binary's two subcommands: TOML files, flags and
//! environment turned into validated settings.
//!
//! - [`load_runtime_settings`] builds [`RuntimeSettings`] for `switchyard runtime`
//!   from [`RuntimeArgs`].
//! - [`load_backend_settings`] builds [`BackendSettings`] for `switchyard serve` from
//!   [`ServeArgs`].
//!
//! Every table rejects unknown keys. A [`ConfigError`] names the file and the dotted
//! key (`remote[1].token_env`) and says what to do; start-up prints it and exits with
//! [`ConfigError::exit_code`]. Tokens are read from files or environment variables
//! into [`switchyard_transport::SecretToken`] and appear in no error and no `Debug`
//! output.

mod args;
mod auth;
mod backend;
mod cert_validity;
mod error;
mod file;
mod parse;
mod profiles;
mod runtime;
mod tls;
mod token;
mod urls;
mod values;

#[cfg(test)]
pub(crate) mod tests;

pub use args::{RuntimeArgs, ServeArgs};
pub use auth::{AuthSettings, MAX_SESSION_TTL, TokenAuthSettings};
pub use backend::{
    BackendSettings, DEFAULT_BACKEND_LISTEN, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_EMBEDDED_DISPLAY_NAME, DEFAULT_EVENT_BACKLOG, DEFAULT_HEALTH_INTERVAL,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_REQUEST_TIMEOUT, DEFAULT_VIEWER_QUEUE, EmbeddedSettings,
    RemoteSettings, default_connection_threads, load_backend_settings,
};
pub use error::{ConfigError, Origin};
pub(crate) use profiles::profile_problem;
pub use runtime::{
    DEFAULT_RUNTIME_ID, DEFAULT_RUNTIME_LISTEN, MIN_LISTEN_TOKEN_CHARS, RUNTIME_TOKEN_ENV,
    RuntimeSettings, TokenSource, load_runtime_settings,
};
pub(crate) use runtime::{load_runtime_settings_sourced, weak_listen_token};
pub use tls::{NamedFile, ServerTlsFiles, ServerTlsSettings};
#[cfg(feature = "cli")]
pub(crate) use tls::{read_certificates, read_private_key};
