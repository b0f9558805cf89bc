//! A real terminal for tests: a detached tmux session on a private server socket,
//! driven with `send-keys`, read with `capture-pane`, resized with `resize-window`.
//!
//! tmux comes from Debian's packages (`.ci/run` installs it). Where it is missing,
//! [`Tmux::start`] returns `None` after printing why on standard error, unless
//! `SWITCHYARD_REQUIRE_TMUX` is set (as CI sets it), where it panics instead.

use std::process::{Command, Output};
use std::time::Duration;

use tokio::time::Instant;

/// One tmux server with one session running `sh`, killed when dropped.
#[derive(Debug)]
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts a `cols` x `rows` session running `sh` with `envs` set and the prompt
    /// `$ `; `None` (after saying so) when tmux is not installed.
    pub fn start(test: &str, cols: u16, rows: u16, envs: &[(&str, &str)]) -> Option<Self> {
        if Command::new("tmux").arg("-V").output().is_err() {
            let message = format!(
                "SKIPPED {test}: tmux is not installed (apt-get install tmux; .ci/run installs it)"
            );
            assert!(
                std::env::var_os("SWITCHYARD_REQUIRE_TMUX").is_none(),
                "{message}, and SWITCHYARD_REQUIRE_TMUX is set"
            );
            eprintln!("{message}");
            return None;
        }
        let socket = format!("switchyard-test-{}-{}", std::process::id(), fastrand_u64());
        let tmux = Self { socket };
        let mut args = vec![
            "-f".to_owned(),
            "/dev/null".to_owned(),
            "new-session".to_owned(),
            "-d".to_owned(),
            "-x".to_owned(),
            cols.to_string(),
            "-y".to_owned(),
            rows.to_string(),
        ];
        for (name, value) in envs {
            args.push("-e".to_owned());
            args.push(format!("{name}={value}"));
        }
        args.extend(["-e".to_owned(), "PS1=$ ".to_owned(), "sh".to_owned()]);
        tmux.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Types `text` literally (no key names), without Enter.
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "0", "-l", text]);
    }

    /// Types `line` and Enter.
    pub fn type_line(&self, line: &str) {
        self.type_text(line);
        self.keys(&["Enter"]);
    }

    /// Sends keys by tmux name (`Enter`, `C-c`, `C-]`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend(keys);
        self.run(&args);
    }

    /// The visible screen, trailing blank lines removed.
    pub fn screen(&self) -> String {
        let output = self.run(&["capture-pane", "-p", "-t", "0"]);
        String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned()
    }

    /// Resizes the window (and so the pane) to `cols` x `rows`.
    pub fn resize(&self, cols: u16, rows: u16) {
        self.run(&[
            "resize-window",
            "-t",
            "0",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
    }

    /// Waits until the screen satisfies `ready`; panics with the screen after
    /// [`crate::WAIT`].
    pub async fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + crate::WAIT;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the screen contains `text`.
    pub async fn wait_for_text(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?} on the screen"), |s| s.contains(text))
            .await
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// A random number for unique socket names.
fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}
