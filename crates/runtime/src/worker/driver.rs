//! The seam between the worker core and the code that actually runs a worker: a
//! [`Driver`]. The built-in kinds are drivers too ([`EchoDriver`], [`ProcessDriver`],
//! [`PtyDriver`]); implement [`Driver`] for a new kind of worker and give it to a
//! profile with [`Profile::custom`](crate::Profile::custom).
//!
//! A driver receives inputs from a bounded queue and control commands, reports what
//! happens through a [`DriverSink`] (in order, awaiting each call so that a slow store
//! slows the producer rather than growing a queue), and returns how the worker ended.
//! Everything else (the transcript, sequence numbers, events, subscribers, the store,
//! status changes, limits, idle timeouts) is the runtime's job, the same for every
//! kind.

use std::sync::Arc;
use std::time::Duration;

use switchyard_protocol::{DiagnosticSeverity, ExitInfo, OutputStream, ProfileKind, WorkerId};
use tokio::sync::{mpsc, oneshot};

use crate::config::{ProcessSpec, PtySpec};

/// Runs workers of one kind.
///
/// The runtime calls [`Driver::run`] once per worker, on a task of its own, and
/// records everything the driver reports. A driver must:
///
/// - call [`DriverSink::started`] once the worker accepts input (before any output);
/// - read [`DriverInputs::inputs`] and treat each text as the worker's input (every
///   input it receives was already recorded in the transcript);
/// - on [`Control::Cancel`], interrupt in-flight work without ending the worker and
///   call [`DriverSink::interrupted`];
/// - on [`Control::Stop`], or when the control channel closes, end the worker within
///   the grace period and return [`Ending::Stopped`];
/// - return [`Ending::Exited`] when the worker ends on its own, or
///   [`Ending::Failed`] when it cannot start (with a message for the user that holds
///   no secret);
/// - never block the thread: it runs on the runtime's async threads (use
///   `spawn_blocking` or a thread of its own for blocking work);
/// - report nothing once `run` has returned: the worker has ended, and a report
///   from a task left behind is dropped with a warning.
///
/// A driver whose workers run on a terminal says so with [`Driver::terminal`]: the
/// runtime then keeps a terminal emulator per worker (fed with output on
/// [`OutputStream::Terminal`]), puts its screen into snapshots, and passes resizes
/// on [`DriverInputs::resizes`].
///
/// ```
/// use std::sync::Arc;
/// use switchyard_protocol::{CustomKind, ExitInfo, OutputStream, ProfileKind};
/// use switchyard_runtime::{Control, Driver, DriverInputs, DriverSink, Ending};
///
/// /// Answers every input with its length in bytes.
/// struct Count;
///
/// #[switchyard_runtime::async_trait]
/// impl Driver for Count {
///     fn kind(&self) -> ProfileKind {
///         ProfileKind::Custom(CustomKind::new("count").expect("a valid kind name"))
///     }
///
///     async fn run(&self, mut worker: DriverInputs, sink: Arc<dyn DriverSink>) -> Ending {
///         sink.started().await;
///         loop {
///             tokio::select! {
///                 control = worker.control.recv() => match control {
///                     Some(Control::Cancel) => sink.interrupted().await,
///                     // A stop, or the runtime dropped the worker.
///                     Some(Control::Stop { .. }) | None => {
///                         return Ending::Stopped(ExitInfo { code: None, signal: None });
///                     }
///                     // Commands of newer runtimes this driver does not know.
///                     Some(_) => {}
///                 },
///                 Some(text) = worker.inputs.recv() => {
///                     sink.output(OutputStream::Stdout, format!("{}\n", text.len())).await;
///                 }
///             }
///         }
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Driver: Send + Sync + 'static {
    /// The kind clients see in the runtime's profile list: a built-in kind, or
    /// [`ProfileKind::Custom`] for a new one.
    fn kind(&self) -> ProfileKind;

    /// The initial size of the terminal when this driver's workers run on one; `None`
    /// (the default) when they do not, and resizing them is `400 not_a_terminal`.
    fn terminal(&self) -> Option<TerminalSize> {
        None
    }

    /// Runs one worker until it ends. The runtime records the [`Ending`].
    async fn run(&self, worker: DriverInputs, sink: Arc<dyn DriverSink>) -> Ending;
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    /// Columns, 1 to 1000.
    pub cols: u16,
    /// Rows, 1 to 1000.
    pub rows: u16,
}

/// The built-in `echo` driver: every input comes back as stdout output after
/// `delay`; cancel drops the output in flight and every queued input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EchoDriver {
    /// Delay before each output.
    pub delay: Duration,
}

#[async_trait::async_trait]
impl Driver for EchoDriver {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Echo
    }

    async fn run(&self, worker: DriverInputs, sink: Arc<dyn DriverSink>) -> Ending {
        super::echo::run_echo(self.delay, worker, sink).await
    }
}

