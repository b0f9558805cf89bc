//! The report: `BENCHMARKS.md` (machine, commit, date, every table, ratios, targets,
//! profiles, anomalies) and its SVG plots.

use std::fmt::Write as _;
use std::time::Duration;

use crate::api::Target;
use crate::events::EventResults;
use crate::fanout::{FanoutResults, Mode};
use crate::machine::Machine;
use crate::plan::Plan;
use crate::profile::Profile;
use crate::rest::{RestResults, Route};
use crate::scale::{Listing, ScaleResults};
use crate::stats::{Summary, ratio};
use crate::svg::{BarChart, LineChart, Series};
use crate::{PhaseTime, Scenario};

/// Everything a run produced.
#[derive(Debug)]
pub struct Report<'a> {
    /// What was run.
    pub plan: &'a Plan,
    /// Where and when.
    pub machine: &'a Machine,
    /// Scenario 1.
    pub rest: &'a RestResults,
    /// Scenario 1's in-process authentication checks.
    pub auth_checks: &'a [crate::auth::AuthCheck],
    /// Scenario 2.
    pub events: &'a EventResults,
    /// Scenario 3.
    pub fanout: &'a FanoutResults,
    /// Scenario 4.
    pub scale: &'a ScaleResults,
    /// Scenario 5: the REST routes through nginx and the backend to remotes over
    /// plain HTTP and over TLS.
    pub tls: &'a RestResults,
    /// Scenario 6.
    pub keys: &'a crate::keys::KeyResults,
    /// perf profiles (full runs with perf installed).
    pub profiles: &'a [Profile],
    /// Failed requests, lost events, viewers closed early.
    pub anomalies: &'a [String],
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// The scenarios that ran, with their wall time and other processes' CPU use.
    pub phases: &'a [PhaseTime],
    /// `/proc/loadavg` after the run.
    pub load_after: String,
    /// Hand-written investigation notes (`docs/bench/ANALYSIS.md`), if any.
    pub analysis: Option<String>,
}

/// One target of the issue, judged.
#[derive(Debug, Clone)]
pub struct Check {
    /// The target as stated.
    pub name: &'static str,
    /// The numbers behind the verdict.
    pub standing: String,
    /// Whether it is met.
    pub met: bool,
    /// For a miss: why, and what would close it.
    pub why: String,
}

/// The REST route × connection groups in plot order, with labels.
fn rest_groups(plan: &Plan) -> Vec<(Route, u32, String)> {
    Route::ALL
        .iter()
        .flat_map(|route| {
            plan.rest_connections.iter().map(move |c| {
                let short = match route {
                    Route::Detail => "detail",
                    Route::List => "list",
                    Route::Input => "input",
                };
                (*route, *c, format!("{short} ×{c}"))
            })
        })
        .collect()
}

