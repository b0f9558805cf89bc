//! Runtime configuration: identity, profiles and limits.
//!
//! Parsing from TOML lives in the server crate; this is the validated form.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchyard_protocol::{Limits, ProfileInfo, ProfileKind, RuntimeId};

use crate::worker::driver::{Driver, EchoDriver, ProcessDriver, PtyDriver};

/// How to run one kind of worker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileSpec {
    /// Built in: every input comes back as output after `delay`.
    Echo {
        /// Delay before each output; lets cancel and `worker_busy` be exercised.
        delay: Duration,
    },
    /// An OS process in its own process group.
    Process(ProcessSpec),
    /// An OS process on a pseudo-terminal, leading its own session.
    Pty(PtySpec),
    /// A driver of the library user's own (see [`Driver`]).
    Custom(CustomDriver),
}

impl ProfileSpec {
    /// The driver that runs workers of this spec.
    pub fn driver(&self) -> Arc<dyn Driver> {
        match self {
            Self::Echo { delay } => Arc::new(EchoDriver { delay: *delay }),
            Self::Process(spec) => Arc::new(ProcessDriver { spec: spec.clone() }),
            Self::Pty(spec) => Arc::new(PtyDriver { spec: spec.clone() }),
            Self::Custom(custom) => custom.0.clone(),
        }
    }

    /// The kind as the protocol names it.
    pub fn kind(&self) -> ProfileKind {
        match self {
            Self::Echo { .. } => ProfileKind::Echo,
            Self::Process(_) => ProfileKind::Process,
            Self::Pty(_) => ProfileKind::Pty,
            Self::Custom(custom) => custom.0.kind(),
        }
    }
}

/// A custom [`Driver`] in a [`ProfileSpec`]. Two are equal when they are the same
/// driver (the same `Arc`).
#[derive(Clone)]
pub struct CustomDriver(Arc<dyn Driver>);

impl CustomDriver {
    /// Wraps a driver.
    pub fn new(driver: impl Driver) -> Self {
        Self(Arc::new(driver))
    }

    /// Wraps a shared driver.
    pub fn from_arc(driver: Arc<dyn Driver>) -> Self {
        Self(driver)
    }

    /// The driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.0
    }
}

impl fmt::Debug for CustomDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CustomDriver").field(&self.0.kind()).finish()
    }
}

impl PartialEq for CustomDriver {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CustomDriver {}

/// An OS process to start for each worker of a profile.
///
/// Settings may be added, so build one with [`ProcessSpec::new`] and set fields:
///
/// ```
/// use switchyard_runtime::ProcessSpec;
///
/// let mut spec = ProcessSpec::new(["make", "test"]);
/// spec.cwd = Some("/srv/build".into());
/// spec.env.insert("CI".into(), "1".into());
/// ```
///
/// A struct literal does not compile:
///
/// ```compile_fail
/// use switchyard_runtime::ProcessSpec;
///
/// let spec = ProcessSpec {
///     command: vec!["make".into()],
///     env: Default::default(),
///     cwd: None,
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProcessSpec {
    /// Program and arguments; `command[0]` is looked up in `PATH` if not absolute.
    pub command: Vec<String>,
    /// Extra environment on top of the minimal `PATH`, `HOME`, `LANG`, `TERM`.
    pub env: BTreeMap<String, String>,
    /// Working directory; the runtime's own when absent.
    pub cwd: Option<PathBuf>,
}

impl ProcessSpec {
    /// A spec for `command` with no extra environment and no working directory.
    pub fn new(command: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            command: command.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            cwd: None,
        }
    }
}

/// Default terminal size of a pty profile: columns.
pub const DEFAULT_PTY_COLS: u16 = 80;
/// Default terminal size of a pty profile: rows.
pub const DEFAULT_PTY_ROWS: u16 = 24;

/// An OS process to start on a pseudo-terminal for each worker of a profile.
///
/// Settings may be added, so build one with [`PtySpec::new`] and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PtySpec {
    /// Program and arguments; `command[0]` is looked up in `PATH` if not absolute.
    pub command: Vec<String>,
    /// Extra environment on top of the minimal `PATH`, `HOME`, `LANG` and `TERM`
    /// (`TERM=xterm-256color` unless this sets it).
    pub env: BTreeMap<String, String>,
    /// Working directory; the runtime's own when absent.
    pub cwd: Option<PathBuf>,
    /// Initial columns, 1 to 1000.
    pub cols: u16,
    /// Initial rows, 1 to 1000.
    pub rows: u16,
}

