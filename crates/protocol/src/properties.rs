//! Property tests of every decoder and validator in this crate: ids, owner names,
//! runtime cursors, frames both ways, events, transcript items, request and error
//! bodies. No input panics; every valid value survives its round trip; every decoder
//! agrees with the rule the contract states.

use proptest::prelude::*;
use proptest::sample::select;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::arbitrary::*;
use crate::cursor::{CursorError, MAX_CURSOR_LEN, RuntimeCursor};
use crate::event::{EventKind, EventPayload};
use crate::session::{LoginRequest, Role};
use crate::terminal::ClientFrame;
use crate::transcript::TranscriptPage;
use crate::worker::{InputRequest, NewWorkerRequest, WorkerStatus, is_valid_owner};
use crate::{ErrorCode, RuntimeId, WorkerId};

/// Strings near the id rules: the allowed characters, the ones just outside them,
/// and anything, at lengths around the limit.
fn id_like() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        6 => select(vec!['a', 'Z', '0', '9', '-', '_', '.']),
        1 => select(vec!['/', ' ', '@', '%', ':', '\\', '\0', 'é', '\u{2028}']),
        1 => any::<char>(),
    ];
    proptest::collection::vec(ch, 0..=70).prop_map(|c| c.into_iter().collect())
}

/// The id rule as the contract words it.
fn contract_says_valid_id(s: &str) -> bool {
    let count = s.chars().count();
    (1..=64).contains(&count)
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A request body, its fields, and whether a JSON value decodes as that body.
type BodyCase = (Value, &'static [&'static str], fn(Value) -> bool);

