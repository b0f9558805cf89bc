//! Workers: status, detail, lists, and the create / input requests.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::ErrorDetail;
use crate::ids::{RuntimeId, WorkerId};
use crate::time::Timestamp;

/// Where a worker is in its life.
///
/// Exhaustive on purpose: the contract fixes the six statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    /// Created, not yet running.
    Starting,
    /// Running and accepting input.
    Running,
    /// Ended on its own; `exit` carries the code or signal.
    Exited,
    /// Ended by a stop request.
    Stopped,
    /// Could not start.
    Failed,
    /// Was running when the runtime process ended.
    Lost,
}

impl WorkerStatus {
    /// Every status, in life order.
    pub const ALL: [WorkerStatus; 6] = [
        Self::Starting,
        Self::Running,
        Self::Exited,
        Self::Stopped,
        Self::Failed,
        Self::Lost,
    ];

    /// True once the worker can never run again.
    pub fn is_ended(self) -> bool {
        !matches!(self, Self::Starting | Self::Running)
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Exited => "exited",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Lost => "lost",
        }
    }
}

impl fmt::Display for WorkerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for WorkerStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or(())
    }
}

/// How a worker ended: an exit code, a signal number, or neither when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExitInfo {
    /// The exit code, when the process exited normally.
    pub code: Option<i32>,
    /// The signal number, when a signal ended the process.
    pub signal: Option<i32>,
}

/// Everything the API says about one worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerDetail {
    /// The worker's id, unique within its runtime.
    pub worker_id: WorkerId,
    /// The runtime that owns it.
    pub runtime_id: RuntimeId,
    /// The profile it was started from.
    pub profile: String,
    /// The optional label given at creation.
    pub label: Option<String>,
    /// Where it is in its life.
    pub status: WorkerStatus,
    /// When it was created.
    pub created_at: Timestamp,
    /// When anything about it last changed.
    pub updated_at: Timestamp,
    /// How it ended, once it has.
    pub exit: Option<ExitInfo>,
    /// Inputs accepted so far.
    pub input_count: u64,
    /// Output bytes produced so far (UTF-8, after decoding).
    pub output_bytes: u64,
    /// The identity that created it through a backend with auth on; `null` without
    /// auth and for workers created directly on a runtime. Set at creation by the
    /// backend, never by a backend client, and never changed.
    #[serde(default)]
    pub owner: Option<String>,
}

/// True for an owner (identity) name: 1 to 64 of `A-Z a-z 0-9 . _ - @`.
pub fn is_valid_owner(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

/// `POST /v1/workers`: what the backend (the Runtime API's only client) asks a
/// runtime to start, including the owner it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateWorkerRequest {
    /// The profile's name, as the runtime's configuration defines it.
    #[cfg_attr(feature = "openapi", schema(examples("echo")))]
    pub profile: String,
    /// A free-form label shown to users.
    #[serde(default)]
    pub label: Option<String>,
    /// The creating identity, set by the backend; absent without auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[A-Za-z0-9._@-]{1,64}$", min_length = 1, max_length = 64)
    )]
    pub owner: Option<String>,
}

/// `POST /api/runtimes/{id}/workers`: what a backend client may ask for. It has no
/// `owner`: the backend records the caller's identity, and a body naming an owner is
/// `400 invalid_request`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWorkerRequest {
    /// The profile's name, as the runtime's configuration defines it (every runtime
    /// has `echo`).
    #[cfg_attr(feature = "openapi", schema(examples("echo")))]
    pub profile: String,
    /// A free-form label shown to users.
    #[serde(default)]
    pub label: Option<String>,
}

impl NewWorkerRequest {
    /// The runtime's request, with the backend's choice of owner.
    pub fn owned_by(self, owner: Option<String>) -> CreateWorkerRequest {
        CreateWorkerRequest {
            profile: self.profile,
            label: self.label,
            owner,
        }
    }
}

/// `POST .../workers/{id}/input`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InputRequest {
    /// The text written to the worker, as given.
    pub text: String,
}

/// The answer to an accepted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InputAccepted {
    /// The input's sequence number in the worker's transcript.
    pub sequence: u64,
}

/// The answer to cancel and stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerStatusResponse {
    /// The worker.
    pub worker_id: WorkerId,
    /// Its status after the call.
    pub status: WorkerStatus,
}

/// One page of one runtime's workers, ordered by worker id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerList {
    /// The workers on this page.
    pub workers: Vec<WorkerDetail>,
    /// Pass as `after` to get the next page; null on the last page.
    pub next: Option<WorkerId>,
}

/// A runtime that did not answer `GET /api/workers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnavailableEntry {
    /// The runtime.
    pub runtime_id: RuntimeId,
    /// Why it did not answer.
    pub error: ErrorDetail,
}

/// `GET /api/workers`: the workers of every runtime that answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllWorkersList {
    /// Workers of all runtimes that answered, each with its `runtime_id`.
    pub workers: Vec<WorkerDetail>,
    /// Runtimes that failed or timed out.
    pub unavailable: Vec<UnavailableEntry>,
    /// Runtimes whose listing stopped before their last worker (at `limit`, or at
    /// the backend's cap per runtime): page through `GET /api/runtimes/{id}/workers`
    /// for the rest. Left out when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<RuntimeId>,
}

