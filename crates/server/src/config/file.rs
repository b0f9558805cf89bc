//! The raw shapes of the two TOML files, before validation. Every table rejects
//! unknown keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The optional limit keys shared by the runtime file and the backend's `[embedded]`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LimitKeys {
    pub max_workers: Option<u32>,
    pub max_input_bytes: Option<u64>,
    pub max_body_bytes: Option<u64>,
    pub transcript_page_max: Option<u32>,
    pub event_backlog: Option<u32>,
    pub input_queue: Option<u32>,
    pub subscriber_queue: Option<u32>,
    pub stop_grace_ms: Option<u64>,
}

/// A runtime configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuntimeFile {
    pub runtime_id: Option<String>,
    pub display_name: Option<String>,
    pub listen: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_workers: Option<u32>,
    pub max_input_bytes: Option<u64>,
    pub max_body_bytes: Option<u64>,
    pub transcript_page_max: Option<u32>,
    pub event_backlog: Option<u32>,
    pub input_queue: Option<u32>,
    pub subscriber_queue: Option<u32>,
    pub stop_grace_ms: Option<u64>,
    pub tls: Option<TlsFile>,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileFile>,
}

/// The `[tls]` table of either file: the listener's certificate, key and client CA.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFile {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub client_ca_file: Option<PathBuf>,
}

impl RuntimeFile {
    pub fn limits(&self) -> LimitKeys {
        LimitKeys {
            max_workers: self.max_workers,
            max_input_bytes: self.max_input_bytes,
            max_body_bytes: self.max_body_bytes,
            transcript_page_max: self.transcript_page_max,
            event_backlog: self.event_backlog,
            input_queue: self.input_queue,
            subscriber_queue: self.subscriber_queue,
            stop_grace_ms: self.stop_grace_ms,
        }
    }
}

/// The kind of a profile as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KindFile {
    Echo,
    Process,
    Pty,
}

/// One `[profiles.NAME]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileFile {
    pub kind: KindFile,
    pub command: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub cwd: Option<PathBuf>,
    pub description: Option<String>,
    pub delay_ms: Option<u64>,
    pub cols: Option<u16>,
    pub rows: Option<u16>,
    pub idle_timeout_s: Option<u64>,
}

/// A backend configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackendFile {
    pub listen: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    pub max_body_bytes: Option<u64>,
    pub health_interval_ms: Option<u64>,
    pub drain_ms: Option<u64>,
    pub viewer_queue: Option<u32>,
    pub event_backlog: Option<u32>,
    pub tls: Option<TlsFile>,
    pub embedded: Option<EmbeddedFile>,
    #[serde(default)]
    pub remote: Vec<RemoteFile>,
    pub auth: Option<AuthFile>,
}

/// The backend's `[auth]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthFile {
    pub open: Option<bool>,
    pub session_key_file: Option<PathBuf>,
    pub session_ttl_s: Option<u64>,
    #[serde(default)]
    pub token: Vec<TokenFile>,
}

/// One `[[auth.token]]` entry. `Debug` leaves the hash out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenFile {
    pub name: String,
    pub token_sha256: String,
    pub role: switchyard_registry::Role,
    pub runtimes: Option<Vec<String>>,
    pub workers: Option<switchyard_registry::WorkerScope>,
}

/// The backend's `[embedded]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmbeddedFile {
    pub runtime_id: Option<String>,
    pub display_name: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_workers: Option<u32>,
    pub max_input_bytes: Option<u64>,
    pub max_body_bytes: Option<u64>,
    pub transcript_page_max: Option<u32>,
    pub event_backlog: Option<u32>,
    pub input_queue: Option<u32>,
    pub subscriber_queue: Option<u32>,
    pub stop_grace_ms: Option<u64>,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileFile>,
}

impl EmbeddedFile {
    pub fn limits(&self) -> LimitKeys {
        LimitKeys {
            max_workers: self.max_workers,
            max_input_bytes: self.max_input_bytes,
            max_body_bytes: self.max_body_bytes,
            transcript_page_max: self.transcript_page_max,
            event_backlog: self.event_backlog,
            input_queue: self.input_queue,
            subscriber_queue: self.subscriber_queue,
            stop_grace_ms: self.stop_grace_ms,
        }
    }
}

/// One `[[remote]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoteFile {
    pub runtime_id: String,
    pub display_name: Option<String>,
    pub base_url: String,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub stream_idle_timeout_ms: Option<u64>,
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    pub insecure_http: Option<bool>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("runtimes", &self.runtimes)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}