fn show_ratio(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.2}")
    } else {
        "–".to_owned()
    }
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl Report<'_> {
    fn why_rest_throughput(&self) -> String {
        use crate::rest::Cell;
        let c = *self.plan.rest_connections.last().unwrap_or(&64);
        let low = *self.plan.rest_connections.first().unwrap_or(&1);
        let median = |r, n, t, f| self.rest_median(r, n, t, f);
        let missed: Vec<String> = rest_groups(self.plan)
            .iter()
            .filter(|(r, n, _)| {
                median(*r, *n, Target::Backend, Cell::rps)
                    < median(*r, *n, Target::Nginx, Cell::rps)
            })
            .map(|(r, n, label)| {
                let ratio = median(*r, *n, Target::Backend, Cell::rps)
                    / median(*r, *n, Target::Nginx, Cell::rps);
                format!("{label} {ratio:.2}")
            })
            .collect();
        let paired: Vec<String> = Route::ALL
            .iter()
            .filter_map(|r| {
                let figure = self.rest.paired(*r)?;
                let d = figure.difference(Target::Backend, Target::Nginx)?;
                Some(format!(
                    "{} {:+.1} µs (req/s ratio {:.3})",
                    r.label(),
                    d.median,
                    figure.throughput_ratio(Target::Backend, Target::Nginx)
                ))
            })
            .collect();
        let paired = if paired.is_empty() {
            String::new()
        } else {
            format!(
                " Measured request by request on one connection each, alternating (the \
                 table after the ratios, which the machine's slow stretches affect alike), \
                 the backend's round trip differs from nginx's by {} (median per-turn \
                 difference).",
                paired.join(", ")
            )
        };
        format!(
            "Misses here: {missed}.{paired} Here wrk, the proxy and the runtime share {cpus} CPUs, so \
             throughput is set by CPU time per request, and at {low} connection{s} by the \
             time of one round trip. The backend relays worker detail, list and input as \
             the runtime's bytes (checked in one pass, secrets searched, the runtime id \
             written in place) over its own HTTP/1.1 client, and pipelines its `GET`s \
             and inputs to the runtime: requests in flight together go out in one write \
             and their answers come back in one read, on its side and on the runtime's \
             (which writes the answers to one read's requests together). It serves its \
             connections on one single-threaded runtime per CPU, each with runtime \
             connections of its own, so that a relayed request never crosses threads, \
             and the binary is built with profile-guided optimisation (`cargo xtask \
             pgo`, trained on the benchmarks' quick run), which takes about a quarter \
             off the instructions of a relayed request. \
             That is where it passes nginx, which sends one request per upstream \
             connection at a time: at {c} connections worker detail costs the runtime \
             {rb:.1} µs of CPU per request through the backend against {rn:.1} µs through \
             nginx, and the backend {b:.1} µs against nginx's {n:.1} µs. What is left: \
             (1) at {low} connection{s} there is nothing to batch, and the backend's \
             user-space work per request is about 21k instructions for a worker detail \
             against nginx's 19k (21k against 19k for a list of eight workers, whose \
             answer repeats here and is relayed from the memo without being read \
             through; 25k against 23k for an input; callgrind, `bench/callgrind.sh`, \
             which does not depend on the machine's load, on the binary built with \
             profile-guided optimisation; the plain release build takes 27k, 27k and \
             33k): hyper's server, tokio's scheduler and its I/O driver, the API's \
             checks (host, origin, credentials, route, ids), the relay check and the \
             client; so each round trip takes one to three µs longer. (2) In between, requests seldom arrive \
             together (neither proxy saturates the CPUs: both leave about a tenth idle), so \
             there is little to batch and CPU per request decides; a perf profile at 16 \
             connections (docs/bench/ANALYSIS.md) puts the kernel's part (system calls, \
             waking the peer) at about 18 µs per request for both, and the difference in \
             user space: about 11 µs for hyper's server, tokio's scheduling, the checks \
             and the client against about 5 µs for nginx's event loop. Input at {c} \
             connections costs the backend {ib:.1} µs of CPU per request against nginx's \
             {in_:.1} µs. Closing the rest needs less user-space work per request than \
             hyper's server leaves room for. The backend→embedded target, which skips the \
             upstream hop, reaches nginx's throughput in {beats} of {total} \
             cases.",
            missed = if missed.is_empty() {
                "none".to_owned()
            } else {
                missed.join(", ")
            },
            cpus = self.machine.cpus,
            s = if low == 1 { "" } else { "s" },
            rb = median(Route::Detail, c, Target::Backend, Cell::runtime_cpu),
            rn = median(Route::Detail, c, Target::Nginx, Cell::runtime_cpu),
            b = median(Route::Detail, c, Target::Backend, Cell::proxy_cpu),
            n = median(Route::Detail, c, Target::Nginx, Cell::proxy_cpu),
            ib = median(Route::Input, c, Target::Backend, Cell::proxy_cpu),
            in_ = median(Route::Input, c, Target::Nginx, Cell::proxy_cpu),
            beats = rest_groups(self.plan)
                .iter()
                .filter(|(r, n, _)| {
                    median(*r, *n, Target::Embedded, Cell::rps)
                        >= median(*r, *n, Target::Nginx, Cell::rps)
                })
                .count(),
            total = rest_groups(self.plan).len(),
        )
    }

    fn why_rest_p99(&self, c64: u32) -> String {
        use crate::rest::Cell;
        let rps = |t| self.rest_median(Route::Detail, c64, t, Cell::rps);
        let little = |t| f64::from(c64) / rps(t) * 1000.0;
        let low = *self.plan.rest_connections.first().unwrap_or(&1);
        let gap_low: Vec<String> = Route::ALL
            .iter()
            .map(|r| {
                format!(
                    "{:+.2} ms",
                    self.rest_median(*r, low, Target::Backend, Cell::p99)
                        - self.rest_median(*r, low, Target::Direct, Cell::p99)
                )
            })
            .collect();
        format!(
            "At {c64} connections the CPUs are saturated and latency is mostly queueing: \
             by Little's law the mean latency is connections / throughput, {b:.2} ms \
             through the backend against {d:.2} ms direct for worker detail, and the tail \
             follows the mean. The backend's own work per request is small by comparison \
             (at {low} connection{s} its p99 is {gaps} against direct for detail, list and \
             input). So this gap closes with the throughput gap above: the same fixes, \
             less CPU per request.",
            b = little(Target::Backend),
            d = little(Target::Direct),
            s = if low == 1 { "" } else { "s" },
            gaps = gap_low.join(", "),
        )
    }

    fn why_events(&self) -> String {
        let json: f64 = self
            .profiles
            .iter()
            .filter(|p| p.title.contains("burst"))
            .flat_map(|p| p.by_symbol.iter())
            .filter(|(_, sym)| sym.contains("serde_json"))
            .map(|(share, _)| share)
            .sum();
        let measured = if json > 0.0 {
            format!(
                "In the profile of the backend under bursts (below), serde_json takes \
                 {json:.0} % of its samples: scanning each frame once to find where its \
                 event object ends (output text is escape-heavy: a newline every few \
                 bytes). "
            )
        } else {
            String::new()
        };
        format!(
            "The backend passes each event on as the JSON it arrived in (it reads the \
             frame's envelope and the event's kind, and splices the event into its own \
             frame, encoded once for all viewers), so its work per event is one scan of \
             the frame plus copies; the runtime and the proxy share the same 2 CPUs, so any \
             work the backend adds comes out of the runtime's producing. {measured}What \
             would close it: frame the runtime's events so the event's length is known \
             without scanning (for example a length-prefixed or binary framing on the \
             runtime-to-backend hop, which only the backend reads), and write the shared \
             frame to each viewer without copying it."
        )
    }

    /// Whether `scenario` ran.
    fn ran(&self, scenario: Scenario) -> bool {
        self.phases.iter().any(|p| p.scenario == scenario)
    }

    /// The REST cells' medians for `f`, or zero.
    fn rest_median(
        &self,
        route: Route,
        connections: u32,
        target: Target,
        f: fn(&crate::rest::Cell) -> Summary,
    ) -> f64 {
        self.rest
            .get(route, connections, target)
            .map_or(0.0, |c| f(c).median)
    }

    /// The targets, judged on this run's medians.
    pub fn targets(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        if self.ran(Scenario::Rest) {
            self.rest_checks(&mut checks);
        }
        if self.ran(Scenario::Events) {
            self.event_checks(&mut checks);
        }
        if self.ran(Scenario::Fanout) {
            self.fanout_checks(&mut checks);
        }
        if self.ran(Scenario::Tls) {
            checks.push(self.tls_check());
        }
        if self.ran(Scenario::Keys) {
            checks.push(self.keys.check());
        }
        checks
    }

    fn rest_checks(&self, checks: &mut Vec<Check>) {
        // REST throughput through the backend ≥ nginx's, every route and count.
        let mut worst: Option<(f64, String)> = None;
        for (route, c, label) in rest_groups(self.plan) {
            let r = ratio(
                self.rest_median(route, c, Target::Backend, crate::rest::Cell::rps),
                self.rest_median(route, c, Target::Nginx, crate::rest::Cell::rps),
            );
            if worst.as_ref().is_none_or(|(w, _)| r < *w) {
                worst = Some((r, label));
            }
        }
        let (worst_ratio, worst_at) = worst.unwrap_or((f64::NAN, String::new()));
        let below: Vec<String> = rest_groups(self.plan)
            .into_iter()
            .filter(|(route, c, _)| {
                self.rest_median(*route, *c, Target::Backend, crate::rest::Cell::rps)
                    < self.rest_median(*route, *c, Target::Nginx, crate::rest::Cell::rps)
            })
            .map(|(_, _, l)| l)
            .collect();
        checks.push(Check {
            name: "REST through the backend: throughput at least nginx's on the same route",
            met: below.is_empty(),
            standing: format!(
                "backend→remote / nginx req/s is {} at worst ({worst_at}); below nginx in {} of {} cases{}",
                show_ratio(worst_ratio),
                below.len(),
                rest_groups(self.plan).len(),
                if below.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", below.join(", "))
                }
            ),
            why: self.why_rest_throughput(),
        });

        // p99 at 64 connections ≤ direct + 1 ms.
        let c64 = *self.plan.rest_connections.last().unwrap_or(&64);
        let mut parts = Vec::new();
        let mut met = true;
        for route in Route::ALL {
            let backend = self.rest_median(route, c64, Target::Backend, crate::rest::Cell::p99);
            let direct = self.rest_median(route, c64, Target::Direct, crate::rest::Cell::p99);
            met &= backend <= direct + 1.0;
            parts.push(format!(
                "{}: {backend:.2} ms vs {direct:.2} ms ({:+.2})",
                route.label(),
                backend - direct
            ));
        }
        checks.push(Check {
            name: "REST through the backend: p99 at 64 connections ≤ direct + 1 ms",
            met,
            standing: parts.join("; "),
            why: self.why_rest_p99(c64),
        });
    }

    fn event_checks(&self, checks: &mut Vec<Check>) {
        // Events through the backend ≥ 80 % of direct. The runtime cuts a process's
        // output into events by timing (up to 8 KiB each), so a run's event count
        // varies: judge events/s and MB/s both.
        let rate = |t: Target| {
            self.events
                .get(t)
                .map_or(0.0, |c| c.events_per_second().median)
        };
        let bytes = |t: Target| {
            self.events
                .get(t)
                .map_or(0.0, |c| c.megabytes_per_second().median)
        };
        let r = ratio(rate(Target::Backend), rate(Target::Direct));
        let rb = ratio(bytes(Target::Backend), bytes(Target::Direct));
        checks.push(Check {
            name: "Events through the backend: at least 80 % of direct events per second",
            met: r >= 0.8 && rb >= 0.8,
            standing: format!(
                "{:.0} vs {:.0} events/s: {:.0} % of direct; {:.1} vs {:.1} MB/s: {:.0} %",
                rate(Target::Backend),
                rate(Target::Direct),
                r * 100.0,
                bytes(Target::Backend),
                bytes(Target::Direct),
                rb * 100.0
            ),
            why: self.why_events(),
        });
    }

    fn fanout_checks(&self, checks: &mut Vec<Check>) {
        // Fan-out: one upstream at every viewer count.
        let backend_cells: Vec<_> = self
            .fanout
            .cells
            .iter()
            .filter(|c| c.mode == Mode::Backend)
            .collect();
        let upstreams: Vec<String> = backend_cells
            .iter()
            .map(|c| {
                let seen: Vec<String> = c.runs.iter().map(|r| r.upstreams.to_string()).collect();
                format!("{} viewers: {}", c.viewers, seen.join("/"))
            })
            .collect();
        checks.push(Check {
            name: "Fan-out: one upstream connection at every viewer count",
            met: backend_cells
                .iter()
                .all(|c| c.runs.iter().all(|r| r.upstreams == 1)),
            standing: format!("runtime subscribers per round: {}", upstreams.join("; ")),
            why: WHY_UPSTREAMS.to_owned(),
        });

        // Fan-out: deliveries grow linearly with viewers.
        let base = backend_cells.first().map_or(0.0, |c| c.rate().median);
        let scaling: Vec<String> = backend_cells
            .iter()
            .map(|c| {
                let (d, e) = c.delivered();
                format!(
                    "{} viewers: {d}/{e} delivered, {:.0}/s = {:.1}× the 1-viewer rate",
                    c.viewers,
                    c.rate().median,
                    ratio(c.rate().median, base)
                )
            })
            .collect();
        let largest = backend_cells.iter().max_by_key(|c| c.viewers);
        let cpu_note = largest
            .and_then(|c| {
                let direct = self.fanout.get(Mode::Direct, c.viewers)?;
                Some(format!(
                    "; at {} viewers the backend spends {:.1} µs of CPU per delivery, the \
                     runtime delivering directly {:.1} µs, so the rate is bounded by the \
                     CPUs, which the viewers share",
                    c.viewers,
                    c.cpu_per_delivery().median,
                    direct.cpu_per_delivery().median
                ))
            })
            .unwrap_or_default();
        checks.push(Check {
            name: "Fan-out: total deliveries grow linearly with viewers",
            met: backend_cells.iter().all(|c| c.complete()),
            standing: format!(
                "every viewer gets every event, so deliveries = viewers × events; {}{cpu_note}",
                scaling.join("; ")
            ),
            why: WHY_LINEAR.to_owned(),
        });

        // Fan-out: < 64 KiB per idle viewer (at the largest count, where the
        // measurement is not noise).
        let kib = largest.map_or(f64::NAN, |c| c.kib_per_viewer().median);
        checks.push(Check {
            name: "Fan-out: under 64 KiB of backend memory per idle viewer",
            met: kib < 64.0,
            standing: format!(
                "{kib:.1} KiB per viewer at {} viewers (resident memory with the viewers \
                 connected minus before, divided by the viewers)",
                largest.map_or(0, |c| c.viewers)
            ),
            why: WHY_MEMORY.to_owned(),
        });
    }

    /// The report as Markdown; plots are linked from `bench/` beside it.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        self.header(&mut md);
        self.targets_section(&mut md);
        if self.ran(Scenario::Rest) {
            self.rest_section(&mut md);
        }
        if self.ran(Scenario::Events) {
            self.events_section(&mut md);
        }
        if self.ran(Scenario::Fanout) {
            self.fanout_section(&mut md);
        }
        if self.ran(Scenario::Scale) {
            self.scale_section(&mut md);
        }
        if self.ran(Scenario::Tls) {
            self.tls_section(&mut md);
        }
        if self.ran(Scenario::Keys) {
            self.keys.markdown(&mut md);
        }
        self.profiles_section(&mut md);
        if let Some(analysis) = &self.analysis {
            let _ = writeln!(md, "{}\n", analysis.trim_end());
        }
        self.anomalies_section(&mut md);
        md
    }

    fn header(&self, md: &mut String) {
        let m = self.machine;
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Written by `cargo xtask bench`{} (the `switchyard-bench` crate in `bench/`); \
             run it again rather than editing this file. Every figure is the median of \
             {} run{} with the range (min–max) in brackets; targets are measured side by \
             side (each round runs every target in turn; in the REST tables in table \
             order in odd rounds and in reverse in even ones).\n",
            if self.plan.quick { " --quick" } else { "" },
            self.plan.runs,
            if self.plan.runs == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            md,
            "To refresh this file and the plots in `bench/`, run `cargo xtask bench` (it \
             builds the release binary with profile-guided optimisation, `cargo xtask \
             pgo`, trained on the quick run below; `--no-pgo` benchmarks the plain \
             release build; it installs nginx and wrk from Debian's packages if they are \
             missing, and starts everything itself). `cargo xtask bench --quick` \
             runs every scenario once, briefly, on the debug build, into a temporary \
             directory and fails on any error: that is the CI check (its figures say \
             nothing). `--only rest,events,fanout,scale,tls,keys` and \
             `--no-profile` narrow a run (partial runs also go to a temporary \
             directory).\n"
        );
        let _ = writeln!(md, "| | |\n|---|---|");
        let _ = writeln!(
            md,
            "| machine | {} logical CPUs, {}, {:.1} GiB memory |",
            m.cpus, m.cpu_model, m.memory_gib
        );
        let _ = writeln!(md, "| system | {} |", m.os);
        let _ = writeln!(md, "| commit | `{}` |", m.commit);
        let _ = writeln!(md, "| binary | {} |", m.build);
        let _ = writeln!(md, "| date | {} |", m.date);
        let _ = writeln!(md, "| tools | {} |", m.tools.join(", "));
        let _ = writeln!(
            md,
            "| load average (1, 5, 15 min) | {} before, {} after |",
            m.load_before, self.load_after
        );
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|p| format!("{} {}", p.scenario.label(), minutes(p.wall)))
            .collect();
        let foreign: Vec<String> = self
            .phases
            .iter()
            .map(|p| format!("{} {:.2}", p.scenario.label(), p.foreign_cpus))
            .collect();
        let worst = self
            .rest
            .cells
            .iter()
            .flat_map(|c| c.foreign_cpus.iter().map(move |f| (*f, c)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let _ = writeln!(
            md,
            "| duration | {} ({}), without the build |",
            minutes(self.elapsed),
            phases.join(", ")
        );
        let _ = writeln!(
            md,
            "| CPUs used by other processes (average) | {}{} |",
            foreign.join(", "),
            worst
                .map(|(f, c)| format!(
                    "; the most during one REST run: {f:.2} ({} ×{} {})",
                    c.route.label(),
                    c.connections,
                    c.target.label()
                ))
                .unwrap_or_default()
        );
        let _ = writeln!(md);
        let _ = writeln!(md, "{SETUP}");
        if self.plan.quick {
            let _ = writeln!(
                md,
                "**This is a `--quick` run**: one short run of everything with small \
                 counts, to keep the benchmark code working. Its numbers are not \
                 measurements.\n"
            );
        }
    }

    fn targets_section(&self, md: &mut String) {
        let _ = writeln!(md, "## Targets\n");
        let _ = writeln!(md, "| target | status | where it stands |\n|---|---|---|");
        let checks = self.targets();
        for c in &checks {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                c.name,
                if c.met { "met" } else { "**missed**" },
                c.standing
            );
        }
        let _ = writeln!(md);
        let misses: Vec<&Check> = checks.iter().filter(|c| !c.met).collect();
        if !misses.is_empty() {
            let _ = writeln!(md, "### Why the misses, and what would close them\n");
            for c in misses {
                let _ = writeln!(md, "**{}.** {}\n", c.name, c.why);
            }
        }
    }

    fn rest_section(&self, md: &mut String) {
        let _ = writeln!(md, "## 1. REST\n");
        let _ = writeln!(
            md,
            "wrk with 2 threads (1 at one connection), keep-alive connections, {} s per \
             run; the input route posts `{{\"text\":\"ping\"}}` to a fresh echo worker per run. \
             CPU columns are the CPU time the runtime process and the proxy (nginx's \
             processes, or the backend) used during the run, per request: they show what \
             each hop costs on a machine where wrk, the proxy and the runtime share {} \
             CPUs.\n",
            self.plan.rest_duration.as_secs(),
            self.machine.cpus
        );
        let _ = writeln!(md, "![REST throughput](bench/rest-throughput.svg)\n");
        let _ = writeln!(md, "![REST p99 latency](bench/rest-p99.svg)\n");
        for route in Route::ALL {
            let _ = writeln!(md, "### {} (`{}`)\n", route.label(), route.call());
            let _ = writeln!(
                md,
                "| connections | target | req/s | p50 ms | p99 ms | runtime CPU µs/req | proxy CPU µs/req | failed |\n\
                 |---:|---|---:|---:|---:|---:|---:|---:|"
            );
            for &c in &self.plan.rest_connections {
                for target in Target::ALL {
                    let Some(cell) = self.rest.get(route, c, target) else {
                        continue;
                    };
                    let _ = writeln!(
                        md,
                        "| {c} | {} | {} | {} | {} | {} | {} | {} of {} |",
                        target.label(),
                        cell.rps().show(0),
                        cell.p50().show(3),
                        cell.p99().show(3),
                        cell.runtime_cpu().show(1),
                        if target == Target::Direct {
                            "–".to_owned()
                        } else {
                            cell.proxy_cpu().show(1)
                        },
                        cell.errors(),
                        cell.requests()
                    );
                }
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(md, "### Ratios (medians)\n");
        let _ = writeln!(
            md,
            "| route | connections | backend/direct req/s | backend/nginx req/s | backend − direct p99 ms | backend/nginx p99 | embedded/direct req/s | embedded/nginx req/s |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|"
        );
        use crate::rest::Cell;
        for (route, c, _) in rest_groups(self.plan) {
            let rps = |t| self.rest_median(route, c, t, Cell::rps);
            let p99 = |t| self.rest_median(route, c, t, Cell::p99);
            let _ = writeln!(
                md,
                "| {} | {c} | {} | {} | {:+.3} | {} | {} | {} |",
                route.label(),
                show_ratio(ratio(rps(Target::Backend), rps(Target::Direct))),
                show_ratio(ratio(rps(Target::Backend), rps(Target::Nginx))),
                p99(Target::Backend) - p99(Target::Direct),
                show_ratio(ratio(p99(Target::Backend), p99(Target::Nginx))),
                show_ratio(ratio(rps(Target::Embedded), rps(Target::Direct))),
                show_ratio(ratio(rps(Target::Embedded), rps(Target::Nginx))),
            );
        }
        let _ = writeln!(md);
        crate::paired_report::table(md, self.rest, &[(Target::Backend, Target::Nginx)]);
        self.auth_cost(md);
    }

    /// What client authentication costs per request: backend→embedded with auth off
    /// and on (a second backend, a bearer token on every request), side by side.
    fn auth_cost(&self, md: &mut String) {
        use crate::rest::Cell;
        let groups = rest_groups(self.plan);
        if groups
            .iter()
            .all(|(r, c, _)| self.rest.get(*r, *c, Target::EmbeddedAuth).is_none())
        {
            return;
        }
        let _ = writeln!(md, "### What client authentication costs\n");
        let _ = writeln!(
            md,
            "**backend→embedded** (no `[auth]`) against **backend→embedded, auth**: a second \
             backend with `[auth]` and one token made by `switchyard token`, every request \
             carrying `Authorization: Bearer`. Per request the backend hashes the token \
             (SHA-256), compares the hash with every configured one in constant time, and \
             checks the role policy; the browser defences (Host, Origin, content type) run \
             with auth off too. Both backends log at `warn`, so neither writes request or \
             audit lines.\n"
        );
        let _ = writeln!(
            md,
            "| route | connections | req/s off | req/s on | on/off | p50 ms off | p50 ms on | backend CPU µs/req off | on | difference |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let mut differences = Vec::new();
        let mut ratios = Vec::new();
        for (route, c, _) in &groups {
            let m = |t, f| self.rest_median(*route, *c, t, f);
            let (off, on) = (Target::Embedded, Target::EmbeddedAuth);
            let cpu_difference = m(on, Cell::proxy_cpu) - m(off, Cell::proxy_cpu);
            let rps_ratio = ratio(m(on, Cell::rps), m(off, Cell::rps));
            differences.push(cpu_difference);
            ratios.push(rps_ratio);
            let _ = writeln!(
                md,
                "| {} | {c} | {:.0} | {:.0} | {} | {:.3} | {:.3} | {:.1} | {:.1} | {:+.1} |",
                route.label(),
                m(off, Cell::rps),
                m(on, Cell::rps),
                show_ratio(rps_ratio),
                m(off, Cell::p50),
                m(on, Cell::p50),
                m(off, Cell::proxy_cpu),
                m(on, Cell::proxy_cpu),
                cpu_difference,
            );
        }
        let _ = writeln!(
            md,
            "\nAuth on costs a median **{:+.1} µs** of backend CPU per request (range {:+.1} to \
             {:+.1} over the {} cells) and keeps a median **{}** of the throughput. Single \
             cells move by a few µs either way with scheduling noise; the median over all \
             of them is the figure to quote.\n",
            Summary::of(&differences).median,
            differences.iter().copied().fold(f64::INFINITY, f64::min),
            differences
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, f64::max),
            differences.len(),
            show_ratio(Summary::of(&ratios).median),
        );
        if !self.auth_checks.is_empty() {
            let _ = writeln!(
                md,
                "The check alone, in process (`Authenticator::authenticate`, one thread, \
                 averaged over many calls): a bearer token is hashed once and compared with \
                 every configured hash, so a refusal costs what an acceptance does; a cookie \
                 costs an HMAC and a lookup.\n\n\
                 | check | configured tokens | µs per request |\n|---|---:|---:|"
            );
            for check in self.auth_checks {
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.2} |",
                    check.what,
                    check.tokens,
                    check.per_check.as_secs_f64() * 1e6
                );
            }
            let _ = writeln!(md);
        }
    }

    fn events_section(&self, md: &mut String) {
        let _ = writeln!(md, "## 2. Event stream\n");
        let _ = writeln!(
            md,
            "Rate: a `process` worker `read x; exec seq 1 {}` ({:.1} MB of output) is \
             watched by one viewer and sent one input; the rate is output events (and \
             bytes) received from sending the input to the worker's end, over {} such \
             bursts per round. The runtime reads a process's output in chunks of up to \
             8 KiB, one event each, so events are chunks, not lines (here {:.1} KB on \
             average), and their number varies with timing. A viewer that falls more than \
             its queue behind is cut off; here the backend (`viewer_queue`) and the \
             runtimes (`subscriber_queue`) both queue 65536 events per viewer; the long \
             burst below probes that. Latency: an echo worker is \
             sent {} inputs one after another; each is timed from sending the POST (on \
             the same route) to receiving its output frame on the viewer's WebSocket.\n",
            self.plan.burst_lines,
            self.events.burst_bytes as f64 / 1e6,
            self.plan.bursts_per_round,
            self.events.get(Target::Direct).map_or(0.0, |c| {
                c.megabytes_per_second().median * 1e3 / c.events_per_second().median
            }),
            self.plan.latency_inputs
        );
        let _ = writeln!(md, "![Event rate](bench/events-rate.svg)\n");
        let _ = writeln!(md, "![Input-to-output latency](bench/events-latency.svg)\n");
        let _ = writeln!(
            md,
            "| target | events/s | MB/s | events per burst | input→output p50 ms | p99 ms |\n\
             |---|---:|---:|---:|---:|---:|"
        );
        for cell in &self.events.cells {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                cell.target.label(),
                cell.events_per_second().show(0),
                cell.megabytes_per_second().show(1),
                cell.events().show(0),
                cell.p50().show(3),
                cell.p99().show(3)
            );
        }
        let rate = |t| {
            self.events
                .get(t)
                .map_or(0.0, |c| c.events_per_second().median)
        };
        let p50 = |t| self.events.get(t).map_or(0.0, |c| c.p50().median);
        let _ = writeln!(
            md,
            "\nRatios: events/s backend/direct **{}**, backend/nginx **{}**, \
             embedded/direct {}; latency p50 backend/direct {}, backend/nginx {}.\n",
            show_ratio(ratio(rate(Target::Backend), rate(Target::Direct))),
            show_ratio(ratio(rate(Target::Backend), rate(Target::Nginx))),
            show_ratio(ratio(rate(Target::Embedded), rate(Target::Direct))),
            show_ratio(ratio(p50(Target::Backend), p50(Target::Direct))),
            show_ratio(ratio(p50(Target::Backend), p50(Target::Nginx))),
        );
        let _ = writeln!(
            md,
            "Long burst: `seq 1 {}` ({:.1} MB), once per round and target. A viewer that \
             falls more than its queue behind is closed with 4408 (slow consumer) by \
             design; this shows whether one viewer keeps up with a worker printing flat \
             out for longer.\n",
            self.plan.long_burst_lines,
            self.events.long_burst_bytes as f64 / 1e6
        );
        let _ = writeln!(
            md,
            "| target | closed with 4408 | events/s of the completed ones |\n|---|---:|---:|"
        );
        for cell in &self.events.cells {
            let (cut, runs) = cell.long_cut_off();
            let _ = writeln!(
                md,
                "| {} | {cut} of {runs} | {} |",
                cell.target.label(),
                if cut == runs {
                    "–".to_owned()
                } else {
                    cell.long_events_per_second().show(0)
                }
            );
        }
        let _ = writeln!(md);
    }

    fn fanout_section(&self, md: &mut String) {
        let _ = writeln!(md, "## 3. Fan-out\n");
        let _ = writeln!(
            md,
            "One echo worker on a fresh remote runtime (and, through the backend, a fresh \
             backend) per measurement. N viewers connect and read their snapshot; memory \
             is the resident set (VmRSS) of the process they connect to with the N idle \
             viewers minus before they connected, per viewer; upstream connections are the \
             runtime's `subscribers` (`GET /v1/runtime`) with every viewer connected. Then \
             {} inputs are posted one after another (2 events each: `input` and `output`) \
             and every viewer reads until the last output; the rate is all viewers' events \
             divided by the time from the first input to the last viewer's last event. \
             CPU is that process's CPU time during the burst per delivered event. The \
             viewers are tokio tasks in the benchmark process, on the same {} CPUs.\n",
            self.fanout.inputs, self.machine.cpus
        );
        let _ = writeln!(md, "![Fan-out deliveries](bench/fanout.svg)\n");
        let _ = writeln!(md, "![Fan-out memory](bench/fanout-memory.svg)\n");
        let _ = writeln!(
            md,
            "| viewers | to | deliveries/s | delivered / expected | upstream connections | KiB per idle viewer | CPU µs per delivery | closed early |\n\
             |---:|---|---:|---:|---:|---:|---:|---:|"
        );
        for &viewers in &self.plan.fanout_viewers {
            for mode in [Mode::Backend, Mode::Direct] {
                let Some(cell) = self.fanout.get(mode, viewers) else {
                    continue;
                };
                let (delivered, expected) = cell.delivered();
                let _ = writeln!(
                    md,
                    "| {viewers} | {} | {} | {delivered} / {expected} | {} | {} | {} | {} |",
                    mode.label(),
                    cell.rate().show(0),
                    cell.upstreams().show(0),
                    cell.kib_per_viewer().show(1),
                    cell.cpu_per_delivery().show(2),
                    cell.closed()
                );
            }
        }
        let _ = writeln!(md);
        let rows: Vec<String> = self
            .plan
            .fanout_viewers
            .iter()
            .map(|&v| {
                let rate = |m| self.fanout.get(m, v).map_or(0.0, |c| c.rate().median);
                format!(
                    "{v} viewers {}",
                    show_ratio(ratio(rate(Mode::Backend), rate(Mode::Direct)))
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "Ratio of deliveries/s backend/direct: {}.\n",
            rows.join(", ")
        );
    }

    fn scale_section(&self, md: &mut String) {
        let _ = writeln!(md, "## 4. Scale\n");
        let _ = writeln!(
            md,
            "{} echo workers on one remote runtime (created through its API, 32 at a \
             time, in {:.1} s); a backend with only that runtime. First pages hold 100 \
             workers; `GET /api/workers` answers every worker ({:.1} MB), the backend \
             following the runtime's pages. wrk runs {} s per figure; the \
             \"client follows pages\" row is the benchmark's own client listing everything \
             from the runtime with `limit=1000`, one request after another, {} times per \
             round. The last two rows read the runtime's census, kept as workers change \
             (its counts, and a page of a status no worker has): neither visits the \
             workers, so neither should fall with their number.\n",
            self.scale.workers,
            self.scale.create_seconds,
            self.scale.all_bytes as f64 / 1e6,
            self.plan.scale_duration.as_secs(),
            self.plan.scale_sequential
        );
        let _ = writeln!(
            md,
            "| listing | connections | req/s | p50 ms | p99 ms | failed |\n|---|---:|---:|---:|---:|---:|"
        );
        for &c in &self.plan.scale_connections {
            for listing in Listing::ALL {
                let Some(cell) = self.scale.get(listing, c) else {
                    continue;
                };
                let _ = writeln!(
                    md,
                    "| {} | {c} | {} | {} | {} | {} |",
                    listing.label(),
                    cell.rps().show(1),
                    cell.p50().show(2),
                    cell.p99().show(2),
                    cell.errors
                );
            }
        }
        let first = |l| self.scale.get(l, 1).map_or(0.0, |c| c.p50().median);
        let _ = writeln!(
            md,
            "\nRatios at one connection (p50): backend/direct first page {}, \
             backend every page / client following pages {}.\n",
            show_ratio(ratio(
                first(Listing::BackendFirstPage),
                first(Listing::DirectFirstPage)
            )),
            show_ratio(ratio(
                first(Listing::BackendAll),
                first(Listing::DirectAllPages)
            )),
        );
    }

    fn profiles_section(&self, md: &mut String) {
        if self.profiles.is_empty() {
            return;
        }
        let _ = writeln!(md, "## Profiles\n");
        let _ = writeln!(
            md,
            "`perf record -F 999 -p PID` while the load ran (software clock samples; this \
             machine has no hardware counters), `perf report --no-children`. Shares of all \
             samples of that process.\n"
        );
        for p in self.profiles {
            let _ = writeln!(md, "### {}\n", p.title);
            let objects: Vec<String> = p
                .by_object
                .iter()
                .map(|(s, o)| format!("{o} {s:.1} %"))
                .collect();
            let _ = writeln!(md, "By object: {}.\n", objects.join(", "));
            let _ = writeln!(md, "| share | object and symbol |\n|---:|---|");
            for (share, symbol) in &p.by_symbol {
                let _ = writeln!(md, "| {share:.1} % | `{}` |", symbol.replace('|', "\\|"));
            }
            let _ = writeln!(md);
        }
    }

    fn anomalies_section(&self, md: &mut String) {
        let _ = writeln!(md, "## Anomalies\n");
        if self.anomalies.is_empty() {
            let _ = writeln!(
                md,
                "None: no failed request, no lost event, no viewer closed early.\n"
            );
        } else {
            for a in self.anomalies {
                let _ = writeln!(md, "- {a}");
            }
            let _ = writeln!(md);
        }
    }

    /// The plots, as `(file name, SVG)`.
    pub fn plots(&self) -> Vec<(&'static str, String)> {
        let groups = rest_groups(self.plan);
        let rest_chart = |title: &str, y: &str, f: fn(&crate::rest::Cell) -> Summary| {
            BarChart {
                title: title.to_owned(),
                y_label: y.to_owned(),
                groups: groups.iter().map(|(_, _, l)| l.clone()).collect(),
                series: Target::ALL
                    .iter()
                    .map(|t| Series {
                        name: t.label().to_owned(),
                        colour: t.colour().to_owned(),
                        values: groups
                            .iter()
                            .map(|(r, c, _)| self.rest.get(*r, *c, *t).map(f).unwrap_or_default())
                            .collect(),
                    })
                    .collect(),
            }
            .render()
        };
        let event_series = |f: &dyn Fn(&crate::events::EventCell) -> Vec<Summary>| {
            self.events
                .cells
                .iter()
                .map(|c| Series {
                    name: c.target.label().to_owned(),
                    colour: c.target.colour().to_owned(),
                    values: f(c),
                })
                .collect::<Vec<_>>()
        };
        let fanout_series = |f: fn(&crate::fanout::FanoutCell) -> Summary| {
            [(Mode::Backend, "#c44e52"), (Mode::Direct, "#4c72b0")]
                .iter()
                .map(|(mode, colour)| Series {
                    name: mode.label().to_owned(),
                    colour: (*colour).to_owned(),
                    values: self
                        .plan
                        .fanout_viewers
                        .iter()
                        .map(|v| self.fanout.get(*mode, *v).map(f).unwrap_or_default())
                        .collect(),
                })
                .collect::<Vec<_>>()
        };
        vec![
            (
                "rest-throughput.svg",
                rest_chart(
                    "REST throughput by route × connections",
                    "requests/s",
                    crate::rest::Cell::rps,
                ),
            ),
            (
                "rest-p99.svg",
                rest_chart(
                    "REST p99 latency by route × connections",
                    "p99 latency, ms",
                    crate::rest::Cell::p99,
                ),
            ),
            (
                "events-rate.svg",
                BarChart {
                    title: "Event stream: output events per second to one viewer".to_owned(),
                    y_label: "events/s".to_owned(),
                    groups: vec!["one burst worker, one viewer".to_owned()],
                    series: event_series(&|c| vec![c.events_per_second()]),
                }
                .render(),
            ),
            (
                "events-latency.svg",
                BarChart {
                    title: "Event stream: input-to-output latency".to_owned(),
                    y_label: "ms".to_owned(),
                    groups: vec!["p50".to_owned(), "p99".to_owned()],
                    series: event_series(&|c| vec![c.p50(), c.p99()]),
                }
                .render(),
            ),
            (
                "fanout.svg",
                LineChart {
                    title: "Fan-out: events delivered per second, all viewers".to_owned(),
                    x_label: "viewers (log scale)".to_owned(),
                    y_label: "deliveries/s".to_owned(),
                    xs: self.plan.fanout_viewers.iter().map(|v| *v as f64).collect(),
                    series: fanout_series(crate::fanout::FanoutCell::rate),
                }
                .render(),
            ),
            (
                "fanout-memory.svg",
                BarChart {
                    title: "Fan-out: resident memory per idle viewer".to_owned(),
                    y_label: "KiB per viewer".to_owned(),
                    groups: self
                        .plan
                        .fanout_viewers
                        .iter()
                        .map(|v| format!("{v} viewers"))
                        .collect(),
                    series: fanout_series(crate::fanout::FanoutCell::kib_per_viewer),
                }
                .render(),
            ),
        ]
    }
}

/// How the benchmark is set up, for the report.
const SETUP: &str = "Everything runs on loopback on this one machine: a remote \
`switchyard runtime` (in memory, echo and a `burst` process profile), a \
`switchyard serve` backend with that runtime as a remote and an embedded runtime, and \
nginx (Debian's package, `worker_processes auto`, an `upstream` with `keepalive 64`, \
HTTP/1.1 upstream connections, adding the runtime's bearer token) in front of the \
runtime. Targets: **direct** = the runtime's `/v1` API with the token; **nginx** = the \
same through nginx; **backend→remote** = the backend's `/api/runtimes/remote/...`, which \
calls the runtime over its pooled HTTP client; **backend→embedded** = \
`/api/runtimes/local/...`, served in-process; **backend→embedded, auth** = the same on \
a second backend with client authentication on, every request carrying a bearer token \
(REST only). The load generators (wrk, and the \
benchmark's own WebSocket clients) run on the same CPUs as the servers, so every \
figure is a whole-machine figure: a hop that costs CPU lowers throughput for \
everything else. Section 5 adds a second remote runtime that serves HTTPS, as \
described there.\n";

/// Why more than one upstream may be seen.
const WHY_UPSTREAMS: &str = "The hub keeps one channel, and so one runtime subscription, per \
watched runtime + worker; more than one means a second channel was opened for the same \
worker (a race between joining and the lingering channel's removal) or an upstream \
reconnected while the count was taken. The fan-out table shows the count per round.";

/// Why deliveries may not reach every viewer.
const WHY_LINEAR: &str = "Some viewers did not receive every event: see the delivered and \
closed-early columns and the anomalies. A viewer is cut off (4408) when it falls more than \
its queue (`viewer_queue` in the backend's configuration; 65536 here) behind; on this machine the viewers share \
the CPUs with the servers, so a burst longer than the queue can outrun them.";

/// Why a viewer may cost more than 64 KiB.
const WHY_MEMORY: &str = "An idle viewer costs its WebSocket session (task, socket, read \
and write buffers) and its hub queue. tungstenite zero-fills the whole read buffer on the \
first read, so the session's `read_buffer_size` (128 KiB by default) is resident per \
connection; a few KiB is enough for a client that sends only control frames. The direct \
rows show what the runtime's own sessions cost for comparison.";
