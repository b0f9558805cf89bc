//! [`SourceMemo`]: the last relayed answers of remote runtimes, so that an answer
//! the same, byte for byte, as one already checked is relayed again without
//! reading it through.
//!
//! The relay's check ([`crate::relay`]) is a function of the answer's bytes, the
//! worker asked about, the runtime id the answer is labelled with and the source's
//! secrets, which are fixed for the source's life. An answer equal to a memoised
//! one from the same source therefore has the memoised outcome: the same bytes to
//! send and the same workers and owners to report as seen. Comparing two answers
//! is one `memcmp` (a list of eight workers: about 2 KiB, a few hundred
//! instructions) where checking one reads every byte (about 7 instructions a byte)
//! and searches it for each secret. Pollers ask again and again about workers that
//! did not change, and those answers are equal.
//!
//! Only answers that took the relay path are memoised, never an error or a typed
//! path's outcome. The memo holds its own copy of each answer (never the client's
//! read buffer, which it would keep from being reused), at most [`MEMO_MAX_DETAIL`]
//! or [`MEMO_MAX_LIST`] bytes, in a fixed number of slots shared by every source of
//! the process: its answer bytes (at most 4 MiB, answers and relabelled copies
//! together, plus a few hundred bytes of bookkeeping per slot) grow neither with
//! the number of runtimes nor with workers or requests. An entry of a source that
//! is gone stays until its slot is reused.
//!
//! Invariant: a memo hit returns exactly what the check of the same bytes by the
//! same source would. Each source has its own id in every key, so a source made
//! anew (a reload that points a runtime id elsewhere, with other secrets) never
//! replays an outcome of the one before.

use std::hash::{BuildHasher, Hash};
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use switchyard_protocol::{RuntimeId, WorkerId};
use switchyard_transport::WorkerQuery;

use crate::source::SeenWorkers;

/// Worker detail answers memoised in the process (by a hash of source and worker).
pub const MEMO_DETAIL_SLOTS: usize = 256;
/// Worker list answers memoised in the process (by a hash of source and query).
pub const MEMO_LIST_SLOTS: usize = 32;
/// The largest worker detail answer memoised, in bytes.
pub const MEMO_MAX_DETAIL: usize = 4 * 1024;
/// The largest worker list answer memoised, in bytes (a page of about a hundred
/// workers).
pub const MEMO_MAX_LIST: usize = 32 * 1024;

/// A slot that holds an entry takes a new answer on every this many misses (an
/// empty one on the first): a worker whose answer changes with every request
/// (its output streaming) costs one copy per this many requests, not one each.
pub const MEMO_REMEMBER_EVERY: u32 = 8;

/// What a memo lookup found.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The relayed bytes for an answer equal to a memoised one (`seen` was told).
    Hit(Bytes),
    /// Not memoised; `remember` says whether to memoise this answer's outcome.
    Miss {
        /// Record what the check tells as seen and remember the outcome.
        remember: bool,
    },
}

/// A worker and its owner as spans of a memoised answer.
pub(crate) type SeenSpans = (Range<u32>, Option<Range<u32>>);

/// One memoised answer and its outcome.
struct Entry<K> {
    /// The source that checked it.
    source: u64,
    /// What was asked: the worker, or the list's query.
    asked: K,
    /// The runtime id the answer was labelled with.
    as_runtime: RuntimeId,
    /// The runtime's answer, copied (a relayed answer is UTF-8).
    answer: Arc<str>,
    /// What was relayed for it (`answer` itself when no label changed).
    relayed: Bytes,
    /// The workers and owners it told as seen, as spans of `answer`.
    seen: Vec<SeenSpans>,
}

impl<K: PartialEq> Entry<K> {
    /// The relayed bytes when this entry is for `asked` of `source`, `as_runtime`
    /// and `answer`,
    /// after telling `seen` what the check told it.
    fn replay(
        &self,
        (source, asked): (u64, &K),
        as_runtime: &RuntimeId,
        answer: &[u8],
        seen: SeenWorkers<'_>,
    ) -> Option<Bytes> {
        if self.answer.as_bytes() != answer
            || self.source != source
            || self.asked != *asked
            || self.as_runtime != *as_runtime
        {
            return None;
        }
        // Spans were checked when remembered; should one not fit, the entry is
        // not used (a miss) rather than telling `seen` an empty worker or owner.
        let fits = |span: &Range<u32>| text(&self.answer, span).is_some();
        if !self
            .seen
            .iter()
            .all(|(worker, owner)| fits(worker) && owner.as_ref().is_none_or(fits))
        {
            debug_assert!(false, "a memo entry with a span that does not fit");
            return None;
        }
        for (worker, owner) in &self.seen {
            let owner = owner.as_ref().and_then(|o| text(&self.answer, o));
            seen(text(&self.answer, worker).unwrap_or_default(), owner);
        }
        Some(self.relayed.clone())
    }
}

