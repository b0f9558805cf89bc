//! Runs wrk (Debian's package) and reads its report.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::Result;

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WrkRun {
    /// Requests per second over the run.
    pub rps: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th-percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Requests completed.
    pub requests: u64,
    /// Answers with a status outside 2xx and 3xx.
    pub non_2xx: u64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
}

impl WrkRun {
    /// Failed requests of any kind.
    pub fn errors(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }
}

/// One load to generate.
#[derive(Debug, Clone)]
pub struct Load {
    /// The URL to request.
    pub url: String,
    /// Concurrent keep-alive connections.
    pub connections: u32,
    /// How long to run (whole seconds, at least one).
    pub duration: Duration,
    /// Extra request headers (`Name: value`).
    pub headers: Vec<String>,
    /// A Lua script (for POST bodies), if any.
    pub script: Option<PathBuf>,
}

/// Runs wrk on a blocking thread.
pub async fn run_async(load: Load) -> Result<WrkRun> {
    tokio::task::spawn_blocking(move || run(&load)).await?
}

/// Runs wrk with `--latency` and parses its report.
pub fn run(load: &Load) -> Result<WrkRun> {
    // wrk needs at least one connection per thread.
    let threads = load.connections.clamp(1, 2);
    let mut command = Command::new("wrk");
    command
        .arg(format!("-t{threads}"))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("--latency");
    for header in &load.headers {
        command.arg("-H").arg(header);
    }
    if let Some(script) = &load.script {
        command.arg("-s").arg(script);
    }
    command.arg(&load.url);
    let output = command.output().map_err(|e| format!("running wrk ({e})"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk {} failed: {}{}",
            load.url,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    parse(&stdout).map_err(|e| format!("wrk {}: {e}; its output:\n{stdout}", load.url).into())
}

/// Parses wrk's `--latency` report.
pub fn parse(text: &str) -> std::result::Result<WrkRun, String> {
    let mut run = WrkRun::default();
    let (mut p50, mut p99, mut rps, mut requests) = (None, None, None, None);
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("50%"), Some(v)) => p50 = Some(duration_ms(v)?),
            (Some("99%"), Some(v)) => p99 = Some(duration_ms(v)?),
            (Some("Requests/sec:"), Some(v)) => {
                rps = Some(v.parse::<f64>().map_err(|e| format!("{v}: {e}"))?);
            }
            (Some(n), Some("requests")) => requests = n.parse::<u64>().ok(),
            _ => {}
        }
        if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            run.non_2xx = n.trim().parse().map_err(|_| format!("bad line {line:?}"))?;
        }
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            for part in rest.split(',') {
                let n = part.split_whitespace().nth(1).unwrap_or("0");
                run.socket_errors += n.parse::<u64>().map_err(|_| format!("bad line {line:?}"))?;
            }
        }
    }
    run.p50_ms = p50.ok_or("no 50% line")?;
    run.p99_ms = p99.ok_or("no 99% line")?;
    run.rps = rps.ok_or("no Requests/sec line")?;
    run.requests = requests.ok_or("no request count")?;
    Ok(run)
}

/// `123.45us`, `1.20ms`, `2.00s`, `1.00m` in milliseconds.
fn duration_ms(text: &str) -> std::result::Result<f64, String> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("no unit in {text:?}"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("bad number {text:?}"))?;
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return Err(format!("unknown unit in {text:?}")),
    };
    Ok(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 2s test @ http://127.0.0.1:8080/v1/workers
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   320.12us  100.00us   2.00ms   90.00%
    Req/Sec    25.00k     1.00k   27.00k    80.00%
  Latency Distribution
     50%  300.00us
     75%  350.00us
     90%  400.00us
     99%    1.50ms
  50012 requests in 2.00s, 10.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 12
Requests/sec:  25006.00
Transfer/sec:      5.00MB
";

    #[test]
    fn parses_a_report() {
        let run = parse(REPORT).unwrap();
        assert_eq!(run.requests, 50012);
        assert!((run.rps - 25006.0).abs() < 1e-9);
        assert!((run.p50_ms - 0.3).abs() < 1e-9);
        assert!((run.p99_ms - 1.5).abs() < 1e-9);
        assert_eq!(run.non_2xx, 12);
        assert_eq!(run.socket_errors, 3);
        assert_eq!(run.errors(), 15);
    }

    #[test]
    fn units() {
        assert!((duration_ms("2.00s").unwrap() - 2000.0).abs() < 1e-9);
        assert!((duration_ms("1.00m").unwrap() - 60_000.0).abs() < 1e-9);
        assert!(duration_ms("12").is_err());
        assert!(parse("nothing").is_err());
    }
}
