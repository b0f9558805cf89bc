//! Terminal workers: the resize request and answer, the terminal part of a snapshot,
//! and the frames a client may send on an interactive event WebSocket.

use serde::{Deserialize, Serialize};

use crate::ids::WorkerId;

/// Smallest terminal side, in cells.
pub const MIN_TERMINAL_SIDE: u16 = 1;
/// Largest terminal side, in cells.
pub const MAX_TERMINAL_SIDE: u16 = 1000;

/// `POST .../workers/{id}/resize`, and the `resize` client frame's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResizeRequest {
    /// Columns, 1 to 1000.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub cols: u16,
    /// Rows, 1 to 1000.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub rows: u16,
}

impl ResizeRequest {
    /// Checks both sides are within 1 to 1000; the error says what to send instead.
    pub fn validate(&self) -> Result<(), String> {
        let range = MIN_TERMINAL_SIDE..=MAX_TERMINAL_SIDE;
        if range.contains(&self.cols) && range.contains(&self.rows) {
            Ok(())
        } else {
            Err(format!(
                "cols and rows must each be {MIN_TERMINAL_SIDE} to {MAX_TERMINAL_SIDE}; got {}x{}",
                self.cols, self.rows
            ))
        }
    }
}

/// The answer to an accepted resize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResizeResponse {
    /// The worker.
    pub worker_id: WorkerId,
    /// Its columns now.
    pub cols: u16,
    /// Its rows now.
    pub rows: u16,
}

/// A cell position on a terminal screen, counted from 0 at the top left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CursorPosition {
    /// Row, from 0 at the top.
    pub row: u16,
    /// Column, from 0 at the left.
    pub col: u16,
}

/// A pty worker's current screen, in a `snapshot` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TerminalSnapshot {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
    /// Text with escape sequences that, written to an empty terminal of `cols` x
    /// `rows`, paints the current screen (and, while `alternate`, the normal screen
    /// behind it), leaves the cursor where it is, and sets the input modes.
    pub screen: String,
    /// Where the cursor is.
    pub cursor: CursorPosition,
    /// True while a full-screen program has the alternate screen.
    pub alternate: bool,
}

/// One text frame a client may send on an interactive event WebSocket
/// (`?interactive=true`). Anything else closes the connection with 1008.
///
/// Exhaustive on purpose: the contract fixes the two frames a client may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Input for the worker, written as given (for a terminal: keystrokes).
    Input {
        /// The text.
        text: String,
    },
    /// A new terminal size.
    Resize {
        /// Columns, 1 to 1000.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
        cols: u16,
        /// Rows, 1 to 1000.
        #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
        rows: u16,
    },
}

impl ClientFrame {
    /// Decodes one client text frame. Only a JSON object of one of the two shapes
    /// counts (serde alone would also take the fields as an array).
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        if !text.trim_start().starts_with('{') {
            return Err(serde::de::Error::custom("a client frame is a JSON object"));
        }
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resize_shapes_and_bounds() {
        let ok: ResizeRequest = serde_json::from_value(json!({"cols":120,"rows":32})).unwrap();
        assert_eq!(
            ok,
            ResizeRequest {
                cols: 120,
                rows: 32
            }
        );
        assert_eq!(ok.validate(), Ok(()));
        for (cols, rows, valid) in [
            (1, 1, true),
            (1000, 1000, true),
            (0, 24, false),
            (80, 0, false),
            (1001, 24, false),
            (80, 1001, false),
        ] {
            let request = ResizeRequest { cols, rows };
            assert_eq!(request.validate().is_ok(), valid, "{cols}x{rows}");
        }
        let message = ResizeRequest { cols: 0, rows: 5 }.validate().unwrap_err();
        assert!(
            message.contains("1 to 1000") && message.contains("0x5"),
            "{message}"
        );
        for bad in [
            json!({"cols":80}),
            json!({"cols":80,"rows":24,"x":1}),
            json!({"cols":-1,"rows":24}),
            json!({"cols":70000,"rows":24}),
            json!({"cols":"80","rows":24}),
        ] {
            assert!(
                serde_json::from_value::<ResizeRequest>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            serde_json::to_value(ResizeResponse {
                worker_id: WorkerId::new("w").unwrap(),
                cols: 100,
                rows: 30
            })
            .unwrap(),
            json!({"worker_id":"w","cols":100,"rows":30})
        );
    }

    #[test]
    fn terminal_snapshot_shape() {
        let snapshot = TerminalSnapshot {
            cols: 80,
            rows: 24,
            screen: "\u{1b}[H$ ".into(),
            cursor: CursorPosition { row: 0, col: 2 },
            alternate: false,
        };
        let v = serde_json::to_value(&snapshot).unwrap();
        assert_eq!(
            v,
            json!({"cols":80,"rows":24,"screen":"\u{1b}[H$ ","cursor":{"row":0,"col":2},"alternate":false})
        );
        assert_eq!(
            serde_json::from_value::<TerminalSnapshot>(v).unwrap(),
            snapshot
        );
    }

    #[test]
    fn client_frames_are_exactly_input_and_resize() {
        let check = |text: &str, expected: Option<ClientFrame>| {
            assert_eq!(ClientFrame::parse(text).ok(), expected, "{text}");
        };
        check(
            r#"{"type":"input","text":"ls\r"}"#,
            Some(ClientFrame::Input {
                text: "ls\r".into(),
            }),
        );
        check(
            r#"{"text":"x","type":"input"}"#,
            Some(ClientFrame::Input { text: "x".into() }),
        );
        check(
            r#"{"type":"resize","cols":100,"rows":30}"#,
            Some(ClientFrame::Resize {
                cols: 100,
                rows: 30,
            }),
        );
        // Not one of them: an unknown type or field, a missing field, not an object.
        for bad in [
            r#"{"type":"stop"}"#,
            r#"{"type":"input"}"#,
            r#"{"type":"input","text":"x","extra":1}"#,
            r#"{"type":"resize","cols":100}"#,
            r#"{"text":"x"}"#,
            r#"["input","x"]"#,
            r#"input"#,
            "",
        ] {
            check(bad, None);
        }
        assert_eq!(
            serde_json::to_value(ClientFrame::Resize { cols: 2, rows: 3 }).unwrap(),
            json!({"type":"resize","cols":2,"rows":3})
        );
    }
}
