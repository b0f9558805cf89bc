//! What the registry and the observation hub count for the operator's metrics, in
//! `prometheus-client` types: upstream calls per runtime (by call and outcome, with
//! their latency), runtime view states and worker counts, and the hub's channels,
//! viewers, reconnects, slow viewers cut off and events relayed.
//!
//! **Labels are bounded.** The only open-ended label is `runtime_id`, whose values
//! come from the configuration; `call`, `outcome` (`ok` or a contract error code),
//! `state` and `status` are closed sets. Worker ids, owners and identities are never
//! a label value: they grow with use, and each value would be a series of its own.
//!
//! **The hot path stays cheap.** Counters and histograms are atomics (a histogram
//! takes one uncontended lock per observation). Each runtime resolves its label
//! handles once (per call kind, on first use) and each hub channel resolves its own
//! when it is created, so a call or an event costs no label lookup, no allocation
//! and no hashing. Gauges that are states (runtime states, worker counts, channels,
//! viewers) are not kept up to date on every change at all: a collector reads them
//! from the registry and the hub when `/metrics` is scraped.

use std::sync::{OnceLock, Weak};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use switchyard_protocol::{ErrorCode, RuntimeState, WorkerStatus};

use crate::policy::Action;

/// Upper bounds (seconds) of the latency histograms' buckets: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with [`LATENCY_BUCKETS`].
pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// A family of latency histograms.
pub type LatencyFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// An empty family of latency histograms.
pub fn latency_family<S: Clone + std::hash::Hash + Eq>() -> LatencyFamily<S> {
    Family::new_with_constructor(latency_histogram as fn() -> Histogram)
}

/// Every runtime state, in the order the metrics list them.
pub const RUNTIME_STATES: [RuntimeState; 6] = [
    RuntimeState::Ready,
    RuntimeState::Unreachable,
    RuntimeState::AuthFailed,
    RuntimeState::TlsFailed,
    RuntimeState::Incompatible,
    RuntimeState::Unknown,
];

/// Every worker status, in the order the metrics list them.
pub const WORKER_STATUSES: [WorkerStatus; 6] = WorkerStatus::ALL;

/// The `state` label of a runtime state (its JSON spelling).
pub fn state_label(state: RuntimeState) -> &'static str {
    match state {
        RuntimeState::Ready => "ready",
        RuntimeState::Unreachable => "unreachable",
        RuntimeState::AuthFailed => "auth_failed",
        RuntimeState::TlsFailed => "tls_failed",
        RuntimeState::Incompatible => "incompatible",
        RuntimeState::Unknown => "unknown",
        // A state added to the protocol later: counted apart until it is named here.
        _ => "other",
    }
}

/// The `status` label of a worker status (its JSON spelling).
pub fn status_label(status: WorkerStatus) -> &'static str {
    match status {
        WorkerStatus::Starting => "starting",
        WorkerStatus::Running => "running",
        WorkerStatus::Exited => "exited",
        WorkerStatus::Stopped => "stopped",
        WorkerStatus::Failed => "failed",
        WorkerStatus::Lost => "lost",
    }
}

/// One kind of call the backend makes to a runtime: the `call` label. A call is
/// added with each new route to a runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// The runtime's self-description (health probes, `GET /api/runtimes/{id}`).
    Info,
    /// A page (or, for `GET /api/workers`, every page) of its workers.
    ListWorkers,
    /// Start a worker.
    CreateWorker,
    /// A worker's detail.
    GetWorker,
    /// Input.
    Input,
    /// Resize a terminal.
    Resize,
    /// Cancel.
    Cancel,
    /// Stop.
    Stop,
    /// Delete.
    Delete,
    /// A transcript page.
    Transcript,
}

