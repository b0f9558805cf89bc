//! One watched worker: exactly one upstream subscription shared by all its viewers.
//!
//! The channel task owns the upstream: it opens it when the channel is created, reads
//! it, applies each item to the channel state (dedupe, backlog, latest snapshot) and
//! publishes it to the viewers' bounded queues; it reconnects with capped exponential
//! backoff and jitter when the upstream drops, and ends a short while (`linger`) after
//! the last viewer has left.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use switchyard_protocol::{
    ErrorCode, ErrorDetail, EventKind, EventPayload, ResetReason, RuntimeId, UpstreamState,
    WorkerEvent, WorkerId,
};
use switchyard_runtime::{EVENT_BACKLOG_BYTES, Fanout, FanoutReceiver, StreamEnd};
use tokio::sync::Notify;

use super::HubInner;
use super::commands::CommandLane;
use super::cursor::BackendCursor;
use crate::error::SourceError;
use crate::metrics::ChannelMetrics;
use crate::registry::RuntimeRegistry;
use crate::source::{ResumePoint, RuntimeSource, SourceEnd, SourceItem};

/// Tuning of the hub, for [`crate::ObservationHub::new`].
///
/// Settings may be added, so start from [`HubSettings::default`] and set fields:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use switchyard_registry::{AllowAll, HubSettings, ObservationHub, RuntimeRegistry};
///
/// let mut settings = HubSettings::default();
/// settings.viewer_queue = 256;
/// settings.linger = Duration::from_secs(5);
/// let registry = RuntimeRegistry::new(Vec::new(), Arc::new(AllowAll)).unwrap();
/// let hub = ObservationHub::new(Arc::new(registry), settings);
/// # drop(hub);
/// ```
///
/// A struct literal (even one that ends with `..HubSettings::default()`) does not
/// compile:
///
/// ```compile_fail
/// use switchyard_registry::HubSettings;
///
/// let settings = HubSettings {
///     viewer_queue: 256,
///     ..HubSettings::default()
/// };
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct HubSettings {
    /// Items queued per viewer before it is cut off (4408).
    pub viewer_queue: usize,
    /// Events kept per watched worker for viewers that resume or join late.
    pub backlog: usize,
    /// How long an upstream stays open after its last viewer left.
    pub linger: Duration,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
}

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            viewer_queue: 1024,
            backlog: 4096,
            linger: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// An event with its place in the runtime's log, and its frame encoded once for
/// every viewer that receives it unchanged.
#[derive(Debug, Clone)]
pub(crate) struct Stamped {
    pub(crate) epoch: Arc<str>,
    pub(crate) position: u64,
    pub(crate) event: Arc<EventPayload>,
    encoded: Arc<OnceLock<Arc<str>>>,
}

/// The JSON shape of a backend event frame, borrowing its parts (pinned against
/// `ServerFrame` by a test).
#[derive(serde::Serialize)]
struct EventFrame<'a> {
    r#type: &'static str,
    cursor: &'a str,
    runtime_id: &'a RuntimeId,
    worker_id: &'a WorkerId,
    event: &'a EventPayload,
}

impl Stamped {
    pub(crate) fn new(epoch: Arc<str>, position: u64, event: Arc<EventPayload>) -> Self {
        Self {
            epoch,
            position,
            event,
            encoded: Arc::default(),
        }
    }

    /// A copy with a frame cell of its own: what the backlog keeps, and what a
    /// replay from it gets, so that the frame the live viewers encode (or a
    /// resuming one does) is never kept as long as the backlog keeps the event
    /// (which would double what a busy worker's backlog holds).
    fn unshared(&self) -> Self {
        Self {
            encoded: Arc::default(),
            ..self.clone()
        }
    }

    pub(crate) fn is_snapshot(&self) -> bool {
        self.event.kind() == EventKind::Snapshot
    }

    /// Its size in memory, near enough: its text (or JSON) and a fixed overhead.
    fn bytes(&self) -> usize {
        const OVERHEAD: usize = 96;
        OVERHEAD
            + match &*self.event {
                EventPayload::Json { json, .. } => json.get().len(),
                EventPayload::Decoded(event) => match &**event {
                    WorkerEvent::Input { text, .. } | WorkerEvent::Output { text, .. } => {
                        text.len()
                    }
                    _ => 0,
                },
            }
    }

