//! Route table and handlers of the backend API, and the order in which every request
//! is checked before it is routed:
//!
//! 1. `Host` allowlist → `403 host_not_allowed`
//! 2. CORS preflight → answered here (allowed origins) or `403 cross_origin_request`
//! 3. the console (`/`, `/assets/...`, read-only `GET`/`HEAD`) → served without
//!    credentials, so that its sign-in page loads
//! 4. cross-origin check: a state-changing request from another site →
//!    `403 cross_origin_request`; a WebSocket upgrade from a foreign `Origin` →
//!    `403 origin_not_allowed`
//! 5. authentication (bearer token, or session cookie from the backend's own pages)
//!    → `401 unauthorized`; `/healthz`, `/readyz`, `/api/openapi.json` and
//!    `POST`/`DELETE /api/session` are public
//! 6. the route and its methods → `404 route_not_found`, `405 method_not_allowed`
//! 7. a body that is not `application/json` → `415 unsupported_media_type`
//! 8. the path's ids → `400 invalid_id`, then the registry, whose policy answers
//!    `403 forbidden` (for `GET /metrics` and `POST /api/admin/reload`: to anyone
//!    but an admin)
//!
//! Commands get an audit line whatever their outcome; every answer gets the security
//! headers, and answers to allowed origins the CORS grant.
//!
//! A `HEAD` arrives here as the `GET` it stands for (`http::serve`), so it passes
//! every one of these steps as that `GET` and gets its answer, of which the server
//! sends the head alone. On the event WebSocket's route that is the answer to a
//! plain `GET`: a `HEAD` never upgrades.

use std::sync::Arc;

use http::{Method, StatusCode};
use hyper::body::Incoming;
use switchyard_protocol::{
    Health, NewWorkerRequest, ResizeRequest, RuntimeId, RuntimeList, WorkerId, WorkerStatus,
};
use switchyard_registry::{Caller, ObservationHub, RegistryError, RuntimeRegistry};
use switchyard_transport::WorkerQuery;

use super::audit::{self, Audit};
use super::browser::{self, AllowedHosts, AllowedOrigins, RequestOrigin};
use super::session;
use crate::auth::Authenticator;
use crate::http::body::{check_content_type, read_input, read_json, read_limited};
use crate::http::query::Query;
use crate::http::response::{empty, json, json_bytes};
use crate::http::router::{RouteDef, RouteTable, method_not_allowed, respond};
use crate::http::ws::SessionSettings;
use crate::http::{Answer, ApiError, Handler, MatchedRoute, RequestContext, RequestId, Response};
use crate::metrics::{ListenerParts, METRICS_PATH, Metrics};
use crate::reload::Reloader;

use super::Readiness;

pub use crate::http::body::BodyLimit;

/// Settings of the backend API surface.
#[derive(Debug, Clone)]
pub struct BackendApiSettings {
    /// Largest request body. A clone kept elsewhere (a reload's) changes it while
    /// the backend runs.
    pub max_body_bytes: BodyLimit,
    /// Origins besides the backend's own that may use it from a browser (CORS, with
    /// bearer tokens) and open its WebSockets. A clone kept elsewhere (a reload's)
    /// changes them while the backend runs.
    pub allowed_origins: AllowedOrigins,
    /// The host names it answers to; the same goes for a clone.
    pub allowed_hosts: AllowedHosts,
    /// Mark the session cookie `Secure` (set when the backend serves TLS).
    pub secure_cookies: bool,
    /// WebSocket timing.
    pub session: SessionSettings,
}

/// The backend API handler.
pub struct BackendApi {
    registry: Arc<RuntimeRegistry>,
    hub: ObservationHub,
    auth: Arc<Authenticator>,
    settings: BackendApiSettings,
    routes: RouteTable<Route>,
    metrics: Arc<Metrics>,
    reloader: Option<Arc<Reloader>>,
    console_route: MatchedRoute,
    readiness: Readiness,
}

/// What a backend API path names; the handler matches on it with the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Health,
    Ready,
    OpenApi,
    Session,
    Runtimes,
    Runtime,
    AllWorkers,
    Workers,
    Worker,
    Input,
    Resize,
    Cancel,
    Stop,
    Transcript,
    Events,
    Metrics,
    Reload,
}

