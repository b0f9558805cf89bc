//! Standard input for `attach`, read on a dedicated thread (a blocking read must not
//! hold a tokio thread) and handed over through a bounded channel: when the network
//! is slow, the thread waits instead of a queue growing.
//!
//! Ctrl-] (byte 0x1d) detaches. What the thread hands over depends on the mode:
//!
//! - [`Split::Raw`] (a terminal worker, the terminal in raw mode): keystrokes as
//!   they come; bytes typed before Ctrl-] in the same read are still sent.
//! - [`Split::Lines`] on a terminal (canonical mode, with Ctrl-] set as an extra
//!   end-of-line character so that it arrives at once): each read is one line as the
//!   terminal delivered it (Enter, or Ctrl-D in mid-line); a line ended by Ctrl-] is
//!   dropped. Ctrl-D on an empty line (end of input) detaches.
//! - [`Split::Lines`] from a pipe or file: complete lines, the last one at the end
//!   of input even without a newline; line mode then follows the worker to its end.
//!   A line is read up to [`MAX_LINE_BYTES`] (`send -`'s bound, newline included):
//!   one byte past it, reading stops and input ends as [`StdinEnd::TooLong`], so
//!   that input without newlines (`< /dev/zero`) is never held beyond the bound.
//!
//! Bytes are decoded as UTF-8 across reads (a character split between two reads is
//! kept whole); invalid bytes become U+FFFD.

use std::io::Read;

use tokio::sync::{mpsc, oneshot};

use crate::commands::client::worker::MAX_STDIN_BYTES;

/// Chunks queued between the thread and the async side.
const QUEUE: usize = 64;

/// The longest line sent from a pipe or file, newline included: `send -`'s bound
/// (1 MiB), as a line is one input.
pub(super) const MAX_LINE_BYTES: usize = MAX_STDIN_BYTES as usize;

/// The byte Ctrl-] sends.
pub(super) const DETACH_BYTE: u8 = 0x1d;

/// How the bytes read are cut into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Split {
    /// Everything as it is read.
    Raw,
    /// Lines; `tty`: each read is a line already (canonical mode).
    Lines {
        /// Whether standard input is a terminal.
        tty: bool,
    },
}

/// Why standard input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StdinEnd {
    /// Ctrl-] was typed.
    Detach,
    /// End of input.
    Eof,
    /// Reading failed.
    Failed,
    /// A line from a pipe or file was longer than [`MAX_LINE_BYTES`] (it was not
    /// sent, and nothing after it was read).
    TooLong,
}

/// The two ends the async side holds: the text read, in order, and how it ended
/// (sent after the last text, so draining `text` after `end` gets everything).
pub(super) struct StdinReader {
    /// Text read, in order.
    pub(super) text: mpsc::Receiver<String>,
    /// How standard input ended.
    pub(super) end: oneshot::Receiver<StdinEnd>,
}

/// Starts the reader thread.
pub(super) fn spawn(split: Split) -> std::io::Result<StdinReader> {
    let (text_tx, text) = mpsc::channel(QUEUE);
    let (end_tx, end) = oneshot::channel();
    std::thread::Builder::new()
        .name("switchyard-stdin".into())
        .spawn(move || {
            let ended = read_loop(split, &text_tx);
            drop(text_tx);
            let _ = end_tx.send(ended);
        })?;
    Ok(StdinReader { text, end })
}

fn read_loop(split: Split, text: &mpsc::Sender<String>) -> StdinEnd {
    let stdin = std::io::stdin();
    let mut stdin = stdin.lock();
    let mut cutter = Cutter::new(split);
    let mut buffer = [0u8; 4096];
    loop {
        let room = cutter.room(buffer.len());
        let read = match stdin.read(&mut buffer[..room]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return StdinEnd::Failed,
        };
        let (messages, end) = if read == 0 {
            (cutter.finish(), Some(StdinEnd::Eof))
        } else {
            cutter.push(&buffer[..read])
        };
        for message in messages {
            if text.blocking_send(message).is_err() {
                // The async side is gone: nothing left to read for.
                return StdinEnd::Failed;
            }
        }
        if let Some(end) = end {
            return end;
        }
    }
}

