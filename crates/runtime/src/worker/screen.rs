//! The terminal emulator kept per pty worker, so that a viewer joining late paints
//! exactly the screen as it is now instead of replaying a truncated history.
//!
//! Built on `vt100`: every output chunk of the worker is fed to it in log order, and a
//! snapshot turns its state into [`TerminalSnapshot`]. Memory is bounded: no
//! scrollback is kept (the transcript is the history), so an emulator holds its
//! normal and, while a full-screen program runs, its alternate screen: 2 x rows x
//! cols cells of 32 bytes (120 KiB at 80 x 24). Once the worker has ended, the
//! emulator is replaced by its final snapshot.

use std::num::NonZeroU16;

use switchyard_protocol::{
    CursorPosition, SNAPSHOT_SCREEN_MAX_JSON_BYTES, TerminalSnapshot, json_text_len_bound,
};

/// Switches to the alternate screen, saving the cursor (xterm's mode 1049).
const ENTER_ALTERNATE: &str = "\u{1b}[?1049h";
/// Leaves the alternate screen without touching the cursor (mode 47).
const LEAVE_ALTERNATE_PLAIN: &[u8] = b"\x1b[?47l";

/// A live emulator, or the last snapshot of an ended worker.
pub(crate) enum Screen {
    /// Fed with every output chunk.
    Live(Box<Emulator>),
    /// The worker ended; this is how its screen was left.
    Final(TerminalSnapshot),
}

/// A live worker's emulator and its latest snapshot.
pub(crate) struct Emulator {
    parser: vt100::Parser,
    /// The snapshot of the screen as it is now, once one has been taken: viewers
    /// joining between two outputs share it. Taking one walks every cell (a
    /// million on the largest terminal allowed, tens of ms under the worker's
    /// lock), so it is taken once per change of the screen, not once per viewer.
    /// Invariant: cleared by every change of the screen.
    snapshot: Option<TerminalSnapshot>,
}

impl Screen {
    /// An empty screen of `cols` x `rows` (each clamped to at least 1).
    pub(crate) fn new(cols: u16, rows: u16) -> Self {
        Self::Live(Box::new(Emulator {
            parser: vt100::Parser::new(side(rows), side(cols), 0),
            snapshot: None,
        }))
    }

    /// Feeds output to the emulator; ignored once the worker has ended.
    pub(crate) fn feed(&mut self, text: &str) {
        if let Self::Live(live) = self {
            live.snapshot = None;
            live.parser.process(text.as_bytes());
        }
    }

    /// Resizes the emulator; ignored once the worker has ended.
    pub(crate) fn resize(&mut self, cols: u16, rows: u16) {
        if let Self::Live(live) = self {
            live.snapshot = None;
            live.parser.set_size(side(rows), side(cols));
        }
    }

    /// The screen as a snapshot event carries it.
    pub(crate) fn snapshot(&mut self) -> TerminalSnapshot {
        match self {
            Self::Live(live) => live
                .snapshot
                .get_or_insert_with(|| snapshot_of(&live.parser))
                .clone(),
            Self::Final(snapshot) => snapshot.clone(),
        }
    }

    /// Drops the emulator, keeping only its final snapshot.
    pub(crate) fn freeze(&mut self) {
        if let Self::Live(live) = self {
            let last = live
                .snapshot
                .take()
                .unwrap_or_else(|| snapshot_of(&live.parser));
            *self = Self::Final(last);
        }
    }
}

/// The text of the transcript's `resized` system note: `resized to COLSxROWS`.
/// A restored worker's screen is rebuilt from the transcript, applying each of these
/// where it stands among the output (see [`parse_resize_note`]).
pub(crate) fn resize_note(cols: u16, rows: u16) -> String {
    format!("resized to {cols}x{rows}")
}

/// The size a [`resize_note`] text names; `None` for any other text.
pub(crate) fn parse_resize_note(text: &str) -> Option<(u16, u16)> {
    let (cols, rows) = text.strip_prefix("resized to ")?.split_once('x')?;
    let number = |digits: &str| {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    };
    Some((number(cols)?, number(rows)?))
}

