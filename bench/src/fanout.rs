//! Scenario 3, fan-out: one echo worker watched by N viewers, through the backend
//! and, for comparison, directly on the runtime.
//!
//! Each measurement starts a fresh runtime (and backend), so memory figures do not
//! inherit another measurement's heap. It records the process's resident memory with
//! no viewer and with N idle viewers, the runtime's live event-stream connections
//! (`subscribers`), and then sends a burst of inputs and counts every event every
//! viewer receives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::Result;
use crate::api::{Endpoint, Http, Target};
use crate::plan::Plan;
use crate::procs::Service;
use crate::profile::cpu_seconds;
use crate::stack::{RuntimeOptions, Stack};
use crate::stats::Summary;
use crate::ws::{Frame, Viewer};

/// Viewers connecting at once.
const CONNECT_PARALLELISM: usize = 32;

/// Time for memory to settle before it is read.
const SETTLE: Duration = Duration::from_millis(500);

/// Where the viewers connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Through the backend, to a remote runtime.
    Backend,
    /// Directly to the runtime.
    Direct,
}

impl Mode {
    /// The name in tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Backend => "backend→remote",
            Mode::Direct => "direct",
        }
    }
}

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FanoutRun {
    /// Events received by all viewers together.
    pub delivered: u64,
    /// Events that should have been received (viewers × events).
    pub expected: u64,
    /// From the first input to the last viewer's last event, seconds.
    pub seconds: f64,
    /// Event-stream connections on the runtime with every viewer connected.
    pub upstreams: u64,
    /// Resident memory added per idle viewer (bytes) of the process the viewers
    /// connect to.
    pub bytes_per_viewer: f64,
    /// Viewers closed by the server before the end (e.g. 4408 slow consumer).
    pub closed: u64,
    /// CPU time of the process the viewers connect to, per delivered event, µs.
    pub cpu_us_per_delivery: f64,
}

impl FanoutRun {
    /// Deliveries per second, all viewers together.
    pub fn rate(&self) -> f64 {
        self.delivered as f64 / self.seconds
    }
}

/// Every run of one mode × viewer count.
#[derive(Debug, Clone)]
pub struct FanoutCell {
    /// Where the viewers connect.
    pub mode: Mode,
    /// How many viewers.
    pub viewers: usize,
    /// One measurement per round.
    pub runs: Vec<FanoutRun>,
}

impl FanoutCell {
    /// Deliveries per second.
    pub fn rate(&self) -> Summary {
        Summary::of(&self.runs.iter().map(FanoutRun::rate).collect::<Vec<_>>())
    }

    /// Upstream (runtime event-stream) connections.
    pub fn upstreams(&self) -> Summary {
        Summary::of(
            &self
                .runs
                .iter()
                .map(|r| r.upstreams as f64)
                .collect::<Vec<_>>(),
        )
    }

    /// KiB of resident memory per idle viewer.
    pub fn kib_per_viewer(&self) -> Summary {
        Summary::of(
            &self
                .runs
                .iter()
                .map(|r| r.bytes_per_viewer / 1024.0)
                .collect::<Vec<_>>(),
        )
    }

    /// CPU per delivered event in the process the viewers connect to, µs.
    pub fn cpu_per_delivery(&self) -> Summary {
        Summary::of(
            &self
                .runs
                .iter()
                .map(|r| r.cpu_us_per_delivery)
                .collect::<Vec<_>>(),
        )
    }

    /// Every viewer got every event in every round.
    pub fn complete(&self) -> bool {
        self.runs.iter().all(|r| r.delivered == r.expected)
    }

    /// Deliveries, summed over rounds, and what was expected.
    pub fn delivered(&self) -> (u64, u64) {
        self.runs
            .iter()
            .fold((0, 0), |(d, e), r| (d + r.delivered, e + r.expected))
    }

    /// Viewers closed early, over all rounds.
    pub fn closed(&self) -> u64 {
        self.runs.iter().map(|r| r.closed).sum()
    }
}

/// Everything scenario 3 measured.
#[derive(Debug, Clone, Default)]
pub struct FanoutResults {
    /// One cell per mode × viewer count.
    pub cells: Vec<FanoutCell>,
    /// Inputs per burst (each gives an `input` and an `output` event).
    pub inputs: usize,
}

impl FanoutResults {
    /// The cell of `mode` and `viewers`.
    pub fn get(&self, mode: Mode, viewers: usize) -> Option<&FanoutCell> {
        self.cells
            .iter()
            .find(|c| c.mode == mode && c.viewers == viewers)
    }
}

