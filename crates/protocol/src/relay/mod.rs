//! Checked views of the answers a backend relays to its clients as the bytes a
//! runtime sent, without building typed values; and ([`event_frame`]) of the event
//! frames it relays the same way.
//!
//! Each `canonical_*` function accepts an answer only in its *canonical form*: JSON of
//! exactly the typed value's shape — every field the typed value encodes present
//! (`null` included), no field it does not know at any depth, ids valid, and no
//! string (key or value) written with an escape, and no control character (so no
//! line break) anywhere. For an answer in that form, decoding it into
//! the typed value and encoding that again gives the same JSON value (key order and
//! white space aside), so relaying the bytes answers exactly what the typed path
//! would; and every string a client can read is in the bytes as written, so a byte
//! search finds whatever a client could read. For anything else the functions return
//! `None` and the caller takes the typed path with the same bytes, which either
//! decodes (dropping what it does not know) or fails with the typed error.

mod event_frame;
mod json_string;
#[cfg(test)]
mod oracle;
mod scan;

pub use event_frame::{CheckedEvent, EventFrameParts, event_frame, plain_text_event};

use std::ops::Range;

/// What a canonical worker detail says that a backend needs, borrowed from the
/// answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailFacts<'a> {
    /// The worker's id (valid).
    pub worker_id: &'a str,
    /// Its owner, if it has one.
    pub owner: Option<&'a str>,
    /// Where the `runtime_id` value is in the answer: the bytes between its quotes.
    pub runtime_id: Range<usize>,
}

/// What a canonical worker list says that a backend needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFacts<'a> {
    /// Each worker of the page, in order.
    pub workers: Vec<DetailFacts<'a>>,
    /// The page's `next` (a valid worker id), if any.
    pub next: Option<&'a str>,
}

/// A `WorkerDetail` in canonical form, or `None` (see the module's rules).
pub fn canonical_detail(body: &[u8]) -> Option<DetailFacts<'_>> {
    scan::detail(body)
}

/// A `WorkerList` in canonical form, or `None` (see the module's rules).
pub fn canonical_list(body: &[u8]) -> Option<ListFacts<'_>> {
    scan::list(body)
}

/// True for an `InputAccepted` in canonical form (see the module's rules).
pub fn canonical_input_accepted(body: &[u8]) -> bool {
    scan::input_accepted(body)
}

/// The text of an `InputRequest` body written plainly: exactly `{"text":"…"}`, no
/// white space, and the text with no quote, backslash or control character, so
/// that what lies between the quotes is the text itself. For such a body, serde's
/// decoding gives the same text; for any other (`None`) decode it with serde.
pub fn plain_input_text(body: &[u8]) -> Option<&str> {
    let text = body.strip_prefix(br#"{"text":""#)?.strip_suffix(br#""}"#)?;
    if text.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20) {
        return None;
    }
    std::str::from_utf8(text).ok()
}

/// `body` with the contents of every span (each between a string's quotes) replaced
/// by `value`, or `None` when every span already holds exactly `value`. Spans must
/// be in order, not overlap, and lie within `body`; `value` must need no escaping
/// (a valid id does not).
pub fn relabel(body: &[u8], spans: &[Range<usize>], value: &str) -> Option<Vec<u8>> {
    if spans
        .iter()
        .all(|s| body.get(s.clone()) == Some(value.as_bytes()))
    {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + spans.len() * value.len());
    let mut at = 0;
    for span in spans {
        out.extend_from_slice(&body[at..span.start]);
        out.extend_from_slice(value.as_bytes());
        at = span.end;
    }
    out.extend_from_slice(&body[at..]);
    Some(out)
}

