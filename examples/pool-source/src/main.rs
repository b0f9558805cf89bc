//! `switchyard-pool`: a backend whose configured remote runtimes are served as one
//! pool.
//!
//! ```text
//! switchyard-pool --config backend.toml [--listen ADDR] [--pool-id build] [--pool-name NAME]
//! ```
//!
//! The file is an ordinary backend configuration (`switchyard serve --config`): its
//! `[[remote]]` runtimes become the pool's members, named by their `runtime_id`;
//! everything else (`[embedded]`, `[auth]`, `[tls]`, origins, ...) is served as
//! configured. Prints `listening on http://ADDR` first, like `switchyard serve`, and
//! stops cleanly on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use switchyard_example_pool::PoolSource;
use switchyard_protocol::RuntimeId;
use switchyard_server::{Backend, remote_runtime};
use tokio::signal::unix::{SignalKind, signal};

/// A backend whose remote runtimes are served as one pool.
#[derive(Debug, Parser)]
struct Args {
    /// Backend configuration file (TOML); its remote runtimes form the pool
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Address to listen on, instead of the file's `listen`
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The pool's runtime id
    #[arg(long, value_name = "ID", default_value = "pool")]
    pool_id: RuntimeId,
    /// The pool's name for people
    #[arg(long, value_name = "NAME", default_value = "Pool")]
    pool_name: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err((status, message)) => {
            eprintln!("switchyard-pool: {message}");
            ExitCode::from(status)
        }
    }
}

async fn run(args: Args) -> Result<(), (u8, String)> {
    let usage = |message: String| (2, message);
    let mut backend = Backend::from_config_file(&args.config).map_err(|e| usage(e.to_string()))?;
    if let Some(listen) = args.listen {
        backend = backend.listen(listen);
    }
    let remotes = std::mem::take(&mut backend.settings_mut().remotes);
    if remotes.is_empty() {
        return Err(usage(format!(
            "{}: no [[remote]] runtimes to pool; add some",
            args.config.display()
        )));
    }
    let mut pool = PoolSource::new(args.pool_id, args.pool_name);
    for remote in remotes {
        let name = remote.runtime_id.to_string();
        let member = remote_runtime(remote).map_err(|e| (e.exit_code(), e.to_string()))?;
        pool = pool
            .member(&name, member)
            .map_err(|e| usage(e.to_string()))?;
    }
    let running = backend
        .runtime(pool.into_registered())
        .start()
        .await
        .map_err(|e| (e.exit_code(), e.to_string()))?;
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        _ => return Err((1, "could not install the signal handlers".into())),
    };
    println!("listening on {}", running.url());
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    running.shutdown().await;
    Ok(())
}
