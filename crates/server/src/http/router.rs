//! A route table over `matchit` shared by both surfaces, and the one place where a
//! handler's result becomes a response.

use switchyard_protocol::ErrorCode;

use super::{ApiError, RequestContext, Response};

/// Path templates to route values, for one surface (named in "no route" errors).
pub struct RouteTable<R> {
    router: matchit::Router<R>,
    surface: &'static str,
}

impl<R: Copy> RouteTable<R> {
    /// A table of `(template, route)` pairs; templates use `{name}` parameters.
    pub fn new(surface: &'static str, routes: impl IntoIterator<Item = (String, R)>) -> Self {
        let mut router = matchit::Router::new();
        for (path, route) in routes {
            if let Err(error) = router.insert(path, route) {
                unreachable!("static route table is valid: {error}");
            }
        }
        Self { router, surface }
    }

    /// The route for `path` and its parameters, or `404 route_not_found`.
    pub fn find<'p>(&'p self, path: &'p str) -> Result<(R, matchit::Params<'p, 'p>), ApiError> {
        match self.router.at(path) {
            Ok(matched) => Ok((*matched.value, matched.params)),
            Err(_) => Err(ApiError::new(
                ErrorCode::RouteNotFound,
                format!("no route {path}; the {}", self.surface),
            )),
        }
    }
}

/// The response for a handler's result. An `internal` error is logged with the
/// request id and answered with a message that quotes it (never the details).
pub fn respond(result: Result<Response, ApiError>, ctx: &RequestContext) -> Response {
    match result {
        Ok(response) => response,
        Err(error) if error.detail.code == ErrorCode::Internal => {
            tracing::error!(request_id = %ctx.request_id, message = %error.detail.message, "internal error");
            ApiError::internal(&ctx.request_id).into_response()
        }
        Err(error) => error.into_response(),
    }
}
