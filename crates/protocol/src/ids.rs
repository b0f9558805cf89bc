//! Validated identifiers: `runtime_id` and `worker_id`.
//!
//! Both are 1 to 64 characters of `A-Z a-z 0-9 . _ -`, not starting with `.`.
//! Anything else is rejected with [`IdError`], which servers answer with
//! `400 invalid_id`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest id the contract allows, in characters.
pub const MAX_ID_LEN: usize = 64;

/// The id rules as a regular expression (for schemas): 1 to 64 of `A-Z a-z 0-9 . _ -`,
/// not starting with `.`.
pub const ID_PATTERN: &str = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$";

/// Why a string is not a valid id. The message never echoes the rejected input in
/// full, so that it is safe to return to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The id was empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// The id was longer than 64 characters.
    #[error("{0} must be at most 64 characters")]
    TooLong(&'static str),
    /// The id started with a dot.
    #[error("{0} must not start with '.'")]
    LeadingDot(&'static str),
    /// The id contained a character outside `A-Z a-z 0-9 . _ -`.
    #[error("{0} may only contain A-Z, a-z, 0-9, '.', '_' and '-'")]
    BadCharacter(&'static str),
}

/// Which bytes an id may hold (`A-Z a-z 0-9 . _ -`), looked up rather than tested
/// (ids are checked in every relayed answer).
const ID_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-');
        b += 1;
    }
    table
};

fn validate(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty(kind));
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(kind));
    }
    if s.starts_with('.') {
        return Err(IdError::LeadingDot(kind));
    }
    if !s.bytes().all(|b| ID_BYTES[usize::from(b)]) {
        return Err(IdError::BadCharacter(kind));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `s` and wraps it.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate($kind, &s)?;
                Ok(Self(s))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Checks `s` as this kind of id without copying it.
            pub fn check(s: &str) -> Result<(), IdError> {
                validate($kind, s)
            }
        }

        /// Maps keyed by an id can be searched with a `&str` (the hash is the
        /// string's).
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::openapi::id_schema($kind)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// Identifies one runtime, embedded or remote, within a backend.
    RuntimeId,
    "runtime_id"
);
id_type!(
    /// Identifies one worker within its runtime.
    WorkerId,
    "worker_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_table_is_the_alphabet() {
        for b in 0..=u8::MAX {
            let allowed = b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
            assert_eq!(ID_BYTES[usize::from(b)], allowed, "byte {b:#04x}");
        }
    }

    #[test]
    fn accepts_the_full_alphabet_and_64_characters() {
        assert!(WorkerId::new("aZ09._-").is_ok());
        assert!(WorkerId::new("a".repeat(64)).is_ok());
        assert!(RuntimeId::new("build-1").is_ok());
    }

    #[test]
    fn rejects_what_the_contract_rejects() {
        assert_eq!(WorkerId::new(""), Err(IdError::Empty("worker_id")));
        assert_eq!(
            WorkerId::new("a".repeat(65)),
            Err(IdError::TooLong("worker_id"))
        );
        assert_eq!(RuntimeId::new(".x"), Err(IdError::LeadingDot("runtime_id")));
        for bad in ["a b", "a/b", "é", "a%2F", "..", "a\n", "a:b"] {
            if bad == ".." {
                assert_eq!(WorkerId::new(bad), Err(IdError::LeadingDot("worker_id")));
            } else {
                assert_eq!(
                    WorkerId::new(bad),
                    Err(IdError::BadCharacter("worker_id")),
                    "{bad}"
                );
            }
        }
    }

    #[test]
    fn serde_is_a_plain_string_and_validates() {
        let id: WorkerId = serde_json::from_str("\"w-1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"w-1\"");
        assert!(serde_json::from_str::<WorkerId>("\"../etc\"").is_err());
    }
}
