//! Drivers of a library user's own, behind the `Driver` seam: the runtime records
//! what they report exactly as it does for the built-in kinds.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use switchyard_protocol::{
    CreateWorkerRequest, CustomKind, DiagnosticSeverity, ErrorCode, ExitInfo, OutputStream,
    ProfileKind, ResizeRequest, SystemNote, TranscriptEntry, WorkerEvent, WorkerId, WorkerStatus,
};
use switchyard_runtime::{
    Control, Driver, DriverInputs, DriverSink, Ending, Profile, Runtime, TerminalSize,
};

fn kind(name: &str) -> ProfileKind {
    ProfileKind::Custom(CustomKind::new(name).unwrap())
}

fn create(profile: &str) -> CreateWorkerRequest {
    CreateWorkerRequest {
        profile: profile.into(),
        label: None,
        owner: None,
    }
}

const NO_EXIT: ExitInfo = ExitInfo {
    code: None,
    signal: None,
};

/// Answers each input in upper case; remembers what it was started with.
#[derive(Clone, Default)]
struct Upper {
    started_with: Arc<Mutex<Vec<(WorkerId, Duration)>>>,
}

#[async_trait::async_trait]
impl Driver for Upper {
    fn kind(&self) -> ProfileKind {
        kind("upper")
    }

    async fn run(&self, mut worker: DriverInputs, sink: Arc<dyn DriverSink>) -> Ending {
        self.started_with
            .lock()
            .unwrap()
            .push((worker.worker_id.clone(), worker.stop_grace));
        sink.started().await;
        loop {
            tokio::select! {
                control = worker.control.recv() => match control {
                    Some(Control::Cancel) => sink.interrupted().await,
                    Some(Control::Stop { .. }) | None => return Ending::Stopped(NO_EXIT),
                    Some(_) => {}
                },
                Some(text) = worker.inputs.recv() => {
                    sink.output(OutputStream::Stdout, text.to_uppercase()).await;
                    if text.trim() == "quit" {
                        return Ending::Exited(ExitInfo { code: Some(3), signal: None });
                    }
                }
            }
        }
    }
}

/// A worker on a terminal of its own: paints a greeting, reports resizes.
struct Banner;

#[async_trait::async_trait]
impl Driver for Banner {
    fn kind(&self) -> ProfileKind {
        kind("banner")
    }

    fn terminal(&self) -> Option<TerminalSize> {
        Some(TerminalSize { cols: 20, rows: 4 })
    }

    async fn run(&self, mut worker: DriverInputs, sink: Arc<dyn DriverSink>) -> Ending {
        sink.started().await;
        sink.output(OutputStream::Terminal, "\x1b[1mhello\x1b[0m".into())
            .await;
        loop {
            tokio::select! {
                control = worker.control.recv() => match control {
                    Some(Control::Stop { .. }) | None => return Ending::Stopped(NO_EXIT),
                    Some(_) => {}
                },
                Some(resize) = worker.resizes.recv() => {
                    sink.resized(resize.cols, resize.rows).await;
                    let _ = resize.done.send(());
                }
            }
        }
    }
}

/// Cannot start.
struct Unlicensed;

#[async_trait::async_trait]
impl Driver for Unlicensed {
    fn kind(&self) -> ProfileKind {
        kind("unlicensed")
    }

    async fn run(&self, _worker: DriverInputs, sink: Arc<dyn DriverSink>) -> Ending {
        sink.diagnostic(
            DiagnosticSeverity::Warning,
            "license_check",
            "checking the license".into(),
        )
        .await;
        Ending::Failed("no license for this worker kind; ask an administrator".into())
    }
}

async fn runtime(upper: Upper) -> Runtime {
    Runtime::in_memory(
        config()
            .with_profile(
                "upper",
                Profile::custom(upper).with_description("shouts back"),
            )
            .with_profile("banner", Profile::custom(Banner))
            .with_profile("unlicensed", Profile::custom(Unlicensed)),
    )
    .await
}

async fn transcript(rt: &Runtime, worker: &WorkerId) -> Vec<TranscriptEntry> {
    let page = rt.transcript(worker, 0, Some(100)).await.unwrap();
    page.items.into_iter().map(|item| item.entry).collect()
}

#[tokio::test]
async fn profiles_show_the_custom_kinds() {
    let rt = runtime(Upper::default()).await;
    let kinds: Vec<(String, ProfileKind)> = rt
        .info()
        .profiles
        .into_iter()
        .map(|p| (p.name, p.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("banner".to_owned(), kind("banner")),
            ("echo".to_owned(), ProfileKind::Echo),
            ("unlicensed".to_owned(), kind("unlicensed")),
            ("upper".to_owned(), kind("upper")),
        ]
    );
}