fn side(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

/// The snapshot of a live emulator.
///
/// While a full-screen program has the alternate screen, `screen` first paints the
/// normal screen behind it, then enters the alternate screen (saving the cursor, as
/// such programs do) and paints that: a viewer that joined meanwhile gets its normal
/// screen back, exactly, when the program leaves.
fn snapshot_of(parser: &vt100::Parser) -> TerminalSnapshot {
    let screen = parser.screen();
    let (rows, cols) = screen.size();
    let (row, col) = screen.cursor_position();
    let alternate = screen.alternate_screen();
    let mut text = String::new();
    if alternate {
        let mut normal = vt100::Parser::new(rows, cols, 0);
        *normal.screen_mut() = screen.clone();
        normal.process(LEAVE_ALTERNATE_PLAIN);
        text.push_str(&normal.screen().contents_formatted());
        text.push_str(ENTER_ALTERNATE);
    }
    text.push_str(&screen.state_formatted());
    text.push_str(&hidden_state_formatted(screen));
    if json_text_len_bound(&text) > SNAPSHOT_SCREEN_MAX_JSON_BYTES {
        text = plain_painting(screen);
    }
    TerminalSnapshot {
        cols: cols.get(),
        rows: rows.get(),
        screen: text,
        cursor: CursorPosition { row, col },
        alternate,
    }
}

/// The current screen painted without colours or attributes (nor the normal
/// screen behind an alternate one), for a screen whose full painting is past
/// [`SNAPSHOT_SCREEN_MAX_JSON_BYTES`]: each row's characters at its place, rows past
/// the budget left blank, then the input modes and the cursor as
/// [`snapshot_of`] leaves them.
fn plain_painting(screen: &vt100::Screen) -> String {
    let (_, cols) = screen.size();
    let mut text = String::new();
    if screen.alternate_screen() {
        text.push_str(ENTER_ALTERNATE);
    }
    let ending = format!(
        "{}{}",
        screen.input_mode_formatted(),
        hidden_state_formatted(screen)
    );
    let cursor = screen.cursor_state_formatted();
    // Room for what follows the rows.
    let budget = SNAPSHOT_SCREEN_MAX_JSON_BYTES
        - json_text_len_bound(&ending)
        - json_text_len_bound(&cursor)
        - json_text_len_bound(&text);
    let mut used = 0;
    for (row, contents) in screen.rows(0, cols.get()).enumerate() {
        let line = format!("\u{1b}[{};1H{contents}", row + 1);
        used += json_text_len_bound(&line);
        if used > budget {
            break;
        }
        text.push_str(&line);
    }
    text.push_str(&cursor);
    text.push_str(&ending);
    text
}

/// What `state_formatted` leaves out and a program relies on later: the scroll
/// region, the saved cursor (`ESC 7`, with the origin mode it saved) and origin
/// mode of the screen in use, as the escape sequences that set them, ending with
/// the cursor where it is; empty when they are the defaults. (Not carried: the
/// colours a real terminal saves with the cursor, which vt100 does not keep.)
///
/// vt100 keeps them but does not show them, so they are read back from copies of
/// the screen by the sequences that reveal them: restoring the cursor (`ESC 8`)
/// gives the saved one; origin mode homes the cursor to the region's top, and a
/// long move down stops at its bottom; a region set on a copy tells whether origin
/// mode is on.
fn hidden_state_formatted(screen: &vt100::Screen) -> String {
    let (rows, cols) = screen.size();
    let last_row = rows.get() - 1;
    let (row, col) = screen.cursor_position();
    let copy = |then: &[u8]| {
        let mut probe = vt100::Parser::new(rows, cols, 0);
        *probe.screen_mut() = screen.clone();
        probe.process(then);
        probe
    };
    let mut probe = copy(b"\x1b[?6h");
    let top = probe.screen().cursor_position().0;
    probe.process(b"\x1b[9999B");
    let bottom = probe.screen().cursor_position().0;
    let in_origin_mode = origin_mode(screen);
    let restored = copy(b"\x1b8");
    let saved = restored.screen().cursor_position();
    let saved_origin_mode = origin_mode(restored.screen());

    let region = (top, bottom) != (0, last_row);
    if !region && saved == (0, 0) && !saved_origin_mode && !in_origin_mode {
        return String::new();
    }
    let mut text = String::new();
    if region {
        // Homes the cursor.
        text.push_str(&format!("\u{1b}[{};{}r", top + 1, bottom + 1));
    }
    // The cursor at `(row, col)` in origin mode `on` (rows then count from the
    // region's top, and stay within it).
    let place = |text: &mut String, on: bool, (row, col): (u16, u16)| {
        let row = if on { row.saturating_sub(top) } else { row };
        text.push_str(if on { "\u{1b}[?6h" } else { "\u{1b}[?6l" });
        text.push_str(&format!("\u{1b}[{};{}H", row + 1, col + 1));
    };
    if saved != (0, 0) || saved_origin_mode {
        place(&mut text, saved_origin_mode, saved);
        text.push_str("\u{1b}7");
    }
    place(&mut text, in_origin_mode, (row, col));
    text
}

/// Whether `screen` is in origin mode: with a region set on a copy, the cursor's
/// home is the region's top in origin mode, the screen's otherwise. (Below three
/// rows no region can be set, and origin mode changes nothing.)
fn origin_mode(screen: &vt100::Screen) -> bool {
    let (rows, cols) = screen.size();
    if rows.get() < 3 {
        return false;
    }
    let mut probe = vt100::Parser::new(rows, cols, 0);
    *probe.screen_mut() = screen.clone();
    probe.process(format!("\u{1b}[2;{}r\u{1b}[H", rows.get()).as_bytes());
    probe.screen().cursor_position().0 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paints a snapshot on an empty emulator of its size, as a new viewer does.
    fn paint(snapshot: &TerminalSnapshot) -> vt100::Parser {
        let mut parser = vt100::Parser::new(side(snapshot.rows), side(snapshot.cols), 0);
        parser.process(snapshot.screen.as_bytes());
        parser
    }

    fn assert_same(viewer: &vt100::Parser, runtime: &vt100::Parser) {
        let (v, r) = (viewer.screen(), runtime.screen());
        assert_eq!(v.contents(), r.contents());
        assert_eq!(v.contents_formatted(), r.contents_formatted());
        assert_eq!(v.cursor_position(), r.cursor_position());
        assert_eq!(v.alternate_screen(), r.alternate_screen());
        assert_eq!(v.application_cursor(), r.application_cursor());
    }

    fn live(screen: &Screen) -> &vt100::Parser {
        match screen {
            Screen::Live(live) => &live.parser,
            Screen::Final(_) => panic!("not live"),
        }
    }

    fn has_snapshot(screen: &Screen) -> bool {
        matches!(screen, Screen::Live(live) if live.snapshot.is_some())
    }

    /// A viewer that paints a snapshot taken after `before` and then applies
    /// `after` has the screen of one that saw both: the scroll region, the saved
    /// cursor and origin mode carry over.
    #[test]
    fn state_a_program_relies_on_later_carries_over_in_the_snapshot() {
        for (before, after) in [
            // apt's progress bar: a scroll region above a status line.
            (
                "$ \u{1b}[3;8r\u{1b}[8;1Hscroll",
                "a\r\nb\r\nc\r\nd\r\ne\r\nf\r\ng\r\n",
            ),
            ("\u{1b}[5;5H\u{1b}7\u{1b}[1;1Hmoved", "\u{1b}8saved"),
            (
                "\u{1b}[3;8r\u{1b}[?6h\u{1b}[2;3Hin",
                "\u{1b}[1;1Htop\u{1b}[99Bbottom",
            ),
            (
                "\u{1b}[2;9r\u{1b}[4;4H\u{1b}7\u{1b}[9;1Hx",
                "\r\n\r\n\u{1b}8y\r\nz",
            ),
            // The cursor saved in origin mode, restored in it.
            (
                "\u{1b}[3;8r\u{1b}[?6h\u{1b}[2;3H\u{1b}7\u{1b}[1;1Hx",
                "\u{1b}8\u{1b}[1;1Hy",
            ),
            // Origin mode without a region, then a region.
            ("\u{1b}[?6hx", "\u{1b}[3;8r\u{1b}[1;1Hy"),
            // Defaults: the snapshot is vt100's own.
            ("plain\r\ntext", "more"),
        ] {
            let mut screen = Screen::new(20, 10);
            screen.feed(before);
            let own = live(&screen).screen().state_formatted();
            let snapshot = screen.snapshot();
            let mut viewer = paint(&snapshot);
            assert_same(&viewer, live(&screen));
            screen.feed(after);
            viewer.process(after.as_bytes());
            assert_same(&viewer, live(&screen));
            if before.starts_with("plain") {
                assert_eq!(snapshot.screen, own);
            }
        }
    }

    /// A cursor restored above the region in origin mode (which no cursor move in
    /// origin mode can reach) is placed at the region's top, not a panic.
    #[test]
    fn a_cursor_outside_the_region_in_origin_mode_is_no_panic() {
        let mut screen = Screen::new(20, 10);
        screen.feed("\u{1b}[?6h\u{1b}[3;1H\u{1b}7\u{1b}[7;9r\u{1b}8");
        let viewer = paint(&screen.snapshot());
        assert_eq!(viewer.screen().cursor_position(), (6, 0));
    }

    #[test]
    fn a_painted_snapshot_reproduces_the_screen_colours_and_cursor() {
        let mut screen = Screen::new(20, 5);
        screen.feed("$ ls\r\n\u{1b}[1;31mred\u{1b}[0m plain \u{e9}\r\n$ ");
        let snapshot = screen.snapshot();
        assert_eq!((snapshot.cols, snapshot.rows), (20, 5));
        assert_eq!(snapshot.cursor, CursorPosition { row: 2, col: 2 });
        assert!(!snapshot.alternate);
        let viewer = paint(&snapshot);
        assert_same(&viewer, live(&screen));
        assert!(viewer.screen().cell(1, 0).unwrap().bold());
    }

    #[test]
    fn a_viewer_joining_during_a_full_screen_program_gets_the_normal_screen_back() {
        let mut screen = Screen::new(30, 6);
        screen.feed("$ vi notes\r\n");
        // A full-screen program: save the cursor, alternate screen, draw, keypad mode.
        screen.feed("\u{1b}[?1049h\u{1b}[?1h\u{1b}[H\u{1b}[2J~\r\n~ pattern\u{1b}[3;5H");
        let during = screen.snapshot();
        assert!(during.alternate);
        let mut viewer = paint(&during);
        assert_same(&viewer, live(&screen));
        assert!(viewer.screen().contents().contains("~ pattern"));
        // The program ends; the viewer follows the live output from here.
        let tail = "\u{1b}[?1l\u{1b}[?1049l$ ";
        screen.feed(tail);
        viewer.process(tail.as_bytes());
        assert!(!screen.snapshot().alternate);
        assert_same(&viewer, live(&screen));
        assert!(viewer.screen().contents().starts_with("$ vi notes\n$"));
    }

    #[test]
    fn viewers_share_a_snapshot_until_the_screen_changes() {
        let mut screen = Screen::new(20, 4);
        screen.feed("one");
        let first = screen.snapshot();
        assert!(has_snapshot(&screen), "the snapshot was not kept");
        assert_eq!(
            screen.snapshot(),
            first,
            "a second viewer, no change between"
        );
        screen.feed(" two");
        assert!(!has_snapshot(&screen), "output left a stale snapshot");
        let after_output = screen.snapshot();
        assert!(
            paint(&after_output)
                .screen()
                .contents()
                .starts_with("one two")
        );
        screen.resize(30, 5);
        assert!(!has_snapshot(&screen), "a resize left a stale snapshot");
        assert_eq!(screen.snapshot().cols, 30);
        screen.feed("!");
        screen.freeze();
        assert!(
            paint(&screen.snapshot())
                .screen()
                .contents()
                .starts_with("one two!")
        );
    }

    /// A 1000 x 1000 screen with `cell` in every cell, painted in full.
    fn full_screen(cell: impl Fn(usize) -> String) -> Screen {
        let mut screen = Screen::new(1000, 1000);
        let mut text = String::new();
        for i in 0..1000 * 1000 {
            text.push_str(&cell(i));
        }
        screen.feed(&text);
        screen
    }

    /// A colour change in every cell of the largest terminal makes a painting of
    /// tens of MB, past what a backend takes in one frame: the snapshot paints the
    /// characters without their colours, within the budget, the cursor in place.
    #[test]
    fn a_screen_too_large_to_paint_in_full_is_painted_plain_within_the_budget() {
        let mut screen =
            full_screen(|i| format!("\u{1b}[38;5;{}m\u{1b}[48;5;{}mX", i % 256, (i * 7) % 256));
        let runtime = live(&screen).screen().clone();
        assert!(
            json_text_len_bound(&runtime.contents_formatted()) > SNAPSHOT_SCREEN_MAX_JSON_BYTES
        );
        let snapshot = screen.snapshot();
        assert!(json_text_len_bound(&snapshot.screen) <= SNAPSHOT_SCREEN_MAX_JSON_BYTES);
        let viewer = paint(&snapshot);
        let painted: Vec<String> = viewer.screen().rows(0, 1000).collect();
        let expected: Vec<String> = runtime.rows(0, 1000).collect();
        let differing = painted
            .iter()
            .zip(&expected)
            .filter(|(p, e)| p != e)
            .count();
        assert_eq!(differing, 0, "rows painted differently");
        assert_eq!(viewer.screen().cursor_position(), runtime.cursor_position());
        assert_eq!(snapshot.cursor.row, runtime.cursor_position().0);
    }

    /// Even the characters alone can be past the budget (a cell holds up to 22
    /// bytes of combining characters): the rows that fit are painted, the rest
    /// left blank.
    #[test]
    fn rows_past_the_budget_are_left_blank() {
        let mut screen = full_screen(|_| "e\u{301}\u{301}\u{301}\u{301}\u{301}".to_string());
        let runtime = live(&screen).screen().clone();
        let snapshot = screen.snapshot();
        assert!(json_text_len_bound(&snapshot.screen) <= SNAPSHOT_SCREEN_MAX_JSON_BYTES);
        let viewer = paint(&snapshot);
        let painted: Vec<String> = viewer.screen().rows(0, 1000).collect();
        let expected: Vec<String> = runtime.rows(0, 1000).collect();
        let whole = painted
            .iter()
            .zip(&expected)
            .take_while(|(p, e)| p == e)
            .count();
        assert!((500..1000).contains(&whole), "{whole} rows painted");
        let first_row =
            |rows: &[String]| rows.first().map(|r| r.chars().take(12).collect::<String>());
        // The cursor's cell is painted wherever it is (vt100 writes the character
        // under a cursor waiting to wrap, to put it back in that state).
        let cursor_row = usize::from(runtime.cursor_position().0);
        let blank = (whole..1000)
            .filter(|&row| row == cursor_row || painted[row].is_empty())
            .count();
        assert_eq!(
            blank,
            1000 - whole,
            "rows past {whole} are blank; painted {:?}, expected {:?}",
            first_row(&painted[whole..]),
            first_row(&expected[whole..])
        );
        assert_eq!(viewer.screen().cursor_position(), runtime.cursor_position());
    }

    #[test]
    fn resize_and_freeze() {
        let mut screen = Screen::new(80, 24);
        screen.feed("hello");
        screen.resize(100, 30);
        let snapshot = screen.snapshot();
        assert_eq!((snapshot.cols, snapshot.rows), (100, 30));
        screen.freeze();
        assert!(matches!(screen, Screen::Final(_)));
        screen.feed("ignored");
        screen.resize(10, 10);
        assert_eq!(screen.snapshot(), snapshot);
        assert!(paint(&snapshot).screen().contents().starts_with("hello"));
    }

    #[test]
    fn resize_notes_read_back_and_nothing_else_reads_as_one() {
        for (cols, rows) in [(1, 1), (80, 24), (1000, 1000), (u16::MAX, 7)] {
            assert_eq!(
                parse_resize_note(&resize_note(cols, rows)),
                Some((cols, rows))
            );
        }
        for text in [
            "",
            "resized to ",
            "resized to 80",
            "resized to 80x",
            "resized to x24",
            "resized to 80x24 ",
            "resized to +80x24",
            "resized to 80x-24",
            "resized to 65536x24",
            "resized to 80X24",
            "Resized to 80x24",
            "started",
        ] {
            assert_eq!(parse_resize_note(text), None, "{text:?}");
        }
    }

    #[test]
    fn sides_are_never_zero() {
        let snapshot = Screen::new(0, 0).snapshot();
        assert_eq!((snapshot.cols, snapshot.rows), (1, 1));
    }
}
