//! A runtime's event frame read in one pass without serde: the frame a runtime
//! sends for every event (`{"type":"event","cursor":"…","worker_id":"…","event":{…}}`,
//! compact, in that order) split into its cursor, worker id and event object, the
//! object checked to be valid JSON on the way.
//!
//! serde_json reads a string with an escape every few bytes (an output event of
//! short lines: `1\n2\n…`) several times slower than a table lookup per byte does,
//! and the backend reads every event of every watched worker. Like [`super::scan`],
//! this reader is stricter than JSON where that is simpler (no white space at all,
//! no escape in the cursor), never looser: anything else gives `None`, and the
//! caller reads the frame with serde as before, which accepts it or says why not.

use super::json_string;
use crate::event::RawEvent;
use crate::ids::WorkerId;

/// The parts of a runtime's event frame, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFrameParts<'a> {
    /// The runtime's cursor (not empty; no escape, quote or control character).
    pub cursor: &'a str,
    /// The worker (a valid id).
    pub worker_id: &'a str,
    /// The event object.
    pub event: CheckedEvent<'a>,
}

/// An event object's JSON text that [`event_frame`] checked: one valid JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedEvent<'a> {
    json: &'a str,
    /// Whether it is a plain text event ([`plain_text_event`]), when the check found
    /// out on the way (it does for output and input events in the form runtimes
    /// write them).
    plain_text: Option<bool>,
}

impl<'a> CheckedEvent<'a> {
    /// The object's text.
    pub fn get(self) -> &'a str {
        self.json
    }

    /// Whether it is a plain text event, if known (`None`: not looked at).
    pub(crate) fn plain_text(self) -> Option<bool> {
        self.plain_text
    }
}

/// Objects and arrays nested deeper than this are left to serde (whose own limit is
/// 128).
const MAX_DEPTH: u32 = 100;

/// Splits a runtime's event frame in canonical form, or `None`.
pub fn event_frame(text: &str) -> Option<EventFrameParts<'_>> {
    let rest = text.strip_prefix("{\"type\":\"event\",\"cursor\":\"")?;
    let (cursor, rest) = rest.split_once('"')?;
    if cursor.is_empty() || cursor.bytes().any(|b| b == b'\\' || b < 0x20) {
        return None;
    }
    let rest = rest.strip_prefix(",\"worker_id\":\"")?;
    let (worker_id, rest) = rest.split_once('"')?;
    WorkerId::check(worker_id).ok()?;
    let event = rest.strip_prefix(",\"event\":")?.strip_suffix('}')?;
    let bytes = event.as_bytes();
    // An output or input event in the form runtimes write it is valid exactly when
    // its text is: read only that, and learn on the way whether it is plain.
    let plain_text = text_start(event)
        .and_then(|start| json_string::read(bytes, start))
        .and_then(|text| (text.end == bytes.len() - 1).then_some(text.plain));
    if plain_text.is_none() && (bytes.first() != Some(&b'{') || value(bytes, 0, 0)? != bytes.len())
    {
        return None;
    }
    Some(EventFrameParts {
        cursor,
        worker_id,
        event: CheckedEvent {
            json: event,
            plain_text,
        },
    })
}

/// The text of an output or input event object in the form runtimes write it, as
/// written between its quotes: `{"kind":"output","sequence":N,"stream":S,"text":"…"}`
/// (`S` one of `"stdout"`, `"stderr"`, `"terminal"`) or
/// `{"kind":"input","sequence":N,"text":"…"}`, compact, in that order, nothing else,
/// `N` a `u64`. `None` for anything else, and for a text with an escape other than
/// those a control character, a quote or a backslash needs (`\"`, `\\`, `\b`, `\f`,
/// `\n`, `\r`, `\t`, `\u0000` to `\u001f`): in the text returned, every other
/// character stands as itself, so a byte search for a string without control
/// characters (its quotes and backslashes escaped) finds it wherever the decoded text
/// holds it.
///
/// The text is read as a JSON string 64 bytes at a time where the CPU allows (an
/// output of short lines has an escape every few bytes), unless [`event_frame`]
/// read it already.
pub fn plain_text_event(event: &RawEvent) -> Option<&str> {
    let json = event.get();
    let start = text_start(json)?;
    let text = &json[start..json.len() - 2];
    let plain = match event.plain_text() {
        Some(plain) => plain,
        None => json_string::read(json.as_bytes(), start)
            .is_some_and(|string| string.plain && string.end == json.len() - 1),
    };
    plain.then_some(text)
}

