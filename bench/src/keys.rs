//! Scenario 6, keystroke latency: one byte typed into a terminal worker (`cat` on a
//! pty, so the terminal itself echoes it), timed until its echo comes back, one
//! keystroke at a time. Three paths, side by side:
//!
//! - **direct**: an interactive event WebSocket to the runtime; the byte goes in as an
//!   `input` frame and the echo comes out on the same socket;
//! - **backend**: the same through the backend (input through its per-worker command
//!   lane and its pooled REST client, output through the hub);
//! - **REST input**: `POST .../input` to the backend on a keep-alive connection, the
//!   echo read from a watch-only event WebSocket of the backend.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Result;
use crate::api::{Endpoint, Http, Target};
use crate::events::LatencyRun;
use crate::plan::Plan;
use crate::report::Check;
use crate::rest::Targets;
use crate::stats::{Summary, percentile};

/// Longest wait for one echo.
const ECHO_TIMEOUT: Duration = Duration::from_secs(30);
/// Keystrokes sent before timing starts (connections and caches warm up).
const WARM_UP: usize = 10;
/// The target: backend p99 at most this much over direct p99.
pub const TARGET_OVERHEAD_MS: f64 = 0.5;

/// How a keystroke travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Interactive WebSocket to the runtime.
    Direct,
    /// Interactive WebSocket to the backend.
    Backend,
    /// REST input to the backend, output on its event WebSocket.
    RestInput,
}

impl Way {
    /// All three, in table order.
    pub const ALL: [Way; 3] = [Way::Direct, Way::Backend, Way::RestInput];

    /// The name in the report.
    pub fn label(self) -> &'static str {
        match self {
            Way::Direct => "direct (interactive WS to the runtime)",
            Way::Backend => "backend (interactive WS to the backend)",
            Way::RestInput => "backend, REST input + WS output",
        }
    }
}

/// Every run of one way.
#[derive(Debug, Clone)]
pub struct KeyCell {
    /// The way.
    pub way: Way,
    /// One latency series per round.
    pub runs: Vec<LatencyRun>,
}

impl KeyCell {
    /// p50 over rounds, ms.
    pub fn p50(&self) -> Summary {
        Summary::of(&self.runs.iter().map(|r| r.p50_ms).collect::<Vec<_>>())
    }

    /// p99 over rounds, ms.
    pub fn p99(&self) -> Summary {
        Summary::of(&self.runs.iter().map(|r| r.p99_ms).collect::<Vec<_>>())
    }
}

/// Everything scenario 6 measured.
#[derive(Debug, Clone, Default)]
pub struct KeyResults {
    /// One cell per way.
    pub cells: Vec<KeyCell>,
    /// Keystrokes timed per series.
    pub keystrokes: usize,
}

impl KeyResults {
    fn get(&self, way: Way) -> Option<&KeyCell> {
        self.cells.iter().find(|c| c.way == way)
    }

    /// The target, judged on the medians.
    pub fn check(&self) -> Check {
        let p99 = |way| self.get(way).map_or(f64::NAN, |c| c.p99().median);
        let (direct, backend) = (p99(Way::Direct), p99(Way::Backend));
        let met = backend <= direct + TARGET_OVERHEAD_MS;
        Check {
            name: "Keystroke latency: backend p99 within direct p99 + 0.5 ms",
            met,
            standing: format!(
                "p99 {backend:.3} ms through the backend, {direct:.3} ms direct (+{:.3} ms)",
                backend - direct
            ),
            why: "the backend adds a REST hop for the input and a WebSocket relay for \
                  the echo; on 2 shared CPUs with the load generator on them, scheduling \
                  delays of the four processes on the path dominate the tail. See the \
                  table's p50 for the cost without scheduling noise."
                .into(),
        }
    }

    /// The report's section.
    pub fn markdown(&self, md: &mut String) {
        let _ = writeln!(md, "## 6. Keystroke latency\n");
        let _ = writeln!(
            md,
            "One byte typed into a `cat` on a pseudo-terminal (the terminal echoes it), \
             timed from the send until its echo arrives, one keystroke at a time, {} \
             keystrokes per series after {WARM_UP} unmeasured ones. The worker runs on \
             the remote runtime.\n",
            self.keystrokes
        );
        let _ = writeln!(md, "| path | p50 ms | p99 ms |\n|---|---|---|");
        for cell in &self.cells {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                cell.way.label(),
                cell.p50().show(3),
                cell.p99().show(3)
            );
        }
        let _ = writeln!(md);
    }
}

