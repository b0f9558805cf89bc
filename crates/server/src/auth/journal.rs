//! The sign-out journal (`[auth] signed_out_file`): the sessions signed out, kept
//! in a file so that they stay signed out after a restart, and shared by every
//! backend that names the same file (replicas on one host, or on a file system
//! whose `flock` works across hosts).
//!
//! The file is text: a fixed-width header line, then one [`SignOut`] per line.
//!
//! ```text
//! switchyard-signed-out 1 <generation: 16 hex> <compacted length: 20 digits>
//! s <fingerprint> <session id: 64 hex> <issued at> <expires at> <signed out at>
//! c <fingerprint> <cut-off>
//! ```
//!
//! Invariant: every change happens under an exclusive `flock` on the file and every
//! read under a shared one, so a reader never sees half a line. Lines are only
//! ever appended, except by a compaction, which writes the entries that still hold
//! a session to a new file under a new generation and renames it over the old one
//! (so a crash leaves one or the other). Every call opens the path afresh and, once
//! it holds the lock, checks that the path still names the file it locked. A
//! reader that finds another generation reads the file again from the top: entries
//! are idempotent.
//!
//! A file grows to at most twice its last compacted length (and 1 MiB) before the
//! next append compacts it; the compacted length is bounded by the signed-out
//! sessions' own bound ([`super::signed_out::MAX_PER_TOKEN`] per token).
//!
//! Every call does blocking file I/O: run it on a blocking thread.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::signed_out::{SessionId, SignOut, SignedOut};

/// The header's first words; the header is always [`HEADER_LEN`] bytes.
const MAGIC: &str = "switchyard-signed-out 1 ";
/// `MAGIC`, 16 hex digits, a space, 20 digits, a newline.
const HEADER_LEN: u64 = MAGIC.len() as u64 + 16 + 1 + 20 + 1;
/// A file shorter than this is never compacted.
const COMPACT_FLOOR: u64 = 1 << 20;
/// How long past its expiry (by the compacting process's clock) a line is kept, for
/// backends sharing the file whose clocks run behind.
const CLOCK_MARGIN_S: u64 = 300;
/// Longest a call waits for another process's lock on the file.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the journal could not be read or written. Its `Display` names the file and
/// says what to do; it never holds a session's cookie (only ids of them).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The file could not be opened, locked, read or written.
    #[error(
        "could not use the sign-out file {path}: {source}; auth.signed_out_file must name a file this user can create, read and write"
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The file exists and is not a sign-out journal (its first line says so).
    #[error(
        "{path} is not a switchyard sign-out file (its first line is not `switchyard-signed-out 1 ...`); name a new or empty file in auth.signed_out_file"
    )]
    NotAJournal {
        /// The file.
        path: PathBuf,
    },
}

/// What this process has read of the file.
#[derive(Debug)]
struct ReadState {
    /// The generation read last; `None` before the first read.
    generation: Option<u64>,
    /// Where the next unread line starts.
    offset: u64,
}

/// One process's handle on a sign-out file (see the module's notes).
#[derive(Debug)]
pub struct SignOutJournal {
    path: PathBuf,
    /// How many sessions of one token a compaction's replay remembers one by one
    /// (the [`SignedOut`] capacity of the processes sharing the file).
    per_token: usize,
    /// A file shorter than this is never compacted ([`COMPACT_FLOOR`]; tests set
    /// less).
    compact_floor: u64,
    /// Longest a call waits for the lock ([`LOCK_WAIT`]; tests set less).
    lock_wait: std::time::Duration,
    read: Mutex<ReadState>,
}

/// The header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    generation: u64,
    compacted_len: u64,
}

impl Header {
    fn line(self) -> String {
        format!(
            "{MAGIC}{:016x} {:020}\n",
            self.generation, self.compacted_len
        )
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let rest = text.strip_prefix(MAGIC)?.strip_suffix('\n')?;
        let (generation, len) = rest.split_once(' ')?;
        if generation.len() != 16 || len.len() != 20 {
            return None;
        }
        Some(Self {
            generation: u64::from_str_radix(generation, 16).ok()?,
            compacted_len: len.parse().ok()?,
        })
    }
}