impl Route {
    /// Routes (and methods) answered without credentials.
    fn is_public(self, method: &Method) -> bool {
        match self {
            // A load balancer's probes carry no credentials; the document is the
            // same for every deployment.
            Route::Health | Route::Ready | Route::OpenApi => true,
            // Signing in and out; who is signed in is for the signed-in only.
            Route::Session => matches!(*method, Method::POST | Method::DELETE),
            _ => false,
        }
    }

    /// The audit action of a command, `None` for reads. Opening an interactive event
    /// WebSocket (`?interactive=true`) counts: it may type into the worker (each of
    /// its frames then writes a line of its own, see `audit.rs`).
    fn command(self, method: &Method, query: Option<&str>) -> Option<&'static str> {
        Some(match (self, method) {
            (Route::Events, &Method::GET) if asks_interactive(query) => "interactive",
            (Route::Workers, &Method::POST) => "create",
            (Route::Input, &Method::POST) => "input",
            (Route::Resize, &Method::POST) => "resize",
            (Route::Cancel, &Method::POST) => "cancel",
            (Route::Stop, &Method::POST) => "stop",
            (Route::Worker, &Method::DELETE) => "delete",
            (Route::Session, &Method::POST) => "session_start",
            (Route::Session, &Method::DELETE) => "session_end",
            (Route::Reload, &Method::POST) => "reload",
            _ => return None,
        })
    }
}

/// Every route of the backend API with its methods (the console's files aside):
/// what the router answers, what `405`s list in `Allow`, and what the OpenAPI document
/// is checked against.
pub(crate) static ROUTES: &[RouteDef<Route>] = &[
    RouteDef {
        path: "/healthz",
        route: Route::Health,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/readyz",
        route: Route::Ready,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/api/openapi.json",
        route: Route::OpenApi,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/api/session",
        route: Route::Session,
        methods: &[Method::GET, Method::POST, Method::DELETE],
    },
    RouteDef {
        path: "/api/runtimes",
        route: Route::Runtimes,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/api/runtimes/{runtime_id}",
        route: Route::Runtime,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/api/workers",
        route: Route::AllWorkers,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/api/runtimes/{runtime_id}/workers",
        route: Route::Workers,
        methods: &[Method::GET, Method::POST],
    },
    RouteDef {
        path: "/api/runtimes/{runtime_id}/workers/{worker_id}",
        route: Route::Worker,
        methods: &[Method::GET, Method::DELETE],
    },
    RouteDef {
        path: "/api/runtimes/{runtime_id}/workers/{worker_id}/input",
        route: Route::Input,
        methods: &[Method::POST],
    },
    RouteDef {
        path: "/api/runtimes/{runtime_id}/workers/{worker_id}/resize",
        route: Route::Resize,
        methods: &[Method::POST],
    },
    RouteDef {
        path: "/api/runtimes/{runtime_id}/workers/{worker_id}/cancel",
        route: Route::Cancel,
        methods: &[Method::POST],
    },
    RouteDef {
        path: "/api/runtimes/{runtime_id}/workers/{worker_id}/stop",
        route: Route::Stop,
        methods: &[Method::POST],
    },
    RouteDef {
        path: "/api/runtimes/{runtime_id}/workers/{worker_id}/transcript",
        route: Route::Transcript,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/api/runtimes/{runtime_id}/workers/{worker_id}/events/ws",
        route: Route::Events,
        methods: &[Method::GET],
    },
    RouteDef {
        path: METRICS_PATH,
        route: Route::Metrics,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/api/admin/reload",
        route: Route::Reload,
        methods: &[Method::POST],
    },
];

impl BackendApi {
    /// Binds `registry` and its observation `hub` to the `/api` routes, with `auth`
    /// establishing each request's caller.
    pub fn new(
        registry: Arc<RuntimeRegistry>,
        hub: ObservationHub,
        auth: Arc<Authenticator>,
        settings: BackendApiSettings,
    ) -> Self {
        // Replaced by `with_metrics` when served: until then, what the registry and
        // the hub know, with no listener's counts.
        let metrics = Metrics::backend(&registry, &hub, &ListenerParts::unattached());
        Self {
            registry,
            hub,
            auth,
            settings,
            routes: RouteTable::new("backend API lives under /api", ROUTES),
            metrics: Arc::new(metrics),
            reloader: None,
            console_route: MatchedRoute::fixed("console"),
            readiness: Readiness::new(),
        }
    }

