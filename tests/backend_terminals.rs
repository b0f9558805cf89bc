//! Terminal workers through the backend to a remote `switchyard runtime` process, with
//! real programs on real pseudo-terminals: a shell's prompt and arithmetic, `stty
//! size` before and after resizes (REST and frame), Ctrl-C by cancel and by input, a
//! curses program whose snapshot paints its screen, 10 MiB in order, exit codes and
//! signals, stop of a program that ignores SIGHUP, idle timeouts, many interactive
//! viewers in order, and the interactive WebSocket's refusals.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchyard_e2e::WAIT;
use switchyard_e2e::client::{Api, TestResponse};
use switchyard_e2e::proc::Switchyard;
use switchyard_e2e::ws::{Ws, connect};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const TOKEN: &str = "e2e-terminal-token-9d2e51";
const RT: &str = "term-1";
/// A shell prompt that no command's output contains by accident.
const PROMPT: &str = "sw$ ";

/// One test at a time: each starts two processes and several programs on ptys.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `python3`, preferring the system's (a version manager's shim is slower to start).
fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
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

/// Lines of the 10 MiB flood: 9 bytes each.
const FLOOD_LINES: usize = 1_165_085;

/// The idle timeout of the `idle-long` profile, for workers a test must reach (a viewer
/// through the backend) before they time out: room for a create's answer and a
/// WebSocket through the backend to its runtime on a loaded machine, which the
/// 1 s of `idle` does not leave.
const IDLE_LONG_S: u64 = 5;

/// A remote runtime with pty profiles and a backend in front of it.
struct World {
    dir: tempfile::TempDir,
    _runtime: Switchyard,
    _backend: Switchyard,
    /// The backend's API.
    api: Api,
}

