//! `cargo xtask browser-test [--screenshots] [playwright args]`: the console's tests
//! in a real browser. Builds the binary, installs what is missing (Debian's `chromium`
//! through apt when running as root; the npm packages of `tests/browser` with
//! `npm ci`), then runs the page's unit tests (`node --test`) and the Playwright tests
//! against the real `switchyard` binary. `--screenshots` writes the README's
//! screenshots to `docs/screenshots/`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Debian's Chromium, which Playwright drives (its own browser download is not used).
const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs the command.
pub fn browser_test(extra: &[String]) -> Result<(), String> {
    let started = Instant::now();
    super::run("cargo", &["build", "--locked", "-p", "switchyard-server"])?;
    let root = super::workspace_root();
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin = target.join("debug").join("switchyard");
    let chromium = std::env::var("SWITCHYARD_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
    ensure_chromium(&chromium)?;
    ensure_node()?;
    let dir = root.join("tests/browser");
    ensure_packages(&dir)?;
    run_in(&dir, "node", &["--test", "unit/"], &[])?;
    let screenshots = extra.iter().any(|a| a == "--screenshots");
    let mut args = vec!["playwright", "test"];
    args.extend(
        extra
            .iter()
            .map(String::as_str)
            .filter(|a| *a != "--screenshots"),
    );
    let result = run_in(
        &dir,
        "npx",
        &args,
        &[
            ("SWITCHYARD_BIN", bin.display().to_string()),
            ("SWITCHYARD_CHROMIUM", chromium),
            (
                "SWITCHYARD_SCREENSHOTS",
                if screenshots { "1" } else { "0" }.into(),
            ),
        ],
    );
    eprintln!(
        "xtask: browser tests took {} s including the build",
        started.elapsed().as_secs()
    );
    result
}

fn ensure_chromium(chromium: &str) -> Result<(), String> {
    if Path::new(chromium).exists() {
        return Ok(());
    }
    if chromium != CHROMIUM || !is_root() {
        return Err(format!(
            "{chromium} is missing: install Debian's chromium package (apt-get install chromium) \
             or point SWITCHYARD_CHROMIUM at a Chromium binary"
        ));
    }
    super::run("apt-get", &["update", "-qq"])?;
    run_in(
        Path::new("/"),
        "apt-get",
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "chromium",
        ],
        &[("DEBIAN_FRONTEND", "noninteractive".into())],
    )
}

fn ensure_node() -> Result<(), String> {
    let works = |program: &str| {
        Command::new(program)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if works("node") && works("npm") {
        Ok(())
    } else {
        Err("node and npm are needed (Node.js 20 or newer) to run the browser tests".into())
    }
}

/// `npm ci` unless the pinned `@playwright/test` is already installed.
fn ensure_packages(dir: &Path) -> Result<(), String> {
    let pinned = version_in(
        &dir.join("package.json"),
        &["devDependencies", "@playwright/test"],
    );
    let installed = version_in(
        &dir.join("node_modules/@playwright/test/package.json"),
        &["version"],
    );
    if pinned.is_some() && pinned == installed {
        return Ok(());
    }
    run_in(
        dir,
        "npm",
        &["ci", "--no-audit", "--no-fund"],
        &[("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1".into())],
    )
}

fn version_in(file: &Path, keys: &[&str]) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut value: serde_json::Value = serde_json::from_str(&text).ok()?;
    for key in keys {
        value = value.get(key)?.clone();
    }
    value.as_str().map(str::to_owned)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run_in(dir: &Path, program: &str, args: &[&str], envs: &[(&str, String)]) -> Result<(), String> {
    let line = format!("{program} {}", args.join(" "));
    eprintln!("xtask: running {line} (in {})", dir.display());
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .status()
        .map_err(|e| format!("{line} ({e})"))?;
    if status.success() { Ok(()) } else { Err(line) }
}
