//! [`Scrubber`]: the few strings about a remote runtime that must never reach a
//! client (its base URL, authority, host, the name its certificate is verified for,
//! its token, and its port as a number), found and redacted in whatever the runtime
//! says.

use memchr::memmem::Finder;

/// Strings that must never reach a client: the runtime's base URL, its host and
/// port, its token. Anything a remote runtime says is scrubbed of them, so even a
/// runtime that echoes them cannot leak them through the backend.
///
/// Searching is cheap (a precompiled substring search per secret), so the relay
/// path can search every answer's bytes.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// The secrets, longest first, each with its search.
    needles: Vec<(String, Finder<'static>)>,
    /// The searches [`Scrubber::finds`] runs: one per secret that contains no
    /// other (text holding the URL holds its host too).
    minimal: Vec<Finder<'static>>,
    /// Numbers (the port) redacted where they stand as a whole number in text.
    numbers: Vec<(String, Finder<'static>)>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} needles)", self.needles.len())
    }
}

/// A needle with its precompiled search.
fn searched(needle: String) -> (String, Finder<'static>) {
    let finder = Finder::new(needle.as_bytes()).into_owned();
    (needle, finder)
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
        )
    }

    /// Also scrubs `secret` (a token) however short it is: a token must never reach
    /// a client, even one short enough to mangle unrelated text when scrubbed.
    pub fn with_secret(self, secret: String) -> Self {
        let mut needles: Vec<String> = self.needles.into_iter().map(|(n, _)| n).collect();
        if !secret.is_empty() {
            needles.push(secret);
        }
        Self::of(needles, self.numbers)
    }

    fn of(mut needles: Vec<String>, numbers: Vec<(String, Finder<'static>)>) -> Self {
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
        Self {
            needles: needles.into_iter().map(searched).collect(),
            minimal,
            numbers,
        }
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
        self.minimal.iter().any(|f| f.find(bytes).is_some())
            || self
                .numbers
                .iter()
                .any(|(_, f)| f.find_iter(bytes).any(|at| whole_number(bytes, at, f)))
    }

    /// True when `text` contains a secret (the numbers aside: a port alone in an id
    /// is only digits).
    pub fn names_a_secret(&self, text: &str) -> bool {
        self.minimal
            .iter()
            .any(|f| f.find(text.as_bytes()).is_some())
    }

    /// `text` with every needle, and every whole number that is one of the numbers,
    /// replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        if !self.finds(text.as_bytes()) {
            return text.to_owned();
        }
        let mut text = text.to_owned();
        for (needle, _) in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), "[redacted]");
            }
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
}
