//! The worker core: one worker's state, its event log and transcript recording.
//!
//! Two locks, with distinct jobs:
//! - `record_lock` (async) serialises everything that appends to the transcript or
//!   changes status, so sequence numbers, store writes and events stay in one order
//!   even though the store is awaited;
//! - `state` (sync, never held across `.await`) guards the detail, the transcript
//!   tail and the event log, so that a snapshot plus a live subscription is taken
//!   atomically with respect to appends. A pty worker's terminal emulator lives
//!   there too, fed in log order, so a snapshot's screen is exactly the screen at
//!   the snapshot's position.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use switchyard_protocol::{
    CursorError, DiagnosticSeverity, ExitInfo, OutputStream, ResetReason, ResizeRequest,
    RuntimeCursor, RuntimeId, SNAPSHOT_TRANSCRIPT_MAX_JSON_BYTES, SystemNote,
    TRANSCRIPT_PAGE_MAX_JSON_BYTES, TranscriptEntry, TranscriptItem, TranscriptPage, WorkerDetail,
    WorkerEvent, WorkerId, WorkerStatus,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::driver::{Control, DriverInputs, DriverSink, Ending, Resize, TerminalSize};
use super::screen::{Screen, parse_resize_note, resize_note};
use crate::census::Census;
use crate::clock;
use crate::config::{Profile, RuntimeConfig, RuntimeLimits};
use crate::error::{Result, RuntimeError};
use crate::fanout::StreamEnd;
use crate::log::{EventLog, Resume};
use crate::store::{LoadedWorker, Store};
use crate::subscription::{Subscription, SubscriptionItem};

/// Longest a stop request waits for the worker to end before answering. Kept short
/// so that a stop through the backend fits in its ordinary request timeout.
pub const STOP_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// Most terminal output one restored pty worker's screen is rebuilt from (see
/// [`Worker::rebuild_screen`]); a worker that wrote more keeps no screen.
pub(crate) const REPLAY_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Most terminal output all restored pty workers' screens are rebuilt from when a
/// runtime opens, together (so that opening takes a bounded time); the workers
/// past it keep no screen.
pub(crate) const REPLAY_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// What one pass over a restored worker's transcript found ([`Worker::replay`]).
struct Replay {
    inputs: u64,
    output_bytes: u64,
    /// The final screen, when one was asked for, fit the budget, and the worker
    /// wrote to a terminal.
    screen: Option<Screen>,
}

/// Longest a resize waits for the driver to apply it before answering `worker_busy`.
const RESIZE_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// What every worker of one runtime shares.
pub(crate) struct WorkerContext {
    pub(crate) epoch: Arc<str>,
    pub(crate) store: Arc<dyn Store>,
    /// The configuration in force: profiles and limits. [`crate::Runtime::reconfigure`]
    /// replaces it whole; every use reads it once ([`WorkerContext::limits`],
    /// [`WorkerContext::config`]) and never holds it across an `.await`.
    pub(crate) config: ArcSwap<RuntimeConfig>,
    /// Workers starting or running: what `max_workers` limits, kept as they change
    /// so that a create does not count every kept worker. Invariant: a worker
    /// counts from its build with a status that has not ended until
    /// [`Worker::set_status`] ends it or it is dropped, once ([`Worker::counted`]).
    pub(crate) active: AtomicUsize,
    /// The runtime's kept workers by status and owner (see [`crate::census`]).
    pub(crate) census: Census,
    /// Live event subscriptions on every worker (each log's fan-out keeps it).
    pub(crate) subscribers: Arc<AtomicUsize>,
}

impl WorkerContext {
    /// The limits in force now.
    pub(crate) fn limits(&self) -> RuntimeLimits {
        self.config.load().limits
    }

    /// The configuration in force now (a snapshot: a reconfiguration after this
    /// call does not change it).
    pub(crate) fn config(&self) -> Arc<RuntimeConfig> {
        self.config.load_full()
    }
}

struct State {
    detail: WorkerDetail,
    last_sequence: u64,
    tail: VecDeque<TranscriptItem>,
    log: EventLog,
    removed: bool,
    /// Subscriptions made so far: the idle watch sees a viewer that came and went
    /// between two of its looks by this count changing.
    subscriptions_made: u64,
    /// A `transcript_not_saved` diagnostic went out since the last item the store
    /// took: one per run of failures, not one per item.
    unsaved_reported: bool,
    /// A pty worker's screen; `None` for other workers and restored ones.
    screen: Option<Screen>,
    /// Whether it is in [`WorkerContext::census`] (see [`Worker::join_census`]).
    in_census: bool,
}

