//! RFC 3339 UTC timestamps as they appear on the wire.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A timestamp as an RFC 3339 UTC string, for example `2026-11-26T09:30:00.123Z`.
///
/// The protocol crate does not interpret it; producers create it with a clock.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub String);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.0)
    }
}
