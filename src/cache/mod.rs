//! The upload cache: which content was stored for which model and which credentials, at which
//! `oss://` URL, until when — so that a file asked about twice is uploaded once.
//!
//! Identity is the content's SHA-256, the model, and a one-way digest of the API key and base
//! URL: a changed file never gets an old URL, another model or another account never gets a URL
//! it cannot read, and no secret is written anywhere.
//!
//! Hashing a file costs a read of it (measured in docs/figures.md, "The upload cache"). A file whose identity
//! is known is not read again while its fingerprint (device, inode, size, modification and
//! change times) is unchanged — git's racy-index rule: a fingerprint is only trusted when the
//! file last changed well before it was taken, so that a rewrite within the same timestamp tick
//! (same size, same second) cannot go unnoticed. The change time cannot be set by a program;
//! any write moves it past the trusted one.
//!
//! On disk (`Config::upload_cache(dir)`) the book is one JSON file, replaced atomically (a
//! temporary file renamed over it) under an exclusive lock, and a journal beside it of the
//! edits made since, appended under the same lock (`journal.rs`): a batch appends its entries,
//! and the file is rewritten whole only when the journal has grown as large as it, so that a
//! batch of n files costs O(n) however many processes share the directory. A reader never sees
//! a half-written file, a killed writer leaves only a temporary file or a journal line without
//! its end (never applied), and a file that cannot be read or parsed is a warning and a fresh
//! start.
//!
//! In memory the book is indexed (`index.rs`): every question an upload asks is one lookup.
//! Every file operation runs off the async threads (`spawn_blocking`): an upload catches up
//! with the files once when it (or its batch) starts, and its answers come from memory.

mod book;
mod digest;
mod index;
mod journal;
mod path;
mod stamp;
mod store;

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use book::{Edit, from_ms};
pub(crate) use book::{Identity, UrlState, Verdict};
pub use digest::digest_file;
use index::Index;

/// The files read ahead of their upload to look them up (feature `test-hooks`, for the tests
/// that prove a miss reads a file only as it is sent; never in a release build).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn hashed_ahead() -> Vec<PathBuf> {
    lock(&HASHED_AHEAD).clone()
}

#[cfg(feature = "test-hooks")]
static HASHED_AHEAD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

#[cfg(feature = "test-hooks")]
pub(crate) fn note_hashed_ahead(path: &Path) {
    lock(&HASHED_AHEAD).push(path.to_path_buf());
}

/// The cache directories whose lock a write found held and waited for (feature `test-hooks`,
/// for the test that proves the wait stalls no other task).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn lock_waits() -> Vec<PathBuf> {
    lock(&LOCK_WAITS).clone()
}

#[cfg(feature = "test-hooks")]
static LOCK_WAITS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

pub(crate) use digest::{account_digest, digest_bytes, hex};
use stamp::Mark;
pub(crate) use stamp::Stamp;
use store::{Unusable, create_private_dir, read_book, remove_stale_temporaries, write_atomically};

/// Of the cache file's format; another version is read as an empty cache.
const VERSION: u32 = 1;

/// The cache file, in the cache directory.
pub const CACHE_FILE: &str = "uploads.json";

const LOCK_FILE: &str = "uploads.lock";

/// The journal of the edits since the cache file was written whole, beside it.
const JOURNAL_FILE: &str = "uploads.journal";

/// How long an entry is kept after its URL expired: long enough to recognise that URL, in a
/// saved chat history, as expired (and to know its source) instead of sending it.
const KEEP_EXPIRED: Duration = Duration::from_secs(7 * 24 * 3600);

/// The default margin: a cached URL is used only while it has this long left.
pub(crate) const DEFAULT_MARGIN: Duration = Duration::from_secs(3600);

