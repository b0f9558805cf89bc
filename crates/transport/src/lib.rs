//! Backend-owned clients for remote Switchyard runtimes, and [`SecretToken`], the type
//! every bearer token travels in.
//!
//! The registry depends only on the [`RuntimeClient`] and [`RuntimeEventsClient`]
//! traits; [`HttpRuntimeClient`] (REST, over hyper-util's pooled client) and
//! [`WsEventsClient`] (one WebSocket per subscription) implement them. Both speak
//! plain HTTP or, for an `https` base URL, TLS through rustls ([`tls`]). Every
//! failure is a [`TransportError`] whose text never holds the runtime's URL, host,
//! port or token.
//!
//! ```
//! use std::time::Duration;
//! use switchyard_transport::{
//!     HttpRuntimeClient, RemoteEndpoint, RuntimeClient, SecretToken, TransportError,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let token = SecretToken::new("s3cret").expect("not empty");
//! assert_eq!(token.to_string(), "[redacted]");
//!
//! // A port nobody listens on.
//! let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
//! let endpoint = RemoteEndpoint::new(
//!     format!("http://127.0.0.1:{port}"),
//!     token,
//!     Duration::from_secs(1),
//!     Duration::from_secs(5),
//! );
//! let client = HttpRuntimeClient::new(endpoint).expect("a valid base URL");
//! let error = client.info().await.unwrap_err();
//! assert!(matches!(error, TransportError::Unreachable { .. }));
//! assert!(!error.to_string().contains(&port.to_string()), "{error}");
//! # }
//! ```

pub mod deadline;
mod endpoint;
pub mod error;
pub mod events;
mod http_client;
mod lane;
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
pub use lane::set_thread_lane;
pub use rest::{RuntimeClient, WorkerQuery, decode_answer};
pub use secret::SecretToken;
pub use tls::{ClientIdentity, ClientTls, TlsSetupError};
pub use ws_client::{DEFAULT_STREAM_IDLE_TIMEOUT, WsEventsClient};

#[cfg(any(test, feature = "mock"))]
pub use events::MockRuntimeEventsClient;
#[cfg(any(test, feature = "mock"))]
pub use rest::MockRuntimeClient;
