//! Scenario 1, REST: worker detail, list and input at several connection counts, for
//! every [`Target`] (auth off and on side by side), with wrk. Targets are measured
//! side by side (each round runs every route × connections × target once) and rounds
//! are repeated, the targets of a cell in table order in odd rounds and in reverse in
//! even ones ([`in_round_order`]), so that no target always runs right after the same
//! neighbour or in the same place after a heavy cell. Scenario 5 runs the same
//! measurement over [`Target::TLS_HOP`].

use std::fs;
use std::path::Path;

use http::Method;

use crate::Result;
use crate::api::{Endpoint, Http, Target, Upstream};
use crate::paired::{self, PairedRoute};
use crate::plan::Plan;
use crate::profile::{ForeignLoad, cpu_seconds, cpu_seconds_with_children};
use crate::stats::Summary;
use crate::wrk::{self, Load, WrkRun};

/// Echo workers kept on each runtime, so list answers hold the same items everywhere.
const LISTED_WORKERS: usize = 8;

/// A REST call measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET .../workers/{w}`.
    Detail,
    /// `GET .../workers` (eight workers).
    List,
    /// `POST .../workers/{w}/input` to an echo worker.
    Input,
}

impl Route {
    /// Every route, in table order.
    pub const ALL: [Route; 3] = [Route::Detail, Route::List, Route::Input];

    /// The name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Route::Detail => "worker detail",
            Route::List => "worker list",
            Route::Input => "input",
        }
    }

    /// The call as written in tables.
    pub fn call(self) -> &'static str {
        match self {
            Route::Detail => "GET …/workers/{w}",
            Route::List => "GET …/workers",
            Route::Input => "POST …/workers/{w}/input",
        }
    }
}

/// Every run of one route × connections × target.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The route.
    pub route: Route,
    /// Concurrent connections.
    pub connections: u32,
    /// The target.
    pub target: Target,
    /// One wrk report per round.
    pub runs: Vec<WrkRun>,
    /// CPU time per request in the runtime process, µs, per round.
    pub runtime_cpu_us: Vec<f64>,
    /// CPU time per request in the proxy (nginx's processes or the backend), µs, per
    /// round; zero for direct.
    pub proxy_cpu_us: Vec<f64>,
    /// CPUs used by processes outside the benchmark during each round's run.
    pub foreign_cpus: Vec<f64>,
}

impl Cell {
    /// Requests per second.
    pub fn rps(&self) -> Summary {
        Summary::of(&self.runs.iter().map(|r| r.rps).collect::<Vec<_>>())
    }

    /// Median latency, ms.
    pub fn p50(&self) -> Summary {
        Summary::of(&self.runs.iter().map(|r| r.p50_ms).collect::<Vec<_>>())
    }

    /// 99th-percentile latency, ms.
    pub fn p99(&self) -> Summary {
        Summary::of(&self.runs.iter().map(|r| r.p99_ms).collect::<Vec<_>>())
    }

    /// Failed requests over all rounds.
    pub fn errors(&self) -> u64 {
        self.runs.iter().map(WrkRun::errors).sum()
    }

    /// Runtime CPU per request, µs.
    pub fn runtime_cpu(&self) -> Summary {
        Summary::of(&self.runtime_cpu_us)
    }

    /// Proxy CPU per request, µs.
    pub fn proxy_cpu(&self) -> Summary {
        Summary::of(&self.proxy_cpu_us)
    }

    /// Requests over all rounds.
    pub fn requests(&self) -> u64 {
        self.runs.iter().map(|r| r.requests).sum()
    }
}

/// Everything scenario 1 measured.
#[derive(Debug, Clone, Default)]
pub struct RestResults {
    /// One cell per route × connections × target.
    pub cells: Vec<Cell>,
    /// The one-connection figure measured request by request, one per route.
    pub paired: Vec<PairedRoute>,
}

impl RestResults {
    /// The paired one-connection figure of `route`, if measured.
    pub fn paired(&self, route: Route) -> Option<&PairedRoute> {
        self.paired.iter().find(|p| p.route == route)
    }

    /// The cell of `route`, `connections`, `target`.
    pub fn get(&self, route: Route, connections: u32, target: Target) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.route == route && c.connections == connections && c.target == target)
    }
}

/// The endpoints of the targets measured side by side and the processes behind them.
#[derive(Debug, Clone)]
pub struct Targets {
    /// One endpoint per target, in table order ([`Target::ALL`] or
    /// [`Target::TLS_HOP`]).
    pub endpoints: Vec<Endpoint>,
    /// The remote runtime's process id.
    pub runtime_pid: u32,
    /// The HTTPS remote runtime's process id (scenario 5).
    pub tls_runtime_pid: Option<u32>,
    /// The backend's process id.
    pub backend_pid: u32,
    /// The process id of the backend with auth on (scenario 1).
    pub auth_backend_pid: Option<u32>,
    /// nginx's master process id (its workers are its children).
    pub nginx_pid: u32,
}

impl Targets {
    /// The same targets without `target` (scenarios that do not measure it).
    pub fn without(&self, target: Target) -> Self {
        let mut targets = self.clone();
        targets.endpoints.retain(|e| e.target != target);
        targets
    }

