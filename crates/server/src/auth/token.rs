//! Client tokens: generating them from the OS's random source, and their SHA-256
//! hashes, which are all the configuration ever holds.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Prefix of generated tokens, so that a leaked one is recognisable (secret scanners,
/// people reading a paste).
pub const TOKEN_PREFIX: &str = "sy_";

/// Random bytes in a generated token: 256 bits.
const TOKEN_BYTES: usize = 32;

/// The SHA-256 of a token. `Debug` never shows it: a hash is not the token, but it
/// has no business in logs either.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub(crate) [u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash([redacted])")
    }
}

/// Why a `token_sha256` value is not a hash. The messages never echo the value: it
/// may be a token pasted into the wrong place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashParseError {
    /// Not 64 characters.
    #[error(
        "must be the SHA-256 of the token as 64 hex digits (it is {0} characters long); `switchyard token` prints it"
    )]
    Length(usize),
    /// A character that is not a hex digit.
    #[error("must be 64 hex digits (0-9, a-f); `switchyard token` prints it")]
    NotHex,
}

impl TokenHash {
    /// The hash of `token`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Parses 64 hex digits, either case.
    pub fn from_hex(text: &str) -> Result<Self, HashParseError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(HashParseError::Length(text.chars().count()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let high = hex_value(pair[0]).ok_or(HashParseError::NotHex)?;
            let low = hex_value(pair[1]).ok_or(HashParseError::NotHex)?;
            out[i] = (high << 4) | low;
        }
        Ok(Self(out))
    }

    /// 64 lowercase hex digits, for the configuration lines `switchyard token` prints.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// `len` bytes from the operating system's random source.
pub fn os_random(len: usize) -> Result<Vec<u8>, getrandom::Error> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// A new token: `sy_` and 43 characters of URL-safe base64 over 256 random bits from
/// the OS. Printable ASCII without spaces, so it fits an `Authorization` header and a
/// shell variable as is.
pub fn generate() -> Result<String, getrandom::Error> {
    let bytes = os_random(TOKEN_BYTES)?;
    Ok(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_in_hex() {
        // sha256("test"), as `printf test | sha256sum` prints it.
        let expected = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(TokenHash::of("test").to_hex(), expected);
        assert_eq!(TokenHash::from_hex(expected), Ok(TokenHash::of("test")));
        assert_eq!(
            TokenHash::from_hex(&expected.to_ascii_uppercase()),
            Ok(TokenHash::of("test"))
        );
    }

    #[test]
    fn bad_hashes_are_refused_without_echoing_them() {
        let cases: &[(&str, HashParseError)] = &[
            ("", HashParseError::Length(0)),
            ("sy_secret-token-pasted-here", HashParseError::Length(27)),
            (&"a".repeat(63), HashParseError::Length(63)),
            (&"g".repeat(64), HashParseError::NotHex),
            (&format!("{}é", "a".repeat(62)), HashParseError::NotHex),
        ];
        for (text, expected) in cases {
            let err = TokenHash::from_hex(text).unwrap_err();
            assert_eq!(err, *expected, "{text}");
            if !text.is_empty() {
                assert!(!err.to_string().contains(text), "{err}");
            }
        }
    }

    #[test]
    fn generated_tokens_are_random_printable_and_long() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert!(a.bytes().all(|c| c.is_ascii_graphic()), "{a}");
    }

    #[test]
    fn debug_hides_the_hash() {
        let hash = TokenHash::of("x");
        assert!(!format!("{hash:?}").contains(&hash.to_hex()[..8]));
    }
}
