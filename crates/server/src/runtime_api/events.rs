//! `GET /v1/workers/{id}/events/ws`: a runtime subscription streamed over a WebSocket.

use hyper::body::Incoming;
use switchyard_protocol::{OutgoingFrame, WorkerId};
use switchyard_runtime::{Runtime, StreamEnd, Subscription};

use crate::http::ws::{FrameSource, SessionSettings, run_session, upgrade as ws_upgrade};
use crate::http::{ApiError, RequestContext, Response};

/// Subscribes first (so unknown workers and bad cursors are plain HTTP errors), then
/// upgrades and streams.
pub(super) fn upgrade(
    runtime: &Runtime,
    worker_id: &WorkerId,
    cursor: Option<&str>,
    snapshot_after_replay: bool,
    request: http::Request<Incoming>,
    ctx: &RequestContext,
    settings: SessionSettings,
) -> Result<Response, ApiError> {
    if !crate::http::ws::is_upgrade_request(request.headers()) {
        return ws_upgrade(request, &ctx.shutdown, |_| async {});
    }
    let subscription = if snapshot_after_replay {
        runtime.subscribe_with_snapshot(worker_id, cursor)?
    } else {
        runtime.subscribe(worker_id, cursor)?
    };
    let shutdown = ctx.shutdown.clone();
    ws_upgrade(request, &ctx.shutdown, move |ws| {
        run_session(ws, SubscriptionFrames(subscription), settings, shutdown)
    })
}

struct SubscriptionFrames(Subscription);

impl FrameSource for SubscriptionFrames {
    async fn next_frame(&mut self) -> Result<OutgoingFrame, StreamEnd> {
        let item = self.0.next().await?;
        Ok(self.0.frame(&item).into())
    }

    async fn ended(&self) -> StreamEnd {
        self.0.ended().await
    }
}