    /// The endpoint of `target`.
    pub fn get(&self, target: Target) -> &Endpoint {
        self.endpoints
            .iter()
            .find(|e| e.target == target)
            .expect("every target has an endpoint")
    }

    /// CPU seconds used so far by `target`'s runtime and by its proxy.
    fn cpu(&self, target: Target) -> Result<(f64, f64)> {
        let runtime_pid = match target.upstream() {
            Upstream::RemoteTls => self
                .tls_runtime_pid
                .ok_or("a TLS target without a TLS runtime")?,
            Upstream::Remote | Upstream::Embedded | Upstream::EmbeddedAuth => self.runtime_pid,
        };
        let runtime = cpu_seconds(runtime_pid)?;
        let proxy = match target {
            Target::Direct => 0.0,
            Target::Nginx | Target::NginxTls => cpu_seconds_with_children(self.nginx_pid)?,
            Target::Backend | Target::Embedded | Target::BackendTls => {
                cpu_seconds(self.backend_pid)?
            }
            Target::EmbeddedAuth => cpu_seconds(
                self.auth_backend_pid
                    .ok_or("an auth target without the auth backend")?,
            )?,
        };
        Ok((runtime, proxy))
    }
}

/// Runs scenario 1.
pub async fn run(
    plan: &Plan,
    http: &Http,
    targets: &Targets,
    scratch: &Path,
    anomalies: &mut Vec<String>,
) -> Result<RestResults> {
    // The same eight workers on every runtime, created through the first target
    // that reaches it and seen by all the others (directly, through nginx, through
    // the backend).
    let mut fixtures: Vec<(Upstream, Vec<String>)> = Vec::new();
    for ep in &targets.endpoints {
        if fixtures.iter().any(|(u, _)| *u == ep.target.upstream()) {
            continue;
        }
        let mut workers = Vec::new();
        for _ in 0..LISTED_WORKERS {
            workers.push(http.create_worker(ep, "echo").await?);
        }
        fixtures.push((ep.target.upstream(), workers));
    }
    let detail_worker = |target: Target| {
        fixtures
            .iter()
            .find(|(u, _)| *u == target.upstream())
            .map(|(_, workers)| workers[0].clone())
            .expect("every target's runtime has fixtures")
    };
    for ep in &targets.endpoints {
        let worker = detail_worker(ep.target);
        http.call(ep, Method::GET, &format!("/workers/{worker}"), None)
            .await
            .map_err(|e| format!("{} cannot reach the fixture: {e}", ep.target.label()))?;
    }

    let script = scratch.join("input.lua");
    fs::write(
        &script,
        "wrk.method = \"POST\"\n\
         wrk.body = '{\"text\":\"ping\"}'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )?;

    // Warm every path up: connection pools, nginx's upstream keep-alive, page cache.
    for ep in &targets.endpoints {
        let worker = detail_worker(ep.target);
        wrk::run_async(load(ep, &format!("/workers/{worker}"), 16, plan, None)).await?;
    }

    let mut results = RestResults::default();
    for round in 0..plan.runs {
        for route in Route::ALL {
            for &connections in &plan.rest_connections {
                for ep in in_round_order(&targets.endpoints, round) {
                    let before = targets.cpu(ep.target)?;
                    let foreign = ForeignLoad::start()?;
                    let run = measure(
                        plan,
                        http,
                        ep,
                        route,
                        connections,
                        &detail_worker(ep.target),
                        &script,
                    )
                    .await?;
                    let after = targets.cpu(ep.target)?;
                    let foreign = foreign.cpus()?;
                    let per_request = |a: f64, b: f64| (b - a) * 1e6 / run.requests.max(1) as f64;
                    let runtime_cpu = per_request(before.0, after.0);
                    let proxy_cpu = per_request(before.1, after.1);
                    eprintln!(
                        "bench: rest round {} {:<13} c={:<3} {:<22} {:>9.0} req/s  p50 {:.3} ms  \
                         p99 {:.3} ms  cpu/req runtime {runtime_cpu:.1} µs proxy {proxy_cpu:.1} µs  \
                         others {foreign:.2} CPUs{}",
                        round + 1,
                        route.label(),
                        connections,
                        ep.target.label(),
                        run.rps,
                        run.p50_ms,
                        run.p99_ms,
                        if run.errors() > 0 {
                            format!("  ERRORS {}", run.errors())
                        } else {
                            String::new()
                        }
                    );
                    if run.errors() > 0 {
                        anomalies.push(format!(
                            "REST {} at {connections} connections via {}: {} failed requests \
                             ({} non-2xx, {} socket errors) of {}",
                            route.label(),
                            ep.target.label(),
                            run.errors(),
                            run.non_2xx,
                            run.socket_errors,
                            run.requests
                        ));
                    }
                    match results.cells.iter_mut().find(|c| {
                        c.route == route && c.connections == connections && c.target == ep.target
                    }) {
                        Some(cell) => {
                            cell.runs.push(run);
                            cell.runtime_cpu_us.push(runtime_cpu);
                            cell.proxy_cpu_us.push(proxy_cpu);
                            cell.foreign_cpus.push(foreign);
                        }
                        None => results.cells.push(Cell {
                            route,
                            connections,
                            target: ep.target,
                            runs: vec![run],
                            runtime_cpu_us: vec![runtime_cpu],
                            proxy_cpu_us: vec![proxy_cpu],
                            foreign_cpus: vec![foreign],
                        }),
                    }
                }
            }
        }
        measure_paired(plan, http, targets, &detail_worker, &mut results.paired).await?;
    }
    Ok(results)
}

/// One round of the one-connection paired figure ([`crate::paired`]) on every
/// route, over every target.
async fn measure_paired(
    plan: &Plan,
    http: &Http,
    targets: &Targets,
    detail_worker: &dyn Fn(Target) -> String,
    into: &mut Vec<PairedRoute>,
) -> Result<()> {
    for route in Route::ALL {
        // Inputs go to a fresh worker on each runtime, removed afterwards, as in
        // the wrk runs.
        let mut input_workers: Vec<(Upstream, Endpoint, String)> = Vec::new();
        if route == Route::Input {
            for ep in &targets.endpoints {
                if !input_workers
                    .iter()
                    .any(|(u, _, _)| *u == ep.target.upstream())
                {
                    let worker = http.create_worker(ep, "echo").await?;
                    input_workers.push((ep.target.upstream(), ep.clone(), worker));
                }
            }
        }
        let endpoints: Vec<(Endpoint, String)> = targets
            .endpoints
            .iter()
            .map(|ep| {
                let path = match route {
                    Route::Detail => format!("/workers/{}", detail_worker(ep.target)),
                    Route::List => "/workers".to_owned(),
                    Route::Input => {
                        let (_, _, worker) = input_workers
                            .iter()
                            .find(|(u, _, _)| *u == ep.target.upstream())
                            .expect("every runtime has an input worker");
                        format!("/workers/{worker}/input")
                    }
                };
                (ep.clone(), path)
            })
            .collect();
        let position = match into.iter().position(|p| p.route == route) {
            Some(i) => i,
            None => {
                into.push(PairedRoute {
                    route,
                    latencies_us: Vec::new(),
                });
                into.len() - 1
            }
        };
        let measured =
            paired::measure(&endpoints, route, plan.paired_turns, &mut into[position]).await;
        for (_, ep, worker) in &input_workers {
            http.remove_worker(ep, worker).await?;
        }
        measured?;
        let figure = &into[position];
        let shown: Vec<String> = figure
            .latencies_us
            .iter()
            .map(|(t, _)| format!("{} {:.0} µs", t.label(), figure.p50(*t)))
            .collect();
        eprintln!(
            "bench: rest paired {:<13} p50 {}",
            route.label(),
            shown.join(", ")
        );
    }
    Ok(())
}

/// The targets of one cell in the order round `round` (from 0) measures them: table
/// order in the first, third, … round, reversed in the second, fourth, …. On this
/// kind of machine the place in a round matters (a run right after a heavy one, or
/// second of two, comes out differently), so it alternates instead of favouring one
/// target in every round.
pub fn in_round_order<T>(items: &[T], round: usize) -> Box<dyn Iterator<Item = &T> + '_> {
    if round.is_multiple_of(2) {
        Box::new(items.iter())
    } else {
        Box::new(items.iter().rev())
    }
}