    /// Serves `metrics` at `GET /metrics` (admins only when auth is on).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Answers `POST /api/admin/reload` (admins only when auth is on) with
    /// `reloader`; without one, that route is `501 unsupported`.
    pub fn with_reloader(mut self, reloader: Arc<Reloader>) -> Self {
        self.reloader = Some(reloader);
        self
    }

    /// The route label of `path` for the request metrics (answers refused before
    /// the route is looked up).
    fn route_label(&self, path: &str) -> Option<MatchedRoute> {
        if crate::console::owns(path) {
            Some(self.console_route)
        } else {
            self.routes.template(path)
        }
    }

    /// Its readiness: `GET /readyz` answers 503 once draining has started.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The registry it routes through.
    pub fn registry(&self) -> &Arc<RuntimeRegistry> {
        &self.registry
    }

    /// The observation hub.
    pub fn hub(&self) -> &ObservationHub {
        &self.hub
    }

    /// Steps 1 to 8 of the module's list; see there.
    async fn answer(&self, request: http::Request<Incoming>, ctx: &RequestContext) -> Answer {
        let origin = match self
            .settings
            .allowed_hosts
            .check(request.uri(), request.headers())
        {
            Ok(host) => RequestOrigin::of(
                request.headers(),
                host,
                &self.settings.allowed_origins.current(),
            ),
            Err(error) => {
                let result = Err(error);
                // A command refused here is audited too (by nobody: the request got
                // no further than its `Host`).
                if let Some(audit) = self.command_audit(request.method(), request.uri()) {
                    audit.finish(&result, ctx.request_id.as_str());
                }
                return Answer::labelled(
                    respond(result, ctx),
                    self.route_label(request.uri().path()),
                );
            }
        };
        let mut answer = if browser::is_preflight(request.method(), request.headers()) {
            let route = self.route_label(request.uri().path());
            Answer::labelled(respond(browser::preflight(&origin), ctx), route)
        } else {
            self.checked(request, ctx, &origin).await
        };
        if let RequestOrigin::Allowed(value) = &origin {
            browser::cors_headers(answer.response.headers_mut(), value);
        }
        answer
    }

    /// The audit line to write for `method uri`, when audit lines are written and
    /// it is a command.
    fn command_audit(&self, method: &Method, uri: &http::Uri) -> Option<Audit> {
        if !audit::enabled() {
            return None;
        }
        let found = self.routes.find(uri.path()).ok()?;
        let action = found.route().command(method, uri.query())?;
        Some(Audit::new(
            action,
            found.params.get("runtime_id"),
            found.params.get("worker_id"),
        ))
    }

