//! `switchyard attach` on a real terminal: a tmux pane runs it, `send-keys` types,
//! `capture-pane` reads the screen, `resize-window` changes the window size, and
//! `stty -g` before and after shows the terminal restored exactly.
//!
//! - Line mode against a real backend and `process` workers.
//! - Terminal mode against the fake backend (which drops connections on cue): the
//!   snapshot's screen painted, raw mode (keystrokes, Ctrl-C included, sent as
//!   typed), the window size on start, after a resize and after a reconnection, a
//!   dropped connection announced and resumed from the last cursor without repeated
//!   output, the worker's exit code.
//! - Terminal mode against a real backend and a real `pty` worker: the window size
//!   reaches the program (`stty size`) at start and after a resize, typing runs
//!   commands, detach leaves it running, a second attach repaints it, and its exit
//!   code is attach's; after another client resizes the worker, the next keystroke
//!   takes it back to attach's window size.
//!
//! Without tmux the tests say so on standard error and pass, unless
//! `SWITCHYARD_REQUIRE_TMUX` is set (CI sets it).

use std::time::Duration;

use switchyard_e2e::WAIT;
use switchyard_e2e::fake_backend::FakeBackend;
use switchyard_e2e::proc::{Switchyard, switchyard_bin};
use switchyard_e2e::tmux::Tmux;
use tokio::time::Instant;

const TOKEN: &str = "attach-test-t0ken-93b1";

/// A backend whose embedded runtime `local` has `profiles` (TOML tables).
async fn backend(dir: &tempfile::TempDir, profiles: &str) -> Switchyard {
    let config =
        format!("[embedded]\nruntime_id = \"local\"\ndisplay_name = \"Local\"\n{profiles}");
    let path = dir.path().join("backend.toml");
    std::fs::write(&path, config).unwrap();
    Switchyard::start(
        &[
            "serve",
            "--config",
            &path.display().to_string(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    )
    .await
}

/// Starts a worker through the CLI; its `RUNTIME/WORKER`.
async fn run(backend: &Switchyard, profile: &str) -> String {
    let url = format!("http://{}", backend.addr);
    let output = Switchyard::output(&["run", "local", profile], &[("SWITCHYARD_URL", &url)]).await;
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .trim_end()
        .to_owned()
}

/// A tmux pane in `dir` whose terminal settings were saved to `before`.
async fn terminal(test: &str, dir: &tempfile::TempDir, envs: &[(&str, &str)]) -> Option<Tmux> {
    let tmux = Tmux::start(test, 100, 30, envs)?;
    // Markers are computed by the shell, so that the typed command never matches.
    tmux.type_line(&format!(
        "cd {} && stty -g > before && echo ready-$((40 + 2))",
        dir.path().display()
    ));
    tmux.wait_for_text("ready-42").await;
    Some(tmux)
}

/// Runs `switchyard attach` in the pane, echoing its exit status afterwards.
fn attach(tmux: &Tmux, args: &str) {
    tmux.type_line(&format!(
        "{} attach {args}; echo attach-exit=$?",
        switchyard_bin().display()
    ));
}

/// After attach has exited: the terminal's settings are what they were before.
async fn assert_terminal_restored(tmux: &Tmux) {
    tmux.type_line("stty -g > after; cmp -s before after && echo restored-$((40 + 2))");
    tmux.wait_for_text("restored-42").await;
}

/// Polls `ready` on the fake until it holds.
async fn until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn line_mode_sends_lines_cancels_and_detaches_restoring_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(
        &dir,
        r#"
[embedded.profiles.shell]
kind = "process"
# Ends at end of input; survives SIGINT (dash's `read` returns 1 when a trapped
# signal interrupts it, as at end of input: the trap's flag tells them apart).
command = ["/bin/sh", "-c", "trap 'echo interrupted; i=1' INT; while :; do i=; if read l; then echo \"got $l\"; elif [ -z \"$i\" ]; then exit 0; fi; done"]
"#,
    )
    .await;
    let worker = run(&backend, "shell").await;
    let url = format!("http://{}", backend.addr);
    let Some(tmux) = terminal("line mode", &dir, &[("SWITCHYARD_URL", &url)]).await else {
        return;
    };
    attach(&tmux, &worker);
    tmux.wait_for_text("switchyard: attached to").await;

    tmux.type_line("hello world");
    tmux.wait_for_text("got hello world").await;
    // Ctrl-C cancels the worker's current work; attach stays.
    tmux.keys(&["C-c"]);
    tmux.wait_for_text("[system] interrupted").await;
    tmux.type_line("still here");
    tmux.wait_for_text("got still here").await;

    // A half-typed line and Ctrl-]: detached, the line not sent.
    tmux.type_text("half a line");
    tmux.keys(&["C-]"]);
    let screen = tmux.wait_for_text("attach-exit=0").await;
    assert!(screen.contains("detached from"), "{screen}");
    assert_terminal_restored(&tmux).await;

    let logs = Switchyard::output(&["logs", &worker], &[("SWITCHYARD_URL", &url)]).await;
    let logs = String::from_utf8(logs.stdout).unwrap();
    assert!(
        logs.contains("[input] hello world\ngot hello world\n"),
        "{logs}"
    );
    assert!(!logs.contains("half a line"), "{logs}");
    // The worker keeps running after a detach.
    assert!(!logs.contains("[system] exited"), "{logs}");
}

#[tokio::test]
async fn line_mode_exits_with_the_workers_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(
        &dir,
        r#"
[embedded.profiles.three]
kind = "process"
command = ["/bin/sh", "-c", "read l; echo \"bye $l\"; exit 3"]
"#,
    )
    .await;
    let worker = run(&backend, "three").await;
    let url = format!("http://{}", backend.addr);
    let Some(tmux) = terminal("line mode exit", &dir, &[("SWITCHYARD_URL", &url)]).await else {
        return;
    };
    attach(&tmux, &worker);
    tmux.wait_for_text("switchyard: attached to").await;
    tmux.type_line("now");
    let screen = tmux.wait_for_text("attach-exit=3").await;
    assert!(screen.contains("bye now"), "{screen}");
    assert!(screen.contains("[system] exited with code 3"), "{screen}");
    assert_terminal_restored(&tmux).await;
}

