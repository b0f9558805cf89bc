//! A typed client for Switchyard's backend API (`/api`), for the `switchyard`
//! command-line client and for programs that drive a backend.
//!
//! - [`BackendClient`]: the runtime and worker calls of the REST API, over hyper-util's pooled client, with a
//!   connect and a request deadline, sending the bearer token when given.
//! - [`EventSocket`]: one worker's event WebSocket, frames decoded and checked,
//!   and (with `interactive`) the client frames of the terminal contract.
//! - [`Follower`]: a worker's events across dropped connections: it reconnects with
//!   capped, jittered backoff and resumes after the last cursor it handed out.
//! - [`SequenceSeam`]: where a transcript item or a sequenced event falls relative to
//!   what a reader has already shown (next, duplicate, or after a gap), the rule that
//!   joins a transcript read over REST to live events without loss or repetition.
//!
//! Errors ([`ClientError`]) carry a stable snake_case code ([`ClientError::code`]):
//! the backend's own codes as it answered them, plus `backend_unreachable`,
//! `backend_timeout`, `backend_protocol_error`, `backend_tls_failed`,
//! `invalid_backend_url`, `invalid_token` and `invalid_tls_config` for what happens
//! before an answer. The token lives in a [`SecretToken`] and never appears in an error, a
//! log line or `Debug` output.
//!
//! ```
//! use switchyard_client::{
//!     BackendClient, BackendUrl, Followed, Follower, Incoming, SecretToken, Timeouts, WorkerRef,
//! };
//! use switchyard_protocol::{NewWorkerRequest, RuntimeId, WorkerEvent};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # // A backend to talk to, with its embedded runtime `local`.
//! # let backend = switchyard_server::Backend::from_settings(
//! #     switchyard_server::config::BackendSettings::defaults(),
//! # )
//! # .listen("127.0.0.1:0".parse()?)
//! # .start()
//! # .await?;
//! # let backend_url = backend.url();
//! let token = std::env::var("SWITCHYARD_TOKEN").ok().and_then(SecretToken::new);
//! let url = BackendUrl::parse(&backend_url)?;
//! let client = BackendClient::new(url, token.as_ref(), Timeouts::default())?;
//!
//! let runtime = RuntimeId::new("local").expect("a valid id");
//! let request = NewWorkerRequest { profile: "echo".into(), label: None };
//! let detail = client.create_worker(&runtime, &request).await?;
//! let worker = WorkerRef::new(detail.runtime_id, detail.worker_id);
//! client.input(&worker, "hello\n").await?;
//!
//! // Live events, across dropped connections, until the worker ends.
//! let mut events = Follower::new(client.clone(), worker.clone(), false);
//! loop {
//!     match events.next().await? {
//!         Followed::Frame(Incoming::Event { event, .. }) => match *event {
//!             // First the worker as it is, with its latest transcript items.
//!             WorkerEvent::Snapshot { transcript, .. } => {
//!                 println!("{} transcript items so far", transcript.len());
//!                 client.stop(&worker).await?;
//!             }
//!             WorkerEvent::Output { text, .. } => print!("{text}"),
//!             WorkerEvent::Status { status, .. } if status.is_ended() => break,
//!             _ => {}
//!         },
//!         Followed::Disconnected(why) => eprintln!("reconnecting: {why}"),
//!         _ => {}
//!     }
//! }
//! # backend.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod endpoint;
pub mod error;
pub mod events;
mod follow;
mod http;
mod net;
mod seam;
mod worker_ref;

pub use endpoint::{BackendUrl, DEFAULT_BACKEND_URL};
pub use error::{ApiError, ClientError, TlsFailure, UnreachableKind};
pub use events::{ClientFrame, EventSocket, Incoming, StreamEnd};
pub use follow::{Followed, Follower};
pub use http::{BackendClient, Timeouts};
pub use seam::{Place, SequenceSeam};
pub use switchyard_transport::{ClientIdentity, ClientTls, SecretToken, WorkerQuery};
pub use worker_ref::{WorkerRef, WorkerRefError};
