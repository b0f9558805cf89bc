//! The observation hub's upstream against a runtime that misbehaves: it is retried
//! with growing waits, never in a loop, and its viewers are told, not flooded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use switchyard_protocol::{RuntimeId, WorkerId};
use switchyard_registry::{
    AllowAll, Caller, HubSettings, ObservationHub, RegisteredRuntime, RuntimeRegistry, Viewer,
};
use switchyard_runtime::{Runtime, RuntimeConfig, RuntimeLimits};

mod support;
use support::{Probe, Subscriptions, Uses, echo_worker};

/// How a viewer's stream went while a runtime misbehaved for a while.
#[derive(Debug)]
struct Watched {
    subscriptions: usize,
    resets: usize,
    lost: Vec<serde_json::Value>,
    restored: usize,
}

/// An echo worker on runtime `a`, seen through a probe whose subscriptions get
/// `events`, and a hub over it with `settings`; the probe's use counts.
async fn probed(
    events: Subscriptions,
    settings: HubSettings,
) -> (Runtime, WorkerId, ObservationHub, Arc<Uses>) {
    let runtime = Runtime::in_memory(RuntimeConfig::new(RuntimeId::new("a").unwrap(), "a")).await;
    let worker = echo_worker(&runtime).await;
    let probe = Probe {
        events,
        ..Probe::new(&runtime)
    };
    let uses = probe.uses.clone();
    (runtime, worker, hub_over(probe, settings), uses)
}

/// A hub with `settings` over runtime `a`, seen through `probe`.
fn hub_over(probe: Probe, settings: HubSettings) -> ObservationHub {
    let registry = Arc::new(
        RuntimeRegistry::new(
            vec![
                RegisteredRuntime::new(RuntimeId::new("a").unwrap(), "A", Arc::new(probe))
                    .with_call_timeout(Duration::from_secs(5)),
            ],
            Arc::new(AllowAll),
        )
        .unwrap(),
    );
    ObservationHub::new(registry, settings)
}

/// A viewer of `worker` on runtime `a`, from its start.
async fn watching(hub: &ObservationHub, worker: &WorkerId) -> Viewer {
    hub.watch(&Caller::open(), &RuntimeId::new("a").unwrap(), worker, None)
        .await
        .unwrap()
}

/// Watches one worker of a runtime whose subscriptions get `events` for `window`,
/// with waits from 50 ms, doubling up to 10 s.
async fn watch_for(events: Subscriptions, window: Duration) -> Watched {
    let (_runtime, worker, hub, uses) = probed(events, {
        let mut settings = HubSettings::default();
        settings.backoff_initial = Duration::from_millis(50);
        settings.backoff_max = Duration::from_secs(10);
        settings
    })
    .await;
    let mut viewer = watching(&hub, &worker).await;
    let mut watched = Watched {
        subscriptions: 0,
        resets: 0,
        lost: Vec::new(),
        restored: 0,
    };
    let until = tokio::time::Instant::now() + window;
    while let Ok(frame) = tokio::time::timeout_at(until, viewer.next_frame()).await {
        let frame: serde_json::Value =
            serde_json::from_str(&frame.expect("the stream stays open").to_json().unwrap())
                .unwrap();
        match (frame["type"].as_str(), frame["state"].as_str()) {
            (Some("reset"), _) => watched.resets += 1,
            (Some("upstream"), Some("lost")) => watched.lost.push(frame),
            (Some("upstream"), Some("restored")) => watched.restored += 1,
            _ => {}
        }
    }
    watched.subscriptions = uses.subscribe.load(Ordering::SeqCst);
    watched
}

/// A runtime that refuses even a subscription without a cursor as `invalid_cursor`
/// (it lies: there is no cursor to be invalid) is a protocol error, waited out like
/// any failure: no reset for the viewer to act on, no retry loop.
#[tokio::test]
async fn a_runtime_refusing_every_subscription_as_an_invalid_cursor_is_waited_out() {
    let watched = watch_for(Subscriptions::CursorRefused, Duration::from_millis(1500)).await;
    // Waits of 50, 100, 200, 400, 800 ms (+ up to 30 % jitter) fit at most five
    // retries in 1.5 s; the loop this replaced made thousands.
    assert!((2..=6).contains(&watched.subscriptions), "{watched:?}");
    assert_eq!(watched.resets, 0, "{watched:?}");
    assert_eq!(
        watched.lost.len(),
        1,
        "lost once, until restored: {watched:?}"
    );
    assert_eq!(
        watched.lost[0]["error"]["code"], "runtime_protocol_error",
        "{watched:?}"
    );
}

