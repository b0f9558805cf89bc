//! [`Scrubber`]: the few strings about a remote runtime that must never reach a
//! client (its base URL, authority, host, the name its certificate is verified for,
//! its token, and its port as a number), found and redacted in whatever the runtime
//! says.

use std::borrow::Cow;

use memchr::memmem::Finder;

/// Strings that must never reach a client: the runtime's base URL, its host and
/// port, its token. Anything a remote runtime says is scrubbed of them, so even a
/// runtime that echoes them cannot leak them through the backend.
///
/// Matching ignores ASCII case: a host name is the same host in any case
/// (`LOCALHOST:7701`), and a token in another case, redacted too, costs nothing.
/// The needles are kept in lower case and text is searched as is when it has no
/// upper-case letter (most output), else through a lower-cased copy.
/// Searching is cheap (a precompiled substring search per secret), so the relay
/// path can search every answer's bytes.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// The secrets in lower case, longest first, each with its search.
    needles: Vec<(String, Finder<'static>)>,
    /// The searches [`Scrubber::finds`] runs: one per secret that contains no
    /// other (text holding the URL holds its host too).
    minimal: Vec<Finder<'static>>,
    /// Numbers (the port) redacted where they stand as a whole number in text.
    numbers: Vec<(String, Finder<'static>)>,
    /// The secrets of [`Scrubber::with_secret`] in lower case, each with a search
    /// for it as it is and one for it as JSON writes it in a string (quotes and
    /// backslashes escaped).
    secrets: Vec<(Finder<'static>, Finder<'static>)>,
    /// The searches [`Scrubber::finds_secret_written`] runs: one per secret whose
    /// written form contains no other's (text holding the base URL holds its
    /// `host:port` too).
    secrets_minimal: Vec<Finder<'static>>,
    /// The tokens whose parts are redacted too ([`Scrubber::with_token`]): each
    /// as it is and as JSON writes it in a string.
    tokens: Vec<(String, String)>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} needles)", self.needles.len())
    }
}

/// Of `searches`, those whose needle contains no other's (equal needles once): a
/// text without the others' needles has none of theirs.
fn minimal_searches<'a>(
    searches: impl Iterator<Item = &'a Finder<'static>>,
) -> Vec<Finder<'static>> {
    let searches: Vec<&Finder<'static>> = searches.collect();
    let mut minimal: Vec<Finder<'static>> = Vec::new();
    for (i, f) in searches.iter().enumerate() {
        let holds_another = searches.iter().enumerate().any(|(j, g)| {
            let (n, m) = (f.needle(), g.needle());
            (m.len() < n.len() || (m == n && j < i)) && memchr::memmem::find(n, m).is_some()
        });
        if !holds_another {
            minimal.push((*f).clone());
        }
    }
    minimal
}

/// A needle in lower case with its precompiled search.
fn searched(needle: String) -> (String, Finder<'static>) {
    let needle = needle.to_ascii_lowercase();
    let finder = Finder::new(needle.as_bytes()).into_owned();
    (needle, finder)
}

/// `bytes` with ASCII letters in lower case, for the needles' searches: borrowed
/// when it has no upper-case letter (the search then sees the text itself). Byte
/// offsets are the same in both.
fn folded(bytes: &[u8]) -> Cow<'_, [u8]> {
    if has_upper_case(bytes) {
        Cow::Owned(bytes.to_ascii_lowercase())
    } else {
        Cow::Borrowed(bytes)
    }
}

/// Whether `bytes` hold an ASCII upper-case letter; 16 bytes at a time, without
/// an exit inside a block, so that the compiler can vectorise it.
fn has_upper_case(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        let mut upper = false;
        for &b in block {
            upper |= b.is_ascii_uppercase();
        }
        if upper {
            return true;
        }
    }
    blocks.remainder().iter().any(u8::is_ascii_uppercase)
}

