//! The registry against mockall mocks of the transport trait (`RuntimeClient`): error
//! mapping to the backend's codes and statuses, routing by `runtime_id + worker_id`,
//! runtime views, `list_all`, the policy seam, call timeouts and secret scrubbing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_protocol::{
    API_VERSION, CreateWorkerRequest, ErrorCode, ErrorDetail, InputAccepted, NewWorkerRequest,
    OutputStream, ProfileInfo, ProfileKind, ResizeRequest, ResizeResponse, RuntimeId, RuntimeInfo,
    RuntimeSourceKind, RuntimeState, RuntimeStatus, Timestamp, TranscriptEntry, TranscriptItem,
    TranscriptPage, WorkerCounts, WorkerDetail, WorkerEvent, WorkerId, WorkerList, WorkerStatus,
    WorkerStatusResponse,
};
use switchyard_registry::{
    Action, AllowAll, Caller, EmbeddedSource, Policy, PolicyDenied, PolicyRequest,
    RegisteredRuntime, RegistryError, RemoteSource, ResumePoint, Role, RolePolicy, RuntimeGlob,
    RuntimeGrants, RuntimeRegistry, RuntimeSource, Scrubber, SourceError, SourceEvents,
    WorkerScope,
};
use switchyard_runtime::{Runtime, RuntimeConfig};
use switchyard_transport::{
    MockRuntimeClient, MockRuntimeEventsClient, RuntimeEventsClient, TimeoutPhase, TlsFailure,
    TransportError, UnreachableKind, WorkerQuery,
};

// ---------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------

const TS: &str = "2026-11-26T09:00:00Z";
/// The id a remote runtime calls itself, unlike the id the backend configured for it.
const UPSTREAM_SELF_ID: &str = "upstream-self";

/// The caller of every request when auth is off.
fn open() -> Caller {
    Caller::open()
}

fn rid(s: &str) -> RuntimeId {
    RuntimeId::new(s).unwrap()
}

fn wid(s: &str) -> WorkerId {
    WorkerId::new(s).unwrap()
}

fn detail(worker: &str, runtime: &str) -> WorkerDetail {
    WorkerDetail {
        worker_id: wid(worker),
        runtime_id: rid(runtime),
        profile: "echo".into(),
        label: Some(format!("label of {worker}")),
        status: WorkerStatus::Running,
        created_at: Timestamp(TS.into()),
        updated_at: Timestamp(TS.into()),
        exit: None,
        input_count: 3,
        output_bytes: 17,
        owner: None,
    }
}

/// `{"profile":"echo"}`: what a client sends to start an echo worker.
fn echo_request() -> NewWorkerRequest {
    NewWorkerRequest {
        profile: "echo".into(),
        label: None,
    }
}

/// A page of the remote's workers (ids as it names them) and its `next`.
fn page(ids: &[&str], next: Option<&str>) -> WorkerList {
    WorkerList {
        workers: ids.iter().map(|id| detail(id, UPSTREAM_SELF_ID)).collect(),
        next: next.map(wid),
    }
}

/// `(runtime_id, worker_id)` of every listed worker, in order.
fn listed(workers: &[WorkerDetail]) -> Vec<(&str, &str)> {
    workers
        .iter()
        .map(|d| (d.runtime_id.as_str(), d.worker_id.as_str()))
        .collect()
}

/// A runtime's self-description. Built from a real (embedded) runtime's answer so
/// that fields this test does not care about keep valid values.
async fn info(runtime: &str, api_version: u32) -> RuntimeInfo {
    let base = Runtime::in_memory(RuntimeConfig::new(rid(runtime), "base"))
        .await
        .info();
    RuntimeInfo {
        runtime_id: rid(runtime),
        display_name: format!("{runtime} as it names itself"),
        api_version,
        status: RuntimeStatus::Running,
        epoch: "epoch-1".into(),
        capabilities: vec!["events_ws".into(), "process".into()],
        profiles: vec![
            ProfileInfo {
                name: "echo".into(),
                kind: ProfileKind::Echo,
                description: None,
            },
            ProfileInfo {
                name: "shell".into(),
                kind: ProfileKind::Process,
                description: Some("POSIX shell".into()),
            },
        ],
        workers: WorkerCounts {
            starting: 1,
            running: 2,
            exited: 3,
            stopped: 4,
            failed: 5,
            lost: 6,
        },
        ..base
    }
}

/// An events client that must never be used: these tests drive commands only.
fn idle_events() -> Arc<dyn RuntimeEventsClient> {
    let mut events = MockRuntimeEventsClient::new();
    events.expect_subscribe().never();
    Arc::new(events)
}

fn remote_with(id: &str, client: MockRuntimeClient, scrubber: Scrubber) -> RegisteredRuntime {
    RegisteredRuntime::new(
        rid(id),
        format!("Remote {id}"),
        Arc::new(RemoteSource::new(Arc::new(client), idle_events(), scrubber)),
    )
    .with_call_timeout(Duration::from_secs(5))
}

fn remote(id: &str, client: MockRuntimeClient) -> RegisteredRuntime {
    remote_with(id, client, Scrubber::default())
}

async fn embedded(id: &str) -> RegisteredRuntime {
    let runtime = Runtime::in_memory(RuntimeConfig::new(rid(id), "This machine")).await;
    RegisteredRuntime::new(
        rid(id),
        "This machine",
        Arc::new(EmbeddedSource::new(runtime)),
    )
    .without_call_timeout()
}

fn registry(runtimes: Vec<RegisteredRuntime>) -> RuntimeRegistry {
    RuntimeRegistry::new(runtimes, Arc::new(AllowAll)).unwrap()
}

/// A runtime's own typed error, as the transport reports it.
fn runtime_error(status: u16, code: ErrorCode, message: &str) -> TransportError {
    TransportError::Runtime {
        status,
        detail: ErrorDetail::new(code, message),
    }
}

/// Answers in order, one per call.
fn script<T: Send + 'static>(answers: Vec<T>) -> impl FnMut() -> T + Send + 'static {
    let mut answers: VecDeque<T> = answers.into();
    move || {
        answers
            .pop_front()
            .expect("more calls than scripted answers")
    }
}

/// Every method of `mock` must never be called.
fn expect_nothing(mock: &mut MockRuntimeClient) {
    mock.expect_info().never();
    mock.expect_list_workers().never();
    mock.expect_create_worker().never();
    mock.expect_get_worker().never();
    mock.expect_input().never();
    mock.expect_resize().never();
    mock.expect_cancel().never();
    mock.expect_stop().never();
    mock.expect_delete().never();
    mock.expect_transcript().never();
}

fn assert_source_error(
    error: &RegistryError,
    runtime: &str,
    code: ErrorCode,
    status: u16,
    case: &str,
) {
    assert_eq!(error.code(), code, "{case}: code of {error:?}");
    assert_eq!(error.status(), status, "{case}: status of {error:?}");
    let detail = error.to_detail();
    assert_eq!(detail.code, code, "{case}: detail code");
    assert_eq!(
        detail.runtime_id,
        Some(rid(runtime)),
        "{case}: detail must name the registry's runtime id"
    );
    assert!(!detail.message.is_empty(), "{case}: empty message");
}

// ---------------------------------------------------------------------------------
// 1. Every TransportError to its registry code and HTTP status
// ---------------------------------------------------------------------------------

struct Case {
    name: &'static str,
    error: TransportError,
    code: ErrorCode,
    status: u16,
    /// For pass-through answers: the runtime's own detail, expected back as it is
    /// (message, worker id, retry hint), with the registry's runtime id.
    pass_through: Option<ErrorDetail>,
}

fn case(name: &'static str, error: TransportError, code: ErrorCode, status: u16) -> Case {
    Case {
        name,
        error,
        code,
        status,
        pass_through: None,
    }
}

/// A pass-through answer: the runtime names itself and the worker in its detail.
fn pass(name: &'static str, runtime_status: u16, code: ErrorCode, backend_status: u16) -> Case {
    let mut detail = ErrorDetail::new(code, format!("the runtime says {name}; do something"))
        .with_worker(wid("w-1"))
        .with_runtime(rid(UPSTREAM_SELF_ID));
    if code == ErrorCode::WorkerBusy {
        detail = detail.with_retry_after_ms(250);
    }
    Case {
        name,
        error: TransportError::Runtime {
            status: runtime_status,
            detail: detail.clone(),
        },
        code,
        status: backend_status,
        pass_through: Some(detail),
    }
}