impl World {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(path("pattern.py"), CURSES_SCRIPT).unwrap();
        let flood = format!(
            "import sys\nw = sys.stdout.buffer\nfor i in range({FLOOD_LINES}):\n    w.write(b'%08d\\n' % i)\nw.flush()\n"
        );
        std::fs::write(path("flood.py"), flood).unwrap();
        let python = python();
        let flood_path = path("flood.py");
        std::fs::write(
            path("runtime.toml"),
            format!(
                r#"runtime_id = "{RT}"
display_name = "Terminals"
stop_grace_ms = 1500

[profiles.sh]
kind = "pty"
command = ["/bin/sh", "-i"]
cols = 100
rows = 30
env = {{ PS1 = "{PROMPT}" }}

[profiles.flood]
kind = "pty"
command = ["/bin/sh", "-c", "stty -opost -echo && exec {python} {flood}"]

[profiles.exit3]
kind = "pty"
command = ["/bin/sh", "-c", "exit 3"]

[profiles.killed]
kind = "pty"
command = ["/bin/sh", "-c", "kill -TERM $$"]

[profiles.nohup]
kind = "pty"
command = ["/bin/sh", "-c", "trap '' HUP; echo ready; exec sleep 1000"]

[profiles.idle]
kind = "pty"
command = ["/bin/sh", "-i"]
env = {{ PS1 = "{PROMPT}" }}
idle_timeout_s = 1

[profiles.idle-long]
kind = "pty"
command = ["/bin/sh", "-i"]
env = {{ PS1 = "{PROMPT}" }}
idle_timeout_s = {IDLE_LONG_S}
"#,
                flood = flood_path.display(),
            ),
        )
        .unwrap();
        let config = path("runtime.toml").display().to_string();
        let token = path("token").display().to_string();
        let runtime = Switchyard::start(
            &[
                "runtime",
                "--listen",
                "127.0.0.1:0",
                "--config",
                &config,
                "--token-file",
                &token,
            ],
            &[],
        )
        .await;
        std::fs::write(
            path("backend.toml"),
            format!(
                r#"[[remote]]
runtime_id = "{RT}"
display_name = "Terminals"
base_url = "http://{}"
token_file = {:?}
"#,
                runtime.addr,
                path("token")
            ),
        )
        .unwrap();
        let backend_config = path("backend.toml").display().to_string();
        let backend = Switchyard::start(
            &[
                "serve",
                "--config",
                &backend_config,
                "--listen",
                "127.0.0.1:0",
            ],
            &[],
        )
        .await;
        let api = Api {
            addr: backend.addr,
            token: None,
        };
        Self {
            dir,
            _runtime: runtime,
            _backend: backend,
            api,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn workers(&self) -> String {
        format!("/api/runtimes/{RT}/workers")
    }

    async fn create(&self, profile: &str) -> String {
        let r = self
            .api
            .post(&self.workers(), json!({"profile": profile}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json["worker_id"].as_str().unwrap().to_owned()
    }

    async fn post(&self, worker: &str, action: &str, body: Value) -> TestResponse {
        self.api
            .post(&format!("{}/{worker}/{action}", self.workers()), body)
            .await
    }

    async fn detail(&self, worker: &str) -> Value {
        let r = self.api.get(&format!("{}/{worker}", self.workers())).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json
    }

    /// Waits until the worker has ended; its detail then.
    async fn ended(&self, worker: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let detail = self.detail(worker).await;
            if !matches!(detail["status"].as_str(), Some("running" | "starting")) {
                return detail;
            }
            assert!(Instant::now() < deadline, "{worker} did not end: {detail}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn events(&self, worker: &str, query: &str) -> Ws {
        connect(
            self.api.addr,
            &format!("{}/{worker}/events/ws{query}", self.workers()),
            &[],
        )
        .await
        .expect("the upgrade is accepted")
    }

    async fn term(&self, worker: &str) -> Term {
        Term::new(self.events(worker, "?interactive=true").await).await
    }
}

/// A client of an interactive event WebSocket.
struct Term {
    ws: Ws,
    snapshot: Value,
    output: String,
    mark: usize,
    frames: Vec<Value>,
}

impl Term {
    async fn new(mut ws: Ws) -> Self {
        let first = next_frame(&mut ws).await;
        assert_eq!(first["event"]["kind"], "snapshot", "{first}");
        let mut output = String::new();
        for item in first["event"]["transcript"].as_array().unwrap() {
            if item["kind"] == "output" {
                output.push_str(item["text"].as_str().unwrap());
            }
        }
        Self {
            ws,
            snapshot: first,
            output,
            mark: 0,
            frames: Vec::new(),
        }
    }

    async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .expect("sent");
    }

    async fn input(&mut self, text: &str) {
        self.send(json!({"type": "input", "text": text})).await;
    }

    async fn next(&mut self) -> Value {
        let frame = next_frame(&mut self.ws).await;
        assert_eq!(frame["runtime_id"].as_str().unwrap_or(RT), RT);
        if frame["event"]["kind"] == "output" {
            assert_eq!(frame["event"]["stream"], "terminal");
            self.output
                .push_str(frame["event"]["text"].as_str().unwrap());
        }
        self.frames.push(frame.clone());
        frame
    }

    async fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(at) = self.output[self.mark..].find(needle) {
                self.mark += at + needle.len();
                return;
            }
            if tokio::time::timeout_at(deadline, self.next())
                .await
                .is_err()
            {
                panic!("no {needle:?} in {:?}", &self.output[self.mark..]);
            }
        }
    }

    async fn expect_frame(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = self.next().await;
            if matches(&frame) {
                return frame;
            }
        }
    }

    /// Types a command line and waits for its echo, then `expected` right after it,
    /// then the next prompt.
    async fn run(&mut self, line: &str, expected: &str) {
        self.input(&format!("{line}\r")).await;
        self.expect(&format!("{line}\r\n")).await;
        self.expect(expected).await;
        assert!(
            self.output[..self.mark].ends_with(&format!("{line}\r\n{expected}")),
            "{:?}",
            self.output
        );
        self.expect(PROMPT).await;
    }
}

async fn next_frame(ws: &mut Ws) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a frame in time")
            .expect("the stream is open")
            .expect("no protocol error");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected message {other:?}"),
        }
    }
}

async fn close_frame(ws: &mut Ws) -> (CloseCode, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a close in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return (frame.code, frame.reason.to_string()),
            Some(Ok(Message::Close(None))) | Some(Err(_)) | None => panic!("closed without a code"),
            Some(Ok(_)) => continue,
        }
    }
}

