//! Scenario 2, the event stream of one worker watched by one viewer, for every
//! [`Target`]:
//!
//! - rate: a `burst` worker (`read x; exec seq 1 N`) is watched, sent one input, and
//!   the viewer counts output events and bytes until the worker has ended;
//! - latency: an echo worker is sent inputs one after another, each timed from
//!   sending the POST to receiving its output frame on the WebSocket.

use std::time::Instant;

use crate::Result;
use crate::api::{Http, Target};
use crate::plan::Plan;
use crate::rest::Targets;
use crate::stats::{Summary, percentile};
use crate::ws::{Frame, Viewer};

/// Bursts seen by one viewer each.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BurstRun {
    /// Output events received.
    pub events: u64,
    /// Output text received, bytes.
    pub bytes: u64,
    /// From sending the input to the worker's end, seconds (summed over bursts).
    pub seconds: f64,
    /// The close code, if the server closed the viewer before the worker ended.
    pub cut_off: Option<u16>,
}

impl BurstRun {
    /// Output events per second.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.seconds
    }

    /// Output megabytes (10^6) per second.
    pub fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }
}

/// One latency series: p50 and p99 of sequential input-to-output times.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencyRun {
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// Every run of one target.
#[derive(Debug, Clone)]
pub struct EventCell {
    /// The target.
    pub target: Target,
    /// One burst per round.
    pub bursts: Vec<BurstRun>,
    /// One latency series per round.
    pub latencies: Vec<LatencyRun>,
    /// One long burst per round (a probe past the backend's viewer queue).
    pub long: Vec<BurstRun>,
}

impl EventCell {
    /// Output events per second.
    pub fn events_per_second(&self) -> Summary {
        Summary::of(
            &self
                .bursts
                .iter()
                .map(BurstRun::events_per_second)
                .collect::<Vec<_>>(),
        )
    }

    /// Long bursts that ended with the viewer cut off, and how many ran.
    pub fn long_cut_off(&self) -> (usize, usize) {
        let cut = self.long.iter().filter(|b| b.cut_off.is_some()).count();
        (cut, self.long.len())
    }

    /// Output events per second of the long bursts that completed.
    pub fn long_events_per_second(&self) -> Summary {
        Summary::of(
            &self
                .long
                .iter()
                .filter(|b| b.cut_off.is_none())
                .map(BurstRun::events_per_second)
                .collect::<Vec<_>>(),
        )
    }

    /// Output MB per second.
    pub fn megabytes_per_second(&self) -> Summary {
        Summary::of(
            &self
                .bursts
                .iter()
                .map(BurstRun::megabytes_per_second)
                .collect::<Vec<_>>(),
        )
    }

    /// Output events per burst.
    pub fn events(&self) -> Summary {
        Summary::of(
            &self
                .bursts
                .iter()
                .map(|b| b.events as f64)
                .collect::<Vec<_>>(),
        )
    }

    /// Input-to-output p50, ms.
    pub fn p50(&self) -> Summary {
        Summary::of(&self.latencies.iter().map(|l| l.p50_ms).collect::<Vec<_>>())
    }

    /// Input-to-output p99, ms.
    pub fn p99(&self) -> Summary {
        Summary::of(&self.latencies.iter().map(|l| l.p99_ms).collect::<Vec<_>>())
    }
}

/// Everything scenario 2 measured.
#[derive(Debug, Clone, Default)]
pub struct EventResults {
    /// One cell per target.
    pub cells: Vec<EventCell>,
    /// Bytes the burst worker prints.
    pub burst_bytes: u64,
    /// Bytes the long-burst worker prints.
    pub long_burst_bytes: u64,
}

impl EventResults {
    /// The cell of `target`.
    pub fn get(&self, target: Target) -> Option<&EventCell> {
        self.cells.iter().find(|c| c.target == target)
    }
}

/// Bytes `seq 1 n` prints.
pub fn seq_bytes(n: u64) -> u64 {
    let mut total = 0;
    let mut start = 1;
    let mut digits = 1;
    while start <= n {
        let end = (start * 10 - 1).min(n);
        total += (end - start + 1) * (digits + 1);
        start *= 10;
        digits += 1;
    }
    total
}

