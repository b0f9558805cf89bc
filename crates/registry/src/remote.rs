//! [`RemoteSource`]: a runtime in another process, reached through a
//! [`RuntimeClient`] (the registry never names hyper).

use std::sync::Arc;

use bytes::Bytes;
use switchyard_protocol::relay::canonical_input_accepted;
use switchyard_protocol::{
    CreateWorkerRequest, EventKind, InputAccepted, InputRequest, ResizeRequest, ResizeResponse,
    RuntimeCursor, RuntimeId, RuntimeInfo, RuntimeSourceKind, TranscriptPage, WorkerDetail,
    WorkerId, WorkerList, WorkerStatusResponse,
};
use switchyard_transport::{
    RuntimeClient, RuntimeEventsClient, TransportError, UpstreamEnd, UpstreamFrame, UpstreamStream,
    WorkerQuery, decode_answer,
};

use crate::error::SourceError;
use crate::event_check::{checked_event, checked_transcript};
use crate::relay::{checked_detail, checked_info, checked_list, relay_detail, relay_list};
use crate::relay_memo::{Lookup, SeenSpans, SourceMemo, span_in};
use crate::scrub::Scrubber;
use crate::source::{
    ResumePoint, RuntimeSource, SeenWorkers, SourceEnd, SourceEvents, SourceItem, encode,
    labelled_detail, labelled_list,
};

/// A runtime reached over the Runtime API (`switchyard runtime`, or a
/// `RuntimeServer`): the transport's REST and event clients, with every text the
/// runtime sends scrubbed of its URL, host, port and token before a client sees it,
/// and every answer checked to be about the worker asked about.
///
/// Most programs do not build one by hand: `switchyard_server::remote_runtime` turns
/// a `[[remote]]`'s settings into a [`crate::RegisteredRuntime`] with a
/// `RemoteSource` whose [`Scrubber`] knows everything that must not reach a client
/// (the token, the base URL, `host:port`, the port). Built directly, the scrubber is
/// the caller's to fill in.
pub struct RemoteSource {
    client: Arc<dyn RuntimeClient>,
    events: Arc<dyn RuntimeEventsClient>,
    scrubber: Scrubber,
    memo: SourceMemo,
}

impl std::fmt::Debug for RemoteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSource").finish_non_exhaustive()
    }
}

impl RemoteSource {
    /// A source over `client` (commands) and `events` (event streams); `scrubber`
    /// holds what must never be repeated to clients.
    pub fn new(
        client: Arc<dyn RuntimeClient>,
        events: Arc<dyn RuntimeEventsClient>,
        scrubber: Scrubber,
    ) -> Self {
        Self {
            client,
            events,
            scrubber,
            memo: SourceMemo::default(),
        }
    }

    fn map(&self, error: TransportError) -> SourceError {
        match SourceError::from(error) {
            SourceError::Rejected(mut detail) => {
                detail.message = self.scrubber.scrub(&detail.message);
                // An id cannot be redacted; one that names a secret is left out.
                if detail
                    .worker_id
                    .as_ref()
                    .is_some_and(|w| self.scrubber.names_a_secret(w.as_str()))
                {
                    detail.worker_id = None;
                }
                SourceError::Rejected(detail)
            }
            SourceError::Protocol(reason) => SourceError::Protocol(self.scrubber.scrub(&reason)),
            SourceError::Unsupported(what) => SourceError::Unsupported(self.scrubber.scrub(&what)),
            // Never sent to clients, but logged: logs never hold the token either.
            SourceError::RuntimeInternal(message) => {
                SourceError::RuntimeInternal(self.scrubber.scrub(&message))
            }
            other => other,
        }
    }
}

/// An answer about one worker must name the worker asked about: any other id (a
/// lying runtime's, which could spell its token) is a protocol error, never relayed.
fn for_worker(asked: &WorkerId, answered: &WorkerId) -> Result<(), SourceError> {
    if answered == asked {
        Ok(())
    } else {
        Err(SourceError::Protocol(
            "the runtime answered about another worker than the one asked".into(),
        ))
    }
}

#[async_trait::async_trait]
impl RuntimeSource for RemoteSource {
    fn kind(&self) -> RuntimeSourceKind {
        RuntimeSourceKind::Remote
    }