/// `text` with every match of `search` (a lower-case needle) in its folded form
/// replaced by what `replacement` makes of the text matched; `text` itself when
/// nothing matches.
fn replace_folded(
    text: String,
    search: &Finder<'_>,
    replacement: impl Fn(&str) -> String,
) -> String {
    let len = search.needle().len();
    let folded = folded(text.as_bytes());
    let mut matches = search.find_iter(&folded).peekable();
    if matches.peek().is_none() {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut done = 0;
    for at in matches {
        out.push_str(&text[done..at]);
        out.push_str(&replacement(&text[at..at + len]));
        done = at + len;
    }
    out.push_str(&text[done..]);
    out
}

impl Scrubber {
    /// Scrubs each of `needles`: addresses and names, of which empty ones and
    /// ones shorter than 4 bytes are ignored (a two-letter host would take every
    /// such pair of letters out of what runtimes say; its URL and authority are
    /// still scrubbed). A token goes in with [`Scrubber::with_secret`].
    pub fn new(needles: impl IntoIterator<Item = String>) -> Self {
        Self::of(
            needles.into_iter().filter(|n| n.len() >= 4).collect(),
            Vec::new(),
            Vec::new(),
        )
    }

    /// Also scrubs `secret` however short it is, and redacts it even from what a
    /// worker prints or is sent ([`Scrubber::redact_secrets`]): the token, which must
    /// never reach a client even when short enough to mangle unrelated text, and the
    /// runtime's base URL and `host:port`.
    pub fn with_secret(self, secret: String) -> Self {
        let mut needles: Vec<String> = self.needles.into_iter().map(|(n, _)| n).collect();
        let mut secrets = self.secrets;
        if !secret.is_empty() {
            // A string's JSON is its text escaped between two quotes.
            let quoted = serde_json::to_string(&secret).expect("a string encodes");
            let written = quoted[1..quoted.len() - 1].to_owned();
            secrets.push((searched(secret.clone()).1, searched(written).1));
            needles.push(secret);
        }
        Self {
            tokens: self.tokens,
            ..Self::of(needles, self.numbers, secrets)
        }
    }

    fn of(
        needles: Vec<String>,
        numbers: Vec<(String, Finder<'static>)>,
        secrets: Vec<(Finder<'static>, Finder<'static>)>,
    ) -> Self {
        let mut needles: Vec<String> = needles.iter().map(|n| n.to_ascii_lowercase()).collect();
        // Longest first, so a URL goes before the host inside it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        let minimal = needles
            .iter()
            .filter(|n| {
                !needles
                    .iter()
                    .any(|m| m.len() < n.len() && n.contains(m.as_str()))
            })
            .map(|n| searched(n.clone()).1)
            .collect();
        let secrets_minimal = minimal_searches(secrets.iter().map(|(_, written)| written));
        Self {
            needles: needles.into_iter().map(searched).collect(),
            minimal,
            numbers,
            secrets,
            secrets_minimal,
            tokens: Vec::new(),
        }
    }

    /// True when `written`, the text of a JSON string as written (without its
    /// quotes), holds a token as JSON writes it. It finds every token the decoded
    /// string holds when the only escapes written are those of quotes, backslashes
    /// and control characters ([`switchyard_protocol::relay::plain_text_event`]).
    /// Also true when it holds a part of a token at its edges
    /// ([`Scrubber::with_token`]).
    pub fn finds_secret_written(&self, written: &[u8]) -> bool {
        let folded = folded(written);
        self.secrets_minimal
            .iter()
            .any(|f| f.find(&folded).is_some())
            || self
                .tokens
                .iter()
                .any(|(_, token)| token_part(written, token.as_bytes()) != (0, 0))
    }

    /// `text` (a terminal's screen, or what a program wrote to its terminal) with
    /// every secret ([`Scrubber::with_secret`]) replaced by as many `*`s as it has
    /// characters: the screen keeps its layout, which `[redacted]` would change (a
    /// line wrapping or a row moving where the secret was). A part of a token at the
    /// text's edges goes too ([`Scrubber::with_token`]).
    pub fn mask_secrets(&self, text: String) -> String {
        self.replace_secrets(text, |secret| "*".repeat(secret.chars().count()))
    }

    /// `text` with every secret ([`Scrubber::with_secret`]: the token, the base URL,
    /// `host:port`) replaced by `[redacted]`, and nothing else: what a worker prints
    /// may name its host, but never those.
    ///
    /// A part of a token at the text's edges goes too ([`Scrubber::with_token`]).
    pub fn redact_secrets(&self, text: String) -> String {
        self.replace_secrets(text, |_| "[redacted]".to_owned())
    }

    /// `text` with each secret, and each part of a token at its edges, replaced by
    /// what `replacement` makes of it.
    fn replace_secrets(&self, text: String, replacement: impl Fn(&str) -> String) -> String {
        let text = self.secrets.iter().fold(text, |text, (plain, _)| {
            replace_folded(text, plain, &replacement)
        });
        self.tokens.iter().fold(text, |text, (token, _)| {
            match token_part(text.as_bytes(), token.as_bytes()) {
                (0, 0) => text,
                (head, tail) if head + tail >= text.len() => replacement(&text),
                (head, tail) => {
                    let end = text.len() - tail;
                    let mut out = String::with_capacity(text.len() + 20);
                    if head > 0 {
                        out.push_str(&replacement(&text[..head]));
                    }
                    out.push_str(&text[head..end]);
                    if tail > 0 {
                        out.push_str(&replacement(&text[end..]));
                    }
                    out
                }
            }
        })
    }

    /// Like [`Scrubber::with_secret`] for a token, whose parts go too: a worker's
    /// output is read in chunks, and a token the runtime's read cut in two is
    /// half in one output event and half in the next, neither of which holds it
    /// whole. So text (output or input) that ends with a beginning of the token,
    /// begins with an end of it, or lies wholly inside it, [`TOKEN_PART`] bytes of
    /// it or more, has that part redacted too: of a token cut by the reads, at most
    /// `TOKEN_PART - 1` bytes pass on each side of each cut. What this does not
    /// catch: a token written a few bytes at a time (typed and echoed key by key);
    /// and what it may take for a token: text ending or starting with a piece of
    /// one, so a token beginning with an ordinary word (`change-me-...`) costs that
    /// word where an event ends with it; a random token (`switchyard token`, or hex
    /// from `/dev/urandom`) does not. (Only tokens: a base URL's beginning,
    /// `http://1`, is ordinary text.)
    pub fn with_token(self, token: String) -> Self {
        if token.is_empty() {
            return self;
        }
        let quoted = serde_json::to_string(&token).expect("a string encodes");
        let written = quoted[1..quoted.len() - 1].to_owned();
        let mut scrubber = self.with_secret(token.clone());
        scrubber.tokens.push((token, written));
        scrubber
    }

    /// Also scrubs `number` (a port) wherever it stands as a whole number.
    pub fn with_number(mut self, number: u16) -> Self {
        self.numbers.push(searched(number.to_string()));
        self
    }

    /// True when `bytes` contain a secret, or one of the numbers as a whole number
    /// (not inside a longer run of digits). A byte search: it sees what is written,
    /// so it speaks for decoded text only where nothing is escaped.
    pub fn finds(&self, bytes: &[u8]) -> bool {
        let folded = folded(bytes);
        self.minimal.iter().any(|f| f.find(&folded).is_some())
            || self
                .numbers
                .iter()
                .any(|(_, f)| f.find_iter(bytes).any(|at| whole_number(bytes, at, f)))
    }

    /// True when `text` contains a secret (the numbers aside: a port alone in an id
    /// is only digits).
    pub fn names_a_secret(&self, text: &str) -> bool {
        let folded = folded(text.as_bytes());
        self.minimal.iter().any(|f| f.find(&folded).is_some())
    }

    /// `text` with every needle, and every whole number that is one of the numbers,
    /// replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        self.scrub_cuts(self.scrub_whole(text))
    }

    /// Where `text` was cut short (`...`, as reasons quoting what a runtime sent
    /// are), a secret may have been cut too, and the part before the cut is no
    /// longer found as a whole: a beginning of a secret of at least four bytes
    /// just before a `...` is redacted as well (shorter ones give next to nothing
    /// away, and would take every `h` before a `...` for a URL's).
    fn scrub_cuts(&self, text: String) -> String {
        const CUT: &str = "...";
        const SHORTEST: usize = 4;
        if !text.contains(CUT) {
            return text;
        }
        let secrets: Vec<&str> = self
            .needles
            .iter()
            .chain(&self.numbers)
            .map(|(n, _)| n.as_str())
            .collect();
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find(CUT) {
            let before = &rest[..at];
            let cut_secret = secrets
                .iter()
                .filter_map(|secret| {
                    (SHORTEST..secret.len()).rev().find(|&k| {
                        secret.is_char_boundary(k)
                            && before.len() >= k
                            && before.as_bytes()[before.len() - k..]
                                .eq_ignore_ascii_case(&secret.as_bytes()[..k])
                    })
                })
                .max()
                .unwrap_or(0);
            out.push_str(&before[..before.len() - cut_secret]);
            if cut_secret > 0 {
                out.push_str("[redacted]");
            }
            out.push_str(CUT);
            rest = &rest[at + CUT.len()..];
        }
        out.push_str(rest);
        out
    }

    /// [`Scrubber::scrub`] of whole secrets.
    fn scrub_whole(&self, text: &str) -> String {
        if !self.finds(text.as_bytes()) {
            return text.to_owned();
        }
        let mut text = text.to_owned();
        for (_, search) in &self.needles {
            text = replace_folded(text, search, |_| "[redacted]".to_owned());
        }
        if self.numbers.is_empty() {
            return text;
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
            out.push_str(&rest[..start]);
            let digits = &rest[start..];
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            let number = &digits[..end];
            if self.numbers.iter().any(|(n, _)| n == number) {
                out.push_str("[redacted]");
            } else {
                out.push_str(number);
            }
            rest = &digits[end..];
        }
        out.push_str(rest);
        out
    }
}

/// The fewest bytes of a token at an edge of a text that are redacted as a part of
/// it ([`Scrubber::with_token`]): six hex digits of a random token end an event by
/// chance once in 16 million.
pub const TOKEN_PART: usize = 6;

/// The parts of `token` at the edges of `text` ([`Scrubber::with_token`]): how many
/// of its first bytes are an end of the token and how many of its last are a
/// beginning of it, each at least [`TOKEN_PART`] bytes and shorter than the token
/// (a whole token is found as such), or 0. Text that lies wholly inside the token
/// is all part: `(text.len(), 0)`. Every count ends on a character boundary of
/// `text` when `text` is UTF-8 (a token's part starts or ends where the text does).
fn token_part(text: &[u8], token: &[u8]) -> (usize, usize) {
    if text.len() < TOKEN_PART || token.len() <= TOKEN_PART {
        return (0, 0);
    }
    if text.len() < token.len() && memchr::memmem::find(token, text).is_some() {
        return (text.len(), 0);
    }
    let first = &text[..TOKEN_PART];
    let head = memchr::memmem::find_iter(token, first)
        .filter(|&at| at > 0 && text.starts_with(&token[at..]))
        .map(|at| token.len() - at)
        .max()
        .unwrap_or(0);
    let last = &text[text.len() - TOKEN_PART..];
    let tail = memchr::memmem::find_iter(token, last)
        .map(|at| at + TOKEN_PART)
        .filter(|&k| k < token.len() && text.ends_with(&token[..k]))
        .max()
        .unwrap_or(0);
    (head, tail)
}

/// Whether the match of `finder` at `at` in `bytes` is a whole number.
fn whole_number(bytes: &[u8], at: usize, finder: &Finder<'_>) -> bool {
    let end = at + finder.needle().len();
    let digit_before = at > 0 && bytes[at - 1].is_ascii_digit();
    let digit_after = bytes.get(end).is_some_and(u8::is_ascii_digit);
    !digit_before && !digit_after
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_urls_hosts_and_tokens_longest_first() {
        let s = Scrubber::new([
            "http://10.1.2.3:7701".to_owned(),
            "10.1.2.3:7701".to_owned(),
            "s3cret-token".to_owned(),
            "".to_owned(),
        ]);
        assert_eq!(
            s.scrub("GET http://10.1.2.3:7701/v1 failed for s3cret-token at 10.1.2.3:7701"),
            "GET [redacted]/v1 failed for [redacted] at [redacted]"
        );
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    /// A host name is the same host in any case: every form of an address is
    /// found and redacted whatever the case of its letters, in the runtime's own
    /// words and in what a worker prints alike (a token in another case goes too).
    #[test]
    fn addresses_are_found_in_any_case() {
        let s = Scrubber::new([
            "http://build-1.internal:7701".to_owned(),
            "build-1.internal:7701".to_owned(),
            "build-1.internal".to_owned(),
        ])
        .with_secret("http://build-1.internal:7701".to_owned())
        .with_secret("build-1.internal:7701".to_owned())
        .with_token("tok-s3cret-0123".to_owned());
        let cases = [
            ("at HTTP://BUILD-1.INTERNAL:7701/v1", "at [redacted]/v1"),
            ("Build-1.Internal:7701 is up", "[redacted] is up"),
            ("host BUILD-1.internal, é", "host [redacted], é"),
            ("TOK-S3CRET-0123", "[redacted]"),
            ("build-2.internal", "build-2.internal"),
            ("BUILD-1.INT...", "[redacted]..."),
        ];
        for (text, scrubbed) in cases {
            assert_eq!(s.scrub(text), scrubbed, "{text}");
            let whole = !text.ends_with("...");
            assert_eq!(
                s.finds(text.as_bytes()),
                whole && text != scrubbed,
                "{text}"
            );
            assert_eq!(s.names_a_secret(text), whole && text != scrubbed, "{text}");
        }
        // What a worker prints: the URL and host:port go in any case, the host
        // alone stays (it is ordinary data there).
        let printed = "curl HTTP://Build-1.Internal:7701 from BUILD-1.INTERNAL";
        assert!(s.finds_secret_written(printed.as_bytes()));
        assert_eq!(
            s.redact_secrets(printed.to_owned()),
            "curl [redacted] from BUILD-1.INTERNAL"
        );
        let masked = s.mask_secrets("BUILD-1.INTERNAL:7701 $".to_owned());
        assert_eq!(masked, format!("{} $", "*".repeat(21)));
        assert!(!s.finds_secret_written(b"BUILD-1.INTERNAL alone"));
    }

    #[test]
    fn has_upper_case_sees_every_position() {
        for len in 0..40 {
            for at in 0..len {
                let mut bytes = vec![b'a'; len];
                assert!(!has_upper_case(&bytes));
                bytes[at] = b'Q';
                assert!(has_upper_case(&bytes), "{len} {at}");
            }
        }
        assert!(!has_upper_case("é@[`{".as_bytes()));
    }

    #[test]
    fn scrubs_a_port_only_as_a_whole_number() {
        let s = Scrubber::new([]).with_number(80);
        assert_eq!(
            s.scrub("port 80, not 8080 or 800; :80/x"),
            "port [redacted], not 8080 or 800; :[redacted]/x"
        );
    }

    #[test]
    fn finds_what_scrub_would_redact_and_nothing_else() {
        let s = Scrubber::new(["s3cret-token".to_owned(), "10.1.2.3".to_owned()]).with_number(7701);
        let cases = [
            ("", false),
            ("nothing here", false),
            ("the s3cret-token", true),
            ("host 10.1.2.3 up", true),
            ("10.1.2.", false),
            ("port 7701", true),
            ("7701", true),
            ("port 77010 or 17701 or 770", false),
            ("w-77017701", false),
            ("\"input_count\":7701,", true),
        ];
        for (text, found) in cases {
            assert_eq!(s.finds(text.as_bytes()), found, "{text}");
            assert_eq!(s.scrub(text) != text, found, "{text}");
        }
        assert!(s.names_a_secret("x10.1.2.3x"));
        // The URL and the authority hold the host: searching for the host finds all.
        let s = Scrubber::new([
            "http://h.example:7701".to_owned(),
            "h.example:7701".to_owned(),
            "h.example".to_owned(),
        ]);
        assert_eq!(s.minimal.len(), 1);
        assert!(s.finds(b"at http://h.example:7701/v1"));
        assert_eq!(s.scrub("at http://h.example:7701/v1"), "at [redacted]/v1");
        assert!(
            !s.names_a_secret("w-7701"),
            "numbers are not secrets in ids"
        );
    }

    #[test]
    fn a_token_is_scrubbed_however_short_and_short_addresses_are_not() {
        let s = Scrubber::new(["db".to_owned(), "http://db:7701".to_owned()])
            .with_number(7701)
            .with_secret("abc".to_owned())
            .with_secret(String::new());
        assert_eq!(
            s.scrub("db says abc at http://db:7701 port 7701"),
            "db says [redacted] at [redacted] port [redacted]"
        );
        assert!(s.finds(b"tok=abc"));
        assert!(s.names_a_secret("label abc"));
        assert!(!s.finds(b"db"), "a two-letter host alone is left");
    }

    /// The search of written text runs once per secret that holds no other, and
    /// still finds every one: the URL through the `host:port` inside it.
    #[test]
    fn written_text_is_searched_once_per_secret_that_holds_no_other() {
        let s = Scrubber::new([])
            .with_secret("http://10.1.2.3:7701".to_owned())
            .with_secret("10.1.2.3:7701".to_owned())
            .with_secret("10.1.2.3:7701".to_owned())
            .with_token("tok-\"0123456789".to_owned());
        let needles: Vec<&[u8]> = s.secrets_minimal.iter().map(|f| f.needle()).collect();
        assert_eq!(
            needles,
            [&b"10.1.2.3:7701"[..], &br#"tok-\"0123456789"#[..]]
        );
        for text in [
            "at http://10.1.2.3:7701/v1",
            "10.1.2.3:7701",
            r#"say tok-\"0123456789 now"#,
        ] {
            assert!(s.finds_secret_written(text.as_bytes()), "{text}");
        }
        assert!(!s.finds_secret_written(b"http://10.1.2.3:7702"));
    }

    /// A token the runtime's reads cut in two, half in one output event and half in
    /// the next: each half of four bytes or more goes, at either edge, and text
    /// wholly inside the token goes whole.
    #[test]
    fn parts_of_a_token_at_the_edges_of_a_text_are_redacted() {
        let s = Scrubber::new([])
            .with_secret("http://10.1.2.3:7701".to_owned())
            .with_token("tok-0123456789abcdef".to_owned());
        for (text, expected) in [
            ("export TOKEN=tok-0123", "export TOKEN=[redacted]"),
            ("456789abcdef\nnext line", "[redacted]\nnext line"),
            ("456789abcdef and tok-01234", "[redacted] and [redacted]"),
            ("0123456789", "[redacted]"),
            // Less than six bytes at an edge: kept, as every `t` ending a text is.
            ("export TOKEN=tok", "export TOKEN=tok"),
            ("export TOKEN=tok-0", "export TOKEN=tok-0"),
            ("bcdef and more", "bcdef and more"),
            ("def; ok", "def; ok"),
            // A token whole, and a part beside it.
            ("tok-0123456789abcdef tok", "[redacted] tok"),
            (
                "tok-0123456789abcdef and tok-012",
                "[redacted] and [redacted]",
            ),
            // Parts of a token inside a text are ordinary text; a base URL's
            // beginning too (only tokens lose their parts).
            ("a tok-0123 b", "a tok-0123 b"),
            ("see http://10.1", "see http://10.1"),
            ("", ""),
        ] {
            assert_eq!(s.redact_secrets(text.to_owned()), expected, "{text}");
            assert_eq!(
                s.finds_secret_written(text.as_bytes()),
                expected != text,
                "{text}"
            );
        }
    }

    #[test]
    fn a_terminal_keeps_its_layout_when_a_secret_or_a_part_is_masked() {
        let s = Scrubber::new([])
            .with_secret("10.1.2.3:7701".to_owned())
            .with_token("tok-0123456789abcdef".to_owned());
        for (text, expected) in [
            ("listen = \"10.1.2.3:7701\"", "listen = \"*************\""),
            ("TOKEN=tok-0123", "TOKEN=********"),
            ("456789abcdef\r\n$ ", "************\r\n$ "),
            ("plain", "plain"),
        ] {
            let masked = s.mask_secrets(text.to_owned());
            assert_eq!(masked, expected, "{text}");
            assert_eq!(masked.chars().count(), text.chars().count(), "{text}");
        }
    }

    #[test]
    fn token_parts_end_on_character_boundaries() {
        let s = Scrubber::new([]).with_token("é-token-ü-9".to_owned());
        for (text, expected) in [
            ("say é-tok", "say [redacted]"),
            ("en-ü-9 ok", "[redacted] ok"),
            ("é-token-ü-9", "[redacted]"),
        ] {
            assert_eq!(s.redact_secrets(text.to_owned()), expected, "{text}");
        }
    }

    /// A reason cut short (`...`) may have cut a secret: its beginning before the
    /// cut goes too, however little of it is left.
    #[test]
    fn a_secret_cut_short_goes_with_its_beginning() {
        let s = Scrubber::new(["10.1.2.3".to_owned()])
            .with_secret("s3cret-token".to_owned())
            .with_number(7701);
        for (text, expected) in [
            (
                "unknown variant `AAAAs3cret-to...`",
                "unknown variant `AAAA[redacted]...`",
            ),
            ("at 10.1.2...", "at [redacted]..."),
            ("port 770...", "port 770..."),
            // Less than four bytes of a secret: kept, as an `h` before a cut is.
            (
                "unknown variant `AAAAs3c...`",
                "unknown variant `AAAAs3c...`",
            ),
            ("and ht...", "and ht..."),
            (
                "a type \"s3cr...\" then s3cret-token...",
                "a type \"[redacted]...\" then [redacted]...",
            ),
            // Nothing a secret begins with before the cut: as it was.
            ("unknown variant `AAAA...`", "unknown variant `AAAA...`"),
            ("no cut s3cre", "no cut s3cre"),
        ] {
            assert_eq!(s.scrub(text), expected, "{text}");
        }
    }
}
