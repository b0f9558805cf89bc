//! Replacing the registry's runtimes while it serves (a configuration reload):
//! [`RuntimeRegistry::reconfigure`] takes the new list of runtimes, each either kept
//! as it runs or registered anew, and swaps the table in one step.
//!
//! - A kept runtime keeps its entry: its source (so its connections), its view, the
//!   owners seen and its health probe. Nothing about it changes.
//! - A runtime registered under an id that was already there replaces it: new
//!   source, fresh view and probe. The old entry is retired.
//! - A runtime that is no longer listed is removed, and its entry retired.
//!
//! Retiring stops the entry's probe; calls in flight keep the entry (and the source)
//! they started with and end on it, finishing or failing with a typed error. The
//! observation hub closes or resubscribes the channels of the runtimes that changed
//! ([`crate::ObservationHub::runtimes_changed`]).

use std::sync::Arc;

use switchyard_protocol::RuntimeId;

use crate::registry::{DuplicateRuntimeId, Entry, RegisteredRuntime, RuntimeRegistry, Table};
use crate::source::RuntimeSource;

/// What a reconfiguration wants for one runtime, in the new configuration's order.
#[derive(Debug)]
#[non_exhaustive]
pub enum Planned {
    /// Keep the runtime registered under this id exactly as it runs.
    Keep(RuntimeId),
    /// Register this runtime: added when its id is new, replacing the runtime of
    /// that id otherwise.
    Register(RegisteredRuntime),
}

/// Why a reconfiguration was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconfigureError {
    /// The plan names an id twice.
    #[error(transparent)]
    Duplicate(#[from] DuplicateRuntimeId),
    /// The plan keeps a runtime that is not registered.
    #[error("runtime id {0} is not registered, so it cannot be kept")]
    NotRegistered(RuntimeId),
}

/// What a reconfiguration did, by runtime id (each list in configuration order;
/// `removed` in the old configuration's).
#[derive(Clone, Default)]
pub struct Reconfigured {
    /// Ids that are new.
    pub added: Vec<RuntimeId>,
    /// Ids whose runtime was replaced by a new one.
    pub replaced: Vec<RuntimeId>,
    /// Ids that are gone.
    pub removed: Vec<RuntimeId>,
    /// Ids kept as they were.
    pub unchanged: Vec<RuntimeId>,
    /// The sources of the replaced and removed runtimes, for their owner to shut down
    /// (an embedded runtime's workers) once nothing routes to them.
    pub retired: Vec<(RuntimeId, Arc<dyn RuntimeSource>)>,
}

impl std::fmt::Debug for Reconfigured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconfigured")
            .field("added", &self.added)
            .field("replaced", &self.replaced)
            .field("removed", &self.removed)
            .field("unchanged", &self.unchanged)
            .finish_non_exhaustive()
    }
}

impl RuntimeRegistry {
    /// Puts the runtimes of `plan` in force, in its order, in one step: every call
    /// that starts afterwards sees the new table. New and replacing runtimes get a
    /// health probe (when probes run) and their view refreshed at once, in the
    /// background. An invalid plan changes nothing.
    pub fn reconfigure(&self, plan: Vec<Planned>) -> Result<Reconfigured, ReconfigureError> {
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        let old = table.clone();
        let mut done = Reconfigured::default();
        let mut entries = Vec::with_capacity(plan.len());
        let mut fresh = Vec::new();
        for planned in plan {
            match planned {
                Planned::Keep(id) => {
                    let entry = old
                        .get(&id)
                        .ok_or_else(|| ReconfigureError::NotRegistered(id.clone()))?;
                    done.unchanged.push(id);
                    entries.push(entry.clone());
                }
                Planned::Register(runtime) => {
                    let id = runtime.runtime_id.clone();
                    if old.get(&id).is_some() {
                        done.replaced.push(id);
                    } else {
                        done.added.push(id);
                    }
                    let entry = Arc::new(Entry::new(runtime, &self.calls));
                    fresh.push(entry.clone());
                    entries.push(entry);
                }
            }
        }
        let next = Table::new(entries)?;
        for entry in &old.entries {
            let kept = next
                .get(entry.id())
                .is_some_and(|now| Arc::ptr_eq(now, entry));
            if kept {
                continue;
            }
            if next.get(entry.id()).is_none() {
                done.removed.push(entry.id().clone());
            }
            entry.stop_probe();
            done.retired
                .push((entry.id().clone(), entry.runtime.source.clone()));
        }
        *table = Arc::new(next);
        drop(table);
        let interval = *self
            .probe_interval
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for entry in fresh {
            if let Some(interval) = interval {
                entry.start_probe(interval);
            }
            if tokio::runtime::Handle::try_current().is_ok() {
                tokio::spawn(async move {
                    let _ = entry.refresh().await;
                });
            }
        }
        Ok(done)
    }
}
