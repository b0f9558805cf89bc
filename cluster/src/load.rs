//! [`RestLoad`]: steady REST traffic through the load balancer, bounded (it stops on
//! request, after a time limit, or after a number of calls, whichever comes first),
//! every call recorded with its latency and outcome.
//!
//! Each task cycles through what a console or script does with a worker: read its
//! detail, send it input, read the transcript's tail, list every worker; and, every
//! few rounds, a worker's whole life (create, stop, delete).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_client::{BackendClient, ClientError, WorkerRef};
use switchyard_protocol::{NewWorkerRequest, RuntimeId};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::stats::percentile;

/// One call.
#[derive(Debug, Clone)]
pub struct Call {
    /// What it was (`detail`, `input`, `transcript`, `list_all`, `create`, `stop`,
    /// `delete`).
    pub op: &'static str,
    /// The runtime it went to (`*` for the aggregate list).
    pub runtime: String,
    /// When it started, from the load's start.
    pub at: Duration,
    /// How long it took.
    pub latency: Duration,
    /// `Ok`, or the error's stable code and message.
    pub outcome: Result<(), (String, String)>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Echo workers to read and send input to; task `i` works on
    /// `workers[i % len]`.
    pub workers: Vec<WorkerRef>,
    /// Concurrent tasks.
    pub tasks: usize,
    /// Pause between two calls of a task.
    pub pause: Duration,
    /// Every this many rounds, a task creates, stops and deletes a worker (0:
    /// never).
    pub lifecycle_every: usize,
    /// Whether rounds include `GET /api/workers`.
    pub list_all: bool,
    /// Upper bound on the calls of one task.
    pub max_calls: usize,
    /// Upper bound on the load's duration.
    pub limit: Duration,
}

/// A running load.
#[derive(Debug)]
pub struct RestLoad {
    started: Instant,
    stop: watch::Sender<bool>,
    calls: Arc<Mutex<Vec<Call>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl RestLoad {
    /// Starts the plan's tasks with `client`.
    pub fn start(client: BackendClient, plan: LoadPlan) -> Self {
        assert!(!plan.workers.is_empty(), "a load needs workers");
        let (stop, stopped) = watch::channel(false);
        let calls = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let tasks = (0..plan.tasks)
            .map(|index| {
                let task = Task {
                    client: client.clone(),
                    worker: plan.workers[index % plan.workers.len()].clone(),
                    plan: plan.clone(),
                    calls: calls.clone(),
                    started,
                    index,
                };
                tokio::spawn(task.run(stopped.clone()))
            })
            .collect();
        Self {
            started,
            stop,
            calls,
            tasks,
        }
    }

    /// When it started: every [`Call::at`] counts from here.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the tasks (each finishes its call in flight) and returns every call.
    pub async fn stop(self) -> Vec<Call> {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.clone()
    }
}

struct Task {
    client: BackendClient,
    worker: WorkerRef,
    plan: LoadPlan,
    calls: Arc<Mutex<Vec<Call>>>,
    started: Instant,
    index: usize,
}

impl Task {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let deadline = self.started + self.plan.limit;
        let mut made = 0;
        let mut round = 0usize;
        'rounds: loop {
            round += 1;
            let lifecycle =
                self.plan.lifecycle_every > 0 && round.is_multiple_of(self.plan.lifecycle_every);
            for step in 0..5 {
                if *stopped.borrow() || made >= self.plan.max_calls || Instant::now() >= deadline {
                    break 'rounds;
                }
                match step {
                    0 => self.detail().await,
                    1 => self.input(round).await,
                    2 => self.transcript().await,
                    3 if self.plan.list_all => self.list_all().await,
                    4 if lifecycle => self.lifecycle().await,
                    _ => continue,
                }
                made += 1;
                tokio::select! {
                    () = tokio::time::sleep(self.plan.pause) => {}
                    _ = stopped.changed() => break 'rounds,
                }
            }
        }
    }

    fn record<T>(
        &self,
        op: &'static str,
        runtime: &str,
        at: Instant,
        result: &Result<T, ClientError>,
    ) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err(error) => Err((error.code().to_owned(), error.to_string())),
        };
        let call = Call {
            op,
            runtime: runtime.to_owned(),
            at: at - self.started,
            latency: at.elapsed(),
            outcome,
        };
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(call);
    }

    fn runtime(&self) -> &str {
        self.worker.runtime_id.as_str()
    }

    async fn detail(&self) {
        let at = Instant::now();
        let result = self.client.worker(&self.worker).await;
        self.record("detail", self.runtime(), at, &result);
    }

    async fn input(&self, round: usize) {
        let at = Instant::now();
        let text = format!("load {} round {round}\n", self.index);
        let result = self.client.input(&self.worker, &text).await;
        self.record("input", self.runtime(), at, &result);
    }

    async fn transcript(&self) {
        let at = Instant::now();
        let result = self.client.transcript(&self.worker, 0, Some(5)).await;
        self.record("transcript", self.runtime(), at, &result);
    }

    async fn list_all(&self) {
        let at = Instant::now();
        let result = self.client.all_workers(None).await;
        self.record("list_all", "*", at, &result);
    }

    async fn lifecycle(&self) {
        let runtime: RuntimeId = self.worker.runtime_id.clone();
        let at = Instant::now();
        let request = NewWorkerRequest {
            profile: "echo".into(),
            label: Some(format!("load-{}", self.index)),
        };
        let created = self.client.create_worker(&runtime, &request).await;
        self.record("create", runtime.as_str(), at, &created);
        let Ok(detail) = created else { return };
        let worker = WorkerRef::new(runtime.clone(), detail.worker_id);
        let at = Instant::now();
        let stopped = self.client.stop(&worker).await;
        self.record("stop", runtime.as_str(), at, &stopped);
        let at = Instant::now();
        let deleted = self.client.delete(&worker).await;
        self.record("delete", runtime.as_str(), at, &deleted);
    }
}

/// Latency figures of some calls, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// How many calls.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Latency {
    /// The figures of `calls`.
    pub fn of<'a>(calls: impl IntoIterator<Item = &'a Call>) -> Self {
        let ms: Vec<f64> = calls
            .into_iter()
            .map(|c| c.latency.as_secs_f64() * 1000.0)
            .collect();
        Self {
            count: ms.len(),
            p50: percentile(&ms, 50.0),
            p99: percentile(&ms, 99.0),
            max: ms.iter().copied().fold(0.0, f64::max),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} calls, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.count, self.p50, self.p99, self.max
        )
    }
}

/// The failed calls among `calls`.
pub fn failures(calls: &[Call]) -> Vec<&Call> {
    calls.iter().filter(|c| c.outcome.is_err()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(ms: u64, outcome: Result<(), (String, String)>) -> Call {
        Call {
            op: "detail",
            runtime: "rt0".into(),
            at: Duration::ZERO,
            latency: Duration::from_millis(ms),
            outcome,
        }
    }

    #[test]
    fn latency_and_failures() {
        let calls: Vec<Call> = (1..=100)
            .map(|ms| call(ms, Ok(())))
            .chain([call(500, Err(("runtime_timeout".into(), "m".into())))])
            .collect();
        let latency = Latency::of(&calls);
        assert_eq!(
            (latency.count, latency.p50, latency.max),
            (101, 51.0, 500.0)
        );
        assert_eq!(latency.p99, 100.0);
        assert_eq!(failures(&calls).len(), 1);
        assert!(latency.to_string().contains("p99 100.0 ms"));
        assert_eq!(Latency::of(&[]).count, 0);
    }
}
