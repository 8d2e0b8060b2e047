//! Which local files a gateway's clients may name: those under the `--files` directories,
//! after symlinks are resolved, regular files only, never under `/proc`, `/sys` or `/dev`.
//! None without `--files`: the library is then told to upload no local file at all.
//!
//! Interim, until the library's own roots option is on main (issue #20, item 1, another
//! helper's work in `src/media.rs`/`src/config.rs`): the check is made here, on the request's
//! body, before it goes to the library, and each path is replaced by its resolved form so that
//! the library uploads the very file that was checked. When the option lands,
//! [`LocalFiles::configure`] passes the roots to it and [`LocalFiles::check`] goes.

use std::path::{Path, PathBuf};

use dashscope_oss::{Config, Media};
use serde_json::Value;

/// The directories local files may come from, resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct LocalFiles {
    roots: Vec<PathBuf>,
}

/// Where a file may never be read from, whatever `--files` says.
const NEVER: &[&str] = &["/proc", "/sys", "/dev"];

impl LocalFiles {
    /// The `--files` directories, each resolved; an error names one that is not a directory.
    pub(crate) fn new(dirs: &[PathBuf]) -> Result<Self, String> {
        let mut roots = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let resolved = std::fs::canonicalize(dir)
                .map_err(|e| format!("--files {}: {e}", dir.display()))?;
            if !resolved.is_dir() {
                return Err(format!("--files {}: not a directory", dir.display()));
            }
            if NEVER.iter().any(|n| resolved.starts_with(n)) {
                return Err(format!(
                    "--files {}: files are never read from /proc, /sys or /dev",
                    dir.display()
                ));
            }
            roots.push(resolved);
        }
        Ok(Self { roots })
    }

    /// The directories, resolved (for the start-up note).
    pub(crate) fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The library's configuration for these roots: no local files at all without any.
    pub(crate) fn configure(&self, config: Config) -> Config {
        if self.roots.is_empty() {
            config.upload_local_files(false)
        } else {
            config
        }
    }

    /// Checks every local file in the media positions of a body, and puts its resolved path in
    /// its place; an error, meant for the client, names the first file refused. Blocking (it
    /// stats files): run it off the async threads.
    pub(crate) fn check(&self, body: &mut Value) -> Result<(), String> {
        let mut refused = None;
        visit_media(body, &mut |s| {
            if refused.is_some() {
                return;
            }
            let Media::Path(path) = Media::parse(s) else {
                return;
            };
            match self.admit(&path) {
                Ok(resolved) => *s = resolved.display().to_string(),
                Err(why) => refused = Some(why),
            }
        });
        refused.map_or(Ok(()), Err)
    }

    /// A path's resolved form, if it is a regular file under a root.
    fn admit(&self, path: &Path) -> Result<PathBuf, String> {
        let shown = path.display();
        if self.roots.is_empty() {
            return Err(format!(
                "{shown:?} is a local file, and this gateway reads none (start it with --files DIR)"
            ));
        }
        let resolved =
            std::fs::canonicalize(path).map_err(|e| format!("cannot read {shown:?}: {e}"))?;
        if NEVER.iter().any(|n| resolved.starts_with(n))
            || !self.roots.iter().any(|root| resolved.starts_with(root))
        {
            return Err(format!(
                "{shown:?} is outside the directories this gateway reads (--files)"
            ));
        }
        let meta =
            std::fs::metadata(&resolved).map_err(|e| format!("cannot read {shown:?}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("{shown:?} is not a regular file"));
        }
        Ok(resolved)
    }
}

/// The library's rule of what a media position is (`src/wire.rs`, `visit_media`), for the
/// interim check only: a string (or list of strings) under `image`, `audio`, `video`,
/// `images`, `url`, `data`, `ref_img` or a key ending in `_url`, `_urls`, `_img`; tool
/// definitions, tool calls and response formats are never searched.
fn visit_media(body: &mut Value, f: &mut dyn FnMut(&mut String)) {
    fn media_key(key: &str) -> bool {
        matches!(
            key,
            "image" | "audio" | "video" | "images" | "url" | "data" | "ref_img"
        ) || key.ends_with("_url")
            || key.ends_with("_urls")
            || key.ends_with("_img")
    }
    fn opaque(key: &str) -> bool {
        matches!(
            key,
            "tools" | "tool_calls" | "functions" | "response_format" | "tool_choice" | "metadata"
        )
    }
    match body {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if opaque(key) {
                    continue;
                }
                match value {
                    Value::String(s) if media_key(key) => f(s),
                    Value::Array(items) if media_key(key) => {
                        for item in items {
                            match item {
                                Value::String(s) => f(s),
                                other => visit_media(other, f),
                            }
                        }
                    }
                    other => visit_media(other, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| visit_media(item, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "gw-files-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("in")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(d.join("in/a.png"), b"png").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(d.join("out.png"), b"png").unwrap_or_else(|e| panic!("{e}"));
        d
    }

    #[test]
    fn only_regular_files_under_a_root_pass_and_are_resolved() {
        let d = dir();
        let files = LocalFiles::new(&[d.join("in")]).unwrap_or_else(|e| panic!("{e}"));
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.join("out.png"), d.join("in/link.png"))
            .unwrap_or_else(|e| panic!("{e}"));
        let inside = d.join("in/a.png").display().to_string();
        let mut body = json!({"messages": [{"content": [
            {"type": "image_url", "image_url": {"url": format!("file://{inside}")}},
            {"type": "text", "text": "/etc/passwd"}]}]});
        assert_eq!(files.check(&mut body), Ok(()));
        let resolved = std::fs::canonicalize(&inside).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            body.pointer("/messages/0/content/0/image_url/url"),
            Some(&json!(resolved.display().to_string()))
        );
        for bad in [
            d.join("out.png").display().to_string(),
            d.join("in/../out.png").display().to_string(),
            d.join("in/link.png").display().to_string(),
            d.join("in").display().to_string(),
            "/proc/self/environ".to_owned(),
            d.join("in/missing.png").display().to_string(),
        ] {
            let mut body = json!({"input": {"image": bad}});
            assert!(files.check(&mut body).is_err(), "{bad}");
        }
        let mut tools = json!({"tools": [{"image": "/etc/passwd"}]});
        assert_eq!(files.check(&mut tools), Ok(()));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn without_roots_every_local_file_is_refused_and_urls_pass() {
        let files = LocalFiles::default();
        let mut body = json!({"input": {"image": "cat.png"}});
        let refused = files.check(&mut body).err().unwrap_or_default();
        assert!(refused.contains("--files"), "{refused}");
        let mut urls = json!({"input": {"image": "https://example.com/a.png",
            "audio": "data:audio/wav;base64,AA==", "video": "oss://x/y.mp4"}});
        assert_eq!(files.check(&mut urls), Ok(()));
    }
}
