//! [`HttpRuntimeClient`]: the REST client for one remote runtime, over keep-alive
//! HTTP/1.1 connections of its own ([`pool`], [`upstream`]).
//!
//! Every call is bounded as a whole (connect, answer and body) by the endpoint's
//! `request_timeout`; the connector alone (TCP and, for `https`, the TLS handshake)
//! is bounded by `connect_timeout`. Failures become [`TransportError`]s whose text
//! never names the base URL, host, port or token (see [`answer`] for the mapping);
//! TLS details go to the operator's log only.
//!
//! A kept-alive connection that the runtime closed while it sat idle is noticed
//! when it is next used: a request it never sent goes out again on a fresh
//! connection, and so does a `GET` (idempotent) whose answer never started.
//!
//! `GET`s and inputs are pipelined on a few connections ([`pipeline`]); every other
//! call takes a connection of its own from the [`pool`] for its exchange.

mod answer;
mod end_of_turn;
mod http1;
mod pipeline;
mod pool;
mod upstream;

use std::time::Duration;

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode, Uri};
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
use pipeline::{Choice, Pipes};
use pool::Pool;
use upstream::{ExchangeError, Exchanged, Upstream};

/// Largest answer body the client reads; a longer one is a protocol error.
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

// Invariant: a transcript page a runtime serves (its largest answer) is relayed.
const _: () = assert!(MAX_ANSWER_BYTES >= 2 * switchyard_protocol::TRANSCRIPT_PAGE_MAX_JSON_BYTES);

/// How long an idle pooled connection is kept. Below the runtime server's 30 s
/// header-read timeout, so the client normally drops an idle connection before the
/// server closes it under a request.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// Most idle connections kept per runtime (more may be open while requests are in
/// flight; those beyond this are closed when their exchange ends).
const POOL_MAX_IDLE: usize = 256;

/// One call to make: method, route template (for error texts), concrete path, query
/// and JSON body.
struct Call<'a> {
    /// The HTTP method.
    method: Method,
    /// The route as the contract names it, e.g. `/v1/workers/{id}/cancel`; used in
    /// `Unsupported` errors instead of the concrete URL.
    template: &'static str,
    /// The concrete path below the base URL's prefix, in pieces written one after
    /// the other (a worker's path: `/v1/workers/`, its id, the rest).
    path: [&'a str; 3],
    /// The query string, never empty.
    query: Option<String>,
    /// The JSON body, if any.
    body: Option<Vec<u8>>,
}

impl<'a> Call<'a> {
    /// A call of a fixed path, without query or body.
    fn new(method: Method, template: &'static str, path: &'static str) -> Self {
        Self::pieces(method, template, [path, "", ""])
    }

    /// A call of `/v1/workers/{worker}` followed by `tail`.
    fn worker(
        method: Method,
        template: &'static str,
        worker: &'a WorkerId,
        tail: &'static str,
    ) -> Self {
        Self::pieces(method, template, ["/v1/workers/", worker.as_str(), tail])
    }

