//! `GET /api/runtimes/{rt}/workers/{w}/events/ws`: a worker's events through the
//! observation hub, every refusal answered as plain HTTP before the upgrade. The
//! `Origin` check and authentication (cookie or bearer) happen before routing
//! (`routes.rs`); the policy's `Observe` check in the hub.

use hyper::body::Incoming;
use switchyard_protocol::{OutgoingFrame, RuntimeId, WorkerId};
use switchyard_registry::{Caller, ObservationHub, Viewer};
use switchyard_runtime::StreamEnd;

use crate::http::ws::{
    FrameSource, SessionSettings, is_upgrade_request, run_session, upgrade as ws_upgrade,
};
use crate::http::{ApiError, RequestContext, Response};

/// Validates, subscribes through the hub, then upgrades.
pub(super) async fn upgrade(
    hub: &ObservationHub,
    caller: &Caller,
    (runtime_id, worker_id): (&RuntimeId, &WorkerId),
    cursor: Option<&str>,
    request: http::Request<Incoming>,
    ctx: &RequestContext,
    settings: SessionSettings,
) -> Result<Response, ApiError> {
    if !is_upgrade_request(request.headers()) {
        return ws_upgrade(request, &ctx.shutdown, |_| async {});
    }
    let viewer = hub.watch(caller, runtime_id, worker_id, cursor).await?;
    let shutdown = ctx.shutdown.clone();
    ws_upgrade(request, &ctx.shutdown, move |ws| {
        run_session(ws, ViewerFrames(viewer), settings, shutdown)
    })
}

struct ViewerFrames(Viewer);

impl FrameSource for ViewerFrames {
    async fn next_frame(&mut self) -> Result<OutgoingFrame, StreamEnd> {
        self.0.next_frame().await
    }

    async fn ended(&self) -> StreamEnd {
        self.0.ended().await
    }
}
