//! Backend-owned clients for remote Switchyard runtimes, and [`SecretToken`], the type
//! every bearer token travels in.
//!
//! The registry depends only on the [`RuntimeClient`] trait; [`HttpRuntimeClient`]
//! implements it over hyper-util's pooled client. Both clients speak plain HTTP or,
//! for an `https` base URL, TLS through rustls ([`tls`]).

mod endpoint;
pub mod error;
pub mod events;
mod http_client;
mod net_error;
mod reason;
mod refusal;
pub mod rest;
pub mod secret;
pub mod tls;
mod ws_client;

pub use endpoint::RemoteEndpoint;
pub use error::{TimeoutPhase, TlsFailure, TransportError, UnreachableKind};
pub use events::{RuntimeEventsClient, UpstreamEnd, UpstreamFrame, UpstreamStream};
pub use http_client::HttpRuntimeClient;
pub use rest::{RuntimeClient, WorkerQuery};
pub use secret::SecretToken;
pub use tls::{ClientIdentity, ClientTls, TlsSetupError};
pub use ws_client::{DEFAULT_STREAM_IDLE_TIMEOUT, WsEventsClient};

#[cfg(any(test, feature = "mock"))]
pub use events::MockRuntimeEventsClient;
#[cfg(any(test, feature = "mock"))]
pub use rest::MockRuntimeClient;
