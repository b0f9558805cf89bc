//! What a remote runtime's events and transcript pages must satisfy before a client
//! sees them: the runtime's own words (worker details in snapshots, diagnostics,
//! system notes) are scrubbed of its URL, host and token as worker details are on
//! the REST path ([`checked_detail`]); what the worker printed and what its users
//! typed (output, input) is their own data and passes as it is, except for the
//! secrets ([`Scrubber::with_secret`]: the token, the base URL and `host:port`).
//!
//! Output and input events, nearly all of a stream, are passed on as received when
//! they are in the form runtimes write them (exactly the event's fields, a known
//! stream, plain escapes: [`plain_text_event`]) and their text, searched as written,
//! holds no token. Anything else is decoded and encoded again, which drops whatever
//! the runtime added beside the event's own fields, with any token in the text
//! redacted; one that does not decode (an unknown stream) is left out. A snapshot,
//! rare, is always decoded: it must be about the worker asked for. Any other event
//! is searched for a secret (one byte search) and, only when one is found or an
//! escape could spell one, decoded, scrubbed and encoded again.
//!
//! What this cannot promise: a token cut by the runtime's reads loses the pieces of
//! it at the events' edges ([`Scrubber::with_token`]), but up to five bytes on each
//! side of each cut pass, and a token written a few bytes at a time passes whole;
//! the base URL and `host:port` cut in two are not found; and the host's name
//! alone, or the port alone, in a worker's output is ordinary data (`hostname`
//! prints it), not scrubbed.

use switchyard_protocol::{
    DiagnosticSeverity, EventKind, EventPayload, OutputStream, TranscriptEntry, TranscriptItem,
    TranscriptPage, WorkerEvent, WorkerId,
};

use switchyard_protocol::relay::plain_text_event;

use crate::error::SourceError;
use crate::relay::checked_detail;
use crate::scrub::Scrubber;

/// `event`, about `worker`, from a remote runtime, made fit for a client. A
/// snapshot of another worker or with an id naming a secret is an error, as its
/// REST detail would be (a lying runtime). An event that may name a secret and
/// cannot be read is replaced by a warning ([`left_out`]) rather than ending the
/// stream: the hub would resume before it and be sent the same event again.
pub(crate) fn checked_event(
    scrubber: &Scrubber,
    worker: &WorkerId,
    event: EventPayload,
) -> Result<EventPayload, SourceError> {
    match event.kind() {
        EventKind::Output | EventKind::Input => Ok(checked_text_event(scrubber, event)),
        EventKind::Snapshot => match event.decode() {
            Ok(WorkerEvent::Snapshot {
                worker: detail,
                mut transcript,
                terminal,
            }) => {
                let detail = checked_detail(scrubber, detail, Some(worker))?;
                scrub_items(scrubber, &mut transcript);
                let terminal = terminal.map(|mut screen| {
                    screen.screen = scrubber.mask_secrets(std::mem::take(&mut screen.screen));
                    screen
                });
                Ok(WorkerEvent::Snapshot {
                    worker: detail,
                    transcript,
                    terminal,
                }
                .into())
            }
            // A newer runtime's snapshot this backend cannot read: on as it is,
            // unless it may hide a secret.
            _ if !may_name_a_secret(scrubber, &event) => Ok(event),
            _ => Ok(left_out()),
        },
        _ if !may_name_a_secret(scrubber, &event) => Ok(event),
        _ => match event.decode() {
            Ok(WorkerEvent::Diagnostic {
                severity,
                code,
                message,
            }) => Ok(WorkerEvent::Diagnostic {
                severity,
                code: scrubber.scrub(&code),
                message: scrubber.scrub(&message),
            }
            .into()),
            // No free text of its own: what named the secret was beside its fields.
            Ok(decoded) => Ok(decoded.into()),
            Err(_) => Ok(left_out()),
        },
    }
}

