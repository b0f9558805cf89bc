//! [`ConfigError`]: why start-up refused a configuration, naming the file and the key.
//!
//! Messages go to the operator's terminal at start-up. They may name a token file's
//! or a TLS file's path, or a token environment variable's name, but never a
//! token's value or a file's contents.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where a configuration value came from. Another source of settings adds one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A configuration file, and the line in it when known.
    File {
        /// The file as given to `--config`.
        path: PathBuf,
        /// The 1-based line of the offending value, when known.
        line: Option<usize>,
    },
    /// A command-line flag.
    CommandLine,
    /// The process environment.
    Environment,
    /// Settings a program built in code (`RuntimeServerBuilder`,
    /// `BackendBuilder`): the key is the settings' field.
    Code,
}

impl Origin {
    /// A configuration file, without a line.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::File {
            path: path.into(),
            line: None,
        }
    }

    /// The file, when the value came from one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::File { path, .. } => Some(path),
            Self::CommandLine | Self::Environment | Self::Code => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { path, line: None } => write!(f, "config file {}", path.display()),
            Self::File {
                path,
                line: Some(line),
            } => write!(f, "config file {}, line {line}", path.display()),
            Self::CommandLine => f.write_str("command line"),
            Self::Environment => f.write_str("environment"),
            Self::Code => f.write_str("settings given in code"),
        }
    }
}

