//! The accept loop: HTTP/1.1 connections with upgrades (over TLS when the listener
//! has a [`ServerTls`]) under the listener's [`ConnectionLimit`], request ids, one
//! log line and the metrics of every request, lingering close, and graceful shutdown
//! of connections and WebSocket sessions.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use http::Method;
use http::header::HeaderValue;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use super::coalesce::{self, FlushAfterPoll};
use super::cores::{Cores, NoCore};
use super::limit::{self, ConnectionLimit, ConnectionPermit};
use super::linger::ServerIo;
use super::metrics::{HttpMetrics, MatchedRoute};
use super::parse_error::TypedParseErrors;
use super::response::Response;
use super::self_wake::RepollSelfWakes;
use super::shutdown::Shutdown;
use super::tls::{self, ServerTls};

/// How long a client may take to send a request's headers, unless
/// [`ServeOptions::header_read_timeout`] says otherwise.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Per-request facts a handler may use.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// A short random id, also sent back as `x-request-id` and logged.
    pub request_id: RequestId,
    /// The peer's address (logged; never sent to another client).
    pub peer: SocketAddr,
    /// The server's shutdown signal, for long-lived sessions.
    pub shutdown: Shutdown,
}

/// One HTTP surface.
///
/// A `HEAD` request reaches [`Handler::handle`] as the `GET` it stands for, without
/// its `Upgrade` header: every check the `GET` passes (host, origin,
/// authentication, policy, route and ids) decides it, and its answer is the `GET`'s.
/// hyper then sends only that answer's head, with the `Content-Length` of its body
/// (RFC 9110 §9.3.2). The request's log line and metrics keep the method `HEAD`.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request. Errors are answers too: this never fails.
    fn handle(
        &self,
        request: http::Request<Incoming>,
        ctx: RequestContext,
    ) -> impl Future<Output = Answer> + Send;
}

/// A handler's answer to one request, with the route it matched for the request
/// metrics (a field, not a response extension: those allocate a map per request).
#[derive(Debug)]
pub struct Answer {
    /// What the client gets.
    pub response: Response,
    /// The route template the request matched, if any (`None`: counted as
    /// unmatched).
    pub route: Option<MatchedRoute>,
}

impl Answer {
    /// `response`, counted under `route`.
    pub fn labelled(response: Response, route: Option<MatchedRoute>) -> Self {
        Self { response, route }
    }
}

/// An answer counted as unmatched.
impl From<Response> for Answer {
    fn from(response: Response) -> Self {
        Self {
            response,
            route: None,
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    tls: Option<ServerTls>,
    limit: ConnectionLimit,
    shutdown: Shutdown,
    accept_loop: JoinHandle<()>,
    /// The cores its connections run on, if any: kept running while the handle
    /// lives (what requests spawned there may outlive the accept loop).
    _cores: Option<Arc<Cores>>,
}

impl ServerHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Its TLS configuration (replace it to reload), when it serves HTTPS.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
    }

    /// Its connection limit (and how many connections are open).
    pub fn connections(&self) -> &ConnectionLimit {
        &self.limit
    }

    /// `https://ADDR` or `http://ADDR`: where clients reach it.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// The server's shutdown signal.
    pub fn shutdown_signal(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Stops accepting, asks every connection to finish its current request, lets
    /// WebSocket sessions close with 1001, and waits up to `grace` for all of it.
    pub async fn shutdown(self, grace: Duration) {
        self.shutdown_within(grace, grace).await;
    }

    /// [`ServerHandle::shutdown`], waiting up to `requests` for the connections to
    /// finish their requests, then up to `sessions` for the WebSocket sessions to
    /// close.
    pub async fn shutdown_within(self, requests: Duration, sessions: Duration) {
        self.shutdown.trigger();
        let _ = tokio::time::timeout(requests, self.accept_loop).await;
        self.shutdown.wait_sessions(sessions).await;
    }
}

/// Serves `handler` over plain HTTP on `listener` until `shutdown` fires.
pub fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    shutdown: Shutdown,
) -> ServerHandle {
    serve_with_tls(listener, handler, shutdown, None)
}

/// Serves `handler` on `listener` until `shutdown` fires: HTTPS only when `tls` is
/// given (each connection's handshake bounded, failures logged at DEBUG and never
/// stopping the loop), plain HTTP otherwise; the default connection limit.
pub fn serve_with_tls<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    shutdown: Shutdown,
    tls: Option<ServerTls>,
) -> ServerHandle {
    serve_with(
        listener,
        handler,
        shutdown,
        ServeOptions {
            tls,
            ..ServeOptions::default()
        },
    )
}

