//! The client subcommands (`runtimes`, `ls`, `run`, `attach`, `logs`, `send`,
//! `stop`, `cancel`, `rm`): a backend's public API from a terminal or a script,
//! through [`switchyard_client`].
//!
//! Exit status: 0 on success; 1 for an error, printed as `error: <code>: <message>`
//! on standard error (the backend's code, or one of the client's own:
//! `backend_unreachable`, `backend_timeout`, `backend_protocol_error`); 2 for a usage
//! error (clap's, or a backend URL, token file, CA file or client certificate that
//! cannot be used);
//! `attach` exits with the worker's own status when the worker ends.
//!
//! An `https://` backend's certificate is verified against `--ca-file` /
//! `SWITCHYARD_CA_FILE` when given (a private CA, as the backend's own `ca_file`
//! for its remotes), else against the system's CA store. To a backend that requires
//! client certificates (`[tls] client_ca_file`) the client presents
//! `--client-cert` / `--client-key` (`SWITCHYARD_CLIENT_CERT` /
//! `SWITCHYARD_CLIENT_KEY`), on REST and on the event WebSocket alike.

mod args;
mod attach;
mod failure;
mod listing;
mod logs;
mod output;
mod own_inputs;
mod printer;
mod transcript_view;
mod worker;

use std::path::Path;

pub use args::{
    AttachArgs, BackendArgs, LogsArgs, LsArgs, RmArgs, RunArgs, RuntimesArgs, SendArgs, WorkerArgs,
};
use rustls::pki_types::CertificateDer;
use switchyard_client::{
    BackendClient, BackendUrl, ClientIdentity, ClientTls, SecretToken, Timeouts,
};
use switchyard_transport::TlsSetupError;

use crate::config::{NamedFile, Origin};

pub(crate) use failure::Failure;

/// The environment variable holding the token when no `--token-file` is given.
pub const TOKEN_ENV: &str = "SWITCHYARD_TOKEN";

/// One client subcommand with its arguments.
#[derive(Debug, Clone)]
pub enum ClientCommand {
    /// `switchyard runtimes`.
    Runtimes(RuntimesArgs),
    /// `switchyard ls`.
    Ls(LsArgs),
    /// `switchyard run`.
    Run(RunArgs),
    /// `switchyard attach`.
    Attach(AttachArgs),
    /// `switchyard logs`.
    Logs(LogsArgs),
    /// `switchyard send`.
    Send(SendArgs),
    /// `switchyard stop`.
    Stop(WorkerArgs),
    /// `switchyard cancel`.
    Cancel(WorkerArgs),
    /// `switchyard rm`.
    Rm(RmArgs),
}

impl ClientCommand {
    fn backend(&self) -> &BackendArgs {
        match self {
            Self::Runtimes(a) => &a.backend,
            Self::Ls(a) => &a.backend,
            Self::Run(a) => &a.backend,
            Self::Attach(a) => &a.backend,
            Self::Logs(a) => &a.backend,
            Self::Send(a) => &a.backend,
            Self::Stop(a) | Self::Cancel(a) => &a.backend,
            Self::Rm(a) => &a.backend,
        }
    }
}

/// Runs a client subcommand to completion on a single-threaded tokio runtime and
/// returns the process exit status. Errors are printed here, once, after the
/// runtime has stopped.
pub fn main(command: ClientCommand) -> u8 {
    let result = connect(command.backend()).and_then(|client| {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::new("internal", format!("could not start tokio: {e}")))?;
        let result = tokio.block_on(run(command, client));
        // Blocking standard-stream writes may still be queued; do not wait long.
        tokio.shutdown_timeout(std::time::Duration::from_millis(500));
        result
    });
    match result {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}

async fn run(command: ClientCommand, client: BackendClient) -> Result<u8, Failure> {
    let client = &client;
    match command {
        ClientCommand::Runtimes(args) => listing::runtimes(client, &args).await,
        ClientCommand::Ls(args) => listing::ls(client, &args).await,
        ClientCommand::Run(args) => worker::run(client, &args).await,
        ClientCommand::Attach(args) => attach::attach(client, &args.worker).await,
        ClientCommand::Logs(args) => logs::logs(client, &args).await,
        ClientCommand::Send(args) => worker::send(client, &args).await,
        ClientCommand::Stop(args) => worker::stop(client, &args.worker).await,
        ClientCommand::Cancel(args) => worker::cancel(client, &args.worker).await,
        ClientCommand::Rm(args) => worker::rm(client, &args).await,
    }
}

/// The client for `args`: the URL parsed, the token read (`--token-file`, else
/// `SWITCHYARD_TOKEN`), and for an `https://` backend the CA file or the system's
/// CAs read (here, before the async runtime starts: it is blocking file I/O). A URL,
/// token file or CA file that cannot be used is a usage error.
fn connect(args: &BackendArgs) -> Result<BackendClient, Failure> {
    let url = BackendUrl::parse(&args.backend).map_err(|e| Failure::usage(e.code(), &e))?;
    let token = match &args.token_file {
        Some(path) => Some(read_token_file(path)?),
        None => token_from_env()?,
    };
    // TLS files only matter for https://; SWITCHYARD_CA_FILE and the client
    // certificate variables may well be set for other backends, so they are not
    // read (nor refused) for an http:// one.
    let tls = if url.is_https() {
        read_tls(args)?
    } else {
        None
    };
    BackendClient::with_tls(url, token.as_ref(), Timeouts::default(), tls)
        .map_err(|e| Failure::usage(e.code(), &e))
}