fn error_cases() -> Vec<Case> {
    use ErrorCode as C;
    let unreachable = |kind| TransportError::Unreachable { kind };
    let timeout = |phase| TransportError::Timeout {
        phase,
        timeout_ms: 2000,
    };
    vec![
        case(
            "unreachable refused",
            unreachable(UnreachableKind::Refused),
            C::RuntimeUnreachable,
            502,
        ),
        case(
            "unreachable reset",
            unreachable(UnreachableKind::Reset),
            C::RuntimeUnreachable,
            502,
        ),
        case(
            "unreachable dns",
            unreachable(UnreachableKind::Dns),
            C::RuntimeUnreachable,
            502,
        ),
        case(
            "unreachable other",
            unreachable(UnreachableKind::Other),
            C::RuntimeUnreachable,
            502,
        ),
        case(
            "timeout connect",
            timeout(TimeoutPhase::Connect),
            C::RuntimeTimeout,
            504,
        ),
        case(
            "timeout request",
            timeout(TimeoutPhase::Request),
            C::RuntimeTimeout,
            504,
        ),
        case(
            "auth rejected",
            TransportError::AuthRejected,
            C::RuntimeAuthFailed,
            502,
        ),
        case(
            "tls untrusted certificate",
            TransportError::Tls {
                kind: TlsFailure::UntrustedCertificate,
            },
            C::RuntimeTlsFailed,
            502,
        ),
        case(
            "tls name mismatch",
            TransportError::Tls {
                kind: TlsFailure::NameMismatch,
            },
            C::RuntimeTlsFailed,
            502,
        ),
        case(
            "tls expired",
            TransportError::Tls {
                kind: TlsFailure::Expired,
            },
            C::RuntimeTlsFailed,
            502,
        ),
        case(
            "tls client certificate refused",
            TransportError::Tls {
                kind: TlsFailure::ClientCertificateRefused,
            },
            C::RuntimeTlsFailed,
            502,
        ),
        case(
            "tls handshake failed",
            TransportError::Tls {
                kind: TlsFailure::HandshakeFailed,
            },
            C::RuntimeTlsFailed,
            502,
        ),
        case(
            "tls handshake timeout",
            TransportError::Tls {
                kind: TlsFailure::HandshakeTimeout,
            },
            C::RuntimeTlsFailed,
            502,
        ),
        case(
            "protocol",
            TransportError::Protocol {
                reason: "the body was not JSON".into(),
            },
            C::RuntimeProtocolError,
            502,
        ),
        case(
            "unsupported",
            TransportError::Unsupported {
                what: "events over WebSocket".into(),
            },
            C::Unsupported,
            501,
        ),
        pass("worker_not_found", 404, C::WorkerNotFound, 404),
        pass("worker_not_running", 409, C::WorkerNotRunning, 409),
        pass("worker_running", 409, C::WorkerRunning, 409),
        pass("worker_busy", 429, C::WorkerBusy, 429),
        pass("worker_limit_reached", 429, C::WorkerLimitReached, 429),
        pass("unknown_profile", 400, C::UnknownProfile, 400),
        pass("invalid_cursor", 400, C::InvalidCursor, 400),
        pass("limit_too_large", 400, C::LimitTooLarge, 400),
        pass("payload_too_large", 413, C::PayloadTooLarge, 413),
        pass("invalid_id", 400, C::InvalidId, 400),
        pass("invalid_request", 400, C::InvalidRequest, 400),
        case(
            "runtime_unavailable",
            runtime_error(503, C::RuntimeUnavailable, "draining"),
            C::RuntimeUnavailable,
            503,
        ),
        case(
            "unauthorized from the runtime",
            runtime_error(401, C::Unauthorized, "bad token"),
            C::RuntimeAuthFailed,
            502,
        ),
        case(
            "internal",
            runtime_error(500, C::Internal, "request id 1234"),
            C::Internal,
            500,
        ),
        case(
            "unexpected forbidden",
            runtime_error(403, C::Forbidden, "no"),
            C::RuntimeProtocolError,
            502,
        ),
        case(
            "unexpected route_not_found",
            runtime_error(404, C::RouteNotFound, "no such route"),
            C::RuntimeProtocolError,
            502,
        ),
        case(
            "unexpected method_not_allowed",
            runtime_error(405, C::MethodNotAllowed, "no such method"),
            C::RuntimeProtocolError,
            502,
        ),
        case(
            "unexpected origin_not_allowed",
            runtime_error(403, C::OriginNotAllowed, "origin"),
            C::RuntimeProtocolError,
            502,
        ),
        case(
            "unexpected runtime_not_found",
            runtime_error(404, C::RuntimeNotFound, "which runtime?"),
            C::RuntimeProtocolError,
            502,
        ),
    ]
}

#[tokio::test]
async fn every_transport_error_maps_to_its_code_status_and_runtime_id() {
    for Case {
        name,
        error,
        code,
        status,
        pass_through,
    } in error_cases()
    {
        let mut mock = MockRuntimeClient::new();
        mock.expect_get_worker()
            .withf(|w| w.as_str() == "w-1")
            .times(1)
            .returning(move |_| Err(error.clone()));
        let registry = registry(vec![remote("build-1", mock)]);

        let err = registry
            .get_worker(&open(), &rid("build-1"), &wid("w-1"))
            .await
            .expect_err(name);
        assert_source_error(&err, "build-1", code, status, name);
        // The contract's status for the code agrees.
        assert_eq!(code.status(), status, "{name}: ErrorCode::status");

        let got = err.to_detail();
        match pass_through {
            Some(mut expected) => {
                expected.runtime_id = Some(rid("build-1"));
                assert_eq!(got, expected, "{name}: passed through as it is");
                assert_eq!(err.to_string(), expected.message, "{name}: Display");
            }
            None => assert_eq!(got.retry_after_ms, None, "{name}: no retry hint"),
        }
    }
}

#[tokio::test]
async fn worker_busy_keeps_retry_after_ms() {
    let mut mock = MockRuntimeClient::new();
    mock.expect_input().times(1).returning(|_, _| {
        Err(TransportError::Runtime {
            status: 429,
            detail: ErrorDetail::new(ErrorCode::WorkerBusy, "the input queue is full")
                .with_retry_after_ms(1500),
        })
    });
    let registry = registry(vec![remote("build-1", mock)]);
    let err = registry
        .input(&open(), &rid("build-1"), &wid("w-1"), "hi\n".into())
        .await
        .unwrap_err();
    assert_source_error(&err, "build-1", ErrorCode::WorkerBusy, 429, "busy");
    let detail = err.to_detail();
    assert_eq!(detail.retry_after_ms, Some(1500));
    assert_eq!(detail.message, "the input queue is full");
}

#[tokio::test]
async fn unknown_runtime_id_is_runtime_not_found_404_for_every_call() {
    let mut mock = MockRuntimeClient::new();
    expect_nothing(&mut mock);
    let registry = registry(vec![remote("build-1", mock)]);
    let nope = rid("nope");
    let w = wid("w-1");

    let mut errors = vec![
        registry.runtime(&open(), &nope).await.unwrap_err(),
        registry
            .list_workers(&open(), &nope, &WorkerQuery::default())
            .await
            .unwrap_err(),
        registry
            .create_worker(&open(), &nope, &echo_request())
            .await
            .unwrap_err(),
        registry.get_worker(&open(), &nope, &w).await.unwrap_err(),
        registry
            .input(&open(), &nope, &w, "x".into())
            .await
            .unwrap_err(),
        registry.cancel(&open(), &nope, &w).await.unwrap_err(),
        registry.stop(&open(), &nope, &w).await.unwrap_err(),
        registry.delete(&open(), &nope, &w).await.unwrap_err(),
        registry
            .transcript(&open(), &nope, &w, 0, None)
            .await
            .unwrap_err(),
    ];
    if let Err(e) = registry.source(&nope) {
        errors.push(e);
    } else {
        panic!("source() of an unknown runtime");
    }
    for err in errors {
        assert_eq!(err.code(), ErrorCode::RuntimeNotFound, "{err:?}");
        assert_eq!(err.status(), 404);
        let detail = err.to_detail();
        assert_eq!(detail.code, ErrorCode::RuntimeNotFound);
        assert_eq!(detail.runtime_id, Some(nope.clone()));
    }
}

