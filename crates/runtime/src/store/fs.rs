//! [`FsStore`]: workers and transcripts in plain files under a data directory.
//!
//! Layout:
//!
//! ```text
//! <data_dir>/lock                                  held (flock) while a store is open
//! <data_dir>/workers/<worker_id>/worker.json       the WorkerDetail, replaced atomically
//! <data_dir>/workers/<worker_id>/transcript.jsonl  one TranscriptItem per '\n'-ended line
//! ```
//!
//! Invariant: one store per data directory. [`FsStore::open`] takes an exclusive
//! lock on `lock` for as long as the store lives, and a second open (another
//! runtime, or a backend's embedded runtime, pointed at the same directory) is
//! refused ([`StoreError::InUse`]): two would hand out the same sequence numbers
//! and mark each other's running workers lost. Directories are created `0700` and
//! files `0600`: transcripts hold everything typed into a worker.
//!
//! Every call runs its file I/O in one `spawn_blocking` task. Transcript lines are
//! sorted by sequence, so pages are found by bisecting the file by byte offset and the
//! tail is read backwards from the end: neither reads the whole transcript.
//!
//! Names starting with `.tmp-` in `workers/` (a worker directory being created or
//! removed) and `worker.json.tmp-` in a worker directory (a record being written) are
//! temporary; leftovers of an earlier process are cleaned up by [`Store::load`].

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Deserialize;
use switchyard_protocol::{TranscriptItem, WorkerDetail, WorkerId};

use super::{LoadedWorker, Store, StoreError};

const WORKERS_DIR: &str = "workers";
const LOCK_FILE: &str = "lock";
const RECORD_FILE: &str = "worker.json";
const TRANSCRIPT_FILE: &str = "transcript.jsonl";
/// Prefix of temporary directories in `workers/` (never a valid worker id).
const TEMP_DIR_PREFIX: &str = ".tmp-";
/// Prefix of temporary record files in a worker directory.
const TEMP_RECORD_PREFIX: &str = "worker.json.tmp-";

/// Block size for reading a transcript backwards.
const BLOCK: usize = 64 * 1024;
/// Buffer size for reading a transcript forwards.
const READ_BUF: usize = 16 * 1024;
/// When the bisected byte range is this small, scan it line by line.
const SCAN_THRESHOLD: u64 = 16 * 1024;

type Handle = Arc<Mutex<File>>;

/// A [`Store`] keeping each worker in a directory under `<data_dir>/workers/`.
///
/// Records are replaced atomically (temp file, fsync, rename, directory fsync);
/// transcript appends are single writes to a cached append-mode handle and become
/// durable on [`Store::flush`].
#[derive(Debug)]
pub struct FsStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    workers_dir: PathBuf,
    /// The data directory's lock, held while this store lives (or until
    /// [`Store::close`]).
    lock: File,
    /// Set by [`Store::close`]: every later call is refused ([`StoreError::Closed`]),
    /// so that a runtime that let its directory go never writes to it again.
    closed: std::sync::atomic::AtomicBool,
    /// Open append handles, one per worker that was appended to.
    handles: Mutex<HashMap<WorkerId, Handle>>,
    /// Distinguishes this store's temporary names from leftovers of earlier ones.
    token: String,
    temp_counter: AtomicU64,
}

impl FsStore {
    /// Opens (creating it if missing) the store under `data_dir`.
    ///
    /// Refused with [`StoreError::InUse`] while another store has the directory
    /// open, in this process or another.
    pub async fn open(data_dir: impl Into<PathBuf>) -> Result<FsStore, StoreError> {
        let data_dir = data_dir.into();
        let workers_dir = data_dir.join(WORKERS_DIR);
        let dir = workers_dir.clone();
        let lock = blocking(&workers_dir, move || {
            private_dirs().create(&dir).map_err(|e| io_error(&dir, e))?;
            // Directories made by an earlier version (or by hand) become the
            // owner's alone too; what is inside is then out of others' reach.
            for path in [&data_dir, &dir] {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(path, fs::Permissions::from_mode(0o700))
                    .map_err(|e| io_error(path, e))?;
            }
            lock_data_dir(&data_dir)
        })
        .await?;
        Ok(FsStore {
            inner: Arc::new(Inner {
                workers_dir,
                lock,
                closed: std::sync::atomic::AtomicBool::new(false),
                handles: Mutex::new(HashMap::new()),
                token: format!("{:016x}", fastrand::u64(..)),
                temp_counter: AtomicU64::new(0),
            }),
        })
    }

    /// Runs `f` on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        blocking(&self.inner.workers_dir, move || {
            if inner.closed.load(Ordering::SeqCst) {
                return Err(StoreError::Closed);
            }
            f(&inner)
        })
        .await
    }
}

/// Creates (if missing) and locks `<data_dir>/lock`; the lock lasts as long as the
/// file is open.
fn lock_data_dir(data_dir: &Path) -> Result<File, StoreError> {
    let path = data_dir.join(LOCK_FILE);
    let file = private_file()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
            data_dir: data_dir.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(io_error(&path, e)),
    }
}

/// A recursive directory builder making directories only their owner can use.
fn private_dirs() -> fs::DirBuilder {
    use std::os::unix::fs::DirBuilderExt;
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder
}

/// Options that create files only their owner can read.
fn private_file() -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = OpenOptions::new();
    options.mode(0o600);
    options
}

/// Runs `f` with `spawn_blocking`; a failed task becomes an I/O error on `path`.
async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(error) => Err(io_error(
            path,
            io::Error::other(format!("store task failed: {error}")),
        )),
    }
}

#[async_trait::async_trait]
impl Store for FsStore {
    async fn load(&self, tail: usize) -> Result<Vec<LoadedWorker>, StoreError> {
        self.run(move |inner| inner.load(tail)).await
    }

    async fn save_worker(&self, detail: &WorkerDetail) -> Result<(), StoreError> {
        let id = detail.worker_id.clone();
        let mut json = serde_json::to_vec_pretty(detail).map_err(|e| {
            io_error(
                &self.inner.worker_dir(&id).join(RECORD_FILE),
                io::Error::other(e),
            )
        })?;
        json.push(b'\n');
        let ended = detail.status.is_ended();
        self.run(move |inner| {
            if !ended {
                return inner.save_worker(&id, &json);
            }
            // The transcript is on disk before the record that says it is complete,
            // and the handle goes whatever the outcome.
            inner.sync_transcript(&id);
            let saved = inner.save_worker(&id, &json);
            inner.handles().remove(&id);
            saved
        })
        .await
    }

