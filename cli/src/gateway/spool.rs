//! Where a transcription's upload waits between the client and the temporary storage: a
//! directory of the gateway's own (`0700`, under `$TMPDIR`), one folder per upload that goes
//! when the upload ends, however it ends (answered, refused, or the client gone), and the
//! directory itself when the gateway stops.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The gateway's spool directory.
pub(crate) struct Spool {
    dir: PathBuf,
    next: AtomicU64,
}

impl Spool {
    /// Creates `$TMPDIR/dashscope-gateway-PID-N`, readable by this user only.
    pub(crate) fn create() -> std::io::Result<Arc<Self>> {
        let base = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = base.join(format!("dashscope-gateway-{}-{nanos}", std::process::id()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        Ok(Arc::new(Self {
            dir,
            next: AtomicU64::new(1),
        }))
    }

    /// A new file named `name` (already a safe file name) in a folder of its own; removed with
    /// its folder when the returned guard is dropped. Blocking.
    pub(crate) fn file(&self, name: &str) -> std::io::Result<(SpoolFile, std::fs::File)> {
        let folder = self
            .dir
            .join(self.next.fetch_add(1, Ordering::Relaxed).to_string());
        std::fs::create_dir(&folder)?;
        let guard = SpoolFile {
            path: folder.join(name),
            folder,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&guard.path)?;
        Ok((guard, file))
    }

    /// Removes the directory and whatever is left in it.
    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A spooled upload; its folder goes when this is dropped.
pub(crate) struct SpoolFile {
    path: PathBuf,
    folder: PathBuf,
}

impl SpoolFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file and its folder, and returns when they are gone (before the client is
    /// answered: nothing is left behind once it has its answer).
    pub(crate) async fn remove(mut self) {
        let folder = std::mem::take(&mut self.folder);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&folder)).await;
    }
}

impl Drop for SpoolFile {
    /// The other ends (a client gone mid-upload, a task cancelled): removed in the background.
    fn drop(&mut self) {
        let folder = std::mem::take(&mut self.folder);
        if folder.as_os_str().is_empty() {
            return;
        }
        let remove = move || {
            let _ = std::fs::remove_dir_all(&folder);
        };
        // Off the async threads when there is a runtime (there always is, but for a drop at
        // shutdown).
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(remove);
            }
            Err(_) => remove(),
        }
    }
}

/// A client's file name as a name to keep: its last component, with anything but letters,
/// digits, `.`, `-` and `_` replaced by `_`; `upload` when nothing is left.
pub(crate) fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() {
        "upload".to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_safe_component() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\x\\my talk.wav"), "my_talk.wav");
        assert_eq!(safe_name(".."), "upload");
        assert_eq!(safe_name(".hidden.wav"), "hidden.wav");
        assert_eq!(safe_name(""), "upload");
    }
}