impl PtySpec {
    /// A spec for `command` with no extra environment, no working directory and the
    /// default 80 x 24 size.
    pub fn new(command: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            command: command.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            cwd: None,
            cols: DEFAULT_PTY_COLS,
            rows: DEFAULT_PTY_ROWS,
        }
    }
}

/// One named profile.
///
/// Settings may be added (a profile key each), so build one with [`Profile::new`]
/// (or [`Profile::echo`], [`Profile::custom`]) and the `with_` setters, or set
/// fields:
///
/// ```
/// use std::time::Duration;
/// use switchyard_runtime::{ProcessSpec, Profile, ProfileSpec};
///
/// let mut spec = ProcessSpec::new(["make", "test"]);
/// spec.cwd = Some("/srv/build".into());
/// let profile = Profile::new(ProfileSpec::Process(spec))
///     .with_description("The test suite")
///     .with_idle_timeout(Duration::from_secs(600));
/// assert_eq!(profile.kind().as_str(), "process");
/// ```
///
/// A struct literal does not compile:
///
/// ```compile_fail
/// use std::time::Duration;
/// use switchyard_runtime::{Profile, ProfileSpec};
///
/// let profile = Profile {
///     description: None,
///     spec: ProfileSpec::Echo { delay: Duration::ZERO },
///     idle_timeout: None,
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Profile {
    /// What it is for, shown to clients.
    pub description: Option<String>,
    /// How to run it.
    pub spec: ProfileSpec,
    /// A worker with no input and no viewer for this long is stopped; `None` never.
    pub idle_timeout: Option<Duration>,
}

impl Profile {
    /// The built-in `echo` profile with no delay.
    pub fn echo() -> Self {
        Self {
            description: Some("Built-in echo: every input comes back as output".into()),
            spec: ProfileSpec::Echo {
                delay: Duration::ZERO,
            },
            idle_timeout: None,
        }
    }

    /// A profile that runs `spec`, with no description and no idle timeout.
    pub fn new(spec: ProfileSpec) -> Self {
        Self {
            description: None,
            spec,
            idle_timeout: None,
        }
    }

    /// A profile whose workers `driver` runs, with no description and no idle
    /// timeout.
    pub fn custom(driver: impl Driver) -> Self {
        Self::new(ProfileSpec::Custom(CustomDriver::new(driver)))
    }

    /// Sets the description clients see.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the idle timeout.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// The kind as the protocol names it.
    pub fn kind(&self) -> ProfileKind {
        self.spec.kind()
    }
}

/// The limits a runtime enforces, with the contract's defaults.
///
/// Limits may be added, so start from [`RuntimeLimits::default`] (or a runtime
/// config's [`RuntimeConfig::limits`]) and set fields:
///
/// ```
/// use std::time::Duration;
/// use switchyard_runtime::RuntimeLimits;
///
/// let mut limits = RuntimeLimits::default();
/// limits.max_workers = 8;
/// limits.stop_grace = Duration::from_secs(2);
/// ```
///
/// A struct literal (even one that ends with `..RuntimeLimits::default()`) does not
/// compile:
///
/// ```compile_fail
/// use switchyard_runtime::RuntimeLimits;
///
/// let limits = RuntimeLimits {
///     max_workers: 8,
///     ..RuntimeLimits::default()
/// };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeLimits {
    /// Workers starting or running at once.
    pub max_workers: u32,
    /// Ended workers kept (with their transcripts) until deleted; past it, each
    /// create first deletes a few of those that ended first.
    pub max_ended_workers: u32,
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
            max_ended_workers: 10_000,
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
///
/// Settings may be added, so build one with [`RuntimeConfig::new`] and set fields or
/// add profiles:
///
/// ```
/// use switchyard_protocol::RuntimeId;
/// use switchyard_runtime::{Profile, RuntimeConfig};
///
/// let mut config = RuntimeConfig::new(RuntimeId::new("jobs").unwrap(), "Jobs")
///     .with_profile("echo-2", Profile::echo().with_description("a second echo"));
/// config.limits.max_workers = 4;
/// assert!(config.profiles.contains_key("echo"));
/// ```
///
/// A struct literal does not compile:
///
/// ```compile_fail
/// use switchyard_protocol::RuntimeId;
/// use switchyard_runtime::{RuntimeConfig, RuntimeLimits};
///
/// let config = RuntimeConfig {
///     runtime_id: RuntimeId::new("jobs").unwrap(),
///     display_name: "Jobs".into(),
///     profiles: Default::default(),
///     limits: RuntimeLimits::default(),
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