    async fn append(&self, worker: &WorkerId, items: &[TranscriptItem]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        // Serialising is CPU work, done here; the write happens on a blocking thread.
        // serde_json escapes newlines inside strings, so each item is one line.
        let mut lines = Vec::with_capacity(items.len() * 128);
        for item in items {
            serde_json::to_writer(&mut lines, item)
                .map_err(|e| io_error(&self.inner.transcript_path(worker), io::Error::other(e)))?;
            lines.push(b'\n');
        }
        let id = worker.clone();
        self.run(move |inner| inner.append(&id, &lines)).await
    }

    async fn read_page(
        &self,
        worker: &WorkerId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<TranscriptItem>, StoreError> {
        let id = worker.clone();
        self.run(move |inner| inner.read_page(&id, after, limit))
            .await
    }

    async fn remove_worker(&self, worker: &WorkerId) -> Result<(), StoreError> {
        let id = worker.clone();
        self.run(move |inner| inner.remove_worker(&id)).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.run(Inner::flush).await
    }

    async fn close(&self) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        // Not through `run`: closing twice is no error.
        blocking(&self.inner.workers_dir, move || {
            inner.closed.store(true, Ordering::SeqCst);
            let path = inner.workers_dir.with_file_name(LOCK_FILE);
            inner.lock.unlock().map_err(|e| io_error(&path, e))
        })
        .await
    }
}

impl Inner {
    fn worker_dir(&self, id: &WorkerId) -> PathBuf {
        self.workers_dir.join(id.as_str())
    }

    fn transcript_path(&self, id: &WorkerId) -> PathBuf {
        self.worker_dir(id).join(TRANSCRIPT_FILE)
    }

    fn temp_suffix(&self) -> String {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.token)
    }

    /// True for a temporary name made by another store (an earlier process).
    fn is_stale_temp(&self, name: &str, prefix: &str) -> bool {
        name.strip_prefix(prefix)
            .is_some_and(|rest| !rest.starts_with(&format!("{}-", self.token)))
    }

    fn handles(&self) -> MutexGuard<'_, HashMap<WorkerId, Handle>> {
        lock(&self.handles)
    }

    fn save_worker(&self, id: &WorkerId, json: &[u8]) -> Result<(), StoreError> {
        let dir = self.worker_dir(id);
        match fs::metadata(&dir) {
            Ok(_) => self.replace_record(&dir, json),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.create_worker_dir(&dir, json),
            Err(e) => Err(io_error(&dir, e)),
        }
    }

    /// Atomically replaces the record of an existing worker.
    fn replace_record(&self, dir: &Path, json: &[u8]) -> Result<(), StoreError> {
        let record = dir.join(RECORD_FILE);
        let temp = dir.join(format!("{TEMP_RECORD_PREFIX}{}", self.temp_suffix()));
        if let Err(error) = write_synced(&temp, json)
            .and_then(|()| fs::rename(&temp, &record).map_err(|e| io_error(&record, e)))
        {
            let _ = fs::remove_file(&temp);
            return Err(error);
        }
        sync_dir(dir)
    }

    /// Creates a new worker's directory atomically: it is built (record and an empty
    /// transcript) under a temporary name and renamed into place, so a crash never
    /// leaves a worker directory without its record.
    fn create_worker_dir(&self, dir: &Path, json: &[u8]) -> Result<(), StoreError> {
        let staging = self
            .workers_dir
            .join(format!("{TEMP_DIR_PREFIX}{}", self.temp_suffix()));
        let built = (|| {
            private_dirs()
                .create(&staging)
                .map_err(|e| io_error(&staging, e))?;
            write_synced(&staging.join(RECORD_FILE), json)?;
            // Created now so that its directory entry is durable with the record;
            // appends only ever fsync the file itself.
            write_synced(&staging.join(TRANSCRIPT_FILE), b"")?;
            sync_dir(&staging)?;
            fs::rename(&staging, dir).map_err(|e| io_error(dir, e))
        })();
        if let Err(error) = built {
            let _ = fs::remove_dir_all(&staging);
            return Err(error);
        }
        sync_dir(&self.workers_dir)
    }

    fn append(&self, id: &WorkerId, lines: &[u8]) -> Result<(), StoreError> {
        let path = self.transcript_path(id);
        let handle = self.handle(id, &path)?;
        let mut file = lock(&handle);
        let before = file.metadata().map_err(|e| io_error(&path, e))?.len();
        if let Err(error) = file.write_all(lines) {
            // Do not leave a partial line for the next append to continue.
            if let Err(undo) = file.set_len(before) {
                tracing::warn!(path = %path.display(), %undo, "could not undo a failed transcript append");
            }
            drop(file);
            self.handles().remove(id);
            return Err(io_error(&path, error));
        }
        Ok(())
    }

    /// Syncs a worker's transcript through its cached handle, if it has one: called
    /// as the worker ends, before its final record is saved and the handle is
    /// closed. An ended worker writes no more, and a handle kept per worker ever
    /// run would hold a file descriptor each until the process hits its limit (1024
    /// by default) and can open no socket, pipe or file. A failure is logged: the
    /// record is still worth saving, and the data is in the kernel's hands.
    fn sync_transcript(&self, id: &WorkerId) {
        let Some(handle) = self.handles().get(id).map(Arc::clone) else {
            return;
        };
        if let Err(error) = lock(&handle).sync_data() {
            let error = io_error(&self.transcript_path(id), error);
            tracing::warn!(%error, "could not flush an ended worker's transcript");
        }
    }

    /// The cached append handle, opened (and a torn tail repaired) on first use.
    fn handle(&self, id: &WorkerId, path: &Path) -> Result<Handle, StoreError> {
        if let Some(handle) = self.handles().get(id) {
            return Ok(Arc::clone(handle));
        }
        let mut file = match private_file()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
        {
            Ok(file) => file,
            // No worker directory: the worker has no record.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(id.clone()));
            }
            Err(e) => return Err(io_error(path, e)),
        };
        // Normally `load` has already done this; it is cheap (one byte read).
        repair_torn_tail(&mut file, path, File::try_clone)?;
        let handle = Arc::new(Mutex::new(file));
        Ok(Arc::clone(
            self.handles().entry(id.clone()).or_insert(handle),
        ))
    }

    fn read_page(
        &self,
        id: &WorkerId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<TranscriptItem>, StoreError> {
        let path = self.transcript_path(id);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = self.worker_dir(id);
                return match fs::metadata(&dir) {
                    Ok(meta) if meta.is_dir() => Ok(Vec::new()),
                    Ok(_) => Err(StoreError::NotFound(id.clone())),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        Err(StoreError::NotFound(id.clone()))
                    }
                    Err(e) => Err(io_error(&dir, e)),
                };
            }
            Err(e) => return Err(io_error(&path, e)),
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let end = file.metadata().map_err(|e| io_error(&path, e))?.len();
        read_page_in(file, end, &path, after, limit, SCAN_THRESHOLD)
    }

    fn remove_worker(&self, id: &WorkerId) -> Result<(), StoreError> {
        self.handles().remove(id);
        let dir = self.worker_dir(id);
        // Renamed away first, so that the removal is atomic for `load`.
        let trash = self
            .workers_dir
            .join(format!("{TEMP_DIR_PREFIX}{}", self.temp_suffix()));
        match fs::rename(&dir, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(id.clone()));
            }
            Err(e) => return Err(io_error(&dir, e)),
        }
        // Gone for `load` from here on: a failed sync only makes it less durable.
        if let Err(error) = sync_dir(&self.workers_dir) {
            tracing::warn!(%error, "could not sync the workers directory after a removal");
        }
        if let Err(error) = fs::remove_dir_all(&trash) {
            // The worker is gone already; the next `load` cleans up what is left.
            tracing::warn!(path = %trash.display(), %error, "could not delete a removed worker's files");
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        let handles: Vec<(WorkerId, Handle)> = self
            .handles()
            .iter()
            .map(|(id, handle)| (id.clone(), Arc::clone(handle)))
            .collect();
        let mut first_error = None;
        for (id, handle) in handles {
            if let Err(error) = lock(&handle).sync_data() {
                let error = io_error(&self.transcript_path(&id), error);
                tracing::warn!(%error, "could not flush a transcript");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn load(&self, tail: usize) -> Result<Vec<LoadedWorker>, StoreError> {
        let entries =
            fs::read_dir(&self.workers_dir).map_err(|e| io_error(&self.workers_dir, e))?;
        let mut workers = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.workers_dir, e))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                tracing::warn!(path = %path.display(), "ignoring an unexpected entry in the store");
                continue;
            };
            if name.starts_with(TEMP_DIR_PREFIX) {
                if self.is_stale_temp(name, TEMP_DIR_PREFIX) {
                    remove_leftover(&path, true);
                }
                continue;
            }
            let file_type = entry.file_type().map_err(|e| io_error(&path, e))?;
            let id = match WorkerId::new(name) {
                Ok(id) if file_type.is_dir() => id,
                _ => {
                    tracing::warn!(path = %path.display(), "ignoring an unexpected entry in the store");
                    continue;
                }
            };
            workers.push(self.load_worker(&id, &path, tail)?);
        }
        workers.sort_by(|a, b| a.detail.worker_id.cmp(&b.detail.worker_id));
        Ok(workers)
    }

    fn load_worker(
        &self,
        id: &WorkerId,
        dir: &Path,
        tail: usize,
    ) -> Result<LoadedWorker, StoreError> {
        let record = dir.join(RECORD_FILE);
        let bytes = match fs::read(&record) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::Corrupt {
                    path: record,
                    reason: "the worker record is missing".into(),
                });
            }
            Err(e) => return Err(io_error(&record, e)),
        };
        let detail: WorkerDetail =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: record.clone(),
                reason: e.to_string(),
            })?;
        if detail.worker_id != *id {
            return Err(StoreError::Corrupt {
                path: record,
                reason: format!("the record is for worker {}", detail.worker_id),
            });
        }

        self.remove_stale_temp_records(dir)?;

        let path = dir.join(TRANSCRIPT_FILE);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            // Created with the worker's directory: gone only if removed by hand. A
            // worker with nothing recorded loses nothing; one whose record counts
            // inputs or output would come back with an empty transcript.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if detail.input_count > 0 || detail.output_bytes > 0 {
                    return Err(StoreError::Corrupt {
                        path,
                        reason: format!(
                            "the transcript is missing, while the worker's record counts {} \
                             inputs and {} bytes of output",
                            detail.input_count, detail.output_bytes
                        ),
                    });
                }
                return Ok(LoadedWorker {
                    detail,
                    last_sequence: 0,
                    tail: Vec::new(),
                });
            }
            Err(e) => return Err(io_error(&path, e)),
        };
        let len = repair_torn_tail(&mut file, &path, |_| {
            OpenOptions::new().write(true).open(&path)
        })?;
        let (last_sequence, tail) = read_tail(&mut file, &path, len, tail, BLOCK)?;
        Ok(LoadedWorker {
            detail,
            last_sequence,
            tail,
        })
    }

    fn remove_stale_temp_records(&self, dir: &Path) -> Result<(), StoreError> {
        for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            if entry
                .file_name()
                .to_str()
                .is_some_and(|name| self.is_stale_temp(name, TEMP_RECORD_PREFIX))
            {
                remove_leftover(&entry.path(), false);
            }
        }
        Ok(())
    }
}

