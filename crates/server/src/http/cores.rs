//! [`Cores`]: one single-threaded tokio runtime per CPU, to which the accept loop
//! hands each connection it accepts, as nginx runs one worker process per CPU.
//!
//! On tokio's work-stealing runtime a relayed request crosses threads several
//! times: the connection's task is woken by whichever thread polled the I/O
//! driver, the answer from the remote runtime arrives on a connection another
//! thread opened, and an idle worker is woken to steal what another scheduled. A
//! connection served on a core stays on its thread: its socket, its timers and the
//! remote-runtime connections its requests open (each core is its own
//! [`lane`](switchyard_transport::set_thread_lane)) are all registered with that
//! core's runtime, so nothing is handed between threads on the hot path.
//!
//! Each new connection goes to the core with the fewest open connections. What a
//! request spawns runs on the core that served it, for as long as the server's
//! cores do, except what streams for long: WebSocket sessions
//! ([`super::Shutdown::spawn_session`]) and the hub's channels run on the runtime
//! the server was started on, where one worker's events can be read upstream
//! and written to its viewers on different threads.
//!
//! Invariants:
//! - a core runs until every [`Cores`] handle is dropped; it then drops the tasks
//!   still on it (after up to two seconds for blocking ones);
//! - the job queue of each core is bounded: the accept loop waits when it is full.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use switchyard_transport::deadline::{Deadlines, MAX_TICK_GAP};

use super::serve::WAKE_HORIZON;

/// A connection's future, to run on a core.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Connections accepted and not yet started that a core's queue holds.
const QUEUE: usize = 256;

/// How long a core waits for its blocking tasks when it stops.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Lanes given to core threads so far, process-wide, so that the cores of
/// different servers in one process seldom share one.
static NEXT_LANE: AtomicUsize = AtomicUsize::new(1);

/// The cores of one server. Dropping every handle stops them.
#[derive(Debug)]
pub(super) struct Cores {
    cores: Box<[Core]>,
}

#[derive(Debug)]
struct Core {
    jobs: mpsc::Sender<Job>,
    /// Connections handed to this core and not yet finished.
    open: Arc<AtomicUsize>,
}

/// The job could not be handed to any core (every core has stopped): the caller
/// runs it itself.
pub(super) struct NoCore(pub(super) Job);

impl Cores {
    /// Starts `count` cores (at least one), threads named `{name}-core-N`.
    pub(super) fn start(count: usize, name: &str) -> io::Result<Self> {
        let cores = (0..count.max(1))
            .map(|index| Core::start(&format!("{name}-core-{index}")))
            .collect::<io::Result<_>>()?;
        Ok(Self { cores })
    }

    /// Runs `connection` on the core with the fewest open connections.
    pub(super) async fn run<F>(&self, connection: F) -> Result<(), NoCore>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(core) = self
            .cores
            .iter()
            .filter(|core| !core.jobs.is_closed())
            .min_by_key(|core| core.open.load(Ordering::Relaxed))
        else {
            return Err(NoCore(Box::pin(connection)));
        };
        core.open.fetch_add(1, Ordering::Relaxed);
        let finished = Finished(core.open.clone());
        let job: Job = Box::pin(async move {
            connection.await;
            drop(finished);
        });
        core.jobs.send(job).await.map_err(|unsent| NoCore(unsent.0))
    }
}

/// Counts a connection finished when dropped (run to the end, or dropped with
/// its core).
struct Finished(Arc<AtomicUsize>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Core {
    fn start(name: &str) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (jobs, queue) = mpsc::channel(QUEUE);
        let lane = NEXT_LANE.fetch_add(1, Ordering::Relaxed);
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                switchyard_transport::set_thread_lane(lane);
                runtime.block_on(run_jobs(queue));
                runtime.shutdown_timeout(STOP_GRACE);
            })?;
        Ok(Self {
            jobs,
            open: Arc::new(AtomicUsize::new(0)),
        })
    }
}

/// A core's main task: spawns every job it is given until the queue closes, and
/// keeps the thread's coarse deadlines (`switchyard_transport::deadline`: hyper's
/// header-read timeouts and the REST client's request timeouts of the requests
/// served here), checked when the earliest is due and at least every
/// [`MAX_TICK_GAP`] (which also keeps the time driver's next wake-up near; see
/// `serve.rs`'s `keep_wakes_near`). The timer is reset only when it fires, so a
/// stream of new connections never holds the checks off.
async fn run_jobs(mut queue: mpsc::Receiver<Job>) {
    let deadlines = Deadlines::install();
    let timer = tokio::time::sleep_until(deadlines.tick().into());
    let mut timer = std::pin::pin!(timer);
    loop {
        tokio::select! {
            job = queue.recv() => match job {
                Some(job) => drop(tokio::spawn(job)),
                None => return,
            },
            () = timer.as_mut() => timer.as_mut().reset(deadlines.tick().into()),
        }
    }
}

// The checks come at least as often as the server's wake horizon asks.
const _: () = assert!(MAX_TICK_GAP.as_nanos() <= WAKE_HORIZON.as_nanos());
