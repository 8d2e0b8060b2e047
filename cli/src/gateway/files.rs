//! Which local files a gateway's clients may name: those under the `--files` directories.
//! The library makes the check, on every path of every request, as it resolves the media
//! (`dashscope_oss::config::LocalFiles::Under`: symlinks resolved, regular files only, never
//! under `/proc`, `/sys` or `/dev`); this module only resolves the directories at start-up,
//! so that a bad `--files` fails the start, not the first request.

use std::path::PathBuf;

use dashscope_oss::Config;
use dashscope_oss::config::LocalFiles as Admitted;

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
            config.upload_local_files(Admitted::Never)
        } else {
            config.upload_local_files(Admitted::under(self.roots.iter().cloned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_resolved_and_pseudo_filesystems_refused() {
        let d = std::env::temp_dir().join(format!("gw-files-{}", std::process::id()));
        std::fs::create_dir_all(d.join("in")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(d.join("file.png"), b"png").unwrap_or_else(|e| panic!("{e}"));
        let files = LocalFiles::new(&[d.join("in/../in")]).unwrap_or_else(|e| panic!("{e}"));
        let real = std::fs::canonicalize(d.join("in")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(files.roots(), [real]);
        for bad in [
            d.join("file.png"),
            d.join("missing"),
            PathBuf::from("/proc"),
        ] {
            assert!(
                LocalFiles::new(std::slice::from_ref(&bad)).is_err(),
                "{}",
                bad.display()
            );
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