    /// Each method is one request of the REST client, bounded by its connect and
    /// request timeouts (the WebSocket's handshake by its own).
    fn bounds_each_call(&self) -> bool {
        true
    }

    async fn info(&self) -> Result<RuntimeInfo, SourceError> {
        self.client
            .info()
            .await
            .map(|info| checked_info(&self.scrubber, info))
            .map_err(|e| self.map(e))
    }

    async fn list_workers(&self, query: &WorkerQuery) -> Result<WorkerList, SourceError> {
        let list = self
            .client
            .list_workers(query)
            .await
            .map_err(|e| self.map(e))?;
        checked_list(&self.scrubber, list)
    }

    async fn create_worker(
        &self,
        request: &CreateWorkerRequest,
    ) -> Result<WorkerDetail, SourceError> {
        let detail = self
            .client
            .create_worker(request)
            .await
            .map_err(|e| self.map(e))?;
        checked_detail(&self.scrubber, detail, None)
    }

    async fn get_worker(&self, worker: &WorkerId) -> Result<WorkerDetail, SourceError> {
        let detail = self
            .client
            .get_worker(worker)
            .await
            .map_err(|e| self.map(e))?;
        checked_detail(&self.scrubber, detail, Some(worker))
    }

    async fn input(&self, worker: &WorkerId, text: String) -> Result<InputAccepted, SourceError> {
        self.client
            .input(worker, &InputRequest { text })
            .await
            .map_err(|e| self.map(e))
    }

    async fn resize(
        &self,
        worker: &WorkerId,
        size: ResizeRequest,
    ) -> Result<ResizeResponse, SourceError> {
        let resized = self
            .client
            .resize(worker, &size)
            .await
            .map_err(|e| self.map(e))?;
        for_worker(worker, &resized.worker_id)?;
        Ok(resized)
    }

    async fn cancel(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
        let answer = self.client.cancel(worker).await.map_err(|e| self.map(e))?;
        for_worker(worker, &answer.worker_id)?;
        Ok(answer)
    }

    async fn stop(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
        let answer = self.client.stop(worker).await.map_err(|e| self.map(e))?;
        for_worker(worker, &answer.worker_id)?;
        Ok(answer)
    }

    async fn delete(&self, worker: &WorkerId) -> Result<(), SourceError> {
        self.client.delete(worker).await.map_err(|e| self.map(e))
    }