/// One upload the cache remembers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CachedUpload {
    /// SHA-256 of the content, hex.
    pub content: String,
    /// Its content type (from its name), which the storage keeps with it: the same bytes
    /// named `.png` and `.jpg` are two uploads.
    pub content_type: String,
    /// The model it was uploaded for.
    pub model: String,
    /// A one-way digest of the API key and base URL it was uploaded with (never the key).
    pub account: String,
    /// `oss://` + key.
    pub url: String,
    /// Its size in bytes.
    pub size: u64,
    /// When the POST that stored it was sent, in milliseconds since the Unix epoch.
    pub uploaded_at_ms: u64,
    /// When it stops resolving, in milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// The file it came from (absolute), when it came from a file: what is uploaded again when
    /// the URL turns out stale or forgotten. Any path, UTF-8 or not, is kept exactly.
    #[serde(with = "path::option")]
    pub source: Option<PathBuf>,
}
impl CachedUpload {
    /// When it stops resolving.
    pub fn expires_at(&self) -> SystemTime {
        from_ms(self.expires_at_ms)
    }

    /// When the POST that stored it was sent.
    pub fn uploaded_at(&self) -> SystemTime {
        from_ms(self.uploaded_at_ms)
    }
}

/// Edits a cache on disk keeps before writing them: a batch of uploads appends to the journal
/// once per this many (and at least once a second), not once each. The first edit of a client
/// is written at once, so that a process that uploads one file leaves it behind.
const BATCH: usize = 64;

/// How many `oss://` URLs a client remembers having served (from the cache, or found in a
/// request): a refusal of one of them may be healed. The oldest is forgotten first; a refusal
/// of a URL forgotten here is reported, not healed.
const SERVED: usize = 4096;

/// The cache of one client: in memory, and on disk when given a directory.
///
/// A cache on disk writes what it learns in batches, off the async threads. What is not yet
/// written when it is dropped is written then: in place outside an async runtime, or handed
/// to the runtime's blocking threads inside one (a runtime that is shutting down may not run
/// it). Call [`UploadCache::flush`] before the end, as the `dashscope` command does, to know
/// it was written.
#[derive(Debug)]
pub struct UploadCache {
    shared: Arc<Shared>,
}

/// What the cache's blocking tasks share with it.
#[derive(Debug)]
struct Shared {
    dir: Option<PathBuf>,
    margin: Duration,
    memory: Mutex<Memory>,
    /// What was read of the files; held by one file operation of this process at a time (the
    /// others wait here, on a blocking thread, not on the lock file).
    disk: Mutex<Disk>,
    /// Whether the files were looked at once: from then on, questions are answered from
    /// memory (the upload paths catch up off the runtime before they ask).
    looked: AtomicBool,
    /// URLs this client got from the cache or found in a request: those a refusal may heal.
    served: Mutex<Served>,
    /// Why the cache file was not read, the first time it was not (reported once).
    warning: Mutex<Option<String>>,
}

#[derive(Debug)]
struct Memory {
    index: Index,
    /// Edits not yet on disk (on disk only).
    pending: Vec<Edit>,
    /// When a write last started.
    last_write: Option<Instant>,
    /// Pruning is amortised: when the book has grown to this many entries.
    prune_at: usize,
}

#[derive(Debug, Default)]
struct Disk {
    /// Whether the cache file was read (or found missing) once.
    read: bool,
    /// The fingerprint of the cache file read (`None`: there was none).
    snapshot: Option<Stamp>,
    /// Entries and marks it held: the journal is folded into it when it holds as many edits.
    snapshot_items: usize,
    state: FileState,
    /// How far the journal was read (`None`: there was none).
    journal: Option<journal::Position>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum FileState {
    #[default]
    Fine,
    /// Damaged or of another version: ignored, and replaced by the next write.
    Damaged,
    /// Could not be read (permissions, I/O): left alone, never written.
    Unreadable(String),
}

#[derive(Debug, Default)]
struct Served {
    urls: HashSet<String>,
    order: VecDeque<String>,
}

impl UploadCache {
    /// A cache kept in memory only.
    pub fn in_memory() -> Self {
        Self::new(None, DEFAULT_MARGIN)
    }

    /// A cache kept in `dir` (created if missing), as [`Config::upload_cache`](crate::Config)
    /// keeps one: to list or clear what a client remembers. Reading is deferred to the first
    /// lookup.
    pub fn on_disk(dir: impl Into<PathBuf>) -> Self {
        Self::new(Some(dir.into()), DEFAULT_MARGIN)
    }