    /// Steps 3 to 8, with the audit line of a command; the answer carries the route
    /// label of the metrics.
    async fn checked(
        &self,
        mut request: http::Request<Incoming>,
        ctx: &RequestContext,
        origin: &RequestOrigin,
    ) -> Answer {
        // A URI's parts are shared, so this copies no path.
        let uri = request.uri().clone();
        let path = uri.path();
        if crate::console::owns(path) {
            // The console is public (its sign-in page must load before anyone has
            // signed in) and changes nothing; the Host allowlist has passed.
            let answer = crate::console::respond(request.method(), path, request.headers());
            return Answer::labelled(respond(answer, ctx), Some(self.console_route));
        }
        let found = self.routes.find(path);
        let route = found
            .as_ref()
            .ok()
            .map(|found| MatchedRoute(found.def.path));
        let method = request.method().clone();
        let (runtime_param, worker_param) = found.as_ref().map_or((None, None), |found| {
            (
                found.params.get("runtime_id"),
                found.params.get("worker_id"),
            )
        });
        let mut audit = found
            .as_ref()
            .ok()
            .filter(|_| audit::enabled())
            .and_then(|found| {
                let action = found.route().command(&method, request.uri().query())?;
                Some(Audit::new(action, runtime_param, worker_param))
            });
        let result = async {
            let websocket = matches!(&found, Ok(found) if found.route() == Route::Events);
            if websocket {
                browser::check_websocket_origin(origin)?;
            }
            browser::check_cross_origin(&method, request.headers(), origin)?;
            let public = matches!(&found, Ok(found) if found.route().is_public(&method));
            let caller = if public {
                // Signing out needs no credentials, but names them in its audit line
                // when they are good.
                if let (Some(audit), Ok(caller)) = (
                    audit.as_mut().filter(|_| method == Method::DELETE),
                    self.auth
                        .authenticate(request.headers(), origin.admits_cookie(false)),
                ) {
                    audit.identify(&caller);
                }
                None
            } else {
                let (caller, session) = self
                    .auth
                    .authenticate_session(request.headers(), origin.admits_cookie(websocket))?;
                if let Some(audit) = audit.as_mut() {
                    audit.identify(&caller);
                }
                // An event stream watches the session it was let in with: it ends when
                // that session is signed out or expires (`events.rs`).
                if let (true, Some(session)) = (websocket, session) {
                    request.extensions_mut().insert(session);
                }
                Some(caller)
            };
            let found = found.as_ref().map_err(ApiError::clone)?;
            found.check_method(&method)?;
            browser::check_body_type(&method, request.headers())?;
            let runtime = runtime_param.map(RuntimeId::new).transpose()?;
            let worker = worker_param.map(WorkerId::new).transpose()?;
            // Public routes run as nobody when auth is on (they need no caller; if
            // one were wrongly public it would reach nothing), as everyone when off.
            let caller = caller.unwrap_or_else(|| {
                if self.auth.is_on() {
                    Caller::nobody()
                } else {
                    Caller::open()
                }
            });
            let ids = (runtime, worker);
            match Relayed::of(found.def.route, &method, ids) {
                // The relayed routes run inline; every other route's (larger) future
                // is boxed, so that the future of every request stays small (it is
                // moved into place per request).
                Ok(relayed) => self.relay(relayed, request, &caller).await,
                Err(ids) => {
                    Box::pin(self.dispatch(found.def, ids, request, ctx, &caller, &mut audit)).await
                }
            }
        }
        .await;
        if let Some(mut audit) = audit {
            if let Some(owner) = audit
                .target()
                .and_then(|(rt, w)| self.registry.known_owner(rt, w))
            {
                audit.set_owner(owner);
            }
            audit.finish(&result, ctx.request_id.as_str());
        }
        Answer::labelled(respond(result, ctx), route)
    }

    /// Worker detail, list and input: answered with the registry's JSON (relayed
    /// from a remote runtime where that is the same answer).
    async fn relay(
        &self,
        relayed: Relayed,
        request: http::Request<Incoming>,
        caller: &Caller,
    ) -> Result<Response, ApiError> {
        let registry = &self.registry;
        match relayed {
            Relayed::List(rt) => {
                let q = worker_query(request.uri().query())?;
                Ok(relayed_answer(
                    StatusCode::OK,
                    registry.list_workers_json(caller, &rt, &q).await?,
                ))
            }
            Relayed::Detail(rt, w) => {
                Query::parse(request.uri().query(), &[])?;
                Ok(relayed_answer(
                    StatusCode::OK,
                    registry.get_worker_json(caller, &rt, &w).await?,
                ))
            }
            Relayed::Input(rt, w) => {
                Query::parse(request.uri().query(), &[])?;
                let limit = self.settings.max_body_bytes.current();
                let (parts, body) = request.into_parts();
                let input = read_input(&parts.headers, body, limit).await?;
                Ok(relayed_answer(
                    StatusCode::ACCEPTED,
                    registry.input_json(caller, &rt, &w, input.text).await?,
                ))
            }
        }
    }

