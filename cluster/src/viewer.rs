//! [`Viewer`]: one client watching one worker's events through the load balancer,
//! the way a browser does: on any drop it reconnects (capped backoff) with the
//! cursor of the last event it got. It records everything, and [`ViewerLog::verify`]
//! checks the contract's promise against the worker's transcript: every input and
//! output after the first snapshot arrived exactly once, in order.
//!
//! It speaks WebSocket itself (tokio-tungstenite) rather than through
//! `switchyard-client`, to see the upgrade's `X-Served-By` header (which replica it
//! is on) and every frame as sent.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use switchyard_protocol::{TranscriptEntry, TranscriptItem};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::haproxy::SERVED_BY;

/// How long a connection may stay silent before the viewer gives up on it (the
/// backend pings every 20 s).
const SILENCE: Duration = Duration::from_secs(45);

/// Reconnection backoff: first delay and cap.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(800));

/// An input or output event as the viewer got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its transcript sequence.
    pub sequence: u64,
    /// `input` or `output`.
    pub kind: &'static str,
    /// Its text.
    pub text: String,
}

/// One connection of the viewer.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The replica that served it (from `X-Served-By`).
    pub served_by: String,
    /// When it opened, from the viewer's start.
    pub opened: Duration,
    /// Whether it resumed with a cursor.
    pub resumed: bool,
    /// When its first event came, from the viewer's start.
    pub first_event: Option<Duration>,
    /// Why it ended (`None` while open or when the viewer stopped it).
    pub ended: Option<String>,
    /// When it ended, from the viewer's start.
    pub ended_at: Option<Duration>,
}

/// An `upstream` frame.
#[derive(Debug, Clone)]
pub struct UpstreamChange {
    /// When, from the viewer's start.
    pub at: Duration,
    /// `lost` or `restored`.
    pub state: String,
    /// The error code of a loss.
    pub code: Option<String>,
}

/// Everything a viewer saw.
#[derive(Debug, Clone, Default)]
pub struct ViewerLog {
    /// The last transcript sequence in the first snapshot (what the viewer was
    /// shown before live events).
    pub baseline: Option<u64>,
    /// Every input and output event, in arrival order.
    pub seen: Vec<Seen>,
    /// When each of `seen` arrived, from the viewer's start.
    pub arrivals: Vec<Duration>,
    /// Every connection.
    pub connections: Vec<Connection>,
    /// Failed connection attempts: when, and why.
    pub failed_connects: Vec<(Duration, String)>,
    /// `upstream` frames.
    pub upstream: Vec<UpstreamChange>,
    /// `reset` frames (their reasons).
    pub resets: Vec<String>,
    /// Whether the worker ended while watched.
    pub worker_ended: bool,
}

/// What a viewer has got so far, for a test to wait on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The first snapshot's last transcript sequence, once it came: events after
    /// it arrive as events (earlier ones were in the snapshot).
    pub baseline: Option<u64>,
    /// Input and output events received.
    pub events: usize,
    /// The highest transcript sequence received.
    pub last_sequence: u64,
    /// Connections opened.
    pub connections: usize,
    /// The replica of the current connection, when connected.
    pub served_by: Option<String>,
    /// `upstream lost` frames received.
    pub lost: usize,
    /// `upstream restored` frames received.
    pub restored: usize,
}

/// A running viewer.
#[derive(Debug)]
pub struct Viewer {
    stop: watch::Sender<bool>,
    progress: watch::Receiver<Progress>,
    events: broadcast::Sender<Seen>,
    task: JoinHandle<ViewerLog>,
}

/// Inputs and outputs kept for [`Viewer::subscribe`] receivers that lag.
const BROADCAST: usize = 4096;

impl Viewer {
    /// Starts watching `runtime/worker` through `lb`, sending `headers` with every
    /// upgrade (credentials: a bearer token, or a session cookie and the page's
    /// `Origin`), until stopped, until the worker ends, or for at most `limit`.
    pub fn start(
        lb: SocketAddr,
        (runtime, worker): (&str, &str),
        headers: &[(String, String)],
        limit: Duration,
    ) -> Self {
        Self::start_with(lb, (runtime, worker), headers, limit, BACKOFF.0)
    }

