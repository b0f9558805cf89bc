//! The aggregate-list curve: `GET /api/workers` (and the idle cost of health
//! probes) against 1 to 1,000 remote runtimes.
//!
//! The runtimes are simulated as cheaply as honesty allows: real Runtime API servers
//! (`switchyard_server::commands::runtime::start`, the code `switchyard runtime`
//! runs), many in this one process, each on its own loopback port with its own
//! token-checked HTTP server and a few `echo` workers. What they save against
//! separate processes is memory and start-up time, not the work of answering. The
//! backend is the real `switchyard serve` (the release build), configured with one
//! `[[remote]]` per runtime and the default health interval.
//!
//! For each runtime count it measures, on the backend process (`/proc/PID/stat`):
//! CPU while idle (the health probes), the latency of sequential aggregate lists,
//! and the CPU time each list costs; and its resident memory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_client::SecretToken;
use switchyard_protocol::{CreateWorkerRequest, RuntimeId};
use switchyard_runtime::RuntimeConfig;
use switchyard_server::commands::runtime::{self as runtime_cmd, RunningRuntime};
use switchyard_server::config::RuntimeSettings;
use tokio::process::Command;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::error::ClusterError;
use crate::process::Process;
use crate::stats::{Summary, percentile};
use crate::svg::{LineChart, Series};

/// The token every simulated runtime checks.
const TOKEN: &str = "scaling-curve-token-5f1c9e";

/// What to measure.
#[derive(Debug, Clone)]
pub struct ScalePlan {
    /// Runtime counts, ascending.
    pub counts: Vec<usize>,
    /// `echo` workers per runtime.
    pub workers_per_runtime: usize,
    /// Batches of lists per count (the plots' whiskers span them).
    pub batches: usize,
    /// Sequential lists per batch.
    pub lists_per_batch: usize,
    /// How long the idle backend is watched.
    pub idle_window: Duration,
}

impl ScalePlan {
    /// The full curve: 1 to 1,000 runtimes.
    pub fn full() -> Self {
        Self {
            counts: vec![1, 3, 10, 30, 100, 300, 1000],
            workers_per_runtime: 5,
            batches: 3,
            lists_per_batch: 30,
            idle_window: Duration::from_secs(15),
        }
    }

    /// A quick pass that keeps the code working (CI): small counts, few lists.
    pub fn quick() -> Self {
        Self {
            counts: vec![1, 10, 30],
            workers_per_runtime: 2,
            batches: 1,
            lists_per_batch: 5,
            idle_window: Duration::from_secs(2),
        }
    }
}

/// The figures at one runtime count.
#[derive(Debug, Clone)]
pub struct Point {
    /// Remote runtimes configured.
    pub runtimes: usize,
    /// Workers in each aggregate list.
    pub workers: usize,
    /// Median list latency per batch, ms.
    pub p50_ms: Summary,
    /// 99th-percentile list latency per batch, ms.
    pub p99_ms: Summary,
    /// Backend CPU time per list, ms, per batch.
    pub cpu_ms_per_list: Summary,
    /// Backend CPU while idle (health probes only), percent of one core.
    pub idle_cpu_percent: f64,
    /// Health probes per second the configuration implies.
    pub probes_per_s: f64,
    /// Backend resident memory after the lists, MiB.
    pub rss_mib: f64,
    /// Size of one aggregate list answer, KiB.
    pub answer_kib: f64,
}

/// Runs the plan with the `switchyard` binary `bin`, logging into `dir`.
pub async fn measure(plan: &ScalePlan, bin: &Path, dir: &Path) -> Result<Vec<Point>, ClusterError> {
    let max = plan.counts.iter().copied().max().unwrap_or(0);
    eprintln!("scaling: starting {max} simulated runtimes");
    let runtimes = start_runtimes(max, plan.workers_per_runtime).await?;
    let mut points = Vec::new();
    for &count in &plan.counts {
        eprintln!("scaling: {count} runtimes");
        points.push(measure_one(plan, bin, dir, &runtimes[..count]).await?);
    }
    for runtime in runtimes {
        runtime.shutdown().await;
    }
    Ok(points)
}

async fn start_runtimes(count: usize, workers: usize) -> Result<Vec<RunningRuntime>, ClusterError> {
    let mut runtimes = Vec::with_capacity(count);
    for i in 0..count {
        let id = RuntimeId::new(format!("sim-{i:04}")).expect("a valid id");
        let mut settings =
            RuntimeSettings::new(RuntimeConfig::new(id, format!("Simulated runtime {i}")));
        settings.listen = "127.0.0.1:0".parse().expect("an address");
        settings.tokens = SecretToken::new(TOKEN).into_iter().collect();
        let running = runtime_cmd::start(settings)
            .await
            .map_err(|detail| ClusterError::Start {
                what: format!("simulated runtime {i}"),
                detail: detail.to_string(),
            })?;
        for w in 0..workers {
            let request = CreateWorkerRequest {
                profile: "echo".into(),
                label: Some(format!("w{w}")),
                owner: None,
            };
            running
                .runtime
                .create(request)
                .await
                .map_err(|e| ClusterError::Start {
                    what: format!("a worker on simulated runtime {i}"),
                    detail: e.to_string(),
                })?;
        }
        runtimes.push(running);
    }
    Ok(runtimes)
}

