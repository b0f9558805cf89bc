//! Route table and handlers of the Runtime API.

use std::sync::Arc;

use http::{Method, StatusCode};
use hyper::body::Incoming;
use switchyard_protocol::{CreateWorkerRequest, Health, ResizeRequest, WorkerId};
use switchyard_runtime::{ListQuery, Runtime, RuntimeError};

use super::not_browsers::refuse_browsers;
use crate::backend_api::{drain_body, worker_query};
use crate::http::auth::{BearerTokens, check_bearer};
use crate::http::body::{BodyLimit, read_input, read_json};
use crate::http::query::Query;
use crate::http::response::{empty, json};
use crate::http::router::{RouteDef, RouteTable, respond};
use crate::http::ws::SessionSettings;
use crate::http::{Answer, ApiError, Handler, RequestContext, Response};
use crate::metrics::Metrics;

/// Settings of the Runtime API surface.
#[derive(Debug, Clone)]
pub struct RuntimeApiSettings {
    /// Bearer tokens, any one of which every route but `/v1/health` requires; none
    /// turns auth off. A clone kept elsewhere (a reload's) changes them while the
    /// runtime serves.
    pub tokens: BearerTokens,
    /// Largest request body; the same goes for a clone.
    pub max_body_bytes: BodyLimit,
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

/// What a Runtime API path names; the handler matches on it with the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Health,
    OpenApi,
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

/// Every route of the Runtime API with its methods: what the router answers, what
/// `405`s list in `Allow`, and what the OpenAPI document is checked against.
pub(crate) static ROUTES: &[RouteDef<Route>] = &[
    RouteDef {
        path: "/v1/health",
        route: Route::Health,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/v1/openapi.json",
        route: Route::OpenApi,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/v1/runtime",
        route: Route::Runtime,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/v1/workers",
        route: Route::Workers,
        methods: &[Method::GET, Method::POST],
    },
    RouteDef {
        path: "/v1/workers/{worker_id}",
        route: Route::Worker,
        methods: &[Method::GET, Method::DELETE],
    },
    RouteDef {
        path: "/v1/workers/{worker_id}/input",
        route: Route::Input,
        methods: &[Method::POST],
    },
    RouteDef {
        path: "/v1/workers/{worker_id}/resize",
        route: Route::Resize,
        methods: &[Method::POST],
    },
    RouteDef {
        path: "/v1/workers/{worker_id}/cancel",
        route: Route::Cancel,
        methods: &[Method::POST],
    },
    RouteDef {
        path: "/v1/workers/{worker_id}/stop",
        route: Route::Stop,
        methods: &[Method::POST],
    },
    RouteDef {
        path: "/v1/workers/{worker_id}/transcript",
        route: Route::Transcript,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/v1/workers/{worker_id}/events/ws",
        route: Route::Events,
        methods: &[Method::GET],
    },
    RouteDef {
        path: "/v1/metrics",
        route: Route::Metrics,
        methods: &[Method::GET],
    },
];

impl RuntimeApi {
    /// Binds `runtime` to the `/v1` routes.
    pub fn new(runtime: Runtime, settings: RuntimeApiSettings) -> Self {
        Self {
            // Replaced by `with_metrics` when served by `switchyard runtime`.
            metrics: Arc::new(Metrics::runtime_alone(&runtime)),
            runtime,
            settings,
            routes: RouteTable::new("Runtime API lives under /v1", ROUTES),
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
        // The tokens and the body limit in force when the request comes, read once:
        // a reload applies to the next request, never to one under way.
        let tokens = self.settings.tokens.current();
        refuse_browsers(request.uri(), request.headers(), tokens.is_empty())?;
        let path = request.uri().path().to_owned();
        let found = self.routes.find(&path);
        // Auth first: an unauthenticated caller learns nothing, not even which
        // routes there are or the id rules.
        let opened_with = if matches!(&found, Ok(found) if matches!(found.route(), Route::Health)) {
            None
        } else {
            check_bearer(request.headers(), &tokens)?
        };
        let found = found?;
        let route = found.route();
        found.check_method(request.method())?;
        let worker_id = found
            .params
            .get("worker_id")
            .map(WorkerId::new)
            .transpose()?;
        let method = request.method().clone();
        let query = request.uri().query().map(str::to_owned);
        let query = query.as_deref();
        let limit = self.settings.max_body_bytes.current();
        let runtime = &self.runtime;
        match (route, method, worker_id) {
            (Route::Health, Method::GET, _) => Ok(json(StatusCode::OK, &Health::ok())),
            (Route::OpenApi, Method::GET, _) => {
                Query::parse(query, &[])?;
                Ok(crate::openapi::runtime_document().response())
            }
            (Route::Runtime, Method::GET, _) => {
                Query::parse(query, &[])?;
                Ok(json(StatusCode::OK, &runtime.info()))
            }
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
            (Route::Worker, Method::GET, Some(id)) => {
                Query::parse(query, &[])?;
                Ok(json(StatusCode::OK, &runtime.get(&id)?))
            }
            (Route::Worker, Method::DELETE, Some(id)) => {
                Query::parse(query, &[])?;
                drain_body(request, limit).await?;
                runtime.delete(&id).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            (Route::Input, Method::POST, Some(id)) => {
                Query::parse(query, &[])?;
                let (parts, body) = request.into_parts();
                let input = read_input(&parts.headers, body, limit).await?;
                Ok(json(
                    StatusCode::ACCEPTED,
                    &runtime.input(&id, input.text).await?,
                ))
            }
            (Route::Resize, Method::POST, Some(id)) => {
                Query::parse(query, &[])?;
                let (parts, body) = request.into_parts();
                let size: ResizeRequest = read_json(&parts.headers, body, limit).await?;
                Ok(json(StatusCode::OK, &runtime.resize(&id, size).await?))
            }
            (Route::Cancel, Method::POST, Some(id)) => {
                Query::parse(query, &[])?;
                drain_body(request, limit).await?;
                Ok(json(StatusCode::OK, &runtime.cancel(&id)?))
            }
            (Route::Stop, Method::POST, Some(id)) => {
                Query::parse(query, &[])?;
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
                    access: super::events::Access {
                        tokens: self.settings.tokens.clone(),
                        opened_with,
                    },
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
            (_, method, _) => Err(found.method_not_allowed(&method)),
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
    async fn handle(&self, request: http::Request<Incoming>, ctx: RequestContext) -> Answer {
        let route = self.routes.template(request.uri().path());
        Answer::labelled(respond(self.route(request, &ctx).await, &ctx), route)
    }
}
