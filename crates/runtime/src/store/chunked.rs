//! [`Chunked`]: a list that grows without ever moving what it already holds.
//!
//! A `Vec` that grows by doubling copies every item it holds each time it runs
//! out of room. For a transcript kept in memory that is millions of items, copied
//! while the store's lock is held: measured on a runtime taking inputs at 40k/s, the
//! doublings paused every caller for 44, 78, 226 and then 468 ms. Here the items
//! live in chunks of at most [`CHUNK`]; a full chunk is never touched again, so an
//! append copies at most one chunk's worth (while that chunk fills), whatever the
//! length.

/// Items per chunk: every chunk but the last holds exactly this many.
pub(crate) const CHUNK: usize = 1024;

/// An append-only list in chunks of [`CHUNK`] items.
#[derive(Debug)]
pub(crate) struct Chunked<T> {
    /// Full chunks, then the one being filled (never empty unless it is the only one).
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> Chunked<T> {
    /// Appends copies of `items`.
    pub(crate) fn extend_from_slice(&mut self, mut items: &[T]) {
        while !items.is_empty() {
            let last = match self.chunks.last_mut() {
                Some(last) if last.len() < CHUNK => last,
                // The first chunk grows as a `Vec` does (a short transcript takes
                // little room); later ones are made full size at once.
                _ => {
                    let capacity = if self.chunks.is_empty() { 0 } else { CHUNK };
                    self.chunks.push(Vec::with_capacity(capacity));
                    self.chunks.last_mut().expect("just pushed")
                }
            };
            let take = (CHUNK - last.len()).min(items.len());
            last.extend_from_slice(&items[..take]);
            self.len += take;
            items = &items[take..];
        }
    }
}

impl<T> Chunked<T> {
    /// How many items it holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The item at `index`, if there is one.
    #[cfg(test)]
    fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    /// Removes the oldest chunk, if it is full and not the only one (the one being
    /// filled is never removed), and returns its items. What is left keeps every
    /// chunk but the last full, so indexes stay as they were less the chunk's.
    pub(crate) fn pop_front_chunk(&mut self) -> Option<Vec<T>> {
        if self.chunks.len() < 2 {
            return None;
        }
        let chunk = self.chunks.remove(0);
        self.len -= chunk.len();
        Some(chunk)
    }

    /// The last item.
    pub(crate) fn last(&self) -> Option<&T> {
        self.chunks.last()?.last()
    }

    /// The index of the first item for which `pred` is false, given that it is
    /// true for every item before that and false for every one after (as
    /// [`slice::partition_point`]).
    pub(crate) fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let whole = self
            .chunks
            .partition_point(|chunk| chunk.last().is_some_and(&mut pred));
        match self.chunks.get(whole) {
            Some(chunk) => whole * CHUNK + chunk.partition_point(pred),
            None => self.len,
        }
    }

    /// The items from `start` on, in order.
    pub(crate) fn iter_from(&self, start: usize) -> impl Iterator<Item = &T> {
        let (first, skip) = (start / CHUNK, start % CHUNK);
        self.chunks.iter().skip(first).flatten().skip(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list of `0..len` appended in slices of `step`.
    fn built(len: usize, step: usize) -> Chunked<usize> {
        let all: Vec<usize> = (0..len).collect();
        let mut list = Chunked::default();
        for slice in all.chunks(step.max(1)) {
            list.extend_from_slice(slice);
        }
        list
    }

    #[test]
    fn holds_what_a_vec_would_at_every_chunk_edge() {
        for (len, step) in [
            (0, 1),
            (1, 1),
            (CHUNK - 1, 7),
            (CHUNK, CHUNK),
            (CHUNK + 1, 3),
            (3 * CHUNK + 17, CHUNK + 5),
            (2 * CHUNK, 2 * CHUNK),
        ] {
            let list = built(len, step);
            assert_eq!(list.len(), len, "len {len} step {step}");
            assert_eq!(list.last().copied(), len.checked_sub(1), "last, len {len}");
            assert_eq!(
                list.iter_from(0).copied().collect::<Vec<_>>(),
                (0..len).collect::<Vec<_>>(),
                "len {len} step {step}"
            );
            for start in [
                0,
                1,
                CHUNK - 1,
                CHUNK,
                CHUNK + 1,
                len.saturating_sub(1),
                len,
                len + 5,
            ] {
                assert_eq!(
                    list.iter_from(start).copied().collect::<Vec<_>>(),
                    (start..len).collect::<Vec<_>>(),
                    "from {start}, len {len}"
                );
                assert_eq!(list.get(start).copied(), (start < len).then_some(start));
                assert_eq!(
                    list.partition_point(|&item| item < start),
                    start.min(len),
                    "partition at {start}, len {len}"
                );
            }
        }
    }

    #[test]
    fn dropping_the_oldest_chunks_keeps_the_rest_in_place() {
        let mut list = built(3 * CHUNK + 5, 100);
        assert_eq!(list.pop_front_chunk().map(|c| c.len()), Some(CHUNK));
        assert_eq!(list.len(), 2 * CHUNK + 5);
        assert_eq!(list.iter_from(0).next().copied(), Some(CHUNK));
        assert_eq!(list.partition_point(|&item| item < 2 * CHUNK), CHUNK);
        assert_eq!(list.last().copied(), Some(3 * CHUNK + 4));
        list.pop_front_chunk();
        list.pop_front_chunk();
        assert_eq!(list.pop_front_chunk(), None, "the chunk being filled stays");
        assert_eq!(list.len(), 5);
        assert_eq!(
            list.iter_from(0).copied().collect::<Vec<_>>(),
            (3 * CHUNK..3 * CHUNK + 5).collect::<Vec<_>>()
        );
    }

    #[test]
    fn full_chunks_are_never_reallocated() {
        let mut list = built(CHUNK, CHUNK);
        let first = list.get(0).unwrap() as *const usize;
        list.extend_from_slice(&vec![0; 5 * CHUNK]);
        assert_eq!(
            list.get(0).unwrap() as *const usize,
            first,
            "the first chunk moved"
        );
        assert!(list.chunks.iter().all(|chunk| chunk.capacity() == CHUNK));
    }
}