    async fn transcript(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<TranscriptPage, SourceError> {
        self.client
            .transcript(worker, after, limit)
            .await
            .map(|page| checked_transcript(&self.scrubber, page))
            .map_err(|e| self.map(e))
    }

    async fn list_workers_json(
        &self,
        as_runtime: &RuntimeId,
        query: &WorkerQuery,
        seen: SeenWorkers<'_>,
    ) -> Result<Bytes, SourceError> {
        let body = self
            .client
            .list_workers_json(query)
            .await
            .map_err(|e| self.map(e))?;
        let relayed = match self.memo.list(query, as_runtime, &body, seen) {
            Lookup::Hit(relayed) => return Ok(relayed),
            Lookup::Miss { remember: false } => relay_list(&self.scrubber, &body, as_runtime, seen),
            Lookup::Miss { remember: true } => {
                let mut told = Vec::with_capacity(8);
                let relayed = relay_list(&self.scrubber, &body, as_runtime, &mut |id, owner| {
                    told.push(spans_of(&body, id, owner));
                    seen(id, owner);
                });
                if let (Some(relayed), Some(told)) = (&relayed, told.into_iter().collect()) {
                    self.memo
                        .remember_list(query, as_runtime, &body, relayed, told);
                }
                relayed
            }
        };
        if let Some(relayed) = relayed {
            return Ok(relayed);
        }
        let list = decode_answer::<WorkerList>(&body, "a WorkerList").map_err(|e| self.map(e))?;
        labelled_list(checked_list(&self.scrubber, list)?, as_runtime, seen)
    }

    async fn get_worker_json(
        &self,
        as_runtime: &RuntimeId,
        worker: &WorkerId,
        seen: SeenWorkers<'_>,
    ) -> Result<Bytes, SourceError> {
        let body = self
            .client
            .get_worker_json(worker)
            .await
            .map_err(|e| self.map(e))?;
        let relayed = match self.memo.detail(worker, as_runtime, &body, seen) {
            Lookup::Hit(relayed) => return Ok(relayed),
            Lookup::Miss { remember: false } => {
                relay_detail(&self.scrubber, &body, as_runtime, worker, seen)
            }
            Lookup::Miss { remember: true } => {
                let mut told = Vec::with_capacity(1);
                let relayed = relay_detail(
                    &self.scrubber,
                    &body,
                    as_runtime,
                    worker,
                    &mut |id, owner| {
                        told.push(spans_of(&body, id, owner));
                        seen(id, owner);
                    },
                );
                if let (Some(Ok(relayed)), Some(told)) = (&relayed, told.into_iter().collect()) {
                    self.memo
                        .remember_detail(worker, as_runtime, &body, relayed, told);
                }
                relayed
            }
        };
        if let Some(relayed) = relayed {
            return relayed;
        }
        let detail =
            decode_answer::<WorkerDetail>(&body, "a WorkerDetail").map_err(|e| self.map(e))?;
        let detail = checked_detail(&self.scrubber, detail, Some(worker))?;
        labelled_detail(detail, as_runtime, seen)
    }

    async fn input_json(&self, worker: &WorkerId, text: String) -> Result<Bytes, SourceError> {
        let body = self
            .client
            .input_json(worker, &InputRequest { text })
            .await
            .map_err(|e| self.map(e))?;
        if canonical_input_accepted(&body) {
            return Ok(body);
        }
        let accepted =
            decode_answer::<InputAccepted>(&body, "an InputAccepted").map_err(|e| self.map(e))?;
        encode(&accepted)
    }

    async fn subscribe(
        &self,
        worker: &WorkerId,
        resume: Option<&ResumePoint>,
    ) -> Result<Box<dyn SourceEvents>, SourceError> {
        let cursor = resume.map(|point| {
            RuntimeCursor {
                epoch: point.epoch.to_string(),
                worker_id: worker.clone(),
                position: point.position,
            }
            .encode()
        });
        let stream = self
            .events
            .subscribe(worker, cursor, resume.is_some())
            .await
            .map_err(|e| self.map(e))?;
        Ok(Box::new(RemoteEvents {
            worker: worker.clone(),
            stream,
            scrubber: self.scrubber.clone(),
            snapshot_due: resume.is_none(),
        }))
    }
}

/// A worker and its owner, told as seen by a relay check, as spans of the answer
/// it read (for the memo); `None` if either is not part of it.
fn spans_of(answer: &[u8], worker: &str, owner: Option<&str>) -> Option<SeenSpans> {
    let owner = match owner {
        Some(owner) => Some(span_in(answer, owner)?),
        None => None,
    };
    Some((span_in(answer, worker)?, owner))
}

/// A runtime's WebSocket stream seen as a source stream: runtime cursors are decoded
/// here (and never go further than the hub).
struct RemoteEvents {
    worker: WorkerId,
    stream: Box<dyn UpstreamStream>,
    scrubber: Scrubber,
    /// The next event must be a snapshot: the stream was opened without a cursor,
    /// or the runtime just sent a reset. A runtime that sends anything else first
    /// would leave viewers with events and no state to apply them to.
    snapshot_due: bool,
}

#[async_trait::async_trait]
impl SourceEvents for RemoteEvents {
    async fn next(&mut self) -> Result<SourceItem, SourceEnd> {
        match self.stream.next().await {
            Ok(UpstreamFrame::Event { cursor, event }) => {
                let cursor = RuntimeCursor::decode_for(&cursor, &self.worker).map_err(|_| {
                    SourceEnd::Lost(SourceError::Protocol(
                        "the runtime sent an event with a cursor that is not its own".into(),
                    ))
                })?;
                // The epoch goes into the backend's cursors, which clients hold: a
                // lying runtime must not pass its token or address out through it.
                if self.scrubber.names_a_secret(&cursor.epoch) {
                    return Err(SourceEnd::Lost(SourceError::Protocol(
                        "the runtime's cursor names its address or credentials".into(),
                    )));
                }
                if self.snapshot_due {
                    if event.kind() != EventKind::Snapshot {
                        return Err(SourceEnd::Lost(SourceError::Protocol(
                            "the runtime's stream did not begin with a snapshot".into(),
                        )));
                    }
                    self.snapshot_due = false;
                }
                let event =
                    checked_event(&self.scrubber, &self.worker, event).map_err(SourceEnd::Lost)?;
                Ok(SourceItem::Event {
                    epoch: cursor.epoch.into(),
                    position: cursor.position,
                    event,
                })
            }
            Ok(UpstreamFrame::Reset(reason)) => {
                self.snapshot_due = true;
                Ok(SourceItem::Reset(reason))
            }
            Err(UpstreamEnd::WorkerGone) => Err(SourceEnd::WorkerGone),
            Err(UpstreamEnd::Shutdown) => Err(SourceEnd::Lost(SourceError::Unavailable)),
            Err(UpstreamEnd::SlowConsumer) => Err(SourceEnd::Lost(SourceError::FellBehind)),
            Err(UpstreamEnd::Closed { .. }) => Err(SourceEnd::Lost(SourceError::Unreachable)),
            Err(UpstreamEnd::Malformed { reason }) => Err(SourceEnd::Lost(SourceError::Protocol(
                self.scrubber.scrub(&reason),
            ))),
            Err(UpstreamEnd::Lost(error)) => Err(SourceEnd::Lost(SourceError::from(error))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_protocol::ErrorCode;
    use switchyard_transport::{MockRuntimeClient, MockRuntimeEventsClient};

    fn detail(id: &str) -> serde_json::Value {
        json!({
            "worker_id": id, "runtime_id": "theirs", "profile": "echo", "label": null,
            "status": "running", "created_at": "2026-12-01T06:00:00.000Z",
            "updated_at": "2026-12-01T06:00:00.000Z", "exit": null, "input_count": 0,
            "output_bytes": 0, "owner": "alice"
        })
    }

    /// A source over `client` (commands only), whose secret is `tok-secret`.
    fn commanding(client: MockRuntimeClient) -> RemoteSource {
        RemoteSource::new(
            Arc::new(client),
            Arc::new(MockRuntimeEventsClient::new()),
            Scrubber::new(["tok-secret".to_owned()]),
        )
    }

    /// A source over `events` (streams only), whose secret is `tok-secret`.
    fn streaming(events: MockRuntimeEventsClient) -> RemoteSource {
        RemoteSource::new(
            Arc::new(MockRuntimeClient::new()),
            Arc::new(events),
            Scrubber::new(["tok-secret".to_owned()]),
        )
    }

    /// A source whose runtime answers every detail and list request with these bytes.
    fn answering(detail: Bytes, list: Bytes) -> RemoteSource {
        let mut client = MockRuntimeClient::new();
        client
            .expect_get_worker_json()
            .returning(move |_| Ok(detail.clone()));
        client
            .expect_list_workers_json()
            .returning(move |_| Ok(list.clone()));
        commanding(client)
    }

    type Told = Vec<(String, Option<String>)>;

    fn recorder(told: &mut Told) -> impl FnMut(&str, Option<&str>) + Send + '_ {
        |w, o| told.push((w.to_owned(), o.map(str::to_owned)))
    }

    /// The source's relayed detail and list answers are remembered, and an equal
    /// answer is then found in the memo with what its check told as seen.
    #[tokio::test]
    async fn relayed_answers_are_remembered_with_what_was_seen() {
        let one = Bytes::from(detail("w-1").to_string());
        let page = Bytes::from(
            json!({"workers": [detail("w-1"), detail("w-2")], "next": null}).to_string(),
        );
        let source = answering(one.clone(), page.clone());
        let (ours, w1) = (
            RuntimeId::new("ours").unwrap(),
            WorkerId::new("w-1").unwrap(),
        );
        let query = WorkerQuery::default();

        let mut told = Told::new();
        let relayed = source
            .get_worker_json(&ours, &w1, &mut recorder(&mut told))
            .await
            .unwrap();
        assert_eq!(told, [("w-1".into(), Some("alice".into()))]);
        let mut again = Told::new();
        match source
            .memo
            .detail(&w1, &ours, &one, &mut recorder(&mut again))
        {
            Lookup::Hit(bytes) => assert_eq!(bytes, relayed),
            other => panic!("not remembered: {other:?}"),
        }
        assert_eq!(again, told);

        let mut told = Told::new();
        let relayed = source
            .list_workers_json(&ours, &query, &mut recorder(&mut told))
            .await
            .unwrap();
        assert_eq!(told.len(), 2);
        let mut again = Told::new();
        match source
            .memo
            .list(&query, &ours, &page, &mut recorder(&mut again))
        {
            Lookup::Hit(bytes) => assert_eq!(bytes, relayed),
            other => panic!("not remembered: {other:?}"),
        }
        assert_eq!(again, told);
        // A second request is answered from the memo with the same bytes.
        let twice = source
            .list_workers_json(&ours, &query, &mut |_, _| {})
            .await
            .unwrap();
        assert_eq!(twice, relayed);
    }

    /// What a runtime says of itself reaches clients scrubbed, profile
    /// descriptions included.
    #[tokio::test]
    async fn a_runtimes_info_is_scrubbed() {
        let mut info =
            switchyard_runtime::Runtime::in_memory(switchyard_runtime::RuntimeConfig::new(
                RuntimeId::new("theirs").unwrap(),
                "at tok-secret",
            ))
            .await
            .info();
        info.profiles[0].description = Some("reach me with tok-secret".into());
        info.version = "1.0 tok-secret".into();
        let mut client = MockRuntimeClient::new();
        client.expect_info().returning(move || Ok(info.clone()));
        let source = commanding(client);
        let info = source.info().await.unwrap();
        let text = serde_json::to_string(&info).unwrap();
        assert!(!text.contains("tok-secret"), "{text}");
        assert_eq!(
            info.profiles[0].description.as_deref(),
            Some("reach me with [redacted]")
        );
        assert_eq!(info.display_name, "at [redacted]");
    }

    /// A runtime's `500 internal` message goes to the backend's log only, and
    /// without the secrets.
    #[tokio::test]
    async fn a_runtimes_internal_error_message_is_scrubbed_for_the_log() {
        let mut client = MockRuntimeClient::new();
        client.expect_get_worker().returning(|_| {
            Err(TransportError::Runtime {
                status: 500,
                detail: switchyard_protocol::ErrorDetail::new(
                    switchyard_protocol::ErrorCode::Internal,
                    "failed with tok-secret (request r-1)",
                ),
            })
        });
        let source = commanding(client);
        let error = source
            .get_worker(&WorkerId::new("w-1").unwrap())
            .await
            .unwrap_err();
        assert_eq!(
            error,
            SourceError::RuntimeInternal("failed with [redacted] (request r-1)".into())
        );
    }

    /// A runtime's error naming a secret in its message or its worker id reaches
    /// clients without it.
    #[tokio::test]
    async fn a_runtimes_errors_are_scrubbed_worker_id_included() {
        let mut client = MockRuntimeClient::new();
        client.expect_get_worker().returning(|_| {
            let mut detail = switchyard_protocol::ErrorDetail::new(
                switchyard_protocol::ErrorCode::WorkerNotFound,
                "no worker tok-secret here",
            );
            detail.worker_id = Some(WorkerId::new("tok-secret").unwrap());
            Err(TransportError::Runtime {
                status: 404,
                detail,
            })
        });
        let source = commanding(client);
        let error = source
            .get_worker(&WorkerId::new("w-1").unwrap())
            .await
            .unwrap_err();
        let SourceError::Rejected(detail) = error else {
            panic!("expected a rejection, got {error:?}");
        };
        assert_eq!(detail.message, "no worker [redacted] here");
        assert_eq!(detail.worker_id, None);
    }

    /// Upstream frames played in order, then the end of the stream.
    struct Script(std::collections::VecDeque<UpstreamFrame>);

    #[async_trait::async_trait]
    impl UpstreamStream for Script {
        async fn next(&mut self) -> Result<UpstreamFrame, UpstreamEnd> {
            self.0.pop_front().ok_or(UpstreamEnd::Shutdown)
        }
    }

    /// A stream must begin with a snapshot when it was opened without a cursor, and
    /// go on with one after a reset: anything else first is the runtime's protocol
    /// error (viewers would get events with no state to apply them to).
    #[tokio::test]
    async fn a_stream_begins_with_a_snapshot_when_one_is_due() {
        let worker = WorkerId::new("w-1").unwrap();
        let event = |kind: &str| {
            let json = match kind {
                "snapshot" => {
                    json!({"kind": "snapshot", "worker": detail("w-1"), "transcript": []})
                }
                _ => json!({"kind": "output", "sequence": 1, "stream": "stdout", "text": "x"}),
            };
            let raw = serde_json::value::to_raw_value(&json).unwrap();
            UpstreamFrame::Event {
                cursor: RuntimeCursor {
                    epoch: "e1".into(),
                    worker_id: WorkerId::new("w-1").unwrap(),
                    position: 1,
                }
                .encode(),
                event: switchyard_protocol::EventPayload::from_json(raw).unwrap(),
            }
        };
        let frame = |name: &str| match name {
            "reset" => UpstreamFrame::Reset(switchyard_protocol::ResetReason::CursorExpired),
            kind => event(kind),
        };
        let check = |resumed: bool, frames: &[&str], expected: &[&str]| {
            let names = frames.join(", ");
            let frames: std::collections::VecDeque<_> = frames.iter().map(|f| frame(f)).collect();
            let mut events = MockRuntimeEventsClient::new();
            events
                .expect_subscribe()
                .return_once(move |_, _, _| Ok(Box::new(Script(frames))));
            let source = streaming(events);
            let resume = resumed.then(|| ResumePoint {
                epoch: "e1".into(),
                position: 0,
            });
            let worker = worker.clone();
            let expected: Vec<String> = expected.iter().map(|e| (*e).to_owned()).collect();
            async move {
                let mut stream = source.subscribe(&worker, resume.as_ref()).await.unwrap();
                let mut seen = Vec::new();
                for _ in 0..expected.len() {
                    seen.push(match stream.next().await {
                        Ok(SourceItem::Reset(_)) => "reset".to_owned(),
                        Ok(SourceItem::Event { event, .. }) => format!("{:?}", event.kind()),
                        Err(SourceEnd::Lost(SourceError::Protocol(reason))) => {
                            assert!(reason.contains("snapshot"), "{reason}");
                            "protocol error".to_owned()
                        }
                        Err(other) => format!("{other:?}"),
                    });
                }
                assert_eq!(seen, expected, "resumed: {resumed}, frames: {names}");
            }
        };
        check(false, &["output"], &["protocol error"]).await;
        check(false, &["snapshot", "output"], &["Snapshot", "Output"]).await;
        check(true, &["output"], &["Output"]).await;
        check(true, &["reset", "output"], &["reset", "protocol error"]).await;
        check(
            true,
            &["reset", "snapshot", "output"],
            &["reset", "Snapshot", "Output"],
        )
        .await;
    }

    /// Cancel, stop and resize answers name a worker: one that is not the worker
    /// asked about (here a lying runtime's token as the id) is a protocol error,
    /// never relayed; the right id passes.
    #[tokio::test]
    async fn command_answers_about_another_worker_are_refused() {
        let asked = WorkerId::new("w-1").unwrap();
        for (answered, passes) in [("w-1", true), ("tok-secret", false), ("w-2", false)] {
            let answered = WorkerId::new(answered).unwrap();
            let mut client = MockRuntimeClient::new();
            let id = answered.clone();
            client.expect_cancel().returning(move |_| {
                Ok(WorkerStatusResponse {
                    worker_id: id.clone(),
                    status: switchyard_protocol::WorkerStatus::Running,
                })
            });
            let id = answered.clone();
            client.expect_stop().returning(move |_| {
                Ok(WorkerStatusResponse {
                    worker_id: id.clone(),
                    status: switchyard_protocol::WorkerStatus::Stopped,
                })
            });
            let id = answered.clone();
            client.expect_resize().returning(move |_, size| {
                Ok(ResizeResponse {
                    worker_id: id.clone(),
                    cols: size.cols,
                    rows: size.rows,
                })
            });
            let source = commanding(client);
            let size = ResizeRequest { cols: 80, rows: 24 };
            let outcomes = [
                source.cancel(&asked).await.map(|a| a.worker_id),
                source.stop(&asked).await.map(|a| a.worker_id),
                source.resize(&asked, size).await.map(|a| a.worker_id),
            ];
            for outcome in outcomes {
                match outcome {
                    Ok(id) => assert!(passes && id == asked, "{answered}: {id}"),
                    Err(SourceError::Protocol(reason)) => {
                        assert!(!passes, "{answered}: {reason}");
                        assert!(!reason.contains("tok-secret"), "{reason}");
                    }
                    Err(other) => panic!("{answered}: {other:?}"),
                }
            }
        }
    }

    /// A stream that ends at once, with `0`.
    struct Ending(Option<UpstreamEnd>);

    #[async_trait::async_trait]
    impl UpstreamStream for Ending {
        async fn next(&mut self) -> Result<UpstreamFrame, UpstreamEnd> {
            Err(self.0.take().unwrap_or(UpstreamEnd::Shutdown))
        }
    }

    /// How the runtime ended its stream is what viewers are told (`upstream`
    /// `lost`): in particular a cut-off as too slow says the backend fell behind,
    /// not that the runtime may be down.
    #[tokio::test]
    async fn each_way_a_stream_ends_is_told_as_what_it_is() {
        let worker = WorkerId::new("w-1").unwrap();
        let cases = [
            (UpstreamEnd::WorkerGone, None),
            (UpstreamEnd::Shutdown, Some(ErrorCode::RuntimeUnavailable)),
            (
                UpstreamEnd::SlowConsumer,
                Some(ErrorCode::RuntimeUnreachable),
            ),
            (
                UpstreamEnd::Closed { code: Some(1011) },
                Some(ErrorCode::RuntimeUnreachable),
            ),
            (
                UpstreamEnd::Malformed {
                    reason: "bad".into(),
                },
                Some(ErrorCode::RuntimeProtocolError),
            ),
        ];
        for (end, expected) in cases {
            let shown = format!("{end:?}");
            let slow = end == UpstreamEnd::SlowConsumer;
            let mut events = MockRuntimeEventsClient::new();
            events
                .expect_subscribe()
                .return_once(move |_, _, _| Ok(Box::new(Ending(Some(end)))));
            let source = streaming(events);
            let mut stream = source.subscribe(&worker, None).await.unwrap();
            match (stream.next().await, expected) {
                (Err(SourceEnd::WorkerGone), None) => {}
                (Err(SourceEnd::Lost(error)), Some(code)) => {
                    assert_eq!(error.code(), code, "{shown}");
                    let message = error.to_string();
                    assert_eq!(message.contains("fell behind"), slow, "{shown}: {message}");
                    assert_eq!(
                        message.contains("may be down"),
                        !slow && code == ErrorCode::RuntimeUnreachable,
                        "{shown}: {message}"
                    );
                }
                (other, _) => panic!("{shown}: {other:?}"),
            }
        }
    }

    /// The runtime's epoch goes into the cursors clients hold: one that names the
    /// runtime's token (a lying runtime passing it out) ends the stream as a
    /// protocol error; an ordinary epoch goes through.
    #[tokio::test]
    async fn an_epoch_that_names_a_secret_ends_the_stream() {
        let worker = WorkerId::new("w-1").unwrap();
        for (epoch, passes) in [("e1", true), ("tok0secret0tok", false)] {
            let snapshot = json!({"kind": "snapshot", "worker": detail("w-1"), "transcript": []});
            let frame = UpstreamFrame::Event {
                cursor: RuntimeCursor {
                    epoch: epoch.into(),
                    worker_id: worker.clone(),
                    position: 1,
                }
                .encode(),
                event: switchyard_protocol::EventPayload::from_json(
                    serde_json::value::to_raw_value(&snapshot).unwrap(),
                )
                .unwrap(),
            };
            let mut events = MockRuntimeEventsClient::new();
            events
                .expect_subscribe()
                .return_once(move |_, _, _| Ok(Box::new(Script([frame].into()))));
            let source = RemoteSource::new(
                Arc::new(MockRuntimeClient::new()),
                Arc::new(events),
                Scrubber::new(["tok0secret0tok".to_owned()]),
            );
            let mut stream = source.subscribe(&worker, None).await.unwrap();
            match stream.next().await {
                Ok(SourceItem::Event { .. }) => assert!(passes, "{epoch}"),
                Err(SourceEnd::Lost(SourceError::Protocol(reason))) => {
                    assert!(!passes, "{epoch}");
                    assert!(!reason.contains("tok0secret0tok"), "{reason}");
                }
                other => panic!("{epoch}: {other:?}"),
            }
        }
    }
}
