//! `switchyard-tail`: `switchyard serve` with `tail` profiles in its embedded
//! runtime, each following a log file.
//!
//! ```text
//! switchyard-tail [--config FILE] [--listen ADDR] [--lines N] --file NAME=PATH [--file NAME=PATH ...]
//! ```
//!
//! Each `--file` adds a profile NAME to the embedded runtime (the configuration's
//! `[embedded]`, or without `--config` the default `local` runtime). Prints
//! `listening on http://ADDR` first and stops cleanly on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use switchyard_example_tail::TailDriver;
use switchyard_runtime::Profile;
use switchyard_server::Backend;
use switchyard_server::config::BackendSettings;
use tokio::signal::unix::{SignalKind, signal};

/// A backend whose embedded runtime has `tail` profiles.
#[derive(Debug, Parser)]
struct Args {
    /// Backend configuration file (TOML), as for `switchyard serve`
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, instead of the file's `listen`
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// How many of a file's last lines a new worker shows first
    #[arg(long, value_name = "N", default_value_t = 10)]
    lines: usize,
    /// A profile NAME whose workers follow the file at PATH
    #[arg(long = "file", value_name = "NAME=PATH", required = true, value_parser = profile_file)]
    files: Vec<(String, PathBuf)>,
}

fn profile_file(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(path)))
        }
        _ => Err("expected NAME=PATH, e.g. app-log=/var/log/app.log".into()),
    }
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
                eprintln!("switchyard-tail: {error}");
                return ExitCode::from(2);
            }
        },
        None => Backend::from_settings(BackendSettings::defaults()),
    };
    if let Some(listen) = args.listen {
        backend = backend.listen(listen);
    }
    for (name, path) in args.files {
        let description = format!("follows a log file ({name})");
        let driver = TailDriver::new(path).with_initial_lines(args.lines);
        backend =
            backend.embedded_profile(name, Profile::custom(driver).with_description(description));
    }
    let running = match backend.start().await {
        Ok(running) => running,
        Err(error) => {
            eprintln!("switchyard-tail: {error}");
            return ExitCode::from(error.exit_code());
        }
    };
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("switchyard-tail: could not install the signal handlers");
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