/// Where `part`, a slice borrowed from `body`, lies in it.
fn span_of(body: &[u8], part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= body.len()).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::WorkerId;
    use crate::worker::{InputAccepted, WorkerDetail, WorkerList};
    use serde_json::{Value, json};

    fn detail() -> Value {
        json!({
            "worker_id": "w-1",
            "runtime_id": "rt",
            "profile": "echo",
            "label": "a label",
            "status": "exited",
            "created_at": "2026-11-26T09:30:00.123Z",
            "updated_at": "2026-11-26T09:31:00.000Z",
            "exit": {"code": 0, "signal": null},
            "input_count": 3,
            "output_bytes": 12,
            "owner": "alice"
        })
    }

    fn with(mut v: Value, key: &str, value: Value) -> Value {
        v[key] = value;
        v
    }

    fn without(mut v: Value, key: &str) -> Value {
        v.as_object_mut().unwrap().remove(key);
        v
    }

    /// Canonical means: the typed round trip gives the same JSON value.
    fn typed_round_trip_is_the_same(body: &[u8]) {
        let typed: WorkerDetail = serde_json::from_slice(body).unwrap();
        let original: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), original);
    }

    #[test]
    fn a_canonical_detail_is_accepted_and_located() {
        let cases: Vec<(&str, String)> = vec![
            ("compact", detail().to_string()),
            (
                "spaces",
                detail().to_string().replace(',', " , ").replace(':', " : "),
            ),
            (
                "nulls",
                with(with(detail(), "label", Value::Null), "owner", Value::Null).to_string(),
            ),
            ("no exit", with(detail(), "exit", Value::Null).to_string()),
            (
                "reordered",
                r#"{"owner":null,"output_bytes":0,"input_count":0,"exit":null,"updated_at":"t","created_at":"t","status":"running","label":null,"profile":"p","runtime_id":"rt","worker_id":"w"}"#.to_owned(),
            ),
            ("non-ASCII label", with(detail(), "label", json!("café ✓")).to_string()),
        ];
        for (name, body) in cases {
            let facts = canonical_detail(body.as_bytes())
                .unwrap_or_else(|| panic!("{name}: not canonical: {body}"));
            assert_eq!(&body[facts.runtime_id.clone()], "rt", "{name}");
            typed_round_trip_is_the_same(body.as_bytes());
        }
        let body = detail().to_string();
        let facts = canonical_detail(body.as_bytes()).unwrap();
        assert_eq!((facts.worker_id, facts.owner), ("w-1", Some("alice")));
    }

    /// Keeps the views in step with the typed values: a field added to one of them
    /// makes every answer non-canonical (slow, still correct) until the view learns
    /// it, and this test says so.
    #[test]
    fn what_the_typed_values_encode_is_canonical() {
        let typed: WorkerDetail = serde_json::from_value(detail()).unwrap();
        let body = serde_json::to_vec(&typed).unwrap();
        assert!(canonical_detail(&body).is_some());
        let list = WorkerList {
            workers: vec![typed],
            next: Some(WorkerId::new("w-1").unwrap()),
        };
        assert!(canonical_list(&serde_json::to_vec(&list).unwrap()).is_some());
        let accepted = serde_json::to_vec(&InputAccepted { sequence: 1 }).unwrap();
        assert!(canonical_input_accepted(&accepted));
    }

    #[test]
    fn anything_else_takes_the_typed_path() {
        let cases: Vec<(&str, String)> = vec![
            ("not JSON", "{not json".into()),
            ("not an object", "[]".into()),
            (
                "line breaks between tokens",
                serde_json::to_string_pretty(&detail()).unwrap(),
            ),
            ("truncated", detail().to_string()[..40].into()),
            ("trailing bytes", format!("{} x", detail())),
            (
                "unknown field",
                with(detail(), "extra", json!(1)).to_string(),
            ),
            (
                "unknown field in exit",
                with(
                    detail(),
                    "exit",
                    json!({"code": 1, "signal": null, "core": true}),
                )
                .to_string(),
            ),
            ("missing owner", without(detail(), "owner").to_string()),
            ("missing label", without(detail(), "label").to_string()),
            ("missing exit", without(detail(), "exit").to_string()),
            (
                "missing exit code",
                with(detail(), "exit", json!({"signal": 9})).to_string(),
            ),
            ("missing status", without(detail(), "status").to_string()),
            (
                "escaped label",
                with(detail(), "label", json!("a\nb")).to_string(),
            ),
            (
                "escaped slash",
                detail().to_string().replace("a label", "a\\/label"),
            ),
            (
                "escaped key",
                detail().to_string().replace("\"label\"", "\"lab\\u0065l\""),
            ),
            (
                "unicode escape in owner",
                detail().to_string().replace("alice", "\\u0061lice"),
            ),
            (
                "invalid worker id",
                with(detail(), "worker_id", json!("a b")).to_string(),
            ),
            (
                "invalid runtime id",
                with(detail(), "runtime_id", json!(".x")).to_string(),
            ),
            (
                "wrong status",
                with(detail(), "status", json!("asleep")).to_string(),
            ),
            (
                "negative count",
                with(detail(), "input_count", json!(-1)).to_string(),
            ),
            (
                "float count",
                with(detail(), "output_bytes", json!(1.5)).to_string(),
            ),
            (
                "count as string",
                with(detail(), "input_count", json!("1")).to_string(),
            ),
            (
                "duplicate key",
                detail().to_string().replacen('{', r#"{"profile":"x","#, 1),
            ),
        ];
        for (name, body) in cases {
            assert_eq!(canonical_detail(body.as_bytes()), None, "{name}: {body}");
        }
    }

    #[test]
    fn a_canonical_list_locates_every_runtime_id() {
        let body = json!({
            "workers": [detail(), with(detail(), "worker_id", json!("w-2"))],
            "next": "w-2"
        })
        .to_string();
        let facts = canonical_list(body.as_bytes()).unwrap();
        assert_eq!(facts.next, Some("w-2"));
        assert_eq!(facts.workers.len(), 2);
        assert_eq!(facts.workers[1].worker_id, "w-2");
        for w in &facts.workers {
            assert_eq!(&body[w.runtime_id.clone()], "rt");
        }
        let typed: WorkerList = serde_json::from_str(&body).unwrap();
        assert_eq!(
            serde_json::to_value(&typed).unwrap(),
            serde_json::from_str::<Value>(&body).unwrap()
        );
        let empty = r#"{"workers":[],"next":null}"#;
        assert_eq!(
            canonical_list(empty.as_bytes()).map(|f| f.workers.len()),
            Some(0)
        );
    }

    #[test]
    fn a_list_with_anything_off_takes_the_typed_path() {
        let cases = [
            json!({"workers": [detail()]}),
            json!({"workers": [detail()], "next": null, "more": 1}),
            json!({"workers": [with(detail(), "extra", json!(1))], "next": null}),
            json!({"workers": [detail()], "next": "../x"}),
            json!({"workers": "all of them", "next": null}),
        ];
        for body in cases {
            assert_eq!(canonical_list(body.to_string().as_bytes()), None, "{body}");
        }
    }

    #[test]
    fn input_accepted_is_strict() {
        assert!(canonical_input_accepted(br#"{"sequence":7}"#));
        let typed: InputAccepted = serde_json::from_slice(br#"{"sequence":7}"#).unwrap();
        assert_eq!(typed.sequence, 7);
        for body in [
            &br#"{"sequence":7,"x":1}"#[..],
            br#"{"sequence":"7"}"#,
            br#"{}"#,
            b"",
        ] {
            assert!(!canonical_input_accepted(body));
        }
    }

    #[test]
    fn a_plain_input_body_gives_its_text_and_any_other_is_left_to_serde() {
        assert_eq!(plain_input_text(br#"{"text":"ping"}"#), Some("ping"));
        assert_eq!(plain_input_text(br#"{"text":""}"#), Some(""));
        assert_eq!(
            plain_input_text("{\"text\":\"é ✓\"}".as_bytes()),
            Some("é ✓")
        );
        for body in [
            &br#"{"text":"a\nb"}"#[..],
            br#"{"text":"say \"hi\""}"#,
            b"{\"text\":\"tab\there\"}",
            br#"{ "text":"ping"}"#,
            br#"{"text":"ping","x":1}"#,
            br#"{"text":"a","text":"b"}"#,
            br#"{"text":"ping"} "#,
            b"{\"text\":\"\xff\"}",
            br#"{"text":"}"#,
            b"",
        ] {
            assert_eq!(
                plain_input_text(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    proptest::proptest! {
        /// Every input request serde writes is read back the same by the plain
        /// reader or left to serde: it never gives another text.
        #[test]
        fn the_plain_reader_agrees_with_serde_on_written_requests(text in "\\PC*|[\"\\\\\u{0}-\u{1f}\u{7f}\u{feff}\u{2028}\u{200b}a é]*") {
            let body = serde_json::to_vec(&crate::worker::InputRequest { text: text.clone() }).unwrap();
            let plain = text.chars().all(|c| c != '"' && c != '\\' && c >= ' ');
            proptest::prop_assert_eq!(plain_input_text(&body), plain.then_some(text.as_str()));
        }

        /// Whatever bytes the plain reader accepts, serde decodes to the same text.
        #[test]
        fn what_the_plain_reader_accepts_serde_reads_the_same(inner in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24)) {
            let body = [&br#"{"text":""#[..], &inner, br#""}"#].concat();
            if let Some(text) = plain_input_text(&body) {
                let typed: crate::worker::InputRequest = serde_json::from_slice(&body).unwrap();
                proptest::prop_assert_eq!(typed.text, text);
            }
        }
    }

    #[test]
    fn relabel_replaces_spans_only_when_they_differ() {
        let body = br#"{"a":"rt","b":"rt"}"#;
        let spans = [6..8, 15..17];
        assert_eq!(relabel(body, &spans, "rt"), None);
        assert_eq!(
            relabel(body, &spans, "backend-id").unwrap(),
            br#"{"a":"backend-id","b":"backend-id"}"#
        );
        assert_eq!(relabel(b"{}", &[], "x"), None);
    }
}
