//! A custom worker [`Driver`]: **`tail`**, a worker that follows a log file.
//!
//! A `tail` worker shows the file's last lines, then every line appended to it, on
//! its stdout, as `tail -f` does; a file that is truncated or replaced (log
//! rotation) is read again from its start, and a missing one is waited for. Its
//! input is a command: `grep TEXT` shows only lines containing TEXT, `grep` alone
//! shows every line again. Cancel also clears the filter. The worker's own notes go
//! to its stderr, so the stdout is exactly the file's lines. It never names the
//! file's path to clients.
//!
//! Register it as a profile of the backend's embedded runtime (or of a
//! `switchyard runtime` of your own with
//! [`RuntimeServerBuilder::profile`](switchyard_server::RuntimeServerBuilder::profile)):
//!
//! ```
//! use switchyard_example_tail::TailDriver;
//! use switchyard_runtime::Profile;
//! use switchyard_server::Backend;
//! use switchyard_server::config::BackendSettings;
//!
//! let backend = Backend::from_settings(BackendSettings::defaults()).embedded_profile(
//!     "app-log",
//!     Profile::custom(TailDriver::new("/var/log/app.log")).with_description("the app's log"),
//! );
//! # drop(backend);
//! ```

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchyard_protocol::{CustomKind, DiagnosticSeverity, ExitInfo, OutputStream, ProfileKind};
use switchyard_runtime::{Control, Driver, DriverInputs, DriverSink, Ending};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::time::MissedTickBehavior;

/// The most read from the file per look, so that a burst of writes is reported in
/// bounded chunks (and one look never holds more than this in memory).
const READ_CHUNK: usize = 64 * 1024;

/// A line longer than this is reported in pieces rather than held back whole.
const MAX_LINE: usize = 64 * 1024;

/// How much of the file's end is read for its last lines.
const TAIL_WINDOW: u64 = 64 * 1024;

/// Follows one file. See the crate documentation.
#[derive(Debug, Clone)]
pub struct TailDriver {
    path: PathBuf,
    initial_lines: usize,
    poll: Duration,
}

impl TailDriver {
    /// Follows `path`, showing its last 10 lines first and looking for new ones
    /// every 200 ms.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            initial_lines: 10,
            poll: Duration::from_millis(200),
        }
    }

    /// Shows the file's last `lines` lines first (0: only new lines).
    pub fn with_initial_lines(mut self, lines: usize) -> Self {
        self.initial_lines = lines;
        self
    }

    /// Looks for new lines this often.
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(10));
        self
    }
}

/// What one worker knows of its file.
struct Follow {
    /// Bytes of the file already read.
    offset: u64,
    /// The end of a line that has no newline yet.
    partial: Vec<u8>,
    /// Only lines containing this, when set.
    filter: Option<String>,
    /// The file was missing at the last look.
    missing: bool,
}

impl Follow {
    /// The complete lines of `bytes` (after what was held back) that pass the
    /// filter; holds back an unfinished last line.
    fn lines(&mut self, bytes: &[u8]) -> String {
        self.partial.extend_from_slice(bytes);
        let complete = match self.partial.iter().rposition(|b| *b == b'\n') {
            Some(end) => end + 1,
            None if self.partial.len() >= MAX_LINE => self.partial.len(),
            None => return String::new(),
        };
        let rest = self.partial.split_off(complete);
        let text =
            String::from_utf8_lossy(&std::mem::replace(&mut self.partial, rest)).into_owned();
        match &self.filter {
            None => text,
            Some(filter) => text
                .split_inclusive('\n')
                .filter(|line| line.contains(filter.as_str()))
                .collect(),
        }
    }
}

async fn note(sink: &dyn DriverSink, text: &str) {
    sink.output(OutputStream::Stderr, format!("tail: {text}\n"))
        .await;
}

impl TailDriver {
    /// The file's last lines, and where following starts: after its last newline.
    async fn start(&self, follow: &mut Follow) -> std::io::Result<String> {
        let mut file = tokio::fs::File::open(&self.path).await?;
        let len = file.metadata().await?.len();
        let start = len.saturating_sub(TAIL_WINDOW);
        file.seek(SeekFrom::Start(start)).await?;
        let mut window = Vec::new();
        file.take(len - start).read_to_end(&mut window).await?;
        let end = window
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        // Without a newline before it, the window's first line is cut: drop it.
        let begin = if start == 0 {
            0
        } else {
            window[..end]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(end, |i| i + 1)
        };
        let text = String::from_utf8_lossy(&window[begin..end]).into_owned();
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let last = lines[lines.len().saturating_sub(self.initial_lines)..].concat();
        follow.offset = start + end as u64;
        Ok(last)
    }