/// Cuts the bytes read into messages (pure, so that it can be tested).
#[derive(Debug)]
pub(super) struct Cutter {
    split: Split,
    /// Bytes of an unfinished line (pipes) or an unfinished UTF-8 character.
    pending: Vec<u8>,
}

impl Cutter {
    pub(super) fn new(split: Split) -> Self {
        Self {
            split,
            pending: Vec::new(),
        }
    }

    /// Takes one read's bytes; returns the messages to send and, when Ctrl-] was in
    /// them, the end.
    pub(super) fn push(&mut self, bytes: &[u8]) -> (Vec<String>, Option<StdinEnd>) {
        let (bytes, detach) = match bytes.iter().position(|&b| b == DETACH_BYTE) {
            Some(at) => (&bytes[..at], true),
            None => (bytes, false),
        };
        let mut messages = Vec::new();
        match self.split {
            Split::Raw => {
                self.pending.extend_from_slice(bytes);
                if let Some(text) = take_utf8(&mut self.pending, false) {
                    messages.push(text);
                }
            }
            Split::Lines { tty: true } => {
                // A read is a line; one cut short by Ctrl-] is dropped.
                if !detach {
                    self.pending.extend_from_slice(bytes);
                    if let Some(text) = take_utf8(&mut self.pending, false) {
                        messages.push(text);
                    }
                }
            }
            Split::Lines { tty: false } => {
                self.pending.extend_from_slice(bytes);
                if let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') {
                    let rest = self.pending.split_off(end + 1);
                    let lines = std::mem::replace(&mut self.pending, rest);
                    for line in lines.split_inclusive(|&b| b == b'\n') {
                        if line.len() > MAX_LINE_BYTES {
                            self.pending.clear();
                            return (messages, Some(StdinEnd::TooLong));
                        }
                        messages.push(String::from_utf8_lossy(line).into_owned());
                    }
                }
                if self.pending.len() > MAX_LINE_BYTES {
                    self.pending.clear();
                    return (messages, Some(StdinEnd::TooLong));
                }
                if detach {
                    self.pending.clear();
                }
            }
        }
        (messages, detach.then_some(StdinEnd::Detach))
    }

    /// How many bytes the next read may take, out of a buffer of `buffer`: a pipe's
    /// unfinished line is read up to one byte past [`MAX_LINE_BYTES`], never further.
    pub(super) fn room(&self, buffer: usize) -> usize {
        match self.split {
            Split::Lines { tty: false } => buffer
                .min((MAX_LINE_BYTES + 1).saturating_sub(self.pending.len()))
                .max(1),
            _ => buffer,
        }
    }

    /// At the end of input: what is left (an unfinished last line of a pipe).
    pub(super) fn finish(&mut self) -> Vec<String> {
        take_utf8(&mut self.pending, true).into_iter().collect()
    }
}

