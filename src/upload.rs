//! Uploading local files to DashScope's temporary storage and getting their `oss://` URLs.
//!
//! One upload is: a credential for the model (cached and shared until shortly before it
//! expires), then a multipart form POST to the credential's `upload_host` with the fields in the
//! documented order and `file` last. The body is streamed from the source with its length
//! computed up front, so a file of any size travels in constant memory.
//!
//! # Retries, and an object that landed although its answer was lost
//!
//! Throttling (429), server errors (5xx), timeouts and broken connections are retried with
//! backoff, an expired credential is replaced, and the form is rebuilt from the source each time.
//! Every upload writes to a key no other upload of this client uses (see [`UploadSource`]); a
//! retry after an ambiguous failure (the body may have been received) reuses the same key with
//! the same credential. If OSS then answers 409 `FileAlreadyExists`, the earlier attempt did
//! land: PostObject stores an object whole or not at all, and nobody else writes that key, so
//! the upload is reported as done. If the credential had to be replaced in between, the retry
//! goes to a new key and only the new object is reported. So a success is reported only for an
//! object that OSS confirmed, and a failure only after the last attempt failed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use progenitor_client::ClientInfo;
use tokio::io::AsyncReadExt;
use tracing::Instrument;

use crate::api::{self, types};
use crate::cache::{CachedUpload, Identity, Stamp, UploadCache, Verdict};
use crate::error::{ERROR_BODY_LIMIT, Service, from_response};
use crate::retry::{Class, RateLimiter, RetryPolicy, classify};
use crate::{Error, Result, Secret};

pub use crate::wire::OBJECT_LIFETIME;

/// The chunk size of file reads.
const CHUNK: usize = 256 * 1024;

/// What to upload.
pub struct UploadSource {
    name: String,
    kind: SourceKind,
}

enum SourceKind {
    Path(PathBuf),
    Bytes(Bytes),
    Reader {
        len: u64,
        open: Arc<dyn Fn() -> ReaderFuture + Send + Sync>,
    },
}

type BoxReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type ReaderFuture =
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

    fn path_buf(&self) -> Option<PathBuf> {
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
                let io = |source| Error::Io {
                    path: Some(path.clone()),
                    source,
                };
                let meta = tokio::fs::metadata(path).await.map_err(io)?;
                if !meta.is_file() {
                    return Err(Error::NotAFile { path: path.clone() });
                }
                // Opening proves it is readable now, not only that it exists.
                drop(tokio::fs::File::open(path).await.map_err(io)?);
                Ok(meta.len())
            }
        }
    }

    async fn open(&self) -> Result<BoxReader> {
        match &self.kind {
            SourceKind::Bytes(b) => Ok(Box::new(std::io::Cursor::new(b.clone()))),
            SourceKind::Path(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|source| Error::Io {
                        path: Some(path.clone()),
                        source,
                    })?;
                Ok(Box::new(file))
            }
            SourceKind::Reader { open, .. } => open()
                .await
                .map_err(|source| Error::Io { path: None, source }),
        }
    }
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

/// A file in the temporary storage.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadedFile {
    /// `oss://` + key: what a model call takes.
    pub url: String,
    /// The object key, `upload_dir/<name>`.
    pub key: String,
    /// The model it was uploaded for; only that model can read it.
    pub model: String,
    /// Its size in bytes.
    pub size: u64,
    /// When the POST that stored it was sent: no later than the storage's own upload time, so
    /// that `expires_at` is never later than the object's real expiry.
    pub uploaded_at: SystemTime,
    /// When it stops resolving: 48 hours after `uploaded_at` (a few moments early, never late).
    pub expires_at: SystemTime,
    /// OSS's request id of the upload that stored it.
    pub request_id: Option<String>,
    /// Form POSTs made (1 without retries; 0 when it came from the cache).
    pub attempts: u32,
    /// Whether the URL came from the upload cache (nothing was sent): see `Config::upload_cache`.
    pub from_cache: bool,
}

/// Progress of a batch, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Which source, by its position in the batch.
    pub index: usize,
    /// Bytes of this file sent in the current attempt.
    pub file_sent: u64,
    /// The file's size.
    pub file_size: u64,
    /// Bytes sent for the whole batch (a retried file counts its current attempt only).
    pub total_sent: u64,
    /// The size of every file of the batch (those that could be read).
    pub total_size: u64,
}

