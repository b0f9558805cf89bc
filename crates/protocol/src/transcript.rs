//! The transcript: a worker's durable, ordered record, read in pages.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutputStream {
    /// Standard output (also used by `echo`).
    Stdout,
    /// Standard error.
    Stderr,
    /// A pseudo-terminal (a `pty` worker's only stream).
    Terminal,
}

/// What a system note records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SystemNote {
    /// The worker started.
    Started,
    /// In-flight work was interrupted by a cancel.
    Interrupted,
    /// The worker ended on its own.
    Exited,
    /// The worker was stopped on request.
    Stopped,
    /// The worker could not start.
    Failed,
    /// The runtime restarted while the worker ran.
    Lost,
    /// A pty worker's terminal got a new size; the text says which (`resized to
    /// COLSxROWS`), so that its screen can be rebuilt from the transcript alone.
    Resized,
}

/// One transcript entry, tagged by `kind`.
///
/// Exhaustive on purpose: the contract fixes the three kinds; what grows is inside
/// them ([`SystemNote`], [`OutputStream`], both `#[non_exhaustive]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TranscriptEntry {
    /// An accepted input.
    Input {
        /// The text as given.
        text: String,
    },
    /// A chunk of output.
    Output {
        /// The stream it came from.
        stream: OutputStream,
        /// The text (invalid UTF-8 replaced by U+FFFD).
        text: String,
    },
    /// A note from the runtime about the worker's life.
    System {
        /// What happened.
        note: SystemNote,
        /// Human text with details (exit code, diagnostic).
        text: String,
    },
}

/// One transcript entry with its place and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TranscriptItem {
    /// Position in the transcript, from 1, without gaps.
    pub sequence: u64,
    /// When it was recorded.
    pub at: Timestamp,
    /// What it records.
    #[serde(flatten)]
    pub entry: TranscriptEntry,
}

/// The most JSON a runtime puts in one transcript page, whatever `limit` asks: a
/// page stops before the item that would take it past this (it always holds at
/// least one item), and `next_after` says where to go on. A backend relays pages
/// of this size whole (its answer cap is twice this), so a page a runtime serves
/// is a page a client gets through the backend.
pub const TRANSCRIPT_PAGE_MAX_JSON_BYTES: usize = 4 * 1024 * 1024;

impl TranscriptItem {
    /// An upper bound of the item's length as JSON (serde_json's compact form):
    /// a fixed allowance for the sequence, time, kind, stream or note and the
    /// punctuation, and six bytes for every text byte that JSON may escape
    /// (`\u0001`), one for any other.
    pub fn json_len_bound(&self) -> usize {
        /// `{"sequence":…,"at":"","kind":"system","note":"interrupted","text":""}`
        /// with the longest number is under 100 bytes; the timestamp is added.
        const FIXED: usize = 192;
        let text = match &self.entry {
            TranscriptEntry::Input { text }
            | TranscriptEntry::Output { text, .. }
            | TranscriptEntry::System { text, .. } => text,
        };
        FIXED + self.at.0.len() + json_text_len_bound(text)
    }
}

/// An upper bound of `text`'s length as a JSON string's contents (serde_json's
/// escaping): six bytes for every byte JSON may escape (`\u0001`), one for any
/// other.
pub fn json_text_len_bound(text: &str) -> usize {
    let escaped = text
        .bytes()
        .filter(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .count();
    text.len() + 5 * escaped
}

/// `GET .../transcript?after=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TranscriptPage {
    /// Items with `sequence > after`, in order, at most `limit` of them and at most
    /// [`TRANSCRIPT_PAGE_MAX_JSON_BYTES`] of JSON (at least one item).
    pub items: Vec<TranscriptItem>,
    /// Pass as `after` for the next page; null when this page reaches the end.
    pub next_after: Option<u64>,
    /// How many items were recorded in all (the last sequence number): items a
    /// memory store dropped from its front, or that a failed write left out (the
    /// worker's events say so), still count.
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The bound holds for every kind of text JSON escapes, the longest numbers
    /// and note names included.
    #[test]
    fn json_len_bound_is_never_below_the_encoding() {
        let texts = [
            String::new(),
            "plain text".to_string(),
            "\u{1}".repeat(1000),
            "\"\\\n\t\r\u{7f}\u{1b}[31m".repeat(100),
            "é€😀".repeat(100),
        ];
        for text in texts {
            let entries = [
                TranscriptEntry::Input { text: text.clone() },
                TranscriptEntry::Output {
                    stream: OutputStream::Terminal,
                    text: text.clone(),
                },
                TranscriptEntry::System {
                    note: SystemNote::Interrupted,
                    text: text.clone(),
                },
            ];
            for entry in entries {
                let item = TranscriptItem {
                    sequence: u64::MAX,
                    at: Timestamp("2026-11-26T09:00:00.123456789Z".into()),
                    entry,
                };
                let encoded = serde_json::to_vec(&item).unwrap().len();
                assert!(
                    encoded <= item.json_len_bound(),
                    "{encoded} > {} for {item:?}",
                    item.json_len_bound()
                );
            }
        }
    }

    #[test]
    fn item_shapes() {
        let at = Timestamp("2026-11-26T09:00:00Z".into());
        let items = vec![
            TranscriptItem {
                sequence: 1,
                at: at.clone(),
                entry: TranscriptEntry::System {
                    note: SystemNote::Started,
                    text: "started".into(),
                },
            },
            TranscriptItem {
                sequence: 2,
                at: at.clone(),
                entry: TranscriptEntry::Input {
                    text: "hi\n".into(),
                },
            },
            TranscriptItem {
                sequence: 3,
                at,
                entry: TranscriptEntry::Output {
                    stream: OutputStream::Stderr,
                    text: "hi\n".into(),
                },
            },
        ];
        let page = TranscriptPage {
            items,
            next_after: Some(3),
            total: 9,
        };
        let v = serde_json::to_value(&page).unwrap();
        assert_eq!(
            v,
            json!({"items":[
                {"sequence":1,"at":"2026-11-26T09:00:00Z","kind":"system","note":"started","text":"started"},
                {"sequence":2,"at":"2026-11-26T09:00:00Z","kind":"input","text":"hi\n"},
                {"sequence":3,"at":"2026-11-26T09:00:00Z","kind":"output","stream":"stderr","text":"hi\n"}
            ],"next_after":3,"total":9})
        );
        assert_eq!(serde_json::from_value::<TranscriptPage>(v).unwrap(), page);
    }
}
