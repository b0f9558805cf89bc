//! Route table and handlers of the backend API.

use std::sync::Arc;

use http::{Method, StatusCode};
use hyper::body::Incoming;
use switchyard_protocol::{
    CreateWorkerRequest, ErrorCode, Health, InputRequest, RuntimeId, RuntimeList, WorkerId,
    WorkerStatus,
};
use switchyard_registry::{ObservationHub, RegistryError, RuntimeRegistry};
use switchyard_transport::WorkerQuery;

use crate::http::body::{read_json, read_limited};
use crate::http::query::Query;
use crate::http::response::{empty, json};
use crate::http::router::{RouteTable, respond};
use crate::http::ws::SessionSettings;
use crate::http::{ApiError, Handler, RequestContext, Response};

use super::Readiness;

/// Settings of the backend API surface.
#[derive(Debug, Clone)]
pub struct BackendApiSettings {
    /// Largest request body.
    pub max_body_bytes: u64,
    /// Origins besides the backend's own that may open WebSockets.
    pub allowed_origins: Vec<String>,
    /// WebSocket timing.
    pub session: SessionSettings,
}

/// The backend API handler.
pub struct BackendApi {
    registry: Arc<RuntimeRegistry>,
    hub: ObservationHub,
    settings: BackendApiSettings,
    routes: RouteTable<Route>,
    readiness: Readiness,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Health,
    Ready,
    Runtimes,
    Runtime,
    AllWorkers,
    Workers,
    Worker,
    Input,
    Cancel,
    Stop,
    Transcript,
    Events,
}