/// A message for a worker that has a driver.
struct Channels {
    inputs: mpsc::Sender<String>,
    control: mpsc::Sender<Control>,
    /// Only for pty workers.
    resizes: Option<mpsc::Sender<Resize>>,
}

/// One worker.
pub(crate) struct Worker {
    id: WorkerId,
    ctx: Arc<WorkerContext>,
    state: Mutex<State>,
    record_lock: Arc<tokio::sync::Mutex<()>>,
    channels: Option<Channels>,
    status: watch::Sender<WorkerStatus>,
    driver: Mutex<Option<JoinHandle<()>>>,
    /// When the last input or resize was accepted (the idle clock).
    last_command: Mutex<Instant>,
    /// The transcript note of a stop the runtime decided on itself (idle timeout).
    stop_note: OnceLock<String>,
    /// Whether it is counted in [`WorkerContext::active`].
    counted: AtomicBool,
    /// Transcript items kept for snapshots: the limit in force when the worker was
    /// built (its buffers keep their sizes for its whole life).
    snapshot_items: usize,
}

/// The transcript note of a worker stopped because someone asked.
const STOPPED_ON_REQUEST: &str = "stopped on request";

impl Worker {
    /// Builds a worker whose buffers (event backlog, subscriber queues, snapshot
    /// tail) take their sizes from `limits`, read once by the caller.
    fn build(
        ctx: Arc<WorkerContext>,
        limits: RuntimeLimits,
        detail: WorkerDetail,
        last_sequence: u64,
        tail: Vec<TranscriptItem>,
        channels: Option<Channels>,
        screen: Option<Screen>,
    ) -> Self {
        let (status, _) = watch::channel(detail.status);
        let counted = !detail.status.is_ended();
        if counted {
            ctx.active.fetch_add(1, Ordering::SeqCst);
        }
        Self {
            id: detail.worker_id.clone(),
            state: Mutex::new(State {
                detail,
                last_sequence,
                tail: tail.into(),
                log: EventLog::with_tally(
                    limits.event_backlog as usize,
                    limits.subscriber_queue as usize,
                    ctx.subscribers.clone(),
                ),
                removed: false,
                subscriptions_made: 0,
                unsaved_reported: false,
                screen,
                in_census: false,
            }),
            ctx,
            record_lock: Arc::new(tokio::sync::Mutex::new(())),
            channels,
            status,
            driver: Mutex::new(None),
            last_command: Mutex::new(Instant::now()),
            stop_note: OnceLock::new(),
            counted: AtomicBool::new(counted),
            snapshot_items: limits.snapshot_items as usize,
        }
    }

