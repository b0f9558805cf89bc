//! The client subcommands as a user runs them: the real `switchyard` binary against
//! real `switchyard serve` and `switchyard runtime` processes on loopback (and, for a
//! refusal the real backend cannot give yet, the fake backend): `run` + `send` +
//! `logs` on an echo worker, listings over an embedded and a remote runtime,
//! `logs -f` across a backend restart without a line lost or repeated, `logs` and
//! `logs -f` of a terminal worker (a shell on a pty), the error
//! paths with their codes and exit statuses, a backend with client authentication
//! (tokens, roles, ownership), an `https://` backend verified with a test CA, and
//! one that requires client certificates.

use std::process::{Output, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;
use switchyard_e2e::WAIT;
use switchyard_e2e::fake_backend::FakeBackend;
use switchyard_e2e::proc::Switchyard;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const RUNTIME_TOKEN: &str = "cli-e2e-runtime-token-8c1f";

/// A temporary directory with a backend configuration: an embedded runtime `local`
/// with `echo`, a line-echoing `lines` profile, `three` (answers one line, then exits
/// 3), a shell on a terminal, `term`, and `broken`, whose program does not exist.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("runtime.token"), RUNTIME_TOKEN).unwrap();
        let config = r#"
[embedded]
runtime_id = "local"
display_name = "This machine"

[embedded.profiles.lines]
kind = "process"
command = ["/bin/sh", "-c", "while read l; do echo \"got $l\"; done"]

[embedded.profiles.three]
kind = "process"
command = ["/bin/sh", "-c", "read l; echo \"bye $l\"; exit 3"]

[embedded.profiles.term]
kind = "pty"
command = ["/bin/sh"]
env = { PS1 = "term$ " }

[embedded.profiles.broken]
kind = "process"
command = ["/nonexistent/switchyard-test-program"]
"#;
        std::fs::write(dir.path().join("backend.toml"), config).unwrap();
        Self { dir }
    }

    /// Adds the remote runtime `edge` at `addr` to the backend's configuration.
    fn add_remote(&self, addr: std::net::SocketAddr) {
        let file = self.dir.path().join("backend.toml");
        let config = std::fs::read_to_string(&file).unwrap();
        std::fs::write(file, config + &remote_table(addr)).unwrap();
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    async fn backend(&self, listen: &str) -> Switchyard {
        let config = self.path("backend.toml");
        Switchyard::start(
            &["serve", "--config", &config, "--listen", listen],
            &[("EDGE_TOKEN", RUNTIME_TOKEN)],
        )
        .await
    }

    /// A remote `switchyard runtime` with the id `edge`, a `counter` profile (400
    /// numbered lines, 10 ms apart, then exit 0) and the token.
    async fn remote_runtime(&self) -> Switchyard {
        std::fs::write(
            self.dir.path().join("runtime.toml"),
            r#"
runtime_id = "edge"
display_name = "Edge"

[profiles.counter]
kind = "process"
command = ["/bin/sh", "-c", "i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo \"line $i\"; sleep 0.01; done"]
"#,
        )
        .unwrap();
        let config = self.path("runtime.toml");
        let token = self.path("runtime.token");
        Switchyard::start(
            &[
                "runtime",
                "--config",
                &config,
                "--listen",
                "127.0.0.1:0",
                "--token-file",
                &token,
            ],
            &[],
        )
        .await
    }
}

/// The `[[remote]]` table for a runtime at `addr`.
fn remote_table(addr: std::net::SocketAddr) -> String {
    format!(
        r#"
[[remote]]
runtime_id = "edge"
display_name = "Edge"
base_url = "http://{addr}"
token_env = "EDGE_TOKEN"
request_timeout_ms = 2000
"#
    )
}

/// Runs a client subcommand against the backend at `addr`.
async fn cli(addr: std::net::SocketAddr, args: &[&str]) -> Output {
    let url = format!("http://{addr}");
    Switchyard::output(args, &[("SWITCHYARD_URL", &url)]).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and returns stdout.
fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}; stderr: {}",
        output.status.code(),
        stderr(output)
    );
    stdout(output)
}

/// Asserts the one-line error `error: <code>: ...` with exit status `exit`, nothing
/// on stdout; returns the line.
fn failed(output: &Output, exit: i32, code: &str) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(exit), "stderr: {err}");
    assert_eq!(stdout(output), "", "nothing on stdout");
    let prefix = format!("error: {code}: ");
    assert!(
        err.starts_with(&prefix),
        "{err:?} does not start with {prefix:?}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    err
}

/// Polls `logs` until its output equals `expected` (echo answers asynchronously).
/// A backend of [`Setup`] with one worker of the embedded `profile` started through
/// the CLI: the setup (keep it: it holds the directory), the backend, the worker.
async fn backend_with_worker(profile: &str) -> (Setup, Switchyard, String) {
    let setup = Setup::new();
    let backend = setup.backend("127.0.0.1:0").await;
    let worker = ok(&cli(backend.addr, &["run", "local", profile]).await);
    let worker = worker.trim_end().to_owned();
    (setup, backend, worker)
}

