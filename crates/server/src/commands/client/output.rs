//! Writing to the standard streams without blocking the async runtime, and the
//! column tables of the listing commands.

use std::io::ErrorKind;

use tokio::io::AsyncWriteExt;

use super::Failure;

/// Standard output and standard error, written through tokio (blocking writes run
/// off the runtime's thread) and flushed after every write, so output appears as it
/// arrives.
pub(super) struct Output {
    stdout: tokio::io::Stdout,
    stderr: tokio::io::Stderr,
}

impl Output {
    pub(super) fn new() -> Self {
        Self {
            stdout: tokio::io::stdout(),
            stderr: tokio::io::stderr(),
        }
    }

    /// Writes `bytes` to standard output. A reader that went away (a closed pipe, as
    /// in `| head`) ends the command quietly with status 0.
    pub(super) async fn out(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        if bytes.is_empty() {
            return Ok(());
        }
        let written = async {
            self.stdout.write_all(bytes).await?;
            self.stdout.flush().await
        };
        written.await.map_err(|e| match e.kind() {
            ErrorKind::BrokenPipe => Failure::quiet(0),
            _ => Failure::new(
                "output_failed",
                format!("could not write to standard output: {e}"),
            ),
        })
    }

    /// Writes one line to standard error (a status line: write errors are ignored).
    /// Control characters in it (from a backend's message) become spaces.
    pub(super) async fn note(&mut self, line: &str) {
        let mut text: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        text.push('\n');
        let _ = self.stderr.write_all(text.as_bytes()).await;
        let _ = self.stderr.flush().await;
    }

    /// [`Output::note`] on a line of its own: after output that may not have ended
    /// its line (or the terminal's echo of `^]`), a line break comes first.
    pub(super) async fn note_apart(&mut self, line: &str) {
        self.err_raw(b"\n").await;
        self.note(line).await;
    }

    /// Writes raw bytes to standard error (a terminal's status line in raw mode).
    pub(super) async fn err_raw(&mut self, bytes: &[u8]) {
        let _ = self.stderr.write_all(bytes).await;
        let _ = self.stderr.flush().await;
    }
}

/// Resolves when standard output is a pipe or a socket whose reader has gone (as
/// `| head` leaves it once it has read enough), so that a command waiting for more
/// to print (`logs -f` on an idle worker) ends then, not at its next write; never
/// resolves otherwise (a terminal, a file). A detached thread waits in `poll(2)`,
/// which reports the closed reader as `POLLERR` (`POLLHUP` for a socket) without
/// being asked; it does not hold the process's exit.
pub(super) async fn stdout_reader_gone() {
    use std::os::fd::{AsFd, AsRawFd};

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::stat::{SFlag, fstat};

    let is_pipe = fstat(std::io::stdout().as_raw_fd()).is_ok_and(|stat| {
        let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        kind == SFlag::S_IFIFO || kind == SFlag::S_IFSOCK
    });
    if !is_pipe {
        return std::future::pending().await;
    }
    let (gone, waited) = tokio::sync::oneshot::channel();
    let watcher = std::thread::Builder::new()
        .name("switchyard-stdout-watch".to_owned())
        .spawn(move || {
            let stdout = std::io::stdout();
            let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::empty())];
            loop {
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {
                        let events = fds[0].revents().unwrap_or(PollFlags::empty());
                        if events.intersects(PollFlags::POLLERR | PollFlags::POLLHUP) {
                            let _ = gone.send(());
                            return;
                        }
                        if events.contains(PollFlags::POLLNVAL) {
                            return;
                        }
                    }
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => return,
                }
            }
        });
    if watcher.is_err() || waited.await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A table: a header row and rows, columns padded to their widest cell and separated
/// by two spaces; the last column is not padded. Cells are single-line. Widths are
/// terminal columns (a wide character, an emoji or CJK, takes two).
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    use unicode_width::UnicodeWidthStr;
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.width());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate().take(columns) {
            text.push_str(cell);
            if i + 1 < columns {
                let pad = widths[i].saturating_sub(cell.width());
                text.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// `text` cut to at most `columns` terminal columns, ending with `…` when cut.
pub(super) fn fit(text: &str, columns: usize) -> String {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    if text.width() <= columns {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let width = c.width().unwrap_or(0);
        if used + width + 1 > columns {
            break;
        }
        used += width;
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec![
                "local/w-1".to_owned(),
                "echo".to_owned(),
                "running".to_owned(),
            ],
            vec!["b/w-22".to_owned(), "shell".to_owned(), "".to_owned()],
        ];
        assert_eq!(
            table(&["WORKER", "PROFILE", "STATUS"], &rows),
            "WORKER     PROFILE  STATUS\n\
             local/w-1  echo     running\n\
             b/w-22     shell\n"
        );
        assert_eq!(table(&["A", "B"], &[]), "A  B\n");
    }

    #[test]
    fn wide_characters_take_two_columns() {
        let rows = vec![
            vec!["🚂🚂".to_owned(), "x".to_owned()],
            vec!["ab".to_owned(), "y".to_owned()],
        ];
        assert_eq!(
            table(&["LABEL", "C"], &rows),
            "LABEL  C\n\
             🚂🚂   x\n\
             ab     y\n"
        );
    }

    #[test]
    fn fit_cuts_at_a_width_with_an_ellipsis() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("exactly-10", 10), "exactly-10");
        assert_eq!(fit("a label that goes on", 10), "a label t…");
        assert_eq!(fit("🚂🚂🚂🚂🚂🚂", 5), "🚂🚂…");
    }
}
