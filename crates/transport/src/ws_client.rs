//! [`WsEventsClient`]: the WebSocket client for one remote runtime's worker event
//! streams (`GET /v1/workers/{id}/events/ws`).
//!
//! The connection is made in two bounded steps: TCP (and name resolution) and, for
//! an `https` base URL, the TLS handshake within the endpoint's `connect_timeout`,
//! then the HTTP/1.1 upgrade within its `request_timeout` (see [`handshake`]). The open stream ([`stream`]) decodes and
//! checks every frame, answers the runtime's pings, pings a silent runtime, and ends
//! when nothing at all has arrived for the client's idle timeout.
//!
//! The upgrade request goes through hyper rather than tungstenite's own client
//! handshake: tungstenite logs the whole request text (headers included) through
//! `log` at trace level, which a `log`-to-`tracing` bridge would turn into a token in
//! the logs. Once upgraded, the socket is handed to tokio-tungstenite.
//!
//! No error, `Debug` output or log line names the base URL, host, port or token.

mod handshake;
mod stream;

use std::time::{Duration, Instant};

use switchyard_protocol::WorkerId;

use crate::endpoint::{Base, ParsedEndpoint, RemoteEndpoint};
use crate::error::{TimeoutPhase, TlsFailure, TransportError};
use crate::events::{RuntimeEventsClient, UpstreamStream};
use crate::net_error;
use crate::tls;

/// How long a stream may stay silent (no frame, no pong, no ping) before it counts
/// as lost. The client pings after a third of it in silence.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// The read buffer of an event stream. tungstenite allocates it up front (128 KiB by
/// default) and zero-fills its free room before every read, so its size is paid
/// per watched worker in memory and per read in time.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Largest message or frame accepted from the runtime: snapshots carry the worker's
/// detail and the transcript's last items, so this is generous.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

// Invariant: every frame a runtime sends is taken. A snapshot is its detail (a few
// KB), its transcript and its screen, each within its budget; an input or echo
// output event is at most six bytes of JSON per byte of its text.
const _: () = {
    use switchyard_protocol::{
        MAX_INPUT_TEXT_BYTES, SNAPSHOT_SCREEN_MAX_JSON_BYTES, SNAPSHOT_TRANSCRIPT_MAX_JSON_BYTES,
    };
    const ROOM: usize = 1024 * 1024;
    assert!(
        MAX_MESSAGE_BYTES
            >= SNAPSHOT_TRANSCRIPT_MAX_JSON_BYTES + SNAPSHOT_SCREEN_MAX_JSON_BYTES + ROOM
    );
    assert!(MAX_MESSAGE_BYTES >= 6 * MAX_INPUT_TEXT_BYTES as usize + ROOM);
};

/// The route as the contract names it; used in error texts instead of the URL.
const ROUTE: &str = "GET /v1/workers/{id}/events/ws";

// Route-specific, so here rather than in `endpoint`, like the REST client's paths.
impl Base {
    /// The origin-form request target for `worker`'s event stream.
    fn target(&self, worker: &WorkerId, query: &str) -> String {
        let path = format!("/v1/workers/{}/events/ws", worker.as_str());
        self.path_and_query(&path, (!query.is_empty()).then_some(query))
    }
}

/// `cursor=&snapshot=true`, only the parts that are set.
fn events_query(cursor: Option<&str>, snapshot_after_replay: bool) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(cursor) = cursor {
        q.append_pair("cursor", cursor);
    }
    if snapshot_after_replay {
        q.append_pair("snapshot", "true");
    }
    q.finish()
}

/// Opens worker event streams on one remote runtime over WebSockets, implementing
/// [`RuntimeEventsClient`].
///
/// Each [`subscribe`](RuntimeEventsClient::subscribe) opens its own connection.
/// Cheap to clone. `Debug` shows neither the URL nor the token.
#[derive(Clone)]
pub struct WsEventsClient {
    /// The parsed base URL, `Authorization` header and timeouts.
    endpoint: ParsedEndpoint,
    /// How long an open stream may stay silent.
    idle_timeout: Duration,
}

impl std::fmt::Debug for WsEventsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.endpoint
            .debug_struct(f, "WsEventsClient")
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

impl WsEventsClient {
    /// Builds a client for `endpoint`, parsing its base URL once.
    ///
    /// The rules are the REST client's: `http://` (a `ws://` stream) or `https://`
    /// (a `wss://` stream, with [`RemoteEndpoint::tls`]) `host[:port][/prefix]` base
    /// URLs; anything else, credentials or a query in the URL, and a token that
    /// cannot travel in an HTTP header are [`TransportError::Unsupported`]. No error
    /// text repeats the URL or the token.
    pub fn new(endpoint: RemoteEndpoint) -> Result<Self, TransportError> {
        Ok(Self {
            endpoint: ParsedEndpoint::new(&endpoint)?,
            idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT,
        })
    }

