//! A route table over `matchit` shared by both surfaces, and the one place where a
//! handler's result becomes a response.

use switchyard_protocol::ErrorCode;

use super::metrics::MatchedRoute;
use super::{ApiError, RequestContext, Response};

/// Path templates to route values, for one surface (named in "no route" errors).
pub struct RouteTable<R> {
    router: matchit::Router<(R, MatchedRoute)>,
    surface: &'static str,
}

impl<R: Copy> RouteTable<R> {
    /// A table of `(template, route)` pairs; templates use `{name}` parameters.
    pub fn new(surface: &'static str, routes: impl IntoIterator<Item = (String, R)>) -> Self {
        let mut router = matchit::Router::new();
        for (path, route) in routes {
            let template = MatchedRoute(path.as_str().into());
            if let Err(error) = router.insert(path, (route, template)) {
                unreachable!("static route table is valid: {error}");
            }
        }
        Self { router, surface }
    }

    /// The route for `path` and its parameters, or `404 route_not_found`. A path that
    /// would match with an id where it has an empty segment (`/api/runtimes//workers`)
    /// is `400 invalid_id`: an empty id is an invalid id, never a missing route.
    pub fn find<'p>(&'p self, path: &'p str) -> Result<(R, matchit::Params<'p, 'p>), ApiError> {
        match self.router.at(path) {
            Ok(matched) => Ok((matched.value.0, matched.params)),
            Err(_) => Err(match self.empty_id(path) {
                Some(name) => {
                    ApiError::new(ErrorCode::InvalidId, format!("{name} must not be empty"))
                }
                None => ApiError::new(
                    ErrorCode::RouteNotFound,
                    format!("no route {path}; the {}", self.surface),
                ),
            }),
        }
    }

    /// The template of the route `path` matches, for the metrics' route label.
    pub fn template(&self, path: &str) -> Option<MatchedRoute> {
        self.router.at(path).ok().map(|m| m.value.1.clone())
    }

    /// The parameter an empty segment of `path` stands for, if filling it would match.
    fn empty_id(&self, path: &str) -> Option<String> {
        const HOLE: &str = "\u{1}";
        let segments: Vec<&str> = path.split('/').collect();
        if segments.len() < 2 || !segments[1..].contains(&"") {
            return None;
        }
        let filled: Vec<&str> = segments
            .iter()
            .enumerate()
            .map(|(i, s)| if i > 0 && s.is_empty() { HOLE } else { s })
            .collect();
        let filled = filled.join("/");
        let matched = self.router.at(&filled).ok()?;
        matched
            .params
            .iter()
            .find(|(_, value)| *value == HOLE)
            .map(|(name, _)| name.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_ids_are_invalid_ids_and_other_misses_are_404() {
        let table = RouteTable::new(
            "test API",
            [
                ("/api/runtimes/{runtime_id}/workers".to_owned(), 1),
                (
                    "/api/runtimes/{runtime_id}/workers/{worker_id}".to_owned(),
                    2,
                ),
            ],
        );
        assert_eq!(table.find("/api/runtimes/a/workers").unwrap().0, 1);
        assert_eq!(
            table
                .template("/api/runtimes/a/workers/b")
                .unwrap()
                .0
                .as_ref(),
            "/api/runtimes/{runtime_id}/workers/{worker_id}"
        );
        assert_eq!(table.template("/api/runtimes/a/nope"), None);
        let code = |path| {
            table
                .find(path)
                .err()
                .map(|e| (e.detail.code, e.detail.message))
        };
        assert_eq!(
            code("/api/runtimes//workers"),
            Some((ErrorCode::InvalidId, "runtime_id must not be empty".into()))
        );
        assert_eq!(
            code("/api/runtimes/a/workers/"),
            Some((ErrorCode::InvalidId, "worker_id must not be empty".into()))
        );
        assert_eq!(
            code("/api//runtimes").map(|c| c.0),
            Some(ErrorCode::RouteNotFound)
        );
        assert_eq!(code("/nope").map(|c| c.0), Some(ErrorCode::RouteNotFound));
    }
}