/// Every routed call maps its failure the same way and names the runtime.
#[tokio::test]
async fn every_call_maps_a_transport_failure_with_the_runtime_id() {
    let unreachable = || TransportError::Unreachable {
        kind: UnreachableKind::Refused,
    };
    let mut mock = MockRuntimeClient::new();
    mock.expect_info()
        .times(1)
        .returning(move || Err(unreachable()));
    mock.expect_list_workers()
        .times(2) // list_workers and list_all
        .returning(move |_| Err(unreachable()));
    mock.expect_create_worker()
        .times(1)
        .returning(move |_| Err(unreachable()));
    mock.expect_get_worker()
        .times(1)
        .returning(move |_| Err(unreachable()));
    mock.expect_input()
        .times(1)
        .returning(move |_, _| Err(unreachable()));
    mock.expect_cancel()
        .times(1)
        .returning(move |_| Err(unreachable()));
    mock.expect_stop()
        .times(1)
        .returning(move |_| Err(unreachable()));
    mock.expect_delete()
        .times(1)
        .returning(move |_| Err(unreachable()));
    mock.expect_transcript()
        .times(1)
        .returning(move |_, _, _| Err(unreachable()));
    let registry = registry(vec![remote("build-1", mock)]);
    let id = rid("build-1");
    let w = wid("w-1");

    let errors = vec![
        (
            "list_workers",
            registry
                .list_workers(&open(), &id, &WorkerQuery::default())
                .await
                .unwrap_err(),
        ),
        (
            "create_worker",
            registry
                .create_worker(&open(), &id, &echo_request())
                .await
                .unwrap_err(),
        ),
        (
            "get_worker",
            registry.get_worker(&open(), &id, &w).await.unwrap_err(),
        ),
        (
            "input",
            registry
                .input(&open(), &id, &w, "x".into())
                .await
                .unwrap_err(),
        ),
        (
            "cancel",
            registry.cancel(&open(), &id, &w).await.unwrap_err(),
        ),
        ("stop", registry.stop(&open(), &id, &w).await.unwrap_err()),
        (
            "delete",
            registry.delete(&open(), &id, &w).await.unwrap_err(),
        ),
        (
            "transcript",
            registry
                .transcript(&open(), &id, &w, 0, None)
                .await
                .unwrap_err(),
        ),
    ];
    for (name, err) in errors {
        assert_source_error(&err, "build-1", ErrorCode::RuntimeUnreachable, 502, name);
    }

    let view = registry.runtime(&open(), &id).await.unwrap();
    assert_eq!(view.state, RuntimeState::Unreachable);

    let all = registry.list_all(&open(), &WorkerQuery::default()).await;
    assert!(all.workers.is_empty());
    assert_eq!(all.unavailable.len(), 1);
    assert_eq!(all.unavailable[0].runtime_id, id);
    assert_eq!(all.unavailable[0].error.code, ErrorCode::RuntimeUnreachable);
    assert_eq!(all.unavailable[0].error.runtime_id, Some(id.clone()));
}

// ---------------------------------------------------------------------------------
// 2. Routing
// ---------------------------------------------------------------------------------

fn transcript_page() -> TranscriptPage {
    TranscriptPage {
        items: vec![TranscriptItem {
            sequence: 8,
            at: Timestamp(TS.into()),
            entry: TranscriptEntry::Output {
                stream: OutputStream::Stdout,
                text: "hello\n".into(),
            },
        }],
        next_after: Some(8),
        total: 9,
    }
}

/// A mock for the runtime every call must reach, each call exactly once with exactly
/// these arguments.
fn routed_mock() -> MockRuntimeClient {
    let mut mock = MockRuntimeClient::new();
    mock.expect_info().never();
    mock.expect_list_workers()
        .withf(|q| {
            *q == WorkerQuery {
                status: Some(WorkerStatus::Running),
                after: Some(WorkerId::new("w-0").unwrap()),
                limit: Some(5),
            }
        })
        .times(1)
        .returning(|_| Ok(page(&["w-1", "w-2"], Some("w-2"))));
    mock.expect_create_worker()
        .withf(|r| r.profile == "shell" && r.label.as_deref() == Some("my shell"))
        .times(1)
        .returning(|_| Ok(detail("w-new", UPSTREAM_SELF_ID)));
    mock.expect_get_worker()
        .withf(|w| w.as_str() == "w-7")
        .times(1)
        .returning(|w| Ok(detail(w.as_str(), UPSTREAM_SELF_ID)));
    mock.expect_input()
        .withf(|w, r| w.as_str() == "w-7" && r.text == "ls -l\n")
        .times(1)
        .returning(|_, _| Ok(InputAccepted { sequence: 42 }));
    mock.expect_cancel()
        .withf(|w| w.as_str() == "w-7")
        .times(1)
        .returning(|w| {
            Ok(WorkerStatusResponse {
                worker_id: w.clone(),
                status: WorkerStatus::Running,
            })
        });
    mock.expect_stop()
        .withf(|w| w.as_str() == "w-7")
        .times(1)
        .returning(|w| {
            Ok(WorkerStatusResponse {
                worker_id: w.clone(),
                status: WorkerStatus::Stopped,
            })
        });
    mock.expect_delete()
        .withf(|w| w.as_str() == "w-7")
        .times(1)
        .returning(|_| Ok(()));
    mock.expect_transcript()
        .withf(|w, after, limit| w.as_str() == "w-7" && *after == 7 && *limit == Some(20))
        .times(1)
        .returning(|_, _, _| Ok(transcript_page()));
    mock
}