    /// The backend cursor of this event.
    pub(crate) fn cursor(&self, runtime_id: &RuntimeId, worker_id: &WorkerId) -> BackendCursor {
        BackendCursor {
            runtime_id: runtime_id.clone(),
            worker_id: worker_id.clone(),
            epoch: self.epoch.to_string(),
            position: self.position,
        }
    }

    /// The frame's JSON text, encoded on first use and shared afterwards.
    pub(crate) fn encoded(&self, runtime_id: &RuntimeId, worker_id: &WorkerId) -> Arc<str> {
        self.encoded
            .get_or_init(|| {
                let cursor = self.cursor(runtime_id, worker_id).encode();
                if let EventPayload::Json { json, .. } = &*self.event {
                    return raw_event_frame(&cursor, runtime_id, worker_id, json.get()).into();
                }
                let frame = EventFrame {
                    r#type: "event",
                    cursor: &cursor,
                    runtime_id,
                    worker_id,
                    event: &self.event,
                };
                match serde_json::to_string(&frame) {
                    Ok(text) => text.into(),
                    // Worker events are plain data; this cannot fail.
                    Err(error) => unreachable!("a worker event always encodes: {error}"),
                }
            })
            .clone()
    }
}

/// An event frame around an event object's JSON text, written as [`EventFrame`]
/// serialises (the cursor is base64url and ids are `[A-Za-z0-9._-]`, which JSON
/// writes as they are), in one allocation of the right size.
fn raw_event_frame(
    cursor: &str,
    runtime_id: &RuntimeId,
    worker_id: &WorkerId,
    event: &str,
) -> String {
    const PARTS: [&str; 5] = [
        "{\"type\":\"event\",\"cursor\":\"",
        "\",\"runtime_id\":\"",
        "\",\"worker_id\":\"",
        "\",\"event\":",
        "}",
    ];
    let values = [cursor, runtime_id.as_str(), worker_id.as_str(), event];
    let mut frame = String::with_capacity(
        PARTS.iter().map(|p| p.len()).sum::<usize>()
            + values.iter().map(|v| v.len()).sum::<usize>(),
    );
    for (part, value) in PARTS.iter().zip(values) {
        frame.push_str(part);
        frame.push_str(value);
    }
    frame.push_str(PARTS[4]);
    frame
}

/// What the channel publishes to its viewers.
#[derive(Debug, Clone)]
pub(crate) enum HubItem {
    Event(Stamped),
    Reset(ResetReason),
    /// The runtime refused the cursor of the viewers that brought this one to a
    /// channel not yet connected, which opened from another: those viewers (and
    /// only they) reset and start over from a snapshot.
    Refused {
        point: ResumePoint,
        reason: ResetReason,
    },
    Upstream {
        state: UpstreamState,
        error: Option<ErrorDetail>,
    },
}

struct ChannelState {
    epoch: Option<Arc<str>>,
    last_position: u64,
    snapshot: Option<Stamped>,
    /// At most `backlog` events and [`EVENT_BACKLOG_BYTES`] (the newest always).
    backlog: VecDeque<Stamped>,
    /// What `backlog` holds, as [`Stamped::bytes`] counts.
    backlog_bytes: usize,
    fanout: Fanout<HubItem>,
    lost: Option<ErrorDetail>,
    /// Set once the channel has ended its viewers: a viewer that joins afterwards
    /// (it found the channel just before) is ended at once, the same way.
    closed: Option<StreamEnd>,
    /// The cursors of viewers that joined before the channel knew its epoch (at
    /// most [`MAX_WAITING`], the newest kept): the upstream opens from the newest
    /// of them, so one viewer's stale or forged cursor cannot decide for the
    /// others (see [`Channel::opening_point`]). Emptied once connected.
    waiting: Vec<ResumePoint>,
}

/// Cursors of early viewers a channel keeps to open its upstream from.
const MAX_WAITING: usize = 16;

/// A viewer's cursor the channel cannot follow: ahead of everything the stream has
/// reached, by more than the channel's backlog (a forged or corrupted cursor; a
/// replica of the backend that lags the one that minted it is within that).
#[derive(Debug)]
pub(crate) struct CursorAhead;

/// The shared state of one watched worker.
pub(crate) struct Channel {
    pub(crate) runtime_id: RuntimeId,
    pub(crate) worker_id: WorkerId,
    settings: HubSettings,
    state: Mutex<ChannelState>,
    viewers: AtomicUsize,
    viewers_changed: Notify,
    refresh: Notify,
    /// A reload replaced the runtime: subscribe through its new source now.
    source_replaced: Notify,
    /// Set when the hub ends the channel from outside (its runtime was removed).
    retired: AtomicBool,
    retire: Notify,
    metrics: ChannelMetrics,
    /// Interactive viewers' commands, started with the first of them.
    commands: OnceLock<CommandLane>,
}

