//! What to upload: a file by path, bytes in memory, or a reader, each able to open itself again
//! for a retry; and telling a source that failed to read from a lost connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::{Error, Result};

/// The chunk size of file reads. (Measured in docs/figures.md, "Uploads against curl".)
pub(super) const CHUNK: usize = 256 * 1024;

/// What to upload.
pub struct UploadSource {
    pub(super) name: String,
    pub(super) kind: SourceKind,
}

pub(super) enum SourceKind {
    Path(PathBuf),
    Bytes(Bytes),
    Reader {
        len: u64,
        open: Arc<dyn Fn() -> ReaderFuture + Send + Sync>,
    },
}

pub(super) type BoxReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// A source opened for one attempt: a file is read on the blocking threads (a chunk ahead of
/// the connection, straight into the buffer that is sent); the others are async readers.
pub(super) enum Opened {
    File(std::fs::File),
    Reader(BoxReader),
}
pub(super) type ReaderFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<BoxReader>> + Send>>;

impl std::fmt::Debug for UploadSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            SourceKind::Path(p) => format!("path {}", p.display()),
            SourceKind::Bytes(b) => format!("{} bytes in memory", b.len()),
            SourceKind::Reader { len, .. } => format!("reader of {len} bytes"),
        };
        f.debug_struct("UploadSource")
            .field("name", &self.name)
            .field("kind", &kind)
            .finish()
    }
}

impl UploadSource {
    /// A local file; its name becomes the object's name.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            name,
            kind: SourceKind::Path(path),
        }
    }

    /// A local file read from `real` (its path with symlinks resolved) and named as `named`
    /// is: the checked file is the one read, and the name keeps the extension the request gave.
    pub(crate) fn path_read_from(named: &Path, real: PathBuf) -> Self {
        let mut source = Self::path(named);
        source.kind = SourceKind::Path(real);
        source
    }

    /// Bytes in memory, uploaded under `name` (keep the extension: models read the type from it).
    pub fn bytes(name: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Self {
            name: name.into(),
            kind: SourceKind::Bytes(bytes.into()),
        }
    }

    /// `len` bytes read from a reader that `open` makes; it is called again for each retry.
    pub fn reader<F, Fut, R>(name: impl Into<String>, len: u64, open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::io::Result<R>> + Send + 'static,
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
    {
        let open = Arc::new(move || -> ReaderFuture {
            let fut = open();
            Box::pin(async move { fut.await.map(|r| Box::new(r) as BoxReader) })
        });
        Self {
            name: name.into(),
            kind: SourceKind::Reader { len, open },
        }
    }

    /// The name it is uploaded under (before it is made safe and unique).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn path_buf(&self) -> Option<PathBuf> {
        match &self.kind {
            SourceKind::Path(p) => Some(p.clone()),
            _ => None,
        }
    }

    /// Checks what can be checked before any request: the file exists, is a regular file,
    /// can be opened. Returns the size.
    pub(crate) async fn size(&self) -> Result<u64> {
        match &self.kind {
            SourceKind::Bytes(b) => Ok(b.len() as u64),
            SourceKind::Reader { len, .. } => Ok(*len),
            SourceKind::Path(path) => {
                let check = path.clone();
                tokio::task::spawn_blocking(move || check_path(&check))
                    .await
                    .map_err(|e| Error::Io {
                        path: Some(path.clone()),
                        source: std::io::Error::other(e),
                    })?
            }
        }
    }

    /// The path, for a file.
    pub(super) fn as_path(&self) -> Option<&Path> {
        match &self.kind {
            SourceKind::Path(p) => Some(p),
            _ => None,
        }
    }

    pub(super) async fn open(&self) -> Result<Opened> {
        match &self.kind {
            SourceKind::Bytes(b) => Ok(Opened::Reader(Box::new(std::io::Cursor::new(b.clone())))),
            SourceKind::Path(path) => {
                let io = |source| Error::Io {
                    path: Some(path.clone()),
                    source,
                };
                let open = path.clone();
                let file = tokio::task::spawn_blocking(move || std::fs::File::open(open))
                    .await
                    .map_err(|e| io(std::io::Error::other(e)))?
                    .map_err(io)?;
                Ok(Opened::File(file))
            }
            SourceKind::Reader { open, .. } => open()
                .await
                .map(Opened::Reader)
                .map_err(|source| Error::Io { path: None, source }),
        }
    }
}

/// What [`UploadSource::size`] checks of a file: it exists, is a regular file, can be opened.
/// Blocking.
pub(super) fn check_path(path: &Path) -> Result<u64> {
    let io = |source| Error::Io {
        path: Some(path.to_path_buf()),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    // Opening proves it is readable now, not only that it exists.
    drop(std::fs::File::open(path).map_err(io)?);
    Ok(meta.len())
}

impl From<&Path> for UploadSource {
    fn from(path: &Path) -> Self {
        Self::path(path)
    }
}

impl From<PathBuf> for UploadSource {
    fn from(path: PathBuf) -> Self {
        Self::path(path)
    }
}

impl From<&str> for UploadSource {
    /// A path.
    fn from(path: &str) -> Self {
        Self::path(path)
    }
}

/// A transport error, unless it was the source that failed to read.
pub(super) fn source_error(e: reqwest::Error, source: &UploadSource) -> Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<SourceError>())
        {
            return Error::Io {
                path: source.path_buf(),
                source: std::io::Error::new(io.kind(), io.to_string()),
            };
        }
        cause = c.source();
    }
    Error::from_reqwest(e)
}

/// The source ended early or failed while its bytes were being sent.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct SourceError(pub(super) String);