    /// Sets how long an open stream may stay silent (no frame, no pong, no ping)
    /// before it ends with [`UpstreamEnd::Lost`](crate::UpstreamEnd::Lost) carrying a
    /// request-phase [`TransportError::Timeout`]. The client pings the runtime after
    /// a third of it in silence, so only a runtime that stopped answering (gone,
    /// partitioned, hung) reaches it. Default: [`DEFAULT_STREAM_IDLE_TIMEOUT`], 15 s.
    pub fn with_idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }
}

#[async_trait::async_trait]
impl RuntimeEventsClient for WsEventsClient {
    async fn subscribe(
        &self,
        worker: &WorkerId,
        cursor: Option<String>,
        snapshot_after_replay: bool,
    ) -> Result<Box<dyn UpstreamStream>, TransportError> {
        let endpoint = &self.endpoint;
        // Without a cursor every runtime sends a snapshot first (the contract):
        // it must come within the request timeout. Resumed, a runtime may have
        // nothing to say until the worker's next event (`?snapshot=true`, which
        // asks for a snapshot after the replay, is this project's own, and a
        // runtime of another make may not know it).
        let first_frame = cursor.is_none().then_some(endpoint.request_timeout);
        let target = endpoint.base.target(
            worker,
            &events_query(cursor.as_deref(), snapshot_after_replay),
        );
        let request = handshake::UpgradeRequest {
            target,
            authority: &endpoint.base.authority,
            authorization: &endpoint.authorization,
        };
        let opened = async {
            let base = &endpoint.base;
            let started = Instant::now();
            let tcp = handshake::connect(&base.host, base.port, endpoint.connect_timeout).await?;
            let log = &endpoint.tls_log;
            let ws = match &endpoint.tls {
                None => handshake::upgrade(tcp, request, endpoint.request_timeout, log).await?,
                Some(target) => {
                    let left = endpoint.connect_timeout.saturating_sub(started.elapsed());
                    let stream = tls::handshake(target, tcp, left).await.map_err(|error| {
                        let kind = error.kind;
                        if kind == TlsFailure::HandshakeTimeout {
                            // As for REST (`net_error::classify`): a timeout.
                            return net_error::timeout(
                                TimeoutPhase::Connect,
                                endpoint.connect_timeout,
                            );
                        }
                        log.failed(kind, error.detail);
                        TransportError::Tls { kind }
                    })?;
                    handshake::upgrade(stream, request, endpoint.request_timeout, log).await?
                }
            };
            log.succeeded();
            Ok::<_, TransportError>(ws)
        };
        match opened.await {
            Ok(ws) => Ok(Box::new(stream::EventStream::new(
                ws,
                worker.clone(),
                self.endpoint.token.clone(),
                self.idle_timeout,
                first_frame,
            ))),
            Err(error) => {
                // The error may repeat what the runtime wrote: never its token.
                let shown = self.endpoint.token.redact(&error.to_string());
                tracing::debug!(route = ROUTE, error = %shown, "runtime event subscription failed");
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretToken;

    fn endpoint(base_url: &str) -> RemoteEndpoint {
        RemoteEndpoint::new(
            base_url,
            SecretToken::new("t0ken").unwrap(),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn base_url_rules_match_the_rest_client() {
        let base = Base::parse("http://example.test:7701/pre/fix/").unwrap();
        assert_eq!(base.host, "example.test");
        assert_eq!(base.port, 7701);
        assert_eq!(base.prefix, "/pre/fix");
        let base = Base::parse("http://[::1]").unwrap();
        assert_eq!(base.host, "::1");
        assert_eq!(base.port, 80);
        assert!(!base.tls);
        assert_eq!(base.authority.as_str(), "[::1]");
        let base = Base::parse("https://example.test").unwrap();
        assert_eq!(base.port, 443);
        assert!(base.tls);
        for bad in [
            // https needs TLS settings, which this endpoint does not have.
            "https://example.test",
            "ws://example.test",
            "example.test:80",
            "http://user:pw@example.test",
            "http://example.test/?q=1",
            "not a url",
        ] {
            let err = WsEventsClient::new(endpoint(bad)).unwrap_err();
            assert!(matches!(err, TransportError::Unsupported { .. }), "{bad}");
            assert!(!err.to_string().contains("example"), "{err}");
        }
    }

    #[test]
    fn query_has_only_what_is_set() {
        assert_eq!(events_query(None, false), "");
        assert_eq!(events_query(None, true), "snapshot=true");
        assert_eq!(
            events_query(Some("a b&c"), true),
            "cursor=a+b%26c&snapshot=true"
        );
        let base = Base::parse("http://h/p").unwrap();
        let w = WorkerId::new("w-1").unwrap();
        assert_eq!(base.target(&w, ""), "/p/v1/workers/w-1/events/ws");
        assert_eq!(
            base.target(&w, "snapshot=true"),
            "/p/v1/workers/w-1/events/ws?snapshot=true"
        );
    }

    #[test]
    fn debug_redacts() {
        let client = WsEventsClient::new(endpoint("http://secret-host:4242/x")).unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("t0ken"));
        assert!(!text.contains("secret-host"));
        assert!(!text.contains("4242"));
    }
}