    /// The cache a client uses, with its margin ([`Config::upload_cache_margin`](crate::Config)).
    pub(crate) fn new(dir: Option<PathBuf>, margin: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                looked: AtomicBool::new(dir.is_none()),
                dir,
                margin,
                memory: Mutex::new(Memory {
                    index: Index::default(),
                    pending: Vec::new(),
                    last_write: None,
                    prune_at: 1024,
                }),
                disk: Mutex::default(),
                served: Mutex::default(),
                warning: Mutex::new(None),
            }),
        }
    }

    /// The directory, for a cache on disk.
    pub fn dir(&self) -> Option<&Path> {
        self.shared.dir.as_deref()
    }

    /// The margin: a URL is used only while it has this long left.
    pub fn margin(&self) -> Duration {
        self.shared.margin
    }

    /// Why the cache file could not be used (a warning: the cache started afresh), once.
    pub fn take_warning(&self) -> Option<String> {
        lock(&self.shared.warning).take()
    }

    /// Every entry, longest-lasting first. Blocking: reads the cache's files.
    pub fn list(&self) -> Vec<CachedUpload> {
        self.shared.catch_up();
        lock(&self.shared.memory).index.list()
    }

    /// Forgets everything (and empties the cache file). Blocking.
    pub fn clear(&self) -> std::io::Result<()> {
        self.edit(Edit::Clear);
        self.shared.write(true)
    }

    /// Writes the edits not yet on disk. Blocking: in async code, call it from a blocking task
    /// (`tokio::task::spawn_blocking` with a clone of the `Client`), or at the end.
    pub fn flush(&self) -> std::io::Result<()> {
        lock(&self.shared.memory).last_write = Some(Instant::now());
        self.shared.write(false)
    }

    /// Reads what other processes wrote since it last looked, off the runtime: what an upload
    /// (or a batch, once for all its files) does before it asks anything.
    pub(crate) async fn catch_up(&self) {
        if self.shared.dir.is_some() {
            self.blocking(|shared| shared.catch_up()).await;
        }
    }

    /// Writes the edits not yet on disk, off the runtime, when a batch of them is due.
    pub(crate) async fn write_if_due(&self) {
        if !self.due() {
            return;
        }
        if let Some(Err(e)) = self.blocking(|shared| shared.write(false)).await {
            self.shared
                .warn(format!("the upload cache could not be written: {e}"));
        }
    }

    fn due(&self) -> bool {
        if self.shared.dir.is_none() {
            return false;
        }
        let mut memory = lock(&self.shared.memory);
        let due = !memory.pending.is_empty()
            && (memory.pending.len() >= BATCH
                || memory
                    .last_write
                    .is_none_or(|at| at.elapsed() >= Duration::from_secs(1)));
        if due {
            memory.last_write = Some(Instant::now());
        }
        due
    }

    /// Runs a file operation on a blocking thread; `None` if it could not run (the runtime is
    /// shutting down) or panicked.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Shared) -> T + Send + 'static,
    ) -> Option<T> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || work(&shared))
            .await
            .ok()
    }

    /// Answers from memory, after reading the files once if nothing did yet (only a caller
    /// outside the upload paths, which catch up off the runtime first, gets here unread).
    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        if !self.shared.looked.load(Ordering::Acquire) {
            self.shared.catch_up();
        }
        lock(&self.shared.memory)
    }

    pub(crate) fn lookup(&self, identity: &Identity, now: SystemTime) -> Verdict {
        self.memory()
            .index
            .lookup(identity, now, self.shared.margin)
    }

    /// Whether a hit is possible for a file of `size`: a fresh entry of that size for the
    /// model and account exists (an exact test; without one the file need not be read ahead).
    pub(crate) fn may_hold(&self, model: &str, account: &str, size: u64, now: SystemTime) -> bool {
        self.memory()
            .index
            .may_hold(model, account, size, now, self.shared.margin)
    }

    pub(crate) async fn url_state(&self, account: &str, url: &str, now: SystemTime) -> UrlState {
        self.catch_up().await;
        self.memory()
            .index
            .url_state(account, url, now, self.shared.margin)
    }

    /// The content digest a trusted fingerprint stands for.
    pub(crate) fn known_content(&self, path: &Path, stamp: &Stamp) -> Option<String> {
        self.memory().index.known_content(path, stamp)
    }

    /// Remembers an upload, and the fingerprint its content digest stands for (when settled).
    /// In memory at once; on disk with the next write ([`UploadCache::write_if_due`]).
    pub(crate) fn record(&self, entry: CachedUpload, mark: Option<(PathBuf, Stamp)>) {
        let content = entry.content.clone();
        // The entry first: a prune in between drops marks whose content has no entry.
        self.edit(Edit::Add(entry));
        if let Some((path, stamp)) = mark {
            self.edit(Edit::Mark(Mark {
                path,
                stamp,
                content,
            }));
        }
    }

    /// The entry of a URL of this account, in any state.
    pub(crate) async fn entry(&self, account: &str, url: &str) -> Option<CachedUpload> {
        self.catch_up().await;
        self.memory().index.entry(account, url)
    }

    /// Notes that a URL came from the cache (or stood in a request) rather than from an upload
    /// made for the request at hand: a refusal of it may be the storage's loss, worth healing.
    pub(crate) fn note_served(&self, url: &str) {
        let mut served = lock(&self.shared.served);
        if served.urls.insert(url.to_owned()) {
            served.order.push_back(url.to_owned());
            if served.order.len() > SERVED
                && let Some(oldest) = served.order.pop_front()
            {
                served.urls.remove(&oldest);
            }
        }
    }

    pub(crate) fn was_served(&self, url: &str) -> bool {
        lock(&self.shared.served).urls.contains(url)
    }

    /// Remembers that a settled fingerprint stands for a content (a hit on a file hashed again).
    pub(crate) fn remember_mark(&self, path: PathBuf, stamp: Stamp, content: String) {
        self.edit(Edit::Mark(Mark {
            path,
            stamp,
            content,
        }));
    }

    /// Forgets every URL of an entry's identity: the service refused one of them. Written at
    /// once, so that another process does not serve it meanwhile.
    pub(crate) async fn forget_content(&self, entry: &CachedUpload) {
        self.edit(Edit::Forget(entry.clone()));
        if self.shared.dir.is_none() {
            return;
        }
        lock(&self.shared.memory).last_write = Some(Instant::now());
        if let Some(Err(e)) = self.blocking(|shared| shared.write(false)).await {
            self.shared
                .warn(format!("the upload cache could not be written: {e}"));
        }
    }

    /// Applies an edit in memory at once (pruning now and then); on disk, queues it.
    fn edit(&self, edit: Edit) {
        let mut memory = lock(&self.shared.memory);
        if self.shared.dir.is_some() {
            memory.pending.push(edit.clone());
        }
        memory.index.apply(edit);
        if memory.index.len() >= memory.prune_at {
            memory.index.prune(SystemTime::now());
            memory.prune_at = (2 * memory.index.len()).max(1024);
        }
    }
}

