//! A tiny HTTP client for tests: one fresh connection per request, JSON decoded.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
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

impl Api {
    /// Calls `method path` with an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = Vec::new();
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map(|b| b.to_string().into_bytes());
        request(self.addr, method, path, body, &headers).await
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
