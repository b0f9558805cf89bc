//! The seam between the worker core and the code that actually runs a worker
//! (a "driver": echo, process or pty).
//!
//! A driver receives inputs from a bounded queue and control commands, reports what
//! happens through a [`DriverSink`] (in order, awaiting each call so that a slow store
//! slows the producer rather than growing a queue), and returns how the worker ended.

use std::time::Duration;

use switchyard_protocol::{DiagnosticSeverity, ExitInfo, OutputStream};
use tokio::sync::{mpsc, oneshot};

/// A control command for a running driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
pub struct DriverInputs {
    /// Accepted inputs, in order. Bounded: when full, the API answers `worker_busy`.
    pub inputs: mpsc::Receiver<String>,
    /// Cancel and stop.
    pub control: mpsc::Receiver<Control>,
}

/// How a driver ended.
#[derive(Debug, Clone, PartialEq, Eq)]
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