/// What a joining viewer starts from.
pub(crate) struct Join {
    /// The viewer came with a cursor: it holds what came before it.
    pub(crate) resumed: bool,
    pub(crate) initial: VecDeque<HubItem>,
    pub(crate) awaiting_snapshot: bool,
    pub(crate) last: Option<(Arc<str>, u64)>,
    pub(crate) live: FanoutReceiver<HubItem>,
}

impl Channel {
    pub(crate) fn new(
        runtime_id: RuntimeId,
        worker_id: WorkerId,
        settings: HubSettings,
        metrics: ChannelMetrics,
    ) -> Self {
        Self {
            metrics,
            runtime_id,
            worker_id,
            settings,
            state: Mutex::new(ChannelState {
                epoch: None,
                last_position: 0,
                snapshot: None,
                backlog: VecDeque::new(),
                backlog_bytes: 0,
                fanout: Fanout::new(settings.viewer_queue),
                lost: None,
                closed: None,
                waiting: Vec::new(),
            }),
            viewers: AtomicUsize::new(0),
            viewers_changed: Notify::new(),
            refresh: Notify::new(),
            source_replaced: Notify::new(),
            retired: AtomicBool::new(false),
            retire: Notify::new(),
            commands: OnceLock::new(),
        }
    }

    /// The worker's command lane, started on first use.
    pub(crate) fn commands(&self, registry: &Arc<RuntimeRegistry>) -> CommandLane {
        self.commands
            .get_or_init(|| {
                CommandLane::start(
                    registry.clone(),
                    self.runtime_id.clone(),
                    self.worker_id.clone(),
                )
            })
            .for_viewer()
    }

    fn state(&self) -> MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn viewer_count(&self) -> usize {
        self.viewers.load(Ordering::SeqCst)
    }

    /// Counts a new viewer; called under the hub's map lock.
    pub(crate) fn add_viewer(&self) {
        self.viewers.fetch_add(1, Ordering::SeqCst);
        self.viewers_changed.notify_waiters();
    }

    /// Forgets a viewer (its guard dropped).
    pub(crate) fn remove_viewer(&self) {
        self.viewers.fetch_sub(1, Ordering::SeqCst);
        self.viewers_changed.notify_waiters();
    }

    /// Asks the task for a fresh snapshot (reconnect with the last cursor).
    pub(crate) fn request_refresh(&self) {
        self.refresh.notify_one();
    }

    /// Tells the task that its runtime's source was replaced: it leaves the old
    /// upstream (or a subscription attempt, or a backoff wait) and subscribes through
    /// the new source from its last position, at once.
    pub(crate) fn source_replaced(&self) {
        self.source_replaced.notify_one();
    }

