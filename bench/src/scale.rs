//! Scenario 4, scale: list latency with many workers on one remote runtime, through
//! the backend (first page of that runtime, and every page of every runtime), with
//! the runtime's own first page for comparison.

use std::time::Instant;

use http::Method;
use tokio::task::JoinSet;

use crate::Result;
use crate::api::{Endpoint, Http, Target};
use crate::plan::Plan;
use crate::stack::{RuntimeOptions, Stack};
use crate::stats::{Summary, percentile};
use crate::wrk::{self, Load, WrkRun};

/// Workers created at once.
const CREATE_PARALLELISM: usize = 32;

/// Page size used when the benchmark itself follows the runtime's pages.
const PAGE: u32 = 1000;

/// A listing measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `GET /v1/workers` on the runtime: first page (100 workers).
    DirectFirstPage,
    /// `GET /api/runtimes/{rt}/workers`: first page (100 workers).
    BackendFirstPage,
    /// `GET /api/workers`: every worker of every runtime, the backend following pages.
    BackendAll,
    /// `GET /v1/workers?limit=1000&after=…` on the runtime until the last page,
    /// sequentially, by the benchmark's own client.
    DirectAllPages,
    /// `GET /v1/runtime` on the runtime: its counts of every worker by status and
    /// owner.
    DirectRuntimeInfo,
    /// `GET /v1/workers?status=stopped` on the runtime, where no worker is stopped:
    /// a page filtered by a status that none of the workers has.
    DirectStatusPage,
}

impl Listing {
    /// Every listing, in table order.
    pub const ALL: [Listing; 6] = [
        Listing::DirectFirstPage,
        Listing::BackendFirstPage,
        Listing::DirectAllPages,
        Listing::BackendAll,
        Listing::DirectRuntimeInfo,
        Listing::DirectStatusPage,
    ];

    /// The name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Listing::DirectFirstPage => "direct `GET /v1/workers` (first page)",
            Listing::BackendFirstPage => "backend `GET /api/runtimes/{rt}/workers` (first page)",
            Listing::BackendAll => "backend `GET /api/workers` (every page)",
            Listing::DirectAllPages => "direct, client follows `limit=1000` pages",
            Listing::DirectRuntimeInfo => "direct `GET /v1/runtime` (counts of every worker)",
            Listing::DirectStatusPage => "direct `GET /v1/workers?status=stopped` (none is)",
        }
    }
}

/// Every run of one listing × connections.
#[derive(Debug, Clone)]
pub struct ScaleCell {
    /// The listing.
    pub listing: Listing,
    /// Concurrent connections.
    pub connections: u32,
    /// Requests per second per round.
    pub rps: Vec<f64>,
    /// p50 per round, ms.
    pub p50: Vec<f64>,
    /// p99 per round, ms.
    pub p99: Vec<f64>,
    /// Failed requests over all rounds.
    pub errors: u64,
}

/// Everything scenario 4 measured.
#[derive(Debug, Clone, Default)]
pub struct ScaleResults {
    /// Workers on the runtime.
    pub workers: usize,
    /// Seconds to create them (through the runtime's API, 32 at a time).
    pub create_seconds: f64,
    /// Size of one `GET /api/workers` answer, bytes.
    pub all_bytes: usize,
    /// One cell per listing × connections.
    pub cells: Vec<ScaleCell>,
}

impl ScaleResults {
    /// The cell of `listing` at `connections`.
    pub fn get(&self, listing: Listing, connections: u32) -> Option<&ScaleCell> {
        self.cells
            .iter()
            .find(|c| c.listing == listing && c.connections == connections)
    }
}

impl ScaleCell {
    /// Requests per second.
    pub fn rps(&self) -> Summary {
        Summary::of(&self.rps)
    }
    /// p50, ms.
    pub fn p50(&self) -> Summary {
        Summary::of(&self.p50)
    }
    /// p99, ms.
    pub fn p99(&self) -> Summary {
        Summary::of(&self.p99)
    }
}

