//! `cargo xtask demo`: a backend with an embedded runtime and one remote runtime, on
//! loopback, to try by hand. The remote is reached the way it should be across
//! hosts: over TLS with mutual authentication, with a CA and certificates generated
//! for the demo (rcgen). Ctrl-C stops both.

mod pki;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The body of the demo's `bash` profile: bash on a terminal, stopped after an hour
/// without input or viewer.
const BASH: &str = "kind = \"pty\"\ncommand = [\"/bin/bash\", \"--noprofile\", \"--norc\", \"-i\"]\n\
     cols = 100\nrows = 30\nidle_timeout_s = 3600\n\
     description = \"Bash on a terminal: resize it, type into it over the interactive WebSocket\"\n";

/// Builds the binary, starts a remote runtime and a backend that knows it, prints
/// what to try, and waits until both are stopped (Ctrl-C stops the process group).
pub fn demo() -> Result<(), String> {
    super::run("cargo", &["build", "--locked", "-p", "switchyard-server"])?;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let bin = Path::new(&target).join("debug").join("switchyard");
    let bin = bin.as_path();
    let dir = std::env::temp_dir().join(format!("switchyard-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))
    };
    write(
        "runtime.token",
        &format!("demo-{:x}\n", std::process::id() as u64 * 2_654_435_761),
    )?;
    pki::generate(&dir)?;
    write(
        "runtime.toml",
        &format!(
            "runtime_id = \"demo-remote\"\ndisplay_name = \"Demo remote runtime\"\n\n\
             [tls]\ncert_file = \"tls/runtime.crt\"\nkey_file = \"tls/runtime.key\"\n\
             client_ca_file = \"tls/ca.crt\"\n\n\
             [profiles.shell]\nkind = \"process\"\ncommand = [\"/bin/sh\", \"-i\"]\n\
             description = \"An interactive POSIX shell\"\n\n\
             [profiles.slow-echo]\nkind = \"echo\"\ndelay_ms = 500\n\n\
             [profiles.bash]\n{BASH}"
        ),
    )?;
    let (mut runtime, runtime_addr) = start(
        bin,
        &[
            "runtime",
            "--listen",
            "127.0.0.1:0",
            "--config",
            &path(&dir, "runtime.toml"),
            "--token-file",
            &path(&dir, "runtime.token"),
            "--data-dir",
            &path(&dir, "runtime-data"),
        ],
    )?;
    write(
        "backend.toml",
        &format!(
            "[embedded]\nruntime_id = \"local\"\ndisplay_name = \"This machine\"\n\n\
             [embedded.profiles.bash]\n{BASH}\n\
             [[remote]]\nruntime_id = \"remote\"\ndisplay_name = \"Demo remote\"\n\
             base_url = \"{runtime_addr}\"\ntoken_file = \"runtime.token\"\n\
             ca_file = \"tls/ca.crt\"\n\
             client_cert_file = \"tls/backend.crt\"\nclient_key_file = \"tls/backend.key\"\n"
        ),
    )?;
    let (mut backend, backend_addr) = start(
        bin,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            &path(&dir, "backend.toml"),
        ],
    )?;
    println!(
        "\nSwitchyard demo (files in {dir}):\n  backend  {backend_addr}  (embedded runtime `local`, remote runtime `remote`)\n  runtime  {runtime_addr}  (HTTPS with client certificates: the backend is its only client; token in runtime.token)\n\nOpen the console: {backend_addr}/  (a `bash` worker there is a terminal you can type into)\n\nOr try:\n  curl -s {backend_addr}/api/runtimes\n  curl -s -H 'content-type: application/json' -d '{{\"profile\":\"shell\"}}' {backend_addr}/api/runtimes/remote/workers\n  curl -s -H 'content-type: application/json' -d '{{\"text\":\"echo hello\\n\"}}' {backend_addr}/api/runtimes/remote/workers/<worker_id>/input\n  curl -s {backend_addr}/api/runtimes/remote/workers/<worker_id>/transcript\n  curl -s {backend_addr}/api/workers\n\nA terminal (bash on a pty, here or on the remote):\n  curl -s -H 'content-type: application/json' -d '{{\"profile\":\"bash\"}}' {backend_addr}/api/runtimes/local/workers\n  SWITCHYARD_URL={backend_addr} {bin} attach local/<worker_id>   # Ctrl-] detaches\n  curl -s -H 'content-type: application/json' -d '{{\"text\":\"ls --color\\r\"}}' {backend_addr}/api/runtimes/local/workers/<worker_id>/input\n  curl -s -H 'content-type: application/json' -d '{{\"cols\":120,\"rows\":40}}' {backend_addr}/api/runtimes/local/workers/<worker_id>/resize\n  interactive: {ws_addr}/api/runtimes/local/workers/<worker_id>/events/ws?interactive=true\n    (send {{\"type\":\"input\",\"text\":\"...\"}} and {{\"type\":\"resize\",\"cols\":..,\"rows\":..}} frames;\n     the snapshot's terminal.screen paints the current screen)\n\nThe runtime itself, as the backend reaches it (TLS, client certificate, token):\n  cd {dir} && curl -s --cacert tls/ca.crt --cert tls/backend.crt --key tls/backend.key -H \"Authorization: Bearer $(cat runtime.token)\" {runtime_addr}/v1/runtime\n  curl -s --cacert {dir}/tls/ca.crt {runtime_addr}/v1/health   # refused: no client certificate\n\nCtrl-C stops both.",
        dir = dir.display(),
        bin = bin.display(),
        ws_addr = backend_addr.replacen("http://", "ws://", 1),
    );
    let _ = backend.wait();
    let _ = runtime.kill();
    let _ = runtime.wait();
    Ok(())
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// Starts `bin args` and returns it with the URL from its `listening on` line.
fn start(bin: &Path, args: &[&str]) -> Result<(Child, String), String> {
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .map_err(|e| format!("reading its first line: {e}"))?;
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line {first:?}"))?
        .to_owned();
    Ok((child, url))
}
