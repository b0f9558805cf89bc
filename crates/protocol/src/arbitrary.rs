//! proptest strategies for the wire types (the `arbitrary` feature, and this crate's
//! own tests): valid values of every type that crosses the wire or lands in a store,
//! for round-trip properties here and in the crates that decode them.
//!
//! Texts mix ASCII, escapes (`"`, `\`, newlines, control characters) and non-ASCII,
//! so that every encoder's quoting is exercised.

use proptest::prelude::*;
use proptest::sample::select;

use crate::error::{ErrorBody, ErrorCode, ErrorDetail};
use crate::event::{DiagnosticSeverity, WorkerEvent};
use crate::frame::{ResetReason, ServerFrame, UpstreamState};
use crate::ids::{ID_PATTERN, RuntimeId, WorkerId};
use crate::terminal::{
    ClientFrame, CursorPosition, MAX_TERMINAL_SIDE, MIN_TERMINAL_SIDE, ResizeRequest,
    TerminalSnapshot,
};
use crate::time::Timestamp;
use crate::transcript::{OutputStream, SystemNote, TranscriptEntry, TranscriptItem};
use crate::worker::{CreateWorkerRequest, ExitInfo, WorkerDetail, WorkerStatus};

/// Any string within the id rules.
pub fn id_string() -> impl Strategy<Value = String> {
    // The pattern without its anchors, which proptest's generator does not take.
    let pattern = ID_PATTERN.trim_start_matches('^').trim_end_matches('$');
    proptest::string::string_regex(pattern).expect("the id pattern is a valid regex")
}

/// A valid worker id.
pub fn worker_id() -> impl Strategy<Value = WorkerId> {
    id_string().prop_map(|s| WorkerId::new(s).expect("generated from the id pattern"))
}

/// A valid runtime id.
pub fn runtime_id() -> impl Strategy<Value = RuntimeId> {
    id_string().prop_map(|s| RuntimeId::new(s).expect("generated from the id pattern"))
}

/// Text of up to `max` characters, heavy on what encoders must escape.
pub fn text(max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::char::range(' ', '~'),
        1 => select(vec!['"', '\\', '\n', '\r', '\t', '\u{0}', '\u{1b}', '\u{7f}', '|']),
        1 => any::<char>(),
    ];
    proptest::collection::vec(piece, 0..=max).prop_map(|chars| chars.into_iter().collect())
}

/// An RFC 3339 UTC timestamp as the runtime writes them.
pub fn timestamp() -> impl Strategy<Value = Timestamp> {
    (
        2000u32..2100,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        0u32..1000,
    )
        .prop_map(|(y, mo, d, h, mi, s, ms)| {
            Timestamp(format!(
                "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z"
            ))
        })
}

/// Any worker status.
pub fn worker_status() -> impl Strategy<Value = WorkerStatus> {
    select(WorkerStatus::ALL.to_vec())
}

/// Any error code.
pub fn error_code() -> impl Strategy<Value = ErrorCode> {
    select(ErrorCode::ALL.to_vec())
}

/// An owner name within the owner rules.
pub fn owner() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-z0-9._@-]{1,64}").expect("valid regex")
}

/// How a worker ended.
pub fn exit_info() -> impl Strategy<Value = ExitInfo> {
    (any::<Option<i32>>(), any::<Option<i32>>())
        .prop_map(|(code, signal)| ExitInfo { code, signal })
}

/// A worker's detail.
pub fn worker_detail() -> impl Strategy<Value = WorkerDetail> {
    (
        (
            worker_id(),
            runtime_id(),
            text(20),
            proptest::option::of(text(20)),
        ),
        (
            worker_status(),
            timestamp(),
            timestamp(),
            proptest::option::of(exit_info()),
        ),
        (any::<u64>(), any::<u64>(), proptest::option::of(owner())),
    )
        .prop_map(
            |(
                (worker_id, runtime_id, profile, label),
                (status, created_at, updated_at, exit),
                (input_count, output_bytes, owner),
            )| WorkerDetail {
                worker_id,
                runtime_id,
                profile,
                label,
                status,
                created_at,
                updated_at,
                exit,
                input_count,
                output_bytes,
                owner,
            },
        )
}

