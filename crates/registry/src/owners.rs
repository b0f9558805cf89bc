//! [`OwnerCache`]: the owner of each worker the registry has seen, per runtime, so
//! that ownership checks and audit lines rarely need a call of their own. A worker's
//! owner is set at creation and never changes, so an entry is never stale; the map
//! is bounded and starts over when full.
//!
//! It is looked up for every worker of every relayed answer, so it hashes with
//! foldhash rather than SipHash: several times cheaper on short ids, still seeded at
//! random per process, and the map is bounded, so ids a runtime chose to collide
//! can slow only its own lookups, and only until the map starts over.

use foldhash::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use switchyard_protocol::{WorkerDetail, WorkerId};

/// Most workers remembered per runtime before the cache starts over.
pub const OWNER_CACHE_CAPACITY: usize = 65_536;

/// Owners by worker id, for one runtime.
#[derive(Debug, Default)]
pub(crate) struct OwnerCache {
    owners: Mutex<HashMap<WorkerId, Option<Arc<str>>>>,
}

impl OwnerCache {
    fn owners(&self) -> MutexGuard<'_, HashMap<WorkerId, Option<Arc<str>>>> {
        self.owners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The owner of `worker` if known: `Some(None)` for a worker without one.
    pub fn get(&self, worker: &WorkerId) -> Option<Option<Arc<str>>> {
        self.owners().get(worker).cloned()
    }

    /// Remembers the owner a worker's detail names.
    pub fn remember(&self, detail: &WorkerDetail) -> Option<Arc<str>> {
        self.remember_parts(detail.worker_id.as_str(), detail.owner.as_deref())
    }

    /// Remembers `owner` as the owner of the worker `worker` (a valid id; anything
    /// else is not remembered); returns it. Copies nothing when it is known already.
    pub fn remember_parts(&self, worker: &str, owner: Option<&str>) -> Option<Arc<str>> {
        let mut owners = self.owners();
        if let Some(known) = owners.get(worker)
            && known.as_deref() == owner
        {
            return known.clone();
        }
        let owner: Option<Arc<str>> = owner.map(Arc::from);
        let Ok(id) = WorkerId::new(worker) else {
            return owner;
        };
        if owners.len() >= OWNER_CACHE_CAPACITY && !owners.contains_key(worker) {
            owners.clear();
        }
        owners.insert(id, owner.clone());
        owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_protocol::{RuntimeId, Timestamp, WorkerStatus};

    fn detail(id: &str, owner: Option<&str>) -> WorkerDetail {
        WorkerDetail {
            worker_id: WorkerId::new(id).unwrap(),
            runtime_id: RuntimeId::new("r").unwrap(),
            profile: "echo".into(),
            label: None,
            status: WorkerStatus::Running,
            created_at: Timestamp("2026-01-01T00:00:00Z".into()),
            updated_at: Timestamp("2026-01-01T00:00:00Z".into()),
            exit: None,
            input_count: 0,
            output_bytes: 0,
            owner: owner.map(str::to_owned),
        }
    }

    #[test]
    fn remembers_owners_and_their_absence_within_a_bound() {
        let cache = OwnerCache::default();
        let a = WorkerId::new("a").unwrap();
        assert_eq!(cache.get(&a), None);
        cache.remember(&detail("a", Some("alice")));
        cache.remember(&detail("b", None));
        assert_eq!(cache.get(&a), Some(Some(Arc::from("alice"))));
        assert_eq!(cache.get(&WorkerId::new("b").unwrap()), Some(None));
        for i in 0..OWNER_CACHE_CAPACITY + 10 {
            cache.remember(&detail(&format!("w-{i}"), Some("x")));
        }
        assert!(cache.owners().len() <= OWNER_CACHE_CAPACITY);
    }
}
