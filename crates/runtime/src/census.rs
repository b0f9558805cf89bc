//! The [`Census`]: the runtime's kept workers counted by status and by owner, and
//! their ids indexed by status, kept as workers come, change status and go, so that
//! `GET /v1/runtime`, the metrics and a worker list filtered by status never scan
//! every kept worker (an ended worker is kept until it is deleted, so there may be
//! many more of them than run).
//!
//! **Invariant:** a worker is in the census exactly while it is in the runtime's
//! map of workers, under the status its detail holds. The worker enters when the
//! runtime puts it in the map, moves under its state lock when its status changes
//! and leaves when the runtime takes it out (or when it is dropped), each under
//! the worker's state lock (see `Worker::join_census`), so that a status change
//! and an entry or exit cannot cross. The census's own lock is taken only inside a
//! worker's state lock or alone, never the other way round.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Mutex;

use switchyard_protocol::{WorkerCounts, WorkerId, WorkerStatus};

/// The counts and the index (see the module).
#[derive(Default)]
pub(crate) struct Census {
    tally: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    counts: WorkerCounts,
    /// Only owners with at least one kept worker.
    owners: BTreeMap<String, WorkerCounts>,
    /// The ids of each status, in [`WorkerStatus::ALL`]'s order.
    by_status: [BTreeSet<WorkerId>; WorkerStatus::ALL.len()],
    /// The ended workers in the order they ended (those found ended when the
    /// runtime opened first, in the order they entered: `Runtime::open` enters
    /// them by their last change, i.e. their end), for
    /// [`Census::oldest_ended`]; the turn each was given, by id.
    ended_order: BTreeSet<(u64, WorkerId)>,
    ended_turn: BTreeMap<WorkerId, u64>,
    next_turn: u64,
}

impl Tally {
    /// Notes that `id` has ended, now.
    fn ended(&mut self, id: &WorkerId) {
        if self.ended_turn.contains_key(id) {
            return;
        }
        let turn = self.next_turn;
        self.next_turn += 1;
        self.ended_turn.insert(id.clone(), turn);
        self.ended_order.insert((turn, id.clone()));
    }

    /// Forgets that `id` has ended (it left).
    fn forget_ended(&mut self, id: &WorkerId) {
        if let Some(turn) = self.ended_turn.remove(id) {
            self.ended_order.remove(&(turn, id.clone()));
        }
    }
}

/// A page of ids of one status ([`Census::page`]).
pub(crate) struct IdPage {
    /// At most the page's limit, in id order.
    pub(crate) ids: Vec<WorkerId>,
    /// Whether more ids of that status follow the last one.
    pub(crate) more: bool,
}

fn index(status: WorkerStatus) -> usize {
    WorkerStatus::ALL
        .iter()
        .position(|s| *s == status)
        .unwrap_or_else(|| unreachable!("WorkerStatus::ALL lists every status"))
}

impl Census {
    /// Counts `id`, of `owner`, with `status`.
    pub(crate) fn enter(&self, id: &WorkerId, owner: Option<&str>, status: WorkerStatus) {
        let mut tally = self.tally();
        tally.counts.add(status);
        if let Some(owner) = owner {
            match tally.owners.get_mut(owner) {
                Some(counts) => counts.add(status),
                None => tally
                    .owners
                    .entry(owner.to_owned())
                    .or_default()
                    .add(status),
            }
        }
        tally.by_status[index(status)].insert(id.clone());
        if status.is_ended() {
            tally.ended(id);
        }
    }

    /// Moves `id`, of `owner`, from `from` to `to`.
    pub(crate) fn moved(
        &self,
        id: &WorkerId,
        owner: Option<&str>,
        from: WorkerStatus,
        to: WorkerStatus,
    ) {
        let mut tally = self.tally();
        tally.counts.remove(from);
        tally.counts.add(to);
        if let Some(counts) = owner.and_then(|owner| tally.owners.get_mut(owner)) {
            counts.remove(from);
            counts.add(to);
        }
        if let Some(id) = tally.by_status[index(from)].take(id) {
            tally.by_status[index(to)].insert(id);
        }
        if to.is_ended() {
            tally.ended(id);
        } else {
            tally.forget_ended(id);
        }
    }

