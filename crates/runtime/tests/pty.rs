//! The runtime with real programs on real pseudo-terminals: a shell's prompt and
//! arithmetic, the terminal size and resize, Ctrl-C by cancel and by input, a
//! full-screen curses program whose snapshot paints the same screen, 10 MiB in order,
//! exit codes and signals, stop of a program that ignores SIGHUP, the whole session
//! going with the worker, and idle timeouts.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use switchyard_protocol::{
    CreateWorkerRequest, DiagnosticSeverity, ErrorCode, ExitInfo, OutputStream, ResizeRequest,
    SystemNote, TerminalSnapshot, TranscriptEntry, WorkerEvent, WorkerId, WorkerStatus,
};
use switchyard_runtime::{
    Profile, ProfileSpec, PtySpec, Runtime, RuntimeConfig, RuntimeLimits, Subscription,
};

/// A shell prompt that no command's output contains by accident.
const PROMPT: &str = "sw$ ";

fn pty(command: &[&str]) -> PtySpec {
    PtySpec::new(command.iter().copied())
}

fn shell() -> PtySpec {
    let mut spec = pty(&["/bin/sh", "-i"]);
    spec.env.insert("PS1".into(), PROMPT.into());
    spec
}

fn profile(spec: PtySpec) -> Profile {
    Profile::new(ProfileSpec::Pty(spec))
}

/// `python3`, preferring the system's (a version manager's shim is slower to start).
fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

async fn runtime_with(profiles: Vec<(&str, Profile)>, limits: RuntimeLimits) -> Runtime {
    let mut config = config();
    config.limits = limits;
    for (name, profile) in profiles {
        config = config.with_profile(name, profile);
    }
    Runtime::in_memory(config).await
}

/// One pty worker and a subscription that collects its terminal output.
struct Term {
    rt: Runtime,
    id: WorkerId,
    sub: Subscription,
    /// Everything the terminal wrote since the subscription started.
    output: String,
    /// Where [`Term::expect`] looks from.
    mark: usize,
    /// Every event seen, in order.
    events: Vec<WorkerEvent>,
}

impl Term {
    async fn start(rt: &Runtime, profile: &str) -> Self {
        let detail = rt
            .create(CreateWorkerRequest {
                profile: profile.into(),
                label: None,
                owner: None,
            })
            .await
            .unwrap();
        // Started; a program quick enough may have ended by the time create answers.
        assert!(
            matches!(detail.status, WorkerStatus::Running | WorkerStatus::Exited),
            "{detail:?}"
        );
        let mut sub = rt.subscribe(&detail.worker_id, None).unwrap();
        let (_, first) = next_event(&mut sub).await;
        let mut term = Self {
            rt: rt.clone(),
            id: detail.worker_id,
            sub,
            output: String::new(),
            mark: 0,
            events: Vec::new(),
        };
        // Output recorded before the subscription is in the snapshot's transcript.
        if let WorkerEvent::Snapshot { transcript, .. } = &first {
            for item in transcript {
                if let TranscriptEntry::Output { text, .. } = &item.entry {
                    term.output.push_str(text);
                }
            }
        }
        term.events.push(first);
        term
    }

    /// The next event, collected.
    async fn next(&mut self) -> WorkerEvent {
        let (_, event) = next_event(&mut self.sub).await;
        if let WorkerEvent::Output { stream, text, .. } = &event {
            assert_eq!(*stream, OutputStream::Terminal);
            self.output.push_str(text);
        }
        self.events.push(event.clone());
        event
    }

    /// Waits until the output after the mark contains `needle`, and moves the mark
    /// past it.
    async fn expect(&mut self, needle: &str) {
        loop {
            if let Some(at) = self.output[self.mark..].find(needle) {
                self.mark += at + needle.len();
                return;
            }
            self.next().await;
        }
    }

    /// Waits for an event that matches.
    async fn expect_event(&mut self, matches: impl Fn(&WorkerEvent) -> bool) -> WorkerEvent {
        loop {
            let event = self.next().await;
            if matches(&event) {
                return event;
            }
        }
    }

    async fn send(&self, text: &str) {
        self.rt.input(&self.id, text.into()).await.unwrap();
    }

    /// Types a command line and waits for the next prompt after its output.
    async fn run(&mut self, line: &str) {
        self.send(&format!("{line}\r")).await;
        self.expect(&format!("{line}\r\n")).await;
        self.expect(PROMPT).await;
    }