    /// Registers a viewer atomically with respect to publishing: what it missed (from
    /// the backlog), or a snapshot, then live items. A cursor far ahead of the
    /// stream is refused ([`CursorAhead`]): its viewer would wait for events that
    /// never come.
    pub(crate) fn join(&self, cursor: Option<&BackendCursor>) -> Result<Join, CursorAhead> {
        let mut state = self.state();
        let mut initial = VecDeque::new();
        if let Some(error) = &state.lost {
            initial.push_back(HubItem::Upstream {
                state: UpstreamState::Lost,
                error: Some(error.clone()),
            });
        }
        let mut awaiting_snapshot = true;
        let mut last = None;
        // Room in this viewer's queue beyond the usual, for a replay it is owed.
        let mut replay_room = 0;
        if let Some(cursor) = cursor {
            match state.epoch.clone() {
                // Not connected yet: the upstream opens from the newest waiting
                // cursor; a viewer behind it notices the gap and resets. What the
                // runtime replays from there comes as live items, as fast as the
                // runtime sends them: up to a backlog of them, which this viewer
                // asked for, must not cut it off as slow.
                None => {
                    replay_room = self.settings.backlog;
                    awaiting_snapshot = false;
                    let epoch: Arc<str> = Arc::from(cursor.epoch.as_str());
                    last = Some((epoch.clone(), cursor.position));
                    wait_for(
                        &mut state.waiting,
                        ResumePoint {
                            epoch,
                            position: cursor.position,
                        },
                    );
                }
                Some(epoch) if *epoch != *cursor.epoch => {
                    initial.push_back(HubItem::Reset(ResetReason::RuntimeRestarted));
                }
                Some(_)
                    if cursor.position
                        > state
                            .last_position
                            .saturating_add(self.settings.backlog as u64) =>
                {
                    return Err(CursorAhead);
                }
                Some(epoch) => {
                    let first_held = state
                        .backlog
                        .front()
                        .map_or(state.last_position.saturating_add(1), |e| e.position);
                    if cursor.position.saturating_add(1) >= first_held
                        || cursor.position >= state.last_position
                    {
                        awaiting_snapshot = false;
                        last = Some((epoch, cursor.position));
                        initial.extend(
                            state
                                .backlog
                                .iter()
                                .filter(|e| e.position > cursor.position)
                                .map(|e| HubItem::Event(e.unshared())),
                        );
                    } else {
                        initial.push_back(HubItem::Reset(ResetReason::CursorExpired));
                    }
                }
            }
        }
        if awaiting_snapshot {
            match usable_snapshot(&state) {
                // A snapshot with few events after it: those events, replayed, bring
                // the newcomer to now. (With more, a fresh snapshot is cheaper for
                // the newcomer, and says what the worker is now, not then; but while
                // the upstream is lost none can come, and the last known state is
                // better than nothing.)
                Some(snapshot)
                    if state.lost.is_some()
                        || state.last_position.saturating_sub(snapshot.position)
                            <= MAX_REPLAY_AFTER_SNAPSHOT =>
                {
                    let after = snapshot.position;
                    initial.push_back(HubItem::Event(snapshot));
                    initial.extend(
                        state
                            .backlog
                            .iter()
                            .filter(|e| e.position > after)
                            .map(|e| HubItem::Event(e.unshared())),
                    );
                }
                // Connected but no recent snapshot covers the backlog: get a fresh
                // one. (Not connected yet: the first subscription brings one.)
                _ if state.epoch.is_some() => self.request_refresh(),
                _ => {}
            }
        }
        let live = state.fanout.subscribe_with_room(replay_room);
        if let Some(reason) = state.closed {
            state.fanout.close(reason);
        }
        Ok(Join {
            resumed: cursor.is_some(),
            initial,
            awaiting_snapshot,
            last,
            live,
        })
    }

    /// Where a channel that has not connected yet opens its upstream: from the
    /// newest cursor its viewers brought (each one behind it resets on its own when
    /// the gap shows), so that an expired or forged cursor of one viewer does not
    /// reset the others. `None` once connected, or when nobody brought one.
    fn opening_point(&self) -> Option<ResumePoint> {
        let state = self.state();
        if state.epoch.is_some() {
            return None;
        }
        state.waiting.iter().max_by_key(|p| p.position).cloned()
    }

    /// The runtime refused to resume from `point`, a waiting cursor: as
    /// `invalid_cursor` (`reset` is `None`: that cursor alone), or with a reset as
    /// the stream's first item. Forgets it, and the waiting cursors a reset refuses
    /// with it: the whole epoch when the runtime has restarted since, the older ones
    /// of its epoch when it was too old. True if another is left to try: then the
    /// viewers that brought the refused ones are told to reset alone. False when
    /// none is left: the caller resets everyone.
    fn refused(&self, point: &ResumePoint, reset: Option<ResetReason>) -> bool {
        let mut state = self.state();
        let reason = reset.unwrap_or(ResetReason::CursorExpired);
        let refused_too = |waiting: &ResumePoint| {
            waiting == point
                || (waiting.epoch == point.epoch
                    && match reset {
                        None => false,
                        Some(ResetReason::RuntimeRestarted) => true,
                        Some(_) => waiting.position <= point.position,
                    })
        };
        let (refused, kept): (Vec<_>, Vec<_>) = state
            .waiting
            .drain(..)
            .partition(|waiting| refused_too(waiting));
        state.waiting = kept;
        if state.waiting.is_empty() {
            return false;
        }
        for point in refused {
            let cut_off = state.fanout.publish(&HubItem::Refused { point, reason });
            self.count_cut_off(cut_off);
        }
        true
    }

    /// Where to resume the upstream.
    fn resume_point(&self) -> Option<ResumePoint> {
        let state = self.state();
        state.epoch.clone().map(|epoch| ResumePoint {
            epoch,
            position: state.last_position,
        })
    }