/// A runtime that accepts each subscription and breaks it at once is retried with
/// growing waits: a stream starts the waits over only once it has stayed up.
#[tokio::test]
async fn a_stream_that_breaks_at_once_is_retried_ever_more_slowly() {
    let watched = watch_for(Subscriptions::BreakAfterFirst, Duration::from_millis(1500)).await;
    assert!((2..=6).contains(&watched.subscriptions), "{watched:?}");
    // Each break is told (lost), and each retry the runtime accepts (restored); the
    // window may end between a subscription and its break.
    let (subscribed, lost) = (watched.subscriptions, watched.lost.len());
    assert!(lost == subscribed || lost + 1 == subscribed, "{watched:?}");
    assert!(
        watched.restored + 1 == lost || watched.restored == lost,
        "{watched:?}"
    );
}

/// A runtime whose every stream ends in a refresh at once (a gap after each
/// snapshot, so viewers reset and ask for a fresh one) is resubscribed with the
/// growing waits failures get, not in a loop (thousands a second before).
#[tokio::test]
async fn a_runtime_provoking_a_refresh_on_every_stream_is_paced() {
    let watched = watch_for(Subscriptions::GapAfterSnapshot, Duration::from_millis(1500)).await;
    // Waits of 50, 100, 200, 400, 800 ms (+ up to 30 % jitter) fit at most six
    // subscriptions in 1.5 s.
    assert!((2..=7).contains(&watched.subscriptions), "{watched:?}");
    assert!(watched.resets >= 1, "{watched:?}");
    assert!(watched.lost.is_empty(), "not a failure: {watched:?}");
}

/// An upstream that stayed up at least `backoff_max` and then broke is
/// reconnected after the first wait again, however often that happens: only a
/// stream that breaks before then makes the waits grow. (Tokio's clock is paused:
/// the waits are exact, jitter aside.)
#[tokio::test(start_paused = true)]
async fn a_stream_that_stayed_up_long_enough_is_reconnected_at_once_each_time() {
    let initial = Duration::from_millis(50);
    let (_runtime, worker, hub, uses) =
        probed(Subscriptions::BreakAfterHealthy(Duration::from_secs(2)), {
            let mut settings = HubSettings::default();
            settings.backoff_initial = initial;
            settings.backoff_max = Duration::from_secs(1);
            settings
        })
        .await;
    let mut viewer = watching(&hub, &worker).await;
    let until = tokio::time::Instant::now() + Duration::from_secs(12);
    while let Ok(frame) = tokio::time::timeout_at(until, viewer.next_frame()).await {
        frame.expect("the stream stays open");
    }
    let subscribed = uses.subscribed_at.lock().unwrap().clone();
    let broke = uses.broke_at.lock().unwrap().clone();
    assert!(broke.len() >= 4, "{broke:?}");
    // Each break is followed by the next subscription after the first wait
    // (+ up to 30 % jitter), not 100, 200, 400, 800 ms, ...
    for (n, broke_at) in broke.iter().enumerate() {
        let Some(next) = subscribed.get(n + 1) else {
            break;
        };
        let waited = *next - *broke_at;
        assert!(
            waited >= initial && waited <= initial.mul_f64(1.3),
            "reconnect {n} waited {waited:?}"
        );
    }
}

