//! The `process` driver: an OS process in its own process group, with stdin, stdout and
//! stderr piped.
//!
//! Inputs are written to stdin as given; stdout and stderr are read concurrently,
//! decoded as UTF-8 (never splitting a character) and reported through the
//! [`DriverSink`]. Cancel sends SIGINT to the process group; stop sends SIGTERM, then
//! SIGKILL after a grace period. When the group leader ends, the whole group is killed
//! so that no orphaned child keeps running or keeps the output pipes open.

use std::ffi::OsString;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use switchyard_protocol::OutputStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::driver::{Control, DriverInputs, DriverSink, Ending};
use super::orphans::Watched;
use super::session::{GroupGuard, signal_group};
use super::teardown::{ReadCount, ending, read_remaining_output};
use super::utf8::Utf8Chunker;
use crate::config::ProcessSpec;

/// The only variables a process inherits, with the values used when the runtime's own
/// environment lacks them.
pub(super) const BASE_ENV: [(&str, &str); 4] = [
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/"),
    ("LANG", "C.UTF-8"),
    ("TERM", "dumb"),
];

/// The message a worker that could not start shows its viewers, naming no path on
/// the runtime's host (a remote runtime's paths must not reach a backend's clients):
/// the program by name when the profile gives a bare name looked up in `PATH`, "the
/// profile's program" when it gives a path, never the working directory. The whole
/// story (command, directory, error) goes to the runtime's log, which the message
/// points to.
pub(super) fn start_failure(
    program: &str,
    cwd: Option<&std::path::Path>,
    error: &dyn std::fmt::Display,
) -> String {
    tracing::warn!(
        program,
        cwd = cwd.map(|c| c.display().to_string()),
        %error,
        "a worker's program could not be started"
    );
    let named = if program.contains('/') {
        "the profile's program".to_owned()
    } else {
        format!("`{program}`")
    };
    let place = if cwd.is_some() {
        " in the profile's working directory"
    } else {
        ""
    };
    format!(
        "could not start {named}{place}: {error}; the runtime's log names the command and \
         directory, check the profile's `command` and `cwd`"
    )
}

/// Largest single read from stdout or stderr.
pub(super) const READ_CHUNK: usize = 8 * 1024;