    /// Forgets `id`, of `owner`, last seen with `status`.
    pub(crate) fn leave(&self, id: &WorkerId, owner: Option<&str>, status: WorkerStatus) {
        let mut tally = self.tally();
        tally.counts.remove(status);
        if let Some(owner) = owner
            && let Some(counts) = tally.owners.get_mut(owner)
        {
            counts.remove(status);
            if counts.total() == 0 {
                tally.owners.remove(owner);
            }
        }
        tally.by_status[index(status)].remove(id);
        tally.forget_ended(id);
    }

    /// The counts by status, and by owner.
    pub(crate) fn counts(&self) -> (WorkerCounts, BTreeMap<String, WorkerCounts>) {
        let tally = self.tally();
        (tally.counts, tally.owners.clone())
    }

    /// How many kept workers have ended (exited, stopped, failed, lost).
    pub(crate) fn ended(&self) -> usize {
        self.tally().ended_order.len()
    }

    /// The kept worker that ended first (of those found ended when the runtime
    /// opened, the first to enter).
    pub(crate) fn oldest_ended(&self) -> Option<WorkerId> {
        self.tally().ended_order.first().map(|(_, id)| id.clone())
    }

    /// Up to `limit` ids of workers with `status`, after `after` if given.
    pub(crate) fn page(
        &self,
        status: WorkerStatus,
        after: Option<&WorkerId>,
        limit: usize,
    ) -> IdPage {
        let tally = self.tally();
        let ids = &tally.by_status[index(status)];
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut range = ids.range::<WorkerId, _>((start, Bound::Unbounded));
        let page: Vec<WorkerId> = range.by_ref().take(limit).cloned().collect();
        IdPage {
            ids: page,
            more: range.next().is_some(),
        }
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> WorkerId {
        WorkerId::new(format!("w-{n:04}")).unwrap()
    }

    fn ids(page: &IdPage) -> Vec<String> {
        page.ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn counts_follow_entries_moves_and_exits() {
        let census = Census::default();
        census.enter(&id(1), Some("alice"), WorkerStatus::Starting);
        census.enter(&id(2), Some("alice"), WorkerStatus::Running);
        census.enter(&id(3), None, WorkerStatus::Exited);
        census.moved(
            &id(1),
            Some("alice"),
            WorkerStatus::Starting,
            WorkerStatus::Running,
        );
        let (counts, owners) = census.counts();
        assert_eq!((counts.starting, counts.running, counts.exited), (0, 2, 1));
        assert_eq!(owners["alice"].running, 2);
        assert_eq!(owners.len(), 1);

        census.moved(
            &id(2),
            Some("alice"),
            WorkerStatus::Running,
            WorkerStatus::Stopped,
        );
        census.leave(&id(2), Some("alice"), WorkerStatus::Stopped);
        census.leave(&id(1), Some("alice"), WorkerStatus::Running);
        let (counts, owners) = census.counts();
        assert_eq!(
            counts,
            WorkerCounts {
                exited: 1,
                ..Default::default()
            }
        );
        assert!(
            owners.is_empty(),
            "an owner with no kept worker is not listed"
        );
    }

    #[test]
    fn pages_walk_one_status_in_id_order() {
        let census = Census::default();
        for n in 1..=5 {
            let status = if n % 2 == 0 {
                WorkerStatus::Running
            } else {
                WorkerStatus::Exited
            };
            census.enter(&id(n), None, status);
        }
        let first = census.page(WorkerStatus::Exited, None, 2);
        assert_eq!(
            (ids(&first), first.more),
            (vec!["w-0001".into(), "w-0003".into()], true)
        );
        let rest = census.page(WorkerStatus::Exited, Some(&id(3)), 2);
        assert_eq!((ids(&rest), rest.more), (vec!["w-0005".to_owned()], false));
        // `after` need not be an id of that status (or of any worker).
        let running = census.page(WorkerStatus::Running, Some(&id(3)), 10);
        assert_eq!(
            (ids(&running), running.more),
            (vec!["w-0004".to_owned()], false)
        );

        census.moved(&id(4), None, WorkerStatus::Running, WorkerStatus::Exited);
        let moved = census.page(WorkerStatus::Exited, Some(&id(3)), 10);
        assert_eq!(ids(&moved), ["w-0004", "w-0005"]);
        assert!(census.page(WorkerStatus::Running, None, 10).ids.len() == 1);
        assert!(census.page(WorkerStatus::Lost, None, 10).ids.is_empty());
    }
}
