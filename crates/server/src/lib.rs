//! Switchyard's servers: the **backend** (one API for browsers, terminal UIs and
//! scripts, under `/api`, in front of many worker runtimes) and the standalone
//! **runtime server** (one runtime behind the Runtime API, under `/v1`), their
//! configuration, and the `switchyard` command line.
//!
//! As a library, start from one of two builders:
//!
//! - [`Backend`]: from a configuration file ([`Backend::from_config_file`]), from
//!   settings, or from nothing ([`Backend::builder`]); add runtimes of any kind
//!   ([`BackendBuilder::runtime`] takes any
//!   [`RuntimeSource`](switchyard_registry::RuntimeSource)), profiles with custom
//!   drivers for the embedded runtime ([`BackendBuilder::embedded_profile`]), a
//!   [`Policy`](switchyard_registry::Policy), the listener, TLS and authentication;
//!   then [`BackendBuilder::serve`] until a shutdown future resolves, or
//!   [`BackendBuilder::start`] for a [`RunningBackend`] to stop yourself.
//!   `switchyard serve` is this builder.
//! - [`RuntimeServer`]: the same for `switchyard runtime`, with profiles of your own
//!   ([`RuntimeServerBuilder::profile`]).
//!
//! Logs (one line per request, `audit` lines for commands) go through `tracing`;
//! the library installs no subscriber, so install one (`tracing-subscriber`), or
//! call [`logging::init`] for the binary's own, to see them. Programs that serve
//! `process` or `pty` profiles start a [`reaper`] so that their workers do not
//! outlive a crash. The default `cli` feature builds the `switchyard` binary's
//! command line (clap, crossterm, mimalloc, unicode-width); a program that only
//! embeds the servers turns default features off.
//!
//! ```
//! use std::sync::Arc;
//! use switchyard_registry::{Action, PolicyDenied, PolicyRequest, WithRule};
//! use switchyard_runtime::{EchoDriver, Profile};
//! use switchyard_server::{Backend, RuntimeServer};
//!
//! /// Nobody deletes workers here.
//! fn no_deletes(request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
//!     if request.action == Action::Delete {
//!         return Err(PolicyDenied("workers are kept here; stop them instead".into()));
//!     }
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = Backend::from_settings(switchyard_server::config::BackendSettings::defaults())
//!     .listen("127.0.0.1:0".parse()?)
//!     .embedded_profile("echo-fast", Profile::custom(EchoDriver::default()))
//!     // The rule goes in front of the policy the auth settings pick; grants, roles
//!     // and worker ownership stay that policy's.
//!     .wrap_policy(|inner| Arc::new(WithRule::new(inner, no_deletes)))
//!     .start()
//!     .await?;
//! println!("serving on {}", backend.url());
//! backend.shutdown().await;
//!
//! // A runtime server of your own, for backends to reach as a remote.
//! let runtime = RuntimeServer::builder().listen("127.0.0.1:0".parse()?).start().await?;
//! runtime.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Below the builders, and public for programs that assemble a server their own way
//! (and for this crate's tests): [`config`] (files, flags and environment into
//! validated settings), [`backend_api`] and [`runtime_api`] (the two surfaces as
//! hyper services), [`http`] (the accept loop, TLS, bodies, WebSockets), [`auth`]
//! (client authentication and sessions) and [`console`] (the web console's files).

pub mod auth;
pub mod backend;
pub mod backend_api;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
#[doc(hidden)]
pub mod commands;
pub mod config;
pub mod console;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod open_files;
pub mod openapi;
#[cfg(test)]
mod properties;
pub mod reaper;
pub mod reload;
pub mod runtime_api;
pub mod runtime_server;
mod start_error;

pub use backend::{Backend, BackendBuilder};
pub use commands::runtime::RunningRuntime;
pub use commands::serve::RunningBackend;
pub use commands::serve::remote_runtime;
pub use runtime_server::{RuntimeServer, RuntimeServerBuilder};
pub use start_error::StartError;
