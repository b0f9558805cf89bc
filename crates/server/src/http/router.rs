//! A route table over `matchit` shared by both surfaces, and the one place where a
//! handler's result becomes a response.

use http::Method;
use switchyard_protocol::ErrorCode;

use super::metrics::MatchedRoute;
use super::{ApiError, RequestContext, Response};

/// One route of a surface: its path template (`{name}` parameters), the value its
/// handler matches on, and the methods it answers. The surfaces' tables of these are
/// what their OpenAPI documents are checked against.
#[derive(Debug)]
pub struct RouteDef<R: 'static> {
    /// The path template, for example `/v1/workers/{worker_id}`.
    pub path: &'static str,
    /// The handler's name for the route.
    pub route: R,
    /// The methods it answers; any other is `405` with these in `Allow`. `GET`
    /// implies `HEAD`, which is not listed (the server answers a `HEAD` as its `GET`,
    /// see [`Handler`](super::Handler)), and which `Allow` names after it.
    pub methods: &'static [Method],
}

/// A route found for a request path.
#[derive(Debug)]
pub struct Found<'p, R: 'static> {
    /// The route's definition.
    pub def: &'static RouteDef<R>,
    /// The path's parameters.
    pub params: matchit::Params<'p, 'p>,
}

impl<R: Copy> Found<'_, R> {
    /// The route's handler value.
    pub fn route(&self) -> R {
        self.def.route
    }

    /// `405 method_not_allowed` for `method`, with the route's methods in `Allow`.
    pub fn method_not_allowed(&self, method: &Method) -> ApiError {
        method_not_allowed(method, self.def.path, self.def.methods)
    }

    /// `Ok` when the route answers `method`, else its `405`. Checked before the
    /// path's ids are: a method the route never answers is a 405 whatever the ids.
    pub fn check_method(&self, method: &Method) -> Result<(), ApiError> {
        if self.def.methods.contains(method) {
            Ok(())
        } else {
            Err(self.method_not_allowed(method))
        }
    }
}

/// `405 method_not_allowed` naming `method` and the methods `path` answers, which the
/// answer also carries in `Allow` (as HTTP requires of a 405). `HEAD` follows `GET`
/// there: a path that answers `GET` answers `HEAD` too.
pub fn method_not_allowed(method: &Method, path: &str, allowed: &[Method]) -> ApiError {
    let answers_get = allowed.contains(&Method::GET);
    let mut names = Vec::with_capacity(allowed.len() + 1);
    for m in allowed {
        match *m {
            Method::GET => names.extend(["GET", "HEAD"]),
            Method::HEAD if answers_get => {}
            _ => names.push(m.as_str()),
        }
    }
    let allow = names.join(", ");
    let mut error = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed on {path}; allowed: {allow}"),
    );
    error.allow = Some(allow.into());
    error
}

/// Path templates to route definitions, for one surface (named in "no route" errors).
pub struct RouteTable<R: 'static> {
    router: matchit::Router<&'static RouteDef<R>>,
    surface: &'static str,
}

impl<R: Copy> RouteTable<R> {
    /// A table of route definitions.
    pub fn new(surface: &'static str, routes: &'static [RouteDef<R>]) -> Self {
        let mut router = matchit::Router::new();
        for def in routes {
            if let Err(error) = router.insert(def.path, def) {
                unreachable!("static route table is valid: {error}");
            }
        }
        Self { router, surface }
    }

    /// The route for `path` and its parameters, or `404 route_not_found`. A path that
    /// would match with an id where it has an empty segment (`/api/runtimes//workers`)
    /// is `400 invalid_id`: an empty id is an invalid id, never a missing route.
    pub fn find<'p>(&'p self, path: &'p str) -> Result<Found<'p, R>, ApiError> {
        match self.router.at(path) {
            Ok(matched) => Ok(Found {
                def: matched.value,
                params: matched.params,
            }),
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
        self.router
            .at(path)
            .ok()
            .map(|m| MatchedRoute(m.value.path))
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
            ApiError::internal(ctx.request_id.as_str()).into_response()
        }
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROUTES: &[RouteDef<u8>] = &[
        RouteDef {
            path: "/api/runtimes/{runtime_id}/workers",
            route: 1,
            methods: &[Method::GET, Method::POST],
        },
        RouteDef {
            path: "/api/runtimes/{runtime_id}/workers/{worker_id}",
            route: 2,
            methods: &[Method::GET],
        },
    ];

    #[test]
    fn empty_ids_are_invalid_ids_and_other_misses_are_404() {
        let table = RouteTable::new("test API", ROUTES);
        assert_eq!(table.find("/api/runtimes/a/workers").unwrap().route(), 1);
        assert_eq!(
            table.template("/api/runtimes/a/workers/b").unwrap().0,
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

    #[test]
    fn a_405_names_the_allowed_methods_in_allow() {
        let table = RouteTable::new("test API", ROUTES);
        let found = table.find("/api/runtimes/a/workers").unwrap();
        let response = found.method_not_allowed(&Method::PUT).into_response();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "GET, HEAD, POST");
        assert!(found.check_method(&Method::POST).is_ok());
        let refused = found.check_method(&Method::TRACE).unwrap_err();
        assert_eq!(refused.detail.code, ErrorCode::MethodNotAllowed);
        assert_eq!(refused.allow.as_deref(), Some("GET, HEAD, POST"));
    }

    #[test]
    fn allow_names_head_after_get_and_only_where_get_is() {
        // (the route's methods, its Allow)
        let cases: [(&[Method], &str); 6] = [
            (&[Method::GET], "GET, HEAD"),
            (&[Method::GET, Method::DELETE], "GET, HEAD, DELETE"),
            (
                &[Method::GET, Method::POST, Method::DELETE],
                "GET, HEAD, POST, DELETE",
            ),
            (&[Method::POST], "POST"),
            // Listed beside GET, HEAD is not named twice.
            (&[Method::GET, Method::HEAD], "GET, HEAD"),
            (&[Method::HEAD], "HEAD"),
        ];
        for (methods, allow) in cases {
            let error = method_not_allowed(&Method::PUT, "/p", methods);
            assert_eq!(error.allow.as_deref(), Some(allow), "{methods:?}");
            assert!(
                error.detail.message.ends_with(&format!("allowed: {allow}")),
                "{}",
                error.detail.message
            );
        }
    }
}