async fn check_routing_to(target: &str) {
    let mut idle = MockRuntimeClient::new();
    expect_nothing(&mut idle);
    let (one, two) = if target == "build-1" {
        (routed_mock(), idle)
    } else {
        (idle, routed_mock())
    };
    let registry = registry(vec![
        remote("build-1", one),
        embedded("local").await,
        remote("build-2", two),
    ]);
    let id = rid(target);
    let w = wid("w-7");

    let list = registry
        .list_workers(
            &open(),
            &id,
            &WorkerQuery {
                status: Some(WorkerStatus::Running),
                after: Some(wid("w-0")),
                limit: Some(5),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        list.workers
            .iter()
            .map(|d| d.worker_id.as_str())
            .collect::<Vec<_>>(),
        ["w-1", "w-2"]
    );
    assert!(list.workers.iter().all(|d| d.runtime_id == id), "{list:?}");
    assert_eq!(list.next, Some(wid("w-2")), "the page cursor is kept");

    let created = registry
        .create_worker(
            &open(),
            &id,
            &NewWorkerRequest {
                profile: "shell".into(),
                label: Some("my shell".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(created.worker_id, wid("w-new"));
    assert_eq!(created.runtime_id, id, "shown with the registry's id");

    let got = registry.get_worker(&open(), &id, &w).await.unwrap();
    let mut expected = detail("w-7", target);
    expected.runtime_id = id.clone();
    assert_eq!(
        got, expected,
        "everything but runtime_id as the runtime said"
    );

    assert_eq!(
        registry
            .input(&open(), &id, &w, "ls -l\n".into())
            .await
            .unwrap(),
        InputAccepted { sequence: 42 }
    );
    assert_eq!(
        registry.cancel(&open(), &id, &w).await.unwrap(),
        WorkerStatusResponse {
            worker_id: w.clone(),
            status: WorkerStatus::Running
        }
    );
    assert_eq!(
        registry.stop(&open(), &id, &w).await.unwrap(),
        WorkerStatusResponse {
            worker_id: w.clone(),
            status: WorkerStatus::Stopped
        }
    );
    registry.delete(&open(), &id, &w).await.unwrap();
    assert_eq!(
        registry
            .transcript(&open(), &id, &w, 7, Some(20))
            .await
            .unwrap(),
        transcript_page()
    );

    // The embedded runtime answers on its own; neither mock hears of it.
    let local = rid("local");
    let created = registry
        .create_worker(&open(), &local, &echo_request())
        .await
        .unwrap();
    assert_eq!(created.runtime_id, local);
    let lw = created.worker_id.clone();
    assert_eq!(
        registry
            .get_worker(&open(), &local, &lw)
            .await
            .unwrap()
            .worker_id,
        lw
    );
    let listed = registry
        .list_workers(&open(), &local, &WorkerQuery::default())
        .await
        .unwrap();
    assert_eq!(listed.workers.len(), 1);
    assert_eq!(listed.workers[0].worker_id, lw);
    registry
        .input(&open(), &local, &lw, "hi\n".into())
        .await
        .unwrap();
    assert!(
        registry
            .transcript(&open(), &local, &lw, 0, None)
            .await
            .unwrap()
            .total
            >= 1
    );
    let stopped = registry.stop(&open(), &local, &lw).await.unwrap();
    assert!(stopped.status.is_ended(), "{stopped:?}");
    registry.delete(&open(), &local, &lw).await.unwrap();
    let gone = registry.get_worker(&open(), &local, &lw).await.unwrap_err();
    assert_source_error(&gone, "local", ErrorCode::WorkerNotFound, 404, "deleted");
    assert_eq!(gone.to_detail().worker_id, Some(lw));

    // Mock expectations (`times(1)`, `never()`) are verified when the registry drops.
    drop(registry);
}

#[tokio::test]
async fn calls_reach_exactly_the_first_remote_with_their_arguments() {
    check_routing_to("build-1").await;
}

#[tokio::test]
async fn calls_reach_exactly_the_second_remote_with_their_arguments() {
    check_routing_to("build-2").await;
}

#[tokio::test]
async fn source_returns_the_registered_source() {
    let mut mock = MockRuntimeClient::new();
    expect_nothing(&mut mock);
    let registry = registry(vec![remote("build-1", mock), embedded("local").await]);
    assert_eq!(
        registry.source(&rid("build-1")).unwrap().kind(),
        RuntimeSourceKind::Remote
    );
    assert_eq!(
        registry.source(&rid("local")).unwrap().kind(),
        RuntimeSourceKind::Embedded
    );
}

// ---------------------------------------------------------------------------------
// 3. Views
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn view_follows_refresh_outcomes() {
    let mut mock = MockRuntimeClient::new();
    let answer = info(UPSTREAM_SELF_ID, API_VERSION).await;
    mock.expect_info().times(6).returning(script(vec![
        Ok(answer.clone()),
        Err(TransportError::Unreachable {
            kind: UnreachableKind::Refused,
        }),
        Ok(answer.clone()),
        Err(TransportError::AuthRejected),
        Err(TransportError::Tls {
            kind: TlsFailure::NameMismatch,
        }),
        Ok(answer.clone()),
    ]));
    let registry = registry(vec![remote("build-1", mock)]);
    let id = rid("build-1");

    let initial = registry.runtimes(&open());
    assert_eq!(initial.len(), 1);
    let initial = &initial[0];
    assert_eq!(initial.runtime_id, id);
    assert_eq!(initial.display_name, "Remote build-1");
    assert_eq!(initial.source, RuntimeSourceKind::Remote);
    assert_eq!(initial.state, RuntimeState::Unknown);
    assert_eq!(initial.last_seen, None);
    assert_eq!(initial.last_error, None);
    assert!(initial.capabilities.is_empty());
    assert!(initial.profiles.is_empty());
    assert_eq!(initial.workers, WorkerCounts::default());

    // Success: ready, with what the runtime said about itself.
    let ready = registry.runtime(&open(), &id).await.unwrap();
    let expected = answer;
    assert_eq!(
        ready.runtime_id, id,
        "the configured id, not the runtime's own"
    );
    assert_eq!(ready.display_name, "Remote build-1");
    assert_eq!(ready.state, RuntimeState::Ready);
    let seen = ready.last_seen.clone().expect("last_seen after an answer");
    assert!(
        seen.0.ends_with('Z') && seen.0.contains('T'),
        "RFC 3339 UTC: {seen:?}"
    );
    assert_eq!(ready.last_error, None);
    assert_eq!(ready.capabilities, expected.capabilities);
    assert_eq!(ready.profiles, expected.profiles);
    assert_eq!(ready.workers, expected.workers);
    assert_eq!(registry.runtimes(&open()), vec![ready.clone()]);

    // Failure: still Ok, the cached view with its new state and error.
    let down = registry
        .runtime(&open(), &id)
        .await
        .expect("cached view on failure");
    assert_eq!(down.state, RuntimeState::Unreachable);
    let error = down.last_error.clone().expect("last_error on failure");
    assert_eq!(error.code, ErrorCode::RuntimeUnreachable);
    assert!(!error.message.is_empty());
    assert_eq!(
        down.last_seen,
        Some(seen),
        "last_seen is when it last answered"
    );
    assert_eq!(down.capabilities, expected.capabilities, "cached");
    assert_eq!(down.profiles, expected.profiles, "cached");
    assert_eq!(down.workers, expected.workers, "cached");
    assert_eq!(registry.runtimes(&open()), vec![down]);

    // Success again: ready, error cleared.
    let back = registry.runtime(&open(), &id).await.unwrap();
    assert_eq!(back.state, RuntimeState::Ready);
    assert_eq!(back.last_error, None);
    assert!(back.last_seen.is_some());

    // Credentials rejected.
    let auth = registry.runtime(&open(), &id).await.unwrap();
    assert_eq!(auth.state, RuntimeState::AuthFailed);
    assert_eq!(
        auth.last_error.map(|e| e.code),
        Some(ErrorCode::RuntimeAuthFailed)
    );

    // TLS failed: its own state, and a message that says which kind.
    let tls = registry.runtime(&open(), &id).await.unwrap();
    assert_eq!(tls.state, RuntimeState::TlsFailed);
    let error = tls.last_error.expect("last_error on a TLS failure");
    assert_eq!(error.code, ErrorCode::RuntimeTlsFailed);
    assert!(error.message.contains("name_mismatch"), "{}", error.message);
    assert!(
        error.message.contains("tls_server_name"),
        "{}",
        error.message
    );

    // And back.
    let back = registry.runtime(&open(), &id).await.unwrap();
    assert_eq!(back.state, RuntimeState::Ready);
    assert_eq!(back.last_error, None);
}

#[tokio::test]
async fn wrong_api_version_is_incompatible_and_stays_so_after_other_answers() {
    let mut mock = MockRuntimeClient::new();
    let answer = info(UPSTREAM_SELF_ID, 2).await;
    mock.expect_info()
        .times(1)
        .returning(move || Ok(answer.clone()));
    mock.expect_get_worker()
        .times(1)
        .returning(|w| Ok(detail(w.as_str(), UPSTREAM_SELF_ID)));
    mock.expect_list_workers()
        .times(1)
        .returning(|_| Ok(page(&[], None)));
    mock.expect_stop().times(1).returning(|_| {
        Err(runtime_error(
            404,
            ErrorCode::WorkerNotFound,
            "no worker w-9",
        ))
    });
    let registry = registry(vec![remote("build-1", mock)]);
    let id = rid("build-1");

    let view = registry.runtime(&open(), &id).await.unwrap();
    assert_eq!(view.state, RuntimeState::Incompatible);
    assert!(view.last_error.is_some(), "says why it is incompatible");

    registry
        .get_worker(&open(), &id, &wid("w-1"))
        .await
        .unwrap();
    registry
        .list_workers(&open(), &id, &WorkerQuery::default())
        .await
        .unwrap();
    let _ = registry.stop(&open(), &id, &wid("w-9")).await.unwrap_err();
    let after = &registry.runtimes(&open())[0];
    assert_eq!(after.state, RuntimeState::Incompatible);
    assert!(after.last_error.is_some());
}

#[tokio::test]
async fn a_typed_refusal_means_the_runtime_answered() {
    let mut mock = MockRuntimeClient::new();
    let answer = info(UPSTREAM_SELF_ID, API_VERSION).await;
    mock.expect_info()
        .times(1)
        .returning(move || Ok(answer.clone()));
    mock.expect_get_worker().times(3).returning({
        let mut answers = script(vec![
            Err(runtime_error(404, ErrorCode::WorkerNotFound, "no worker")),
            Err(TransportError::Timeout {
                phase: TimeoutPhase::Request,
                timeout_ms: 5000,
            }),
            Err(runtime_error(404, ErrorCode::WorkerNotFound, "no worker")),
        ]);
        move |_| answers()
    });
    let registry = registry(vec![remote("build-1", mock)]);
    let id = rid("build-1");
    let w = wid("w-1");

    assert_eq!(
        registry.runtime(&open(), &id).await.unwrap().state,
        RuntimeState::Ready
    );

    let err = registry.get_worker(&open(), &id, &w).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::WorkerNotFound);
    let view = &registry.runtimes(&open())[0];
    assert_eq!(view.state, RuntimeState::Ready, "it answered");
    assert_eq!(view.last_error, None);

    // A failed call (not only a probe) marks the runtime down...
    let err = registry.get_worker(&open(), &id, &w).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RuntimeTimeout);
    let view = &registry.runtimes(&open())[0];
    assert_eq!(view.state, RuntimeState::Unreachable);
    assert_eq!(
        view.last_error.as_ref().map(|e| e.code),
        Some(ErrorCode::RuntimeTimeout)
    );

    // ...and any answer, even a refusal, brings it back.
    let _ = registry.get_worker(&open(), &id, &w).await.unwrap_err();
    let view = &registry.runtimes(&open())[0];
    assert_eq!(view.state, RuntimeState::Ready);
    assert_eq!(view.last_error, None);
}

/// A runtime that answers its own description with an error of its own (a refusal,
/// a missing route) is not `ready`, though it answered: `incompatible`, with a
/// protocol error that says what it answered, and it stays so whatever other calls
/// get, until it describes itself properly.
#[tokio::test]
async fn an_error_for_the_description_makes_the_view_incompatible_until_a_good_one() {
    let check = |answer: fn() -> TransportError, expected: &'static str| async move {
        let mut mock = MockRuntimeClient::new();
        let good = info(UPSTREAM_SELF_ID, API_VERSION).await;
        let mut answers = vec![Ok(good), Err(answer())];
        mock.expect_info()
            .times(2)
            .returning(move || answers.pop().unwrap());
        mock.expect_get_worker()
            .times(1)
            .returning(|w| Ok(detail(w.as_str(), UPSTREAM_SELF_ID)));
        let registry = registry(vec![remote("build-1", mock)]);
        let id = rid("build-1");
        let view = registry.runtime(&open(), &id).await.unwrap();
        assert_eq!(view.state, RuntimeState::Incompatible, "{expected}");
        let error = view.last_error.expect("says why");
        assert_eq!(error.code, ErrorCode::RuntimeProtocolError);
        assert!(error.message.contains(expected), "{}", error.message);
        // Another call's answer does not make it ready...
        registry
            .get_worker(&open(), &id, &wid("w-1"))
            .await
            .unwrap();
        assert_eq!(
            registry.runtimes(&open())[0].state,
            RuntimeState::Incompatible,
            "{expected}"
        );
        // ...a good description does.
        let view = registry.runtime(&open(), &id).await.unwrap();
        assert_eq!(view.state, RuntimeState::Ready, "{expected}");
        assert_eq!(view.last_error, None);
    };
    check(
        || runtime_error(400, ErrorCode::InvalidRequest, "no"),
        "with the error code invalid_request",
    )
    .await;
    check(
        || runtime_error(404, ErrorCode::WorkerNotFound, "no"),
        "with the error code worker_not_found",
    )
    .await;
    check(
        || TransportError::Unsupported {
            what: "GET /v1/runtime".into(),
        },
        "is base_url the runtime's address?",
    )
    .await;
}

#[tokio::test]
async fn malformed_answer_makes_the_view_incompatible() {
    let mut mock = MockRuntimeClient::new();
    mock.expect_info().times(1).returning(|| {
        Err(TransportError::Protocol {
            reason: "missing field `epoch`".into(),
        })
    });
    let registry = registry(vec![remote("build-1", mock)]);
    let view = registry.runtime(&open(), &rid("build-1")).await.unwrap();
    assert_eq!(view.state, RuntimeState::Incompatible);
    assert_eq!(
        view.last_error.map(|e| e.code),
        Some(ErrorCode::RuntimeProtocolError)
    );
}

#[tokio::test]
async fn refresh_all_refreshes_every_view() {
    let mut one = MockRuntimeClient::new();
    let answer = info(UPSTREAM_SELF_ID, API_VERSION).await;
    one.expect_info()
        .times(1)
        .returning(move || Ok(answer.clone()));
    let mut two = MockRuntimeClient::new();
    two.expect_info().times(1).returning(|| {
        Err(TransportError::Unreachable {
            kind: UnreachableKind::Dns,
        })
    });
    let registry = registry(vec![
        remote("build-1", one),
        remote("build-2", two),
        embedded("local").await,
    ]);
    registry.refresh_all().await;
    let states: Vec<_> = registry
        .runtimes(&open())
        .into_iter()
        .map(|r| (r.runtime_id.as_str().to_owned(), r.source, r.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (
                "build-1".to_owned(),
                RuntimeSourceKind::Remote,
                RuntimeState::Ready
            ),
            (
                "build-2".to_owned(),
                RuntimeSourceKind::Remote,
                RuntimeState::Unreachable
            ),
            (
                "local".to_owned(),
                RuntimeSourceKind::Embedded,
                RuntimeState::Ready
            ),
        ]
    );
    let local = &registry.runtimes(&open())[2];
    assert!(local.profiles.iter().any(|p| p.name == "echo"));
}

// ---------------------------------------------------------------------------------
// 4. list_all
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn list_all_lists_answering_runtimes_and_names_the_failing_ones() {
    let query = WorkerQuery {
        status: Some(WorkerStatus::Running),
        after: None,
        limit: None,
    };

    let mut failing = MockRuntimeClient::new();
    failing.expect_list_workers().times(1).returning(|_| {
        Err(TransportError::Unreachable {
            kind: UnreachableKind::Reset,
        })
    });

    // Three pages (of the runtime's own size: no limit asked): followed until
    // `next` is null, the filter kept on every page.
    let mut paged = MockRuntimeClient::new();
    let pages: [(
        Option<&'static str>,
        &'static [&'static str],
        Option<&'static str>,
    ); 3] = [
        (None, &["a", "b"], Some("b")),
        (Some("b"), &["c", "d"], Some("d")),
        (Some("d"), &["e"], None),
    ];
    for (after, ids, next) in pages {
        paged
            .expect_list_workers()
            .withf(move |q| {
                q.after.as_ref().map(WorkerId::as_str) == after
                    && q.status == Some(WorkerStatus::Running)
                    && q.limit.is_none()
            })
            .times(1)
            .returning(move |_| Ok(page(ids, next)));
    }

    let registry = registry(vec![remote("build-1", failing), remote("build-2", paged)]);
    let all = registry.list_all(&open(), &query).await;

    let names = listed(&all.workers);
    assert_eq!(
        names,
        [
            ("build-2", "a"),
            ("build-2", "b"),
            ("build-2", "c"),
            ("build-2", "d"),
            ("build-2", "e")
        ]
    );
    assert_eq!(all.unavailable.len(), 1);
    let entry = &all.unavailable[0];
    assert_eq!(entry.runtime_id, rid("build-1"));
    assert_eq!(entry.error.code, ErrorCode::RuntimeUnreachable);
    assert_eq!(entry.error.runtime_id, Some(rid("build-1")));
    assert!(!entry.error.message.is_empty());

    // The outcomes reached the views.
    let views = registry.runtimes(&open());
    assert_eq!(views[0].state, RuntimeState::Unreachable);
    assert_eq!(views[1].state, RuntimeState::Ready);
}

