//! [`BackendClient`]: the backend API's REST calls over hyper-util's pooled client.
//!
//! Each call is bounded as a whole (connect, answer, body) by the request deadline;
//! the connector alone (TCP, and TLS for an `https://` backend) by the connect
//! deadline. TLS is the transport crate's: the same connector, handshake, crypto
//! provider and failure kinds as the backend's own hop to its runtimes. The bearer
//! token, when given, goes in an `Authorization` header marked sensitive.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchyard_protocol::{
    AllWorkersList, BackendRuntime, InputAccepted, InputRequest, NewWorkerRequest, ResizeRequest,
    ResizeResponse, RuntimeId, RuntimeList, TranscriptPage, WorkerDetail, WorkerList, WorkerStatus,
    WorkerStatusResponse,
};
use switchyard_transport::tls::{HttpsConnector, TlsTarget};
use switchyard_transport::{ClientTls, SecretToken, WorkerQuery};

use crate::endpoint::BackendUrl;
use crate::error::{ApiError, ClientError};
use crate::events::{EventSocket, handshake};
use crate::net;
use crate::worker_ref::WorkerRef;

/// Largest answer body read; a longer one is a protocol error.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// How long an idle pooled connection is kept (below the server's 30 s header-read
/// timeout, so the client drops it first).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// The deadlines of a [`BackendClient`].
///
/// Deadlines may be added, so start from [`Timeouts::default`] and set the ones to
/// change:
///
/// ```
/// use std::time::Duration;
/// use switchyard_client::Timeouts;
///
/// let mut timeouts = Timeouts::default();
/// timeouts.request = Duration::from_secs(10);
/// assert_eq!(timeouts.connect, Duration::from_secs(5));
/// ```
///
/// A struct literal (even one that ends with `..Timeouts::default()`) does not
/// compile:
///
/// ```compile_fail
/// use std::time::Duration;
/// use switchyard_client::Timeouts;
///
/// let timeouts = Timeouts { request: Duration::from_secs(10), ..Timeouts::default() };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Establishing a connection.
    pub connect: Duration,
    /// A whole call, answer included (for the event WebSocket: the upgrade).
    pub request: Duration,
    /// How long an open event stream may stay silent (no frame, no ping) before it
    /// counts as lost. The backend pings idle streams every 20 s.
    pub stream_idle: Duration,
}

impl Default for Timeouts {
    /// 5 s to connect, 60 s per call (a stop waits up to 2 s, a remote runtime may
    /// take its own timeout), 60 s of silence on a stream (three missed pings).
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(60),
            stream_idle: Duration::from_secs(60),
        }
    }
}

/// A client for one backend's API. Cheap to clone: clones share the connection pool.
/// `Debug` shows the URL (which holds no credentials) but never the token.
#[derive(Clone)]
pub struct BackendClient {
    client: Client<HttpsConnector, Full<Bytes>>,
    url: BackendUrl,
    /// TLS for an `https://` backend (the event WebSocket's handshake uses it too).
    tls: Option<TlsTarget>,
    authorization: Option<HeaderValue>,
    timeouts: Timeouts,
}

impl std::fmt::Debug for BackendClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendClient")
            .field("url", &self.url)
            .field("token", &self.authorization.as_ref().map(|_| "[redacted]"))
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// One answer: status and the whole body.
struct Answer {
    status: u16,
    body: Bytes,
}

impl BackendClient {
    /// A client for the backend at `url`, sending `token` as `Authorization: Bearer`
    /// when given. An `https://` backend's certificate must be signed by a CA in the
    /// system's store (read from disk the first time: call this at start-up or from
    /// a blocking task); [`BackendClient::with_tls`] trusts another CA. Fails for a
    /// token that cannot travel in an HTTP header, and for an `https://` URL on a
    /// system without CA certificates.
    pub fn new(
        url: BackendUrl,
        token: Option<&SecretToken>,
        timeouts: Timeouts,
    ) -> Result<Self, ClientError> {
        Self::with_tls(url, token, timeouts, None)
    }

