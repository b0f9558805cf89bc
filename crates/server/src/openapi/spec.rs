//! The pieces both documents are built from: an operation as a surface's table
//! states it ([`Op`]), the schemas it names ([`Schemas`]), and the rules that turn it
//! into an OpenAPI operation ([`Surface`]): path parameters from the template, the
//! error responses grouped by status with exactly the codes the operation answers,
//! and the security requirement.

use std::collections::BTreeMap;

use http::Method;
use switchyard_protocol::{ErrorCode, RuntimeId, WorkerId};
use utoipa::ToSchema;
use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Ref, RefOr, Required};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Anyone who reaches the port.
    Public,
    /// Callers with the surface's credentials.
    Credentials,
}

/// The body of a request or a success answer: JSON unless stated otherwise.
#[derive(Clone)]
pub(super) struct Payload {
    schema: RefOr<Schema>,
    media_type: &'static str,
}

/// The schemas the operations name, collected (with everything they refer to) for
/// the document's `components`.
#[derive(Default)]
pub(super) struct Schemas {
    collected: BTreeMap<String, RefOr<Schema>>,
}

impl Schemas {
    /// A reference to `T`'s schema, which joins the components with its dependencies.
    pub fn of<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let mut found = vec![(T::name().into_owned(), T::schema())];
        T::schemas(&mut found);
        self.collected.extend(found);
        RefOr::Ref(Ref::from_schema_name(T::name()))
    }

    /// A JSON payload of type `T`.
    pub fn json<T: ToSchema>(&mut self) -> Payload {
        Payload {
            schema: self.of::<T>(),
            media_type: "application/json",
        }
    }

    /// Every schema collected, by name.
    pub fn into_components(self) -> impl Iterator<Item = (String, RefOr<Schema>)> {
        self.collected.into_iter()
    }
}

impl Payload {
    /// A payload with an inline schema.
    pub fn inline(schema: impl Into<RefOr<Schema>>) -> Self {
        Self {
            schema: schema.into(),
            media_type: "application/json",
        }
    }

    /// A payload of another media type (for example the Prometheus text format).
    pub fn with_media_type(mut self, media_type: &'static str) -> Self {
        self.media_type = media_type;
        self
    }
}

/// A query parameter.
#[derive(Clone)]
pub(super) struct QueryParam {
    name: &'static str,
    description: &'static str,
    schema: RefOr<Schema>,
    /// What a bad value is answered with.
    refusal: ErrorCode,
}

impl QueryParam {
    /// An optional query parameter; a bad value is `400 invalid_request`.
    pub fn new(
        name: &'static str,
        description: &'static str,
        schema: impl Into<RefOr<Schema>>,
    ) -> Self {
        Self {
            name,
            description,
            schema: schema.into(),
            refusal: ErrorCode::InvalidRequest,
        }
    }

    /// A bad value is answered with `code` instead.
    pub fn refused_with(mut self, code: ErrorCode) -> Self {
        self.refusal = code;
        self
    }
}

/// A header on the success answer.
#[derive(Debug, Clone)]
pub(super) struct AnswerHeader {
    name: &'static str,
    description: &'static str,
}

/// One operation: a method on a path, as a surface's table states it.
#[derive(Clone)]
pub(super) struct Op {
    /// The method.
    pub method: Method,
    /// The path template, as the route table has it.
    pub path: &'static str,
    id: &'static str,
    /// The group it is listed under.
    pub tag: &'static str,
    summary: &'static str,
    description: Option<&'static str>,
    /// Who may call it.
    pub access: Access,
    query: Vec<QueryParam>,
    body: Option<Payload>,
    /// True when it reads a request body (so it can answer 413, and on the backend 415).
    pub reads_body: bool,
    success: (u16, &'static str, Option<Payload>, Vec<AnswerHeader>),
    links: Vec<(&'static str, &'static str)>,
    /// The codes it answers besides the surface's common ones.
    pub errors: Vec<ErrorCode>,
    /// True for a WebSocket upgrade.
    pub websocket: bool,
}

impl Op {
    /// An operation answered with `Access::Credentials` and `200` without a body until
    /// said otherwise.
    pub fn new(method: Method, path: &'static str, id: &'static str, tag: &'static str) -> Self {
        Self {
            reads_body: method == Method::POST || method == Method::DELETE,
            method,
            path,
            id,
            tag,
            summary: "",
            description: None,
            access: Access::Credentials,
            query: Vec::new(),
            body: None,
            success: (200, "", None, Vec::new()),
            links: Vec::new(),
            errors: Vec::new(),
            websocket: false,
        }
    }

    /// The one-line summary.
    pub fn summary(mut self, summary: &'static str) -> Self {
        self.summary = summary;
        self
    }

    /// The longer description (Markdown).
    pub fn describe(mut self, description: &'static str) -> Self {
        self.description = Some(description);
        self
    }

    /// Answered without credentials.
    pub fn public(mut self) -> Self {
        self.access = Access::Public;
        self
    }

    /// Its query parameters (and so the codes their bad values are answered with).
    pub fn query(mut self, params: impl IntoIterator<Item = QueryParam>) -> Self {
        for param in params {
            self.errors.push(param.refusal);
            self.query.push(param);
        }
        self
    }

    /// Its JSON request body (required).
    pub fn body(mut self, payload: Payload) -> Self {
        self.body = Some(payload);
        self.reads_body = true;
        self
    }

    /// Its success answer: status, description, JSON body.
    pub fn ok(mut self, status: u16, description: &'static str, payload: Payload) -> Self {
        self.success = (status, description, Some(payload), Vec::new());
        self
    }