    /// Applies one upstream item: dedupe, remember, publish.
    fn apply(&self, item: SourceItem) {
        let mut state = self.state();
        match item {
            SourceItem::Reset(reason) => {
                state.epoch = None;
                state.last_position = 0;
                state.snapshot = None;
                state.backlog.clear();
                state.backlog_bytes = 0;
                let cut_off = state.fanout.publish(&HubItem::Reset(reason));
                self.count_cut_off(cut_off);
            }
            SourceItem::Event {
                epoch,
                position,
                event,
            } => {
                let stamped = Stamped::new(epoch.clone(), position, self.owned(event));
                let same_epoch = state.epoch.as_deref() == Some(&*epoch);
                state.waiting.clear();
                if !same_epoch {
                    state.epoch = Some(epoch);
                    state.last_position = 0;
                    state.snapshot = None;
                    state.backlog.clear();
                    state.backlog_bytes = 0;
                }
                if stamped.is_snapshot() {
                    state.last_position = state.last_position.max(position);
                    state.snapshot = Some(stamped.clone());
                } else {
                    if position <= state.last_position {
                        return; // replayed after a reconnect: already published
                    }
                    state.last_position = position;
                    state.backlog_bytes += stamped.bytes();
                    state.backlog.push_back(stamped.unshared());
                    while state.backlog.len() > 1
                        && (state.backlog.len() > self.settings.backlog.max(1)
                            || state.backlog_bytes > EVENT_BACKLOG_BYTES)
                    {
                        if let Some(oldest) = state.backlog.pop_front() {
                            state.backlog_bytes -= oldest.bytes();
                        }
                    }
                }
                let cut_off = state.fanout.publish(&HubItem::Event(stamped));
                self.metrics.relayed.inc();
                self.count_cut_off(cut_off);
            }
        }
    }

    /// A remote names itself by its own id; viewers see the backend's id, as in REST.
    /// Only snapshots name a runtime, and they are rare: they alone are decoded.
    fn owned(&self, event: EventPayload) -> Arc<EventPayload> {
        if event.kind() != EventKind::Snapshot {
            return Arc::new(event);
        }
        match event.decode() {
            Ok(WorkerEvent::Snapshot {
                mut worker,
                transcript,
                terminal,
            }) if worker.runtime_id != self.runtime_id => {
                worker.runtime_id = self.runtime_id.clone();
                Arc::new(
                    WorkerEvent::Snapshot {
                        worker,
                        transcript,
                        terminal,
                    }
                    .into(),
                )
            }
            Ok(_) => Arc::new(event),
            Err(error) => {
                tracing::warn!(runtime_id = %self.runtime_id, %error, "a snapshot that does not decode is passed on as it is");
                Arc::new(event)
            }
        }
    }

    /// The code of the error the viewers were last told the upstream was lost
    /// with, while it is.
    fn lost_code(&self) -> Option<ErrorCode> {
        self.state().lost.as_ref().map(|error| error.code)
    }

    fn set_upstream(&self, lost: Option<ErrorDetail>) {
        let mut state = self.state();
        let item = match &lost {
            Some(error) => HubItem::Upstream {
                state: UpstreamState::Lost,
                error: Some(error.clone()),
            },
            None => HubItem::Upstream {
                state: UpstreamState::Restored,
                error: None,
            },
        };
        state.lost = lost;
        let cut_off = state.fanout.publish(&item);
        self.count_cut_off(cut_off);
    }

    fn count_cut_off(&self, viewers: usize) {
        if viewers > 0 {
            self.metrics.cut_off.inc_by(viewers as u64);
        }
    }

    fn close(&self, reason: StreamEnd) {
        let mut state = self.state();
        state.closed = Some(reason);
        state.fanout.close(reason);
    }

    /// Ends the channel from outside: its viewers end with `reason` (after what is
    /// already queued for them) and its task drops the upstream and stops. The hub
    /// has already forgotten it.
    pub(crate) fn retire(&self, reason: StreamEnd) {
        self.retired.store(true, Ordering::SeqCst);
        self.retire.notify_waiters();
        self.close(reason);
    }

