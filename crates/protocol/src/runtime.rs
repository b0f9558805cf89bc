//! Runtime descriptions: what `GET /v1/runtime` and `GET /api/runtimes` answer.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ErrorDetail;
use crate::ids::RuntimeId;
use crate::time::Timestamp;
use crate::worker::WorkerStatus;

/// The Runtime API version this crate speaks.
pub const API_VERSION: u32 = 1;

/// Whether a runtime takes new work.
///
/// Exhaustive on purpose: the contract fixes `running` and `draining`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RuntimeStatus {
    /// Accepting work.
    Running,
    /// Shutting down; refuses new work.
    Draining,
}

/// The kind of a profile: a built-in kind, or one a library user's driver adds.
///
/// On the wire it is the kind's name as a string (`"echo"`, `"process"`, `"pty"`,
/// or a custom kind's name). Any other well-formed name reads as
/// [`ProfileKind::Custom`], so a client keeps working against a runtime with kinds
/// it does not know.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProfileKind {
    /// Built in: every input comes back as output.
    Echo,
    /// An OS process started from the profile's argv.
    Process,
    /// An OS process started from the profile's argv on a pseudo-terminal.
    Pty,
    /// A kind added by a custom driver.
    Custom(CustomKind),
}

impl ProfileKind {
    /// The kind's name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Echo => "echo",
            Self::Process => "process",
            Self::Pty => "pty",
            Self::Custom(kind) => kind.as_str(),
        }
    }

    /// Reads a kind's name: a built-in kind, else a custom one.
    pub fn parse(name: &str) -> Result<Self, KindNameError> {
        Ok(match name {
            "echo" => Self::Echo,
            "process" => Self::Process,
            "pty" => Self::Pty,
            other => Self::Custom(CustomKind::new(other)?),
        })
    }
}

/// A string: a built-in kind's name or a custom kind's (its serde is hand-written, so
/// its schema is too).
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ProfileKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[a-z][a-z0-9_-]{0,31}$"))
            .examples(["echo", "process", "pty"])
            .description(Some(
                "The profile's kind: `echo`, `process`, `pty`, or the name of a kind a \
                 custom driver adds.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ProfileKind {
    fn name() -> std::borrow::Cow<'static, str> {
        "ProfileKind".into()
    }
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProfileKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProfileKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// The name of a custom profile kind: 1 to 32 of `a-z 0-9 _ -`, starting with a
/// letter, and not a built-in kind's name (`echo`, `process`, `pty`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomKind(String);

/// Why a name is not a valid custom kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KindNameError {
    /// Empty, too long, or with a character outside `a-z 0-9 _ -`, or not starting
    /// with a letter.
    #[error(
        "a profile kind is 1 to 32 of a-z 0-9 _ -, starting with a letter; choose another name"
    )]
    Malformed,
    /// The name of a built-in kind.
    #[error("`{0}` is a built-in kind; give the custom kind a name of its own")]
    BuiltIn(&'static str),
}

impl CustomKind {
    /// Longest name accepted.
    pub const MAX_LEN: usize = 32;