/// An output or input event as received if it is plain and names no token;
/// otherwise decoded, its token redacted and encoded again (or [`left_out`]).
fn checked_text_event(scrubber: &Scrubber, event: EventPayload) -> EventPayload {
    if let EventPayload::Json { json, .. } = &event
        && let Some(written) = plain_text_event(json)
        && !scrubber.finds_secret_written(written.as_bytes())
    {
        return event;
    }
    match event.decode() {
        Ok(WorkerEvent::Output {
            sequence,
            stream,
            text,
        }) => WorkerEvent::Output {
            sequence,
            stream,
            text: scrub_output(scrubber, stream, text),
        }
        .into(),
        Ok(WorkerEvent::Input { sequence, text }) => WorkerEvent::Input {
            sequence,
            text: scrubber.redact_secrets(text),
        }
        .into(),
        _ => left_out(),
    }
}

/// A worker's output without its runtime's secrets: on a terminal each is masked
/// with as many `*`s as it has characters, so a full-screen program's layout holds
/// (as the snapshot's screen is masked); elsewhere it becomes `[redacted]`.
fn scrub_output(scrubber: &Scrubber, stream: OutputStream, text: String) -> String {
    match stream {
        OutputStream::Terminal => scrubber.mask_secrets(text),
        _ => scrubber.redact_secrets(text),
    }
}

/// What stands in for an event that may name a secret and cannot be read.
fn left_out() -> EventPayload {
    WorkerEvent::Diagnostic {
        severity: DiagnosticSeverity::Warning,
        code: "event_left_out".into(),
        message: "the runtime sent an event this backend cannot check for its address or \
                  token; it was left out (is the runtime newer than the backend?)"
            .into(),
    }
    .into()
}

/// A transcript page from a remote runtime, scrubbed as [`scrub_items`] says.
pub(crate) fn checked_transcript(scrubber: &Scrubber, mut page: TranscriptPage) -> TranscriptPage {
    scrub_items(scrubber, &mut page.items);
    page
}

/// Scrubs the text of every system note (the runtime's words) in `items`, and
/// redacts a token from inputs and output (the worker's data otherwise), as the
/// live events are.
fn scrub_items(scrubber: &Scrubber, items: &mut [TranscriptItem]) {
    for item in items {
        match &mut item.entry {
            TranscriptEntry::System { text, .. } if scrubber.finds(text.as_bytes()) => {
                *text = scrubber.scrub(text);
            }
            TranscriptEntry::Output { text, stream } => {
                *text = scrub_output(scrubber, *stream, std::mem::take(text));
            }
            TranscriptEntry::Input { text } => {
                *text = scrubber.redact_secrets(std::mem::take(text));
            }
            TranscriptEntry::System { .. } => {}
        }
    }
}

