//! Shared harness for the server's in-process tests: a real Runtime API server on
//! 127.0.0.1:0 and a tiny HTTP client over a fresh TCP connection per request.
#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use switchyard_protocol::RuntimeId;
use switchyard_runtime::{Runtime, RuntimeConfig};
use switchyard_server::http::auth::BearerTokens;
use switchyard_server::http::body::BodyLimit;
use switchyard_server::http::ws::SessionSettings;
use switchyard_server::http::{ServeOptions, ServerHandle, Shutdown, serve_with};
use switchyard_server::runtime_api::{RuntimeApi, RuntimeApiSettings};
use switchyard_transport::SecretToken;
use tokio::net::TcpListener;

pub const TOKEN: &str = "test-token-6b1d";
pub const WAIT: Duration = Duration::from_secs(20);

pub fn config() -> RuntimeConfig {
    RuntimeConfig::new(RuntimeId::new("rt-test").unwrap(), "Test runtime")
}

pub fn settings(token: Option<&str>) -> RuntimeApiSettings {
    RuntimeApiSettings {
        tokens: BearerTokens::new(token.and_then(SecretToken::new).into_iter().collect()),
        max_body_bytes: BodyLimit::new(1024 * 1024),
        session: SessionSettings::default(),
    }
}

/// A Runtime API server on a free loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub runtime: Runtime,
    handle: ServerHandle,
}

impl TestServer {
    pub async fn start(config: RuntimeConfig) -> Self {
        Self::start_with(config, settings(Some(TOKEN))).await
    }

    pub async fn start_with(config: RuntimeConfig, settings: RuntimeApiSettings) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, config, settings).await
    }

    /// Serves on `listener` (bound by the test, with socket options of its own).
    pub async fn start_on(
        listener: TcpListener,
        config: RuntimeConfig,
        settings: RuntimeApiSettings,
    ) -> Self {
        let runtime = Runtime::in_memory(config).await;
        // Served as `switchyard runtime` serves it: answers written together.
        let handle = serve_with(
            listener,
            Arc::new(RuntimeApi::new(runtime.clone(), settings)),
            Shutdown::new(),
            ServeOptions {
                coalesce_writes: true,
                ..ServeOptions::default()
            },
        );
        Self {
            addr: handle.local_addr(),
            runtime,
            handle,
        }
    }

    /// Authorised request with an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<&str>) -> TestResponse {
        let auth = format!("Bearer {TOKEN}");
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        request(
            self.addr,
            method,
            path,
            body.map(|b| b.as_bytes().to_vec()),
            &headers,
        )
        .await
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub async fn shutdown(self) {
        self.handle.shutdown_signal().trigger();
        let _ = self.runtime.shutdown().await;
        self.handle.shutdown(Duration::from_secs(5)).await;
    }
}

pub use switchyard_e2e::client::{TestResponse, request};
