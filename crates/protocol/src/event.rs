//! Worker events: what a live event stream carries, tagged by `kind`.

use serde::{Deserialize, Serialize};

use crate::transcript::{OutputStream, TranscriptItem};
use crate::worker::{WorkerDetail, WorkerStatus};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosticSeverity {
    /// For information.
    Info,
    /// Something went wrong but the worker goes on.
    Warning,
    /// Something failed.
    Error,
}

/// One event of a worker's live stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerEvent {
    /// The whole current state: sent first on a fresh subscription and after a reset.
    Snapshot {
        /// The worker as it is now.
        worker: WorkerDetail,
        /// The transcript's last items, oldest first.
        transcript: Vec<TranscriptItem>,
    },
    /// The worker's status changed.
    Status {
        /// The new status.
        status: WorkerStatus,
        /// The status before.
        previous: WorkerStatus,
    },
    /// An input was accepted.
    Input {
        /// Its transcript sequence.
        sequence: u64,
        /// Its text.
        text: String,
    },
    /// The worker produced output.
    Output {
        /// Its transcript sequence.
        sequence: u64,
        /// The stream it came from.
        stream: OutputStream,
        /// The text.
        text: String,
    },
    /// In-flight work was interrupted by a cancel.
    Interrupted,
    /// The worker ended on its own.
    Exited {
        /// Exit code, if it exited normally.
        code: Option<i32>,
        /// Signal number, if a signal ended it.
        signal: Option<i32>,
    },
    /// Something the user should know (spawn failure, skipped record, ...).
    Diagnostic {
        /// How serious it is.
        severity: DiagnosticSeverity,
        /// A stable snake_case code.
        code: String,
        /// Human text.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_shapes() {
        let cases = [
            (
                WorkerEvent::Status {
                    status: WorkerStatus::Running,
                    previous: WorkerStatus::Starting,
                },
                json!({"kind":"status","status":"running","previous":"starting"}),
            ),
            (
                WorkerEvent::Input {
                    sequence: 2,
                    text: "hi".into(),
                },
                json!({"kind":"input","sequence":2,"text":"hi"}),
            ),
            (
                WorkerEvent::Output {
                    sequence: 3,
                    stream: OutputStream::Stdout,
                    text: "hi".into(),
                },
                json!({"kind":"output","sequence":3,"stream":"stdout","text":"hi"}),
            ),
            (WorkerEvent::Interrupted, json!({"kind":"interrupted"})),
            (
                WorkerEvent::Exited {
                    code: None,
                    signal: Some(9),
                },
                json!({"kind":"exited","code":null,"signal":9}),
            ),
            (
                WorkerEvent::Diagnostic {
                    severity: DiagnosticSeverity::Error,
                    code: "spawn_failed".into(),
                    message: "no such file".into(),
                },
                json!({"kind":"diagnostic","severity":"error","code":"spawn_failed","message":"no such file"}),
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(serde_json::to_value(&event).unwrap(), expected);
            assert_eq!(
                serde_json::from_value::<WorkerEvent>(expected).unwrap(),
                event
            );
        }
    }
}
