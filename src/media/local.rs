//! Which local files a request may make this process upload ([`LocalFiles`]): the one check
//! every local path goes through before it is read, whether a request named it or the upload
//! cache remembers it as the source of a URL. Blocking (it resolves symlinks and stats): called
//! off the async threads.

use std::path::{Path, PathBuf};

use crate::config::LocalFiles;
use crate::{Error, Result};

/// Pseudo-filesystems and devices: their files read as regular files (`/proc/self/environ`
/// holds this process's environment, its API key included), so no directory list admits them.
const NEVER_UNDER: &[&str] = &["/proc", "/sys", "/dev"];

/// The file to read for a local path a request named, when `policy` admits it: the path as
/// given for [`LocalFiles::Any`] (the upload checks it as it always did), its real path
/// (symlinks resolved) for [`LocalFiles::Under`], which is what is then read, so that a link
/// moved after this check cannot point the upload elsewhere within the same resolution.
pub(crate) fn admit(policy: &LocalFiles, path: &Path) -> Result<PathBuf> {
    let refused = |reason| Error::LocalFileRefused {
        path: path.to_path_buf(),
        reason,
    };
    let roots = match policy {
        LocalFiles::Any => return Ok(path.to_path_buf()),
        LocalFiles::Never => {
            return Err(refused(
                "this client uploads no local files (Config::upload_local_files)",
            ));
        }
        LocalFiles::Under(roots) => roots,
    };
    if roots.is_empty() {
        return Err(refused("no directory is admitted for local files"));
    }
    let roots: Vec<PathBuf> = roots
        .iter()
        .filter_map(|root| std::fs::canonicalize(root).ok())
        .collect();
    let real = match std::fs::canonicalize(path) {
        Ok(real) => real,
        // Only a path that names an admitted directory learns that its file is missing:
        // anything else is refused in the same words whether it exists or not.
        Err(source) if lexically_under(path, &roots) => {
            return Err(Error::Io {
                path: Some(path.to_path_buf()),
                source,
            });
        }
        Err(_) => return Err(refused("not under a directory admitted for local files")),
    };
    if NEVER_UNDER.iter().any(|p| real.starts_with(p)) {
        return Err(refused(
            "a pseudo-file or device (/proc, /sys, /dev) is never uploaded",
        ));
    }
    if !roots.iter().any(|root| real.starts_with(root)) {
        return Err(refused("not under a directory admitted for local files"));
    }
    let meta = std::fs::metadata(&real).map_err(|source| Error::Io {
        path: Some(path.to_path_buf()),
        source,
    })?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    Ok(real)
}

/// Whether a path, made absolute without touching the disk, names something under one of
/// the (real) roots.
fn lexically_under(path: &Path, roots: &[PathBuf]) -> bool {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(path),
            Err(_) => return false,
        }
    };
    // `..` would climb out of a root without the disk saying so: such a path is not under it.
    let climbs = absolute
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir));
    !climbs && roots.iter().any(|root| absolute.starts_with(root))
}

/// [`admit`] for many paths at once, off the async threads: every path is checked before any
/// is read, and the first refusal is the error.
pub(crate) async fn admit_all(policy: &LocalFiles, paths: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    if matches!(policy, LocalFiles::Any) {
        return Ok(paths);
    }
    let policy = policy.clone();
    tokio::task::spawn_blocking(move || paths.iter().map(|p| admit(&policy, p)).collect())
        .await
        .map_err(|e| Error::Io {
            path: None,
            source: std::io::Error::other(e),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("dashscope-oss-admit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).ok();
        d
    }

    #[test]
    fn any_admits_the_path_as_given_and_never_admits_none() {
        let p = Path::new("/etc/hostname");
        assert_eq!(admit(&LocalFiles::Any, p).ok(), Some(p.to_path_buf()));
        assert!(matches!(
            admit(&LocalFiles::Never, p),
            Err(Error::LocalFileRefused { .. })
        ));
        assert!(matches!(
            admit(&LocalFiles::under(Vec::<PathBuf>::new()), p),
            Err(Error::LocalFileRefused { .. })
        ));
    }

    #[test]
    fn under_admits_real_files_inside_and_refuses_the_rest() {
        let root = dir("root");
        let outside = dir("outside");
        let inside = root.join("cat.png");
        std::fs::write(&inside, b"x").ok();
        let secret = outside.join("secret.png");
        std::fs::write(&secret, b"x").ok();
        let policy = LocalFiles::under([&root]);
        let real_root = std::fs::canonicalize(&root).unwrap_or(root.clone());
        assert_eq!(
            admit(&policy, &inside).ok(),
            Some(real_root.join("cat.png"))
        );
        // Outside, by a plain path, by `..`, and through a symlink inside the root.
        let refused = |p: &Path| matches!(admit(&policy, p), Err(Error::LocalFileRefused { .. }));
        assert!(refused(&secret));
        assert!(refused(
            &root
                .join("../")
                .join(outside.file_name().unwrap_or_default())
                .join("secret.png")
        ));
        #[cfg(unix)]
        {
            let link = root.join("link.png");
            let _ = std::os::unix::fs::symlink(&secret, &link);
            assert!(refused(&link));
            let proc_link = root.join("environ.png");
            let _ = std::os::unix::fs::symlink("/proc/self/environ", &proc_link);
            assert!(refused(&proc_link));
        }
        // A root of `/` still admits nothing under /proc, /sys or /dev.
        let everything = LocalFiles::under(["/"]);
        for p in ["/proc/self/environ", "/dev/null", "/sys/kernel/mm"] {
            assert!(
                matches!(
                    admit(&everything, Path::new(p)),
                    Err(Error::LocalFileRefused { .. })
                ),
                "{p}"
            );
        }
        // A missing file inside says so; outside it is refused in the same words as a file.
        assert!(matches!(
            admit(&policy, &root.join("missing.png")),
            Err(Error::Io { .. })
        ));
        assert!(refused(&outside.join("missing.png")));
        // A directory inside is not a file.
        std::fs::create_dir_all(root.join("sub")).ok();
        assert!(matches!(
            admit(&policy, &root.join("sub")),
            Err(Error::NotAFile { .. })
        ));
    }
}