/// The screen the fake backend's terminal worker shows first.
const WELCOME: &str = "\x1b[1;1Hwelcome to the fake terminal\r\n$ ";

#[tokio::test]
async fn terminal_mode_speaks_the_interactive_contract() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeBackend::start(WELCOME, Some(TOKEN)).await;
    let Some(tmux) = terminal("terminal mode", &dir, &[("SWITCHYARD_TOKEN", TOKEN)]).await else {
        return;
    };
    attach(&tmux, &format!("rt/w1 --backend {}", fake.url()));
    tmux.wait_for_text("welcome to the fake terminal").await;
    until("the window size", || {
        fake.resizes().first() == Some(&(100, 30))
    })
    .await;
    let requests = fake.event_requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        requests[0].query, None,
        "first: a plain stream from a snapshot"
    );
    assert_eq!(requests[1].param("interactive").as_deref(), Some("true"));
    assert_eq!(
        requests[1].param("cursor").as_deref(),
        Some("c0"),
        "resumed after the snapshot"
    );
    for request in &requests {
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }

    // Raw mode: keystrokes go out as typed, without Enter; Ctrl-C is a keystroke.
    tmux.type_text("abc");
    until("abc typed", || fake.typed() == "abc").await;
    tmux.wait_for_text("[size 100x30]abc").await;
    tmux.keys(&["C-c"]);
    tmux.keys(&["Enter"]);
    until("Ctrl-C and Enter typed", || fake.typed() == "abc\u{3}\r").await;

    // The window size follows the terminal.
    tmux.resize(80, 20);
    until("the new size", || fake.resizes().last() == Some(&(80, 20))).await;
    tmux.wait_for_text("[size 80x20]").await;

    // A dropped connection: one status line, then resumed from the last cursor, and
    // what happened meanwhile shown once.
    fake.set_refusing(true);
    let resizes_before = fake.resizes().len();
    let cursor = fake.last_cursor();
    assert!(fake.cut_all() >= 1);
    tmux.wait_for_text("[switchyard: lost the connection to the backend")
        .await;
    fake.output("while-away\r\n");
    fake.set_refusing(false);
    until("a resumed stream", || {
        fake.event_requests().last().and_then(|r| r.param("cursor")) == Some(cursor.clone())
    })
    .await;
    let screen = tmux.wait_for_text("while-away").await;
    assert_eq!(screen.matches("while-away").count(), 1, "{screen}");
    assert_eq!(
        screen.matches("welcome to the fake terminal").count(),
        1,
        "{screen}"
    );
    until("the size sent again", || {
        fake.resizes().len() > resizes_before
    })
    .await;
    assert_eq!(fake.resizes().last(), Some(&(80, 20)));
    tmux.type_text("z");
    until("typing resumed", || fake.typed().ends_with('z')).await;

    tmux.keys(&["C-]"]);
    let screen = tmux.wait_for_text("attach-exit=0").await;
    assert!(screen.contains("detached from rt/w1"), "{screen}");
    assert!(!fake.typed().contains('\u{1d}'), "Ctrl-] is not sent");
    assert_terminal_restored(&tmux).await;
}

