//! The cache's journal: the edits made since the cache file was last written whole, one JSON
//! line each, appended under the lock. A batch writes its entries as one append, so a batch of
//! n files costs O(n) on disk; the file is rewritten whole (compacted) only when the journal
//! holds as many edits as it does, which keeps the rewrites geometric: O(n) in all.
//!
//! The first line names the cache file it extends (its fingerprint): a journal that does not
//! extend the cache file read (a compaction killed before it started a new journal, whose edits
//! the new file already holds; a damaged file started afresh) is ignored, never applied twice
//! to the wrong book. A writer killed mid-append leaves a last line without its newline: readers
//! never apply it, and the next writer cuts it off before it appends.

use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::book::{Edit, plausible};
use super::stamp::Stamp;

use super::JOURNAL_FILE;

const JOURNAL_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    journal: u32,
    extends: Stamp,
}

/// How far a reader has read a journal: which file (device, inode), up to which byte (the
/// end of a complete line), how many edits it holds, and whether it extends the cache file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Position {
    file: (u64, u64),
    pub(super) offset: u64,
    pub(super) edits: usize,
    pub(super) extends: bool,
}

/// The edits of a journal not read yet.
pub(super) struct Tail {
    pub(super) edits: Vec<Edit>,
    /// `None`: there is no journal.
    pub(super) position: Option<Position>,
    /// Complete lines that could not be read (damaged, or of a later version): skipped.
    pub(super) skipped: usize,
}

/// The complete lines after `from` (all of them, when the file is another or was replaced),
/// for a cache file of fingerprint `snapshot`.
pub(super) fn read_tail(
    dir: &Path,
    snapshot: Option<Stamp>,
    from: Option<Position>,
) -> std::io::Result<Tail> {
    let mut file = match std::fs::File::open(dir.join(JOURNAL_FILE)) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Tail {
                edits: Vec::new(),
                position: None,
                skipped: 0,
            });
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let id = file_id(&meta);
    // A journal that did not extend the cache file may have been replaced since: read again.
    let from = from.filter(|p| p.file == id && p.extends && p.offset <= meta.len());
    let start = from.map_or(0, |p| p.offset);
    let mut bytes = Vec::new();
    if meta.len() > start {
        file.seek(std::io::SeekFrom::Start(start))?;
        file.take(meta.len() - start).read_to_end(&mut bytes)?;
    }
    // Only complete lines: the rest is being written, or was left by a writer that died.
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut lines = bytes[..complete].split(|b| *b == b'\n');
    let mut position = from.unwrap_or(Position {
        file: id,
        offset: 0,
        edits: 0,
        extends: false,
    });
    if from.is_none() {
        let header = lines
            .next()
            .and_then(|line| serde_json::from_slice::<Header>(line).ok());
        position.extends = header.is_some_and(|h| {
            h.journal == JOURNAL_VERSION && snapshot.is_some_and(|s| s == h.extends)
        });
        if !position.extends {
            position.offset = complete as u64;
            return Ok(Tail {
                edits: Vec::new(),
                position: Some(position),
                skipped: 0,
            });
        }
    }
    let now = SystemTime::now();
    let mut edits = Vec::new();
    let mut skipped = 0;
    for line in lines.filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Edit>(line) {
            // Edited by hand or damaged: never served (as in the cache file).
            Ok(Edit::Add(entry) | Edit::Forget(entry)) if !plausible(&entry, now) => skipped += 1,
            Ok(edit) => edits.push(edit),
            Err(_) => skipped += 1,
        }
    }
    position.offset = start + complete as u64;
    position.edits += edits.len() + skipped;
    Ok(Tail {
        edits,
        position: Some(position),
        skipped,
    })
}

