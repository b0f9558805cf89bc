//! [`HttpRuntimeClient`]: the REST client for one remote runtime, over hyper-util's
//! pooled (keep-alive) client.
//!
//! Every call is bounded as a whole (connect, answer and body) by the endpoint's
//! `request_timeout`; the connector alone (TCP and, for `https`, the TLS handshake)
//! is bounded by `connect_timeout`. Failures become [`TransportError`]s whose text
//! never names the base URL, host, port or token (see [`answer`] for the mapping);
//! TLS details go to the operator's log only.

mod answer;

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchyard_protocol::{
    CreateWorkerRequest, InputAccepted, InputRequest, ResizeRequest, ResizeResponse, RuntimeInfo,
    TranscriptPage, WorkerDetail, WorkerId, WorkerList, WorkerStatusResponse,
};

use crate::endpoint::{ParsedEndpoint, RemoteEndpoint};
use crate::error::{TimeoutPhase, TransportError};
use crate::net_error;
use crate::rest::{RuntimeClient, WorkerQuery};
use crate::tls::HttpsConnector;

/// Largest answer body the client reads; a longer one is a protocol error.
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// How long an idle pooled connection is kept. Below the runtime server's 30 s
/// header-read timeout, so the client normally drops an idle connection before the
/// server closes it under a request.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// The connector: TCP, then TLS for an `https` base URL.
type Connector = HttpsConnector;

/// The connector for `endpoint`: TCP and TLS bounded by its `connect_timeout`, no
/// Nagle delay.
fn build_connector(endpoint: &ParsedEndpoint) -> Connector {
    HttpsConnector::new(endpoint.connect_timeout, endpoint.tls.clone())
}

/// One call to make: method, route template (for error texts), concrete path, query
/// and JSON body.
struct Call {
    /// The HTTP method.
    method: Method,
    /// The route as the contract names it, e.g. `/v1/workers/{id}/cancel`; used in
    /// `Unsupported` errors instead of the concrete URL.
    template: &'static str,
    /// The concrete path, below the base URL's prefix.
    path: String,
    /// The query string, never empty.
    query: Option<String>,
    /// The JSON body, if any.
    body: Option<Vec<u8>>,
}

impl Call {
    /// A call without query, body or extra time.
    fn new(method: Method, template: &'static str, path: String) -> Self {
        Self {
            method,
            template,
            path,
            query: None,
            body: None,
        }
    }

    /// Sets the query string; an empty one means none.
    fn query(mut self, query: String) -> Self {
        self.query = (!query.is_empty()).then_some(query);
        self
    }

    /// Sets `body`, encoded as JSON, as the request body.
    fn json<T: Serialize>(mut self, body: &T) -> Result<Self, TransportError> {
        let bytes = serde_json::to_vec(body).map_err(|e| TransportError::Protocol {
            reason: format!("could not encode the request body: {e}"),
        })?;
        self.body = Some(bytes);
        Ok(self)
    }
}

/// A bounded answer: status and the whole body.
struct Answer {
    /// The answer's status.
    status: StatusCode,
    /// The whole body, at most `MAX_ANSWER_BYTES`.
    body: Bytes,
}

/// The REST client for one remote runtime, implementing [`RuntimeClient`] over
/// hyper-util's legacy pooled client with keep-alive.
///
/// Cheap to clone: clones share the connection pool. `Debug` shows neither the URL
/// nor the token.
#[derive(Clone)]
pub struct HttpRuntimeClient {
    /// The pooled client, shared by clones.
    client: Client<Connector, Full<Bytes>>,
    /// The parsed base URL, `Authorization` header and timeouts.
    endpoint: ParsedEndpoint,
}

impl std::fmt::Debug for HttpRuntimeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.endpoint.debug_struct(f, "HttpRuntimeClient").finish()
    }
}

impl HttpRuntimeClient {
    /// Builds a client for `endpoint`, parsing its base URL once.
    ///
    /// The base URL is `http://` or `https://host[:port][/prefix]`; an `https` one
    /// needs [`RemoteEndpoint::tls`] (and an `http` one must not have it). Anything
    /// else, and a token that cannot travel in an HTTP header, is
    /// [`TransportError::Unsupported`]. No error text repeats the URL or the token.
    pub fn new(endpoint: RemoteEndpoint) -> Result<Self, TransportError> {
        let endpoint = ParsedEndpoint::new(&endpoint)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(build_connector(&endpoint));
        Ok(Self { client, endpoint })
    }