    /// Its success answer without a body.
    pub fn ok_empty(mut self, status: u16, description: &'static str) -> Self {
        self.success = (status, description, None, Vec::new());
        self
    }

    /// A header the success answer may carry.
    pub fn ok_header(mut self, name: &'static str, description: &'static str) -> Self {
        self.success.3.push(AnswerHeader { name, description });
        self
    }

    /// Links from the success answer (a new worker) to operations on the worker
    /// it names: `(link name, operation id)`. Their `worker_id` is the answer's, any
    /// `runtime_id` the request's.
    pub fn links_to_worker(mut self, links: &[(&'static str, &'static str)]) -> Self {
        self.links.extend_from_slice(links);
        self
    }

    /// A WebSocket upgrade: `101` on success.
    pub fn websocket(mut self, description: &'static str) -> Self {
        self.websocket = true;
        self.reads_body = false;
        self.success = (101, description, None, Vec::new());
        self
    }

    /// The codes it answers besides the surface's common ones.
    pub fn errors(mut self, codes: impl IntoIterator<Item = ErrorCode>) -> Self {
        self.errors.extend(codes);
        self
    }

    /// The path parameters of its template, in order.
    pub fn path_params(&self) -> Vec<&'static str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect()
    }
}

/// The method as utoipa names it.
pub(super) fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        Method::HEAD => HttpMethod::Head,
        Method::OPTIONS => HttpMethod::Options,
        _ => HttpMethod::Trace,
    }
}

/// How a surface turns its operations into OpenAPI ones.
pub(super) struct Surface {
    /// The security requirements (alternatives) of operations that need credentials.
    pub credentials: Vec<SecurityRequirement>,
    /// The codes an operation answers by the surface's own rules, besides its own.
    pub common_errors: fn(&Op) -> Vec<ErrorCode>,
}

impl Surface {
    /// Every error code `op` answers, sorted and without repeats.
    pub fn error_codes(&self, op: &Op) -> Vec<ErrorCode> {
        let mut codes = (self.common_errors)(op);
        codes.extend(op.errors.iter().copied());
        codes.sort_by_key(|c| (c.status(), c.as_str()));
        codes.dedup();
        codes
    }

    /// The OpenAPI operation for `op`.
    pub fn operation(&self, op: &Op, schemas: &mut Schemas) -> Operation {
        let mut builder = OperationBuilder::new()
            .operation_id(Some(op.id))
            .tag(op.tag)
            .summary(Some(op.summary))
            .description(op.description);
        for name in op.path_params() {
            let schema = match name {
                "runtime_id" => schemas.of::<RuntimeId>(),
                "worker_id" => schemas.of::<WorkerId>(),
                other => unreachable!("no schema for path parameter {other}"),
            };
            builder = builder.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(schema)),
            );
        }
        for param in &op.query {
            builder = builder.parameter(
                ParameterBuilder::new()
                    .name(param.name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(param.description))
                    .schema(Some(param.schema.clone())),
            );
        }
        if let Some(body) = &op.body {
            builder = builder.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(body.media_type, Content::new(Some(body.schema.clone())))
                    .build(),
            ));
        }
        builder = builder.response(op.success.0.to_string(), success_response(op));
        let codes = self.error_codes(op);
        for (status, group) in by_status(&codes) {
            builder = builder.response(status.to_string(), error_response(schemas, &group));
        }
        if op.access == Access::Credentials {
            builder = builder.securities(Some(self.credentials.clone()));
        }
        builder.build()
    }
}

fn success_response(op: &Op) -> Response {
    let (_, description, payload, headers) = &op.success;
    let mut response = ResponseBuilder::new().description(*description);
    if let Some(payload) = payload {
        response = response.content(
            payload.media_type,
            Content::new(Some(payload.schema.clone())),
        );
    }
    for header in headers {
        let mut value = Header::default();
        value.description = Some(header.description.to_owned());
        response = response.header(header.name, value);
    }
    for (name, operation) in &op.links {
        let mut link = LinkBuilder::new()
            .operation_id(*operation)
            .parameter("worker_id", "$response.body#/worker_id");
        if op.path_params().contains(&"runtime_id") {
            link = link.parameter("runtime_id", "$request.path.runtime_id");
        }
        response = response.link(*name, link.build());
    }
    response.build()
}

/// `codes` grouped by their HTTP status, in status order.
fn by_status(codes: &[ErrorCode]) -> BTreeMap<u16, Vec<ErrorCode>> {
    let mut groups: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in codes {
        groups.entry(code.status()).or_default().push(*code);
    }
    groups
}

/// An error answer whose body's `code` is one of `codes` (all of one status).
fn error_response(schemas: &mut Schemas, codes: &[ErrorCode]) -> Response {
    let detail = schemas.of::<switchyard_protocol::ErrorDetail>();
    let narrowed_code = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes.iter().map(|c| c.as_str())));
    let error = AllOfBuilder::new()
        .item(detail)
        .item(ObjectBuilder::new().property("code", narrowed_code));
    let body = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("error", error)
        .required("error");
    let description = codes
        .iter()
        .map(|c| format!("`{}`: {}", c.as_str(), c.meaning()))
        .collect::<Vec<_>>()
        .join("; ");
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(body)));
    if codes.contains(&ErrorCode::Unauthorized) {
        let mut challenge = Header::default();
        challenge.description = Some("`Bearer`: how to authenticate.".to_owned());
        response = response.header("WWW-Authenticate", challenge);
    }
    response.build()
}