#[tokio::test]
async fn a_custom_worker_is_recorded_like_any_other() {
    let upper = Upper::default();
    let rt = runtime(upper.clone()).await;
    let w = rt.create(create("upper")).await.unwrap();
    assert_eq!(w.status, WorkerStatus::Running);
    assert_eq!(
        *upper.started_with.lock().unwrap(),
        [(w.worker_id.clone(), rt.config().limits.stop_grace)]
    );

    let mut sub = rt.subscribe(&w.worker_id, None).unwrap();
    next_event(&mut sub).await; // the snapshot
    let accepted = rt.input(&w.worker_id, "hi there\n".into()).await.unwrap();
    let output = wait_for(&mut sub, |e| matches!(e, WorkerEvent::Output { .. })).await;
    assert_eq!(
        output,
        WorkerEvent::Output {
            sequence: accepted.sequence + 1,
            stream: OutputStream::Stdout,
            text: "HI THERE\n".into(),
        }
    );

    rt.cancel(&w.worker_id).unwrap();
    wait_for(&mut sub, |e| matches!(e, WorkerEvent::Interrupted)).await;

    let resize = rt
        .resize(&w.worker_id, ResizeRequest { cols: 80, rows: 24 })
        .await
        .unwrap_err();
    assert_eq!(resize.code(), ErrorCode::NotATerminal);

    rt.input(&w.worker_id, "quit\n".into()).await.unwrap();
    wait_for(&mut sub, |e| matches!(e, WorkerEvent::Exited { .. })).await;
    let ended = rt.get(&w.worker_id).unwrap();
    assert_eq!(ended.status, WorkerStatus::Exited);
    assert_eq!(ended.exit.and_then(|e| e.code), Some(3));
    let entries = transcript(&rt, &w.worker_id).await;
    let notes: Vec<SystemNote> = entries
        .iter()
        .filter_map(|e| match e {
            TranscriptEntry::System { note, .. } => Some(*note),
            _ => None,
        })
        .collect();
    assert_eq!(
        notes,
        [
            SystemNote::Started,
            SystemNote::Interrupted,
            SystemNote::Exited
        ]
    );
}

#[tokio::test]
async fn stop_ends_a_custom_worker() {
    let rt = runtime(Upper::default()).await;
    let w = rt.create(create("upper")).await.unwrap();
    let stopped = rt.stop(&w.worker_id).await.unwrap();
    assert_eq!(stopped.status, WorkerStatus::Stopped);
    // And the runtime's shutdown stops the rest.
    let other = rt.create(create("upper")).await.unwrap();
    rt.shutdown().await.unwrap();
    assert_eq!(
        rt.get(&other.worker_id).unwrap().status,
        WorkerStatus::Stopped
    );
}

#[tokio::test]
async fn a_terminal_driver_gets_a_screen_and_resizes() {
    let rt = runtime(Upper::default()).await;
    let w = rt.create(create("banner")).await.unwrap();
    let mut sub = rt.subscribe(&w.worker_id, None).unwrap();
    next_event(&mut sub).await;

    let size = ResizeRequest { cols: 30, rows: 5 };
    rt.resize(&w.worker_id, size).await.unwrap();
    let resized = wait_for(&mut sub, |e| matches!(e, WorkerEvent::Resized { .. })).await;
    assert_eq!(resized, WorkerEvent::Resized { cols: 30, rows: 5 });

    let mut fresh = rt.subscribe(&w.worker_id, None).unwrap();
    let WorkerEvent::Snapshot { terminal, .. } = next_event(&mut fresh).await.1 else {
        panic!("a fresh subscription starts with a snapshot");
    };
    let terminal = terminal.expect("a terminal driver's snapshot has its screen");
    assert_eq!((terminal.cols, terminal.rows), (30, 5));
    assert!(terminal.screen.contains("hello"), "{:?}", terminal.screen);
}

#[tokio::test]
async fn a_driver_that_cannot_start_fails_the_worker_with_its_message() {
    let rt = runtime(Upper::default()).await;
    let w = rt.create(create("unlicensed")).await.unwrap();
    assert_eq!(w.status, WorkerStatus::Failed);
    let entries = transcript(&rt, &w.worker_id).await;
    assert!(
        entries.iter().any(|e| matches!(
            e,
            TranscriptEntry::System { note: SystemNote::Failed, text }
                if text == "no license for this worker kind; ask an administrator"
        )),
        "{entries:?}"
    );
}

/// Ends at once, leaving behind a task that reports when told to.
#[derive(Clone, Default)]
struct Lingering {
    go: Arc<tokio::sync::Notify>,
    reported: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl Driver for Lingering {
    fn kind(&self) -> ProfileKind {
        kind("lingering")
    }

    async fn run(&self, _worker: DriverInputs, sink: Arc<dyn DriverSink>) -> Ending {
        sink.started().await;
        let (go, reported) = (self.go.clone(), self.reported.clone());
        tokio::spawn(async move {
            go.notified().await;
            sink.output(OutputStream::Stdout, "too late".into()).await;
            sink.interrupted().await;
            sink.resized(10, 10).await;
            sink.diagnostic(DiagnosticSeverity::Info, "late", "too late".into())
                .await;
            sink.started().await;
            reported.notify_one();
        });
        Ending::Exited(ExitInfo {
            code: Some(0),
            signal: None,
        })
    }
}

#[tokio::test]
async fn reports_after_a_driver_returned_are_dropped() {
    let lingering = Lingering::default();
    let rt =
        Runtime::in_memory(config().with_profile("lingering", Profile::custom(lingering.clone())))
            .await;
    let w = rt.create(create("lingering")).await.unwrap();
    let mut sub = rt.subscribe(&w.worker_id, None).unwrap();
    let (_, snapshot) = next_event(&mut sub).await;
    if !matches!(&snapshot, WorkerEvent::Snapshot { worker, .. } if worker.status.is_ended()) {
        wait_for(
            &mut sub,
            |e| matches!(e, WorkerEvent::Status { status, .. } if status.is_ended()),
        )
        .await;
    }
    let before = transcript(&rt, &w.worker_id).await;
    let ended = rt.get(&w.worker_id).unwrap();

    lingering.go.notify_one();
    lingering.reported.notified().await;

    let after = rt.get(&w.worker_id).unwrap();
    assert_eq!(
        after.status,
        WorkerStatus::Exited,
        "a late `started` revived it"
    );
    assert_eq!(after.output_bytes, ended.output_bytes);
    assert_eq!(
        transcript(&rt, &w.worker_id).await,
        before,
        "late reports were recorded"
    );
    let late = tokio::time::timeout(Duration::from_millis(100), sub.next()).await;
    assert!(
        !matches!(late, Ok(Ok(_))),
        "a late report reached the event log: {late:?}"
    );
}