    /// Sends `call` and reads the whole answer, within `request_timeout`.
    async fn send(&self, call: &Call) -> Result<Answer, TransportError> {
        let endpoint = &self.endpoint;
        let uri = endpoint.base.http_uri(&call.path, call.query.as_deref())?;
        let mut builder = Request::builder()
            .method(call.method.clone())
            .uri(uri)
            .header(AUTHORIZATION, endpoint.authorization.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if call.body.is_some() {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let body = Full::new(call.body.clone().map(Bytes::from).unwrap_or_default());
        let request = builder.body(body).map_err(|_| TransportError::Protocol {
            reason: "could not build a valid request".into(),
        })?;

        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let error =
                    answer::client_error(&e, endpoint.connect_timeout, endpoint.request_timeout);
                endpoint.tls_log.note(&e, &error);
                error
            })?;
            endpoint.tls_log.succeeded();
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| answer::body_error(&*e, MAX_ANSWER_BYTES, endpoint.request_timeout))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        let limit = endpoint.request_timeout;
        let result = match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(net_error::timeout(TimeoutPhase::Request, limit)),
        };
        if let Err(error) = &result {
            tracing::debug!(method = %call.method, route = call.template, %error, "runtime call failed");
        }
        result
    }

    /// Sends `call` and decodes a 2xx answer as `T` (`what` names `T` for errors,
    /// with its article: "a WorkerDetail").
    async fn call_json<T: DeserializeOwned>(
        &self,
        call: Call,
        what: &'static str,
    ) -> Result<T, TransportError> {
        let answer = self.send(&call).await?;
        answer::decode(&call, answer.status, &answer.body, what)
    }
}

/// `status=&limit=&after=`, only the parts that are set (the serializer is not
/// `Send`, so it stays out of the async calls).
fn list_query(query: &WorkerQuery) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(status) = query.status {
        q.append_pair("status", status.as_str());
    }
    if let Some(limit) = query.limit {
        q.append_pair("limit", &limit.to_string());
    }
    if let Some(after) = &query.after {
        q.append_pair("after", after.as_str());
    }
    q.finish()
}

/// `after=&limit=`; `after` always, `limit` when set.
fn transcript_query(after: u64, limit: Option<u32>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("after", &after.to_string());
    if let Some(limit) = limit {
        q.append_pair("limit", &limit.to_string());
    }
    q.finish()
}

/// `/v1/workers/{id}` followed by `tail`.
fn worker_path(worker: &WorkerId, tail: &str) -> String {
    format!("/v1/workers/{}{tail}", worker.as_str())
}

#[async_trait::async_trait]
impl RuntimeClient for HttpRuntimeClient {
    async fn info(&self) -> Result<RuntimeInfo, TransportError> {
        let call = Call::new(Method::GET, "/v1/runtime", "/v1/runtime".into());
        self.call_json(call, "a RuntimeInfo").await
    }

    async fn list_workers(&self, query: &WorkerQuery) -> Result<WorkerList, TransportError> {
        let call =
            Call::new(Method::GET, "/v1/workers", "/v1/workers".into()).query(list_query(query));
        self.call_json(call, "a WorkerList").await
    }

    async fn create_worker(
        &self,
        request: &CreateWorkerRequest,
    ) -> Result<WorkerDetail, TransportError> {
        let call = Call::new(Method::POST, "/v1/workers", "/v1/workers".into()).json(request)?;
        self.call_json(call, "a WorkerDetail").await
    }

    async fn get_worker(&self, worker: &WorkerId) -> Result<WorkerDetail, TransportError> {
        let call = Call::new(Method::GET, "/v1/workers/{id}", worker_path(worker, ""));
        self.call_json(call, "a WorkerDetail").await
    }

    async fn input(
        &self,
        worker: &WorkerId,
        request: &InputRequest,
    ) -> Result<InputAccepted, TransportError> {
        let call = Call::new(
            Method::POST,
            "/v1/workers/{id}/input",
            worker_path(worker, "/input"),
        )
        .json(request)?;
        self.call_json(call, "an InputAccepted").await
    }

    async fn resize(
        &self,
        worker: &WorkerId,
        request: &ResizeRequest,
    ) -> Result<ResizeResponse, TransportError> {
        let call = Call::new(
            Method::POST,
            "/v1/workers/{id}/resize",
            worker_path(worker, "/resize"),
        )
        .json(request)?;
        self.call_json(call, "a ResizeResponse").await
    }

    async fn cancel(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, TransportError> {
        let call = Call::new(
            Method::POST,
            "/v1/workers/{id}/cancel",
            worker_path(worker, "/cancel"),
        );
        self.call_json(call, "a WorkerStatusResponse").await
    }

    async fn stop(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, TransportError> {
        let call = Call::new(
            Method::POST,
            "/v1/workers/{id}/stop",
            worker_path(worker, "/stop"),
        );
        self.call_json(call, "a WorkerStatusResponse").await
    }

    async fn delete(&self, worker: &WorkerId) -> Result<(), TransportError> {
        let call = Call::new(Method::DELETE, "/v1/workers/{id}", worker_path(worker, ""));
        let answer = self.send(&call).await?;
        answer::expect_success(&call, answer.status, &answer.body)
    }

    async fn transcript(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<TranscriptPage, TransportError> {
        let call = Call::new(
            Method::GET,
            "/v1/workers/{id}/transcript",
            worker_path(worker, "/transcript"),
        )
        .query(transcript_query(after, limit));
        self.call_json(call, "a TranscriptPage").await
    }
}
