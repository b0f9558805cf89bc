//! `switchyard logs RUNTIME/WORKER [-f] [--tail N]`: the transcript from the start
//! (or its last N items), then, with `-f`, live events until the worker ends, riding
//! through dropped connections and backend restarts without losing or repeating a
//! line (see [`TranscriptView`]).

use switchyard_client::{BackendClient, Followed, Follower, Incoming, StreamEnd, WorkerRef};
use switchyard_protocol::UpstreamState;

use super::output::Output;
use super::printer::Printer;
use super::transcript_view::{Step, TranscriptView};
use super::{Failure, LogsArgs};

/// `switchyard logs`.
pub(super) async fn logs(client: &BackendClient, args: &LogsArgs) -> Result<u8, Failure> {
    let fail = |e| Failure::client(client.url(), &e);
    let worker = &args.worker;
    let start = match args.tail {
        None => 0,
        Some(n) => {
            let page = client.transcript(worker, 0, Some(1)).await.map_err(fail)?;
            page.total.saturating_sub(n)
        }
    };
    let mut out = Output::new();
    let mut view = TranscriptView::new(client, worker, start, Printer::new(true));
    view.catch_up(&mut out)
        .await
        .map_err(|e| e.into_failure(client))?;
    if !args.follow {
        return Ok(0);
    }
    let mut follower = Follower::new(client.clone(), worker.clone(), false);
    let mut reader_gone = std::pin::pin!(super::output::stdout_reader_gone());
    loop {
        let followed = tokio::select! {
            followed = follower.next() => followed.map_err(fail)?,
            // Nobody reads any more (`| head` has what it wanted): done, as a
            // failed write would have said at the next line.
            () = &mut reader_gone => {
                follower.close().await;
                return Ok(0);
            }
        };
        match followed {
            Followed::Frame(Incoming::Event { event, .. }) => {
                if let Step::Ended(_) = view.event(&event, &mut out).await? {
                    follower.close().await;
                    return Ok(0);
                }
            }
            Followed::Frame(Incoming::Upstream { state, error }) => {
                out.note(&upstream_line(worker, state, error.as_ref()))
                    .await;
            }
            // A reset is followed by a snapshot, which the view catches up from;
            // unknown events and refusals (only on interactive sockets) add nothing.
            // (And frames newer than this client.)
            Followed::Frame(_) => {}
            Followed::Disconnected(end) => out.note(&disconnected_line(&end)).await,
            Followed::Reconnected => out.note("switchyard: reconnected").await,
            _ => {}
        }
    }
}

/// The status line for a dropped connection.
pub(super) fn disconnected_line(end: &StreamEnd) -> String {
    format!("switchyard: lost the connection to the backend ({end}); reconnecting")
}

/// The status line for the backend losing or regaining the worker's runtime.
pub(super) fn upstream_line(
    worker: &WorkerRef,
    state: UpstreamState,
    error: Option<&switchyard_client::ApiError>,
) -> String {
    let runtime = worker.runtime_id.as_str();
    match (state, error) {
        (UpstreamState::Lost, Some(error)) => format!(
            "switchyard: the backend lost runtime {runtime} ({}: {}); it is reconnecting",
            error.code, error.message
        ),
        (UpstreamState::Lost, None) => {
            format!("switchyard: the backend lost runtime {runtime}; it is reconnecting")
        }
        (UpstreamState::Restored, _) => {
            format!("switchyard: the backend reached runtime {runtime} again")
        }
    }
}