/// Once a runtime has described itself, `list_all` reads it in pages of its
/// maximum size; a runtime that refuses that size (restarted with a smaller
/// maximum since) is read in pages of its default size instead, not reported as
/// unavailable.
#[tokio::test]
async fn list_all_pages_at_the_runtimes_maximum_and_falls_back_when_refused() {
    let mut described = info("build-1", switchyard_protocol::API_VERSION).await;
    described.limits.transcript_page_max = 500;
    let mut mock = MockRuntimeClient::new();
    mock.expect_info().returning(move || Ok(described.clone()));
    let mut asked = mockall::Sequence::new();
    mock.expect_list_workers()
        .withf(|q| q.limit == Some(500) && q.after.is_none())
        .times(1)
        .in_sequence(&mut asked)
        .returning(|_| Ok(page(&["a", "b"], Some("b"))));
    mock.expect_list_workers()
        .withf(|q| q.limit == Some(500) && q.after.as_ref().map(WorkerId::as_str) == Some("b"))
        .times(1)
        .in_sequence(&mut asked)
        .returning(|_| {
            Err(runtime_error(
                400,
                ErrorCode::LimitTooLarge,
                "limit 500 is over the maximum of 100",
            ))
        });
    mock.expect_list_workers()
        .withf(|q| q.limit.is_none() && q.after.as_ref().map(WorkerId::as_str) == Some("b"))
        .times(1)
        .in_sequence(&mut asked)
        .returning(|_| Ok(page(&["c"], None)));
    let registry = registry(vec![remote("build-1", mock)]);
    registry.runtime(&open(), &rid("build-1")).await.unwrap();

    let all = registry.list_all(&open(), &WorkerQuery::default()).await;
    assert!(all.unavailable.is_empty(), "{:?}", all.unavailable);
    assert_eq!(
        listed(&all.workers),
        [("build-1", "a"), ("build-1", "b"), ("build-1", "c")]
    );
}

