//! The `switchyard` command line: `serve` (the backend), `runtime` (a standalone
//! worker runtime), `token` (a new client token and its configuration lines), and the
//! client subcommands that talk to a backend (`runtimes`, `ls`, `run`, `attach`,
//! `logs`, `send`, `stop`, `cancel`, `rm`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::client::{
    AttachArgs, ClientCommand, LogsArgs, LsArgs, RmArgs, RunArgs, RuntimesArgs, SendArgs,
    WorkerArgs,
};
use crate::config::{RuntimeArgs, ServeArgs};

/// Switchyard: one safe API over many worker runtimes.
#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Switchyard: one safe API over many worker runtimes"
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the backend: the browser-facing API over embedded and remote runtimes.
    Serve(ServeArgs),
    /// Run a standalone worker runtime that a backend reaches over the Runtime API.
    Runtime(RuntimeArgs),
    /// Print a new client token and the backend's [[auth.token]] lines for it.
    Token(crate::commands::token::TokenArgs),
    /// List the backend's runtimes and their state.
    Runtimes(RuntimesArgs),
    /// List workers of all runtimes (or one).
    Ls(LsArgs),
    /// Start a worker from a profile; print its RUNTIME/WORKER (or attach to it).
    Run(RunArgs),
    /// Join a worker from this terminal (Ctrl-] detaches).
    Attach(AttachArgs),
    /// Print a worker's transcript; -f follows it live until the worker ends.
    Logs(LogsArgs),
    /// Send input to a worker.
    Send(SendArgs),
    /// Stop a worker.
    Stop(WorkerArgs),
    /// Interrupt a worker's current work (like Ctrl-C).
    Cancel(WorkerArgs),
    /// Remove an ended worker and its transcript.
    Rm(RmArgs),
    /// Internal: started by `serve` and `runtime` to kill their workers if they
    /// crash (see `commands::reaper`); reads its standard input to the end.
    #[command(name = crate::commands::reaper::SUBCOMMAND, hide = true)]
    ReapOrphans,
}

impl Command {
    /// The client subcommand this is, if it is one; else the server subcommand back.
    fn into_client(self) -> Result<ClientCommand, Box<Self>> {
        Ok(match self {
            Self::Runtimes(args) => ClientCommand::Runtimes(args),
            Self::Ls(args) => ClientCommand::Ls(args),
            Self::Run(args) => ClientCommand::Run(args),
            Self::Attach(args) => ClientCommand::Attach(args),
            Self::Logs(args) => ClientCommand::Logs(args),
            Self::Send(args) => ClientCommand::Send(args),
            Self::Stop(args) => ClientCommand::Stop(args),
            Self::Cancel(args) => ClientCommand::Cancel(args),
            Self::Rm(args) => ClientCommand::Rm(args),
            server => return Err(Box::new(server)),
        })
    }
}

/// Parses the command line (a usage error exits 2) and runs the subcommand.
///
/// `serve` and `runtime` run on a multi-threaded tokio runtime and return 0 after a
/// clean shutdown, 2 for a configuration error, 1 for any other start-up failure.
/// The client subcommands return what [`crate::commands::client::main`] says.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every TLS configuration passes its provider explicitly; installing the same
    // one as the process default keeps anything else from guessing.
    let _ = rustls::crypto::CryptoProvider::install_default(
        (*switchyard_transport::tls::crypto_provider()).clone(),
    );
    let command = match cli.command.into_client() {
        Ok(client) => {
            let _log = crate::logging::init("off");
            return ExitCode::from(crate::commands::client::main(client));
        }
        Err(server) => server,
    };
    let command = match *command {
        Command::Token(args) => return ExitCode::from(crate::commands::token::run(args)),
        Command::ReapOrphans => return ExitCode::from(crate::commands::reaper::run()),
        server => server,
    };
    // Servers log at `info` unless `RUST_LOG` says otherwise; their standard output
    // is reserved for the `listening on` line.
    let log = crate::logging::init("info");
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(tokio) => tokio,
        Err(error) => {
            eprintln!("switchyard: could not start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let code = tokio.block_on(async move {
        match command {
            Command::Runtime(args) => crate::commands::runtime::run(args).await,
            Command::Serve(args) => crate::commands::serve::run(args).await,
            other => unreachable!("client subcommands and token return above: {other:?}"),
        }
    });
    // Worker drivers may still hold blocking reads; do not wait for them forever.
    tokio.shutdown_timeout(std::time::Duration::from_secs(2));
    drop(log);
    ExitCode::from(code)
}