/// While the upstream is lost, a newcomer gets the last known state (the
/// channel's snapshot and every event after it), however many events that is: no
/// fresh snapshot can come until the runtime is back.
#[tokio::test]
async fn a_newcomer_while_the_upstream_is_lost_gets_the_last_known_state() {
    const INPUTS: usize = 40;
    // The snapshot and the events of all inputs but the last; then it breaks.
    let (runtime, worker, hub, _) = probed(
        Subscriptions::FirstOnly(1 + 2 * INPUTS - 2),
        HubSettings::default(),
    )
    .await;
    let frame = |frame: switchyard_protocol::OutgoingFrame| -> serde_json::Value {
        serde_json::from_str(&frame.to_json().unwrap()).unwrap()
    };
    let mut first = watching(&hub, &worker).await;
    let snapshot = frame(
        tokio::time::timeout(Duration::from_secs(10), first.next_frame())
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(snapshot["event"]["kind"], "snapshot", "{snapshot}");
    for i in 0..INPUTS {
        runtime.input(&worker, format!("in {i}")).await.unwrap();
    }
    // The first viewer's frames up to the upstream's loss.
    loop {
        let next = frame(
            tokio::time::timeout(Duration::from_secs(10), first.next_frame())
                .await
                .expect("the upstream is lost in time")
                .unwrap(),
        );
        if next["type"] == "upstream" {
            assert_eq!(next["state"], "lost", "{next}");
            break;
        }
    }
    let mut newcomer = watching(&hub, &worker).await;
    let mut kinds = Vec::new();
    while let Ok(Ok(next)) =
        tokio::time::timeout(Duration::from_millis(500), newcomer.next_frame()).await
    {
        let next = frame(next);
        kinds.push(
            next["event"]["kind"]
                .as_str()
                .unwrap_or("upstream")
                .to_owned(),
        );
    }
    // Told the upstream is lost, then the last known state.
    assert_eq!(kinds[..2], ["upstream", "snapshot"], "{kinds:?}");
    // Far more than a newcomer is replayed while the upstream is up.
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "output" || *k == "input")
            .count(),
        2 * INPUTS - 2,
        "every event the channel has after its snapshot: {kinds:?}"
    );
}

