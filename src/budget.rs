//! A rate budget that every process of the user shares through a file: the service counts an
//! account's task queries (20 a second) and credential requests (100 a second per model)
//! whatever process sends them, so clients that share a cache directory (every `dashscope`
//! command does) take their slots from one book there. A leaf: files and clocks only.
//!
//! The book is a few lines of Unix milliseconds, read and rewritten under an exclusive lock
//! (`File::lock`, released by the kernel if its holder dies), so two processes never take the
//! same slot. Times are the wall clock: processes share no other.

use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// At most `limit` slots in any `window`, for every process that names `path`.
#[derive(Debug, Clone)]
pub(crate) struct SharedBudget {
    path: PathBuf,
    limit: usize,
    window: Duration,
}

impl SharedBudget {
    pub(crate) fn new(path: PathBuf, limit: u32, window: Duration) -> Self {
        Self {
            path,
            limit: limit.max(1) as usize,
            window,
        }
    }

    /// Takes a slot now (`Ok(time)`, in Unix milliseconds), or says how long until one frees
    /// (`Err(wait)`). Blocking (a file lock): call it off the async threads.
    pub(crate) fn try_take(&self) -> std::io::Result<Result<u64, Duration>> {
        let mut file = open_private(&self.path)?;
        file.lock()?;
        // The time is read under the lock: what is written is when the slot was taken.
        let now = unix_ms(SystemTime::now());
        let window = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let mut text = String::new();
        // A book that is not text (damaged, or not ours) is read as empty: it is rewritten.
        let _ = file.read_to_string(&mut text);
        let mut slots: Vec<u64> = text
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            // Slots still in the window; a time far in the future (a clock moved back) counts
            // until the window has passed from now, never longer.
            .filter(|t: &u64| t.saturating_add(window) > now && *t <= now.saturating_add(window))
            .collect();
        slots.sort_unstable();
        if slots.len() >= self.limit {
            let frees = slots[slots.len() - self.limit].saturating_add(window);
            return Ok(Err(Duration::from_millis(frees.saturating_sub(now).max(1))));
        }
        slots.push(now);
        let book: String = slots.iter().map(|t| format!("{t}\n")).collect();
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(book.as_bytes())?;
        Ok(Ok(now))
    }
}

/// The book of `name`'s slots for one account and key (a model, or none) in `dir`: named by a
/// digest, so that the folder names no account, key or model.
pub(crate) fn book_path(dir: &std::path::Path, name: &str, account: &str, key: &str) -> PathBuf {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{account}\0{key}").as_bytes(),
    );
    let short: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(format!("budget-{name}-{short}"))
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A file of the cache folder that is opened in place (a budget book, the upload cache's lock
/// file), created readable by its owner only. A symlink in its place is refused, not followed:
/// the folder is the user's own, and a planted link must not make this create or write its
/// target. The look before the open gives the clear message; `O_NOFOLLOW` closes the race of
/// a link planted in between (where its value is known: `libc` is not a dependency).
pub(crate) fn open_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    // The folder is a cache folder that may not exist yet (nothing was uploaded): made private.
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir)?;
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other(format!(
            "{} is a symlink: it is not followed, and nothing is kept there",
            path.display()
        )));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(O_NOFOLLOW);
    }
    options.open(path)
}

/// `O_NOFOLLOW` of the platform's `open(2)` (`<fcntl.h>`); 0 (the look before the open alone)
/// where it is not listed here.
#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64",
        target_arch = "s390x"
    )
))]
const O_NOFOLLOW: i32 = 0o400000;
#[cfg(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
))]
const O_NOFOLLOW: i32 = 0x100;
#[cfg(all(
    unix,
    not(any(
        all(
            target_os = "linux",
            any(
                target_arch = "x86_64",
                target_arch = "x86",
                target_arch = "aarch64",
                target_arch = "riscv64",
                target_arch = "loongarch64",
                target_arch = "s390x"
            )
        ),
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd",
        target_os = "dragonfly"
    ))
))]
const O_NOFOLLOW: i32 = 0;

#[cfg(test)]
mod tests {
    use super::*;

    /// Four "processes" (each its own handle on the book, as separate processes have) take
    /// slots as fast as the book lets them: no window ever holds more than the limit, by the
    /// times the book itself recorded.
    #[test]
    fn no_window_holds_more_than_the_limit_whoever_takes_the_slots() {
        let dir = std::env::temp_dir().join(format!("dashscope-oss-budget-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("budget-test");
        let _ = std::fs::remove_file(&path);
        let window = Duration::from_millis(300);
        let takers: Vec<_> = (0..4)
            .map(|_| {
                let budget = SharedBudget::new(path.clone(), 5, window);
                std::thread::spawn(move || {
                    let mut taken = Vec::new();
                    while taken.len() < 6 {
                        match budget.try_take().expect("book") {
                            Ok(at) => taken.push(at),
                            Err(wait) => std::thread::sleep(wait),
                        }
                    }
                    taken
                })
            })
            .collect();
        let mut all: Vec<u64> = takers
            .into_iter()
            .flat_map(|t| t.join().expect("taker"))
            .collect();
        all.sort_unstable();
        assert_eq!(all.len(), 24);
        for (i, start) in all.iter().enumerate() {
            let in_window = all[i..].iter().take_while(|t| **t < start + 300).count();
            assert!(in_window <= 5, "{in_window} slots from {start}: {all:?}");
        }
        // A damaged book is read as empty and rewritten.
        std::fs::write(&path, b"\xff\xfe not a book").expect("write");
        let budget = SharedBudget::new(path.clone(), 1, window);
        assert!(budget.try_take().expect("book").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A symlink planted where a book goes, to a path that does not exist: refused with a
    /// clear error, and its target is not created; `O_NOFOLLOW` refuses it even past the look.
    #[cfg(unix)]
    #[test]
    fn a_symlinked_book_is_refused_and_its_target_not_created() {
        let dir =
            std::env::temp_dir().join(format!("dashscope-oss-budget-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let target = dir.join("target-that-must-not-exist");
        let book = dir.join("budget-linked");
        std::os::unix::fs::symlink(&target, &book).expect("symlink");
        let budget = SharedBudget::new(book.clone(), 5, Duration::from_secs(1));
        let err = budget.try_take().expect_err("a symlink");
        assert!(err.to_string().contains("is a symlink"), "{err}");
        assert!(!target.exists());
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true);
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(O_NOFOLLOW);
        assert!(options.open(&book).is_err(), "O_NOFOLLOW follows the link");
        assert!(!target.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
