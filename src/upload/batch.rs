//! One file or many: sizes checked first, a few uploads at a time, outcomes in input order, the
//! batch's progress, and the upload cache consulted and fed around each upload.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};

use super::Uploader;
use super::lock_plain;
use super::source::SourceKind;
use super::source::check_path;
use super::unix_ms;
use crate::Progress;
use crate::UploadSource;
use crate::UploadedFile;
use crate::cache::{CachedUpload, Identity, Stamp, UploadCache, Verdict};
use crate::naming::content_type;
use crate::{Callback, UploadEvent};
use crate::{Error, Result};

impl<'a> Uploader<'a> {
    /// Uploads one file.
    pub(crate) async fn upload(&self, model: &str, source: UploadSource) -> Result<UploadedFile> {
        let size = source.size().await?;
        if let Some(cache) = self.uploads().cache() {
            cache.catch_up().await;
        }
        let observer = self.uploads().settings.observer.clone();
        let tally = observer.map(|o| {
            let tally = Tally::new(1, Some(o));
            tally.add_size(size);
            Arc::new(tally)
        });
        self.upload_checked(model, &source, size, 0, tally, Prior::default())
            .await
    }

    /// Uploads many files, a few at a time, each outcome as its upload ends, tagged with its
    /// source's position; no upload starts once `stop` is set.
    pub(crate) fn upload_many(
        self,
        model: &str,
        sources: Vec<UploadSource>,
        stop: StopUploads,
    ) -> impl Stream<Item = (usize, Result<UploadedFile>)> + Send + 'a {
        let uploader = self;
        let model: Arc<str> = model.into();
        let prepared = async move {
            let observer = uploader.uploads().settings.observer.clone();
            let tally = Arc::new(Tally::new(sources.len(), observer));
            // Every source is checked first (a stat, no request), so that the batch's total
            // size is known from the start and a bad path costs nothing but its own error;
            // with the cache, each file is also made absolute and fingerprinted. Files are
            // looked at in groups, one trip off the runtime each.
            let caching = uploader.uploads().cache().is_some();
            let mut checked = Vec::with_capacity(sources.len());
            let mut sources = sources.into_iter().peekable();
            while sources.peek().is_some() {
                let group: Vec<UploadSource> = sources.by_ref().take(LOOK_GROUP).collect();
                let paths: Vec<Option<PathBuf>> = group
                    .iter()
                    .map(|s| s.as_path().map(Path::to_path_buf))
                    .collect();
                let looked = tokio::task::spawn_blocking(move || {
                    paths
                        .into_iter()
                        .map(|path| {
                            let path = path?;
                            let size = check_path(&path);
                            let look = (caching && size.is_ok()).then(|| look(&path));
                            Some((size, look))
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap_or_default();
                let mut looked = looked.into_iter();
                for source in group {
                    let (size, look) = match (source.as_path(), looked.next().flatten()) {
                        (Some(_), Some(found)) => found,
                        _ => (source.size().await, None),
                    };
                    if let Ok(size) = &size {
                        tally.add_size(*size);
                    }
                    checked.push((source, size, look));
                }
            }
            // What other processes wrote is read once for the batch, off the runtime, and
            // whether each file can hit is decided then, once for all: a file whose size no
            // entry has is sent without being read ahead, even if another file of the batch
            // is recorded with that size meanwhile (a batch of same-sized new files is not
            // read twice). A file named twice can hit the second time: its first upload
            // may be recorded by then (two copies under two names are two uploads).
            let may_hit: Vec<Option<bool>> = match uploader.uploads().cache() {
                Some(cache) => {
                    cache.catch_up().await;
                    let account = uploader.uploads().account();
                    let now = SystemTime::now();
                    let mut named = std::collections::HashSet::new();
                    checked
                        .iter()
                        .map(|(_, size, look)| {
                            let size = *size.as_ref().ok()?;
                            let again = match look {
                                Some(Some((absolute, _))) => !named.insert(absolute.clone()),
                                _ => false,
                            };
                            Some(again || cache.may_hold(&model, account, size, now))
                        })
                        .collect()
                }
                None => vec![None; checked.len()],
            };
            let concurrency = uploader.uploads().settings.concurrency.max(1);
            // Unordered, so that one slow file does not hold the other slots; the batch puts
            // the outcomes back in input order. The stop is looked at each time a slot frees,
            // so the uploads started are always the first ones.
            futures_util::stream::iter(checked.into_iter().zip(may_hit).enumerate())
                .take_while(move |_| std::future::ready(!stop.is_stopped()))
                .map(move |(index, ((source, size, look), may_hit))| {
                    let tally = tally.clone();
                    let model = model.clone();
                    async move {
                        let result = match size {
                            Ok(size) => {
                                uploader
                                    .upload_checked(
                                        &model,
                                        &source,
                                        size,
                                        index,
                                        Some(tally),
                                        Prior { may_hit, look },
                                    )
                                    .await
                            }
                            Err(e) => Err(e),
                        };
                        (index, result)
                    }
                })
                .buffer_unordered(concurrency)
        };
        futures_util::stream::once(prepared).flatten()
    }

    pub(super) async fn upload_checked(
        &self,
        model: &str,
        source: &UploadSource,
        size: u64,
        index: usize,
        tally: Option<Arc<Tally>>,
        prior: Prior,
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
        let account = self.uploads().account();
        // No entry of this size can be hit: the file is not read ahead (a 20 GiB file over the
        // model's limit is refused by its size alone), only hashed as it is sent.
        let may_hit = prior
            .may_hit
            .unwrap_or_else(|| cache.may_hold(model, account, size, SystemTime::now()));
        let Some(known) = identify(cache, source, may_hit, prior.look).await? else {
            return self.store(model, source, size, index, tally, None).await;
        };
        let identity = |content: String| Identity {
            content,
            content_type: content_type(&source.name).to_owned(),
            model: model.to_owned(),
            account: account.to_owned(),
        };
        if let (true, Some(content)) = (may_hit, &known.content)
            && let Verdict::Fresh(entry) =
                cache.lookup(&identity(content.clone()), SystemTime::now())
        {
            tracing::info!(url = entry.url, "from the upload cache");
            cache.note_served(&entry.url);
            // A settled file that had to be read: next time its fingerprint will do.
            if let (false, Some(stamp), Some(path)) = (known.from_mark, known.mark, &known.path) {
                cache.remember_mark(path.clone(), stamp, content.clone());
                cache.write_if_due().await;
            }
            if let Some(t) = &tally {
                t.report(index, size, size);
            }
            return Ok(from_cache(entry, model));
        }
        // What is recorded must be what was stored. A file read ahead whose settled
        // fingerprint did not move during the upload was not written to (any write moves its
        // change time past a settled one): its digest stands. Any other file is hashed as it
        // is sent and recorded under what was sent, with its fingerprint when that was
        // settled before and had not moved after.
        let sent = (known.path.is_some() && (known.content.is_none() || known.mark.is_none()))
            .then(|| Arc::new(Mutex::new(None)));
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
        let source_path = known.path.clone();
        let mark = |path: PathBuf, after: Option<Stamp>| {
            known
                .mark
                .filter(|before| after == Some(*before))
                .map(|stamp| (path, stamp))
        };
        let (content, mark) = match (known.path.clone(), known.content.clone(), sent) {
            // The fingerprint after is the one the file had when its last byte was read.
            (Some(path), _, Some(sent)) => match lock_plain(&sent).take() {
                Some((content, after)) => (content, mark(path, after)),
                None => return Ok(file),
            },
            (Some(path), Some(content), None) => {
                let after = tokio::fs::metadata(&path)
                    .await
                    .ok()
                    .and_then(|m| Stamp::of(&m));
                match mark(path, after) {
                    Some(mark) => (content, Some(mark)),
                    None => return Ok(file),
                }
            }
            // Bytes in memory cannot change.
            (None, Some(content), _) => (content, None),
            (_, None, _) => return Ok(file),
        };
        let identity = identity(content);
        cache.record(
            CachedUpload {
                content: identity.content,
                content_type: identity.content_type,
                model: model.to_owned(),
                account: identity.account,
                url: file.url.clone(),
                size,
                uploaded_at_ms: unix_ms(file.uploaded_at),
                expires_at_ms: unix_ms(file.expires_at),
                source: source_path,
            },
            mark,
        );
        cache.write_if_due().await;
        Ok(file)
    }
}

/// The uploads of [`Client::upload_many`](crate::Client::upload_many), started when it is
/// first polled or awaited.
///
/// Awaited, it is every outcome at once, one per source in input order (a failure loses none
/// of the others). As a [`Stream`] it yields the same outcomes in the same order, each as soon
/// as it and those before it are done: only outcomes that finished ahead of an earlier file are
/// held, so whoever prints them as they come has printed every upload that landed up to then.
///
/// [`UploadBatch::stop_handle`] stops the batch from starting more uploads, for an interrupted
/// batch: the uploads in flight end as usual (and are cached), the stream yields their outcomes
/// and ends. The uploads started are always the first ones, so the outcomes are those of the
/// first sources, and the sources after them were not attempted. Dropping the batch aborts the
/// uploads in flight (an object may still land, unreported).
#[must_use = "a batch uploads nothing until it is awaited or polled"]
pub struct UploadBatch<'a> {
    uploads: Pin<Box<dyn Stream<Item = (usize, Result<UploadedFile>)> + Send + 'a>>,
    /// Outcomes that ended before an earlier file's.
    held: BTreeMap<usize, Result<UploadedFile>>,
    /// The position of the next outcome to yield.
    next: usize,
    ended: bool,
    stop: StopUploads,
}

/// Stops an [`UploadBatch`] from starting more uploads; those in flight end as usual. Clones
/// stop the same batch; it can be moved to another task or a signal handler.
#[derive(Clone, Debug, Default)]
pub struct StopUploads(Arc<AtomicBool>);

impl StopUploads {
    /// No upload of the batch starts after this call.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`StopUploads::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl<'a> UploadBatch<'a> {
    pub(crate) fn new(uploader: Uploader<'a>, model: &str, sources: Vec<UploadSource>) -> Self {
        let stop = StopUploads::default();
        Self {
            uploads: Box::pin(uploader.upload_many(model, sources, stop.clone())),
            held: BTreeMap::new(),
            next: 0,
            ended: false,
            stop,
        }
    }

    /// What stops this batch from starting more uploads.
    pub fn stop_handle(&self) -> StopUploads {
        self.stop.clone()
    }
}

impl std::fmt::Debug for UploadBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadBatch")
            .field("yielded", &self.next)
            .field("held", &self.held.len())
            .field("stopped", &self.stop.is_stopped())
            .finish_non_exhaustive()
    }
}

