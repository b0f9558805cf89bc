//! [`MemoryStore`]: everything in memory, gone with the process. For tests and for
//! runtimes configured without a data directory.
//!
//! Invariant: a worker's transcript holds at most its byte budget
//! ([`DEFAULT_TRANSCRIPT_BYTES`], or [`MemoryStore::with_transcript_limit`]) plus
//! the chunk of items being filled: past it, the oldest chunks of items are
//! dropped. Pages then start at the oldest item kept (`total` still counts every
//! item); a runtime with a data directory keeps the whole record on disk.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use switchyard_protocol::{TranscriptEntry, TranscriptItem, WorkerDetail, WorkerId};

use super::chunked::Chunked;
use super::{LoadedWorker, Store, StoreError};

/// The transcript bytes (text, and a fixed overhead per item) a worker keeps in a
/// [`MemoryStore`] by default before its oldest items are dropped.
pub const DEFAULT_TRANSCRIPT_BYTES: usize = 64 * 1024 * 1024;

/// A [`Store`] that keeps records and transcripts in memory, each transcript within
/// a byte budget (the oldest items dropped past it).
///
/// [`Store::load`] returns whatever was saved so far, so loading twice simulates a
/// reopen of a persistent store.
#[derive(Debug)]
pub struct MemoryStore {
    workers: Mutex<BTreeMap<WorkerId, Entry>>,
    transcript_limit: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_transcript_limit(DEFAULT_TRANSCRIPT_BYTES)
    }
}

#[derive(Debug)]
struct Entry {
    detail: WorkerDetail,
    /// Sorted by strictly increasing sequence; in chunks, so that a transcript of
    /// millions of items grows without pausing the store to copy them.
    items: Chunked<TranscriptItem>,
    /// What `items` hold, as [`item_bytes`] counts.
    bytes: usize,
}

/// An item's size in memory, near enough: its text and a fixed overhead.
fn item_bytes(item: &TranscriptItem) -> usize {
    const OVERHEAD: usize = 96;
    OVERHEAD
        + match &item.entry {
            TranscriptEntry::Input { text }
            | TranscriptEntry::Output { text, .. }
            | TranscriptEntry::System { text, .. } => text.len(),
        }
}

impl MemoryStore {
    /// An empty store, each transcript within [`DEFAULT_TRANSCRIPT_BYTES`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that keeps about `bytes` of each worker's transcript (and the
    /// items being added), dropping the oldest items past it.
    pub fn with_transcript_limit(bytes: usize) -> Self {
        Self {
            workers: Mutex::default(),
            transcript_limit: bytes,
        }
    }

