//! The local terminal's modes during `attach`, each held by a guard that restores
//! the terminal when dropped: on return, on an error, and while a panic unwinds.
//!
//! - [`RawMode`] (terminal workers): raw mode through crossterm, so every keystroke
//!   (Ctrl-C included) goes to the worker; a panic hook restores the terminal before
//!   the panic message is printed.
//! - [`DetachKey`] (line mode on a terminal): the terminal stays in canonical mode
//!   (its own line editing and echo), with Ctrl-] added as an end-of-line character
//!   (`VEOL`) so that a read returns as soon as it is typed.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::termios::{SetArg, SpecialCharacterIndices, Termios, tcgetattr, tcsetattr};

use super::stdin::DETACH_BYTE;

/// Whether standard input is a terminal.
pub(super) fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The terminal's size as (columns, rows), if it has one; each at least 1.
pub(super) fn size() -> Option<(u16, u16)> {
    crossterm::terminal::size()
        .ok()
        .map(|(cols, rows)| (cols.max(1), rows.max(1)))
}

/// Whether raw mode is on (read by the panic hook).
static RAW: AtomicBool = AtomicBool::new(false);

/// Raw mode, until dropped.
#[derive(Debug)]
pub(super) struct RawMode(());

impl RawMode {
    /// Turns raw mode on.
    pub(super) fn enable() -> std::io::Result<Self> {
        install_panic_hook();
        crossterm::terminal::enable_raw_mode()?;
        RAW.store(true, Ordering::SeqCst);
        Ok(Self(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if RAW.swap(false, Ordering::SeqCst) {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

/// Restores the terminal before the default hook prints a panic, so that the
/// message is readable and the shell is usable after it.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if RAW.swap(false, Ordering::SeqCst) {
                let _ = crossterm::terminal::disable_raw_mode();
            }
            previous(info);
        }));
    });
}

/// Ctrl-] as an extra end-of-line character of standard input's terminal, until
/// dropped.
pub(super) struct DetachKey {
    saved: Termios,
}

impl std::fmt::Debug for DetachKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DetachKey")
    }
}

impl DetachKey {
    /// Sets it; `None` when standard input is not a terminal or cannot be changed.
    pub(super) fn install() -> Option<Self> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut changed = saved.clone();
        changed.control_chars[SpecialCharacterIndices::VEOL as usize] = DETACH_BYTE;
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &changed).ok()?;
        Some(Self { saved })
    }
}

impl Drop for DetachKey {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}
