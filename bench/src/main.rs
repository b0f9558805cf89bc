//! `switchyard-bench`, run by `cargo xtask bench [--quick]`.
//!
//! Starts everything itself on loopback — a remote `switchyard runtime`, a
//! `switchyard serve` backend with that remote and an embedded runtime, and nginx
//! (installed from Debian's packages if missing) as a reverse proxy that adds the
//! runtime's bearer token — and measures, side by side and repeated:
//!
//! 1. REST (wrk): worker detail, list and input at 1, 16 and 64 keep-alive
//!    connections, direct / nginx / backend→remote / backend→embedded, and
//!    backend→embedded with client authentication on (a bearer token per request);
//! 2. the event stream of one fast worker to one viewer: events per second and
//!    input-to-output latency;
//! 3. fan-out of one worker to 1, 100 and 1,000 viewers through the backend and
//!    directly: deliveries per second, upstream connections, memory per viewer;
//! 4. list latency with 10,000 workers on one runtime, through the backend;
//! 5. the TLS hop: the REST routes of 1 through nginx and through the backend, each
//!    to a remote over plain HTTP and to one over TLS (nginx with `proxy_ssl_*` and
//!    upstream keep-alive), side by side: what TLS costs each proxy;
//! 6. keystroke latency on a terminal worker: interactive WebSocket direct vs through
//!    the backend vs REST input with WebSocket output.
//!
//! It writes `docs/BENCHMARKS.md` and SVG plots in `docs/bench/`. `--quick` runs every
//! scenario once, briefly, and writes to a temporary directory: it keeps the code
//! from rotting in CI without judging speed, and fails if anything fails.

mod api;
mod auth;
mod certs;
mod events;
mod fanout;
mod keys;
mod machine;
mod paired;
mod paired_report;
mod plan;
mod procs;
mod profile;
mod report;
mod rest;
mod scale;
mod stack;
mod stats;
mod svg;
mod tls_report;
mod wrk;
mod ws;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use api::{Endpoint, Http, Target};
use plan::Plan;
use rest::Targets;
use stack::{RuntimeOptions, Stack};

/// Any error, with its context in the message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Benchmarks Switchyard against direct access and nginx on loopback.
#[derive(Debug, Parser)]
#[command(name = "switchyard-bench")]
struct Args {
    /// Every scenario once, briefly, with small counts; the report goes to a temporary
    /// directory unless --out is given.
    #[arg(long)]
    quick: bool,
    /// Where to write the report (plots go to `bench/` beside it). Default:
    /// docs/BENCHMARKS.md, or a temporary directory with --quick.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The `switchyard` binary. Default: $SWITCHYARD_BIN, else the one beside this
    /// program (target/release/switchyard).
    #[arg(long)]
    switchyard: Option<PathBuf>,
    /// How the `switchyard` binary was built, for the report (`cargo xtask bench`
    /// says).
    #[arg(long, default_value = "release, link-time optimisation")]
    build: String,
    /// Skip the perf profiles of the full run.
    #[arg(long)]
    no_profile: bool,
    /// Run only these scenarios (comma-separated); the report then goes to a
    /// temporary directory unless --out is given.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Scenario>,
}

/// The six scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// 1: REST through every target.
    Rest,
    /// 2: one worker's event stream to one viewer.
    Events,
    /// 3: one worker to many viewers.
    Fanout,
    /// 4: listing many workers.
    Scale,
    /// 5: REST through nginx and the backend to remotes over plain HTTP and TLS.
    Tls,
    /// 6: keystroke latency on a terminal worker.
    Keys,
}

