//! Where CPU time goes: per-process CPU time from `/proc`, and `perf record` /
//! `perf report` flat profiles of a process while a load runs.

use std::collections::HashMap;
use std::fs;
use std::future::Future;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Result;
use crate::stack::find_tool;

/// Clock ticks per second in `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// CPU seconds used so far by `pid`: the sum of its live threads' run time from
/// `/proc/<pid>/task/*/schedstat` (nanoseconds), else user + system time from
/// `/proc/<pid>/stat` (10 ms ticks, but counting threads that have ended).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    if let Some(seconds) = schedstat_seconds(pid) {
        return Ok(seconds);
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state(3) ppid(4) ... utime(14) stime(15), so indices 11 and 12.
    let utime: f64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: f64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok((utime + stime) / USER_HZ)
}

fn schedstat_seconds(pid: u32) -> Option<f64> {
    let mut total = 0u64;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may end between listing and reading: skip it.
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total as f64 / 1e9)
}

/// CPU seconds used so far by `pid` and its direct children (nginx's workers).
pub fn cpu_seconds_with_children(pid: u32) -> Result<f64> {
    let mut total = cpu_seconds(pid)?;
    for child in children_of(pid) {
        total += cpu_seconds(child).unwrap_or(0.0);
    }
    Ok(total)
}

/// Watches how much CPU processes outside the benchmark's own tree use: user
/// processes only (kernel threads such as ksoftirqd work for the benchmark's own
/// traffic), from their threads' run time in `schedstat`. A process that starts and
/// ends between two looks is missed, so this is a lower bound.
#[derive(Debug, Clone)]
pub struct ForeignLoad {
    seen: HashMap<u32, f64>,
    at: std::time::Instant,
}

impl ForeignLoad {
    /// Starts watching now.
    pub fn start() -> Result<Self> {
        Ok(Self {
            seen: foreign_processes(),
            at: std::time::Instant::now(),
        })
    }

    /// CPUs used on average since [`ForeignLoad::start`] by other processes.
    pub fn cpus(&self) -> Result<f64> {
        let now = foreign_processes();
        let used: f64 = now
            .iter()
            .map(|(pid, secs)| (secs - self.seen.get(pid).copied().unwrap_or(0.0)).max(0.0))
            .sum();
        Ok(used / self.at.elapsed().as_secs_f64().max(1e-3))
    }
}

/// Samples other processes' CPU use twice a second in the background, so processes
/// that come and go between a scenario's start and end are counted too.
#[derive(Debug)]
pub struct ForeignMonitor {
    total: Arc<Mutex<f64>>,
    stop: Arc<AtomicBool>,
}

impl ForeignMonitor {
    /// Starts the sampling thread.
    pub fn start() -> Self {
        let total = Arc::new(Mutex::new(0.0));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (total.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut last = foreign_processes();
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(500));
                let now = foreign_processes();
                let used: f64 = now
                    .iter()
                    .map(|(pid, secs)| (secs - last.get(pid).copied().unwrap_or(0.0)).max(0.0))
                    .sum();
                *t.lock().unwrap_or_else(|p| p.into_inner()) += used;
                last = now;
            }
        });
        Self { total, stop }
    }

    /// CPU seconds other processes have used since the monitor started.
    pub fn seconds(&self) -> f64 {
        *self.total.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for ForeignMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Run time so far of every user process outside this process's tree.
fn foreign_processes() -> HashMap<u32, f64> {
    let mut own = vec![std::process::id()];
    let mut i = 0;
    while i < own.len() {
        own.extend(children_of(own[i]));
        i += 1;
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| !own.contains(pid) && !is_kernel_thread(*pid))
        .filter_map(|pid| Some((pid, schedstat_seconds(pid)?)))
        .collect()
}

/// Kernel threads have no command line.
fn is_kernel_thread(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline")).map_or(true, |c| c.is_empty())
}

/// The process ids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|candidate| {
            fs::read_to_string(format!("/proc/{candidate}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.to_owned();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// A flat profile of one process under one load.
#[derive(Debug, Clone)]
pub struct Profile {
    /// What ran while the process was sampled.
    pub title: String,
    /// Share of samples per shared object (binary, libc, kernel), largest first.
    pub by_object: Vec<(f64, String)>,
    /// Share of samples per symbol, largest first.
    pub by_symbol: Vec<(f64, String)>,
}

/// Whether `perf` is installed and can sample (it may be missing or not permitted).
pub fn perf_available() -> bool {
    find_tool("perf").is_some()
        && Command::new("perf")
            .args(["record", "-q", "-o", "/dev/null", "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Samples `pid` with `perf record` while `load` runs, then summarises the samples.
pub async fn record<F, T>(pid: u32, title: &str, scratch: &Path, load: F) -> Result<(Profile, T)>
where
    F: Future<Output = Result<T>>,
{
    let data = scratch.join(format!("perf-{pid}-{}.data", title.len()));
    let mut perf = Command::new("perf")
        .args(["record", "-q", "-F", "999", "-p", &pid.to_string(), "-o"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting perf ({e})"))?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let outcome = load.await;
    let _ = kill(Pid::from_raw(perf.id() as i32), Signal::SIGINT);
    let _ = perf.wait();
    let value = outcome?;
    let by_object = report(&data, "dso", 8)?;
    let by_symbol = report(&data, "dso,symbol", 20)?;
    Ok((
        Profile {
            title: title.to_owned(),
            by_object,
            by_symbol,
        },
        value,
    ))
}

fn report(data: &Path, sort: &str, keep: usize) -> Result<Vec<(f64, String)>> {
    let output = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "-q",
            "--sort",
            sort,
            "-i",
        ])
        .arg(data)
        .stderr(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(parse_report(&text).into_iter().take(keep).collect())
}

/// Reads `perf report --stdio -q` lines: `  12.34%  object  [.] symbol`.
pub fn parse_report(text: &str) -> Vec<(f64, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let (share, rest) = line.split_once('%')?;
            let share: f64 = share.trim().parse().ok()?;
            // perf pads with columns it leaves empty ("-").
            let mut words: Vec<&str> = rest.split_whitespace().collect();
            while words.last() == Some(&"-") {
                words.pop();
            }
            let name = words.join(" ");
            Some((share, name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_perf_reports() {
        let text = "    12.50%  switchyard        [.] hyper::proto::h1::role::parse   -   -\n\
                    \n     3.25%  [kernel.kallsyms]  [k] tcp_sendmsg\n";
        let rows = parse_report(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, 12.5);
        assert_eq!(rows[0].1, "switchyard [.] hyper::proto::h1::role::parse");
    }

    #[test]
    fn reads_cpu_times() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        assert!(ForeignLoad::start().unwrap().cpus().unwrap() >= 0.0);
    }
}