impl Shared {
    fn warn(&self, message: String) {
        tracing::warn!("{message}");
        lock(&self.warning).get_or_insert(message);
    }

    /// Reads what changed on disk since it was last read. Blocking.
    fn catch_up(&self) {
        let Some(dir) = &self.dir else { return };
        let mut disk = lock(&self.disk);
        self.catch_up_locked(dir, &mut disk);
    }

    /// The cache file when it was replaced (its fingerprint moved: every write renames a new
    /// file over it), else only the journal's lines not read yet.
    fn catch_up_locked(&self, dir: &Path, disk: &mut Disk) {
        self.looked.store(true, Ordering::Release);
        let path = dir.join(CACHE_FILE);
        let now = std::fs::metadata(&path).ok().and_then(|m| Stamp::of(&m));
        if !disk.read || now.is_none() || now != disk.snapshot {
            disk.read = true;
            disk.journal = None;
            match read_book(&path) {
                Ok((book, stamp)) => {
                    disk.snapshot = stamp;
                    disk.snapshot_items = book.entries.len() + book.marks.len();
                    disk.state = FileState::Fine;
                    let mut index = Index::from_book(book);
                    // This process's edits not yet written stay on top.
                    let mut memory = lock(&self.memory);
                    for edit in memory.pending.iter().cloned() {
                        index.apply(edit);
                    }
                    memory.index = index;
                }
                // Keep what this process knows; a damaged file is replaced on the next write.
                Err(unusable) => {
                    disk.snapshot = now;
                    disk.state = match &unusable {
                        Unusable::Damaged(_) => FileState::Damaged,
                        Unusable::Unreadable(message) => FileState::Unreadable(message.clone()),
                    };
                    self.warn(unusable.message());
                }
            }
        }
        if disk.state != FileState::Fine {
            return;
        }
        match journal::read_tail(dir, disk.snapshot, disk.journal) {
            Ok(tail) => {
                if !tail.edits.is_empty() {
                    let mut memory = lock(&self.memory);
                    for edit in tail.edits {
                        memory.index.apply(edit);
                    }
                }
                if tail.skipped > 0 {
                    self.warn(format!(
                        "{} line(s) of the upload cache's journal in {} could not be read; skipped",
                        tail.skipped,
                        dir.display()
                    ));
                }
                disk.journal = tail.position;
            }
            Err(e) => self.warn(format!(
                "the upload cache's journal in {} cannot be read ({e}); going on without it",
                dir.display()
            )),
        }
    }