    fn pieces(method: Method, template: &'static str, path: [&'a str; 3]) -> Self {
        Self {
            method,
            template,
            path,
            query: None,
            body: None,
        }
    }

    /// The request target after the base URL's `prefix`: the path and the query.
    fn target(&'a self, prefix: &'a str) -> [&'a str; 6] {
        let (mark, query) = match &self.query {
            Some(query) => ("?", query.as_str()),
            None => ("", ""),
        };
        [
            prefix,
            self.path[0],
            self.path[1],
            self.path[2],
            mark,
            query,
        ]
    }

    /// Sets the query string; an empty one means none.
    fn query(mut self, query: String) -> Self {
        self.query = (!query.is_empty()).then_some(query);
        self
    }

    /// Whether the call goes on a pipe (see [`pipeline`]): `GET`s, which are sent
    /// again when their answer never began, and inputs, which are quick for a
    /// runtime to answer (a pipelined request waits for those before it) and the
    /// route most worth batching; an input is never sent twice (see [`may_resend`]).
    fn pipelined(&self) -> bool {
        (self.method == Method::GET && self.body.is_none()) || self.template == INPUT_ROUTE
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

/// A bounded answer: status, whether it says it is JSON, and the whole body.
struct Answer {
    /// The answer's status.
    status: StatusCode,
    /// Its `Content-Type` is `application/json`.
    json: bool,
    /// The whole body, at most `MAX_ANSWER_BYTES`.
    body: Bytes,
}

/// The REST client for one remote runtime, implementing [`RuntimeClient`] over
/// keep-alive HTTP/1.1 connections that each request drives itself.
///
/// Cheap to clone: clones share the connection pool. `Debug` shows neither the URL
/// nor the token.
#[derive(Clone)]
pub struct HttpRuntimeClient {
    /// Idle connections, shared by clones.
    pool: Arc<Pool<Upstream>>,
    /// The pipelined connections of `GET`s and inputs, one set per
    /// [`lane`](crate::lane), shared by clones.
    pipes: Arc<[Pipes]>,
    /// TCP, then TLS for an `https` base URL, bounded by the connect timeout.
    connector: HttpsConnector,
    /// The URI connections are made to (its authority; TLS is the endpoint's).
    connect_uri: Uri,
    /// The header lines of every request: `Host` and `Authorization` (the token:
    /// never logged, never formatted). No `Accept`: runtimes answer JSON whatever
    /// it says, and each extra line costs the runtime's parser per request.
    fixed_headers: Arc<[u8]>,
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
        let connector = HttpsConnector::new(endpoint.connect_timeout, endpoint.tls.clone());
        let connect_uri = endpoint.base.http_uri("/", None)?;
        let mut fixed_headers = Vec::new();
        for (name, value) in [
            (&b"host: "[..], endpoint.base.authority.as_str().as_bytes()),
            (b"authorization: ", endpoint.authorization.as_bytes()),
        ] {
            fixed_headers.extend_from_slice(name);
            fixed_headers.extend_from_slice(value);
            fixed_headers.extend_from_slice(b"\r\n");
        }
        Ok(Self {
            pool: Arc::new(Pool::new(POOL_IDLE_TIMEOUT, POOL_MAX_IDLE)),
            pipes: (0..crate::lane::LANES)
                .map(|_| Pipes::new(POOL_IDLE_TIMEOUT))
                .collect(),
            connector,
            connect_uri,
            fixed_headers: fixed_headers.into(),
            endpoint,
        })
    }

    /// A new connection, its failure mapped (and a TLS failure logged).
    async fn connect(&self) -> Result<Upstream, TransportError> {
        let endpoint = &self.endpoint;
        let upstream = Upstream::connect(&self.connector, self.connect_uri.clone())
            .await
            .map_err(|e| {
                let timed_out = net_error::timeout(TimeoutPhase::Connect, endpoint.connect_timeout);
                let error = net_error::classify(&*e, timed_out, answer::NOT_HTTP);
                endpoint.tls_log.note(&*e, &error);
                error
            })?;
        // Not a success for the TLS log yet: a runtime that refuses our client
        // certificate does so (TLS 1.3) after the handshake looks complete to us.
        Ok(upstream)
    }

    /// A pooled connection that still looks open, or a new one; and whether it
    /// was pooled.
    async fn upstream(&self) -> Result<(Upstream, bool), TransportError> {
        while let Some((upstream, _idle)) = self.pool.take() {
            if upstream.looks_open() {
                return Ok((upstream, true));
            }
        }
        Ok((self.connect().await?, false))
    }

    /// One exchange: a `GET` or an input pipelined, anything else on a pooled
    /// connection.
    async fn exchange(&self, call: &Call<'_>) -> Result<Answer, TransportError> {
        let outcome = if call.pipelined() {
            self.pipelined(call).await?
        } else {
            self.pooled(call).await?
        };
        match outcome {
            Ok(exchanged) => {
                // An answer came (over TLS): the next TLS failure is news again.
                if self.endpoint.tls.is_some() {
                    self.endpoint.tls_log.succeeded();
                }
                Ok(Answer {
                    status: exchanged.status,
                    json: exchanged.json,
                    body: exchanged.body,
                })
            }
            Err(error) => {
                let mapped =
                    answer::exchange_error(&error, MAX_ANSWER_BYTES, self.endpoint.request_timeout);
                if let Some(io) = error.io_error() {
                    self.endpoint.tls_log.note(io, &mapped);
                }
                Err(mapped)
            }
        }
    }

    /// An exchange on a pooled connection (or a new one), the connection given
    /// back when it can carry another; a stale pooled connection is replaced once
    /// (see the module's notes). The outer error is a failed connect.
    async fn pooled(
        &self,
        call: &Call<'_>,
    ) -> Result<Result<Exchanged, ExchangeError>, TransportError> {
        let (upstream, pooled) = self.upstream().await?;
        let outcome = self.exchange_on(upstream, call).await;
        if pooled && outcome.as_ref().is_err_and(|e| may_resend(call, e)) {
            return Ok(self.exchange_on(self.connect().await?, call).await);
        }
        Ok(outcome)
    }

    /// A `GET` or an input pipelined on one of the runtime's pipes (see
    /// [`pipeline`]); sent once more on a fresh connection if [`may_resend`] allows.
    async fn pipelined(
        &self,
        call: &Call<'_>,
    ) -> Result<Result<Exchanged, ExchangeError>, TransportError> {
        let pipe = match self.pipes[crate::lane::current()].choose() {
            Choice::Join(pipe) => pipe,
            Choice::Open(opening) => opening.opened(self.connect().await?),
            Choice::Elsewhere => return self.pooled(call).await,
        };
        let mut request = Vec::with_capacity(256);
        let target = call.target(&self.endpoint.base.prefix);
        http1::write_request(
            &mut request,
            &call.method,
            &target,
            &self.fixed_headers,
            call.body.as_deref(),
        );
        let outcome = pipe.exchange(&request, MAX_ANSWER_BYTES).await;
        if outcome.as_ref().is_err_and(|e| may_resend(call, e)) {
            return Ok(self.exchange_on(self.connect().await?, call).await);
        }
        Ok(outcome)
    }

    /// One exchange on `upstream`, given back to the pool when it can carry another.
    async fn exchange_on(
        &self,
        mut upstream: Upstream,
        call: &Call<'_>,
    ) -> Result<Exchanged, ExchangeError> {
        let target = call.target(&self.endpoint.base.prefix);
        let outcome = upstream
            .exchange(
                &call.method,
                &target,
                &self.fixed_headers,
                call.body.as_deref(),
                MAX_ANSWER_BYTES,
            )
            .await;
        if outcome.is_ok() && upstream.reusable() {
            self.pool.put(upstream);
        }
        outcome
    }

    /// Sends `call` and reads the whole answer, within `request_timeout`.
    async fn send(&self, call: &Call<'_>) -> Result<Answer, TransportError> {
        let endpoint = &self.endpoint;
        // Pinned here so that `within` moves a pointer, not the whole exchange
        // (about a kilobyte, copied twice per request otherwise).
        let exchange = std::pin::pin!(self.exchange(call));
        let limit = endpoint.request_timeout;
        let result = match crate::deadline::within(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(net_error::timeout(TimeoutPhase::Request, limit)),
        };
        if let Err(error) = &result {
            // The error may repeat what the runtime wrote: never its token.
            let error = endpoint.token.redact(&error.to_string());
            tracing::debug!(method = %call.method, route = call.template, %error, "runtime call failed");
        }
        result
    }

    /// Sends `call` and decodes a 2xx answer as `T` (`what` names `T` for errors,
    /// with its article: "a WorkerDetail").
    async fn call_json<T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        what: &'static str,
    ) -> Result<T, TransportError> {
        let answer = self.send(&call).await?;
        answer::decode(&call, &answer, what)
    }

    /// Sends `call` and gives the body of a 2xx JSON answer as it arrived.
    async fn call_raw(&self, call: Call<'_>) -> Result<Bytes, TransportError> {
        let answer = self.send(&call).await?;
        answer::json_body(&call, &answer)?;
        Ok(answer.body)
    }
}

