//! Query parameters and small inline schemas shared by both documents.

use switchyard_protocol::{ErrorCode, WorkerId, WorkerStatus};
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::spec::{Payload, QueryParam, Schemas};

/// `status`: only workers with this status.
pub(super) fn status(schemas: &mut Schemas) -> QueryParam {
    QueryParam::new(
        "status",
        "Only workers with this status.",
        schemas.of::<WorkerStatus>(),
    )
}

/// `limit`: the page size (at least 1; over the runtime's maximum is
/// `400 limit_too_large`).
pub(super) fn limit() -> QueryParam {
    QueryParam::new(
        "limit",
        "Page size: at least 1, default 100 (or the runtime's maximum if lower); over \
         the runtime's maximum (`limits.transcript_page_max`) is `400 limit_too_large`.",
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(u32::MAX)),
    )
}

/// `limit` of `GET /api/workers`: a cap per runtime, not a page size.
pub(super) fn limit_per_runtime() -> QueryParam {
    QueryParam::new(
        "limit",
        "At most this many workers of each runtime (at least 1; default 10,000, and a \
         larger value counts as 10,000). Runtimes are read page by page in their own \
         page size, so a value over a runtime's page maximum is no error.",
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(u32::MAX)),
    )
}

/// `after` of a worker listing: the last worker id of the previous page.
pub(super) fn after_worker(schemas: &mut Schemas) -> QueryParam {
    QueryParam::new(
        "after",
        "Continue after this worker id: the previous page's `next`.",
        schemas.of::<WorkerId>(),
    )
    .refused_with(ErrorCode::InvalidId)
}

/// `after` of a transcript page: the last sequence already read.
pub(super) fn after_sequence() -> QueryParam {
    QueryParam::new(
        "after",
        "Items with a sequence above this one (default 0: from the start); the \
         previous page's `next_after`.",
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .maximum(Some(u64::MAX)),
    )
}

/// `cursor` of an event WebSocket.
pub(super) fn cursor() -> QueryParam {
    QueryParam::new(
        "cursor",
        "Resume after the event that carried this cursor (opaque, from an `event` \
         frame of this worker). Without it the stream starts with a `snapshot`. A \
         malformed cursor or one of another worker is `400 invalid_cursor`.",
        ObjectBuilder::new().schema_type(Type::String),
    )
    .refused_with(ErrorCode::InvalidCursor)
}

/// A `true`/`false` query flag.
pub(super) fn flag(name: &'static str, description: &'static str) -> QueryParam {
    QueryParam::new(
        name,
        description,
        ObjectBuilder::new().schema_type(Type::Boolean),
    )
}

/// `interactive` of an event WebSocket.
pub(super) fn interactive() -> QueryParam {
    flag(
        "interactive",
        "`true`: the client may also send `input` and `resize` text frames \
         (`ClientFrame`); default `false`.",
    )
}

/// The document itself, as a JSON object.
pub(super) fn document() -> Payload {
    Payload::inline(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("This OpenAPI 3.1 document.")),
    )
}

/// The Prometheus text exposition format (version 0.0.4) of `/metrics`.
pub(super) fn metrics() -> Payload {
    Payload::inline(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Metrics in the Prometheus text exposition format. Label values are \
                 bounded: runtime ids, routes by template, never worker ids.",
            )),
    )
    .with_media_type("text/plain")
}
