//! What a remote runtime's worker answers must satisfy before a client sees them,
//! and the relay path that passes the runtime's bytes on when they provably say
//! the same as the typed path would.
//!
//! The typed path decodes an answer, checks it ([`checked_detail`]: about the worker
//! asked for; no secret in an id; free text scrubbed), labels it with the
//! backend's runtime id and encodes it again. The relay path ([`relay_detail`],
//! [`relay_list`]) takes the bytes as they are when they are in canonical form
//! (see [`switchyard_protocol::relay`]: decoding and re-encoding would change
//! nothing but key order and white space, and every string is written without
//! escapes) and a byte search finds no secret in them; the runtime id is then
//! written over in place when it differs. Any other answer goes the typed way, so
//! both paths give the same answer for every body.

use std::ops::Range;

use bytes::Bytes;
use switchyard_protocol::relay::{canonical_detail, canonical_list, relabel};
use switchyard_protocol::{RuntimeId, RuntimeInfo, WorkerDetail, WorkerId, WorkerList};

use crate::error::SourceError;
use crate::scrub::Scrubber;
use crate::source::SeenWorkers;

/// The error for an answer about another worker than the one asked for.
fn another_worker() -> SourceError {
    SourceError::Protocol("it answered with another worker's detail".into())
}

/// The error for an id that names the runtime's address or token: it cannot be
/// redacted without changing which worker it names.
fn secret_in_id() -> SourceError {
    SourceError::Protocol("it answered with an id that names its address or token".into())
}

/// A worker detail from a remote runtime, made fit for a client: it must be about
/// `expected` when given, its id and owner must not name a secret, and its free text
/// (profile, label, timestamps) is scrubbed.
pub(crate) fn checked_detail(
    scrubber: &Scrubber,
    mut detail: WorkerDetail,
    expected: Option<&WorkerId>,
) -> Result<WorkerDetail, SourceError> {
    if expected.is_some_and(|w| *w != detail.worker_id) {
        return Err(another_worker());
    }
    if scrubber.names_a_secret(detail.worker_id.as_str())
        || scrubber.names_a_secret(detail.runtime_id.as_str())
        || detail
            .owner
            .as_deref()
            .is_some_and(|o| scrubber.names_a_secret(o))
    {
        return Err(secret_in_id());
    }
    scrub_in_place(scrubber, &mut detail.profile);
    if let Some(label) = &mut detail.label {
        scrub_in_place(scrubber, label);
    }
    scrub_in_place(scrubber, &mut detail.created_at.0);
    scrub_in_place(scrubber, &mut detail.updated_at.0);
    Ok(detail)
}

/// Scrubs `text` where it holds a secret; leaves it alone (no copy) otherwise, as
/// it does for every field of an honest runtime's worker.
fn scrub_in_place(scrubber: &Scrubber, text: &mut String) {
    if scrubber.finds(text.as_bytes()) {
        *text = scrubber.scrub(text);
    }
}

/// A page of workers from a remote runtime, each checked as by [`checked_detail`],
/// and its `next` too.
pub(crate) fn checked_list(
    scrubber: &Scrubber,
    list: WorkerList,
) -> Result<WorkerList, SourceError> {
    if list
        .next
        .as_ref()
        .is_some_and(|n| scrubber.names_a_secret(n.as_str()))
    {
        return Err(secret_in_id());
    }
    Ok(WorkerList {
        workers: list
            .workers
            .into_iter()
            .map(|w| checked_detail(scrubber, w, None))
            .collect::<Result<_, _>>()?,
        next: list.next,
    })
}

/// A remote runtime's info made fit for a client: its free text (display name,
/// version, profile names and descriptions, capabilities) scrubbed.
pub(crate) fn checked_info(scrubber: &Scrubber, mut info: RuntimeInfo) -> RuntimeInfo {
    scrub_in_place(scrubber, &mut info.display_name);
    scrub_in_place(scrubber, &mut info.version);
    for capability in &mut info.capabilities {
        scrub_in_place(scrubber, capability);
    }
    for profile in &mut info.profiles {
        scrub_in_place(scrubber, &mut profile.name);
        if let Some(description) = &mut profile.description {
            scrub_in_place(scrubber, description);
        }
    }
    info
}

// The relay memo (`relay_memo.rs`) replays the outcomes of `relay_detail` and
// `relay_list` for equal answers: they must stay functions of the scrubber (fixed
// per source), the bytes, the worker asked about and the label alone. Anything
// else they come to depend on must join the memo's key.

/// The relay of a worker detail answer about `worker`: the bytes to send, labelled
/// `as_runtime` (`seen` told the worker), or an answer about another worker; `None`
/// when the answer must take the typed path.
pub(crate) fn relay_detail(
    scrubber: &Scrubber,
    body: &Bytes,
    as_runtime: &RuntimeId,
    worker: &WorkerId,
    seen: SeenWorkers<'_>,
) -> Option<Result<Bytes, SourceError>> {
    let facts = canonical_detail(body)?;
    if scrubber.finds(body) {
        return None;
    }
    if facts.worker_id != worker.as_str() {
        return Some(Err(another_worker()));
    }
    seen(facts.worker_id, facts.owner);
    let span = facts.runtime_id.clone();
    Some(Ok(relabelled(body, &[span], as_runtime)))
}