/// True for a whole file (`len` bytes, starting with `bytes`) that is a first header
/// a crash cut short: no longer than a header, and zeros or a header's beginning
/// with no end of line. Anything longer is not ours to restart.
fn is_torn_header(bytes: &[u8], len: u64) -> bool {
    let magic = MAGIC.as_bytes();
    len <= HEADER_LEN
        && (bytes.iter().all(|b| *b == 0)
            || ((bytes.len() as u64) < HEADER_LEN
                && (magic.starts_with(bytes) || bytes.starts_with(magic))
                && !bytes.contains(&b'\n')))
}

/// `path` with its symbolic links resolved (the file's, or, when it does not exist
/// yet, its directory's), so that a compaction replaces the file every backend
/// names, not a link to it.
fn real_path(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => std::fs::canonicalize(dir)
            .map(|dir| dir.join(name))
            .unwrap_or_else(|_| path.to_owned()),
        _ => path.to_owned(),
    }
}

/// Takes `file`'s lock (exclusive or shared), waiting at most `wait` for another
/// process to let go of it.
fn lock(file: &File, exclusive: bool, wait: std::time::Duration) -> io::Result<()> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let tried = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match tried {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::Error(error)) => return Err(error),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() >= deadline => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "another process has held its lock for more than {} ms",
                        wait.as_millis()
                    ),
                ));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

/// One line of the journal for `entry`, with its newline.
pub fn line(entry: &SignOut) -> String {
    match entry {
        SignOut::Session {
            fingerprint,
            id,
            issued_at,
            expires_at,
            at,
        } => format!(
            "s {fingerprint} {} {issued_at} {expires_at} {at}\n",
            id.to_hex()
        ),
        SignOut::CutOff {
            fingerprint,
            before,
        } => format!("c {fingerprint} {before}\n"),
    }
}

/// The entry of one line (without its newline); `None` for anything else.
pub fn parse_line(line: &str) -> Option<SignOut> {
    let mut words = line.split(' ');
    let kind = words.next()?;
    let fingerprint = words.next().filter(|f| is_fingerprint(f))?.to_owned();
    let entry = match kind {
        "c" => SignOut::CutOff {
            fingerprint,
            before: words.next()?.parse().ok()?,
        },
        "s" => {
            let id = SessionId::from_hex(words.next()?)?;
            let mut number = || words.next()?.parse::<u64>().ok();
            SignOut::Session {
                fingerprint,
                id,
                issued_at: number()?,
                expires_at: number()?,
                at: number()?,
            }
        }
        _ => return None,
    };
    words.next().is_none().then_some(entry)
}

