//! The `switchyard` command line: `serve` (the backend) and `runtime` (a standalone
//! worker runtime).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

/// Parses the command line, runs the subcommand on a multi-threaded tokio runtime and
/// returns the process exit status (0 after a clean shutdown, 2 for a configuration
/// error, 1 for any other start-up failure).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // Every TLS configuration passes its provider explicitly; installing the same
    // one as the process default keeps anything else from guessing.
    let _ = rustls::crypto::CryptoProvider::install_default(
        (*switchyard_transport::tls::crypto_provider()).clone(),
    );
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
        match cli.command {
            Command::Runtime(args) => crate::commands::runtime::run(args).await,
            Command::Serve(args) => crate::commands::serve::run(args).await,
        }
    });
    // Worker drivers may still hold blocking reads; do not wait for them forever.
    tokio.shutdown_timeout(std::time::Duration::from_secs(2));
    ExitCode::from(code)
}

/// Logs go to standard error, filtered by `RUST_LOG` (default `info`); standard output
/// is reserved for the `listening on` line.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
