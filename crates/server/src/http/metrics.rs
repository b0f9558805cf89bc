//! [`HttpMetrics`]: requests by route template, method and status, with their
//! latency, counted by the accept loop for every answer of either surface.
//!
//! The route label is the matched route's template (`/api/runtimes/{runtime_id}/
//! workers/{worker_id}`), which the handler returns beside its response (a
//! [`MatchedRoute`] in its `Answer`); never the raw path, whose ids would make one series
//! per worker. Answers without one (refused before routing, or no route matched) are
//! labelled [`UNMATCHED`]. Methods outside the standard set are labelled `other`.
//!
//! Counting runs for every request, so an answer's counter and histogram are looked
//! up by a cheap key (the template's address, method and status) in a table of
//! handles, not by hashing the label strings into the families each time. Each
//! thread keeps its own table: requests are served on one thread per core, and a
//! table shared by the cores would be a lock (and reference counts) that every
//! request on every core takes. Only the counter and histogram themselves are
//! shared.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Method;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use switchyard_registry::metrics::{LatencyFamily, latency_family};

/// The route label of answers that matched no route or were refused before routing.
pub const UNMATCHED: &str = "unmatched";

/// The route template an answer was routed by: the handler returns it beside the
/// response, the accept loop counts it. Templates live in static route tables, so
/// the label is never copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MatchedRoute(pub &'static str);

impl MatchedRoute {
    /// A route label that is not a table's template (`console`, `unmatched`).
    pub fn fixed(label: &'static str) -> Self {
        Self(label)
    }
}

impl EncodeLabelValue for MatchedRoute {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.0, encoder)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: MatchedRoute,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    route: MatchedRoute,
    method: &'static str,
}

/// The request families of one process. Cheap to clone; clones share the counts.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: LatencyFamily<DurationLabels>,
    /// Which families these are, in the threads' tables ([`THREAD_HANDLES`]).
    id: u64,
}

/// Ids of the [`HttpMetrics`] made so far, process-wide.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's handles of every label set it counted, by the families' id.
    /// Bounded: families × routes × methods × statuses, all finite (a process has
    /// one or two sets of families).
    static THREAD_HANDLES: RefCell<HashMap<(u64, HandleKey), Handles, rustc_hash::FxBuildHasher>> =
        RefCell::default();
}

/// What finds an answer's [`Handles`]: the template by address and length (two
/// templates with the same text but different addresses get two entries for one
/// label set, which is harmless), the method's label, the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct HandleKey {
    route: (usize, usize),
    method: &'static str,
    status: u16,
}

/// The counter and histogram of one label set, shared with the families.
#[derive(Debug, Clone)]
struct Handles {
    requests: Counter,
    duration: Histogram,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            durations: latency_family(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// The method label: the standard methods by name, anything else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl HttpMetrics {
    /// Registers the families.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "switchyard_http_requests",
            "HTTP requests answered, by route template, method and status",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "switchyard_http_request_duration",
            "Time from a request's headers to its answer, by route template and method (for a WebSocket, until the upgrade)",
            Unit::Seconds,
            self.durations.clone(),
        );
    }

    /// Counts one answer.
    pub fn record(
        &self,
        route: Option<MatchedRoute>,
        method: &Method,
        status: u16,
        elapsed: Duration,
    ) {
        let route = route.unwrap_or(MatchedRoute(UNMATCHED));
        let key = HandleKey {
            route: (route.0.as_ptr() as usize, route.0.len()),
            method: method_label(method),
            status,
        };
        let count = |handles: &Handles| {
            handles.duration.observe(elapsed.as_secs_f64());
            handles.requests.inc();
        };
        let counted = THREAD_HANDLES.try_with(|table| {
            let mut table = table.borrow_mut();
            count(
                table
                    .entry((self.id, key))
                    .or_insert_with(|| self.handles_for(key, route)),
            );
        });
        // Only while this thread's locals are being destroyed.
        if counted.is_err() {
            count(&self.handles_for(key, route));
        }
    }

    /// The handles of a label set, from the families (which make it the first
    /// time any thread counts it).
    fn handles_for(&self, key: HandleKey, route: MatchedRoute) -> Handles {
        Handles {
            requests: self
                .requests
                .get_or_create(&RequestLabels {
                    route,
                    method: key.method,
                    status: key.status,
                })
                .clone(),
            duration: self
                .durations
                .get_or_create(&DurationLabels {
                    route,
                    method: key.method,
                })
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_by_template_method_and_status() {
        let metrics = HttpMetrics::default();
        let route = MatchedRoute("/v1/workers/{worker_id}");
        for status in [200, 200, 404] {
            metrics.record(Some(route), &Method::GET, status, Duration::from_millis(1));
        }
        let odd = Method::from_bytes(b"BREW").unwrap();
        metrics.record(None, &odd, 405, Duration::from_millis(1));
        let text = exposition(&metrics);
        for line in [
            "switchyard_http_requests_total{route=\"/v1/workers/{worker_id}\",method=\"GET\",status=\"200\"} 2\n",
            "switchyard_http_requests_total{route=\"/v1/workers/{worker_id}\",method=\"GET\",status=\"404\"} 1\n",
            "switchyard_http_requests_total{route=\"unmatched\",method=\"other\",status=\"405\"} 1\n",
            "switchyard_http_request_duration_seconds_count{route=\"/v1/workers/{worker_id}\",method=\"GET\"} 3\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
    }

    /// The text of `metrics`' families.
    fn exposition(metrics: &HttpMetrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn threads_count_into_the_same_series_and_separate_metrics_stay_apart() {
        // Each thread keeps its own handles: the counts of every thread must
        // still land in one series, and another set of families made on the
        // same threads must not receive them.
        let route = MatchedRoute("/v1/workers");
        let shared = HttpMetrics::default();
        let other = HttpMetrics::default();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..25 {
                        shared.record(Some(route), &Method::GET, 200, Duration::from_millis(1));
                    }
                    other.record(Some(route), &Method::GET, 200, Duration::from_millis(1));
                });
            }
        });
        let line =
            "switchyard_http_requests_total{route=\"/v1/workers\",method=\"GET\",status=\"200\"}";
        assert!(exposition(&shared).contains(&format!("{line} 100\n")));
        assert!(exposition(&other).contains(&format!("{line} 4\n")));
        // A clone counts into its original's series.
        shared
            .clone()
            .record(Some(route), &Method::GET, 200, Duration::from_millis(1));
        assert!(exposition(&shared).contains(&format!("{line} 101\n")));
    }
}