/// `GET /v1/health` and `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// Always `"ok"` when the process answers.
    pub status: String,
}

impl Health {
    /// The healthy answer.
    pub fn ok() -> Self {
        Self {
            status: "ok".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample_detail() -> WorkerDetail {
        WorkerDetail {
            worker_id: WorkerId::new("w-1").unwrap(),
            runtime_id: RuntimeId::new("local").unwrap(),
            profile: "echo".into(),
            label: Some("demo".into()),
            status: WorkerStatus::Exited,
            created_at: Timestamp("2026-11-26T09:00:00Z".into()),
            updated_at: Timestamp("2026-11-26T09:00:01Z".into()),
            exit: Some(ExitInfo {
                code: Some(3),
                signal: None,
            }),
            input_count: 2,
            output_bytes: 10,
            owner: Some("alice".into()),
        }
    }

    #[test]
    fn worker_detail_shape() {
        assert_eq!(
            serde_json::to_value(sample_detail()).unwrap(),
            json!({"worker_id":"w-1","runtime_id":"local","profile":"echo","label":"demo",
                "status":"exited","created_at":"2026-11-26T09:00:00Z",
                "updated_at":"2026-11-26T09:00:01Z","exit":{"code":3,"signal":null},
                "input_count":2,"output_bytes":10,"owner":"alice"})
        );
        // Records and answers from before owners existed read as unowned.
        let mut old = serde_json::to_value(sample_detail()).unwrap();
        old.as_object_mut().unwrap().remove("owner");
        let read: WorkerDetail = serde_json::from_value(old).unwrap();
        assert_eq!(read.owner, None);
        let mut unowned = sample_detail();
        unowned.owner = None;
        assert_eq!(serde_json::to_value(unowned).unwrap()["owner"], json!(null));
    }

    #[test]
    fn clients_cannot_name_an_owner_but_the_backend_can() {
        assert!(
            serde_json::from_str::<NewWorkerRequest>(r#"{"profile":"echo","owner":"mallory"}"#)
                .is_err()
        );
        let new: NewWorkerRequest =
            serde_json::from_str(r#"{"profile":"echo","label":"x"}"#).unwrap();
        let create = new.owned_by(Some("alice".into()));
        assert_eq!(
            serde_json::to_value(&create).unwrap(),
            json!({"profile":"echo","label":"x","owner":"alice"})
        );
        let unowned = NewWorkerRequest {
            profile: "echo".into(),
            label: None,
        }
        .owned_by(None);
        assert_eq!(
            serde_json::to_value(&unowned).unwrap(),
            json!({"profile":"echo","label":null}),
            "no owner key without auth, so older runtimes accept it"
        );
        for (name, ok) in [
            ("alice", true),
            ("bob@example.com", true),
            ("", false),
            ("a b", false),
            ("x\ny", false),
        ] {
            assert_eq!(is_valid_owner(name), ok, "{name:?}");
        }
        assert!(!is_valid_owner(&"a".repeat(65)));
    }

    #[test]
    fn requests_reject_unknown_fields() {
        let ok: CreateWorkerRequest = serde_json::from_str(r#"{"profile":"echo"}"#).unwrap();
        assert_eq!(ok.label, None);
        assert!(
            serde_json::from_str::<CreateWorkerRequest>(r#"{"profile":"echo","argv":["sh"]}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<InputRequest>(r#"{"text":"hi","x":1}"#).is_err());
        assert!(serde_json::from_str::<InputRequest>(r#"{}"#).is_err());
        assert_eq!(
            serde_json::from_str::<InputRequest>(r#"{"text":"hi\n"}"#)
                .unwrap()
                .text,
            "hi\n"
        );
    }

    #[test]
    fn responses_ignore_unknown_fields() {
        let mut v = serde_json::to_value(sample_detail()).unwrap();
        v["future_field"] = json!(true);
        assert_eq!(
            serde_json::from_value::<WorkerDetail>(v).unwrap(),
            sample_detail()
        );
    }

    #[test]
    fn list_shapes() {
        let list = WorkerList {
            workers: vec![],
            next: None,
        };
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"{"workers":[],"next":null}"#
        );
        assert_eq!(
            serde_json::to_value(InputAccepted { sequence: 7 }).unwrap(),
            json!({"sequence": 7})
        );
        assert_eq!(
            serde_json::to_value(WorkerStatusResponse {
                worker_id: WorkerId::new("w").unwrap(),
                status: WorkerStatus::Stopped
            })
            .unwrap(),
            json!({"worker_id":"w","status":"stopped"})
        );
    }

    #[test]
    fn status_helpers() {
        assert!(!WorkerStatus::Running.is_ended());
        assert!(WorkerStatus::Lost.is_ended());
        assert_eq!("failed".parse::<WorkerStatus>(), Ok(WorkerStatus::Failed));
        assert!("nope".parse::<WorkerStatus>().is_err());
    }
}