/// How a listener serves.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// HTTPS only, with this configuration, when set.
    pub tls: Option<ServerTls>,
    /// `max_connections`: past it, new connections get `503 overloaded`.
    pub limit: ConnectionLimit,
    /// Where every answer is counted.
    pub metrics: HttpMetrics,
    /// Serve connections on this many single-threaded runtimes of their own (one
    /// per CPU is the usual choice), each connection staying on one; 0 (the
    /// default) serves them on the runtime that calls [`serve_with`]. See
    /// `cores.rs`.
    pub cores: usize,
    /// Write the answers hyper gives during one poll of a connection together
    /// (`coalesce.rs`): for a server whose clients pipeline requests, as the
    /// backend does to a runtime.
    pub coalesce_writes: bool,
    /// How long a connection may take to send a request's head (counted from
    /// when the server starts waiting for it, so also how long a kept-alive
    /// connection may stay idle); `None`: [`HEADER_READ_TIMEOUT`]. A connection
    /// over it is closed.
    pub header_read_timeout: Option<Duration>,
}

/// How each connection of a listener is served (from [`ServeOptions`]).
#[derive(Debug, Clone, Copy)]
struct ConnectionSettings {
    coalesce_writes: bool,
    header_read_timeout: Duration,
}

/// Serves `handler` on `listener` until `shutdown` fires, as `options` say (see
/// [`serve_with_tls`]).
pub fn serve_with<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    shutdown: Shutdown,
    options: ServeOptions,
) -> ServerHandle {
    let local_addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let tls = options.tls.clone();
    let limit = options.limit.clone();
    let cores = match options.cores {
        0 => None,
        count => match Cores::start(count, "switchyard") {
            Ok(cores) => Some(Arc::new(cores)),
            Err(error) => {
                tracing::warn!(%error, "could not start the connection threads; serving on the main runtime");
                None
            }
        },
    };
    let accept_loop = tokio::spawn(accept_loop(
        listener,
        handler,
        shutdown.clone(),
        options,
        cores.clone(),
    ));
    tokio::spawn(keep_wakes_near(shutdown.clone()));
    ServerHandle {
        local_addr,
        tls,
        limit,
        shutdown,
        accept_loop,
        _cores: cores,
    }
}

/// How far ahead the time driver's next planned wake-up may be while a server
/// runs (see [`keep_wakes_near`]); shorter than any timer a request sets.
pub(super) const WAKE_HORIZON: Duration = Duration::from_secs(1);

/// A timer that fires every [`WAKE_HORIZON`] until `shutdown`, so that the
/// timers of requests never wake the runtime's driver.
///
/// Tokio writes to its driver's eventfd whenever a timer is registered with a
/// deadline earlier than the driver's next planned wake-up (tokio-rs/tokio#5207),
/// whether or not a thread is parked. A request on a runtime without coarse
/// deadlines (`switchyard_transport::deadline`; the connection threads of
/// `cores.rs` have them) registers two: hyper's header-read timeout (30 s) when a
/// connection waits for its next request, and the REST client's request timeout
/// (5 s by default) on a relayed call; with no
/// nearer timer each found the driver planning to sleep past it, which cost a
/// `write` per timer and, with a worker parked, its wake-up: 8 system calls per
/// relayed request at one connection instead of 6 (as nginx). With this timer
/// the next planned wake-up is never more than a second away. Costs one wake-up
/// a second.
async fn keep_wakes_near(shutdown: Shutdown) {
    let mut tick = tokio::time::interval(WAKE_HORIZON);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.triggered() => return,
            _ = tick.tick() => {}
        }
    }
}