    /// Resolves once the channel has been retired.
    async fn retired(&self) {
        loop {
            let notified = self.retire.notified();
            if self.retired.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    /// Resolves once nobody has watched for `linger`.
    async fn idle(&self) {
        loop {
            let changed = self.viewers_changed.notified();
            if self.viewer_count() == 0 {
                tokio::select! {
                    () = tokio::time::sleep(self.settings.linger) => {
                        if self.viewer_count() == 0 {
                            return;
                        }
                    }
                    () = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
}

/// Adds `point` to the waiting cursors, keeping the newest [`MAX_WAITING`].
fn wait_for(waiting: &mut Vec<ResumePoint>, point: ResumePoint) {
    if waiting.contains(&point) {
        return;
    }
    waiting.push(point);
    if waiting.len() > MAX_WAITING {
        let oldest = (0..waiting.len())
            .min_by_key(|&i| waiting[i].position)
            .unwrap_or(0);
        waiting.swap_remove(oldest);
    }
}

/// A subscription that ends in a refresh sooner than this after it opened is
/// followed by the growing wait failures get, not by a resubscription at once.
const QUICK_REFRESH: Duration = Duration::from_millis(250);

/// The most events a newcomer is sent after the channel's latest snapshot; past
/// this, the channel fetches a fresh snapshot for it.
const MAX_REPLAY_AFTER_SNAPSHOT: u64 = 64;

/// The latest snapshot, if every event after it is still in the backlog.
fn usable_snapshot(state: &ChannelState) -> Option<Stamped> {
    let snapshot = state.snapshot.as_ref()?;
    if state.epoch.as_deref() != Some(&*snapshot.epoch) {
        return None;
    }
    let covered = match state.backlog.front() {
        Some(first) => first.position <= snapshot.position.saturating_add(1),
        None => state.last_position == snapshot.position,
    };
    covered.then(|| snapshot.clone())
}

/// The error shown to viewers while the upstream is down. Never holds an address.
fn lost_detail(runtime_id: &RuntimeId, error: &SourceError) -> ErrorDetail {
    ErrorDetail::new(error.code(), error.to_string()).with_runtime(runtime_id.clone())
}

/// The channel task: owns the upstream until the worker is gone, nobody watches, or
/// the hub retires the channel (its runtime was removed).
pub(crate) async fn run(channel: Arc<Channel>, hub: Weak<HubInner>, resume: Option<ResumePoint>) {
    tokio::select! {
        () = upstream(channel.clone(), hub, resume) => {}
        () = channel.retired() => {}
    }
}

/// The source to subscribe through: the one its runtime has in the registry now, so
/// a runtime replaced by a reload is followed. `None` when the runtime is gone (or
/// the hub is).
fn current_source(hub: &Weak<HubInner>, channel: &Channel) -> Option<Arc<dyn RuntimeSource>> {
    hub.upgrade()?.source(&channel.runtime_id).ok()
}

async fn upstream(channel: Arc<Channel>, hub: Weak<HubInner>, mut resume: Option<ResumePoint>) {
    let settings = channel.settings;
    let mut backoff = settings.backoff_initial;
    let mut lost = false;
    // Since when the upstream has been up without a failure: resubscriptions the
    // channel asks for itself (a refresh, a new source) do not restart it.
    let mut up_since: Option<tokio::time::Instant> = None;
    loop {
        if lost {
            channel.metrics.reconnects.inc();
        }
        let opened_from = channel.opening_point();
        if let Some(opening) = &opened_from {
            resume = Some(opening.clone());
        }
        let Some(source) = current_source(&hub, &channel) else {
            // The runtime was removed (the hub closes such channels itself; this
            // covers one created just as its runtime went away).
            finish(&hub, &channel, StreamEnd::Removed);
            return;
        };
        let subscribed = tokio::select! {
            subscribed = source.subscribe(&channel.worker_id, resume.as_ref()) => subscribed,
            () = channel.source_replaced.notified() => continue,
            () = channel.idle() => {
                if leave(&hub, &channel) { return; }
                continue;
            }
        };
        match subscribed {
            Ok(mut stream) => {
                if lost {
                    lost = false;
                    channel.set_upstream(None);
                    tracing::info!(runtime_id = %channel.runtime_id, worker_id = %channel.worker_id, "upstream restored");
                }
                let opened = tokio::time::Instant::now();
                let healthy_from = *up_since.get_or_insert(opened);
                // Opened from a viewer's cursor, a reset first means the runtime
                // cannot resume from it: try the next viewer's before resetting all.
                let mut first_from = opened_from;
                // A reload gave the runtime a new source.
                let mut replaced = false;
                let ended = loop {
                    tokio::select! {
                        item = stream.next() => match item {
                            Ok(SourceItem::Reset(reason))
                                if first_from
                                    .take()
                                    .is_some_and(|point| channel.refused(&point, Some(reason))) =>
                            {
                                break None;
                            }
                            Ok(item) => {
                                first_from = None;
                                channel.apply(item);
                            }
                            Err(end) => break Some(end),
                        },
                        () = channel.refresh.notified() => break None,
                        () = channel.source_replaced.notified() => {
                            replaced = true;
                            break None;
                        }
                        () = channel.idle() => {
                            if leave(&hub, &channel) { return; }
                        }
                    }
                };
                resume = channel.resume_point();
                // Only an upstream that stayed up as long as the longest wait starts
                // the waits over: one the runtime accepts and then breaks at once (a
                // lying or failing runtime) is retried ever more slowly, not in a loop.
                if healthy_from.elapsed() >= settings.backoff_max {
                    backoff = settings.backoff_initial;
                }
                match ended {
                    // A new source: resubscribe through it now, however soon after
                    // this subscription opened (reloads are the operator's, one at a
                    // time, and not a failure of the runtime's).
                    None if replaced => continue,
                    // A refresh: resubscribe now, with a snapshot, unless this
                    // subscription ended in one moments after it was opened: a
                    // runtime that makes every subscription end so (a gap after
                    // each snapshot: a lying one) is paced by the same growing wait
                    // as failures (below), not resubscribed in a loop.
                    None if opened.elapsed() < QUICK_REFRESH => up_since = None,
                    None => continue,
                    Some(SourceEnd::WorkerGone) => {
                        finish(&hub, &channel, StreamEnd::Removed);
                        return;
                    }
                    Some(SourceEnd::Lost(error)) => {
                        tracing::info!(runtime_id = %channel.runtime_id, worker_id = %channel.worker_id, %error, "upstream lost; reconnecting");
                        channel.set_upstream(Some(lost_detail(&channel.runtime_id, &error)));
                        lost = true;
                        up_since = None;
                    }
                }
            }
            Err(SourceError::Rejected(detail)) if detail.code == ErrorCode::WorkerNotFound => {
                finish(&hub, &channel, StreamEnd::Removed);
                return;
            }
            Err(SourceError::Rejected(detail))
                if detail.code == ErrorCode::InvalidCursor && resume.is_some() =>
            {
                // The runtime does not know our cursor. A viewer's that opened the
                // channel (forged, or from another worker's runtime): try the next
                // viewer's, at once. Else start over from a snapshot, at once.
                // (Refusing a subscription without a cursor as `invalid_cursor`
                // makes no sense: that is a failure like any other, waited out below.)
                if resume
                    .as_ref()
                    .is_some_and(|point| channel.refused(point, None))
                {
                    resume = None;
                    continue;
                }
                channel.apply(SourceItem::Reset(ResetReason::CursorExpired));
                resume = None;
                continue;
            }
            Err(error) => {
                up_since = None;
                let error = match error {
                    SourceError::Rejected(detail) if detail.code == ErrorCode::InvalidCursor => {
                        SourceError::Protocol(
                            "the runtime refused a subscription without a cursor as an \
                             invalid cursor"
                                .into(),
                        )
                    }
                    other => other,
                };
                // Lost already: the viewers hear again only when the cause
                // changed (a runtime back with a token it now refuses, say), so
                // that what they were told stays true.
                let detail = lost_detail(&channel.runtime_id, &error);
                if !lost || channel.lost_code() != Some(detail.code) {
                    channel.set_upstream(Some(detail));
                    lost = true;
                }
            }
        }
        let jitter = backoff.mul_f64(fastrand::f64() * 0.3);
        tokio::select! {
            () = tokio::time::sleep(backoff + jitter) => {}
            () = channel.source_replaced.notified() => {}
            () = channel.idle() => {
                if leave(&hub, &channel) { return; }
            }
        }
        backoff = (backoff * 2).min(settings.backoff_max);
    }
}

/// Removes the channel from the hub if it still has no viewer; false if one joined.
fn leave(hub: &Weak<HubInner>, channel: &Arc<Channel>) -> bool {
    match hub.upgrade() {
        Some(hub) => hub.remove_if_idle(channel),
        None => true,
    }
}

/// Ends every viewer and forgets the channel.
fn finish(hub: &Weak<HubInner>, channel: &Arc<Channel>, reason: StreamEnd) {
    if let Some(hub) = hub.upgrade() {
        hub.remove(channel);
    }
    channel.close(reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_protocol::ServerFrame;

    /// A channel of worker `w` of runtime `rt`, with the default settings.
    fn channel() -> (Channel, RuntimeId, WorkerId) {
        let (runtime_id, worker_id) = (RuntimeId::new("rt").unwrap(), WorkerId::new("w").unwrap());
        let metrics = ChannelMetrics {
            reconnects: Default::default(),
            cut_off: Default::default(),
            relayed: Default::default(),
        };
        let channel = Channel::new(
            runtime_id.clone(),
            worker_id.clone(),
            HubSettings::default(),
            metrics,
        );
        (channel, runtime_id, worker_id)
    }

    /// Positions are the runtime's numbers: a lying runtime's largest one, and a
    /// viewer resuming at or near it, are handled without overflow (a panic here
    /// answered `internal`).
    #[tokio::test]
    async fn the_largest_runtime_position_does_not_overflow() {
        let (channel, runtime_id, worker_id) = channel();
        let mut viewer = channel.join(None).unwrap();
        let output = WorkerEvent::Output {
            sequence: 1,
            stream: switchyard_protocol::OutputStream::Stdout,
            text: "x".into(),
        };
        channel.apply(SourceItem::Event {
            epoch: "e1".into(),
            position: u64::MAX,
            event: output.into(),
        });
        assert!(matches!(viewer.live.recv().await, Ok(HubItem::Event(_))));
        for position in [u64::MAX, u64::MAX - 1, 0] {
            let cursor = BackendCursor {
                runtime_id: runtime_id.clone(),
                worker_id: worker_id.clone(),
                epoch: "e1".into(),
                position,
            };
            let _ = channel.join(Some(&cursor));
        }
    }

    /// A live event's frame, encoded for its viewers, is not kept by the backlog,
    /// nor is one encoded for a viewer resuming from the backlog.
    #[tokio::test]
    async fn the_backlog_never_keeps_an_encoded_frame() {
        let (channel, runtime_id, worker_id) = channel();
        let mut viewer = channel.join(None).unwrap();
        let output = WorkerEvent::Output {
            sequence: 1,
            stream: switchyard_protocol::OutputStream::Stdout,
            text: "x".repeat(8192),
        };
        channel.apply(SourceItem::Event {
            epoch: "e1".into(),
            position: 1,
            event: output.into(),
        });
        let Ok(HubItem::Event(live)) = viewer.live.recv().await else {
            panic!("no live event");
        };
        live.encoded(&runtime_id, &worker_id);
        let held = channel.state().backlog[0].clone();
        assert!(
            held.encoded.get().is_none(),
            "the backlog kept the live frame"
        );

        let cursor = BackendCursor {
            runtime_id: runtime_id.clone(),
            worker_id: worker_id.clone(),
            epoch: "e1".into(),
            position: 0,
        };
        let resumed = channel.join(Some(&cursor)).unwrap();
        let Some(HubItem::Event(replayed)) = resumed.initial.front() else {
            panic!("nothing replayed: {:?}", resumed.initial);
        };
        assert_eq!(
            replayed.encoded(&runtime_id, &worker_id),
            live.encoded(&runtime_id, &worker_id)
        );
        assert!(
            held.encoded.get().is_none(),
            "the backlog kept a replayed frame"
        );
    }

    #[test]
    fn the_shared_encoding_is_the_server_frame_encoding() {
        let runtime_id = RuntimeId::new("rt").unwrap();
        let worker_id = WorkerId::new("w").unwrap();
        let event = WorkerEvent::Output {
            sequence: 3,
            stream: switchyard_protocol::OutputStream::Stdout,
            text: "h\"i\n".into(),
        };
        // Decoded (an embedded runtime's) and as received (a remote's, written by
        // hand around the event's text): the same frame.
        let raw = serde_json::value::to_raw_value(&event).unwrap();
        for payload in [
            EventPayload::from(event.clone()),
            EventPayload::from_json(raw).unwrap(),
        ] {
            let stamped = Stamped::new("e1".into(), 7, Arc::new(payload));
            let frame = ServerFrame::Event {
                cursor: stamped.cursor(&runtime_id, &worker_id).encode(),
                runtime_id: Some(runtime_id.clone()),
                worker_id: worker_id.clone(),
                event: event.clone(),
            };
            assert_eq!(
                &*stamped.encoded(&runtime_id, &worker_id),
                serde_json::to_string(&frame).unwrap()
            );
        }
    }
}
