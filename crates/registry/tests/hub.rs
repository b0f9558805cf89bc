//! The observation hub with an embedded runtime: the policy seam filters events per
//! viewer, and the pass-through policy shares one encoding among viewers.

use std::sync::Arc;
use std::time::Duration;

use switchyard_protocol::{CreateWorkerRequest, OutgoingFrame, RuntimeId, WorkerEvent, WorkerId};
use switchyard_registry::{
    AllowAll, Caller, EmbeddedSource, HubSettings, ObservationHub, Policy, PolicyDenied,
    PolicyRequest, RegisteredRuntime, RuntimeRegistry, Viewer,
};
use switchyard_runtime::{Runtime, RuntimeConfig};

/// Hides output that mentions a secret; allows everything else.
struct Redact;

impl Policy for Redact {
    fn authorize(&self, _request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        Ok(())
    }

    fn filter_event(
        &self,
        _caller: &Caller,
        _runtime_id: &RuntimeId,
        _worker_id: &WorkerId,
        event: WorkerEvent,
    ) -> Option<WorkerEvent> {
        match &event {
            WorkerEvent::Output { text, .. } | WorkerEvent::Input { text, .. }
                if text.contains("secret") =>
            {
                None
            }
            _ => Some(event),
        }
    }
}

async fn setup(policy: Arc<dyn Policy>) -> (Runtime, ObservationHub, WorkerId) {
    let id = RuntimeId::new("local").unwrap();
    let runtime = Runtime::in_memory(RuntimeConfig::new(id.clone(), "local")).await;
    let registry = RuntimeRegistry::new(
        vec![RegisteredRuntime {
            runtime_id: id,
            display_name: "local".into(),
            source: Arc::new(EmbeddedSource::new(runtime.clone())),
            call_timeout: None,
        }],
        policy,
    )
    .unwrap();
    let worker = runtime
        .create(CreateWorkerRequest {
            profile: "echo".into(),
            label: None,
            owner: None,
        })
        .await
        .unwrap()
        .worker_id;
    (
        runtime,
        ObservationHub::new(Arc::new(registry), HubSettings::default()),
        worker,
    )
}

async fn next(viewer: &mut Viewer) -> (OutgoingFrame, serde_json::Value) {
    let frame = tokio::time::timeout(Duration::from_secs(20), viewer.next_frame())
        .await
        .expect("a frame in time")
        .expect("open");
    let json = serde_json::from_str(&frame.to_json().unwrap()).unwrap();
    (frame, json)
}

#[tokio::test]
async fn a_filtering_policy_hides_events_from_viewers() {
    let (runtime, hub, worker) = setup(Arc::new(Redact)).await;
    let rt = RuntimeId::new("local").unwrap();
    let mut viewer = hub
        .watch(&Caller::open(), &rt, &worker, None)
        .await
        .unwrap();
    assert_eq!(next(&mut viewer).await.1["event"]["kind"], "snapshot");
    runtime.input(&worker, "the secret".into()).await.unwrap();
    runtime.input(&worker, "public".into()).await.unwrap();
    let (_, first) = next(&mut viewer).await;
    assert_eq!(
        first["event"]["text"], "public",
        "the secret input and output are hidden"
    );
    assert_eq!(first["event"]["kind"], "input");
    let (_, second) = next(&mut viewer).await;
    assert_eq!(second["event"]["text"], "public");
    assert_eq!(second["event"]["kind"], "output");
}

#[tokio::test]
async fn the_pass_through_policy_encodes_each_event_once_for_all_viewers() {
    let (runtime, hub, worker) = setup(Arc::new(AllowAll)).await;
    let rt = RuntimeId::new("local").unwrap();
    let mut a = hub
        .watch(&Caller::open(), &rt, &worker, None)
        .await
        .unwrap();
    let mut b = hub
        .watch(&Caller::open(), &rt, &worker, None)
        .await
        .unwrap();
    next(&mut a).await;
    next(&mut b).await;
    runtime.input(&worker, "hello".into()).await.unwrap();
    let (fa, ja) = next(&mut a).await;
    let (fb, jb) = next(&mut b).await;
    assert_eq!(ja, jb);
    assert_eq!(ja["runtime_id"], "local");
    match (fa, fb) {
        (OutgoingFrame::Encoded(x), OutgoingFrame::Encoded(y)) => {
            assert!(Arc::ptr_eq(&x, &y), "one encoding shared by both viewers")
        }
        other => panic!("expected shared encodings, got {other:?}"),
    }
    assert_eq!(hub.channel_count(), 1);
}
