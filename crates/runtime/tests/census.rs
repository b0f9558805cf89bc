//! The counts of `GET /v1/runtime` and worker lists filtered by status, which the
//! runtime keeps as workers change instead of scanning them, agree with a scan of
//! every kept worker after every kind of change: create, start, exit, failure,
//! stop, delete, and a reopen that finds workers lost.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use switchyard_protocol::{CreateWorkerRequest, WorkerCounts, WorkerDetail, WorkerStatus};
use switchyard_runtime::{FsStore, ListQuery, Runtime};

fn config_with_profiles() -> switchyard_runtime::RuntimeConfig {
    let mut config = config();
    config.limits.transcript_page_max = 3;
    config
        .profiles
        .insert("quits".into(), process(&["sh", "-c", "exit 3"]));
    config
        .profiles
        .insert("missing".into(), process(&["/nonexistent/program"]));
    config
}

fn request(profile: &str, owner: Option<&str>) -> CreateWorkerRequest {
    CreateWorkerRequest {
        profile: profile.into(),
        label: None,
        owner: owner.map(str::to_owned),
    }
}

/// Every page of `query` (pages of 2), checking that each page's cursor is its
/// last worker's id.
fn walk(rt: &Runtime, status: Option<WorkerStatus>) -> Vec<WorkerDetail> {
    let mut query = ListQuery {
        status,
        after: None,
        limit: Some(2),
    };
    let mut all = Vec::new();
    loop {
        let page = rt.list(&query).unwrap();
        assert!(page.workers.len() <= 2);
        if let Some(next) = &page.next {
            assert_eq!(Some(next), page.workers.last().map(|w| &w.worker_id));
        }
        all.extend(page.workers);
        match page.next {
            Some(next) => query.after = Some(next),
            None => return all,
        }
    }
}

/// The census (counts, owners, filtered lists) against a scan of every worker.
fn check(rt: &Runtime, expected: WorkerCounts) {
    let all = walk(rt, None);
    let mut counts = WorkerCounts::default();
    let mut owners: BTreeMap<String, WorkerCounts> = BTreeMap::new();
    for worker in &all {
        counts.add(worker.status);
        if let Some(owner) = &worker.owner {
            owners.entry(owner.clone()).or_default().add(worker.status);
        }
    }
    assert_eq!(counts, expected, "the scan itself");
    let info = rt.info();
    assert_eq!(info.workers, counts);
    assert_eq!(info.owners, owners);
    for status in WorkerStatus::ALL {
        let filtered: Vec<_> = walk(rt, Some(status))
            .into_iter()
            .map(|w| w.worker_id)
            .collect();
        let scanned: Vec<_> = all
            .iter()
            .filter(|w| w.status == status)
            .map(|w| w.worker_id.clone())
            .collect();
        assert_eq!(filtered, scanned, "{status:?}");
    }
}

async fn wait_until_ended(rt: &Runtime, worker: &WorkerDetail) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !rt.get(&worker.worker_id).unwrap().status.is_ended() {
        assert!(tokio::time::Instant::now() < deadline, "never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn counts_and_status_lists_agree_with_a_scan_through_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let open = |path: &std::path::Path| {
        let path = path.to_owned();
        async move {
            Runtime::open(
                config_with_profiles(),
                Arc::new(FsStore::open(path).await.unwrap()),
            )
            .await
            .unwrap()
        }
    };
    let rt = open(dir.path()).await;
    check(&rt, WorkerCounts::default());

    let mut echoes = Vec::new();
    for owner in [Some("alice"), Some("alice"), Some("bob"), None, None] {
        echoes.push(rt.create(request("echo", owner)).await.unwrap());
    }
    let running = WorkerCounts {
        running: 5,
        ..Default::default()
    };
    check(&rt, running);

    let quits = rt.create(request("quits", Some("bob"))).await.unwrap();
    let missing = rt.create(request("missing", Some("carol"))).await.unwrap();
    wait_until_ended(&rt, &quits).await;
    wait_until_ended(&rt, &missing).await;
    rt.stop(&echoes[0].worker_id).await.unwrap();
    rt.stop(&echoes[3].worker_id).await.unwrap();
    let mixed = WorkerCounts {
        running: 3,
        exited: 1,
        stopped: 2,
        failed: 1,
        ..Default::default()
    };
    check(&rt, mixed);

    // Deleting takes a worker out (an owner with none left goes from the list);
    // deleting it twice changes nothing more.
    rt.delete(&missing.worker_id).await.unwrap();
    assert!(rt.delete(&missing.worker_id).await.is_err());
    rt.delete(&echoes[3].worker_id).await.unwrap();
    let after_deletes = WorkerCounts {
        running: 3,
        exited: 1,
        stopped: 1,
        ..Default::default()
    };
    check(&rt, after_deletes);
    assert!(!rt.info().owners.contains_key("carol"));
    drop(rt);

    // Reopened over the same files, as after a crash: the running ones are now lost.
    let crashed = crashed_copy(dir.path());
    let reopened = open(crashed.path()).await;
    check(
        &reopened,
        WorkerCounts {
            exited: 1,
            stopped: 1,
            lost: 3,
            ..Default::default()
        },
    );
    assert_eq!(reopened.info().owners["alice"].lost, 1);
    assert_eq!(reopened.info().owners["alice"].stopped, 1);
}

