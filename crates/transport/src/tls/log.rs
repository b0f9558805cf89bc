//! [`TlsLog`]: the operator's log lines about TLS failures towards one runtime.
//!
//! Clients get a [`TlsFailure`] kind and nothing else; the operator gets rustls'
//! detail (which certificate, which names) with the runtime's id, once at WARN when
//! a failure starts or changes, then at DEBUG while it repeats, so a runtime that
//! stays misconfigured does not flood the log on every probe and call.

use std::error::Error as StdError;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::failure::tls_failure_in;
use crate::error::{TlsFailure, TransportError};

/// Logs TLS failures of one client, naming the runtime by `label`.
#[derive(Debug, Default)]
pub(crate) struct TlsLog {
    /// How log lines name the runtime (its id; never its address).
    label: String,
    /// Set while the last outcome was a TLS failure (read on every success).
    failing: AtomicBool,
    /// The last failure logged at WARN.
    last: Mutex<Option<(TlsFailure, String)>>,
}

impl TlsLog {
    /// A log for the runtime called `label`.
    pub(crate) fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            ..Self::default()
        }
    }

    /// Logs the TLS detail in `raw` when `mapped` (what `raw` was mapped to) is a
    /// TLS failure.
    pub(crate) fn note(&self, raw: &(dyn StdError + 'static), mapped: &TransportError) {
        if let TransportError::Tls { kind } = mapped {
            let detail = tls_failure_in(raw).map_or_else(String::new, |(_, detail)| detail);
            self.failed(*kind, detail);
        }
    }

    /// Logs a TLS failure of `kind` with `detail`.
    pub(crate) fn failed(&self, kind: TlsFailure, detail: String) {
        self.failing.store(true, Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let entry = (kind, detail);
        if last.as_ref() == Some(&entry) {
            tracing::debug!(runtime_id = %self.label, kind = %entry.0, detail = %entry.1, "TLS towards the runtime failed again");
        } else {
            tracing::warn!(runtime_id = %self.label, kind = %entry.0, detail = %entry.1, "TLS towards the runtime failed: {}", entry.0.describe());
            *last = Some(entry);
        }
    }

    /// A call got through: the next failure is news again.
    pub(crate) fn succeeded(&self) {
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}
