//! Backend-owned clients for remote Switchyard runtimes, and [`SecretToken`], the type
//! every bearer token travels in.
//!
//! The registry depends only on the [`RuntimeClient`] trait; [`HttpRuntimeClient`]
//! implements it over hyper-util's pooled client.

pub mod error;
pub mod events;
mod http_client;
pub mod rest;
pub mod secret;
mod ws_client;

pub use error::{TimeoutPhase, TransportError, UnreachableKind};
pub use events::{RuntimeEventsClient, UpstreamEnd, UpstreamFrame, UpstreamStream};
pub use http_client::{HttpRuntimeClient, RemoteEndpoint, STOP_EXTRA_TIME};
pub use rest::{RuntimeClient, WorkerQuery};
pub use secret::SecretToken;
pub use ws_client::WsEventsClient;

#[cfg(any(test, feature = "mock"))]
pub use events::MockRuntimeEventsClient;
#[cfg(any(test, feature = "mock"))]
pub use rest::MockRuntimeClient;