/// Viewers that bring different cursors to a channel that has not connected yet (a
/// backend restarted, or its runtime down a while): the upstream opens from the
/// newest cursor, and when the runtime refuses that one (forged), from the next. A
/// viewer with a stale cursor, or a forged one, resets or waits alone: the viewer
/// whose cursor is good gets exactly what it missed, no reset.
#[tokio::test]
async fn an_expired_or_forged_cursor_does_not_reset_the_other_viewers_of_a_new_channel() {
    let (runtime, worker) = runtime_with(|limits| limits.event_backlog = 8).await;
    let (hub, down, uses) = switchable_hub(&runtime);
    // A first viewer notes an early cursor and the last one, after more events
    // than the runtime keeps (8), then leaves; the channel closes.
    let mut first = watching(&hub, &worker).await;
    assert_eq!(next_of(&mut first).await["event"]["kind"], "snapshot");
    let mut cursors = Vec::new();
    for i in 0..10 {
        runtime.input(&worker, format!("early {i}")).await.unwrap();
        for _ in 0..2 {
            cursors.push(
                next_of(&mut first).await["cursor"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    let (stale, good) = (cursors[0].clone(), cursors.last().unwrap().clone());
    drop(first);
    until_closed(&hub).await;
    runtime.input(&worker, "missed".into()).await.unwrap();

    // The runtime's events are down while three viewers come back: the stale
    // cursor first (it opens the channel), then a forged one far ahead, then the
    // good one.
    down.store(true, Ordering::SeqCst);
    let a = RuntimeId::new("a").unwrap();
    let position = |cursor: &str| {
        switchyard_registry::BackendCursor::decode_for(cursor, &a, &worker)
            .unwrap()
            .position
    };
    let (stale_at, good_at) = (position(&stale), position(&good));
    let forged = switchyard_registry::BackendCursor {
        position: good_at + 1_000_000,
        ..switchyard_registry::BackendCursor::decode_for(&good, &a, &worker).unwrap()
    }
    .encode();
    let mut viewers = Vec::new();
    for cursor in [&stale, &forged, &good] {
        viewers.push(
            hub.watch(&Caller::open(), &a, &worker, Some(cursor))
                .await
                .unwrap(),
        );
    }
    let (mut caught_up, mut forger, mut behind) = (
        viewers.pop().unwrap(),
        viewers.pop().unwrap(),
        viewers.pop().unwrap(),
    );
    down.store(false, Ordering::SeqCst);

    // The good cursor's viewer: told of the loss and the return, then exactly the
    // missed input and its echo, no reset.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let frame = next_of(&mut caught_up).await;
        assert_ne!(frame["type"], "reset", "{frame}");
        if frame["type"] == "event" {
            seen.push(frame["event"]["kind"].as_str().unwrap().to_owned());
            assert_eq!(frame["event"]["text"], "missed", "{frame}");
        }
    }
    assert_eq!(seen, ["input", "output"]);
    // The stale one resets alone and starts over from a snapshot.
    expect_reset(&mut behind, "cursor_expired").await;
    // Once the runtime was back, the upstream tried the forged cursor, then the
    // good one, never the stale one (only while down, when it opened the channel).
    let resumed: Vec<Option<u64>> = uses.resumed_after.lock().unwrap().clone();
    let back = resumed
        .iter()
        .position(|r| *r == Some(good_at + 1_000_000))
        .unwrap_or_else(|| panic!("the forged cursor tried: {resumed:?}"));
    assert_eq!(resumed[back + 1], Some(good_at), "{resumed:?}");
    assert!(!resumed[back..].contains(&Some(stale_at)), "{resumed:?}");
    // The forger, whose cursor the runtime refused, resets alone and starts over.
    expect_reset(&mut forger, "cursor_expired").await;
}

/// Reads `viewer` past `upstream` frames to a reset for `reason`, then its snapshot.
async fn expect_reset(viewer: &mut Viewer, reason: &str) {
    loop {
        let frame = next_of(viewer).await;
        if frame["type"] == "reset" {
            assert_eq!(frame["reason"], reason, "{frame}");
            break;
        }
        assert_eq!(frame["type"], "upstream", "{frame}");
    }
    assert_eq!(next_of(viewer).await["event"]["kind"], "snapshot");
}

/// A tab idle since before its runtime restarted brings a cursor of the earlier
/// epoch, further along than a good cursor of the current one; the runtime answers
/// it with a reset (`runtime_restarted`), not a refusal. The channel then opens
/// from the good cursor: that viewer gets what it missed, and only the old tab
/// resets.
#[tokio::test]
async fn a_cursor_of_an_earlier_epoch_does_not_reset_the_viewers_of_this_one() {
    let (runtime, worker) = runtime_with(|_| {}).await;
    let (hub, down, _) = switchable_hub(&runtime);
    let mut first = watching(&hub, &worker).await;
    assert_eq!(next_of(&mut first).await["event"]["kind"], "snapshot");
    runtime.input(&worker, "early".into()).await.unwrap();
    next_of(&mut first).await;
    let good = next_of(&mut first).await["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(first);
    until_closed(&hub).await;
    runtime.input(&worker, "missed".into()).await.unwrap();
    let a = RuntimeId::new("a").unwrap();
    let good_cursor = switchyard_registry::BackendCursor::decode_for(&good, &a, &worker).unwrap();
    let earlier = switchyard_registry::BackendCursor {
        epoch: "earlierepoch1".into(),
        position: good_cursor.position + 500,
        ..good_cursor
    }
    .encode();
    down.store(true, Ordering::SeqCst);
    let mut old_tab = hub
        .watch(&Caller::open(), &a, &worker, Some(&earlier))
        .await
        .unwrap();
    let mut good_viewer = hub
        .watch(&Caller::open(), &a, &worker, Some(&good))
        .await
        .unwrap();
    down.store(false, Ordering::SeqCst);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let frame = next_of(&mut good_viewer).await;
        assert_ne!(frame["type"], "reset", "the good viewer was reset: {frame}");
        if frame["type"] == "event" {
            assert_eq!(frame["event"]["text"], "missed", "{frame}");
            seen.push(frame["event"]["kind"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen, ["input", "output"]);
    expect_reset(&mut old_tab, "runtime_restarted").await;
}

fn frame_of(frame: switchyard_protocol::OutgoingFrame) -> serde_json::Value {
    serde_json::from_str(&frame.to_json().unwrap()).unwrap()
}

/// The next frame of `viewer` as JSON (within ten seconds).
async fn next_of(viewer: &mut Viewer) -> serde_json::Value {
    frame_of(
        tokio::time::timeout(Duration::from_secs(10), viewer.next_frame())
            .await
            .expect("a frame in time")
            .unwrap(),
    )
}

/// When every waiting cursor is refused in turn (an earlier epoch's, then one the
/// runtime no longer holds), each viewer is told to reset once, then gets its
/// snapshot: never two resets in a row.
#[tokio::test]
async fn a_viewer_refused_then_reset_with_everyone_gets_one_reset() {
    let (runtime, worker) = runtime_with(|limits| limits.event_backlog = 4).await;
    let (hub, down, _) = switchable_hub(&runtime);
    let mut first = watching(&hub, &worker).await;
    let stale = next_of(&mut first).await["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(first);
    until_closed(&hub).await;
    for i in 0..5 {
        runtime
            .input(&worker, format!("past the backlog {i}"))
            .await
            .unwrap();
    }
    let a = RuntimeId::new("a").unwrap();
    let earlier = switchyard_registry::BackendCursor {
        epoch: "earlierepoch1".into(),
        position: 1_000,
        ..switchyard_registry::BackendCursor::decode_for(&stale, &a, &worker).unwrap()
    }
    .encode();
    down.store(true, Ordering::SeqCst);
    let mut viewers = Vec::new();
    for cursor in [&earlier, &stale] {
        viewers.push(
            hub.watch(&Caller::open(), &a, &worker, Some(cursor))
                .await
                .unwrap(),
        );
    }
    down.store(false, Ordering::SeqCst);
    for (viewer, reason) in viewers
        .iter_mut()
        .zip(["runtime_restarted", "cursor_expired"])
    {
        expect_reset(viewer, reason).await;
        // After the snapshot: nothing but what happens next, no second reset.
        runtime.input(&worker, "after".into()).await.unwrap();
        loop {
            let frame = next_of(viewer).await;
            assert_ne!(frame["type"], "reset", "{frame}");
            if frame["event"]["text"] == "after" {
                break;
            }
        }
    }
}

/// A hub over `runtime` whose channels close 50 ms after their last viewer and
/// retry from 50 ms, with the switch that takes the runtime's events down and
/// its probe's use counts.
fn switchable_hub(runtime: &Runtime) -> (ObservationHub, Arc<AtomicBool>, Arc<Uses>) {
    let probe = Probe::new(runtime);
    let (down, uses) = (probe.events_down.clone(), probe.uses.clone());
    let hub = hub_over(probe, {
        let mut settings = HubSettings::default();
        settings.linger = Duration::from_millis(50);
        settings.backoff_initial = Duration::from_millis(50);
        settings
    });
    (hub, down, uses)
}

/// Waits until every channel of `hub` has closed.
async fn until_closed(hub: &ObservationHub) {
    while hub.channel_count() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The channel's backlog is bounded in bytes as well as in events: after large
/// events, a viewer resuming within what the bytes allow gets exactly what it
/// missed, one resuming from further back resets.
#[tokio::test]
async fn the_channel_backlog_holds_at_most_its_bytes() {
    let (runtime, worker) = runtime_with(|limits| limits.max_input_bytes = 2 * 1024 * 1024).await;
    let (hub, _, _) = switchable_hub(&runtime);
    let mut first = watching(&hub, &worker).await;
    assert_eq!(next_of(&mut first).await["event"]["kind"], "snapshot");
    // 20 inputs of 1 MiB, each echoed: 40 events of about 1 MiB.
    let mut cursors = Vec::new();
    for i in 0..20 {
        let text = format!("{i:02}{}", "x".repeat(1024 * 1024));
        runtime.input(&worker, text).await.unwrap();
        for _ in 0..2 {
            cursors.push(
                next_of(&mut first).await["cursor"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
    let a = RuntimeId::new("a").unwrap();
    // 15 events of 1 MiB fit in 16 MiB: from 10 back, exactly the 10.
    let mut recent = hub
        .watch(&Caller::open(), &a, &worker, Some(&cursors[29]))
        .await
        .unwrap();
    for _ in 0..10 {
        let frame = next_of(&mut recent).await;
        assert_eq!(
            frame["type"],
            "event",
            "no reset: {}",
            &frame.to_string()[..80]
        );
    }
    // From 20 back: gone from the channel (not from 40 events' worth of room).
    let mut older = hub
        .watch(&Caller::open(), &a, &worker, Some(&cursors[19]))
        .await
        .unwrap();
    assert_eq!(next_of(&mut older).await["type"], "reset");
}

/// Runtime `a` in memory with its limits as `set` leaves them, and an echo worker.
async fn runtime_with(set: impl FnOnce(&mut RuntimeLimits)) -> (Runtime, WorkerId) {
    let mut config = RuntimeConfig::new(RuntimeId::new("a").unwrap(), "a");
    set(&mut config.limits);
    let runtime = Runtime::in_memory(config).await;
    let worker = echo_worker(&runtime).await;
    (runtime, worker)
}
