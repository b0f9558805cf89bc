//! The backend API's operations (`/api` and `/healthz`), one per route and method of
//! `backend_api::routes::ROUTES`.

use http::Method;
use switchyard_protocol::ErrorCode::{self, *};
use switchyard_protocol::{
    AllWorkersList, BackendRuntime, ClientFrame, Health, InputAccepted, InputRequest, LoginRequest,
    NewWorkerRequest, ResizeRequest, ResizeResponse, RuntimeList, ServerFrame, SessionInfo,
    TranscriptPage, WorkerDetail, WorkerList, WorkerStatusResponse,
};

use super::params;
use super::spec::{Access, Op, Schemas};
use crate::reload::ReloadReport;

/// How a call through a runtime can fail besides the runtime's own answer: the
/// policy, the runtime's id, and the runtime itself (down, slow, lying, draining, TLS,
/// refusing the backend's token, lacking the route).
const THROUGH_A_RUNTIME: [ErrorCode; 10] = [
    Forbidden,
    RuntimeNotFound,
    Internal,
    Unsupported,
    RuntimeUnreachable,
    RuntimeAuthFailed,
    RuntimeProtocolError,
    RuntimeTlsFailed,
    RuntimeUnavailable,
    RuntimeTimeout,
];

/// Probes that ignore their query (a load balancer's must never fail on it).
const LENIENT_PROBES: [&str; 2] = ["/healthz", "/readyz"];

/// The codes every backend operation answers by the surface's rules, in the order
/// the handler checks them: `403 host_not_allowed` for every request; for
/// state-changing ones `403 cross_origin_request`; `403 origin_not_allowed` for
/// WebSocket upgrades; `401` without credentials; `415` and `413` for bodies;
/// `400 invalid_id` for ids in the path; `400 invalid_request` for an unknown query
/// parameter (the probes read none) or a body that cannot be read.
pub(super) fn common_errors(op: &Op) -> Vec<ErrorCode> {
    // `503 overloaded`: the connection came in over `max_connections`.
    let mut codes = vec![HostNotAllowed, Overloaded];
    if op.method == Method::POST || op.method == Method::DELETE {
        codes.push(CrossOriginRequest);
    }
    if op.websocket {
        codes.push(OriginNotAllowed);
    }
    if op.access == Access::Credentials {
        codes.push(Unauthorized);
    }
    if !LENIENT_PROBES.contains(&op.path) {
        codes.push(InvalidRequest);
    }
    if op.reads_body {
        codes.extend([UnsupportedMediaType, PayloadTooLarge, InvalidRequest]);
    }
    if !op.path_params().is_empty() {
        codes.push(InvalidId);
    }
    codes
}

/// A path under one worker's route.
macro_rules! w {
    ($suffix:literal) => {
        concat!("/api/runtimes/{runtime_id}/workers/{worker_id}", $suffix)
    };
}

