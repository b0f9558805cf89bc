//! `switchyard-cluster`, run by `cargo xtask cluster`, `cargo xtask cluster-test`
//! and `cargo xtask scaling`.
//!
//! - `up`: starts a cluster (runtime hosts in network namespaces, replicas,
//!   HAProxy), prints where everything is, and waits for Ctrl-C (or SIGTERM), then
//!   removes everything it created.
//! - `check`: exits 0 when this machine can run a cluster (it can create network
//!   namespaces; HAProxy and nftables are installed, or are installed now when
//!   running as root), 3 with the reason when it cannot.
//! - `scale`: measures the aggregate worker list against 1 to 1,000 simulated
//!   runtimes and writes the table and plots (docs/SCALING.md, docs/scaling/).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard_cluster::scaling::{self, ScalePlan};
use switchyard_cluster::{Cluster, ClusterError, ClusterOptions};

#[derive(Debug, Parser)]
#[command(name = "switchyard-cluster")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Starts a cluster and waits for Ctrl-C.
    Up {
        /// Runtime hosts (network namespaces).
        #[arg(long, default_value_t = 2)]
        runtimes: usize,
        /// Backend replicas behind HAProxy.
        #[arg(long, default_value_t = 3)]
        replicas: usize,
        /// The `switchyard` binary (default: $SWITCHYARD_BIN).
        #[arg(long)]
        switchyard: Option<PathBuf>,
    },
    /// Checks (and, as root, installs) what a cluster needs.
    Check,
    /// Measures the aggregate-list curve.
    Scale {
        /// Small counts, few calls (keeps the code working; judges nothing).
        #[arg(long)]
        quick: bool,
        /// The `switchyard` binary (default: $SWITCHYARD_BIN).
        #[arg(long)]
        switchyard: PathBuf,
        /// The document whose `scaling-curve` block gets the table; with
        /// `--plots`, where the plots go. Neither: print only.
        #[arg(long)]
        doc: Option<PathBuf>,
        /// Directory for the SVG plots.
        #[arg(long)]
        plots: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("switchyard-cluster: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match args.command {
            Cmd::Check => check(),
            Cmd::Up {
                runtimes,
                replicas,
                switchyard,
            } => up(runtimes, replicas, switchyard).await,
            Cmd::Scale {
                quick,
                switchyard,
                doc,
                plots,
            } => scale(quick, switchyard, doc, plots).await,
        }
    })
}

fn check() -> ExitCode {
    let checks = || -> Result<(), ClusterError> {
        switchyard_cluster::sys::ensure_program(
            "ip",
            "iproute2",
            "install Debian's iproute2 package (apt-get install iproute2)",
        )?;
        switchyard_cluster::net::check_privilege()?;
        switchyard_cluster::sys::ensure_program(
            "haproxy",
            "haproxy",
            "install Debian's haproxy package (apt-get install haproxy)",
        )?;
        switchyard_cluster::sys::ensure_program(
            "nft",
            "nftables",
            "install Debian's nftables package (apt-get install nftables)",
        )
    };
    match checks() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(if error.is_environment() { 3 } else { 1 })
        }
    }
}

async fn up(runtimes: usize, replicas: usize, switchyard: Option<PathBuf>) -> ExitCode {
    if check() != ExitCode::SUCCESS {
        return ExitCode::from(3);
    }
    let options = ClusterOptions {
        runtimes,
        replicas,
        bin: switchyard,
        ..ClusterOptions::default()
    };
    let cluster = match Cluster::start(options).await {
        Ok(cluster) => cluster,
        Err(error) => {
            eprintln!("switchyard-cluster: {error}");
            return ExitCode::FAILURE;
        }
    };
    let lb = cluster.lb();
    println!(
        "\nSwitchyard cluster (files and logs in {}):\n",
        cluster.dir().display()
    );
    println!("  HAProxy      http://{lb}   <- use this (console: http://{lb}/)");
    for replica in &cluster.replicas {
        println!(
            "  replica {:<4} http://{}   (GET /readyz; SIGTERM drains)",
            replica.name, replica.addr
        );
    }
    for host in &cluster.runtimes {
        println!(
            "  runtime {:<4} {}   in network namespace {} (HTTPS, client certificates)",
            host.runtime_id,
            host.base_url(),
            host.link.namespace
        );
    }
    println!(
        "\nClients authenticate (an operator token in {dir}/client.token; the console signs in with it).\n\
         Try:\n  \
         TOKEN=$(cat {dir}/client.token)\n  \
         curl -s -H \"Authorization: Bearer $TOKEN\" http://{lb}/api/runtimes\n  \
         curl -s -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' -d '{{\"profile\":\"ticker\"}}' http://{lb}/api/runtimes/rt0/workers\n  \
         echo 'show stat' | socat - {dir}/haproxy.sock   # HAProxy's view (if socat is installed)\n  \
         ip netns exec {ns} nft list ruleset   # inside a runtime host\n\n\
         Ctrl-C removes everything.",
        dir = cluster.dir().display(),
        ns = cluster.runtimes[0].link.namespace,
    );
    wait_for_signal().await;
    eprintln!("switchyard-cluster: stopping and removing everything");
    cluster.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn scale(
    quick: bool,
    switchyard: PathBuf,
    doc: Option<PathBuf>,
    plots: Option<PathBuf>,
) -> ExitCode {
    let plan = if quick {
        ScalePlan::quick()
    } else {
        ScalePlan::full()
    };
    let dir = match tempfile::Builder::new()
        .prefix("switchyard-scaling-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("switchyard-cluster: {e}");
            return ExitCode::FAILURE;
        }
    };
    let points = match scaling::measure(&plan, &switchyard, dir.path()).await {
        Ok(points) => points,
        Err(error) => {
            eprintln!(
                "switchyard-cluster: the curve failed: {error} (logs in {})",
                dir.keep().display()
            );
            return ExitCode::FAILURE;
        }
    };
    let table = scaling::table(&points);
    println!("{table}");
    if let Some(plots) = plots {
        match scaling::plots(&points, &plots) {
            Ok(written) => {
                for path in written {
                    eprintln!("wrote {}", path.display());
                }
            }
            Err(error) => {
                eprintln!("switchyard-cluster: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(doc) = doc {
        let text = std::fs::read_to_string(&doc).unwrap_or_default();
        let Some(updated) = scaling::replace_block(&text, "scaling-curve", &table) else {
            eprintln!(
                "switchyard-cluster: {} has no <!-- scaling-curve:begin --> ... end block",
                doc.display()
            );
            return ExitCode::FAILURE;
        };
        if let Err(error) = std::fs::write(&doc, updated) {
            eprintln!("switchyard-cluster: writing {}: {error}", doc.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote the table into {}", doc.display());
    }
    ExitCode::SUCCESS
}