    /// Like [`BackendClient::new`], with `tls` saying what an `https://` backend's
    /// certificate must be signed by (for a private CA:
    /// `ClientTls::new(&[ca], None, None)`); `None` trusts the system's CA store.
    /// `tls` is not used for an `http://` backend.
    pub fn with_tls(
        url: BackendUrl,
        token: Option<&SecretToken>,
        timeouts: Timeouts,
        tls: Option<ClientTls>,
    ) -> Result<Self, ClientError> {
        let authorization = token.map(bearer).transpose()?;
        let tls = if url.is_https() {
            let tls = match tls {
                Some(tls) => tls,
                None => ClientTls::with_system_roots(None, None).map_err(|e| {
                    ClientError::TlsSetup {
                        reason: format!(
                            "cannot verify the https:// backend: {e} (or name the CA that signed its certificate)"
                        ),
                    }
                })?,
            };
            let target = tls.target(url.host()).map_err(|e| ClientError::TlsSetup {
                reason: format!("the backend URL's host cannot be verified over TLS: {e}"),
            })?;
            Some(target)
        } else {
            None
        };
        let connector = HttpsConnector::new(timeouts.connect, tls.clone());
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Ok(Self {
            client,
            url,
            tls,
            authorization,
            timeouts,
        })
    }

    /// The backend's URL.
    pub fn url(&self) -> &BackendUrl {
        &self.url
    }

    /// The deadlines in force.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// `GET /api/runtimes`: every runtime the caller may see, with its state.
    pub async fn runtimes(&self) -> Result<RuntimeList, ClientError> {
        self.get("/api/runtimes", None).await
    }

    /// `GET /api/runtimes/{id}`: one runtime, refreshed by the backend.
    pub async fn runtime(&self, runtime: &RuntimeId) -> Result<BackendRuntime, ClientError> {
        let path = format!("/api/runtimes/{}", runtime.as_str());
        self.get(&path, None).await
    }

    /// `GET /api/workers`: the workers of every runtime that answered, and those that
    /// did not under `unavailable`.
    pub async fn all_workers(
        &self,
        status: Option<WorkerStatus>,
    ) -> Result<AllWorkersList, ClientError> {
        let query = status.map(|s| format!("status={}", s.as_str()));
        self.get("/api/workers", query.as_deref()).await
    }

    /// `GET /api/runtimes/{id}/workers`: one page of a runtime's workers.
    pub async fn workers(
        &self,
        runtime: &RuntimeId,
        query: &WorkerQuery,
    ) -> Result<WorkerList, ClientError> {
        let path = format!("/api/runtimes/{}/workers", runtime.as_str());
        self.get(&path, Some(&list_query(query))).await
    }

    /// Every worker of one runtime (with `status`, when given), following the pages.
    pub async fn all_workers_of(
        &self,
        runtime: &RuntimeId,
        status: Option<WorkerStatus>,
    ) -> Result<Vec<WorkerDetail>, ClientError> {
        let mut query = WorkerQuery {
            status,
            ..WorkerQuery::default()
        };
        let mut workers = Vec::new();
        loop {
            let page = self.workers(runtime, &query).await?;
            workers.extend(page.workers);
            match page.next {
                // A page that does not move on would loop forever.
                Some(next) if query.after.as_ref() != Some(&next) => query.after = Some(next),
                Some(_) => {
                    return Err(ClientError::Protocol {
                        status: None,
                        reason: "a worker list's `next` repeats the page it follows".into(),
                    });
                }
                None => return Ok(workers),
            }
        }
    }

    /// `POST /api/runtimes/{id}/workers`: starts a worker from `profile`.
    pub async fn create_worker(
        &self,
        runtime: &RuntimeId,
        request: &NewWorkerRequest,
    ) -> Result<WorkerDetail, ClientError> {
        let path = format!("/api/runtimes/{}/workers", runtime.as_str());
        self.call(Method::POST, &path, None, Some(request)).await
    }

    /// `GET .../workers/{id}`.
    pub async fn worker(&self, worker: &WorkerRef) -> Result<WorkerDetail, ClientError> {
        self.get(&worker.path(""), None).await
    }

    /// `POST .../workers/{id}/input`: `text` as given; answers its sequence.
    pub async fn input(
        &self,
        worker: &WorkerRef,
        text: &str,
    ) -> Result<InputAccepted, ClientError> {
        let request = InputRequest { text: text.into() };
        self.call(Method::POST, &worker.path("/input"), None, Some(&request))
            .await
    }

