//! [`EmbeddedSource`]: a runtime in the backend's own process, driven directly (no
//! HTTP, no serialization).

use switchyard_protocol::{
    CreateWorkerRequest, InputAccepted, RuntimeInfo, RuntimeSourceKind, TranscriptPage,
    WorkerDetail, WorkerId, WorkerList, WorkerStatusResponse,
};
use switchyard_runtime::{ListQuery, Runtime};
use switchyard_transport::WorkerQuery;

use crate::error::SourceError;
use crate::source::RuntimeSource;

/// The embedded runtime.
#[derive(Debug, Clone)]
pub struct EmbeddedSource {
    runtime: Runtime,
}

impl EmbeddedSource {
    /// Wraps a runtime.
    pub fn new(runtime: Runtime) -> Self {
        Self { runtime }
    }

    /// The runtime itself.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

#[async_trait::async_trait]
impl RuntimeSource for EmbeddedSource {
    fn kind(&self) -> RuntimeSourceKind {
        RuntimeSourceKind::Embedded
    }

    async fn info(&self) -> Result<RuntimeInfo, SourceError> {
        Ok(self.runtime.info())
    }

    async fn list_workers(&self, query: &WorkerQuery) -> Result<WorkerList, SourceError> {
        Ok(self.runtime.list(&ListQuery {
            status: query.status,
            after: query.after.clone(),
            limit: query.limit,
        })?)
    }

    async fn create_worker(
        &self,
        request: &CreateWorkerRequest,
    ) -> Result<WorkerDetail, SourceError> {
        Ok(self.runtime.create(request.clone()).await?)
    }

    async fn get_worker(&self, worker: &WorkerId) -> Result<WorkerDetail, SourceError> {
        Ok(self.runtime.get(worker)?)
    }

    async fn input(&self, worker: &WorkerId, text: String) -> Result<InputAccepted, SourceError> {
        Ok(self.runtime.input(worker, text).await?)
    }

    async fn cancel(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
        Ok(self.runtime.cancel(worker)?)
    }

    async fn stop(&self, worker: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
        Ok(self.runtime.stop(worker).await?)
    }

    async fn delete(&self, worker: &WorkerId) -> Result<(), SourceError> {
        Ok(self.runtime.delete(worker).await?)
    }

    async fn transcript(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<TranscriptPage, SourceError> {
        Ok(self.runtime.transcript(worker, after, limit).await?)
    }
}