/// A configuration that cannot be used. Start-up prints it and exits with status 2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("config file {}: cannot read it: {source}; check the path (--config, or the file given to the library)", path.display())]
    ReadFile {
        /// The file as given to `--config`.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML.
    #[error("{origin}: invalid TOML: {message}; fix the syntax")]
    Syntax {
        /// The file and line.
        origin: Origin,
        /// What the parser expected.
        message: String,
    },
    /// A key that no table accepts.
    #[error("{origin}: unknown key `{key}` ({expected}); remove it or correct its spelling")]
    UnknownKey {
        /// The file and line.
        origin: Origin,
        /// The dotted key path.
        key: String,
        /// The keys the table accepts.
        expected: String,
    },
    /// A required key is absent.
    #[error("{origin}: missing key `{key}`; {hint}")]
    MissingKey {
        /// The file and line.
        origin: Origin,
        /// The dotted key path.
        key: String,
        /// What to add.
        hint: String,
    },
    /// A value of the wrong type or out of range.
    #[error("{origin}: invalid value for `{key}`: {problem}")]
    InvalidValue {
        /// Where the value came from.
        origin: Origin,
        /// The dotted key path or flag.
        key: String,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// Two keys that exclude each other are both set.
    #[error("{origin}: `{key}` and `{other}` are both set; keep only one of them")]
    Conflict {
        /// The file.
        origin: Origin,
        /// One key.
        key: String,
        /// The other key.
        other: String,
    },
    /// A remote runtime has no token source.
    #[error(
        "{origin}: `{key}` has no token source; set exactly one of `{key}.token_env` or `{key}.token_file`"
    )]
    MissingToken {
        /// The file.
        origin: Origin,
        /// The table, such as `remote[1]`.
        key: String,
    },
    /// A token file could not be read.
    #[error("{origin}: cannot read token file {} named by `{key}`: {source}; check the path and its permissions", path.display())]
    TokenFileUnreadable {
        /// Where the token file was named.
        origin: Origin,
        /// The key or flag that named it.
        key: String,
        /// The token file (resolved).
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
    /// A token environment variable is not set.
    #[error(
        "{origin}: environment variable `{var}` named by `{key}` is not set; export the token in it before starting"
    )]
    TokenEnvUnset {
        /// Where the variable was named.
        origin: Origin,
        /// The key that named it.
        key: String,
        /// The variable's name.
        var: String,
    },
    /// A token source holds an empty token.
    #[error("{origin}: `{key}`: {from} is empty; put the token in it")]
    TokenEmpty {
        /// Where the source was named.
        origin: Origin,
        /// The key, flag or variable that named it.
        key: String,
        /// The source, such as `token file /etc/x.token`.
        from: String,
    },
    /// A token holds characters an `Authorization` header cannot carry.
    #[error(
        "{origin}: `{key}`: the token in {from} contains spaces or non-printable characters; a token is one line of printable ASCII"
    )]
    TokenMalformed {
        /// Where the source was named.
        origin: Origin,
        /// The key, flag or variable that named it.
        key: String,
        /// The source, such as `token file /etc/x.token`.
        from: String,
    },
    /// A token file read by the backend holds more than one token: the backend
    /// sends exactly one.
    #[error(
        "{origin}: `{key}`: token file {} holds {count} tokens, one per line; the backend sends exactly one, so keep only the token the runtime is to receive (a runtime's own token file may list several while a token is rotated)",
        path.display()
    )]
    TokenFileHoldsMany {
        /// Where the token file was named.
        origin: Origin,
        /// The key that named it.
        key: String,
        /// The token file (resolved).
        path: PathBuf,
        /// How many tokens (non-blank lines) it holds.
        count: usize,
    },
    /// Two runtimes share an id.
    #[error(
        "{origin}: `{key}` repeats runtime id `{id}` already used by `{first}`; give every runtime a distinct id"
    )]
    DuplicateRuntimeId {
        /// The file.
        origin: Origin,
        /// The key of the repeat.
        key: String,
        /// The repeated id.
        id: String,
        /// The key that used it first.
        first: String,
    },
    /// The session key file could not be read.
    #[error("{origin}: cannot read the session key file {} named by `{key}`: {source}; check the path and its permissions", path.display())]
    SessionKeyUnreadable {
        /// Where the file was named.
        origin: Origin,
        /// The key that named it.
        key: String,
        /// The file (resolved).
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
    /// A TLS file (certificate, key or CA) could not be read.
    #[error("{origin}: cannot read {} named by `{key}`: {source}; check the path and its permissions", path.display())]
    TlsFileUnreadable {
        /// Where the file was named.
        origin: Origin,
        /// The key or flag that named it.
        key: String,
        /// The file (resolved).
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
    /// The backend would serve beyond loopback without authentication.
    #[error(
        "{origin}: `{key}`: refusing to serve {listen}, which is not a loopback address, without authentication; add [auth] with [[auth.token]] entries (`switchyard token` prints one), or set [auth] open = true to serve everyone as admin"
    )]
    OpenListen {
        /// Where the address came from.
        origin: Origin,
        /// The key or flag that set it.
        key: String,
        /// The address.
        listen: SocketAddr,
    },
    /// A TLS file is not what its key needs (not PEM, no certificate, no key, ...).
    #[error("{origin}: {} named by `{key}` is not usable: {problem}", path.display())]
    TlsFileInvalid {
        /// Where the file was named.
        origin: Origin,
        /// The key or flag that named it.
        key: String,
        /// The file (resolved).
        path: PathBuf,
        /// What is wrong (never the file's contents).
        problem: String,
    },
    /// A certificate does not belong to the private key configured beside it.
    #[error(
        "{origin}: the certificate in {} (`{key}`) does not match the private key in {} (`{other}`); configure the key the certificate was issued for",
        files[0].display(),
        files[1].display()
    )]
    TlsKeyMismatch {
        /// Where the certificate was named.
        origin: Origin,
        /// The certificate's key or flag.
        key: String,
        /// The private key's key or flag.
        other: String,
        /// The certificate file and the key file.
        files: Box<[PathBuf; 2]>,
    },
    /// A remote is reached over plain HTTP on a host that is not loopback.
    #[error(
        "{origin}: `{key}` is plain http:// to a host that is not loopback, so the runtime's token would cross the network in clear; use https:// (with ca_file), or set `{insecure}` = true for a network you trust"
    )]
    InsecureRemote {
        /// The file.
        origin: Origin,
        /// The remote's `base_url` key.
        key: String,
        /// The remote's `insecure_http` key.
        insecure: String,
    },
    /// A runtime would listen beyond loopback without a token.
    #[error(
        "{origin}: `{key}`: refusing to listen on {listen} without a token; set --token-file, token_file/token_env, or SWITCHYARD_RUNTIME_TOKEN"
    )]
    InsecureListen {
        /// Where the address came from.
        origin: Origin,
        /// The key or flag that set it.
        key: String,
        /// The address.
        listen: SocketAddr,
    },
}

