//! Interactive commands (input, resize) from the viewers of one watched worker, in
//! one ordered, bounded lane per worker.
//!
//! Every interactive viewer of a worker submits into the same queue, synchronously,
//! as its WebSocket session reads the frame (at most [`COMMAND_LANE`] of each
//! viewer's waiting at once); one task carries the commands out one at
//! a time through the registry (policy, timeouts, views), so the runtime receives them
//! in the order the backend received them. Each command carries the caller of the
//! viewer that sent it and is carried out as that caller, so the policy decides per
//! command, not per lane. For a remote runtime each command is one
//! request over the transport's pooled keep-alive connection: no connection is set
//! up per keystroke. The outcome goes back to the viewer that sent the command.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use switchyard_protocol::{
    ClientFrame, ErrorCode, ErrorDetail, ResizeRequest, RuntimeId, WorkerId,
};
use switchyard_runtime::busy::LanePatience;
use tokio::sync::{mpsc, oneshot};

use crate::caller::Caller;
use crate::error::RegistryError;
use crate::registry::RuntimeRegistry;

/// Commands one viewer may have queued in its worker's lane before its new ones
/// are refused with `worker_busy` (a WebSocket session has at most as many in
/// flight, so it is never refused: it stops reading instead). The lane holds at
/// most this many per interactive viewer, in the order they arrived.
pub const COMMAND_LANE: usize = 64;

/// How long a refused (busy) sender should wait before retrying.
const BUSY_RETRY_MS: u64 = 50;

struct Job {
    caller: Caller,
    command: ClientFrame,
    reply: oneshot::Sender<Result<(), RegistryError>>,
    /// Its viewer's count of queued jobs, taken down as the lane takes it up.
    queued: Arc<AtomicUsize>,
}

/// One viewer's sending side of its worker's lane: the lane's queue (shared by every
/// viewer of the worker, so commands keep their arrival order across viewers) and
/// this viewer's count of commands in it. The queue itself has no bound of its own:
/// each viewer's count does ([`COMMAND_LANE`]), so it holds at most that many per
/// interactive viewer, and one viewer's paste never crowds another's out. The lane's
/// task ends once every sender is gone.
pub(crate) struct CommandLane {
    jobs: mpsc::UnboundedSender<Job>,
    queued: Arc<AtomicUsize>,
}

impl CommandLane {
    /// Starts the lane's task for one worker.
    pub(crate) fn start(
        registry: Arc<RuntimeRegistry>,
        runtime_id: RuntimeId,
        worker_id: WorkerId,
    ) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(queue, registry, runtime_id, worker_id));
        Self {
            jobs,
            queued: Arc::default(),
        }
    }

    /// The lane for another viewer: the same queue, a count of its own.
    pub(crate) fn for_viewer(&self) -> Self {
        Self {
            jobs: self.jobs.clone(),
            queued: Arc::default(),
        }
    }

    /// Queues a command of `caller` behind every command submitted before it (by any
    /// viewer). A full lane is `worker_busy` at once.
    pub(crate) fn submit(
        &self,
        caller: &Caller,
        command: ClientFrame,
    ) -> Result<CommandTicket, RegistryError> {
        let taken = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued < COMMAND_LANE).then_some(queued + 1)
            });
        if taken.is_err() {
            return Err(RegistryError::Invalid(
                ErrorDetail::new(
                    ErrorCode::WorkerBusy,
                    "too many of your commands are waiting for this worker; retry shortly",
                )
                .with_retry_after_ms(BUSY_RETRY_MS),
            ));
        }
        let (reply, outcome) = oneshot::channel();
        let job = Job {
            caller: caller.clone(),
            command,
            reply,
            queued: self.queued.clone(),
        };
        match self.jobs.send(job) {
            Ok(()) => Ok(CommandTicket(outcome)),
            Err(_) => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                Err(lane_gone())
            }
        }
    }
}

/// The wait a `worker_busy` refusal asks for, if it is one.
fn busy_wait(error: &RegistryError) -> Option<Option<std::time::Duration>> {
    let detail = error.to_detail();
    (detail.code == ErrorCode::WorkerBusy)
        .then(|| detail.retry_after_ms.map(std::time::Duration::from_millis))
}

fn lane_gone() -> RegistryError {
    RegistryError::Invalid(ErrorDetail::new(
        ErrorCode::Internal,
        "the backend stopped carrying out commands for this worker",
    ))
}

/// Resolves to how a submitted command went: `Ok` once the runtime accepted it.
#[derive(Debug)]
pub struct CommandTicket(oneshot::Receiver<Result<(), RegistryError>>);

impl Future for CommandTicket {
    type Output = Result<(), RegistryError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|outcome| outcome.unwrap_or_else(|_| Err(lane_gone())))
    }
}

/// Carries out the lane's commands one at a time, in order.
async fn run(
    mut queue: mpsc::UnboundedReceiver<Job>,
    registry: Arc<RuntimeRegistry>,
    runtime_id: RuntimeId,
    worker_id: WorkerId,
) {
    let mut patience = LanePatience::default();
    while let Some(Job {
        caller,
        command,
        reply,
        queued,
    }) = queue.recv().await
    {
        queued.fetch_sub(1, Ordering::AcqRel);
        let outcome = match command {
            // A full input queue at the runtime (a paste faster than the program
            // reads) is waited out, later commands behind it: every byte arrives,
            // in order.
            ClientFrame::Input { text } => patience
                .retry(busy_wait, || {
                    registry.input(&caller, &runtime_id, &worker_id, text.clone())
                })
                .await
                .map(drop),
            ClientFrame::Resize { cols, rows } => registry
                .resize(
                    &caller,
                    &runtime_id,
                    &worker_id,
                    ResizeRequest { cols, rows },
                )
                .await
                .map(drop),
        };
        let _ = reply.send(outcome);
    }
}