async fn measure_one(
    plan: &ScalePlan,
    bin: &Path,
    dir: &Path,
    runtimes: &[RunningRuntime],
) -> Result<Point, ClusterError> {
    let count = runtimes.len();
    let token = dir.join("scaling.token");
    std::fs::write(&token, TOKEN).map_err(ClusterError::io("writing the token"))?;
    let config = dir.join(format!("scaling-{count}.toml"));
    let mut text = String::new();
    for (i, runtime) in runtimes.iter().enumerate() {
        let _ = write!(
            text,
            "[[remote]]\nruntime_id = \"sim-{i:04}\"\nbase_url = \"http://{}\"\ntoken_file = \"{}\"\n\n",
            runtime.server.local_addr(),
            token.display()
        );
    }
    std::fs::write(&config, text).map_err(ClusterError::io("writing the backend config"))?;
    let mut command = Command::new(bin);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn");
    let log = dir.join(format!("scaling-{count}.log"));
    let (backend, first) = Process::spawn("the backend", command, &log).await?;
    let addr = first
        .strip_prefix("listening on http://")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| ClusterError::Start {
            what: "the backend".into(),
            detail: format!("unexpected first line {first:?}"),
        })?;
    let client = Cluster::client_for(addr, None);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = client.runtimes().await.map(|list| {
            list.runtimes
                .iter()
                .filter(|r| format!("{:?}", r.state) == "Ready")
                .count()
        });
        if ready.as_ref().is_ok_and(|ready| *ready == count) {
            break;
        }
        if Instant::now() > deadline {
            return Err(ClusterError::Timeout(format!(
                "the backend to see {count} runtimes ready ({ready:?})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Idle: only the health probes run.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = cpu_ticks(backend.pid());
    let idle_started = Instant::now();
    tokio::time::sleep(plan.idle_window).await;
    let idle_cpu = cpu_seconds(before, cpu_ticks(backend.pid()));
    let idle_cpu_percent = idle_cpu / idle_started.elapsed().as_secs_f64() * 100.0;

    // Lists: a few to warm up, then batches of sequential calls.
    let mut workers = 0;
    let mut answer_bytes = 0;
    for _ in 0..3 {
        let list = client
            .all_workers(None)
            .await
            .map_err(|e| ClusterError::Start {
                what: "an aggregate list".into(),
                detail: e.to_string(),
            })?;
        if !list.unavailable.is_empty() {
            return Err(ClusterError::Start {
                what: "an aggregate list".into(),
                detail: format!("{} runtimes did not answer", list.unavailable.len()),
            });
        }
        workers = list.workers.len();
        answer_bytes = serde_json::to_vec(&list).map_or(0, |v| v.len());
    }
    let (mut p50s, mut p99s, mut cpus) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.batches {
        let mut latencies = Vec::new();
        let before = cpu_ticks(backend.pid());
        for _ in 0..plan.lists_per_batch {
            let started = Instant::now();
            let list = client
                .all_workers(None)
                .await
                .map_err(|e| ClusterError::Start {
                    what: "an aggregate list".into(),
                    detail: e.to_string(),
                })?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            if list.workers.len() != workers || !list.unavailable.is_empty() {
                return Err(ClusterError::Start {
                    what: "an aggregate list".into(),
                    detail: format!(
                        "{} workers and {} unavailable runtimes, expected {workers} and none",
                        list.workers.len(),
                        list.unavailable.len()
                    ),
                });
            }
        }
        let cpu = cpu_seconds(before, cpu_ticks(backend.pid()));
        p50s.push(percentile(&latencies, 50.0));
        p99s.push(percentile(&latencies, 99.0));
        cpus.push(cpu * 1000.0 / plan.lists_per_batch as f64);
    }
    let rss_mib = rss_kib(backend.pid()) / 1024.0;
    let _ = backend.stop(Duration::from_secs(10)).await;
    Ok(Point {
        runtimes: count,
        workers,
        p50_ms: Summary::of(&p50s),
        p99_ms: Summary::of(&p99s),
        cpu_ms_per_list: Summary::of(&cpus),
        idle_cpu_percent,
        probes_per_s: count as f64 / 5.0,
        rss_mib,
        answer_kib: answer_bytes as f64 / 1024.0,
    })
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Seconds of CPU between two tick readings.
fn cpu_seconds(before: u64, after: u64) -> f64 {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    after.saturating_sub(before) as f64 / hz
}

/// Resident memory of `pid`, KiB.
fn rss_kib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

/// The Markdown table of the points.
pub fn table(points: &[Point]) -> String {
    let mut text = String::from(
        "| runtimes | workers listed | list p50 (ms) | list p99 (ms) | backend CPU per list (ms) | idle backend CPU (% of a core) | health probes/s | backend RSS (MiB) | answer (KiB) |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in points {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.0} |",
            p.runtimes,
            p.workers,
            p.p50_ms.show(1),
            p.p99_ms.show(1),
            p.cpu_ms_per_list.show(2),
            p.idle_cpu_percent,
            p.probes_per_s,
            p.rss_mib,
            p.answer_kib
        );
    }
    text
}

/// Writes the plots into `plots` and returns their file names.
pub fn plots(points: &[Point], plots: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    std::fs::create_dir_all(plots).map_err(ClusterError::io("creating the plots directory"))?;
    let xs: Vec<f64> = points.iter().map(|p| p.runtimes as f64).collect();
    let series = |name: &str, colour: &str, values: Vec<Summary>| Series {
        name: name.into(),
        colour: colour.into(),
        values,
    };
    let charts = [
        (
            "aggregate-list-latency.svg",
            LineChart {
                title: "GET /api/workers latency vs remote runtimes".into(),
                x_label: "remote runtimes (log scale)".into(),
                y_label: "ms".into(),
                xs: xs.clone(),
                series: vec![
                    series("p50", "#1f77b4", points.iter().map(|p| p.p50_ms).collect()),
                    series("p99", "#d62728", points.iter().map(|p| p.p99_ms).collect()),
                ],
            },
        ),
        (
            "aggregate-list-cpu.svg",
            LineChart {
                title: "Backend CPU per GET /api/workers vs remote runtimes".into(),
                x_label: "remote runtimes (log scale)".into(),
                y_label: "CPU ms per list".into(),
                xs: xs.clone(),
                series: vec![series(
                    "backend CPU per list",
                    "#2ca02c",
                    points.iter().map(|p| p.cpu_ms_per_list).collect(),
                )],
            },
        ),
        (
            "idle-probe-cpu.svg",
            LineChart {
                title: "Idle backend CPU (health probes, 5 s interval) vs remote runtimes".into(),
                x_label: "remote runtimes (log scale)".into(),
                y_label: "% of one core".into(),
                xs,
                series: vec![series(
                    "idle CPU",
                    "#9467bd",
                    points
                        .iter()
                        .map(|p| Summary::of(&[p.idle_cpu_percent]))
                        .collect(),
                )],
            },
        ),
    ];
    let mut written = Vec::new();
    for (name, chart) in charts {
        let path = plots.join(name);
        std::fs::write(&path, chart.render())
            .map_err(ClusterError::io(format!("writing {}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

/// Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in `doc`.
pub fn replace_block(doc: &str, name: &str, body: &str) -> Option<String> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let start = doc.find(&begin)? + begin.len();
    let stop = start + doc[start..].find(&end)?;
    Some(format!(
        "{}\n{}\n{}",
        &doc[..start],
        body.trim_end(),
        &doc[stop..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_replaced_between_their_markers() {
        let doc = "a\n<!-- x:begin -->\nold\n<!-- x:end -->\nb\n";
        assert_eq!(
            replace_block(doc, "x", "new\n").unwrap(),
            "a\n<!-- x:begin -->\nnew\n<!-- x:end -->\nb\n"
        );
        assert!(replace_block(doc, "y", "new").is_none());
    }

    #[test]
    fn cpu_ticks_of_this_process_are_read() {
        // Burn a little CPU so the reading is not zero.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(cpu_ticks(std::process::id()) > 0);
        assert!(rss_kib(std::process::id()) > 0.0);
        assert_eq!(cpu_seconds(100, 50), 0.0);
    }

    #[tokio::test]
    async fn simulated_runtimes_answer_the_runtime_api() {
        let runtimes = start_runtimes(2, 3).await.unwrap();
        let addr = runtimes[1].server.local_addr();
        let api = switchyard_e2e::client::Api {
            addr,
            token: Some(TOKEN.into()),
        };
        let list = api.get("/v1/workers").await;
        assert_eq!(list.status, 200);
        assert_eq!(list.json["workers"].as_array().unwrap().len(), 3);
        let unauthorised = switchyard_e2e::client::Api { addr, token: None };
        assert_eq!(unauthorised.get("/v1/runtime").await.status, 401);
        for runtime in runtimes {
            runtime.shutdown().await;
        }
    }
}