/// Runs scenario 3.
pub async fn run(
    plan: &Plan,
    http: &Http,
    stack: &Stack,
    anomalies: &mut Vec<String>,
) -> Result<FanoutResults> {
    let mut results = FanoutResults {
        cells: Vec::new(),
        inputs: plan.fanout_inputs,
    };
    for round in 0..plan.runs {
        for &viewers in &plan.fanout_viewers {
            for mode in [Mode::Backend, Mode::Direct] {
                let run = measure(plan, http, stack, mode, viewers).await?;
                eprintln!(
                    "bench: fanout round {} {:<15} {:>5} viewers {:>10.0} deliveries/s  \
                     {} upstream(s)  {:.1} KiB/viewer  {}/{} delivered",
                    round + 1,
                    mode.label(),
                    viewers,
                    run.rate(),
                    run.upstreams,
                    run.bytes_per_viewer / 1024.0,
                    run.delivered,
                    run.expected
                );
                if run.delivered != run.expected || run.closed > 0 {
                    anomalies.push(format!(
                        "fan-out {} with {viewers} viewers: {} of {} events delivered, \
                         {} viewers closed early",
                        mode.label(),
                        run.delivered,
                        run.expected,
                        run.closed
                    ));
                }
                match results
                    .cells
                    .iter_mut()
                    .find(|c| c.mode == mode && c.viewers == viewers)
                {
                    Some(cell) => cell.runs.push(run),
                    None => results.cells.push(FanoutCell {
                        mode,
                        viewers,
                        runs: vec![run],
                    }),
                }
            }
        }
    }
    Ok(results)
}

async fn measure(
    plan: &Plan,
    http: &Http,
    stack: &Stack,
    mode: Mode,
    viewers: usize,
) -> Result<FanoutRun> {
    let options = RuntimeOptions::of(plan);
    let runtime = stack.runtime("fanout", options)?;
    let direct = Endpoint::runtime(Target::Direct, runtime.addr, Some(stack.token()));
    let backend: Option<Service> = match mode {
        Mode::Backend => Some(stack.backend(Some(("fanout", runtime.addr)), None)?),
        Mode::Direct => None,
    };
    let (ep, watched) = match &backend {
        Some(backend) => (
            Endpoint::backend(Target::Backend, backend.addr, "fanout"),
            backend,
        ),
        None => (direct.clone(), &runtime),
    };
    let worker = http.create_worker(&ep, "echo").await?;

    // Warm up the path (and, through the backend, the connection pool) with one
    // viewer that comes and goes, then take the baseline.
    Viewer::connect(&ep, &worker).await?.close().await;
    tokio::time::sleep(SETTLE).await;
    let baseline = watched.rss_bytes()?;

    let connected = connect_all(&ep, &worker, viewers).await?;
    tokio::time::sleep(SETTLE).await;
    let with_viewers = watched.rss_bytes()?;
    let upstreams = http.runtime_subscribers(&direct).await?;

    // Every viewer reads until the last input's output, or until it is closed.
    let last = format!("fanout-{}\n", plan.fanout_inputs - 1);
    let last = Arc::new(last);
    let mut tasks = JoinSet::new();
    for mut viewer in connected {
        let last = last.clone();
        tasks.spawn(async move {
            let mut events = 0u64;
            let closed = loop {
                match viewer.next().await? {
                    Frame::Input => events += 1,
                    Frame::Output(text) => {
                        events += 1;
                        if text == *last {
                            break false;
                        }
                    }
                    Frame::Closed(_) => break true,
                    Frame::Ended | Frame::Other => {}
                }
            };
            Result::<_, crate::Error>::Ok((events, closed, Instant::now(), viewer))
        });
    }
    let cpu_before = cpu_seconds(watched.pid())?;
    let start = Instant::now();
    for i in 0..plan.fanout_inputs {
        http.input(&ep, &worker, &format!("fanout-{i}\n")).await?;
    }
    let mut run = FanoutRun {
        expected: (viewers * plan.fanout_inputs * 2) as u64,
        upstreams,
        bytes_per_viewer: with_viewers.saturating_sub(baseline) as f64 / viewers as f64,
        ..FanoutRun::default()
    };
    let mut end = start;
    let mut finished = Vec::with_capacity(viewers);
    while let Some(joined) = tasks.join_next().await {
        let (events, closed, at, viewer) = joined??;
        run.delivered += events;
        run.closed += u64::from(closed);
        end = end.max(at);
        finished.push(viewer);
    }
    run.seconds = (end - start).as_secs_f64();
    run.cpu_us_per_delivery =
        (cpu_seconds(watched.pid())? - cpu_before) * 1e6 / run.delivered.max(1) as f64;
    drop(finished);
    drop(backend);
    drop(runtime);
    Ok(run)
}

/// Connects `count` viewers, [`CONNECT_PARALLELISM`] at a time; each has read its
/// snapshot when this returns.
async fn connect_all(ep: &Endpoint, worker: &str, count: usize) -> Result<Vec<Viewer>> {
    let mut viewers = Vec::with_capacity(count);
    let mut pending = JoinSet::new();
    let mut started = 0;
    while viewers.len() < count {
        while started < count && pending.len() < CONNECT_PARALLELISM {
            let (ep, worker) = (ep.clone(), worker.to_owned());
            pending.spawn(async move { Viewer::connect(&ep, &worker).await });
            started += 1;
        }
        let joined = pending
            .join_next()
            .await
            .ok_or("viewer connections ended early")?;
        viewers.push(joined??);
    }
    Ok(viewers)
}
