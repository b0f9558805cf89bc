//! Opening an event WebSocket: TCP (and, for an `https://` backend, the TLS
//! handshake) within the connect deadline, then the HTTP/1.1 upgrade through hyper
//! within the request deadline.
//!
//! The upgrade goes through hyper rather than tungstenite's own client handshake,
//! which logs the whole request (the `Authorization` header included) at trace level.
//! A refusal before the upgrade is a plain HTTP answer: the backend's error.

use std::time::Duration;

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONNECTION, HOST, HeaderMap, HeaderValue, SEC_WEBSOCKET_ACCEPT,
    SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use switchyard_transport::tls::{TlsTarget, handshake};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::endpoint::BackendUrl;
use crate::error::{ClientError, UnreachableKind};
use crate::http::{Timeouts, refusal};
use crate::net;

/// An open WebSocket to the backend.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Largest refusal body read; error bodies are small.
const MAX_REFUSAL_BYTES: usize = 64 * 1024;

/// Largest message or frame accepted: snapshots carry a worker's detail, the
/// transcript's last items and, for a terminal, its screen.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Connects to `url` (over TLS with `tls`) and upgrades `target` (origin form, query
/// included).
pub(crate) async fn open(
    url: &BackendUrl,
    tls: Option<&TlsTarget>,
    target: &str,
    authorization: Option<&HeaderValue>,
    timeouts: Timeouts,
) -> Result<Socket, ClientError> {
    let started = Instant::now();
    let tcp = connect(&url.host, url.port, timeouts.connect).await?;
    match tls {
        None => upgrade(tcp, url, target, authorization, timeouts.request).await,
        Some(tls) => {
            let left = timeouts.connect.saturating_sub(started.elapsed());
            let stream = handshake(tls, tcp, left).await.map_err(|error| {
                tracing::debug!(kind = error.kind.as_str(), detail = %error.detail, "TLS with the backend failed");
                ClientError::Tls { kind: error.kind }
            })?;
            upgrade(stream, url, target, authorization, timeouts.request).await
        }
    }
}

/// Resolves `host` and connects to the first address that accepts, all within
/// `limit`.
async fn connect(host: &str, port: u16, limit: Duration) -> Result<TcpStream, ClientError> {
    let attempt = async {
        let addrs = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| net::unreachable(UnreachableKind::Dns))?;
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
            Some(e) => net::connect_error(&e, limit),
            None => net::unreachable(UnreachableKind::Dns),
        })
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(net::timeout(limit)),
    }
}

/// Aborts the hyper connection task when the handshake is given up.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends the upgrade request on `io` (TCP, or TLS over it) and waits for
/// `101 Switching Protocols`.
async fn upgrade<IO>(
    io: IO,
    url: &BackendUrl,
    target: &str,
    authorization: Option<&HeaderValue>,
    limit: Duration,
) -> Result<Socket, ClientError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let key = generate_key();
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(target)
        .header(HOST, url.authority.as_str())
        .header(CONNECTION, HeaderValue::from_static("Upgrade"))
        .header(UPGRADE, HeaderValue::from_static("websocket"))
        .header(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"))
        .header(SEC_WEBSOCKET_KEY, key.as_str());
    if let Some(authorization) = authorization {
        builder = builder.header(AUTHORIZATION, authorization.clone());
    }
    let request = builder
        .body(Empty::<Bytes>::new())
        .map_err(|_| ClientError::Protocol {
            status: None,
            reason: "could not build a valid upgrade request".into(),
        })?;
    let exchange = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| net::classify(&e, net::timeout(limit)))?;
        let _driver = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.with_upgrades().await;
        }));
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| net::classify(&e, net::timeout(limit)))?;
        let status = response.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            let body = Limited::new(response.into_body(), MAX_REFUSAL_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(refusal(status.as_u16(), &body));
        }
        check_accept(response.headers(), &key)?;
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|e| net::classify(&e, net::timeout(limit)))?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        Ok(
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, Some(config))
                .await,
        )
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(result) => result,
        Err(_) => Err(net::timeout(limit)),
    }
}

/// A `101` must confirm the upgrade to WebSocket and prove it read our key.
fn check_accept(headers: &HeaderMap, key: &str) -> Result<(), ClientError> {
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
        Err(ClientError::Protocol {
            status: None,
            reason: "the answer to the WebSocket upgrade is not a valid WebSocket handshake".into(),
        })
    }
}