    /// `POST .../workers/{id}/resize`: gives a terminal (`pty`) worker's terminal a
    /// new size, 1 to 1000 cells each way; answers the size it has now. Another kind
    /// of worker answers `400 not_a_terminal`. (An interactive [`EventSocket`] resizes
    /// with a [`ClientFrame::Resize`](crate::ClientFrame::Resize) frame instead.)
    ///
    /// ```
    /// use switchyard_client::{BackendClient, BackendUrl, Timeouts, WorkerRef};
    /// use switchyard_protocol::{NewWorkerRequest, ResizeRequest, RuntimeId};
    /// use switchyard_runtime::{Profile, ProfileSpec, PtySpec};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let backend = switchyard_server::Backend::from_settings(
    /// #     switchyard_server::config::BackendSettings::defaults(),
    /// # )
    /// # .listen("127.0.0.1:0".parse()?)
    /// # .embedded_profile("cat", Profile::new(ProfileSpec::Pty(PtySpec::new(["cat"]))))
    /// # .start()
    /// # .await?;
    /// let client = BackendClient::new(BackendUrl::parse(&backend.url())?, None, Timeouts::default())?;
    /// let local = RuntimeId::new("local")?;
    /// let request = NewWorkerRequest { profile: "cat".into(), label: None };
    /// let detail = client.create_worker(&local, &request).await?;
    /// let worker = WorkerRef::new(detail.runtime_id, detail.worker_id);
    ///
    /// let resized = client.resize(&worker, ResizeRequest { cols: 100, rows: 30 }).await?;
    /// assert_eq!((resized.cols, resized.rows), (100, 30));
    /// client.stop(&worker).await?;
    /// # backend.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn resize(
        &self,
        worker: &WorkerRef,
        size: ResizeRequest,
    ) -> Result<ResizeResponse, ClientError> {
        self.call(Method::POST, &worker.path("/resize"), None, Some(&size))
            .await
    }

    /// `POST .../workers/{id}/cancel`: interrupts in-flight work.
    pub async fn cancel(&self, worker: &WorkerRef) -> Result<WorkerStatusResponse, ClientError> {
        self.call::<_, ()>(Method::POST, &worker.path("/cancel"), None, None)
            .await
    }

    /// `POST .../workers/{id}/stop`: ends the worker (idempotent).
    pub async fn stop(&self, worker: &WorkerRef) -> Result<WorkerStatusResponse, ClientError> {
        self.call::<_, ()>(Method::POST, &worker.path("/stop"), None, None)
            .await
    }

    /// `DELETE .../workers/{id}`: removes an ended worker and its transcript.
    pub async fn delete(&self, worker: &WorkerRef) -> Result<(), ClientError> {
        let answer = self
            .send::<()>(Method::DELETE, &worker.path(""), None, None)
            .await?;
        success(&answer).map(drop)
    }

    /// `GET .../workers/{id}/transcript?after=&limit=`: the items after `after`, at
    /// most `limit` (the backend's default when `None`).
    pub async fn transcript(
        &self,
        worker: &WorkerRef,
        after: u64,
        limit: Option<u32>,
    ) -> Result<TranscriptPage, ClientError> {
        let mut query = format!("after={after}");
        if let Some(limit) = limit {
            query.push_str(&format!("&limit={limit}"));
        }
        self.get(&worker.path("/transcript"), Some(&query)).await
    }

    /// Opens the worker's event WebSocket, resuming after `cursor` when given; with
    /// `interactive`, the socket also takes [`ClientFrame`](crate::ClientFrame)s
    /// (terminal workers). Refusals before the upgrade are the backend's errors.
    pub async fn events(
        &self,
        worker: &WorkerRef,
        cursor: Option<&str>,
        interactive: bool,
    ) -> Result<EventSocket, ClientError> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(cursor) = cursor {
            query.append_pair("cursor", cursor);
        }
        if interactive {
            query.append_pair("interactive", "true");
        }
        let query = query.finish();
        let target = self
            .url
            .target(&worker.path("/events/ws"), Some(query.as_str()));
        let socket = handshake::open(
            &self.url,
            self.tls.as_ref(),
            &target,
            self.authorization.as_ref(),
            self.timeouts,
        )
        .await?;
        Ok(EventSocket::new(
            socket,
            worker.clone(),
            self.timeouts.stream_idle,
        ))
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: Option<&str>,
    ) -> Result<T, ClientError> {
        self.call::<T, ()>(Method::GET, path, query, None).await
    }

    /// Sends a call and decodes a 2xx answer as `T`.
    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let answer = self.send(method, path, query, body).await?;
        let body = success(&answer)?;
        serde_json::from_slice(body).map_err(|e| ClientError::Protocol {
            status: None,
            reason: format!(
                "an answer that does not decode: {}",
                shorten(&e.to_string())
            ),
        })
    }

    /// Sends a call and reads the whole answer, within the request deadline.
    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        body: Option<&B>,
    ) -> Result<Answer, ClientError> {
        let uri = self.url.uri(path, query)?;
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(authorization) = &self.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        let body = match body {
            Some(body) => {
                builder =
                    builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Bytes::from(serde_json::to_vec(body).map_err(|_| ClientError::Protocol {
                    status: None,
                    reason: "could not encode the request body".into(),
                })?)
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(body))
            .map_err(|_| ClientError::Protocol {
                status: None,
                reason: "could not build a valid request".into(),
            })?;
        let limit = self.timeouts.request;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| client_error(&e, self.timeouts))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| body_error(&*e, limit))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(net::timeout(limit)),
        }
    }
}

