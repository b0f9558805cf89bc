//! How much of everything a run measures: the full benchmark or `--quick`.

use std::time::Duration;

/// Sizes and durations of every scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `--quick`: every scenario, briefly, once.
    pub quick: bool,
    /// Repetitions of every figure (the tables show median and range).
    pub runs: usize,
    /// Length of one wrk run for REST.
    pub rest_duration: Duration,
    /// Concurrent keep-alive connections for REST.
    pub rest_connections: Vec<u32>,
    /// Turns per route and round of the one-connection paired figure
    /// ([`crate::paired`]): one request to every target per turn.
    pub paired_turns: usize,
    /// Lines the `burst` worker prints for the event-rate figure.
    pub burst_lines: u64,
    /// Bursts per target per round (the rate is their total events over total time).
    pub bursts_per_round: usize,
    /// Lines the `long-burst` worker prints: a probe past the viewer queue.
    pub long_burst_lines: u64,
    /// Sequential inputs timed for the input-to-output latency figure.
    pub latency_inputs: usize,
    /// Viewer counts for fan-out.
    pub fanout_viewers: Vec<usize>,
    /// Inputs sent to the watched worker during fan-out (each gives two events).
    pub fanout_inputs: usize,
    /// Workers on the runtime for the scale figure.
    pub scale_workers: usize,
    /// Length of one wrk run for the scale figure.
    pub scale_duration: Duration,
    /// Concurrent connections for the scale figure.
    pub scale_connections: Vec<u32>,
    /// Requests timed by the benchmark's own client for "every page" listings.
    pub scale_sequential: usize,
    /// Keystrokes timed per series for the keystroke-latency figure.
    pub keystrokes: usize,
    /// Whether to profile the backend with perf (when installed).
    pub profile: bool,
}

impl Plan {
    /// The full benchmark: three runs of everything.
    pub fn full() -> Self {
        Self {
            quick: false,
            runs: 3,
            rest_duration: Duration::from_secs(2),
            rest_connections: vec![1, 16, 64],
            paired_turns: 2000,
            burst_lines: 1_000_000,
            bursts_per_round: 5,
            long_burst_lines: 5_000_000,
            latency_inputs: 300,
            fanout_viewers: vec![1, 100, 1000],
            fanout_inputs: 300,
            scale_workers: 10_000,
            scale_duration: Duration::from_secs(3),
            scale_connections: vec![1, 16],
            scale_sequential: 20,
            keystrokes: 500,
            profile: true,
        }
    }

    /// Every scenario once, briefly, with small counts: keeps the code from rotting,
    /// judges no speed.
    pub fn quick() -> Self {
        Self {
            quick: true,
            runs: 1,
            rest_duration: Duration::from_secs(1),
            rest_connections: vec![1, 16, 64],
            paired_turns: 100,
            burst_lines: 50_000,
            bursts_per_round: 1,
            long_burst_lines: 200_000,
            latency_inputs: 30,
            fanout_viewers: vec![1, 10, 100],
            fanout_inputs: 50,
            scale_workers: 1_000,
            scale_duration: Duration::from_secs(1),
            scale_connections: vec![1, 16],
            scale_sequential: 3,
            keystrokes: 30,
            profile: false,
        }
    }
}
