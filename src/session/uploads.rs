//! The upload state a client keeps between calls: settings, one credential slot per model
//! (the single flight), the credential rate limiter, and the credentials themselves.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cache::UploadCache;
use crate::naming::{safe_name, split_ext};
use crate::retry::{RateLimiter, RetryPolicy};
use crate::{Error, Secret};

/// Settings of the upload path, from [`Config`](crate::Config).
#[derive(Clone)]
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
    /// Who is told what the uploads do ([`crate::Config::on_upload`]).
    pub observer: Option<crate::Callback<crate::UploadEvent>>,
    /// Where every process of the account shares the credential budget, if anywhere.
    pub budget_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for UploadSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadSettings")
            .field("retry", &self.retry)
            .field("concurrency", &self.concurrency)
            .field("credential_rate", &self.credential_rate)
            .field("credential_margin", &self.credential_margin)
            .field("cache", &self.cache.is_some())
            .field("observer", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

/// The client's upload state: a credential slot per model, and the rate limiter.
#[derive(Debug)]
pub(crate) struct Uploads {
    pub(crate) settings: UploadSettings,
    pub(crate) slots: Mutex<std::collections::HashMap<String, Slot>>,
    pub(crate) limiter: RateLimiter,
}

impl Uploads {
    pub(crate) fn new(settings: UploadSettings) -> Self {
        Self {
            limiter: match &settings.budget_dir {
                Some(dir) => RateLimiter::new(settings.credential_rate).shared_in(
                    dir.clone(),
                    "credentials",
                    settings.account.clone(),
                ),
                None => RateLimiter::new(settings.credential_rate),
            },
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

    pub(crate) fn slot(&self, model: &str) -> Slot {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(model.to_owned())
            .or_default()
            .clone()
    }
}

/// A credential, ready for form POSTs.
pub(crate) struct Credential {
    pub(crate) policy: Secret,
    pub(crate) signature: Secret,
    pub(crate) access_key_id: Secret,
    pub(crate) upload_dir: String,
    pub(crate) upload_host: reqwest::Url,
    pub(crate) acl: String,
    pub(crate) forbid_overwrite: String,
    pub(crate) max_file_size: u64,
    pub(crate) usable_until: Instant,
    pub(crate) expires: Instant,
    /// Names already given out under `upload_dir`, so that no two uploads share a key.
    pub(crate) names: Mutex<HashSet<String>>,
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
    pub(crate) fn usable(&self) -> bool {
        Instant::now() < self.usable_until
    }

    /// Whether OSS should still accept it (its expiry, without the margin).
    pub(crate) fn valid_at_oss(&self) -> bool {
        Instant::now() < self.expires
    }

    /// A key under `upload_dir` for `name`, distinct from every key handed out before.
    pub(crate) fn claim_key(&self, name: &str) -> String {
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

/// The credential of one model. The async lock is held while a new one is fetched, so that
/// concurrent uploads wait for that one request instead of each making their own; and when
/// that fetch fails, the uploads that were waiting for it get its error instead of each
/// fetching (and retrying) again.
pub(crate) type Slot = Arc<SlotInner>;

#[derive(Debug, Default)]
pub(crate) struct SlotInner {
    /// Fetches started so far (the number of the last one).
    pub(crate) fetches: AtomicU64,
    /// The number of the last fetch that ended; read without the lock by an upload about to
    /// wait, so that it knows which failures ended while it waited.
    pub(crate) ended: AtomicU64,
    pub(crate) state: tokio::sync::Mutex<SlotState>,
}

#[derive(Debug, Default)]
pub(crate) struct SlotState {
    pub(crate) credential: Option<Arc<Credential>>,
    /// The number of the last fetch that failed, and its error where it can be repeated.
    pub(crate) failed: Option<(u64, Error)>,
}