/// The edits as journal lines.
pub(super) fn lines(edits: &[Edit]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(edits.len() * 512);
    for edit in edits {
        serde_json::to_writer(&mut out, edit).map_err(std::io::Error::other)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Appends lines at `at` (the end of the last complete line: whatever a dead writer left after
/// it is cut off first). Under the lock.
pub(super) fn append(dir: &Path, at: Position, lines: &[u8]) -> std::io::Result<Position> {
    let mut file = crate::budget::open_private(&dir.join(JOURNAL_FILE))?;
    if file_id(&file.metadata()?) != at.file {
        return Err(std::io::Error::other(
            "the upload cache's journal was replaced under the lock",
        ));
    }
    file.set_len(at.offset)?;
    file.seek(std::io::SeekFrom::Start(at.offset))?;
    file.write_all(lines)?;
    Ok(Position {
        offset: at.offset + lines.len() as u64,
        ..at
    })
}

/// A new, empty journal extending the cache file of fingerprint `snapshot`, renamed over the
/// old one (readers notice the new file). Under the lock.
pub(super) fn start(dir: &Path, snapshot: Stamp) -> std::io::Result<Position> {
    let mut header = serde_json::to_vec(&Header {
        journal: JOURNAL_VERSION,
        extends: snapshot,
    })
    .map_err(std::io::Error::other)?;
    header.push(b'\n');
    let temporary = dir.join(format!(
        "{JOURNAL_FILE}.{}.{}.tmp",
        std::process::id(),
        super::book::ms(SystemTime::now())
    ));
    let mut file = super::store::private_file(&temporary)?;
    let written = file
        .write_all(&header)
        .and_then(|()| file.metadata())
        .and_then(|meta| {
            std::fs::rename(&temporary, dir.join(JOURNAL_FILE))?;
            Ok(meta)
        });
    match written {
        Ok(meta) => Ok(Position {
            file: file_id(&meta),
            offset: header.len() as u64,
            edits: 0,
            extends: true,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            Err(e)
        }
    }
}

#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// Elsewhere no fingerprint of the cache file (no change time): no journal extends it, and
/// every write rewrites the file whole.
#[cfg(not(unix))]
fn file_id(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CachedUpload;

    fn edit(url: &str) -> Edit {
        let now = super::super::book::ms(SystemTime::now());
        Edit::Add(CachedUpload {
            content: "a".repeat(64),
            content_type: "image/png".to_owned(),
            model: "m".to_owned(),
            account: "acct".to_owned(),
            url: url.to_owned(),
            size: 1,
            uploaded_at_ms: now,
            expires_at_ms: now + 1000,
            source: None,
        })
    }

    fn urls(edits: &[Edit]) -> Vec<String> {
        edits
            .iter()
            .filter_map(|e| match e {
                Edit::Add(entry) => Some(entry.url.clone()),
                _ => None,
            })
            .collect()
    }

    /// A writer killed mid-append leaves a line without its end: never applied, cut off by
    /// the next writer; a journal of another cache file is never applied.
    #[test]
    fn a_partial_last_line_is_never_applied_and_another_files_journal_is_ignored() {
        let dir =
            std::env::temp_dir().join(format!("dashscope-oss-journal-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let stamp = Stamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: 4,
            ctime_ns: 5,
        };
        let at = start(&dir, stamp).expect("started");
        let at = append(&dir, at, &lines(&[edit("oss://one")]).expect("lines")).expect("one");
        // Half of the next line, as a killed writer leaves it.
        let two = lines(&[edit("oss://two")]).expect("lines");
        {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(dir.join(JOURNAL_FILE))
                .expect("open");
            file.write_all(&two[..two.len() / 2]).expect("half");
        }
        let tail = read_tail(&dir, Some(stamp), None).expect("read");
        assert_eq!(urls(&tail.edits), ["oss://one"]);
        assert_eq!(tail.position.map(|p| p.offset), Some(at.offset));
        // The next writer (under the lock, caught up) cuts the half line off.
        let read = tail.position.expect("a journal");
        append(&dir, read, &lines(&[edit("oss://three")]).expect("lines")).expect("three");
        let again = read_tail(&dir, Some(stamp), None).expect("read");
        assert_eq!(urls(&again.edits), ["oss://one", "oss://three"]);
        assert_eq!(again.skipped, 0);
        // Read on from where the first read ended: only the new line.
        let on = read_tail(&dir, Some(stamp), Some(read)).expect("read on");
        assert_eq!(urls(&on.edits), ["oss://three"]);
        // Another cache file (a compaction that died before it started a new journal).
        let other = Stamp { ino: 9, ..stamp };
        let ignored = read_tail(&dir, Some(other), None).expect("read");
        assert!(ignored.edits.is_empty());
        assert!(!ignored.position.expect("a journal").extends);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
