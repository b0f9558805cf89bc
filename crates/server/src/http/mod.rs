//! HTTP plumbing shared by both surfaces: bodies, responses and errors, query
//! strings, bearer auth, the accept loop with graceful shutdown and optional TLS,
//! request logging, and WebSocket sessions.

pub mod auth;
pub mod body;
mod coalesce;
mod cores;
pub mod error;
pub mod limit;
pub mod linger;
pub mod metrics;
mod parse_error;
pub mod query;
pub mod response;
pub mod router;
mod self_wake;
pub mod serve;
mod shutdown;
mod timer;
pub mod tls;
pub mod ws;

pub use error::ApiError;
pub use limit::{ConnectionLimit, DEFAULT_MAX_CONNECTIONS};
pub use metrics::{HttpMetrics, MatchedRoute};
pub use response::{Body, Response};
pub use serve::{
    Answer, Handler, RequestContext, RequestId, ServeOptions, ServerHandle, serve, serve_with,
    serve_with_tls,
};
pub use shutdown::Shutdown;
pub use tls::ServerTls;
