//! The canonical-form check as one pass over the bytes, without serde: a strict
//! JSON reader for exactly the shapes of [`super`]'s answers. It is stricter than
//! the specification ([`super::oracle`], serde types) where that is simpler (a key
//! written with an escape is refused; so is `-0`), never looser; the tests hold it
//! to that on every input they try.
//!
//! Anything unexpected gives `None` at once: the caller then takes the typed path,
//! so this reader only ever has to be right about what it accepts. It refuses any
//! answer with a backslash or a control character anywhere (see `Reader::new`),
//! which makes finding a string's end one search for a quote.

use super::{DetailFacts, ListFacts, span_of};
use crate::ids::{RuntimeId, WorkerId};
use crate::worker::WorkerStatus;

/// A `WorkerDetail` in canonical form.
pub(super) fn detail(body: &[u8]) -> Option<DetailFacts<'_>> {
    let mut r = Reader::new(body)?;
    let facts = r.detail()?;
    r.end()?;
    Some(facts)
}

/// A `WorkerList` in canonical form.
pub(super) fn list(body: &[u8]) -> Option<ListFacts<'_>> {
    let mut r = Reader::new(body)?;
    let mut workers = None;
    let mut next = None;
    r.object(|r, key| match key {
        b"workers" if workers.is_none() => {
            let mut all = Vec::new();
            r.array(|r| {
                all.push(r.detail()?);
                Some(())
            })?;
            workers = Some(all);
            Some(())
        }
        b"next" if next.is_none() => {
            next = Some(if r.peek()? == b'n' {
                r.null()?;
                None
            } else {
                Some(r.id(WorkerId::check)?)
            });
            Some(())
        }
        _ => None,
    })?;
    r.end()?;
    Some(ListFacts {
        workers: workers?,
        next: next?,
    })
}

/// An `InputAccepted` in canonical form.
pub(super) fn input_accepted(body: &[u8]) -> bool {
    let check = || {
        let mut r = Reader::new(body)?;
        let mut sequence = None;
        r.object(|r, key| match key {
            b"sequence" if sequence.is_none() => {
                sequence = Some(r.unsigned()?);
                Some(())
            }
            _ => None,
        })?;
        r.end()?;
        sequence.map(drop)
    };
    check().is_some()
}

