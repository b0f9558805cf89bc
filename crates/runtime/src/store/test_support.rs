//! Test fixtures shared by the stores' tests.

use switchyard_protocol::{
    OutputStream, RuntimeId, SystemNote, Timestamp, TranscriptEntry, TranscriptItem, WorkerDetail,
    WorkerId, WorkerStatus,
};

pub(crate) fn wid(s: &str) -> WorkerId {
    WorkerId::new(s).unwrap()
}

pub(crate) fn detail(id: &str, status: WorkerStatus) -> WorkerDetail {
    WorkerDetail {
        worker_id: wid(id),
        runtime_id: RuntimeId::new("local").unwrap(),
        profile: "process".into(),
        label: Some(format!("label of {id}")),
        status,
        created_at: Timestamp("2026-11-26T09:00:00Z".into()),
        updated_at: Timestamp("2026-11-26T09:00:01.250Z".into()),
        exit: None,
        input_count: 3,
        output_bytes: 42,
        owner: None,
    }
}

/// Items of varied kinds and lengths (some far longer than the scan threshold
/// and the backwards block), with newlines and non-ASCII text inside.
pub(crate) fn item(sequence: u64) -> TranscriptItem {
    let len = if sequence % 1_000 == 500 {
        40_000
    } else {
        (sequence * 7919 % 61) as usize
    };
    let text = format!("#{sequence} é\n{}", "x".repeat(len));
    let entry = match sequence % 3 {
        0 => TranscriptEntry::Input { text },
        1 => TranscriptEntry::Output {
            stream: if sequence.is_multiple_of(2) {
                OutputStream::Stdout
            } else {
                OutputStream::Stderr
            },
            text,
        },
        _ => TranscriptEntry::System {
            note: SystemNote::Exited,
            text,
        },
    };
    TranscriptItem {
        sequence,
        at: Timestamp(format!(
            "2026-11-26T09:{:02}:{:02}Z",
            sequence / 60 % 60,
            sequence % 60
        )),
        entry,
    }
}

pub(crate) fn items(range: std::ops::RangeInclusive<u64>) -> Vec<TranscriptItem> {
    range.map(item).collect()
}

pub(crate) fn seqs(items: &[TranscriptItem]) -> Vec<u64> {
    items.iter().map(|i| i.sequence).collect()
}
