//! TLS on a listener: [`ServerTls`], the rustls configuration a listener serves
//! with (swappable while it runs: a reload affects new connections only), and
//! [`accept`], the bounded handshake of one connection.
//!
//! A connection whose first byte is not a TLS handshake record is a client speaking
//! plain HTTP to an HTTPS port: it gets a short plain-text `400` saying so, never
//! the API. A failed handshake is logged at DEBUG and closed gently (the alert
//! flushed, then a lingering close), so the client reads why rather than a reset.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use switchyard_protocol::{ErrorCode, ErrorDetail, HTTPS_ONLY_MESSAGE};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::linger::{linger_close, raw_error_response};

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a refused connection is drained before it is closed, so the peer reads
/// the alert or the `400` before the socket goes away.
const LINGER: Duration = Duration::from_secs(1);

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a plain-HTTP client gets on an HTTPS port: `400 invalid_request` with
/// [`HTTPS_ONLY_MESSAGE`], then the connection closes.
fn plain_http_refusal() -> Vec<u8> {
    raw_error_response(
        "400 Bad Request",
        ErrorDetail::new(ErrorCode::InvalidRequest, HTTPS_ONLY_MESSAGE),
        &[],
    )
}

/// The TLS configuration of a listener, shared by its accept loop and whoever may
/// replace it (a reload). Cheap to clone; clones share the configuration.
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Serves with `config`.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        Self {
            current: Arc::new(RwLock::new(config)),
        }
    }

    /// Serves new connections with `config` from now on; open ones keep theirs.
    pub fn replace(&self, config: Arc<ServerConfig>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// The configuration new connections get.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Runs the server side of the TLS handshake on `tcp` within [`HANDSHAKE_TIMEOUT`].
/// `None` when the client does not complete it (refused, failed, plain HTTP, too
/// slow); the connection has then been answered or closed and logged at DEBUG.
pub async fn accept(
    tcp: TcpStream,
    tls: &ServerTls,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let config = tls.current();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(tcp, config)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(Refused::PlainHttp(mut tcp))) => {
            tracing::debug!(%peer, "plain HTTP on the HTTPS port; answered 400");
            let _ = tcp.write_all(&plain_http_refusal()).await;
            linger_close(tcp, LINGER).await;
            None
        }
        Ok(Err(Refused::Failed(error, tcp))) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            if let Some(tcp) = tcp {
                linger_close(tcp, LINGER).await;
            }
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake not completed in time");
            None
        }
    }
}

/// Why a handshake did not give a stream.
enum Refused {
    /// The client spoke plain HTTP (or anything but TLS).
    PlainHttp(TcpStream),
    /// The handshake failed; the socket, when it is still there.
    Failed(std::io::Error, Option<TcpStream>),
}

async fn handshake(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
) -> Result<TlsStream<TcpStream>, Refused> {
    let mut first = [0u8; 1];
    match tcp.peek(&mut first).await {
        Ok(0) => {
            return Err(Refused::Failed(
                std::io::ErrorKind::UnexpectedEof.into(),
                None,
            ));
        }
        Ok(_) if first[0] != TLS_HANDSHAKE_RECORD => return Err(Refused::PlainHttp(tcp)),
        Ok(_) => {}
        Err(error) => return Err(Refused::Failed(error, None)),
    }
    tokio_rustls::TlsAcceptor::from(config)
        .accept(tcp)
        .into_fallible()
        .await
        .map_err(|(error, tcp)| Refused::Failed(error, Some(tcp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_http_refusal_is_well_formed() {
        let refusal = plain_http_refusal();
        let text = std::str::from_utf8(&refusal).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "invalid_request");
        assert_eq!(json["error"]["message"], HTTPS_ONLY_MESSAGE);
    }
}
