//! `GET /api/runtimes/{rt}/workers/{w}/events/ws`: a worker's events through the
//! observation hub, every refusal answered as plain HTTP before the upgrade. The
//! `Origin` check and authentication (cookie or bearer) happen before routing
//! (`routes.rs`); the policy's `Observe` check in the hub. With `?interactive=true`
//! the client may also send input and resize frames, which go to the worker's
//! command lane in the hub: the policy must allow the caller input before the
//! upgrade, each frame is carried out as that caller (policy asked again), and each
//! writes its audit line once its outcome is known.
//!
//! The session keeps the caller it was opened with; when a reload removes or changes
//! that caller's token (or turns auth on), or the session cookie it was opened with
//! is signed out, expires or loses its key to a reload, it is closed with 1001,
//! like a shutdown: the client reconnects with its cursor and meets the new
//! configuration (or a 401).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use http::HeaderValue;
use hyper::body::Incoming;
use switchyard_protocol::{ClientFrame, ErrorDetail, OutgoingFrame, RuntimeId, WorkerId};
use switchyard_registry::{Caller, ObservationHub, Viewer};
use switchyard_runtime::StreamEnd;

use super::audit::SessionAudit;
use super::browser::AllowedOrigins;
use crate::auth::{Authenticator, Session};
use crate::http::ws::{
    CommandOutcome, FrameSource, SessionSettings, check_handshake, log_if_too_slow, run_session,
    upgrade as ws_upgrade, upgrade_with_limit,
};
use crate::http::{ApiError, RequestContext, Response};

/// How the client wants to watch.
#[derive(Debug, Clone, Copy)]
pub(super) struct Watch<'a> {
    /// Resume after this backend cursor.
    pub cursor: Option<&'a str>,
    /// The client may send input and resize frames.
    pub interactive: bool,
    /// Largest client message of an interactive session.
    pub max_message: usize,
}

/// Validates (the handshake first), subscribes through the hub, then upgrades.
pub(super) async fn upgrade(
    hub: &ObservationHub,
    (auth, caller, origins): (&Arc<Authenticator>, &Caller, &AllowedOrigins),
    (runtime_id, worker_id): (&RuntimeId, &WorkerId),
    watch: Watch<'_>,
    request: http::Request<Incoming>,
    ctx: &RequestContext,
    settings: SessionSettings,
) -> Result<Response, ApiError> {
    check_handshake(&request)?;
    // The session cookie the route let the request in with, if a cookie did it (a
    // bearer token decides alone). The stream's watcher looks before it waits, so a
    // sign-out since the route's check is seen.
    let cookie = request.extensions().get::<Session>().cloned();
    let viewer = if watch.interactive {
        hub.watch_interactive(caller, runtime_id, worker_id, watch.cursor)
            .await?
    } else {
        hub.watch(caller, runtime_id, worker_id, watch.cursor)
            .await?
    };
    let audit = watch.interactive.then(|| {
        SessionAudit::new(
            caller,
            (runtime_id, worker_id),
            ctx.request_id.as_str(),
            hub.registry().clone(),
        )
    });
    // A page of an allowed origin (not the backend's own) may keep the session only
    // while its origin stays allowed.
    let page = request
        .headers()
        .get(http::header::ORIGIN)
        .filter(|origin| origins.allows(origin))
        .map(|origin| (origins.clone(), origin.clone()));
    let shutdown = ctx.shutdown.clone();
    let frames = ViewerFrames {
        viewer,
        audit,
        admission: Admission::new(auth, caller, cookie, page),
    };
    let names = (
        runtime_id.to_string(),
        worker_id.to_string(),
        ctx.request_id.to_string(),
    );
    let session = move |ws| async move {
        let closed = run_session(ws, frames, settings, shutdown).await;
        let (runtime_id, worker_id, request_id) = names;
        log_if_too_slow(closed, Some(&runtime_id), &worker_id, &request_id);
    };
    if watch.interactive {
        upgrade_with_limit(request, &ctx.shutdown, watch.max_message, session)
    } else {
        ws_upgrade(request, &ctx.shutdown, session)
    }
}

