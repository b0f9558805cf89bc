//! The documents against the route tables, and the rules every operation follows.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use switchyard_protocol::ErrorCode;

use super::{Document, backend_document, runtime_document};
use crate::http::router::RouteDef;

/// `(path, METHOD)` pairs of a route table.
fn table<R>(routes: &[RouteDef<R>]) -> BTreeSet<(String, String)> {
    routes
        .iter()
        .flat_map(|def| {
            def.methods
                .iter()
                .map(|m| (def.path.to_owned(), m.as_str().to_owned()))
        })
        .collect()
}

/// `(path, METHOD)` pairs of a document.
fn documented(document: &Document) -> BTreeSet<(String, String)> {
    let json = json(document);
    json["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(|m| (path.clone(), m.to_uppercase()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn json(document: &Document) -> Value {
    serde_json::from_slice(document.json()).unwrap()
}

fn operations(document: &Document) -> Vec<(String, String, Value)> {
    let json = json(document);
    let mut ops = Vec::new();
    for (path, item) in json["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((path.clone(), method.clone(), op.clone()));
        }
    }
    ops
}

#[test]
fn each_document_lists_exactly_its_surfaces_routes_and_methods() {
    let cases = [
        (
            runtime_document(),
            table(crate::runtime_api::routes::ROUTES),
        ),
        (
            backend_document(),
            table(crate::backend_api::routes::ROUTES),
        ),
    ];
    for (document, routes) in cases {
        let documented = documented(document);
        let missing: Vec<_> = routes.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routes).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: routes without an operation {missing:?}; operations without a route {extra:?}",
            document.openapi().info.title
        );
    }
}

#[test]
fn documents_are_openapi_3_1_and_every_reference_resolves() {
    for document in [runtime_document(), backend_document()] {
        let json = json(document);
        assert_eq!(json["openapi"], "3.1.0");
        let schemas = json["components"]["schemas"].as_object().unwrap();
        let mut refs = Vec::new();
        collect_refs(&json, &mut refs);
        assert!(!refs.is_empty());
        for reference in refs {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {reference}"));
            assert!(schemas.contains_key(name), "dangling reference {reference}");
        }
        let ids: Vec<_> = operations(document)
            .into_iter()
            .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_owned())
            .collect();
        let unique: BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "operation ids are unique: {ids:?}");
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Every error response's codes, by status, of one operation.
fn error_codes(op: &Value) -> BTreeMap<u16, Vec<String>> {
    op["responses"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(status, _)| status.starts_with('4') || status.starts_with('5'))
        .map(|(status, response)| {
            let schema = &response["content"]["application/json"]["schema"];
            let codes = schema["properties"]["error"]["allOf"][1]["properties"]["code"]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{status} has no code enum: {schema}"))
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect();
            (status.parse().unwrap(), codes)
        })
        .collect()
}

#[test]
fn every_error_response_lists_codes_of_its_own_status() {
    for document in [runtime_document(), backend_document()] {
        for (path, method, op) in operations(document) {
            let errors = error_codes(&op);
            if path != "/v1/health" {
                assert!(!errors.is_empty(), "{method} {path} answers no error?");
            }
            for (status, codes) in errors {
                for code in codes {
                    let code: ErrorCode =
                        serde_json::from_value(Value::String(code.clone())).unwrap();
                    assert_eq!(code.status(), status, "{method} {path}: {code}");
                }
            }
        }
    }
}

/// The codes of `method path` in `document`, flattened.
fn codes_of(document: &Document, method: &str, path: &str) -> BTreeSet<String> {
    let (_, _, op) = operations(document)
        .into_iter()
        .find(|(p, m, _)| p == path && m == method)
        .unwrap_or_else(|| panic!("no {method} {path}"));
    error_codes(&op).into_values().flatten().collect()
}

/// (document, method, path, codes it must list, codes it must not list)
type CodeCase = (
    &'static Document,
    &'static str,
    String,
    Vec<&'static str>,
    Vec<&'static str>,
);