/// Best-effort removal of a temporary file or directory left by an earlier process.
fn remove_leftover(path: &Path, dir: bool) {
    let result = if dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Ok(()) => tracing::debug!(path = %path.display(), "removed a leftover temporary entry"),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "could not remove a leftover temporary entry");
        }
    }
}

fn io_error(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Every lock here only guards plain data or a file handle, so a poisoned lock is
/// still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Creates `path` (which must not exist), writes `bytes` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = private_file()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    file.write_all(bytes).map_err(|e| io_error(path, e))?;
    file.sync_all().map_err(|e| io_error(path, e))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

fn corrupt_line(path: &Path, offset: u64, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("unparsable transcript line at byte offset {offset}: {error}"),
    }
}

/// A line whose sequence is not above the one before it (a transcript only ever
/// grows by higher sequences, gaps allowed): a duplicated or reordered line, which
/// paging by bisection would otherwise serve wrongly.
fn out_of_order(path: &Path, offset: u64, earlier: u64, later: u64) -> StoreError {
    StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!(
            "transcript lines near byte offset {offset} go from sequence {earlier} to \
             {later}: lines are duplicated or out of order"
        ),
    }
}

/// If the transcript does not end with '\n' (a crash mid-append), truncates it back
/// to the end of its last complete line, with a warning. `writable` gives a handle
/// that may truncate the file. Returns the (new) length.
fn repair_torn_tail(
    file: &mut File,
    path: &Path,
    writable: impl FnOnce(&File) -> io::Result<File>,
) -> Result<u64, StoreError> {
    let io = |e| io_error(path, e);
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1)).map_err(io)?;
    file.read_exact(&mut last).map_err(io)?;
    if last[0] == b'\n' {
        return Ok(len);
    }
    let keep = last_newline(file, len - 1, BLOCK)
        .map_err(io)?
        .map_or(0, |at| at + 1);
    let target = writable(file).map_err(io)?;
    target.set_len(keep).map_err(io)?;
    target.sync_all().map_err(io)?;
    tracing::warn!(
        path = %path.display(),
        kept_bytes = keep,
        dropped_bytes = len - keep,
        "dropped a torn last transcript line (the runtime probably stopped mid-append)"
    );
    Ok(keep)
}