/// `value` as JSON text and back.
fn round_trip<T: serde::Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: &T,
) -> Result<(), TestCaseError> {
    let text = serde_json::to_string(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: T = serde_json::from_str(&text)
        .map_err(|e| TestCaseError::fail(format!("{e} decoding {text}")))?;
    prop_assert_eq!(&back, value, "{}", text);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ids_are_exactly_what_the_contract_allows(s in id_like()) {
        let valid = contract_says_valid_id(&s);
        prop_assert_eq!(WorkerId::new(s.as_str()).is_ok(), valid, "{:?}", s);
        prop_assert_eq!(RuntimeId::new(s.as_str()).is_ok(), valid, "{:?}", s);
        // The JSON decoder applies the same rule.
        let decoded = serde_json::from_value::<WorkerId>(Value::String(s.clone()));
        prop_assert_eq!(decoded.is_ok(), valid);
    }

    #[test]
    fn valid_ids_round_trip(id in worker_id(), rt in runtime_id()) {
        prop_assert_eq!(id.as_str().parse::<WorkerId>().unwrap(), id.clone());
        round_trip(&id)?;
        round_trip(&rt)?;
    }

    #[test]
    fn owner_names_follow_their_rule(s in id_like(), good in owner()) {
        let rule = (1..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
        prop_assert_eq!(is_valid_owner(&s), rule, "{:?}", s);
        prop_assert!(is_valid_owner(&good));
    }

    #[test]
    fn runtime_cursors_round_trip_and_bind_to_their_worker(
        epoch in "[A-Za-z0-9]{1,32}",
        worker in worker_id(),
        other in worker_id(),
        position in any::<u64>(),
    ) {
        let cursor = RuntimeCursor { epoch, worker_id: worker.clone(), position };
        let text = cursor.encode();
        prop_assert!(text.len() <= MAX_CURSOR_LEN);
        prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        prop_assert_eq!(RuntimeCursor::decode(&text), Ok(cursor.clone()));
        prop_assert_eq!(RuntimeCursor::decode_for(&text, &worker), Ok(cursor));
        if other != worker {
            prop_assert_eq!(
                RuntimeCursor::decode_for(&text, &other),
                Err(CursorError::ForeignWorker)
            );
        }
        // Every truncation is caught (the checksum is what is cut first).
        for end in 0..text.len() {
            prop_assert!(RuntimeCursor::decode(&text[..end]).is_err(), "{}", &text[..end]);
        }
    }

    #[test]
    fn runtime_cursor_decoding_never_panics(s in any::<String>(), b64 in "[A-Za-z0-9_-]{0,300}") {
        let _ = RuntimeCursor::decode(&s);
        let _ = RuntimeCursor::decode(&b64);
    }

    #[test]
    fn a_changed_character_spoils_a_runtime_cursor(
        worker in worker_id(),
        position in any::<u64>(),
        at in any::<prop::sample::Index>(),
        replacement in select(b"ABCxyz019-_".to_vec()),
    ) {
        let text = RuntimeCursor { epoch: "e1".into(), worker_id: worker, position }.encode();
        let mut bytes = text.clone().into_bytes();
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        let changed = String::from_utf8(bytes).unwrap();
        // Either it no longer decodes, or (a change in the last character's unused
        // bits) it decodes to the very same cursor.
        match RuntimeCursor::decode(&changed) {
            Err(_) => {}
            Ok(decoded) => prop_assert_eq!(decoded, RuntimeCursor::decode(&text).unwrap()),
        }
    }

    #[test]
    fn enums_parse_back_from_their_names(s in "[a-z_]{0,24}") {
        for status in WorkerStatus::ALL {
            prop_assert_eq!(status.as_str().parse::<WorkerStatus>(), Ok(status));
        }
        for role in Role::ALL {
            prop_assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        let status = s.parse::<WorkerStatus>();
        prop_assert_eq!(status.is_ok(), WorkerStatus::ALL.iter().any(|st| st.as_str() == s));
        let code = serde_json::from_value::<ErrorCode>(Value::String(s.clone()));
        prop_assert_eq!(code.is_ok(), ErrorCode::ALL.iter().any(|c| c.as_str() == s));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn server_frames_round_trip(frame in server_frame()) {
        round_trip(&frame)?;
        // The shape clients read: `type` first, and an event's `kind` first in
        // `event` (what the raw-event reader's fast path relies on).
        let text = serde_json::to_string(&frame).unwrap();
        prop_assert!(text.starts_with("{\"type\":"), "{}", text);
        if let crate::ServerFrame::Event { .. } = frame {
            prop_assert!(text.contains(",\"event\":{\"kind\":"), "{}", text);
        }
    }

    #[test]
    fn worker_events_round_trip_and_keep_their_kind_as_raw_json(event in worker_event()) {
        round_trip(&event)?;
        let raw = serde_json::value::to_raw_value(&event).unwrap();
        let payload = EventPayload::from_json(raw).unwrap();
        let decoded = EventPayload::Decoded(std::sync::Arc::new(event.clone()));
        prop_assert_eq!(payload.kind(), decoded.kind());
        prop_assert_ne!(payload.kind(), EventKind::Other);
        prop_assert_eq!(payload.decode().unwrap(), event);
    }

    #[test]
    fn client_frames_round_trip(frame in client_frame()) {
        let text = serde_json::to_string(&frame).unwrap();
        prop_assert_eq!(ClientFrame::parse(&text).unwrap(), frame.clone());
        // With whitespace around it, still the same frame.
        prop_assert_eq!(ClientFrame::parse(&format!(" \n{text} ")).unwrap(), frame);
    }

    #[test]
    fn stored_and_served_records_round_trip(
        item in transcript_item(),
        detail in worker_detail(),
        items in transcript(6),
        next_after in any::<Option<u64>>(),
        total in any::<u64>(),
        body in error_body(),
    ) {
        round_trip(&item)?;
        round_trip(&detail)?;
        round_trip(&TranscriptPage { items, next_after, total })?;
        round_trip(&body)?;
        // A transcript line stays one line: the FS store depends on it.
        let line = serde_json::to_string(&item).unwrap();
        prop_assert!(!line.contains('\n'));
    }

    #[test]
    fn request_bodies_round_trip_and_refuse_unknown_fields(
        create in create_worker_request(),
        resize in resize_request(),
        text in text(40),
        extra in "[a-z_]{1,12}",
    ) {
        round_trip(&create)?;
        round_trip(&resize)?;
        round_trip(&InputRequest { text: text.clone() })?;
        round_trip(&NewWorkerRequest { profile: text.clone(), label: None })?;
        let login: LoginRequest = serde_json::from_value(json!({"token": text})).unwrap();
        prop_assert_eq!(login.token.as_str(), text.as_str());
        // Any field beyond the ones a body has is refused, on every body.
        let bodies: [BodyCase; 5] = [
            (serde_json::to_value(&create).unwrap(), &["profile", "label", "owner"],
                |v| serde_json::from_value::<crate::CreateWorkerRequest>(v).is_ok()),
            (json!({"profile": "echo"}), &["profile", "label"],
                |v| serde_json::from_value::<NewWorkerRequest>(v).is_ok()),
            (json!({"text": "x"}), &["text"],
                |v| serde_json::from_value::<InputRequest>(v).is_ok()),
            (serde_json::to_value(resize).unwrap(), &["cols", "rows"],
                |v| serde_json::from_value::<crate::ResizeRequest>(v).is_ok()),
            (json!({"token": "t"}), &["token"],
                |v| serde_json::from_value::<LoginRequest>(v).is_ok()),
        ];
        for (mut body, fields, decodes) in bodies {
            prop_assert!(decodes(body.clone()), "{}", body);
            if !fields.contains(&extra.as_str()) {
                body[extra.as_str()] = json!(1);
                prop_assert!(!decodes(body.clone()), "{}", body);
            }
        }
    }

    #[test]
    fn resize_validation_is_the_contract_range(request in resize_request()) {
        let in_range = |side: u16| (1..=1000).contains(&side);
        prop_assert_eq!(
            request.validate().is_ok(),
            in_range(request.cols) && in_range(request.rows)
        );
    }

    #[test]
    fn decoders_never_panic_on_any_json(value in json_value()) {
        let text = value.to_string();
        let _ = serde_json::from_value::<crate::ServerFrame>(value.clone());
        let _ = serde_json::from_value::<crate::WorkerEvent>(value.clone());
        let _ = serde_json::from_value::<crate::TranscriptItem>(value.clone());
        let _ = serde_json::from_value::<crate::WorkerDetail>(value.clone());
        let _ = serde_json::from_value::<crate::ErrorBody>(value.clone());
        let _ = serde_json::from_value::<crate::CreateWorkerRequest>(value.clone());
        let _ = serde_json::from_value::<crate::ResizeRequest>(value.clone());
        let _ = ClientFrame::parse(&text);
        // The raw-event reader agrees with a full read of `kind` whenever both work.
        if let Ok(raw) = serde_json::value::RawValue::from_string(text.clone()) {
            #[derive(Deserialize)]
            struct KindOnly {
                kind: EventKind,
            }
            if let (Ok(payload), Ok(full)) =
                (EventPayload::from_json(raw), serde_json::from_str::<KindOnly>(&text))
            {
                prop_assert_eq!(payload.kind(), full.kind);
            }
        }
    }

    #[test]
    fn client_frame_parsing_never_panics_on_any_text(text in any::<String>()) {
        let _ = ClientFrame::parse(&text);
        let _ = EventPayload::from_json(
            match serde_json::value::RawValue::from_string(text) {
                Ok(raw) => raw,
                Err(_) => return Ok(()),
            },
        );
    }
}

#[test]
fn the_strategies_generate_every_event_kind_and_frame_type() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut kinds = [false; EVENT_KINDS];
    let mut types = [false; SERVER_FRAME_TYPES];
    for _ in 0..400 {
        let event = worker_event().new_tree(&mut runner).unwrap().current();
        kinds[event_kind_index(&event)] = true;
        let frame = server_frame().new_tree(&mut runner).unwrap().current();
        types[server_frame_index(&frame)] = true;
    }
    assert!(
        kinds.iter().all(|seen| *seen),
        "event kinds seen: {kinds:?}"
    );
    assert!(
        types.iter().all(|seen| *seen),
        "frame types seen: {types:?}"
    );
}

#[test]
fn a_snapshot_with_a_terminal_and_kinds_of_newer_runtimes_are_read() {
    // A kind this version does not know is passed on, never refused.
    let raw = serde_json::value::RawValue::from_string(r#"{"kind":"future","x":1}"#.into());
    let payload = EventPayload::from_json(raw.unwrap()).unwrap();
    assert_eq!(payload.kind(), EventKind::Other);
    assert!(payload.decode().is_err());
}
