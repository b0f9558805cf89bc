//! HTTP plumbing shared by both surfaces: bodies, responses and errors, query
//! strings, bearer auth, the accept loop with graceful shutdown and optional TLS,
//! request logging, and WebSocket sessions.

pub mod auth;
pub mod body;
pub mod error;
pub mod query;
pub mod response;
pub mod router;
pub mod serve;
pub mod tls;
pub mod ws;

pub use error::ApiError;
pub use response::{Body, Response};
pub use serve::{Handler, RequestContext, ServerHandle, Shutdown, serve, serve_with_tls};
pub use tls::ServerTls;