/// The offset of the last '\n' before `end`, reading backwards in blocks.
fn last_newline(file: &mut File, end: u64, block: usize) -> io::Result<Option<u64>> {
    let mut buf = vec![0u8; block];
    let mut pos = end;
    while pos > 0 {
        let n = (block as u64).min(pos) as usize;
        pos -= n as u64;
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(Some(pos + i as u64));
        }
    }
    Ok(None)
}

/// Complete lines of a file, last first, read backwards in blocks. Each line comes
/// with its byte offset and without its '\n'.
struct RevLines<'a, R> {
    file: &'a mut R,
    /// `pending` holds the bytes at `[pos, pos + pending.len())`; everything before
    /// `pos` is unread. The region ends just before a line's '\n'.
    pos: u64,
    pending: Vec<u8>,
    /// `pending[..unsearched]` may hold a '\n'; the rest does not.
    unsearched: usize,
    block: usize,
    done: bool,
}

impl<'a, R: Read + Seek> RevLines<'a, R> {
    /// `len` is the file's length; the file must be empty or end with '\n'.
    fn new(file: &'a mut R, len: u64, block: usize) -> Self {
        Self {
            file,
            pos: len.saturating_sub(1),
            pending: Vec::new(),
            unsearched: 0,
            block: block.max(1),
            done: len == 0,
        }
    }

    fn prev(&mut self) -> io::Result<Option<(u64, Vec<u8>)>> {
        if self.done {
            return Ok(None);
        }
        loop {
            if let Some(i) = self.pending[..self.unsearched]
                .iter()
                .rposition(|&b| b == b'\n')
            {
                let line = self.pending.split_off(i + 1);
                self.pending.truncate(i);
                self.unsearched = i;
                return Ok(Some((self.pos + i as u64 + 1, line)));
            }
            if self.pos == 0 {
                self.done = true;
                return Ok(Some((0, std::mem::take(&mut self.pending))));
            }
            // Grow geometrically within a long line, so that it costs O(length).
            let n = (self.block.max(self.pending.len()) as u64).min(self.pos) as usize;
            self.pos -= n as u64;
            let mut chunk = vec![0u8; n + self.pending.len()];
            self.file.seek(SeekFrom::Start(self.pos))?;
            self.file.read_exact(&mut chunk[..n])?;
            chunk[n..].copy_from_slice(&self.pending);
            self.pending = chunk;
            self.unsearched = n;
        }
    }
}

/// The last sequence and the last `tail` items of a transcript of `len` bytes that
/// ends with '\n', reading backwards only as far as needed.
fn read_tail<R: Read + Seek>(
    file: &mut R,
    path: &Path,
    len: u64,
    tail: usize,
    block: usize,
) -> Result<(u64, Vec<TranscriptItem>), StoreError> {
    let mut lines = RevLines::new(file, len, block);
    let mut last_sequence = None;
    let mut items: Vec<TranscriptItem> = Vec::with_capacity(tail.min(1024));
    while let Some((offset, line)) = lines.prev().map_err(|e| io_error(path, e))? {
        let item: TranscriptItem =
            serde_json::from_slice(&line).map_err(|e| corrupt_line(path, offset, e))?;
        if let Some(later) = items.last()
            && item.sequence >= later.sequence
        {
            return Err(out_of_order(path, offset, item.sequence, later.sequence));
        }
        last_sequence.get_or_insert(item.sequence);
        if items.len() < tail {
            items.push(item);
        }
        if items.len() >= tail {
            break;
        }
    }
    items.reverse();
    Ok((last_sequence.unwrap_or(0), items))
}

/// Only the sequence of a line, for bisecting.
#[derive(Deserialize)]
struct SequenceOnly {
    sequence: u64,
}

/// Reads at most `limit` items with `sequence > after` from a transcript file whose
/// lines are sorted by sequence. A torn last line is treated as the end.
fn read_page_in<R: Read + Seek>(
    file: R,
    end: u64,
    path: &Path,
    after: u64,
    limit: usize,
    threshold: u64,
) -> Result<Vec<TranscriptItem>, StoreError> {
    let io = |e| io_error(path, e);
    let mut reader = BufReader::with_capacity(READ_BUF, file);
    let mut offset = find_start(&mut reader, path, end, after, threshold)?;
    reader.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut items = Vec::with_capacity(limit.min(256));
    let mut line = Vec::new();
    let mut before: Option<u64> = None;
    while items.len() < limit {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        let item: TranscriptItem =
            serde_json::from_slice(&line).map_err(|e| corrupt_line(path, offset, e))?;
        if let Some(before) = before
            && item.sequence <= before
        {
            return Err(out_of_order(path, offset, before, item.sequence));
        }
        before = Some(item.sequence);
        offset += n as u64;
        if item.sequence > after {
            items.push(item);
        }
    }
    Ok(items)
}

/// Bisects the file by byte offset for a line start at or before the first line with
/// `sequence > after`, close enough to it (at most about `threshold` bytes of lines
/// to skip) for a forward scan.
///
/// Invariants: `lo` is a line start and every line before it has `sequence <= after`;
/// the wanted line starts at or before the first line start at or after `hi`.
fn find_start<R: Read + Seek>(
    reader: &mut BufReader<R>,
    path: &Path,
    end: u64,
    after: u64,
    threshold: u64,
) -> Result<u64, StoreError> {
    let io = |e| io_error(path, e);
    let (mut lo, mut hi) = (0u64, end);
    let mut line = Vec::new();
    while hi.saturating_sub(lo) > threshold.max(1) {
        let mid = lo + (hi - lo) / 2; // lo < mid < hi
        // The first line start at or after `mid`.
        reader.seek(SeekFrom::Start(mid - 1)).map_err(io)?;
        let start = mid - 1 + reader.skip_until(b'\n').map_err(io)? as u64;
        if start >= hi {
            // No line starts in [mid, hi).
            hi = mid;
            continue;
        }
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io)?;
        if line.last() != Some(&b'\n') {
            // A torn last line: it counts as past the end.
            hi = mid;
            continue;
        }
        let probe: SequenceOnly =
            serde_json::from_slice(&line).map_err(|e| corrupt_line(path, start, e))?;
        if probe.sequence > after {
            hi = mid;
        } else {
            lo = start + n as u64;
        }
    }
    Ok(lo)
}

