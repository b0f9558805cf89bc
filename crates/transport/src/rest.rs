//! The REST half: the [`RuntimeClient`] trait the registry depends on, and
//! [`HttpRuntimeClient`](crate::HttpRuntimeClient), its implementation over hyper-util's pooled client.

use switchyard_protocol::{
    CreateWorkerRequest, InputAccepted, InputRequest, ResizeRequest, ResizeResponse, RuntimeInfo,
    TranscriptPage, WorkerDetail, WorkerId, WorkerList, WorkerStatus, WorkerStatusResponse,
};

use crate::error::TransportError;

/// Filter and page for listing a runtime's workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
}
