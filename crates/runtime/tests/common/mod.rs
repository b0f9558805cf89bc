//! Helpers shared by the runtime's integration tests.
#![allow(dead_code, missing_docs)]

use std::time::Duration;

use switchyard_protocol::{RuntimeId, WorkerEvent};
use switchyard_runtime::{
    ProcessSpec, Profile, ProfileSpec, RuntimeConfig, StreamEnd, Subscription, SubscriptionItem,
};

/// Generous: these machines are small and busy.
pub const WAIT: Duration = Duration::from_secs(20);

/// A profile running `command` (no extra environment, no working directory).
pub fn process(command: &[&str]) -> Profile {
    Profile::new(ProfileSpec::Process(ProcessSpec::new(
        command.iter().copied(),
    )))
}

pub fn config() -> RuntimeConfig {
    RuntimeConfig::new(RuntimeId::new("test").unwrap(), "Test runtime")
}

/// The next item, failing the test if none arrives in time.
pub async fn next(sub: &mut Subscription) -> Result<SubscriptionItem, StreamEnd> {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("no subscription item within the wait")
}

/// The next event, failing on a reset or an end.
pub async fn next_event(sub: &mut Subscription) -> (u64, WorkerEvent) {
    match next(sub).await {
        Ok(SubscriptionItem::Event { position, event }) => (position, (*event).clone()),
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Skips events until one matches.
pub async fn wait_for(sub: &mut Subscription, pred: impl Fn(&WorkerEvent) -> bool) -> WorkerEvent {
    loop {
        let (_, event) = next_event(sub).await;
        if pred(&event) {
            return event;
        }
    }
}

/// A copy of the data directory `dir`, as a process that crashed would have left
/// it (its files as they are; the lock, a crashed process's, gone), in a new
/// temporary directory: a runtime opens it as after that crash while the first,
/// which still holds `dir`, is left alone.
pub fn crashed_copy(dir: &std::path::Path) -> tempfile::TempDir {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else if entry.file_name() != "lock" {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let copied = tempfile::TempDir::new().unwrap();
    copy(dir, copied.path());
    copied
}