#[cfg(test)]
#[path = "fs_properties.rs"]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::*;
    use switchyard_protocol::WorkerStatus;
    use tempfile::TempDir;

    fn worker_dir(tmp: &TempDir, id: &str) -> PathBuf {
        tmp.path().join("workers").join(id)
    }

    fn transcript(tmp: &TempDir, id: &str) -> PathBuf {
        worker_dir(tmp, id).join("transcript.jsonl")
    }

    fn append_raw(path: &Path, bytes: &[u8]) {
        let mut file = OpenOptions::new().append(true).open(path).unwrap();
        file.write_all(bytes).unwrap();
    }

    fn line_of(item: &TranscriptItem) -> Vec<u8> {
        let mut line = serde_json::to_vec(item).unwrap();
        line.push(b'\n');
        line
    }

    async fn store_with(tmp: &TempDir, id: &str, range: std::ops::RangeInclusive<u64>) -> FsStore {
        let store = FsStore::open(tmp.path()).await.unwrap();
        store
            .save_worker(&detail(id, WorkerStatus::Running))
            .await
            .unwrap();
        let all = items(range);
        for batch in all.chunks(100) {
            store.append(&wid(id), batch).await.unwrap();
        }
        store
    }

    #[tokio::test]
    async fn an_ended_worker_keeps_no_open_file_and_its_transcript_stays_whole() {
        let tmp = TempDir::new().unwrap();
        let store = store_with(&tmp, "w-a", 1..=10).await;
        let open = |store: &FsStore| store.inner.handles().len();
        store
            .save_worker(&detail("w-a", WorkerStatus::Running))
            .await
            .unwrap();
        assert_eq!(open(&store), 1, "a running worker keeps its handle");
        store
            .save_worker(&detail("w-a", WorkerStatus::Exited))
            .await
            .unwrap();
        assert_eq!(open(&store), 0, "an ended worker's handle stays open");
        let id = wid("w-a");
        assert_eq!(store.read_page(&id, 0, 100).await.unwrap(), items(1..=10));
        // An append after all opens it again and lands after the last line.
        store.append(&id, &items(11..=12)).await.unwrap();
        assert_eq!(store.read_page(&id, 0, 100).await.unwrap(), items(1..=12));
        drop(store);
        let reopened = FsStore::open(tmp.path()).await.unwrap();
        assert_eq!(reopened.load(3).await.unwrap()[0].last_sequence, 12);
    }

    #[tokio::test]
    async fn open_creates_the_tree_and_loads_nothing() {
        let tmp = TempDir::new().unwrap();
        let data = tmp.path().join("a").join("b");
        let store = FsStore::open(&data).await.unwrap();
        assert!(data.join("workers").is_dir());
        assert!(store.load(10).await.unwrap().is_empty());
    }

    /// One store per data directory: a second open is refused, naming the
    /// directory, until the first is closed or dropped.
    #[tokio::test]
    async fn a_data_directory_is_opened_by_one_store_at_a_time() {
        let tmp = TempDir::new().unwrap();
        let first = FsStore::open(tmp.path()).await.unwrap();
        let refused = FsStore::open(tmp.path()).await.unwrap_err();
        assert!(matches!(&refused, StoreError::InUse { data_dir } if data_dir == tmp.path()));
        let message = refused.to_string();
        assert!(
            message.contains(&tmp.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains("another switchyard runtime"), "{message}");
        first.close().await.unwrap();
        // A closed store writes no more, and closing it again is no error.
        assert!(matches!(
            first
                .save_worker(&detail("w-a", WorkerStatus::Running))
                .await,
            Err(StoreError::Closed)
        ));
        first.close().await.unwrap();
        let second = FsStore::open(tmp.path()).await.unwrap();
        assert!(matches!(
            FsStore::open(tmp.path()).await,
            Err(StoreError::InUse { .. })
        ));
        drop(second);
        FsStore::open(tmp.path()).await.unwrap();
    }

    /// What a store writes only its owner can read: transcripts hold everything
    /// typed into a worker.
    #[tokio::test]
    async fn directories_and_files_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new().unwrap();
        let data = tmp.path().join("data");
        let store = store_with_dir(&data).await;
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("workers")), 0o700);
        assert_eq!(mode(&data.join("lock")), 0o600);
        let worker = data.join("workers").join("w-a");
        assert_eq!(mode(&worker), 0o700);
        assert_eq!(mode(&worker.join(RECORD_FILE)), 0o600);
        assert_eq!(mode(&worker.join(TRANSCRIPT_FILE)), 0o600);
        // A replaced record too.
        store
            .save_worker(&detail("w-a", WorkerStatus::Exited))
            .await
            .unwrap();
        assert_eq!(mode(&worker.join(RECORD_FILE)), 0o600);
    }

    /// A data directory made readable by others (an earlier version, by hand) is
    /// the owner's alone once a store opens it.
    #[tokio::test]
    async fn an_open_data_directory_is_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new().unwrap();
        let data = tmp.path().join("data");
        for dir in [&data, &data.join("workers")] {
            fs::create_dir_all(dir).unwrap();
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let _store = FsStore::open(&data).await.unwrap();
        for dir in [&data, &data.join("workers")] {
            assert_eq!(
                fs::metadata(dir).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
    }

    /// A store in `data` with a worker `w-a` and a few transcript items.
    async fn store_with_dir(data: &Path) -> FsStore {
        let store = FsStore::open(data).await.unwrap();
        store
            .save_worker(&detail("w-a", WorkerStatus::Running))
            .await
            .unwrap();
        store.append(&wid("w-a"), &items(1..=3)).await.unwrap();
        store
    }

    #[tokio::test]
    async fn save_load_round_trip() {
        let tmp = TempDir::new().unwrap();
        let store = FsStore::open(tmp.path()).await.unwrap();
        store
            .save_worker(&detail("w-b", WorkerStatus::Running))
            .await
            .unwrap();
        store
            .save_worker(&detail("w-a", WorkerStatus::Starting))
            .await
            .unwrap();
        let mut replaced = detail("w-a", WorkerStatus::Exited);
        replaced.exit = Some(switchyard_protocol::ExitInfo {
            code: Some(3),
            signal: None,
        });
        store.save_worker(&replaced).await.unwrap();

        let loaded = store.load(10).await.unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].detail, replaced);
        assert_eq!(loaded[1].detail, detail("w-b", WorkerStatus::Running));
        assert!(
            loaded
                .iter()
                .all(|w| w.last_sequence == 0 && w.tail.is_empty())
        );

        // The record is plain JSON, and no temporary file is left behind.
        let on_disk: WorkerDetail =
            serde_json::from_slice(&fs::read(worker_dir(&tmp, "w-a").join("worker.json")).unwrap())
                .unwrap();
        assert_eq!(on_disk, replaced);
        let mut names: Vec<String> = fs::read_dir(worker_dir(&tmp, "w-a"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["transcript.jsonl", "worker.json"]);
        let mut top: Vec<String> = fs::read_dir(tmp.path().join("workers"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        top.sort();
        assert_eq!(top, ["w-a", "w-b"]);
    }

    #[tokio::test]
    async fn append_writes_json_lines() {
        let tmp = TempDir::new().unwrap();
        let store = store_with(&tmp, "w", 1..=3).await;
        store.flush().await.unwrap();
        let text = fs::read_to_string(transcript(&tmp, "w")).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        for (line, expected) in lines.iter().zip(items(1..=3)) {
            assert_eq!(
                serde_json::from_str::<TranscriptItem>(line).unwrap(),
                expected
            );
        }
    }

    #[tokio::test]
    async fn read_pages_of_a_10k_transcript() {
        let tmp = TempDir::new().unwrap();
        let store = store_with(&tmp, "w", 1..=10_000).await;
        let w = wid("w");

        assert_eq!(store.read_page(&w, 0, 10).await.unwrap(), items(1..=10));
        assert_eq!(
            store.read_page(&w, 5_000, 100).await.unwrap(),
            items(5_001..=5_100)
        );
        // Around a 40 KB line.
        assert_eq!(
            store.read_page(&w, 7_499, 3).await.unwrap(),
            items(7_500..=7_502)
        );
        assert_eq!(
            store.read_page(&w, 7_500, 2).await.unwrap(),
            items(7_501..=7_502)
        );
        assert_eq!(
            store.read_page(&w, 9_990, 100).await.unwrap(),
            items(9_991..=10_000)
        );
        assert_eq!(
            store.read_page(&w, 9_999, 100).await.unwrap(),
            items(10_000..=10_000)
        );
        assert!(store.read_page(&w, 10_000, 100).await.unwrap().is_empty());
        assert!(store.read_page(&w, u64::MAX, 100).await.unwrap().is_empty());
        assert!(store.read_page(&w, 0, 0).await.unwrap().is_empty());
        assert!(store.read_page(&w, 5_000, 0).await.unwrap().is_empty());

        let all = store.read_page(&w, 0, usize::MAX).await.unwrap();
        assert_eq!(all.len(), 10_000);
        assert_eq!(all, items(1..=10_000));

        for after in (0..=10_000).step_by(97) {
            let page = store.read_page(&w, after, 3).await.unwrap();
            let expected: Vec<u64> = (after + 1..=(after + 3).min(10_000)).collect();
            assert_eq!(seqs(&page), expected, "after {after}");
        }
    }

    fn open(path: &Path) -> File {
        File::open(path).unwrap()
    }

    /// Counts the bytes read through it.
    struct Counting<R> {
        inner: R,
        read: u64,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }

    impl<R: Seek> Seek for Counting<R> {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    #[test]
    fn pages_and_tails_read_a_small_part_of_a_large_transcript() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("t.jsonl");
        let mut bytes = Vec::new();
        for s in 1..=10_000 {
            bytes.extend(line_of(&item(s)));
        }
        fs::write(&path, &bytes).unwrap();
        let len = bytes.len() as u64;
        assert!(len > 1_000_000, "{len}");
        let budget = 256 * 1024;

        for after in [0, 1, 2_500, 5_000, 7_499, 9_990, 10_000] {
            let mut counting = Counting {
                inner: open(&path),
                read: 0,
            };
            let page = read_page_in(&mut counting, len, &path, after, 10, SCAN_THRESHOLD).unwrap();
            let expected: Vec<u64> = (after + 1..=(after + 10).min(10_000)).collect();
            assert_eq!(seqs(&page), expected);
            assert!(
                counting.read < budget,
                "after {after}: read {} bytes",
                counting.read
            );
        }

        let mut counting = Counting {
            inner: open(&path),
            read: 0,
        };
        let (last, tail) = read_tail(&mut counting, &path, len, 20, BLOCK).unwrap();
        assert_eq!(last, 10_000);
        assert_eq!(tail, items(9_981..=10_000));
        assert!(
            counting.read <= 2 * BLOCK as u64,
            "read {} bytes",
            counting.read
        );
    }

    #[test]
    fn bisect_with_any_threshold_finds_the_page() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("t.jsonl");
        // Gaps in the sequence must not matter (a failed append leaves one).
        let sequences: Vec<u64> = (1..=400).filter(|s| s % 17 != 0).collect();
        let mut bytes = Vec::new();
        for &s in &sequences {
            bytes.extend(line_of(&item(s)));
        }
        fs::write(&path, &bytes).unwrap();
        let len = bytes.len() as u64;
        for threshold in [1, 2, 100, 1_000, u64::MAX] {
            for after in 0..=401 {
                let page = read_page_in(open(&path), len, &path, after, 2, threshold).unwrap();
                let expected: Vec<u64> = sequences
                    .iter()
                    .copied()
                    .filter(|&s| s > after)
                    .take(2)
                    .collect();
                assert_eq!(seqs(&page), expected, "threshold {threshold} after {after}");
            }
        }
        // A torn last line is not returned.
        bytes.extend(b"{\"sequence\":401,\"at\"");
        fs::write(&path, &bytes).unwrap();
        for threshold in [1, 1_000] {
            let len = bytes.len() as u64;
            let page = read_page_in(open(&path), len, &path, 390, 100, threshold).unwrap();
            assert_eq!(
                seqs(&page),
                vec![392, 393, 394, 395, 396, 397, 398, 399, 400]
            );
        }
    }

    #[test]
    fn reading_backwards_in_tiny_blocks_matches_reading_forwards() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("t.jsonl");
        let lines: Vec<Vec<u8>> = ["a", "", "bcd", "efghijklmnop", "q", "rs"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let mut bytes = Vec::new();
        let mut offsets = Vec::new();
        for line in &lines {
            offsets.push(bytes.len() as u64);
            bytes.extend(line);
            bytes.push(b'\n');
        }
        fs::write(&path, &bytes).unwrap();
        for block in [1, 2, 3, 5, 64] {
            let mut file = File::open(&path).unwrap();
            let mut rev = RevLines::new(&mut file, bytes.len() as u64, block);
            let mut got = Vec::new();
            while let Some(line) = rev.prev().unwrap() {
                got.push(line);
            }
            got.reverse();
            let expected: Vec<(u64, Vec<u8>)> =
                offsets.iter().copied().zip(lines.iter().cloned()).collect();
            assert_eq!(got, expected, "block {block}");
        }
        let mut empty = File::open(&path).unwrap();
        assert!(RevLines::new(&mut empty, 0, 4).prev().unwrap().is_none());
    }

    #[tokio::test]
    async fn reopen_keeps_records_and_transcript() {
        let tmp = TempDir::new().unwrap();
        {
            let store = store_with(&tmp, "w-1", 1..=250).await;
            store
                .save_worker(&detail("w-0", WorkerStatus::Stopped))
                .await
                .unwrap();
            store.flush().await.unwrap();
        }
        let store = FsStore::open(tmp.path()).await.unwrap();
        let loaded = store.load(5).await.unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].detail, detail("w-0", WorkerStatus::Stopped));
        assert_eq!(loaded[0].last_sequence, 0);
        assert!(loaded[0].tail.is_empty());
        assert_eq!(loaded[1].detail, detail("w-1", WorkerStatus::Running));
        assert_eq!(loaded[1].last_sequence, 250);
        assert_eq!(loaded[1].tail, items(246..=250));

        // Tail sizes: none (the last sequence is still found), and more than stored.
        let loaded = store.load(0).await.unwrap();
        assert_eq!(loaded[1].last_sequence, 250);
        assert!(loaded[1].tail.is_empty());
        let loaded = store.load(1_000).await.unwrap();
        assert_eq!(loaded[1].tail, items(1..=250));

        // The reopened store reads and appends.
        let w = wid("w-1");
        assert_eq!(store.read_page(&w, 100, 2).await.unwrap(), items(101..=102));
        store.append(&w, &items(251..=252)).await.unwrap();
        assert_eq!(
            store.read_page(&w, 249, 10).await.unwrap(),
            items(250..=252)
        );
        assert_eq!(store.load(1).await.unwrap()[1].last_sequence, 252);
    }

    #[tokio::test]
    async fn torn_last_line_is_truncated_on_load() {
        let tmp = TempDir::new().unwrap();
        let path = transcript(&tmp, "w");
        {
            let store = store_with(&tmp, "w", 1..=20).await;
            store.flush().await.unwrap();
        }
        let intact = fs::read(&path).unwrap();
        let mut torn_line = line_of(&item(21));
        torn_line.truncate(torn_line.len() / 2);
        append_raw(&path, &torn_line);

        let store = FsStore::open(tmp.path()).await.unwrap();
        let loaded = store.load(3).await.unwrap();
        assert_eq!(loaded[0].last_sequence, 20);
        assert_eq!(loaded[0].tail, items(18..=20));
        assert_eq!(fs::read(&path).unwrap(), intact);

        let w = wid("w");
        store.append(&w, &items(21..=22)).await.unwrap();
        assert_eq!(store.read_page(&w, 19, 10).await.unwrap(), items(20..=22));
        let loaded = store.load(2).await.unwrap();
        assert_eq!(loaded[0].last_sequence, 22);
        assert_eq!(loaded[0].tail, items(21..=22));
        assert_eq!(store.read_page(&w, 0, 100).await.unwrap(), items(1..=22));
    }

    #[tokio::test]
    async fn torn_only_line_empties_the_transcript() {
        let tmp = TempDir::new().unwrap();
        let store = FsStore::open(tmp.path()).await.unwrap();
        store
            .save_worker(&detail("w", WorkerStatus::Running))
            .await
            .unwrap();
        append_raw(&transcript(&tmp, "w"), b"{\"sequence\":1,\"at\":\"20");
        let loaded = store.load(3).await.unwrap();
        assert_eq!(loaded[0].last_sequence, 0);
        assert!(loaded[0].tail.is_empty());
        assert_eq!(fs::metadata(transcript(&tmp, "w")).unwrap().len(), 0);
    }

    #[tokio::test]
    async fn torn_last_line_is_repaired_before_an_append_without_load() {
        let tmp = TempDir::new().unwrap();
        drop(store_with(&tmp, "w", 1..=5).await);
        append_raw(&transcript(&tmp, "w"), b"{\"sequence\":6,");

        let store = FsStore::open(tmp.path()).await.unwrap();
        let w = wid("w");
        store.append(&w, &items(6..=7)).await.unwrap();
        assert_eq!(store.read_page(&w, 0, 100).await.unwrap(), items(1..=7));
        assert_eq!(store.load(1).await.unwrap()[0].last_sequence, 7);
    }

    /// Lines in the wrong order (duplicated or swapped: valid JSON, but not what
    /// the store writes) are corrupt wherever they are read, never served as a
    /// transcript that pages wrongly.
    #[tokio::test]
    async fn transcript_lines_out_of_order_are_corrupt_where_read() {
        type Reorder = fn(Vec<u64>) -> Vec<u64>;
        let cases: [(&str, Reorder); 3] = [
            ("middle line duplicated", |mut s| {
                s.insert(5, s[4]);
                s
            }),
            ("two lines swapped", |mut s| {
                s.swap(5, 6);
                s
            }),
            ("last line duplicated", |mut s| {
                s.push(*s.last().unwrap());
                s
            }),
        ];
        for (case, shuffle) in cases {
            let tmp = TempDir::new().unwrap();
            // Its transcript is written over below.
            drop(store_with(&tmp, "w", 1..=1).await);
            let sequences = shuffle((1..=12).collect());
            let mut bytes = Vec::new();
            for item in sequences.iter().flat_map(|&s| items(s..=s)) {
                bytes.extend(line_of(&item));
            }
            fs::write(transcript(&tmp, "w"), &bytes).unwrap();
            let store = FsStore::open(tmp.path()).await.unwrap();
            let corrupt = |result: Result<_, StoreError>| match result {
                Err(StoreError::Corrupt { path, reason }) => {
                    assert_eq!(path, transcript(&tmp, "w"), "{case}");
                    assert!(reason.contains("out of order"), "{case}: {reason}");
                }
                Ok(_) => panic!("{case}: read as if whole"),
                Err(other) => panic!("{case}: {other:?}"),
            };
            corrupt(store.load(100).await.map(drop));
            corrupt(store.read_page(&wid("w"), 0, 100).await.map(drop));
        }
    }

    /// A transcript file removed by hand: a worker whose record counts inputs or
    /// output is corrupt (it would come back with nothing); one with nothing
    /// recorded loads empty.
    #[tokio::test]
    async fn a_missing_transcript_is_corrupt_when_the_record_counts_anything() {
        let tmp = TempDir::new().unwrap();
        let store = FsStore::open(tmp.path()).await.unwrap();
        let mut quiet = detail("quiet", WorkerStatus::Exited);
        quiet.input_count = 0;
        quiet.output_bytes = 0;
        store.save_worker(&quiet).await.unwrap();
        fs::remove_file(transcript(&tmp, "quiet")).unwrap();
        let loaded = store.load(10).await.unwrap();
        assert_eq!(loaded[0].last_sequence, 0);

        store
            .save_worker(&detail("talked", WorkerStatus::Exited))
            .await
            .unwrap();
        fs::remove_file(transcript(&tmp, "talked")).unwrap();
        match store.load(10).await {
            Err(StoreError::Corrupt { path, reason }) => {
                assert_eq!(path, transcript(&tmp, "talked"));
                assert!(reason.contains("missing"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn corrupt_worker_json_is_reported_with_its_path() {
        let tmp = TempDir::new().unwrap();
        let store = FsStore::open(tmp.path()).await.unwrap();
        store
            .save_worker(&detail("good", WorkerStatus::Exited))
            .await
            .unwrap();
        store
            .save_worker(&detail("bad", WorkerStatus::Exited))
            .await
            .unwrap();
        let record = worker_dir(&tmp, "bad").join("worker.json");
        fs::write(&record, b"{\"worker_id\": \"bad\", trunc").unwrap();
        match store.load(10).await {
            Err(StoreError::Corrupt { path, reason }) => {
                assert_eq!(path, record);
                assert!(!reason.is_empty());
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }

        // A record naming another worker is corrupt too.
        let mut other = detail("good", WorkerStatus::Exited);
        other.worker_id = wid("elsewhere");
        fs::write(&record, serde_json::to_vec(&other).unwrap()).unwrap();
        assert!(matches!(
            store.load(10).await,
            Err(StoreError::Corrupt { path, .. }) if path == record
        ));

        // So is a worker directory without its record.
        fs::remove_file(&record).unwrap();
        assert!(matches!(
            store.load(10).await,
            Err(StoreError::Corrupt { path, .. }) if path == record
        ));
    }

    #[tokio::test]
    async fn corrupt_transcript_line_names_file_and_offset() {
        let tmp = TempDir::new().unwrap();
        let store = FsStore::open(tmp.path()).await.unwrap();
        store
            .save_worker(&detail("w", WorkerStatus::Exited))
            .await
            .unwrap();
        let path = transcript(&tmp, "w");
        let first = line_of(&item(1));
        let mut bytes = first.clone();
        bytes.extend(b"not json at all\n");
        bytes.extend(line_of(&item(3)));
        fs::write(&path, &bytes).unwrap();

        let expected_reason = format!("byte offset {}", first.len());
        match store.load(10).await {
            Err(StoreError::Corrupt { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(reason.contains(&expected_reason), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        // Reading a page across it fails the same way; the tail after it still loads.
        assert!(matches!(
            store.read_page(&wid("w"), 0, 10).await,
            Err(StoreError::Corrupt { path: p, reason }) if p == path && reason.contains(&expected_reason)
        ));
        assert_eq!(store.load(1).await.unwrap()[0].tail, items(3..=3));
    }

    #[tokio::test]
    async fn leftover_temporary_entries_are_ignored_and_cleaned() {
        let tmp = TempDir::new().unwrap();
        drop(store_with(&tmp, "w", 1..=2).await);
        let workers = tmp.path().join("workers");
        let stale_dir = workers.join(".tmp-0123456789abcdef-0");
        fs::create_dir(&stale_dir).unwrap();
        fs::write(stale_dir.join("worker.json"), b"half").unwrap();
        let stale_record = worker_dir(&tmp, "w").join("worker.json.tmp-0123456789abcdef-7");
        fs::write(&stale_record, b"{\"half").unwrap();

        let store = FsStore::open(tmp.path()).await.unwrap();
        let loaded = store.load(10).await.unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].tail, items(1..=2));
        assert!(!stale_dir.exists());
        assert!(!stale_record.exists());
    }

    #[tokio::test]
    async fn missing_transcript_is_empty() {
        let tmp = TempDir::new().unwrap();
        let store = FsStore::open(tmp.path()).await.unwrap();
        let w = wid("w");
        // Starting: nothing recorded yet (a record counting inputs or output with
        // its transcript gone is corrupt, below).
        let mut starting = detail("w", WorkerStatus::Starting);
        starting.input_count = 0;
        starting.output_bytes = 0;
        store.save_worker(&starting).await.unwrap();
        assert!(store.read_page(&w, 0, 10).await.unwrap().is_empty());
        fs::remove_file(transcript(&tmp, "w")).unwrap();
        assert!(store.read_page(&w, 0, 10).await.unwrap().is_empty());
        let loaded = store.load(10).await.unwrap();
        assert_eq!(loaded[0].last_sequence, 0);
        store.append(&w, &items(1..=2)).await.unwrap();
        assert_eq!(store.read_page(&w, 0, 10).await.unwrap(), items(1..=2));
    }

    #[tokio::test]
    async fn remove_worker_removes_its_directory() {
        let tmp = TempDir::new().unwrap();
        let store = store_with(&tmp, "w", 1..=10).await;
        store
            .save_worker(&detail("keep", WorkerStatus::Exited))
            .await
            .unwrap();
        let w = wid("w");
        store.remove_worker(&w).await.unwrap();

        assert!(!worker_dir(&tmp, "w").exists());
        let names: Vec<String> = fs::read_dir(tmp.path().join("workers"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["keep"]);
        let loaded = store.load(10).await.unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].detail.worker_id, wid("keep"));
        assert!(matches!(
            store.read_page(&w, 0, 10).await,
            Err(StoreError::NotFound(id)) if id == w
        ));
        assert!(matches!(
            store.append(&w, &items(11..=11)).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.remove_worker(&w).await,
            Err(StoreError::NotFound(_))
        ));
        store.flush().await.unwrap();

        // The id can be used again, with a fresh transcript.
        store
            .save_worker(&detail("w", WorkerStatus::Running))
            .await
            .unwrap();
        assert!(store.read_page(&w, 0, 10).await.unwrap().is_empty());
        store.append(&w, &items(1..=1)).await.unwrap();
        assert_eq!(store.read_page(&w, 0, 10).await.unwrap(), items(1..=1));
    }

    #[tokio::test]
    async fn unknown_worker_is_not_found() {
        let tmp = TempDir::new().unwrap();
        let store = FsStore::open(tmp.path()).await.unwrap();
        let w = wid("ghost");
        assert!(matches!(
            store.read_page(&w, 0, 10).await,
            Err(StoreError::NotFound(id)) if id == w
        ));
        assert!(matches!(
            store.read_page(&w, 0, 0).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.append(&w, &items(1..=1)).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(!worker_dir(&tmp, "ghost").exists());
    }
}