/// The built-in `process` driver: an OS process in its own process group, with its
/// standard streams piped (see [`ProcessSpec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessDriver {
    /// What to run.
    pub spec: ProcessSpec,
}

#[async_trait::async_trait]
impl Driver for ProcessDriver {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Process
    }

    async fn run(&self, worker: DriverInputs, sink: Arc<dyn DriverSink>) -> Ending {
        super::process::run_process(self.spec.clone(), worker, sink).await
    }
}

/// The built-in `pty` driver: an OS process on a pseudo-terminal, leading its own
/// session (see [`PtySpec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtyDriver {
    /// What to run, and the terminal's initial size.
    pub spec: PtySpec,
}

#[async_trait::async_trait]
impl Driver for PtyDriver {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Pty
    }

    fn terminal(&self) -> Option<TerminalSize> {
        Some(TerminalSize {
            cols: self.spec.cols,
            rows: self.spec.rows,
        })
    }

    async fn run(&self, worker: DriverInputs, sink: Arc<dyn DriverSink>) -> Ending {
        super::pty::run_pty(self.spec.clone(), worker, sink).await
    }
}

/// A control command for a running driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// Interrupt in-flight work without ending the worker.
    Cancel,
    /// End the worker: SIGTERM, then SIGKILL after `grace` (for processes).
    Stop {
        /// Time between the polite and the forced end.
        grace: Duration,
    },
}

/// A new size for a pty worker's terminal. The driver reports it
/// ([`DriverSink::resized`]) before the program learns of it, then answers `done`.
#[derive(Debug)]
pub struct Resize {
    /// Columns, 1 to 1000.
    pub cols: u16,
    /// Rows, 1 to 1000.
    pub rows: u16,
    /// Answered once the terminal has the new size.
    pub done: oneshot::Sender<()>,
}

/// What a driver is given when it starts.
#[derive(Debug)]
#[non_exhaustive]
pub struct DriverInputs {
    /// The worker's id (to name what the driver creates for it, in logs or elsewhere).
    pub worker_id: WorkerId,
    /// Accepted inputs, in order. Bounded: when full, the API answers `worker_busy`.
    pub inputs: mpsc::Receiver<String>,
    /// Cancel and stop.
    pub control: mpsc::Receiver<Control>,
    /// New terminal sizes; only a driver with [`Driver::terminal`] ever gets one.
    pub resizes: mpsc::Receiver<Resize>,
    /// How long a stop may take before the worker is ended by force; a closed control
    /// channel counts as a stop with this grace.
    pub stop_grace: Duration,
}

/// The sending ends of a driver's [`DriverInputs`]: what the runtime keeps for a
/// worker, and what a test of a driver drives it with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DriverControls {
    /// Inputs for the worker.
    pub inputs: mpsc::Sender<String>,
    /// Cancel and stop.
    pub control: mpsc::Sender<Control>,
    /// Terminal sizes.
    pub resizes: mpsc::Sender<Resize>,
}

impl DriverInputs {
    /// A driver's inputs and the controls that feed them: inputs queue up to
    /// `input_queue` (at least 1), control and resize commands up to 4 each.
    pub fn new(
        worker_id: WorkerId,
        input_queue: usize,
        stop_grace: Duration,
    ) -> (Self, DriverControls) {
        let (inputs_tx, inputs) = mpsc::channel(input_queue.max(1));
        let (control_tx, control) = mpsc::channel(4);
        let (resizes_tx, resizes) = mpsc::channel(4);
        (
            Self {
                worker_id,
                inputs,
                control,
                resizes,
                stop_grace,
            },
            DriverControls {
                inputs: inputs_tx,
                control: control_tx,
                resizes: resizes_tx,
            },
        )
    }
}

/// How a driver ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ending {
    /// Ended on its own.
    Exited(ExitInfo),
    /// Ended because of [`Control::Stop`] (or the control channel closing).
    Stopped(ExitInfo),
    /// Could not start; the text is a diagnostic for the user (no secrets in it).
    Failed(String),
}

/// Where a driver reports what happens. Implemented by the worker core; tests use a
/// recording fake.
#[async_trait::async_trait]
pub trait DriverSink: Send + Sync + 'static {
    /// The worker is up and accepting input.
    async fn started(&self);
    /// The worker produced output.
    async fn output(&self, stream: OutputStream, text: String);
    /// In-flight work was interrupted by a cancel.
    async fn interrupted(&self);
    /// Something the user should know.
    async fn diagnostic(&self, severity: DiagnosticSeverity, code: &str, message: String);
    /// A pty worker's terminal is about to get a new size (reported first, so that
    /// the program's redraw at the new size is recorded after it).
    async fn resized(&self, cols: u16, rows: u16);
}
