//! Runtime configuration: identity, profiles and limits.
//!
//! Parsing from TOML lives in the server crate; this is the validated form.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use switchyard_protocol::{Limits, ProfileInfo, ProfileKind, RuntimeId};

/// How to run one kind of worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileSpec {
    /// Built in: every input comes back as output after `delay`.
    Echo {
        /// Delay before each output; lets cancel and `worker_busy` be exercised.
        delay: Duration,
    },
    /// An OS process in its own process group.
    Process(ProcessSpec),
}

/// An OS process to start for each worker of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Program and arguments; `command[0]` is looked up in `PATH` if not absolute.
    pub command: Vec<String>,
    /// Extra environment on top of the minimal `PATH`, `HOME`, `LANG`, `TERM`.
    pub env: BTreeMap<String, String>,
    /// Working directory; the runtime's own when absent.
    pub cwd: Option<PathBuf>,
}

/// One named profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// What it is for, shown to clients.
    pub description: Option<String>,
    /// How to run it.
    pub spec: ProfileSpec,
}

impl Profile {
    /// The built-in `echo` profile with no delay.
    pub fn echo() -> Self {
        Self {
            description: Some("Built-in echo: every input comes back as output".into()),
            spec: ProfileSpec::Echo {
                delay: Duration::ZERO,
            },
        }
    }

    /// The kind as the protocol names it.
    pub fn kind(&self) -> ProfileKind {
        match self.spec {
            ProfileSpec::Echo { .. } => ProfileKind::Echo,
            ProfileSpec::Process(_) => ProfileKind::Process,
        }
    }
}

/// The limits a runtime enforces, with the contract's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeLimits {
    /// Workers starting or running at once.
    pub max_workers: u32,
    /// Largest input text in bytes.
    pub max_input_bytes: u64,
    /// Largest request body in bytes (enforced by the HTTP layer).
    pub max_body_bytes: u64,
    /// Largest transcript or list page.
    pub transcript_page_max: u32,
    /// Events kept per worker for resuming subscribers.
    pub event_backlog: u32,
    /// Inputs queued per worker before `worker_busy`.
    pub input_queue: u32,
    /// Events queued per subscriber before it is cut off as a slow consumer.
    pub subscriber_queue: u32,
    /// Transcript items included in a snapshot.
    pub snapshot_items: u32,
    /// Time between SIGTERM and SIGKILL when stopping a process.
    pub stop_grace: Duration,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        Self {
            max_workers: 64,
            max_input_bytes: 64 * 1024,
            max_body_bytes: 1024 * 1024,
            transcript_page_max: 1000,
            event_backlog: 4096,
            input_queue: 64,
            subscriber_queue: 1024,
            snapshot_items: 50,
            stop_grace: Duration::from_secs(5),
        }
    }
}

impl RuntimeLimits {
    /// The limits as the protocol reports them.
    pub fn to_protocol(&self) -> Limits {
        Limits {
            max_workers: self.max_workers,
            max_input_bytes: self.max_input_bytes,
            max_body_bytes: self.max_body_bytes,
            transcript_page_max: self.transcript_page_max,
            event_backlog: self.event_backlog,
            input_queue: self.input_queue,
        }
    }
}

/// Everything a [`crate::Runtime`] needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// The runtime's id.
    pub runtime_id: RuntimeId,
    /// A name for people.
    pub display_name: String,
    /// Profiles by name; `echo` is added when absent.
    pub profiles: BTreeMap<String, Profile>,
    /// Limits.
    pub limits: RuntimeLimits,
}

impl RuntimeConfig {
    /// A configuration with only the `echo` profile and default limits.
    pub fn new(runtime_id: RuntimeId, display_name: impl Into<String>) -> Self {
        let mut profiles = BTreeMap::new();
        profiles.insert("echo".to_owned(), Profile::echo());
        Self {
            runtime_id,
            display_name: display_name.into(),
            profiles,
            limits: RuntimeLimits::default(),
        }
    }

    /// Adds or replaces a profile.
    pub fn with_profile(mut self, name: impl Into<String>, profile: Profile) -> Self {
        self.profiles.insert(name.into(), profile);
        self
    }

    /// Profiles as clients see them.
    pub fn profile_infos(&self) -> Vec<ProfileInfo> {
        self.profiles
            .iter()
            .map(|(name, p)| ProfileInfo {
                name: name.clone(),
                kind: p.kind(),
                description: p.description.clone(),
            })
            .collect()
    }
}
