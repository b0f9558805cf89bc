//! [`RuntimeSource`]: what a kind of runtime implements to join the registry.

use switchyard_protocol::{
    CreateWorkerRequest, InputAccepted, RuntimeInfo, RuntimeSourceKind, TranscriptPage,
    WorkerDetail, WorkerId, WorkerList, WorkerStatusResponse,
};
use switchyard_transport::WorkerQuery;

use crate::error::SourceError;

/// One runtime as the registry drives it. Implement this to add a kind of runtime
/// (the registry never knows how a source reaches its runtime).
///
/// Every method is one call to the runtime; the registry bounds it in time, records
/// its outcome in the runtime's view, and maps its error for the client.
#[async_trait::async_trait]
pub trait RuntimeSource: Send + Sync + 'static {
    /// Embedded or remote, as `GET /api/runtimes` shows it.
    fn kind(&self) -> RuntimeSourceKind;
    /// The runtime's self-description.
    async fn info(&self) -> Result<RuntimeInfo, SourceError>;
    /// A page of workers.
    async fn list_workers(&self, query: &WorkerQuery) -> Result<WorkerList, SourceError>;
    /// Starts a worker.
    async fn create_worker(
        &self,
        request: &CreateWorkerRequest,
    ) -> Result<WorkerDetail, SourceError>;
    /// One worker's detail.
    async fn get_worker(&self, worker: &WorkerId) -> Result<WorkerDetail, SourceError>;
    /// Sends input.
    async fn input(&self, worker: &WorkerId, text: String) -> Result<InputAccepted, SourceError>;
    /// Interrupts in-flight work.
    async fn cancel(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError>;
    /// Ends the worker.
    async fn stop(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError>;
    /// Removes an ended worker.
    async fn delete(&self, worker: &WorkerId) -> Result<(), SourceError>;
    /// A transcript page.
    async fn transcript(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<TranscriptPage, SourceError>;
}
