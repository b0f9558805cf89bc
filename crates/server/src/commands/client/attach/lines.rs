//! Attaching to a worker that is not a terminal (`echo`, `process`): its transcript
//! is streamed as `logs -f` streams it (the snapshot's last items first, for context;
//! then live), except for the lines sent from here, which the local terminal already
//! echoed: inputs from anyone else (another `send`, the console) are shown as
//! `[input] ...` lines. Lines of standard input are sent as inputs over REST, in
//! order.
//!
//! On a terminal: the terminal keeps its line editing; Enter sends the line, Ctrl-C
//! cancels the worker's in-flight work (`cancel`), Ctrl-] or Ctrl-D on an empty line
//! detaches. From a pipe or file: every line is sent; at the end of input, once they
//! all are, attach goes on showing the worker's output until it ends and exits with
//! its status, as on a terminal (`printf 'exit 3\n' | switchyard attach W` exits 3);
//! SIGINT (130), SIGTERM or SIGHUP (0), or a Ctrl-] byte in the input detach
//! instead. A line that was refused ends attach at the end of input with status 1
//! (nobody watches a pipe's notes: the input did not all reach the worker, so what
//! follows is not what the script meant). A token that may only watch
//! (`forbidden`) is told once; later lines are read but not sent. A line over
//! 1 MiB (`send -`'s bound) is not read further: once the lines before it are
//! sent, attach ends with `payload_too_large` (exit 1), as `send -` does.

use switchyard_client::{BackendClient, ClientError, Followed, Follower, Incoming, WorkerRef};
use switchyard_protocol::{ErrorCode, TranscriptItem, WorkerDetail};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::stdin::{self, Split, StdinEnd, StdinReader};
use super::{Hangups, ended_line, exit_status, final_status, tty};
use crate::commands::client::Failure;
use crate::commands::client::logs::{disconnected_line, upstream_line};
use crate::commands::client::output::Output;
use crate::commands::client::own_inputs::OwnInputs;
use crate::commands::client::printer::Printer;
use crate::commands::client::transcript_view::{Step, TranscriptView};
use crate::commands::client::worker::send_input;

/// Runs line mode from the stream's first snapshot on.
pub(super) async fn run(
    client: &BackendClient,
    mut follower: Follower,
    detail: &WorkerDetail,
    transcript: &[TranscriptItem],
) -> Result<u8, Failure> {
    let worker = follower.worker().clone();
    let fail = |e| Failure::client(client.url(), &e);
    let mut out = Output::new();
    let after = match transcript.first() {
        Some(first) => first.sequence.saturating_sub(1),
        // No items to show for context: start at the end.
        None => {
            client
                .transcript(&worker, 0, Some(1))
                .await
                .map_err(fail)?
                .total
        }
    };
    // The lines sent from here are not shown again (the terminal echoed them); every
    // other input is.
    let own = OwnInputs::new();
    let mut view =
        TranscriptView::new(client, &worker, after, Printer::new(true)).without(own.clone());
    view.show(transcript, &mut out).await?;
    if detail.status.is_ended() {
        let code = exit_status(detail.status, detail.exit);
        out.note(&ended_line(&worker, detail.status, code)).await;
        return Ok(code);
    }

    let tty = tty::stdin_is_terminal();
    let _detach_key = if tty { tty::DetachKey::install() } else { None };
    if tty {
        out.note(&format!(
            "switchyard: attached to {worker}; Enter sends a line, Ctrl-C cancels the \
             worker's current work, Ctrl-] or Ctrl-D detaches"
        ))
        .await;
    }
    let StdinReader { text, mut end } = stdin::spawn(Split::Lines { tty }).map_err(|e| {
        Failure::new(
            "internal",
            format!("could not start reading standard input: {e}"),
        )
    })?;
    let mut sender = tokio::spawn(send_lines(client.clone(), worker.clone(), text, tty, own));
    // A pipe's input has ended and every line was sent: only the worker's end (or a
    // signal) ends attach now.
    let mut input_done = false;
    let mut hangups = Hangups::new(false)?;
    let mut interrupts = signal(SignalKind::interrupt())
        .map_err(|e| Failure::new("internal", format!("could not handle SIGINT: {e}")))?;

    loop {
        tokio::select! {
            followed = follower.next() => match followed.map_err(fail)? {
                Followed::Frame(Incoming::Event { event, .. }) => {
                    if let Step::Ended(status) = view.event(&event, &mut out).await? {
                        follower.close().await;
                        return Ok(final_status(client, &worker, status).await);
                    }
                }
                Followed::Frame(Incoming::Upstream { state, error }) => {
                    out.note(&upstream_line(&worker, state, error.as_ref())).await;
                }
                Followed::Frame(_) => {}
                Followed::Disconnected(end) => out.note(&disconnected_line(&end)).await,
                Followed::Reconnected => out.note("switchyard: reconnected").await,
                _ => {}
            },
            ended = &mut end, if !input_done => {
                // Whatever was typed before Ctrl-] or the end of input is sent first.
                let refused = (&mut sender).await.unwrap_or(0);
                if matches!(ended, Ok(StdinEnd::TooLong)) {
                    follower.close().await;
                    return Err(line_too_long());
                }
                if !tty && matches!(ended, Ok(StdinEnd::Eof)) && refused == 0 {
                    input_done = true;
                    continue;
                }
                follower.close().await;
                if tty {
                    // The terminal echoed ^] in mid-line.
                    out.note_apart(&format!("switchyard: detached from {worker}; it keeps running"))
                        .await;
                }
                // From a pipe nobody saw the notes: a refused line fails the command.
                return Ok(u8::from(!tty && refused > 0));
            }
            _ = interrupts.recv() => {
                if !tty {
                    follower.close().await;
                    return Ok(130);
                }
                if let Err(error) = client.cancel(&worker).await {
                    let failure = Failure::client(client.url(), &error);
                    out.note(&format!("switchyard: cancel failed: {}", failure.describe()))
                        .await;
                }
            }
            _ = hangups.recv() => {
                follower.close().await;
                return Ok(0);
            }
        }
    }
}

