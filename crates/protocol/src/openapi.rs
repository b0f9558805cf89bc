//! Schema pieces the derives cannot express (only with the `openapi` feature).

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::ids::{ID_PATTERN, MAX_ID_LEN};

/// The schema of a validated id: a string under the id rules.
pub(crate) fn id_schema(kind: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_ID_LEN))
        .pattern(Some(ID_PATTERN))
        .description(Some(format!(
            "A {kind}: 1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.'; \
             anything else is 400 invalid_id."
        )))
        .examples([if kind == "runtime_id" { "local" } else { "w-1" }])
        .into()
}
