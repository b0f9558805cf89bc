//! The command-line flags of `switchyard runtime` and `switchyard serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use switchyard_protocol::RuntimeId;

/// Flags of `switchyard runtime`. Each overrides the matching key of the config file.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct RuntimeArgs {
    /// Runtime configuration file (TOML)
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub config: Option<PathBuf>,
    /// Address to listen on, IP:PORT (port 0 takes a free port) [default: 127.0.0.1:7701]
    #[cfg_attr(feature = "cli", arg(long, value_name = "ADDR"))]
    pub listen: Option<SocketAddr>,
    /// This runtime's id [default: local]
    #[cfg_attr(feature = "cli", arg(long, value_name = "ID"))]
    pub runtime_id: Option<RuntimeId>,
    /// File holding the bearer token clients must present
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub token_file: Option<PathBuf>,
    /// Directory to keep workers and transcripts in; in memory when absent
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    pub data_dir: Option<PathBuf>,
    /// Serve HTTPS only, with this PEM certificate chain (with --tls-key)
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1)
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this PEM CA (mTLS)
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub tls_client_ca: Option<PathBuf>,
}

/// Flags of `switchyard serve`. Each overrides the matching key of the config file.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ServeArgs {
    /// Backend configuration file (TOML)
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub config: Option<PathBuf>,
    /// Address to listen on, IP:PORT (port 0 takes a free port) [default: 127.0.0.1:7700]
    #[cfg_attr(feature = "cli", arg(long, value_name = "ADDR"))]
    pub listen: Option<SocketAddr>,
    /// Serve HTTPS only, with this PEM certificate chain (with --tls-key)
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1)
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this PEM CA (mTLS)
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    pub tls_client_ca: Option<PathBuf>,
}
