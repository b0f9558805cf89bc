//! Bounding outside text (serde's description of what did not decode) before it goes
//! into an error's reason.

/// Longest outside description kept in a reason.
const MAX_REASON_CHARS: usize = 300;

/// `text`, cut after [`MAX_REASON_CHARS`] characters with `...` appended.
pub(crate) fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}