/// The input route, the one `POST` that is pipelined.
const INPUT_ROUTE: &str = "/v1/workers/{id}/input";
/// The one route a runtime may lack (a runtime without terminals).
const RESIZE_ROUTE: &str = "/v1/workers/{id}/resize";

/// Whether a call that failed with `error` on a pooled or pipelined connection
/// may be sent again on a new one: when it was never sent, or when it is a `GET`
/// whose answer never began because the connection was closed or reset. Anything
/// else may have been carried out (an input delivered) and is not repeated.
fn may_resend(call: &Call, error: &ExchangeError) -> bool {
    match error {
        ExchangeError::NotSent(_) => true,
        ExchangeError::ClosedBeforeAnswer => call.method == Method::GET,
        ExchangeError::ReadBeforeAnswer(e) => {
            call.method == Method::GET && net_error::is_reset(e.kind())
        }
        _ => false,
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

/// `GET /v1/workers?...`.
fn list_call(query: &WorkerQuery) -> Call<'static> {
    Call::new(Method::GET, "/v1/workers", "/v1/workers").query(list_query(query))
}

/// `GET /v1/workers/{id}`.
fn detail_call(worker: &WorkerId) -> Call<'_> {
    Call::worker(Method::GET, "/v1/workers/{id}", worker, "")
}

