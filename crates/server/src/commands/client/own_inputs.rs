//! [`OwnInputs`]: the inputs `attach` sent itself, so that its view of the transcript
//! leaves them out (the local terminal echoed them as they were typed) and shows
//! every other input (another `send`, the console, another operator) as `logs` does.
//!
//! An input's event can come over the event stream before the REST answer that names
//! its sequence, so a line is registered before it is posted. An input seen in the
//! stream or the transcript is claimed as one of ours by its sequence when the answer
//! has come, else by its text (the oldest of ours with that text whose sequence is
//! not known yet). A line the backend refused is forgotten; one whose fate is unknown
//! (no answer: the connection failed) is kept until an input of ours sent after it
//! has been seen. Only a hash of each text is kept, and at most [`MAX_KEPT`] lines.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

/// The most lines remembered (the oldest are forgotten first).
const MAX_KEPT: usize = 1024;

/// The inputs sent by this client and not seen yet; clones share them.
#[derive(Debug, Clone, Default)]
pub(super) struct OwnInputs {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    /// In the order they were sent (which is their order in the transcript: lines
    /// are posted one after the other).
    lines: VecDeque<Line>,
}

#[derive(Debug)]
struct Line {
    id: u64,
    text: TextKey,
    sequence: Option<u64>,
}

/// A text's length and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TextKey(usize, u64);

impl TextKey {
    fn of(text: &str) -> Self {
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        Self(text.len(), hasher.finish())
    }
}

/// A line registered before it is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket(u64);

impl OwnInputs {
    pub(super) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `text` is about to be posted.
    pub(super) fn sending(&self, text: &str) -> Ticket {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.lines.push_back(Line {
            id,
            text: TextKey::of(text),
            sequence: None,
        });
        if inner.lines.len() > MAX_KEPT {
            inner.lines.pop_front();
        }
        Ticket(id)
    }

    /// The backend recorded the line as `sequence` (unless it was seen already).
    pub(super) fn accepted(&self, ticket: Ticket, sequence: u64) {
        if let Some(line) = self.lock().lines.iter_mut().find(|l| l.id == ticket.0) {
            line.sequence = Some(sequence);
        }
    }

    /// The backend refused the line: it is not in the transcript.
    pub(super) fn refused(&self, ticket: Ticket) {
        self.lock().lines.retain(|l| l.id != ticket.0);
    }

    /// Whether the input `sequence` with `text` is one of ours (it is then
    /// forgotten: each is claimed once).
    pub(super) fn claim(&self, sequence: u64, text: &str) -> bool {
        let mut inner = self.lock();
        let by_sequence = inner
            .lines
            .iter()
            .position(|l| l.sequence == Some(sequence));
        let found = by_sequence.or_else(|| {
            let key = TextKey::of(text);
            inner
                .lines
                .iter()
                .position(|l| l.sequence.is_none() && l.text == key)
        });
        match found {
            Some(at) => {
                inner.lines.remove(at);
                true
            }
            None => false,
        }
    }

    /// Everything up to `sequence` has been seen: lines of ours recorded up to it,
    /// and those sent before them, will not come again.
    pub(super) fn seen_up_to(&self, sequence: u64) {
        let mut inner = self.lock();
        if let Some(at) = inner
            .lines
            .iter()
            .rposition(|l| l.sequence.is_some_and(|s| s <= sequence))
        {
            inner.lines.drain(..=at);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().lines.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_is_ours_by_sequence_or_by_text_before_its_answer() {
        let own = OwnInputs::new();
        // The answer came first.
        let a = own.sending("a\n");
        own.accepted(a, 5);
        assert!(!own.claim(4, "a\n"), "another client's, sent before");
        assert!(own.claim(5, "a\n"));
        assert!(!own.claim(5, "a\n"), "claimed once");
        // The event came first: matched by text; the late answer changes nothing.
        let b = own.sending("b\n");
        assert!(!own.claim(6, "c\n"), "another client's");
        assert!(own.claim(7, "b\n"));
        own.accepted(b, 7);
        assert_eq!(own.len(), 0);
        assert!(!own.claim(8, "b\n"), "another client's, same text");
    }

    #[test]
    fn refused_and_seen_lines_are_forgotten() {
        let own = OwnInputs::new();
        let refused = own.sending("x\n");
        own.refused(refused);
        assert!(!own.claim(1, "x\n"));
        // No answer (fate unknown), then a line recorded as 3 and passed by the view.
        let _unknown = own.sending("y\n");
        let later = own.sending("z\n");
        own.accepted(later, 3);
        let pending = own.sending("w\n");
        own.seen_up_to(3);
        assert_eq!(own.len(), 1);
        assert!(!own.claim(2, "y\n"));
        own.accepted(pending, 4);
        assert!(own.claim(4, "w\n"));
    }

    #[test]
    fn memory_is_bounded() {
        let own = OwnInputs::new();
        for i in 0..MAX_KEPT as u64 + 10 {
            let ticket = own.sending("same\n");
            own.accepted(ticket, i + 1);
        }
        assert_eq!(own.len(), MAX_KEPT);
        assert!(!own.claim(1, "same\n"), "the oldest were forgotten");
        assert!(own.claim(11, "same\n"));
    }
}