/// Runs scenario 4.
pub async fn run(
    plan: &Plan,
    http: &Http,
    stack: &Stack,
    anomalies: &mut Vec<String>,
) -> Result<ScaleResults> {
    let options = RuntimeOptions::of(plan);
    let runtime = stack.runtime("scale", options)?;
    let backend = stack.backend(Some(("scale", runtime.addr)), None)?;
    let direct = Endpoint::runtime(Target::Direct, runtime.addr, Some(stack.token()));
    let through = Endpoint::backend(Target::Backend, backend.addr, "scale");

    let start = Instant::now();
    let mut pending = JoinSet::new();
    let mut created = 0;
    let mut started = 0;
    while created < plan.scale_workers {
        while started < plan.scale_workers && pending.len() < CREATE_PARALLELISM {
            let (http, direct) = (http.clone(), direct.clone());
            pending.spawn(async move { http.create_worker(&direct, "echo").await });
            started += 1;
        }
        pending
            .join_next()
            .await
            .ok_or("worker creation ended early")???;
        created += 1;
    }
    let create_seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "bench: scale created {} workers in {create_seconds:.1} s",
        plan.scale_workers
    );

    // The backend sees them all, and no runtime is unavailable.
    let all_url = format!("http://{}/api/workers", backend.addr);
    let (status, body) = http.send(Method::GET, &all_url, None, None).await?;
    let all: serde_json::Value = serde_json::from_slice(&body)?;
    let seen = all["workers"].as_array().map_or(0, Vec::len);
    if !status.is_success() || seen != plan.scale_workers {
        return Err(format!(
            "GET /api/workers: {status}, {seen} workers of {} (unavailable: {})",
            plan.scale_workers, all["unavailable"]
        )
        .into());
    }

    let mut results = ScaleResults {
        workers: plan.scale_workers,
        create_seconds,
        all_bytes: body.len(),
        cells: Vec::new(),
    };
    let auth = direct
        .authorization()
        .map(|a| vec![format!("Authorization: {a}")])
        .unwrap_or_default();
    for round in 0..plan.runs {
        for &connections in &plan.scale_connections {
            for listing in Listing::ALL {
                let run = match listing {
                    Listing::DirectFirstPage => {
                        wrk_run(plan, direct.url("/workers"), connections, auth.clone()).await?
                    }
                    Listing::BackendFirstPage => {
                        wrk_run(plan, through.url("/workers"), connections, Vec::new()).await?
                    }
                    Listing::BackendAll => {
                        wrk_run(plan, all_url.clone(), connections, Vec::new()).await?
                    }
                    Listing::DirectAllPages if connections == 1 => {
                        follow_pages(http, &direct, plan).await?
                    }
                    Listing::DirectAllPages => continue,
                    Listing::DirectRuntimeInfo => {
                        wrk_run(plan, direct.url("/runtime"), connections, auth.clone()).await?
                    }
                    Listing::DirectStatusPage => {
                        let url = direct.url("/workers?status=stopped");
                        wrk_run(plan, url, connections, auth.clone()).await?
                    }
                };
                eprintln!(
                    "bench: scale round {} c={connections:<3} {:<55} {:>8.1} req/s  p50 {:.2} ms  p99 {:.2} ms",
                    round + 1,
                    listing.label(),
                    run.rps,
                    run.p50_ms,
                    run.p99_ms
                );
                if run.errors() > 0 {
                    anomalies.push(format!(
                        "scale {} at {connections} connections: {} failed requests",
                        listing.label(),
                        run.errors()
                    ));
                }
                let cell = match results
                    .cells
                    .iter_mut()
                    .position(|c| c.listing == listing && c.connections == connections)
                {
                    Some(i) => &mut results.cells[i],
                    None => {
                        results.cells.push(ScaleCell {
                            listing,
                            connections,
                            rps: Vec::new(),
                            p50: Vec::new(),
                            p99: Vec::new(),
                            errors: 0,
                        });
                        results.cells.last_mut().expect("just pushed")
                    }
                };
                cell.rps.push(run.rps);
                cell.p50.push(run.p50_ms);
                cell.p99.push(run.p99_ms);
                cell.errors += run.errors();
            }
        }
    }
    drop(backend);
    drop(runtime);
    Ok(results)
}

async fn wrk_run(
    plan: &Plan,
    url: String,
    connections: u32,
    headers: Vec<String>,
) -> Result<WrkRun> {
    wrk::run_async(Load {
        url,
        connections,
        duration: plan.scale_duration,
        headers,
        script: None,
    })
    .await
}

/// Lists every worker on the runtime by following `limit=1000` pages, timed as one
/// request, [`Plan::scale_sequential`] times.
async fn follow_pages(http: &Http, direct: &Endpoint, plan: &Plan) -> Result<WrkRun> {
    let mut samples = Vec::with_capacity(plan.scale_sequential);
    let all = Instant::now();
    for _ in 0..plan.scale_sequential {
        let start = Instant::now();
        let mut after: Option<String> = None;
        let mut seen = 0;
        loop {
            let path = match &after {
                Some(a) => format!("/workers?limit={PAGE}&after={a}"),
                None => format!("/workers?limit={PAGE}"),
            };
            let page = http.call(direct, Method::GET, &path, None).await?;
            seen += page["workers"].as_array().map_or(0, Vec::len);
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
        if seen != plan.scale_workers {
            return Err(format!("paging saw {seen} of {} workers", plan.scale_workers).into());
        }
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(WrkRun {
        rps: samples.len() as f64 / all.elapsed().as_secs_f64(),
        p50_ms: percentile(&samples, 50.0),
        p99_ms: percentile(&samples, 99.0),
        requests: samples.len() as u64,
        non_2xx: 0,
        socket_errors: 0,
    })
}