/// `Bearer <token>`, marked sensitive; the error does not repeat the token.
pub(crate) fn bearer(token: &SecretToken) -> Result<HeaderValue, ClientError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| ClientError::InvalidToken)?;
    value.set_sensitive(true);
    Ok(value)
}

/// The body of a 2xx answer, or the backend's error (or a protocol error when a
/// non-2xx answer has no error body: another server, or a proxy, answered).
fn success(answer: &Answer) -> Result<&[u8], ClientError> {
    if (200..300).contains(&answer.status) {
        return Ok(&answer.body);
    }
    Err(refusal(answer.status, &answer.body))
}

/// Maps a non-success answer. A backend that serves HTTPS only answers plain HTTP
/// with a fixed text; that says to use `https://`.
pub(crate) fn refusal(status: u16, body: &[u8]) -> ClientError {
    let https_only = switchyard_protocol::HTTPS_ONLY_MESSAGE.as_bytes();
    if body.windows(https_only.len()).any(|w| w == https_only) {
        return ClientError::Protocol {
            status: Some(status),
            reason: "the backend serves HTTPS only; use an https:// URL".into(),
        };
    }
    match ApiError::from_body(status, body) {
        Some(error) => ClientError::Api(error),
        None => ClientError::Protocol {
            status: Some(status),
            reason: format!(
                "status {status} without an error body (is this a Switchyard backend?)"
            ),
        },
    }
}

/// `status=&limit=&after=`, only the parts that are set.
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

/// Maps a failure of the pooled client (connecting, sending, reading the head).
fn client_error(error: &hyper_util::client::legacy::Error, timeouts: Timeouts) -> ClientError {
    let limit = if error.is_connect() {
        timeouts.connect
    } else {
        timeouts.request
    };
    net::classify(error, net::timeout(limit))
}

/// Maps a failure while reading a body through [`Limited`].
fn body_error(
    error: &(dyn std::error::Error + Send + Sync + 'static),
    limit: Duration,
) -> ClientError {
    if error.is::<http_body_util::LengthLimitError>() {
        return ClientError::Protocol {
            status: None,
            reason: format!(
                "an answer larger than {} MiB",
                MAX_ANSWER_BYTES / (1024 * 1024)
            ),
        };
    }
    net::classify(error, net::timeout(limit))
}

/// Outside text (serde's description of what did not decode), bounded.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_the_backends_errors() {
        let error = refusal(
            404,
            br#"{"error":{"code":"runtime_not_found","message":"no runtime nope"}}"#,
        );
        assert_eq!(error.code(), "runtime_not_found");
        assert_eq!(error.api().unwrap().status, Some(404));
        let error = refusal(502, b"Bad Gateway");
        assert_eq!(error.code(), "backend_protocol_error");
        assert!(error.to_string().contains("502"));
        let error = refusal(
            400,
            format!("{}\n", switchyard_protocol::HTTPS_ONLY_MESSAGE).as_bytes(),
        );
        assert_eq!(error.code(), "backend_protocol_error");
        assert!(error.to_string().contains("use an https:// URL"), "{error}");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = SecretToken::new("t0ps3cret").unwrap();
        let client = BackendClient::new(
            BackendUrl::parse("http://127.0.0.1:1").unwrap(),
            Some(&token),
            Timeouts::default(),
        )
        .unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("t0ps3cret"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
        let bad = SecretToken::new("bad\ntoken").unwrap();
        let error = BackendClient::new(
            BackendUrl::parse("http://127.0.0.1:1").unwrap(),
            Some(&bad),
            Timeouts::default(),
        )
        .unwrap_err();
        assert_eq!(error, ClientError::InvalidToken);
    }

    #[test]
    fn list_queries_hold_what_is_set() {
        assert_eq!(list_query(&WorkerQuery::default()), "");
        let query = WorkerQuery {
            status: Some(WorkerStatus::Running),
            after: Some(switchyard_protocol::WorkerId::new("w-2").unwrap()),
            limit: Some(5),
        };
        assert_eq!(list_query(&query), "status=running&limit=5&after=w-2");
    }
}