    /// Like [`Viewer::start`], waiting `reconnect_delay` before its first attempt to
    /// reconnect after a drop (so that events pile up that it must be given on
    /// resume).
    pub fn start_with(
        lb: SocketAddr,
        (runtime, worker): (&str, &str),
        headers: &[(String, String)],
        limit: Duration,
        reconnect_delay: Duration,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let (report, progress) = watch::channel(Progress::default());
        let (events, _) = broadcast::channel(BROADCAST);
        let path = format!("/api/runtimes/{runtime}/workers/{worker}/events/ws");
        let sinks = Sinks {
            report,
            events: events.clone(),
        };
        let target = Target {
            lb,
            path,
            headers: headers.to_vec(),
        };
        let task = tokio::spawn(watch_worker(
            target,
            stopped,
            sinks,
            (limit, reconnect_delay),
        ));
        Self {
            stop,
            progress,
            events,
            task,
        }
    }

    /// Every input and output it receives from now on, as it arrives.
    pub fn subscribe(&self) -> broadcast::Receiver<Seen> {
        self.events.subscribe()
    }

    /// What it has got so far.
    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// Waits (up to `limit`) until `done` holds for its progress; panics, naming
    /// `what` and the progress so far, when it does not (a test harness).
    pub async fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Progress) -> bool,
    ) -> Progress {
        let waited = tokio::time::timeout(limit, self.progress.wait_for(|p| done(p)))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|progress| progress.clone());
        waited.unwrap_or_else(|| {
            panic!(
                "viewer: {what} did not happen within {limit:?}; progress {:?}",
                self.progress()
            )
        })
    }

    /// Stops it and returns its log.
    pub async fn stop(self) -> ViewerLog {
        let _ = self.stop.send(true);
        self.task.await.expect("the viewer task does not panic")
    }
}

/// Where a viewer connects, and what it sends with each upgrade.
struct Target {
    lb: SocketAddr,
    path: String,
    headers: Vec<(String, String)>,
}

/// Where a viewer reports what it gets.
struct Sinks {
    report: watch::Sender<Progress>,
    events: broadcast::Sender<Seen>,
}

/// How one connection ended.
enum End {
    /// Stop requested, worker ended, or out of time: the viewer is done.
    Done,
    /// Dropped: reconnect.
    Dropped(String),
}

async fn watch_worker(
    target: Target,
    mut stopped: watch::Receiver<bool>,
    sinks: Sinks,
    (limit, reconnect_delay): (Duration, Duration),
) -> ViewerLog {
    let report = &sinks.report;
    let started = Instant::now();
    let deadline = started + limit;
    let mut log = ViewerLog::default();
    let mut cursor: Option<String> = None;
    let mut backoff = BACKOFF.0;
    while !*stopped.borrow() && Instant::now() < deadline && !log.worker_ended {
        let Target { lb, path, headers } = &target;
        let url = match &cursor {
            Some(c) => format!("ws://{lb}{path}?cursor={}", encode(c)),
            None => format!("ws://{lb}{path}"),
        };
        let mut request = url.into_client_request().expect("a valid request");
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                request.headers_mut().insert(name, value);
            }
        }
        let connected = tokio::select! {
            connected = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(request)) => connected,
            _ = stopped.changed() => break,
        };
        let (mut ws, response) = match connected {
            Ok(Ok(pair)) => pair,
            failed => {
                let why = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => "no upgrade within 5 s".into(),
                };
                log.failed_connects.push((started.elapsed(), why));
                tokio::time::sleep(backoff + Duration::from_millis(fastrand::u64(0..50))).await;
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
        };
        backoff = BACKOFF.0;
        let served_by = response
            .headers()
            .get(SERVED_BY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_owned();
        log.connections.push(Connection {
            served_by: served_by.clone(),
            opened: started.elapsed(),
            resumed: cursor.is_some(),
            first_event: None,
            ended: None,
            ended_at: None,
        });
        report.send_modify(|p| {
            p.connections += 1;
            p.served_by = Some(served_by.clone());
        });
        let end = loop {
            let message = tokio::select! {
                message = tokio::time::timeout(SILENCE, ws.next()) => message,
                _ = stopped.changed() => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                    break End::Done;
                }
                () = tokio::time::sleep_until(deadline) => break End::Done,
            };
            let text = match message {
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    break End::Dropped(format!(
                        "closed with {}",
                        frame.map_or("no code".into(), |f| u16::from(f.code).to_string())
                    ));
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(error))) => break End::Dropped(error.to_string()),
                Ok(None) => break End::Dropped("connection closed".into()),
                Err(_) => break End::Dropped(format!("silent for {SILENCE:?}")),
            };
            let frame: Value = match serde_json::from_str(text.as_str()) {
                Ok(frame) => frame,
                Err(error) => break End::Dropped(format!("not JSON: {error}")),
            };
            let before = log.seen.len();
            if let Some(next) = record(&frame, &mut log, started.elapsed(), report) {
                cursor = Some(next);
            }
            for seen in &log.seen[before..] {
                let _ = sinks.events.send(seen.clone());
            }
            if log.worker_ended {
                break End::Done;
            }
        };
        if let Some(connection) = log.connections.last_mut() {
            connection.ended_at = Some(started.elapsed());
            if let End::Dropped(why) = &end {
                connection.ended = Some(why.clone());
            }
        }
        report.send_modify(|p| p.served_by = None);
        if matches!(end, End::Done) {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(reconnect_delay) => {}
            _ = stopped.changed() => break,
        }
    }
    log
}