/// Every operation of the backend API.
pub(super) fn operations(s: &mut Schemas) -> Vec<Op> {
    use Method as M;
    // Frames are described by the `ServerFrame` and `ClientFrame` schemas in the
    // components.
    s.of::<ServerFrame>();
    s.of::<ClientFrame>();
    vec![
        Op::new(M::GET, "/healthz", "health", "health")
            .public()
            .summary("Liveness")
            .ok(200, "The process is alive.", s.json::<Health>()),
        Op::new(M::GET, "/readyz", "ready", "health")
            .public()
            .summary("Readiness: whether this backend wants new requests")
            .describe(
                "For load balancers: 200 while serving; `503 runtime_unavailable` from \
                 the moment the backend starts draining (SIGTERM or SIGINT) while it \
                 still serves everything else for `drain_ms`. Does not depend on the \
                 runtimes.",
            )
            .ok(200, "Serving.", s.json::<Health>())
            .errors([RuntimeUnavailable]),
        Op::new(M::GET, "/api/openapi.json", "openapi", "document")
            .public()
            .summary("This document")
            .describe(
                "The backend API's OpenAPI 3.1 document, generated from the types the \
                 backend serves. Public: it is the same for every deployment and names \
                 no runtime, host or identity.",
            )
            .ok(200, "The document.", params::document()),
        Op::new(M::GET, "/metrics", "metrics", "operations")
            .summary("The backend's metrics (admins)")
            .describe(
                "Requests by route template, upstream calls per runtime, runtime states, \
                 hub channels and viewers, WebSocket sessions, reloads, readiness. With \
                 `[auth]` on, admins only; `metrics_listen` serves the same without \
                 credentials on a separate (loopback) listener.",
            )
            .ok(200, "The metrics.", params::metrics())
            .errors([Forbidden]),
        Op::new(M::POST, "/api/admin/reload", "reload", "operations")
            .summary("Read the configuration file again and apply it (admins)")
            .describe(
                "Runtimes are added, replaced or removed (viewers of a removed one are \
                 closed with 4404; an unchanged one is untouched), tokens and TLS files \
                 swapped; `max_body_bytes`, `max_connections` and `drain_ms` apply to \
                 the requests, connections and drain that start after it. An invalid \
                 file changes nothing: `400 invalid_config` naming the key and the \
                 file. Keys that need a restart are listed in `restart_required`.",
            )
            .ok(200, "What the reload changed.", s.json::<ReloadReport>())
            .errors([Forbidden, InvalidConfig, Unsupported]),
        Op::new(M::GET, "/api/session", "getSession", "session")
            .summary("Who the credentials are")
            .describe("Without `[auth]`: the anonymous admin with `\"auth\": false`.")
            .ok(200, "The caller.", s.json::<SessionInfo>()),
        Op::new(M::POST, "/api/session", "startSession", "session")
            .public()
            .summary("Trade a token for a session cookie")
            .describe(
                "Sets `switchyard_session` (HttpOnly, SameSite=Strict, Path=/, Secure \
                 over TLS), signed with the session key, for `session_ttl_s`. Without \
                 `[auth]` it answers the anonymous admin and sets no cookie.",
            )
            .body(s.json::<LoginRequest>())
            .ok(200, "Signed in.", s.json::<SessionInfo>())
            .ok_header("Set-Cookie", "The session cookie (with auth on).")
            .errors([Unauthorized]),
        Op::new(M::DELETE, "/api/session", "endSession", "session")
            .public()
            .summary("Sign out: the cookie ends here and the browser drops it")
            .describe(
                "This backend refuses the request's session cookie from then on (a copy \
                 of it too) and closes the event streams opened with it. With \
                 `[auth] signed_out_file` the sign-out is recorded there first: it \
                 holds after a restart and, within a second, on every backend sharing \
                 the file (when the file cannot take it yet, it holds on this backend \
                 at once and is written as soon as it can be; the backend logs an \
                 error meanwhile). Without it, other replicas accept a \
                 copy until it expires or its token is removed, and a restart \
                 forgets it.",
            )
            .ok_empty(204, "Signed out.")
            .ok_header("Set-Cookie", "Clears the session cookie."),
        Op::new(M::GET, "/api/runtimes", "listRuntimes", "runtimes")
            .summary("Every runtime the caller may use, with its state as last seen")
            .ok(200, "The runtimes.", s.json::<RuntimeList>()),
        Op::new(
            M::GET,
            "/api/runtimes/{runtime_id}",
            "getRuntime",
            "runtimes",
        )
        .summary("One runtime, refreshed")
        .describe("When the runtime does not answer: the cached view with its state.")
        .ok(200, "The runtime.", s.json::<BackendRuntime>())
        .errors([Forbidden, RuntimeNotFound]),
        Op::new(M::GET, "/api/workers", "listAllWorkers", "workers")
            .summary("Workers of every runtime")
            .describe(
                "Runtimes that did not answer (within their timeout) are listed under \
                 `unavailable`; runtimes the caller may not use are left out.",
            )
            .query([
                params::status(s),
                params::limit_per_runtime(),
                params::after_worker(s),
            ])
            .ok(200, "The workers.", s.json::<AllWorkersList>()),
        Op::new(
            M::GET,
            "/api/runtimes/{runtime_id}/workers",
            "listWorkers",
            "workers",
        )
        .summary("A page of one runtime's workers")
        .query([params::status(s), params::limit(), params::after_worker(s)])
        .ok(
            200,
            "A page of workers; `next` continues it.",
            s.json::<WorkerList>(),
        )
        .errors(THROUGH_A_RUNTIME)
        .errors([LimitTooLarge]),
        Op::new(
            M::POST,
            "/api/runtimes/{runtime_id}/workers",
            "createWorker",
            "workers",
        )
        .summary("Start a worker from one of the runtime's profiles")
        .describe("The caller becomes the worker's `owner` when auth is on.")
        .body(s.json::<NewWorkerRequest>())
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
        .errors(THROUGH_A_RUNTIME)
        .errors([UnknownProfile, WorkerLimitReached]),
        Op::new(M::GET, w!(""), "getWorker", "workers")
            .summary("One worker")
            .ok(200, "The worker.", s.json::<WorkerDetail>())
            .errors(THROUGH_A_RUNTIME)
            .errors([WorkerNotFound]),
        Op::new(M::DELETE, w!(""), "deleteWorker", "workers")
            .summary("Remove an ended worker and its transcript")
            .ok_empty(204, "Removed.")
            .errors(THROUGH_A_RUNTIME)
            .errors([WorkerNotFound, WorkerRunning]),
        Op::new(M::POST, w!("/input"), "sendInput", "workers")
            .summary("Write text to the worker")
            .body(s.json::<InputRequest>())
            .ok(202, "Accepted.", s.json::<InputAccepted>())
            .errors(THROUGH_A_RUNTIME)
            .errors([WorkerNotFound, WorkerNotRunning, WorkerBusy]),
        Op::new(M::POST, w!("/resize"), "resizeWorker", "workers")
            .summary("Resize a terminal worker")
            .describe(super::runtime::RESIZE)
            .body(s.json::<ResizeRequest>())
            .ok(200, "Its size now.", s.json::<ResizeResponse>())
            .errors(THROUGH_A_RUNTIME)
            .errors([WorkerNotFound, NotATerminal, WorkerNotRunning, WorkerBusy]),
        Op::new(M::POST, w!("/cancel"), "cancelWorker", "workers")
            .summary("Interrupt in-flight work")
            .ok(200, "Interrupted.", s.json::<WorkerStatusResponse>())
            .errors(THROUGH_A_RUNTIME)
            .errors([WorkerNotFound, WorkerNotRunning]),
        Op::new(M::POST, w!("/stop"), "stopWorker", "workers")
            .summary("End the worker (idempotent)")
            .ok(200, "Its status.", s.json::<WorkerStatusResponse>())
            .errors(THROUGH_A_RUNTIME)
            .errors([WorkerNotFound]),
        Op::new(M::GET, w!("/transcript"), "getTranscript", "workers")
            .summary("A page of the worker's transcript")
            .query([params::after_sequence(), params::limit()])
            .ok(
                200,
                "Items after `after`, in order.",
                s.json::<TranscriptPage>(),
            )
            .errors(THROUGH_A_RUNTIME)
            .errors([WorkerNotFound, LimitTooLarge]),
        Op::new(M::GET, w!("/events/ws"), "watchEvents", "events")
            .summary("The worker's live events over a WebSocket, through the backend")
            .describe(EVENTS)
            .query([params::cursor(), params::interactive()])
            .websocket("Switching to the WebSocket protocol; server frames (`ServerFrame`) follow.")
            .errors(THROUGH_A_RUNTIME)
            .errors([InvalidCursor, WorkerNotFound]),
    ]
}

const EVENTS: &str = "A WebSocket upgrade (`GET` with `Connection: Upgrade`, `Upgrade: \
websocket`, `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key`); a plain `GET` is \
`400 invalid_request`. Errors known before the upgrade (credentials, a foreign \
`Origin`, ids, policy, an unknown worker, a bad cursor, an unreachable runtime) are plain \
HTTP answers. After the upgrade the server sends JSON text frames, each a \
`ServerFrame` (components): `event` frames with a backend cursor (resumable after a \
backend restart), `reset`, and `upstream` `lost`/`restored` while the backend \
reconnects to the runtime. Clients send only control frames (a data frame closes with \
1008), except with `interactive=true`, which needs the operator role (`403 forbidden` \
before the upgrade otherwise): then text frames that are a `ClientFrame` (components: \
`input`, `resize`) are taken as those requests, each audited, a refused one is \
answered with an `error` frame and the connection stays open, and anything else closes \
with 1008. 4404 when the worker is removed, 4408 for a client too slow to read, 1001 on \
shutdown.";
