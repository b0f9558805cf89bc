//! The observation hub with an embedded runtime: the policy seam filters events per
//! viewer, and the pass-through policy shares one encoding among viewers.

use std::sync::Arc;
use std::time::Duration;

use switchyard_protocol::{
    ClientFrame, ErrorCode, OutgoingFrame, RuntimeId, WorkerEvent, WorkerId,
};
use switchyard_registry::{
    Action, AllowAll, BackendCursor, Caller, EmbeddedSource, HubSettings, ObservationHub, Policy,
    PolicyDenied, PolicyRequest, RegisteredRuntime, RuntimeRegistry, Viewer,
};
use switchyard_runtime::{Runtime, RuntimeConfig};

mod support;
use support::echo_worker;

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
        vec![
            RegisteredRuntime::new(id, "local", Arc::new(EmbeddedSource::new(runtime.clone())))
                .without_call_timeout(),
        ],
        policy,
    )
    .unwrap();
    let worker = echo_worker(&runtime).await;
    (
        runtime,
        ObservationHub::new(Arc::new(registry), HubSettings::default()),
        worker,
    )
}

/// The inputs in `worker`'s transcript, in order.
async fn inputs_of(runtime: &Runtime, worker: &WorkerId) -> Vec<String> {
    let page = runtime.transcript(worker, 0, Some(1000)).await.unwrap();
    page.items
        .iter()
        .filter_map(|item| match &item.entry {
            switchyard_protocol::TranscriptEntry::Input { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

async fn next(viewer: &mut Viewer) -> (OutgoingFrame, serde_json::Value) {
    let frame = tokio::time::timeout(Duration::from_secs(20), viewer.next_frame())
        .await
        .expect("a frame in time")
        .expect("open");
    let json = serde_json::from_str(&frame.to_json().unwrap()).unwrap();
    (frame, json)
}

/// A viewer of `worker`, past the snapshot it starts with.
async fn watching(hub: &ObservationHub, rt: &RuntimeId, worker: &WorkerId) -> Viewer {
    let mut viewer = hub.watch(&Caller::open(), rt, worker, None).await.unwrap();
    assert_eq!(next(&mut viewer).await.1["event"]["kind"], "snapshot");
    viewer
}

#[tokio::test]
async fn a_filtering_policy_hides_events_from_viewers() {
    let (runtime, hub, worker) = setup(Arc::new(Redact)).await;
    let rt = RuntimeId::new("local").unwrap();
    let mut viewer = watching(&hub, &rt, &worker).await;
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

/// A cursor's checksum is not a secret, so anyone can write a well-formed cursor
/// for a position the worker never reached. Against a channel that is connected it
/// is `invalid_cursor` before the upgrade, as the runtime answers (its viewer would
/// wait for events that never come); one a little ahead (a replica of the backend
/// lagging the one that minted it) waits for them. Nothing reaches the others.
#[tokio::test]
async fn a_cursor_far_ahead_of_the_stream_is_refused_and_breaks_nothing() {
    let (runtime, hub, worker) = setup(Arc::new(AllowAll)).await;
    let rt = RuntimeId::new("local").unwrap();
    let mut first = watching(&hub, &rt, &worker).await;
    let ahead = |position: u64| {
        BackendCursor {
            runtime_id: rt.clone(),
            worker_id: worker.clone(),
            epoch: runtime.epoch().to_owned(),
            position,
        }
        .encode()
    };
    for position in [u64::MAX, 1_000_000] {
        let refused = hub
            .watch(&Caller::open(), &rt, &worker, Some(&ahead(position)))
            .await
            .expect_err("far ahead");
        assert_eq!(
            refused.to_detail().code,
            ErrorCode::InvalidCursor,
            "{refused}"
        );
    }
    // Two events ahead: it waits for them, and gets what comes after.
    runtime.input(&worker, "after".into()).await.unwrap();
    assert_eq!(next(&mut first).await.1["event"]["kind"], "input");
    let (_, output) = next(&mut first).await;
    assert_eq!(output["event"]["text"], "after");
    let now = BackendCursor::decode_for(output["cursor"].as_str().unwrap(), &rt, &worker)
        .unwrap()
        .position;
    let mut lagging = hub
        .watch(&Caller::open(), &rt, &worker, Some(&ahead(now + 1)))
        .await
        .expect("a little ahead is taken");
    runtime.input(&worker, "later".into()).await.unwrap();
    let (_, frame) = next(&mut lagging).await;
    assert_eq!(frame["type"], "event", "no reset: {frame}");
    let position = BackendCursor::decode_for(frame["cursor"].as_str().unwrap(), &rt, &worker)
        .unwrap()
        .position;
    assert_eq!(position, now + 2, "{frame}");
    assert_eq!(next(&mut first).await.1["event"]["text"], "later");
}

/// The hub's (and the registry's) metrics as the Prometheus text format.
fn scrape(registry: &Arc<RuntimeRegistry>, hub: &ObservationHub) -> String {
    let mut metrics = prometheus_client::registry::Registry::default();
    registry.register_metrics(&mut metrics);
    hub.register_metrics(&mut metrics);
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &metrics).unwrap();
    text
}

#[tokio::test]
async fn the_metrics_count_channels_viewers_events_and_viewers_cut_off() {
    let id = RuntimeId::new("local").unwrap();
    let runtime = Runtime::in_memory(RuntimeConfig::new(id.clone(), "local")).await;
    let registry = Arc::new(
        RuntimeRegistry::new(
            vec![
                RegisteredRuntime::new(id, "local", Arc::new(EmbeddedSource::new(runtime.clone())))
                    .without_call_timeout(),
            ],
            Arc::new(AllowAll),
        )
        .unwrap(),
    );
    let hub = ObservationHub::new(registry.clone(), {
        let mut settings = HubSettings::default();
        settings.viewer_queue = 2;
        settings
    });
    let worker = echo_worker(&runtime).await;
    let caller = Caller::open();
    let rt = RuntimeId::new("local").unwrap();
    let has = |text: &str, line: &str| assert!(text.contains(line), "no {line:?} in\n{text}");

    let text = scrape(&registry, &hub);
    has(&text, "switchyard_hub_channels{runtime_id=\"local\"} 0\n");
    has(&text, "switchyard_hub_viewers{runtime_id=\"local\"} 0\n");

    let mut reader = hub.watch(&caller, &rt, &worker, None).await.unwrap();
    let stalled = hub.watch(&caller, &rt, &worker, None).await.unwrap();
    assert_eq!(next(&mut reader).await.1["event"]["kind"], "snapshot");
    // Each input is an input and an output event: the stalled viewer's queue of 2
    // overflows while the reader keeps up.
    let mut outputs = 0;
    for text in ["a\n", "b\n", "c\n"] {
        runtime.input(&worker, text.into()).await.unwrap();
        while outputs < 3 {
            let (_, json) = next(&mut reader).await;
            if json["event"]["kind"] == "output" {
                outputs += 1;
                break;
            }
        }
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(20), stalled.ended())
            .await
            .unwrap(),
        switchyard_runtime::StreamEnd::SlowConsumer
    );
    let text = scrape(&registry, &hub);
    has(&text, "switchyard_hub_channels{runtime_id=\"local\"} 1\n");
    has(&text, "switchyard_hub_viewers{runtime_id=\"local\"} 2\n");
    has(
        &text,
        "switchyard_hub_viewers_cut_off_total{runtime_id=\"local\"} 1\n",
    );
    // The snapshot and 3 × (input, output).
    has(
        &text,
        "switchyard_hub_events_relayed_total{runtime_id=\"local\"} 7\n",
    );
    has(
        &text,
        "switchyard_hub_upstream_reconnects_total{runtime_id=\"local\"} 0\n",
    );
    assert!(
        !text.contains(worker.as_str()),
        "no worker id in the metrics:\n{text}"
    );
    drop(stalled);
    let text = scrape(&registry, &hub);
    has(&text, "switchyard_hub_viewers{runtime_id=\"local\"} 1\n");
    drop(reader);
}

/// Refuses input; allows everything else.
struct NoInput;

impl Policy for NoInput {
    fn authorize(&self, request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        match request.action {
            Action::Input => Err(PolicyDenied("input is not allowed here".into())),
            _ => Ok(()),
        }
    }

    fn filters_events(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn interactive_viewers_share_one_ordered_command_lane() {
    let (runtime, hub, worker) = setup(Arc::new(AllowAll)).await;
    let rt = RuntimeId::new("local").unwrap();
    let a = hub
        .watch_interactive(&Caller::open(), &rt, &worker, None)
        .await
        .unwrap();
    let b = hub
        .watch_interactive(&Caller::open(), &rt, &worker, None)
        .await
        .unwrap();
    assert!(a.is_interactive() && b.is_interactive());
    let mut watcher = hub
        .watch(&Caller::open(), &rt, &worker, None)
        .await
        .unwrap();
    assert!(!watcher.is_interactive());
    next(&mut watcher).await; // snapshot
    // Submitted alternately by two viewers without waiting: carried out in order.
    let mut tickets = Vec::new();
    for i in 0..40 {
        let viewer = if i % 2 == 0 { &a } else { &b };
        tickets.push(
            viewer
                .submit(ClientFrame::Input {
                    text: format!("k{i}"),
                })
                .unwrap(),
        );
    }
    for ticket in tickets {
        ticket.await.unwrap();
    }
    let mut inputs = Vec::new();
    while inputs.len() < 40 {
        let (_, frame) = next(&mut watcher).await;
        if frame["event"]["kind"] == "input" {
            inputs.push(frame["event"]["text"].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    assert_eq!(inputs, expected);
    assert_eq!(hub.channel_count(), 1, "one channel for all viewers");

    // A resize of a worker that is not a terminal is refused with the runtime's code.
    let err = a
        .submit(ClientFrame::Resize { cols: 80, rows: 24 })
        .unwrap()
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotATerminal);
    // A plain viewer may not send anything.
    assert_eq!(
        watcher
            .submit(ClientFrame::Input { text: "x".into() })
            .unwrap_err()
            .code(),
        ErrorCode::Forbidden
    );
    // Input to an ended worker is refused, and the lane goes on.
    runtime.stop(&worker).await.unwrap();
    let err = b
        .submit(ClientFrame::Input {
            text: "late".into(),
        })
        .unwrap()
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::WorkerNotRunning);
}

/// Six interactive viewers each queue a full window of commands at once (more than
/// any one shared bound would hold): all are taken, carried out in the order they
/// arrived; only a viewer past its own window is refused.
#[tokio::test]
async fn every_interactive_viewer_has_its_own_window_in_the_shared_lane() {
    let (runtime, hub, worker) = setup(Arc::new(AllowAll)).await;
    let rt = RuntimeId::new("local").unwrap();
    let mut viewers = Vec::new();
    for _ in 0..6 {
        viewers.push(
            hub.watch_interactive(&Caller::open(), &rt, &worker, None)
                .await
                .unwrap(),
        );
    }
    // No await in between: the lane's task takes none of them meanwhile.
    let mut tickets = Vec::new();
    for round in 0..switchyard_registry::COMMAND_LANE {
        for (v, viewer) in viewers.iter().enumerate() {
            tickets.push(
                viewer
                    .submit(ClientFrame::Input {
                        text: format!("v{v}-{round}"),
                    })
                    .expect("within the viewer's own window"),
            );
        }
    }
    let refused = viewers[0]
        .submit(ClientFrame::Input {
            text: "one too many".into(),
        })
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::WorkerBusy);
    for ticket in tickets {
        ticket.await.unwrap();
    }
    let inputs = inputs_of(&runtime, &worker).await;
    let expected: Vec<String> = (0..switchyard_registry::COMMAND_LANE)
        .flat_map(|round| (0..6).map(move |v| format!("v{v}-{round}")))
        .collect();
    assert_eq!(inputs, expected);
    // Taken up by the lane, the window is free again.
    viewers[0]
        .submit(ClientFrame::Input {
            text: "again".into(),
        })
        .unwrap()
        .await
        .unwrap();
}

/// A runtime whose input queue is full (a paste faster than its program reads)
/// refuses inputs as busy for a while: the lane tries each again, later ones
/// waiting behind it, so every input arrives, in order, and none is refused.
#[tokio::test]
async fn the_command_lane_waits_out_a_busy_runtime_in_order() {
    let id = RuntimeId::new("local").unwrap();
    let runtime = Runtime::in_memory(RuntimeConfig::new(id.clone(), "local")).await;
    let probe = support::Probe::new(&runtime);
    let busy = probe.busy_inputs.clone();
    busy.store(5, std::sync::atomic::Ordering::SeqCst);
    let registry = RuntimeRegistry::new(
        vec![RegisteredRuntime::new(id.clone(), "local", Arc::new(probe)).without_call_timeout()],
        Arc::new(AllowAll),
    )
    .unwrap();
    let worker = echo_worker(&runtime).await;
    let hub = ObservationHub::new(Arc::new(registry), HubSettings::default());
    let typist = hub
        .watch_interactive(&Caller::open(), &id, &worker, None)
        .await
        .unwrap();
    let tickets: Vec<_> = (0..4)
        .map(|i| {
            typist
                .submit(ClientFrame::Input {
                    text: format!("p{i}"),
                })
                .unwrap()
        })
        .collect();
    for ticket in tickets {
        ticket.await.expect("accepted once the runtime had room");
    }
    assert_eq!(busy.load(std::sync::atomic::Ordering::SeqCst), 0);
    let inputs = inputs_of(&runtime, &worker).await;
    assert_eq!(inputs, ["p0", "p1", "p2", "p3"]);
}

#[tokio::test]
async fn an_interactive_viewer_needs_the_input_permission() {
    let (_runtime, hub, worker) = setup(Arc::new(NoInput)).await;
    let rt = RuntimeId::new("local").unwrap();
    let err = hub
        .watch_interactive(&Caller::open(), &rt, &worker, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    assert_eq!(hub.channel_count(), 0, "refused before joining");
    hub.watch(&Caller::open(), &rt, &worker, None)
        .await
        .unwrap();
}

/// Records who asked for what; refuses `bob` resizing.
#[derive(Default)]
struct PerCaller {
    asked: std::sync::Mutex<Vec<String>>,
}

impl Policy for PerCaller {
    fn authorize(&self, request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("{} {:?}", request.caller.name(), request.action));
        match (request.caller.name(), request.action) {
            ("bob", Action::Resize) => Err(PolicyDenied("bob may not resize".into())),
            _ => Ok(()),
        }
    }

    fn filters_events(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn the_lane_carries_each_command_out_as_the_viewer_that_sent_it() {
    use switchyard_registry::{Role, RuntimeGrants, WorkerScope};
    let policy = Arc::new(PerCaller::default());
    let (_runtime, hub, worker) = setup(policy.clone()).await;
    let rt = RuntimeId::new("local").unwrap();
    let who =
        |name: &str| Caller::identified(name, Role::Operator, RuntimeGrants::All, WorkerScope::All);
    let alice = hub
        .watch_interactive(&who("alice"), &rt, &worker, None)
        .await
        .unwrap();
    let bob = hub
        .watch_interactive(&who("bob"), &rt, &worker, None)
        .await
        .unwrap();
    assert_eq!(bob.caller().name(), "bob");
    policy.asked.lock().unwrap().clear();
    // One lane, four commands from two viewers, each decided for its sender.
    let tickets = [
        alice
            .submit(ClientFrame::Input { text: "a".into() })
            .unwrap(),
        bob.submit(ClientFrame::Input { text: "b".into() }).unwrap(),
        alice
            .submit(ClientFrame::Resize { cols: 80, rows: 24 })
            .unwrap(),
        bob.submit(ClientFrame::Resize { cols: 80, rows: 24 })
            .unwrap(),
    ];
    let mut outcomes = Vec::new();
    for ticket in tickets {
        outcomes.push(ticket.await.err().map(|e| e.code()));
    }
    assert_eq!(
        outcomes,
        [
            None,
            None,
            // Allowed for alice, refused by the runtime: an echo worker is no terminal.
            Some(ErrorCode::NotATerminal),
            // Refused for bob by the policy, before the runtime is asked.
            Some(ErrorCode::Forbidden),
        ]
    );
    assert_eq!(
        *policy.asked.lock().unwrap(),
        ["alice Input", "bob Input", "alice Resize", "bob Resize"]
    );
    assert_eq!(hub.channel_count(), 1);
}

/// Reads `viewer` until it has seen `outputs` output events.
async fn read_outputs(viewer: &mut Viewer, outputs: usize) {
    let mut seen = 0;
    while seen < outputs {
        if next(viewer).await.1["event"]["kind"] == "output" {
            seen += 1;
        }
    }
}

#[tokio::test]
async fn a_resize_applies_to_the_streams_that_open_after_it() {
    let (runtime, hub, open_before) = setup(Arc::new(AllowAll)).await;
    let caller = Caller::open();
    let rt = RuntimeId::new("local").unwrap();
    // A stream open before the resize, with the default queue (1024), and a viewer
    // that reads nothing.
    let mut before_reader = hub.watch(&caller, &rt, &open_before, None).await.unwrap();
    let mut before_stalled = hub.watch(&caller, &rt, &open_before, None).await.unwrap();
    assert_eq!(
        next(&mut before_reader).await.1["event"]["kind"],
        "snapshot"
    );

    hub.resize(2, 16);
    let settings = hub.settings();
    assert_eq!((settings.viewer_queue, settings.backlog), (2, 16));

    let opened_after = echo_worker(&runtime).await;
    let mut reader = hub.watch(&caller, &rt, &opened_after, None).await.unwrap();
    let stalled = hub.watch(&caller, &rt, &opened_after, None).await.unwrap();
    assert_eq!(next(&mut reader).await.1["event"]["kind"], "snapshot");
    // Each input is an input and an output event: the idle viewer's queue of 2
    // overflows while the reader keeps up; one of 1024 does not.
    for text in ["a\n", "b\n", "c\n"] {
        runtime.input(&opened_after, text.into()).await.unwrap();
        read_outputs(&mut reader, 1).await;
        runtime.input(&open_before, text.into()).await.unwrap();
        read_outputs(&mut before_reader, 1).await;
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(20), stalled.ended())
            .await
            .expect("the stream opened after the resize cuts its slow viewer off"),
        switchyard_runtime::StreamEnd::SlowConsumer
    );
    // The stream that was open keeps its queue: its idle viewer has every event.
    assert_eq!(
        next(&mut before_stalled).await.1["event"]["kind"],
        "snapshot"
    );
    read_outputs(&mut before_stalled, 3).await;
}

/// A newcomer's first frame is a snapshot of the worker as it is: after a few
/// events it gets the channel's snapshot and those events; after many, a fresh
/// snapshot and then only what happens next (not the backlog replayed).
#[tokio::test]
async fn a_newcomer_gets_the_worker_as_it_is_not_a_long_replay() {
    let (runtime, hub, worker) = setup(Arc::new(AllowAll)).await;
    let rt = RuntimeId::new("local").unwrap();
    let mut first = watching(&hub, &rt, &worker).await;
    // Reads `inputs` inputs' input and output events from `viewer`.
    async fn drain(viewer: &mut Viewer, inputs: usize) {
        for _ in 0..inputs * 2 {
            next(viewer).await;
        }
    }
    // Sends `text` and returns the newcomer's frames up to its output, kinds and
    // the snapshot's input count.
    async fn join_and_send(
        hub: &ObservationHub,
        runtime: &Runtime,
        worker: &WorkerId,
        text: &str,
    ) -> (Vec<String>, u64) {
        let rt = RuntimeId::new("local").unwrap();
        let mut newcomer = hub.watch(&Caller::open(), &rt, worker, None).await.unwrap();
        let (_, snapshot) = next(&mut newcomer).await;
        assert_eq!(snapshot["event"]["kind"], "snapshot", "{snapshot}");
        let counted = snapshot["event"]["worker"]["input_count"].as_u64().unwrap();
        runtime.input(worker, text.into()).await.unwrap();
        let mut kinds = Vec::new();
        loop {
            let (_, frame) = next(&mut newcomer).await;
            let kind = frame["event"]["kind"].as_str().unwrap().to_owned();
            let done = kind == "output" && frame["event"]["text"] == text;
            kinds.push(kind);
            if done {
                return (kinds, counted);
            }
        }
    }

    for i in 0..3 {
        runtime.input(&worker, format!("few {i}")).await.unwrap();
    }
    drain(&mut first, 3).await;
    let (kinds, counted) = join_and_send(&hub, &runtime, &worker, "now").await;
    assert_eq!(
        (kinds.len(), counted),
        (6 + 2, 0),
        "the channel's snapshot and the few events after it: {kinds:?}"
    );
    drain(&mut first, 1).await;

    for i in 0..100 {
        runtime.input(&worker, format!("many {i}")).await.unwrap();
        drain(&mut first, 1).await;
    }
    let (kinds, counted) = join_and_send(&hub, &runtime, &worker, "later").await;
    assert_eq!(
        (kinds, counted),
        (vec!["input".to_owned(), "output".to_owned()], 104),
        "a fresh snapshot, then what happens next"
    );
    // The first viewer saw no refresh meant for the newcomer.
    drain(&mut first, 1).await;
    runtime.input(&worker, "last".into()).await.unwrap();
    let (_, input) = next(&mut first).await;
    assert_eq!(input["event"]["text"], "last", "{input}");
}

/// A viewer that resumes a worker nobody watches (the channel opens its upstream
/// from the viewer's cursor) is owed the runtime's replay, which arrives as fast as
/// the runtime sends it: up to a backlog of it must not cut the viewer off as slow,
/// whatever its queue (2 here; 10 events are replayed before it reads any).
#[tokio::test]
async fn a_replay_the_viewer_asked_for_does_not_cut_it_off_as_slow() {
    let (runtime, hub, worker) = setup(Arc::new(AllowAll)).await;
    let (caller, rt) = (Caller::open(), RuntimeId::new("local").unwrap());
    hub.resize(2, 16);
    let mut first = hub.watch(&caller, &rt, &worker, None).await.unwrap();
    let cursor = next(&mut first).await.1["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(first);
    // The channel closes once its linger is over; five inputs and their outputs
    // follow while nobody watches.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while hub.channel_count() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the channel stays");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..5 {
        runtime.input(&worker, format!("{i}\n")).await.unwrap();
    }
    let mut resumed = hub
        .watch(&caller, &rt, &worker, Some(&cursor))
        .await
        .unwrap();
    // The replay reaches the viewer's queue before it reads.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut kinds = Vec::new();
    while kinds.len() < 10 {
        let (_, json) = next(&mut resumed).await;
        if json["type"] == "event" {
            kinds.push(json["event"]["kind"].as_str().unwrap().to_owned());
        }
    }
    kinds.sort();
    assert_eq!(kinds, [["input"; 5], ["output"; 5]].concat());
}