/// Where the text of an output or input event object in the form runtimes write it
/// starts (after its opening quote), if `event` is one up to there and ends with
/// `"}`; the text is not looked at.
fn text_start(event: &str) -> Option<usize> {
    let rest = if let Some(rest) = event.strip_prefix("{\"kind\":\"output\",\"sequence\":") {
        let rest = sequence(rest)?.strip_prefix(",\"stream\":\"")?;
        let rest = ["stdout", "stderr", "terminal"]
            .iter()
            .find_map(|stream| rest.strip_prefix(stream))?;
        rest.strip_prefix("\",\"text\":\"")?
    } else {
        let rest = event.strip_prefix("{\"kind\":\"input\",\"sequence\":")?;
        sequence(rest)?.strip_prefix(",\"text\":\"")?
    };
    rest.strip_suffix("\"}")?;
    Some(event.len() - rest.len())
}

/// `rest` after a `u64` at its start (digits only, as JSON writes it: no leading
/// zero), or `None`.
fn sequence(rest: &str) -> Option<&str> {
    let end = rest.bytes().take_while(u8::is_ascii_digit).count();
    if end > 1 && rest.starts_with('0') {
        return None;
    }
    rest[..end].parse::<u64>().ok()?;
    Some(&rest[end..])
}

/// Reads the JSON value at `at`; returns where it ends.
fn value(b: &[u8], at: usize, depth: u32) -> Option<usize> {
    match *b.get(at)? {
        b'{' => object(b, at + 1, depth + 1),
        b'[' => array(b, at + 1, depth + 1),
        b'"' => string(b, at + 1),
        b't' => literal(b, at, b"true"),
        b'f' => literal(b, at, b"false"),
        b'n' => literal(b, at, b"null"),
        b'-' | b'0'..=b'9' => number(b, at),
        _ => None,
    }
}

/// The members after an object's `{` at `at - 1`.
fn object(b: &[u8], mut at: usize, depth: u32) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    if *b.get(at)? == b'}' {
        return Some(at + 1);
    }
    loop {
        if *b.get(at)? != b'"' {
            return None;
        }
        at = string(b, at + 1)?;
        if *b.get(at)? != b':' {
            return None;
        }
        at = value(b, at + 1, depth)?;
        match *b.get(at)? {
            b',' => at += 1,
            b'}' => return Some(at + 1),
            _ => return None,
        }
    }
}

/// The items after an array's `[` at `at - 1`.
fn array(b: &[u8], mut at: usize, depth: u32) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    if *b.get(at)? == b']' {
        return Some(at + 1);
    }
    loop {
        at = value(b, at, depth)?;
        match *b.get(at)? {
            b',' => at += 1,
            b']' => return Some(at + 1),
            _ => return None,
        }
    }
}

/// The rest of a string whose opening quote is at `at - 1`; returns the index after
/// its closing quote.
fn string(b: &[u8], at: usize) -> Option<usize> {
    json_string::read(b, at).map(|string| string.end)
}

fn literal(b: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    (b.get(at..at + word.len())? == word).then_some(at + word.len())
}

