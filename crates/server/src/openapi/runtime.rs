//! The Runtime API's operations (`/v1`), one per route and method of
//! `runtime_api::routes::ROUTES`.

use http::Method;
use switchyard_protocol::ErrorCode::{self, *};
use switchyard_protocol::{
    ClientFrame, CreateWorkerRequest, Health, InputAccepted, InputRequest, ResizeRequest,
    ResizeResponse, RuntimeInfo, ServerFrame, TranscriptPage, WorkerDetail, WorkerList,
    WorkerStatusResponse,
};

use super::params;
use super::spec::{Access, Op, Schemas};

/// The codes every Runtime API operation answers by the surface's rules: `503
/// overloaded` past `max_connections`, `403 cross_origin_request` for a browser's
/// request and `403 host_not_allowed` for a name other than loopback's on a runtime
/// without a token (the Runtime API serves the backend, never a page), `401` on
/// everything but health, `400 invalid_id` for a path with a worker id,
/// `400 invalid_request` for an unknown query parameter (health reads none), and for
/// a body that cannot be read, `415` for one that is not JSON and `413` for one too
/// large.
pub(super) fn common_errors(op: &Op) -> Vec<ErrorCode> {
    // `503 overloaded`: the connection came in over `max_connections`.
    let mut codes = vec![Overloaded, CrossOriginRequest, HostNotAllowed];
    if op.access == Access::Credentials {
        codes.extend([Unauthorized, InvalidRequest]);
    }
    if !op.path_params().is_empty() {
        codes.push(InvalidId);
    }
    if op.reads_body {
        codes.extend([InvalidRequest, UnsupportedMediaType, PayloadTooLarge]);
    }
    codes
}