/// The terminal of a fresh snapshot, painted on an empty emulator of its size.
///
/// A new viewer through the backend gets the hub's latest snapshot and the events
/// after it, so it paints the snapshot, then applies what follows (until quiet).
async fn painted(world: &World, worker: &str) -> (Value, vt100::Parser) {
    let mut ws = world.events(worker, "").await;
    let snapshot = next_frame(&mut ws).await;
    let mut terminal = snapshot["event"]["terminal"].clone();
    let rows = u16::try_from(terminal["rows"].as_u64().unwrap()).unwrap();
    let cols = u16::try_from(terminal["cols"].as_u64().unwrap()).unwrap();
    let mut parser = vt100::Parser::new(rows.try_into().unwrap(), cols.try_into().unwrap(), 0);
    parser.process(terminal["screen"].as_str().unwrap().as_bytes());
    while let Ok(frame) =
        tokio::time::timeout(Duration::from_millis(500), next_frame(&mut ws)).await
    {
        if frame["event"]["kind"] == "output" {
            parser.process(frame["event"]["text"].as_str().unwrap().as_bytes());
        }
    }
    let (row, col) = parser.screen().cursor_position();
    terminal["alternate"] = parser.screen().alternate_screen().into();
    terminal["cursor"] = json!({"row": row, "col": col});
    (terminal, parser)
}

fn rows(parser: &vt100::Parser) -> Vec<String> {
    let (_, cols) = parser.screen().size();
    parser
        .screen()
        .rows(0, cols.get())
        .map(|r| r.trim_end().to_owned())
        .collect()
}

#[tokio::test]
async fn a_remote_shell_through_the_backend_prompt_arithmetic_size_and_ctrl_c() {
    let _serial = SERIAL.lock().await;
    let world = World::start().await;
    let sh = world.create("sh").await;
    let mut term = world.term(&sh).await;
    term.expect(PROMPT).await;
    term.run("echo $((6*7))", "42\r\n").await;
    term.run("stty size", "30 100\r\n").await;

    // Resize by REST, then by frame; the resized events come through the backend.
    let r = world
        .post(&sh, "resize", json!({"cols": 120, "rows": 40}))
        .await;
    assert_eq!(r.json, json!({"worker_id": sh, "cols": 120, "rows": 40}));
    term.expect_frame(|f| f["event"] == json!({"kind": "resized", "cols": 120, "rows": 40}))
        .await;
    term.run("stty size", "40 120\r\n").await;
    term.send(json!({"type": "resize", "cols": 90, "rows": 20}))
        .await;
    term.expect_frame(|f| f["event"]["kind"] == "resized").await;
    term.run("stty size", "20 90\r\n").await;

    // Ctrl-C by cancel and by input interrupts sleep; the shell survives.
    for (round, interrupt) in ["cancel", "input"].into_iter().enumerate() {
        // The job says so itself: it is the terminal's foreground job by then.
        term.input("sh -c 'echo sleeping; exec sleep 100'\r").await;
        term.expect("sleeping\r\n").await;
        let asked = Instant::now();
        if interrupt == "cancel" {
            assert_eq!(world.post(&sh, "cancel", json!({})).await.status, 200);
            term.expect_frame(|f| f["event"]["kind"] == "interrupted")
                .await;
        } else {
            term.input("\u{3}").await;
        }
        term.expect(PROMPT).await;
        assert!(asked.elapsed() < Duration::from_secs(50), "{interrupt}");
        term.run(
            &format!("echo alive-$(({round}+40))"),
            &format!("alive-{}", round + 40),
        )
        .await;
    }

    // A malformed frame closes with 1008; another viewer is not disturbed.
    let mut other = world.term(&sh).await;
    term.send(json!({"type": "input"})).await;
    let (code, reason) = close_frame(&mut term.ws).await;
    assert_eq!(code, CloseCode::Policy);
    assert_eq!(reason, "expected_input_or_resize_frame");
    other.input("echo other-$((2*3))\r").await;
    other.expect("other-6").await;

    // Input to an ended worker gets an error frame, and the connection stays open.
    assert_eq!(world.post(&sh, "stop", json!({})).await.status, 200);
    other
        .expect_frame(|f| f["event"]["kind"] == "status" && f["event"]["status"] == "stopped")
        .await;
    for _ in 0..2 {
        other.input("ls\r").await;
        let refused = other.expect_frame(|f| f["type"] == "error").await;
        assert_eq!(refused["error"]["code"], "worker_not_running", "{refused}");
        assert_eq!(refused["error"]["runtime_id"], RT);
    }
}