/// A token fingerprint as [`super::session::fingerprint`] writes it: 32 lowercase
/// hex digits.
fn is_fingerprint(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The entries in `bytes` (whole lines only), how many bytes they took (up to the
/// last newline), and how many lines were not entries.
fn parse_lines(bytes: &[u8]) -> (Vec<SignOut>, u64, usize) {
    let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
        return (Vec::new(), 0, 0);
    };
    let mut entries = Vec::new();
    let mut bad = 0;
    for line in bytes[..end].split(|b| *b == b'\n') {
        match std::str::from_utf8(line).ok().and_then(parse_line) {
            Some(entry) => entries.push(entry),
            None => bad += 1,
        }
    }
    (entries, end as u64 + 1, bad)
}

impl SignOutJournal {
    /// Opens the journal at `path` (creating it when missing), compacts it, and
    /// answers the entries that still hold a session at `now` (Unix seconds).
    /// `per_token` is the [`SignedOut`] capacity its entries are replayed into.
    pub fn open(
        path: &Path,
        per_token: usize,
        now: u64,
    ) -> Result<(Self, Vec<SignOut>), JournalError> {
        let journal = Self {
            path: real_path(path),
            per_token,
            compact_floor: COMPACT_FLOOR,
            lock_wait: LOCK_WAIT,
            read: Mutex::new(ReadState {
                generation: None,
                offset: 0,
            }),
        };
        let entries = journal.exclusive(|file, read| {
            let all = journal.read_from_top(file, read)?;
            Ok(journal
                .compact_or_warn(file, read, &all, now)
                .unwrap_or(all))
        })?;
        Ok((journal, entries))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entries` (durably: the data is synced before this returns), and
    /// answers the entries other processes wrote since this one last read. Compacts
    /// the file when it has grown past twice its compacted length.
    pub fn append(&self, entries: &[SignOut], now: u64) -> Result<Vec<SignOut>, JournalError> {
        self.exclusive(|file, read| {
            let (header, others) = self.read_new_locked(file, read, true)?;
            let compacted_len = header.map_or(HEADER_LEN, |h| h.compacted_len);
            let len = file.seek(SeekFrom::End(0))?;
            let mut text = String::new();
            if len > read.offset {
                // A torn line (a writer died mid-line): end it, so it stays one bad
                // line instead of spoiling the next.
                text.push('\n');
            }
            for entry in entries {
                text.push_str(&line(entry));
            }
            file.write_all(text.as_bytes())?;
            file.sync_data()?;
            read.offset = len + text.len() as u64;
            if read.offset > self.compact_floor.max(compacted_len.saturating_mul(2)) {
                // Recorded already: a compaction that fails is only logged.
                let all = self.read_from_top(file, read)?;
                self.compact_or_warn(file, read, &all, now);
            }
            Ok(others)
        })
    }

    /// The entries other processes wrote since this one last read (all of them again
    /// after another process compacted the file).
    pub fn read_new(&self) -> Result<Vec<SignOut>, JournalError> {
        self.locked(false, |file, read| {
            self.read_new_locked(file, read, false)
                .map(|(_, entries)| entries)
        })
    }

    /// Runs `f` on the file under an exclusive lock.
    fn exclusive<T>(
        &self,
        f: impl FnOnce(&mut File, &mut ReadState) -> io::Result<T>,
    ) -> Result<T, JournalError> {
        self.locked(true, f)
    }

    fn locked<T>(
        &self,
        exclusive: bool,
        f: impl FnOnce(&mut File, &mut ReadState) -> io::Result<T>,
    ) -> Result<T, JournalError> {
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = loop {
            let file = OpenOptions::new()
                .read(true)
                .write(exclusive)
                .create(exclusive)
                .truncate(false)
                .open(&self.path)
                .map_err(io)?;
            lock(&file, exclusive, self.lock_wait).map_err(io)?;
            // A compaction may have renamed a new file over the one locked here
            // while this waited for the lock: lock the file the path names now.
            let locked = file.metadata().map_err(io)?;
            match std::fs::metadata(&self.path) {
                Ok(named) if (named.dev(), named.ino()) == (locked.dev(), locked.ino()) => {
                    break file;
                }
                Ok(_) => continue,
                Err(source) if source.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(io(source)),
            }
        };
        // Taken only once the file is locked, so that a call waiting for another
        // process's lock does not hold up this process's other calls behind it.
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        // The lock ends when `file` is closed, on every path out of here.
        f(&mut file, &mut read).map_err(|source| {
            if source.kind() == io::ErrorKind::InvalidData {
                JournalError::NotAJournal {
                    path: self.path.clone(),
                }
            } else {
                io(source)
            }
        })
    }

    /// The header, or, for an empty file, a new one written now (`writable`) or
    /// `None` (a reader: nothing to read). A file that does not start with one is
    /// `InvalidData`.
    fn header(file: &mut File, writable: bool) -> io::Result<Option<Header>> {
        let mut bytes = [0u8; HEADER_LEN as usize];
        file.seek(SeekFrom::Start(0))?;
        let mut got = 0;
        while got < bytes.len() {
            match file.read(&mut bytes[got..])? {
                0 => break,
                n => got += n,
            }
        }
        if got == 0 || is_torn_header(&bytes[..got], file.metadata()?.len()) {
            if !writable {
                return Ok(None);
            }
            // Empty, or a first header that a crash cut short: start afresh.
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            let header = Header {
                generation: fastrand::u64(..),
                compacted_len: HEADER_LEN,
            };
            file.write_all(header.line().as_bytes())?;
            file.sync_data()?;
            return Ok(Some(header));
        }
        Header::parse(&bytes[..got])
            .map(Some)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))
    }

    /// Reads what is new since `read` (from the top after a compaction); answers
    /// the header too (`None`: an empty file, for a reader).
    fn read_new_locked(
        &self,
        file: &mut File,
        read: &mut ReadState,
        writable: bool,
    ) -> io::Result<(Option<Header>, Vec<SignOut>)> {
        let Some(header) = Self::header(file, writable)? else {
            return Ok((None, Vec::new()));
        };
        let len = file.seek(SeekFrom::End(0))?;
        if read.generation != Some(header.generation) || len < read.offset {
            read.generation = Some(header.generation);
            read.offset = HEADER_LEN;
        }
        file.seek(SeekFrom::Start(read.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (entries, used, bad) = parse_lines(&bytes);
        if bad > 0 {
            tracing::warn!(
                path = %self.path.display(),
                lines = bad,
                "lines of the sign-out file that are not sign-outs were skipped"
            );
        }
        read.offset += used;
        Ok((Some(header), entries))
    }

    /// Reads the whole file, under an exclusive lock.
    fn read_from_top(&self, file: &mut File, read: &mut ReadState) -> io::Result<Vec<SignOut>> {
        read.generation = None;
        self.read_new_locked(file, read, true)
            .map(|(_, entries)| entries)
    }

    /// [`Self::compact`], or `None` with a warning when it fails (the file stays as
    /// it was, only longer).
    fn compact_or_warn(
        &self,
        locked: &File,
        read: &mut ReadState,
        all: &[SignOut],
        now: u64,
    ) -> Option<Vec<SignOut>> {
        match self.compact(locked, read, all, now) {
            Ok(kept) => Some(kept),
            Err(error) => {
                tracing::warn!(
                    path = %self.path.display(),
                    %error,
                    "the sign-out file could not be rewritten without its expired lines; it keeps growing until it can (its directory must be writable)"
                );
                None
            }
        }
    }

    /// Replaces the file (`locked`) with one holding the entries of `all` that still
    /// hold a session a little before `now` ([`CLOCK_MARGIN_S`]), under a new
    /// generation, with the old file's mode and owner; written aside, then renamed
    /// over it, so a crash leaves the old file or the new one. Answers them.
    fn compact(
        &self,
        locked: &File,
        read: &mut ReadState,
        all: &[SignOut],
        now: u64,
    ) -> io::Result<Vec<SignOut>> {
        let now = now.saturating_sub(CLOCK_MARGIN_S);
        let replay = SignedOut::with_capacity(self.per_token);
        for entry in all {
            replay.apply(entry, now);
        }
        let kept = replay.entries(now);
        let body: String = kept.iter().map(line).collect();
        let header = Header {
            generation: fastrand::u64(..),
            compacted_len: HEADER_LEN + body.len() as u64,
        };
        let aside = self.aside_path();
        let at = |path: &Path| {
            let path = path.display().to_string();
            move |error: io::Error| io::Error::new(error.kind(), format!("{path}: {error}"))
        };
        let old = locked.metadata()?;
        let mut file = File::create(&aside).map_err(at(&aside))?;
        file.set_permissions(old.permissions())
            .map_err(at(&aside))?;
        if (old.uid(), old.gid()) != (file.metadata()?.uid(), file.metadata()?.gid())
            && let Err(error) = std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid()))
        {
            // Only root (or the owner, for a group it is in) may: the new file is
            // this process's then, which the warning says.
            tracing::warn!(
                path = %self.path.display(),
                %error,
                "the rewritten sign-out file could not keep its owner and group"
            );
        }
        file.write_all(header.line().as_bytes())
            .and_then(|()| file.write_all(body.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(at(&aside))?;
        drop(file);
        std::fs::rename(&aside, &self.path).map_err(at(&aside))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(at(dir))?;
        }
        read.generation = Some(header.generation);
        read.offset = header.compacted_len;
        Ok(kept)
    }

    /// Where a compaction writes the new file before renaming it over the old one.
    fn aside_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_owned();
        name.push(".compacting");
        self.path.with_file_name(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600;

    fn fingerprint(n: u8) -> String {
        format!("{n:02x}").repeat(16)
    }

    fn session(token: u8, n: u32, issued_at: u64, expires_at: u64) -> SignOut {
        SignOut::Session {
            fingerprint: fingerprint(token),
            id: SessionId::of(&format!("cookie-{token}-{n}")),
            issued_at,
            expires_at,
            at: issued_at + 1,
        }
    }

    fn cut_off(token: u8, before: u64) -> SignOut {
        SignOut::CutOff {
            fingerprint: fingerprint(token),
            before,
        }
    }

    /// A temporary directory (removed when dropped) for one test's sign-out file.
    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Self {
            Self(tempfile::tempdir().unwrap())
        }

        fn path(&self) -> &Path {
            self.0.path()
        }

        fn file(&self) -> PathBuf {
            self.path().join("signed-out")
        }

        fn open(&self, now: u64) -> (SignOutJournal, Vec<SignOut>) {
            SignOutJournal::open(&self.file(), 1000, now).unwrap()
        }

        fn text(&self) -> String {
            std::fs::read_to_string(self.file()).unwrap()
        }
    }

    #[test]
    fn lines_say_what_they_hold_and_nothing_else_is_an_entry() {
        for entry in [session(1, 1, 100, 200), cut_off(2, 300)] {
            let text = line(&entry);
            assert!(text.ends_with('\n'));
            assert_eq!(parse_line(text.trim_end_matches('\n')), Some(entry));
        }
        let id = "ab".repeat(32);
        let fp = fingerprint(0xab);
        for bad in [
            String::new(),
            "c".into(),
            format!("c {fp}"),
            format!("c {fp} x"),
            format!("c {fp} 1 2"),
            format!("x {fp} 1"),
            format!("c {} 1", fp.to_uppercase()),
            format!("c {} 1", &fp[1..]),
            format!("s {fp} {id} 1 2"),
            format!("s {fp} {id} 1 2 3 4"),
            format!("s {fp} {} 1 2 3", &id[2..]),
            format!("s {fp} {id} 1 -2 3"),
            format!("s  {fp} {id} 1 2 3"),
        ] {
            assert_eq!(parse_line(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_new_file_starts_empty_and_what_is_appended_is_there_after_a_restart() {
        let dir = Dir::new();
        let (journal, entries) = dir.open(1000);
        assert!(entries.is_empty());
        assert_eq!(dir.text().len() as u64, HEADER_LEN);
        let written = [session(1, 1, 900, 5000), cut_off(2, 950)];
        assert!(journal.append(&written, 1000).unwrap().is_empty());
        drop(journal);
        let (_, entries) = dir.open(1100);
        assert_eq!(entries, [cut_off(2, 950), session(1, 1, 900, 5000)]);
    }

    #[test]
    fn opening_drops_what_no_longer_holds_a_session() {
        let dir = Dir::new();
        let (journal, _) = dir.open(1000);
        journal
            .append(
                &[
                    session(1, 1, 900, 2000),
                    session(1, 2, 900, 5000),
                    session(1, 2, 900, 5000),
                    session(1, 3, 900, 2400),
                    cut_off(2, 1000),
                    cut_off(3, 100),
                ],
                1000,
            )
            .unwrap();
        // Past the first cookie's expiry by more than the clock margin, and the
        // third's by less (a backend whose clock runs behind still needs it).
        let (_, entries) = dir.open(2500);
        assert_eq!(entries.len(), 4, "{entries:?}");
        assert_eq!(entries[..2], [cut_off(2, 1000), cut_off(3, 100)]);
        assert!(entries.contains(&session(1, 2, 900, 5000)));
        assert!(entries.contains(&session(1, 3, 900, 2400)));
        assert_eq!(
            dir.text().lines().count(),
            5,
            "rewritten without the duplicate and the expired line"
        );
        // 30 days (and the margin) past token 3's cut-off, and past every expiry.
        let (_, entries) = dir.open(100 + 30 * DAY + CLOCK_MARGIN_S);
        assert_eq!(entries, [cut_off(2, 1000)]);
    }

    #[test]
    fn backends_sharing_a_file_read_each_others_sign_outs_across_compactions() {
        let dir = Dir::new();
        let (mut a, _) = dir.open(1000);
        let (b, _) = dir.open(1000);
        a.compact_floor = 0;
        a.append(&[session(1, 1, 900, 5000)], 1000).unwrap();
        assert_eq!(b.read_new().unwrap(), [session(1, 1, 900, 5000)]);
        assert!(b.read_new().unwrap().is_empty(), "read once");
        b.append(&[session(1, 2, 900, 5000)], 1000).unwrap();
        // `a` appends past twice the compacted length: the file is compacted, and
        // `a` learns of `b`'s line on the way.
        let seen = a
            .append(&[session(1, 3, 900, 5000), session(1, 4, 900, 5000)], 1000)
            .unwrap();
        assert_eq!(seen, [session(1, 2, 900, 5000)]);
        assert_eq!(dir.text().lines().count(), 5, "{}", dir.text());
        // `b` sees a new generation and reads the whole file again.
        let again = b.read_new().unwrap();
        assert_eq!(again.len(), 4, "{again:?}");
        assert!(again.contains(&session(1, 4, 900, 5000)));
        assert!(b.read_new().unwrap().is_empty());
        assert!(!dir.path().join("signed-out.compacting").exists());
    }

    #[test]
    fn a_file_stays_within_twice_its_compacted_length_however_often_one_signs_out() {
        let dir = Dir::new();
        let (mut journal, _) = dir.open(1000);
        journal.compact_floor = 4096;
        let same = session(1, 1, 900, 5000);
        for _ in 0..500 {
            journal.append(std::slice::from_ref(&same), 1000).unwrap();
            let len = std::fs::metadata(dir.file()).unwrap().len();
            assert!(len <= 4096 + line(&same).len() as u64, "{len}");
        }
        let (_, entries) = dir.open(1000);
        assert_eq!(entries, [same]);
    }

    #[test]
    fn a_torn_line_is_skipped_and_spoils_nothing_after_it() {
        let dir = Dir::new();
        let (journal, _) = dir.open(1000);
        journal.append(&[session(1, 1, 900, 5000)], 1000).unwrap();
        let (other, _) = dir.open(1000);
        // A writer died mid-line.
        let mut file = OpenOptions::new().append(true).open(dir.file()).unwrap();
        file.write_all(b"s 0101010101").unwrap();
        assert!(other.read_new().unwrap().is_empty(), "half a line waits");
        journal.append(&[session(1, 2, 900, 5000)], 1000).unwrap();
        assert_eq!(other.read_new().unwrap(), [session(1, 2, 900, 5000)]);
        let (_, entries) = dir.open(1000);
        assert_eq!(entries.len(), 2, "{entries:?}");
    }

    #[test]
    fn an_emptied_file_reads_as_nothing_and_takes_the_next_sign_out() {
        let dir = Dir::new();
        let (journal, _) = dir.open(1000);
        journal.append(&[session(1, 1, 900, 5000)], 1000).unwrap();
        std::fs::write(dir.file(), "").unwrap();
        assert!(journal.read_new().unwrap().is_empty());
        journal.append(&[session(1, 2, 900, 5000)], 1000).unwrap();
        let (_, entries) = dir.open(1000);
        assert_eq!(entries, [session(1, 2, 900, 5000)]);
    }

    #[test]
    fn appends_and_compactions_from_many_handles_at_once_lose_nothing() {
        let dir = Dir::new();
        let (first, _) = dir.open(1000);
        drop(first);
        let handles: Vec<_> = (0..4u8)
            .map(|writer| {
                let file = dir.file();
                std::thread::spawn(move || {
                    let (mut journal, _) = SignOutJournal::open(&file, 1000, 1000).unwrap();
                    journal.compact_floor = 0;
                    for n in 0..40 {
                        journal
                            .append(&[session(writer, n, 900, 5000)], 1000)
                            .unwrap();
                        journal.read_new().unwrap();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let (_, entries) = dir.open(1000);
        assert_eq!(entries.len(), 160, "every sign-out of every writer");
        for writer in 0..4u8 {
            for n in 0..40 {
                assert!(
                    entries.contains(&session(writer, n, 900, 5000)),
                    "{writer}/{n}"
                );
            }
        }
    }

    #[test]
    fn a_compaction_keeps_the_files_mode_and_the_file_a_link_names() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Dir::new();
        let (journal, _) = dir.open(1000);
        journal.append(&[session(1, 1, 900, 5000)], 1000).unwrap();
        std::fs::set_permissions(dir.file(), std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.file(), &link).unwrap();
        let (_, entries) = SignOutJournal::open(&link, 1000, 1000).unwrap();
        assert_eq!(entries.len(), 1);
        let mode = std::fs::metadata(dir.file()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "the link still names the file"
        );
    }

    #[test]
    fn a_compaction_that_cannot_write_leaves_the_file_as_it_was_and_fails_nothing() {
        let dir = Dir::new();
        let (mut journal, _) = dir.open(1000);
        journal.compact_floor = 0;
        std::fs::create_dir(dir.path().join("signed-out.compacting")).unwrap();
        for n in 0..3 {
            journal.append(&[session(1, n, 900, 5000)], 1000).unwrap();
        }
        assert_eq!(dir.text().lines().count(), 4, "appended, never rewritten");
        let (_, entries) = dir.open(1000);
        assert_eq!(entries.len(), 3);
    }

    #[test]
    fn a_first_header_cut_short_by_a_crash_starts_the_file_afresh() {
        for torn in [
            &b"switchyard-sig"[..],
            &[0u8; 30][..],
            &b"switchyard-signed-out 1 00ab"[..],
        ] {
            let dir = Dir::new();
            std::fs::write(dir.file(), torn).unwrap();
            let (journal, entries) = dir.open(1000);
            assert!(entries.is_empty());
            journal.append(&[session(1, 1, 900, 5000)], 1000).unwrap();
            assert_eq!(dir.open(1000).1.len(), 1, "{torn:?}");
        }
    }

    #[test]
    fn a_longer_file_starting_with_zeros_is_not_taken_for_a_torn_header() {
        let dir = Dir::new();
        let mut image = vec![0u8; 4096];
        image.extend_from_slice(b"someone's data\n");
        std::fs::write(dir.file(), &image).unwrap();
        let error = SignOutJournal::open(&dir.file(), 1000, 1000).unwrap_err();
        assert!(
            matches!(error, JournalError::NotAJournal { .. }),
            "{error:?}"
        );
        assert_eq!(std::fs::read(dir.file()).unwrap(), image, "left alone");
    }

    #[test]
    fn a_lock_held_too_long_by_another_process_is_an_error_not_a_hang() {
        let dir = Dir::new();
        let (mut journal, _) = dir.open(1000);
        journal.lock_wait = std::time::Duration::from_millis(100);
        let holder = File::open(dir.file()).unwrap();
        holder.lock().unwrap();
        let error = journal
            .append(&[session(1, 1, 900, 5000)], 1000)
            .unwrap_err();
        assert!(error.to_string().contains("held its lock"), "{error}");
        assert!(journal.read_new().is_err(), "a reader waits for a writer");
        drop(holder);
        journal.append(&[session(1, 1, 900, 5000)], 1000).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_refused_and_left_alone() {
        let dir = Dir::new();
        std::fs::write(dir.file(), "important = true\n").unwrap();
        let error = SignOutJournal::open(&dir.file(), 1000, 1000).unwrap_err();
        assert!(
            matches!(error, JournalError::NotAJournal { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("name a new or empty file"));
        assert_eq!(dir.text(), "important = true\n");
    }

    #[test]
    fn a_file_that_cannot_be_written_says_which_and_what_to_do() {
        let dir = Dir::new();
        let missing = dir.path().join("no-such-dir/signed-out");
        let error = SignOutJournal::open(&missing, 1000, 1000).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("no-such-dir/signed-out"), "{message}");
        assert!(
            message.contains("auth.signed_out_file must name"),
            "{message}"
        );
        // Made unusable after opening (a directory took its place).
        let (journal, _) = dir.open(1000);
        std::fs::remove_file(dir.file()).unwrap();
        std::fs::create_dir(dir.file()).unwrap();
        assert!(journal.append(&[session(1, 1, 900, 5000)], 1000).is_err());
        assert!(journal.read_new().is_err());
    }
}