/// A reader over a whole answer; `at` is the next byte to read.
struct Reader<'a> {
    /// The answer, as text (checked UTF-8 once, in `new`).
    text: &'a str,
    /// The same, as bytes.
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader of `body`, which must be UTF-8 and hold no backslash and no control
    /// character at all: so no string in it is escaped, none holds a control
    /// character, and the end of a string is its next quote. (White space between
    /// tokens can then only be spaces: a runtime's compact answers pass; a
    /// pretty-printed one takes the typed path.) A pass without an early exit (so
    /// the compiler checks many bytes at a time) finds control characters, a
    /// `memchr` finds backslashes, and one UTF-8 check of the whole answer lets
    /// every string in it be borrowed as text without another.
    fn new(body: &'a [u8]) -> Option<Self> {
        let lowest = body.iter().fold(u8::MAX, |lowest, &b| lowest.min(b));
        if lowest < 0x20 || memchr::memchr(b'\\', body).is_some() {
            return None;
        }
        let text = std::str::from_utf8(body).ok()?;
        Some(Self {
            text,
            bytes: body,
            at: 0,
        })
    }

    /// Skips JSON white space.
    #[inline]
    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after white space, consumed.
    #[inline]
    fn next_byte(&mut self) -> Option<u8> {
        self.space();
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// The next byte after white space, not consumed.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.space();
        self.bytes.get(self.at).copied()
    }

    /// Only white space is left.
    fn end(&mut self) -> Option<()> {
        self.space();
        (self.at == self.bytes.len()).then_some(())
    }

    /// A string without escapes or control characters: its contents, borrowed.
    #[inline]
    fn string(&mut self) -> Option<&'a [u8]> {
        if self.next_byte()? != b'"' {
            return None;
        }
        let start = self.at;
        // No backslash or control character is in the answer (see `new`).
        let len = memchr::memchr(b'"', &self.bytes[start..])?;
        self.at = start + len + 1;
        Some(&self.bytes[start..start + len])
    }

    /// A string that is a valid id of `check`'s kind.
    #[inline]
    fn id(&mut self, check: fn(&str) -> Result<(), crate::ids::IdError>) -> Option<&'a str> {
        let id = self.string_text()?;
        check(id).ok()?;
        Some(id)
    }

    /// `null`.
    #[inline]
    fn null(&mut self) -> Option<()> {
        self.literal(b"null")
    }

    /// A string, or `null` (`None` inside).
    #[inline]
    fn null_or_string(&mut self) -> Option<Option<&'a [u8]>> {
        if self.peek()? == b'n' {
            self.null()?;
            Some(None)
        } else {
            self.string().map(Some)
        }
    }

    /// A string's text: its quotes are ASCII, so the slice of the (UTF-8) answer
    /// between them is text too.
    #[inline]
    fn string_text(&mut self) -> Option<&'a str> {
        let string = self.string()?;
        let start = self.at - 1 - string.len();
        self.text.get(start..start + string.len())
    }

    /// A string's text, or `null` (`None` inside).
    fn null_or_text(&mut self) -> Option<Option<&'a str>> {
        if self.peek()? == b'n' {
            self.null()?;
            Some(None)
        } else {
            self.string_text().map(Some)
        }
    }

    /// The digits of a JSON integer: `0`, or a non-zero digit and more digits, at
    /// most 20; nothing that makes it a fraction or an exponent may follow.
    fn digits(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        let rest = &self.bytes[start..];
        let len = rest
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
        if len == 0 || (len > 1 && rest[0] == b'0') || len > 20 {
            return None;
        }
        if matches!(rest.get(len), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.at = start + len;
        Some(&rest[..len])
    }

    /// A non-negative integer that fits a `u64`.
    fn unsigned(&mut self) -> Option<()> {
        self.space();
        let digits = self.digits()?;
        // Digit strings of one length compare as their numbers do.
        (digits.len() < 20 || digits <= b"18446744073709551615".as_slice()).then_some(())
    }

    /// An integer that fits an `i32` (not `-0`).
    fn small_int(&mut self) -> Option<i32> {
        self.space();
        let negative = self.bytes.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let digits = self.digits()?;
        if negative && digits == b"0" {
            return None;
        }
        // An i32 has at most 10 digits, and 10 digits fit an i64.
        if digits.len() > 10 {
            return None;
        }
        let value = digits
            .iter()
            .fold(0i64, |value, digit| value * 10 + i64::from(digit - b'0'));
        i32::try_from(if negative { -value } else { value }).ok()
    }

    /// An `i32` or `null`.
    fn null_or_small_int(&mut self) -> Option<()> {
        if self.peek()? == b'n' {
            self.null()
        } else {
            self.small_int().map(drop)
        }
    }

    /// An object: `field` is called with each key (written without escapes) and
    /// reads its value; it refuses a key it does not expect (or expects no more).
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        if self.next_byte()? != b'{' {
            return None;
        }
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            if self.next_byte()? != b':' {
                return None;
            }
            field(self, key)?;
            match self.next_byte()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// An array: `item` reads each element.
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if self.next_byte()? != b'[' {
            return None;
        }
        if self.peek()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.next_byte()? {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// A `WorkerDetail`: every field exactly once, no other. Tried first in the
    /// order and compact form a runtime writes it in (cheaper: no key to look up),
    /// then in any order.
    fn detail(&mut self) -> Option<DetailFacts<'a>> {
        let start = self.at;
        if let Some(facts) = self.detail_in_order() {
            return Some(facts);
        }
        self.at = start;
        self.detail_any_order()
    }

    /// The next bytes are `literal`, consumed (after white space). Inlined, so that
    /// each comparison is with bytes the compiler knows.
    #[inline(always)]
    fn literal(&mut self, literal: &[u8]) -> Option<()> {
        self.space();
        let end = self.at + literal.len();
        (self.bytes.get(self.at..end)? == literal).then(|| self.at = end)
    }

    /// A `WorkerDetail` with its fields in `WorkerDetail`'s order, no white space
    /// between a key and its colon.
    fn detail_in_order(&mut self) -> Option<DetailFacts<'a>> {
        self.literal(b"{\"worker_id\":")?;
        let worker_id = self.id(WorkerId::check)?;
        self.literal(b",\"runtime_id\":")?;
        let runtime_id = self.id(RuntimeId::check)?;
        self.literal(b",\"profile\":")?;
        self.string()?;
        self.literal(b",\"label\":")?;
        self.null_or_string()?;
        self.literal(b",\"status\":")?;
        self.status()?;
        self.literal(b",\"created_at\":")?;
        self.string()?;
        self.literal(b",\"updated_at\":")?;
        self.string()?;
        self.literal(b",\"exit\":")?;
        self.exit()?;
        self.literal(b",\"input_count\":")?;
        self.unsigned()?;
        self.literal(b",\"output_bytes\":")?;
        self.unsigned()?;
        self.literal(b",\"owner\":")?;
        let owner = self.null_or_text()?;
        self.literal(b"}")?;
        Some(DetailFacts {
            worker_id,
            owner,
            runtime_id: span_of(self.bytes, runtime_id)?,
        })
    }

    /// A `WorkerDetail` with its fields in any order.
    fn detail_any_order(&mut self) -> Option<DetailFacts<'a>> {
        const ALL: u16 = (1 << 11) - 1;
        let mut seen: u16 = 0;
        let mut worker_id = "";
        let mut runtime_id = "";
        let mut owner = None;
        self.object(|r, key| {
            let bit = match key {
                b"worker_id" => {
                    worker_id = r.id(WorkerId::check)?;
                    0
                }
                b"runtime_id" => {
                    runtime_id = r.id(RuntimeId::check)?;
                    1
                }
                b"profile" => {
                    r.string()?;
                    2
                }
                b"label" => {
                    r.null_or_string()?;
                    3
                }
                b"status" => {
                    r.status()?;
                    4
                }
                b"created_at" => {
                    r.string()?;
                    5
                }
                b"updated_at" => {
                    r.string()?;
                    6
                }
                b"exit" => {
                    r.exit()?;
                    7
                }
                b"input_count" => {
                    r.unsigned()?;
                    8
                }
                b"output_bytes" => {
                    r.unsigned()?;
                    9
                }
                b"owner" => {
                    owner = r.null_or_text()?;
                    10
                }
                _ => return None,
            };
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            Some(())
        })?;
        (seen == ALL).then_some(())?;
        Some(DetailFacts {
            worker_id,
            owner,
            runtime_id: span_of(self.bytes, runtime_id)?,
        })
    }

    /// A `WorkerStatus`, by name.
    fn status(&mut self) -> Option<()> {
        let name = self.string()?;
        WorkerStatus::ALL
            .iter()
            .any(|status| status.as_str().as_bytes() == name)
            .then_some(())
    }

    /// `null`, or an `ExitInfo`: `code` and `signal`, each an `i32` or `null`.
    fn exit(&mut self) -> Option<()> {
        if self.peek()? == b'n' {
            return self.null();
        }
        let (mut code, mut signal) = (false, false);
        self.object(|r, key| {
            let seen = match key {
                b"code" => &mut code,
                b"signal" => &mut signal,
                _ => return None,
            };
            if std::mem::replace(seen, true) {
                return None;
            }
            r.null_or_small_int()
        })?;
        (code && signal).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::oracle;
    use super::*;
    use crate::worker::{WorkerDetail, WorkerList};
    use serde_json::Value;

    /// The scanner accepts nothing the specification refuses, and says the same
    /// about what it accepts; an accepted answer's typed round trip changes nothing.
    fn agrees(body: &[u8]) -> bool {
        let fast = detail(body);
        if let Some(facts) = &fast {
            assert_eq!(
                oracle::detail(body).as_ref(),
                Some(facts),
                "{:?}",
                String::from_utf8_lossy(body)
            );
            let typed: WorkerDetail = serde_json::from_slice(body).unwrap();
            let value: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(serde_json::to_value(&typed).unwrap(), value);
        }
        let fast_list = list(body);
        if let Some(facts) = &fast_list {
            assert_eq!(oracle::list(body).as_ref(), Some(facts));
            let typed: WorkerList = serde_json::from_slice(body).unwrap();
            let value: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(serde_json::to_value(&typed).unwrap(), value);
        }
        if input_accepted(body) {
            assert!(oracle::input_accepted(body));
        }
        fast.is_some() || fast_list.is_some() || input_accepted(body)
    }

    const DETAIL: &str = r#"{"worker_id":"w-1","runtime_id":"rt","profile":"echo","label":"a label","status":"exited","created_at":"2026-11-26T09:30:00.123Z","updated_at":"2026-11-26T09:31:00.000Z","exit":{"code":-1,"signal":null},"input_count":3,"output_bytes":12,"owner":"alice"}"#;

    fn seeds() -> Vec<String> {
        vec![
            DETAIL.to_owned(),
            DETAIL.replace(r#""exit":{"code":-1,"signal":null}"#, r#""exit":null"#),
            DETAIL.replace(r#""owner":"alice""#, r#""owner":null"#),
            DETAIL.replace("a label", &"a longer label ".repeat(9)),
            format!("{{\"workers\":[{DETAIL},{DETAIL}],\"next\":\"w-1\"}}"),
            r#"{"workers":[],"next":null}"#.to_owned(),
            r#"{"sequence":12}"#.to_owned(),
            format!(
                "  {{ \"workers\" : [ {} ] , \"next\" : null }} ",
                DETAIL.replace(',', " , ")
            ),
        ]
    }

    #[test]
    fn reads_a_runtimes_own_order_on_the_short_way() {
        let typed: WorkerDetail = serde_json::from_str(DETAIL).unwrap();
        assert_eq!(
            serde_json::to_string(&typed).unwrap(),
            DETAIL,
            "the seed is what a runtime writes"
        );
        let mut r = Reader::new(DETAIL.as_bytes()).unwrap();
        assert!(r.detail_in_order().is_some());
        // Another order is read the long way, to the same facts.
        let reordered = DETAIL.replace(
            r#""worker_id":"w-1","runtime_id":"rt""#,
            r#""runtime_id":"rt","worker_id":"w-1""#,
        );
        let mut r = Reader::new(reordered.as_bytes()).unwrap();
        assert!(r.detail_in_order().is_none());
        assert_eq!(
            detail(reordered.as_bytes()).map(|f| (f.worker_id, f.owner)),
            detail(DETAIL.as_bytes()).map(|f| (f.worker_id, f.owner))
        );
    }

    #[test]
    fn accepts_the_canonical_seeds_as_the_specification_does() {
        for seed in seeds() {
            assert!(agrees(seed.as_bytes()), "{seed}");
        }
    }

    /// A small deterministic generator (xorshift), so the test needs no crate.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn never_accepts_what_the_specification_refuses() {
        const PIECES: [&str; 26] = [
            "\\",
            "\"",
            ",",
            ":",
            "{",
            "}",
            "[",
            "]",
            "0",
            "1",
            "-",
            ".",
            "e",
            " ",
            "\n",
            "null",
            "\u{1}",
            "é",
            "\\u0041",
            "\"x\":1,",
            "\"label\":null,",
            "9999999999999999999999",
            "-0",
            "2147483648",
            "18446744073709551615",
            "18446744073709551616",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for round in 0..30_000 {
            let seeds = seeds();
            let mut body: Vec<u8> = seeds[round % seeds.len()].clone().into_bytes();
            for _ in 0..=rng.below(3) {
                let at = rng.below(body.len() + 1);
                match rng.below(4) {
                    0 if at < body.len() => {
                        body.remove(at);
                    }
                    1 if at < body.len() => {
                        let end = (at + 1 + rng.below(8)).min(body.len());
                        body.drain(at..end);
                    }
                    _ => {
                        let piece = PIECES[rng.below(PIECES.len())];
                        body.splice(at..at, piece.bytes());
                    }
                }
            }
            if agrees(&body) {
                accepted += 1;
            }
        }
        // Some mutations keep the form (white space, a digit in a count): they
        // must have been checked against the specification too.
        assert!(accepted > 100, "only {accepted} accepted");
    }

    #[test]
    fn refuses_invalid_utf8_anywhere() {
        let label = DETAIL.find("a label").unwrap();
        for bad in [
            &b"\xff"[..],
            b"\xc0\xaf",         // overlong '/'
            b"\xed\xa0\x80",     // a surrogate
            b"\xf4\x90\x80\x80", // past U+10FFFF
            b"\xc3",             // cut short, just before the closing quote
        ] {
            let mut body = DETAIL.as_bytes()[..label].to_vec();
            body.extend_from_slice(b"a label");
            body.extend_from_slice(bad);
            body.extend_from_slice(&DETAIL.as_bytes()[label + "a label".len()..]);
            assert!(detail(&body).is_none(), "{bad:?}");
            assert!(
                serde_json::from_slice::<WorkerDetail>(&body).is_err(),
                "{bad:?}"
            );
        }
        // Valid multi-byte text is read.
        let body = DETAIL.replace("a label", "caf\u{e9} \u{1f600}");
        assert!(agrees(body.as_bytes()));
    }

    #[test]
    fn the_largest_count_is_read_as_serde_does() {
        let largest = DETAIL.replace("\"input_count\":3", "\"input_count\":18446744073709551615");
        assert!(detail(largest.as_bytes()).is_some());
        assert!(agrees(largest.as_bytes()));
    }

    #[test]
    fn refuses_what_serde_would_read_differently() {
        let cases = [
            DETAIL.replace("\"label\"", "\"lab\\u0065l\""),
            DETAIL.replace("\"input_count\":3", "\"input_count\":-0"),
            DETAIL.replace("\"code\":-1", "\"code\":2147483648"),
            DETAIL.replace("\"input_count\":3", "\"input_count\":3.0"),
            DETAIL.replace("\"input_count\":3", "\"input_count\":18446744073709551616"),
            DETAIL.replace("\"input_count\":3", "\"input_count\":99999999999999999999"),
            DETAIL.replace("\"input_count\":3", "\"input_count\":03"),
            DETAIL.replace("\"input_count\":3", "\"input_count\":3e0"),
            DETAIL.replace("\"status\":\"exited\"", "\"status\":\"Exited\""),
            format!("{DETAIL}x"),
            DETAIL.replace("a label", "a\u{7}label"),
            DETAIL.replace(',', ",\n"),
        ];
        for body in cases {
            assert!(detail(body.as_bytes()).is_none(), "{body}");
        }
    }
}