    /// Writes the edits not yet on disk under the lock, after reading what other processes
    /// wrote: appended to the journal, or (`compact`, or when the journal has grown as large
    /// as the file) folded with the file into a new one. Blocking.
    fn write(&self, compact: bool) -> std::io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let mut disk = lock(&self.disk);
        if !compact && lock(&self.memory).pending.is_empty() {
            return Ok(());
        }
        create_private_dir(dir)?;
        // Opened in place, so not through a symlink: a planted link would have its target
        // created (the cache file itself is written to a new file and renamed, which is safe).
        let lock_file = crate::budget::open_private(&dir.join(LOCK_FILE))?;
        hold(&lock_file, dir)?;
        self.catch_up_locked(dir, &mut disk);
        if let FileState::Unreadable(message) = &disk.state {
            return Err(std::io::Error::other(message.clone()));
        }
        // Temporary files of writers that died (the lock is held: none is being written now).
        remove_stale_temporaries(dir);
        let edits = std::mem::take(&mut lock(&self.memory).pending);
        if edits.is_empty() && !compact {
            return Ok(());
        }
        let written = self.put(dir, &mut disk, &edits, compact);
        if written.is_err() {
            // Kept for the next try, so that a refresh does not undo them in memory.
            let mut memory = lock(&self.memory);
            let later = std::mem::take(&mut memory.pending);
            memory.pending = edits;
            memory.pending.extend(later);
        }
        drop(lock_file);
        written
    }

    fn put(
        &self,
        dir: &Path,
        disk: &mut Disk,
        edits: &[Edit],
        compact: bool,
    ) -> std::io::Result<()> {
        let journal = disk.journal.filter(|p| p.extends);
        let fold = compact
            || disk.state != FileState::Fine
            || disk.snapshot.is_none()
            || journal.map_or(0, |p| p.edits) + edits.len() >= disk.snapshot_items;
        if !fold && let Some(snapshot) = disk.snapshot {
            let at = match journal {
                Some(at) => at,
                None => journal::start(dir, snapshot)?,
            };
            let mut at = journal::append(dir, at, &journal::lines(edits)?)?;
            at.edits += edits.len();
            disk.journal = Some(at);
            return Ok(());
        }
        // Memory holds the file, the journal and this process's edits (caught up under the
        // lock), pruned on the way.
        let book = lock(&self.memory).index.to_book(VERSION, SystemTime::now());
        let items = book.entries.len() + book.marks.len();
        let stamp = write_atomically(dir, &dir.join(CACHE_FILE), &book)?;
        drop(book);
        disk.snapshot = stamp;
        disk.snapshot_items = items;
        disk.state = FileState::Fine;
        // The old journal does not extend the new file: its edits are in it. Without a new
        // journal, the next write folds again.
        disk.journal = match stamp.map(|s| journal::start(dir, s)) {
            Some(Ok(at)) => Some(at),
            Some(Err(e)) => {
                self.warn(format!(
                    "the upload cache's journal in {} could not be started ({e})",
                    dir.display()
                ));
                None
            }
            None => None,
        };
        Ok(())
    }
}

