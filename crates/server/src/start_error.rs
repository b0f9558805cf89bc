//! [`StartError`]: why a backend or a runtime server could not start.

use std::net::SocketAddr;

use switchyard_protocol::RuntimeId;
use switchyard_registry::DuplicateRuntimeId;
use switchyard_runtime::StoreError;
use switchyard_transport::TransportError;

use crate::config::ConfigError;

/// Why [`crate::BackendBuilder::start`] or [`crate::RuntimeServerBuilder::start`]
/// failed. Each variant has a stable [`StartError::code`] and a message that says
/// what to do; none holds a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration file or a setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("could not listen on {addr}: {source}; choose a free port (port 0 takes any)")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A backend without client authentication, or a runtime without a token, on an
    /// address that is not loopback.
    #[error(
        "refusing to serve {addr} without authentication: it is not a loopback address; configure tokens (or listen on 127.0.0.1)"
    )]
    OpenListen {
        /// The address.
        addr: SocketAddr,
    },
    /// Two runtimes share an id.
    #[error("{0}; give each runtime its own id")]
    DuplicateRuntimeId(#[from] DuplicateRuntimeId),
    /// Profiles were added to the embedded runtime of a backend that has none.
    #[error(
        "profile {profile} was added to the embedded runtime, but the backend has none; add one with BackendBuilder::embedded"
    )]
    NoEmbeddedRuntime {
        /// The first such profile.
        profile: String,
    },
    /// A profile added in code has a name (or, for `echo`, a kind) that a
    /// configuration file would refuse.
    #[error("profile {name:?}: {problem}")]
    InvalidProfile {
        /// The profile's name.
        name: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The data directory could not be opened (created if missing).
    #[error(
        "could not open the data directory: {0}; `data_dir` (or --data-dir) must name a directory this user can create or write to, on a file system with room"
    )]
    OpenStore(#[source] StoreError),
    /// Another runtime has the data directory open ([`StoreError::InUse`]).
    #[error(transparent)]
    StoreInUse(StoreError),
    /// The sign-out file (`auth.signed_out_file`) could not be opened or is not one.
    #[error(transparent)]
    SignOutFile(crate::auth::JournalError),
    /// The stored workers could not be loaded.
    #[error("could not load the stored workers: {0}")]
    LoadStore(#[source] StoreError),
    /// A remote runtime's client could not be set up (its base URL or TLS).
    #[error("remote runtime {runtime_id}: {source}")]
    Remote {
        /// The runtime.
        runtime_id: RuntimeId,
        /// Why.
        #[source]
        source: Box<TransportError>,
    },
    /// The OS's random source failed (for a session key).
    #[error("could not read the OS's random source: {0}")]
    RandomSource(getrandom::Error),
}

impl StartError {
    /// A stable snake_case code for the failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "invalid_config",
            Self::Listen { .. } => "listen_failed",
            Self::OpenListen { .. } => "open_listen",
            Self::DuplicateRuntimeId(_) => "duplicate_runtime_id",
            Self::NoEmbeddedRuntime { .. } => "no_embedded_runtime",
            Self::InvalidProfile { .. } => "invalid_profile",
            Self::OpenStore(_) => "store_open_failed",
            Self::StoreInUse(_) => "data_dir_in_use",
            Self::LoadStore(_) => "store_load_failed",
            Self::SignOutFile(_) => "sign_out_file_failed",
            Self::Remote { .. } => "remote_setup_failed",
            Self::RandomSource(_) => "random_source_failed",
        }
    }

    /// The exit status for a command-line program: 2 for a configuration error (as
    /// `switchyard` exits), a profile that one would refuse, or a data directory or
    /// sign-out file that cannot be opened (the configuration names it), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_)
            | Self::InvalidProfile { .. }
            | Self::OpenStore(_)
            | Self::SignOutFile(_) => 2,
            _ => 1,
        }
    }

    /// Why opening the data directory failed: in use by another runtime, or not
    /// usable as configured.
    pub(crate) fn open_store(error: StoreError) -> Self {
        match error {
            StoreError::InUse { .. } => Self::StoreInUse(error),
            other => Self::OpenStore(other),
        }
    }

    /// Checks the name (and, for `echo`, the kind) of a profile added in code.
    pub(crate) fn check_profile(
        name: &str,
        profile: &switchyard_runtime::Profile,
    ) -> Result<(), Self> {
        match crate::config::profile_problem(name, profile) {
            None => Ok(()),
            Some(problem) => Err(Self::InvalidProfile {
                name: name.to_owned(),
                problem,
            }),
        }
    }
}