/// A transcript entry.
pub fn transcript_entry() -> impl Strategy<Value = TranscriptEntry> {
    let stream = select(vec![
        OutputStream::Stdout,
        OutputStream::Stderr,
        OutputStream::Terminal,
    ]);
    let note = select(vec![
        SystemNote::Started,
        SystemNote::Interrupted,
        SystemNote::Exited,
        SystemNote::Stopped,
        SystemNote::Failed,
        SystemNote::Lost,
        SystemNote::Resized,
    ]);
    prop_oneof![
        text(40).prop_map(|text| TranscriptEntry::Input { text }),
        (stream, text(40)).prop_map(|(stream, text)| TranscriptEntry::Output { stream, text }),
        (note, text(40)).prop_map(|(note, text)| TranscriptEntry::System { note, text }),
    ]
}

/// A transcript item with the given sequence.
pub fn transcript_item_at(sequence: u64) -> impl Strategy<Value = TranscriptItem> {
    (timestamp(), transcript_entry()).prop_map(move |(at, entry)| TranscriptItem {
        sequence,
        at,
        entry,
    })
}

/// A transcript item.
pub fn transcript_item() -> impl Strategy<Value = TranscriptItem> {
    any::<u64>().prop_flat_map(transcript_item_at)
}

/// Up to `max` transcript items with strictly increasing sequences from 1 (gaps
/// allowed), as a store holds them.
pub fn transcript(max: usize) -> impl Strategy<Value = Vec<TranscriptItem>> {
    proptest::collection::vec((1u64..4, timestamp(), transcript_entry()), 0..=max).prop_map(
        |steps| {
            let mut sequence = 0;
            steps
                .into_iter()
                .map(|(gap, at, entry)| {
                    sequence += gap;
                    TranscriptItem {
                        sequence,
                        at,
                        entry,
                    }
                })
                .collect()
        },
    )
}

/// A terminal side within 1 to 1000.
pub fn terminal_side() -> impl Strategy<Value = u16> {
    MIN_TERMINAL_SIDE..=MAX_TERMINAL_SIDE
}

/// A pty worker's screen.
pub fn terminal_snapshot() -> impl Strategy<Value = TerminalSnapshot> {
    (
        terminal_side(),
        terminal_side(),
        text(60),
        any::<u16>(),
        any::<u16>(),
        any::<bool>(),
    )
        .prop_map(
            |(cols, rows, screen, row, col, alternate)| TerminalSnapshot {
                cols,
                rows,
                screen,
                cursor: CursorPosition { row, col },
                alternate,
            },
        )
}

/// Any worker event (every kind: see [`event_kind_index`]).
pub fn worker_event() -> impl Strategy<Value = WorkerEvent> {
    let severity = select(vec![
        DiagnosticSeverity::Info,
        DiagnosticSeverity::Warning,
        DiagnosticSeverity::Error,
    ]);
    let stream = select(vec![
        OutputStream::Stdout,
        OutputStream::Stderr,
        OutputStream::Terminal,
    ]);
    prop_oneof![
        (
            worker_detail(),
            transcript(4),
            proptest::option::of(terminal_snapshot())
        )
            .prop_map(|(worker, transcript, terminal)| WorkerEvent::Snapshot {
                worker,
                transcript,
                terminal: terminal.map(Box::new),
            }),
        (worker_status(), worker_status())
            .prop_map(|(status, previous)| WorkerEvent::Status { status, previous }),
        (any::<u64>(), text(40)).prop_map(|(sequence, text)| WorkerEvent::Input { sequence, text }),
        (any::<u64>(), stream, text(40)).prop_map(|(sequence, stream, text)| {
            WorkerEvent::Output {
                sequence,
                stream,
                text,
            }
        }),
        Just(WorkerEvent::Interrupted),
        (terminal_side(), terminal_side())
            .prop_map(|(cols, rows)| WorkerEvent::Resized { cols, rows }),
        (any::<Option<i32>>(), any::<Option<i32>>())
            .prop_map(|(code, signal)| WorkerEvent::Exited { code, signal }),
        (severity, text(16), text(40)).prop_map(|(severity, code, message)| {
            WorkerEvent::Diagnostic {
                severity,
                code,
                message,
            }
        }),
    ]
}