    /// Waits until the worker has ended; its detail then.
    async fn ended(&mut self) -> switchyard_protocol::WorkerDetail {
        // A program quick enough ends before the subscription starts: its snapshot
        // says so, and no status event follows.
        let ended_before = self.events.iter().any(|e| {
            matches!(e, WorkerEvent::Snapshot { worker, .. } if worker.status.is_ended())
                || matches!(e, WorkerEvent::Status { status, .. } if status.is_ended())
        });
        if ended_before {
            return self.rt.get(&self.id).unwrap();
        }
        self.expect_event(|e| matches!(e, WorkerEvent::Status { status, .. } if status.is_ended()))
            .await;
        self.rt.get(&self.id).unwrap()
    }

    /// The terminal of a fresh snapshot, as a new viewer would get it.
    fn snapshot(&self) -> TerminalSnapshot {
        let mut sub = self.rt.subscribe(&self.id, None).unwrap();
        let Ok(switchyard_runtime::SubscriptionItem::Event { event, .. }) = futures_now(sub.next())
        else {
            panic!("a snapshot first");
        };
        match &*event {
            WorkerEvent::Snapshot { terminal, .. } => *terminal.clone().expect("a terminal"),
            other => panic!("expected a snapshot, got {other:?}"),
        }
    }
}

/// Polls a future that is ready at once (a subscription's first item is).
fn futures_now<F: std::future::Future>(future: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("not ready"),
    }
}

/// Paints a snapshot on an empty emulator of its size, as a new viewer does.
fn paint(snapshot: &TerminalSnapshot) -> vt100::Parser {
    let mut parser = vt100::Parser::new(
        snapshot.rows.try_into().unwrap(),
        snapshot.cols.try_into().unwrap(),
        0,
    );
    parser.process(snapshot.screen.as_bytes());
    parser
}

/// The rows of a painted screen, right-trimmed.
fn rows(parser: &vt100::Parser) -> Vec<String> {
    let (_, cols) = parser.screen().size();
    parser
        .screen()
        .rows(0, cols.get())
        .map(|r| r.trim_end().to_owned())
        .collect()
}

#[tokio::test]
async fn a_shell_shows_its_prompt_and_does_arithmetic() {
    let rt = runtime_with(vec![("sh", profile(shell()))], RuntimeLimits::default()).await;
    let mut term = Term::start(&rt, "sh").await;
    term.expect(PROMPT).await;
    term.send("echo $((6*7))\r").await;
    // The terminal echoes the keystrokes, then the shell answers.
    term.expect("echo $((6*7))\r\n42\r\n").await;
    term.expect(PROMPT).await;
    let detail = rt.get(&term.id).unwrap();
    assert_eq!(detail.input_count, 1);
    let page = rt.transcript(&term.id, 0, None).await.unwrap();
    assert!(page.items.iter().any(|i| matches!(&i.entry,
        TranscriptEntry::Output { stream: OutputStream::Terminal, text } if text.contains("42"))));
    // The screen shows it too.
    let screen = rows(&paint(&term.snapshot()));
    assert_eq!(&screen[..3], &["sw$ echo $((6*7))", "42", "sw$"][..]);
    rt.stop(&term.id).await.unwrap();
}

#[tokio::test]
async fn stty_reports_the_profile_size_and_the_size_after_a_resize() {
    let mut spec = shell();
    (spec.cols, spec.rows) = (100, 30);
    let rt = runtime_with(vec![("sh", profile(spec))], RuntimeLimits::default()).await;
    let mut term = Term::start(&rt, "sh").await;
    term.expect(PROMPT).await;
    term.run("stty size").await;
    assert!(term.output.contains("\r\n30 100\r\n"), "{:?}", term.output);
    assert_eq!((term.snapshot().cols, term.snapshot().rows), (100, 30));

    let answer = rt
        .resize(
            &term.id,
            ResizeRequest {
                cols: 120,
                rows: 40,
            },
        )
        .await
        .unwrap();
    assert_eq!((answer.cols, answer.rows), (120, 40));
    term.expect_event(|e| {
        matches!(
            e,
            WorkerEvent::Resized {
                cols: 120,
                rows: 40
            }
        )
    })
    .await;
    term.run("stty size").await;
    assert!(term.output.contains("\r\n40 120\r\n"), "{:?}", term.output);
    let snapshot = term.snapshot();
    assert_eq!((snapshot.cols, snapshot.rows), (120, 40));

    // Sizes out of range are refused before anything changes.
    for (cols, rows) in [(0, 10), (10, 1001)] {
        let err = rt
            .resize(&term.id, ResizeRequest { cols, rows })
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest, "{cols}x{rows}");
    }
    rt.stop(&term.id).await.unwrap();
    // An ended terminal is not running.
    let err = rt
        .resize(&term.id, ResizeRequest { cols: 80, rows: 24 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::WorkerNotRunning);
}