    /// Takes the worker out of [`WorkerContext::active`] if it is still in it.
    fn uncount(&self) {
        if self.counted.swap(false, Ordering::SeqCst) {
            self.ctx.active.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Counts the worker in [`WorkerContext::census`] with its current status, once:
    /// the runtime calls this when it puts the worker in its map. Status changes
    /// move it there from then on, under the same state lock.
    pub(crate) fn join_census(&self) {
        let mut state = self.state();
        if !state.in_census {
            state.in_census = true;
            let detail = &state.detail;
            self.ctx
                .census
                .enter(&self.id, detail.owner.as_deref(), detail.status);
        }
    }

    /// Takes the worker out of [`WorkerContext::census`] if it is in it: the
    /// runtime calls this when it takes the worker out of its map (and a drop does).
    pub(crate) fn leave_census(&self) {
        let mut state = self.state();
        if state.in_census {
            state.in_census = false;
            let detail = &state.detail;
            self.ctx
                .census
                .leave(&self.id, detail.owner.as_deref(), detail.status);
        }
    }

    /// Creates a worker, saves its record and starts its driver (and, when the
    /// profile has an idle timeout, its idle watch).
    pub(crate) async fn start(
        ctx: Arc<WorkerContext>,
        id: WorkerId,
        runtime_id: RuntimeId,
        profile_name: String,
        label: Option<String>,
        owner: Option<String>,
        profile: Profile,
    ) -> Result<Arc<Self>> {
        let now = clock::now();
        let detail = WorkerDetail {
            worker_id: id,
            runtime_id,
            profile: profile_name,
            label,
            status: WorkerStatus::Starting,
            created_at: now.clone(),
            updated_at: now,
            exit: None,
            input_count: 0,
            output_bytes: 0,
            owner,
        };
        ctx.store.save_worker(&detail).await?;
        let driver = profile.spec.driver();
        // Read once: this worker's queues and buffers keep these sizes for its life.
        let limits = ctx.limits();
        let (io, controls) = DriverInputs::new(
            detail.worker_id.clone(),
            limits.input_queue as usize,
            limits.stop_grace,
        );
        let screen = driver
            .terminal()
            .map(|size| Screen::new(size.cols, size.rows));
        let worker = Arc::new(Self::build(
            ctx,
            limits,
            detail,
            0,
            Vec::new(),
            Some(Channels {
                inputs: controls.inputs,
                control: controls.control,
                resizes: screen.is_some().then_some(controls.resizes),
            }),
            screen,
        ));
        let sink: Arc<dyn DriverSink> = worker.clone();
        let driven = worker.clone();
        let task = tokio::spawn(async move {
            let ending = driver.run(io, sink).await;
            driven.finish(ending).await;
        });
        *lock(&worker.driver) = Some(task);
        if let Some(timeout) = profile.idle_timeout {
            tokio::spawn(super::idle::watch(worker.clone(), timeout));
        }
        Ok(worker)
    }

    /// Rebuilds a worker found in the store; it has no driver.
    pub(crate) fn restore(ctx: Arc<WorkerContext>, loaded: LoadedWorker) -> Arc<Self> {
        let limits = ctx.limits();
        Arc::new(Self::build(
            ctx,
            limits,
            loaded.detail,
            loaded.last_sequence,
            loaded.tail,
            None,
            None,
        ))
    }

    /// Rebuilds the final screen of a restored terminal worker that started at
    /// `size` (its profile's) from its transcript ([`Worker::replay`]). Returns the
    /// output bytes it read; does nothing (and returns 0) for a worker that wrote
    /// more than `budget` bytes, and leaves the worker without a screen when its
    /// transcript holds no terminal output (it ran under another kind of profile).
    pub(crate) async fn rebuild_screen(&self, size: TerminalSize, budget: u64) -> Result<u64> {
        if self.state().detail.output_bytes > budget.min(REPLAY_MAX_BYTES) {
            return Ok(0);
        }
        let replay = self.replay(Some((size, budget))).await?;
        let read = replay.output_bytes;
        self.state().screen = replay.screen;
        Ok(read)
    }

    /// Marks a restored worker that was running when the runtime ended as `lost`,
    /// after correcting its counters from the transcript; given `screen` (its
    /// terminal's size and a byte budget) the same pass rebuilds its final screen.
    /// Returns `None` when the worker had ended (nothing read), else the output
    /// bytes the screen took from the budget (0 when none was rebuilt).
    pub(crate) async fn mark_lost_if_active(
        &self,
        screen: Option<(TerminalSize, u64)>,
    ) -> Result<Option<u64>> {
        let _order = self.record_lock.lock().await;
        if self.status().is_ended() {
            return Ok(None);
        }
        // Counters are saved with status changes only; after a crash they are
        // behind the transcript, which is the durable truth.
        let replay = self.replay(screen).await?;
        let charged = if replay.screen.is_some() {
            replay.output_bytes
        } else {
            0
        };
        {
            let mut state = self.state();
            state.detail.input_count = replay.inputs;
            state.detail.output_bytes = replay.output_bytes;
            state.screen = replay.screen;
        }
        self.record(
            TranscriptEntry::System {
                note: SystemNote::Lost,
                text: "the runtime restarted while this worker was running".into(),
            },
            |_| None,
        )
        .await;
        self.set_status(WorkerStatus::Lost, None).await;
        Ok(Some(charged))
    }

    /// Reads the transcript once, page by page, counting inputs and output bytes.
    /// Given `screen` (the size the terminal started at and a byte budget) it also
    /// feeds the terminal output to a new emulator, resizing it wherever the
    /// transcript says the terminal was resized; the emulator is given up once the
    /// output passes `budget` (or [`REPLAY_MAX_BYTES`]), and is not kept when the
    /// transcript holds no terminal output.
    async fn replay(&self, screen: Option<(TerminalSize, u64)>) -> Result<Replay> {
        const PAGE: usize = 1000;
        let limit = screen.map_or(0, |(_, budget)| budget.min(REPLAY_MAX_BYTES));
        let mut emulator = screen.map(|(size, _)| Screen::new(size.cols, size.rows));
        let (mut inputs, mut output_bytes, mut terminal, mut after) = (0, 0, false, 0);
        loop {
            let page = self.ctx.store.read_page(&self.id, after, PAGE).await?;
            for item in &page {
                match &item.entry {
                    TranscriptEntry::Input { .. } => inputs += 1,
                    TranscriptEntry::Output { stream, text } => {
                        output_bytes += text.len() as u64;
                        if output_bytes > limit {
                            emulator = None;
                        }
                        if let (Some(screen), OutputStream::Terminal) = (&mut emulator, stream) {
                            terminal = true;
                            screen.feed(text);
                        }
                    }
                    TranscriptEntry::System {
                        note: SystemNote::Resized,
                        text,
                    } => {
                        if let (Some(screen), Some((cols, rows))) =
                            (&mut emulator, parse_resize_note(text))
                        {
                            screen.resize(cols, rows);
                        }
                    }
                    TranscriptEntry::System { .. } => {}
                }
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = last.sequence,
                _ => break,
            }
            tokio::task::yield_now().await;
        }
        let screen = emulator.filter(|_| terminal).map(|mut screen| {
            screen.freeze();
            screen
        });
        Ok(Replay {
            inputs,
            output_bytes,
            screen,
        })
    }

    /// The worker's id.
    pub(crate) fn id(&self) -> &WorkerId {
        &self.id
    }

    /// The current detail.
    pub(crate) fn detail(&self) -> WorkerDetail {
        self.state().detail.clone()
    }

    /// The current status.
    pub(crate) fn status(&self) -> WorkerStatus {
        *self.status.borrow()
    }

    /// Waits until the worker leaves `starting`, at most `timeout`.
    pub(crate) async fn wait_started(&self, timeout: Duration) {
        let mut rx = self.status.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|s| *s != WorkerStatus::Starting)).await;
    }

