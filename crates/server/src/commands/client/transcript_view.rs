//! [`TranscriptView`]: a worker's transcript on standard output, read over REST and
//! kept up to date from live events, each item shown once and in order.
//!
//! The rule (see [`SequenceSeam`]): the view remembers the last sequence it showed.
//! An `input` or `output` event with the next sequence is shown as it comes; one
//! already shown is skipped; one after a gap makes the view read the transcript from
//! where it is (REST, page by page) first. Events without a sequence that record
//! something in the transcript (`interrupted`, `exited`, `status`) and every
//! `snapshot` (the first frame of a stream, and the one after a `reset`) also make
//! the view read what it has not shown yet. So whatever the stream replays after a
//! reconnection, and whatever it could not replay, every item is shown exactly once.
//!
//! `attach` gives the view the inputs it sent itself ([`OwnInputs`]): those are left
//! out, live and in what the view reads alike (the local terminal echoed them), and
//! every other input is shown.

use std::time::Duration;

use switchyard_client::{BackendClient, ClientError, Place, SequenceSeam, WorkerRef};
use switchyard_protocol::{TranscriptEntry, TranscriptItem, WorkerEvent, WorkerStatus};

use super::Failure;
use super::output::Output;
use super::own_inputs::OwnInputs;
use super::printer::Printer;

/// What a live event meant for the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Go on.
    Continue,
    /// The worker has ended (and everything it recorded is shown).
    Ended(WorkerStatus),
}

/// A worker's transcript being shown.
pub(super) struct TranscriptView<'a> {
    client: &'a BackendClient,
    worker: &'a WorkerRef,
    seam: SequenceSeam,
    printer: Printer,
    /// Inputs this client sent, not to be shown.
    own: Option<OwnInputs>,
}

impl<'a> TranscriptView<'a> {
    /// A view that has shown everything up to `after` (0: nothing yet).
    pub(super) fn new(
        client: &'a BackendClient,
        worker: &'a WorkerRef,
        after: u64,
        printer: Printer,
    ) -> Self {
        Self {
            client,
            worker,
            seam: SequenceSeam::after(after),
            printer,
            own: None,
        }
    }

    /// Leaves out the inputs `own` (those this client sent).
    pub(super) fn without(mut self, own: OwnInputs) -> Self {
        self.own = Some(own);
        self
    }

    /// Whether the input `sequence` with `text` is one this client sent.
    fn is_own(&self, sequence: u64, text: &str) -> bool {
        self.own
            .as_ref()
            .is_some_and(|own| own.claim(sequence, text))
    }

    /// Renders an item to show (unless it is an input of this client's).
    fn item(&mut self, item: &TranscriptItem) {
        if let TranscriptEntry::Input { text } = &item.entry
            && self.is_own(item.sequence, text)
        {
            return;
        }
        self.printer.item(item);
    }

    /// Forgets this client's inputs that can no longer come.
    fn passed(&self) {
        if let Some(own) = &self.own {
            own.seen_up_to(self.seam.last());
        }
    }

    /// Shows those of `items` (in order) that come after the last one shown: the
    /// transcript's last items a snapshot carries.
    pub(super) async fn show(
        &mut self,
        items: &[TranscriptItem],
        out: &mut Output,
    ) -> Result<(), Failure> {
        for item in items {
            if self.seam.shown(item.sequence) {
                self.item(item);
            }
        }
        self.passed();
        out.out(&self.printer.take()).await
    }

    /// Shows every item after the last one shown, reading the transcript page by page
    /// and writing each page as it arrives.
    pub(super) async fn catch_up(&mut self, out: &mut Output) -> Result<(), ClientOrOutput> {
        loop {
            let after = self.seam.last();
            let page = self.client.transcript(self.worker, after, None).await?;
            for item in &page.items {
                if self.seam.shown(item.sequence) {
                    self.item(item);
                }
            }
            self.passed();
            out.out(&self.printer.take()).await?;
            match page.next_after {
                Some(next) if next > after => {}
                // The end, or a page that does not move on (nothing more to read now).
                _ => return Ok(()),
            }
        }
    }