impl BackendApi {
    /// Binds `registry` and its observation `hub` to the `/api` routes.
    pub fn new(
        registry: Arc<RuntimeRegistry>,
        hub: ObservationHub,
        settings: BackendApiSettings,
    ) -> Self {
        let w = "/api/runtimes/{runtime_id}/workers/{worker_id}";
        let routes = [
            ("/healthz".to_owned(), Route::Health),
            ("/readyz".to_owned(), Route::Ready),
            ("/api/runtimes".to_owned(), Route::Runtimes),
            ("/api/runtimes/{runtime_id}".to_owned(), Route::Runtime),
            ("/api/workers".to_owned(), Route::AllWorkers),
            (
                "/api/runtimes/{runtime_id}/workers".to_owned(),
                Route::Workers,
            ),
            (w.to_owned(), Route::Worker),
            (format!("{w}/input"), Route::Input),
            (format!("{w}/cancel"), Route::Cancel),
            (format!("{w}/stop"), Route::Stop),
            (format!("{w}/transcript"), Route::Transcript),
            (format!("{w}/events/ws"), Route::Events),
        ];
        Self {
            registry,
            hub,
            settings,
            routes: RouteTable::new("backend API lives under /api", routes),
            readiness: Readiness::new(),
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

    async fn route(
        &self,
        request: http::Request<Incoming>,
        ctx: &RequestContext,
    ) -> Result<Response, ApiError> {
        let path = request.uri().path().to_owned();
        if crate::console::owns(&path) {
            return crate::console::respond(request.method(), &path, request.headers());
        }
        let (route, params) = self.routes.find(&path)?;
        let runtime = params.get("runtime_id").map(RuntimeId::new).transpose()?;
        let worker = params.get("worker_id").map(WorkerId::new).transpose()?;
        let method = request.method().clone();
        let query = request.uri().query().map(str::to_owned);
        let query = query.as_deref();
        let limit = self.settings.max_body_bytes;
        let registry = &self.registry;
        match (route, method, runtime, worker) {
            (Route::Health, Method::GET, ..) => Ok(json(StatusCode::OK, &Health::ok())),
            // Like /healthz, lenient about the query: a probe must not fail on it.
            (Route::Ready, Method::GET, ..) => self.readiness.answer(),
            (Route::Runtimes, Method::GET, ..) => {
                Query::parse(query, &[])?;
                let runtimes = registry.runtimes();
                Ok(json(StatusCode::OK, &RuntimeList { runtimes }))
            }
            (Route::Runtime, Method::GET, Some(rt), _) => {
                Ok(json(StatusCode::OK, &registry.runtime(&rt).await?))
            }
            (Route::AllWorkers, Method::GET, ..) => {
                let q = worker_query(query)?;
                Ok(json(StatusCode::OK, &registry.list_all(&q).await))
            }
            (Route::Workers, Method::GET, Some(rt), _) => {
                let q = worker_query(query)?;
                Ok(json(StatusCode::OK, &registry.list_workers(&rt, &q).await?))
            }
            (Route::Workers, Method::POST, Some(rt), _) => {
                Query::parse(query, &[])?;
                let (parts, body) = request.into_parts();
                let create: CreateWorkerRequest = read_json(&parts.headers, body, limit).await?;
                Ok(json(
                    StatusCode::CREATED,
                    &registry.create_worker(&rt, &create).await?,
                ))
            }
            (Route::Worker, Method::GET, Some(rt), Some(w)) => {
                Ok(json(StatusCode::OK, &registry.get_worker(&rt, &w).await?))
            }
            (Route::Worker, Method::DELETE, Some(rt), Some(w)) => {
                registry.delete(&rt, &w).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            (Route::Input, Method::POST, Some(rt), Some(w)) => {
                let (parts, body) = request.into_parts();
                let input: InputRequest = read_json(&parts.headers, body, limit).await?;
                Ok(json(
                    StatusCode::ACCEPTED,
                    &registry.input(&rt, &w, input.text).await?,
                ))
            }
            (Route::Cancel, Method::POST, Some(rt), Some(w)) => {
                drain_body(request, limit).await?;
                Ok(json(StatusCode::OK, &registry.cancel(&rt, &w).await?))
            }
            (Route::Stop, Method::POST, Some(rt), Some(w)) => {
                drain_body(request, limit).await?;
                Ok(json(StatusCode::OK, &registry.stop(&rt, &w).await?))
            }
            (Route::Transcript, Method::GET, Some(rt), Some(w)) => {
                let q = Query::parse(query, &["after", "limit"])?;
                let after = q.parse_as("after", "a whole number")?.unwrap_or(0);
                let limit = q.parse_as("limit", "a whole number")?;
                Ok(json(
                    StatusCode::OK,
                    &registry.transcript(&rt, &w, after, limit).await?,
                ))
            }
            (Route::Events, Method::GET, Some(rt), Some(w)) => {
                let q = Query::parse(query, &["cursor"])?;
                super::events::upgrade(
                    &self.hub,
                    &self.settings.allowed_origins,
                    (&rt, &w),
                    q.get("cursor"),
                    request,
                    ctx,
                    self.settings.session,
                )
                .await
            }
            (_, method, ..) => Err(ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{method} is not allowed on {path}"),
            )),
        }
    }
}

/// `status`, `after` and `limit` of a worker listing.
pub(crate) fn worker_query(query: Option<&str>) -> Result<WorkerQuery, ApiError> {
    let q = Query::parse(query, &["status", "limit", "after"])?;
    Ok(WorkerQuery {
        status: q.parse_as::<WorkerStatus>(
            "status",
            "one of starting, running, exited, stopped, failed, lost",
        )?,
        after: q.get("after").map(WorkerId::new).transpose()?,
        limit: q.parse_as("limit", "a whole number")?,
    })
}

/// Bodyless commands still may not stream an unbounded body at us.
pub(crate) async fn drain_body(
    request: http::Request<Incoming>,
    limit: u64,
) -> Result<(), ApiError> {
    let (parts, body) = request.into_parts();
    read_limited(&parts.headers, body, limit).await.map(drop)
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        Self::from(error.to_detail())
    }
}

impl Handler for BackendApi {
    async fn handle(&self, request: http::Request<Incoming>, ctx: RequestContext) -> Response {
        respond(self.route(request, &ctx).await, &ctx)
    }
}