#[tokio::test]
async fn list_all_includes_the_embedded_runtime() {
    let mut mock = MockRuntimeClient::new();
    mock.expect_list_workers()
        .times(1)
        .returning(|_| Ok(page(&["r-1"], None)));
    let registry = registry(vec![embedded("local").await, remote("build-1", mock)]);
    let created = registry
        .create_worker(&open(), &rid("local"), &echo_request())
        .await
        .unwrap();
    let all = registry.list_all(&open(), &WorkerQuery::default()).await;
    assert!(all.unavailable.is_empty(), "{:?}", all.unavailable);
    let names = listed(&all.workers);
    assert_eq!(
        names,
        [("local", created.worker_id.as_str()), ("build-1", "r-1")]
    );
}

#[tokio::test]
async fn list_all_does_not_loop_on_a_next_that_does_not_advance() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut mock = MockRuntimeClient::new();
    let counter = calls.clone();
    mock.expect_list_workers().returning(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        // Always the same page, pointing back at itself.
        Ok(page(&["a"], Some("a")))
    });
    let registry = registry(vec![remote("build-1", mock)]);
    let all = registry.list_all(&open(), &WorkerQuery::default()).await;

    let calls = calls.load(Ordering::SeqCst);
    assert!(calls <= 3, "the runtime was asked {calls} times");
    assert_eq!(all.unavailable.len(), 1);
    assert_eq!(
        all.unavailable[0].error.code,
        ErrorCode::RuntimeProtocolError
    );
    let mut seen = std::collections::HashSet::new();
    for w in &all.workers {
        assert!(
            seen.insert((w.runtime_id.clone(), w.worker_id.clone())),
            "{} listed more than once ({} entries)",
            w.worker_id.as_str(),
            all.workers.len()
        );
    }
}

// ---------------------------------------------------------------------------------
// 5. Policy
// ---------------------------------------------------------------------------------

/// Denies stop; records every question it is asked.
#[derive(Default)]
struct DenyStop {
    asked: Mutex<Vec<String>>,
}

impl Policy for DenyStop {
    fn authorize(&self, request: &PolicyRequest<'_>) -> Result<(), PolicyDenied> {
        self.asked.lock().unwrap().push(format!(
            "{} {} {:?} {:?}",
            request.caller.name(),
            request.runtime_id.as_str(),
            request.worker_id.map(WorkerId::as_str),
            request.action
        ));
        match request.action {
            Action::Stop => Err(PolicyDenied("stopping workers is not allowed here".into())),
            _ => Ok(()),
        }
    }
}

#[tokio::test]
async fn policy_denial_is_403_forbidden_and_the_runtime_is_never_called() {
    let mut mock = MockRuntimeClient::new();
    mock.expect_stop().never();
    mock.expect_get_worker()
        .times(1)
        .returning(|w| Ok(detail(w.as_str(), UPSTREAM_SELF_ID)));
    let policy = Arc::new(DenyStop::default());
    let registry = RuntimeRegistry::new(vec![remote("build-1", mock)], policy.clone()).unwrap();
    let id = rid("build-1");
    let w = wid("w-1");

    let err = registry.stop(&open(), &id, &w).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    assert_eq!(err.status(), 403);
    let detail = err.to_detail();
    assert_eq!(detail.code, ErrorCode::Forbidden);
    assert_eq!(detail.message, "stopping workers is not allowed here");
    // A denial says nothing about the runtime's health.
    let view = &registry.runtimes(&open())[0];
    assert_eq!(view.state, RuntimeState::Unknown);
    assert_eq!(view.last_error, None);

    // Other actions go through.
    registry.get_worker(&open(), &id, &w).await.unwrap();
    assert_eq!(
        *policy.asked.lock().unwrap(),
        vec![
            r#"anonymous build-1 Some("w-1") Stop"#.to_owned(),
            r#"anonymous build-1 None ViewRuntime"#.to_owned(),
            r#"anonymous build-1 Some("w-1") ViewWorker"#.to_owned(),
        ]
    );
}

/// A token of `role` granted only the runtimes matching `globs`.
fn granted(role: Role, globs: &[&str]) -> Caller {
    Caller::identified(
        "alice",
        role,
        RuntimeGrants::Only(globs.iter().map(|g| RuntimeGlob::new(g).unwrap()).collect()),
        WorkerScope::All,
    )
}

/// A runtime of `total` workers served in pages of `page` (ids in order); the
/// workers from `alice_from` on are alice's, the others bob's. Counts the pages read.
fn owners_runtime(
    total: usize,
    page: usize,
    alice_from: usize,
    pages: Arc<AtomicUsize>,
) -> MockRuntimeClient {
    let mut mock = MockRuntimeClient::new();
    mock.expect_list_workers().returning(move |query| {
        pages.fetch_add(1, Ordering::SeqCst);
        let start = query
            .after
            .as_ref()
            .map_or(0, |after| after.as_str()[2..].parse::<usize>().unwrap() + 1);
        let end = (start + page).min(total);
        let workers = (start..end)
            .map(|n| {
                let mut worker = detail(&format!("w-{n:06}"), UPSTREAM_SELF_ID);
                worker.owner = Some(if n >= alice_from { "alice" } else { "bob" }.into());
                worker
            })
            .collect();
        let next = (end < total).then(|| wid(&format!("w-{:06}", end - 1)));
        Ok(WorkerList { workers, next })
    });
    mock
}

fn own_scoped(name: &str) -> Caller {
    Caller::identified(
        name,
        Role::Operator,
        RuntimeGrants::Only(vec![RuntimeGlob::new("*").unwrap()]),
        WorkerScope::Own,
    )
}

/// For a caller who reaches only its own workers, another owner's worker is
/// answered as one that does not exist, even once its owner is remembered: while
/// the runtime is down both are the runtime's failure (not a quick 404 for the one
/// and a 502 for the other, which would tell them apart).
#[tokio::test]
async fn another_owners_worker_is_answered_like_a_missing_one_while_the_runtime_is_down() {
    let mut mock = MockRuntimeClient::new();
    mock.expect_list_workers().times(1).returning(|_| {
        let mut bobs = detail("w-bob", UPSTREAM_SELF_ID);
        bobs.owner = Some("bob".into());
        Ok(WorkerList {
            workers: vec![bobs],
            next: None,
        })
    });
    mock.expect_get_worker().times(2).returning(|_| {
        Err(TransportError::Unreachable {
            kind: UnreachableKind::Refused,
        })
    });
    let registry =
        RuntimeRegistry::new(vec![remote("build-1", mock)], Arc::new(RolePolicy)).unwrap();
    let id = rid("build-1");
    // The backend has seen bob's worker (and remembers its owner).
    let seen = registry
        .list_workers(&own_scoped("bob"), &id, &WorkerQuery::default())
        .await
        .unwrap();
    assert_eq!(seen.workers.len(), 1);
    // The runtime goes down: alice gets the same for bob's worker as for none.
    let alice = own_scoped("alice");
    for worker in ["w-bob", "w-none"] {
        let error = registry.stop(&alice, &id, &wid(worker)).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::RuntimeUnreachable, "{worker}");
    }
}

#[tokio::test]
async fn listing_all_counts_a_scoped_callers_own_workers_against_the_cap() {
    // 11,000 of bob's workers come first, then 1,000 of alice's: a cap counted on
    // everything read would stop before alice's and show her none.
    let pages = Arc::new(AtomicUsize::new(0));
    let registry = RuntimeRegistry::new(
        vec![remote(
            "build-1",
            owners_runtime(12_000, 300, 11_000, pages.clone()),
        )],
        Arc::new(RolePolicy),
    )
    .unwrap();
    let all = registry
        .list_all(&own_scoped("alice"), &WorkerQuery::default())
        .await;
    assert!(all.unavailable.is_empty(), "{:?}", all.unavailable);
    assert_eq!(all.workers.len(), 1000);
    assert!(
        all.workers
            .iter()
            .all(|w| w.owner.as_deref() == Some("alice") && w.runtime_id == rid("build-1"))
    );
    assert_eq!(all.workers[0].worker_id, wid("w-011000"));

    // Bob's own are capped at LIST_ALL_MAX_PER_RUNTIME, as anyone's list is (not
    // a page more: pages of 300 reach it at 10,200).
    let all = registry
        .list_all(&own_scoped("bob"), &WorkerQuery::default())
        .await;
    assert_eq!(
        all.workers.len(),
        switchyard_registry::LIST_ALL_MAX_PER_RUNTIME
    );
    assert!(
        all.workers
            .iter()
            .all(|w| w.owner.as_deref() == Some("bob"))
    );
}

