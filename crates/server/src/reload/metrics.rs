//! The reload metrics of a backend and of a standalone runtime:
//! `switchyard_config_reloads_total{outcome}` (`ok` or `invalid_config`), `switchyard_config_last_reload_successful` (1 or 0) and
//! `switchyard_config_last_reload_success_timestamp_seconds` (start-up counts as the
//! first success), so that an operator can alert on a configuration that did not
//! apply.

use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// The reload counters and gauges of one process. Clones share them.
#[derive(Debug, Clone)]
pub(crate) struct ReloadMetrics {
    reloads: Family<Outcome, Counter>,
    last_successful: Gauge,
    last_success: Gauge<f64, AtomicU64>,
}

impl Default for ReloadMetrics {
    fn default() -> Self {
        let metrics = Self {
            reloads: Family::default(),
            last_successful: Gauge::default(),
            last_success: Gauge::default(),
        };
        for outcome in ["ok", "invalid_config"] {
            let _ = metrics.reloads.get_or_create(&Outcome { outcome });
        }
        metrics.last_successful.set(1);
        metrics.last_success.set(now());
        metrics
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl ReloadMetrics {
    /// Counts one reload.
    pub(crate) fn record(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "invalid_config" };
        self.reloads.get_or_create(&Outcome { outcome }).inc();
        self.last_successful.set(i64::from(ok));
        if ok {
            self.last_success.set(now());
        }
    }

    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "switchyard_config_reloads",
            "Configuration reloads (SIGHUP; on a backend also POST /api/admin/reload) by outcome: ok, or invalid_config (nothing changed)",
            self.reloads.clone(),
        );
        registry.register(
            "switchyard_config_last_reload_successful",
            "1 when the last reload applied (or none was tried since start-up), 0 when it was refused",
            self.last_successful.clone(),
        );
        registry.register_with_unit(
            "switchyard_config_last_reload_success_timestamp",
            "When the configuration in force was applied (start-up or the last successful reload), in seconds since the Unix epoch",
            Unit::Seconds,
            self.last_success.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_are_counted_by_outcome_and_the_last_one_is_remembered() {
        let metrics = ReloadMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let scrape = || {
            let mut text = String::new();
            prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
            text
        };
        let has = |text: &str, line: &str| assert!(text.contains(line), "no {line:?} in\n{text}");
        let text = scrape();
        has(&text, "switchyard_config_reloads_total{outcome=\"ok\"} 0\n");
        has(&text, "switchyard_config_last_reload_successful 1\n");
        metrics.record(true);
        metrics.record(false);
        let text = scrape();
        has(&text, "switchyard_config_reloads_total{outcome=\"ok\"} 1\n");
        has(
            &text,
            "switchyard_config_reloads_total{outcome=\"invalid_config\"} 1\n",
        );
        has(&text, "switchyard_config_last_reload_successful 0\n");
        metrics.record(true);
        has(&scrape(), "switchyard_config_last_reload_successful 1\n");
    }
}
