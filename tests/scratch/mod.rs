//! What the file-reading tests share: a scratch folder of the test's own, removed on drop, and
//! the PNG head the emulator sniffs as an image.
#![allow(dead_code)]

use std::path::PathBuf;

/// A PNG header the emulator sniffs as an image (448×280).
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\xc0\0\0\x01\x18\x08\x02\0\0\0";

/// `$TMPDIR/dashscope-oss-<suite>-test-<tag>-<pid>`, empty at the start.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(suite: &str, tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "dashscope-oss-{suite}-test-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        Self(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A file of these bytes in the folder.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