/// Runs every way `plan.runs` times on the remote runtime, directly and through the
/// backend.
pub async fn run(
    plan: &Plan,
    http: &Http,
    targets: &Targets,
    anomalies: &mut Vec<String>,
) -> Result<KeyResults> {
    let mut results = KeyResults {
        cells: Way::ALL
            .iter()
            .map(|&way| KeyCell {
                way,
                runs: Vec::new(),
            })
            .collect(),
        keystrokes: plan.keystrokes,
    };
    let direct = targets.get(Target::Direct).clone();
    let backend = targets.get(Target::Backend).clone();
    for round in 0..plan.runs {
        for (i, way) in Way::ALL.into_iter().enumerate() {
            let ep = if way == Way::Direct {
                &direct
            } else {
                &backend
            };
            let worker = http.create_worker(ep, "keys").await?;
            let series = match series(http, ep, &worker, way, plan.keystrokes).await {
                Ok(series) => series,
                Err(error) => {
                    anomalies.push(format!("keystrokes via {}: {error}", way.label()));
                    LatencyRun::default()
                }
            };
            eprintln!(
                "bench: keys round {} {:<40} p50 {:.3} ms  p99 {:.3} ms",
                round + 1,
                way.label(),
                series.p50_ms,
                series.p99_ms
            );
            results.cells[i].runs.push(series);
            http.remove_worker(ep, &worker).await?;
        }
    }
    Ok(results)
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Times `keystrokes` keystrokes (after the warm-up) on a fresh worker.
async fn series(
    http: &Http,
    ep: &Endpoint,
    worker: &str,
    way: Way,
    keystrokes: usize,
) -> Result<LatencyRun> {
    let interactive = way != Way::RestInput;
    let mut ws = connect(ep, worker, interactive).await?;
    let mut samples = Vec::with_capacity(keystrokes);
    for i in 0..WARM_UP + keystrokes {
        // Letters in turn, so that an echo is never mistaken for the previous one's.
        let key = char::from(b'a' + (i % 26) as u8).to_string();
        let started = Instant::now();
        if interactive {
            let frame = serde_json::json!({"type": "input", "text": key}).to_string();
            ws.send(Message::text(frame)).await?;
        } else {
            http.input(ep, worker, &key).await?;
        }
        wait_echo(&mut ws, &key).await?;
        if i >= WARM_UP {
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let _ = ws.close(None).await;
    Ok(LatencyRun {
        p50_ms: percentile(&samples, 50.0),
        p99_ms: percentile(&samples, 99.0),
    })
}

async fn connect(ep: &Endpoint, worker: &str, interactive: bool) -> Result<Ws> {
    let mut url = ep.ws_url(worker);
    if interactive {
        url.push_str("?interactive=true");
    }
    let mut request = url.into_client_request()?;
    if let Some(auth) = ep.authorization() {
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, auth.parse()?);
    }
    let (ws, _) = tokio::time::timeout(ECHO_TIMEOUT, tokio_tungstenite::connect_async(request))
        .await
        .map_err(|_| "WebSocket connect timed out")??;
    if let Ok(stream) = ws.get_ref_tcp() {
        let _ = stream.set_nodelay(true);
    }
    let mut ws = ws;
    // Type only once the snapshot is in: what happens before it is in the snapshot
    // (through the backend the upstream may still be connecting), not in an event.
    let deadline = tokio::time::Instant::now() + ECHO_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| "no snapshot in 30 s")?
        {
            Some(Ok(Message::Text(text))) if text.as_str().contains("\"kind\":\"snapshot\"") => {
                return Ok(ws);
            }
            Some(Ok(Message::Text(text))) => {
                return Err(format!("the first frame is not a snapshot: {}", text.as_str()).into());
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => return Err("closed before the snapshot".into()),
        }
    }
}

/// Access to the TCP stream under a client WebSocket.
trait TcpOf {
    fn get_ref_tcp(&self) -> Result<&TcpStream>;
}

impl TcpOf for Ws {
    fn get_ref_tcp(&self) -> Result<&TcpStream> {
        match self.get_ref() {
            MaybeTlsStream::Plain(stream) => Ok(stream),
            _ => Err("not a plain TCP stream".into()),
        }
    }
}

/// Reads frames until an `output` event holds `key`; an `error` frame fails.
async fn wait_echo(ws: &mut Ws, key: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + ECHO_TIMEOUT;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| format!("no echo of {key:?} in 30 s"))?;
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(close))) => {
                return Err(format!("closed while waiting for an echo: {close:?}").into());
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => return Err("closed while waiting for an echo".into()),
        };
        let frame: serde_json::Value = serde_json::from_str(text.as_str())?;
        if frame["type"] == "error" {
            return Err(format!("refused: {}", frame["error"]).into());
        }
        if frame["event"]["kind"] == "output"
            && frame["event"]["text"]
                .as_str()
                .is_some_and(|t| t.contains(key))
        {
            return Ok(());
        }
    }
}
