//! `cargo xtask cluster | cluster-test | scaling`: the multi-host set-up of
//! `cluster/` (runtime hosts in network namespaces, replicas behind HAProxy).
//!
//! - `cluster [--runtimes N] [--replicas N]`: starts one to try by hand; Ctrl-C
//!   removes everything.
//! - `cluster-test [--release] [--write-docs] [filter]`: the failure scenarios
//!   (`cluster/tests/scenarios.rs`, ignored by the ordinary test run), one at a time.
//!   Where network namespaces cannot be created it says so and skips them, unless
//!   `SWITCHYARD_REQUIRE_CLUSTER=1` (CI), where that is a failure. As root it
//!   installs HAProxy and nftables from Debian when missing. `--release` tests the
//!   release binary (the figures in docs/SCALING.md come from such a run);
//!   `--write-docs` puts the scenarios' figures into docs/SCALING.md.
//! - `scaling [--quick]`: the aggregate-list curve against 1 to 1,000 simulated
//!   runtimes with the release binary, written into docs/SCALING.md and
//!   docs/scaling/*.svg; `--quick` runs small counts with the debug build and
//!   writes nothing (it keeps the code working).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The environment variable that turns a skip into a failure.
const REQUIRE: &str = "SWITCHYARD_REQUIRE_CLUSTER";

fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| super::workspace_root().join("target"))
}

/// Builds the `switchyard` binary and the cluster crate in one cargo invocation, so
/// that their shared dependencies are built once with one set of features (built
/// apart, each build would undo the other's features and rebuild ring, rustls and
/// the rest every time). Returns the profile's directory.
fn build(release: bool) -> Result<PathBuf, String> {
    let mut args = vec![
        "build",
        "--locked",
        "-p",
        "switchyard-server",
        "-p",
        "switchyard-cluster",
    ];
    if release {
        args.push("--release");
    }
    super::run("cargo", &args)?;
    Ok(target_dir().join(if release { "release" } else { "debug" }))
}

/// `cargo xtask cluster`.
pub fn cluster(extra: &[String]) -> Result<(), String> {
    let bins = build(false)?;
    let switchyard = bins.join("switchyard").display().to_string();
    let mut args = vec!["up", "--switchyard", switchyard.as_str()];
    args.extend(extra.iter().map(String::as_str));
    let program = bins.join("switchyard-cluster").display().to_string();
    super::run(&program, &args)
}

/// `cargo xtask cluster-test`.
pub fn cluster_test(extra: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let release = extra.iter().any(|a| a == "--release");
    let write_docs = extra.iter().any(|a| a == "--write-docs");
    let filters: Vec<&str> = extra
        .iter()
        .map(String::as_str)
        .filter(|a| !matches!(*a, "--release" | "--write-docs"))
        .collect();
    let debug = build(false)?;
    let bins = if release { build(true)? } else { debug.clone() };
    let checked = Command::new(debug.join("switchyard-cluster"))
        .arg("check")
        .status()
        .map_err(|e| format!("switchyard-cluster check ({e})"))?;
    match checked.code() {
        Some(0) => {}
        Some(3) if std::env::var(REQUIRE).as_deref() != Ok("1") => {
            eprintln!(
                "\nxtask: SKIPPED the cluster tests: this machine cannot run them (the reason is above). \
                 They need root (or CAP_NET_ADMIN) for network namespaces, and HAProxy and nftables. \
                 Set {REQUIRE}=1 to make this a failure.\n"
            );
            return Ok(());
        }
        _ => return Err("the cluster prerequisites (switchyard-cluster check)".into()),
    }
    let figures = target_dir().join("cluster-figures");
    let _ = std::fs::remove_dir_all(&figures);
    let switchyard = bins.join("switchyard");
    let result = run_scenarios(&switchyard, &figures, &filters);
    let gathered = gather(&figures);
    eprintln!("\n{gathered}");
    if write_docs && result.is_ok() {
        let build = if release { "release" } else { "debug" };
        write_block(
            "cluster-figures",
            &format!("{}\n{gathered}", run_line(build)),
        )?;
    }
    eprintln!(
        "xtask: cluster tests took {} s including the builds",
        started.elapsed().as_secs()
    );
    result
}

fn run_scenarios(switchyard: &Path, figures: &Path, filters: &[&str]) -> Result<(), String> {
    let has_nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let mut args: Vec<&str> = if has_nextest {
        vec![
            "nextest",
            "run",
            "--locked",
            "-p",
            "switchyard-cluster",
            "--test",
            "scenarios",
            "--run-ignored",
            "only",
            "--test-threads",
            "1",
            "--no-fail-fast",
            "--no-capture",
        ]
    } else {
        vec![
            "test",
            "--locked",
            "-p",
            "switchyard-cluster",
            "--test",
            "scenarios",
        ]
    };
    if has_nextest {
        args.extend(filters);
    } else {
        args.extend(filters);
        args.extend(["--", "--ignored", "--test-threads", "1", "--nocapture"]);
    }
    let line = format!("cargo {}", args.join(" "));
    eprintln!("xtask: running {line}");
    let status = super::without_run_env(Command::new("cargo").args(&args))
        .env("SWITCHYARD_BIN", switchyard)
        .env("SWITCHYARD_CLUSTER_FIGURES", figures)
        .status()
        .map_err(|e| format!("{line} ({e})"))?;
    if status.success() { Ok(()) } else { Err(line) }
}

/// Every scenario's figures, in file-name order.
fn gather(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `Run on <date> at <commit> (<cpus> CPUs, <build> build).`
fn run_line(build: &str) -> String {
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .current_dir(super::workspace_root())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "Measured {} at commit {} ({cpus} CPUs shared with the load generator, {build} build).\n",
        output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        output("git", &["rev-parse", "--short", "HEAD"]),
    )
}

/// Replaces the `name` block of docs/SCALING.md with `body`.
fn write_block(name: &str, body: &str) -> Result<(), String> {
    let path = super::workspace_root().join("docs/SCALING.md");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {} ({e})", path.display()))?;
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let start = text
        .find(&begin)
        .map(|i| i + begin.len())
        .ok_or_else(|| format!("{} has no {begin}", path.display()))?;
    let stop = text[start..]
        .find(&end)
        .map(|i| start + i)
        .ok_or_else(|| format!("{} has no {end}", path.display()))?;
    let updated = format!("{}\n{}\n{}", &text[..start], body.trim_end(), &text[stop..]);
    std::fs::write(&path, updated).map_err(|e| format!("writing {} ({e})", path.display()))?;
    eprintln!("xtask: wrote the figures into {}", path.display());
    Ok(())
}

/// `cargo xtask scaling`.
pub fn scaling(extra: &[String]) -> Result<(), String> {
    let started = Instant::now();
    let quick = extra.iter().any(|a| a == "--quick");
    let bins = build(!quick)?;
    let tool = bins.clone();
    let switchyard = bins.join("switchyard").display().to_string();
    let root = super::workspace_root();
    let doc = root.join("docs/SCALING.md").display().to_string();
    let plots = root.join("docs/scaling").display().to_string();
    let mut args = vec!["scale", "--switchyard", switchyard.as_str()];
    if quick {
        args.push("--quick");
    } else {
        args.extend(["--doc", doc.as_str(), "--plots", plots.as_str()]);
    }
    let program = tool.join("switchyard-cluster").display().to_string();
    let result = super::run(&program, &args);
    eprintln!(
        "xtask: scaling took {} s including the builds",
        started.elapsed().as_secs()
    );
    result
}