/// Runs `spec` as an OS process until it ends or is stopped.
///
/// The process gets its own process group, a cleared environment with only `PATH`,
/// `HOME`, `LANG` and `TERM` (from the runtime's environment, or defaults) plus
/// `spec.env`, and `spec.cwd` as working directory when given.
///
/// Reports [`DriverSink::started`] once the process is spawned, then every decoded
/// chunk of stdout and stderr (awaiting the sink, so a slow sink slows the readers).
/// [`Control::Cancel`] sends SIGINT to the process group and reports
/// [`DriverSink::interrupted`]; [`Control::Stop`] sends SIGTERM, waits up to its grace
/// for the leader to exit, then sends SIGKILL. A closed control channel counts as a stop
/// with [`DriverInputs::stop_grace`].
///
/// Once the leader has exited, the whole group is killed and all remaining output is
/// reported before this returns [`Ending::Exited`] (ended on its own) or
/// [`Ending::Stopped`] (a stop was requested). A process that cannot be started gives
/// [`Ending::Failed`] with a message from [`start_failure`] (no path, never
/// environment values).
pub(crate) async fn run_process(
    spec: ProcessSpec,
    inputs: DriverInputs,
    sink: Arc<dyn DriverSink>,
) -> Ending {
    let DriverInputs {
        inputs,
        mut control,
        stop_grace: stop_default_grace,
        ..
    } = inputs;

    // The guard is made on the spawning thread right after the spawn: from then
    // on, however this future ends (dropped while the spawn runs included),
    // nothing of the group survives it, and the reaper holds it at once.
    let spawned = off_the_async_threads(move || {
        let child = spawn(&spec)?;
        let Some(pid) = child.id() else {
            // Only possible if the child was already reaped, which we have not done.
            return Err("the process ended before it could be watched".to_owned());
        };
        let pgid = i32::try_from(pid)
            .map(Pid::from_raw)
            .map_err(|_| format!("unexpected process id {pid}"))?;
        Ok((child, pgid, GroupGuard::new(Watched::Group(pgid))))
    })
    .await;
    let (mut child, pgid, mut guard) = match spawned {
        Ok(spawned) => spawned,
        Err(message) => return Ending::Failed(message),
    };
    tracing::debug!(pgid = pgid.as_raw(), "process worker started");

    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    sink.started().await;

    let (give_up_tx, give_up_rx) = watch::channel(false);
    let reads = ReadCount::default();
    let mut readers: Vec<JoinHandle<bool>> = Vec::new();
    for (pipe, stream) in [
        (
            stdout.map(|p| Box::new(p) as BoxedReader),
            OutputStream::Stdout,
        ),
        (
            stderr.map(|p| Box::new(p) as BoxedReader),
            OutputStream::Stderr,
        ),
    ] {
        if let Some(pipe) = pipe {
            let task = tokio::spawn(pump_output(
                pipe,
                stream,
                Arc::clone(&sink),
                Arc::clone(&reads),
                give_up_rx.clone(),
            ));
            guard.tasks.push(task.abort_handle());
            readers.push(task);
        }
    }
    let writer = tokio::spawn(feed_stdin(stdin, inputs));
    guard.tasks.push(writer.abort_handle());

    // Wait for the leader to exit, serving cancel and stop meanwhile.
    let mut stop_requested = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            command = control.recv() => match command {
                Some(Control::Cancel) => {
                    signal_group(pgid, Signal::SIGINT);
                    sink.interrupted().await;
                }
                Some(Control::Stop { grace }) => {
                    stop_requested = true;
                    break stop(&mut child, pgid, grace).await;
                }
                None => {
                    tracing::debug!(pgid = pgid.as_raw(), "control channel closed: stopping");
                    stop_requested = true;
                    break stop(&mut child, pgid, stop_default_grace).await;
                }
            },
        }
    };

    // The leader is reaped; take the rest of its group with it.
    signal_group(pgid, Signal::SIGKILL);
    guard.disarm();
    writer.abort();

    // All output is reported before the driver returns.
    read_remaining_output(
        join_readers(readers),
        &reads,
        &give_up_tx,
        sink.as_ref(),
        "a process outside the worker's process group kept its output open",
    )
    .await;
    guard.tasks.clear();
    ending(status, stop_requested, pgid)
}

/// Runs `spawn` (a fork and exec: from tens of microseconds to milliseconds in a
/// process with much memory mapped) on tokio's blocking pool, not on a thread that
/// serves connections. Its threads carry the runtime's context, so a child (and a
/// pty) registers with the runtime's reactor as it would on an async thread. If
/// the caller is dropped meanwhile, what the spawn made is dropped with the task's
/// result (a child is spawned with `kill_on_drop`).
pub(crate) async fn off_the_async_threads<T: Send + 'static>(
    spawn: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(spawn).await {
        Ok(spawned) => spawned,
        Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
        // Only a tokio runtime shutting down cancels the task.
        Err(_) => Err("could not start the program: the runtime is shutting down".to_owned()),
    }
}

/// An output pipe of the child.
type BoxedReader = Box<dyn AsyncRead + Send + Unpin>;

/// Builds and spawns the command; the error is a message for the user.
fn spawn(spec: &ProcessSpec) -> Result<Child, String> {
    let Some(program) = spec.command.first() else {
        return Err("could not start the process: the profile's command is empty".to_owned());
    };
    let mut command = Command::new(program);
    command.args(&spec.command[1..]).env_clear();
    for (name, default) in BASE_ENV {
        let value = std::env::var_os(name).unwrap_or_else(|| OsString::from(default));
        command.env(name, value);
    }
    command.envs(&spec.env);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|err| start_failure(program, spec.cwd.as_deref(), &err))?;
    if let Some(pid) = child.id() {
        crate::open_files::restore_in(pid);
    }
    Ok(child)
}