impl Call {
    /// How many kinds there are.
    const COUNT: usize = 10;

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Call::Info => "info",
            Call::ListWorkers => "list_workers",
            Call::CreateWorker => "create_worker",
            Call::GetWorker => "get_worker",
            Call::Input => "input",
            Call::Resize => "resize",
            Call::Cancel => "cancel",
            Call::Stop => "stop",
            Call::Delete => "delete",
            Call::Transcript => "transcript",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The call a policy action makes.
    pub(crate) fn of(action: &Action<'_>) -> Self {
        match action {
            Action::ViewRuntime => Call::Info,
            Action::ListWorkers => Call::ListWorkers,
            Action::CreateWorker { .. } => Call::CreateWorker,
            Action::ViewWorker | Action::Observe => Call::GetWorker,
            Action::Input => Call::Input,
            Action::Resize => Call::Resize,
            Action::Cancel => Call::Cancel,
            Action::Stop => Call::Stop,
            Action::Delete => Call::Delete,
            Action::ReadTranscript => Call::Transcript,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    runtime_id: String,
    call: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallDurationLabels {
    runtime_id: String,
    call: &'static str,
}

/// The `runtime_id` label alone.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RuntimeLabel {
    runtime_id: String,
}

/// The upstream-call families of one registry, shared by its runtimes.
#[derive(Debug, Clone)]
pub(crate) struct CallMetrics {
    calls: Family<CallLabels, Counter>,
    durations: LatencyFamily<CallDurationLabels>,
}

impl Default for CallMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            durations: latency_family(),
        }
    }
}

impl CallMetrics {
    /// The handles of one runtime.
    pub(crate) fn for_runtime(&self, runtime_id: &str) -> RuntimeCalls {
        RuntimeCalls {
            runtime_id: runtime_id.to_owned(),
            shared: self.clone(),
            slots: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "switchyard_upstream_calls",
            "Calls the backend made to each runtime, by call and outcome (ok, or the contract error code)",
            self.calls.clone(),
        );
        registry.register_with_unit(
            "switchyard_upstream_call_duration",
            "How long each call to a runtime took, whatever its outcome",
            Unit::Seconds,
            self.durations.clone(),
        );
    }
}

struct CallSlot {
    ok: Counter,
    duration: Histogram,
}

/// One runtime's upstream-call handles, resolved once per call kind.
pub(crate) struct RuntimeCalls {
    runtime_id: String,
    shared: CallMetrics,
    slots: [OnceLock<CallSlot>; Call::COUNT],
}

impl RuntimeCalls {
    fn slot(&self, call: Call) -> &CallSlot {
        self.slots[call.index()].get_or_init(|| CallSlot {
            ok: self.shared.calls.get_or_create_owned(&CallLabels {
                runtime_id: self.runtime_id.clone(),
                call: call.as_str(),
                outcome: "ok",
            }),
            duration: self
                .shared
                .durations
                .get_or_create_owned(&CallDurationLabels {
                    runtime_id: self.runtime_id.clone(),
                    call: call.as_str(),
                }),
        })
    }

    /// Counts one call that took `elapsed` and ended with `error` (`None`: ok).
    pub(crate) fn record(&self, call: Call, elapsed: Duration, error: Option<ErrorCode>) {
        let slot = self.slot(call);
        slot.duration.observe(elapsed.as_secs_f64());
        match error {
            None => {
                slot.ok.inc();
            }
            // Failures are rarer than successes: their label set is looked up.
            Some(code) => {
                self.shared
                    .calls
                    .get_or_create(&CallLabels {
                        runtime_id: self.runtime_id.clone(),
                        call: call.as_str(),
                        outcome: code.as_str(),
                    })
                    .inc();
            }
        }
    }
}

/// The hub's counters, by runtime.
#[derive(Debug, Clone, Default)]
pub(crate) struct HubMetrics {
    reconnects: Family<RuntimeLabel, Counter>,
    cut_off: Family<RuntimeLabel, Counter>,
    relayed: Family<RuntimeLabel, Counter>,
}

