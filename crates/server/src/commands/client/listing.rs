//! `switchyard runtimes` and `switchyard ls`: tables for people, `--json` for scripts.
//!
//! The JSON is the backend API's own shape (`{"runtimes":[...]}`;
//! `{"workers":[...],"unavailable":[...]}`, as `GET /api/workers` answers), written by
//! the same protocol types, so a script can rely on the API's documentation.

use serde::Serialize;
use switchyard_client::BackendClient;
use switchyard_protocol::{
    AllWorkersList, BackendRuntime, ExitInfo, RuntimeSourceKind, WorkerDetail, WorkerStatus,
};

use super::output::{Output, fit, table};
use super::{Failure, LsArgs, RuntimesArgs};

/// `switchyard runtimes [--json]`.
pub(super) async fn runtimes(client: &BackendClient, args: &RuntimesArgs) -> Result<u8, Failure> {
    let list = client
        .runtimes()
        .await
        .map_err(|e| Failure::client(client.url(), &e))?;
    let text = if args.json {
        json(&list)?
    } else {
        let rows: Vec<Vec<String>> = list.runtimes.iter().map(runtime_row).collect();
        table(
            &[
                "RUNTIME",
                "SOURCE",
                "STATE",
                "RUNNING",
                "WORKERS",
                "PROFILES",
                "NAME",
                "LAST ERROR",
            ],
            &rows,
        )
    };
    Output::new().out(text.as_bytes()).await?;
    Ok(0)
}

/// `switchyard ls [--runtime ID] [--status S] [--json]`. Runtimes that did not answer
/// are named on standard error (and listed under `unavailable` in the JSON); the
/// command still succeeds with what the others answered. So are runtimes with more
/// workers than the backend lists at once (`truncated`): `--runtime` pages through
/// one runtime's all.
pub(super) async fn ls(client: &BackendClient, args: &LsArgs) -> Result<u8, Failure> {
    let fail = |e| Failure::client(client.url(), &e);
    let list = match &args.runtime {
        Some(runtime) => AllWorkersList {
            workers: client
                .all_workers_of(runtime, args.status)
                .await
                .map_err(fail)?,
            unavailable: Vec::new(),
            truncated: Vec::new(),
        },
        None => client.all_workers(args.status).await.map_err(fail)?,
    };
    let mut output = Output::new();
    for entry in &list.unavailable {
        output
            .note(&format!(
                "warning: runtime {} did not answer: {}: {}",
                entry.runtime_id.as_str(),
                entry.error.code,
                entry.error.message
            ))
            .await;
    }
    for runtime in &list.truncated {
        output
            .note(&format!(
                "warning: runtime {0} has more workers than listed; `switchyard ls --runtime {0}` lists them all",
                runtime.as_str()
            ))
            .await;
    }
    let text = if args.json {
        json(&list)?
    } else {
        let rows: Vec<Vec<String>> = list.workers.iter().map(worker_row).collect();
        table(
            &[
                "WORKER", "PROFILE", "STATUS", "LABEL", "CREATED", "INPUTS", "OUTPUT",
            ],
            &rows,
        )
    };
    output.out(text.as_bytes()).await?;
    Ok(0)
}

/// Pretty JSON with a final newline.
fn json(value: &impl Serialize) -> Result<String, Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::new("internal", format!("could not encode JSON: {e}")))?;
    text.push('\n');
    Ok(text)
}

fn runtime_row(runtime: &BackendRuntime) -> Vec<String> {
    let total: u64 = WorkerStatus::ALL
        .iter()
        .map(|s| runtime.workers.get(*s))
        .sum();
    let profiles: Vec<&str> = runtime.profiles.iter().map(|p| p.name.as_str()).collect();
    vec![
        runtime.runtime_id.as_str().to_owned(),
        match runtime.source {
            RuntimeSourceKind::Embedded => "embedded",
            RuntimeSourceKind::Remote => "remote",
        }
        .to_owned(),
        wire_name(&runtime.state),
        runtime.workers.running.to_string(),
        total.to_string(),
        dash_if_empty(profiles.join(",")),
        cell(&runtime.display_name),
        runtime
            .last_error
            .as_ref()
            .map_or("-".to_owned(), |e| e.code.as_str().to_owned()),
    ]
}

/// A wire enum's name as the API writes it (`auth_failed`), for states this client
/// knows and newer ones alike.
pub(super) fn wire_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => "?".to_owned(),
    }
}

/// The widest a label is shown in `ls`'s table (`--json` has it whole).
const LABEL_COLUMNS: usize = 40;

fn worker_row(worker: &WorkerDetail) -> Vec<String> {
    vec![
        format!(
            "{}/{}",
            worker.runtime_id.as_str(),
            worker.worker_id.as_str()
        ),
        cell(&worker.profile),
        status_cell(worker.status, worker.exit),
        worker.label.as_deref().map_or("-".to_owned(), |l| {
            dash_if_empty(fit(&cell(l), LABEL_COLUMNS))
        }),
        short_time(&worker.created_at.0),
        worker.input_count.to_string(),
        bytes(worker.output_bytes),
    ]
}

/// `exited(0)`, `exited(signal 9)`, `stopped`, ...
fn status_cell(status: WorkerStatus, exit: Option<ExitInfo>) -> String {
    match (status, exit) {
        (WorkerStatus::Exited, Some(ExitInfo { code: Some(c), .. })) => format!("exited({c})"),
        (
            WorkerStatus::Exited,
            Some(ExitInfo {
                signal: Some(s), ..
            }),
        ) => {
            format!("exited(signal {s})")
        }
        (status, _) => status.as_str().to_owned(),
    }
}

/// `2026-11-26T09:30:00.123Z` as `2026-11-26 09:30:00`; anything else as it is.
fn short_time(at: &str) -> String {
    match at.get(..19) {
        Some(head) if at.as_bytes().get(10) == Some(&b'T') => head.replacen('T', " ", 1),
        _ => at.to_owned(),
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `3.0 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A table cell: control characters (a label's line break) become spaces.
fn cell(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn dash_if_empty(text: String) -> String {
    if text.trim().is_empty() {
        "-".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_for_people() {
        let exit = |code, signal| Some(ExitInfo { code, signal });
        let table = [
            (WorkerStatus::Exited, exit(Some(0), None), "exited(0)"),
            (
                WorkerStatus::Exited,
                exit(None, Some(9)),
                "exited(signal 9)",
            ),
            (WorkerStatus::Stopped, exit(None, Some(15)), "stopped"),
            (WorkerStatus::Running, None, "running"),
        ];
        for (status, exit, expected) in table {
            assert_eq!(status_cell(status, exit), expected);
        }
        assert_eq!(
            short_time("2026-11-26T09:30:00.123Z"),
            "2026-11-26 09:30:00"
        );
        assert_eq!(short_time("yesterday"), "yesterday");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(cell("a\nb"), "a b");
        assert_eq!(dash_if_empty(" ".into()), "-");
    }
}