    /// Every route but the relayed ones.
    async fn dispatch(
        &self,
        def: &'static RouteDef<Route>,
        ids: (Option<RuntimeId>, Option<WorkerId>),
        request: http::Request<Incoming>,
        ctx: &RequestContext,
        caller: &Caller,
        audit: &mut Option<Audit>,
    ) -> Result<Response, ApiError> {
        let method = request.method().clone();
        let query = request.uri().query().map(str::to_owned);
        let query = query.as_deref();
        let limit = self.settings.max_body_bytes.current();
        let registry = &self.registry;
        match (def.route, method, ids.0, ids.1) {
            (Route::Health, Method::GET, ..) => Ok(json(StatusCode::OK, &Health::ok())),
            // Like /healthz, lenient about the query: a probe must not fail on it.
            (Route::Ready, Method::GET, ..) => self.readiness.answer(),
            (Route::OpenApi, Method::GET, ..) => {
                Query::parse(query, &[])?;
                Ok(crate::openapi::backend_document().response())
            }
            (Route::Session, Method::POST, ..) => {
                Query::parse(query, &[])?;
                let (parts, body) = request.into_parts();
                let mut fallback = Audit::new("session_start", None, None);
                let audit = audit.as_mut().unwrap_or(&mut fallback);
                let secure = session::secure_cookie(self.settings.secure_cookies, &parts.headers);
                session::login(&self.auth, &parts.headers, body, limit, secure, audit).await
            }
            (Route::Session, Method::GET, ..) => {
                Query::parse(query, &[])?;
                Ok(session::current(caller, self.auth.is_on()))
            }
            (Route::Session, Method::DELETE, ..) => {
                Query::parse(query, &[])?;
                let headers = request.headers().clone();
                drain_body(request, limit).await?;
                self.auth.sign_out(&headers).await;
                let secure = session::secure_cookie(self.settings.secure_cookies, &headers);
                Ok(session::logout(secure))
            }
            (Route::Runtimes, Method::GET, ..) => {
                Query::parse(query, &[])?;
                let runtimes = registry.runtimes(caller);
                Ok(json(StatusCode::OK, &RuntimeList { runtimes }))
            }
            (Route::Runtime, Method::GET, Some(rt), _) => {
                Query::parse(query, &[])?;
                Ok(json(StatusCode::OK, &registry.runtime(caller, &rt).await?))
            }
            (Route::AllWorkers, Method::GET, ..) => {
                let q = worker_query(query)?;
                Ok(json(StatusCode::OK, &registry.list_all(caller, &q).await))
            }
            (Route::Workers, Method::POST, Some(rt), _) => {
                Query::parse(query, &[])?;
                let (parts, body) = request.into_parts();
                // No `owner` key: a body that names one is `400 invalid_request`.
                let create: NewWorkerRequest = read_json(&parts.headers, body, limit).await?;
                let detail = registry.create_worker(caller, &rt, &create).await?;
                if let Some(audit) = audit.as_mut() {
                    audit.set_worker(&detail.worker_id);
                }
                Ok(json(StatusCode::CREATED, &detail))
            }
            (Route::Worker, Method::DELETE, Some(rt), Some(w)) => {
                Query::parse(query, &[])?;
                drain_body(request, limit).await?;
                registry.delete(caller, &rt, &w).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            (Route::Resize, Method::POST, Some(rt), Some(w)) => {
                Query::parse(query, &[])?;
                let (parts, body) = request.into_parts();
                let size: ResizeRequest = read_json(&parts.headers, body, limit).await?;
                Ok(json(
                    StatusCode::OK,
                    &registry.resize(caller, &rt, &w, size).await?,
                ))
            }
            (Route::Cancel, Method::POST, Some(rt), Some(w)) => {
                Query::parse(query, &[])?;
                drain_body(request, limit).await?;
                Ok(json(
                    StatusCode::OK,
                    &registry.cancel(caller, &rt, &w).await?,
                ))
            }
            (Route::Stop, Method::POST, Some(rt), Some(w)) => {
                Query::parse(query, &[])?;
                drain_body(request, limit).await?;
                Ok(json(StatusCode::OK, &registry.stop(caller, &rt, &w).await?))
            }
            (Route::Transcript, Method::GET, Some(rt), Some(w)) => {
                let q = Query::parse(query, &["after", "limit"])?;
                let after = q.parse_as("after", "a whole number")?.unwrap_or(0);
                let limit = q.parse_as("limit", "a whole number")?;
                Ok(json(
                    StatusCode::OK,
                    &registry.transcript(caller, &rt, &w, after, limit).await?,
                ))
            }
            (Route::Metrics, Method::GET, ..) => {
                Query::parse(query, &[])?;
                registry.authorize_admin(caller)?;
                Ok(self.metrics.answer())
            }
            (Route::Reload, Method::POST, ..) => {
                Query::parse(query, &[])?;
                drain_body(request, limit).await?;
                registry.authorize_admin(caller)?;
                super::reload::answer(self.reloader.as_ref()).await
            }
            (Route::Events, Method::GET, Some(rt), Some(w)) => {
                let q = Query::parse(query, &["cursor", "interactive"])?;
                let watch = super::events::Watch {
                    cursor: q.get("cursor"),
                    interactive: q
                        .parse_as::<bool>("interactive", "true or false")?
                        .unwrap_or(false),
                    max_message: usize::try_from(limit).unwrap_or(usize::MAX),
                };
                super::events::upgrade(
                    &self.hub,
                    (&self.auth, caller, &self.settings.allowed_origins),
                    (&rt, &w),
                    watch,
                    request,
                    ctx,
                    self.settings.session,
                )
                .await
            }
            (_, method, ..) => Err(method_not_allowed(&method, def.path, def.methods)),
        }
    }
}

/// The headers of a relayed answer, built once: JSON, the security headers every
/// answer gets (`browser::security_headers` then finds them in place), and a slot
/// for the request id, which the server fills in every answer (`serve::logged`).
/// A copy of a header map has no spare room: the slot saves growing it each time.
static RELAYED_HEADERS: std::sync::LazyLock<http::HeaderMap> = std::sync::LazyLock::new(|| {
    let mut headers = http::HeaderMap::with_capacity(8);
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    browser::security_headers(&mut headers);
    headers.insert(RequestId::HEADER, http::HeaderValue::from_static("-"));
    headers
});

/// A relayed answer: `body` as the registry gave it.
fn relayed_answer(status: StatusCode, body: bytes::Bytes) -> Response {
    json_bytes(status, body, &RELAYED_HEADERS)
}

/// The routes answered with the registry's JSON (see [`BackendApi::relay`]).
enum Relayed {
    /// `GET .../workers`.
    List(RuntimeId),
    /// `GET .../workers/{worker_id}`.
    Detail(RuntimeId, WorkerId),
    /// `POST .../workers/{worker_id}/input`.
    Input(RuntimeId, WorkerId),
}

impl Relayed {
    /// The relayed route a request is, or its ids back.
    fn of(
        route: Route,
        method: &Method,
        ids: (Option<RuntimeId>, Option<WorkerId>),
    ) -> Result<Self, (Option<RuntimeId>, Option<WorkerId>)> {
        match (route, method, ids) {
            (Route::Workers, &Method::GET, (Some(rt), None)) => Ok(Self::List(rt)),
            (Route::Worker, &Method::GET, (Some(rt), Some(w))) => Ok(Self::Detail(rt, w)),
            (Route::Input, &Method::POST, (Some(rt), Some(w))) => Ok(Self::Input(rt, w)),
            (_, _, ids) => Err(ids),
        }
    }
}

/// Whether a query asks for an interactive event stream (read leniently, for the
/// audit line only; the route checks the query strictly).
fn asks_interactive(query: Option<&str>) -> bool {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .any(|(name, value)| name == "interactive" && value == "true")
}

/// `status`, `after` and `limit` of a worker listing. A `limit` of 0 is refused here,
/// so that `GET /api/workers` answers it as the caller's mistake rather than listing
/// every runtime as unavailable.
pub(crate) fn worker_query(query: Option<&str>) -> Result<WorkerQuery, ApiError> {
    let q = Query::parse(query, &["status", "limit", "after"])?;
    let limit = q.parse_as("limit", "a whole number")?;
    if limit == Some(0) {
        return Err(ApiError::invalid_request("limit must be at least 1"));
    }
    Ok(WorkerQuery {
        status: q.parse_as::<WorkerStatus>(
            "status",
            "one of starting, running, exited, stopped, failed, lost",
        )?,
        after: q.get("after").map(WorkerId::new).transpose()?,
        limit,
    })
}

/// The body of a bodyless command (cancel, stop, delete, reload): if there is one,
/// JSON (`415` otherwise), read within the limit (no unbounded body is streamed at
/// us) and refused with `400 invalid_request` unless `{}`.
pub(crate) async fn drain_body(
    request: http::Request<Incoming>,
    limit: u64,
) -> Result<(), ApiError> {
    let (parts, body) = request.into_parts();
    check_content_type(&parts.headers)?;
    let body = read_limited(&parts.headers, body, limit).await?;
    if is_empty_object(&body) {
        Ok(())
    } else {
        Err(ApiError::invalid_request(
            "this request takes no body; send none (or {})",
        ))
    }
}

/// Nothing, or `{}`, give or take white space: all a bodyless request may carry
/// (the contract refuses unknown fields, so no field is known here).
fn is_empty_object(body: &[u8]) -> bool {
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    text.is_empty() || text == b"{}"
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        Self::from(error.to_detail())
    }
}

impl Handler for BackendApi {
    async fn handle(&self, request: http::Request<Incoming>, ctx: RequestContext) -> Answer {
        let mut answer = self.answer(request, &ctx).await;
        browser::security_headers(answer.response.headers_mut());
        answer
    }
}
