//! The canonical form written as serde types: the specification the scanner
//! ([`super::scan`]) is tested against. Strict (`deny_unknown_fields`, every
//! `Option` present), and `&str` fields only decode from strings without escapes.

use serde::{Deserialize, Deserializer};

use super::{DetailFacts, ListFacts, span_of};
use crate::ids::{RuntimeId, WorkerId};
use crate::worker::WorkerStatus;

/// [`super::canonical_detail`], by serde.
pub(super) fn detail(body: &[u8]) -> Option<DetailFacts<'_>> {
    let view: DetailView<'_> = serde_json::from_slice(body).ok()?;
    view.facts(body)
}

/// [`super::canonical_list`], by serde.
pub(super) fn list(body: &[u8]) -> Option<ListFacts<'_>> {
    let view: ListView<'_> = serde_json::from_slice(body).ok()?;
    if let Some(next) = view.next {
        WorkerId::check(next).ok()?;
    }
    let workers = view
        .workers
        .iter()
        .map(|w| w.facts(body))
        .collect::<Option<Vec<_>>>()?;
    Some(ListFacts {
        workers,
        next: view.next,
    })
}

/// [`super::canonical_input_accepted`], by serde.
pub(super) fn input_accepted(body: &[u8]) -> bool {
    serde_json::from_slice::<InputAcceptedView>(body).is_ok()
}

/// Deserializes an `Option` that must be present (as a value or `null`): serde's
/// derive otherwise treats a missing `Option` field as `None`.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// `WorkerDetail`, borrowed: a `&str` only decodes from a string without escapes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // fields are read by serde to check them
struct DetailView<'a> {
    worker_id: &'a str,
    runtime_id: &'a str,
    profile: &'a str,
    #[serde(borrow, deserialize_with = "present")]
    label: Option<&'a str>,
    status: WorkerStatus,
    created_at: &'a str,
    updated_at: &'a str,
    #[serde(deserialize_with = "present")]
    exit: Option<ExitView>,
    input_count: u64,
    output_bytes: u64,
    #[serde(borrow, deserialize_with = "present")]
    owner: Option<&'a str>,
}

impl<'a> DetailView<'a> {
    fn facts(&self, body: &[u8]) -> Option<DetailFacts<'a>> {
        WorkerId::check(self.worker_id).ok()?;
        RuntimeId::check(self.runtime_id).ok()?;
        Some(DetailFacts {
            worker_id: self.worker_id,
            owner: self.owner,
            runtime_id: span_of(body, self.runtime_id)?,
        })
    }
}

/// `ExitInfo`, strict.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ExitView {
    #[serde(deserialize_with = "present")]
    code: Option<i32>,
    #[serde(deserialize_with = "present")]
    signal: Option<i32>,
}

/// `WorkerList`, borrowed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListView<'a> {
    #[serde(borrow)]
    workers: Vec<DetailView<'a>>,
    #[serde(borrow, deserialize_with = "present")]
    next: Option<&'a str>,
}

/// `InputAccepted`, strict.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct InputAcceptedView {
    sequence: u64,
}
