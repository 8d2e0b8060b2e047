//! One file or many: sizes checked first, a few uploads at a time, outcomes in input order, the
//! batch's progress, and the upload cache consulted and fed around each upload.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::StreamExt;

use super::Uploader;
use super::lock_plain;
use super::source::SourceKind;
use super::unix_ms;
use crate::Progress;
use crate::UploadSource;
use crate::UploadedFile;
use crate::cache::{CachedUpload, Identity, Stamp, UploadCache, Verdict};
use crate::naming::content_type;
use crate::{Callback, UploadEvent};
use crate::{Error, Result};

impl Uploader<'_> {
    /// Uploads one file.
    pub(crate) async fn upload(&self, model: &str, source: UploadSource) -> Result<UploadedFile> {
        let size = source.size().await?;
        let observer = self.uploads().settings.observer.clone();
        let tally = observer.map(|o| {
            let tally = Tally::new(1, Some(o));
            tally.add_size(size);
            Arc::new(tally)
        });
        self.upload_checked(model, &source, size, 0, tally).await
    }

    /// Uploads many files, a few at a time; one outcome per source, in input order.
    pub(crate) async fn upload_many(
        &self,
        model: &str,
        sources: Vec<UploadSource>,
    ) -> Vec<Result<UploadedFile>> {
        let observer = self.uploads().settings.observer.clone();
        let tally = Arc::new(Tally::new(sources.len(), observer));
        // Every source is checked first (a stat, no request), so that the batch's total size is
        // known from the start and a bad path costs nothing but its own error.
        let mut checked = Vec::with_capacity(sources.len());
        for source in sources {
            let size = source.size().await;
            if let Ok(size) = &size {
                tally.add_size(*size);
            }
            checked.push((source, size));
        }
        let concurrency = self.uploads().settings.concurrency.max(1);
        // Unordered, so that one slow file does not hold the other slots; put back in input
        // order at the end.
        let mut done: Vec<(usize, Result<UploadedFile>)> =
            futures_util::stream::iter(checked.into_iter().enumerate())
                .map(|(index, (source, size))| {
                    let tally = tally.clone();
                    async move {
                        let result = match size {
                            Ok(size) => {
                                self.upload_checked(model, &source, size, index, Some(tally))
                                    .await
                            }
                            Err(e) => Err(e),
                        };
                        (index, result)
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
        done.sort_by_key(|(index, _)| *index);
        done.into_iter().map(|(_, result)| result).collect()
    }

    pub(super) async fn upload_checked(
        &self,
        model: &str,
        source: &UploadSource,
        size: u64,
        index: usize,
        tally: Option<Arc<Tally>>,
    ) -> Result<UploadedFile> {
        if model.trim().is_empty() {
            return Err(Error::InvalidRequest("the model name is empty".to_owned()));
        }
        if size == 0 {
            // OSS would store it, and the model would then refuse it with
            // InvalidParameter.DataInspection: say so now, before any request.
            return Err(Error::EmptyFile {
                name: source.name.clone(),
                path: source.path_buf(),
            });
        }
        let Some(cache) = self.uploads().cache() else {
            return self.store(model, source, size, index, tally, None).await;
        };
        let Some(known) = identify(cache, source).await? else {
            return self.store(model, source, size, index, tally, None).await;
        };
        let identity = Identity {
            content: known.content.clone(),
            content_type: content_type(&source.name).to_owned(),
            model: model.to_owned(),
            account: self.uploads().account().to_owned(),
        };
        if let Verdict::Fresh(entry) = cache.lookup(&identity, SystemTime::now()) {
            tracing::info!(url = entry.url, "from the upload cache");
            cache.note_served(&entry.url);
            // A settled file that had to be read: next time its fingerprint will do.
            if let (false, Some(stamp), Some(path)) = (known.from_mark, known.mark, &known.path) {
                cache.remember_mark(path.clone(), stamp, known.content.clone());
            }
            if let Some(t) = &tally {
                t.report(index, size, size);
            }
            return Ok(from_cache(entry, model));
        }
        // What is recorded must be what was stored. A settled file whose fingerprint did not
        // move during the upload was not written to (any write moves its change time past a
        // settled one): its digest stands. Any other file is hashed again as it is sent, and
        // recorded under what was sent.
        let settled = known.mark.is_some();
        let sent = (!settled && known.path.is_some()).then(|| Arc::new(Mutex::new(None)));
        // The file the digest was taken of, under the name it was given: a symlink moved
        // meanwhile cannot send other bytes under this digest.
        let canonical = known.path.as_ref().map(|path| UploadSource {
            name: source.name.clone(),
            kind: SourceKind::Path(path.clone()),
        });
        let file = self
            .store(
                model,
                canonical.as_ref().unwrap_or(source),
                size,
                index,
                tally,
                sent.clone(),
            )
            .await?;
        let (content, mark) = match (&known.path, known.mark, sent) {
            (Some(path), Some(before), _) => {
                let after = tokio::fs::metadata(path)
                    .await
                    .ok()
                    .and_then(|m| Stamp::of(&m));
                if after != Some(before) {
                    return Ok(file);
                }
                (known.content, Some((path.clone(), before)))
            }
            (Some(_), None, Some(sent)) => match lock_plain(&sent).take() {
                Some(content) => (content, None),
                None => return Ok(file),
            },
            // Bytes in memory cannot change.
            _ => (known.content, None),
        };
        cache.record(
            CachedUpload {
                content,
                content_type: identity.content_type,
                model: model.to_owned(),
                account: identity.account,
                url: file.url.clone(),
                size,
                uploaded_at_ms: unix_ms(file.uploaded_at),
                expires_at_ms: unix_ms(file.expires_at),
                source: known.path,
            },
            mark,
        );
        Ok(file)
    }
}

/// What the cache needs to know of a source before uploading it.
pub(super) struct Known {
    pub(super) content: String,
    /// The file (absolute), for a file.
    pub(super) path: Option<PathBuf>,
    /// Its fingerprint before hashing, when settled enough to stand for the content.
    pub(super) mark: Option<Stamp>,
    /// Whether the digest came from that fingerprint (the file was not read).
    pub(super) from_mark: bool,
}

/// A source's content digest: from a trusted fingerprint without reading the file, or by
/// reading it. `None` for a reader (it cannot be read twice).
pub(super) async fn identify(cache: &UploadCache, source: &UploadSource) -> Result<Option<Known>> {
    match &source.kind {
        SourceKind::Reader { .. } => Ok(None),
        SourceKind::Bytes(bytes) => Ok(Some(Known {
            content: crate::cache::digest_bytes(bytes),
            path: None,
            mark: None,
            from_mark: false,
        })),
        SourceKind::Path(path) => {
            let io = |source| Error::Io {
                path: Some(path.clone()),
                source,
            };
            // A path that cannot be made absolute or read here is uploaded without the cache
            // (the upload reports what is wrong with it, if anything).
            let Ok(absolute) = tokio::fs::canonicalize(path).await else {
                return Ok(None);
            };
            let taken = SystemTime::now();
            let Ok(meta) = tokio::fs::metadata(&absolute).await else {
                return Ok(None);
            };
            let stamp = Stamp::of(&meta).filter(|s| s.settled(taken));
            if let Some(content) = stamp.and_then(|s| cache.known_content(&absolute, &s)) {
                return Ok(Some(Known {
                    content,
                    path: Some(absolute),
                    mark: stamp,
                    from_mark: true,
                }));
            }
            let read = absolute.clone();
            let content = tokio::task::spawn_blocking(move || crate::cache::digest_file(&read))
                .await
                .map_err(|e| io(std::io::Error::other(e)))?
                .map_err(io)?;
            Ok(Some(Known {
                content,
                path: Some(absolute),
                mark: stamp,
                from_mark: false,
            }))
        }
    }
}

/// An earlier upload, as the upload it saves.
pub(super) fn from_cache(entry: CachedUpload, model: &str) -> UploadedFile {
    UploadedFile {
        key: entry
            .url
            .strip_prefix("oss://")
            .unwrap_or(&entry.url)
            .to_owned(),
        model: model.to_owned(),
        size: entry.size,
        uploaded_at: entry.uploaded_at(),
        expires_at: entry.expires_at(),
        url: entry.url,
        request_id: None,
        attempts: 0,
        from_cache: true,
    }
}

/// Bytes sent per file of a batch, for [`Progress`].
pub(super) struct Tally {
    pub(super) sent: Vec<AtomicU64>,
    pub(super) total_size: AtomicU64,
    pub(super) callback: Option<Callback<UploadEvent>>,
}

impl Tally {
    pub(super) fn new(files: usize, callback: Option<Callback<UploadEvent>>) -> Self {
        Self {
            sent: (0..files).map(|_| AtomicU64::new(0)).collect(),
            total_size: AtomicU64::new(0),
            callback,
        }
    }

    pub(super) fn add_size(&self, size: u64) {
        self.total_size.fetch_add(size, Ordering::Relaxed);
    }

    pub(super) fn restart(&self, index: usize) {
        if let Some(s) = self.sent.get(index) {
            s.store(0, Ordering::Relaxed);
        }
    }

    pub(super) fn report(&self, index: usize, file_sent: u64, file_size: u64) {
        if let Some(s) = self.sent.get(index) {
            s.store(file_sent, Ordering::Relaxed);
        }
        if let Some(callback) = &self.callback {
            let total_sent = self.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
            callback(&UploadEvent::Progress(Progress {
                index,
                file_sent,
                file_size,
                total_sent,
                total_size: self.total_size.load(Ordering::Relaxed),
            }));
        }
    }
}
