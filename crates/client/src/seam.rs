//! [`SequenceSeam`]: joining a transcript read over REST to live events.
//!
//! Every transcript item has a sequence number, from 1 and without gaps, and the
//! `input` and `output` events carry the sequence of the item they record. A reader
//! that remembers the last sequence it has shown can therefore place anything it
//! receives: the next item (show it), one already shown (skip it: it came both from a
//! transcript page and from the live stream, or again after a reconnect), or one
//! after a gap (read the missing items from the transcript first). That is how a
//! follower joins its transcript read and its live stream without losing or
//! repeating anything, whatever order the two happen to deliver in.

/// Where a sequence number falls for a reader.
///
/// Exhaustive on purpose: the three cases divide every sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The item right after the last one shown.
    Next,
    /// Shown already.
    Duplicate,
    /// Items are missing before it: those after `after` (exclusive) and before it.
    Gap {
        /// The last sequence shown.
        after: u64,
    },
}

/// The last transcript sequence a reader has shown (0: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SequenceSeam {
    last: u64,
}

impl SequenceSeam {
    /// A reader that has shown everything up to `last` (0: nothing), for example the
    /// start of a `--tail`.
    pub fn after(last: u64) -> Self {
        Self { last }
    }

    /// The last sequence shown.
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Where `sequence` falls.
    pub fn place(&self, sequence: u64) -> Place {
        if sequence <= self.last {
            Place::Duplicate
        } else if sequence == self.last + 1 {
            Place::Next
        } else {
            Place::Gap { after: self.last }
        }
    }

    /// Records that `sequence` was shown; returns false (and changes nothing) for a
    /// sequence not after the last one.
    pub fn shown(&mut self, sequence: u64) -> bool {
        if sequence > self.last {
            self.last = sequence;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_sequences() {
        let seam = SequenceSeam::after(5);
        let table = [
            (1, Place::Duplicate),
            (5, Place::Duplicate),
            (6, Place::Next),
            (7, Place::Gap { after: 5 }),
            (1000, Place::Gap { after: 5 }),
        ];
        for (sequence, expected) in table {
            assert_eq!(seam.place(sequence), expected, "{sequence}");
        }
        assert_eq!(SequenceSeam::default().place(1), Place::Next);
    }

    #[test]
    fn only_moves_forward() {
        let mut seam = SequenceSeam::default();
        assert!(seam.shown(1));
        assert!(seam.shown(4));
        assert!(!seam.shown(4));
        assert!(!seam.shown(2));
        assert_eq!(seam.last(), 4);
    }
}
