//! `switchyard run`, `send`, `stop`, `cancel` and `rm`: one call each (and a few
//! retries where the backend asks for them).

use std::io::IsTerminal as _;
use std::time::Duration;

use switchyard_client::{BackendClient, ClientError, WorkerRef};
use switchyard_protocol::{ErrorCode, InputAccepted, NewWorkerRequest, ProfileKind, WorkerStatus};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::output::Output;
use super::{Failure, RmArgs, RunArgs, SendArgs};

/// How long `send` (and attach's line input) keeps retrying a `worker_busy` input.
const BUSY_RETRY_FOR: Duration = Duration::from_secs(10);

/// The most `send -` reads of standard input: a backend's default request body
/// limit (`max_body_bytes`, 1 MiB; a runtime's own `max_input_bytes` is 64 KiB by
/// default, and the backend does not say a runtime's limit). Input up to it is sent
/// and refused by the backend when over the runtime's limit, as an argument is;
/// more is refused here after reading one byte past it. `attach` holds a line of
/// standard input to the same bound.
pub(super) const MAX_STDIN_BYTES: u64 = 1024 * 1024;

/// How long `rm --force` waits for a stopped worker to end.
const STOP_WAIT: Duration = Duration::from_secs(15);

/// `switchyard run RUNTIME PROFILE [--label L] [--attach] [--json]`: prints the new
/// worker's address, `RUNTIME/WORKER` (or its detail as JSON), or attaches to it. A
/// worker that failed to start (its program could not be run) is still printed, and
/// is then an error (`worker_failed`, exit 1), so that a script notices.
pub(super) async fn run(client: &BackendClient, args: &RunArgs) -> Result<u8, Failure> {
    let no_terminal = args.attach && !std::io::stdin().is_terminal();
    if no_terminal {
        refuse_terminal_profile(client, args).await?;
    }
    let request = NewWorkerRequest {
        profile: args.profile.clone(),
        label: args.label.clone(),
    };
    let detail = client
        .create_worker(&args.runtime, &request)
        .await
        .map_err(|e| Failure::client(client.url(), &e))?;
    let worker = WorkerRef::new(detail.runtime_id.clone(), detail.worker_id.clone());
    if args.attach {
        let attached = super::attach::attach(client, &worker).await;
        return match attached {
            // A terminal worker after all (a kind the profile list does not call
            // `pty`, or a list that changed since): nobody else knows its id, so it
            // is not left running.
            Err(failure) if no_terminal && failure.code() == NOT_A_TTY => {
                let _ = client.stop(&worker).await;
                let removed = remove_when_ended(client, &worker).await;
                Err(Failure::new(
                    NOT_A_TTY,
                    format!(
                        "{}; the worker was {}",
                        failure.message(),
                        if removed {
                            "stopped and removed"
                        } else {
                            "stopped"
                        }
                    ),
                ))
            }
            other => other,
        };
    }
    let text = if args.json {
        let mut text = serde_json::to_string_pretty(&detail)
            .map_err(|e| Failure::new("internal", format!("could not encode JSON: {e}")))?;
        text.push('\n');
        text
    } else {
        format!("{worker}\n")
    };
    Output::new().out(text.as_bytes()).await?;
    if detail.status == WorkerStatus::Failed {
        return Err(Failure::new(
            "worker_failed",
            format!("{worker} failed to start; `switchyard logs {worker}` says why"),
        ));
    }
    Ok(0)
}

/// The code of attaching to a terminal worker without a terminal.
const NOT_A_TTY: &str = "not_a_tty";

/// `run --attach` without a terminal: a profile that runs on a terminal (`pty`, as
/// the runtime's profile list says) could not be attached to, so it is refused
/// before a worker is started. When the list cannot be read, the create call says
/// what is wrong.
async fn refuse_terminal_profile(client: &BackendClient, args: &RunArgs) -> Result<(), Failure> {
    let Ok(runtime) = client.runtime(&args.runtime).await else {
        return Ok(());
    };
    let pty = runtime
        .profiles
        .iter()
        .any(|p| p.name == args.profile && p.kind == ProfileKind::Pty);
    if pty {
        return Err(Failure::new(
            NOT_A_TTY,
            format!(
                "profile {} of runtime {} runs on a terminal, and --attach needs one to \
                 attach from; nothing was started. Run it without --attach, then watch it \
                 with `switchyard logs -f` and type into it with `switchyard send`",
                args.profile, args.runtime
            ),
        ));
    }
    Ok(())
}

/// Removes `worker` once it has ended (waiting up to [`STOP_WAIT`]); whether it was
/// removed.
async fn remove_when_ended(client: &BackendClient, worker: &WorkerRef) -> bool {
    let give_up = Instant::now() + STOP_WAIT;
    loop {
        match client.worker(worker).await {
            Ok(detail) if detail.status.is_ended() => {
                return client.delete(worker).await.is_ok();
            }
            Ok(_) if Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => return false,
        }
    }
}