struct ViewerFrames {
    viewer: Viewer,
    /// An interactive session's audit lines.
    audit: Option<SessionAudit>,
    admission: Admission,
}

/// Who opened the session, and from which allowed origin's page, checked again after
/// every reload (and once at the start, in case a reload came between the request's
/// checks and the session) by a small task of its own, which cancels `revoked` when
/// a reload revokes the caller or takes the origin out of `allowed_origins`, or when
/// the session cookie it was opened with is signed out or expires. The session's
/// frames only poll that token, which no other session shares.
struct Admission {
    revoked: CancellationToken,
    watcher: tokio::task::JoinHandle<()>,
}

impl Admission {
    fn new(
        auth: &Arc<Authenticator>,
        caller: &Caller,
        cookie: Option<Session>,
        page: Option<(AllowedOrigins, HeaderValue)>,
    ) -> Self {
        let revoked = CancellationToken::new();
        let watcher = tokio::spawn({
            let (auth, caller, revoked) = (auth.clone(), caller.clone(), revoked.clone());
            async move {
                let origin_removed = async {
                    match &page {
                        Some((origins, origin)) => origins.removed(origin).await,
                        None => std::future::pending().await,
                    }
                };
                let signed_out = async {
                    match &cookie {
                        Some(session) => auth.signed_out(session).await,
                        None => std::future::pending().await,
                    }
                };
                let expired = async {
                    match &cookie {
                        Some(session) => auth.expired(session).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = auth.revoked(&caller) => tracing::info!(
                        identity = caller.name(),
                        "closing an event stream with 1001: a reload removed or changed the token it was opened with"
                    ),
                    () = origin_removed => tracing::info!(
                        identity = caller.name(),
                        "closing an event stream with 1001: a reload took its page's origin out of allowed_origins"
                    ),
                    () = signed_out => tracing::info!(
                        identity = caller.name(),
                        "closing an event stream with 1001: the session cookie it was opened with was signed out"
                    ),
                    () = expired => tracing::info!(
                        identity = caller.name(),
                        "closing an event stream with 1001: the session cookie it was opened with has expired (or a reload changed the session key)"
                    ),
                }
                revoked.cancel();
            }
        });
        Self { revoked, watcher }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl FrameSource for ViewerFrames {
    async fn next_frame(&mut self) -> Result<OutgoingFrame, StreamEnd> {
        tokio::select! {
            biased;
            frame = self.viewer.next_frame() => frame,
            () = self.admission.revoked.cancelled() => Err(StreamEnd::AccessEnded),
        }
    }

    async fn ended(&self) -> StreamEnd {
        tokio::select! {
            biased;
            end = self.viewer.ended() => end,
            () = self.admission.revoked.cancelled() => StreamEnd::AccessEnded,
        }
    }

    fn is_interactive(&self) -> bool {
        self.viewer.is_interactive()
    }

    fn submit(&mut self, command: ClientFrame) -> Result<CommandOutcome, ErrorDetail> {
        let action = match &command {
            ClientFrame::Input { .. } => "input",
            ClientFrame::Resize { .. } => "resize",
        };
        let audit = self.audit.clone();
        let write = move |refusal: Option<&ErrorDetail>| {
            if let Some(audit) = &audit {
                audit.command(action, refusal);
            }
        };
        match self.viewer.submit(command) {
            Ok(ticket) => Ok(Box::pin(async move {
                let refusal = ticket.await.err().map(|e| e.to_detail());
                write(refusal.as_ref());
                refusal
            })),
            Err(error) => {
                let refusal = error.to_detail();
                write(Some(&refusal));
                Err(refusal)
            }
        }
    }
}