    /// Waits until the worker has ended.
    pub(crate) async fn wait_ended(&self) -> WorkerStatus {
        let mut rx = self.status.subscribe();
        let result = rx.wait_for(|s| s.is_ended()).await.map(|s| *s);
        result.unwrap_or_else(|_| self.status())
    }

    /// Accepts an input: records it (getting its sequence) and queues it for the driver.
    ///
    /// The caller waits for its turn and the checks (a caller that gives up before
    /// them leaves nothing behind); from the store write on, the rest runs on a task
    /// of its own, so that a caller that goes away then (an HTTP connection cut
    /// while the store writes) cannot leave the input half recorded: in the store
    /// but not in memory, where the next item would take its sequence.
    pub(crate) async fn input(self: &Arc<Self>, text: String) -> Result<u64> {
        let limit = self.ctx.limits().max_input_bytes;
        if text.len() as u64 > limit {
            return Err(RuntimeError::PayloadTooLarge {
                size: text.len() as u64,
                limit,
            });
        }
        let order = Arc::clone(&self.record_lock).lock_owned().await;
        let not_running = || RuntimeError::WorkerNotRunning {
            worker: self.id.clone(),
            status: self.status(),
        };
        if self.status() != WorkerStatus::Running {
            return Err(not_running());
        }
        let channels = self.channels.as_ref().ok_or_else(not_running)?;
        *lock(&self.last_command) = Instant::now();
        let permit = match channels.inputs.clone().try_reserve_owned() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(RuntimeError::WorkerBusy(self.id.clone()));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(not_running()),
        };
        let worker = Arc::clone(self);
        super::run_to_end(async move {
            let _order = order;
            let event_text = text.clone();
            // An input the store cannot take is refused, not half accepted: it
            // never reaches the program, and its sequence is not used.
            let sequence = worker
                .try_record(TranscriptEntry::Input { text: text.clone() }, |sequence| {
                    Some(WorkerEvent::Input {
                        sequence,
                        text: event_text,
                    })
                })
                .await?;
            permit.send(text);
            Ok(sequence)
        })
        .await
    }

    /// Resizes a pty worker's terminal: answers once the terminal has the new size
    /// (the `resized` event is logged before the program learns of it).
    pub(crate) async fn resize(&self, size: ResizeRequest) -> Result<ResizeRequest> {
        size.validate().map_err(RuntimeError::InvalidRequest)?;
        let not_running = || RuntimeError::WorkerNotRunning {
            worker: self.id.clone(),
            status: self.status(),
        };
        // A worker restored from the store has no channels: it has ended.
        let channels = self.channels.as_ref().ok_or_else(not_running)?;
        let Some(resizes) = channels.resizes.as_ref() else {
            return Err(RuntimeError::NotATerminal(self.id.clone()));
        };
        if self.status() != WorkerStatus::Running {
            return Err(not_running());
        }
        *lock(&self.last_command) = Instant::now();
        let (done, applied) = oneshot::channel();
        let request = Resize {
            cols: size.cols,
            rows: size.rows,
            done,
        };
        let answer = tokio::time::timeout(RESIZE_ANSWER_WAIT, async {
            resizes.send(request).await.ok()?;
            applied.await.ok()
        })
        .await;
        match answer {
            Ok(Some(())) => Ok(size),
            Ok(None) => Err(not_running()),
            Err(_) => Err(RuntimeError::WorkerBusy(self.id.clone())),
        }
    }

    /// When the last input or resize was accepted.
    pub(crate) fn last_command(&self) -> Instant {
        *lock(&self.last_command)
    }

    /// Stops the worker because someone asked (`POST .../stop`): its transcript note
    /// says so, even if a shutdown comes while it stops.
    pub(crate) async fn stop_on_request(&self) -> WorkerStatus {
        if !self.status().is_ended() {
            let _ = self.stop_note.set(STOPPED_ON_REQUEST.to_owned());
        }
        self.stop().await
    }

    /// Stops the worker because its runtime shuts down, with a transcript note that
    /// says so (not "on request": nobody asked for this worker to stop).
    pub(crate) async fn stop_for_shutdown(&self) {
        if !self.status().is_ended() {
            let _ = self
                .stop_note
                .set("stopped: the runtime shut down".to_owned());
        }
        self.stop().await;
    }

    /// Stops the worker because nobody used or watched it for `idle`: a diagnostic
    /// first, then the stop, with a transcript note that says why.
    pub(crate) async fn stop_idle(&self, idle: Duration) {
        {
            let _order = self.record_lock.lock().await;
            if self.status().is_ended() {
                return;
            }
            let seconds = idle.as_secs_f64();
            let _ = self.stop_note.set(format!(
                "stopped after {seconds} s without input or viewer (idle_timeout_s)"
            ));
            self.state().log.append(WorkerEvent::Diagnostic {
                severity: DiagnosticSeverity::Info,
                code: "idle_timeout".into(),
                message: format!(
                    "no input and no viewer for {seconds} s: the worker is being stopped"
                ),
            });
        }
        self.stop().await;
    }

    /// Interrupts in-flight work.
    pub(crate) fn cancel(&self) -> Result<WorkerStatus> {
        let status = self.status();
        let not_running = RuntimeError::WorkerNotRunning {
            worker: self.id.clone(),
            status,
        };
        if status != WorkerStatus::Running {
            return Err(not_running);
        }
        let channels = self.channels.as_ref().ok_or(not_running)?;
        match channels.control.try_send(Control::Cancel) {
            // A full control queue already holds a cancel or a stop.
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => Ok(status),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(RuntimeError::WorkerNotRunning {
                worker: self.id.clone(),
                status: self.status(),
            }),
        }
    }

    /// Ends the worker: waits until it has ended, but at most [`STOP_ANSWER_WAIT`]
    /// (a process that ignores SIGTERM is killed after the grace period, later), and
    /// answers the status it has then. Idempotent.
    pub(crate) async fn stop(&self) -> WorkerStatus {
        if self.status().is_ended() {
            return self.status();
        }
        if let Some(channels) = &self.channels {
            let grace = self.ctx.limits().stop_grace;
            let _ = channels.control.send(Control::Stop { grace }).await;
        }
        tokio::time::timeout(STOP_ANSWER_WAIT, self.wait_ended())
            .await
            .unwrap_or_else(|_| self.status())
    }

    /// Waits for the driver task, if any, to finish.
    pub(crate) async fn join_driver(&self) {
        let task = lock(&self.driver).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Subscribes to the worker's events, resuming after `cursor` when given.
    /// With `snapshot_after_replay`, a resumed subscription also gets a fresh
    /// snapshot after the replayed events (a proxy uses it to learn the current state).
    pub(crate) fn subscribe(
        &self,
        cursor: Option<&str>,
        snapshot_after_replay: bool,
    ) -> Result<Subscription> {
        let cursor = cursor
            .map(|c| RuntimeCursor::decode_for(c, &self.id))
            .transpose()?;
        let mut state = self.state();
        if state.removed {
            return Err(RuntimeError::WorkerNotFound(self.id.clone()));
        }
        let mut pending = VecDeque::new();
        let reset = match &cursor {
            None => None,
            Some(c) if *c.epoch != *self.ctx.epoch => Some(ResetReason::RuntimeRestarted),
            Some(c) => match state.log.resume_after(c.position) {
                Resume::Replay(entries) => {
                    pending.extend(entries.into_iter().map(|e| SubscriptionItem::Event {
                        position: e.position,
                        event: e.event,
                    }));
                    None
                }
                Resume::Expired => Some(ResetReason::CursorExpired),
                Resume::Future => return Err(CursorError::Ahead.into()),
            },
        };
        if let Some(reason) = reset {
            pending.push_back(SubscriptionItem::Reset(reason));
        }
        if cursor.is_none() || reset.is_some() || snapshot_after_replay {
            pending.push_back(SubscriptionItem::Event {
                position: state.log.last_position(),
                event: Arc::new(WorkerEvent::Snapshot {
                    worker: state.detail.clone(),
                    transcript: recent_within_budget(&state.tail),
                    terminal: state.screen.as_mut().map(|s| Box::new(s.snapshot())),
                }),
            });
        }
        let start_after = match (&cursor, reset) {
            (Some(c), None) => c.position,
            _ => state.log.last_position(),
        };
        let live = state.log.subscribe();
        state.subscriptions_made += 1;
        Ok(Subscription::new(
            self.id.clone(),
            self.ctx.epoch.clone(),
            pending,
            live,
            start_after,
        ))
    }

    /// Subscriptions made so far, live or not.
    pub(crate) fn subscriptions_made(&self) -> u64 {
        self.state().subscriptions_made
    }

    /// Live subscribers attached now.
    pub(crate) fn subscriber_count(&self) -> usize {
        self.state().log.subscriber_count()
    }

    /// Ends every subscription; `removed` also refuses new ones.
    pub(crate) fn close_subscriptions(&self, reason: StreamEnd) {
        let mut state = self.state();
        if reason == StreamEnd::Removed {
            state.removed = true;
        }
        state.log.close(reason);
    }

    /// A page of the transcript.
    pub(crate) async fn transcript(&self, after: u64, limit: u32) -> Result<TranscriptPage> {
        let max = self.ctx.limits().transcript_page_max;
        if limit > max {
            return Err(RuntimeError::LimitTooLarge {
                asked: u64::from(limit),
                max,
            });
        }
        let known = self.state().last_sequence;
        let mut items = self
            .ctx
            .store
            .read_page(&self.id, after, limit as usize)
            .await?;
        items.truncate(within_page_bytes(&items));
        let last = items.last().map(|i| i.sequence);
        let total = known.max(last.unwrap_or(0));
        Ok(TranscriptPage {
            next_after: last.filter(|&s| s < total),
            items,
            total,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Appends one transcript item (store first, then memory and event log) and
    /// returns its sequence. The caller holds `record_lock` and must not be
    /// cancelled: a store write that finishes after its caller was dropped would
    /// leave the store one item ahead of memory (see [`Worker::input`]).
    ///
    /// What the worker did happened whether or not the store takes it: an item the
    /// store fails is still recorded in memory and sent to viewers, with one
    /// `transcript_not_saved` diagnostic per run of failures, so that nobody takes
    /// the transcript for whole. (An input, which can still be refused, goes
    /// through [`Worker::try_record`] instead.)
    async fn record(
        &self,
        entry: TranscriptEntry,
        event: impl FnOnce(u64) -> Option<WorkerEvent>,
    ) -> u64 {
        let (item, stored) = self.store_next(entry).await;
        if let Err(error) = &stored {
            tracing::error!(worker_id = %self.id, %error, "could not persist a transcript item");
        }
        self.remember(item, event, stored.is_ok())
    }

    /// [`Worker::record`] for what may be refused: an item the store fails is
    /// not recorded at all, and the store's error is returned.
    async fn try_record(
        &self,
        entry: TranscriptEntry,
        event: impl FnOnce(u64) -> Option<WorkerEvent>,
    ) -> Result<u64> {
        let (item, stored) = self.store_next(entry).await;
        if let Err(error) = stored {
            tracing::error!(worker_id = %self.id, %error, "could not persist a transcript item; refused");
            return Err(error.into());
        }
        Ok(self.remember(item, event, true))
    }

    /// The next transcript item of `entry`, and how appending it to the store went.
    async fn store_next(
        &self,
        entry: TranscriptEntry,
    ) -> (TranscriptItem, std::result::Result<(), crate::StoreError>) {
        let sequence = self.state().last_sequence + 1;
        let item = TranscriptItem {
            sequence,
            at: clock::now(),
            entry,
        };
        let stored = self
            .ctx
            .store
            .append(&self.id, std::slice::from_ref(&item))
            .await;
        (item, stored)
    }

    /// Takes `item` into memory and the event log; returns its sequence.
    fn remember(
        &self,
        item: TranscriptItem,
        event: impl FnOnce(u64) -> Option<WorkerEvent>,
        stored: bool,
    ) -> u64 {
        let sequence = item.sequence;
        let snapshot_items = self.snapshot_items;
        let mut state = self.state();
        state.last_sequence = sequence;
        match &item.entry {
            TranscriptEntry::Input { .. } => state.detail.input_count += 1,
            TranscriptEntry::Output { text, stream } => {
                state.detail.output_bytes += text.len() as u64;
                if let (Some(screen), OutputStream::Terminal) = (state.screen.as_mut(), stream) {
                    screen.feed(text);
                }
            }
            TranscriptEntry::System { .. } => {}
        }
        state.detail.updated_at = item.at.clone();
        if snapshot_items > 0 {
            if state.tail.len() >= snapshot_items {
                state.tail.pop_front();
            }
            state.tail.push_back(item);
        }
        if let Some(event) = event(sequence) {
            state.log.append(event);
        }
        if stored {
            state.unsaved_reported = false;
        } else if !state.unsaved_reported {
            state.unsaved_reported = true;
            state.log.append(WorkerEvent::Diagnostic {
                severity: DiagnosticSeverity::Warning,
                code: "transcript_not_saved".into(),
                message: "the runtime could not save this worker's transcript (see its log): \
                          what the worker does still reaches viewers, but is missing from the \
                          transcript and from a restart; free space in the runtime's data \
                          directory or fix its permissions"
                    .into(),
            });
        }
        sequence
    }

    /// Changes status, logs a `status` event and saves the record. The caller holds
    /// `record_lock`.
    async fn set_status(&self, status: WorkerStatus, exit: Option<ExitInfo>) {
        let detail = {
            let mut state = self.state();
            let previous = state.detail.status;
            if previous == status {
                return;
            }
            state.detail.status = status;
            if state.in_census {
                let owner = state.detail.owner.as_deref();
                self.ctx.census.moved(&self.id, owner, previous, status);
            }
            state.detail.exit = exit;
            state.detail.updated_at = clock::now();
            state.log.append(WorkerEvent::Status { status, previous });
            state.detail.clone()
        };
        if status.is_ended() {
            self.uncount();
        }
        if let Err(error) = self.ctx.store.save_worker(&detail).await {
            tracing::error!(worker_id = %self.id, %error, "could not persist a worker record");
            self.state().log.append(WorkerEvent::Diagnostic {
                severity: DiagnosticSeverity::Warning,
                code: "record_not_saved".into(),
                message: format!(
                    "the runtime could not save this worker's status ({}; see its log): a \
                     restart will show it as last saved; free space in the runtime's data \
                     directory or fix its permissions",
                    status.as_str()
                ),
            });
        }
        // Announced only once persisted: whoever waits for an ended status (stop,
        // shutdown) may rely on the record being on disk.
        self.status.send_replace(status);
    }

    /// Records how the driver ended.
    async fn finish(&self, ending: Ending) {
        let _order = self.record_lock.lock().await;
        if let Some(screen) = self.state().screen.as_mut() {
            screen.freeze();
        }
        match ending {
            Ending::Exited(exit) => {
                let text = describe_exit(exit);
                self.record(
                    TranscriptEntry::System {
                        note: SystemNote::Exited,
                        text,
                    },
                    |_| {
                        Some(WorkerEvent::Exited {
                            code: exit.code,
                            signal: exit.signal,
                        })
                    },
                )
                .await;
                self.set_status(WorkerStatus::Exited, Some(exit)).await;
            }
            Ending::Stopped(exit) => {
                self.record(
                    TranscriptEntry::System {
                        note: SystemNote::Stopped,
                        text: self
                            .stop_note
                            .get()
                            .cloned()
                            .unwrap_or_else(|| STOPPED_ON_REQUEST.into()),
                    },
                    |_| None,
                )
                .await;
                let exit = (exit.code.is_some() || exit.signal.is_some()).then_some(exit);
                self.set_status(WorkerStatus::Stopped, exit).await;
            }
            Ending::Failed(message) => {
                self.state().log.append(WorkerEvent::Diagnostic {
                    severity: DiagnosticSeverity::Error,
                    code: "spawn_failed".into(),
                    message: message.clone(),
                });
                self.record(
                    TranscriptEntry::System {
                        note: SystemNote::Failed,
                        text: message,
                    },
                    |_| None,
                )
                .await;
                self.set_status(WorkerStatus::Failed, None).await;
            }
        }
        // Nothing more is logged: only a resuming viewer needs the backlog now.
        self.state().log.retire();
    }
}

impl Worker {
    /// Takes the record lock for a driver's report, unless the worker has ended. A
    /// driver reports nothing once its `run` has returned (see [`Driver`]); a
    /// report after all (from a task it left behind) would be written after the
    /// final note, reopen a transcript file the store has closed, grow a backlog
    /// already let go of, or (a late `started`) bring the worker back to
    /// `running`. It is dropped with a warning instead. `finish` sets the ended
    /// status under the same lock, so the check cannot race with it.
    ///
    /// [`Driver`]: super::driver::Driver
    async fn report_turn(&self, report: &'static str) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        let order = self.record_lock.lock().await;
        if self.status().is_ended() {
            tracing::warn!(worker_id = %self.id, report, "a driver reported after its worker ended; ignored");
            return None;
        }
        Some(order)
    }
}

fn describe_exit(exit: ExitInfo) -> String {
    match (exit.code, exit.signal) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("ended by signal {signal}"),
        (None, None) => "exited".into(),
    }
}

/// How many of `items` (at least one) fit in a page of
/// [`TRANSCRIPT_PAGE_MAX_JSON_BYTES`]: a page of output full of control bytes
/// would otherwise be many times the backend's answer cap.
fn within_page_bytes(items: &[TranscriptItem]) -> usize {
    let mut bytes = 0;
    let fitting = items
        .iter()
        .take_while(|item| {
            bytes += item.json_len_bound();
            bytes <= TRANSCRIPT_PAGE_MAX_JSON_BYTES
        })
        .count();
    fitting.max(1).min(items.len())
}

/// The last items of `tail` whose JSON fits in
/// [`SNAPSHOT_TRANSCRIPT_MAX_JSON_BYTES`], oldest first: fifty inputs of 64 KiB of
/// control bytes would otherwise make a snapshot of 19 MB, past what a backend
/// takes in one frame.
fn recent_within_budget(tail: &VecDeque<TranscriptItem>) -> Vec<TranscriptItem> {
    let mut bytes = 0;
    let fitting = tail
        .iter()
        .rev()
        .take_while(|item| {
            bytes += item.json_len_bound();
            bytes <= SNAPSHOT_TRANSCRIPT_MAX_JSON_BYTES
        })
        .count();
    tail.iter().skip(tail.len() - fitting).cloned().collect()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.uncount();
        self.leave_census();
    }
}

#[async_trait::async_trait]
impl DriverSink for Worker {
    async fn started(&self) {
        let Some(_order) = self.report_turn("started").await else {
            return;
        };
        self.set_status(WorkerStatus::Running, None).await;
        self.record(
            TranscriptEntry::System {
                note: SystemNote::Started,
                text: "started".into(),
            },
            |_| None,
        )
        .await;
    }

    async fn output(&self, stream: OutputStream, text: String) {
        let Some(_order) = self.report_turn("output").await else {
            return;
        };
        let event_text = text.clone();
        self.record(TranscriptEntry::Output { stream, text }, |sequence| {
            Some(WorkerEvent::Output {
                sequence,
                stream,
                text: event_text,
            })
        })
        .await;
    }

    async fn interrupted(&self) {
        let Some(_order) = self.report_turn("interrupted").await else {
            return;
        };
        self.record(
            TranscriptEntry::System {
                note: SystemNote::Interrupted,
                text: "interrupted".into(),
            },
            |_| Some(WorkerEvent::Interrupted),
        )
        .await;
    }

    async fn diagnostic(&self, severity: DiagnosticSeverity, code: &str, message: String) {
        let Some(_order) = self.report_turn("diagnostic").await else {
            return;
        };
        self.state().log.append(WorkerEvent::Diagnostic {
            severity,
            code: code.to_owned(),
            message,
        });
    }

    /// Records the new size in the transcript (where it stands among the output,
    /// so that a restored worker's screen can be rebuilt exactly) and logs the
    /// `resized` event.
    async fn resized(&self, cols: u16, rows: u16) {
        let Some(_order) = self.report_turn("resized").await else {
            return;
        };
        if let Some(screen) = self.state().screen.as_mut() {
            screen.resize(cols, rows);
        }
        self.record(
            TranscriptEntry::System {
                note: SystemNote::Resized,
                text: resize_note(cols, rows),
            },
            |_| Some(WorkerEvent::Resized { cols, rows }),
        )
        .await;
    }
}