impl Scenario {
    /// The name in the report.
    pub fn label(self) -> &'static str {
        match self {
            Scenario::Rest => "REST",
            Scenario::Events => "events",
            Scenario::Fanout => "fan-out",
            Scenario::Scale => "scale",
            Scenario::Tls => "TLS hop",
            Scenario::Keys => "keys",
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(anomalies) => {
            eprintln!("bench: {anomalies} anomalies (listed in the report); failing");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("bench: failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every scenario and writes the report; returns the number of anomalies
/// (failed requests, lost events, viewers closed early).
async fn run(args: Args) -> Result<usize> {
    let started = Instant::now();
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    plan.profile &= !args.no_profile;
    let root = workspace_root();
    let bin = switchyard_bin(args.switchyard)?;
    let partial = plan.quick || !args.only.is_empty();
    let (report_path, plots_dir) = outputs(args.out.clone(), partial, &root)?;

    stack::ensure_tools()?;
    let nofile = stack::raise_nofile()?;
    let machine = machine::Machine::gather(&root, &args.build);
    eprintln!(
        "bench: {} mode, {} runs per figure, open-files limit {nofile}, load {}",
        if plan.quick { "quick" } else { "full" },
        plan.runs,
        machine.load_before
    );
    let stack = Stack::new(bin)?;
    let http = Http::new();
    let monitor = profile::ForeignMonitor::start();
    let mut anomalies = Vec::new();

    let ran = |s: Scenario| args.only.is_empty() || args.only.contains(&s);
    let mut phases = Vec::new();
    let mut rest = rest::RestResults::default();
    let mut auth_checks = Vec::new();
    let mut events = events::EventResults::default();
    let mut profiles = Vec::new();
    let mut keys = keys::KeyResults::default();
    if ran(Scenario::Rest) || ran(Scenario::Events) || ran(Scenario::Keys) {
        // Scenarios 1, 2 and 6 share one set-up: a remote runtime, a backend with
        // that remote and an embedded runtime, and nginx in front of the remote.
        let options = RuntimeOptions::of(&plan);
        let runtime = stack.runtime("remote", options)?;
        let backend = stack.backend(Some(("remote", runtime.addr)), Some(options))?;
        let (auth_backend, client_token) = stack.backend_with_auth(options)?;
        let nginx = stack.nginx(runtime.addr)?;
        let targets = Targets {
            endpoints: vec![
                Endpoint::runtime(Target::Direct, runtime.addr, Some(stack.token())),
                Endpoint::runtime(Target::Nginx, nginx.addr, None),
                Endpoint::backend(Target::Backend, backend.addr, "remote"),
                Endpoint::backend(Target::Embedded, backend.addr, "local"),
                Endpoint::backend(Target::EmbeddedAuth, auth_backend.addr, "local")
                    .with_token(&client_token),
            ],
            runtime_pid: runtime.pid(),
            tls_runtime_pid: None,
            backend_pid: backend.pid(),
            auth_backend_pid: Some(auth_backend.pid()),
            nginx_pid: nginx.pid(),
        };
        if ran(Scenario::Rest) {
            let phase = Phase::start(&monitor);
            rest = rest::run(&plan, &http, &targets, stack.dir(), &mut anomalies).await?;
            auth_checks = auth::run(&plan)?;
            phases.push(phase.end(Scenario::Rest));
        }
        if ran(Scenario::Events) {
            let phase = Phase::start(&monitor);
            // Auth changes nothing on an open event stream: scenario 2 leaves it out.
            let targets = targets.without(Target::EmbeddedAuth);
            events = events::run(&plan, &http, &targets, &mut anomalies).await?;
            phases.push(phase.end(Scenario::Events));
        }
        if ran(Scenario::Keys) {
            let phase = Phase::start(&monitor);
            keys = keys::run(&plan, &http, &targets, &mut anomalies).await?;
            phases.push(phase.end(Scenario::Keys));
        }
        if plan.profile && profile::perf_available() {
            profiles = run_profiles(&http, &targets, stack.dir(), &mut anomalies).await?;
        }
        let mut services = [runtime, backend, auth_backend, nginx];
        for service in &mut services {
            service.check_alive()?;
        }
    }
    let mut fanout = fanout::FanoutResults::default();
    if ran(Scenario::Fanout) {
        let phase = Phase::start(&monitor);
        fanout = fanout::run(&plan, &http, &stack, &mut anomalies).await?;
        phases.push(phase.end(Scenario::Fanout));
    }
    let mut scale = scale::ScaleResults::default();
    if ran(Scenario::Scale) {
        let phase = Phase::start(&monitor);
        scale = scale::run(&plan, &http, &stack, &mut anomalies).await?;
        phases.push(phase.end(Scenario::Scale));
    }

    let mut tls = rest::RestResults::default();
    if ran(Scenario::Tls) {
        let phase = Phase::start(&monitor);
        tls = run_tls_hop(&plan, &http, &stack, &mut anomalies).await?;
        phases.push(phase.end(Scenario::Tls));
    }

    let report = report::Report {
        plan: &plan,
        machine: &machine,
        rest: &rest,
        auth_checks: &auth_checks,
        events: &events,
        fanout: &fanout,
        scale: &scale,
        tls: &tls,
        keys: &keys,
        profiles: &profiles,
        anomalies: &anomalies,
        elapsed: started.elapsed(),
        phases: &phases,
        load_after: machine::load_average(),
        analysis: fs::read_to_string(root.join("docs").join("bench").join("ANALYSIS.md")).ok(),
    };
    fs::create_dir_all(&plots_dir)?;
    for (name, svg) in report.plots() {
        fs::write(plots_dir.join(name), svg)?;
    }
    fs::write(&report_path, report.markdown())?;
    eprintln!(
        "bench: wrote {} and plots in {} ({} s)",
        report_path.display(),
        plots_dir.display(),
        started.elapsed().as_secs()
    );
    for check in report.targets() {
        eprintln!(
            "bench: target {}: {} — {}",
            check.name,
            if check.met { "met" } else { "MISSED" },
            check.standing
        );
    }
    for anomaly in &anomalies {
        eprintln!("bench: anomaly: {anomaly}");
    }
    Ok(anomalies.len())
}

/// Scenario 5: a runtime serving plain HTTP and one serving HTTPS (same
/// configuration otherwise), a backend with both as remotes, and one nginx with a
/// server for each; the REST routes through all four, side by side.
async fn run_tls_hop(
    plan: &Plan,
    http: &Http,
    stack: &Stack,
    anomalies: &mut Vec<String>,
) -> Result<rest::RestResults> {
    let options = RuntimeOptions::of(plan);
    let plain = stack.runtime("remote", options)?;
    let tls = stack.tls_runtime("remote-tls", options)?;
    let backend = stack.backend_with(
        &[
            stack::RemoteRef {
                runtime_id: "remote",
                addr: plain.addr,
                tls: false,
            },
            stack::RemoteRef {
                runtime_id: "remote-tls",
                addr: tls.addr,
                tls: true,
            },
        ],
        None,
    )?;
    let (nginx, nginx_tls) = stack.nginx_with_tls(plain.addr, tls.addr)?;
    let targets = Targets {
        endpoints: vec![
            Endpoint::runtime(Target::Nginx, nginx.addr, None),
            Endpoint::runtime(Target::NginxTls, nginx_tls, None),
            Endpoint::backend(Target::Backend, backend.addr, "remote"),
            Endpoint::backend(Target::BackendTls, backend.addr, "remote-tls"),
        ],
        runtime_pid: plain.pid(),
        tls_runtime_pid: Some(tls.pid()),
        backend_pid: backend.pid(),
        auth_backend_pid: None,
        nginx_pid: nginx.pid(),
    };
    let results = rest::run(plan, http, &targets, stack.dir(), anomalies).await?;
    let mut services = [plain, tls, backend, nginx];
    for service in &mut services {
        service.check_alive()?;
    }
    Ok(results)
}

/// One scenario's wall time and the CPU other processes used meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct PhaseTime {
    /// Which scenario.
    pub scenario: Scenario,
    /// Its wall time.
    pub wall: Duration,
    /// CPUs used on average by processes outside the benchmark.
    pub foreign_cpus: f64,
}

struct Phase<'a> {
    at: Instant,
    monitor: &'a profile::ForeignMonitor,
    foreign: f64,
}

impl<'a> Phase<'a> {
    fn start(monitor: &'a profile::ForeignMonitor) -> Self {
        Self {
            at: Instant::now(),
            monitor,
            foreign: monitor.seconds(),
        }
    }

    fn end(self, scenario: Scenario) -> PhaseTime {
        let wall = self.at.elapsed();
        PhaseTime {
            scenario,
            wall,
            foreign_cpus: (self.monitor.seconds() - self.foreign) / wall.as_secs_f64().max(1e-3),
        }
    }
}

/// Bursts run while the backend's event path is profiled.
const PROFILED_BURSTS: usize = 10;

/// perf profiles of the backend (and, to compare, the runtime) under the loads whose
/// targets are judged.
async fn run_profiles(
    http: &Http,
    targets: &Targets,
    scratch: &Path,
    anomalies: &mut Vec<String>,
) -> Result<Vec<profile::Profile>> {
    let mut out = Vec::new();
    let seconds = Duration::from_secs(4);
    let detail_worker = http
        .create_worker(targets.get(Target::Direct), "echo")
        .await?;
    for (target, pid, what) in [
        (
            Target::Backend,
            targets.backend_pid,
            "backend, REST worker detail through the backend at 64 connections",
        ),
        (
            Target::Direct,
            targets.runtime_pid,
            "runtime, REST worker detail direct at 64 connections (for comparison)",
        ),
    ] {
        let ep = targets.get(target);
        let load = wrk::Load {
            url: ep.url(&format!("/workers/{detail_worker}")),
            connections: 64,
            duration: seconds,
            headers: ep
                .authorization()
                .map(|a| vec![format!("Authorization: {a}")])
                .unwrap_or_default(),
            script: None,
        };
        let (profile, _) = profile::record(pid, what, scratch, wrk::run_async(load)).await?;
        out.push(profile);
    }
    let ep = targets.get(Target::Backend).clone();
    let bursts = async {
        let mut cut_off = None;
        for _ in 0..PROFILED_BURSTS {
            cut_off = cut_off.or(events::burst(http, &ep, "burst").await?.cut_off);
        }
        Result::Ok(cut_off)
    };
    let (profile, cut_off) = profile::record(
        targets.backend_pid,
        "backend, burst workers' events through the backend to one viewer",
        scratch,
        bursts,
    )
    .await?;
    if let Some(code) = cut_off {
        anomalies.push(format!(
            "profiled bursts through the backend: a viewer was closed with {code}"
        ));
    }
    out.push(profile);
    Ok(out)
}

/// The workspace root (the parent of this crate's directory).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The `switchyard` binary to benchmark.
fn switchyard_bin(flag: Option<PathBuf>) -> Result<PathBuf> {
    let bin = match flag.or_else(|| std::env::var_os("SWITCHYARD_BIN").map(PathBuf::from)) {
        Some(bin) => bin,
        None => std::env::current_exe()?
            .parent()
            .ok_or("no directory around this program")?
            .join("switchyard"),
    };
    if !bin.is_file() {
        return Err(format!(
            "{} is missing: build it first (cargo build --release -p switchyard-server)",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

/// Where the report and the plots go: a temporary directory for quick or partial
/// runs, so they never overwrite the committed report.
fn outputs(out: Option<PathBuf>, partial: bool, root: &Path) -> Result<(PathBuf, PathBuf)> {
    let report = match out {
        Some(path) => path,
        None if partial => std::env::temp_dir()
            .join("switchyard-bench-quick")
            .join("BENCHMARKS.md"),
        None => root.join("docs").join("BENCHMARKS.md"),
    };
    let dir = report
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    fs::create_dir_all(&dir)?;
    Ok((report, dir.join("bench")))
}