impl ConfigError {
    /// The message for an HTTP client (a reload's `400 invalid_config`): the key and
    /// the configuration file, with no secret reference (a token file or variable, a
    /// key or certificate file) and no text quoted from the file (a parser's excerpt
    /// may hold a remote's address). What it leaves out is in the backend's log,
    /// which the message points to; everything else says what [`Display`] says.
    ///
    /// [`Display`]: std::fmt::Display
    pub fn client_message(&self) -> String {
        const LOG: &str = "the backend's log names the file";
        match self {
            Self::Syntax { origin, .. } => format!(
                "{origin}: invalid TOML; fix the syntax (the backend's log quotes what the parser expected)"
            ),
            Self::TokenFileUnreadable {
                origin,
                key,
                source,
                ..
            } => format!(
                "{origin}: cannot read the token file named by `{key}` ({}); {LOG}, check it and its permissions",
                source.kind()
            ),
            Self::TokenEnvUnset { origin, key, .. } => format!(
                "{origin}: the environment variable named by `{key}` is not set; export the token in it before starting"
            ),
            Self::TokenEmpty { origin, key, .. } => {
                format!("{origin}: `{key}`: the token source is empty; put the token in it")
            }
            Self::TokenMalformed { origin, key, .. } => format!(
                "{origin}: `{key}`: the token contains spaces or non-printable characters; a token is one line of printable ASCII"
            ),
            Self::TokenFileHoldsMany {
                origin, key, count, ..
            } => format!(
                "{origin}: `{key}`: the token file holds {count} tokens, one per line; the backend sends exactly one, so keep only the token the runtime is to receive"
            ),
            Self::SessionKeyUnreadable {
                origin,
                key,
                source,
                ..
            }
            | Self::TlsFileUnreadable {
                origin,
                key,
                source,
                ..
            } => format!(
                "{origin}: cannot read the file named by `{key}` ({}); {LOG}, check it and its permissions",
                source.kind()
            ),
            Self::TlsFileInvalid {
                origin,
                key,
                problem,
                ..
            } => format!("{origin}: the file named by `{key}` is not usable: {problem}"),
            Self::TlsKeyMismatch {
                origin, key, other, ..
            } => format!(
                "{origin}: the certificate named by `{key}` does not match the private key named by `{other}`; configure the key the certificate was issued for"
            ),
            other => other.to_string(),
        }
    }

