//! What the report says about the machine, the code and the tools.

use std::fs;
use std::path::Path;
use std::process::Command;

/// The facts printed at the top of the report.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// CPU model name.
    pub cpu_model: String,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// Operating system and kernel.
    pub os: String,
    /// `git rev-parse --short HEAD`, with a note if the tree has local changes.
    pub commit: String,
    /// How the `switchyard` binary was built (`--build`).
    pub build: String,
    /// UTC date and time of the run.
    pub date: String,
    /// nginx, wrk, rustc and perf versions.
    pub tools: Vec<String>,
    /// `/proc/loadavg` before the run.
    pub load_before: String,
}

impl Machine {
    /// Gathers the facts; `root` is the workspace (for git), `build` how the binary
    /// was built.
    pub fn gather(root: &Path, build: &str) -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let memory_kib: f64 = fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let pretty = fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default();
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut commit =
            output(
                Command::new("git")
                    .current_dir(root)
                    .args(["rev-parse", "--short", "HEAD"]),
            )
            .unwrap_or_else(|| "unknown".to_owned());
        let dirty = output(Command::new("git").current_dir(root).args([
            "status",
            "--porcelain",
            "--untracked-files=no",
        ]))
        .is_some_and(|s| !s.is_empty());
        if dirty {
            commit.push_str(" (with uncommitted changes)");
        }
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map(|d| format!("{} UTC", d.get(..16).unwrap_or(&d).replace('T', " ")))
            .unwrap_or_default();
        let tools = [
            ("nginx", &["-v"][..]),
            ("wrk", &["-v"][..]),
            ("rustc", &["--version"][..]),
            ("perf", &["--version"][..]),
        ]
        .iter()
        .filter_map(|(tool, args)| {
            let out = Command::new(tool).args(*args).output().ok()?;
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let first = text.lines().next()?.trim().to_owned();
            Some(
                first
                    .trim_start_matches("nginx version: ")
                    .split(" Copyright")
                    .next()
                    .unwrap_or(&first)
                    .to_owned(),
            )
        })
        .collect();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_gib: memory_kib / 1024.0 / 1024.0,
            os: format!("{pretty}, Linux {}", kernel.trim()),
            commit,
            build: build.to_owned(),
            date,
            tools,
            load_before: load_average(),
        }
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