#[tokio::test]
async fn terminal_mode_exits_with_the_workers_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeBackend::start(WELCOME, None).await;
    let Some(tmux) = terminal("terminal mode exit", &dir, &[]).await else {
        return;
    };
    attach(&tmux, &format!("rt/w1 --backend {}", fake.url()));
    tmux.wait_for_text("welcome to the fake terminal").await;
    until("the window size", || !fake.resizes().is_empty()).await;
    fake.end_worker(7);
    let screen = tmux.wait_for_text("attach-exit=7").await;
    assert!(
        screen.contains("rt/w1 ended (exited); exit status 7"),
        "{screen}"
    );
    assert_terminal_restored(&tmux).await;
}

/// A real backend with a `pty` shell profile (prompt `pty$ `), a worker of it, and
/// `switchyard attach` to it in a 100 x 30 tmux pane, its prompt shown; `None`
/// without tmux. The backend and the directory live as long as the test holds them.
async fn attached_shell(test: &str, dir: &tempfile::TempDir) -> Option<(Switchyard, String, Tmux)> {
    let backend = backend(
        dir,
        r#"
[embedded.profiles.sh]
kind = "pty"
command = ["/bin/sh"]
env = { PS1 = "pty$ " }
"#,
    )
    .await;
    let worker = run(&backend, "sh").await;
    let url = format!("http://{}", backend.addr);
    let tmux = terminal(test, dir, &[("SWITCHYARD_URL", &url)]).await?;
    attach(&tmux, &worker);
    tmux.wait_for_text("pty$").await;
    Some((backend, worker, tmux))
}

#[tokio::test]
async fn terminal_mode_on_a_pty_worker_follows_the_window_size() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_backend, worker, tmux)) = attached_shell("pty", &dir).await else {
        return;
    };
    tmux.type_line("stty size");
    tmux.wait_for_text("30 100").await;
    tmux.resize(90, 25);
    tmux.type_line("clear; stty size");
    tmux.wait_for_text("25 90").await;
    tmux.type_line("echo $((6 * 7))");
    tmux.wait_for_text("42").await;
    tmux.keys(&["C-]"]);
    tmux.wait_for_text("attach-exit=0").await;
    assert_terminal_restored(&tmux).await;
    // A second attach repaints the worker's screen (its prompt) on a cleared pane.
    tmux.type_line("clear");
    tmux.wait_for("a cleared pane", |s| !s.contains("pty$"))
        .await;
    attach(&tmux, &worker);
    tmux.wait_for_text("pty$").await;
    tmux.type_line("exit 4");
    tmux.wait_for_text("attach-exit=4").await;
    assert_terminal_restored(&tmux).await;
}

#[tokio::test]
async fn terminal_mode_takes_the_worker_back_to_its_window_size_when_typed_into() {
    let dir = tempfile::tempdir().unwrap();
    let Some((backend, worker, tmux)) = attached_shell("size back", &dir).await else {
        return;
    };
    tmux.type_line("stty size");
    tmux.wait_for_text("30 100").await;
    // A foreground job that says when SIGWINCH reaches it (between its sleeps).
    tmux.type_line(
        "sh -c \"trap 'echo winched-\\$((40 + 2))' WINCH; echo looping-\\$((40 + 2)); \
         while :; do sleep 0.1; done\"",
    );
    tmux.wait_for_text("looping-42").await;
    // Another client (a browser page, say) sizes the worker to its own window; the
    // job's answer to SIGWINCH follows the `resized` event on attach's stream.
    let api = switchyard_e2e::client::Api {
        addr: backend.addr,
        token: None,
    };
    let (runtime, worker_id) = worker.split_once('/').unwrap();
    let resized = api
        .post(
            &format!("/api/runtimes/{runtime}/workers/{worker_id}/resize"),
            serde_json::json!({"cols": 50, "rows": 10}),
        )
        .await;
    assert_eq!(resized.status.as_u16(), 200, "{}", resized.text());
    tmux.wait_for_text("winched-42").await;
    // Typing here (Ctrl-C, then a command) puts this window's size back before the
    // keys arrive.
    tmux.keys(&["C-c"]);
    tmux.type_line("echo now-$(stty size | tr ' ' x)");
    tmux.wait_for_text("now-30x100").await;
    tmux.keys(&["C-]"]);
    tmux.wait_for_text("attach-exit=0").await;
}
