//! `cargo xtask api-test [st run args]`: schemathesis against live processes.
//!
//! Builds the binary, installs schemathesis (pinned, from PyPI) in its own virtual
//! environment under `target/schemathesis-venv` when it is missing, then starts, on
//! loopback with auth on everywhere:
//!
//! - a `switchyard runtime` with a token and a data directory (the file store);
//! - a `switchyard serve` whose `local` runtime is embedded (with a data directory),
//!   with `[auth]` and an admin token;
//! - a `switchyard serve` whose `local` runtime is the live runtime above, reached
//!   over the Runtime API, with `[auth]` and an admin token.
//!
//! and runs `st run` against each one's own document (`/v1/openapi.json`,
//! `/api/openapi.json`) with every check schemathesis has, positive and negative
//! data, in every phase (examples, coverage, fuzzing, stateful), with the settings of
//! `tests/schemathesis/schemathesis.toml`. `local` is the runtime id the document's
//! examples name, so the stateful phase drives real workers on both kinds of runtime.
//!
//! Beyond schemathesis' own checks, the run fails when a process died during it, logged
//! a panic, or did not shut down cleanly on SIGTERM. Extra arguments go to every `st
//! run` after the defaults (e.g. `--max-examples 200` or `--seed N`); reports and
//! process logs are kept in `target/api-test/`.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The schemathesis release the tests are written against.
const SCHEMATHESIS: &str = "4.32.5";

/// Test cases per operation and phase: enough to find the usual mistakes while the
/// three runs together take about a minute on two cores.
const MAX_EXAMPLES: &str = "50";

/// Workers each runtime under test may run at once.
const MAX_WORKERS: u32 = 20_000;

/// Runs the command.
pub fn api_test(extra: &[String]) -> Result<(), String> {
    let started = Instant::now();
    super::run("cargo", &["build", "--locked", "-p", "switchyard-server"])?;
    let root = super::workspace_root();
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = target.join("debug").join("switchyard");
    let st = ensure_schemathesis(&target.join("schemathesis-venv"))?;
    let work = target.join("api-test");
    if work.exists() {
        fs::remove_dir_all(&work).map_err(|e| format!("clearing {}: {e}", work.display()))?;
    }
    fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let config = root.join("tests/schemathesis/schemathesis.toml");

    let runtime_token = random_token()?;
    let admin_token = random_token()?;
    write(&work.join("runtime.token"), &runtime_token)?;
    // Every successful create leaves a running echo worker (cheap, in-process), and the
    // runtime serves two runs: room for all of them, so that `429
    // worker_limit_reached` is not what the runs end up testing.
    write(
        &work.join("runtime.toml"),
        &format!("max_workers = {MAX_WORKERS}\n"),
    )?;
    let runtime = Server::start(
        &bin,
        "runtime",
        &work,
        &[
            "runtime",
            "--listen",
            "127.0.0.1:0",
            "--runtime-id",
            "local",
            "--config",
            &path(&work, "runtime.toml"),
            "--token-file",
            &path(&work, "runtime.token"),
            "--data-dir",
            &path(&work, "runtime-data"),
        ],
    )?;
    let auth = format!(
        "[auth]\n\n[[auth.token]]\nname = \"api-test\"\ntoken_sha256 = \"{}\"\nrole = \"admin\"\n",
        sha256_hex(&admin_token)
    );
    write(
        &work.join("backend-embedded.toml"),
        &format!(
            "[embedded]\nruntime_id = \"local\"\ndisplay_name = \"Embedded\"\n\
             data_dir = \"{}\"\nmax_workers = {MAX_WORKERS}\n\n{auth}",
            path(&work, "embedded-data")
        ),
    )?;
    write(
        &work.join("backend-remote.toml"),
        &format!(
            "[[remote]]\nruntime_id = \"local\"\ndisplay_name = \"Remote\"\n\
             base_url = \"{}\"\ntoken_file = \"{}\"\n\n{auth}",
            runtime.url,
            path(&work, "runtime.token")
        ),
    )?;
    let embedded = Server::start(&bin, "backend-embedded", &work, &serve(&work, "embedded"))?;
    let remote = Server::start(&bin, "backend-remote", &work, &serve(&work, "remote"))?;

    // (server, its document, its token), stopped in reverse order.
    let mut runs = [
        (runtime, "/v1/openapi.json", &runtime_token),
        (embedded, "/api/openapi.json", &admin_token),
        (remote, "/api/openapi.json", &admin_token),
    ];
    let mut failed = Vec::new();
    for (server, document, token) in &mut runs {
        let name = server.name;
        let report_dir = work.join(format!("report-{name}"));
        let mut args = vec![
            "--config-file".to_owned(),
            config.display().to_string(),
            "run".to_owned(),
            format!("{}{document}", server.url),
            "--header".to_owned(),
            format!("Authorization: Bearer {token}"),
            "--max-examples".to_owned(),
            MAX_EXAMPLES.to_owned(),
            "--report".to_owned(),
            "junit,ndjson".to_owned(),
            "--report-dir".to_owned(),
            report_dir.display().to_string(),
        ];
        args.extend(extra.iter().cloned());
        eprintln!("xtask: schemathesis against the {name} ({})", server.url);
        let status = Command::new(&st)
            .args(&args)
            .current_dir(&work)
            .status()
            .map_err(|e| format!("starting {}: {e}", st.display()))?;
        if !status.success() {
            failed.push(format!("schemathesis against the {name}"));
        }
        if let Some(problem) = server.problem() {
            failed.push(problem);
        }
    }
    for (server, _, _) in runs.iter_mut().rev() {
        if let Err(problem) = server.stop() {
            failed.push(problem);
        }
    }
    eprintln!(
        "xtask: api-test took {} s including the build (reports and logs in {})",
        started.elapsed().as_secs(),
        work.display()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("api-test ({})", failed.join("; ")))
    }
}

