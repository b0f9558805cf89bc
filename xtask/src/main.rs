//! `cargo xtask`: the project's automation.
//!
//! - `cargo xtask ci`: format check, clippy with `-D warnings`, every test, the API
//!   documentation without warnings, and the out-of-tree crate
//!   (`tests/fixtures/out-of-tree/`) built, linted and tested against the crates.
//! - `cargo xtask test`: every test (cargo-nextest when installed, else cargo test).
//! - `cargo xtask bench [--quick | --no-pgo]`: builds the release binary with
//!   profile-guided optimisation (`cargo xtask pgo`; `--no-pgo`: the plain release
//!   build) and runs the benchmarks (`bench/`), which write `docs/BENCHMARKS.md` and
//!   the plots in `docs/bench/`; `--quick` runs every scenario briefly, on the debug
//!   build, and writes to a temporary directory (its figures say nothing; it checks
//!   the benchmarks run).
//! - `cargo xtask pgo`: `target/pgo/<host>/release/switchyard`, the release binary
//!   optimised with a profile of the benchmarks' workload (see `pgo.rs`).
//! - `cargo xtask demo`: a backend with an embedded and a remote runtime to try by hand.
//! - `cargo xtask vendor-console [--check]`: fetches, verifies and writes the pinned
//!   xterm.js files the console serves (`crates/server/console/vendor/`).
//! - `cargo xtask browser-test [--screenshots] [playwright args]`: the console in
//!   Debian's Chromium, driven by Playwright, against the real binary (`tests/browser/`).
//! - `cargo xtask api-test [st run args]`: schemathesis (PyPI, in a virtual environment
//!   under `target/`) against a live runtime and live backends, auth on, against their
//!   OpenAPI documents (`tests/schemathesis/`).
//! - `cargo xtask cluster [--runtimes N] [--replicas N]`: runtime hosts in network
//!   namespaces and backend replicas behind HAProxy, to try by hand (root).
//! - `cargo xtask cluster-test [--release] [--write-docs] [filter]`: the failure
//!   scenarios on such a cluster (skipped, saying why, without the privilege).
//! - `cargo xtask scaling [--quick]`: the aggregate-list curve, written into
//!   docs/SCALING.md and docs/scaling/.

mod api_test;
mod browser;
mod cluster;
mod demo;
mod pgo;
mod vendor;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("pgo") => pgo::pgo(),
        Some("demo") => demo::demo(),
        Some("vendor-console") => vendor::vendor_console(&args[1..]),
        Some("browser-test") => browser::browser_test(&args[1..]),
        Some("api-test") => api_test::api_test(&args[1..]),
        Some("cluster") => cluster::cluster(&args[1..]),
        Some("cluster-test") => cluster::cluster_test(&args[1..]),
        Some("scaling") => cluster::scaling(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | test [filter] | bench [--quick | --no-pgo] | pgo | demo | vendor-console [--check] | browser-test [--screenshots] [args] | api-test [st run args] | cluster [--runtimes N] [--replicas N] | cluster-test [--release] [--write-docs] [filter] | scaling [--quick]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(step) => {
            eprintln!("xtask: {step} failed");
            ExitCode::FAILURE
        }
    }
}

fn ci() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    test(&[])?;
    docs()?;
    out_of_tree()
}