/// `-`? (`0` | [1-9][0-9]*) (`.` [0-9]+)? ([eE] [+-]? [0-9]+)?
fn number(b: &[u8], mut at: usize) -> Option<usize> {
    let digits = |at: usize| {
        let end = at
            + b[at.min(b.len())..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
        (end > at).then_some(end)
    };
    if b.get(at) == Some(&b'-') {
        at += 1;
    }
    at = match *b.get(at)? {
        b'0' => at + 1,
        b'1'..=b'9' => digits(at)?,
        _ => return None,
    };
    if b.get(at) == Some(&b'.') {
        at = digits(at + 1)?;
    }
    if matches!(b.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(b.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        at = digits(at)?;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frame around `event`, as a runtime writes it.
    fn frame(event: &str) -> String {
        format!(r#"{{"type":"event","cursor":"c1","worker_id":"w-1","event":{event}}}"#)
    }

    /// What serde makes of the same frame: the parts, or `None` if it refuses it.
    fn serde_parts(text: &str) -> Option<(String, String, String)> {
        #[derive(serde::Deserialize)]
        struct Envelope {
            cursor: String,
            worker_id: String,
            event: Box<serde_json::value::RawValue>,
        }
        let frame: Envelope = serde_json::from_str(text).ok()?;
        frame
            .event
            .get()
            .starts_with('{')
            .then(|| (frame.cursor, frame.worker_id, frame.event.get().to_owned()))
    }

    /// `event_frame` accepts the frame around `event` exactly when `accepted`; what
    /// it accepts, serde accepts and splits the same way, and it says whether the
    /// event is plain text as [`plain_text_event`] reading it afresh does.
    fn check(event: &str, accepted: bool) {
        let text = frame(event);
        let parts = event_frame(&text);
        assert_eq!(parts.is_some(), accepted, "{text}");
        if let Some(parts) = parts {
            agrees_with_serde(&text, parts);
        }
    }

    /// serde splits `text` as `parts` say, and the event's plain-text verdict
    /// carried from [`event_frame`] is the one a fresh read gives.
    fn agrees_with_serde(text: &str, parts: EventFrameParts<'_>) {
        assert_eq!(
            serde_parts(text),
            Some((
                parts.cursor.to_owned(),
                parts.worker_id.to_owned(),
                parts.event.get().to_owned()
            )),
            "{text}"
        );
        assert_eq!(
            plain_text_event(&parts.event.into()),
            plain_text_event(&raw(parts.event.get())),
            "{text}"
        );
    }

    #[test]
    fn reads_what_runtimes_send() {
        check(
            r#"{"kind":"output","sequence":3,"stream":"stdout","text":"1\n2\n\u001b[0m\"é\\/"}"#,
            true,
        );
        check(r#"{"kind":"interrupted"}"#, true);
        check(
            r#"{"kind":"exited","code":-1,"signal":null,"ok":false,"x":[1.5e-3,0,{},[]]}"#,
            true,
        );
        check(r#"{}"#, true);
    }

    #[test]
    fn leaves_anything_else_to_serde() {
        for (event, why) in [
            (r#"{"kind":"output","text":"a	b"}"#, "a raw tab"),
            (r#"{"kind":"output","text":"a\x"}"#, "an unknown escape"),
            (r#"{"kind":"output","text":"\u12g4"}"#, "a bad \\u escape"),
            (r#"{"kind": "output"}"#, "white space"),
            (r#"{"kind":"output",}"#, "a trailing comma"),
            (r#"{"a":01}"#, "a leading zero"),
            (r#"{"a":1.}"#, "a bare decimal point"),
            (r#"{"a":1e}"#, "an empty exponent"),
            (r#"{"a":-}"#, "a bare minus"),
            (r#"{"a":tru}"#, "a cut literal"),
            (r#"{"a":"unterminated}"#, "an unterminated string"),
            (r#"["kind"]"#, "not an object"),
            (r#"{"a":1}{"b":2}"#, "two values"),
            (r#"{"a":[1 2]}"#, "no comma"),
        ] {
            assert!(event_frame(&frame(event)).is_none(), "{why}: {event}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        check(&format!(r#"{{"a":{deep}}}"#), false);
        for text in [
            r#"{"type":"event","cursor":"","worker_id":"w","event":{}}"#,
            r#"{"type":"event","cursor":"c\"","worker_id":"w","event":{}}"#,
            r#"{"type":"event","cursor":"c","worker_id":"w x","event":{}}"#,
            r#"{"type":"event","cursor":"c","runtime_id":"r","worker_id":"w","event":{}}"#,
            r#"{"type":"event","cursor":"c","worker_id":"w","event":{}} "#,
            r#"{"type":"reset","reason":"runtime_restarted"}"#,
        ] {
            assert!(event_frame(text).is_none(), "{text}");
        }
    }

    #[test]
    fn finds_each_stop_at_every_offset_of_a_word() {
        // Raw bytes after `offset` plain ones: a quote ends the string, an escape
        // continues it, a control character refuses it; DEL, `~`, a space and
        // non-ASCII are plain.
        for offset in 0..20 {
            let plain = "a".repeat(offset);
            for (stop, accepted) in [
                ("\"", true),
                ("\\n", true),
                ("\\u00e9", true),
                ("\u{1}", false),
                ("\u{1f}", false),
                ("\n", false),
                ("\u{7f}", true),
                ("~", true),
                (" ", true),
                ("é", true),
                ("\u{10348}", true),
            ] {
                let text = if stop == "\"" {
                    format!("{plain}\"")
                } else {
                    format!("{plain}{stop}{plain}\"")
                };
                check(
                    &format!(r#"{{"kind":"output","text":"{text},"n":1}}"#),
                    accepted,
                );
            }
        }
    }

    #[test]
    fn agrees_with_serde_on_every_cut_and_byte_changed() {
        for event in [
            r#"{"kind":"output","sequence":12,"stream":"stderr","text":"x\ty\u00e9\"","n":[-0.5,1E+2,true,null]}"#,
            // An output event as runtimes write it, which is read by its text alone.
            r#"{"kind":"output","sequence":12,"stream":"stderr","text":"x\ty\u00e9\"\/\\"}"#,
        ] {
            let text = frame(event);
            for cut in 0..text.len() {
                if let Some(prefix) = text.get(..cut)
                    && let Some(parts) = event_frame(prefix)
                {
                    panic!("accepted a cut frame: {prefix} as {parts:?}");
                }
            }
            for at in 0..text.len() {
                for byte in [b' ', b'"', b'\\', b'}', b'0', b'a', b'\n', b',', b'-', b'/'] {
                    let mut changed = text.clone().into_bytes();
                    changed[at] = byte;
                    let Ok(changed) = String::from_utf8(changed) else {
                        continue;
                    };
                    if let Some(parts) = event_frame(&changed) {
                        agrees_with_serde(&changed, parts);
                    }
                }
            }
        }
    }

    /// `json` as a checked event object.
    fn raw(json: &str) -> RawEvent {
        serde_json::value::RawValue::from_string(json.to_owned())
            .unwrap()
            .into()
    }

    #[test]
    fn plain_text_events_are_the_runtimes_output_and_input_as_written() {
        let out =
            |rest: &str| format!(r#"{{"kind":"output","sequence":3,"stream":"stdout",{rest}}}"#);
        for (event, expected) in [
            (out(r#""text":"a\n\"b\\\u001b""#), Some(r#"a\n\"b\\\u001b"#)),
            (r#"{"kind":"input","sequence":0,"text":""}"#.to_owned(), Some("")),
            (
                r#"{"kind":"output","sequence":18446744073709551615,"stream":"terminal","text":"é"}"#
                    .to_owned(),
                Some("é"),
            ),
            // Not the form runtimes write: left to serde.
            (r#"{"kind":"output","sequence":3,"stream":"pipe","text":"a"}"#.to_owned(), None),
            (r#"{"kind":"output","sequence":3,"text":"a"}"#.to_owned(), None),
            (out(r#""text":"a","note":"b""#), None),
            (r#"{"kind":"input","note":"b","sequence":3,"text":"a"}"#.to_owned(), None),
            (r#"{"kind":"input","sequence":18446744073709551616,"text":"a"}"#.to_owned(), None),
            (r#"{"kind":"input","sequence":-1,"text":"a"}"#.to_owned(), None),
            // An escape that a printable character does not need could spell a secret
            // that a byte search would miss.
            (out(r#""text":"\u0074oken""#), None),
            (out(r#""text":"a\/b""#), None),
            (out(r#""text":"\u0020""#), None),
            (out(r#""text":"\\\u0074""#), None),
            // Backslashes pair off: after `\\` a quote or a `u` stands as itself.
            (out(r#""text":"a\\\"b""#), Some(r#"a\\\"b"#)),
            (out(r#""text":"a\\","note":"b""#), None),
            (out(r#""text":"\\u0074""#), Some(r#"\\u0074"#)),
        ] {
            assert_eq!(plain_text_event(&raw(&event)), expected, "{event}");
            check(&event, true);
        }
    }

    proptest::proptest! {
        /// Whatever a runtime prints, serde writes its output event in the plain form,
        /// and the text found is serde's escaping of it: so a byte search of the
        /// escaped form of a string without control characters finds it in the text.
        #[test]
        fn every_output_serde_writes_is_plain(text in ".*", needle in "[ -~]{1,4}") {
            let event = crate::WorkerEvent::Output {
                sequence: 7,
                stream: crate::OutputStream::Stderr,
                text: format!("{text}{needle}{text}"),
            };
            let json = serde_json::to_string(&event).unwrap();
            let escaped = |s: &str| serde_json::to_string(s).unwrap();
            let written = escaped(&format!("{text}{needle}{text}"));
            let event = raw(&json);
            proptest::prop_assert_eq!(plain_text_event(&event), Some(&written[1..written.len() - 1]));
            let text = frame(&json);
            let checked: RawEvent = event_frame(&text).unwrap().event.into();
            proptest::prop_assert_eq!(plain_text_event(&checked), plain_text_event(&event));
            let needle = escaped(&needle);
            proptest::prop_assert!(written.contains(&needle[1..needle.len() - 1]));
        }
    }
}