/// Called from the upload tasks as bytes go out.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// A credential, ready for form POSTs.
struct Credential {
    policy: Secret,
    signature: Secret,
    access_key_id: Secret,
    upload_dir: String,
    upload_host: reqwest::Url,
    acl: String,
    forbid_overwrite: String,
    max_file_size: u64,
    usable_until: Instant,
    expires: Instant,
    /// Names already given out under `upload_dir`, so that no two uploads share a key.
    names: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("upload_dir", &self.upload_dir)
            .field("upload_host", &self.upload_host.as_str())
            .field("max_file_size", &self.max_file_size)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// Whether new uploads may start with it (its expiry less the safety margin).
    fn usable(&self) -> bool {
        Instant::now() < self.usable_until
    }

    /// Whether OSS should still accept it (its expiry, without the margin).
    fn valid_at_oss(&self) -> bool {
        Instant::now() < self.expires
    }

    /// A key under `upload_dir` for `name`, distinct from every key handed out before.
    fn claim_key(&self, name: &str) -> String {
        // Room for the directory, the slash, and a `-N` suffix should the name be taken.
        let safe = safe_name(name, 1023 - self.upload_dir.len().min(900) - 1 - 21);
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let (stem, ext) = split_ext(&safe);
        let mut candidate = safe.clone();
        let mut n = 1u64;
        while !names.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{stem}-{n}{ext}");
        }
        format!("{}/{candidate}", self.upload_dir)
    }
}

/// Settings of the upload path, from [`Config`](crate::Config).
#[derive(Debug, Clone)]
pub(crate) struct UploadSettings {
    pub retry: RetryPolicy,
    pub concurrency: usize,
    pub credential_rate: u32,
    pub credential_margin: Duration,
    pub allow_insecure_http: bool,
    /// Where earlier uploads are remembered, if anywhere.
    pub cache: Option<Arc<UploadCache>>,
    /// The one-way digest of this client's key and base URL: the account part of an upload's
    /// identity in the cache.
    pub account: String,
}

/// The credential of one model. The async lock is held while a new one is fetched, so that
/// concurrent uploads wait for that one request instead of each making their own; and when
/// that fetch fails, the uploads that were waiting for it get its error instead of each
/// fetching (and retrying) again.
type Slot = Arc<SlotInner>;

#[derive(Debug, Default)]
struct SlotInner {
    /// Fetches started so far (the number of the last one).
    fetches: AtomicU64,
    /// The number of the last fetch that ended; read without the lock by an upload about to
    /// wait, so that it knows which failures ended while it waited.
    ended: AtomicU64,
    state: tokio::sync::Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    credential: Option<Arc<Credential>>,
    /// The number of the last fetch that failed, and its error where it can be repeated.
    failed: Option<(u64, Error)>,
}

/// The client's upload state: a credential slot per model, and the rate limiter.
#[derive(Debug)]
pub(crate) struct Uploads {
    settings: UploadSettings,
    slots: Mutex<std::collections::HashMap<String, Slot>>,
    limiter: RateLimiter,
}

impl Uploads {
    pub(crate) fn new(settings: UploadSettings) -> Self {
        Self {
            limiter: RateLimiter::new(settings.credential_rate),
            settings,
            slots: Mutex::default(),
        }
    }

    pub(crate) fn cache(&self) -> Option<&UploadCache> {
        self.settings.cache.as_deref()
    }

    pub(crate) fn account(&self) -> &str {
        &self.settings.account
    }

    fn slot(&self, model: &str) -> Slot {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(model.to_owned())
            .or_default()
            .clone()
    }
}

/// The upload operations of one client: its generated API (for credentials, through the one
/// execution path) and its upload state.
pub(crate) struct Uploader<'a> {
    api: &'a api::Client,
}

impl<'a> Uploader<'a> {
    pub(crate) fn new(api: &'a api::Client) -> Self {
        Self { api }
    }