async fn accept_loop<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    shutdown: Shutdown,
    options: ServeOptions,
    cores: Option<Arc<Cores>>,
) {
    let ServeOptions {
        tls,
        limit,
        metrics,
        cores: _,
        coalesce_writes,
        header_read_timeout,
    } = options;
    let settings = ConnectionSettings {
        coalesce_writes,
        header_read_timeout: header_read_timeout.unwrap_or(HEADER_READ_TIMEOUT),
    };
    let connections = TaskTracker::new();
    let mut failures = AcceptFailures::default();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.triggered() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => {
                    failures.recovered();
                    pair
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    let _ = failures.note(&error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let Some(permit) = limit.try_admit() else {
            // Past max_connections: answered 503 by a bounded number of refusals, or
            // closed at once when even those are all busy.
            if let Some(slot) = limit.refusal() {
                let tls = tls.clone();
                connections.spawn(async move {
                    limit::refuse(stream, peer, tls).await;
                    drop(slot);
                });
            }
            continue;
        };
        let stream = match &cores {
            None => Accepted::Registered(stream),
            Some(_) => match stream.into_std() {
                Ok(stream) => Accepted::Unregistered(stream),
                Err(error) => {
                    tracing::debug!(%error, %peer, "could not hand the connection over");
                    continue;
                }
            },
        };
        let connection = RepollSelfWakes::new(connection(
            (stream, permit),
            peer,
            handler.clone(),
            (shutdown.clone(), metrics.clone(), settings),
            tls.clone(),
        ));
        match &cores {
            None => drop(connections.spawn(connection)),
            Some(cores) => {
                if let Err(NoCore(connection)) =
                    cores.run(connections.track_future(connection)).await
                {
                    drop(tokio::spawn(connection));
                }
            }
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Failed accepts (out of file descriptors, say), logged at most every
/// [`AcceptFailures::EVERY`] with how many there were, not every 50 ms retry.
#[derive(Default)]
struct AcceptFailures {
    last_logged: Option<Instant>,
    since: u64,
}

impl AcceptFailures {
    const EVERY: Duration = Duration::from_secs(10);

    /// Counts a failure; logs it (true) when nothing was logged for [`Self::EVERY`].
    fn note(&mut self, error: &std::io::Error) -> bool {
        self.since += 1;
        if self
            .last_logged
            .is_some_and(|at| at.elapsed() < Self::EVERY)
        {
            return false;
        }
        let out_of_files = matches!(error.raw_os_error(), Some(23 | 24)); // ENFILE, EMFILE
        if out_of_files {
            tracing::warn!(
                %error,
                failures = self.since,
                "accept failed: out of open files; retrying every 50 ms (raise ulimit -n or lower max_connections)"
            );
        } else {
            tracing::warn!(%error, failures = self.since, "accept failed; retrying every 50 ms");
        }
        self.last_logged = Some(Instant::now());
        self.since = 0;
        true
    }

    /// An accept worked: says so once after failures, with those not logged yet.
    fn recovered(&mut self) {
        if self.last_logged.take().is_some() {
            tracing::info!(
                failures_since_last_warning = self.since,
                "accepting connections again"
            );
            self.since = 0;
        }
    }
}

/// An accepted connection: registered with the accept loop's runtime, or not yet
/// with any (to be registered with the core's it runs on).
enum Accepted {
    Registered(TcpStream),
    Unregistered(std::net::TcpStream),
}

/// One accepted connection, holding its `permit`: the TLS handshake first when the
/// listener has TLS (given up on shutdown), then HTTP.
async fn connection<H: Handler>(
    (stream, permit): (Accepted, ConnectionPermit),
    peer: SocketAddr,
    handler: Arc<H>,
    (shutdown, metrics, settings): (Shutdown, HttpMetrics, ConnectionSettings),
    tls: Option<ServerTls>,
) {
    let stream = match stream {
        Accepted::Registered(stream) => stream,
        Accepted::Unregistered(stream) => match TcpStream::from_std(stream) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, %peer, "could not register the connection");
                return;
            }
        },
    };
    let Some(tls) = tls else {
        let stream = ServerIo::new(stream, permit, shutdown.clone());
        return serve_connection(stream, peer, handler, (shutdown, metrics), settings).await;
    };
    let accepted = tokio::select! {
        accepted = tls::accept(stream, &tls, peer) => accepted,
        () = shutdown.triggered() => None,
    };
    if let Some(stream) = accepted {
        let stream = ServerIo::new(stream, permit, shutdown.clone());
        serve_connection(stream, peer, handler, (shutdown, metrics), settings).await;
    }
}

async fn serve_connection<H, S>(
    stream: S,
    peer: SocketAddr,
    handler: Arc<H>,
    (shutdown, metrics): (Shutdown, HttpMetrics),
    settings: ConnectionSettings,
) where
    H: Handler,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Each request takes a reference to this connection's own copy of what it
    // needs, not to the handler, metrics and signal themselves, which every
    // connection on every core shares (a reference count there moves between
    // cores with every request).
    let scope = Arc::new((handler, metrics, shutdown.clone()));
    let service = service_fn(move |request| {
        let scope = scope.clone();
        async move {
            let (handler, metrics, shutdown) = &*scope;
            let ctx = RequestContext {
                request_id: RequestId::random(),
                peer,
                shutdown: shutdown.clone(),
            };
            Ok::<_, std::convert::Infallible>(logged(handler.as_ref(), request, ctx, metrics).await)
        }
    });
    // Every close goes through the stream's `poll_shutdown`, which lingers (see
    // `linger.rs`), so an answer sent before a body was read is not lost to a reset.
    let mut builder = http1::Builder::new();
    builder
        .timer(super::timer::CoarseTimer)
        .header_read_timeout(settings.header_read_timeout);
    // Not `pipeline_flush`: with it, hyper 1.x drops an answer given before the
    // request's body was read (a 413) when it then closes the connection
    // (runtime_api's `bodies_over_the_limit_are_413_payload_too_large`);
    // `coalesce.rs` holds the writes below hyper instead.
    let result = if settings.coalesce_writes {
        let (stream, flusher) = coalesce::coalescing(stream);
        let connection = builder
            .serve_connection(TokioIo::new(TypedParseErrors::new(stream)), service)
            .with_upgrades();
        let connection = std::pin::pin!(FlushAfterPoll::new(connection, flusher));
        until_done(connection, &shutdown, |c| {
            c.get_mut().connection().graceful_shutdown();
        })
        .await
    } else {
        let connection = builder
            .serve_connection(TokioIo::new(TypedParseErrors::new(stream)), service)
            .with_upgrades();
        until_done(std::pin::pin!(connection), &shutdown, |c| {
            c.graceful_shutdown();
        })
        .await
    };
    if let Err(error) = result {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

/// Drives `connection` to its end; when `shutdown` fires first, asks it to
/// finish gracefully (`graceful`) and drives it on. The signal is looked at only
/// when the connection has nothing to do, through a [`Watch`](super::shutdown::Watch).
async fn until_done<C: Future>(
    mut connection: Pin<&mut C>,
    shutdown: &Shutdown,
    graceful: impl FnOnce(Pin<&mut C>),
) -> C::Output {
    let mut watch = shutdown.watch();
    let finished = std::future::poll_fn(|cx| match connection.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => watch.poll_fired(cx).map(|()| None),
    })
    .await;
    match finished {
        Some(output) => output,
        None => {
            graceful(connection.as_mut());
            connection.await
        }
    }
}

/// A request's id: sixteen random lower-case hex digits (no formatting machinery,
/// and kept in place rather than in a `String`: this runs for every request), sent
/// back as `x-request-id` (the header value is made once, for the answer).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; 16]);

impl RequestId {
    /// The header every answer carries it in.
    pub const HEADER: http::HeaderName = http::HeaderName::from_static("x-request-id");

    /// A fresh random id.
    pub fn random() -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = fastrand::u64(..);
        Self(std::array::from_fn(|i| {
            HEX[((n >> (60 - 4 * i)) & 0xf) as usize]
        }))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Hex digits only, so never the empty fallback.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The id as the value of an `x-request-id` header.
    pub fn header(&self) -> HeaderValue {
        // Hex digits are always a valid header value.
        HeaderValue::from_bytes(&self.0).unwrap_or(HeaderValue::from_static("0"))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestId({})", self.as_str())
    }
}

/// Runs the handler, counts the answer in the metrics, and writes the one log line of
/// the request: method, path (no query: it may hold cursors), status, duration and
/// request id. The path is copied only when the line will be written.
async fn logged<H: Handler>(
    handler: &H,
    mut request: http::Request<Incoming>,
    ctx: RequestContext,
    metrics: &HttpMetrics,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    if method == Method::HEAD {
        as_get(&mut request);
    }
    let path = tracing::enabled!(target: "switchyard::http", tracing::Level::INFO)
        .then(|| request.uri().path().to_owned());
    let id = ctx.request_id;
    let Answer {
        mut response,
        route,
    } = match AssertUnwindSafe(handler.handle(request, ctx))
        .catch_unwind()
        .await
    {
        Ok(answer) => answer,
        Err(panic) => panicked(id, panic.as_ref()),
    };
    let elapsed = started.elapsed();
    metrics.record(route, &method, response.status().as_u16(), elapsed);
    if let Some(path) = path {
        tracing::info!(
            target: "switchyard::http",
            request_id = id.as_str(),
            method = %method,
            // Quoted and escaped: a path is the client's bytes (a `"`, a line or
            // paragraph separator in it must not forge a field or a line).
            path = ?path,
            status = response.status().as_u16(),
            duration_us = elapsed.as_micros() as u64,
            "request"
        );
    }
    // In place where the handler left a slot for it (a relayed answer does).
    response
        .headers_mut()
        .insert(RequestId::HEADER, id.header());
    response
}

/// The answer to a request whose handler panicked (a bug, here or in a runtime
/// source or policy a program added): `500 internal` naming the request id, with
/// the browser-defence headers, instead of a connection closed without an answer.
/// The panic's message goes to the log only.
fn panicked(id: RequestId, panic: &(dyn std::any::Any + Send)) -> Answer {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)");
    tracing::error!(
        request_id = id.as_str(),
        panic = message,
        "a request's handler panicked"
    );
    let mut response = super::ApiError::internal(id.as_str()).into_response();
    crate::backend_api::browser::security_headers(response.headers_mut());
    response.into()
}