    /// One look at the file: what was appended since the last look (at most
    /// [`READ_CHUNK`]), after reporting a truncation or a missing file; and whether
    /// more is waiting.
    async fn look(
        &self,
        follow: &mut Follow,
        sink: &dyn DriverSink,
    ) -> std::io::Result<(String, bool)> {
        let len = match tokio::fs::metadata(&self.path).await {
            Ok(meta) => meta.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if !follow.missing {
                    follow.missing = true;
                    sink.diagnostic(
                        DiagnosticSeverity::Warning,
                        "file_missing",
                        "the file is gone; waiting for it to appear again".into(),
                    )
                    .await;
                    note(sink, "the file is gone; waiting for it to appear again").await;
                }
                follow.offset = 0;
                follow.partial.clear();
                return Ok((String::new(), false));
            }
            Err(error) => return Err(error),
        };
        if follow.missing {
            follow.missing = false;
            note(sink, "the file is back; reading it from its start").await;
        }
        if len < follow.offset {
            note(
                sink,
                "the file was truncated or replaced; reading it from its start",
            )
            .await;
            follow.offset = 0;
            follow.partial.clear();
        }
        if len == follow.offset {
            return Ok((String::new(), false));
        }
        let mut file = tokio::fs::File::open(&self.path).await?;
        file.seek(SeekFrom::Start(follow.offset)).await?;
        let mut bytes = Vec::new();
        let want = (len - follow.offset).min(READ_CHUNK as u64);
        file.take(want).read_to_end(&mut bytes).await?;
        follow.offset += bytes.len() as u64;
        Ok((follow.lines(&bytes), follow.offset < len))
    }

    /// Carries out one input line.
    async fn command(&self, text: &str, follow: &mut Follow, sink: &dyn DriverSink) {
        let text = text.trim_end_matches(['\r', '\n']);
        match text.split_once(' ').unwrap_or((text, "")) {
            ("grep", "") => {
                follow.filter = None;
                note(sink, "showing every line").await;
            }
            ("grep", filter) => {
                follow.filter = Some(filter.to_owned());
                note(sink, &format!("showing only lines containing {filter:?}")).await;
            }
            _ => {
                note(
                    sink,
                    "unknown command; send `grep TEXT` to show only lines containing TEXT, `grep` to show every line",
                )
                .await;
            }
        }
    }
}

#[async_trait::async_trait]
impl Driver for TailDriver {
    fn kind(&self) -> ProfileKind {
        ProfileKind::Custom(CustomKind::new("tail").expect("a valid kind name"))
    }

    async fn run(&self, mut worker: DriverInputs, sink: Arc<dyn DriverSink>) -> Ending {
        let mut follow = Follow {
            offset: 0,
            partial: Vec::new(),
            filter: None,
            missing: false,
        };
        // Where following starts is fixed before the worker counts as started, so
        // that a line written once the create call has answered is never skipped.
        let last = match self.start(&mut follow).await {
            Ok(last) => last,
            // The first look reports it.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => {
                return Ending::Failed(format!(
                    "the file cannot be read ({}); check the profile's file",
                    error.kind()
                ));
            }
        };
        sink.started().await;
        if !last.is_empty() {
            sink.output(OutputStream::Stdout, last).await;
        }
        let mut ticks = tokio::time::interval(self.poll);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                control = worker.control.recv() => match control {
                    Some(Control::Cancel) => {
                        follow.filter = None;
                        sink.interrupted().await;
                    }
                    Some(Control::Stop { .. }) | None => {
                        return Ending::Stopped(ExitInfo { code: None, signal: None });
                    }
                    Some(_) => {}
                },
                Some(text) = worker.inputs.recv() => {
                    self.command(&text, &mut follow, sink.as_ref()).await;
                }
                _ = ticks.tick() => match self.look(&mut follow, sink.as_ref()).await {
                    Ok((lines, more)) => {
                        if !lines.is_empty() {
                            sink.output(OutputStream::Stdout, lines).await;
                        }
                        if more {
                            // A burst: read on at once, chunk by chunk (commands
                            // still come first).
                            ticks.reset_immediately();
                        }
                    }
                    Err(error) => {
                        sink.diagnostic(
                            DiagnosticSeverity::Error,
                            "read_failed",
                            format!("the file cannot be read ({}); still trying", error.kind()),
                        )
                        .await;
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow(filter: Option<&str>) -> Follow {
        Follow {
            offset: 0,
            partial: Vec::new(),
            filter: filter.map(str::to_owned),
            missing: false,
        }
    }

    #[test]
    fn only_complete_lines_pass_and_the_rest_waits() {
        let mut f = follow(None);
        let cases: [(&[u8], &str); 4] = [
            (b"one\ntw", "one\n"),
            (b"o\n", "two\n"),
            (b"three", ""),
            (b"\nfour\nfive\n", "three\nfour\nfive\n"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(f.lines(bytes), expected);
        }
    }

    #[test]
    fn the_filter_keeps_matching_lines() {
        let mut f = follow(Some("ERROR"));
        assert_eq!(
            f.lines(b"INFO a\nERROR b\nERR c\nan ERROR d\n"),
            "ERROR b\nan ERROR d\n"
        );
    }

    #[test]
    fn a_line_without_end_is_reported_once_it_is_too_long() {
        let mut f = follow(None);
        assert_eq!(f.lines(&vec![b'x'; MAX_LINE - 1]), "");
        assert_eq!(f.lines(b"x").len(), MAX_LINE);
        assert!(f.partial.is_empty());
    }
}