    fn uploads(&self) -> &'a Uploads {
        &self.api.inner().uploads
    }

    fn http(&self) -> &'a reqwest::Client {
        self.api.client()
    }

    /// An upload credential for `model`, through the one execution path (which retries it).
    pub(crate) async fn policy(&self, model: &str) -> Result<types::UploadPolicyResponse> {
        if model.trim().is_empty() {
            return Err(Error::InvalidRequest("the model name is empty".to_owned()));
        }
        let call = self
            .api
            .get_upload_policy()
            .action(types::UploadAction::GetPolicy)
            .model(model)
            .send();
        // A credential body holds the policy, its signature and the access key id: if it cannot
        // be decoded, say why but never quote it.
        crate::transport::run(&self.api.inner().key, call)
            .await
            .map_err(|e| match e {
                Error::Decode(d) => Error::decode(
                    d.status(),
                    d.reason(),
                    b"[withheld: a credential]",
                    d.request_id().map(str::to_owned),
                ),
                other => other,
            })
    }

    /// Uploads one file.
    pub(crate) async fn upload(&self, model: &str, source: UploadSource) -> Result<UploadedFile> {
        let size = source.size().await?;
        self.upload_checked(model, &source, size, 0, None).await
    }

    /// Uploads many files, a few at a time; one outcome per source, in input order.
    pub(crate) async fn upload_many(
        &self,
        model: &str,
        sources: Vec<UploadSource>,
        progress: Option<ProgressFn>,
    ) -> Vec<Result<UploadedFile>> {
        let tally = Arc::new(Tally::new(sources.len(), progress));
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

    async fn upload_checked(
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

    /// Stores a source in the storage: credential, form POST, retries. With `hash`, the
    /// content's SHA-256 as sent by the POST that stored it is left there.
    async fn store(
        &self,
        model: &str,
        source: &UploadSource,
        size: u64,
        index: usize,
        tally: Option<Arc<Tally>>,
        hash: Option<Sent>,
    ) -> Result<UploadedFile> {
        let settings = &self.uploads().settings;
        let span = tracing::info_span!(
            "dashscope.upload",
            model,
            size,
            key = tracing::field::Empty,
            request_id = tracing::field::Empty
        );
        async move {
            let mut attempts = 0u32;
            // Set after an attempt whose body may have arrived: the next one reuses its key.
            let mut pending: Option<(Arc<Credential>, String)> = None;
            // Set when the retry budget ran out on such an attempt: one more POST of the same
            // key only to learn whether it landed (409), so that a success is not reported as
            // a failure. It is not a retry of a refused upload.
            let mut verifying = false;
            // When the first POST of the current key was sent: the object, if stored, was
            // stored after it, so an expiry counted from here is never later than the real one.
            let mut first_sent = SystemTime::now();
            loop {
                attempts += 1;
                let mut same_key_again = false;
                let (credential, key) = match pending.take() {
                    // The margin is for starting new uploads; a same-key retry may use the
                    // credential until OSS itself says it expired.
                    Some((c, key)) if c.valid_at_oss() => {
                        same_key_again = true;
                        (c, key)
                    }
                    _ => {
                        let c = self.credential(model).await?;
                        if size > c.max_file_size {
                            return Err(Error::FileTooLarge {
                                name: source.name.clone(),
                                path: source.path_buf(),
                                size,
                                limit: c.max_file_size,
                            });
                        }
                        let key = c.claim_key(&source.name);
                        first_sent = SystemTime::now();
                        (c, key)
                    }
                };
                tracing::Span::current().record("key", key.as_str());
                let hasher = hash.as_ref().map(|_| Arc::new(Mutex::new(Some(
                    ring::digest::Context::new(&ring::digest::SHA256),
                ))));
                let outcome = self
                    .post_form(
                        &credential,
                        &key,
                        source,
                        size,
                        Feed {
                            index,
                            tally: tally.as_ref(),
                            hasher: hasher.clone(),
                        },
                    )
                    .await;
                if let (Ok(_), Some(out), Some(hasher)) = (&outcome, &hash, hasher)
                    && let Some(context) = lock_plain(&hasher).take()
                {
                    *lock_plain(out) = Some(crate::cache::hex(context.finish().as_ref()));
                }
                let (attempt, error, request_id) = match outcome {
                    Ok(request_id) => (Attempt::Stored, None, request_id),
                    // Our key, written by nobody else: an earlier attempt landed.
                    Err(Error::FileAlreadyExists(e)) if same_key_again => {
                        tracing::info!(request_id = e.request_id(), "an earlier attempt had landed");
                        (Attempt::FoundOurs, None, None)
                    }
                    Err(e) => (Attempt::Failed(classify(&e)), Some(e), None),
                };
                let state = State {
                    attempts,
                    max_attempts: settings.retry.max_attempts,
                    verifying,
                    valid_at_oss: credential.valid_at_oss(),
                };
                match (next_step(state, attempt), error) {
                    (Step::Done, _) => {
                        if let Some(id) = &request_id {
                            tracing::Span::current().record("request_id", id.as_str());
                        }
                        return Ok(done(model, key, size, request_id, attempts, first_sent));
                    }
                    (Step::Verify, _) => {
                        verifying = true;
                        pending = Some((credential, key));
                    }
                    (Step::Refresh, _) => {
                        self.forget_credential(model, &credential).await;
                    }
                    (Step::Retry, Some(e)) => {
                        // Same key again: if the body arrived after all, the retry finds it (409).
                        pending = Some((credential, key));
                        let wait = settings.retry.backoff(attempts, e.retry_after());
                        tracing::warn!(error = %e, attempt = attempts, ?wait, "upload failed, retrying");
                        tokio::time::sleep(wait).await;
                    }
                    (_, Some(e)) => return Err(e),
                    (_, None) => {
                        return Err(Error::InvalidRequest(
                            "upload ended without an outcome".to_owned(),
                        ));
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// A usable credential for `model`: the cached one, or one fetched by the first caller
    /// while the others wait for it (no stampede).
    async fn credential(&self, model: &str) -> Result<Arc<Credential>> {
        let slot = self.uploads().slot(model);
        let waited_from = slot.ended.load(Ordering::Acquire);
        let mut state = slot.state.lock().await;
        if let Some(c) = state.credential.as_ref().filter(|c| c.usable()) {
            return Ok(c.clone());
        }
        // A fetch that ended while this upload waited has failed: its error, not another round
        // of requests (a batch against a failing service fails fast).
        if let Some((fetch, error)) = &state.failed
            && *fetch > waited_from
            && let Some(again) = error.repeat()
        {
            return Err(again);
        }
        let fetch = slot.fetches.fetch_add(1, Ordering::AcqRel) + 1;
        let fetched = self.fetch_credential(model).await;
        slot.ended.store(fetch, Ordering::Release);
        match fetched {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                state.credential = Some(fresh.clone());
                state.failed = None;
                Ok(fresh)
            }
            Err(error) => {
                state.failed = error.repeat().map(|copy| (fetch, copy));
                Err(error)
            }
        }
    }

    async fn forget_credential(&self, model: &str, used: &Arc<Credential>) {
        let slot = self.uploads().slot(model);
        let mut state = slot.state.lock().await;
        if state
            .credential
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, used))
        {
            state.credential = None;
        }
    }

    /// A new credential, within the client's rate limit. The request is retried by the one
    /// execution path, like every other.
    async fn fetch_credential(&self, model: &str) -> Result<Credential> {
        let settings = &self.uploads().settings;
        let span = tracing::info_span!(
            "dashscope.credential",
            model,
            request_id = tracing::field::Empty
        );
        async move {
            self.uploads().limiter.acquire(model).await;
            let obtained = Instant::now();
            let response = self.policy(model).await?;
            tracing::Span::current().record("request_id", response.request_id.as_str());
            credential_from(response.data, obtained, settings)
        }
        .instrument(span)
        .await
    }

    /// One form POST; returns OSS's request id.
    async fn post_form(
        &self,
        credential: &Credential,
        key: &str,
        source: &UploadSource,
        size: u64,
        feed: Feed<'_>,
    ) -> Result<Option<String>> {
        let Feed {
            index,
            tally,
            hasher,
        } = feed;
        let content_type = content_type(&source.name);
        let fields: [(&str, &str); 8] = [
            ("OSSAccessKeyId", credential.access_key_id.expose()),
            ("Signature", credential.signature.expose()),
            ("policy", credential.policy.expose()),
            ("key", key),
            ("x-oss-object-acl", &credential.acl),
            ("x-oss-forbid-overwrite", &credential.forbid_overwrite),
            ("success_action_status", "200"),
            ("x-oss-content-type", content_type),
        ];
        let boundary = boundary();
        let file_name = key.rsplit('/').next().unwrap_or(key);
        let head = form_head(&boundary, &fields, file_name, content_type);
        let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        let length = head.len() as u64 + size + tail.len() as u64;

        let reader = source.open().await?;
        if let Some(t) = tally {
            t.restart(index);
        }
        let body = file_stream(reader, size, index, tally.cloned()).map(move |chunk| {
            if let (Ok(bytes), Some(hasher)) = (&chunk, &hasher)
                && let Some(context) = lock_plain(hasher).as_mut()
            {
                context.update(bytes);
            }
            chunk.map_err(std::io::Error::other)
        });
        let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(head) })
            .chain(body)
            .chain(futures_util::stream::once(async move { Ok(tail) }));
        let response = self
            .http()
            .post(credential.upload_host.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(|e| source_error(e, source))?;
        if response.url() != &credential.upload_host {
            // A caller's own HTTP client may follow redirects; a followed POST is not an upload.
            return Err(Error::decode(
                Some(response.status().as_u16()),
                "the upload was redirected: nothing can be known to have been stored",
                &[],
                None,
            ));
        }
        let status = response.status();
        let headers = response.headers().clone();
        let request_id = headers
            .get("x-oss-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status.is_success() {
            tracing::debug!(status = status.as_u16(), request_id, "uploaded");
            return Ok(request_id);
        }
        let (body, truncated) = crate::transport::read_limited(response, ERROR_BODY_LIMIT)
            .await
            .map_err(Error::from_reqwest)?;
        let error = from_response(
            Service::Oss,
            status.as_u16(),
            &headers,
            &body,
            truncated,
            None,
        );
        tracing::debug!(
            status = status.as_u16(),
            code = error.code(),
            request_id = error.request_id(),
            "upload refused"
        );
        Err(error)
    }
}

/// Who watches the bytes of a POST go out: the batch's progress, and the content's hash.
struct Feed<'a> {
    index: usize,
    tally: Option<&'a Arc<Tally>>,
    hasher: Option<Hasher>,
}

/// Where the SHA-256 of what a POST sent is left (hex), once it stored the object.
type Sent = Arc<Mutex<Option<String>>>;
/// The running SHA-256 of one POST's file bytes.
type Hasher = Arc<Mutex<Option<ring::digest::Context>>>;

fn lock_plain<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What the cache needs to know of a source before uploading it.
struct Known {
    content: String,
    /// The file (absolute), for a file.
    path: Option<PathBuf>,
    /// Its fingerprint before hashing, when settled enough to stand for the content.
    mark: Option<Stamp>,
    /// Whether the digest came from that fingerprint (the file was not read).
    from_mark: bool,
}

/// A source's content digest: from a trusted fingerprint without reading the file, or by
/// reading it. `None` for a reader (it cannot be read twice).
async fn identify(cache: &UploadCache, source: &UploadSource) -> Result<Option<Known>> {
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
fn from_cache(entry: CachedUpload, model: &str) -> UploadedFile {
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

/// What one form POST came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// OSS confirmed the object.
    Stored,
    /// A retry of our own key found it already there (409): an earlier attempt landed.
    FoundOurs,
    /// It failed, as the classifier sees it.
    Failed(Class),
}

/// Where an upload stands after an attempt.
#[derive(Debug, Clone, Copy)]
struct State {
    /// POSTs made so far, this one included.
    attempts: u32,
    max_attempts: u32,
    /// This POST only asked whether an earlier one landed.
    verifying: bool,
    /// OSS should still accept the credential this POST used.
    valid_at_oss: bool,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Report the object.
    Done,
    /// Report the error.
    Fail,
    /// Back off, then POST again (to the same key while the credential holds).
    Retry,
    /// Drop the credential OSS refused; the next POST gets a new one and a new key.
    Refresh,
    /// The budget is spent but the last POST may have landed: one more POST of the same key,
    /// only to learn whether it did (409), so that a success is not reported as a failure.
    Verify,
}

/// The upload's retry decisions, as a pure function of the attempt and where things stand.
fn next_step(state: State, attempt: Attempt) -> Step {
    let class = match attempt {
        Attempt::Stored | Attempt::FoundOurs => return Step::Done,
        Attempt::Failed(class) => class,
    };
    if state.attempts >= state.max_attempts {
        return if class.may_have_arrived() && !state.verifying && state.valid_at_oss {
            Step::Verify
        } else {
            Step::Fail
        };
    }
    match class {
        Class::StaleCredential => Step::Refresh,
        Class::Permanent => Step::Fail,
        Class::Throttled | Class::Server | Class::Transient => Step::Retry,
    }
}

/// A transport error, unless it was the source that failed to read.
fn source_error(e: reqwest::Error, source: &UploadSource) -> Error {
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
struct SourceError(String);

fn done(
    model: &str,
    key: String,
    size: u64,
    request_id: Option<String>,
    attempts: u32,
    uploaded_at: SystemTime,
) -> UploadedFile {
    UploadedFile {
        url: format!("oss://{key}"),
        key,
        model: model.to_owned(),
        size,
        uploaded_at,
        expires_at: uploaded_at + OBJECT_LIFETIME,
        request_id,
        attempts,
        from_cache: false,
    }
}

/// Turns a credential answer into a [`Credential`], checking what a form POST will need.
fn credential_from(
    data: crate::api::types::UploadPolicy,
    obtained: Instant,
    settings: &UploadSettings,
) -> Result<Credential> {
    let bad = |reason: String| Error::decode(Some(200), reason, &[], None);
    let upload_host = reqwest::Url::parse(data.upload_host.trim()).map_err(|e| {
        bad(format!(
            "credential upload_host {:?} is not a URL: {e}",
            data.upload_host
        ))
    })?;
    match upload_host.scheme() {
        "https" => {}
        "http" if settings.allow_insecure_http || crate::config::is_loopback(&upload_host) => {}
        other => {
            return Err(bad(format!(
                "credential upload_host has scheme {other:?}; the policy and signature must not travel in clear text"
            )));
        }
    }
    if data.upload_dir.is_empty() || data.upload_dir.len() > 900 || data.upload_dir.starts_with('/')
    {
        return Err(bad(format!(
            "credential upload_dir {:?} cannot hold keys",
            data.upload_dir
        )));
    }
    let max_mb = data
        .max_file_size_mb
        .as_u64()
        .ok_or_else(|| bad("credential max_file_size_mb is not a number".to_owned()))?;
    let lifetime = data
        .expire_in_seconds
        .as_u64()
        .map(Duration::from_secs)
        .ok_or_else(|| bad("credential expire_in_seconds is not a number".to_owned()))?;
    // The policy's own expiration may come sooner than expire_in_seconds (or later: protocol.md
    // saw 23 minutes against 300 s); plan with the earlier of the two.
    let lifetime = match policy_expiration(data.policy.expose()) {
        Some(expires) => lifetime.min(
            expires
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
        ),
        None => lifetime,
    };
    // A lifetime beyond a day is not believable (a broken or hostile answer), and would
    // overflow `Instant` arithmetic if huge.
    let lifetime = lifetime.min(Duration::from_secs(24 * 3600));
    let margin = settings.credential_margin.min(lifetime / 5);
    Ok(Credential {
        policy: data.policy,
        signature: data.signature,
        access_key_id: data.oss_access_key_id,
        upload_dir: data.upload_dir.trim_end_matches('/').to_owned(),
        upload_host,
        acl: data.x_oss_object_acl,
        forbid_overwrite: data.x_oss_forbid_overwrite,
        max_file_size: max_mb.saturating_mul(1024 * 1024),
        usable_until: obtained + lifetime.saturating_sub(margin),
        expires: obtained + lifetime,
        names: Mutex::default(),
    })
}

/// [`credential_from`] with default settings, for the fuzz target.
#[cfg(feature = "fuzzing")]
pub(crate) fn check_credential(data: crate::api::types::UploadPolicy) -> Result<()> {
    let settings = UploadSettings {
        retry: RetryPolicy::default(),
        concurrency: 1,
        credential_rate: 100,
        credential_margin: Duration::from_secs(30),
        allow_insecure_http: false,
        cache: None,
        account: String::new(),
    };
    let credential = credential_from(data, Instant::now(), &settings)?;
    let _ = credential.claim_key("fuzz.png");
    Ok(())
}

/// The `expiration` of a base64 policy document, if it can be read.
fn policy_expiration(policy: &str) -> Option<SystemTime> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(policy.trim())
        .ok()?;
    let document: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    crate::timefmt::parse_iso8601(document.get("expiration")?.as_str()?)
}

/// A random-enough multipart boundary (it only has to be absent from the form's text fields:
/// the file part is delimited by length on our side and by this string on OSS's).
fn boundary() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("dashscope-oss-{t:016x}{n:08x}")
}

fn form_head(
    boundary: &str,
    fields: &[(&str, &str)],
    file_name: &str,
    content_type: &str,
) -> Bytes {
    let mut head = String::with_capacity(4096);
    for (name, value) in fields {
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    head.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {content_type}\r\n\r\n",
        file_name.replace(['"', '\r', '\n'], "_")
    ));
    Bytes::from(head)
}