/// Turns a `HEAD` request into the `GET` it asks the head of, for the handler: the
/// method, and no `Upgrade` header, so that no route answers it with a WebSocket
/// handshake (a `HEAD` never starts an event stream; an event stream's route answers
/// it as it answers a plain `GET`, `400 invalid_request`).
///
/// The answer needs nothing more: hyper remembers that the request was a `HEAD` and
/// writes the head of the answer alone, with the `Content-Length` of the body it
/// leaves out (hyper 1.x, `proto/h1/role.rs`: `Server::can_have_body` is false for
/// `HEAD`, and the length comes from the body's exact size). A test holds the bytes
/// on the wire to that (`crates/server/tests/head.rs`).
fn as_get(request: &mut http::Request<Incoming>) {
    *request.method_mut() = Method::GET;
    request.headers_mut().remove(http::header::UPGRADE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_wake_horizon_timer_ends_with_its_server() {
        let shutdown = Shutdown::new();
        let ticking = tokio::spawn(keep_wakes_near(shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!ticking.is_finished(), "it runs while the server does");
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), ticking)
            .await
            .expect("it ends at shutdown")
            .expect("no panic");
    }

    #[test]
    fn sessions_run_on_the_runtime_the_signal_was_made_on() {
        let home = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("home-runtime")
            .enable_all()
            .build()
            .unwrap();
        let shutdown = home.block_on(async { Shutdown::new() });
        // A session spawned from another runtime's thread, as a connection
        // thread does on a WebSocket upgrade.
        let elsewhere = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (ran_on, on_thread) = std::sync::mpsc::channel();
        elsewhere.block_on(async {
            shutdown.spawn_session(async move {
                let name = std::thread::current().name().map(str::to_owned);
                let _ = ran_on.send(name);
            });
        });
        let name = on_thread.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(name.as_deref(), Some("home-runtime"));
        home.block_on(shutdown.wait_sessions(Duration::from_secs(5)));
        assert_eq!(shutdown.open_sessions(), 0);
    }

    #[test]
    fn failed_accepts_are_logged_once_per_period_not_per_retry() {
        let mut failures = AcceptFailures::default();
        let error = std::io::Error::from_raw_os_error(24); // EMFILE
        assert!(failures.note(&error), "the first is logged");
        assert!(
            (0..200).all(|_| !failures.note(&error)),
            "the retries are counted"
        );
        assert_eq!(failures.since, 200);
        failures.last_logged = Some(Instant::now() - AcceptFailures::EVERY);
        assert!(failures.note(&error), "and logged again after the period");
        assert_eq!(failures.since, 0);
        assert!(!failures.note(&error));
        failures.recovered();
        assert_eq!(
            (failures.since, failures.last_logged),
            (0, None),
            "recovery said"
        );
        assert!(
            failures.note(&error),
            "a new run of failures is logged at once"
        );
    }

    #[test]
    fn request_ids_are_sixteen_hex_digits() {
        let id = RequestId::random();
        assert_eq!(id.as_str().len(), 16);
        assert!(
            id.as_str()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(id.header().as_bytes(), id.as_str().as_bytes());
        assert_eq!(format!("{id:?}"), format!("RequestId({id})"));
        assert_eq!(id.to_string(), id.as_str());
        assert_ne!(id, RequestId::random());
    }
}