#[tokio::test]
async fn listing_all_for_a_scoped_caller_reads_a_bounded_number_of_workers() {
    // None of 50,000 workers is carol's: the listing reads no more than the scan
    // bound and answers with nothing, not with an error.
    let pages = Arc::new(AtomicUsize::new(0));
    let registry = RuntimeRegistry::new(
        vec![remote(
            "build-1",
            owners_runtime(50_000, 1000, 50_000, pages.clone()),
        )],
        Arc::new(RolePolicy),
    )
    .unwrap();
    let all = registry
        .list_all(&own_scoped("carol"), &WorkerQuery::default())
        .await;
    assert!(all.workers.is_empty());
    assert!(all.unavailable.is_empty(), "{:?}", all.unavailable);
    assert_eq!(
        pages.load(Ordering::SeqCst),
        switchyard_registry::LIST_ALL_MAX_SCANNED_PER_RUNTIME / 1000
    );
}

#[tokio::test]
async fn runtimes_outside_a_callers_grants_are_absent_from_lists_and_forbidden_by_name() {
    // `build-2` is down: a caller who may not use it must not even see it as
    // unavailable; one who may sees it under `unavailable`.
    let mut up = MockRuntimeClient::new();
    up.expect_list_workers()
        .returning(|_| Ok(page(&["w-1"], None)));
    let mut down = MockRuntimeClient::new();
    down.expect_list_workers().times(1).returning(|_| {
        Err(TransportError::Unreachable {
            kind: UnreachableKind::Refused,
        })
    });
    down.expect_get_worker().never();
    let registry = RuntimeRegistry::new(
        vec![remote("build-1", up), remote("build-2", down)],
        Arc::new(RolePolicy),
    )
    .unwrap();
    let only_1 = granted(Role::Viewer, &["build-1"]);

    let ids = |views: Vec<switchyard_protocol::BackendRuntime>| {
        views
            .into_iter()
            .map(|v| v.runtime_id.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(registry.runtimes(&only_1)), ["build-1"]);
    assert_eq!(
        ids(registry.runtimes(&granted(Role::Viewer, &["build-*"]))),
        ["build-1", "build-2"]
    );

    let all = registry.list_all(&only_1, &WorkerQuery::default()).await;
    assert_eq!(all.workers.len(), 1);
    assert_eq!(all.workers[0].runtime_id, rid("build-1"));
    assert!(all.unavailable.is_empty(), "{:?}", all.unavailable);
    let all = registry
        .list_all(&granted(Role::Viewer, &["*"]), &WorkerQuery::default())
        .await;
    assert_eq!(all.unavailable.len(), 1);
    assert_eq!(all.unavailable[0].runtime_id, rid("build-2"));

    // Named: 403, whether the runtime exists or not, and the runtime is not asked.
    let w = wid("w-1");
    for runtime in ["build-2", "no-such-runtime"] {
        let id = rid(runtime);
        let err = registry.get_worker(&only_1, &id, &w).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden, "{runtime}");
        let err = registry.runtime(&only_1, &id).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden, "{runtime}");
    }
    // A caller granted everything gets 404 for a runtime that does not exist.
    let err = registry
        .runtime(&granted(Role::Viewer, &["*"]), &rid("no-such-runtime"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RuntimeNotFound);
    // A viewer may read but not command.
    let err = registry
        .stop(&only_1, &rid("build-1"), &w)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    assert!(
        registry
            .authorize_admin(&granted(Role::Operator, &["*"]))
            .is_err()
    );
    assert!(
        registry
            .authorize_admin(&granted(Role::Admin, &["*"]))
            .is_ok()
    );
}

#[tokio::test]
async fn resize_is_routed_checked_and_asks_the_policy_for_resize() {
    let mut mock = MockRuntimeClient::new();
    mock.expect_resize()
        .times(2)
        .returning(|w, size| match w.as_str() {
            "w-1" => Ok(ResizeResponse {
                worker_id: w.clone(),
                cols: size.cols,
                rows: size.rows,
            }),
            _ => Err(runtime_error(
                400,
                ErrorCode::NotATerminal,
                "worker w-2 is not a terminal",
            )),
        });
    let policy = Arc::new(DenyStop::default());
    let registry = RuntimeRegistry::new(vec![remote("build-1", mock)], policy.clone()).unwrap();
    let id = rid("build-1");
    // The caller reaches the policy with every resize.
    let alice = granted(Role::Operator, &["build-*"]);
    let size = ResizeRequest {
        cols: 120,
        rows: 40,
    };
    assert_eq!(
        registry
            .resize(&alice, &id, &wid("w-1"), size)
            .await
            .unwrap(),
        ResizeResponse {
            worker_id: wid("w-1"),
            cols: 120,
            rows: 40
        }
    );
    // The runtime's own refusal passes through with its code.
    let err = registry
        .resize(&alice, &id, &wid("w-2"), size)
        .await
        .unwrap_err();
    assert_source_error(
        &err,
        "build-1",
        ErrorCode::NotATerminal,
        400,
        "not a terminal",
    );
    // A size out of range is refused without a call (the mock allows two).
    for (cols, rows) in [(0, 24), (80, 1001)] {
        let err = registry
            .resize(&alice, &id, &wid("w-1"), ResizeRequest { cols, rows })
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest, "{cols}x{rows}");
    }
    assert_eq!(
        *policy.asked.lock().unwrap(),
        vec![
            r#"alice build-1 Some("w-1") Resize"#.to_owned(),
            r#"alice build-1 Some("w-2") Resize"#.to_owned(),
        ]
    );
}

#[tokio::test]
async fn filter_event_passes_events_through_by_default() {
    let event = WorkerEvent::Output {
        sequence: 3,
        stream: OutputStream::Stderr,
        text: "oops\n".into(),
    };
    let (r, w) = (rid("build-1"), wid("w-1"));
    assert_eq!(
        AllowAll.filter_event(&open(), &r, &w, event.clone()),
        Some(event.clone())
    );
    assert_eq!(
        DenyStop::default().filter_event(&open(), &r, &w, event.clone()),
        Some(event.clone()),
        "a policy that does not override filter_event passes events through"
    );
    let registry = registry(vec![]);
    assert_eq!(
        registry
            .policy()
            .filter_event(&open(), &r, &w, event.clone()),
        Some(event)
    );
}

// ---------------------------------------------------------------------------------
// 6. call_timeout bounds a hanging source
// ---------------------------------------------------------------------------------

/// A source whose every call hangs forever; `own_deadlines`: it claims to bound
/// each of its calls itself.
struct Hang {
    own_deadlines: bool,
}

#[async_trait::async_trait]
impl RuntimeSource for Hang {
    fn kind(&self) -> RuntimeSourceKind {
        RuntimeSourceKind::Remote
    }
    fn bounds_each_call(&self) -> bool {
        self.own_deadlines
    }
    async fn info(&self) -> Result<RuntimeInfo, SourceError> {
        std::future::pending().await
    }
    async fn list_workers(&self, _: &WorkerQuery) -> Result<WorkerList, SourceError> {
        std::future::pending().await
    }
    async fn create_worker(&self, _: &CreateWorkerRequest) -> Result<WorkerDetail, SourceError> {
        std::future::pending().await
    }
    async fn get_worker(&self, _: &WorkerId) -> Result<WorkerDetail, SourceError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        unreachable!("the registry gave up long ago")
    }
    async fn input(&self, _: &WorkerId, _: String) -> Result<InputAccepted, SourceError> {
        std::future::pending().await
    }
    async fn resize(&self, _: &WorkerId, _: ResizeRequest) -> Result<ResizeResponse, SourceError> {
        std::future::pending().await
    }
    async fn cancel(&self, _: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
        std::future::pending().await
    }
    async fn stop(&self, _: &WorkerId) -> Result<WorkerStatusResponse, SourceError> {
        std::future::pending().await
    }
    async fn delete(&self, _: &WorkerId) -> Result<(), SourceError> {
        std::future::pending().await
    }
    async fn transcript(
        &self,
        _: &WorkerId,
        _: u64,
        _: Option<u32>,
    ) -> Result<TranscriptPage, SourceError> {
        std::future::pending().await
    }
    async fn subscribe(
        &self,
        _: &WorkerId,
        _: Option<&ResumePoint>,
    ) -> Result<Box<dyn SourceEvents>, SourceError> {
        std::future::pending().await
    }
}