/// The file's bytes, exactly `size` of them, read in chunks as the connection takes them.
fn file_stream(
    reader: BoxReader,
    size: u64,
    index: usize,
    progress: Option<Arc<Tally>>,
) -> impl futures_util::Stream<Item = std::result::Result<Bytes, SourceError>> + Send {
    futures_util::stream::try_unfold(
        (reader, 0u64, progress),
        move |(mut reader, sent, progress)| async move {
            if sent == size {
                // A source longer than announced would corrupt the form: refuse it.
                let mut probe = [0u8; 1];
                return match reader.read(&mut probe).await {
                    Ok(0) => Ok(None),
                    Ok(_) => Err(SourceError(format!(
                        "the source is longer than its {size} bytes"
                    ))),
                    Err(e) => Err(SourceError(e.to_string())),
                };
            }
            let want = CHUNK.min((size - sent) as usize);
            let mut buf = vec![0u8; want];
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| SourceError(e.to_string()))?;
            if n == 0 {
                return Err(SourceError(format!(
                    "the source ended after {sent} of {size} bytes"
                )));
            }
            buf.truncate(n);
            let sent = sent + n as u64;
            if let Some(p) = &progress {
                p.report(index, sent, size);
            }
            Ok(Some((Bytes::from(buf), (reader, sent, progress))))
        },
    )
}