/// Writes each input to stdin as given. After the pipe breaks (or any write error),
/// the remaining inputs are taken and dropped quietly.
async fn feed_stdin(stdin: Option<ChildStdin>, mut inputs: mpsc::Receiver<String>) {
    let mut stdin = stdin;
    while let Some(text) = inputs.recv().await {
        let Some(pipe) = stdin.as_mut() else {
            continue;
        };
        let written = async {
            pipe.write_all(text.as_bytes()).await?;
            pipe.flush().await
        }
        .await;
        if let Err(err) = written {
            if err.kind() == io::ErrorKind::BrokenPipe {
                tracing::debug!("stdin closed by the process; dropping further input");
            } else {
                tracing::warn!(error = %err, "writing to stdin failed; dropping further input");
            }
            stdin = None;
        }
    }
    // The input queue closed: dropping the pipe gives the process end-of-file.
}

/// Reads one output pipe to its end, reporting decoded text as it comes.
///
/// Counts its successful reads in `reads`. Once `give_up` turns true, reads only
/// what is already buffered and then stops; returns true if it stopped that way
/// rather than at end of file.
pub(super) async fn pump_output<R: AsyncRead + Unpin>(
    mut pipe: R,
    stream: OutputStream,
    sink: Arc<dyn DriverSink>,
    reads: ReadCount,
    mut give_up: watch::Receiver<bool>,
) -> bool {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut decoder = Utf8Chunker::new();
    let mut gave_up = false;
    loop {
        let read = tokio::select! {
            biased;
            read = pipe.read(&mut buf) => read,
            _ = give_up.wait_for(|g| *g) => {
                gave_up = true;
                break;
            }
        };
        match read {
            Ok(0) => break,
            Ok(n) => {
                reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let text = decoder.push(&buf[..n]);
                if !text.is_empty() {
                    sink.output(stream, text).await;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            // A terminal whose other side has closed (every process holding it has
            // exited) reads EIO: the end, as EOF is for a pipe.
            Err(err) if err.raw_os_error() == Some(Errno::EIO as i32) => break,
            Err(err) => {
                tracing::warn!(?stream, error = %err, "reading worker output failed");
                break;
            }
        }
    }
    let rest = decoder.finish();
    if !rest.is_empty() {
        sink.output(stream, rest).await;
    }
    gave_up
}

/// SIGTERM to the group, up to `grace` for the leader to exit, then SIGKILL.
async fn stop(child: &mut Child, pgid: Pid, grace: Duration) -> io::Result<ExitStatus> {
    signal_group(pgid, Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            tracing::debug!(
                pgid = pgid.as_raw(),
                "grace period over: killing the process group"
            );
            signal_group(pgid, Signal::SIGKILL);
            child.wait().await
        }
    }
}

/// Awaits all output readers (a panicked or aborted one counts as finished); true if
/// any of them gave up on an open pipe.
async fn join_readers(readers: Vec<JoinHandle<bool>>) -> bool {
    let mut gave_up = false;
    for reader in readers {
        gave_up |= reader.await.unwrap_or(false);
    }
    gave_up
}

#[cfg(test)]
mod tests {
    use nix::sys::signal::killpg;
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Mutex;
    use std::time::Instant;
    use switchyard_protocol::{DiagnosticSeverity, ExitInfo, WorkerId};

    use super::*;
    use crate::worker::teardown::PIPE_CLOSE_GRACE;

    /// Generous bound for anything that should happen "soon" on a loaded machine.
    const PATIENCE: Duration = Duration::from_secs(30);

    /// The fork and exec run on the blocking pool, in the runtime's context (a
    /// child there registers with the reactor), not on the thread that serves.
    #[tokio::test(flavor = "current_thread")]
    async fn spawns_run_off_the_async_thread_in_the_runtimes_context() {
        let serving = std::thread::current().id();
        let (spawned_on, child) = off_the_async_threads(|| {
            let child = Command::new("true")
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| e.to_string())?;
            Ok((std::thread::current().id(), child))
        })
        .await
        .unwrap();
        assert_ne!(spawned_on, serving);
        let mut child = child;
        let status = tokio::time::timeout(PATIENCE, child.wait()).await.unwrap();
        assert!(status.unwrap().success());
        let refused = off_the_async_threads::<()>(|| Err("no".to_owned())).await;
        assert_eq!(refused, Err("no".to_owned()));
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Event {
        Started,
        Output(OutputStream, String),
        Interrupted,
        Diagnostic(DiagnosticSeverity, String, String),
    }

    #[derive(Default)]
    struct Recorder {
        events: Mutex<Vec<Event>>,
    }

    impl Recorder {
        fn record(&self, event: Event) {
            self.events.lock().unwrap().push(event);
        }

        fn events(&self) -> Vec<Event> {
            self.events.lock().unwrap().clone()
        }

        fn text(&self, stream: OutputStream) -> String {
            self.events()
                .into_iter()
                .filter_map(|e| match e {
                    Event::Output(s, text) if s == stream => Some(text),
                    _ => None,
                })
                .collect()
        }

        fn stdout(&self) -> String {
            self.text(OutputStream::Stdout)
        }

        /// Waits until `done` holds for the recorded events.
        async fn wait_until(&self, what: &str, done: impl Fn(&Recorder) -> bool) {
            let deadline = Instant::now() + PATIENCE;
            while !done(self) {
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}; events: {:?}",
                    self.events()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    #[async_trait::async_trait]
    impl DriverSink for Recorder {
        async fn started(&self) {
            self.record(Event::Started);
        }
        async fn output(&self, stream: OutputStream, text: String) {
            self.record(Event::Output(stream, text));
        }
        async fn interrupted(&self) {
            self.record(Event::Interrupted);
        }
        async fn diagnostic(&self, severity: DiagnosticSeverity, code: &str, message: String) {
            self.record(Event::Diagnostic(severity, code.to_owned(), message));
        }
        async fn resized(&self, _cols: u16, _rows: u16) {
            unreachable!("a process worker is not a terminal");
        }
    }

    struct Running {
        inputs: mpsc::Sender<String>,
        control: mpsc::Sender<Control>,
        sink: Arc<Recorder>,
        driver: JoinHandle<Ending>,
    }

    impl Running {
        async fn input(&self, text: &str) {
            self.inputs.send(text.to_owned()).await.unwrap();
        }

        async fn control(&self, command: Control) {
            self.control.send(command).await.unwrap();
        }

        /// The first stdout line, for scripts that start with `echo $$`.
        async fn first_line(&self) -> String {
            self.sink
                .wait_until("a first line", |r| r.stdout().contains('\n'))
                .await;
            self.sink.stdout().lines().next().unwrap().to_owned()
        }

        async fn ending(self) -> (Ending, Arc<Recorder>) {
            let Running {
                inputs,
                control,
                sink,
                driver,
            } = self;
            let ending = tokio::time::timeout(PATIENCE, driver)
                .await
                .expect("the driver did not end in time")
                .unwrap();
            drop((inputs, control));
            (ending, sink)
        }
    }

    fn spec(command: &[&str]) -> ProcessSpec {
        ProcessSpec {
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            env: BTreeMap::new(),
            cwd: None,
        }
    }

    fn sh(script: &str) -> ProcessSpec {
        spec(&["sh", "-c", script])
    }

    fn start(spec: ProcessSpec) -> Running {
        let worker_id = WorkerId::new("w-test").unwrap();
        let (io, controls) = DriverInputs::new(worker_id, 4, Duration::from_secs(5));
        let sink = Arc::new(Recorder::default());
        let driver = tokio::spawn(run_process(
            spec,
            io,
            Arc::clone(&sink) as Arc<dyn DriverSink>,
        ));
        Running {
            inputs: controls.inputs,
            control: controls.control,
            sink,
            driver,
        }
    }

    async fn run_to_end(spec: ProcessSpec) -> (Ending, Arc<Recorder>) {
        start(spec).ending().await
    }

    fn exited(code: i32) -> Ending {
        Ending::Exited(ExitInfo {
            code: Some(code),
            signal: None,
        })
    }

    fn stopped_by(signal: Signal) -> Ending {
        Ending::Stopped(ExitInfo {
            code: None,
            signal: Some(signal as i32),
        })
    }

    /// Pids of processes in group `pgid` that are not zombies (a zombie has ended; it
    /// only waits to be reaped by whoever adopted it).
    fn live_members(pgid: i32) -> Vec<i32> {
        let mut live = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // After the command name in parentheses: state, ppid, pgrp, ...
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            let fields: Vec<&str> = after.split_whitespace().collect();
            if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
                live.push(pid);
            }
        }
        live
    }

    /// Waits (generously) until nothing of group `pgid` is alive.
    async fn assert_group_gone(pgid: i32) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let live = live_members(pgid);
            let signalable = killpg(Pid::from_raw(pgid), None);
            if live.is_empty() {
                // Either gone entirely or only unreaped zombies are left.
                assert!(matches!(signalable, Ok(()) | Err(Errno::ESRCH)));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "processes of group {pgid} still alive: {live:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn parse_pids(line: &str) -> Vec<i32> {
        line.split_whitespace()
            .map(|p| p.parse().unwrap_or_else(|_| panic!("not a pid: {line:?}")))
            .collect()
    }

    #[tokio::test]
    async fn cat_echoes_input_and_exits_at_end_of_input() {
        let running = start(spec(&["/bin/cat"]));
        running.input("hello\n").await;
        running
            .sink
            .wait_until("hello back", |r| r.stdout() == "hello\n")
            .await;
        running.input("wörld\n").await;
        running
            .sink
            .wait_until("wörld back", |r| r.stdout() == "hello\nwörld\n")
            .await;
        // Closing the input queue closes stdin: cat ends on its own.
        let Running {
            inputs,
            control,
            sink,
            driver,
        } = running;
        drop(inputs);
        let ending = tokio::time::timeout(PATIENCE, driver)
            .await
            .unwrap()
            .unwrap();
        drop(control);
        assert_eq!(ending, exited(0));
        let events = sink.events();
        assert_eq!(events.first(), Some(&Event::Started));
        assert!(!events.contains(&Event::Interrupted));
    }

    #[tokio::test]
    async fn exit_code_is_reported() {
        let (ending, sink) = run_to_end(sh("exit 3")).await;
        assert_eq!(ending, exited(3));
        assert_eq!(sink.events(), vec![Event::Started]);
    }

    #[tokio::test]
    async fn stderr_is_reported_as_stderr() {
        let (ending, sink) = run_to_end(sh("echo out; echo err >&2")).await;
        assert_eq!(ending, exited(0));
        assert_eq!(sink.text(OutputStream::Stderr), "err\n");
        assert_eq!(sink.stdout(), "out\n");
    }

    #[tokio::test]
    async fn all_output_is_reported_before_the_driver_returns() {
        let (ending, sink) = run_to_end(sh(
            "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); done",
        ))
        .await;
        assert_eq!(ending, exited(0));
        let out = sink.stdout();
        assert_eq!(out.lines().count(), 2000);
        assert!(out.ends_with("line 1999\n"));
        for event in sink.events() {
            if let Event::Output(_, text) = event {
                assert!(!text.is_empty() && text.len() <= READ_CHUNK);
            }
        }
    }

    #[tokio::test]
    async fn cancel_interrupts_without_ending_the_worker() {
        // The loop ends at end of input (no spinning once stdin closes) but not on
        // SIGINT: dash's `read` returns 1 for both, and the trap's flag tells them apart.
        let running = start(sh("trap 'echo caught; i=1' INT; echo ready; \
             while :; do i=; if read line; then echo \"got $line\"; \
             elif [ -z \"$i\" ]; then exit 0; fi; done"));
        running
            .sink
            .wait_until("ready", |r| r.stdout() == "ready\n")
            .await;
        running.control(Control::Cancel).await;
        running
            .sink
            .wait_until("the trap and the interrupted report", |r| {
                r.stdout().contains("caught\n") && r.events().contains(&Event::Interrupted)
            })
            .await;
        running.input("after\n").await;
        running
            .sink
            .wait_until("an answer after the cancel", |r| {
                r.stdout().contains("got after\n")
            })
            .await;
        running
            .control(Control::Stop {
                grace: Duration::from_secs(10),
            })
            .await;
        let (ending, _) = running.ending().await;
        assert_eq!(ending, stopped_by(Signal::SIGTERM));
    }

    #[tokio::test]
    async fn stop_kills_the_group_after_the_grace_when_term_is_ignored() {
        let running = start(sh("trap '' TERM; sleep 1000 & echo \"$$ $!\"; wait"));
        let pids = parse_pids(&running.first_line().await);
        let (pgid, sleeper) = (pids[0], pids[1]);
        assert_eq!(live_members(pgid).len(), 2, "sh and sleep in one group");
        assert!(live_members(pgid).contains(&sleeper));

        let grace = Duration::from_millis(300);
        let asked = Instant::now();
        running.control(Control::Stop { grace }).await;
        let (ending, _) = running.ending().await;
        assert!(asked.elapsed() >= grace, "SIGKILL came before the grace");
        assert_eq!(ending, stopped_by(Signal::SIGKILL));
        assert_group_gone(pgid).await;
    }

    #[tokio::test]
    async fn orphaned_children_are_killed_when_the_leader_exits() {
        // The background sleep keeps stdout open; the driver must still end.
        let running = start(sh("sleep 1000 & echo \"$$ $!\"; exit 7"));
        let pids = parse_pids(&running.first_line().await);
        let (ending, _) = running.ending().await;
        assert_eq!(ending, exited(7));
        assert_group_gone(pids[0]).await;
    }

    #[tokio::test]
    async fn a_process_escaping_the_group_cannot_hold_the_driver() {
        // `setsid` puts the escaped shell in a new session (and group) that the group
        // kill does not reach; it keeps stdout open. It reports its pid once it has
        // escaped; only then does the leader get the input that lets it exit.
        let (ending, sink, waited) =
            escape_then_exit("setsid sh -c 'echo $$; exec sleep 60'").await;
        assert_eq!(ending, exited(0));
        // A silent pipe is given up after PIPE_QUIET, not the whole grace (the
        // worker's end, and a stop's answer, waited 3 s for it before).
        assert!(
            waited < PIPE_CLOSE_GRACE,
            "the driver waited {waited:?} for a silent pipe"
        );
        assert!(held_open_reported(&sink), "{:?}", sink.events());
    }

    /// Runs a shell that starts `escaping` in the background (it must print its pid
    /// first, once it has escaped the group), then exits 0 when told to; returns
    /// the driver's ending, its sink and how long the end took once told.
    async fn escape_then_exit(escaping: &str) -> (Ending, Arc<Recorder>, Duration) {
        let running = start(sh(&format!("{escaping} & read line; exit 0")));
        let escaped = parse_pids(&running.first_line().await)[0];
        assert!(
            !live_members(escaped).is_empty(),
            "escaped process is alive"
        );
        let asked = Instant::now();
        running.input("go\n").await;
        let (ending, sink) = running.ending().await;
        let waited = asked.elapsed();
        let _ = nix::sys::signal::kill(Pid::from_raw(escaped), Signal::SIGKILL);
        (ending, sink, waited)
    }

    /// Whether the sink got the warning that a pipe was held open.
    fn held_open_reported(sink: &Recorder) -> bool {
        sink.events().iter().any(|e| {
            matches!(
                e,
                Event::Diagnostic(DiagnosticSeverity::Warning, code, _)
                    if code == "output_pipe_held_open"
            )
        })
    }

    /// An escaped process that keeps writing holds the end up to the grace (its
    /// output is still the worker's), then is given up on.
    #[tokio::test]
    async fn a_process_escaping_the_group_and_writing_is_read_until_the_grace() {
        let (ending, sink, waited) =
            escape_then_exit("setsid sh -c 'echo $$; while :; do echo tick; sleep 0.05; done'")
                .await;
        assert_eq!(ending, exited(0));
        assert!(
            waited >= PIPE_CLOSE_GRACE,
            "gave up after {waited:?} on a pipe still written"
        );
        assert!(sink.stdout().contains("tick\n"));
        assert!(held_open_reported(&sink), "{:?}", sink.events());
    }

    #[tokio::test]
    async fn closed_control_channel_stops_the_worker() {
        let running = start(sh("echo $$; exec sleep 1000"));
        let pgid = parse_pids(&running.first_line().await)[0];
        let Running {
            inputs,
            control,
            driver,
            ..
        } = running;
        drop(control);
        let ending = tokio::time::timeout(PATIENCE, driver)
            .await
            .unwrap()
            .unwrap();
        drop(inputs);
        assert_eq!(ending, stopped_by(Signal::SIGTERM));
        assert_group_gone(pgid).await;
    }

    #[tokio::test]
    async fn input_after_stdin_closes_is_drained_quietly() {
        let running = start(sh("exec 0<&-; echo closed; exec sleep 1000"));
        running
            .sink
            .wait_until("closed", |r| r.stdout() == "closed\n")
            .await;
        // Far more than the queue holds: sending only completes if it is drained.
        for i in 0..50 {
            tokio::time::timeout(PATIENCE, running.input(&format!("{i}\n")))
                .await
                .expect("input queue not drained after a broken pipe");
        }
        running
            .control(Control::Stop {
                grace: Duration::from_secs(10),
            })
            .await;
        let (ending, sink) = running.ending().await;
        assert_eq!(ending, stopped_by(Signal::SIGTERM));
        assert!(
            !sink
                .events()
                .iter()
                .any(|e| matches!(e, Event::Diagnostic(..)))
        );
    }

    #[tokio::test]
    async fn missing_executable_fails_naming_no_path() {
        let (ending, sink) = run_to_end(spec(&["/no/such/program", "--flag"])).await;
        let Ending::Failed(message) = ending else {
            panic!("expected Failed, got {ending:?}");
        };
        assert!(!message.contains("/no/such"), "{message}");
        assert!(message.contains("the profile's program"), "{message}");
        assert!(message.contains("No such file"), "{message}");
        assert!(sink.events().is_empty(), "no started for a failed spawn");

        // A bare name is no path: it is named.
        let (ending, _) = run_to_end(spec(&["switchyard-no-such-program"])).await;
        assert!(
            matches!(&ending, Ending::Failed(m) if m.contains("`switchyard-no-such-program`")),
            "{ending:?}"
        );
    }

    #[tokio::test]
    async fn empty_command_fails() {
        let (ending, sink) = run_to_end(spec(&[])).await;
        assert!(matches!(ending, Ending::Failed(m) if m.contains("empty")));
        assert!(sink.events().is_empty());
    }

    #[tokio::test]
    async fn environment_is_minimal_plus_profile_env() {
        let mut spec = spec(&["env"]);
        spec.env.insert("FOO".to_owned(), "bar".to_owned());
        let (ending, sink) = run_to_end(spec).await;
        assert_eq!(ending, exited(0));
        let out = sink.stdout();
        let vars: BTreeMap<&str, &str> = out
            .lines()
            .map(|line| line.split_once('=').unwrap_or((line, "")))
            .collect();
        let names: BTreeSet<&str> = vars.keys().copied().collect();
        assert_eq!(
            names,
            BTreeSet::from(["FOO", "HOME", "LANG", "PATH", "TERM"]),
            "{out}"
        );
        assert_eq!(vars["FOO"], "bar");
        // The test process itself has more variables than that.
        assert!(std::env::vars_os().count() > 5);
    }

    #[tokio::test]
    async fn working_directory_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sh("pwd -P");
        spec.cwd = Some(dir.path().to_owned());
        let (ending, sink) = run_to_end(spec).await;
        assert_eq!(ending, exited(0));
        let expected = dir.path().canonicalize().unwrap();
        assert_eq!(sink.stdout().trim_end(), expected.to_str().unwrap());

        // A missing one fails the worker without naming it (a runtime's paths
        // stay on its host; its log names them).
        let mut spec = sh("true");
        spec.cwd = Some("/no/such/dir".into());
        let (ending, _) = run_to_end(spec).await;
        let Ending::Failed(message) = ending else {
            panic!("expected Failed, got {ending:?}");
        };
        assert!(!message.contains("/no/such"), "{message}");
        assert!(message.contains("working directory"), "{message}");
    }

    #[tokio::test]
    async fn multibyte_character_written_in_two_parts_arrives_whole() {
        // \303\251 is "é"; the two bytes are written 200ms apart.
        let (ending, sink) = run_to_end(sh("printf '\\303'; sleep 0.2; printf '\\251'")).await;
        assert_eq!(ending, exited(0));
        let outputs: Vec<Event> = sink
            .events()
            .into_iter()
            .filter(|e| matches!(e, Event::Output(..)))
            .collect();
        assert_eq!(
            outputs,
            vec![Event::Output(OutputStream::Stdout, "\u{e9}".to_owned())]
        );
    }

    #[tokio::test]
    async fn truncated_character_at_exit_becomes_a_replacement_character() {
        let (ending, sink) = run_to_end(sh("printf 'a\\303'")).await;
        assert_eq!(ending, exited(0));
        assert_eq!(sink.stdout(), "a\u{fffd}");
    }
}
