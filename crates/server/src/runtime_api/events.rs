//! `GET /v1/workers/{id}/events/ws`: a runtime subscription streamed over a WebSocket;
//! with `?interactive=true` the client may also send input and resize frames.
//!
//! A session keeps the token it was opened with; when a reload stops accepting it
//! (the token removed, or auth turned on for a session opened without one), the
//! session is closed with 1001 (`access_ended`): a rotated-out token, leaked or
//! not, keeps no stream open. The backend, given the new token first, reconnects
//! with it from its last cursor.

use hyper::body::Incoming;
use switchyard_protocol::{
    ClientFrame, ErrorCode, ErrorDetail, OutgoingFrame, ResizeRequest, WorkerId,
};
use switchyard_runtime::busy::LanePatience;
use switchyard_runtime::{Runtime, RuntimeError, StreamEnd, Subscription};
use switchyard_transport::SecretToken;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::http::auth::BearerTokens;
use crate::http::ws::{
    CommandOutcome, FrameSource, SessionSettings, log_if_too_slow, run_session,
    upgrade as ws_upgrade, upgrade_with_limit,
};
use crate::http::{ApiError, RequestContext, Response};

/// Commands of one interactive session waiting to be carried out.
const SESSION_COMMANDS: usize = 64;

/// How a runtime event stream is opened.
#[derive(Debug, Clone)]
pub(super) struct Opening<'a> {
    /// Resume after this cursor.
    pub cursor: Option<&'a str>,
    /// A resumed stream also gets a fresh snapshot after the replay.
    pub snapshot_after_replay: bool,
    /// The client may send input and resize frames.
    pub interactive: bool,
    /// What the request was let in with.
    pub access: Access,
}

/// The tokens a runtime accepts and the one a request was let in with (`None`
/// when auth was off).
#[derive(Debug, Clone)]
pub(super) struct Access {
    pub tokens: BearerTokens,
    pub opened_with: Option<SecretToken>,
}

/// Cancels `ended` once the session's token is no longer accepted, from a small
/// task of its own (stopped with the session), so that the session's frames only
/// poll a token no other session shares.
struct Revocation {
    ended: CancellationToken,
    watcher: tokio::task::JoinHandle<()>,
}

impl Revocation {
    fn watch(access: Access) -> Self {
        let ended = CancellationToken::new();
        let watcher = tokio::spawn({
            let ended = ended.clone();
            async move {
                access.tokens.revoked(access.opened_with.as_ref()).await;
                tracing::info!(
                    "closing an event stream with 1001: a reload stopped accepting the token it was opened with"
                );
                ended.cancel();
            }
        });
        Self { ended, watcher }
    }
}

impl Drop for Revocation {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// Checks the handshake, subscribes (so unknown workers and bad cursors are plain
/// HTTP errors), then upgrades and streams.
pub(super) fn upgrade(
    runtime: &Runtime,
    worker_id: &WorkerId,
    opening: Opening<'_>,
    request: http::Request<Incoming>,
    ctx: &RequestContext,
    settings: SessionSettings,
    max_message: usize,
) -> Result<Response, ApiError> {
    crate::http::ws::check_handshake(&request)?;
    let subscription = if opening.snapshot_after_replay {
        runtime.subscribe_with_snapshot(worker_id, opening.cursor)?
    } else {
        runtime.subscribe(worker_id, opening.cursor)?
    };
    let shutdown = ctx.shutdown.clone();
    let runtime = runtime.clone();
    let worker_id = worker_id.clone();
    let interactive = opening.interactive;
    let access = opening.access;
    let request_id = ctx.request_id.to_string();
    ws_upgrade_for(
        request,
        ctx,
        interactive,
        max_message,
        move |ws| async move {
            let commands = interactive.then(|| SessionCommands::start(runtime, worker_id.clone()));
            let closed = run_session(
                ws,
                SubscriptionFrames {
                    subscription,
                    commands,
                    revocation: Revocation::watch(access),
                },
                settings,
                shutdown,
            )
            .await;
            log_if_too_slow(closed, None, worker_id.as_str(), &request_id);
        },
    )
}

fn ws_upgrade_for<F, Fut>(
    request: http::Request<Incoming>,
    ctx: &RequestContext,
    interactive: bool,
    max_message: usize,
    session: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(crate::http::ws::WsStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if interactive {
        upgrade_with_limit(request, &ctx.shutdown, max_message, session)
    } else {
        ws_upgrade(request, &ctx.shutdown, session)
    }
}

struct SubscriptionFrames {
    subscription: Subscription,
    commands: Option<SessionCommands>,
    revocation: Revocation,
}

impl FrameSource for SubscriptionFrames {
    async fn next_frame(&mut self) -> Result<OutgoingFrame, StreamEnd> {
        tokio::select! {
            biased;
            frame = self.subscription.next_frame() => frame,
            () = self.revocation.ended.cancelled() => Err(StreamEnd::AccessEnded),
        }
    }

    async fn ended(&self) -> StreamEnd {
        tokio::select! {
            biased;
            end = self.subscription.ended() => end,
            () = self.revocation.ended.cancelled() => StreamEnd::AccessEnded,
        }
    }

    fn is_interactive(&self) -> bool {
        self.commands.is_some()
    }

    fn submit(&mut self, command: ClientFrame) -> Result<CommandOutcome, ErrorDetail> {
        match &self.commands {
            Some(commands) => commands.submit(command),
            None => Err(ErrorDetail::new(
                ErrorCode::InvalidRequest,
                "this event stream was not opened with interactive=true",
            )),
        }
    }
}

type Job = (ClientFrame, oneshot::Sender<Option<ErrorDetail>>);

/// One interactive session's commands, carried out one at a time, in order, by a task
/// that ends with the session.
struct SessionCommands {
    jobs: mpsc::Sender<Job>,
}

impl SessionCommands {
    fn start(runtime: Runtime, worker_id: WorkerId) -> Self {
        let (jobs, mut queue) = mpsc::channel::<Job>(SESSION_COMMANDS);
        tokio::spawn(async move {
            let mut patience = LanePatience::default();
            while let Some((command, reply)) = queue.recv().await {
                let outcome = match command {
                    // A full input queue (a paste faster than the program reads) is
                    // waited out, later commands behind it: every byte arrives, in
                    // order.
                    ClientFrame::Input { text } => patience
                        .retry(
                            |e: &RuntimeError| {
                                matches!(e, RuntimeError::WorkerBusy(_)).then_some(None)
                            },
                            || runtime.input(&worker_id, text.clone()),
                        )
                        .await
                        .map(drop),
                    ClientFrame::Resize { cols, rows } => runtime
                        .resize(&worker_id, ResizeRequest { cols, rows })
                        .await
                        .map(drop),
                };
                let _ = reply.send(outcome.err().map(|e| e.to_detail()));
            }
        });
        Self { jobs }
    }

    fn submit(&self, command: ClientFrame) -> Result<CommandOutcome, ErrorDetail> {
        let (reply, outcome) = oneshot::channel();
        self.jobs.try_send((command, reply)).map_err(|_| {
            ErrorDetail::new(
                ErrorCode::WorkerBusy,
                "too many commands are waiting on this connection; retry shortly",
            )
            .with_retry_after_ms(50)
        })?;
        Ok(Box::pin(async move {
            outcome.await.unwrap_or_else(|_| {
                Some(ErrorDetail::new(
                    ErrorCode::Internal,
                    "the command was not carried out",
                ))
            })
        }))
    }
}