/// Whether the event as it would be written may name a secret: a byte search
/// finds one, or it holds an escape (`\u0074` spells `t`: a byte search reads
/// only what is written), which decoding settles.
fn may_name_a_secret(scrubber: &Scrubber, event: &EventPayload) -> bool {
    let found = |bytes: &[u8]| bytes.contains(&b'\\') || scrubber.finds(bytes);
    match event {
        EventPayload::Json { json, .. } => found(json.get().as_bytes()),
        EventPayload::Decoded(decoded) => {
            serde_json::to_vec(&**decoded).map_or(true, |bytes| found(&bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use switchyard_protocol::EventPayload;

    use super::*;

    const HOST: &str = "runtime-7.internal";

    /// As `remote_runtime` builds it: the URL and `host:port` are secrets too.
    fn scrubber() -> Scrubber {
        Scrubber::new([
            format!("http://{HOST}:7701"),
            format!("{HOST}:7701"),
            HOST.to_owned(),
            "token-0123456789".to_owned(),
        ])
        .with_number(7701)
        .with_secret(format!("http://{HOST}:7701"))
        .with_secret(format!("{HOST}:7701"))
    }

    fn worker() -> WorkerId {
        WorkerId::new("w-1").unwrap()
    }

    fn raw(event: Value) -> EventPayload {
        let text = serde_json::value::to_raw_value(&event).unwrap();
        EventPayload::from_json(text).unwrap()
    }

    fn detail(label: &str) -> Value {
        json!({
            "worker_id": "w-1", "runtime_id": "remote", "profile": "echo",
            "label": label, "status": "running", "owner": null,
            "created_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z",
            "exit": null, "input_count": 0, "output_bytes": 0
        })
    }

    /// `event` through the check, as JSON (or the error's message).
    fn check(event: Value) -> Result<Value, String> {
        checked_event(&scrubber(), &worker(), raw(event))
            .map(|e| serde_json::to_value(&e).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_runtimes_words_are_scrubbed_and_the_workers_are_not() {
        let (typed, ssh) = (format!("I run on {HOST}"), format!("ssh {HOST}"));
        let cases = [
            // A snapshot's detail and its system notes.
            (
                json!({"kind":"snapshot","worker":detail(&format!("on {HOST}:7701")),"transcript":[
                    {"sequence":1,"at":"2026-12-01T00:00:00Z","kind":"system","note":"failed",
                     "text":format!("see http://{HOST}:7701")},
                    {"sequence":2,"at":"2026-12-01T00:00:00Z","kind":"output","stream":"stdout",
                     "text":format!("I run on {HOST}")}
                ]}),
                vec!["on [redacted]", "see [redacted]", typed.as_str()],
            ),
            // A diagnostic's message and code.
            (
                json!({"kind":"diagnostic","severity":"error","code":"x",
                       "message":"token-0123456789 at port 7701"}),
                vec!["[redacted] at port [redacted]"],
            ),
            // The worker's output and the user's input, as they are, but for the
            // runtime's URL and address.
            (
                json!({"kind":"output","sequence":3,"stream":"stdout","text":HOST}),
                vec![HOST],
            ),
            (
                json!({"kind":"input","sequence":4,"text":format!("ssh {HOST}")}),
                vec![ssh.as_str()],
            ),
            (
                json!({"kind":"output","sequence":5,"stream":"stdout",
                       "text":format!("GET http://{HOST}:7701/v1, then {HOST}:7701 on port 7701")}),
                vec!["GET [redacted]/v1, then [redacted] on port 7701"],
            ),
        ];
        for (event, expected) in cases {
            let checked = check(event.clone()).unwrap().to_string();
            for text in expected {
                assert!(checked.contains(text), "{text:?} not in {checked}");
            }
            if event["kind"] == "diagnostic" {
                assert!(!scrubber().finds(checked.as_bytes()), "{checked}");
            }
        }
    }

    #[test]
    fn what_a_runtime_adds_beside_an_events_fields_is_dropped_with_its_secret() {
        let checked = check(
            json!({"kind":"status","status":"running","previous":"starting",
                                   "extra":format!("http://{HOST}:7701")}),
        )
        .unwrap();
        assert_eq!(
            checked,
            json!({"kind":"status","status":"running","previous":"starting"})
        );
        // Without a secret, it passes untouched.
        let honest = json!({"kind":"status","status":"running","previous":"starting"});
        assert_eq!(check(honest.clone()).unwrap(), honest);
    }

    /// `text`, an event object as a runtime wrote it (escapes and all), through
    /// the check.
    fn check_text(text: &str) -> Result<Value, String> {
        let raw = serde_json::value::RawValue::from_string(text.to_owned()).unwrap();
        checked_event(
            &scrubber(),
            &worker(),
            EventPayload::from_json(raw).unwrap(),
        )
        .map(|e| serde_json::to_value(&e).unwrap())
        .map_err(|e| e.to_string())
    }

    #[test]
    fn the_runtimes_address_is_redacted_from_output_however_it_is_written() {
        for written in [
            r"http:\/\/runtime-7.internal:7701",
            r"\u0072untime-7.internal:7701",
            "runtime-7.internal:7701",
        ] {
            let text = format!(
                r#"{{"kind":"output","sequence":1,"stream":"stdout","text":"at {written}"}}"#
            );
            let checked = check_text(&text).unwrap();
            assert_eq!(checked["text"], "at [redacted]", "{written}");
        }
    }

    #[test]
    fn a_lying_runtimes_snapshots_are_protocol_errors() {
        let mut another = detail("x");
        another["worker_id"] = json!("w-2");
        let mut secret_owner = detail("x");
        secret_owner["owner"] = json!(HOST);
        for worker in [another, secret_owner] {
            let error =
                check(json!({"kind":"snapshot","worker":worker,"transcript":[]})).unwrap_err();
            assert!(!scrubber().finds(error.as_bytes()), "{error}");
        }
    }

    #[test]
    fn what_cannot_be_checked_is_left_out_without_ending_the_stream() {
        let left_out = |checked: Result<Value, String>| {
            let checked = checked.unwrap();
            assert_eq!(checked["code"], "event_left_out", "{checked}");
            assert!(!scrubber().finds(checked.to_string().as_bytes()));
        };
        // A secret in an event this backend cannot read.
        left_out(check(json!({"kind":"unheard_of","note":HOST})));
        left_out(check(
            json!({"kind":"snapshot","worker":"nothing","note":HOST}),
        ));
        // An escape can spell a secret that no byte search sees.
        left_out(check_text(
            r#"{"kind":"unheard_of","note":"\u0074oken-0123456789"}"#,
        ));
        // Where the event can be read, the escaped secret is scrubbed.
        let scrubbed = check_text(
            r#"{"kind":"diagnostic","severity":"info","code":"x","message":"\u0074oken-0123456789"}"#,
        )
        .unwrap();
        assert_eq!(scrubbed["message"], "[redacted]");
        // Without a secret, a newer runtime's events pass as they are.
        for newer in [
            json!({"kind":"unheard_of","note":"fine"}),
            json!({"kind":"snapshot","worker":"a newer shape"}),
        ] {
            assert_eq!(check(newer.clone()).unwrap(), newer);
        }
    }

    #[test]
    fn transcript_pages_have_their_notes_scrubbed() {
        let page: TranscriptPage = serde_json::from_value(json!({"items":[
            {"sequence":1,"at":"2026-12-01T00:00:00Z","kind":"system","note":"failed",
             "text":format!("could not reach {HOST}")},
            {"sequence":2,"at":"2026-12-01T00:00:00Z","kind":"output","stream":"stdout",
             "text":HOST}
        ],"next_after":null,"total":2}))
        .unwrap();
        let page = serde_json::to_value(checked_transcript(&scrubber(), page)).unwrap();
        assert_eq!(page["items"][0]["text"], "could not reach [redacted]");
        assert_eq!(page["items"][1]["text"], HOST);
    }

    /// Output and input are the worker's data: passed as written when they are the
    /// event's own fields in the runtimes' form and hold no token; otherwise read,
    /// with what the runtime added dropped and a token redacted, or left out.
    #[test]
    fn output_and_input_pass_as_written_unless_they_hold_a_token_or_more_than_their_fields() {
        const TOKEN: &str = "tok-9876543210";
        let scrubber = scrubber().with_secret(TOKEN.to_owned());
        let check = |text: &str| {
            let raw = serde_json::value::RawValue::from_string(text.to_owned()).unwrap();
            let checked =
                checked_event(&scrubber, &worker(), EventPayload::from_json(raw).unwrap()).unwrap();
            let as_received =
                matches!(&checked, EventPayload::Json { json, .. } if json.get() == text);
            (serde_json::to_value(&checked).unwrap(), as_received)
        };
        let output =
            |text: &str| json!({"kind":"output","sequence":3,"stream":"stdout","text":text});
        let plain = r#"{"kind":"output","sequence":3,"stream":"stdout","text":"a\n\"b\"\u001b"}"#;
        for (event, expected, as_received) in [
            (plain.to_owned(), output("a\n\"b\"\u{1b}"), true),
            // The host is ordinary data in a worker's output.
            (
                output(&format!("ssh {HOST}")).to_string(),
                output(&format!("ssh {HOST}")),
                true,
            ),
            (
                output(&format!("the token is {TOKEN}!")).to_string(),
                output("the token is [redacted]!"),
                false,
            ),
            (
                r#"{"kind":"input","sequence":4,"text":"\u0074ok-9876543210"}"#.to_owned(),
                json!({"kind":"input","sequence":4,"text":"[redacted]"}),
                false,
            ),
            (
                json!({"kind":"output","sequence":3,"stream":"stdout","text":"x",
                       "note":format!("runtime at http://{HOST}:7701 with {TOKEN}")})
                .to_string(),
                output("x"),
                false,
            ),
            (
                json!({"kind":"input","sequence":4,"text":"z","addr":format!("{HOST}:7701")})
                    .to_string(),
                json!({"kind":"input","sequence":4,"text":"z"}),
                false,
            ),
        ] {
            assert_eq!(check(&event), (expected, as_received), "{event}");
        }
        // A stream no runtime writes cannot be read: left out, secret and all.
        let (left_out, _) =
            check(&json!({"kind":"output","sequence":3,"stream":TOKEN,"text":"y"}).to_string());
        assert_eq!(left_out["code"], "event_left_out", "{left_out}");
        assert!(!left_out.to_string().contains(TOKEN));
    }

    /// A token the runtime's reads cut in two reaches no client: its half at the end
    /// of one output event and its half at the start of the next are both taken out,
    /// though the fast path would pass either event as written.
    #[test]
    fn a_token_cut_in_two_output_events_loses_both_halves() {
        const TOKEN: &str = "tok-9876543210";
        let scrubber = scrubber().with_token(TOKEN.to_owned());
        let text_of = |text: &str| {
            let event = json!({"kind":"output","sequence":3,"stream":"stdout","text":text});
            let raw = serde_json::value::RawValue::from_string(event.to_string()).unwrap();
            let checked =
                checked_event(&scrubber, &worker(), EventPayload::from_json(raw).unwrap()).unwrap();
            serde_json::to_value(&checked).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(text_of("TOKEN=tok-987"), "TOKEN=[redacted]");
        assert_eq!(text_of("6543210\n$ "), "[redacted]\n$ ");
        assert_eq!(text_of("no token here"), "no token here");
    }

    /// On a terminal a secret is masked with as many `*`s, in live output and in
    /// transcript pages alike: a full-screen program's rows do not shift, and the
    /// live screen matches what a newcomer's snapshot paints.
    #[test]
    fn a_terminals_output_keeps_its_layout() {
        let address = format!("{HOST}:7701");
        let masked = "*".repeat(address.len());
        let event = json!({"kind":"output","sequence":3,"stream":"terminal",
                           "text":format!("listen = \"{address}\"\r\n")});
        let checked = checked_event(&scrubber(), &worker(), raw(event)).unwrap();
        let checked = serde_json::to_value(&checked).unwrap();
        assert_eq!(checked["text"], format!("listen = \"{masked}\"\r\n"));
        let page: TranscriptPage = serde_json::from_value(json!({"items":[
            {"sequence":3,"at":"2026-12-01T00:00:00Z","kind":"output","stream":"terminal",
             "text":format!("at {address}")},
            {"sequence":4,"at":"2026-12-01T00:00:00Z","kind":"output","stream":"stdout",
             "text":format!("at {address}")}
        ],"next_after":null,"total":2}))
        .unwrap();
        let page = serde_json::to_value(checked_transcript(&scrubber(), page)).unwrap();
        assert_eq!(page["items"][0]["text"], format!("at {masked}"));
        assert_eq!(page["items"][1]["text"], "at [redacted]");
    }

    /// A snapshot's transcript and screen, and a transcript page, lose a token as
    /// live output and input do: a newcomer, or a reader of the transcript, does not
    /// see what live viewers did not.
    #[test]
    fn a_token_is_redacted_from_snapshots_and_transcript_pages_too() {
        const TOKEN: &str = "tok-9876543210";
        let scrubber = scrubber().with_secret(TOKEN.to_owned());
        let items = json!([
            {"sequence":1,"at":"2026-12-01T00:00:00Z","kind":"input","text":format!("echo {TOKEN}")},
            {"sequence":2,"at":"2026-12-01T00:00:00Z","kind":"output","stream":"terminal",
             "text":format!("{TOKEN}\r\n")}
        ]);
        let snapshot = json!({"kind":"snapshot","worker":detail("x"),"transcript":items,
            "terminal":{"cols":80,"rows":24,"screen":format!("$ echo {TOKEN}\r\n{TOKEN}"),
                        "cursor":{"row":1,"col":14},"alternate":false}});
        let checked = checked_event(&scrubber, &worker(), raw(snapshot)).unwrap();
        let text = serde_json::to_string(&checked).unwrap();
        assert!(!text.contains(TOKEN), "{text}");
        assert!(text.contains("echo [redacted]"), "{text}");
        // The screen keeps its layout: the token's characters become as many `*`s.
        let masked = "*".repeat(TOKEN.len());
        assert!(text.contains(&format!("$ echo {masked}")), "{text}");
        let page: TranscriptPage =
            serde_json::from_value(json!({"items":items,"next_after":null,"total":2})).unwrap();
        let text = serde_json::to_string(&checked_transcript(&scrubber, page)).unwrap();
        assert!(!text.contains(TOKEN), "{text}");
        assert!(text.contains("echo [redacted]"), "{text}");
    }
}