/// One channel's counter handles (those of its runtime).
#[derive(Debug, Clone)]
pub(crate) struct ChannelMetrics {
    /// Subscriptions attempted again after the upstream was lost.
    pub(crate) reconnects: Counter,
    /// Viewers cut off because their queue was full.
    pub(crate) cut_off: Counter,
    /// Events received from the upstream and published to the viewers.
    pub(crate) relayed: Counter,
}

impl HubMetrics {
    /// The handles of a channel of `runtime_id`.
    pub(crate) fn for_runtime(&self, runtime_id: &str) -> ChannelMetrics {
        let label = RuntimeLabel {
            runtime_id: runtime_id.to_owned(),
        };
        ChannelMetrics {
            reconnects: self.reconnects.get_or_create_owned(&label),
            cut_off: self.cut_off.get_or_create_owned(&label),
            relayed: self.relayed.get_or_create_owned(&label),
        }
    }

    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "switchyard_hub_upstream_reconnects",
            "Event subscriptions the hub attempted again after a runtime's stream was lost",
            self.reconnects.clone(),
        );
        registry.register(
            "switchyard_hub_viewers_cut_off",
            "Event-stream viewers closed with 4408 because they fell too far behind",
            self.cut_off.clone(),
        );
        registry.register(
            "switchyard_hub_events_relayed",
            "Events the hub received from runtimes and passed to its viewers (once per event, whatever the number of viewers)",
            self.relayed.clone(),
        );
    }
}

/// Writes one gauge family from `(labels, value)` pairs.
pub fn encode_gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Reads a value (a registry, a hub) at scrape time, if it still exists.
pub(crate) struct ScrapeTime<T> {
    pub(crate) source: Weak<T>,
    pub(crate) encode: fn(&T, &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error>,
}

impl<T> std::fmt::Debug for ScrapeTime<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeTime").finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Collector for ScrapeTime<T> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        match self.source.upgrade() {
            Some(source) => (self.encode)(&source, &mut encoder),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_call_and_every_call_a_distinct_slot() {
        let calls = [
            Call::Info,
            Call::ListWorkers,
            Call::CreateWorker,
            Call::GetWorker,
            Call::Input,
            Call::Resize,
            Call::Cancel,
            Call::Stop,
            Call::Delete,
            Call::Transcript,
        ];
        assert_eq!(calls.len(), Call::COUNT);
        for (i, call) in calls.iter().enumerate() {
            assert_eq!(call.index(), i, "{}", call.as_str());
        }
        assert_eq!(
            Call::of(&Action::CreateWorker { profile: "p" }),
            Call::CreateWorker
        );
        assert_eq!(Call::of(&Action::ReadTranscript), Call::Transcript);
    }

    #[test]
    fn labels_spell_states_and_statuses_as_the_json_does() {
        for state in RUNTIME_STATES {
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                state_label(state),
                "{state:?}"
            );
        }
        for status in WORKER_STATUSES {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                status_label(status),
                "{status:?}"
            );
        }
    }

    #[test]
    fn a_runtime_counts_successes_on_its_handle_and_failures_by_code() {
        let shared = CallMetrics::default();
        let calls = shared.for_runtime("rt");
        calls.record(Call::Input, Duration::from_millis(3), None);
        calls.record(Call::Input, Duration::from_millis(4), None);
        calls.record(
            Call::Input,
            Duration::from_millis(5),
            Some(ErrorCode::RuntimeUnreachable),
        );
        let mut registry = Registry::default();
        shared.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                "switchyard_upstream_calls_total{runtime_id=\"rt\",call=\"input\",outcome=\"ok\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("switchyard_upstream_calls_total{runtime_id=\"rt\",call=\"input\",outcome=\"runtime_unreachable\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "switchyard_upstream_call_duration_seconds_count{runtime_id=\"rt\",call=\"input\"} 3\n"
            ),
            "{text}"
        );
    }
}