#[tokio::test]
async fn resize_of_a_worker_that_is_not_a_terminal_is_refused() {
    let rt = runtime_with(vec![], RuntimeLimits::default()).await;
    let echo = rt
        .create(CreateWorkerRequest {
            profile: "echo".into(),
            label: None,
            owner: None,
        })
        .await
        .unwrap();
    let err = rt
        .resize(&echo.worker_id, ResizeRequest { cols: 80, rows: 24 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotATerminal);
    let err = rt
        .resize(
            &WorkerId::new("no-such").unwrap(),
            ResizeRequest { cols: 80, rows: 24 },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::WorkerNotFound);
}

#[tokio::test]
async fn ctrl_c_by_cancel_and_by_input_interrupts_sleep_and_the_shell_survives() {
    let rt = runtime_with(vec![("sh", profile(shell()))], RuntimeLimits::default()).await;
    let mut term = Term::start(&rt, "sh").await;
    term.expect(PROMPT).await;
    for (round, interrupt) in ["cancel", "input"].into_iter().enumerate() {
        // The job says so itself: it is the terminal's foreground job by then.
        term.send("sh -c 'echo sleeping; exec sleep 100'\r").await;
        term.expect("sleeping\r\n").await;
        let asked = Instant::now();
        match interrupt {
            "cancel" => {
                rt.cancel(&term.id).unwrap();
                term.expect_event(|e| matches!(e, WorkerEvent::Interrupted))
                    .await;
            }
            _ => term.send("\u{3}").await,
        }
        term.expect(PROMPT).await;
        assert!(
            asked.elapsed() < Duration::from_secs(50),
            "sleep was not interrupted"
        );
        term.run(&format!("echo alive-$(({round}+40))")).await;
        assert!(
            term.output
                .contains(&format!("\r\nalive-{}\r\n", round + 40))
        );
    }
    assert_eq!(rt.get(&term.id).unwrap().status, WorkerStatus::Running);
    rt.stop(&term.id).await.unwrap();
}

/// Draws a known pattern on the alternate screen, then waits for a key.
const CURSES_SCRIPT: &str = r##"
import curses
def main(s):
    s.clear()
    s.addstr(0, 0, "PATTERN-TOP")
    for i in range(5):
        s.addstr(2 + i, 4, "row%d:%s" % (i, "#" * (i + 1)))
    s.move(8, 3)
    s.refresh()
    s.getch()
curses.wrapper(main)
"##;

#[tokio::test]
async fn a_full_screen_program_leaves_a_snapshot_that_paints_its_screen() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pattern.py");
    std::fs::write(&script, CURSES_SCRIPT).unwrap();
    let mut spec = shell();
    (spec.cols, spec.rows) = (60, 12);
    let rt = runtime_with(vec![("sh", profile(spec))], RuntimeLimits::default()).await;
    let mut term = Term::start(&rt, "sh").await;
    term.expect(PROMPT).await;
    term.run("echo before-the-program").await;
    let launch = format!("{} {}", python(), script.display());
    term.send(&format!("{launch}\r")).await;
    term.expect("PATTERN-TOP").await;

    let expected: Vec<String> = {
        let mut rows = vec![String::new(); 12];
        rows[0] = "PATTERN-TOP".into();
        for i in 0..5 {
            rows[2 + i] = format!("    row{i}:{}", "#".repeat(i + 1));
        }
        rows
    };
    // The drawing may still be on its way: wait until a new viewer would see all of it.
    let deadline = Instant::now() + WAIT;
    let (snapshot, viewer) = loop {
        let snapshot = term.snapshot();
        let viewer = paint(&snapshot);
        if rows(&viewer) == expected {
            break (snapshot, viewer);
        }
        assert!(Instant::now() < deadline, "screen: {:#?}", rows(&viewer));
        term.next().await;
    };
    assert!(snapshot.alternate);
    assert!(viewer.screen().alternate_screen());
    assert_eq!((snapshot.cursor.row, snapshot.cursor.col), (8, 3));
    assert_eq!(viewer.screen().cursor_position(), (8, 3));

    // This viewer follows the live events from its snapshot on: subscribe now.
    let mut follower = rt.subscribe(&term.id, None).unwrap();
    let (_, first) = next_event(&mut follower).await;
    let WorkerEvent::Snapshot {
        terminal: Some(joined),
        ..
    } = first
    else {
        panic!("a terminal snapshot first");
    };
    let mut follower_screen = paint(&joined);

    term.send("q").await;
    term.expect(PROMPT).await;
    // Back on the normal screen, as it was before the program.
    let after = term.snapshot();
    assert!(!after.alternate);
    let normal = rows(&paint(&after));
    assert!(
        normal.iter().any(|r| r == "before-the-program"),
        "{normal:#?}"
    );
    assert!(normal.iter().any(|r| r.ends_with(&launch)), "{normal:#?}");
    assert!(!normal.iter().any(|r| r.contains("PATTERN")), "{normal:#?}");
    assert_eq!(normal.last().map(String::as_str), Some(""));

    // The viewer that joined during the program paints the same screen as the runtime
    // after following the events that came since.
    loop {
        match tokio::time::timeout(Duration::from_millis(300), follower.next()).await {
            Ok(Ok(switchyard_runtime::SubscriptionItem::Event { event, .. })) => {
                if let WorkerEvent::Output { text, .. } = &*event {
                    follower_screen.process(text.as_bytes());
                }
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => break,
        }
    }
    assert_eq!(rows(&follower_screen), normal);
    assert_eq!(
        follower_screen.screen().cursor_position(),
        (after.cursor.row, after.cursor.col)
    );
    rt.stop(&term.id).await.unwrap();
}

#[tokio::test]
async fn ten_mebibytes_written_to_the_terminal_arrive_complete_and_in_order() {
    const LINES: usize = 1_165_085; // 9 bytes each: just over 10 MiB
    let program = format!(
        "import sys\nw = sys.stdout.buffer\nfor i in range({LINES}):\n    w.write(b'%08d\\n' % i)\nw.flush()\n"
    );
    // Raw output: no newline translation, so the bytes are exactly the program's.
    let spec = pty(&[
        "/bin/sh",
        "-c",
        &format!("stty -opost -echo && exec {} -c \"$0\"", python()),
        &program,
    ]);
    let rt = runtime_with(vec![("flood", profile(spec))], RuntimeLimits::default()).await;
    let detail = rt
        .create(CreateWorkerRequest {
            profile: "flood".into(),
            label: None,
            owner: None,
        })
        .await
        .unwrap();
    let id = detail.worker_id;
    let mut sub = rt.subscribe(&id, None).unwrap();
    wait_for(
        &mut sub,
        |e| matches!(e, WorkerEvent::Status { status, .. } if status.is_ended()),
    )
    .await;
    let detail = rt.get(&id).unwrap();
    assert_eq!(
        detail.exit,
        Some(ExitInfo {
            code: Some(0),
            signal: None
        })
    );
    let mut text = String::with_capacity(LINES * 9);
    let mut after = 0;
    loop {
        let page = rt.transcript(&id, after, Some(1000)).await.unwrap();
        for item in &page.items {
            if let TranscriptEntry::Output {
                stream,
                text: chunk,
            } = &item.entry
            {
                assert_eq!(*stream, OutputStream::Terminal);
                text.push_str(chunk);
            }
        }
        match page.next_after {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(text.len(), LINES * 9, "every byte arrived");
    for (i, line) in text.lines().enumerate() {
        assert_eq!(line, format!("{i:08}"), "line {i} in order");
    }
    assert_eq!(detail.output_bytes, (LINES * 9) as u64);
}

#[tokio::test]
async fn exit_codes_and_signals_are_recorded() {
    let rt = runtime_with(
        vec![
            ("exit3", profile(pty(&["/bin/sh", "-c", "exit 3"]))),
            ("killed", profile(pty(&["/bin/sh", "-c", "kill -TERM $$"]))),
        ],
        RuntimeLimits::default(),
    )
    .await;
    for (name, exit) in [
        (
            "exit3",
            ExitInfo {
                code: Some(3),
                signal: None,
            },
        ),
        (
            "killed",
            ExitInfo {
                code: None,
                signal: Some(15),
            },
        ),
    ] {
        let mut term = Term::start(&rt, name).await;
        let detail = if rt.get(&term.id).unwrap().status.is_ended() {
            rt.get(&term.id).unwrap()
        } else {
            term.ended().await
        };
        assert_eq!(detail.status, WorkerStatus::Exited, "{name}");
        assert_eq!(detail.exit, Some(exit), "{name}");
    }
}

#[tokio::test]
async fn stop_ends_a_program_that_ignores_sighup_and_one_that_ignores_sigterm_too() {
    let mut limits = RuntimeLimits::default();
    limits.stop_grace = Duration::from_millis(1500);
    let rt = runtime_with(
        vec![
            (
                "nohup",
                profile(pty(&[
                    "/bin/sh",
                    "-c",
                    "trap '' HUP; echo ready; exec sleep 1000",
                ])),
            ),
            (
                "stubborn",
                profile(pty(&[
                    "/bin/sh",
                    "-c",
                    "trap '' HUP TERM; echo ready; exec sleep 1000",
                ])),
            ),
            ("sh", profile(shell())),
        ],
        limits,
    )
    .await;
    for (name, signal) in [("nohup", 15), ("stubborn", 9), ("sh", 1)] {
        let mut term = Term::start(&rt, name).await;
        term.expect(if name == "sh" { PROMPT } else { "ready" })
            .await;
        let asked = Instant::now();
        rt.stop(&term.id).await.unwrap();
        let detail = term.ended().await;
        assert_eq!(detail.status, WorkerStatus::Stopped, "{name}");
        assert_eq!(
            detail.exit,
            Some(ExitInfo {
                code: None,
                signal: Some(signal)
            }),
            "{name}"
        );
        if signal == 9 {
            assert!(asked.elapsed() >= Duration::from_millis(1500), "{name}");
        }
    }
}

/// Pids of live (not zombie) processes in session `sid`.
fn session_members(sid: i32) -> Vec<i32> {
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
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.len() > 3 && fields[3] == sid.to_string() && fields[0] != "Z" {
            live.push(pid);
        }
    }
    live
}

#[tokio::test]
async fn the_whole_session_ends_with_the_worker() {
    let rt = runtime_with(vec![("sh", profile(shell()))], RuntimeLimits::default()).await;
    let mut term = Term::start(&rt, "sh").await;
    term.expect(PROMPT).await;
    // A background job in a process group of its own that ignores hang-ups.
    // (Quoted apart so that the terminal's echo of the line does not match.)
    term.send("trap '' HUP; sleep 1000 & echo \"s\"\"id=$$ j\"\"ob=$!\"\r")
        .await;
    term.expect("sid=").await;
    term.expect("\r\n").await;
    let line = term
        .output
        .lines()
        .rev()
        .find(|l| l.starts_with("sid="))
        .unwrap();
    let sid: i32 = line[4..line.find(' ').unwrap()].parse().unwrap();
    assert!(session_members(sid).len() >= 2, "shell and job alive");
    term.send("exit\r").await;
    let detail = term.ended().await;
    assert_eq!(detail.status, WorkerStatus::Exited);
    let deadline = Instant::now() + WAIT;
    while !session_members(sid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{:?} survived",
            session_members(sid)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_environment_is_minimal_with_a_terminal_type() {
    let mut plain = pty(&["env"]);
    plain.env.insert("FOO".into(), "bar".into());
    let mut own_term = pty(&["/bin/sh", "-c", "echo TERM=$TERM"]);
    own_term.env.insert("TERM".into(), "vt100".into());
    let rt = runtime_with(
        vec![("env", profile(plain)), ("own", profile(own_term))],
        RuntimeLimits::default(),
    )
    .await;
    let mut term = Term::start(&rt, "env").await;
    term.ended().await;
    let vars: BTreeMap<&str, &str> = term
        .output
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter_map(|l| l.split_once('='))
        .collect();
    assert_eq!(
        vars.keys().copied().collect::<Vec<_>>(),
        ["FOO", "HOME", "LANG", "PATH", "TERM"],
        "{:?}",
        term.output
    );
    assert_eq!(vars["TERM"], "xterm-256color");
    assert_eq!(vars["FOO"], "bar");
    let mut term = Term::start(&rt, "own").await;
    term.expect("TERM=vt100").await;
}

#[tokio::test]
async fn a_missing_program_fails_naming_no_path() {
    let rt = runtime_with(
        vec![("missing", profile(pty(&["/no/such/program"])))],
        RuntimeLimits::default(),
    )
    .await;
    let w = rt
        .create(CreateWorkerRequest {
            profile: "missing".into(),
            label: None,
            owner: None,
        })
        .await
        .unwrap();
    assert_eq!(w.status, WorkerStatus::Failed);
    let page = rt.transcript(&w.worker_id, 0, None).await.unwrap();
    assert!(page.items.iter().any(|i| matches!(&i.entry,
        TranscriptEntry::System { note: SystemNote::Failed, text }
            if text.contains("the profile's program") && !text.contains("/no/such"))));
}

// ---------------------------------------------------------------------------------
// Idle workers
// ---------------------------------------------------------------------------------

/// Long enough that a busy machine's stall of a few hundred ms never looks idle.
const IDLE: Duration = Duration::from_millis(1000);

async fn idle_runtime() -> Runtime {
    runtime_with(
        vec![
            ("idle-echo", Profile::echo().with_idle_timeout(IDLE)),
            ("idle-sh", profile(shell()).with_idle_timeout(IDLE)),
        ],
        RuntimeLimits::default(),
    )
    .await
}

async fn create(rt: &Runtime, profile: &str) -> WorkerId {
    rt.create(CreateWorkerRequest {
        profile: profile.into(),
        label: None,
        owner: None,
    })
    .await
    .unwrap()
    .worker_id
}

/// Waits (generously) until the worker has ended.
async fn wait_stopped(rt: &Runtime, id: &WorkerId) -> Instant {
    let deadline = Instant::now() + WAIT;
    loop {
        if rt.get(id).unwrap().status.is_ended() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "not stopped in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_idle_worker_is_stopped_with_a_diagnostic_first() {
    let rt = idle_runtime().await;
    for profile in ["idle-echo", "idle-sh"] {
        let started = Instant::now();
        let id = create(&rt, profile).await;
        let stopped = wait_stopped(&rt, &id).await;
        assert!(stopped - started >= IDLE, "{profile} stopped too early");
        let detail = rt.get(&id).unwrap();
        assert_eq!(detail.status, WorkerStatus::Stopped, "{profile}");
        // A viewer that comes back later finds why in the transcript...
        let page = rt.transcript(&id, 0, None).await.unwrap();
        assert!(
            page.items.iter().any(|i| matches!(&i.entry,
                TranscriptEntry::System { note: SystemNote::Stopped, text } if text.contains("without input or viewer"))),
            "{page:?}"
        );
        // ...and a resuming one gets the diagnostic before the status change.
        let cursor = switchyard_protocol::RuntimeCursor {
            epoch: rt.epoch().to_owned(),
            worker_id: id.clone(),
            position: 1,
        }
        .encode();
        let mut sub = rt.subscribe(&id, Some(&cursor)).unwrap();
        let diagnostic = wait_for(&mut sub, |e| matches!(e, WorkerEvent::Diagnostic { .. })).await;
        assert!(
            matches!(&diagnostic, WorkerEvent::Diagnostic { severity: DiagnosticSeverity::Info, code, .. } if code == "idle_timeout"),
            "{diagnostic:?}"
        );
        wait_for(&mut sub, |e| {
            matches!(
                e,
                WorkerEvent::Status {
                    status: WorkerStatus::Stopped,
                    ..
                }
            )
        })
        .await;
    }
}

#[tokio::test]
async fn an_idle_worker_is_not_stopped_while_a_viewer_watches_or_input_comes() {
    let rt = idle_runtime().await;
    let id = create(&rt, "idle-echo").await;
    let viewer = rt.subscribe(&id, None).unwrap();
    tokio::time::sleep(IDLE * 4).await;
    assert_eq!(rt.get(&id).unwrap().status, WorkerStatus::Running);
    let left = Instant::now();
    drop(viewer);
    let stopped = wait_stopped(&rt, &id).await;
    assert!(
        stopped - left >= IDLE,
        "the clock starts when the viewer leaves"
    );

    // Input keeps a worker without viewers alive.
    let id = create(&rt, "idle-echo").await;
    let typing = Instant::now();
    let mut last = typing;
    while typing.elapsed() < IDLE * 4 {
        last = Instant::now();
        rt.input(&id, "x".into()).await.unwrap();
        tokio::time::sleep(IDLE / 4).await;
    }
    assert_eq!(rt.get(&id).unwrap().status, WorkerStatus::Running);
    let stopped = wait_stopped(&rt, &id).await;
    assert!(stopped - last >= IDLE, "the clock starts at the last input");
}

/// A viewer that comes and goes between two looks of the idle watch counts too:
/// the clock starts when it left.
#[tokio::test]
async fn a_brief_viewer_restarts_the_idle_clock() {
    let rt = idle_runtime().await;
    let created = tokio::time::Instant::now();
    let id = create(&rt, "idle-echo").await;
    // Halfway between two looks (a quarter of the timeout apart).
    tokio::time::sleep_until(created + IDLE * 3 / 4 + IDLE / 8).await;
    let viewer = rt.subscribe(&id, None).unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    drop(viewer);
    let left = Instant::now();
    let stopped = wait_stopped(&rt, &id).await;
    assert!(
        stopped - left >= IDLE,
        "stopped {:?} after a brief viewer left",
        stopped - left
    );
}

#[tokio::test]
async fn profiles_without_an_idle_timeout_keep_running() {
    let rt = runtime_with(vec![], RuntimeLimits::default()).await;
    let id = create(&rt, "echo").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rt.get(&id).unwrap().status, WorkerStatus::Running);
}

/// A pty worker restored from the store (after the runtime restarted) has its final
/// screen rebuilt from the transcript: its snapshot carries `terminal` again, painted
/// as the worker left it; a worker that is not a terminal still has none.
#[tokio::test]
async fn a_restored_pty_worker_has_its_final_screen_again() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = || {
        let mut spec = pty(&[
            "/bin/sh",
            "-c",
            "printf 'first line\\r\\nsecond'; printf '\\033[1;7Hxx'",
        ]);
        (spec.cols, spec.rows) = (40, 5);
        config().with_profile("paint", profile(spec))
    };
    let first = open_on_disk(dir.path(), config()).await;
    let mut term = Term::start(&first, "paint").await;
    term.ended().await;
    let before = screen_of(&first, &term.id)
        .await
        .expect("a live worker's screen");
    let echo = first
        .create(CreateWorkerRequest {
            profile: "echo".into(),
            label: None,
            owner: None,
        })
        .await
        .unwrap();
    let (second, after) = reopened(first, dir.path(), config(), &term.id, &before).await;
    assert!(after.screen.contains("first xxne"), "{after:?}");
    assert!(after.screen.contains("second"), "{after:?}");
    assert_eq!((after.cols, after.rows), (40, 5));
    assert_eq!(screen_of(&second, &echo.worker_id).await, None);
}

/// A restored pty worker's screen follows the resizes it had, in their place among
/// its output: the transcript records each one (a `resized` system note), and the
/// rebuilt screen is the one the worker left, at its last size, not its profile's.
#[tokio::test]
async fn a_restored_pty_worker_screen_follows_its_resizes() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = || {
        let mut spec = pty(&[
            "/bin/sh",
            "-c",
            "printf 'a line long enough to wrap at twenty columns'; read x; \
             printf 'then at twenty: the prompt moved'; read y; printf '\\r\\nend'",
        ]);
        (spec.cols, spec.rows) = (40, 5);
        config().with_profile("wrap", profile(spec))
    };
    let first = open_on_disk(dir.path(), config()).await;
    let mut term = Term::start(&first, "wrap").await;
    term.expect("columns").await;
    for (cols, rows, line) in [(20, 8, "\r"), (60, 6, "\r")] {
        first
            .resize(&term.id, ResizeRequest { cols, rows })
            .await
            .unwrap();
        term.send(line).await;
        if cols == 20 {
            term.expect("moved").await;
        }
    }
    term.ended().await;
    let before = screen_of(&first, &term.id).await.expect("a screen");
    assert_eq!((before.cols, before.rows), (60, 6));
    let page = first.transcript(&term.id, 0, Some(100)).await.unwrap();
    let resizes: Vec<&str> = page
        .items
        .iter()
        .filter_map(|item| match &item.entry {
            TranscriptEntry::System {
                note: SystemNote::Resized,
                text,
            } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(resizes, ["resized to 20x8", "resized to 60x6"]);
    reopened(first, dir.path(), config(), &term.id, &before).await;
}

/// A pty worker still running when its runtime crashes is restored `lost` with
/// its counters corrected and its final screen rebuilt, from one read of its
/// transcript: the pass that recounts it also feeds the screen.
#[tokio::test]
async fn a_lost_pty_worker_gets_its_counts_and_screen_from_one_read() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = || {
        let spec = pty(&[
            "/bin/sh",
            "-c",
            "printf 'before the crash'; read x; printf ' after one input'; read y",
        ]);
        config().with_profile("wait", profile(spec))
    };
    let first = open_on_disk(dir.path(), config()).await;
    let mut term = Term::start(&first, "wait").await;
    term.expect("before the crash").await;
    term.send("one\r").await;
    term.expect("after one input").await;
    let before = screen_of(&first, &term.id).await.expect("a screen");
    // The first runtime "crashes": nothing is shut down, a second one opens the
    // same directory and finds the worker running.
    let crashed = crashed_copy(dir.path());
    let store = CountingStore::new(
        switchyard_runtime::FsStore::open(crashed.path())
            .await
            .unwrap(),
    );
    let pages = store.pages.clone();
    let second = Runtime::open(config(), std::sync::Arc::new(store))
        .await
        .unwrap();
    assert_eq!(
        pages.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one page read for the worker, for its counts and its screen together"
    );
    let detail = second.get(&term.id).unwrap();
    assert_eq!(detail.status, WorkerStatus::Lost);
    assert_eq!(detail.input_count, 1);
    assert_eq!(
        detail.output_bytes,
        transcript_output_bytes(&first, &term.id).await
    );
    let after = screen_of(&second, &term.id)
        .await
        .expect("a rebuilt screen");
    assert_eq!(
        after, before,
        "the rebuilt screen is the one the worker left"
    );
    first.shutdown().await.unwrap();
}

/// The output bytes in `id`'s transcript on `rt`.
async fn transcript_output_bytes(rt: &Runtime, id: &WorkerId) -> u64 {
    let page = rt.transcript(id, 0, Some(1000)).await.unwrap();
    page.items
        .iter()
        .map(|item| match &item.entry {
            TranscriptEntry::Output { text, .. } => text.len() as u64,
            _ => 0,
        })
        .sum()
}

/// A store that counts the transcript pages read from it.
struct CountingStore<S> {
    inner: S,
    pages: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl<S> CountingStore<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            pages: Default::default(),
        }
    }
}

#[async_trait::async_trait]
impl<S: switchyard_runtime::Store> switchyard_runtime::Store for CountingStore<S> {
    async fn load(
        &self,
        tail: usize,
    ) -> Result<Vec<switchyard_runtime::LoadedWorker>, switchyard_runtime::StoreError> {
        self.inner.load(tail).await
    }

    async fn save_worker(
        &self,
        detail: &switchyard_protocol::WorkerDetail,
    ) -> Result<(), switchyard_runtime::StoreError> {
        self.inner.save_worker(detail).await
    }

    async fn append(
        &self,
        worker: &WorkerId,
        items: &[switchyard_protocol::TranscriptItem],
    ) -> Result<(), switchyard_runtime::StoreError> {
        self.inner.append(worker, items).await
    }

    async fn read_page(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<switchyard_protocol::TranscriptItem>, switchyard_runtime::StoreError> {
        self.pages.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.read_page(worker, after, limit).await
    }

    async fn remove_worker(&self, worker: &WorkerId) -> Result<(), switchyard_runtime::StoreError> {
        self.inner.remove_worker(worker).await
    }

    async fn flush(&self) -> Result<(), switchyard_runtime::StoreError> {
        self.inner.flush().await
    }

    async fn close(&self) -> Result<(), switchyard_runtime::StoreError> {
        self.inner.close().await
    }
}

/// A runtime over a file store in `dir`.
async fn open_on_disk(dir: &std::path::Path, config: RuntimeConfig) -> Runtime {
    let store = switchyard_runtime::FsStore::open(dir).await.unwrap();
    Runtime::open(config, std::sync::Arc::new(store))
        .await
        .unwrap()
}

/// Shuts `first` down and opens a runtime on the same store, as after a restart;
/// checks that worker `id`'s rebuilt screen is `before`, the one it left. Returns
/// the new runtime and the screen.
async fn reopened(
    first: Runtime,
    dir: &std::path::Path,
    config: RuntimeConfig,
    id: &WorkerId,
    before: &TerminalSnapshot,
) -> (Runtime, TerminalSnapshot) {
    first.shutdown().await.unwrap();
    drop(first);
    let second = open_on_disk(dir, config).await;
    let deadline = Instant::now() + WAIT;
    let after = loop {
        if let Some(screen) = screen_of(&second, id).await {
            break screen;
        }
        assert!(Instant::now() < deadline, "the restored screen never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        &after, before,
        "the rebuilt screen is the one the worker left"
    );
    (second, after)
}

/// The `terminal` of a new subscription's snapshot.
async fn screen_of(rt: &Runtime, id: &WorkerId) -> Option<TerminalSnapshot> {
    let mut sub = rt.subscribe(id, None).unwrap();
    match next_event(&mut sub).await.1 {
        WorkerEvent::Snapshot { terminal, .. } => terminal.map(|t| *t),
        other => panic!("expected a snapshot, got {other:?}"),
    }
}