fn hanging(id: &str, timeout: Duration) -> RegisteredRuntime {
    RegisteredRuntime::new(
        rid(id),
        "Hangs",
        Arc::new(Hang {
            own_deadlines: false,
        }),
    )
    .with_call_timeout(timeout)
}

const HANG_TIMEOUT: Duration = Duration::from_millis(200);
const MARGIN: Duration = Duration::from_secs(5);

#[tokio::test]
async fn call_timeout_bounds_a_hanging_source() {
    let registry = registry(vec![hanging("slow", HANG_TIMEOUT)]);
    let id = rid("slow");

    let started = Instant::now();
    let err = registry
        .get_worker(&open(), &id, &wid("w-1"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_source_error(&err, "slow", ErrorCode::RuntimeTimeout, 504, "get_worker");
    assert!(took >= HANG_TIMEOUT, "gave up early: {took:?}");
    assert!(took < MARGIN, "took {took:?}");

    let started = Instant::now();
    let err = registry.stop(&open(), &id, &wid("w-1")).await.unwrap_err();
    assert_source_error(&err, "slow", ErrorCode::RuntimeTimeout, 504, "stop");
    assert!(started.elapsed() < MARGIN);

    // The refresh is bounded too, and answers the cached view.
    let started = Instant::now();
    let view = registry.runtime(&open(), &id).await.unwrap();
    assert!(started.elapsed() < MARGIN);
    assert_eq!(view.state, RuntimeState::Unreachable);
    assert_eq!(
        view.last_error.map(|e| e.code),
        Some(ErrorCode::RuntimeTimeout)
    );
}

/// A source that bounds each call itself has the backstop only on what spans
/// several calls: its single calls are left to it, the listing of all workers
/// (which pages through it) is still cut off.
#[tokio::test]
async fn a_source_with_its_own_deadlines_keeps_the_backstop_for_listing_all() {
    let registry = registry(vec![
        RegisteredRuntime::new(
            rid("own"),
            "Own deadlines",
            Arc::new(Hang {
                own_deadlines: true,
            }),
        )
        .with_call_timeout(HANG_TIMEOUT),
    ]);
    let id = rid("own");

    let single = tokio::time::timeout(
        HANG_TIMEOUT * 3,
        registry.get_worker(&open(), &id, &wid("w-1")),
    )
    .await;
    assert!(
        single.is_err(),
        "a single call is left to the source's own deadline: {single:?}"
    );

    let all = tokio::time::timeout(MARGIN, registry.list_all(&open(), &WorkerQuery::default()))
        .await
        .expect("the listing of all is cut off by the backstop");
    assert!(all.workers.is_empty());
    assert_eq!(all.unavailable.len(), 1, "cut off as a whole");
    assert_eq!(all.unavailable[0].error.code, ErrorCode::RuntimeTimeout);
}

#[tokio::test]
async fn a_hanging_runtime_does_not_hold_up_list_all() {
    let mut mock = MockRuntimeClient::new();
    mock.expect_list_workers()
        .times(1)
        .returning(|_| Ok(page(&["w-1"], None)));
    let registry = registry(vec![hanging("slow", HANG_TIMEOUT), remote("build-1", mock)]);

    let started = Instant::now();
    let all = registry.list_all(&open(), &WorkerQuery::default()).await;
    assert!(started.elapsed() < MARGIN, "took {:?}", started.elapsed());
    assert_eq!(all.workers.len(), 1);
    assert_eq!(all.workers[0].runtime_id, rid("build-1"));
    assert_eq!(all.unavailable.len(), 1);
    assert_eq!(all.unavailable[0].runtime_id, rid("slow"));
    assert_eq!(all.unavailable[0].error.code, ErrorCode::RuntimeTimeout);
}

// ---------------------------------------------------------------------------------
// 7. Secrets never reach Debug output or error details
// ---------------------------------------------------------------------------------

const URL: &str = "http://10.9.8.7:7701";
const HOST_PORT: &str = "10.9.8.7:7701";
const HOST: &str = "10.9.8.7";
const TOKEN: &str = "tok-secret";

fn secrets_scrubber() -> Scrubber {
    Scrubber::new([URL, HOST_PORT, HOST, TOKEN].map(String::from))
}

fn assert_clean(text: &str, what: &str) {
    for secret in [URL, HOST_PORT, HOST, TOKEN, "7701"] {
        assert!(!text.contains(secret), "{what} leaks {secret:?}: {text}");
    }
}

#[tokio::test]
async fn scrubber_removes_urls_hosts_and_tokens_from_runtime_messages() {
    let leaky = format!(
        "worker w-1 not found at {URL}/v1/workers/w-1 (host {HOST_PORT}, ip {HOST}) \
         with Authorization: Bearer {TOKEN}"
    );
    let mut mock = MockRuntimeClient::new();
    let message = leaky.clone();
    mock.expect_get_worker().times(1).returning(move |_| {
        Err(TransportError::Runtime {
            status: 404,
            detail: ErrorDetail::new(ErrorCode::WorkerNotFound, message.clone()),
        })
    });
    let reason = leaky.clone();
    mock.expect_info().times(1).returning(move || {
        Err(TransportError::Protocol {
            reason: reason.clone(),
        })
    });
    let what = leaky.clone();
    mock.expect_cancel()
        .times(1)
        .returning(move |_| Err(TransportError::Unsupported { what: what.clone() }));
    let registry = registry(vec![remote_with("build-1", mock, secrets_scrubber())]);
    let id = rid("build-1");
    let w = wid("w-1");

    let err = registry.get_worker(&open(), &id, &w).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::WorkerNotFound);
    let detail = err.to_detail();
    assert!(
        detail.message.contains("[redacted]") && detail.message.contains("worker w-1 not found"),
        "scrubbed, not dropped: {}",
        detail.message
    );
    assert_clean(&detail.message, "to_detail().message");
    assert_clean(&format!("{detail:?}"), "Debug of the detail");
    assert_clean(&err.to_string(), "Display of the error");
    assert_clean(&format!("{err:?}"), "Debug of the error");

    let err = registry.cancel(&open(), &id, &w).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unsupported);
    assert_clean(&err.to_detail().message, "unsupported message");
    assert_clean(&format!("{err:?}"), "Debug of unsupported");

    let view = registry.runtime(&open(), &id).await.unwrap();
    assert_eq!(view.state, RuntimeState::Incompatible);
    let last = view.last_error.clone().expect("protocol error recorded");
    assert_eq!(last.code, ErrorCode::RuntimeProtocolError);
    assert_clean(&last.message, "view last_error");
    assert_clean(&format!("{view:?}"), "Debug of the view");

    assert_clean(&format!("{registry:?}"), "Debug of the registry");
}

#[tokio::test]
async fn debug_output_never_holds_a_token() {
    let mut mock = MockRuntimeClient::new();
    expect_nothing(&mut mock);
    let runtime = remote_with("build-1", mock, secrets_scrubber());
    assert_clean(&format!("{runtime:?}"), "Debug of RegisteredRuntime");
    assert_clean(
        &format!("{:?}", secrets_scrubber()),
        "Debug of the scrubber",
    );
    let source = RemoteSource::new(
        Arc::new(MockRuntimeClient::new()),
        idle_events(),
        secrets_scrubber(),
    );
    assert_clean(&format!("{source:?}"), "Debug of RemoteSource");

    let registry = registry(vec![runtime, embedded("local").await]);
    let debug = format!("{registry:?}");
    assert_clean(&debug, "Debug of the registry");
    assert!(
        debug.contains("build-1") && debug.contains("local"),
        "{debug}"
    );

    // Errors of every kind, Display and Debug.
    for Case { error, .. } in error_cases() {
        let source = SourceError::from(error);
        let err = RegistryError::Source {
            runtime_id: rid("build-1"),
            error: source,
        };
        assert_clean(&err.to_string(), "Display");
        assert_clean(&format!("{err:?}"), "Debug");
        assert_clean(&format!("{:?}", err.to_detail()), "detail");
    }
}