/// The relay of a worker list answer: the bytes to send, every worker labelled
/// `as_runtime` (`seen` told each); `None` when it must take the typed path.
pub(crate) fn relay_list(
    scrubber: &Scrubber,
    body: &Bytes,
    as_runtime: &RuntimeId,
    seen: SeenWorkers<'_>,
) -> Option<Bytes> {
    let facts = canonical_list(body)?;
    if scrubber.finds(body) {
        return None;
    }
    let mut spans = Vec::with_capacity(facts.workers.len());
    for worker in &facts.workers {
        seen(worker.worker_id, worker.owner);
        spans.push(worker.runtime_id.clone());
    }
    Some(relabelled(body, &spans, as_runtime))
}

/// `body` with the runtime id at each span replaced by `as_runtime`: the same bytes,
/// not copied, when they already say it.
fn relabelled(body: &Bytes, spans: &[Range<usize>], as_runtime: &RuntimeId) -> Bytes {
    match relabel(body, spans, as_runtime.as_str()) {
        None => body.clone(),
        Some(bytes) => Bytes::from(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn scrubber() -> Scrubber {
        Scrubber::new(["tok-secret".to_owned(), "10.9.8.7".to_owned()]).with_number(7701)
    }

    fn detail(label: &str) -> Value {
        json!({
            "worker_id": "w-1", "runtime_id": "theirs", "profile": "echo",
            "label": label, "status": "running",
            "created_at": "2026-11-26T09:30:00.123Z", "updated_at": "2026-11-26T09:30:00.123Z",
            "exit": null, "input_count": 0, "output_bytes": 0, "owner": null
        })
    }

    fn relayed(body: &Value, worker: &str) -> Option<Result<Value, SourceError>> {
        let body = Bytes::from(body.to_string());
        let mut seen = Vec::new();
        let out = relay_detail(
            &scrubber(),
            &body,
            &RuntimeId::new("ours").unwrap(),
            &WorkerId::new(worker).unwrap(),
            &mut |id, owner| seen.push((id.to_owned(), owner.map(str::to_owned))),
        )?;
        Some(out.map(|b| {
            assert_eq!(seen, [("w-1".to_owned(), None)]);
            serde_json::from_slice(&b).unwrap()
        }))
    }

    #[test]
    fn a_clean_canonical_detail_is_relayed_under_the_backends_id() {
        let out = relayed(&detail("fine"), "w-1").unwrap().unwrap();
        let mut expected = detail("fine");
        expected["runtime_id"] = json!("ours");
        assert_eq!(out, expected);
    }

    #[test]
    fn a_detail_about_another_worker_is_a_protocol_error_on_both_paths() {
        let error = relayed(&detail("fine"), "w-2").unwrap().unwrap_err();
        assert_eq!(error, another_worker());
        let typed: WorkerDetail = serde_json::from_value(detail("fine")).unwrap();
        let expected = WorkerId::new("w-2").unwrap();
        assert_eq!(
            checked_detail(&scrubber(), typed, Some(&expected)).unwrap_err(),
            another_worker()
        );
    }

    #[test]
    fn secrets_send_the_answer_the_typed_way_which_scrubs_or_refuses() {
        for label in ["tok-secret", "at 10.9.8.7", "port 7701"] {
            assert!(relayed(&detail(label), "w-1").is_none(), "{label}");
            let typed: WorkerDetail = serde_json::from_value(detail(label)).unwrap();
            let checked = checked_detail(&scrubber(), typed, None).unwrap();
            assert!(
                checked.label.as_deref().unwrap().contains("[redacted]"),
                "{label}"
            );
        }
        let mut owned = detail("fine");
        owned["owner"] = json!("tok-secret");
        assert!(relayed(&owned, "w-1").is_none());
        let typed: WorkerDetail = serde_json::from_value(owned).unwrap();
        assert_eq!(
            checked_detail(&scrubber(), typed, None).unwrap_err(),
            secret_in_id()
        );
        // A count that happens to equal the port is not text: the typed path keeps it.
        let mut counted = detail("fine");
        counted["input_count"] = json!(7701);
        assert!(relayed(&counted, "w-1").is_none());
        let typed: WorkerDetail = serde_json::from_value(counted).unwrap();
        assert_eq!(
            checked_detail(&scrubber(), typed, None)
                .unwrap()
                .input_count,
            7701
        );
    }

    #[test]
    fn a_list_is_relayed_with_every_runtime_id_rewritten() {
        let body =
            Bytes::from(json!({"workers": [detail("a"), detail("b")], "next": null}).to_string());
        let mut seen = 0;
        let out = relay_list(
            &scrubber(),
            &body,
            &RuntimeId::new("ours").unwrap(),
            &mut |_, _| seen += 1,
        )
        .unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(seen, 2);
        assert_eq!(out["workers"][0]["runtime_id"], "ours");
        assert_eq!(out["workers"][1]["runtime_id"], "ours");
        assert_eq!(out["workers"][1]["label"], "b");
    }

    #[test]
    fn bytes_already_labelled_right_are_not_copied() {
        let body = Bytes::from(detail("x").to_string());
        let out = relay_detail(
            &scrubber(),
            &body,
            &RuntimeId::new("theirs").unwrap(),
            &WorkerId::new("w-1").unwrap(),
            &mut |_, _| {},
        )
        .unwrap()
        .unwrap();
        assert_eq!(out.as_ptr(), body.as_ptr());
    }
}