/// Every operation of the Runtime API.
pub(super) fn operations(s: &mut Schemas) -> Vec<Op> {
    use Method as M;
    // Frames are described by the `ServerFrame` and `ClientFrame` schemas in the
    // components (WebSocket messages have no place in OpenAPI operations).
    s.of::<ServerFrame>();
    s.of::<ClientFrame>();
    vec![
        Op::new(M::GET, "/v1/health", "health", "health")
            .public()
            .summary("Liveness")
            .describe("Answers `{\"status\":\"ok\"}` while the process runs. No credentials; reveals nothing else.")
            .ok(200, "The process is alive.", s.json::<Health>()),
        Op::new(M::GET, "/v1/openapi.json", "openapi", "document")
            .summary("This document")
            .describe("The Runtime API's OpenAPI 3.1 document, generated from the types the runtime serves.")
            .ok(200, "The document.", params::document()),
        Op::new(M::GET, "/v1/metrics", "metrics", "operations")
            .summary("The runtime's metrics")
            .describe("Workers by status, WebSocket sessions, requests by route template, process start time and build info.")
            .ok(200, "The metrics.", params::metrics()),
        Op::new(M::GET, "/v1/runtime", "getRuntime", "runtime")
            .summary("The runtime: id, epoch, capabilities, profiles, counts, limits")
            .describe(
                "The display name, profiles and limits in force: a reload of the runtime's \
                 configuration (SIGHUP) changes them for what starts after it; workers \
                 already running keep the profile they started from.",
            )
            .ok(200, "The runtime.", s.json::<RuntimeInfo>()),
        Op::new(M::GET, "/v1/workers", "listWorkers", "workers")
            .summary("A page of workers, ordered by worker id")
            .query([params::status(s), params::limit(), params::after_worker(s)])
            .ok(200, "A page of workers; `next` continues it.", s.json::<WorkerList>())
            .errors([LimitTooLarge]),
        Op::new(M::POST, "/v1/workers", "createWorker", "workers")
            .summary("Start a worker from a profile")
            .describe(
                "Answers once the worker runs or has failed to start. `owner` is set by \
                 the backend (the creating identity) and never changes.",
            )
            .body(s.json::<CreateWorkerRequest>())
            .ok(201, "The new worker.", s.json::<WorkerDetail>())
            .links_to_worker(&[
                ("get", "getWorker"),
                ("input", "sendInput"),
                ("resize", "resizeWorker"),
                ("transcript", "getTranscript"),
                ("cancel", "cancelWorker"),
                ("stop", "stopWorker"),
                ("delete", "deleteWorker"),
            ])
            .errors([UnknownProfile, WorkerLimitReached, RuntimeUnavailable, Internal]),
        Op::new(M::GET, "/v1/workers/{worker_id}", "getWorker", "workers")
            .summary("One worker")
            .ok(200, "The worker.", s.json::<WorkerDetail>())
            .errors([WorkerNotFound]),
        Op::new(M::DELETE, "/v1/workers/{worker_id}", "deleteWorker", "workers")
            .summary("Remove an ended worker and its transcript")
            .ok_empty(204, "Removed.")
            .errors([WorkerNotFound, WorkerRunning, Internal]),
        Op::new(M::POST, "/v1/workers/{worker_id}/input", "sendInput", "workers")
            .summary("Write text to the worker")
            .describe("Accepted only while the worker runs; the answer is the input's transcript sequence.")
            .body(s.json::<InputRequest>())
            .ok(202, "Accepted.", s.json::<InputAccepted>())
            .errors([WorkerNotFound, WorkerNotRunning, WorkerBusy, Internal]),
        Op::new(M::POST, "/v1/workers/{worker_id}/resize", "resizeWorker", "workers")
            .summary("Resize a terminal worker")
            .describe(RESIZE)
            .body(s.json::<ResizeRequest>())
            .ok(200, "Its size now.", s.json::<ResizeResponse>())
            .errors([WorkerNotFound, NotATerminal, WorkerNotRunning, WorkerBusy]),
        Op::new(M::POST, "/v1/workers/{worker_id}/cancel", "cancelWorker", "workers")
            .summary("Interrupt in-flight work (SIGINT to a process group)")
            .ok(200, "Interrupted.", s.json::<WorkerStatusResponse>())
            .errors([WorkerNotFound, WorkerNotRunning]),
        Op::new(M::POST, "/v1/workers/{worker_id}/stop", "stopWorker", "workers")
            .summary("End the worker (idempotent)")
            .describe(
                "SIGTERM to the process group, SIGKILL after the grace period. Answers \
                 once the worker has ended, or after 2 s at most (then possibly still \
                 `running`; a `status` event tells the end).",
            )
            .ok(200, "Its status.", s.json::<WorkerStatusResponse>())
            .errors([WorkerNotFound]),
        Op::new(M::GET, "/v1/workers/{worker_id}/transcript", "getTranscript", "workers")
            .summary("A page of the worker's transcript")
            .query([params::after_sequence(), params::limit()])
            .ok(200, "Items after `after`, in order.", s.json::<TranscriptPage>())
            .errors([WorkerNotFound, LimitTooLarge, Internal]),
        Op::new(M::GET, "/v1/workers/{worker_id}/events/ws", "watchEvents", "events")
            .summary("The worker's live events over a WebSocket")
            .describe(EVENTS)
            .query([
                params::cursor(),
                params::flag(
                    "snapshot",
                    "With a cursor: also send a fresh `snapshot` after the replayed events. It \
                     is the state after the last of them and carries that event's cursor (the \
                     one frame whose cursor repeats: a state, not a new event).",
                ),
                params::interactive(),
            ])
            .websocket(
                "Switching to the WebSocket protocol; server frames (`ServerFrame`) follow.",
            )
            .errors([InvalidCursor, WorkerNotFound]),
    ]
}

const EVENTS: &str = "A WebSocket upgrade (`GET` with `Connection: Upgrade`, `Upgrade: \
websocket`, `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key`); a plain `GET` is \
`400 invalid_request`. Errors known before the upgrade (credentials, ids, an unknown \
worker, a bad cursor) are plain HTTP answers. After the upgrade the server sends JSON \
text frames, each a `ServerFrame` (components): `event` frames with a cursor, and \
`reset` when the cursor is too old or from another epoch. Clients send only control \
frames (a data frame closes with 1008), except with `interactive=true`: then text \
frames that are a `ClientFrame` (components: `input`, `resize`) are taken as those \
requests, a refused one is answered with an `error` frame and the connection stays \
open, and anything else closes with 1008. 4404 when the worker is removed, 4408 for a \
client too slow to read, 1001 on shutdown.";

/// What `resizeWorker` does, on both surfaces.
pub(super) const RESIZE: &str = "Only workers of a `pty` profile are terminals (`400 \
not_a_terminal` for others); each side is 1 to 1000 cells (`400 invalid_request` \
otherwise). A `resized` event follows; `429 worker_busy` when the terminal did not take \
the size in time.";
