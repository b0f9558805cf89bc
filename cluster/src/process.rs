//! [`Process`]: a child process of the cluster, its output in a log file, its first
//! line (`listening on ...`) awaited, killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::error::ClusterError;

/// A running child process.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    pid: u32,
    log: PathBuf,
}

impl Process {
    /// Spawns `command` (its standard error and the rest of its standard output go
    /// to `log`), and waits up to [`crate::WAIT`] for its first line on standard
    /// output, which it returns. `name` appears in errors.
    pub async fn spawn(
        name: &str,
        mut command: Command,
        log: &Path,
    ) -> Result<(Self, String), ClusterError> {
        let log_file = std::fs::File::create(log)
            .map_err(ClusterError::io(format!("creating {}", log.display())))?;
        let stderr = log_file
            .try_clone()
            .map_err(ClusterError::io("duplicating a log file"))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| ClusterError::Start {
            what: name.to_owned(),
            detail: format!("could not spawn: {e}"),
        })?;
        let pid = child.id().unwrap_or_default();
        let stdout = child.stdout.take().ok_or_else(|| ClusterError::Start {
            what: name.to_owned(),
            detail: "no standard output".into(),
        })?;
        let mut lines = BufReader::new(stdout).lines();
        let mut process = Self {
            name: name.to_owned(),
            child,
            pid,
            log: log.to_owned(),
        };
        let first = match tokio::time::timeout(crate::WAIT, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(_) => {
                let status = process.wait_exit(Duration::from_secs(2)).await.ok();
                return Err(process.failed(format!("exited ({status:?}) before its first line")));
            }
            Err(_) => return Err(process.failed("no first line within 30 s".into())),
        };
        // Keep draining standard output into the log so the process never blocks.
        let mut log_file = tokio::fs::File::from_std(log_file);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = log_file.write_all(format!("{line}\n").as_bytes()).await;
                // tokio's File completes writes in the background: flush so that a
                // line is in the file once written, and none is lost at the end.
                let _ = log_file.flush().await;
            }
        });
        Ok((process, first))
    }

    /// A start failure naming the process and the end of its log.
    fn failed(&self, detail: String) -> ClusterError {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(8)..].join("\n  ");
        ClusterError::Start {
            what: self.name.clone(),
            detail: format!("{detail}; its log ({}) ends:\n  {tail}", self.log.display()),
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `signal`; false when the process is gone.
    pub fn signal(&self, signal: Signal) -> bool {
        kill(Pid::from_raw(self.pid as i32), signal).is_ok()
    }

    /// Waits up to `limit` for the process to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> Result<ExitStatus, ClusterError> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(error)) => Err(ClusterError::io(format!("waiting for {}", self.name))(
                error,
            )),
            Err(_) => Err(ClusterError::Timeout(format!("{} to exit", self.name))),
        }
    }

    /// SIGKILL, then waits for the exit.
    pub async fn kill(mut self) -> Result<ExitStatus, ClusterError> {
        self.signal(Signal::SIGKILL);
        self.wait_exit(crate::WAIT).await
    }

    /// SIGTERM (a clean shutdown), then waits up to `limit`; SIGKILL after that.
    pub async fn stop(mut self, limit: Duration) -> Result<ExitStatus, ClusterError> {
        self.signal(Signal::SIGTERM);
        match self.wait_exit(limit).await {
            Ok(status) => Ok(status),
            Err(_) => {
                let name = self.name.clone();
                let _ = self.kill().await;
                Err(ClusterError::Timeout(format!(
                    "{name} to stop after SIGTERM"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_line_then_log_and_signals() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("p.log");
        let mut command = Command::new("sh");
        // Everything is written before the first line can be read, so that the
        // SIGTERM below cannot come first.
        command.args([
            "-c",
            "echo oops >&2; printf 'first\\nsecond\\n'; exec sleep 30",
        ]);
        let (process, first) = Process::spawn("sleeper", command, &log).await.unwrap();
        assert_eq!(first, "first");
        let status = process.stop(Duration::from_secs(5)).await.unwrap();
        assert_eq!(status.code(), None, "ended by SIGTERM");
        // The rest of standard output is copied into the log by a task: wait for it.
        let deadline = std::time::Instant::now() + crate::WAIT;
        let text = loop {
            let text = std::fs::read_to_string(&log).unwrap();
            if text.contains("second") || std::time::Instant::now() > deadline {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(text.contains("second") && text.contains("oops"), "{text}");

        let mut command = Command::new("sh");
        command.args(["-c", "echo broken >&2; exit 4"]);
        let err = Process::spawn("quitter", command, &log).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("quitter") && text.contains("broken"),
            "{text}"
        );
    }
}