/// The index of an event's kind, by an exhaustive match: a new kind does not compile
/// until it is numbered here, and the coverage test then fails until
/// [`worker_event`] generates it.
pub fn event_kind_index(event: &WorkerEvent) -> usize {
    match event {
        WorkerEvent::Snapshot { .. } => 0,
        WorkerEvent::Status { .. } => 1,
        WorkerEvent::Input { .. } => 2,
        WorkerEvent::Output { .. } => 3,
        WorkerEvent::Interrupted => 4,
        WorkerEvent::Resized { .. } => 5,
        WorkerEvent::Exited { .. } => 6,
        WorkerEvent::Diagnostic { .. } => 7,
    }
}

/// How many kinds [`event_kind_index`] numbers.
pub const EVENT_KINDS: usize = 8;

/// An error detail, with or without its optional fields.
pub fn error_detail() -> impl Strategy<Value = ErrorDetail> {
    (
        error_code(),
        text(40),
        proptest::option::of(runtime_id()),
        proptest::option::of(worker_id()),
        any::<Option<u64>>(),
    )
        .prop_map(
            |(code, message, runtime_id, worker_id, retry_after_ms)| ErrorDetail {
                code,
                message,
                runtime_id,
                worker_id,
                retry_after_ms,
            },
        )
}

/// An error body.
pub fn error_body() -> impl Strategy<Value = ErrorBody> {
    error_detail().prop_map(ErrorBody::from)
}

/// An opaque cursor string as servers put in frames.
pub fn cursor_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-z0-9_-]{1,80}").expect("valid regex")
}

/// Any server-to-client frame (every type: see [`server_frame_index`]).
pub fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        (
            cursor_text(),
            proptest::option::of(runtime_id()),
            worker_id(),
            worker_event()
        )
            .prop_map(
                |(cursor, runtime_id, worker_id, event)| ServerFrame::Event {
                    cursor,
                    runtime_id,
                    worker_id,
                    event,
                }
            ),
        select(vec![
            ResetReason::CursorExpired,
            ResetReason::RuntimeRestarted
        ])
        .prop_map(|reason| ServerFrame::Reset { reason }),
        (
            select(vec![UpstreamState::Lost, UpstreamState::Restored]),
            proptest::option::of(error_detail())
        )
            .prop_map(|(state, error)| ServerFrame::Upstream { state, error }),
        error_detail().prop_map(|error| ServerFrame::Error { error }),
    ]
}

/// The index of a frame's type, by an exhaustive match (see [`event_kind_index`]).
pub fn server_frame_index(frame: &ServerFrame) -> usize {
    match frame {
        ServerFrame::Event { .. } => 0,
        ServerFrame::Reset { .. } => 1,
        ServerFrame::Upstream { .. } => 2,
        ServerFrame::Error { .. } => 3,
    }
}

/// How many types [`server_frame_index`] numbers.
pub const SERVER_FRAME_TYPES: usize = 4;

/// Any client-to-server frame, sizes anywhere in `u16` (validation is the server's).
pub fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        text(40).prop_map(|text| ClientFrame::Input { text }),
        (any::<u16>(), any::<u16>()).prop_map(|(cols, rows)| ClientFrame::Resize { cols, rows }),
    ]
}

/// A resize request, sizes anywhere in `u16`.
pub fn resize_request() -> impl Strategy<Value = ResizeRequest> {
    (any::<u16>(), any::<u16>()).prop_map(|(cols, rows)| ResizeRequest { cols, rows })
}

/// A Runtime API create request.
pub fn create_worker_request() -> impl Strategy<Value = CreateWorkerRequest> {
    (
        text(20),
        proptest::option::of(text(20)),
        proptest::option::of(owner()),
    )
        .prop_map(|(profile, label, owner)| CreateWorkerRequest {
            profile,
            label,
            owner,
        })
}

/// Arbitrary JSON of bounded depth: what a lying or confused peer might send.
pub fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text(12).prop_map(Value::String),
        select(vec![
            "event", "reset", "upstream", "error", "input", "resize", "snapshot", "output", "kind",
            "type", "cursor",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            select(vec![
                "type",
                "kind",
                "cursor",
                "worker_id",
                "runtime_id",
                "event",
                "text",
                "cols",
                "rows",
                "error",
                "code",
                "message",
                "sequence",
                "status",
                "reason",
                "state",
            ])
            .prop_map(str::to_owned),
            text(8),
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}
