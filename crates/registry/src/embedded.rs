//! [`EmbeddedSource`]: a runtime in the backend's own process, driven directly (no
//! HTTP, no serialization).

use std::sync::Arc;
use switchyard_protocol::{
    CreateWorkerRequest, InputAccepted, ResizeRequest, ResizeResponse, RuntimeInfo,
    RuntimeSourceKind, TranscriptPage, WorkerDetail, WorkerId, WorkerList, WorkerStatusResponse,
};

use switchyard_protocol::{EventPayload, RuntimeCursor};
use switchyard_runtime::{ListQuery, Runtime, StreamEnd, Subscription, SubscriptionItem};
use switchyard_transport::WorkerQuery;

use crate::error::SourceError;
use crate::source::{ResumePoint, RuntimeSource, SourceEnd, SourceEvents, SourceItem};

/// A [`Runtime`] in this process as a source: every call is a method call on it
/// (no HTTP, no serialization), and a resumed event stream is the runtime's own
/// replay followed by a fresh snapshot. The backend's embedded runtime is one; a
/// program may register others, each over its own store (the crate's example
/// registers one of its own). Its workers are the runtime's: [`RuntimeSource::shutdown`] stops them and flushes
/// the store.
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

    async fn resize(
        &self,
        worker: &WorkerId,
        size: ResizeRequest,
    ) -> Result<ResizeResponse, SourceError> {
        Ok(self.runtime.resize(worker, size).await?)
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

    async fn subscribe(
        &self,
        worker: &WorkerId,
        resume: Option<&ResumePoint>,
    ) -> Result<Box<dyn SourceEvents>, SourceError> {
        let subscription = match resume {
            Some(point) => {
                let cursor = RuntimeCursor {
                    epoch: point.epoch.to_string(),
                    worker_id: worker.clone(),
                    position: point.position,
                }
                .encode();
                self.runtime
                    .subscribe_with_snapshot(worker, Some(&cursor))?
            }
            None => self.runtime.subscribe(worker, None)?,
        };
        Ok(Box::new(EmbeddedEvents {
            epoch: self.runtime.epoch().into(),
            subscription,
        }))
    }

    /// Stops every worker and flushes the store ([`Runtime::shutdown`]).
    async fn shutdown(&self) {
        if let Err(error) = self.runtime.shutdown().await {
            tracing::error!(%error, "could not flush an embedded runtime's store on shutdown");
        }
    }
}

/// A runtime subscription seen as a source stream.
struct EmbeddedEvents {
    epoch: Arc<str>,
    subscription: Subscription,
}

#[async_trait::async_trait]
impl SourceEvents for EmbeddedEvents {
    async fn next(&mut self) -> Result<SourceItem, SourceEnd> {
        match self.subscription.next().await {
            Ok(SubscriptionItem::Event { position, event }) => Ok(SourceItem::Event {
                epoch: self.epoch.clone(),
                position,
                event: EventPayload::Decoded(event),
            }),
            Ok(SubscriptionItem::Reset(reason)) => Ok(SourceItem::Reset(reason)),
            Err(StreamEnd::Removed) => Err(SourceEnd::WorkerGone),
            // A runtime's own subscription never ends for credentials.
            Err(StreamEnd::Shutdown | StreamEnd::AccessEnded) => {
                Err(SourceEnd::Lost(SourceError::Unavailable))
            }
            Err(StreamEnd::SlowConsumer) => Err(SourceEnd::Lost(SourceError::FellBehind)),
        }
    }
}