    /// [`Self::catch_up`], retrying while the backend cannot be reached (it may be
    /// restarting), with one status line on standard error.
    pub(super) async fn catch_up_retrying(&mut self, out: &mut Output) -> Result<(), Failure> {
        let mut delay = Duration::from_millis(100);
        let mut told = false;
        loop {
            match self.catch_up(out).await {
                Ok(()) => return Ok(()),
                Err(ClientOrOutput::Client(error)) if error.is_transient() => {
                    if !told {
                        out.note(&format!(
                            "switchyard: could not read the transcript ({}: {error}); retrying",
                            error.code()
                        ))
                        .await;
                        told = true;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(error) => return Err(error.into_failure(self.client)),
            }
        }
    }

    /// Shows what a live event adds.
    pub(super) async fn event(
        &mut self,
        event: &WorkerEvent,
        out: &mut Output,
    ) -> Result<Step, Failure> {
        match event {
            WorkerEvent::Input { sequence, text } => {
                let own = self.own.clone();
                self.sequenced(*sequence, out, |p| {
                    if !own.is_some_and(|own| own.claim(*sequence, text)) {
                        p.input(text);
                    }
                })
                .await?;
            }
            WorkerEvent::Output {
                sequence,
                stream,
                text,
            } => {
                self.sequenced(*sequence, out, |p| p.output(*stream, text))
                    .await?;
            }
            WorkerEvent::Diagnostic {
                severity,
                code,
                message,
            } => {
                self.printer.diagnostic(*severity, code, message);
                out.out(&self.printer.take()).await?;
            }
            WorkerEvent::Snapshot { worker, .. } => {
                self.catch_up_retrying(out).await?;
                if worker.status.is_ended() {
                    return Ok(Step::Ended(worker.status));
                }
            }
            WorkerEvent::Status { status, .. } => {
                self.catch_up_retrying(out).await?;
                if status.is_ended() {
                    return Ok(Step::Ended(*status));
                }
            }
            WorkerEvent::Interrupted | WorkerEvent::Exited { .. } => {
                self.catch_up_retrying(out).await?;
            }
            // Not a transcript item: nothing to show.
            WorkerEvent::Resized { .. } => {}
            // A kind newer than this client: whatever it recorded is in the transcript.
            _ => self.catch_up_retrying(out).await?,
        }
        Ok(Step::Continue)
    }

    /// An event that records transcript item `sequence`, rendered by `render`.
    async fn sequenced(
        &mut self,
        sequence: u64,
        out: &mut Output,
        render: impl FnOnce(&mut Printer),
    ) -> Result<(), Failure> {
        if let Place::Gap { .. } = self.seam.place(sequence) {
            self.catch_up_retrying(out).await?;
        }
        if self.seam.place(sequence) == Place::Next {
            self.seam.shown(sequence);
            render(&mut self.printer);
            self.passed();
            out.out(&self.printer.take()).await?;
        }
        Ok(())
    }
}

/// A failure of the backend or of standard output.
#[derive(Debug)]
pub(super) enum ClientOrOutput {
    /// The backend call failed.
    Client(ClientError),
    /// Writing failed (or the reader went away).
    Output(Failure),
}

impl ClientOrOutput {
    /// As a command's failure.
    pub(super) fn into_failure(self, client: &BackendClient) -> Failure {
        match self {
            Self::Client(error) => Failure::client(client.url(), &error),
            Self::Output(failure) => failure,
        }
    }
}

impl From<ClientError> for ClientOrOutput {
    fn from(error: ClientError) -> Self {
        Self::Client(error)
    }
}

impl From<Failure> for ClientOrOutput {
    fn from(failure: Failure) -> Self {
        Self::Output(failure)
    }
}
