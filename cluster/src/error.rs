//! [`ClusterError`]: why a cluster could not be set up or driven.

/// Why a cluster could not be set up or driven.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Network namespaces cannot be created here.
    #[error(
        "cannot create network namespaces here ({detail}): the cluster needs root or CAP_NET_ADMIN (run it as root, or in CI, which runs as root)"
    )]
    Unprivileged {
        /// What `ip netns add` said.
        detail: String,
    },
    /// A program the cluster needs is missing.
    #[error("{program} is missing: {hint}")]
    MissingTool {
        /// The program.
        program: &'static str,
        /// How to get it.
        hint: &'static str,
    },
    /// A command failed.
    #[error("`{line}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        line: String,
        /// Its exit status, or why it did not run.
        status: String,
        /// The end of what it wrote to standard error.
        stderr: String,
    },
    /// A process did not start as expected.
    #[error("{what}: {detail}")]
    Start {
        /// Which process.
        what: String,
        /// What went wrong.
        detail: String,
    },
    /// No free cluster slot: every `10.77.K.0/24` is taken.
    #[error("no free cluster slot in 10.77.0.0/16 (every /24 is in use or claimed)")]
    NoSlot,
    /// A file could not be written or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Something the cluster waited for did not happen in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

impl ClusterError {
    /// True when the machine cannot run a cluster at all (no privilege, a tool
    /// missing): the caller may skip with this message instead of failing.
    pub fn is_environment(&self) -> bool {
        matches!(self, Self::Unprivileged { .. } | Self::MissingTool { .. })
    }

    /// An [`ClusterError::Io`] for `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