#[tokio::test]
async fn subscribers_are_counted_as_they_come_leave_and_are_ended() {
    let rt = Runtime::in_memory(config()).await;
    let a = rt.create(request("echo", None)).await.unwrap();
    let b = rt.create(request("echo", None)).await.unwrap();
    let first = rt.subscribe(&a.worker_id, None).unwrap();
    let second = rt.subscribe(&a.worker_id, None).unwrap();
    let mut on_b = rt.subscribe(&b.worker_id, None).unwrap();
    assert_eq!(rt.info().subscribers, 3);

    drop(first);
    assert_eq!(rt.info().subscribers, 2, "a viewer that left");

    // Deleting a worker ends its subscriptions: they no longer count, even while
    // their receivers are still held, and dropping those later counts nothing twice.
    rt.stop(&b.worker_id).await.unwrap();
    rt.delete(&b.worker_id).await.unwrap();
    assert_eq!(rt.info().subscribers, 1);
    while next(&mut on_b).await.is_ok() {}
    drop(on_b);
    assert_eq!(rt.info().subscribers, 1);
    assert_eq!(rt.subscriber_count(&a.worker_id).unwrap(), 1);
    drop(second);
    assert_eq!(rt.info().subscribers, 0);
}

/// Ended workers are kept until deleted, but not without end: past
/// `max_ended_workers`, each create first deletes the workers that ended first
/// (with their transcripts), whenever they were created; running ones are never
/// touched. The census agrees.
#[tokio::test]
async fn past_max_ended_workers_a_create_deletes_the_workers_that_ended_first() {
    let mut config = config();
    config.limits.max_ended_workers = 3;
    let rt = Runtime::in_memory(config).await;
    let running = rt.create(request("echo", None)).await.unwrap().worker_id;
    // Created first, ended last: a long session.
    let long = rt.create(request("echo", None)).await.unwrap().worker_id;
    let mut short = Vec::new();
    for _ in 0..5 {
        let id = rt.create(request("echo", None)).await.unwrap().worker_id;
        rt.input(&id, "kept?".into()).await.unwrap();
        rt.stop(&id).await.unwrap();
        short.push(id);
    }
    rt.stop(&long).await.unwrap();
    // Six ended, three allowed: the next create deletes the three that ended first.
    let newest = rt.create(request("echo", None)).await.unwrap().worker_id;
    let kept: Vec<_> = walk(&rt, None).into_iter().map(|w| w.worker_id).collect();
    let mut expected = vec![running, newest, long, short[3].clone(), short[4].clone()];
    expected.sort();
    assert_eq!(kept, expected);
    for gone in &short[..3] {
        assert!(rt.get(gone).is_err(), "{gone} is still kept");
        assert!(rt.transcript(gone, 0, None).await.is_err());
    }
    assert_eq!(rt.transcript(&short[4], 0, None).await.unwrap().total, 3);
    check(
        &rt,
        WorkerCounts {
            running: 2,
            stopped: 3,
            ..WorkerCounts::default()
        },
    );
}

/// After a restart the workers that ended first are still the first deleted,
/// whatever order they were created (or are stored) in.
#[tokio::test]
async fn after_a_reopen_the_workers_that_ended_first_are_still_deleted_first() {
    let dir = tempfile::tempdir().unwrap();
    let open = |max_ended: u32| {
        let path = dir.path().to_owned();
        async move {
            let mut config = config();
            config.limits.max_ended_workers = max_ended;
            Runtime::open(config, Arc::new(FsStore::open(path).await.unwrap()))
                .await
                .unwrap()
        }
    };
    let rt = open(100).await;
    let mut created = Vec::new();
    for _ in 0..6 {
        created.push(rt.create(request("echo", None)).await.unwrap().worker_id);
    }
    // Ended in the reverse order of creation, a few milliseconds apart (the
    // timestamps' resolution).
    for id in created.iter().rev() {
        rt.stop(id).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drop(rt);

    let reopened = open(3).await;
    let newest = reopened
        .create(request("echo", None))
        .await
        .unwrap()
        .worker_id;
    let kept: Vec<_> = walk(&reopened, None)
        .into_iter()
        .map(|w| w.worker_id)
        .collect();
    let mut expected = vec![
        newest,
        created[0].clone(),
        created[1].clone(),
        created[2].clone(),
    ];
    expected.sort();
    assert_eq!(kept, expected, "the three that ended last are kept");
}

/// A limit lowered far below the ended workers kept is worked off a few per
/// create, so that no create is slow.
#[tokio::test]
async fn a_lowered_max_ended_workers_is_worked_off_a_few_per_create() {
    let rt = Runtime::in_memory(config()).await;
    for _ in 0..6 {
        let id = rt.create(request("echo", None)).await.unwrap().worker_id;
        rt.stop(&id).await.unwrap();
    }
    let mut lowered = rt.config().as_ref().clone();
    lowered.limits.max_ended_workers = 0;
    rt.reconfigure(lowered).unwrap();
    let ended = |rt: &Runtime| rt.info().workers.stopped;
    assert_eq!(ended(&rt), 6);
    rt.create(request("echo", None)).await.unwrap();
    assert_eq!(ended(&rt), 2, "four deleted by the first create");
    rt.create(request("echo", None)).await.unwrap();
    assert_eq!(ended(&rt), 0);
}
