//! [`SecretToken`]: a bearer token that never shows itself in `Debug` or `Display`.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A bearer token. `Debug` and `Display` print `[redacted]`; the only way to the text
/// is [`SecretToken::expose`], which call sites use to build an `Authorization` header
/// and nothing else.
#[derive(Clone)]
pub struct SecretToken {
    text: String,
    /// SHA-256 of `text`: what [`SecretToken::matches`] compares, so that the time a
    /// comparison takes says nothing about the token, not even its length.
    digest: [u8; 32],
}

impl SecretToken {
    /// Wraps a token, trimming surrounding whitespace (token files end in a newline).
    /// Returns `None` for an empty token.
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let token = token.into();
        let trimmed = token.trim();
        (!trimmed.is_empty()).then(|| Self {
            text: trimmed.to_owned(),
            digest: Sha256::digest(trimmed.as_bytes()).into(),
        })
    }

    /// The token text, for an `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// `text` with every occurrence of the token replaced by `[redacted]`: for a
    /// log line that repeats what a runtime wrote (its error message, a frame it
    /// sent), which a lying runtime could fill with the token; logs never hold it.
    pub fn redact(&self, text: &str) -> String {
        text.replace(self.text.as_str(), "[redacted]")
    }

    /// Compares with a presented token. The presented token is hashed and the two
    /// hashes compared in constant time: the time taken depends on the presented
    /// token's length only, never on the token's text or length (a plain comparison
    /// of unequal lengths returns at once, which tells a prober the length).
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest.ct_eq(&presented).into()
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken([redacted])")
    }
}

impl fmt::Display for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_itself() {
        let t = SecretToken::new("s3cr3t-value\n").unwrap();
        assert_eq!(format!("{t}"), "[redacted]");
        assert!(!format!("{t:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", Some(&t)).contains("s3cr3t"));
        assert_eq!(t.expose(), "s3cr3t-value");
    }

    #[test]
    fn compares_exactly() {
        let t = SecretToken::new("abc").unwrap();
        assert!(t.matches("abc"));
        assert!(!t.matches("abd"));
        assert!(!t.matches("ab"));
        assert!(!t.matches(""));
        assert!(!t.matches("abc "), "the presented token is not trimmed");
        assert!(!t.matches("abcabc"));
        assert!(SecretToken::new("  \n").is_none());
        let trimmed = SecretToken::new(" abc\n").unwrap();
        assert!(trimmed.matches("abc"), "the kept token is trimmed");
    }
}