/// Bytes sent per file of a batch, for [`Progress`].
struct Tally {
    sent: Vec<AtomicU64>,
    total_size: AtomicU64,
    callback: Option<ProgressFn>,
}

impl Tally {
    fn new(files: usize, callback: Option<ProgressFn>) -> Self {
        Self {
            sent: (0..files).map(|_| AtomicU64::new(0)).collect(),
            total_size: AtomicU64::new(0),
            callback,
        }
    }

    fn add_size(&self, size: u64) {
        self.total_size.fetch_add(size, Ordering::Relaxed);
    }

    fn restart(&self, index: usize) {
        if let Some(s) = self.sent.get(index) {
            s.store(0, Ordering::Relaxed);
        }
    }

    fn report(&self, index: usize, file_sent: u64, file_size: u64) {
        if let Some(s) = self.sent.get(index) {
            s.store(file_sent, Ordering::Relaxed);
        }
        if let Some(callback) = &self.callback {
            let total_sent = self.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
            callback(Progress {
                index,
                file_sent,
                file_size,
                total_sent,
                total_size: self.total_size.load(Ordering::Relaxed),
            });
        }
    }
}

/// An object name made safe: what follows the last `/` only; letters, digits, `.`, `-`, `_`
/// kept (any script), everything else (a backslash too: on Unix it is part of a file's name)
/// `_`; no leading dots; the extension kept; at most `max_bytes` bytes.
pub(crate) fn safe_name(name: &str, max_bytes: usize) -> String {
    let last = name.rsplit('/').next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_owned();
    let (stem, ext) = match split_ext(&cleaned) {
        (stem, ext) if ext.len() <= 16 => (stem, ext),
        _ => (cleaned.as_str(), ""),
    };
    let stem = if stem.is_empty() { "file" } else { stem };
    let room = max_bytes.saturating_sub(ext.len()).max(1);
    let mut cut = stem.len().min(room);
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ext}", &stem[..cut])
}

