//! The metrics each process exports in the Prometheus text format (0.0.4), assembled
//! into one `prometheus-client` registry per process (never a global one), and how
//! they are served.
//!
//! - The backend ([`Metrics::backend`]): requests (from the accept loop), upstream
//!   calls per runtime and the runtime views (from the registry), the hub's channels,
//!   viewers, reconnects, slow viewers and events relayed, connections and WebSocket
//!   sessions, process start time and build info. `GET /metrics` on the main
//!   listener (admins only when auth is on), and on `metrics_listen` without auth
//!   ([`MetricsOnly`]).
//! - A runtime ([`Metrics::runtime`]): requests, connections, WebSocket sessions, its
//!   workers by status, event subscribers, whether it is draining, process start time
//!   and build info. `GET /v1/metrics` under its token.
//!
//! Where the values come from, and why labels are bounded: `switchyard_registry::
//! metrics` and ARCHITECTURE.md.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, StatusCode};
use hyper::body::Incoming;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use switchyard_protocol::ErrorCode;
use switchyard_registry::metrics::{WORKER_STATUSES, encode_gauges, status_label};
use switchyard_registry::{ObservationHub, RuntimeRegistry};
use switchyard_runtime::Runtime;

use crate::backend_api::AllowedHosts;
use crate::http::response::Body;
use crate::http::router::respond;
use crate::http::{
    Answer, ApiError, ConnectionLimit, Handler, HttpMetrics, MatchedRoute, RequestContext,
    Response, Shutdown,
};

/// The path of the metrics on the backend's listeners.
pub const METRICS_PATH: &str = "/metrics";

/// The content type of the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE_TEXT: &str = prometheus_text::CONTENT_TYPE;

/// The connection limit of the `metrics_listen` listener (scrapers need few).
pub const METRICS_LISTEN_MAX_CONNECTIONS: usize = 64;

/// One process's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

/// What a process's listener contributes: its connection limit (connections open,
/// refused) and its WebSocket sessions.
#[derive(Debug, Clone)]
pub struct ListenerParts {
    /// The main listener's limit.
    pub limit: ConnectionLimit,
    /// The main listener's shutdown signal, which tracks its WebSocket sessions.
    pub shutdown: Shutdown,
    /// Its request counters.
    pub http: HttpMetrics,
}

impl ListenerParts {
    /// Parts of no listener: everything at zero.
    pub fn unattached() -> Self {
        Self {
            limit: ConnectionLimit::default(),
            shutdown: Shutdown::new(),
            http: HttpMetrics::default(),
        }
    }
}

impl Metrics {
    /// The backend's metrics over its `registry`, `hub` and main listener.
    pub fn backend(
        registry: &Arc<RuntimeRegistry>,
        hub: &ObservationHub,
        listener: &ListenerParts,
    ) -> Self {
        let mut metrics = Self::common(listener);
        registry.register_metrics(&mut metrics.registry);
        hub.register_metrics(&mut metrics.registry);
        metrics
    }

    /// A runtime's metrics over `runtime` and its listener.
    pub fn runtime(runtime: &Runtime, listener: &ListenerParts) -> Self {
        let mut metrics = Self::common(listener);
        metrics.registry.register_collector(Box::new(RuntimeGauges {
            runtime: runtime.clone(),
        }));
        metrics
    }

    /// These metrics and `reload`'s (a standalone runtime's reloads).
    pub(crate) fn with_reload(mut self, reload: &crate::reload::metrics::ReloadMetrics) -> Self {
        reload.register(&mut self.registry);
        self
    }

    /// A runtime's metrics without a listener (an API not served by `switchyard
    /// runtime`, as in-process tests build it): its workers and the process only.
    pub fn runtime_alone(runtime: &Runtime) -> Self {
        let mut metrics = Self {
            registry: Registry::default(),
        };
        register_process(&mut metrics.registry);
        metrics.registry.register_collector(Box::new(RuntimeGauges {
            runtime: runtime.clone(),
        }));
        metrics
    }

    fn common(listener: &ListenerParts) -> Self {
        let mut registry = Registry::default();
        register_process(&mut registry);
        listener.http.register(&mut registry);
        registry.register(
            "switchyard_connections_refused",
            "Connections refused with 503 overloaded because max_connections were open",
            listener.limit.refused().clone(),
        );
        registry.register_collector(Box::new(ListenerGauges {
            limit: listener.limit.clone(),
            shutdown: listener.shutdown.clone(),
        }));
        Self { registry }
    }

    /// The registry, to add more.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        if let Err(error) = prometheus_text::encode(&mut text, &self.registry) {
            // Writing to a String does not fail; a collector's error would be a bug.
            tracing::error!(%error, "could not encode the metrics");
        }
        text
    }

    /// `200` with the exposition text.
    pub fn answer(&self) -> Response {
        let mut response = http::Response::new(Body::new(self.encode().into()));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
        response
    }
}