/// Records one frame; returns its cursor when it carries one.
fn record(
    frame: &Value,
    log: &mut ViewerLog,
    at: Duration,
    report: &watch::Sender<Progress>,
) -> Option<String> {
    match frame["type"].as_str() {
        Some("event") => {
            let event = &frame["event"];
            let kind = event["kind"].as_str().unwrap_or_default();
            match kind {
                "snapshot" => {
                    let last = event["transcript"]
                        .as_array()
                        .and_then(|items| items.last())
                        .and_then(|item| item["sequence"].as_u64())
                        .unwrap_or(0);
                    if log.baseline.is_none() {
                        log.baseline = Some(last);
                        report.send_modify(|p| p.baseline = Some(last));
                    }
                    if event["worker"]["status"]
                        .as_str()
                        .is_some_and(|s| !matches!(s, "starting" | "running"))
                    {
                        log.worker_ended = true;
                    }
                }
                "input" | "output" => {
                    let sequence = event["sequence"].as_u64().unwrap_or(0);
                    log.seen.push(Seen {
                        sequence,
                        kind: if kind == "input" { "input" } else { "output" },
                        text: event["text"].as_str().unwrap_or_default().to_owned(),
                    });
                    log.arrivals.push(at);
                    if let Some(connection) = log.connections.last_mut() {
                        connection.first_event.get_or_insert(at);
                    }
                    report.send_modify(|p| {
                        p.events += 1;
                        p.last_sequence = p.last_sequence.max(sequence);
                    });
                }
                "exited" => log.worker_ended = true,
                "status"
                    if event["status"]
                        .as_str()
                        .is_some_and(|s| !matches!(s, "starting" | "running")) =>
                {
                    log.worker_ended = true;
                }
                _ => {}
            }
            frame["cursor"].as_str().map(str::to_owned)
        }
        Some("upstream") => {
            let state = frame["state"].as_str().unwrap_or_default().to_owned();
            report.send_modify(|p| match state.as_str() {
                "lost" => p.lost += 1,
                "restored" => p.restored += 1,
                _ => {}
            });
            log.upstream.push(UpstreamChange {
                at,
                state,
                code: frame["error"]["code"].as_str().map(str::to_owned),
            });
            None
        }
        Some("reset") => {
            log.resets
                .push(frame["reason"].as_str().unwrap_or("?").to_owned());
            None
        }
        _ => None,
    }
}

/// Percent-encodes what a query value may not hold as it is.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What [`ViewerLog::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Inputs and outputs received, each exactly once.
    pub events: usize,
    /// The transcript sequence after which the viewer started.
    pub from: u64,
    /// The last sequence it received.
    pub to: u64,
}