/// (`cat`, `.png`) for `cat.png`; (`archive.tar`, `.gz`) for `archive.tar.gz`; no extension → "".
fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// Whether a local file of this name and size is sent inline as a `data:` URI by a client with
/// [`Config::inline_below`](crate::Config::inline_below) set to `below`: an image or audio file
/// smaller than `below` whose encoding stays within the service's 10 MiB per `data:` URI.
pub fn inlines(name: &str, size: u64, below: u64) -> bool {
    let mime = content_type(name);
    let encoded = "data:;base64,".len() as u64 + mime.len() as u64 + size.div_ceil(3) * 4;
    size < below
        && matches!(mime.split('/').next(), Some("image" | "audio"))
        && encoded <= crate::wire::DATA_URI_LIMIT as u64
}

/// The MIME type for a file name's extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = split_ext(name)
        .1
        .trim_start_matches('.')
        .to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" | "jpe" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "heic" => "image/heic",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" | "oga" => "audio/ogg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "amr" => "audio/amr",
        "opus" => "audio/opus",
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "avi" => "video/x-msvideo",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        "flv" => "video/x-flv",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe_and_keep_their_extension() {
        for (raw, want) in [
            ("cat.png", "cat.png"),
            ("my cat (1).PNG", "my_cat__1_.PNG"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\me\\photo.jpg", "C__Users_me_photo.jpg"),
            ("😺.png", "_.png"),
            ("图片.jpg", "图片.jpg"),
            (".hidden", "hidden"),
            ("..", "file"),
            ("", "file"),
            (
                "a.verylongextensionthatisnotone",
                "a.verylongextensionthatisnotone",
            ),
        ] {
            assert_eq!(safe_name(raw, 200), want, "{raw:?}");
        }
        let long = format!("{}.png", "é".repeat(600));
        let safe = safe_name(&long, 100);
        assert!(safe.len() <= 100 && safe.ends_with(".png"), "{safe}");
    }

    fn settings() -> UploadSettings {
        UploadSettings {
            retry: RetryPolicy::default(),
            concurrency: 1,
            credential_rate: 100,
            credential_margin: Duration::from_secs(30),
            allow_insecure_http: false,
            cache: None,
            account: String::new(),
        }
    }

    fn policy_data(
        expire_in_seconds: serde_json::Value,
        policy: &str,
    ) -> crate::api::types::UploadPolicy {
        serde_json::from_value(serde_json::json!({
            "policy": policy,
            "signature": "c2ln",
            "upload_dir": "dashscope-instant/abc/2026-01-01/r",
            "upload_host": "https://example.invalid",
            "expire_in_seconds": expire_in_seconds,
            "max_file_size_mb": 100,
            "capacity_limit_mb": 999,
            "oss_access_key_id": "LTAI",
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true"
        }))
        .expect("a credential")
    }

    /// A lifetime of u64::MAX seconds and a policy that cannot be read: the plan is capped at a
    /// day, and reuse stops a margin before that.
    #[test]
    fn an_absurd_lifetime_is_capped_at_a_day() {
        let now = Instant::now();
        let unreadable = base64::engine::general_purpose::STANDARD.encode("not json");
        let data = policy_data(serde_json::json!("18446744073709551615"), &unreadable);
        let c = credential_from(data, now, &settings()).expect("a credential");
        assert_eq!(c.expires, now + Duration::from_secs(24 * 3600));
        assert_eq!(c.usable_until, c.expires - Duration::from_secs(30));
        // A believable lifetime is kept as given.
        let data = policy_data(serde_json::json!(300), &unreadable);
        let c = credential_from(data, now, &settings()).expect("a credential");
        assert_eq!(c.expires, now + Duration::from_secs(300));
    }

    #[test]
    fn the_retry_decisions_of_an_upload() {
        let at = |attempts: u32, verifying: bool, valid_at_oss: bool| State {
            attempts,
            max_attempts: 3,
            verifying,
            valid_at_oss,
        };
        let failed = Attempt::Failed;
        // (state, outcome) -> step
        let table = [
            (at(1, false, true), Attempt::Stored, Step::Done),
            (at(2, false, true), Attempt::FoundOurs, Step::Done),
            (at(3, true, true), Attempt::FoundOurs, Step::Done),
            (at(1, false, true), failed(Class::Throttled), Step::Retry),
            (at(1, false, true), failed(Class::Server), Step::Retry),
            (at(2, false, false), failed(Class::Transient), Step::Retry),
            (
                at(1, false, true),
                failed(Class::StaleCredential),
                Step::Refresh,
            ),
            (at(1, false, true), failed(Class::Permanent), Step::Fail),
            // The budget is spent: verify only what may have landed, once, while OSS would
            // still take the credential.
            (at(3, false, true), failed(Class::Transient), Step::Verify),
            (at(3, false, true), failed(Class::Server), Step::Verify),
            (at(3, false, false), failed(Class::Transient), Step::Fail),
            (at(3, false, true), failed(Class::Throttled), Step::Fail),
            (
                at(3, false, true),
                failed(Class::StaleCredential),
                Step::Fail,
            ),
            (at(4, true, true), failed(Class::Transient), Step::Fail),
        ];
        for (state, attempt, want) in table {
            assert_eq!(next_step(state, attempt), want, "{state:?} {attempt:?}");
        }
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("a.PNG"), "image/png");
        assert_eq!(content_type("clip.mp4"), "video/mp4");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
