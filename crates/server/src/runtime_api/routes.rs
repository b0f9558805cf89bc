//! Route table and handlers of the Runtime API.

use std::sync::Arc;

use http::{Method, StatusCode};
use hyper::body::Incoming;
use switchyard_protocol::{
    CreateWorkerRequest, ErrorCode, Health, InputRequest, ResizeRequest, WorkerId,
};
use switchyard_runtime::{ListQuery, Runtime, RuntimeError};
use switchyard_transport::SecretToken;

use crate::backend_api::{drain_body, worker_query};
use crate::http::auth::check_bearer;
use crate::http::body::read_json;
use crate::http::query::Query;
use crate::http::response::{empty, json};
use crate::http::router::{RouteTable, respond};
use crate::http::ws::SessionSettings;
use crate::http::{ApiError, Handler, RequestContext, Response};
use crate::metrics::Metrics;

/// Settings of the Runtime API surface.
#[derive(Debug, Clone)]
pub struct RuntimeApiSettings {
    /// Bearer token required on every route but `/v1/health`; `None` turns auth off.
    pub token: Option<SecretToken>,
    /// Largest request body.
    pub max_body_bytes: u64,
    /// WebSocket timing.
    pub session: SessionSettings,
}

/// The Runtime API handler.
pub struct RuntimeApi {
    runtime: Runtime,
    settings: RuntimeApiSettings,
    routes: RouteTable<Route>,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Health,
    Runtime,
    Workers,
    Worker,
    Input,
    Resize,
    Cancel,
    Stop,
    Transcript,
    Events,
    Metrics,
}

impl RuntimeApi {
    /// Binds `runtime` to the `/v1` routes.
    pub fn new(runtime: Runtime, settings: RuntimeApiSettings) -> Self {
        let routes = [
            ("/v1/health".to_owned(), Route::Health),
            ("/v1/runtime".to_owned(), Route::Runtime),
            ("/v1/workers".to_owned(), Route::Workers),
            ("/v1/workers/{worker_id}".to_owned(), Route::Worker),
            ("/v1/workers/{worker_id}/input".to_owned(), Route::Input),
            ("/v1/workers/{worker_id}/resize".to_owned(), Route::Resize),
            ("/v1/workers/{worker_id}/cancel".to_owned(), Route::Cancel),
            ("/v1/workers/{worker_id}/stop".to_owned(), Route::Stop),
            (
                "/v1/workers/{worker_id}/transcript".to_owned(),
                Route::Transcript,
            ),
            (
                "/v1/workers/{worker_id}/events/ws".to_owned(),
                Route::Events,
            ),
            ("/v1/metrics".to_owned(), Route::Metrics),
        ];
        Self {
            // Replaced by `with_metrics` when served by `switchyard runtime`.
            metrics: Arc::new(Metrics::runtime_alone(&runtime)),
            runtime,
            settings,
            routes: RouteTable::new("Runtime API lives under /v1", routes),
        }
    }

    /// Serves `metrics` at `GET /v1/metrics` (under the token).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The runtime it serves.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    async fn route(
        &self,
        request: http::Request<Incoming>,
        ctx: &RequestContext,
    ) -> Result<Response, ApiError> {
        let path = request.uri().path().to_owned();
        let (route, params) = self.routes.find(&path)?;
        // Auth first: an unauthenticated caller learns nothing, not even id rules.
        if !matches!(route, Route::Health) {
            check_bearer(request.headers(), self.settings.token.as_ref())?;
        }
        let worker_id = params.get("worker_id").map(WorkerId::new).transpose()?;
        let method = request.method().clone();
        let query = request.uri().query().map(str::to_owned);
        let query = query.as_deref();
        let limit = self.settings.max_body_bytes;
        let runtime = &self.runtime;
        match (route, method, worker_id) {
            (Route::Health, Method::GET, _) => Ok(json(StatusCode::OK, &Health::ok())),
            (Route::Runtime, Method::GET, _) => Ok(json(StatusCode::OK, &runtime.info())),
            (Route::Metrics, Method::GET, _) => {
                Query::parse(query, &[])?;
                Ok(self.metrics.answer())
            }
            (Route::Workers, Method::GET, _) => {
                let q = worker_query(query)?;
                let list = runtime.list(&ListQuery {
                    status: q.status,
                    after: q.after,
                    limit: q.limit,
                })?;
                Ok(json(StatusCode::OK, &list))
            }
            (Route::Workers, Method::POST, _) => {
                Query::parse(query, &[])?;
                let (parts, body) = request.into_parts();
                let create: CreateWorkerRequest = read_json(&parts.headers, body, limit).await?;
                Ok(json(StatusCode::CREATED, &runtime.create(create).await?))
            }
            (Route::Worker, Method::GET, Some(id)) => Ok(json(StatusCode::OK, &runtime.get(&id)?)),
            (Route::Worker, Method::DELETE, Some(id)) => {
                runtime.delete(&id).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            (Route::Input, Method::POST, Some(id)) => {
                let (parts, body) = request.into_parts();
                let input: InputRequest = read_json(&parts.headers, body, limit).await?;
                Ok(json(
                    StatusCode::ACCEPTED,
                    &runtime.input(&id, input.text).await?,
                ))
            }
            (Route::Resize, Method::POST, Some(id)) => {
                let (parts, body) = request.into_parts();
                let size: ResizeRequest = read_json(&parts.headers, body, limit).await?;
                Ok(json(StatusCode::OK, &runtime.resize(&id, size).await?))
            }
            (Route::Cancel, Method::POST, Some(id)) => {
                drain_body(request, limit).await?;
                Ok(json(StatusCode::OK, &runtime.cancel(&id)?))
            }
            (Route::Stop, Method::POST, Some(id)) => {
                drain_body(request, limit).await?;
                Ok(json(StatusCode::OK, &runtime.stop(&id).await?))
            }
            (Route::Transcript, Method::GET, Some(id)) => {
                let q = Query::parse(query, &["after", "limit"])?;
                let after = q.parse_as("after", "a whole number")?.unwrap_or(0);
                let limit = q.parse_as("limit", "a whole number")?;
                Ok(json(
                    StatusCode::OK,
                    &runtime.transcript(&id, after, limit).await?,
                ))
            }
            (Route::Events, Method::GET, Some(id)) => {
                let q = Query::parse(query, &["cursor", "snapshot", "interactive"])?;
                let opening = super::events::Opening {
                    cursor: q.get("cursor"),
                    snapshot_after_replay: q
                        .parse_as::<bool>("snapshot", "true or false")?
                        .unwrap_or(false),
                    interactive: q
                        .parse_as::<bool>("interactive", "true or false")?
                        .unwrap_or(false),
                };
                super::events::upgrade(
                    runtime,
                    &id,
                    opening,
                    request,
                    ctx,
                    self.settings.session,
                    usize::try_from(limit).unwrap_or(usize::MAX),
                )
            }
            (_, method, _) => Err(ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{method} is not allowed on {path}"),
            )),
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(error: RuntimeError) -> Self {
        if let RuntimeError::Store(store) = &error {
            tracing::error!(error = %store, "store failure");
        }
        Self::from(error.to_detail())
    }
}

impl Handler for RuntimeApi {
    async fn handle(&self, request: http::Request<Incoming>, ctx: RequestContext) -> Response {
        let route = self.routes.template(request.uri().path());
        let mut response = respond(self.route(request, &ctx).await, &ctx);
        if let Some(route) = route {
            response.extensions_mut().insert(route);
        }
        response
    }
}