/// A line of standard input over [`stdin::MAX_LINE_BYTES`]: refused as `send -`
/// refuses input over the bound (and the backend an input over its limit).
fn line_too_long() -> Failure {
    Failure::new(
        ErrorCode::PayloadTooLarge.as_str(),
        format!(
            "a line of standard input is over {} bytes, the most attach sends as one \
             input (and more than a backend takes with its default limits); it was not \
             sent, and attach stopped reading there",
            stdin::MAX_LINE_BYTES
        ),
    )
}

/// Sends each line as an input, in order; a refused one is reported on standard
/// error and the next ones are still tried, except after a `forbidden` (a token
/// that may only watch): that is said once, and later lines are read but not sent.
/// Each line is registered in `own` before it is posted (its event may come before
/// the answer), and forgotten there when it is refused. Returns how many lines were
/// not sent.
async fn send_lines(
    client: BackendClient,
    worker: WorkerRef,
    mut lines: mpsc::Receiver<String>,
    tty: bool,
    own: OwnInputs,
) -> usize {
    let mut out = Output::new();
    let mut may_send = true;
    let mut refused = 0;
    while let Some(line) = lines.recv().await {
        if !may_send {
            refused += 1;
            continue;
        }
        let ticket = own.sending(&line);
        let error = match send_input(&client, &worker, &line).await {
            Ok(accepted) => {
                own.accepted(ticket, accepted.sequence);
                None
            }
            Err(error) => {
                // A refusal (4xx) recorded nothing; without an answer the line may
                // have been recorded, and is kept until a later one is seen.
                if matches!(&error, ClientError::Api(api) if api.status.is_some_and(|s| s < 500)) {
                    own.refused(ticket);
                }
                Some(error)
            }
        };
        if let Some(error) = error {
            refused += 1;
            let failure = Failure::client(client.url(), &error);
            let hint = if error.is(ErrorCode::Forbidden) {
                may_send = false;
                if tty {
                    "; this token may only watch: lines typed here are not sent (Ctrl-] or Ctrl-D detaches)"
                } else {
                    "; this token may only watch: the other lines are not sent"
                }
            } else {
                ""
            };
            out.note(&format!(
                "switchyard: input not sent: {}{hint}",
                failure.describe()
            ))
            .await;
        }
    }
    refused
}