fn load(ep: &Endpoint, path: &str, connections: u32, plan: &Plan, script: Option<&Path>) -> Load {
    Load {
        url: ep.url(path),
        connections,
        duration: plan.rest_duration,
        headers: ep
            .authorization()
            .map(|a| vec![format!("Authorization: {a}")])
            .unwrap_or_default(),
        script: script.map(Path::to_path_buf),
    }
}

async fn measure(
    plan: &Plan,
    http: &Http,
    ep: &Endpoint,
    route: Route,
    connections: u32,
    detail_worker: &str,
    script: &Path,
) -> Result<WrkRun> {
    match route {
        Route::Detail => {
            let path = format!("/workers/{detail_worker}");
            wrk::run_async(load(ep, &path, connections, plan, None)).await
        }
        Route::List => wrk::run_async(load(ep, "/workers", connections, plan, None)).await,
        Route::Input => {
            // A fresh worker per run, removed afterwards, so no run inherits another's
            // queue or transcript, and the lists stay at eight workers.
            let worker = http.create_worker(ep, "echo").await?;
            let path = format!("/workers/{worker}/input");
            let run = wrk::run_async(load(ep, &path, connections, plan, Some(script))).await;
            http.remove_worker(ep, &worker).await?;
            run
        }
    }
}

#[cfg(test)]
mod tests {
    use super::in_round_order;

    #[test]
    fn rounds_alternate_the_order_of_targets() {
        let targets = ["direct", "nginx", "backend"];
        let order = |round| in_round_order(&targets, round).copied().collect::<Vec<_>>();
        assert_eq!(order(0), ["direct", "nginx", "backend"]);
        assert_eq!(order(1), ["backend", "nginx", "direct"]);
        assert_eq!(order(2), order(0));
    }
}
