//! The REST half: the [`RuntimeClient`] trait the registry depends on, and
//! [`HttpRuntimeClient`](crate::HttpRuntimeClient), its implementation over hyper-util's pooled client.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use switchyard_protocol::{
    CreateWorkerRequest, InputAccepted, InputRequest, ResizeRequest, ResizeResponse, RuntimeInfo,
    TranscriptPage, WorkerDetail, WorkerId, WorkerList, WorkerStatus, WorkerStatusResponse,
};

use crate::error::TransportError;
use crate::reason::shorten;

/// Decodes a runtime's successful answer as `T`, exactly as the typed calls of a
/// [`RuntimeClient`] do (`what` names `T` with its article: "a WorkerDetail"), for a
/// caller that holds the bytes of a `*_json` call and wants the typed value after
/// all.
pub fn decode_answer<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, TransportError> {
    serde_json::from_slice(body).map_err(|e| TransportError::Protocol {
        reason: format!("expected {what}: {}", shorten(&e.to_string())),
    })
}

/// A typed answer as the JSON a runtime would have sent (the `*_json` defaults).
fn encode_answer<T: Serialize>(value: &T) -> Result<Bytes, TransportError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| TransportError::Protocol {
            reason: format!("could not encode the answer: {}", shorten(&e.to_string())),
        })
}

/// Filter and page for listing a runtime's workers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct WorkerQuery {
    /// Only workers with this status.
    pub status: Option<WorkerStatus>,
    /// Only ids after this one.
    pub after: Option<WorkerId>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// A client for one remote runtime's command API. The registry holds it as a trait
/// object so it never names hyper, and unit tests mock it.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait::async_trait]
pub trait RuntimeClient: Send + Sync + 'static {
    /// `GET /v1/runtime`.
    async fn info(&self) -> Result<RuntimeInfo, TransportError>;
    /// `GET /v1/workers`.
    async fn list_workers(&self, query: &WorkerQuery) -> Result<WorkerList, TransportError>;
    /// `POST /v1/workers`.
    async fn create_worker(
        &self,
        request: &CreateWorkerRequest,
    ) -> Result<WorkerDetail, TransportError>;
    /// `GET /v1/workers/{id}`.
    async fn get_worker(&self, worker: &WorkerId) -> Result<WorkerDetail, TransportError>;
    /// `POST /v1/workers/{id}/input`.
    async fn input(
        &self,
        worker: &WorkerId,
        request: &InputRequest,
    ) -> Result<InputAccepted, TransportError>;
    /// `POST /v1/workers/{id}/resize`.
    async fn resize(
        &self,
        worker: &WorkerId,
        request: &ResizeRequest,
    ) -> Result<ResizeResponse, TransportError>;
    /// `POST /v1/workers/{id}/cancel`.
    async fn cancel(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, TransportError>;
    /// `POST /v1/workers/{id}/stop`.
    async fn stop(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, TransportError>;
    /// `DELETE /v1/workers/{id}`.
    async fn delete(&self, worker: &WorkerId) -> Result<(), TransportError>;
    /// `GET /v1/workers/{id}/transcript`.
    async fn transcript(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<TranscriptPage, TransportError>;

    // The same calls answered with the runtime's JSON as it arrived, for the
    // backend's relay path: a success with a JSON content type gives its body,
    // undecoded; everything else fails exactly as the typed call does. The defaults
    // encode the typed answers, so a client that only speaks typed values (a test
    // double, a client over another transport) needs nothing more.

    /// `GET /v1/workers`, the answer's JSON as sent.
    async fn list_workers_json(&self, query: &WorkerQuery) -> Result<Bytes, TransportError> {
        encode_answer(&self.list_workers(query).await?)
    }
    /// `GET /v1/workers/{id}`, the answer's JSON as sent.
    async fn get_worker_json(&self, worker: &WorkerId) -> Result<Bytes, TransportError> {
        encode_answer(&self.get_worker(worker).await?)
    }
    /// `POST /v1/workers/{id}/input`, the answer's JSON as sent.
    async fn input_json(
        &self,
        worker: &WorkerId,
        request: &InputRequest,
    ) -> Result<Bytes, TransportError> {
        encode_answer(&self.input(worker, request).await?)
    }
}