/// What an `https://` backend is trusted by and shown: the CA file's certificates
/// (else the system's, chosen by [`BackendClient::with_tls`] when nothing is given)
/// and the client certificate with its key. Errors name the file (the user's own)
/// and what is wrong, never its content.
fn read_tls(args: &BackendArgs) -> Result<Option<ClientTls>, Failure> {
    let identity = read_identity(args)?;
    let roots = match &args.ca_file {
        Some(path) => Some(read_ca_file(path)?),
        None if identity.is_none() => return Ok(None),
        None => None,
    };
    let had_identity = identity.is_some();
    let built = match &roots {
        Some(roots) => ClientTls::new(roots, identity, None),
        None => ClientTls::with_system_roots(identity, None),
    };
    built.map(Some).map_err(|e| match e {
        TlsSetupError::KeyMismatch | TlsSetupError::BadIdentity(_) if had_identity => {
            Failure::usage(
                INVALID_CLIENT_CERTIFICATE,
                format!("the client certificate and key cannot be used: {e}"),
            )
        }
        other => match &args.ca_file {
            Some(path) => Failure::usage(
                "invalid_ca_file",
                format!("the CA file {} cannot be used: {other}", path.display()),
            ),
            None => Failure::usage("invalid_tls_config", other),
        },
    })
}

/// The code of a client certificate or key that cannot be used.
const INVALID_CLIENT_CERTIFICATE: &str = "invalid_client_certificate";

/// The client certificate of `--client-cert` and `--client-key` (both or neither).
fn read_identity(args: &BackendArgs) -> Result<Option<ClientIdentity>, Failure> {
    let (cert, key) = match (&args.client_cert, &args.client_key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            return Err(Failure::usage(
                INVALID_CLIENT_CERTIFICATE,
                "--client-cert needs its private key: add --client-key (or SWITCHYARD_CLIENT_KEY)",
            ));
        }
        (None, Some(_)) => {
            return Err(Failure::usage(
                INVALID_CLIENT_CERTIFICATE,
                "--client-key needs its certificate: add --client-cert (or SWITCHYARD_CLIENT_CERT)",
            ));
        }
    };
    let named = |key: &str, path: &Path| NamedFile {
        origin: Origin::CommandLine,
        key: key.to_owned(),
        path: path.to_owned(),
    };
    let chain =
        crate::config::read_certificates(&named("--client-cert (or SWITCHYARD_CLIENT_CERT)", cert))
            .map_err(|e| Failure::usage(INVALID_CLIENT_CERTIFICATE, &e))?;
    let key =
        crate::config::read_private_key(&named("--client-key (or SWITCHYARD_CLIENT_KEY)", key))
            .map_err(|e| Failure::usage(INVALID_CLIENT_CERTIFICATE, &e))?;
    Ok(Some(ClientIdentity { chain, key }))
}

/// The CA certificates of a PEM file.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let file = NamedFile {
        origin: Origin::CommandLine,
        key: "--ca-file (or SWITCHYARD_CA_FILE)".to_owned(),
        path: path.to_owned(),
    };
    crate::config::read_certificates(&file).map_err(|e| Failure::usage("invalid_ca_file", &e))
}

/// The token in [`TOKEN_ENV`], if it is set and not empty; one that is not UTF-8
/// is refused (sending none would read as if none had been given).
fn token_from_env() -> Result<Option<SecretToken>, Failure> {
    match std::env::var(TOKEN_ENV) {
        Ok(text) => Ok(SecretToken::new(text)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Failure::usage(
            "invalid_token",
            format!("{TOKEN_ENV} is not valid UTF-8; set it to the token itself"),
        )),
    }
}

/// The most a token file may hold. Tokens are short (`switchyard token` makes
/// 46-character ones); anything bigger is the wrong file (or `/dev/zero`), and is
/// refused after reading one byte more, not read to its end and sent as a header.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// Reads a token file: its one line, trimmed (a byte-order mark an editor put first
/// is not part of it; empty, two tokens, or over [`MAX_TOKEN_FILE_BYTES`] is an
/// error). The error names the file, which the user gave, never its content.
fn read_token_file(path: &Path) -> Result<SecretToken, Failure> {
    use std::io::Read as _;
    let unreadable = |e: &dyn std::fmt::Display| {
        Failure::usage(
            "invalid_token_file",
            format!("could not read the token file {}: {e}", path.display()),
        )
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_TOKEN_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| unreadable(&e))?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(Failure::usage(
            "invalid_token_file",
            format!(
                "the token file {} is over {MAX_TOKEN_FILE_BYTES} bytes, too big to hold a \
                 token; check the path, and keep only the token in the file (one line)",
                path.display()
            ),
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| unreadable(&"it is not UTF-8 text"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned();
    let lines = text.lines().filter(|line| !line.trim().is_empty()).count();
    if lines > 1 {
        return Err(Failure::usage(
            "invalid_token_file",
            format!(
                "the token file {} holds {lines} tokens, one per line; keep only the one to send",
                path.display()
            ),
        ));
    }
    SecretToken::new(text).ok_or_else(|| {
        Failure::usage(
            "invalid_token_file",
            format!("the token file {} is empty", path.display()),
        )
    })
}