/// `cargo doc` of every crate, failing on any rustdoc warning (broken links,
/// malformed examples).
fn docs() -> Result<(), String> {
    run_env(
        "cargo",
        &["doc", "--no-deps", "--workspace", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
}

/// The crate outside the workspace that depends on its crates by path, as a user's
/// would: formatted, linted, built and tested. It shares the workspace's target
/// directory (and, on purpose, its dependencies' features), so only the workspace's
/// own crates and the fixture are compiled again. Its lock file is the workspace's,
/// copied in first (cargo drops what it does not use), so it uses exactly the
/// workspace's locked versions and never drifts from them.
fn out_of_tree() -> Result<(), String> {
    let root = workspace_root();
    let fixture = root.join("tests/fixtures/out-of-tree");
    std::fs::copy(root.join("Cargo.lock"), fixture.join("Cargo.lock"))
        .map_err(|e| format!("copying Cargo.lock into the out-of-tree fixture ({e})"))?;
    let manifest = fixture.join("Cargo.toml");
    let manifest = manifest.to_str().ok_or("the fixture's path is not UTF-8")?;
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| root.join("target").to_string_lossy().into_owned());
    let env = [("CARGO_TARGET_DIR", target.as_str())];
    run_env(
        "cargo",
        &["fmt", "--manifest-path", manifest, "--", "--check"],
        &env,
    )?;
    run_env(
        "cargo",
        &[
            "clippy",
            "--manifest-path",
            manifest,
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &env,
    )?;
    run_env("cargo", &["test", "--manifest-path", manifest], &env)
}

fn test(extra: &[String]) -> Result<(), String> {
    let has_nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let mut args: Vec<&str> = if has_nextest {
        vec![
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ]
    } else {
        vec!["test", "--workspace", "--locked", "--no-fail-fast"]
    };
    args.extend(extra.iter().map(String::as_str));
    run("cargo", &args)?;
    // nextest does not run doctests.
    if has_nextest {
        run("cargo", &["test", "--workspace", "--locked", "--doc"])?;
    }
    Ok(())
}

fn bench(extra: &[String]) -> Result<(), String> {
    let started = std::time::Instant::now();
    // `--quick` judges no speed, only that every scenario still runs: the debug
    // build (which the tests have built already) does for that, and spares CI the
    // release build with link-time optimisation (about 8 minutes on 2 CPUs).
    let quick = extra.iter().any(|a| a == "--quick");
    let pgo = !quick && !extra.iter().any(|a| a == "--no-pgo");
    let extra: Vec<&str> = extra
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--no-pgo")
        .collect();
    let chosen = extra.iter().any(|a| a.starts_with("--switchyard"));
    let profile: &[&str] = if quick { &[] } else { &["--release"] };
    if !pgo || chosen {
        let mut build = vec!["build"];
        build.extend(profile);
        build.extend(["--locked", "-p", "switchyard-server"]);
        run("cargo", &build)?;
    }
    let mut args = vec!["run"];
    args.extend(profile);
    args.extend(["--locked", "-p", "switchyard-bench", "--"]);
    let debug_binary = workspace_root().join("target/debug/switchyard");
    let debug_binary = debug_binary.to_string_lossy();
    let optimised = if pgo && !chosen {
        pgo::pgo()?;
        pgo::optimised_binary()?.to_string_lossy().into_owned()
    } else {
        String::new()
    };
    if quick && !chosen {
        args.extend(["--switchyard", &debug_binary, "--build", "debug"]);
    } else if pgo && !chosen {
        args.extend(["--switchyard", &optimised, "--build", pgo::DESCRIPTION]);
    }
    args.extend(extra.iter().copied());
    let result = run("cargo", &args);
    eprintln!(
        "xtask: bench took {} s including the build",
        started.elapsed().as_secs()
    );
    result
}

/// The workspace's root directory (where the top-level Cargo.toml is).
pub(crate) fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Like [`run`], with `env` added to the environment.
pub(crate) fn run_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let line = format!("{program} {}", args.join(" "));
    eprintln!("xtask: running {line}");
    let status = without_run_env(&mut Command::new(program))
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("{line} ({e})"))?;
    if status.success() { Ok(()) } else { Err(line) }
}

pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let line = format!("{program} {}", args.join(" "));
    eprintln!("xtask: running {line}");
    let status = without_run_env(Command::new(program).args(args))
        .status()
        .map_err(|e| format!("{line} ({e})"))?;
    if status.success() { Ok(()) } else { Err(line) }
}

/// `command` without the variables `cargo run` set for xtask itself
/// (`CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, ...). ring's build script watches them,
/// so a cargo started from here with them would rebuild ring, and everything above
/// it, on every run (and the next `cargo xtask` would rebuild it back).
pub(crate) fn without_run_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            )
        {
            command.env_remove(name);
        }
    }
    command
}
