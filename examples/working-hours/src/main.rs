//! `switchyard-working-hours`: `switchyard serve` with the backend read-only outside
//! working hours.
//!
//! ```text
//! switchyard-working-hours [--config FILE] [--listen ADDR] [--schedule "mon-fri 09:00-17:00 +00:00"]
//! ```
//!
//! Without `--config` it serves what `switchyard serve` serves without one (an
//! embedded runtime `local` with the `echo` profile, on 127.0.0.1:7700). Prints
//! `listening on http://ADDR` first and stops cleanly on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use switchyard_example_working_hours::{Schedule, WorkingHours, system_clock};
use switchyard_server::Backend;
use switchyard_server::config::BackendSettings;
use tokio::signal::unix::{SignalKind, signal};

/// A backend that takes commands in working hours only.
#[derive(Debug, Parser)]
struct Args {
    /// Backend configuration file (TOML), as for `switchyard serve`
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, instead of the file's `listen`
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// When commands are allowed: DAYS OPEN-CLOSE OFFSET
    #[arg(long, default_value = "mon-fri 09:00-17:00 +00:00")]
    schedule: Schedule,
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
    let mut backend = match &args.config {
        Some(path) => match Backend::from_config_file(path) {
            Ok(backend) => backend,
            Err(error) => {
                eprintln!("switchyard-working-hours: {error}");
                return ExitCode::from(2);
            }
        },
        None => Backend::from_settings(BackendSettings::defaults()),
    };
    if let Some(listen) = args.listen {
        backend = backend.listen(listen);
    }
    let schedule = args.schedule;
    eprintln!("switchyard-working-hours: commands are taken {schedule}");
    let running = match backend
        .wrap_policy(move |inner| {
            Arc::new(WorkingHours::new(inner, schedule.clone(), system_clock()))
        })
        .start()
        .await
    {
        Ok(running) => running,
        Err(error) => {
            eprintln!("switchyard-working-hours: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("switchyard-working-hours: could not install the signal handlers");
        return ExitCode::FAILURE;
    };
    println!("listening on {}", running.url());
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    running.shutdown().await;
    ExitCode::SUCCESS
}