impl ViewerLog {
    /// Checks that the viewer got every input and output of `transcript` after its
    /// first snapshot, up to the last one it received, exactly once and in order,
    /// with the transcript's text, and that no `reset` happened (which would mean
    /// the backend could not resume from a cursor).
    pub fn verify(&self, transcript: &[TranscriptItem]) -> Result<Verified, String> {
        if !self.resets.is_empty() {
            return Err(format!("the viewer was reset: {:?}", self.resets));
        }
        let from = self.baseline.ok_or("the viewer never got a snapshot")?;
        let to = self.seen.last().map_or(from, |s| s.sequence);
        let expected: Vec<Seen> = transcript
            .iter()
            .filter(|item| item.sequence > from && item.sequence <= to)
            .filter_map(|item| match &item.entry {
                TranscriptEntry::Input { text } => Some(Seen {
                    sequence: item.sequence,
                    kind: "input",
                    text: text.clone(),
                }),
                TranscriptEntry::Output { text, .. } => Some(Seen {
                    sequence: item.sequence,
                    kind: "output",
                    text: text.clone(),
                }),
                TranscriptEntry::System { .. } => None,
            })
            .collect();
        if self.seen == expected {
            return Ok(Verified {
                events: self.seen.len(),
                from,
                to,
            });
        }
        let mut previous = from;
        for seen in &self.seen {
            if seen.sequence <= previous {
                return Err(format!(
                    "sequence {} came after {previous}: a duplicate or out of order",
                    seen.sequence
                ));
            }
            previous = seen.sequence;
        }
        let missing: Vec<u64> = expected
            .iter()
            .filter(|e| !self.seen.iter().any(|s| s.sequence == e.sequence))
            .map(|e| e.sequence)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{} events missing after {from} (sequences {:?}...)",
                missing.len(),
                &missing[..missing.len().min(10)]
            ));
        }
        let extra: Vec<u64> = self
            .seen
            .iter()
            .filter(|s| !expected.iter().any(|e| e.sequence == s.sequence))
            .map(|s| s.sequence)
            .collect();
        let differing = self
            .seen
            .iter()
            .filter_map(|s| {
                let e = expected.iter().find(|e| e.sequence == s.sequence)?;
                let show = |x: &Seen| {
                    let head: String = x.text.chars().take(60).collect();
                    format!(
                        "#{} {} {head:?} ({} bytes)",
                        x.sequence,
                        x.kind,
                        x.text.len()
                    )
                };
                (e != s).then(|| format!("viewer {}, transcript {}", show(s), show(e)))
            })
            .take(3)
            .collect::<Vec<_>>();
        Err(format!(
            "the viewer's events differ from the transcript's: {} of the viewer's are not \
             in it (sequences {:?}...); differing text or kind: {}",
            extra.len(),
            &extra[..extra.len().min(10)],
            if differing.is_empty() {
                "none".to_owned()
            } else {
                differing.join("; ")
            }
        ))
    }

    /// Connections that ended because they dropped (not stopped by the viewer).
    pub fn drops(&self) -> usize {
        self.connections
            .iter()
            .filter(|c| c.ended.is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_protocol::{OutputStream, SystemNote, Timestamp};

    fn item(sequence: u64, entry: TranscriptEntry) -> TranscriptItem {
        TranscriptItem {
            sequence,
            at: Timestamp("2026-01-01T00:00:00Z".into()),
            entry,
        }
    }

    fn output(text: &str) -> TranscriptEntry {
        TranscriptEntry::Output {
            stream: OutputStream::Stdout,
            text: text.into(),
        }
    }

    fn seen(sequence: u64, text: &str) -> Seen {
        Seen {
            sequence,
            kind: "output",
            text: text.into(),
        }
    }

    fn transcript() -> Vec<TranscriptItem> {
        vec![
            item(
                1,
                TranscriptEntry::System {
                    note: SystemNote::Started,
                    text: "started".into(),
                },
            ),
            item(2, output("a")),
            item(3, TranscriptEntry::Input { text: "in".into() }),
            item(4, output("b")),
            item(5, output("c")),
        ]
    }

    fn check(
        baseline: Option<u64>,
        seen: Vec<Seen>,
        resets: Vec<&str>,
        expected: Result<(u64, u64), &str>,
    ) {
        let log = ViewerLog {
            baseline,
            seen,
            resets: resets.into_iter().map(str::to_owned).collect(),
            ..ViewerLog::default()
        };
        match (log.verify(&transcript()), expected) {
            (Ok(v), Ok((from, to))) => assert_eq!((v.from, v.to), (from, to)),
            (Err(e), Err(needle)) => assert!(e.contains(needle), "{e}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn exactly_once_after_the_snapshot_is_checked_against_the_transcript() {
        let input = Seen {
            sequence: 3,
            kind: "input",
            text: "in".into(),
        };
        // Everything after the snapshot, in order: good, up to what was received.
        check(
            Some(2),
            vec![input.clone(), seen(4, "b")],
            vec![],
            Ok((2, 4)),
        );
        check(
            Some(1),
            vec![seen(2, "a"), input.clone(), seen(4, "b"), seen(5, "c")],
            vec![],
            Ok((1, 5)),
        );
        check(Some(5), vec![], vec![], Ok((5, 5)));
        // A gap, a duplicate, reordering, wrong text, a reset, no snapshot.
        check(
            Some(1),
            vec![seen(2, "a"), seen(4, "b")],
            vec![],
            Err("missing"),
        );
        check(
            Some(2),
            vec![input.clone(), input.clone(), seen(4, "b")],
            vec![],
            Err("duplicate"),
        );
        check(
            Some(2),
            vec![seen(4, "b"), input.clone()],
            vec![],
            Err("out of order"),
        );
        check(Some(3), vec![seen(4, "B")], vec![], Err("differ"));
        check(
            Some(3),
            vec![seen(4, "b")],
            vec!["cursor_expired"],
            Err("reset"),
        );
        check(None, vec![], vec![], Err("snapshot"));
    }

    #[test]
    fn cursors_are_encoded_for_the_query() {
        assert_eq!(encode("YjF8cnQ-_x"), "YjF8cnQ-_x");
        assert_eq!(encode("a=b+c/"), "a%3Db%2Bc%2F");
    }

    #[test]
    fn frames_are_recorded() {
        let (report, progress) = watch::channel(Progress::default());
        let mut log = ViewerLog::default();
        log.connections.push(Connection {
            served_by: "r1".into(),
            opened: Duration::ZERO,
            resumed: false,
            first_event: None,
            ended: None,
            ended_at: None,
        });
        let frames = [
            serde_json::json!({"type":"event","cursor":"c1","event":{"kind":"snapshot","worker":{"status":"running"},"transcript":[{"sequence":7}]}}),
            serde_json::json!({"type":"event","cursor":"c2","event":{"kind":"output","sequence":8,"stream":"stdout","text":"x"}}),
            serde_json::json!({"type":"upstream","state":"lost","error":{"code":"runtime_timeout","message":"m"}}),
            serde_json::json!({"type":"upstream","state":"restored","error":null}),
            serde_json::json!({"type":"event","cursor":"c3","event":{"kind":"status","status":"stopped","previous":"running"}}),
        ];
        let cursors: Vec<Option<String>> = frames
            .iter()
            .map(|f| record(f, &mut log, Duration::from_millis(5), &report))
            .collect();
        assert_eq!(
            cursors,
            [
                Some("c1".into()),
                Some("c2".into()),
                None,
                None,
                Some("c3".into())
            ]
        );
        assert_eq!(log.baseline, Some(7));
        assert_eq!(log.seen, [seen(8, "x")]);
        assert_eq!(log.upstream[0].code.as_deref(), Some("runtime_timeout"));
        assert!(log.worker_ended);
        let p = progress.borrow().clone();
        assert_eq!(
            (p.events, p.last_sequence, p.lost, p.restored),
            (1, 8, 1, 1)
        );
        assert_eq!(p.baseline, Some(7));
        assert_eq!(
            log.connections[0].first_event,
            Some(Duration::from_millis(5))
        );
    }
}