    /// Validates a name.
    pub fn new(name: impl Into<String>) -> Result<Self, KindNameError> {
        let name = name.into();
        if let Some(builtin) = ["echo", "process", "pty"].into_iter().find(|b| *b == name) {
            return Err(KindNameError::BuiltIn(builtin));
        }
        let mut chars = name.chars();
        let well_formed = name.len() <= Self::MAX_LEN
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !well_formed {
            return Err(KindNameError::Malformed);
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A profile as clients see it: never its command line or environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileInfo {
    /// The name clients pass to create a worker.
    pub name: String,
    /// Its kind.
    pub kind: ProfileKind,
    /// What it is for.
    pub description: Option<String>,
}

/// Worker counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerCounts {
    /// Workers starting.
    pub starting: u64,
    /// Workers running.
    pub running: u64,
    /// Workers that exited on their own.
    pub exited: u64,
    /// Workers stopped on request.
    pub stopped: u64,
    /// Workers that could not start.
    pub failed: u64,
    /// Workers lost in a runtime restart.
    pub lost: u64,
}

impl WorkerCounts {
    /// Counts one more worker of `status`.
    pub fn add(&mut self, status: WorkerStatus) {
        *self.slot(status) += 1;
    }

    /// Counts one worker of `status` fewer (never below zero).
    pub fn remove(&mut self, status: WorkerStatus) {
        let slot = self.slot(status);
        *slot = slot.saturating_sub(1);
    }

    /// Workers of every status.
    pub fn total(&self) -> u64 {
        self.starting + self.running + self.exited + self.stopped + self.failed + self.lost
    }

    /// The count for `status`.
    pub fn get(&self, status: WorkerStatus) -> u64 {
        match status {
            WorkerStatus::Starting => self.starting,
            WorkerStatus::Running => self.running,
            WorkerStatus::Exited => self.exited,
            WorkerStatus::Stopped => self.stopped,
            WorkerStatus::Failed => self.failed,
            WorkerStatus::Lost => self.lost,
        }
    }

    fn slot(&mut self, status: WorkerStatus) -> &mut u64 {
        match status {
            WorkerStatus::Starting => &mut self.starting,
            WorkerStatus::Running => &mut self.running,
            WorkerStatus::Exited => &mut self.exited,
            WorkerStatus::Stopped => &mut self.stopped,
            WorkerStatus::Failed => &mut self.failed,
            WorkerStatus::Lost => &mut self.lost,
        }
    }
}

/// The limits a runtime enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Limits {
    /// Workers starting or running at once.
    pub max_workers: u32,
    /// Largest accepted input text, in bytes.
    pub max_input_bytes: u64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: u64,
    /// Largest transcript page.
    pub transcript_page_max: u32,
    /// Events kept per worker for resuming subscribers.
    pub event_backlog: u32,
    /// Inputs queued per worker before `worker_busy`.
    pub input_queue: u32,
}

/// `GET /v1/runtime`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuntimeInfo {
    /// The runtime's id.
    pub runtime_id: RuntimeId,
    /// A name for people.
    pub display_name: String,
    /// The software version.
    pub version: String,
    /// The Runtime API version; 1.
    pub api_version: u32,
    /// Running or draining.
    pub status: RuntimeStatus,
    /// Changes on every process start; cursors of an earlier epoch reset.
    pub epoch: String,
    /// What this runtime can do, for example `"events_ws"`, `"process"`.
    pub capabilities: Vec<String>,
    /// The profiles clients can start workers from now (a runtime's reload may
    /// change them; running workers keep theirs).
    pub profiles: Vec<ProfileInfo>,
    /// Worker counts by status.
    pub workers: WorkerCounts,
    /// Worker counts by status for each owner (workers without one are not in it), so
    /// a backend can show callers who reach only their own workers their own counts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub owners: BTreeMap<String, WorkerCounts>,
    /// Live event-stream subscriptions across all workers (WebSocket connections).
    #[serde(default)]
    pub subscribers: u64,
    /// The limits it enforces now (`event_backlog` and `input_queue`: for workers
    /// created from now on).
    pub limits: Limits,
}

/// Whether a runtime is embedded in the backend or reached over the network.
///
/// Exhaustive on purpose: the contract fixes `embedded` and `remote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RuntimeSourceKind {
    /// In the backend process.
    Embedded,
    /// A `switchyard runtime` process reached over the Runtime API.
    Remote,
}

/// The backend's view of a runtime's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RuntimeState {
    /// Answering.
    Ready,
    /// Not reachable or not answering in time.
    Unreachable,
    /// It rejected the backend's credentials.
    AuthFailed,
    /// TLS towards it failed (certificate, name, expiry, client certificate).
    TlsFailed,
    /// It speaks another `api_version`, or answers malformed data.
    Incompatible,
    /// Not contacted yet.
    Unknown,
}

/// One runtime as `GET /api/runtimes` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackendRuntime {
    /// The runtime's id in the backend's configuration.
    pub runtime_id: RuntimeId,
    /// A name for people.
    pub display_name: String,
    /// Embedded or remote.
    pub source: RuntimeSourceKind,
    /// Health as last seen.
    pub state: RuntimeState,
    /// When it last answered.
    pub last_seen: Option<Timestamp>,
    /// The last error, if the last contact failed.
    pub last_error: Option<ErrorDetail>,
    /// Capabilities as last seen.
    pub capabilities: Vec<String>,
    /// Profiles as last seen.
    pub profiles: Vec<ProfileInfo>,
    /// Worker counts as last seen.
    pub workers: WorkerCounts,
}