#[test]
fn operations_list_the_codes_their_handlers_answer() {
    let rt = runtime_document();
    let be = backend_document();
    let w = "/api/runtimes/{runtime_id}/workers/{worker_id}";
    // (document, method, path, codes it must list, codes it must not list)
    let cases: Vec<CodeCase> = vec![
        (rt, "get", "/v1/health".into(), vec![], vec!["unauthorized"]),
        (
            rt,
            "post",
            "/v1/workers".into(),
            vec![
                "unauthorized",
                "invalid_request",
                "unknown_profile",
                "payload_too_large",
                "worker_limit_reached",
                "runtime_unavailable",
                "unsupported_media_type",
                "cross_origin_request",
                "host_not_allowed",
            ],
            vec!["invalid_id", "forbidden"],
        ),
        (
            rt,
            "get",
            "/v1/workers/{worker_id}/events/ws".into(),
            vec!["invalid_cursor", "worker_not_found", "invalid_id"],
            vec!["payload_too_large"],
        ),
        (
            be,
            "get",
            "/healthz".into(),
            vec!["host_not_allowed"],
            vec!["unauthorized", "invalid_request"],
        ),
        (
            be,
            "get",
            "/readyz".into(),
            vec!["host_not_allowed", "runtime_unavailable"],
            vec!["unauthorized", "invalid_request"],
        ),
        (
            be,
            "post",
            "/api/session".into(),
            vec![
                "unauthorized",
                "cross_origin_request",
                "unsupported_media_type",
            ],
            vec!["forbidden"],
        ),
        (
            be,
            "post",
            format!("{w}/input"),
            vec![
                "host_not_allowed",
                "cross_origin_request",
                "unauthorized",
                "unsupported_media_type",
                "payload_too_large",
                "invalid_id",
                "forbidden",
                "runtime_not_found",
                "worker_not_found",
                "worker_not_running",
                "worker_busy",
                "runtime_unreachable",
                "runtime_tls_failed",
                "runtime_timeout",
            ],
            vec!["origin_not_allowed", "worker_limit_reached"],
        ),
        (
            rt,
            "post",
            "/v1/workers/{worker_id}/resize".into(),
            vec![
                "invalid_request",
                "not_a_terminal",
                "worker_not_running",
                "worker_busy",
            ],
            vec!["worker_running"],
        ),
        (
            be,
            "post",
            format!("{w}/resize"),
            vec![
                "unsupported_media_type",
                "forbidden",
                "not_a_terminal",
                "worker_not_running",
                "runtime_unreachable",
            ],
            vec!["unknown_profile"],
        ),
        (
            be,
            "get",
            format!("{w}/events/ws"),
            vec!["origin_not_allowed", "invalid_cursor", "worker_not_found"],
            vec!["cross_origin_request", "unsupported_media_type"],
        ),
        (
            be,
            "get",
            "/api/workers".into(),
            vec!["invalid_request", "invalid_id"],
            vec!["runtime_unreachable", "runtime_not_found"],
        ),
    ];
    for (document, method, path, must, must_not) in cases {
        let codes = codes_of(document, method, &path);
        for code in must {
            assert!(
                codes.contains(code),
                "{method} {path} lacks {code}: {codes:?}"
            );
        }
        for code in must_not {
            assert!(!codes.contains(code), "{method} {path} lists {code}");
        }
    }
}

#[test]
fn security_follows_each_operations_access() {
    let cases = [
        (runtime_document(), "/v1/health", "get", false),
        (runtime_document(), "/v1/openapi.json", "get", true),
        (runtime_document(), "/v1/workers", "post", true),
        (backend_document(), "/healthz", "get", false),
        (backend_document(), "/readyz", "get", false),
        (backend_document(), "/api/openapi.json", "get", false),
        (backend_document(), "/api/session", "post", false),
        (backend_document(), "/api/session", "get", true),
        (backend_document(), "/api/runtimes", "get", true),
    ];
    for (document, path, method, secured) in cases {
        let json = json(document);
        let op = &json["paths"][path][method];
        assert_eq!(op["security"].is_array(), secured, "{method} {path}");
        if secured {
            let has_401 = op["responses"]["401"]["headers"]["WWW-Authenticate"].is_object();
            assert!(has_401, "{method} {path}: 401 with WWW-Authenticate");
        }
    }
    let backend = json(backend_document());
    assert_eq!(
        backend["components"]["securitySchemes"]["session"],
        serde_json::json!({"type": "apiKey", "in": "cookie", "name": "switchyard_session",
            "description": backend["components"]["securitySchemes"]["session"]["description"]})
    );
}

#[test]
fn websocket_routes_answer_101_and_bodies_refuse_unknown_fields() {
    for document in [runtime_document(), backend_document()] {
        let json = json(document);
        for (path, method, op) in operations(document) {
            let responses = op["responses"].as_object().unwrap();
            assert_eq!(
                path.ends_with("/events/ws"),
                responses.contains_key("101"),
                "{method} {path}"
            );
            if let Some(schema) =
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            {
                let name = schema.rsplit('/').next().unwrap();
                assert_eq!(
                    json["components"]["schemas"][name]["additionalProperties"],
                    Value::Bool(false),
                    "{method} {path}: {name} refuses unknown fields"
                );
            }
        }
        assert!(json["components"]["schemas"]["ServerFrame"].is_object());
        assert!(json["components"]["schemas"]["ClientFrame"].is_object());
        let ws = operations(document)
            .into_iter()
            .find(|(path, _, _)| path.ends_with("/events/ws"))
            .unwrap()
            .2;
        let query: Vec<_> = ws["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            query.contains(&"cursor") && query.contains(&"interactive"),
            "{query:?}"
        );
    }
}

#[test]
fn a_new_worker_links_to_the_operations_on_it() {
    let cases = [
        (runtime_document(), "/v1/workers", None),
        (
            backend_document(),
            "/api/runtimes/{runtime_id}/workers",
            Some("$request.path.runtime_id"),
        ),
    ];
    for (document, path, runtime_id) in cases {
        let json = json(document);
        let ids: BTreeSet<_> = operations(document)
            .into_iter()
            .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_owned())
            .collect();
        let links = json["paths"][path]["post"]["responses"]["201"]["links"]
            .as_object()
            .unwrap();
        assert_eq!(links.len(), 7);
        for (name, link) in links {
            let target = link["operationId"].as_str().unwrap_or_else(|| {
                panic!("{path} link {name}: OpenAPI's camelCase operationId: {link}")
            });
            assert!(ids.contains(target), "{path} link {name} -> {target}");
            assert_eq!(link["parameters"]["worker_id"], "$response.body#/worker_id");
            assert_eq!(link["parameters"]["runtime_id"].as_str(), runtime_id);
            assert!(link.get("operation_id").is_none());
        }
    }
}