/// `switchyard send RUNTIME/WORKER TEXT [-n]`: sends TEXT plus a newline (none with
/// `-n`); TEXT `-` sends all of standard input as it is.
pub(super) async fn send(client: &BackendClient, args: &SendArgs) -> Result<u8, Failure> {
    let text = if args.text == "-" {
        let mut bytes = Vec::new();
        tokio::io::stdin()
            .take(MAX_STDIN_BYTES + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| {
                Failure::new(
                    "input_failed",
                    format!("could not read standard input: {e}"),
                )
            })?;
        if bytes.len() as u64 > MAX_STDIN_BYTES {
            // Refused as the backend refuses an input over its limit, without
            // reading (or holding) any more of it.
            return Err(Failure::new(
                ErrorCode::PayloadTooLarge.as_str(),
                format!(
                    "standard input is over {MAX_STDIN_BYTES} bytes, the most `send -` reads \
                     (and more than a backend takes with its default limits); nothing was \
                     sent: send it in parts"
                ),
            ));
        }
        if bytes.is_empty() {
            // An empty input would be recorded as one, and is most often a closed
            // or forgotten standard input.
            return Err(Failure::usage(
                "invalid_input",
                "standard input was empty; nothing was sent",
            ));
        }
        String::from_utf8(bytes).map_err(|_| {
            Failure::usage(
                "invalid_input",
                "standard input is not UTF-8 text; inputs are text",
            )
        })?
    } else if args.no_newline {
        args.text.clone()
    } else {
        format!("{}\n", args.text)
    };
    send_input(client, &args.worker, &text)
        .await
        .map_err(|e| Failure::client(client.url(), &e))?;
    Ok(0)
}

/// Sends one input, retrying while the worker's input queue is full (`worker_busy`,
/// after the backend's `retry_after_ms` or 100 ms) for up to 10 s. A `worker_busy`
/// after that says how long it was retried and what to do (the backend's own
/// message says to retry shortly, which has been done).
pub(super) async fn send_input(
    client: &BackendClient,
    worker: &WorkerRef,
    text: &str,
) -> Result<InputAccepted, ClientError> {
    let started = Instant::now();
    let give_up = started + BUSY_RETRY_FOR;
    loop {
        match client.input(worker, text).await {
            Err(ClientError::Api(error))
                if error.is(ErrorCode::WorkerBusy) && Instant::now() < give_up =>
            {
                let wait = error.retry_after_ms.unwrap_or(100).clamp(10, 2000);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            Err(ClientError::Api(mut error)) if error.is(ErrorCode::WorkerBusy) => {
                error.message = format!(
                    "{worker} was still busy after {} s of retries: its input queue stayed \
                     full. Wait until it has worked through its input (`switchyard logs -f \
                     {worker}` shows it), or cancel its current work, then send again",
                    started.elapsed().as_secs_f64().round()
                );
                return Err(ClientError::Api(error));
            }
            other => return other,
        }
    }
}

/// `switchyard stop RUNTIME/WORKER`: prints `RUNTIME/WORKER <status>`.
pub(super) async fn stop(client: &BackendClient, worker: &WorkerRef) -> Result<u8, Failure> {
    let answer = client
        .stop(worker)
        .await
        .map_err(|e| Failure::client(client.url(), &e))?;
    let line = format!("{worker} {}\n", answer.status);
    Output::new().out(line.as_bytes()).await?;
    Ok(0)
}

/// `switchyard cancel RUNTIME/WORKER`: prints `RUNTIME/WORKER <status>`.
pub(super) async fn cancel(client: &BackendClient, worker: &WorkerRef) -> Result<u8, Failure> {
    let answer = client
        .cancel(worker)
        .await
        .map_err(|e| Failure::client(client.url(), &e))?;
    let line = format!("{worker} {}\n", answer.status);
    Output::new().out(line.as_bytes()).await?;
    Ok(0)
}

/// `switchyard rm RUNTIME/WORKER [-f]`: removes an ended worker; with `--force` a
/// running one is stopped first (and waited for, up to 15 s). Prints
/// `RUNTIME/WORKER removed`.
pub(super) async fn rm(client: &BackendClient, args: &RmArgs) -> Result<u8, Failure> {
    let fail = |e: ClientError| Failure::client(client.url(), &e);
    let worker = &args.worker;
    if args.force {
        let mut status = client.stop(worker).await.map_err(fail)?.status;
        let give_up = Instant::now() + STOP_WAIT;
        while !status.is_ended() {
            if Instant::now() >= give_up {
                return Err(Failure::new(
                    ErrorCode::WorkerRunning.as_str(),
                    format!("{worker} is still {status} after a stop; try again shortly"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            status = client.worker(worker).await.map_err(fail)?.status;
        }
    }
    client.delete(worker).await.map_err(fail)?;
    Output::new()
        .out(format!("{worker} removed\n").as_bytes())
        .await?;
    Ok(0)
}