/// The text at `span` of a memoised answer, if it lies within it on char
/// boundaries (a span taken from a `&str` borrowed from the same bytes does).
fn text<'a>(answer: &'a str, span: &Range<u32>) -> Option<&'a str> {
    answer.get(span.start as usize..span.end as usize)
}

/// A memoised answer as the bytes of a relayed answer, without a copy.
struct Shared(Arc<str>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// One slot: the entry last remembered for the keys hashed to it, and its misses.
struct Slot<K> {
    entry: ArcSwapOption<Entry<K>>,
    misses: AtomicU32,
}

/// A fixed table of memoised answers.
struct Slots<K> {
    slots: Box<[Slot<K>]>,
    hasher: foldhash::fast::RandomState,
    max_answer: usize,
}

impl<K: PartialEq + Hash + Clone> Slots<K> {
    fn new(count: usize, max_answer: usize) -> Self {
        Self {
            slots: (0..count)
                .map(|_| Slot {
                    entry: ArcSwapOption::empty(),
                    misses: AtomicU32::new(0),
                })
                .collect(),
            hasher: foldhash::fast::RandomState::default(),
            max_answer,
        }
    }

    fn slot(&self, key: (u64, &K)) -> &Slot<K> {
        let at = self.hasher.hash_one(key) as usize % self.slots.len();
        &self.slots[at]
    }

    fn replay(
        &self,
        key: (u64, &K),
        as_runtime: &RuntimeId,
        answer: &[u8],
        seen: SeenWorkers<'_>,
    ) -> Lookup {
        if answer.len() > self.max_answer {
            return Lookup::Miss { remember: false };
        }
        let slot = self.slot(key);
        let entry = slot.entry.load();
        let Some(entry) = entry.as_ref() else {
            return Lookup::Miss { remember: true };
        };
        if let Some(relayed) = entry.replay(key, as_runtime, answer, seen) {
            return Lookup::Hit(relayed);
        }
        let misses = slot.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Miss {
            remember: misses % MEMO_REMEMBER_EVERY == MEMO_REMEMBER_EVERY - 1,
        }
    }

    /// Memoises `relayed` as the outcome for `answer`, which told `told` (spans
    /// of `answer`) as seen; answers over the size limit are not kept.
    fn remember(
        &self,
        (source, asked): (u64, &K),
        as_runtime: &RuntimeId,
        answer: &Bytes,
        relayed: &Bytes,
        told: Vec<SeenSpans>,
    ) {
        if answer.len() > self.max_answer || relayed.len() > self.max_answer {
            return;
        }
        let Ok(text) = std::str::from_utf8(answer) else {
            return;
        };
        if !told.iter().all(|(worker, owner)| {
            self::text(text, worker).is_some()
                && owner.as_ref().is_none_or(|o| self::text(text, o).is_some())
        }) {
            return;
        }
        let copy: Arc<str> = Arc::from(text);
        let relayed = if relayed.as_ref() == answer {
            Bytes::from_owner(Shared(copy.clone()))
        } else {
            // A copy of its own, without the spare room relabelling left.
            Bytes::copy_from_slice(relayed)
        };
        self.slot((source, asked)).entry.store(Some(Arc::new(Entry {
            source,
            asked: asked.clone(),
            as_runtime: as_runtime.clone(),
            answer: copy,
            relayed,
            seen: told,
        })));
    }
}

/// Memoised answers: worker details and list pages, of every source that shares it.
pub(crate) struct RelayMemo {
    details: Slots<WorkerId>,
    lists: Slots<WorkerQuery>,
}

impl Default for RelayMemo {
    fn default() -> Self {
        Self {
            details: Slots::new(MEMO_DETAIL_SLOTS, MEMO_MAX_DETAIL),
            lists: Slots::new(MEMO_LIST_SLOTS, MEMO_MAX_LIST),
        }
    }
}

/// The memo every remote source of the process shares.
static SHARED: LazyLock<Arc<RelayMemo>> = LazyLock::new(Arc::default);

/// Ids of sources, never reused within the process.
static NEXT_SOURCE: AtomicU64 = AtomicU64::new(0);

/// One source's view of a memo: its entries, under an id of its own.
pub(crate) struct SourceMemo {
    source: u64,
    memo: Arc<RelayMemo>,
}

impl Default for SourceMemo {
    /// A new source's view of the process's shared memo.
    fn default() -> Self {
        Self::over(SHARED.clone())
    }
}

impl SourceMemo {
    /// A new source's view of `memo`.
    fn over(memo: Arc<RelayMemo>) -> Self {
        Self {
            source: NEXT_SOURCE.fetch_add(1, Ordering::Relaxed),
            memo,
        }
    }

    /// The relayed bytes memoised for this worker detail answer (after telling
    /// `seen` what its check told), or whether to remember it.
    pub fn detail(
        &self,
        worker: &WorkerId,
        as_runtime: &RuntimeId,
        answer: &[u8],
        seen: SeenWorkers<'_>,
    ) -> Lookup {
        self.memo
            .details
            .replay((self.source, worker), as_runtime, answer, seen)
    }

    /// The relayed bytes memoised for this list answer, or whether to remember it.
    pub fn list(
        &self,
        query: &WorkerQuery,
        as_runtime: &RuntimeId,
        answer: &[u8],
        seen: SeenWorkers<'_>,
    ) -> Lookup {
        self.memo
            .lists
            .replay((self.source, query), as_runtime, answer, seen)
    }

    /// Memoises a relayed worker detail answer.
    pub fn remember_detail(
        &self,
        worker: &WorkerId,
        as_runtime: &RuntimeId,
        answer: &Bytes,
        relayed: &Bytes,
        told: Vec<SeenSpans>,
    ) {
        self.memo
            .details
            .remember((self.source, worker), as_runtime, answer, relayed, told);
    }

    /// Memoises a relayed list answer.
    pub fn remember_list(
        &self,
        query: &WorkerQuery,
        as_runtime: &RuntimeId,
        answer: &Bytes,
        relayed: &Bytes,
        told: Vec<SeenSpans>,
    ) {
        self.memo
            .lists
            .remember((self.source, query), as_runtime, answer, relayed, told);
    }
}

/// Where `part`, a slice borrowed from `answer`, lies in it (`None` when it is not
/// part of it or lies beyond 4 GiB).
pub(crate) fn span_in(answer: &[u8], part: &str) -> Option<Range<u32>> {
    let start = (part.as_ptr() as usize).checked_sub(answer.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= answer.len()).then_some(u32::try_from(start).ok()?..u32::try_from(end).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid(s: &str) -> RuntimeId {
        RuntimeId::new(s).unwrap()
    }

    fn wid(s: &str) -> WorkerId {
        WorkerId::new(s).unwrap()
    }

    type Told = Vec<(String, Option<String>)>;

    /// What `seen` is told by a replay of `answer`, and the bytes it returns.
    fn replayed(
        memo: &SourceMemo,
        worker: &str,
        runtime: &str,
        answer: &[u8],
    ) -> Option<(Bytes, Told)> {
        let mut told = Vec::new();
        let looked = memo.detail(&wid(worker), &rid(runtime), answer, &mut |w, o| {
            told.push((w.to_owned(), o.map(str::to_owned)))
        });
        hit(looked).map(|out| (out, told))
    }

    fn hit(looked: Lookup) -> Option<Bytes> {
        match looked {
            Lookup::Hit(out) => Some(out),
            Lookup::Miss { .. } => None,
        }
    }

    fn listed(memo: &SourceMemo, query: &WorkerQuery, answer: &[u8]) -> Option<Bytes> {
        hit(memo.list(query, &rid("ours"), answer, &mut |_, _| {}))
    }

    const ANSWER: &[u8] = br#"{"worker_id":"w-1","owner":"alice","runtime_id":"theirs"}"#;

    fn spans(answer: &[u8]) -> Vec<SeenSpans> {
        let text = std::str::from_utf8(answer).unwrap();
        let at = |part: &str| span_in(answer, &text[text.find(part).unwrap()..][..part.len()]);
        vec![(at("w-1").unwrap(), Some(at("alice").unwrap()))]
    }

    fn private() -> SourceMemo {
        SourceMemo::over(Arc::default())
    }

    fn remembered() -> (SourceMemo, Bytes) {
        let memo = private();
        let answer = Bytes::from_static(ANSWER);
        let relayed = Bytes::from_static(b"relayed");
        memo.remember_detail(&wid("w-1"), &rid("ours"), &answer, &relayed, spans(ANSWER));
        (memo, relayed)
    }

    #[test]
    fn the_same_bytes_replay_the_outcome_and_what_was_seen() {
        let (memo, relayed) = remembered();
        let (out, told) = replayed(&memo, "w-1", "ours", ANSWER).unwrap();
        assert_eq!(out, relayed);
        assert_eq!(told, [("w-1".to_owned(), Some("alice".to_owned()))]);
    }

    #[test]
    fn another_answer_worker_or_label_is_not_a_hit() {
        let (memo, _) = remembered();
        let mut changed = ANSWER.to_vec();
        changed[10] = b'x';
        assert!(replayed(&memo, "w-1", "ours", &changed).is_none());
        assert!(replayed(&memo, "w-1", "ours", &ANSWER[..ANSWER.len() - 1]).is_none());
        assert!(replayed(&memo, "w-2", "ours", ANSWER).is_none());
        assert!(replayed(&memo, "w-1", "theirs", ANSWER).is_none());
    }

    #[test]
    fn a_source_never_replays_another_sources_outcome() {
        let shared: Arc<RelayMemo> = Arc::default();
        let (one, two) = (
            SourceMemo::over(shared.clone()),
            SourceMemo::over(shared.clone()),
        );
        let answer = Bytes::from_static(ANSWER);
        one.remember_detail(&wid("w-1"), &rid("ours"), &answer, &answer, spans(ANSWER));
        assert!(replayed(&one, "w-1", "ours", ANSWER).is_some());
        assert!(replayed(&two, "w-1", "ours", ANSWER).is_none());
        let query = WorkerQuery::default();
        one.remember_list(&query, &rid("ours"), &answer, &answer, Vec::new());
        assert!(listed(&one, &query, ANSWER).is_some());
        assert!(listed(&two, &query, ANSWER).is_none());
    }

    #[test]
    fn an_empty_slot_remembers_at_once_a_full_one_every_eighth_miss() {
        let memo = private();
        let remembers =
            |answer: &[u8]| match memo.detail(&wid("w-1"), &rid("ours"), answer, &mut |_, _| {}) {
                Lookup::Miss { remember } => remember,
                Lookup::Hit(_) => panic!("a hit"),
            };
        assert!(remembers(ANSWER), "an empty slot");
        let answer = Bytes::from_static(ANSWER);
        memo.remember_detail(&wid("w-1"), &rid("ours"), &answer, &answer, spans(ANSWER));
        let changed = [ANSWER, b" "].concat();
        let flags: Vec<bool> = (0..2 * MEMO_REMEMBER_EVERY)
            .map(|_| remembers(&changed))
            .collect();
        let every = MEMO_REMEMBER_EVERY as usize;
        for (at, flag) in flags.iter().enumerate() {
            assert_eq!(*flag, at % every == every - 1, "miss {at}");
        }
        assert!(
            replayed(&memo, "w-1", "ours", ANSWER).is_some(),
            "misses keep the entry"
        );
    }

    #[test]
    fn an_answer_whose_spans_do_not_fit_it_is_not_remembered() {
        let memo = private();
        let answer = Bytes::from_static(ANSWER);
        let beyond = ANSWER.len() as u32;
        memo.remember_detail(
            &wid("w-1"),
            &rid("ours"),
            &answer,
            &answer,
            vec![(beyond..beyond + 3, None)],
        );
        assert!(replayed(&memo, "w-1", "ours", ANSWER).is_none());
        let mut told = spans(ANSWER);
        told[0].1 = Some(2..beyond + 1);
        memo.remember_detail(&wid("w-1"), &rid("ours"), &answer, &answer, told);
        assert!(replayed(&memo, "w-1", "ours", ANSWER).is_none());
    }

    #[test]
    fn an_answer_over_the_limit_is_a_miss_not_to_remember() {
        let memo = private();
        let big = vec![b' '; MEMO_MAX_DETAIL + 1];
        let looked = memo.detail(&wid("w-1"), &rid("ours"), &big, &mut |_, _| {});
        assert!(matches!(looked, Lookup::Miss { remember: false }));
    }

    #[test]
    fn the_memo_keeps_its_own_copy_and_shares_it_when_nothing_was_relabelled() {
        let memo = private();
        let answer = Bytes::copy_from_slice(ANSWER);
        memo.remember_detail(&wid("w-1"), &rid("ours"), &answer, &answer, spans(ANSWER));
        let (out, _) = replayed(&memo, "w-1", "ours", ANSWER).unwrap();
        assert_eq!(out, answer);
        assert_ne!(
            out.as_ptr(),
            answer.as_ptr(),
            "the client's buffer is not kept"
        );
        let (again, _) = replayed(&memo, "w-1", "ours", ANSWER).unwrap();
        assert_eq!(again.as_ptr(), out.as_ptr(), "one copy serves every hit");
    }

    #[test]
    fn answers_over_the_limit_are_not_kept() {
        let memo = private();
        let big = Bytes::from(vec![b' '; MEMO_MAX_DETAIL + 1]);
        memo.remember_detail(&wid("w-1"), &rid("ours"), &big, &big, Vec::new());
        assert!(replayed(&memo, "w-1", "ours", &big).is_none());
        let query = WorkerQuery::default();
        let list = Bytes::from(vec![b' '; MEMO_MAX_LIST]);
        memo.remember_list(&query, &rid("ours"), &list, &list, Vec::new());
        assert!(listed(&memo, &query, &list).is_some());
        let over = Bytes::from(vec![b' '; MEMO_MAX_LIST + 1]);
        memo.remember_list(&query, &rid("ours"), &over, &over, Vec::new());
        assert!(listed(&memo, &query, &over).is_none());
    }
}
