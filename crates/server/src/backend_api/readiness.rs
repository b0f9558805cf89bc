//! [`Readiness`]: whether this backend wants new traffic, as `GET /readyz` tells a
//! load balancer.
//!
//! `/healthz` says the process is alive; `/readyz` says it wants new requests. Both
//! are 200 while the backend serves. On SIGTERM or SIGINT `switchyard serve` first
//! starts *draining*: `/readyz` answers `503` at once while every other route keeps
//! serving for `drain_ms`, so that a load balancer checking `/readyz` takes the
//! replica out of rotation before it stops accepting connections. Readiness does not
//! depend on the runtimes: a runtime that is down is down for every replica alike,
//! and taking replicas out for it would only move the failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http::StatusCode;
use switchyard_protocol::{ErrorCode, Health};

use crate::http::response::json;
use crate::http::{ApiError, Response};

/// What `/readyz` answers while draining (with code `runtime_unavailable`, the
/// contract's code for "draining or stopped").
pub const DRAINING_MESSAGE: &str =
    "this backend is draining: it is shutting down; send new requests to another replica";

/// Shared readiness flag: ready until [`Readiness::start_draining`], never ready
/// again after it. Cheap to clone; clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
}

impl Readiness {
    /// Ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on `/readyz` answers 503. Idempotent.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// True once draining has started.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Registers `switchyard_draining` (1 once draining: `/readyz` answers 503),
    /// read when scraped.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register_collector(Box::new(DrainingGauge(self.clone())));
    }

    /// The answer of `GET /readyz`: 200 `{"status":"ok"}`, or 503
    /// `runtime_unavailable` once draining.
    pub fn answer(&self) -> Result<Response, ApiError> {
        if self.is_draining() {
            Err(ApiError::new(
                ErrorCode::RuntimeUnavailable,
                DRAINING_MESSAGE,
            ))
        } else {
            Ok(json(StatusCode::OK, &Health::ok()))
        }
    }
}

/// How long a draining backend keeps serving (`drain_ms`), shared: clones share one
/// value, which [`DrainPeriod::replace`] changes for all of them at once (a reload).
/// A drain reads it once, when it starts: a reload during a drain does not lengthen
/// or shorten it.
#[derive(Debug, Clone, Default)]
pub struct DrainPeriod(Arc<AtomicU64>);

impl DrainPeriod {
    /// Drains for `period` (to the nanosecond, up to some 584 years).
    pub fn new(period: Duration) -> Self {
        Self(Arc::new(AtomicU64::new(nanos(period))))
    }

    /// Drains for `period` from the next drain on, in every clone.
    pub fn replace(&self, period: Duration) {
        self.0.store(nanos(period), Ordering::Relaxed);
    }

    /// The period now.
    pub fn current(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// `period` in nanoseconds, saturated.
fn nanos(period: Duration) -> u64 {
    u64::try_from(period.as_nanos()).unwrap_or(u64::MAX)
}

/// `switchyard_draining`, read from the flag when scraped.
#[derive(Debug)]
struct DrainingGauge(Readiness);

impl prometheus_client::collector::Collector for DrainingGauge {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        crate::metrics::single_gauge(
            &mut encoder,
            "switchyard_draining",
            "1 while this backend is draining (GET /readyz answers 503 until it stops), else 0",
            i64::from(self.0.is_draining()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metric_follows_the_flag() {
        let readiness = Readiness::new();
        let mut registry = prometheus_client::registry::Registry::default();
        readiness.register_metrics(&mut registry);
        let scrape = || {
            let mut text = String::new();
            prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
            text
        };
        assert!(
            scrape().contains("\nswitchyard_draining 0\n"),
            "{}",
            scrape()
        );
        readiness.start_draining();
        assert!(
            scrape().contains("\nswitchyard_draining 1\n"),
            "{}",
            scrape()
        );
    }

    #[test]
    fn clones_of_a_drain_period_share_it() {
        let period = DrainPeriod::new(Duration::from_millis(1500));
        let shared = period.clone();
        assert_eq!(period.current(), Duration::from_millis(1500));
        shared.replace(Duration::from_millis(20));
        assert_eq!(period.current(), Duration::from_millis(20));
        period.replace(Duration::MAX);
        assert_eq!(
            shared.current(),
            Duration::from_nanos(u64::MAX),
            "saturated"
        );
        assert_eq!(DrainPeriod::default().current(), Duration::ZERO);
    }

    #[test]
    fn ready_until_draining_then_503_for_good() {
        let readiness = Readiness::new();
        let shared = readiness.clone();
        assert_eq!(readiness.answer().unwrap().status(), StatusCode::OK);
        shared.start_draining();
        assert!(readiness.is_draining());
        for _ in 0..2 {
            shared.start_draining();
            let refused = readiness.answer().unwrap_err();
            assert_eq!(refused.detail.code, ErrorCode::RuntimeUnavailable);
            assert_eq!(refused.into_response().status(), 503);
        }
    }
}
