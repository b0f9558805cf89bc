//! Reconfiguring the registry while it serves (a configuration reload), and the
//! observation hub following it: runtimes added, replaced, removed and kept; calls in
//! flight; viewers of kept, replaced and removed runtimes; health probes; the policy.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use switchyard_protocol::{ErrorCode, RuntimeId, RuntimeState, WorkerId};
use switchyard_registry::{
    AllowAll, Caller, EmbeddedSource, HubSettings, ObservationHub, Planned, Policy, PolicyDenied,
    PolicyRequest, ReconfigureError, RegisteredRuntime, RegistryError, RuntimeRegistry,
    RuntimeSource, Viewer,
};
use switchyard_runtime::{Runtime, RuntimeConfig, StreamEnd};
use tokio::sync::Notify;

mod support;
use support::{Probe, Subscriptions, Uses, echo_worker};

fn rid(s: &str) -> RuntimeId {
    RuntimeId::new(s).unwrap()
}

async fn runtime(id: &str) -> Runtime {
    Runtime::in_memory(RuntimeConfig::new(rid(id), id)).await
}

fn registered(id: &str, source: Arc<dyn RuntimeSource>) -> RegisteredRuntime {
    RegisteredRuntime::new(rid(id), format!("Runtime {id}"), source)
        .with_call_timeout(Duration::from_secs(5))
}

fn embedded(id: &str, runtime: &Runtime) -> RegisteredRuntime {
    registered(id, Arc::new(EmbeddedSource::new(runtime.clone())))
}

fn ids(registry: &RuntimeRegistry) -> Vec<String> {
    registry
        .runtimes(&Caller::open())
        .into_iter()
        .map(|r| r.runtime_id.to_string())
        .collect()
}

fn names(ids: &[RuntimeId]) -> Vec<&str> {
    ids.iter().map(RuntimeId::as_str).collect()
}

async fn next(viewer: &mut Viewer) -> serde_json::Value {
    let frame = tokio::time::timeout(Duration::from_secs(20), viewer.next_frame())
        .await
        .expect("a frame in time")
        .expect("the stream is open");
    serde_json::from_str(&frame.to_json().unwrap()).unwrap()
}

/// The next frame is none: nothing is queued for the viewer right now.
async fn nothing_more(viewer: &mut Viewer) {
    if let Ok(frame) = tokio::time::timeout(Duration::from_millis(300), viewer.next_frame()).await {
        panic!("no frame expected, got {frame:?}");
    }
}

/// Sends `text` and checks that each viewer's next two frames are exactly its input
/// and output events: nothing between (no upstream lost or restored, no reset, no
/// snapshot), nothing missed, nothing twice.
async fn round_trip(runtime: &Runtime, worker: &WorkerId, viewers: &mut [&mut Viewer], text: &str) {
    runtime.input(worker, text.into()).await.unwrap();
    for viewer in viewers {
        let input = next(viewer).await;
        assert_eq!(
            (input["type"].as_str(), input["event"]["kind"].as_str()),
            (Some("event"), Some("input")),
            "{input}"
        );
        assert_eq!(input["event"]["text"], text);
        let output = next(viewer).await;
        assert_eq!(output["event"]["kind"], "output", "{output}");
        assert_eq!(output["event"]["text"], text);
    }
}

