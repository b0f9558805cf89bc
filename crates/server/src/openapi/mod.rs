//! The OpenAPI 3.1 documents of both surfaces, built with utoipa from the protocol's
//! types (`ToSchema`, the protocol crate's `openapi` feature) and the surfaces'
//! operation tables (`runtime.rs`, `backend.rs`). Tests hold each table to its
//! surface's route table (`ROUTES`: the same paths with the same methods), so the
//! document cannot list a route the server lacks or miss one it has; schemathesis
//! (`cargo xtask api-test`) holds the answers to the document.
//!
//! Served at `GET /v1/openapi.json` (under the runtime's token) and
//! `GET /api/openapi.json` (public: it is the same for every deployment).

mod backend;
mod params;
mod runtime;
mod spec;
#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use http_body_util::Full;
use serde_json::Value;
use utoipa::openapi::path::PathsBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder, PathItem, Tag,
};

use crate::http::Response;
use spec::{Op, Schemas, Surface, http_method};

/// A surface's document, built once and kept as JSON text.
pub struct Document {
    openapi: OpenApi,
    json: Bytes,
}

impl Document {
    fn new(openapi: OpenApi) -> Self {
        let json = serde_json::to_value(&openapi)
            .map(fix_link_keys)
            .and_then(|value| serde_json::to_vec(&value));
        let json = match json {
            Ok(json) => Bytes::from(json),
            Err(error) => unreachable!("an OpenAPI document always serializes: {error}"),
        };
        Self { openapi, json }
    }

    /// The document as utoipa's model.
    pub fn openapi(&self) -> &OpenApi {
        &self.openapi
    }

    /// The document as JSON text.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The `200 application/json` answer with the document.
    pub fn response(&self) -> Response {
        let mut response = http::Response::new(Full::new(self.json.clone()));
        *response.status_mut() = StatusCode::OK;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// utoipa 5 writes a Link Object's fields in snake_case (`operation_id`,
/// `operation_ref`, `request_body`); OpenAPI spells them in camelCase. Renames them in
/// every response's `links`.
fn fix_link_keys(mut document: Value) -> Value {
    let operations = document["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    for operation in operations {
        let links = operation["responses"]
            .as_object_mut()
            .into_iter()
            .flat_map(|responses| responses.values_mut())
            .filter_map(|response| response.get_mut("links")?.as_object_mut())
            .flat_map(|links| links.values_mut())
            .filter_map(Value::as_object_mut);
        for link in links {
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_owned(), value);
                }
            }
        }
    }
    document
}

/// The Runtime API's document.
pub fn runtime_document() -> &'static Document {
    static DOCUMENT: LazyLock<Document> = LazyLock::new(|| {
        let bearer = SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The runtime's token (`token_file`, `token_env`, `--token-file` or \
                     SWITCHYARD_RUNTIME_TOKEN). Without one the runtime serves loopback only.",
                ))
                .build(),
        );
        let surface = Surface {
            credentials: vec![SecurityRequirement::new("bearer", Vec::<String>::new())],
            common_errors: runtime::common_errors,
        };
        Document::new(build(
            "Switchyard Runtime API",
            RUNTIME_INTRO,
            &surface,
            runtime::operations,
            vec![("bearer", bearer)],
        ))
    });
    &DOCUMENT
}

/// The backend API's document.
pub fn backend_document() -> &'static Document {
    static DOCUMENT: LazyLock<Document> = LazyLock::new(|| {
        let bearer = SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A token from the backend's `[[auth.token]]` entries (`switchyard token` \
                     makes one). Without `[auth]` every caller is the anonymous admin.",
                ))
                .build(),
        );
        let session = SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "switchyard_session",
            "The session cookie from `POST /api/session`; honoured on requests from the \
             backend's own pages (no foreign `Origin`).",
        )));
        let surface = Surface {
            credentials: vec![
                SecurityRequirement::new("bearer", Vec::<String>::new()),
                SecurityRequirement::new("session", Vec::<String>::new()),
            ],
            common_errors: backend::common_errors,
        };
        Document::new(build(
            "Switchyard backend API",
            BACKEND_INTRO,
            &surface,
            backend::operations,
            vec![("bearer", bearer), ("session", session)],
        ))
    });
    &DOCUMENT
}

/// Builds a document from a surface's operation table.
fn build(
    title: &str,
    intro: &str,
    surface: &Surface,
    operations: fn(&mut Schemas) -> Vec<Op>,
    security: Vec<(&str, SecurityScheme)>,
) -> OpenApi {
    let mut schemas = Schemas::default();
    let ops = operations(&mut schemas);
    let mut paths = PathsBuilder::new();
    let mut tags: Vec<&str> = Vec::new();
    for op in &ops {
        if !tags.contains(&op.tag) {
            tags.push(op.tag);
        }
        let operation = surface.operation(op, &mut schemas);
        paths = paths.path(op.path, PathItem::new(http_method(&op.method), operation));
    }
    let mut components = ComponentsBuilder::new();
    for (name, schema) in schemas.into_components() {
        components = components.schema(name, schema);
    }
    for (name, scheme) in security {
        components = components.security_scheme(name, scheme);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(title)
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(intro))
                .license(Some(
                    LicenseBuilder::new()
                        .name("Apache-2.0")
                        .identifier(Some("Apache-2.0"))
                        .build(),
                )),
        )
        .paths(paths)
        .components(Some(components.build()))
        .tags(Some(tags.into_iter().map(Tag::new)))
        .build()
}

const RUNTIME_INTRO: &str = concat!(
    "Served by every `switchyard runtime` process; its only client is the backend. ",
    "Every route but `/v1/health` needs the runtime's bearer token when it has one. ",
    "Every error answer has the body `{\"error\": {\"code\", \"message\"}}`, ",
    "optionally with `runtime_id`, `worker_id` and `retry_after_ms` inside `error`; ",
    "each operation lists, per status, exactly the codes it answers. A path that ",
    "matches no route is `404 route_not_found`; a method a path does not answer is ",
    "`405 method_not_allowed` with `Allow`. Every path that answers `GET` also answers ",
    "`HEAD` (not listed): the `GET`'s status and headers without its body; a `HEAD` ",
    "never opens an event stream."
);

const BACKEND_INTRO: &str = concat!(
    "The backend's API for browsers, terminal UIs and scripts: every call is routed to ",
    "the right runtime, embedded or remote, by `runtime_id + worker_id`. With `[auth]` ",
    "callers authenticate with a bearer token or the session cookie; roles (viewer, ",
    "operator, admin) and runtime grants decide what they may do (`403 forbidden`), and ",
    "workers a token does not reach are `404 worker_not_found`. Every request passes the ",
    "browser defences first: the `Host` allowlist (`403 host_not_allowed`), the ",
    "cross-origin check on state-changing requests (`403 cross_origin_request`), and ",
    "JSON-only bodies (`415 unsupported_media_type`). ",
    "Every error answer has the body `{\"error\": {\"code\", \"message\"}}`, ",
    "optionally with `runtime_id`, `worker_id` and `retry_after_ms` inside `error`; ",
    "each operation lists, per status, exactly the codes it answers. A path that ",
    "matches no route is `404 route_not_found`; a method a path does not answer is ",
    "`405 method_not_allowed` with `Allow`. Every path that answers `GET` also answers ",
    "`HEAD` (not listed): the `GET`'s status and headers without its body; a `HEAD` ",
    "never opens an event stream."
);
