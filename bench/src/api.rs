//! The ways a benchmark reaches a worker ([`Target`]), each as an [`Endpoint`],
//! and a small JSON-over-HTTP client ([`Http`]) for set-up calls and for the requests
//! whose latency the benchmark times itself.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::Result;

/// How a request reaches the runtime that runs the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// Straight to the remote runtime's `/v1` API with its bearer token.
    Direct,
    /// Through nginx, which adds the bearer token, to the remote runtime.
    Nginx,
    /// Through the backend's `/api` to the remote runtime.
    Backend,
    /// Through the backend's `/api` to its embedded runtime.
    Embedded,
    /// The same through a second backend with client authentication on (`[auth]`, a
    /// bearer token on every request).
    EmbeddedAuth,
    /// Through nginx to a remote runtime that serves HTTPS (`proxy_ssl_*`, upstream
    /// keep-alive).
    NginxTls,
    /// Through the backend's `/api` to a remote runtime over TLS.
    BackendTls,
}

/// The runtime a target's requests end up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// The remote runtime serving plain HTTP.
    Remote,
    /// The remote runtime serving HTTPS.
    RemoteTls,
    /// The backend's embedded runtime.
    Embedded,
    /// The embedded runtime of the backend with auth on.
    EmbeddedAuth,
}

impl Target {
    /// The targets of scenarios 1 and 2, in table order (scenario 2 leaves
    /// [`Target::EmbeddedAuth`] out).
    pub const ALL: [Target; 5] = [
        Target::Direct,
        Target::Nginx,
        Target::Backend,
        Target::Embedded,
        Target::EmbeddedAuth,
    ];

    /// The targets of scenario 5 (the TLS hop), in table order: each proxy to the
    /// remote over plain HTTP and over TLS.
    pub const TLS_HOP: [Target; 4] = [
        Target::Nginx,
        Target::NginxTls,
        Target::Backend,
        Target::BackendTls,
    ];

    /// The name used in tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Nginx => "nginx",
            Target::Backend => "backend→remote",
            Target::Embedded => "backend→embedded",
            Target::EmbeddedAuth => "backend→embedded, auth",
            Target::NginxTls => "nginx, TLS upstream",
            Target::BackendTls => "backend→remote over TLS",
        }
    }

    /// The colour of this target's series in plots.
    pub fn colour(self) -> &'static str {
        match self {
            Target::Direct => "#4c72b0",
            Target::Nginx => "#55a868",
            Target::Backend => "#c44e52",
            Target::Embedded => "#8172b2",
            Target::EmbeddedAuth => "#dd8452",
            Target::NginxTls => "#2d6a3e",
            Target::BackendTls => "#7a2226",
        }
    }

    /// The runtime its requests end up on.
    pub fn upstream(self) -> Upstream {
        match self {
            Target::Direct | Target::Nginx | Target::Backend => Upstream::Remote,
            Target::NginxTls | Target::BackendTls => Upstream::RemoteTls,
            Target::Embedded => Upstream::Embedded,
            Target::EmbeddedAuth => Upstream::EmbeddedAuth,
        }
    }
}

/// Where a target's worker routes live.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Which target this is.
    pub target: Target,
    /// The listening address of the process the client talks to.
    pub addr: SocketAddr,
    /// The path in front of `/workers`: `/v1` or `/api/runtimes/{rt}`.
    pub prefix: String,
    /// The bearer token to send, if the client must send one.
    pub token: Option<String>,
}

impl Endpoint {
    /// The runtime's own API, with its token.
    pub fn runtime(target: Target, addr: SocketAddr, token: Option<&str>) -> Self {
        Self {
            target,
            addr,
            prefix: "/v1".to_owned(),
            token: token.map(str::to_owned),
        }
    }

    /// The backend's API for runtime `runtime_id`.
    pub fn backend(target: Target, addr: SocketAddr, runtime_id: &str) -> Self {
        Self {
            target,
            addr,
            prefix: format!("/api/runtimes/{runtime_id}"),
            token: None,
        }
    }

    /// The same, sending a client token (a backend with auth on).
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// `http://ADDR{prefix}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}{path}", self.addr, self.prefix)
    }

    /// The event WebSocket of `worker`.
    pub fn ws_url(&self, worker: &str) -> String {
        format!(
            "ws://{}{}/workers/{worker}/events/ws",
            self.addr, self.prefix
        )
    }

    /// The `Authorization` header value, if the client must send one.
    pub fn authorization(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }
}

/// A pooled keep-alive HTTP/1.1 client for JSON calls.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    /// A client with a small idle pool per host.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self { client }
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        authorization: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes)> {
        let mut request = Request::builder().method(method.clone()).uri(url);
        if let Some(auth) = authorization {
            request = request.header(http::header::AUTHORIZATION, auth);
        }
        let body = match body {
            Some(json) => {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(serde_json::to_vec(json)?))
            }
            None => Full::new(Bytes::new()),
        };
        let response = tokio::time::timeout(
            Duration::from_secs(60),
            self.client.request(request.body(body)?),
        )
        .await
        .map_err(|_| format!("{method} {url}: no answer in 60 s"))?
        .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }

    /// Sends a request to `ep` and parses a JSON answer, failing on a non-2xx status.
    pub async fn call(
        &self,
        ep: &Endpoint,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let url = ep.url(path);
        let auth = ep.authorization();
        let (status, bytes) = self
            .send(method.clone(), &url, auth.as_deref(), body)
            .await?;
        if !status.is_success() {
            return Err(format!(
                "{method} {url} ({}): {status} {}",
                ep.target.label(),
                String::from_utf8_lossy(&bytes)
            )
            .into());
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Creates a worker from `profile` and returns its id.
    pub async fn create_worker(&self, ep: &Endpoint, profile: &str) -> Result<String> {
        let body = serde_json::json!({ "profile": profile, "label": "bench" });
        let detail = self.call(ep, Method::POST, "/workers", Some(&body)).await?;
        detail["worker_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no worker_id in {detail}").into())
    }

    /// Sends `text` to `worker`.
    pub async fn input(&self, ep: &Endpoint, worker: &str, text: &str) -> Result<()> {
        let body = serde_json::json!({ "text": text });
        self.call(
            ep,
            Method::POST,
            &format!("/workers/{worker}/input"),
            Some(&body),
        )
        .await
        .map(drop)
    }

    /// Stops `worker` and removes it.
    pub async fn remove_worker(&self, ep: &Endpoint, worker: &str) -> Result<()> {
        self.call(ep, Method::POST, &format!("/workers/{worker}/stop"), None)
            .await?;
        self.call(ep, Method::DELETE, &format!("/workers/{worker}"), None)
            .await?;
        Ok(())
    }

    /// Live event-stream connections on a runtime (`subscribers` of `GET /v1/runtime`).
    pub async fn runtime_subscribers(&self, runtime: &Endpoint) -> Result<u64> {
        let info = self.call(runtime, Method::GET, "/runtime", None).await?;
        info["subscribers"]
            .as_u64()
            .ok_or_else(|| format!("no subscribers in {info}").into())
    }
}
