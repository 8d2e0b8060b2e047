//! The cache file on disk: read, written whole under a lock and renamed into place, private
//! to its owner. (What changed since it was written is in the journal, `journal.rs`.)

use std::io::{Read, Write};
use std::path::Path;
use std::time::SystemTime;

use super::CACHE_FILE;
use super::JOURNAL_FILE;
use super::VERSION;
use super::book::Book;
use super::book::ms;
use super::book::plausible;
use super::stamp::Stamp;

/// Why the cache file's book could not be had.
pub(super) enum Unusable {
    /// It could not be read (permissions, I/O): left alone, never overwritten.
    Unreadable(String),
    /// It was read and is damaged or of another version: a fresh start replaces it.
    Damaged(String),
}
impl Unusable {
    pub(super) fn message(self) -> String {
        match self {
            Unusable::Unreadable(m) | Unusable::Damaged(m) => m,
        }
    }
}

/// The cache file's book and the fingerprint of the file it was read from (`None`: there is
/// none yet, and the book is empty); implausible entries dropped.
pub(super) fn read_book(path: &Path) -> std::result::Result<(Book, Option<Stamp>), Unusable> {
    let unreadable = |e: std::io::Error| {
        Unusable::Unreadable(format!(
            "the upload cache {} cannot be read ({e}); going on without it",
            path.display()
        ))
    };
    // The fingerprint of the file opened, not of the path: a rename in between cannot pair
    // one file's fingerprint with another's content.
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Book::default(), None)),
        Err(e) => return Err(unreadable(e)),
    };
    let stamp = file.metadata().map_err(unreadable)?;
    let stamp = Stamp::of(&stamp);
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(unreadable)?;
    match serde_json::from_slice::<Book>(&bytes) {
        Ok(mut book) if book.version == VERSION => {
            let now = SystemTime::now();
            book.entries.retain(|e| plausible(e, now));
            Ok((book, stamp))
        }
        Ok(book) => Err(Unusable::Damaged(format!(
            "the upload cache {} is of version {}, not {VERSION}; starting afresh",
            path.display(),
            book.version
        ))),
        Err(e) => Err(Unusable::Damaged(format!(
            "the upload cache {} is damaged ({e}); starting afresh",
            path.display()
        ))),
    }
}

/// Writes the book beside its file and renames it over: readers see the old file or the new
/// one, never a part. Returns the new file's fingerprint.
pub(super) fn write_atomically(
    dir: &Path,
    path: &Path,
    book: &Book,
) -> std::io::Result<Option<Stamp>> {
    let bytes = serde_json::to_vec(book).map_err(std::io::Error::other)?;
    let temporary = dir.join(format!(
        "{CACHE_FILE}.{}.{}.tmp",
        std::process::id(),
        ms(SystemTime::now())
    ));
    let mut file = private_file(&temporary)?;
    let written = (|| {
        #[cfg(feature = "test-hooks")]
        test_hooks::pause_mid_write(&mut file, &bytes)?;
        // No fsync: a write killed by a crash of the machine leaves a damaged file, which is a
        // warning and a fresh start; an fsync per upload would cost more than it saves.
        file.write_all(&bytes)?;
        std::fs::rename(&temporary, path)?;
        // Of the open file after the rename (which moves its change time): what readers see.
        Ok(Stamp::of(&file.metadata()?))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// The cache directory, readable by its owner only when this creates it.
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// A new file only its owner can read: it names the files a user uploaded.
pub(super) fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Temporary files of writers that died (the lock is held, so none is being written now).
pub(super) fn remove_stale_temporaries(dir: &Path) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if (name.starts_with(CACHE_FILE) || name.starts_with(JOURNAL_FILE))
            && name.ends_with(".tmp")
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Fault injection for the CLI's kill-mid-write test (feature `test-hooks`, never in a release
/// build): with `DASHSCOPE_OSS_TEST_PAUSE_MID_WRITE` set, a writer writes half the file, says so
/// on stderr, and waits to be killed.
#[cfg(feature = "test-hooks")]
mod test_hooks {
    use std::io::Write;

    pub(super) fn pause_mid_write(file: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
        if std::env::var_os("DASHSCOPE_OSS_TEST_PAUSE_MID_WRITE").is_none() {
            return Ok(());
        }
        file.write_all(&bytes[..bytes.len() / 2])?;
        file.sync_all()?;
        eprintln!("dashscope-oss test hook: paused mid-write");
        std::thread::sleep(std::time::Duration::from_secs(600));
        Ok(())
    }
}
