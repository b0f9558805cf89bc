//! Opening connections to a runtime: TCP, then (for an `https` base URL) the TLS
//! handshake, both within the endpoint's connect timeout.
//!
//! [`handshake`] is shared by both clients; [`HttpsConnector`] is the REST client's
//! connector, hyper-util's [`HttpConnector`] for TCP with TLS on top, so the pooled
//! client keeps reusing connections exactly as it does over plain HTTP: one
//! handshake serves every request sent on a kept-alive connection. Both are public
//! so that the backend API's client (`switchyard-client`) speaks TLS the same way.
//! A connection is a [`Stream`] (plain or TLS, tokio I/O, which the backend's own
//! client reads and writes directly), handed to hyper as a [`Conn`].

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::failure::classify_rustls;
use crate::error::TlsFailure;

/// A TLS handshake that failed or timed out, already classified. `Display` is fixed
/// text; `detail` (rustls' words, which may name a host) is for the operator's log.
#[derive(Debug, thiserror::Error)]
#[error("the TLS handshake failed ({kind})")]
pub struct TlsConnectError {
    /// What failed.
    pub kind: TlsFailure,
    /// rustls' or the socket's description, for the log only.
    pub detail: String,
}

/// What a TLS connection needs: the rustls configuration and the name to verify
/// ([`ClientTls::target`](super::ClientTls::target)).
#[derive(Clone)]
pub struct TlsTarget {
    /// tokio-rustls' connector over the endpoint's rustls configuration.
    pub(crate) connector: TlsConnector,
    /// The DNS name or IP address the certificate must be valid for.
    pub(crate) server_name: ServerName<'static>,
}

/// Runs the TLS handshake on `io` within `budget`. Any failure is a
/// [`TlsConnectError`]: the TCP connection was made, so a reset or an early close
/// here is still a failed handshake (a peer that does not speak TLS, say).
pub async fn handshake<IO>(
    target: &TlsTarget,
    io: IO,
    budget: Duration,
) -> Result<TlsStream<IO>, TlsConnectError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let connect = target.connector.connect(target.server_name.clone(), io);
    match tokio::time::timeout(budget, connect).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(
            match error
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
            {
                Some(rustls) => TlsConnectError {
                    kind: classify_rustls(rustls),
                    detail: rustls.to_string(),
                },
                None => TlsConnectError {
                    kind: TlsFailure::HandshakeFailed,
                    detail: format!("the connection failed during the handshake: {error}"),
                },
            },
        ),
        Err(_) => Err(TlsConnectError {
            kind: TlsFailure::HandshakeTimeout,
            detail: format!("no TLS handshake within {} ms", budget.as_millis()),
        }),
    }
}

/// A hyper-util connector: TCP through [`HttpConnector`] (bounded by its own connect
/// timeout), then TLS when the endpoint has it, within what is left of the connect
/// timeout. TLS is decided once, by the endpoint, not by each URI's scheme.
#[derive(Clone)]
pub struct HttpsConnector {
    /// TCP: resolution, connect timeout, no Nagle delay.
    http: HttpConnector,
    /// TLS, for an `https` base URL.
    tls: Option<TlsTarget>,
    /// The whole connect budget, TCP and TLS together.
    connect_timeout: Duration,
}

impl HttpsConnector {
    /// A connector bounded by `connect_timeout`, speaking TLS when `tls` is given.
    pub fn new(connect_timeout: Duration, tls: Option<TlsTarget>) -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        // The scheme says nothing here: TLS is decided by the endpoint, once.
        http.enforce_http(false);
        Self {
            http,
            tls,
            connect_timeout,
        }
    }
}

impl tower_service::Service<Uri> for HttpsConnector {
    type Response = Conn;
    type Error = Box<dyn StdError + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let started = Instant::now();
        let tcp = self.http.call(uri);
        let tls = self.tls.clone();
        let budget = self.connect_timeout;
        Box::pin(async move {
            let tcp = tcp.await?;
            let Some(tls) = tls else {
                return Ok(TokioIo::new(Stream::Plain(tcp.into_inner())));
            };
            let left = budget.saturating_sub(started.elapsed());
            let stream = handshake(&tls, tcp.into_inner(), left).await?;
            Ok(TokioIo::new(Stream::Tls(Box::new(stream))))
        })
    }
}

/// A connection to a runtime, plain or TLS, as tokio I/O (the backend's own
/// client reads and writes it directly).
#[non_exhaustive]
pub enum Stream {
    /// Plain TCP (an `http` base URL).
    Plain(TcpStream),
    /// TLS over TCP (an `https` base URL).
    Tls(Box<TlsStream<TcpStream>>),
}

/// A connection made by [`HttpsConnector`]: a [`Stream`] as hyper I/O.
pub type Conn = TokioIo<Stream>;

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
}