    /// The lock is only ever held for plain memory operations (never across an
    /// `.await`), so a poisoned lock still guards consistent data.
    fn workers(&self) -> MutexGuard<'_, BTreeMap<WorkerId, Entry>> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn load(&self, tail: usize) -> Result<Vec<LoadedWorker>, StoreError> {
        // BTreeMap iteration is already in worker id order.
        Ok(self
            .workers()
            .values()
            .map(|entry| LoadedWorker {
                detail: entry.detail.clone(),
                last_sequence: entry.items.last().map_or(0, |item| item.sequence),
                tail: entry
                    .items
                    .iter_from(entry.items.len().saturating_sub(tail))
                    .cloned()
                    .collect(),
            })
            .collect())
    }

    async fn save_worker(&self, detail: &WorkerDetail) -> Result<(), StoreError> {
        let mut workers = self.workers();
        match workers.get_mut(&detail.worker_id) {
            Some(entry) => entry.detail = detail.clone(),
            None => {
                workers.insert(
                    detail.worker_id.clone(),
                    Entry {
                        detail: detail.clone(),
                        items: Chunked::default(),
                        bytes: 0,
                    },
                );
            }
        }
        Ok(())
    }

    async fn append(&self, worker: &WorkerId, items: &[TranscriptItem]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut workers = self.workers();
        let entry = workers
            .get_mut(worker)
            .ok_or_else(|| StoreError::NotFound(worker.clone()))?;
        entry.items.extend_from_slice(items);
        entry.bytes += items.iter().map(item_bytes).sum::<usize>();
        while entry.bytes > self.transcript_limit {
            let Some(dropped) = entry.items.pop_front_chunk() else {
                break;
            };
            entry.bytes -= dropped.iter().map(item_bytes).sum::<usize>();
        }
        Ok(())
    }

    async fn read_page(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<TranscriptItem>, StoreError> {
        let workers = self.workers();
        let entry = workers
            .get(worker)
            .ok_or_else(|| StoreError::NotFound(worker.clone()))?;
        // Sequences are strictly increasing, so a binary search finds the start
        // (this does not rely on them being dense).
        let start = entry.items.partition_point(|item| item.sequence <= after);
        Ok(entry.items.iter_from(start).take(limit).cloned().collect())
    }

    async fn remove_worker(&self, worker: &WorkerId) -> Result<(), StoreError> {
        self.workers()
            .remove(worker)
            .map(drop)
            .ok_or_else(|| StoreError::NotFound(worker.clone()))
    }

    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;
    use switchyard_protocol::WorkerStatus;

    #[tokio::test]
    async fn save_load_round_trip_sorted_and_replaced() {
        let store = MemoryStore::new();
        assert!(store.load(10).await.unwrap().is_empty());
        store
            .save_worker(&detail("w-b", WorkerStatus::Running))
            .await
            .unwrap();
        store
            .save_worker(&detail("w-a", WorkerStatus::Starting))
            .await
            .unwrap();
        store
            .save_worker(&detail("w-a", WorkerStatus::Exited))
            .await
            .unwrap();

        let loaded = store.load(10).await.unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].detail, detail("w-a", WorkerStatus::Exited));
        assert_eq!(loaded[1].detail, detail("w-b", WorkerStatus::Running));
        assert!(
            loaded
                .iter()
                .all(|w| w.last_sequence == 0 && w.tail.is_empty())
        );
    }

    #[tokio::test]
    async fn append_and_read_pages() {
        let store = MemoryStore::default();
        let w = wid("w");
        store
            .save_worker(&detail("w", WorkerStatus::Running))
            .await
            .unwrap();
        assert!(store.read_page(&w, 0, 10).await.unwrap().is_empty());
        store.append(&w, &items(1..=50)).await.unwrap();
        store.append(&w, &[]).await.unwrap();
        store.append(&w, &items(51..=100)).await.unwrap();

        let start = store.read_page(&w, 0, 10).await.unwrap();
        assert_eq!(start, items(1..=10));
        let middle = store.read_page(&w, 42, 5).await.unwrap();
        assert_eq!(seqs(&middle), vec![43, 44, 45, 46, 47]);
        let end = store.read_page(&w, 95, 10).await.unwrap();
        assert_eq!(end, items(96..=100));
        assert!(store.read_page(&w, 100, 10).await.unwrap().is_empty());
        assert!(store.read_page(&w, 1_000, 10).await.unwrap().is_empty());
        assert!(store.read_page(&w, 0, 0).await.unwrap().is_empty());
        assert_eq!(
            store.read_page(&w, 0, usize::MAX).await.unwrap(),
            items(1..=100)
        );
    }

    #[tokio::test]
    async fn a_transcript_past_its_budget_drops_its_oldest_items() {
        use crate::store::chunked::CHUNK;
        let w = wid("w");
        let last = 10 * CHUNK as u64;
        let all = items(1..=last);
        let bytes = |items: &[TranscriptItem]| items.iter().map(item_bytes).sum::<usize>();
        let budget = bytes(&all) / 4;
        let store = MemoryStore::with_transcript_limit(budget);
        store
            .save_worker(&detail("w", WorkerStatus::Running))
            .await
            .unwrap();
        for part in all.chunks(100) {
            store.append(&w, part).await.unwrap();
        }
        let kept = store.read_page(&w, 0, usize::MAX).await.unwrap();
        // Within the budget, but for at most the chunk being filled; and no more
        // was dropped than had to be (a whole chunk more would have fitted).
        let largest_chunk = all.chunks(CHUNK).map(bytes).max().unwrap();
        assert!(
            bytes(&kept) <= budget + largest_chunk,
            "{} kept",
            kept.len()
        );
        assert!(bytes(&kept) + largest_chunk > budget, "{} kept", kept.len());
        assert!(kept.len() < all.len());
        let first = kept[0].sequence;
        assert_eq!(seqs(&kept), (first..=last).collect::<Vec<_>>());
        // A page from before the oldest item kept starts at it.
        assert_eq!(
            seqs(&store.read_page(&w, 0, 3).await.unwrap()),
            vec![first, first + 1, first + 2]
        );
        let loaded = store.load(5).await.unwrap();
        assert_eq!(loaded[0].last_sequence, last);
        assert_eq!(loaded[0].tail, items(last - 4..=last));
    }

    #[tokio::test]
    async fn load_twice_keeps_records_tail_and_last_sequence() {
        let store = MemoryStore::new();
        let w = wid("w");
        store
            .save_worker(&detail("w", WorkerStatus::Running))
            .await
            .unwrap();
        store.append(&w, &items(1..=20)).await.unwrap();

        for _ in 0..2 {
            let loaded = store.load(5).await.unwrap();
            assert_eq!(loaded.len(), 1);
            assert_eq!(loaded[0].last_sequence, 20);
            assert_eq!(loaded[0].tail, items(16..=20));
        }
        let loaded = store.load(0).await.unwrap();
        assert_eq!(loaded[0].last_sequence, 20);
        assert!(loaded[0].tail.is_empty());
        let loaded = store.load(1_000).await.unwrap();
        assert_eq!(loaded[0].tail, items(1..=20));

        // Saving the record again keeps the transcript.
        store
            .save_worker(&detail("w", WorkerStatus::Lost))
            .await
            .unwrap();
        let loaded = store.load(3).await.unwrap();
        assert_eq!(loaded[0].detail.status, WorkerStatus::Lost);
        assert_eq!(loaded[0].tail, items(18..=20));
    }

    #[tokio::test]
    async fn remove_worker_removes_record_and_transcript() {
        let store = MemoryStore::new();
        let w = wid("w");
        store
            .save_worker(&detail("w", WorkerStatus::Exited))
            .await
            .unwrap();
        store
            .save_worker(&detail("other", WorkerStatus::Exited))
            .await
            .unwrap();
        store.append(&w, &items(1..=3)).await.unwrap();
        store.remove_worker(&w).await.unwrap();

        let loaded = store.load(10).await.unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].detail.worker_id, wid("other"));
        assert!(matches!(
            store.read_page(&w, 0, 10).await,
            Err(StoreError::NotFound(id)) if id == w
        ));
        // A new worker with the same id starts with an empty transcript.
        store
            .save_worker(&detail("w", WorkerStatus::Running))
            .await
            .unwrap();
        assert!(store.read_page(&w, 0, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn unknown_worker_is_not_found() {
        let store = MemoryStore::new();
        let w = wid("ghost");
        assert!(matches!(
            store.read_page(&w, 0, 10).await,
            Err(StoreError::NotFound(id)) if id == w
        ));
        assert!(matches!(
            store.read_page(&w, 0, 0).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.append(&w, &items(1..=1)).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.remove_worker(&w).await,
            Err(StoreError::NotFound(_))
        ));
        store.flush().await.unwrap();
    }
}