    /// A stable snake_case code for what is wrong, for a program that sets up a
    /// backend or a runtime from a file or in code and must tell the failures apart
    /// without reading the message. A code keeps its meaning; a new kind of error
    /// gets a new code. (As a [`crate::StartError`] every configuration error is
    /// `invalid_config`; as a reload's answer, `400 invalid_config`.)
    ///
    /// | code | variant |
    /// |---|---|
    /// | `config_unreadable` | [`ConfigError::ReadFile`] |
    /// | `invalid_toml` | [`ConfigError::Syntax`] |
    /// | `unknown_key` | [`ConfigError::UnknownKey`] |
    /// | `missing_key` | [`ConfigError::MissingKey`] |
    /// | `invalid_value` | [`ConfigError::InvalidValue`] |
    /// | `conflicting_keys` | [`ConfigError::Conflict`] |
    /// | `missing_token` | [`ConfigError::MissingToken`] |
    /// | `token_file_unreadable` | [`ConfigError::TokenFileUnreadable`] |
    /// | `token_env_unset` | [`ConfigError::TokenEnvUnset`] |
    /// | `token_empty` | [`ConfigError::TokenEmpty`] |
    /// | `token_malformed` | [`ConfigError::TokenMalformed`] |
    /// | `token_file_holds_many` | [`ConfigError::TokenFileHoldsMany`] |
    /// | `duplicate_runtime_id` | [`ConfigError::DuplicateRuntimeId`] |
    /// | `session_key_unreadable` | [`ConfigError::SessionKeyUnreadable`] |
    /// | `tls_file_unreadable` | [`ConfigError::TlsFileUnreadable`] |
    /// | `tls_file_invalid` | [`ConfigError::TlsFileInvalid`] |
    /// | `tls_key_mismatch` | [`ConfigError::TlsKeyMismatch`] |
    /// | `open_listen` | [`ConfigError::OpenListen`] |
    /// | `insecure_remote` | [`ConfigError::InsecureRemote`] |
    /// | `insecure_listen` | [`ConfigError::InsecureListen`] |
    ///
    /// ```
    /// use switchyard_server::{Backend, StartError};
    ///
    /// let missing = std::env::temp_dir().join("switchyard-no-such-dir/backend.toml");
    /// let error = Backend::from_config_file(&missing).err().expect("no such file");
    /// assert_eq!(error.code(), "config_unreadable");
    /// assert_eq!(error.exit_code(), 2);
    /// // The same error as start-up reports it.
    /// assert_eq!(StartError::from(error).code(), "invalid_config");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Self::ReadFile { .. } => "config_unreadable",
            Self::Syntax { .. } => "invalid_toml",
            Self::UnknownKey { .. } => "unknown_key",
            Self::MissingKey { .. } => "missing_key",
            Self::InvalidValue { .. } => "invalid_value",
            Self::Conflict { .. } => "conflicting_keys",
            Self::MissingToken { .. } => "missing_token",
            Self::TokenFileUnreadable { .. } => "token_file_unreadable",
            Self::TokenEnvUnset { .. } => "token_env_unset",
            Self::TokenEmpty { .. } => "token_empty",
            Self::TokenMalformed { .. } => "token_malformed",
            Self::TokenFileHoldsMany { .. } => "token_file_holds_many",
            Self::DuplicateRuntimeId { .. } => "duplicate_runtime_id",
            Self::SessionKeyUnreadable { .. } => "session_key_unreadable",
            Self::TlsFileUnreadable { .. } => "tls_file_unreadable",
            Self::TlsFileInvalid { .. } => "tls_file_invalid",
            Self::TlsKeyMismatch { .. } => "tls_key_mismatch",
            Self::OpenListen { .. } => "open_listen",
            Self::InsecureRemote { .. } => "insecure_remote",
            Self::InsecureListen { .. } => "insecure_listen",
        }
    }

    /// The process exit status for a configuration error: always 2.
    pub fn exit_code(&self) -> i32 {
        2
    }

    /// Where the offending value came from, when known.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Self::ReadFile { .. } => None,
            Self::Syntax { origin, .. }
            | Self::UnknownKey { origin, .. }
            | Self::MissingKey { origin, .. }
            | Self::InvalidValue { origin, .. }
            | Self::Conflict { origin, .. }
            | Self::MissingToken { origin, .. }
            | Self::TokenFileUnreadable { origin, .. }
            | Self::TokenEnvUnset { origin, .. }
            | Self::TokenEmpty { origin, .. }
            | Self::TokenMalformed { origin, .. }
            | Self::TokenFileHoldsMany { origin, .. }
            | Self::DuplicateRuntimeId { origin, .. }
            | Self::SessionKeyUnreadable { origin, .. }
            | Self::OpenListen { origin, .. }
            | Self::TlsFileUnreadable { origin, .. }
            | Self::TlsFileInvalid { origin, .. }
            | Self::TlsKeyMismatch { origin, .. }
            | Self::InsecureRemote { origin, .. }
            | Self::InsecureListen { origin, .. } => Some(origin),
        }
    }

    /// The configuration file involved, when there is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::ReadFile { path, .. } => Some(path),
            other => other.origin().and_then(Origin::path),
        }
    }

    /// The dotted key path or flag involved, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::ReadFile { .. } | Self::Syntax { .. } => None,
            Self::UnknownKey { key, .. }
            | Self::MissingKey { key, .. }
            | Self::InvalidValue { key, .. }
            | Self::Conflict { key, .. }
            | Self::MissingToken { key, .. }
            | Self::TokenFileUnreadable { key, .. }
            | Self::TokenEnvUnset { key, .. }
            | Self::TokenEmpty { key, .. }
            | Self::TokenMalformed { key, .. }
            | Self::TokenFileHoldsMany { key, .. }
            | Self::DuplicateRuntimeId { key, .. }
            | Self::SessionKeyUnreadable { key, .. }
            | Self::OpenListen { key, .. }
            | Self::TlsFileUnreadable { key, .. }
            | Self::TlsFileInvalid { key, .. }
            | Self::TlsKeyMismatch { key, .. }
            | Self::InsecureRemote { key, .. }
            | Self::InsecureListen { key, .. } => Some(key),
        }
    }
}
