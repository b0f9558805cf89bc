//! [`RuntimeView`]: what the backend knows about one runtime's health, refreshed by
//! probes and by every call's outcome.

use std::collections::BTreeMap;
use std::time::SystemTime;

use switchyard_protocol::{
    API_VERSION, ErrorCode, ErrorDetail, ProfileInfo, RuntimeInfo, RuntimeState, WorkerCounts,
};

use crate::error::SourceError;

/// The cached view of one runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeView {
    /// Health as last seen.
    pub state: RuntimeState,
    /// When it last answered (formatted only when shown: this is set on every call).
    pub last_seen: Option<SystemTime>,
    /// The last failure, cleared by the next success.
    pub last_error: Option<ErrorDetail>,
    /// Capabilities from its last self-description.
    pub capabilities: Vec<String>,
    /// Profiles from its last self-description.
    pub profiles: Vec<ProfileInfo>,
    /// Worker counts from its last self-description.
    pub workers: WorkerCounts,
    /// Worker counts per owner from its last self-description.
    pub owners: BTreeMap<String, WorkerCounts>,
    /// Set while the runtime's `api_version` is not ours: answers do not clear it.
    wrong_api_version: bool,
}

impl Default for RuntimeView {
    fn default() -> Self {
        Self {
            state: RuntimeState::Unknown,
            last_seen: None,
            last_error: None,
            capabilities: Vec::new(),
            profiles: Vec::new(),
            workers: WorkerCounts::default(),
            owners: BTreeMap::new(),
            wrong_api_version: false,
        }
    }
}

impl RuntimeView {
    /// The runtime answered a call.
    pub fn record_answer(&mut self) {
        if !self.wrong_api_version {
            self.state = RuntimeState::Ready;
            self.last_error = None;
        }
        self.last_seen = Some(SystemTime::now());
    }

    /// The runtime described itself; a wrong `api_version` makes it `incompatible`.
    pub fn record_info(&mut self, info: &RuntimeInfo) {
        self.last_seen = Some(SystemTime::now());
        self.capabilities = info.capabilities.clone();
        self.profiles = info.profiles.clone();
        self.workers = info.workers;
        self.owners = info.owners.clone();
        self.wrong_api_version = info.api_version != API_VERSION;
        if !self.wrong_api_version {
            self.state = RuntimeState::Ready;
            self.last_error = None;
        } else {
            self.state = RuntimeState::Incompatible;
            self.last_error = Some(ErrorDetail::new(
                ErrorCode::RuntimeProtocolError,
                format!(
                    "the runtime speaks api_version {}, this backend speaks {API_VERSION}; upgrade one of them",
                    info.api_version
                ),
            ));
        }
    }

    /// A call failed.
    pub fn record_failure(&mut self, error: &SourceError) {
        if error.runtime_answered() {
            self.record_answer();
            return;
        }
        self.state = match error {
            SourceError::Unreachable | SourceError::Timeout | SourceError::Unavailable => {
                RuntimeState::Unreachable
            }
            SourceError::AuthFailed => RuntimeState::AuthFailed,
            SourceError::TlsFailed(_) => RuntimeState::TlsFailed,
            SourceError::Protocol(_) => RuntimeState::Incompatible,
            _ => self.state,
        };
        self.last_error = Some(ErrorDetail::new(error.code(), error.to_string()));
    }

    /// True when calls are expected to fail until the runtime comes back.
    pub fn is_down(&self) -> bool {
        matches!(
            self.state,
            RuntimeState::Unreachable
                | RuntimeState::AuthFailed
                | RuntimeState::TlsFailed
                | RuntimeState::Incompatible
        )
    }
}