/// Runs scenario 2.
pub async fn run(
    plan: &Plan,
    http: &Http,
    targets: &Targets,
    anomalies: &mut Vec<String>,
) -> Result<EventResults> {
    let mut results = EventResults {
        cells: targets
            .endpoints
            .iter()
            .map(|ep| EventCell {
                target: ep.target,
                bursts: Vec::new(),
                latencies: Vec::new(),
                long: Vec::new(),
            })
            .collect(),
        burst_bytes: seq_bytes(plan.burst_lines),
        long_burst_bytes: seq_bytes(plan.long_burst_lines),
    };
    for round in 0..plan.runs {
        for (i, ep) in targets.endpoints.iter().enumerate() {
            let mut burst = BurstRun::default();
            for _ in 0..plan.bursts_per_round {
                let one = self::burst(http, ep, "burst").await?;
                if one.bytes != results.burst_bytes || one.cut_off.is_some() {
                    anomalies.push(format!(
                        "events via {}: the viewer received {} of {} output bytes{}",
                        ep.target.label(),
                        one.bytes,
                        results.burst_bytes,
                        one.cut_off
                            .map(|c| format!(", closed with {c}"))
                            .unwrap_or_default()
                    ));
                }
                burst.events += one.events;
                burst.bytes += one.bytes;
                burst.seconds += one.seconds;
            }
            eprintln!(
                "bench: events round {} {:<22} {:>9.0} events/s  {:>7.1} MB/s  ({} events)",
                round + 1,
                ep.target.label(),
                burst.events_per_second(),
                burst.megabytes_per_second(),
                burst.events
            );
            results.cells[i].bursts.push(burst);
        }
        // The long burst outruns a viewer's queue on purpose: its cut-offs are
        // reported in their own table, not as anomalies.
        for (i, ep) in targets.endpoints.iter().enumerate() {
            let long = self::burst(http, ep, "long-burst").await?;
            eprintln!(
                "bench: events round {} {:<22} long burst: {}",
                round + 1,
                ep.target.label(),
                match long.cut_off {
                    Some(code) => format!("viewer closed with {code} after {} events", long.events),
                    None => format!("{:.0} events/s", long.events_per_second()),
                }
            );
            results.cells[i].long.push(long);
        }
        for (i, ep) in targets.endpoints.iter().enumerate() {
            let latency = latency(http, ep, plan.latency_inputs, anomalies).await?;
            eprintln!(
                "bench: events round {} {:<22} input→output p50 {:.3} ms  p99 {:.3} ms",
                round + 1,
                ep.target.label(),
                latency.p50_ms,
                latency.p99_ms
            );
            results.cells[i].latencies.push(latency);
        }
    }
    Ok(results)
}

/// Watches a fresh worker of `profile` (`burst` or `long-burst`) on `ep` with one
/// viewer, starts it, and counts its output until it ends or the viewer is closed.
pub async fn burst(http: &Http, ep: &crate::api::Endpoint, profile: &str) -> Result<BurstRun> {
    let worker = http.create_worker(ep, profile).await?;
    let mut viewer = Viewer::connect(ep, &worker).await?;
    let start = Instant::now();
    http.input(ep, &worker, "go\n").await?;
    let mut run = BurstRun::default();
    loop {
        match viewer.next().await? {
            Frame::Output(text) => {
                run.events += 1;
                run.bytes += text.len() as u64;
            }
            Frame::Ended => break,
            Frame::Closed(code) => {
                run.cut_off = Some(code.unwrap_or(0));
                break;
            }
            Frame::Input | Frame::Other => {}
        }
    }
    run.seconds = start.elapsed().as_secs_f64();
    viewer.close().await;
    // The worker may still be printing if the viewer was cut off.
    http.remove_worker(ep, &worker).await?;
    Ok(run)
}

async fn latency(
    http: &Http,
    ep: &crate::api::Endpoint,
    inputs: usize,
    anomalies: &mut Vec<String>,
) -> Result<LatencyRun> {
    let worker = http.create_worker(ep, "echo").await?;
    let mut viewer = Viewer::connect(ep, &worker).await?;
    let mut samples = Vec::with_capacity(inputs);
    'inputs: for i in 0..inputs {
        let text = format!("latency-{i}\n");
        let start = Instant::now();
        http.input(ep, &worker, &text).await?;
        loop {
            match viewer.next().await? {
                Frame::Output(out) if out == text => break,
                Frame::Closed(code) => {
                    anomalies.push(format!(
                        "latency via {}: the viewer was closed with {code:?}",
                        ep.target.label()
                    ));
                    break 'inputs;
                }
                _ => {}
            }
        }
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    viewer.close().await;
    http.remove_worker(ep, &worker).await?;
    Ok(LatencyRun {
        p50_ms: percentile(&samples, 50.0),
        p99_ms: percentile(&samples, 99.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_output_size() {
        assert_eq!(seq_bytes(9), 18);
        assert_eq!(seq_bytes(10), 21);
        assert_eq!(seq_bytes(100), 9 * 2 + 90 * 3 + 4);
    }
}
