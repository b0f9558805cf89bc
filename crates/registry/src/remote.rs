//! [`RemoteSource`]: a runtime in another process, reached through a
//! [`RuntimeClient`] (the registry never names hyper).

use std::sync::Arc;

use switchyard_protocol::RuntimeCursor;
use switchyard_protocol::{
    CreateWorkerRequest, InputAccepted, InputRequest, ResizeRequest, ResizeResponse, RuntimeInfo,
    RuntimeSourceKind, TranscriptPage, WorkerDetail, WorkerId, WorkerList, WorkerStatusResponse,
};
use switchyard_transport::{
    RuntimeClient, RuntimeEventsClient, TransportError, UpstreamEnd, UpstreamFrame, UpstreamStream,
    WorkerQuery,
};

use crate::error::SourceError;
use crate::source::{ResumePoint, RuntimeSource, SourceEnd, SourceEvents, SourceItem};

/// Strings that must never reach a client: the runtime's base URL, its host and
/// port, its token. Anything a remote runtime says (error messages) is scrubbed of
/// them, so even a runtime that echoes them cannot leak them through the backend.
#[derive(Clone, Default)]
pub struct Scrubber {
    needles: Vec<String>,
    numbers: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} needles)", self.needles.len())
    }
}

impl Scrubber {
    /// Scrubs each of `needles` (empty ones and very short ones are ignored).
    pub fn new(needles: impl IntoIterator<Item = String>) -> Self {
        let mut needles: Vec<String> = needles.into_iter().filter(|n| n.len() >= 4).collect();
        // Longest first, so a URL goes before the host inside it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Self {
            needles,
            numbers: Vec::new(),
        }
    }

    /// Also scrubs `number` (a port) wherever it stands as a whole number.
    pub fn with_number(mut self, number: u16) -> Self {
        self.numbers.push(number.to_string());
        self
    }

    /// `text` with every needle, and every whole number that is one of the numbers,
    /// replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), "[redacted]");
            }
        }
        if self.numbers.is_empty() {
            return text;
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
            out.push_str(&rest[..start]);
            let digits = &rest[start..];
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            let number = &digits[..end];
            if self.numbers.iter().any(|n| n == number) {
                out.push_str("[redacted]");
            } else {
                out.push_str(number);
            }
            rest = &digits[end..];
        }
        out.push_str(rest);
        out
    }
}

/// A remote runtime.
pub struct RemoteSource {
    client: Arc<dyn RuntimeClient>,
    events: Arc<dyn RuntimeEventsClient>,
    scrubber: Scrubber,
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
        }
    }

    fn map(&self, error: TransportError) -> SourceError {
        match SourceError::from(error) {
            SourceError::Rejected(mut detail) => {
                detail.message = self.scrubber.scrub(&detail.message);
                SourceError::Rejected(detail)
            }
            SourceError::Protocol(reason) => SourceError::Protocol(self.scrubber.scrub(&reason)),
            SourceError::Unsupported(what) => SourceError::Unsupported(self.scrubber.scrub(&what)),
            other => other,
        }
    }
}

#[async_trait::async_trait]
impl RuntimeSource for RemoteSource {
    fn kind(&self) -> RuntimeSourceKind {
        RuntimeSourceKind::Remote
    }

    async fn info(&self) -> Result<RuntimeInfo, SourceError> {
        self.client.info().await.map_err(|e| self.map(e))
    }

    async fn list_workers(&self, query: &WorkerQuery) -> Result<WorkerList, SourceError> {
        self.client
            .list_workers(query)
            .await
            .map_err(|e| self.map(e))
    }

    async fn create_worker(
        &self,
        request: &CreateWorkerRequest,
    ) -> Result<WorkerDetail, SourceError> {
        self.client
            .create_worker(request)
            .await
            .map_err(|e| self.map(e))
    }

    async fn get_worker(&self, worker: &WorkerId) -> Result<WorkerDetail, SourceError> {
        self.client
            .get_worker(worker)
            .await
            .map_err(|e| self.map(e))
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
        self.client
            .resize(worker, &size)
            .await
            .map_err(|e| self.map(e))
    }

    async fn cancel(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
        self.client.cancel(worker).await.map_err(|e| self.map(e))
    }

    async fn stop(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
        self.client.stop(worker).await.map_err(|e| self.map(e))
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
            .map_err(|e| self.map(e))
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
        }))
    }
}

/// A runtime's WebSocket stream seen as a source stream: runtime cursors are decoded
/// here (and never go further than the hub).
struct RemoteEvents {
    worker: WorkerId,
    stream: Box<dyn UpstreamStream>,
    scrubber: Scrubber,
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
                Ok(SourceItem::Event {
                    epoch: cursor.epoch.into(),
                    position: cursor.position,
                    event,
                })
            }
            Ok(UpstreamFrame::Reset(reason)) => Ok(SourceItem::Reset(reason)),
            Err(UpstreamEnd::WorkerGone) => Err(SourceEnd::WorkerGone),
            Err(UpstreamEnd::Shutdown) => Err(SourceEnd::Lost(SourceError::Unavailable)),
            Err(UpstreamEnd::SlowConsumer | UpstreamEnd::Closed { .. }) => {
                Err(SourceEnd::Lost(SourceError::Unreachable))
            }
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

    #[test]
    fn scrubs_urls_hosts_and_tokens_longest_first() {
        let s = Scrubber::new([
            "http://10.1.2.3:7701".to_owned(),
            "10.1.2.3:7701".to_owned(),
            "s3cret-token".to_owned(),
            "".to_owned(),
        ]);
        assert_eq!(
            s.scrub("GET http://10.1.2.3:7701/v1 failed for s3cret-token at 10.1.2.3:7701"),
            "GET [redacted]/v1 failed for [redacted] at [redacted]"
        );
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn scrubs_a_port_only_as_a_whole_number() {
        let s = Scrubber::new([]).with_number(80);
        assert_eq!(
            s.scrub("port 80, not 8080 or 800; :80/x"),
            "port [redacted], not 8080 or 800; :[redacted]/x"
        );
    }
}
