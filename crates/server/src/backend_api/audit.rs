//! Audit lines: one INFO event with target `audit` per command (create, input,
//! resize, cancel, stop, delete, session start and end), whatever its outcome,
//! including refusals by the browser defences, authentication and the policy.
//!
//! The interactive event WebSocket (`?interactive=true`) writes one line for the
//! upgrade (action `interactive`: who opened a socket that may type into the worker,
//! or was refused it) and then one line per `input` or `resize` frame, like the REST
//! commands, once its outcome is known (`SessionAudit`); a session's lines carry
//! the upgrade's request id. One line per keystroke is deliberate: the contract
//! audits every command, a person types a few keys a second (a paste is one frame),
//! and the lines name no text, so they stay small; what was typed is in the worker's
//! transcript, which this line ties to an identity.
//!
//! Fields: `identity` (the caller's name, `-` when unknown), `action`, `runtime_id`,
//! `worker_id` (`-` when none; for a create, the new worker's), `owner` (the worker's
//! owner beside the actor: a name, `-` for a worker without one or no worker, `?`
//! when the backend does not know it: the runtime did not answer, or no check
//! needed it and the backend has not seen the worker; it is never asked for just
//! for this line, which would cost a command a second call), `outcome`
//! (`ok` or the error code) and `request_id`. Never a token, a cookie or input text:
//! only names, validated ids and codes go in.

use std::sync::Arc;

use switchyard_protocol::{ErrorDetail, RuntimeId, WorkerId};
use switchyard_registry::{Caller, RuntimeRegistry};

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

/// Whether audit lines are written at all (the tracing filter lets them through);
/// when not, a command collects nothing for one.
pub(super) fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
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
        write_line(&Line {
            identity: self.identity.as_deref().unwrap_or("-"),
            action: self.action,
            runtime_id: self.runtime_id.as_ref(),
            worker_id: self.worker_id.as_ref(),
            owner: self.owner.as_ref().map(Option::as_deref),
            outcome,
            request_id,
        });
    }
}

/// The audit lines of one interactive WebSocket session's commands. Cheap to clone:
/// each pending command holds one until its line is written.
#[derive(Clone)]
pub(super) struct SessionAudit {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    identity: String,
    runtime_id: RuntimeId,
    worker_id: WorkerId,
    request_id: String,
    /// Where the worker's owner is learnt (remembered there, never asked for here).
    registry: Arc<RuntimeRegistry>,
}

impl SessionAudit {
    /// The lines of `caller`'s session on one worker, opened by request `request_id`.
    pub fn new(
        caller: &Caller,
        (runtime_id, worker_id): (&RuntimeId, &WorkerId),
        request_id: &str,
        registry: Arc<RuntimeRegistry>,
    ) -> Self {
        Self {
            inner: Arc::new(SessionInner {
                identity: caller.name().to_owned(),
                runtime_id: runtime_id.clone(),
                worker_id: worker_id.clone(),
                request_id: request_id.to_owned(),
                registry,
            }),
        }
    }

    /// Writes the line of one command (`input` or `resize`): `None` once carried
    /// out, else the refusal.
    pub fn command(&self, action: &'static str, refusal: Option<&ErrorDetail>) {
        let s = &*self.inner;
        let owner = s.registry.known_owner(&s.runtime_id, &s.worker_id);
        write_line(&Line {
            identity: &s.identity,
            action,
            runtime_id: Some(&s.runtime_id),
            worker_id: Some(&s.worker_id),
            owner: owner.as_ref().map(Option::as_deref),
            outcome: refusal.map_or("ok", |e| e.code.as_str()),
            request_id: &s.request_id,
        });
    }
}

/// One audit line's fields.
struct Line<'a> {
    identity: &'a str,
    action: &'a str,
    runtime_id: Option<&'a RuntimeId>,
    worker_id: Option<&'a WorkerId>,
    /// `None` while unknown; `Some(None)` for a worker without an owner.
    owner: Option<Option<&'a str>>,
    outcome: &'a str,
    request_id: &'a str,
}

fn write_line(line: &Line<'_>) {
    let owner = match (line.owner, line.worker_id) {
        (_, None) | (Some(None), _) => "-",
        (Some(Some(owner)), _) => owner,
        (None, Some(_)) => "?",
    };
    tracing::info!(
        target: TARGET,
        identity = line.identity,
        action = line.action,
        runtime_id = line.runtime_id.map_or("-", RuntimeId::as_str),
        worker_id = line.worker_id.map_or("-", WorkerId::as_str),
        owner,
        outcome = line.outcome,
        request_id = line.request_id,
        "audit"
    );
}
