//! The flags and arguments of the client subcommands.

use std::path::PathBuf;

use switchyard_client::{DEFAULT_BACKEND_URL, WorkerRef};
use switchyard_protocol::{RuntimeId, WorkerStatus};

/// Where the backend is and how to authenticate; every client subcommand takes them.
#[derive(Debug, Clone, clap::Args)]
pub struct BackendArgs {
    /// The backend's URL
    #[arg(long, value_name = "URL", env = "SWITCHYARD_URL", hide_env_values = true, default_value = DEFAULT_BACKEND_URL)]
    pub backend: String,
    /// File holding the bearer token to send [default: the SWITCHYARD_TOKEN variable]
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA certificate(s) an https:// backend's certificate must be
    /// signed by, instead of the system's CAs
    #[arg(long, value_name = "FILE", env = "SWITCHYARD_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate (chain, leaf first) to present to an
    /// https:// backend that requires one (its `[tls] client_ca_file`); needs
    /// --client-key
    #[arg(long, value_name = "FILE", env = "SWITCHYARD_CLIENT_CERT")]
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key (PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "FILE", env = "SWITCHYARD_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,
}

/// `switchyard runtimes`.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimesArgs {
    /// Print the backend's JSON (`{"runtimes":[...]}`) instead of a table
    #[arg(long)]
    pub json: bool,
    /// Where the backend is.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `switchyard ls`.
#[derive(Debug, Clone, clap::Args)]
pub struct LsArgs {
    /// Only this runtime's workers
    #[arg(long, value_name = "ID")]
    pub runtime: Option<RuntimeId>,
    /// Only workers with this status (starting, running, exited, stopped, failed, lost)
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    pub status: Option<WorkerStatus>,
    /// Print JSON (`{"workers":[...],"unavailable":[...]}`) instead of a table
    #[arg(long)]
    pub json: bool,
    /// Where the backend is.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `switchyard run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The runtime to start the worker on
    #[arg(value_name = "RUNTIME")]
    pub runtime: RuntimeId,
    /// The profile to start it from (as `switchyard runtimes` lists them)
    #[arg(value_name = "PROFILE")]
    pub profile: String,
    /// A label shown in listings
    #[arg(long, value_name = "L")]
    pub label: Option<String>,
    /// Attach to the new worker at once
    #[arg(long, conflicts_with = "json")]
    pub attach: bool,
    /// Print the new worker's detail as JSON instead of RUNTIME/WORKER
    #[arg(long)]
    pub json: bool,
    /// Where the backend is.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `switchyard attach`.
#[derive(Debug, Clone, clap::Args)]
pub struct AttachArgs {
    /// The worker, as RUNTIME/WORKER
    #[arg(value_name = "RUNTIME/WORKER")]
    pub worker: WorkerRef,
    /// Where the backend is.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `switchyard logs`.
#[derive(Debug, Clone, clap::Args)]
pub struct LogsArgs {
    /// The worker, as RUNTIME/WORKER
    #[arg(value_name = "RUNTIME/WORKER")]
    pub worker: WorkerRef,
    /// Keep following live output until the worker ends
    #[arg(short, long)]
    pub follow: bool,
    /// Start with the last N transcript items instead of the first
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
    /// Where the backend is.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `switchyard send`.
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// The worker, as RUNTIME/WORKER
    #[arg(value_name = "RUNTIME/WORKER")]
    pub worker: WorkerRef,
    /// The text to send; a newline is added unless -n. `-` sends standard input as is
    #[arg(value_name = "TEXT", allow_hyphen_values = true)]
    pub text: String,
    /// Do not add a newline
    #[arg(short = 'n', long)]
    pub no_newline: bool,
    /// Where the backend is.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `switchyard stop` and `switchyard cancel`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// The worker, as RUNTIME/WORKER
    #[arg(value_name = "RUNTIME/WORKER")]
    pub worker: WorkerRef,
    /// Where the backend is.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// `switchyard rm`.
#[derive(Debug, Clone, clap::Args)]
pub struct RmArgs {
    /// The worker, as RUNTIME/WORKER
    #[arg(value_name = "RUNTIME/WORKER")]
    pub worker: WorkerRef,
    /// Stop the worker first if it is still running
    #[arg(short, long)]
    pub force: bool,
    /// Where the backend is.
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// A status name, for `--status`.
fn parse_status(s: &str) -> Result<WorkerStatus, String> {
    s.parse()
        .map_err(|()| "expected one of starting, running, exited, stopped, failed, lost".into())
}
