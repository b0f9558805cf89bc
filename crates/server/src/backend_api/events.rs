//! `GET /api/runtimes/{rt}/workers/{w}/events/ws`: a worker's events through the
//! observation hub, with the `Origin` check and every refusal answered as plain HTTP
//! before the upgrade. With `?interactive=true` the client may also send input and
//! resize frames, which go to the worker's command lane in the hub (the policy must
//! allow input before the upgrade).

use http::HeaderMap;
use http::header::{HOST, ORIGIN};
use hyper::body::Incoming;
use switchyard_protocol::{
    ClientFrame, ErrorCode, ErrorDetail, OutgoingFrame, RuntimeId, WorkerId,
};
use switchyard_registry::{ObservationHub, Viewer};
use switchyard_runtime::StreamEnd;

use crate::http::ws::{
    CommandOutcome, FrameSource, SessionSettings, is_upgrade_request, run_session,
    upgrade as ws_upgrade, upgrade_with_limit,
};
use crate::http::{ApiError, RequestContext, Response};

/// Checks `Origin`: absent (not a browser), the backend's own origin, or an allowed one.
pub(super) fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let own = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(|host| host.to_ascii_lowercase());
    let is_own = own.is_some_and(|host| {
        origin == format!("http://{host}") || origin == format!("https://{host}")
    });
    if is_own || allowed.iter().any(|a| a.eq_ignore_ascii_case(&origin)) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::OriginNotAllowed,
            "this page's origin may not open the backend's WebSockets; add it to allowed_origins",
        ))
    }
}

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

/// Validates, subscribes through the hub, then upgrades.
pub(super) async fn upgrade(
    hub: &ObservationHub,
    allowed_origins: &[String],
    (runtime_id, worker_id): (&RuntimeId, &WorkerId),
    watch: Watch<'_>,
    request: http::Request<Incoming>,
    ctx: &RequestContext,
    settings: SessionSettings,
) -> Result<Response, ApiError> {
    check_origin(request.headers(), allowed_origins)?;
    if !is_upgrade_request(request.headers()) {
        return ws_upgrade(request, &ctx.shutdown, |_| async {});
    }
    let viewer = if watch.interactive {
        hub.watch_interactive(runtime_id, worker_id, watch.cursor)
            .await?
    } else {
        hub.watch(runtime_id, worker_id, watch.cursor).await?
    };
    let shutdown = ctx.shutdown.clone();
    let session = move |ws| run_session(ws, ViewerFrames(viewer), settings, shutdown);
    if watch.interactive {
        upgrade_with_limit(request, &ctx.shutdown, watch.max_message, session)
    } else {
        ws_upgrade(request, &ctx.shutdown, session)
    }
}

struct ViewerFrames(Viewer);

impl FrameSource for ViewerFrames {
    async fn next_frame(&mut self) -> Result<OutgoingFrame, StreamEnd> {
        self.0.next_frame().await
    }

    async fn ended(&self) -> StreamEnd {
        self.0.ended().await
    }

    fn is_interactive(&self) -> bool {
        self.0.is_interactive()
    }

    fn submit(&mut self, command: ClientFrame) -> Result<CommandOutcome, ErrorDetail> {
        let ticket = self.0.submit(command).map_err(|e| e.to_detail())?;
        Ok(Box::pin(async move {
            ticket.await.err().map(|e| e.to_detail())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn origin_rules() {
        let allowed = vec!["http://localhost:5173".to_owned()];
        assert!(check_origin(&headers(None, "127.0.0.1:7700"), &allowed).is_ok());
        assert!(
            check_origin(
                &headers(Some("http://127.0.0.1:7700"), "127.0.0.1:7700"),
                &allowed
            )
            .is_ok()
        );
        assert!(
            check_origin(
                &headers(Some("http://localhost:5173"), "127.0.0.1:7700"),
                &allowed
            )
            .is_ok()
        );
        let err = check_origin(
            &headers(Some("http://evil.example"), "127.0.0.1:7700"),
            &allowed,
        )
        .unwrap_err();
        assert_eq!(err.detail.code, ErrorCode::OriginNotAllowed);
        assert!(check_origin(&headers(Some("null"), "127.0.0.1:7700"), &allowed).is_err());
    }
}