/// `GET /api/runtimes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RuntimeList {
    /// Every runtime the caller may see, in configuration order.
    pub runtimes: Vec<BackendRuntime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    #[test]
    fn runtime_info_shape() {
        let info = RuntimeInfo {
            runtime_id: RuntimeId::new("build-1").unwrap(),
            display_name: "Build host 1".into(),
            version: "0.1.0".into(),
            api_version: API_VERSION,
            status: RuntimeStatus::Running,
            epoch: "e1".into(),
            capabilities: vec!["events_ws".into()],
            profiles: vec![ProfileInfo {
                name: "echo".into(),
                kind: ProfileKind::Echo,
                description: None,
            }],
            workers: WorkerCounts {
                running: 1,
                ..Default::default()
            },
            owners: BTreeMap::from([(
                "alice".to_owned(),
                WorkerCounts {
                    running: 1,
                    ..Default::default()
                },
            )]),
            subscribers: 2,
            limits: Limits {
                max_workers: 64,
                max_input_bytes: 65536,
                max_body_bytes: 1048576,
                transcript_page_max: 1000,
                event_backlog: 4096,
                input_queue: 64,
            },
        };
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(
            v,
            json!({"runtime_id":"build-1","display_name":"Build host 1","version":"0.1.0",
              "api_version":1,"status":"running","epoch":"e1","capabilities":["events_ws"],
              "profiles":[{"name":"echo","kind":"echo","description":null}],
              "workers":{"starting":0,"running":1,"exited":0,"stopped":0,"failed":0,"lost":0},
              "owners":{"alice":{"starting":0,"running":1,"exited":0,"stopped":0,"failed":0,"lost":0}},
              "subscribers":2,
              "limits":{"max_workers":64,"max_input_bytes":65536,"max_body_bytes":1048576,
                "transcript_page_max":1000,"event_backlog":4096,"input_queue":64}})
        );
        assert_eq!(serde_json::from_value::<RuntimeInfo>(v).unwrap(), info);
    }

    #[test]
    fn profile_kinds_read_and_write_their_names() {
        let custom = |name: &str| ProfileKind::Custom(CustomKind::new(name).unwrap());
        let cases = [
            ("echo", ProfileKind::Echo),
            ("process", ProfileKind::Process),
            ("pty", ProfileKind::Pty),
            ("tail", custom("tail")),
            ("log-tail_2", custom("log-tail_2")),
        ];
        for (name, kind) in cases {
            assert_eq!(serde_json::to_value(&kind).unwrap(), json!(name));
            assert_eq!(
                serde_json::from_value::<ProfileKind>(json!(name)).unwrap(),
                kind
            );
            assert_eq!(kind.to_string(), name);
        }
    }

    #[test]
    fn custom_kind_names_are_checked() {
        let cases: [(&str, Option<KindNameError>); 9] = [
            ("tail", None),
            ("a", None),
            (&"k".repeat(32), None),
            (&"k".repeat(33), Some(KindNameError::Malformed)),
            ("", Some(KindNameError::Malformed)),
            ("Tail", Some(KindNameError::Malformed)),
            ("1tail", Some(KindNameError::Malformed)),
            ("tail log", Some(KindNameError::Malformed)),
            ("pty", Some(KindNameError::BuiltIn("pty"))),
        ];
        for (name, expected) in cases {
            assert_eq!(CustomKind::new(name).err(), expected, "{name:?}");
        }
        // A runtime that sends a malformed kind sent a malformed answer.
        assert!(serde_json::from_value::<ProfileKind>(json!("Not A Kind")).is_err());
        assert!(serde_json::from_value::<ProfileKind>(json!(7)).is_err());
    }

    #[test]
    fn backend_runtime_shape() {
        let rt = BackendRuntime {
            runtime_id: RuntimeId::new("local").unwrap(),
            display_name: "This machine".into(),
            source: RuntimeSourceKind::Embedded,
            state: RuntimeState::AuthFailed,
            last_seen: None,
            last_error: None,
            capabilities: vec![],
            profiles: vec![],
            workers: WorkerCounts::default(),
        };
        let v = serde_json::to_value(&rt).unwrap();
        assert_eq!(v["source"], "embedded");
        assert_eq!(v["state"], "auth_failed");
        assert_eq!(v["last_seen"], serde_json::Value::Null);
    }
}