/// `POST /v1/workers/{id}/input` with `request`.
fn input_call<'a>(
    worker: &'a WorkerId,
    request: &InputRequest,
) -> Result<Call<'a>, TransportError> {
    Call::worker(Method::POST, INPUT_ROUTE, worker, "/input").json(request)
}

#[async_trait::async_trait]
impl RuntimeClient for HttpRuntimeClient {
    async fn info(&self) -> Result<RuntimeInfo, TransportError> {
        let call = Call::new(Method::GET, "/v1/runtime", "/v1/runtime");
        match self.call_json(call, "a RuntimeInfo").await {
            // Every runtime of API version 1 serves this route: a server that lacks
            // it is not a runtime (or the base URL's path is wrong), not an older one.
            Err(TransportError::Unsupported { .. }) => Err(TransportError::Protocol {
                reason: "the server at the base_url does not serve GET /v1/runtime: it is not \
                         a Switchyard runtime, or the base_url's path is wrong"
                    .into(),
            }),
            answer => answer,
        }
    }

    async fn list_workers(&self, query: &WorkerQuery) -> Result<WorkerList, TransportError> {
        self.call_json(list_call(query), "a WorkerList").await
    }

    async fn create_worker(
        &self,
        request: &CreateWorkerRequest,
    ) -> Result<WorkerDetail, TransportError> {
        let call = Call::new(Method::POST, "/v1/workers", "/v1/workers").json(request)?;
        self.call_json(call, "a WorkerDetail").await
    }

    async fn get_worker(&self, worker: &WorkerId) -> Result<WorkerDetail, TransportError> {
        self.call_json(detail_call(worker), "a WorkerDetail").await
    }

    async fn input(
        &self,
        worker: &WorkerId,
        request: &InputRequest,
    ) -> Result<InputAccepted, TransportError> {
        self.call_json(input_call(worker, request)?, "an InputAccepted")
            .await
    }

    async fn resize(
        &self,
        worker: &WorkerId,
        request: &ResizeRequest,
    ) -> Result<ResizeResponse, TransportError> {
        let call = Call::worker(Method::POST, RESIZE_ROUTE, worker, "/resize").json(request)?;
        self.call_json(call, "a ResizeResponse").await
    }

    async fn cancel(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, TransportError> {
        let call = Call::worker(Method::POST, "/v1/workers/{id}/cancel", worker, "/cancel");
        self.call_json(call, "a WorkerStatusResponse").await
    }

    async fn stop(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, TransportError> {
        let call = Call::worker(Method::POST, "/v1/workers/{id}/stop", worker, "/stop");
        self.call_json(call, "a WorkerStatusResponse").await
    }

    async fn delete(&self, worker: &WorkerId) -> Result<(), TransportError> {
        let call = Call::worker(Method::DELETE, "/v1/workers/{id}", worker, "");
        let answer = self.send(&call).await?;
        answer::expect_no_content(&call, &answer)
    }

    async fn transcript(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<TranscriptPage, TransportError> {
        let call = Call::worker(
            Method::GET,
            "/v1/workers/{id}/transcript",
            worker,
            "/transcript",
        )
        .query(transcript_query(after, limit));
        self.call_json(call, "a TranscriptPage").await
    }

    async fn list_workers_json(&self, query: &WorkerQuery) -> Result<Bytes, TransportError> {
        self.call_raw(list_call(query)).await
    }

    async fn get_worker_json(&self, worker: &WorkerId) -> Result<Bytes, TransportError> {
        self.call_raw(detail_call(worker)).await
    }

    async fn input_json(
        &self,
        worker: &WorkerId,
        request: &InputRequest,
    ) -> Result<Bytes, TransportError> {
        self.call_raw(input_call(worker, request)?).await
    }
}