/// The arguments of a `switchyard serve` with `backend-{name}.toml`.
fn serve(work: &Path, name: &str) -> Vec<String> {
    ["serve", "--listen", "127.0.0.1:0", "--config"]
        .into_iter()
        .map(str::to_owned)
        .chain([path(work, &format!("backend-{name}.toml"))])
        .collect()
}

/// A process under test: its URL, and its standard error in `{name}.log`.
struct Server {
    name: &'static str,
    child: Child,
    url: String,
    log: PathBuf,
}

impl Server {
    /// Starts `bin args` and waits for its `listening on` line.
    fn start(
        bin: &Path,
        name: &'static str,
        work: &Path,
        args: &[impl AsRef<std::ffi::OsStr>],
    ) -> Result<Self, String> {
        let log = work.join(format!("{name}.log"));
        let stderr =
            fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let mut child = Command::new(bin)
            .args(args)
            .current_dir(work)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout);
        let mut first = String::new();
        let read = lines.read_line(&mut first);
        // Whatever else it prints is drained so that it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
        let url = match (read, first.trim().strip_prefix("listening on ")) {
            (Ok(_), Some(url)) => url.to_owned(),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the {name} did not start (first line {first:?}; see {})",
                    log.display()
                ));
            }
        };
        Ok(Self {
            name,
            child,
            url,
            log,
        })
    }

    /// What went wrong with the process so far, if anything: it ended, or it logged a
    /// panic.
    fn problem(&mut self) -> Option<String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(format!("the {} ended during the run ({status})", self.name));
        }
        self.panicked()
    }

    /// A panic in its log: Rust's own "thread '…' panicked at file:line" (a request
    /// path in a log line cannot hold the space).
    fn panicked(&self) -> Option<String> {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        log.contains(" panicked at ")
            .then(|| format!("the {} panicked (see {})", self.name, self.log.display()))
    }

    /// SIGTERM, then a clean exit within 10 s (else SIGKILL and an error).
    fn stop(&mut self) -> Result<(), String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(format!("the {} had ended ({status})", self.name));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(format!("the {} exited with {status} on SIGTERM", self.name));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(format!("waiting for the {}: {e}", self.name)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(format!(
            "the {} did not stop within 10 s of SIGTERM",
            self.name
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The venv's `st`, after installing the pinned schemathesis when it is not there.
fn ensure_schemathesis(venv: &Path) -> Result<PathBuf, String> {
    let st = venv.join("bin/st");
    let installed = Command::new(&st)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .ends_with(SCHEMATHESIS)
        })
        .unwrap_or(false);
    if installed {
        return Ok(st);
    }
    let venv_arg = venv.display().to_string();
    if !venv.join("bin/pip").exists() && super::run("python3", &["-m", "venv", &venv_arg]).is_err()
    {
        // Debian splits venv support out of python3.
        if !is_root() {
            return Err("python3 -m venv (install Debian's python3-venv)".into());
        }
        super::run("apt-get", &["update", "-qq"])?;
        super::run(
            "apt-get",
            &[
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "python3-venv",
            ],
        )?;
        let _ = fs::remove_dir_all(venv);
        super::run("python3", &["-m", "venv", &venv_arg])?;
    }
    let pip = venv.join("bin/pip").display().to_string();
    super::run(
        &pip,
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("schemathesis=={SCHEMATHESIS}"),
        ],
    )?;
    Ok(st)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A random token for this run only (20 bytes from the kernel's generator).
fn random_token() -> Result<String, String> {
    use std::io::Read;
    let mut bytes = [0u8; 20];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

fn write(file: &Path, text: &str) -> Result<(), String> {
    fs::write(file, text).map_err(|e| format!("writing {}: {e}", file.display()))
}