/// `process_start_time_seconds`, `switchyard_build_info{version}` and, once the
/// binary has set up its log, `switchyard_log_lines_dropped_total`.
fn register_process(registry: &mut Registry) {
    registry.register_collector(Box::new(LogCounters));
    let started: Gauge<f64, AtomicU64> = Gauge::default();
    started.set(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    );
    registry.register_with_unit(
        "process_start_time",
        "When the process started, in seconds since the Unix epoch",
        Unit::Seconds,
        started,
    );
    registry.register(
        "switchyard_build",
        "The running build: its version",
        Info::new([("version", env!("CARGO_PKG_VERSION"))]),
    );
}

/// The binary's log lines dropped because their reader fell behind
/// ([`crate::logging`]), read when scraped; nothing for a program with a log of its
/// own.
#[derive(Debug)]
struct LogCounters;

impl Collector for LogCounters {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(dropped) = crate::logging::dropped_lines() else {
            return Ok(());
        };
        ConstCounter::new(dropped).encode(encoder.encode_descriptor(
            "switchyard_log_lines_dropped",
            "Log lines dropped because standard error's reader fell behind (the servers never wait for it)",
            None,
            MetricType::Counter,
        )?)
    }
}

/// Connections and WebSocket sessions, read when scraped.
#[derive(Debug)]
struct ListenerGauges {
    limit: ConnectionLimit,
    shutdown: Shutdown,
}

/// Writes one gauge without labels.
pub fn single_gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn count(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for ListenerGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        single_gauge(
            &mut encoder,
            "switchyard_connections",
            "Connections open on the main listener right now (WebSocket sessions included)",
            count(self.limit.open()),
        )?;
        single_gauge(
            &mut encoder,
            "switchyard_connections_max",
            "max_connections of the main listener",
            count(self.limit.max()),
        )?;
        single_gauge(
            &mut encoder,
            "switchyard_websocket_sessions",
            "WebSocket sessions open right now",
            count(self.shutdown.open_sessions()),
        )
    }
}

/// A runtime's workers, subscribers and draining state, read when scraped.
struct RuntimeGauges {
    runtime: Runtime,
}

impl std::fmt::Debug for RuntimeGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeGauges").finish_non_exhaustive()
    }
}

impl Collector for RuntimeGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let info = self.runtime.info();
        encode_gauges(
            &mut encoder,
            "switchyard_workers",
            "This runtime's workers by status",
            WORKER_STATUSES.into_iter().map(|status| {
                (
                    [("status", status_label(status))],
                    i64::try_from(info.workers.get(status)).unwrap_or(i64::MAX),
                )
            }),
        )?;
        single_gauge(
            &mut encoder,
            "switchyard_event_subscribers",
            "Event subscriptions open on this runtime's workers (a backend watching a worker holds one)",
            i64::try_from(info.subscribers).unwrap_or(i64::MAX),
        )?;
        single_gauge(
            &mut encoder,
            "switchyard_draining",
            "1 while this runtime is draining (shutting down), else 0",
            i64::from(self.runtime.is_draining()),
        )
    }
}

/// The `metrics_listen` listener's handler: `GET /metrics` (and so `HEAD`), nothing
/// else, without authentication, for the `Host` names the backend answers to.
pub struct MetricsOnly {
    metrics: Arc<Metrics>,
    hosts: AllowedHosts,
    route: MatchedRoute,
}

impl MetricsOnly {
    /// Serves `metrics` to requests whose `Host` is in `hosts`.
    pub fn new(metrics: Arc<Metrics>, hosts: AllowedHosts) -> Self {
        Self {
            metrics,
            hosts,
            route: MatchedRoute::fixed(METRICS_PATH),
        }
    }

    fn answer(&self, request: &http::Request<Incoming>) -> Result<Response, ApiError> {
        self.hosts.check(request.uri(), request.headers())?;
        if request.uri().path() != METRICS_PATH {
            return Err(ApiError::new(
                ErrorCode::RouteNotFound,
                format!(
                    "no route {}; this listener serves only GET {METRICS_PATH}",
                    request.uri().path()
                ),
            ));
        }
        if request.method() != Method::GET {
            return Err(crate::http::router::method_not_allowed(
                request.method(),
                METRICS_PATH,
                &[Method::GET],
            ));
        }
        Ok(self.metrics.answer())
    }
}

impl Handler for MetricsOnly {
    async fn handle(&self, request: http::Request<Incoming>, ctx: RequestContext) -> Answer {
        let response = respond(self.answer(&request), &ctx);
        let route = (response.status() != StatusCode::NOT_FOUND).then_some(self.route);
        Answer::labelled(response, route)
    }
}
