//! Audit lines: one INFO event with target `audit` per command (create, input,
//! cancel, stop, delete, session start and end), whatever its outcome, including
//! refusals by the browser defences, authentication and the policy.
//!
//! Fields: `identity` (the caller's name, `-` when unknown), `action`, `runtime_id`,
//! `worker_id` (`-` when none; for a create, the new worker's), `owner` (the worker's
//! owner beside the actor: a name, `-` for a worker without one or no worker, `?`
//! when the backend could not learn it, e.g. the runtime did not answer), `outcome`
//! (`ok` or the error code) and `request_id`. Never a token, a cookie or input text:
//! only names, validated ids and codes go in.

use switchyard_protocol::{RuntimeId, WorkerId};
use switchyard_registry::Caller;

use crate::http::{ApiError, Response};

/// The tracing target of audit lines; filter with `RUST_LOG=audit=info`.
pub const TARGET: &str = "audit";

/// One command being handled, collecting what its audit line says.
#[derive(Debug)]
pub(super) struct Audit {
    action: &'static str,
    identity: Option<String>,
    runtime_id: Option<RuntimeId>,
    worker_id: Option<WorkerId>,
    /// `None` while unknown; `Some(None)` for a worker without an owner.
    owner: Option<Option<String>>,
}

impl Audit {
    /// An entry for `action`, naming the ids the path gave when they are valid ids.
    pub fn new(action: &'static str, runtime_id: Option<&str>, worker_id: Option<&str>) -> Self {
        Self {
            action,
            identity: None,
            runtime_id: runtime_id.and_then(|id| RuntimeId::new(id).ok()),
            worker_id: worker_id.and_then(|id| WorkerId::new(id).ok()),
            owner: None,
        }
    }

    /// The runtime and worker named, when both are valid ids.
    pub fn target(&self) -> Option<(&RuntimeId, &WorkerId)> {
        Some((self.runtime_id.as_ref()?, self.worker_id.as_ref()?))
    }

    /// The worker's owner, once known (`None`: it has none).
    pub fn set_owner(&mut self, owner: Option<String>) {
        self.owner = Some(owner);
    }

    /// Who did it, once known.
    pub fn identify(&mut self, caller: &Caller) {
        self.identity = Some(caller.name().to_owned());
    }

    /// The worker a create made.
    pub fn set_worker(&mut self, worker_id: &WorkerId) {
        self.worker_id = Some(worker_id.clone());
    }

    /// Writes the line.
    pub fn finish(self, outcome: &Result<Response, ApiError>, request_id: &str) {
        let outcome = match outcome {
            Ok(_) => "ok",
            Err(error) => error.detail.code.as_str(),
        };
        let owner = match (&self.owner, &self.worker_id) {
            (_, None) | (Some(None), _) => "-",
            (Some(Some(owner)), _) => owner.as_str(),
            (None, Some(_)) => "?",
        };
        tracing::info!(
            target: TARGET,
            identity = self.identity.as_deref().unwrap_or("-"),
            action = self.action,
            runtime_id = self.runtime_id.as_ref().map_or("-", RuntimeId::as_str),
            worker_id = self.worker_id.as_ref().map_or("-", WorkerId::as_str),
            owner,
            outcome,
            request_id,
            "audit"
        );
    }
}
