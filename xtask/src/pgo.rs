//! `cargo xtask pgo`: the `switchyard` binary built with profile-guided optimisation.
//!
//! 1. An instrumented release build (`-Cprofile-generate`) into `target/pgo-generate`.
//! 2. The training workload: every benchmark scenario once, briefly
//!    (`switchyard-bench --quick`: REST through the backend to embedded and remote
//!    runtimes, event streams, fan-out, large lists, TLS, keystrokes), run on that
//!    build; each of its processes writes its counts when it exits.
//! 3. `llvm-profdata merge` (rustup's `llvm-tools` component, added when missing).
//! 4. The release build again with those counts (`-Cprofile-use`) into `target/pgo`:
//!    [`optimised_binary`]. LLVM lays out and inlines the hot paths by them, which
//!    takes about a sixth off the backend's user time per relayed request at one
//!    connection (docs/bench/ANALYSIS.md).
//!
//! Both builds name the host target explicitly (`--target`), so that `RUSTFLAGS`
//! reach the binary's code but not build scripts or procedural macros. It takes two
//! release builds with link-time optimisation: about 12 minutes on 2 CPUs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{run, run_env, workspace_root};

/// What the report says of a binary built here.
pub const DESCRIPTION: &str =
    "release, link-time and profile-guided optimisation (`cargo xtask pgo`)";

/// `cargo xtask pgo`: builds [`optimised_binary`].
pub fn pgo() -> Result<(), String> {
    let started = std::time::Instant::now();
    let root = workspace_root();
    let host = host_triple()?;
    let profdata = llvm_profdata(&host)?;
    let data = root.join("target/pgo-data");
    let raw = data.join("raw");
    // Counts from an earlier run (of other code) would skew this one.
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&raw).map_err(|e| format!("creating {} ({e})", raw.display()))?;

    let generate_dir = root.join("target/pgo-generate");
    build(
        &host,
        &generate_dir,
        &format!("-Cprofile-generate={}", raw.display()),
    )?;
    let instrumented = binary(&generate_dir, &host);

    // The training run's own build, and the run, with every process's counts in
    // a file of its own (`%p`), whatever the instrumented build's default.
    run(
        "cargo",
        &["build", "--release", "--locked", "-p", "switchyard-bench"],
    )?;
    let bench = root.join("target/release/switchyard-bench");
    let pattern = raw.join("switchyard-%m-%p.profraw");
    run_env(
        &bench.to_string_lossy(),
        &["--quick", "--switchyard", &instrumented.to_string_lossy()],
        &[("LLVM_PROFILE_FILE", &pattern.to_string_lossy())],
    )?;

    let merged = data.join("switchyard.profdata");
    let mut merge = vec!["merge".to_owned(), "-o".to_owned(), path_arg(&merged)];
    let raws = raw_profiles(&raw)?;
    merge.extend(raws.iter().map(|p| path_arg(p)));
    let merge: Vec<&str> = merge.iter().map(String::as_str).collect();
    run(&profdata.to_string_lossy(), &merge)?;

    // Named by its content: cargo knows a build by its flags, not by the files they
    // name, so a new profile under the old name would leave every crate it already
    // built as it was.
    let profile = named_by_content(&merged)?;
    build(
        &host,
        &root.join("target/pgo"),
        &format!("-Cprofile-use={}", profile.display()),
    )?;
    eprintln!(
        "xtask: {} built from {} profiles in {} s",
        optimised_binary()?.display(),
        raws.len(),
        started.elapsed().as_secs()
    );
    Ok(())
}

/// The binary `cargo xtask pgo` builds: `target/pgo/<host>/release/switchyard`.
pub fn optimised_binary() -> Result<PathBuf, String> {
    Ok(binary(
        &workspace_root().join("target/pgo"),
        &host_triple()?,
    ))
}

/// A release build of the `switchyard` binary for `host` into `target_dir`, with
/// `rustflags` (which replace any `RUSTFLAGS` of the caller's).
fn build(host: &str, target_dir: &Path, rustflags: &str) -> Result<(), String> {
    let target_dir = path_arg(target_dir);
    run_env(
        "cargo",
        &[
            "build",
            "--release",
            "--locked",
            "-p",
            "switchyard-server",
            "--bin",
            "switchyard",
            "--target",
            host,
            "--target-dir",
            &target_dir,
        ],
        &[("RUSTFLAGS", rustflags)],
    )
}

/// `file` renamed to `<stem>-<hash of its bytes>.profdata` beside it.
fn named_by_content(file: &Path) -> Result<PathBuf, String> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(file).map_err(|e| format!("reading {} ({e})", file.display()))?;
    let mut hasher = std::hash::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let stem = file.file_stem().unwrap_or_default().to_string_lossy();
    let named = file.with_file_name(format!("{stem}-{:016x}.profdata", hasher.finish()));
    std::fs::rename(file, &named).map_err(|e| format!("renaming {} ({e})", file.display()))?;
    Ok(named)
}

/// `target_dir/<host>/release/switchyard`.
fn binary(target_dir: &Path, host: &str) -> PathBuf {
    target_dir.join(host).join("release/switchyard")
}

/// The `.profraw` files the training run left in `dir`; none is an error (the
/// processes did not exit cleanly, or the build was not instrumented).
fn raw_profiles(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {} ({e})", dir.display()))?;
    let raws: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "profraw"))
        .collect();
    if raws.is_empty() {
        return Err(format!(
            "the training run left no profiles in {}: its processes must exit, not be killed",
            dir.display()
        ));
    }
    Ok(raws)
}

/// rustc's host target, from `rustc -vV`.
fn host_triple() -> Result<String, String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV ({e})"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV names no host".to_owned())
}

/// The toolchain's `llvm-profdata` (the one that reads this rustc's LLVM's
/// profiles; a system LLVM of another version cannot), adding rustup's
/// `llvm-tools` component if it is missing.
fn llvm_profdata(host: &str) -> Result<PathBuf, String> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("rustc --print sysroot ({e})"))?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let tool = Path::new(&sysroot)
        .join("lib/rustlib")
        .join(host)
        .join("bin/llvm-profdata");
    if !tool.is_file() {
        run("rustup", &["component", "add", "llvm-tools"])
            .map_err(|e| format!("{e} (llvm-profdata comes with rustup's llvm-tools)"))?;
    }
    if tool.is_file() {
        Ok(tool)
    } else {
        Err(format!(
            "{} is still missing after adding llvm-tools",
            tool.display()
        ))
    }
}

/// A path as a command-line argument.
fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
