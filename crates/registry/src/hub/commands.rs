//! Interactive commands (input, resize) from the viewers of one watched worker, in
//! one ordered, bounded lane per worker.
//!
//! Every interactive viewer of a worker submits into the same queue, synchronously,
//! as its WebSocket session reads the frame; one task carries the commands out one at
//! a time through the registry (policy, timeouts, views), so the runtime receives them
//! in the order the backend received them. Each command carries the caller of the
//! viewer that sent it and is carried out as that caller, so the policy decides per
//! command, not per lane. For a remote runtime each command is one
//! request over the transport's pooled keep-alive connection: no connection is set
//! up per keystroke. The outcome goes back to the viewer that sent the command.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use switchyard_protocol::{
    ClientFrame, ErrorCode, ErrorDetail, ResizeRequest, RuntimeId, WorkerId,
};
use switchyard_runtime::busy::LanePatience;
use tokio::sync::{mpsc, oneshot};

use crate::caller::Caller;
use crate::error::RegistryError;
use crate::registry::RuntimeRegistry;

/// Commands queued per watched worker before new ones are refused with `worker_busy`.
pub const COMMAND_LANE: usize = 256;

/// How long a refused (busy) sender should wait before retrying.
const BUSY_RETRY_MS: u64 = 50;

struct Job {
    caller: Caller,
    command: ClientFrame,
    reply: oneshot::Sender<Result<(), RegistryError>>,
}

/// The sending side of one worker's lane. Cheap to clone; the lane's task ends once
/// every clone is gone.
#[derive(Clone)]
pub(crate) struct CommandLane {
    jobs: mpsc::Sender<Job>,
}

impl CommandLane {
    /// Starts the lane's task for one worker.
    pub(crate) fn start(
        registry: Arc<RuntimeRegistry>,
        runtime_id: RuntimeId,
        worker_id: WorkerId,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(COMMAND_LANE);
        tokio::spawn(run(queue, registry, runtime_id, worker_id));
        Self { jobs }
    }

    /// Queues a command of `caller` behind every command submitted before it (by any
    /// viewer). A full lane is `worker_busy` at once.
    pub(crate) fn submit(
        &self,
        caller: &Caller,
        command: ClientFrame,
    ) -> Result<CommandTicket, RegistryError> {
        let (reply, outcome) = oneshot::channel();
        let job = Job {
            caller: caller.clone(),
            command,
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => Ok(CommandTicket(outcome)),
            Err(mpsc::error::TrySendError::Full(_)) => Err(RegistryError::Invalid(
                ErrorDetail::new(
                    ErrorCode::WorkerBusy,
                    "too many commands are waiting for this worker; retry shortly",
                )
                .with_retry_after_ms(BUSY_RETRY_MS),
            )),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(lane_gone()),
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
    mut queue: mpsc::Receiver<Job>,
    registry: Arc<RuntimeRegistry>,
    runtime_id: RuntimeId,
    worker_id: WorkerId,
) {
    let mut patience = LanePatience::default();
    while let Some(Job {
        caller,
        command,
        reply,
    }) = queue.recv().await
    {
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