/// The valid UTF-8 text at the start of `pending` (invalid bytes as U+FFFD), leaving
/// an unfinished last character there unless `all`. `None` when there is no text.
fn take_utf8(pending: &mut Vec<u8>, all: bool) -> Option<String> {
    let keep = if all { 0 } else { incomplete_tail(pending) };
    let rest = pending.split_off(pending.len() - keep);
    let bytes = std::mem::replace(pending, rest);
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

/// How many bytes at the end of `bytes` start a UTF-8 character that is not complete
/// yet (0 to 3).
fn incomplete_tail(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if byte & 0b1100_0000 == 0b1000_0000 {
            continue; // a continuation byte: look further back
        }
        let needed = match byte {
            b if b & 0b1110_0000 == 0b1100_0000 => 2,
            b if b & 0b1111_0000 == 0b1110_0000 => 3,
            b if b & 0b1111_1000 == 0b1111_0000 => 4,
            _ => 1,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(split: Split, reads: &[&[u8]], expected: &[&str], end: Option<StdinEnd>) {
        let mut cutter = Cutter::new(split);
        let mut messages = Vec::new();
        let mut ended = None;
        for read in reads {
            let (m, e) = cutter.push(read);
            messages.extend(m);
            if e.is_some() {
                ended = e;
                break;
            }
        }
        if ended.is_none() {
            messages.extend(cutter.finish());
        }
        assert_eq!(messages, expected, "{split:?} {reads:?}");
        assert_eq!(ended, end, "{split:?} {reads:?}");
    }

    #[test]
    fn raw_keystrokes_pass_through_until_ctrl_bracket() {
        let raw = Split::Raw;
        check(raw, &[b"l", b"s\r"], &["l", "s\r"], None);
        check(raw, &[b"ab\x1dcd"], &["ab"], Some(StdinEnd::Detach));
        check(raw, &[b"\x1d"], &[], Some(StdinEnd::Detach));
        // A character split across reads is sent whole.
        check(raw, &[b"\xc3", b"\xa9!"], &["é!"], None);
        check(raw, &[b"\xe2\x82", b"\xac"], &["€"], None);
        check(raw, &[b"\xff"], &["\u{fffd}"], None);
    }

    #[test]
    fn terminal_lines_are_reads() {
        let tty = Split::Lines { tty: true };
        check(tty, &[b"hello\n", b"x"], &["hello\n", "x"], None);
        check(tty, &[b"half\x1d"], &[], Some(StdinEnd::Detach));
        check(
            tty,
            &[b"one\n", b"\x1d"],
            &["one\n"],
            Some(StdinEnd::Detach),
        );
    }

    #[test]
    fn piped_lines_are_cut_at_newlines() {
        let pipe = Split::Lines { tty: false };
        check(pipe, &[b"a\nb", b"c\nd"], &["a\n", "bc\n", "d"], None);
        check(pipe, &[b"a\nb\x1dc\n"], &["a\n"], Some(StdinEnd::Detach));
        check(pipe, &[b"\n\n"], &["\n", "\n"], None);
    }

    #[test]
    fn piped_lines_are_bounded() {
        let pipe = Split::Lines { tty: false };
        let most = "a".repeat(MAX_LINE_BYTES - 1) + "\n";
        let over = "a".repeat(MAX_LINE_BYTES) + "\n";
        let unfinished = "a".repeat(MAX_LINE_BYTES + 1);
        check(pipe, &[most.as_bytes()], &[&most], None);
        check(
            pipe,
            &[b"x\n", over.as_bytes(), b"y\n"],
            &["x\n"],
            Some(StdinEnd::TooLong),
        );
        check(
            pipe,
            &[b"x\n", unfinished.as_bytes()],
            &["x\n"],
            Some(StdinEnd::TooLong),
        );
        // Reads of an unfinished line stop one byte past the bound.
        let mut cutter = Cutter::new(pipe);
        assert_eq!(cutter.room(4096), 4096);
        let (messages, end) = cutter.push(&vec![b'a'; MAX_LINE_BYTES - 10]);
        assert!(messages.is_empty() && end.is_none());
        assert_eq!(cutter.room(4096), 11);
        let (messages, end) = cutter.push(&[b'a'; 11]);
        assert!(messages.is_empty());
        assert_eq!(end, Some(StdinEnd::TooLong));
        // Terminals and raw keystrokes are not cut by it.
        assert_eq!(Cutter::new(Split::Raw).room(4096), 4096);
    }

    #[test]
    fn incomplete_tails() {
        let table: [(&[u8], usize); 7] = [
            (b"abc", 0),
            (b"\xc3", 1),
            (b"\xc3\xa9", 0),
            (b"\xe2\x82", 2),
            (b"\xf0\x9f\x98", 3),
            (b"\xf0\x9f\x98\x80", 0),
            (b"", 0),
        ];
        for (bytes, expected) in table {
            assert_eq!(incomplete_tail(bytes), expected, "{bytes:?}");
        }
    }
}
