//! [`SecretToken`]: a bearer token that never shows itself in `Debug` or `Display`.

use std::fmt;

use subtle::ConstantTimeEq;

/// A bearer token. `Debug` and `Display` print `[redacted]`; the only way to the text
/// is [`SecretToken::expose`], which call sites use to build an `Authorization` header
/// and nothing else.
#[derive(Clone)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a token, trimming surrounding whitespace (token files end in a newline).
    /// Returns `None` for an empty token.
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let token = token.into();
        let trimmed = token.trim();
        (!trimmed.is_empty()).then(|| Self(trimmed.to_owned()))
    }

    /// The token text, for an `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with a presented token in constant time (for equal lengths).
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
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
        assert!(SecretToken::new("  \n").is_none());
    }
}