#[tokio::test]
async fn interactive_viewers_input_arrives_in_the_order_the_backend_received_it() {
    let _serial = SERIAL.lock().await;
    let world = World::start().await;
    let sh = world.create("sh").await;
    let mut a = world.term(&sh).await;
    let mut b = world.term(&sh).await;
    a.expect(PROMPT).await;
    // Keystrokes from two viewers, alternating, each sent after the previous one
    // was sent: the runtime records them in that order.
    let keys: Vec<String> = (0..30).map(|i| format!("{}", i % 10)).collect();
    for (i, key) in keys.iter().enumerate() {
        let viewer = if i % 2 == 0 { &mut a } else { &mut b };
        viewer.input(key).await;
        // Order between two sockets is only defined once the first has arrived.
        viewer
            .expect_frame(|f| f["event"]["kind"] == "input" && f["event"]["text"] == key.as_str())
            .await;
    }
    let inputs = |t: &Term| -> Vec<String> {
        t.frames
            .iter()
            .filter(|f| f["event"]["kind"] == "input")
            .map(|f| f["event"]["text"].as_str().unwrap().to_owned())
            .collect()
    };
    while inputs(&a).len() < keys.len() {
        a.next().await;
    }
    assert_eq!(inputs(&a), keys, "every viewer sees them in that order");
    // The runtime's transcript holds them in the same order.
    let page = world
        .api
        .get(&format!("{}/{sh}/transcript?limit=1000", world.workers()))
        .await;
    let recorded: Vec<String> = page.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "input")
        .map(|i| i["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recorded, keys);
}

#[tokio::test]
async fn a_full_screen_program_snapshot_paints_its_screen_through_the_backend() {
    let _serial = SERIAL.lock().await;
    let world = World::start().await;
    let sh = world.create("sh").await;
    let mut term = world.term(&sh).await;
    term.expect(PROMPT).await;
    term.run("echo before-the-program", "before-the-program\r\n")
        .await;
    let launch = format!("{} {}", python(), world.path("pattern.py").display());
    term.input(&format!("{launch}\r")).await;
    term.expect("PATTERN-TOP").await;
    let mut expected = vec![String::new(); 30];
    expected[0] = "PATTERN-TOP".into();
    for i in 0..5 {
        expected[2 + i] = format!("    row{i}:{}", "#".repeat(i + 1));
    }
    let deadline = Instant::now() + WAIT;
    // `painted` reads until the stream is quiet for a moment, which on a loaded
    // machine can come before the last of the program's output: look again until
    // the whole screen (rows and cursor) is there.
    let terminal = loop {
        let (terminal, screen) = painted(&world, &sh).await;
        if rows(&screen) == expected && screen.screen().cursor_position() == (8, 3) {
            break terminal;
        }
        assert!(
            Instant::now() < deadline,
            "{:#?} {:?}",
            rows(&screen),
            screen.screen().cursor_position()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(terminal["alternate"], true);
    assert_eq!(terminal["cursor"], json!({"row": 8, "col": 3}));

    term.input("q").await;
    term.expect(PROMPT).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let (terminal, screen) = painted(&world, &sh).await;
        let normal = rows(&screen);
        if terminal["alternate"] == false
            && normal.iter().any(|r| r == "before-the-program")
            && normal.iter().any(|r| r.ends_with(&launch))
            && !normal.iter().any(|r| r.contains("PATTERN"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alternate {}: {normal:#?}",
            terminal["alternate"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ten_mebibytes_arrive_complete_and_in_order_through_the_backend() {
    let _serial = SERIAL.lock().await;
    let world = World::start().await;
    let flood = world.create("flood").await;
    let detail = world.ended(&flood).await;
    assert_eq!(detail["status"], "exited");
    assert_eq!(detail["exit"], json!({"code": 0, "signal": null}));
    assert_eq!(detail["output_bytes"], FLOOD_LINES * 9);
    let mut text = String::with_capacity(FLOOD_LINES * 9);
    let mut after = 0;
    loop {
        let page = world
            .api
            .get(&format!(
                "{}/{flood}/transcript?after={after}&limit=1000",
                world.workers()
            ))
            .await;
        assert_eq!(page.status, 200, "{}", page.text());
        for item in page.json["items"].as_array().unwrap() {
            if item["kind"] == "output" {
                assert_eq!(item["stream"], "terminal");
                text.push_str(item["text"].as_str().unwrap());
            }
        }
        match page.json["next_after"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(text.len(), FLOOD_LINES * 9, "every byte arrived");
    for (i, line) in text.lines().enumerate() {
        assert_eq!(line, format!("{i:08}"), "line {i} in order");
    }
}

#[tokio::test]
async fn exit_codes_signals_and_stop_of_a_program_that_ignores_sighup() {
    let _serial = SERIAL.lock().await;
    let world = World::start().await;
    for (profile, exit) in [
        ("exit3", json!({"code": 3, "signal": null})),
        ("killed", json!({"code": null, "signal": 15})),
    ] {
        let worker = world.create(profile).await;
        let detail = world.ended(&worker).await;
        assert_eq!(detail["status"], "exited", "{profile}");
        assert_eq!(detail["exit"], exit, "{profile}");
    }
    let nohup = world.create("nohup").await;
    let mut term = Term::new(world.events(&nohup, "").await).await;
    term.expect("ready").await;
    assert_eq!(world.post(&nohup, "stop", json!({})).await.status, 200);
    let detail = world.ended(&nohup).await;
    assert_eq!(detail["status"], "stopped");
    assert_eq!(detail["exit"], json!({"code": null, "signal": 15}));
}

#[tokio::test]
async fn an_idle_worker_is_stopped_and_not_while_a_viewer_watches() {
    let _serial = SERIAL.lock().await;
    let world = World::start().await;
    // Watched through the backend: kept running well past its timeout. (Its idle
    // clock starts inside the create, so the viewer must be there within the
    // timeout: hence `idle-long`, not the 1 s `idle`.)
    let watched = world.create("idle-long").await;
    let mut viewer = Term::new(world.events(&watched, "").await).await;
    assert_eq!(viewer.snapshot["event"]["worker"]["status"], "running");
    let watched_since = Instant::now();
    // Unwatched: stopped after about a second, with a diagnostic first. The idle
    // clock starts when the runtime builds the worker, inside the create request:
    // measure from before it.
    let started = Instant::now();
    let unwatched = world.create("idle").await;
    let detail = world.ended(&unwatched).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(detail["status"], "stopped");
    let page = world
        .api
        .get(&format!("{}/{unwatched}/transcript", world.workers()))
        .await;
    assert!(
        page.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["note"] == "stopped"
                && i["text"]
                    .as_str()
                    .unwrap()
                    .contains("without input or viewer")),
        "{}",
        page.text()
    );
    // Watched for well past its timeout, it still runs.
    tokio::time::sleep_until(watched_since + Duration::from_secs(IDLE_LONG_S + 2)).await;
    assert_eq!(world.detail(&watched).await["status"], "running");
    // The watched one's viewer leaves; once nobody watches (the backend keeps its
    // upstream a short while after the last viewer), the clock runs out.
    viewer.ws.close(None).await.unwrap();
    drop(viewer);
    let detail = world.ended(&watched).await;
    assert_eq!(detail["status"], "stopped");
}

#[tokio::test]
async fn a_watching_viewer_sees_the_idle_diagnostic_before_the_stop() {
    let _serial = SERIAL.lock().await;
    let world = World::start().await;
    // `idle-long`: the first viewer must connect before the timeout runs out.
    let worker = world.create("idle-long").await;
    // Resume from the very start: the backend replays what the runtime logged.
    let mut first = Term::new(world.events(&worker, "").await).await;
    assert_eq!(first.snapshot["event"]["worker"]["status"], "running");
    let cursor = first.snapshot["cursor"].as_str().unwrap().to_owned();
    first.ws.close(None).await.unwrap();
    drop(first);
    let detail = world.ended(&worker).await;
    assert_eq!(detail["status"], "stopped");
    let mut resumed = world.events(&worker, &format!("?cursor={cursor}")).await;
    let mut kinds = Vec::new();
    loop {
        let frame = next_frame(&mut resumed).await;
        let kind = frame["event"]["kind"].as_str().unwrap_or("").to_owned();
        if kind == "diagnostic" {
            assert_eq!(frame["event"]["code"], "idle_timeout");
        }
        kinds.push(kind.clone());
        if kind == "status" && frame["event"]["status"] == "stopped" {
            break;
        }
    }
    let diagnostic = kinds.iter().position(|k| k == "diagnostic");
    assert!(diagnostic.is_some(), "{kinds:?}");
}