async fn wait_for_logs(addr: std::net::SocketAddr, worker: &str, expected: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = ok(&cli(addr, &["logs", worker]).await);
        if text == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "logs never became {expected:?}; last {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn run_send_and_logs_on_an_echo_worker() {
    let setup = Setup::new();
    let backend = setup.backend("127.0.0.1:0").await;
    let addr = backend.addr;

    let created = ok(&cli(addr, &["run", "local", "echo", "--label", "demo"]).await);
    let worker = created.trim_end().to_owned();
    assert!(worker.starts_with("local/w-"), "{created:?}");
    assert_eq!(created, format!("{worker}\n"), "one line: RUNTIME/WORKER");

    // Echo answers each input asynchronously: wait for each answer before the
    // next send so the transcript's order is fixed.
    assert_eq!(ok(&cli(addr, &["send", &worker, "hello"]).await), "");
    wait_for_logs(addr, &worker, "[system] started\n[input] hello\nhello\n").await;
    assert_eq!(
        ok(&cli(addr, &["send", "-n", &worker, "no newline"]).await),
        ""
    );
    wait_for_logs(
        addr,
        &worker,
        // No newline yet: `logs` ends a line only where the next item starts.
        "[system] started\n[input] hello\nhello\n[input] no newline\nno newline",
    )
    .await;
    let mut piped = Switchyard::command(
        &["send", &worker, "-"],
        &[("SWITCHYARD_URL", &format!("http://{addr}"))],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = piped.stdin.take().unwrap();
    stdin.write_all(b"\nfrom\nstdin\n").await.unwrap();
    drop(stdin);
    assert!(piped.wait().await.unwrap().success());
    // An empty standard input sends nothing (it would be recorded as an input).
    failed(
        &cli(addr, &["send", &worker, "-"]).await,
        2,
        "invalid_input",
    );

    let expected = "[system] started\n\
                    [input] hello\n\
                    hello\n\
                    [input] no newline\n\
                    no newline\n\
                    [input] \n\
                    [input] from\n\
                    [input] stdin\n\
                    \nfrom\nstdin\n";
    wait_for_logs(addr, &worker, expected).await;
    assert_eq!(
        ok(&cli(addr, &["logs", "--tail", "2", &worker]).await),
        "[input] \n[input] from\n[input] stdin\n\nfrom\nstdin\n"
    );
    assert_eq!(ok(&cli(addr, &["logs", "--tail", "0", &worker]).await), "");

    let table = ok(&cli(addr, &["ls"]).await);
    let row = table
        .lines()
        .find(|l| l.starts_with(&worker))
        .expect("a row");
    for cell in ["echo", "running", "demo"] {
        assert!(row.contains(cell), "{row:?} lacks {cell}");
    }
    assert!(table.starts_with("WORKER "), "{table}");

    assert_eq!(
        ok(&cli(addr, &["stop", &worker]).await),
        format!("{worker} stopped\n")
    );
    assert!(ok(&cli(addr, &["logs", &worker]).await).ends_with("[system] stopped on request\n"));
    assert_eq!(
        ok(&cli(addr, &["rm", &worker]).await),
        format!("{worker} removed\n")
    );
    failed(&cli(addr, &["logs", &worker]).await, 1, "worker_not_found");
}

#[tokio::test]
async fn listings_cover_an_embedded_and_a_remote_runtime() {
    let setup = Setup::new();
    let runtime = setup.remote_runtime().await;
    setup.add_remote(runtime.addr);
    let backend = setup.backend("127.0.0.1:0").await;
    let addr = backend.addr;
    let local = ok(&cli(addr, &["run", "local", "echo"]).await);
    let edge = ok(&cli(addr, &["run", "edge", "counter", "--label", "count"]).await);
    let (local, edge) = (local.trim_end(), edge.trim_end());
    assert!(edge.starts_with("edge/w-"), "{edge}");

    let all: Value = serde_json::from_str(&ok(&cli(addr, &["ls", "--json"]).await)).unwrap();
    let refs: Vec<String> = all["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            format!(
                "{}/{}",
                w["runtime_id"].as_str().unwrap(),
                w["worker_id"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        refs.contains(&local.to_owned()) && refs.contains(&edge.to_owned()),
        "{refs:?}"
    );
    assert_eq!(all["unavailable"], serde_json::json!([]));
    let edge_detail = all["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["runtime_id"] == "edge")
        .unwrap();
    assert_eq!(edge_detail["profile"], "counter");
    assert_eq!(edge_detail["label"], "count");

    let one: Value =
        serde_json::from_str(&ok(&cli(addr, &["ls", "--runtime", "edge", "--json"]).await))
            .unwrap();
    let runtimes: Vec<&str> = one["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["runtime_id"].as_str().unwrap())
        .collect();
    assert_eq!(runtimes, ["edge"]);

    let table = ok(&cli(addr, &["ls"]).await);
    assert!(table.contains(local) && table.contains(edge), "{table}");

    let listed: Value =
        serde_json::from_str(&ok(&cli(addr, &["runtimes", "--json"]).await)).unwrap();
    let states: Vec<(&str, &str, &str)> = listed["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["runtime_id"].as_str().unwrap(),
                r["source"].as_str().unwrap(),
                r["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("local", "embedded", "ready"), ("edge", "remote", "ready")]
    );
    let table = ok(&cli(addr, &["runtimes"]).await);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("edge ") && l.contains("remote")),
        "{table}"
    );

    // The remote goes away: listings still answer, naming it on stderr.
    runtime.signal(Signal::SIGKILL);
    let _ = runtime.wait().await;
    let output = cli(addr, &["ls", "--json"]).await;
    let all: Value = serde_json::from_str(&ok(&output)).unwrap();
    assert_eq!(all["unavailable"][0]["runtime_id"], "edge", "{all}");
    assert!(
        stderr(&output).starts_with("warning: runtime edge did not answer: runtime_unreachable: "),
        "{}",
        stderr(&output)
    );
    let output = cli(addr, &["ls"]).await;
    assert!(ok(&output).contains(local));
    assert!(stderr(&output).contains("runtime edge did not answer"));
    failed(
        &cli(addr, &["ls", "--runtime", "edge"]).await,
        1,
        "runtime_unreachable",
    );
}

#[tokio::test]
async fn errors_print_their_code_and_exit_status() {
    let setup = Setup::new();
    let backend = setup.backend("127.0.0.1:0").await;
    let addr = backend.addr;
    let running = ok(&cli(addr, &["run", "local", "lines"]).await);
    let running = running.trim_end();
    let refused = switchyard_e2e::ports::refused_addr();
    let closed = refused.addr;
    let closed_url = format!("http://{closed}");
    let closed_https = format!("https://{closed}");
    let missing_token = setup.path("no-such-token");
    let two_tokens = setup.path("two.token");
    std::fs::write(&two_tokens, "sy_first\nsy_second\n").unwrap();
    // A token file that is far too big (the wrong file), and one that never ends:
    // refused after a few KiB, not read to the end and sent as a header.
    let huge_token = setup.path("huge.token");
    std::fs::write(&huge_token, "x".repeat(100_000)).unwrap();
    let table: [(&[&str], i32, &str); 19] = [
        (&["run", "nope", "echo"], 1, "runtime_not_found"),
        (&["run", "local", "nope"], 1, "unknown_profile"),
        (&["logs", "local/w-missing"], 1, "worker_not_found"),
        (&["logs", "-f", "local/w-missing"], 1, "worker_not_found"),
        (&["send", "local/w-missing", "x"], 1, "worker_not_found"),
        (&["attach", "local/w-missing"], 1, "worker_not_found"),
        (&["stop", "nope/w-1"], 1, "runtime_not_found"),
        (&["rm", running], 1, "worker_running"),
        (&["ls", "--runtime", "nope"], 1, "runtime_not_found"),
        (&["ls", "--backend", &closed_url], 1, "backend_unreachable"),
        (
            &["ls", "--backend", &closed_https],
            1,
            "backend_unreachable",
        ),
        (
            &["ls", "--backend", "ftp://127.0.0.1:1"],
            2,
            "invalid_backend_url",
        ),
        (
            &["ls", "--token-file", &missing_token],
            2,
            "invalid_token_file",
        ),
        (
            &["ls", "--token-file", &two_tokens],
            2,
            "invalid_token_file",
        ),
        (
            &["ls", "--token-file", &huge_token],
            2,
            "invalid_token_file",
        ),
        (
            &["ls", "--token-file", "/dev/zero"],
            2,
            "invalid_token_file",
        ),
        // Not port 80: a port that is not one is refused.
        (
            &["ls", "--backend", "127.0.0.1:99999"],
            2,
            "invalid_backend_url",
        ),
        (&["logs", "no-slash"], 2, "invalid value"),
        (&["ls", "--bogus"], 2, "unexpected argument"),
    ];
    for (args, exit, code) in table {
        let output = cli(addr, args).await;
        if exit == 2 && !code.contains('_') {
            // clap's own usage errors: `error: <what>`, exit 2.
            assert_eq!(output.status.code(), Some(2), "{args:?}");
            assert!(
                stderr(&output).contains(code),
                "{args:?}: {}",
                stderr(&output)
            );
            continue;
        }
        let line = failed(&output, exit, code);
        if code == "backend_unreachable" {
            let url = args[2];
            assert!(
                line.contains(&format!("the backend at {url} (connection refused)")),
                "{line}"
            );
        }
    }
    assert!(
        failed(
            &cli(addr, &["ls", "--token-file", &two_tokens]).await,
            2,
            "invalid_token_file"
        )
        .contains("holds 2 tokens")
    );
    for file in [huge_token.as_str(), "/dev/zero"] {
        let line = failed(
            &cli(addr, &["ls", "--token-file", file]).await,
            2,
            "invalid_token_file",
        );
        assert!(
            line.contains("is over 4096 bytes") && line.contains("check the path"),
            "{line}"
        );
    }
    // A token in the environment that is not UTF-8 is refused, not dropped (which
    // would send no token and read as none given).
    {
        use std::os::unix::ffi::OsStrExt;
        let output = Switchyard::command(&["ls"], &[("SWITCHYARD_URL", &format!("http://{addr}"))])
            .env("SWITCHYARD_TOKEN", std::ffi::OsStr::from_bytes(b"\xff"))
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        failed(&output, 2, "invalid_token");
    }
    // A worker that failed to start: printed (so its logs can be read), and an error.
    let output = cli(addr, &["run", "local", "broken"]).await;
    let (printed, line) = (stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(1), "{line}");
    assert!(printed.starts_with("local/w-"), "{printed}");
    assert!(
        line.starts_with("error: worker_failed: ") && line.contains(printed.trim_end()),
        "{line}"
    );
    // `run --attach` of a terminal profile without a terminal (standard input is
    // /dev/null here) is refused before a worker is started.
    let line = failed(
        &cli(addr, &["run", "local", "term", "--attach"]).await,
        1,
        "not_a_tty",
    );
    assert!(line.contains("nothing was started"), "{line}");
    let listed: Value = serde_json::from_str(&ok(&cli(addr, &["ls", "--json"]).await)).unwrap();
    let terms: Vec<&Value> = listed["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["profile"] == "term")
        .collect();
    assert!(
        terms.is_empty(),
        "no terminal worker left behind: {terms:?}"
    );
    // The worker that refused `rm` is still there; `rm -f` stops it first.
    assert_eq!(
        ok(&cli(addr, &["rm", "-f", running]).await),
        format!("{running} removed\n")
    );
}

/// `switchyard token`'s errors print as the client commands' do, `error: <code>:
/// <message>` on one line: exit status 2 for flags the configuration would refuse,
/// 1 when the token cannot be written.
#[tokio::test]
async fn token_errors_print_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("taken.token");
    std::fs::write(&existing, "sy_x\n").unwrap();
    let existing = existing.display().to_string();
    let nowhere = dir.path().join("no-such-dir/t.token").display().to_string();
    let table: [(&[&str], i32, &str, &str); 5] = [
        (&["--name", "al ice"], 2, "invalid_name", "--name must be"),
        (
            &["--runtime", "a/b"],
            2,
            "invalid_runtime",
            "--runtime \"a/b\"",
        ),
        (
            &["--role", "admin", "--workers", "own"],
            2,
            "invalid_workers",
            "an admin reaches every worker",
        ),
        (
            &["--token-file", &existing],
            1,
            "token_file_failed",
            "it must not exist yet",
        ),
        (
            &["--token-file", &nowhere],
            1,
            "token_file_failed",
            "its directory must exist",
        ),
    ];
    for (args, exit, code, fragment) in table {
        let mut full = vec!["token"];
        full.extend_from_slice(args);
        let line = failed(&Switchyard::output(&full, &[]).await, exit, code);
        assert!(line.contains(fragment), "{args:?}: {line}");
    }
}

/// `attach` from a pipe sends its lines, then, at the end of its input, goes on
/// showing the worker's output until the worker ends and exits with its status;
/// SIGINT still detaches one whose worker keeps running.
#[tokio::test]
async fn attach_from_a_pipe_waits_for_the_worker_after_its_input() {
    let (_setup, backend, worker) = backend_with_worker("three").await;
    let url = format!("http://{}", backend.addr);
    let attach = |worker: &str| {
        Switchyard::command(&["attach", worker], &[("SWITCHYARD_URL", &url)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let output = feed_and_wait(
        attach(&worker),
        b"now\n",
        "attach ends when the worker does",
    )
    .await;
    let (out, err) = (stdout(&output), stderr(&output));
    assert_eq!(
        output.status.code(),
        Some(3),
        "the worker's exit code; {err}"
    );
    assert!(
        out.contains("bye now\n") && out.contains("[system] exited with code 3"),
        "{out}"
    );

    // A worker that keeps running: attach stays after its input has ended, until
    // SIGINT detaches it.
    let running = ok(&cli(backend.addr, &["run", "local", "lines"]).await);
    let mut attached = attach(running.trim_end());
    let mut stdin = attached.stdin.take().unwrap();
    stdin.write_all(b"one\n").await.unwrap();
    drop(stdin);
    let out = collect(attached.stdout.take().unwrap());
    until_shown(&out, "got one").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        attached.try_wait().unwrap().is_none(),
        "still attached after the end of its input"
    );
    let pid = nix::unistd::Pid::from_raw(attached.id().unwrap() as i32);
    nix::sys::signal::kill(pid, Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(WAIT, attached.wait())
        .await
        .expect("SIGINT detaches")
        .unwrap();
    assert_eq!(status.code(), Some(130));
    // Detached: the worker still runs.
    assert!(ok(&cli(backend.addr, &["ls"]).await).contains("running"));
}

/// `attach WORKER` against `addr`, its standard input a pipe, stdout and stderr
/// piped.
fn attach_piped(addr: std::net::SocketAddr, worker: &str) -> tokio::process::Child {
    let url = format!("http://{addr}");
    Switchyard::command(&["attach", worker], &[("SWITCHYARD_URL", &url)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Writes `input` to `child`'s standard input, closes it, and waits (at most
/// `WAIT`) for the child to end; `ends` says what the test expected.
async fn feed_and_wait(
    mut child: tokio::process::Child,
    input: &[u8],
    ends: &str,
) -> std::process::Output {
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect(ends)
        .unwrap()
}

/// Waits until `out` holds `needle`.
async fn until_shown(out: &Collected, needle: &str) {
    until_shown_or(out, needle, out).await;
}

/// Waits until `out` holds `needle`; a timeout shows `context` (the process's
/// standard error, say).
async fn until_shown_or(out: &Collected, needle: &str, context: &Collected) {
    let deadline = Instant::now() + WAIT;
    while !out.text().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{needle:?} never shown: {:?}",
            context.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Line-mode `attach` leaves out only the lines it sent itself (the terminal echoed
/// them): an input from another client is shown as `[input] ...`, as `logs` shows
/// it, live and when a new attach is served a snapshot older than the input (a
/// backend keeps a worker's last snapshot for a moment after its last viewer left,
/// and sends what came since as live events).
#[tokio::test]
async fn attach_shows_inputs_from_others_but_not_its_own() {
    let (_setup, backend, worker) = backend_with_worker("lines").await;
    let addr = backend.addr;
    ok(&cli(addr, &["send", &worker, "before"]).await);
    let mut first = attach_piped(addr, &worker);
    let mut stdin = first.stdin.take().unwrap();
    let out = collect(first.stdout.take().unwrap());
    until_shown(&out, "got before\n").await;
    // Its own line: echoed by a terminal, so not shown again.
    stdin.write_all(b"mine\n").await.unwrap();
    until_shown(&out, "got mine\n").await;
    // Another client's input while attached.
    ok(&cli(addr, &["send", &worker, "theirs"]).await);
    until_shown(&out, "got theirs\n").await;
    let pid = nix::unistd::Pid::from_raw(first.id().unwrap() as i32);
    nix::sys::signal::kill(pid, Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(WAIT, first.wait())
        .await
        .expect("SIGINT detaches")
        .unwrap();
    assert_eq!(status.code(), Some(130));
    let text = out.finish().await;
    assert!(
        text.contains("[input] before\ngot before\n"),
        "the snapshot's inputs: {text:?}"
    );
    assert!(
        text.contains("[input] theirs\ngot theirs\n"),
        "another client's input, live: {text:?}"
    );
    assert!(!text.contains("[input] mine"), "its own line: {text:?}");
    drop(stdin);

    // Sent between two attaches close together: the second is served the snapshot
    // from before it, and the input as a live event.
    ok(&cli(addr, &["send", &worker, "between"]).await);
    let mut second = attach_piped(addr, &worker);
    let _stdin = second.stdin.take().unwrap();
    let out = collect(second.stdout.take().unwrap());
    until_shown(&out, "got between\n").await;
    second.start_kill().unwrap();
    let _ = second.wait().await;
    let text = out.finish().await;
    assert!(
        text.contains("[input] between\ngot between\n"),
        "sent by another client just before: {text:?}"
    );
    assert!(
        text.contains("[input] mine\ngot mine\n"),
        "the first attach's line is another client's to this one: {text:?}"
    );
}

/// Line-mode `attach` from a pipe reads a line up to `send -`'s bound: a longer one
/// (here without a newline, on an input left open, as from /dev/zero) is refused
/// with `payload_too_large` at once, as `send -` refuses it, after the lines before
/// it were sent, and is not sent.
#[tokio::test]
async fn attach_refuses_a_line_over_the_bound() {
    let (_setup, backend, worker) = backend_with_worker("lines").await;
    let addr = backend.addr;
    let mut attached = attach_piped(addr, &worker);
    let mut stdin = attached.stdin.take().unwrap();
    let mut input = b"first\n".to_vec();
    input.extend(vec![b'a'; (1 << 20) + 2]);
    // Written on the side, and left open: attach stops reading before the end.
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
        std::future::pending::<()>().await;
    });
    let output = tokio::time::timeout(WAIT, attached.wait_with_output())
        .await
        .expect("attach ends without waiting for the end of the line")
        .unwrap();
    writer.abort();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(
            "error: payload_too_large: a line of standard input is over 1048576 bytes"
        ),
        "{err}"
    );
    // The line before it was sent; the long one was not.
    wait_for_logs(
        addr,
        &worker,
        "[system] started\n[input] first\ngot first\n",
    )
    .await;
}

/// Runs `switchyard send WORKER -` against `addr` with `input` on standard input,
/// which stays open afterwards unless `close`.
async fn send_stdin(
    addr: std::net::SocketAddr,
    worker: &str,
    input: Vec<u8>,
    close: bool,
) -> Output {
    let url = format!("http://{addr}");
    let mut child = Switchyard::command(&["send", worker, "-"], &[("SWITCHYARD_URL", &url)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Written on the side: the child may stop reading (and exit) before the end.
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
        if !close {
            std::future::pending::<()>().await;
        }
    });
    let output = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("send ends without waiting for the end of its input")
        .unwrap();
    writer.abort();
    output
}

/// `send -` reads standard input up to a bound: more is refused after one byte past
/// it, without waiting for (or holding) the rest; below it, the runtime's own limit
/// refuses an input as it refuses an argument.
#[tokio::test]
async fn send_reads_standard_input_up_to_a_bound() {
    let (_setup, backend, worker) = backend_with_worker("lines").await;
    let addr = backend.addr;
    // 1 MiB and 2 bytes, the input left open: a reader without a bound waits for an
    // end that never comes (and from /dev/zero grows without one).
    let line = failed(
        &send_stdin(addr, &worker, vec![b'a'; (1 << 20) + 2], false).await,
        1,
        "payload_too_large",
    );
    assert!(
        line.contains("standard input is over 1048576 bytes") && line.contains("nothing was sent"),
        "{line}"
    );
    // Over the runtime's limit (64 KiB by default): the backend's refusal, as for
    // an argument of that size.
    let line = failed(
        &send_stdin(addr, &worker, vec![b'b'; 100_000], true).await,
        1,
        "payload_too_large",
    );
    assert!(
        line.contains("input is 100000 bytes, over the limit of 65536"),
        "{line}"
    );
    let argument = "c".repeat(100_000);
    let line = failed(
        &cli(addr, &["send", "-n", &worker, &argument]).await,
        1,
        "payload_too_large",
    );
    assert!(
        line.contains("input is 100000 bytes, over the limit of 65536"),
        "{line}"
    );
    // Neither reached the worker.
    assert_eq!(
        ok(&cli(addr, &["logs", &worker]).await),
        "[system] started\n"
    );
}

#[tokio::test]
async fn the_token_is_sent_and_never_shown() {
    const TOKEN: &str = "s3cret-cli-t0ken";
    let fake = FakeBackend::start("", Some(TOKEN)).await;
    let url = fake.url();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let token_file = token_file.display().to_string();

    let run = |envs: Vec<(&'static str, String)>, args: Vec<String>| async move {
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Switchyard::output(&args, &envs).await
    };
    let ls = |extra: &[&str]| {
        let mut args = vec!["ls".to_owned(), "--backend".to_owned(), url.clone()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };

    // No token, a wrong one: the backend's 401 as `unauthorized`, exit 1.
    for envs in [vec![], vec![("SWITCHYARD_TOKEN", "wrong-token".to_owned())]] {
        let output = run(envs, ls(&[])).await;
        let line = failed(&output, 1, "unauthorized");
        assert!(line.contains("--token-file or SWITCHYARD_TOKEN"), "{line}");
    }
    let seen: Vec<Option<String>> = fake
        .requests()
        .into_iter()
        .map(|r| r.authorization)
        .collect();
    assert_eq!(seen, [None, Some("Bearer wrong-token".to_owned())]);

    // The right token from the environment, and from a file (which wins).
    let from_env = run(vec![("SWITCHYARD_TOKEN", TOKEN.to_owned())], ls(&[])).await;
    assert!(ok(&from_env).contains("rt/w1"));
    let from_file = run(
        vec![("SWITCHYARD_TOKEN", "wrong-token".to_owned())],
        ls(&["--token-file", &token_file]),
    )
    .await;
    assert!(ok(&from_file).contains("rt/w1"));
    // A runtime listed only in part is named on stderr, with the way to list it all.
    assert!(
        stderr(&from_env).contains(
            "warning: runtime rt has more workers than listed; `switchyard ls --runtime rt` lists them all"
        ),
        "{}",
        stderr(&from_env)
    );
    for output in [&from_env, &from_file] {
        assert!(!stdout(output).contains(TOKEN) && !stderr(output).contains(TOKEN));
    }
    assert_eq!(
        fake.requests().last().unwrap().authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

/// A worker whose input queue stays full: `send` retries for 10 s, then says so
/// and what to do, not the backend's "retry shortly".
#[tokio::test]
async fn send_says_how_long_it_retried_a_busy_worker() {
    let fake = FakeBackend::start("", None).await;
    let started = Instant::now();
    let output = Switchyard::output(&["send", "--backend", &fake.url(), "rt/w1", "x"], &[]).await;
    let line = failed(&output, 1, "worker_busy");
    assert!(started.elapsed() >= Duration::from_secs(9), "retried first");
    assert!(
        line.contains("rt/w1 was still busy after 10 s of retries")
            && line.contains("switchyard logs -f rt/w1")
            && !line.contains("retry shortly"),
        "{line}"
    );
    let inputs = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/input"))
        .count();
    assert!(inputs > 1, "retried: {inputs} attempts");
}

/// A child's output pipe, read into a shared buffer as it arrives.
struct Collected {
    buffer: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: tokio::task::JoinHandle<()>,
}

/// Reads a child's stdout (or stderr) into a shared buffer as it arrives.
fn collect(mut pipe: impl AsyncReadExt + Unpin + Send + 'static) -> Collected {
    let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = buffer.clone();
    let reader = tokio::spawn(async move {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    Collected { buffer, reader }
}

impl Collected {
    /// What has arrived so far.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }

    /// Everything the child wrote: waits for the pipe's end (the child has exited),
    /// so that no late chunk is missed however slowly the reader runs.
    async fn finish(self) -> String {
        tokio::time::timeout(WAIT, self.reader)
            .await
            .expect("the pipe ends once the child has exited")
            .unwrap();
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn logs_follow_rides_through_a_backend_restart_without_loss_or_repetition() {
    let setup = Setup::new();
    let runtime = setup.remote_runtime().await;
    setup.add_remote(runtime.addr);
    let backend = setup.backend("127.0.0.1:0").await;
    let addr = backend.addr;
    let url = format!("http://{addr}");
    let worker = ok(&cli(addr, &["run", "edge", "counter"]).await);
    let worker = worker.trim_end();

    let mut follow = Switchyard::command(&["logs", "-f", worker], &[("SWITCHYARD_URL", &url)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = collect(follow.stdout.take().unwrap());
    let err = collect(follow.stderr.take().unwrap());

    // Restart the backend while the worker is mid-way.
    until_shown_or(&out, "line 60\n", &err).await;
    backend.signal(Signal::SIGTERM);
    assert!(backend.wait().await.success());
    let down_at = out.text().lines().count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let backend = setup.backend(&addr.to_string()).await;
    assert_eq!(backend.addr, addr);

    let status = tokio::time::timeout(WAIT, follow.wait())
        .await
        .expect("logs -f ends when the worker does")
        .unwrap();
    let (out, err) = (out.finish().await, err.finish().await);
    assert!(status.success(), "exit {status:?}; stderr: {err}");

    let mut expected = vec!["[system] started".to_owned()];
    expected.extend((1..=400).map(|i| format!("line {i}")));
    expected.push("[system] exited with code 0".to_owned());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, expected, "every line once, in order; stderr: {err}");
    assert!(
        down_at < 400,
        "the restart happened while the worker ran ({down_at} lines before)"
    );
    assert!(err.contains("lost the connection to the backend"), "{err}");
    assert!(err.contains("switchyard: reconnected"), "{err}");
    // The transcript says the same.
    assert_eq!(ok(&cli(addr, &["logs", worker]).await), out);
}

/// What `python3 -m http.server` answers a path it does not have.
const NOT_FOUND_PAGE: &[u8] =
    b"HTTP/1.0 404 File not found\r\nServer: SimpleHTTP/0.6 Python/3.12\r\n\
Content-Type: text/html;charset=utf-8\r\nConnection: close\r\nContent-Length: 22\r\n\r\n\
<html>Not found</html>";

/// The backend replaced by a web server that is not one: `logs -f` and `attach`
/// (line mode, its input still open) reconnect to it, and its 404 page ends them
/// as it would at start-up, with `backend_protocol_error` and exit 1, instead of
/// retrying forever.
#[tokio::test]
async fn following_ends_when_another_server_takes_the_backends_port() {
    let (_setup, backend, worker) = backend_with_worker("lines").await;
    let addr = backend.addr;
    let url = format!("http://{addr}");
    let spawn = |args: &[&str]| {
        Switchyard::command(args, &[("SWITCHYARD_URL", &url)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut children = [spawn(&["logs", "-f", &worker]), spawn(&["attach", &worker])];
    let mut pipes = Vec::new();
    for child in &mut children {
        // Standard input stays open: attach is not to end with its input.
        let stdin = child.stdin.take().unwrap();
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        until_shown_or(&out, "[system] started", &err).await;
        pipes.push((stdin, out, err));
    }
    // Output of an input sent now reaches both only over the event stream (the
    // transcript they read first ends before it): once shown, both are on it.
    ok(&cli(addr, &["send", &worker, "ping"]).await);
    for (_, out, err) in &pipes {
        until_shown_or(out, "got ping", err).await;
    }
    backend.signal(Signal::SIGTERM);
    assert!(backend.wait().await.success());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    switchyard_e2e::raw_http::serve_canned(listener, Some(NOT_FOUND_PAGE));

    for (child, (_stdin, out, err)) in children.iter_mut().zip(pipes) {
        let status = tokio::time::timeout(WAIT, child.wait())
            .await
            .expect("following ends instead of retrying forever")
            .unwrap();
        drop(out);
        let err = err.finish().await;
        assert_eq!(status.code(), Some(1), "{err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: backend_protocol_error: ")
                && last
                    .contains("status 404 without an error body (is this a Switchyard backend?)"),
            "{err}"
        );
    }
}

/// Polls `logs` until its output holds `needle`; returns it.
async fn wait_for_logs_holding(addr: std::net::SocketAddr, worker: &str, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = ok(&cli(addr, &["logs", worker]).await);
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "logs never held {needle:?}; last {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn logs_of_a_terminal_worker_replay_its_terminal() {
    let (_setup, backend, worker) = backend_with_worker("term").await;
    let addr = backend.addr;
    let url = format!("http://{addr}");
    let worker = worker.as_str();
    wait_for_logs_holding(addr, worker, "term$ ").await;
    // `send` adds "\n", which a terminal takes as Enter like "\r".
    ok(&cli(addr, &["send", worker, "echo $((6*7))"]).await);
    let logs = wait_for_logs_holding(addr, worker, "42\r\nterm$ ").await;
    // The terminal's bytes as it wrote them (its echo of what was typed included),
    // and no marked input lines between them.
    assert_eq!(
        logs, "[system] started\nterm$ echo $((6*7))\r\n42\r\nterm$ ",
        "{logs:?}"
    );

    let mut follow = Switchyard::command(&["logs", "-f", worker], &[("SWITCHYARD_URL", &url)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = collect(follow.stdout.take().unwrap());
    let deadline = Instant::now() + WAIT;
    while !out.text().ends_with("term$ ") {
        assert!(Instant::now() < deadline, "{}", out.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ok(&cli(addr, &["send", worker, "echo live-$((1+1))"]).await);
    until_shown(&out, "live-2\r\n").await;
    ok(&cli(addr, &["stop", worker]).await);
    let status = tokio::time::timeout(WAIT, follow.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let out = out.finish().await;
    assert!(!out.contains("[input]"), "{out:?}");
    assert!(
        out.starts_with(
            "[system] started\nterm$ echo $((6*7))\r\n42\r\nterm$ echo live-$((1+1))\r\nlive-2\r\n"
        ),
        "{out:?}"
    );
    assert!(out.ends_with("[system] stopped on request\n"), "{out:?}");
}

/// `logs -f | head -1` on an idle worker: once the reader has gone, the command
/// ends with status 0 at once, not at its next write (which may never come).
#[tokio::test]
async fn logs_follow_ends_when_its_reader_goes_away_on_an_idle_worker() {
    let (_setup, backend, worker) = backend_with_worker("lines").await;
    let addr = backend.addr;
    let url = format!("http://{addr}");
    let worker = worker.as_str();
    let mut follow = Switchyard::command(&["logs", "-f", worker], &[("SWITCHYARD_URL", &url)])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = follow.stdout.take().unwrap();
    let mut first = [0u8; 8];
    tokio::time::timeout(WAIT, reader.read_exact(&mut first))
        .await
        .expect("the transcript's first bytes")
        .unwrap();
    assert_eq!(&first, b"[system]");
    drop(reader);
    let status = tokio::time::timeout(WAIT, follow.wait())
        .await
        .expect("logs -f ends once nobody reads")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn logs_follow_ends_when_the_worker_ends() {
    let (_setup, backend, worker) = backend_with_worker("lines").await;
    let addr = backend.addr;
    let url = format!("http://{addr}");
    let worker = worker.as_str();
    ok(&cli(addr, &["send", worker, "before"]).await);
    wait_for_logs(
        addr,
        worker,
        "[system] started\n[input] before\ngot before\n",
    )
    .await;

    let mut follow = Switchyard::command(
        &["logs", "-f", "--tail", "1", worker],
        &[("SWITCHYARD_URL", &url)],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let out = collect(follow.stdout.take().unwrap());
    until_shown(&out, "got before").await;
    // Each answer before the next input, so that the transcript's order (input, its
    // answer, input, its answer) does not depend on how fast the shell is.
    for line in ["one", "two"] {
        ok(&cli(addr, &["send", worker, line]).await);
        until_shown(&out, &format!("got {line}")).await;
    }
    ok(&cli(addr, &["stop", worker]).await);
    let status = tokio::time::timeout(WAIT, follow.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let out = out.finish().await;
    // --tail 1 starts after `[input] before`; its output is the one item shown.
    let shown: Vec<&str> = out.lines().collect();
    assert_eq!(
        shown,
        [
            "got before",
            "[input] one",
            "got one",
            "[input] two",
            "got two",
            "[system] stopped on request"
        ],
        "{out}"
    );
}

/// Client tokens of the backend with auth on, and their SHA-256 (hex).
const OPERATOR_TOKEN: &str = "cli-e2e-operator-token-3b9d";
const OPERATOR_SHA256: &str = "205d57d49c5780cbf9f3848731b9eafbc91c3930c9026d6c408d2d5702353bda";
const VIEWER_TOKEN: &str = "cli-e2e-viewer-token-77a0";
const VIEWER_SHA256: &str = "7b1f2ebee67365beed71811a24a25869a071ad976786587d7ba8ffba66849518";

impl Setup {
    /// Turns client authentication on: an operator `olga` (her own workers) and a
    /// viewer `vic` who sees every worker.
    fn add_auth(&self) {
        let file = self.dir.path().join("backend.toml");
        let config = std::fs::read_to_string(&file).unwrap();
        let auth = format!(
            "\n[auth]\n\n[[auth.token]]\nname = \"olga\"\ntoken_sha256 = \"{OPERATOR_SHA256}\"\nrole = \"operator\"\n\n\
             [[auth.token]]\nname = \"vic\"\ntoken_sha256 = \"{VIEWER_SHA256}\"\nrole = \"viewer\"\nworkers = \"all\"\n"
        );
        std::fs::write(file, config + &auth).unwrap();
    }

    /// Serves HTTPS only, with a certificate for `names` from a new test CA, whose
    /// certificate is written to `ca.crt`; returns its path.
    fn add_tls(&self, names: &[&str]) -> String {
        let ca = switchyard_e2e::certs::Ca::new("CLI test CA");
        ca.write(self.dir.path(), "ca");
        ca.server(names).write(self.dir.path(), "backend");
        let file = self.dir.path().join("backend.toml");
        let config = std::fs::read_to_string(&file).unwrap();
        let tls = "\n[tls]\ncert_file = \"backend.crt\"\nkey_file = \"backend.key\"\n";
        std::fs::write(file, config + tls).unwrap();
        self.path("ca.crt")
    }

    /// Requires client certificates signed by a new test CA (the `[tls]` table that
    /// [`Setup::add_tls`] wrote must come last); writes a client certificate of that
    /// CA to `client.crt` / `client.key` and one of a stranger CA to `stranger.crt` /
    /// `stranger.key`.
    fn require_client_certificates(&self) {
        let clients = switchyard_e2e::certs::Ca::new("CLI clients CA");
        clients.write(self.dir.path(), "clients-ca");
        clients.client("cli-user").write(self.dir.path(), "client");
        let stranger = switchyard_e2e::certs::Ca::new("Stranger CA");
        stranger
            .client("cli-user")
            .write(self.dir.path(), "stranger");
        let file = self.dir.path().join("backend.toml");
        let config = std::fs::read_to_string(&file).unwrap();
        assert!(config.trim_end().ends_with("key_file = \"backend.key\""));
        std::fs::write(file, config + "client_ca_file = \"clients-ca.crt\"\n").unwrap();
    }
}

/// Runs a client subcommand against the backend at `addr`, with `token` in
/// `SWITCHYARD_TOKEN` when given.
async fn cli_as(addr: std::net::SocketAddr, token: Option<&str>, args: &[&str]) -> Output {
    let url = format!("http://{addr}");
    let mut envs = vec![("SWITCHYARD_URL", url.as_str())];
    if let Some(token) = token {
        envs.push(("SWITCHYARD_TOKEN", token));
    }
    Switchyard::output(args, &envs).await
}

/// The real backend with `[auth]`: every command's requests pass the browser
/// defences (Host, JSON bodies, bodyless POSTs and DELETE) and carry the token, on
/// REST and on the event WebSocket; a missing or wrong token and a viewer's command
/// fail with the backend's code and exit 1.
#[tokio::test]
async fn against_a_backend_with_auth_tokens_and_roles_hold() {
    let setup = Setup::new();
    setup.add_auth();
    let backend = setup.backend("127.0.0.1:0").await;
    let addr = backend.addr;
    let operator = Some(OPERATOR_TOKEN);
    let viewer = Some(VIEWER_TOKEN);

    // No token and a wrong one: the backend's 401, exit 1, a hint about the token.
    for token in [None, Some("sy_not-a-configured-token")] {
        let line = failed(&cli_as(addr, token, &["runtimes"]).await, 1, "unauthorized");
        assert!(line.contains("--token-file or SWITCHYARD_TOKEN"), "{line}");
    }
    // A viewer may look but not start anything.
    assert!(ok(&cli_as(addr, viewer, &["runtimes"]).await).contains("local"));
    failed(
        &cli_as(addr, viewer, &["run", "local", "echo"]).await,
        1,
        "forbidden",
    );

    // The operator's whole round: run (a JSON POST), send, cancel and stop (bodyless
    // POSTs), logs and logs -f (REST and the event WebSocket), rm (DELETE).
    let worker = ok(&cli_as(
        addr,
        operator,
        &["run", "local", "echo", "--label", "olgas"],
    )
    .await);
    let worker = worker.trim_end().to_owned();
    assert!(worker.starts_with("local/w-"), "{worker}");
    assert_eq!(
        ok(&cli_as(addr, operator, &["send", &worker, "hello"]).await),
        ""
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let logs = ok(&cli_as(addr, operator, &["logs", &worker]).await);
        if logs.contains("[input] hello\nhello\n") {
            break;
        }
        assert!(Instant::now() < deadline, "{logs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        ok(&cli_as(addr, operator, &["cancel", &worker]).await),
        format!("{worker} running\n")
    );
    // The viewer sees it (workers = "all") but may not touch it.
    assert!(ok(&cli_as(addr, viewer, &["ls"]).await).contains(&worker));
    assert!(ok(&cli_as(addr, viewer, &["logs", &worker]).await).contains("[input] hello"));
    failed(
        &cli_as(addr, viewer, &["stop", &worker]).await,
        1,
        "forbidden",
    );
    // Attached, the viewer watches; its lines are refused once, with a hint, the
    // rest are not sent, and attach exits 1.
    let url = format!("http://{addr}");
    let attached = Switchyard::command(
        &["attach", &worker],
        &[("SWITCHYARD_URL", &url), ("SWITCHYARD_TOKEN", VIEWER_TOKEN)],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let output = feed_and_wait(attached, b"one\ntwo\nthree\n", "attach ends with its input").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    // From a pipe, refused lines fail the command.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let refusals: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("input not sent"))
        .collect();
    assert_eq!(refusals.len(), 1, "{stderr}");
    assert!(
        refusals[0].contains("forbidden") && refusals[0].contains("the other lines are not sent"),
        "{stderr}"
    );
    let logs = ok(&cli_as(addr, operator, &["logs", &worker]).await);
    assert!(
        !logs.contains("[input] one") && !logs.contains("[input] two"),
        "{logs}"
    );
    let json: Value =
        serde_json::from_str(&ok(&cli_as(addr, operator, &["ls", "--json"]).await)).unwrap();
    assert_eq!(json["workers"][0]["owner"], "olga", "{json}");
    assert_eq!(
        ok(&cli_as(addr, operator, &["stop", &worker]).await),
        format!("{worker} stopped\n")
    );
    let followed = ok(&cli_as(addr, operator, &["logs", "-f", &worker]).await);
    assert!(
        followed.contains("[input] hello\nhello\n")
            && followed.ends_with("[system] stopped on request\n"),
        "{followed}"
    );
    assert_eq!(
        ok(&cli_as(addr, operator, &["rm", &worker]).await),
        format!("{worker} removed\n")
    );
    failed(
        &cli_as(addr, operator, &["logs", &worker]).await,
        1,
        "worker_not_found",
    );
}

/// An `https://` backend: verified with `--ca-file` or `SWITCHYARD_CA_FILE` (REST
/// and the WSS event stream), refused with its reason without them, for the wrong
/// name, or over plain HTTP.
#[tokio::test]
async fn an_https_backend_is_verified_with_the_ca_file() {
    let setup = Setup::new();
    let ca = setup.add_tls(&["localhost"]);
    let backend = setup.backend("127.0.0.1:0").await;
    assert!(backend.https, "the backend says https://");
    let port = backend.addr.port();
    let https = format!("https://localhost:{port}");
    let with_ca = [
        ("SWITCHYARD_URL", https.as_str()),
        ("SWITCHYARD_CA_FILE", ca.as_str()),
    ];

    let table = ok(&Switchyard::output(&["ls", "--backend", &https, "--ca-file", &ca], &[]).await);
    assert!(table.starts_with("WORKER "), "{table}");
    let worker = ok(&Switchyard::output(&["run", "local", "lines"], &with_ca).await);
    let worker = worker.trim_end().to_owned();
    ok(&Switchyard::output(&["send", &worker, "over tls"], &with_ca).await);
    ok(&Switchyard::output(&["stop", &worker], &with_ca).await);
    let followed = ok(&Switchyard::output(&["logs", "-f", &worker], &with_ca).await);
    assert!(followed.contains("[input] over tls\n"), "{followed}");
    assert!(ok(&Switchyard::output(&["ls"], &with_ca).await).contains(&worker));

    // (what is wrong, backend URL, CA file, code, exit status, words in the message)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, i32, &'a str);
    let wrong_name = format!("https://127.0.0.1:{port}");
    let plain = format!("http://localhost:{port}");
    let missing = setup.path("no-such-ca.crt");
    let not_pem = setup.path("backend.toml");
    let cases: [Case; 5] = [
        (
            "no CA file: the system does not trust the test CA",
            &https,
            None,
            "backend_tls_failed",
            1,
            "--ca-file",
        ),
        (
            "a name the certificate does not list",
            &wrong_name,
            Some(&ca),
            "backend_tls_failed",
            1,
            "not valid for the host name",
        ),
        (
            "plain HTTP to an HTTPS-only backend",
            &plain,
            None,
            "backend_protocol_error",
            1,
            "use an https:// URL",
        ),
        (
            "a CA file that does not exist",
            &https,
            Some(&missing),
            "invalid_ca_file",
            2,
            "no-such-ca.crt",
        ),
        (
            "a CA file that is not PEM",
            &https,
            Some(&not_pem),
            "invalid_ca_file",
            2,
            "backend.toml",
        ),
    ];
    for (what, url, ca_file, code, exit, words) in cases {
        let mut args = vec!["runtimes", "--backend", url];
        if let Some(file) = ca_file {
            args.extend(["--ca-file", file]);
        }
        let line = failed(&Switchyard::output(&args, &[]).await, exit, code);
        assert!(line.contains(words), "{what}: {line}");
    }

    // The TLS variables are for https:// only: an http:// backend ignores them.
    let plain_setup = Setup::new();
    let plain_backend = plain_setup.backend("127.0.0.1:0").await;
    let url = format!("http://{}", plain_backend.addr);
    let output = Switchyard::output(
        &["runtimes"],
        &[
            ("SWITCHYARD_URL", &url),
            ("SWITCHYARD_CA_FILE", &missing),
            ("SWITCHYARD_CLIENT_CERT", &missing),
            ("SWITCHYARD_CLIENT_KEY", &missing),
        ],
    )
    .await;
    assert!(ok(&output).contains("local"));
}

/// A backend that requires client certificates (`[tls] client_ca_file`): the client
/// presents `--client-cert` and `--client-key` (or their variables) on REST and on
/// the WSS event stream; without a certificate, with one the backend's CA did not
/// sign, with half a pair, a key of another certificate or a file that is missing,
/// it fails with its code, exit status and what to do.
#[tokio::test]
async fn a_backend_requiring_client_certificates_gets_the_clients() {
    let setup = Setup::new();
    let ca = setup.add_tls(&["localhost"]);
    setup.require_client_certificates();
    let backend = setup.backend("127.0.0.1:0").await;
    let https = format!("https://localhost:{}", backend.addr.port());
    let (cert, key) = (setup.path("client.crt"), setup.path("client.key"));
    let with_certificate = [
        ("SWITCHYARD_URL", https.as_str()),
        ("SWITCHYARD_CA_FILE", ca.as_str()),
        ("SWITCHYARD_CLIENT_CERT", cert.as_str()),
        ("SWITCHYARD_CLIENT_KEY", key.as_str()),
    ];

    let flags = [
        "runtimes",
        "--backend",
        &https,
        "--ca-file",
        &ca,
        "--client-cert",
        &cert,
        "--client-key",
        &key,
    ];
    assert!(ok(&Switchyard::output(&flags, &[]).await).contains("local"));
    let worker = ok(&Switchyard::output(&["run", "local", "lines"], &with_certificate).await);
    let worker = worker.trim_end().to_owned();
    ok(&Switchyard::output(&["send", &worker, "with a certificate"], &with_certificate).await);
    ok(&Switchyard::output(&["stop", &worker], &with_certificate).await);
    let followed = ok(&Switchyard::output(&["logs", "-f", &worker], &with_certificate).await);
    assert!(
        followed.contains("[input] with a certificate\n"),
        "{followed}"
    );

    // (what is wrong, client certificate, key, code, exit status, words in the message)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
        i32,
        &'a str,
    );
    let (stranger_cert, stranger_key) = (setup.path("stranger.crt"), setup.path("stranger.key"));
    let missing = setup.path("no-such.crt");
    let cases: [Case; 6] = [
        (
            "no client certificate",
            None,
            None,
            "backend_tls_failed",
            1,
            "--client-cert and --client-key",
        ),
        (
            "a certificate of a CA the backend does not trust",
            Some(&stranger_cert),
            Some(&stranger_key),
            "backend_tls_failed",
            1,
            "refused this client's certificate",
        ),
        (
            "a certificate without its key",
            Some(&cert),
            None,
            "invalid_client_certificate",
            2,
            "add --client-key",
        ),
        (
            "a key without its certificate",
            None,
            Some(&key),
            "invalid_client_certificate",
            2,
            "add --client-cert",
        ),
        (
            "the key of another certificate",
            Some(&cert),
            Some(&stranger_key),
            "invalid_client_certificate",
            2,
            "cannot be used",
        ),
        (
            "a certificate file that does not exist",
            Some(&missing),
            Some(&key),
            "invalid_client_certificate",
            2,
            "no-such.crt",
        ),
    ];
    for (what, cert, key, code, exit, words) in cases {
        let mut args = vec!["ls", "--backend", &https, "--ca-file", &ca];
        if let Some(file) = cert {
            args.extend(["--client-cert", file]);
        }
        if let Some(file) = key {
            args.extend(["--client-key", file]);
        }
        let line = failed(&Switchyard::output(&args, &[]).await, exit, code);
        assert!(line.contains(words), "{what}: {line}");
    }
}
