//! The raw shapes of the two TOML files, before validation. Every table rejects
//! unknown keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Calls `$callback!` with the optional limit keys that the runtime file and the
/// backend's `[embedded]` table both take, appended to `$args` after a `;`. This is
/// the one place the keys are listed: [`LimitKeys`], both tables' fields and their
/// `limits()` are generated from it. (serde's `flatten` would share a struct, but it
/// does not work with `deny_unknown_fields`, which every table needs.)
macro_rules! with_limit_keys {
    ($callback:ident ! { $($args:tt)* }) => {
        $callback! {
            $($args)* ;
            max_workers: u32,
            max_ended_workers: u32,
            max_input_bytes: u64,
            max_body_bytes: u64,
            transcript_page_max: u32,
            event_backlog: u32,
            input_queue: u32,
            subscriber_queue: u32,
            stop_grace_ms: u64,
        }
    };
}

/// Defines [`LimitKeys`] from the list in `with_limit_keys!`.
macro_rules! limit_keys_struct {
    (; $($limit:ident: $ty:ty,)*) => {
        /// The optional limit keys shared by the runtime file and the backend's
        /// `[embedded]`.
        #[derive(Debug, Clone, Copy, Default)]
        pub(crate) struct LimitKeys {
            $(pub $limit: Option<$ty>,)*
        }
    };
}

/// Defines a table that takes the limit keys besides its own fields, and its
/// `limits()`.
macro_rules! table_with_limits {
    (
        $(#[$meta:meta])*
        pub(crate) struct $name:ident { $($fields:tt)* } ;
        $($limit:ident: $ty:ty,)*
    ) => {
        $(#[$meta])*
        pub(crate) struct $name {
            $($fields)*
            $(pub $limit: Option<$ty>,)*
        }

        impl $name {
            /// The limit keys as written.
            pub fn limits(&self) -> LimitKeys {
                LimitKeys {
                    $($limit: self.$limit,)*
                }
            }
        }
    };
}

with_limit_keys!(limit_keys_struct! {});

with_limit_keys!(table_with_limits! {
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
        pub max_connections: Option<u32>,
        pub tls: Option<TlsFile>,
        #[serde(default)]
        pub profiles: BTreeMap<String, ProfileFile>,
    }
});

/// The `[tls]` table of either file: the listener's certificate, key and client CA.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFile {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub client_ca_file: Option<PathBuf>,
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
    pub max_connections: Option<u32>,
    pub metrics_listen: Option<String>,
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
    pub signed_out_file: Option<PathBuf>,
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

with_limit_keys!(table_with_limits! {
    /// The backend's `[embedded]` table.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct EmbeddedFile {
        pub runtime_id: Option<String>,
        pub display_name: Option<String>,
        pub data_dir: Option<PathBuf>,
        #[serde(default)]
        pub profiles: BTreeMap<String, ProfileFile>,
    }
});

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
