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
//! temporary file renamed over it) under an exclusive lock, after reading what other processes
//! wrote meanwhile. A reader never sees a half-written file, a killed writer leaves only a
//! temporary file, and a file that cannot be read or parsed is a warning and a fresh start.

mod book;
mod digest;
mod path;
mod stamp;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use book::{Book, Edit, from_ms, url_state, verdict};
pub(crate) use book::{Identity, UrlState, Verdict};
pub use digest::digest_file;

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
pub(crate) use digest::{account_digest, digest_bytes, hex};
use stamp::Mark;
pub(crate) use stamp::Stamp;
use store::{Unusable, create_private_dir, read_book, write_atomically};

/// Of the cache file's format; another version is read as an empty cache.
const VERSION: u32 = 1;

/// The cache file, in the cache directory.
pub const CACHE_FILE: &str = "uploads.json";

const LOCK_FILE: &str = "uploads.lock";

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

/// Edits a cache on disk keeps before writing them: a batch of uploads rewrites the file once
/// per this many (and at least once a second, and when the client is dropped), not once each.
const BATCH: usize = 64;

/// The cache of one client: in memory, and on disk when given a directory.
#[derive(Debug)]
pub struct UploadCache {
    book: Mutex<Book>,
    /// Edits not yet in the file (on disk only), and when the file was last written.
    pending: Mutex<(Vec<Edit>, Option<std::time::Instant>)>,
    /// Pruning is amortised: when the book has grown to this many entries.
    prune_at: Mutex<usize>,
    /// The fingerprint of the cache file when it was last read, to read it only when changed.
    seen: Mutex<Option<Stamp>>,
    /// URLs this client got from the cache or found in a request: those a refusal may heal.
    served: Mutex<std::collections::HashSet<String>>,
    dir: Option<PathBuf>,
    margin: Duration,
    /// Why the cache file was not read, the first time it was not (reported once).
    warning: Mutex<Option<String>>,
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
            book: Mutex::new(Book::default()),
            pending: Mutex::new((Vec::new(), None)),
            prune_at: Mutex::new(1024),
            seen: Mutex::new(None),
            served: Mutex::default(),
            dir,
            margin,
            warning: Mutex::new(None),
        }
    }

    /// The directory, for a cache on disk.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The margin: a URL is used only while it has this long left.
    pub fn margin(&self) -> Duration {
        self.margin
    }

    /// Why the cache file could not be used (a warning: the cache started afresh), once.
    pub fn take_warning(&self) -> Option<String> {
        lock(&self.warning).take()
    }

    /// Every entry, longest-lasting first.
    pub fn list(&self) -> Vec<CachedUpload> {
        self.refresh();
        let mut entries = lock(&self.book).entries.clone();
        entries.sort_by_key(|e| std::cmp::Reverse(e.expires_at_ms));
        entries.dedup_by(|a, b| a.url == b.url);
        entries
    }

    /// Forgets everything (and empties the cache file).
    pub fn clear(&self) -> std::io::Result<()> {
        self.edit(Edit::Clear);
        self.flush()
    }

    /// Writes the edits not yet in the cache file (a cache on disk writes in batches; this is
    /// also done when the cache is dropped).
    pub fn flush(&self) -> std::io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let edits = {
            let mut pending = lock(&self.pending);
            pending.1 = Some(std::time::Instant::now());
            std::mem::take(&mut pending.0)
        };
        if edits.is_empty() {
            return Ok(());
        }
        let written = self.write(dir, edits.clone());
        if written.is_err() {
            // Kept for the next try, so that a refresh does not undo them in memory.
            let mut pending = lock(&self.pending);
            let later = std::mem::take(&mut pending.0);
            pending.0 = edits;
            pending.0.extend(later);
        }
        written
    }

    pub(crate) fn lookup(&self, identity: &Identity, now: SystemTime) -> Verdict {
        self.refresh();
        verdict(&lock(&self.book).entries, identity, now, self.margin)
    }

    /// Whether a hit is possible for a file of `size` (see [`book::may_hold`]).
    pub(crate) fn may_hold(&self, model: &str, account: &str, size: u64, now: SystemTime) -> bool {
        self.refresh();
        book::may_hold(
            &lock(&self.book).entries,
            model,
            account,
            size,
            now,
            self.margin,
        )
    }

    pub(crate) fn url_state(&self, account: &str, url: &str, now: SystemTime) -> UrlState {
        self.refresh();
        url_state(&lock(&self.book).entries, account, url, now, self.margin)
    }

    /// The content digest a trusted fingerprint stands for.
    pub(crate) fn known_content(&self, path: &Path, stamp: &Stamp) -> Option<String> {
        self.refresh();
        lock(&self.book)
            .marks
            .iter()
            .rev()
            .find(|m| m.path == path && m.stamp == *stamp)
            .map(|m| m.content.clone())
    }

    /// Remembers an upload, and the fingerprint its content digest stands for (when settled).
    pub(crate) fn record(&self, entry: CachedUpload, mark: Option<(PathBuf, Stamp)>) {
        let content = entry.content.clone();
        // The entry first: a write in between prunes marks whose content has no entry.
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
    pub(crate) fn entry(&self, account: &str, url: &str) -> Option<CachedUpload> {
        self.refresh();
        lock(&self.book)
            .entries
            .iter()
            .rev()
            .find(|e| e.url == url && e.account == account)
            .cloned()
    }

    /// Notes that a URL came from the cache (or stood in a request) rather than from an upload
    /// made for the request at hand: a refusal of it may be the storage's loss, worth healing.
    pub(crate) fn note_served(&self, url: &str) {
        lock(&self.served).insert(url.to_owned());
    }

    pub(crate) fn was_served(&self, url: &str) -> bool {
        lock(&self.served).contains(url)
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
    pub(crate) fn forget_content(&self, entry: &CachedUpload) {
        self.edit(Edit::Forget(entry.clone()));
        if let Err(e) = self.flush() {
            self.warn(format!("the upload cache could not be written: {e}"));
        }
    }

    fn warn(&self, message: String) {
        tracing::warn!("{message}");
        lock(&self.warning).get_or_insert(message);
    }

    /// Applies an edit in memory at once (pruning now and then), and on disk in batches.
    fn edit(&self, edit: Edit) {
        {
            let mut book = lock(&self.book);
            edit.clone().apply(&mut book);
            let mut prune_at = lock(&self.prune_at);
            if book.entries.len() + book.marks.len() >= *prune_at {
                book.prune(SystemTime::now());
                *prune_at = (2 * (book.entries.len() + book.marks.len())).max(1024);
            }
        }
        if self.dir.is_none() {
            return;
        }
        let due = {
            let mut pending = lock(&self.pending);
            pending.0.push(edit);
            pending.0.len() >= BATCH
                || pending
                    .1
                    .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        };
        if due && let Err(e) = self.flush() {
            self.warn(format!("the upload cache could not be written: {e}"));
        }
    }

    /// Reads the cache file into memory (on disk only): other processes may have added to it.
    /// This process's edits not yet written stay on top.
    fn refresh(&self) {
        let Some(dir) = &self.dir else { return };
        let path = dir.join(CACHE_FILE);
        // Every write renames a new file over the old: the same inode, size and time is the
        // file read last.
        let seen = std::fs::metadata(&path).ok().and_then(|m| Stamp::of(&m));
        if seen.is_some() && *lock(&self.seen) == seen {
            return;
        }
        match read_book(&path) {
            Ok(mut book) => {
                for edit in lock(&self.pending).0.iter().cloned() {
                    edit.apply(&mut book);
                }
                *lock(&self.book) = book;
                *lock(&self.seen) = seen;
            }
            // Keep what this process knows; a damaged file is replaced on the next write.
            Err(unusable) => self.warn(unusable.message()),
        }
    }

    /// Applies edits to the file under the lock, merged with what other processes wrote,
    /// pruned, and written atomically; the result is the book in memory.
    fn write(&self, dir: &Path, edits: Vec<Edit>) -> std::io::Result<()> {
        create_private_dir(dir)?;
        // Opened in place, so not through a symlink: a planted link would have its target
        // created (the cache file itself is written to a new file and renamed, which is safe).
        let lock_file = crate::budget::open_private(&dir.join(LOCK_FILE))?;
        lock_file.lock()?;
        let path = dir.join(CACHE_FILE);
        let mut book = match read_book(&path) {
            Ok(book) => book,
            Err(Unusable::Damaged(message)) => {
                self.warn(message);
                Book::default()
            }
            Err(Unusable::Unreadable(message)) => {
                return Err(std::io::Error::other(message));
            }
        };
        for edit in edits {
            edit.apply(&mut book);
        }
        book.version = VERSION;
        book.prune(SystemTime::now());
        let written = write_atomically(dir, &path, &book);
        {
            let mut memory = lock(&self.book);
            *memory = book;
            for edit in lock(&self.pending).0.iter().cloned() {
                edit.apply(&mut memory);
            }
        }
        *lock(&self.seen) = None;
        drop(lock_file);
        written
    }
}
impl Drop for UploadCache {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!("the upload cache could not be written: {e}");
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
