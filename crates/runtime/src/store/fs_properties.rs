//! Property tests of the FS store's readers and its recovery: pages and tails agree
//! with a plain filter for any transcript, block size and bisection threshold; a
//! transcript cut at any byte loads as its complete lines and takes appends again; any
//! bytes in a record or transcript file are an error or a load, never a panic.

use proptest::prelude::*;
use switchyard_protocol::arbitrary::{transcript, transcript_item_at, worker_detail};
use switchyard_protocol::{TranscriptItem, WorkerDetail};
use tempfile::TempDir;

use super::*;

/// The lines of `items`, and the byte offset where each ends.
fn encode(items: &[TranscriptItem]) -> (Vec<u8>, Vec<u64>) {
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    for item in items {
        serde_json::to_writer(&mut bytes, item).unwrap();
        bytes.push(b'\n');
        ends.push(bytes.len() as u64);
    }
    (bytes, ends)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A store under `tmp` holding `detail` and `items`.
async fn store_holding(tmp: &TempDir, detail: &WorkerDetail, items: &[TranscriptItem]) -> FsStore {
    let store = FsStore::open(tmp.path()).await.unwrap();
    store.save_worker(detail).await.unwrap();
    for batch in items.chunks(3) {
        store.append(&detail.worker_id, batch).await.unwrap();
    }
    store.flush().await.unwrap();
    store
}

fn transcript_file(tmp: &TempDir, detail: &WorkerDetail) -> PathBuf {
    tmp.path()
        .join(WORKERS_DIR)
        .join(detail.worker_id.as_str())
        .join(TRANSCRIPT_FILE)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pages_and_tails_agree_with_a_plain_filter(
        items in transcript(30),
        block in 1usize..80,
        threshold in 1u64..3_000,
        after_pick in any::<prop::sample::Index>(),
        limit in 0usize..12,
        tail in 0usize..12,
    ) {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("t.jsonl");
        let (bytes, _) = encode(&items);
        fs::write(&path, &bytes).unwrap();
        let len = bytes.len() as u64;
        let last = items.last().map_or(0, |i| i.sequence);
        let after = after_pick.index(last as usize + 2) as u64;

        let page = read_page_in(File::open(&path).unwrap(), len, &path, after, limit, threshold)
            .unwrap();
        let expected: Vec<_> = items.iter().filter(|i| i.sequence > after).take(limit).cloned().collect();
        prop_assert_eq!(page, expected);

        let (last_sequence, got) =
            read_tail(&mut File::open(&path).unwrap(), &path, len, tail, block).unwrap();
        prop_assert_eq!(last_sequence, last);
        prop_assert_eq!(got, items[items.len().saturating_sub(tail)..].to_vec());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn a_transcript_cut_at_any_byte_loads_its_complete_lines_and_takes_appends(
        detail in worker_detail(),
        items in transcript(12),
        cut_pick in any::<prop::sample::Index>(),
        next in transcript_item_at(0),
    ) {
        runtime().block_on(async {
            let tmp = TempDir::new().unwrap();
            drop(store_holding(&tmp, &detail, &items).await);
            let path = transcript_file(&tmp, &detail);
            let (bytes, ends) = encode(&items);
            let cut = cut_pick.index(bytes.len() + 1) as u64;
            OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
            let kept: Vec<TranscriptItem> = items
                .iter()
                .zip(&ends)
                .filter(|(_, end)| **end <= cut)
                .map(|(item, _)| item.clone())
                .collect();

            // A fresh process: the torn line is dropped, the rest loads.
            let store = FsStore::open(tmp.path()).await.unwrap();
            let loaded = store.load(usize::MAX).await.unwrap();
            prop_assert_eq!(loaded.len(), 1);
            prop_assert_eq!(&loaded[0].detail, &detail);
            prop_assert_eq!(loaded[0].last_sequence, kept.last().map_or(0, |i| i.sequence));
            prop_assert_eq!(&loaded[0].tail, &kept);
            prop_assert_eq!(
                store.read_page(&detail.worker_id, 0, usize::MAX).await.unwrap(),
                kept.clone()
            );

            // Appends go on after the last complete line.
            let next = TranscriptItem { sequence: loaded[0].last_sequence + 1, ..next };
            store.append(&detail.worker_id, std::slice::from_ref(&next)).await.unwrap();
            let mut expected = kept;
            expected.push(next);
            prop_assert_eq!(
                store.read_page(&detail.worker_id, 0, usize::MAX).await.unwrap(),
                expected
            );
            Ok(())
        })?;
    }

    #[test]
    fn any_bytes_in_a_workers_files_are_an_error_or_a_load_never_a_panic(
        detail in worker_detail(),
        record in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            Just(Vec::new()),
        ],
        garbage in proptest::collection::vec(any::<u8>(), 0..300),
        items in transcript(6),
        keep_record in any::<bool>(),
    ) {
        runtime().block_on(async {
            let tmp = TempDir::new().unwrap();
            drop(store_holding(&tmp, &detail, &items).await);
            let dir = tmp.path().join(WORKERS_DIR).join(detail.worker_id.as_str());
            if !keep_record {
                fs::write(dir.join(RECORD_FILE), &record).unwrap();
            }
            // Valid lines with any bytes after them.
            let (mut bytes, _) = encode(&items);
            bytes.extend_from_slice(&garbage);
            fs::write(dir.join(TRANSCRIPT_FILE), &bytes).unwrap();

            let store = FsStore::open(tmp.path()).await.unwrap();
            match store.load(usize::MAX).await {
                Ok(loaded) => {
                    prop_assert_eq!(loaded.len(), 1);
                    // The valid lines all load, then whatever lines the garbage
                    // happened to spell (a torn last line is dropped).
                    let tail = &loaded[0].tail;
                    prop_assert!(tail.len() >= items.len());
                    prop_assert_eq!(&tail[..items.len()], &items[..]);
                    if !garbage.contains(&b'\n') {
                        prop_assert_eq!(tail.len(), items.len());
                    }
                }
                Err(StoreError::Corrupt { path, reason }) => {
                    prop_assert!(path.starts_with(&dir), "{}", path.display());
                    prop_assert!(!reason.is_empty());
                }
                Err(other) => prop_assert!(false, "not a corrupt-store error: {other}"),
            }
            let _ = store.read_page(&detail.worker_id, 0, usize::MAX).await;
            let _ = store.read_page(&detail.worker_id, 3, 2).await;
            Ok(())
        })?;
    }

    #[test]
    fn a_corrupt_line_inside_the_transcript_is_named_by_its_offset(
        detail in worker_detail(),
        before in transcript(5),
        junk in "[^\n]{1,40}",
    ) {
        prop_assume!(serde_json::from_str::<TranscriptItem>(&junk).is_err());
        runtime().block_on(async {
            let tmp = TempDir::new().unwrap();
            drop(store_holding(&tmp, &detail, &[]).await);
            let (mut bytes, _) = encode(&before);
            let offset = bytes.len();
            bytes.extend_from_slice(junk.as_bytes());
            bytes.push(b'\n');
            let last = before.last().map_or(0, |i| i.sequence);
            let (after, _) = encode(&[TranscriptItem { sequence: last + 1, ..item_like(&before) }]);
            bytes.extend_from_slice(&after);
            fs::write(transcript_file(&tmp, &detail), &bytes).unwrap();

            let store = FsStore::open(tmp.path()).await.unwrap();
            match store.load(usize::MAX).await {
                Err(StoreError::Corrupt { reason, .. }) => prop_assert!(
                    reason.contains(&format!("byte offset {offset}")),
                    "{}", reason
                ),
                other => prop_assert!(false, "expected a corrupt line at {offset}: {other:?}"),
            }
            Ok(())
        })?;
    }
}

/// Some valid item (the first of `items`, or a fixed one).
fn item_like(items: &[TranscriptItem]) -> TranscriptItem {
    items
        .first()
        .cloned()
        .unwrap_or_else(|| crate::store::test_support::item(1))
}
