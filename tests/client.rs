//! A tiny HTTP client for tests: one fresh connection per request (plain TCP, or TLS
//! trusting a test CA), JSON decoded.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A decoded answer.
#[derive(Debug)]
pub struct TestResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub raw: Bytes,
    /// The body as JSON (`Null` when empty or not JSON).
    pub json: serde_json::Value,
}

impl TestResponse {
    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.json["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// TLS towards a test server: what to trust, what to present, the name to verify.
#[derive(Clone)]
pub struct TestTls {
    /// The client configuration (see [`crate::certs::client_config`]).
    pub config: Arc<rustls::ClientConfig>,
    /// The name the server's certificate must be valid for.
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for TestTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestTls")
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TestTls {
    /// Opens a TCP connection to `addr` and runs the TLS handshake on it.
    pub async fn connect(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(self.server_name.clone(), tcp)
            .await
    }
}

/// Sends one request on a fresh connection and reads the whole answer. `Host` is the
/// address unless `headers` name one.
pub async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> TestResponse {
    let stream = TcpStream::connect(addr).await.expect("connect");
    request_on(stream, addr, method, path, body, headers).await
}

/// Sends one request on a fresh TLS connection and reads the whole answer. `Host` is
/// the address unless `headers` name one.
pub async fn request_tls(
    tls: &TestTls,
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> TestResponse {
    let stream = tokio::time::timeout(crate::WAIT, tls.connect(addr))
        .await
        .expect("a TLS handshake in time")
        .expect("a TLS handshake");
    request_on(stream, addr, method, path, body, headers).await
}

/// Sends one request on `stream` and reads the whole answer.
async fn request_on<S>(
    stream: S,
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> TestResponse
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut builder = http::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        builder = builder.header("host", addr.to_string());
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("a valid request");
    let response = tokio::time::timeout(crate::WAIT, sender.send_request(request))
        .await
        .expect("an answer in time")
        .expect("an answer");
    let status = response.status();
    let headers = response.headers().clone();
    let raw = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let json = serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null);
    TestResponse {
        status,
        headers,
        raw,
        json,
    }
}

/// A JSON API at one address with an optional bearer token.
#[derive(Debug, Clone)]
pub struct Api {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `Authorization: Bearer` value, if any.
    pub token: Option<String>,
}

/// The `authorization` (from `token`) and `content-type` (when there is a body)
/// headers of a JSON call, and the body's bytes.
fn json_call(
    token: Option<&String>,
    body: Option<serde_json::Value>,
) -> (Vec<(&'static str, String)>, Option<Vec<u8>>) {
    let mut headers = Vec::new();
    if let Some(token) = token {
        headers.push(("authorization", format!("Bearer {token}")));
    }
    if body.is_some() {
        headers.push(("content-type", "application/json".to_owned()));
    }
    (headers, body.map(|b| b.to_string().into_bytes()))
}

impl Api {
    /// Calls `method path` with an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        let (headers, body) = json_call(self.token.as_ref(), body);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        request(self.addr, method, path, body, &headers).await
    }

    /// The same API over TLS with `tls`.
    pub fn with_tls(&self, tls: TestTls) -> TlsApi {
        TlsApi {
            addr: self.addr,
            token: self.token.clone(),
            tls,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> TestResponse {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// A JSON API served over TLS, with an optional bearer token.
#[derive(Debug, Clone)]
pub struct TlsApi {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `Authorization: Bearer` value, if any.
    pub token: Option<String>,
    /// What to trust and the name to verify.
    pub tls: TestTls,
}

impl TlsApi {
    /// Calls `method path` with an optional JSON body, on a fresh TLS connection.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        let (headers, body) = json_call(self.token.as_ref(), body);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        request_tls(&self.tls, self.addr, method, path, body, &headers).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> TestResponse {
        self.call(Method::POST, path, Some(body)).await
    }
}
