//! Opening a stream: TCP within `connect_timeout`, then the HTTP/1.1 upgrade within
//! `request_timeout`, and mapping every failure to a [`TransportError`].
//!
//! A refusal known before the upgrade is a plain HTTP answer, mapped like the REST
//! client maps one (401 as `AuthRejected`, contract error bodies as `Runtime`, a
//! missing route as `Unsupported`). Nothing here formats a URL, an address, a header
//! or a hyper error.

use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONNECTION, HOST, HeaderMap, HeaderValue, SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::uri::Authority;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::{MAX_MESSAGE_BYTES, READ_BUFFER_BYTES, ROUTE};
use crate::error::{TimeoutPhase, TransportError, UnreachableKind};
use crate::net_error::{self, unreachable};
use crate::refusal;
use crate::tls::TlsLog;

/// An open WebSocket to the runtime.
pub(super) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Largest refusal body read; error bodies are small.
const MAX_REFUSAL_BYTES: usize = 64 * 1024;

/// The `Protocol` reason for an answer to the upgrade that is not HTTP/1.1.
const NOT_HTTP: &str = "the answer to the WebSocket upgrade is not valid HTTP/1.1";

/// What the upgrade request carries.
pub(super) struct UpgradeRequest<'a> {
    /// Origin-form path and query.
    pub(super) target: String,
    /// `host[:port]` for the `Host` header.
    pub(super) authority: &'a Authority,
    /// `Bearer <token>`, marked sensitive.
    pub(super) authorization: &'a HeaderValue,
}

/// Resolves `host` and connects to the first address that accepts, all within
/// `connect_timeout`.
pub(super) async fn connect(
    host: &str,
    port: u16,
    connect_timeout: Duration,
) -> Result<TcpStream, TransportError> {
    let attempt = async {
        let addrs = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| unreachable(UnreachableKind::Dns))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return Ok(tcp);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => net_error::connect_error(&e, connect_timeout),
            // The name resolved to nothing.
            None => unreachable(UnreachableKind::Dns),
        })
    };
    match tokio::time::timeout(connect_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(net_error::timeout(TimeoutPhase::Connect, connect_timeout)),
    }
}

/// Aborts the hyper connection task when the handshake is given up (timeout,
/// refusal); after a successful upgrade the task has already finished.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends the upgrade request on `io` (TCP, or TLS over it) and waits for
/// `101 Switching Protocols`, all within `request_timeout`. TLS failures found on
/// the way (a client certificate refused after the handshake) go to `tls_log`.
pub(super) async fn upgrade<IO>(
    io: IO,
    request: UpgradeRequest<'_>,
    request_timeout: Duration,
    tls_log: &TlsLog,
) -> Result<Socket, TransportError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let key = generate_key();
    let http_request = Request::builder()
        .method(Method::GET)
        .uri(request.target.as_str())
        .header(HOST, request.authority.as_str())
        .header(CONNECTION, HeaderValue::from_static("Upgrade"))
        .header(UPGRADE, HeaderValue::from_static("websocket"))
        .header(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"))
        .header(SEC_WEBSOCKET_KEY, key.as_str())
        .header(AUTHORIZATION, request.authorization.clone())
        .body(Empty::<Bytes>::new())
        .map_err(|_| TransportError::Protocol {
            reason: "could not build a valid upgrade request".into(),
        })?;

    let exchange = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| exchange_error(&e, request_timeout, tls_log))?;
        let _driver = AbortOnDrop(tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::trace!(
                    closed = error.is_closed(),
                    "runtime upgrade connection ended with an error"
                );
            }
        }));
        let response = sender
            .send_request(http_request)
            .await
            .map_err(|e| exchange_error(&e, request_timeout, tls_log))?;
        let status = response.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            let body = Limited::new(response.into_body(), MAX_REFUSAL_BYTES)
                .collect()
                .await
                .map_err(|e| body_error(&*e, request_timeout))?
                .to_bytes();
            return Err(refusal(status, &body));
        }
        check_accept(response.headers(), &key)?;
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|e| exchange_error(&e, request_timeout, tls_log))?;
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        Ok(
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, Some(config))
                .await,
        )
    };
    match tokio::time::timeout(request_timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(net_error::timeout(TimeoutPhase::Request, request_timeout)),
    }
}

