//! [`Printer`]: how a transcript reads on a terminal.
//!
//! - Output (stdout and stderr streams alike, and a terminal's) is written exactly as
//!   the worker produced it, in order.
//! - Inputs are marked: each line as `[input] <text>`; a terminal worker's are not
//!   shown once its first output has been (its terminal echoes what is typed,
//!   keystroke by keystroke, and marked lines between the keystrokes would garble
//!   the screen the output paints).
//! - System notes are marked: `[system] started`, `[system] exited with code 0`,
//!   `[system] lost: ...`; live diagnostics as `[diagnostic] <severity> <code>: ...`.
//!
//! A marked line always starts on a line of its own (a newline is added first when
//! output before it did not end with one) and ends with a newline.

use switchyard_protocol::{
    DiagnosticSeverity, OutputStream, SystemNote, TranscriptEntry, TranscriptItem,
};

/// Renders transcript items and live events into bytes for standard output.
#[derive(Debug)]
pub(super) struct Printer {
    /// Whether the last byte written ended a line (or nothing was written).
    at_line_start: bool,
    /// Whether inputs are shown.
    show_inputs: bool,
    /// Whether the worker is a terminal (output on the `terminal` stream was seen).
    terminal: bool,
    buffer: Vec<u8>,
}

impl Printer {
    pub(super) fn new(show_inputs: bool) -> Self {
        Self {
            at_line_start: true,
            show_inputs,
            terminal: false,
            buffer: Vec::new(),
        }
    }

    /// One transcript item.
    pub(super) fn item(&mut self, item: &TranscriptItem) {
        match &item.entry {
            TranscriptEntry::Input { text } => self.input(text),
            TranscriptEntry::Output { stream, text } => self.output(*stream, text),
            TranscriptEntry::System { note, text } => self.note(*note, text),
        }
    }

    /// Output, as it is.
    pub(super) fn output(&mut self, stream: OutputStream, text: &str) {
        self.terminal |= stream == OutputStream::Terminal;
        if text.is_empty() {
            return;
        }
        self.buffer.extend_from_slice(text.as_bytes());
        self.at_line_start = text.ends_with('\n');
    }

    /// An input, marked line by line (when inputs are shown, and not typed into a
    /// terminal).
    pub(super) fn input(&mut self, text: &str) {
        if !self.show_inputs || self.terminal {
            return;
        }
        let body = text.strip_suffix('\n').unwrap_or(text);
        for line in body.split('\n') {
            self.marked(&format!("[input] {line}"));
        }
    }

    /// A system note.
    pub(super) fn note(&mut self, note: SystemNote, text: &str) {
        let name = super::listing::wire_name(&note);
        let line = if text.starts_with(&name) {
            format!("[system] {text}")
        } else {
            format!("[system] {name}: {text}")
        };
        self.marked(&line);
    }

    /// A live diagnostic.
    pub(super) fn diagnostic(&mut self, severity: DiagnosticSeverity, code: &str, message: &str) {
        let severity = match severity {
            DiagnosticSeverity::Info => "info",
            DiagnosticSeverity::Warning => "warning",
            DiagnosticSeverity::Error => "error",
        };
        self.marked(&format!("[diagnostic] {severity} {code}: {message}"));
    }

    /// What was rendered since the last call.
    pub(super) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffer)
    }

    /// A line of its own; control characters in it become spaces.
    fn marked(&mut self, line: &str) {
        if !self.at_line_start {
            self.buffer.push(b'\n');
        }
        let clean: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.buffer.extend_from_slice(clean.as_bytes());
        self.buffer.push(b'\n');
        self.at_line_start = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_protocol::{OutputStream, Timestamp};

    fn item(sequence: u64, entry: TranscriptEntry) -> TranscriptItem {
        TranscriptItem {
            sequence,
            at: Timestamp("2026-01-01T00:00:00Z".into()),
            entry,
        }
    }

    fn render(show_inputs: bool, entries: Vec<TranscriptEntry>) -> String {
        let mut printer = Printer::new(show_inputs);
        for (i, entry) in entries.into_iter().enumerate() {
            printer.item(&item(i as u64 + 1, entry));
        }
        String::from_utf8(printer.take()).unwrap()
    }

    fn input(text: &str) -> TranscriptEntry {
        TranscriptEntry::Input { text: text.into() }
    }

    fn output(text: &str) -> TranscriptEntry {
        TranscriptEntry::Output {
            stream: OutputStream::Stdout,
            text: text.into(),
        }
    }

    fn terminal(text: &str) -> TranscriptEntry {
        TranscriptEntry::Output {
            stream: OutputStream::Terminal,
            text: text.into(),
        }
    }

    fn note(note: SystemNote, text: &str) -> TranscriptEntry {
        TranscriptEntry::System {
            note,
            text: text.into(),
        }
    }

    #[test]
    fn transcripts_render_with_marks() {
        let table = [
            (
                true,
                vec![
                    note(SystemNote::Started, "started"),
                    input("hello\n"),
                    output("hello\n"),
                ],
                "[system] started\n[input] hello\nhello\n",
            ),
            (
                true,
                vec![output("$ "), input("a\nb\n"), output("x")],
                "$ \n[input] a\n[input] b\nx",
            ),
            (false, vec![input("hidden\n"), output("shown\n")], "shown\n"),
            (
                true,
                vec![
                    output("partial"),
                    note(SystemNote::Exited, "exited with code 3"),
                ],
                "partial\n[system] exited with code 3\n",
            ),
            (
                true,
                vec![note(
                    SystemNote::Lost,
                    "the runtime restarted while this worker was running",
                )],
                "[system] lost: the runtime restarted while this worker was running\n",
            ),
            (true, vec![input("no newline")], "[input] no newline\n"),
            (true, vec![input("\u{1b}[2J\n")], "[input]  [2J\n"),
            // A terminal echoes keystrokes itself: its inputs are not marked (but
            // one before its first output is), its output is the terminal's bytes.
            (
                true,
                vec![
                    note(SystemNote::Started, "started"),
                    input("early\r"),
                    terminal("\u{1b}[1m$ \u{1b}[0m"),
                    input("e"),
                    terminal("e"),
                    input("\r"),
                    terminal("\r\n42\r\n$ "),
                    note(SystemNote::Stopped, "stopped"),
                ],
                "[system] started\n[input] early \n\u{1b}[1m$ \u{1b}[0me\r\n42\r\n$ \n[system] stopped\n",
            ),
        ];
        for (show_inputs, entries, expected) in table {
            assert_eq!(render(show_inputs, entries), expected);
        }
    }

    #[test]
    fn diagnostics_are_marked() {
        let mut printer = Printer::new(true);
        printer.output(OutputStream::Stdout, "x");
        printer.diagnostic(DiagnosticSeverity::Warning, "idle_timeout", "idle for 60 s");
        assert_eq!(
            String::from_utf8(printer.take()).unwrap(),
            "x\n[diagnostic] warning idle_timeout: idle for 60 s\n"
        );
    }
}