impl Stream for UploadBatch<'_> {
    type Item = Result<UploadedFile>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(outcome) = this.held.remove(&this.next) {
                this.next += 1;
                return Poll::Ready(Some(outcome));
            }
            if this.ended {
                // Every started upload yields an outcome and they are a prefix of the sources,
                // so nothing is left here; what is, goes out in order rather than lost.
                return Poll::Ready(this.held.pop_first().map(|(_, outcome)| outcome));
            }
            match this.uploads.as_mut().poll_next(cx) {
                Poll::Ready(Some((index, outcome))) => {
                    this.held.insert(index, outcome);
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<'a> IntoFuture for UploadBatch<'a> {
    type Output = Vec<Result<UploadedFile>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.collect())
    }
}

/// Files looked at in one trip off the runtime, when a batch starts.
const LOOK_GROUP: usize = 256;

/// A file made absolute, and its fingerprint when settled; `None` when it cannot be.
pub(super) type Looked = Option<(PathBuf, Option<Stamp>)>;

/// What a batch learnt of a file before its upload starts (nothing, for a single upload).
#[derive(Default)]
pub(super) struct Prior {
    /// Whether it can hit, decided for the whole batch at its start.
    may_hit: Option<bool>,
    /// The file looked at.
    look: Option<Looked>,
}