/// A `101` must confirm the upgrade to WebSocket and prove it read our key.
fn check_accept(headers: &HeaderMap, key: &str) -> Result<(), TransportError> {
    let upgrade_ok = headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    let accept_ok = headers
        .get(SEC_WEBSOCKET_ACCEPT)
        .is_some_and(|v| v.as_bytes() == derive_accept_key(key.as_bytes()).as_bytes());
    if upgrade_ok && accept_ok {
        Ok(())
    } else {
        Err(TransportError::Protocol {
            reason: "the answer to the WebSocket upgrade is not a valid WebSocket handshake".into(),
        })
    }
}

/// Maps a non-101 answer the way the REST client maps a non-2xx one (see
/// [`crate::refusal`]), after one check of its own: an answer that is neither a client nor
/// a server error (a 2xx or 3xx) is a protocol error.
///
/// So 401 is `AuthRejected`; 501 is `Unsupported`; 404/405 carrying
/// `route_not_found`/`method_not_allowed` or without a contract error body is a
/// protocol error about the base URL (every runtime serves the events route); an
/// error status with a contract error body (`404 worker_not_found`, `400
/// invalid_cursor`, ...) is the runtime's own error, passed through; an error without
/// a contract body is a protocol error.
pub(super) fn refusal(status: StatusCode, body: &[u8]) -> TransportError {
    if !status.is_client_error() && !status.is_server_error() {
        return TransportError::Protocol {
            reason: format!(
                "expected 101 Switching Protocols to the WebSocket upgrade, got {}",
                status.as_u16()
            ),
        };
    }
    refusal::transport_error(ROUTE, refusal::RouteKind::EveryRuntime, status, body)
}

/// Maps a failure while reading the refusal's body.
fn body_error(
    error: &(dyn StdError + Send + Sync + 'static),
    request_timeout: Duration,
) -> TransportError {
    let too_large = || {
        format!(
            "the refusal of the WebSocket upgrade has a body over {} KiB",
            MAX_REFUSAL_BYTES / 1024
        )
    };
    net_error::body_error(error, too_large, request_timeout, NOT_HTTP)
}

/// Maps a failure during the upgrade exchange (see [`net_error::classify`]); the
/// connection is already open, so a socket timeout counts against `request_timeout`.
/// A TLS failure's detail goes to `tls_log`.
fn exchange_error(
    error: &(dyn StdError + 'static),
    request_timeout: Duration,
    tls_log: &TlsLog,
) -> TransportError {
    let timed_out = net_error::timeout(TimeoutPhase::Request, request_timeout);
    let mapped = net_error::classify(error, timed_out, NOT_HTTP);
    tls_log.note(error, &mapped);
    mapped
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(code: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({"error": {"code": code, "message": "m"}})).unwrap()
    }

    #[test]
    fn refusals_map_like_the_rest_client() {
        assert_eq!(
            refusal(StatusCode::UNAUTHORIZED, b""),
            TransportError::AuthRejected
        );
        assert!(matches!(
            refusal(StatusCode::NOT_FOUND, &body("worker_not_found")),
            TransportError::Runtime { status: 404, .. }
        ));
        assert!(matches!(
            refusal(StatusCode::BAD_REQUEST, &body("invalid_cursor")),
            TransportError::Runtime { status: 400, .. }
        ));
        // Every runtime serves the events route: a server without it is not one (or
        // the base URL's path is wrong). A 501 is the runtime's own word.
        assert!(matches!(
            refusal(StatusCode::NOT_IMPLEMENTED, &[]),
            TransportError::Unsupported { .. }
        ));
        for (status, body) in [
            (StatusCode::NOT_FOUND, body("route_not_found")),
            (StatusCode::METHOD_NOT_ALLOWED, body("method_not_allowed")),
            (StatusCode::NOT_FOUND, b"<html>".to_vec()),
            (StatusCode::OK, body("internal")),
            (StatusCode::FOUND, Vec::new()),
            (StatusCode::INTERNAL_SERVER_ERROR, b"oops".to_vec()),
        ] {
            assert!(
                matches!(refusal(status, &body), TransportError::Protocol { .. }),
                "{status}"
            );
        }
    }
}