#[tokio::test]
async fn a_reconfiguration_adds_replaces_removes_and_keeps_runtimes() {
    let (a, b, c) = (runtime("a").await, runtime("b").await, runtime("c").await);
    let kept_source: Arc<dyn RuntimeSource> = Arc::new(EmbeddedSource::new(a.clone()));
    let registry = RuntimeRegistry::new(
        vec![
            registered("a", kept_source.clone()),
            embedded("b", &b),
            embedded("gone", &c),
        ],
        Arc::new(AllowAll),
    )
    .unwrap();
    // The kept runtime's view has seen an answer; it must survive the reload.
    registry.runtime(&Caller::open(), &rid("a")).await.unwrap();
    let replacement: Arc<dyn RuntimeSource> = Arc::new(EmbeddedSource::new(b.clone()));

    let done = registry
        .reconfigure(vec![
            Planned::Register(registered("new", Arc::new(EmbeddedSource::new(c.clone())))),
            Planned::Keep(rid("a")),
            Planned::Register(registered("b", replacement.clone())),
        ])
        .unwrap();

    assert_eq!(names(&done.added), ["new"]);
    assert_eq!(names(&done.replaced), ["b"]);
    assert_eq!(names(&done.removed), ["gone"]);
    assert_eq!(names(&done.unchanged), ["a"]);
    let retired: Vec<&str> = done.retired.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(retired, ["b", "gone"], "the replaced and removed sources");
    assert_eq!(ids(&registry), ["new", "a", "b"], "the new order");
    assert!(Arc::ptr_eq(
        &registry.source(&rid("a")).unwrap(),
        &kept_source
    ));
    assert!(Arc::ptr_eq(
        &registry.source(&rid("b")).unwrap(),
        &replacement
    ));
    let view = |id: &str| {
        registry
            .runtimes(&Caller::open())
            .into_iter()
            .find(|r| r.runtime_id.as_str() == id)
            .unwrap()
    };
    assert_eq!(view("a").state, RuntimeState::Ready, "kept as it was");
    assert!(view("a").last_seen.is_some());
    match registry.runtime(&Caller::open(), &rid("gone")).await {
        Err(RegistryError::RuntimeNotFound(id)) => assert_eq!(id.as_str(), "gone"),
        other => panic!("a removed runtime is not found, got {other:?}"),
    }
    // New and replacing runtimes are described at once, in the background.
    for id in ["new", "b"] {
        tokio::time::timeout(Duration::from_secs(10), async {
            while view(id).state != RuntimeState::Ready {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{id} is refreshed after the reload"));
    }
}

#[tokio::test]
async fn an_invalid_plan_changes_nothing() {
    let a = runtime("a").await;
    let registry = RuntimeRegistry::new(vec![embedded("a", &a)], Arc::new(AllowAll)).unwrap();
    let source = registry.source(&rid("a")).unwrap();
    let check = |plan: Vec<Planned>, expected: ReconfigureError| {
        assert_eq!(registry.reconfigure(plan).unwrap_err(), expected);
        assert_eq!(ids(&registry), ["a"]);
        assert!(Arc::ptr_eq(&registry.source(&rid("a")).unwrap(), &source));
    };
    check(
        vec![Planned::Keep(rid("a")), Planned::Keep(rid("nope"))],
        ReconfigureError::NotRegistered(rid("nope")),
    );
    check(
        vec![
            Planned::Keep(rid("a")),
            Planned::Register(embedded("a", &a)),
        ],
        ReconfigureError::Duplicate(switchyard_registry::DuplicateRuntimeId(rid("a"))),
    );
    check(
        vec![
            Planned::Register(embedded("x", &a)),
            Planned::Register(embedded("x", &a)),
        ],
        ReconfigureError::Duplicate(switchyard_registry::DuplicateRuntimeId(rid("x"))),
    );
}

#[tokio::test]
async fn a_call_in_flight_ends_on_the_runtime_it_started_on() {
    let a = runtime("a").await;
    let w = echo_worker(&a).await;
    let gate = Arc::new(Notify::new());
    let registry = Arc::new(
        RuntimeRegistry::new(
            vec![registered("a", Arc::new(Probe::gated(&a, gate.clone())))],
            Arc::new(AllowAll),
        )
        .unwrap(),
    );
    let in_flight = tokio::spawn({
        let (registry, w) = (registry.clone(), w.clone());
        async move {
            registry
                .input(&Caller::open(), &rid("a"), &w, "late".into())
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    registry.reconfigure(vec![]).unwrap();
    gate.notify_one();
    in_flight.await.expect("no panic").expect("it finishes");
    assert_eq!(
        a.get(&w).unwrap().input_count,
        1,
        "the runtime took the input"
    );
    match registry
        .input(&Caller::open(), &rid("a"), &w, "after".into())
        .await
    {
        Err(error) => assert_eq!(error.to_detail().code, ErrorCode::RuntimeNotFound),
        Ok(answer) => panic!("a removed runtime takes no new calls, got {answer:?}"),
    }

    // A removed embedded runtime that its owner shuts down fails the calls still in
    // flight with a typed error.
    let b = runtime("b").await;
    let wb = echo_worker(&b).await;
    let gate = Arc::new(Notify::new());
    let registry = Arc::new(
        RuntimeRegistry::new(
            vec![registered("b", Arc::new(Probe::gated(&b, gate.clone())))],
            Arc::new(AllowAll),
        )
        .unwrap(),
    );
    let in_flight = tokio::spawn({
        let registry = registry.clone();
        async move {
            registry
                .input(&Caller::open(), &rid("b"), &wb, "late".into())
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    registry.reconfigure(vec![]).unwrap();
    b.shutdown().await.unwrap();
    gate.notify_one();
    match in_flight.await.expect("no panic") {
        Err(error) => {
            let detail = error.to_detail();
            assert!(
                matches!(
                    detail.code,
                    ErrorCode::RuntimeUnavailable | ErrorCode::WorkerNotRunning
                ),
                "{detail:?}"
            );
            assert_eq!(detail.runtime_id.as_ref().map(RuntimeId::as_str), Some("b"));
        }
        Ok(answer) => panic!("the runtime was shut down, got {answer:?}"),
    }
}

/// Refuses everything: a policy to swap in.
struct DenyAll;

impl Policy for DenyAll {
    fn authorize(&self, _request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        Err(PolicyDenied("not today".into()))
    }
}

#[tokio::test]
async fn a_new_policy_applies_to_the_next_call() {
    let a = runtime("a").await;
    let registry = RuntimeRegistry::new(vec![embedded("a", &a)], Arc::new(AllowAll)).unwrap();
    assert!(registry.runtime(&Caller::open(), &rid("a")).await.is_ok());
    registry.set_policy(Arc::new(DenyAll));
    match registry.runtime(&Caller::open(), &rid("a")).await {
        Err(error) => assert_eq!(error.to_detail().code, ErrorCode::Forbidden),
        Ok(_) => panic!("the new policy refuses"),
    }
    assert!(registry.runtimes(&Caller::open()).is_empty());
    registry.set_policy(Arc::new(AllowAll));
    assert_eq!(ids(&registry), ["a"]);
}

#[tokio::test]
async fn probes_follow_the_table() {
    let (a, b) = (runtime("a").await, runtime("b").await);
    let kept = Probe::new(&a);
    let removed = Probe::new(&b);
    let (kept_uses, removed_uses) = (kept.uses.clone(), removed.uses.clone());
    let registry = RuntimeRegistry::new(
        vec![
            registered("a", Arc::new(kept)),
            registered("b", Arc::new(removed)),
        ],
        Arc::new(AllowAll),
    )
    .unwrap();
    let interval = Duration::from_millis(10);
    registry.start_health_probes(interval);
    let probed = |uses: &Uses| uses.info.load(Ordering::SeqCst);
    let grows = |uses: Arc<Uses>| async move {
        let before = probed(&uses);
        tokio::time::timeout(Duration::from_secs(10), async {
            while probed(&uses) < before + 2 {
                tokio::time::sleep(interval).await;
            }
        })
        .await
        .is_ok()
    };
    assert!(grows(removed_uses.clone()).await, "b is probed");

    let added = Probe::new(&b);
    let added_uses = added.uses.clone();
    registry
        .reconfigure(vec![
            Planned::Keep(rid("a")),
            Planned::Register(registered("c", Arc::new(added))),
        ])
        .unwrap();
    assert!(grows(kept_uses).await, "the kept runtime's probe goes on");
    assert!(grows(added_uses).await, "the added runtime is probed");
    tokio::time::sleep(Duration::from_millis(50)).await; // a probe in flight ends
    let after_removal = probed(&removed_uses);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        probed(&removed_uses),
        after_removal,
        "the removed runtime is no longer probed"
    );
}

/// Waits (at most 10 s) until a source has been asked for an event subscription.
async fn subscribed(uses: &Uses, what: &str) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while uses.subscribe.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect(what);
}

fn hub_over(registry: &Arc<RuntimeRegistry>) -> ObservationHub {
    ObservationHub::new(registry.clone(), {
        let mut settings = HubSettings::default();
        settings.linger = Duration::from_millis(50);
        settings
    })
}

#[tokio::test]
async fn viewers_of_a_removed_runtime_end_and_those_of_a_kept_one_see_nothing_of_it() {
    let (a, b) = (runtime("a").await, runtime("b").await);
    let (wa, wb) = (echo_worker(&a).await, echo_worker(&b).await);
    let kept = Probe::new(&a);
    let kept_uses = kept.uses.clone();
    let registry = Arc::new(
        RuntimeRegistry::new(
            vec![registered("a", Arc::new(kept)), embedded("b", &b)],
            Arc::new(AllowAll),
        )
        .unwrap(),
    );
    let hub = hub_over(&registry);
    let open = Caller::open();
    let mut on_a = hub.watch(&open, &rid("a"), &wa, None).await.unwrap();
    let mut also_on_a = hub.watch(&open, &rid("a"), &wa, None).await.unwrap();
    let mut on_b = hub.watch(&open, &rid("b"), &wb, None).await.unwrap();
    for viewer in [&mut on_a, &mut also_on_a, &mut on_b] {
        assert_eq!(next(viewer).await["event"]["kind"], "snapshot");
    }
    round_trip(&a, &wa, &mut [&mut on_a, &mut also_on_a], "before").await;

    let done = registry.reconfigure(vec![Planned::Keep(rid("a"))]).unwrap();
    hub.runtimes_changed(&done);

    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), on_b.ended())
            .await
            .unwrap(),
        StreamEnd::Removed,
        "closed as for a worker that is gone (4404)"
    );
    assert_eq!(on_b.next_frame().await.unwrap_err(), StreamEnd::Removed);
    assert_eq!(hub.channel_count(), 1, "b's channel is gone");
    match hub.watch(&open, &rid("b"), &wb, None).await {
        Err(error) => assert_eq!(error.to_detail().code, ErrorCode::RuntimeNotFound),
        Ok(_) => panic!("a removed runtime cannot be watched"),
    }
    // The kept runtime's viewers: the next events follow on, with nothing between
    // (no upstream lost/restored, no reset, no snapshot), and no new subscription.
    round_trip(&a, &wa, &mut [&mut on_a, &mut also_on_a], "after").await;
    nothing_more(&mut on_a).await;
    assert_eq!(kept_uses.subscribe.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn viewers_of_a_replaced_runtime_continue_through_the_new_one_without_gap_or_duplicate() {
    let a = runtime("a").await;
    let wa = echo_worker(&a).await;
    let old = Probe::new(&a);
    let old_uses = old.uses.clone();
    let registry = Arc::new(
        RuntimeRegistry::new(vec![registered("a", Arc::new(old))], Arc::new(AllowAll)).unwrap(),
    );
    let hub = hub_over(&registry);
    let mut viewer = hub
        .watch(&Caller::open(), &rid("a"), &wa, None)
        .await
        .unwrap();
    assert_eq!(next(&mut viewer).await["event"]["kind"], "snapshot");
    round_trip(&a, &wa, &mut [&mut viewer], "one").await;

    // The same runtime behind a new source (say, its token changed).
    let new = Probe::new(&a);
    let new_uses = new.uses.clone();
    let done = registry
        .reconfigure(vec![Planned::Register(registered("a", Arc::new(new)))])
        .unwrap();
    assert_eq!(names(&done.replaced), ["a"]);
    hub.runtimes_changed(&done);
    subscribed(&new_uses, "the channel subscribes through the new source").await;
    round_trip(&a, &wa, &mut [&mut viewer], "two").await;
    round_trip(&a, &wa, &mut [&mut viewer], "three").await;
    nothing_more(&mut viewer).await;
    assert_eq!(old_uses.subscribe.load(Ordering::SeqCst), 1);

    // Replaced by a runtime that does not have the worker: its viewers end (4404).
    let other = runtime("other").await;
    replace(&registry, &hub, embedded("a", &other));
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(end) = viewer.next_frame().await {
                return end;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(ended, StreamEnd::Removed);
}

#[tokio::test]
async fn a_channel_opened_as_its_runtime_is_removed_ends_its_viewer() {
    let a = runtime("a").await;
    let wa = echo_worker(&a).await;
    let probe = Arc::new(Probe::new(&a));
    let registry = Arc::new(
        RuntimeRegistry::new(vec![registered("a", probe.clone())], Arc::new(AllowAll)).unwrap(),
    );
    let hub = hub_over(&registry);
    // The reload lands after `watch` has found the worker, before the channel
    // subscribes.
    let (weak_registry, weak_hub) = (Arc::downgrade(&registry), hub.clone());
    let _ = probe.on_get_worker.set(Box::new(move || {
        if let Some(registry) = weak_registry.upgrade() {
            let done = registry.reconfigure(vec![]).unwrap();
            weak_hub.runtimes_changed(&done);
        }
    }));
    let mut viewer = hub
        .watch(&Caller::open(), &rid("a"), &wa, None)
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), viewer.next_frame())
        .await
        .expect("the viewer ends instead of waiting forever");
    assert_eq!(ended.unwrap_err(), StreamEnd::Removed);
    assert_eq!(probe.uses.subscribe.load(Ordering::SeqCst), 0);
    assert_eq!(hub.channel_count(), 0);
}

/// A hub whose failure backoff outlasts any test: only a reload makes a lost
/// channel try again in time.
fn hub_waiting_long(registry: &Arc<RuntimeRegistry>) -> ObservationHub {
    ObservationHub::new(registry.clone(), {
        let mut settings = HubSettings::default();
        settings.backoff_initial = Duration::from_secs(600);
        settings.backoff_max = Duration::from_secs(600);
        settings
    })
}

/// Reloads the registry with `registration` as its only runtime and tells the hub.
fn replace(registry: &RuntimeRegistry, hub: &ObservationHub, registration: RegisteredRuntime) {
    let done = registry
        .reconfigure(vec![Planned::Register(registration)])
        .unwrap();
    hub.runtimes_changed(&done);
}

#[tokio::test]
async fn a_channel_waiting_to_reconnect_moves_to_the_replacing_runtime_at_once() {
    let a = runtime("a").await;
    let wa = echo_worker(&a).await;
    let down = Probe {
        events: Subscriptions::Down,
        ..Probe::new(&a)
    };
    let down_uses = down.uses.clone();
    let registry = Arc::new(
        RuntimeRegistry::new(vec![registered("a", Arc::new(down))], Arc::new(AllowAll)).unwrap(),
    );
    // A backoff far longer than the test: only the reload can bring it back soon.
    let hub = hub_waiting_long(&registry);
    let mut viewer = hub
        .watch(&Caller::open(), &rid("a"), &wa, None)
        .await
        .unwrap();
    let lost = next(&mut viewer).await;
    assert_eq!(
        (lost["type"].as_str(), lost["state"].as_str()),
        (Some("upstream"), Some("lost")),
        "{lost}"
    );
    assert_eq!(down_uses.subscribe.load(Ordering::SeqCst), 1);

    replace(&registry, &hub, embedded("a", &a));
    let restored = next(&mut viewer).await;
    assert_eq!(restored["state"], "restored", "{restored}");
    assert_eq!(next(&mut viewer).await["event"]["kind"], "snapshot");
    round_trip(&a, &wa, &mut [&mut viewer], "through the new source").await;
    assert_eq!(
        down_uses.subscribe.load(Ordering::SeqCst),
        1,
        "the old source is not asked again"
    );
}

#[tokio::test]
async fn a_runtime_replaced_just_after_the_channel_subscribed_is_followed_at_once() {
    // A reload that replaces a runtime moments after a channel subscribed (a
    // viewer opened the worker's page just then, or a second reload follows the
    // first: a token file, then the configuration, each with its SIGHUP) is a
    // reload, not a runtime ending every subscription at once: the channel
    // follows it now, not after the failures' growing wait.
    let a = runtime("a").await;
    let wa = echo_worker(&a).await;
    let registry =
        Arc::new(RuntimeRegistry::new(vec![embedded("a", &a)], Arc::new(AllowAll)).unwrap());
    // A backoff far longer than the test: a channel that waits it out never comes
    // back in time.
    let hub = hub_waiting_long(&registry);
    let mut viewer = hub
        .watch(&Caller::open(), &rid("a"), &wa, None)
        .await
        .unwrap();
    assert_eq!(next(&mut viewer).await["event"]["kind"], "snapshot");

    let first = Probe::new(&a);
    let first_uses = first.uses.clone();
    replace(&registry, &hub, registered("a", Arc::new(first)));
    subscribed(
        &first_uses,
        "the channel subscribes through the first replacement at once",
    )
    .await;
    let second = Probe::new(&a);
    let second_uses = second.uses.clone();
    replace(&registry, &hub, registered("a", Arc::new(second)));

    round_trip(&a, &wa, &mut [&mut viewer], "one").await;
    round_trip(&a, &wa, &mut [&mut viewer], "two").await;
    nothing_more(&mut viewer).await;
    assert_eq!(second_uses.subscribe.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn viewers_of_a_lost_upstream_hear_when_its_cause_changes() {
    // The runtime's events are down (unreachable); a reload gives it a source whose
    // token it refuses. The viewers, told "unreachable", are told the new cause:
    // what they were told stays true. The same cause again says nothing more.
    let a = runtime("a").await;
    let wa = echo_worker(&a).await;
    let down = Probe {
        events: Subscriptions::Down,
        ..Probe::new(&a)
    };
    let registry = Arc::new(
        RuntimeRegistry::new(vec![registered("a", Arc::new(down))], Arc::new(AllowAll)).unwrap(),
    );
    // A backoff far longer than the test: only the reloads make the channel try
    // again.
    let hub = hub_waiting_long(&registry);
    let mut viewer = hub
        .watch(&Caller::open(), &rid("a"), &wa, None)
        .await
        .unwrap();
    let lost = next(&mut viewer).await;
    assert_eq!(lost["state"], "lost", "{lost}");
    assert_eq!(lost["error"]["code"], "runtime_unreachable", "{lost}");

    let refused = Probe {
        events: Subscriptions::AuthRejected,
        ..Probe::new(&a)
    };
    let refused_uses = refused.uses.clone();
    replace(&registry, &hub, registered("a", Arc::new(refused)));
    let lost = next(&mut viewer).await;
    assert_eq!(
        (lost["type"].as_str(), lost["state"].as_str()),
        (Some("upstream"), Some("lost")),
        "{lost}"
    );
    assert_eq!(lost["error"]["code"], "runtime_auth_failed", "{lost}");
    assert_eq!(lost["error"]["runtime_id"], "a", "{lost}");

    let again = Probe {
        events: Subscriptions::AuthRejected,
        ..Probe::new(&a)
    };
    let again_uses = again.uses.clone();
    replace(&registry, &hub, registered("a", Arc::new(again)));
    subscribed(&again_uses, "the channel tries the next source").await;
    nothing_more(&mut viewer).await;
    assert_eq!(refused_uses.subscribe.load(Ordering::SeqCst), 1);
}