/// A file made absolute and fingerprinted, the fingerprint only when settled. Blocking.
fn look(path: &Path) -> Looked {
    let absolute = std::fs::canonicalize(path).ok()?;
    let taken = SystemTime::now();
    let meta = std::fs::metadata(&absolute).ok()?;
    Some((absolute, Stamp::of(&meta).filter(|s| s.settled(taken))))
}

/// What the cache needs to know of a source before uploading it.
pub(super) struct Known {
    /// The content digest, when known before the upload (bytes, a trusted fingerprint, or
    /// a file read ahead because a hit is possible).
    pub(super) content: Option<String>,
    /// The file (absolute), for a file.
    pub(super) path: Option<PathBuf>,
    /// Its fingerprint before anything was read, when settled enough to stand for the content.
    pub(super) mark: Option<Stamp>,
    /// Whether the digest came from that fingerprint (the file was not read).
    pub(super) from_mark: bool,
}

/// A source's content digest: from a trusted fingerprint without reading the file, or by
/// reading it. `None` for a reader (it cannot be read twice).
///
/// Without `may_hit` a file is not read: its digest is left unknown (the upload hashes what it
/// sends), only its path and fingerprint taken.
pub(super) async fn identify(
    cache: &UploadCache,
    source: &UploadSource,
    may_hit: bool,
    looked: Option<Looked>,
) -> Result<Option<Known>> {
    match &source.kind {
        SourceKind::Reader { .. } => Ok(None),
        SourceKind::Bytes(bytes) => Ok(Some(Known {
            content: Some(crate::cache::digest_bytes(bytes)),
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
            // (the upload reports what is wrong with it).
            let looked = match looked {
                Some(looked) => looked,
                None => {
                    let path = path.clone();
                    tokio::task::spawn_blocking(move || look(&path))
                        .await
                        .map_err(|e| io(std::io::Error::other(e)))?
                }
            };
            let Some((absolute, stamp)) = looked else {
                return Ok(None);
            };
            if !may_hit {
                return Ok(Some(Known {
                    content: None,
                    path: Some(absolute),
                    mark: stamp,
                    from_mark: false,
                }));
            }
            if let Some(content) = stamp.and_then(|s| cache.known_content(&absolute, &s)) {
                return Ok(Some(Known {
                    content: Some(content),
                    path: Some(absolute),
                    mark: stamp,
                    from_mark: true,
                }));
            }
            let read = absolute.clone();
            #[cfg(feature = "test-hooks")]
            crate::cache::note_hashed_ahead(&absolute);
            let content = tokio::task::spawn_blocking(move || crate::cache::digest_file(&read))
                .await
                .map_err(|e| io(std::io::Error::other(e)))?
                .map_err(io)?;
            Ok(Some(Known {
                content: Some(content),
                path: Some(absolute),
                mark: stamp,
                from_mark: false,
            }))
        }
    }
}

/// An earlier upload, as the upload it saves.
pub(crate) fn from_cache(entry: CachedUpload, model: &str) -> UploadedFile {
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
