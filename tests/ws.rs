//! A WebSocket client for tests: connect (plain or TLS) with a bearer token, read
//! JSON frames, read the close code.

use std::net::SocketAddr;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::client::TestTls;

/// A client WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A client WebSocket over TLS.
pub type TlsWs = WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// Connects to `wss://addr<path>` with `tls`; `Err` carries the plain HTTP refusal,
/// if any.
pub async fn connect_tls(
    tls: &TestTls,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<TlsWs, Error> {
    let mut request = format!("wss://{addr}{path}").into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            value.parse().expect("a header value"),
        );
    }
    let open = async {
        let stream = tls.connect(addr).await.map_err(Error::Io)?;
        tokio_tungstenite::client_async(request, stream).await
    };
    let (ws, _) = tokio::time::timeout(crate::WAIT, open)
        .await
        .expect("connect in time")?;
    Ok(ws)
}

/// Connects to `ws://addr<path>`; `Err` carries the plain HTTP refusal, if any.
pub async fn connect(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<Ws, Error> {
    connect_with_headers(addr, path, headers)
        .await
        .map(|(ws, _)| ws)
}

/// Like [`connect`], with the headers of the `101` answer.
pub async fn connect_with_headers(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Ws, http::HeaderMap), Error> {
    let mut request = format!("ws://{addr}{path}").into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            value.parse().expect("a header value"),
        );
    }
    let (ws, response) =
        tokio::time::timeout(crate::WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect in time")?;
    Ok((ws, response.headers().clone()))
}

/// The next text frame as JSON; panics on a close, an error or a timeout.
pub async fn next_json<S>(ws: &mut WebSocketStream<S>) -> serde_json::Value
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(crate::WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the stream is open")
            .expect("no protocol error");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("a JSON frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Reads until the server closes; the close code, or `None` for a close without one
/// (or a dropped connection).
pub async fn close_code<S>(ws: &mut WebSocketStream<S>) -> Option<u16>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    close_frame(ws).await.map(|(code, _)| code)
}

/// Reads until the server closes; its close code and reason, or `None` for a close
/// without them (or a dropped connection).
pub async fn close_frame<S>(ws: &mut WebSocketStream<S>) -> Option<(u16, String)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // One deadline for the whole wait: pings must not keep it waiting for ever.
    let deadline = tokio::time::Instant::now() + crate::WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a close in time")
        {
            Some(Ok(Message::Close(frame))) => {
                return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}