/// Takes the cache's lock, waiting for it (on this blocking thread) when another holds it.
fn hold(lock_file: &std::fs::File, dir: &Path) -> std::io::Result<()> {
    match lock_file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => {
            #[cfg(feature = "test-hooks")]
            lock(&LOCK_WAITS).push(dir.to_path_buf());
            let _ = dir;
            lock_file.lock()
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

impl Drop for UploadCache {
    /// Writes what is not written yet: in place outside a runtime; inside one, on its blocking
    /// threads, never on the async thread that drops the client.
    fn drop(&mut self) {
        if self.shared.dir.is_none() || lock(&self.shared.memory).pending.is_empty() {
            return;
        }
        let shared = self.shared.clone();
        let write = move || {
            if let Err(e) = shared.write(false) {
                tracing::warn!("the upload cache could not be written: {e}");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(write)),
            Err(_) => write(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::book::*;
    use super::*;
    use crate::secret::Secret;

    fn entry(
        content: &str,
        model: &str,
        account: &str,
        url: &str,
        expires_at_ms: u64,
    ) -> CachedUpload {
        CachedUpload {
            content: content.to_owned(),
            content_type: "image/png".to_owned(),
            model: model.to_owned(),
            account: account.to_owned(),
            url: url.to_owned(),
            size: 1,
            uploaded_at_ms: 0,
            expires_at_ms,
            source: None,
        }
    }

    fn identity(content: &str, model: &str, account: &str) -> Identity {
        Identity {
            content: content.to_owned(),
            content_type: "image/png".to_owned(),
            model: model.to_owned(),
            account: account.to_owned(),
        }
    }

    const HOUR: u64 = 3_600_000;

    #[test]
    fn a_hit_needs_the_same_content_model_and_account_and_more_than_the_margin() {
        let now = from_ms(100 * HOUR);
        let margin = Duration::from_millis(HOUR);
        let entries = vec![entry("c", "m", "a", "oss://x", 102 * HOUR)];
        let hit = |content, model, account| {
            verdict(&entries, &identity(content, model, account), now, margin)
        };
        assert_eq!(hit("c", "m", "a"), Verdict::Fresh(entries[0].clone()));
        assert_eq!(hit("d", "m", "a"), Verdict::Miss, "other content");
        assert_eq!(hit("c", "n", "a"), Verdict::Miss, "other model");
        assert_eq!(hit("c", "m", "b"), Verdict::Miss, "other account");
        // Exactly the margin left is not enough.
        let edge = vec![entry("c", "m", "a", "oss://x", 101 * HOUR)];
        assert_eq!(
            verdict(&edge, &identity("c", "m", "a"), now, margin),
            Verdict::Miss
        );
    }

    #[test]
    fn the_longest_lasting_entry_wins() {
        let now = from_ms(100 * HOUR);
        let entries = vec![
            entry("c", "m", "a", "oss://old", 110 * HOUR),
            entry("c", "m", "a", "oss://new", 140 * HOUR),
        ];
        match verdict(&entries, &identity("c", "m", "a"), now, Duration::ZERO) {
            Verdict::Fresh(e) => assert_eq!(e.url, "oss://new"),
            Verdict::Miss => panic!("a miss"),
        }
    }

    #[test]
    fn urls_within_the_margin_are_stale_and_unknown_urls_are_sent() {
        let now = from_ms(100 * HOUR);
        let margin = Duration::from_millis(HOUR);
        let entries = vec![
            entry("c", "m", "a", "oss://soon", 100 * HOUR + HOUR / 2),
            entry("c", "m", "a", "oss://later", 130 * HOUR),
        ];
        assert!(matches!(
            url_state(&entries, "a", "oss://soon", now, margin),
            UrlState::Stale(_)
        ));
        assert_eq!(
            url_state(&entries, "a", "oss://later", now, margin),
            UrlState::Send
        );
        assert_eq!(
            url_state(&entries, "a", "oss://other", now, margin),
            UrlState::Send
        );
        // Another account's entry says nothing about this account's URL.
        assert_eq!(
            url_state(&entries, "b", "oss://soon", now, margin),
            UrlState::Send
        );
    }

    #[test]
    fn a_fingerprint_is_trusted_only_after_a_tick() {
        let stamp = |ctime_ns: i128| Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: ctime_ns,
            ctime_ns,
        };
        let at = |ns: u64| UNIX_EPOCH + Duration::from_nanos(ns);
        let second = 1_000_000_000u64;
        // Nanosecond timestamps: 100 ms.
        let fine = stamp(i128::from(50 * second + 1));
        assert!(!fine.settled(at(50 * second + 50_000_000)));
        assert!(fine.settled(at(50 * second + 200_000_000)));
        // Whole seconds: two of them.
        let coarse = stamp(i128::from(50 * second));
        assert!(!coarse.settled(at(51 * second + 500_000_000)));
        assert!(coarse.settled(at(52 * second + 1)));
    }

    #[test]
    fn pruning_keeps_recent_expiries_one_entry_per_url_and_needed_marks() {
        let now = from_ms(1000 * HOUR);
        let mut book = Book {
            version: VERSION,
            entries: vec![
                entry(
                    "old",
                    "m",
                    "a",
                    "oss://gone",
                    1000 * HOUR - KEEP_EXPIRED.as_millis() as u64,
                ),
                entry("c", "m", "a", "oss://x", 999 * HOUR),
                entry("c", "m", "a", "oss://x", 1040 * HOUR),
            ],
            marks: vec![
                Mark {
                    path: "/a".into(),
                    stamp: Stamp {
                        dev: 0,
                        ino: 0,
                        size: 0,
                        mtime_ns: 0,
                        ctime_ns: 0,
                    },
                    content: "old".into(),
                },
                Mark {
                    path: "/b".into(),
                    stamp: Stamp {
                        dev: 0,
                        ino: 0,
                        size: 0,
                        mtime_ns: 0,
                        ctime_ns: 0,
                    },
                    content: "c".into(),
                },
            ],
        };
        book.prune(now);
        assert_eq!(book.entries.len(), 1);
        assert_eq!(book.entries[0].expires_at_ms, 1040 * HOUR);
        assert_eq!(book.marks.len(), 1);
        assert_eq!(book.marks[0].content, "c");
    }

    #[test]
    fn a_recorded_fingerprint_survives_the_batched_writes_for_the_next_process() {
        let dir =
            std::env::temp_dir().join(format!("dashscope-oss-cache-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let stamp = Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: 4,
            ctime_ns: 5,
        };
        let content = "a".repeat(64);
        let now = ms(SystemTime::now());
        let mut upload = entry(&content, "m", "acct", "oss://x/y.png", now + 40 * HOUR);
        upload.uploaded_at_ms = now;
        {
            let first = UploadCache::new(Some(dir.clone()), Duration::ZERO);
            first.record(upload, Some((PathBuf::from("/f.png"), stamp)));
        }
        let next = UploadCache::new(Some(dir.clone()), Duration::ZERO);
        assert_eq!(
            next.known_content(Path::new("/f.png"), &stamp),
            Some(content)
        );
        assert_eq!(next.list().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_account_digest_is_one_way_and_tells_keys_and_hosts_apart() {
        let a = account_digest(&Secret::new("sk-one"), "https://dashscope.aliyuncs.com");
        let b = account_digest(&Secret::new("sk-two"), "https://dashscope.aliyuncs.com");
        let c = account_digest(
            &Secret::new("sk-one"),
            "https://dashscope-intl.aliyuncs.com",
        );
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 64);
        assert!(!a.contains("sk-one"));
    }
}
