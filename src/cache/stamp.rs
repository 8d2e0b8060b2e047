//! A file's fingerprint: what changes when it is written, and when it can be trusted.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A file's fingerprint, and the content digest it had when the fingerprint was trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Mark {
    #[serde(with = "super::path")]
    pub(super) path: PathBuf,
    pub(super) stamp: Stamp,
    pub(super) content: String,
}

/// What changes when a file is written: device, inode, size, and the modification and change
/// times in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) struct Stamp {
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) size: u64,
    pub(super) mtime_ns: i128,
    pub(super) ctime_ns: i128,
}
impl Stamp {
    /// The fingerprint of a file's metadata; `None` where the platform has no change time.
    #[cfg(unix)]
    pub(crate) fn of(meta: &std::fs::Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Some(Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    pub(crate) fn of(_meta: &std::fs::Metadata) -> Option<Stamp> {
        None
    }

    /// Whether this fingerprint, taken at `taken`, can stand for the content: the file last
    /// changed more than a timestamp tick before. A filesystem that keeps nanoseconds ticks at
    /// the kernel's coarse clock (at most 10 ms); one that keeps whole seconds (FAT: two)
    /// shows as a change time with no nanoseconds, and gets two seconds.
    pub(crate) fn settled(&self, taken: SystemTime) -> bool {
        let tick_ns: i128 = if self.ctime_ns % 1_000_000_000 == 0 {
            2_000_000_000
        } else {
            100_000_000
        };
        let taken_ns = taken
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        self.ctime_ns.max(self.mtime_ns) + tick_ns < taken_ns
    }
}
