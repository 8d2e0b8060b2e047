//! How results are printed: sizes, times, one summary line per file, JSON lines, warnings,
//! and stdout itself, whose every write is checked.

use std::io::Write;
use std::time::SystemTime;

use dashscope_oss::cache::UploadCache;
use dashscope_oss::{Client, Error, UploadedFile};

use crate::exit::*;

/// A command's stdout. Every write is flushed and checked: a closed pipe (EPIPE: Rust leaves
/// SIGPIPE ignored, so the write fails instead of killing the process) or a full disk ends the
/// command with [`EXIT_OUTPUT`], said on stderr, instead of being lost or a panic.
pub(crate) struct Out {
    stdout: std::io::Stdout,
}

impl Out {
    pub(crate) fn new() -> Self {
        Self {
            stdout: std::io::stdout(),
        }
    }

    /// Writes `text` and a newline.
    pub(crate) fn line(&mut self, text: &str) -> Result<(), u8> {
        self.write(&[text, "\n"])
    }

    /// Writes `text` as it is (a streamed answer), flushed at once.
    pub(crate) fn text(&mut self, text: &str) -> Result<(), u8> {
        self.write(&[text])
    }

    fn write(&mut self, parts: &[&str]) -> Result<(), u8> {
        let mut stdout = self.stdout.lock();
        parts
            .iter()
            .try_for_each(|p| stdout.write_all(p.as_bytes()))
            .and_then(|()| stdout.flush())
            .map_err(|e| {
                note!("dashscope: cannot write to stdout: {e}");
                EXIT_OUTPUT
            })
    }
}

/// Says why the upload cache was not used, if it was not (a warning: the command went on).
pub(crate) fn warn_about_cache(client: &Client) {
    if let Some(warning) = client.upload_cache().and_then(UploadCache::take_warning) {
        note!("dashscope: warning: {warning}");
    }
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) fn json_ok(path: &str, file: &UploadedFile) -> serde_json::Value {
    serde_json::json!({
        "path": path, "url": file.url, "key": file.key, "model": file.model,
        "size": file.size, "expires_at": rfc3339(file.expires_at),
        "from_cache": file.from_cache
    })
}

pub(crate) fn json_err(path: &str, e: &Error) -> serde_json::Value {
    serde_json::json!({
        "path": path,
        "error": {
            "message": e.to_string(), "code": e.code(), "status": e.status(),
            "request_id": e.request_id(), "exit_code": exit_code(e)
        }
    })
}

/// `cat.png: 367 B, expires 2026-11-27 18:54:55 +08:00 (2026-11-27T10:54:55Z)`.
pub(crate) fn summary(path: &str, file: &UploadedFile) -> String {
    let local = chrono::DateTime::<chrono::Local>::from(file.expires_at);
    format!(
        "{path}: {}{}, expires {} ({})",
        human_size(file.size),
        if file.from_cache {
            ", from the upload cache (nothing sent)"
        } else {
            ""
        },
        local.format("%Y-%m-%d %H:%M:%S %:z"),
        rfc3339(file.expires_at)
    )
}

pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(367), "367 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
