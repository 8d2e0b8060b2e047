//! What the emulator remembers: its clock, credentials, objects, rate windows, faults, counters.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::{EmulatorConfig, MediaKind, StartError, Storage};

/// Locks a mutex, carrying on past poisoning: a panicked handler must not take the emulator down.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Real time plus an offset that tests move forward.
#[derive(Default)]
pub(crate) struct Clock {
    offset_ms: AtomicU64,
}

impl Clock {
    /// Real time plus the offset. A clock moved absurdly far (the control endpoint takes any
    /// number) stops at about 34,000 years from 1970 instead of overflowing.
    pub(crate) fn now(&self) -> SystemTime {
        let offset = Duration::from_millis(self.offset_ms.load(Ordering::Relaxed));
        SystemTime::now()
            .checked_add(offset)
            .unwrap_or_else(|| std::time::UNIX_EPOCH + Duration::from_secs(1 << 40))
    }

    pub(crate) fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |at| {
                Some(at.saturating_add(ms))
            });
    }
}

/// A kind of request a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// The next credential requests answer 500 `InternalError`.
    PolicyError,
    /// The next credential requests answer 429 `Throttling.RateQuota`.
    PolicyThrottle,
    /// The next OSS uploads answer 500 `InternalError` (after reading the body).
    UploadError,
    /// The next OSS uploads lose their connection half-way through the body, with no answer.
    UploadDrop,
    /// The next OSS uploads are stored, then their connection closes before the answer: the
    /// object landed but the client cannot know.
    UploadLoseAnswer,
    /// The next model calls answer 500.
    ChatError,
    /// The next model calls answer 429 `Throttling`.
    ChatThrottle,
    /// The next streamed model calls send an `event:error` after their first event.
    StreamError,
    /// The next task queries answer 500 `InternalError`.
    TaskQueryError,
    /// The next task queries lose their connection with no answer.
    TaskQueryDrop,
}

impl FaultKind {
    /// The name used by the control endpoint (`POST /emulator/v1/faults`).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::PolicyError => "policy_error",
            FaultKind::PolicyThrottle => "policy_throttle",
            FaultKind::UploadError => "upload_error",
            FaultKind::UploadDrop => "upload_drop",
            FaultKind::UploadLoseAnswer => "upload_lose_answer",
            FaultKind::ChatError => "chat_error",
            FaultKind::ChatThrottle => "chat_throttle",
            FaultKind::StreamError => "stream_error",
            FaultKind::TaskQueryError => "task_query_error",
            FaultKind::TaskQueryDrop => "task_query_drop",
        }
    }

    /// Every kind.
    pub const ALL: [FaultKind; 10] = [
        FaultKind::PolicyError,
        FaultKind::PolicyThrottle,
        FaultKind::UploadError,
        FaultKind::UploadDrop,
        FaultKind::UploadLoseAnswer,
        FaultKind::ChatError,
        FaultKind::ChatThrottle,
        FaultKind::StreamError,
        FaultKind::TaskQueryError,
        FaultKind::TaskQueryDrop,
    ];
}

#[derive(Default)]
pub(crate) struct Faults {
    pending: Mutex<HashMap<FaultKind, u32>>,
    /// Per kind, the share of requests that fail, in millionths, drawn from `draws`.
    rates: Mutex<HashMap<FaultKind, u32>>,
    draws: AtomicU64,
    delay_ms: AtomicU64,
}

impl Faults {
    pub(crate) fn inject(&self, kind: FaultKind, count: u32) {
        lock(&self.pending).insert(kind, count);
    }

    pub(crate) fn set_rate(&self, kind: FaultKind, per_million: u32) {
        lock(&self.rates).insert(kind, per_million.min(1_000_000));
    }

    /// Takes one pending fault of this kind, if any; otherwise fails at the kind's rate.
    pub(crate) fn take(&self, kind: FaultKind) -> bool {
        {
            let mut pending = lock(&self.pending);
            if let Some(n) = pending.get_mut(&kind).filter(|n| **n > 0) {
                *n -= 1;
                return true;
            }
        }
        let rate = lock(&self.rates).get(&kind).copied().unwrap_or(0);
        if rate == 0 {
            return false;
        }
        // A fixed sequence (splitmix64 over a counter): the same run of requests meets the
        // same faults, so a failing run can be replayed.
        let draw = mix(self.draws.fetch_add(1, Ordering::Relaxed)) % 1_000_000;
        draw < u64::from(rate)
    }

    pub(crate) fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::Relaxed);
    }

    pub(crate) async fn delay(&self) {
        let ms = self.delay_ms.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

/// Counters of what the emulator has seen (`GET /emulator/v1/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// Credential requests answered 200.
    pub policy_requests: u64,
    /// Credential requests refused with 429 by the per-second limit.
    pub policy_throttled: u64,
    /// Uploads stored.
    pub uploads_ok: u64,
    /// Uploads refused with an OSS error (or dropped by a fault).
    pub uploads_rejected: u64,
    /// File bytes received by OSS, stored or not.
    pub bytes_received: u64,
    /// Model calls (both APIs), whatever their outcome.
    pub chat_requests: u64,
    /// Model calls that carried `X-DashScope-OssResourceResolve: enable`.
    pub chat_requests_with_resolve_header: u64,
    /// Objects stored now (expired ones are forgotten when the clock moves or new ones arrive).
    pub objects: u64,
    /// Credentials kept: those whose policy has not expired, and expired ones until they are
    /// swept (an hour after their expiration; see `objects`).
    pub credentials: u64,
    /// Heap bytes in use by the emulator's process (glibc `mallinfo2`: allocated and not yet
    /// freed, arenas and mmapped blocks together); `None` where that cannot be read. Unlike RSS,
    /// it does not count what the allocator keeps after a free, so a leak shows as steady growth
    /// and fragmentation does not.
    pub heap_bytes: Option<u64>,
    /// Task submits accepted.
    pub tasks_submitted: u64,
    /// Tasks by state now (`PENDING`, `RUNNING`, `SUCCEEDED`, `FAILED`, `CANCELED`, `UNKNOWN`).
    pub tasks: std::collections::BTreeMap<String, u64>,
    /// Task queries, cancels and lists received (refused ones too).
    pub task_queries: u64,
    /// Of those, refused with 429 over the per-second limit.
    pub task_queries_throttled: u64,
    /// The most task queries of one account that arrived within one second (a sliding window).
    pub task_queries_max_per_second: u64,
    /// Event streams whose last event was written.
    pub streams_finished: u64,
    /// Event streams dropped before their last event was written: the client went away.
    pub streams_abandoned: u64,
    /// Answers of the emulator's file host (`Emulator::host_file`, `host_redirect`), 404s
    /// included: what a client fetched to re-host.
    pub files_served: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub policy_requests: AtomicU64,
    pub policy_throttled: AtomicU64,
    pub uploads_ok: AtomicU64,
    pub uploads_rejected: AtomicU64,
    pub bytes_received: AtomicU64,
    pub chat_requests: AtomicU64,
    pub chat_requests_with_resolve_header: AtomicU64,
    /// Shared with each stream's body, which counts itself once its last event is handed on.
    pub streams_finished: std::sync::Arc<AtomicU64>,
    /// Shared with each stream's body, which counts itself if it is dropped unfinished.
    pub streams_abandoned: std::sync::Arc<AtomicU64>,
    pub files_served: AtomicU64,
}

/// What the emulator's file host answers for a name.
#[derive(Clone)]
pub(crate) enum Hosted {
    File(Vec<u8>),
    Redirect(String),
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A credential the emulator issued.
#[derive(Clone)]
pub(crate) struct Credential {
    pub account: usize,
    pub model: String,
    /// When its policy document expires: OSS refuses it from then on, so it can be forgotten.
    pub expires: SystemTime,
}

/// Where an object's bytes are.
pub(crate) enum Body {
    File(PathBuf),
    Memory(Vec<u8>),
}

pub(crate) struct Object {
    pub account: usize,
    pub model: String,
    pub size: u64,
    pub sha256: String,
    pub uploaded_at: SystemTime,
    pub body: Body,
    /// The media type sniffed from the first bytes, and the tokens a model would count for it
    /// (computed at upload so that only a few bytes per object stay in memory).
    pub kind: Option<(MediaKind, &'static str)>,
    pub tokens: u64,
    /// An image's width and height, when its head says (for `image_hw`).
    pub dimensions: Option<(u32, u32)>,
}

pub(crate) struct State {
    pub config: EmulatorConfig,
    pub clock: Clock,
    pub faults: Faults,
    pub counters: Counters,
    pub oss_url: String,
    pub bucket: &'static str,
    pub access_key_id: String,
    pub access_key_secret: Vec<u8>,
    keys: HashMap<String, usize>,
    policy_lifetime_ms: AtomicU64,
    /// `upload_dir` → who it was issued to.
    pub credentials: Mutex<HashMap<String, Credential>>,
    pub objects: Mutex<HashMap<String, Object>>,
    pub tasks: crate::tasks::store::Tasks,
    rate: Mutex<HashMap<(usize, String), VecDeque<std::time::Instant>>>,
    /// (account, date) → bytes uploaded that day.
    capacity: Mutex<HashMap<(usize, String), u64>>,
    storage_dir: Option<PathBuf>,
    remove_storage_dir: bool,
    next_id: AtomicU64,
    seed: u64,
    pub next_part: AtomicU32,
    /// Emulator time before which no sweep of expired state is due.
    next_sweep: Mutex<SystemTime>,
    /// The file host's names (`Emulator::host_file`).
    pub hosted: Mutex<HashMap<String, Hosted>>,
    /// URLs that model calls cannot download (`Emulator::refuse_download`).
    pub refused_downloads: Mutex<std::collections::HashSet<String>>,
}

impl State {
    pub(crate) fn new(config: EmulatorConfig, oss_url: String) -> Result<Self, StartError> {
        if config.accounts.is_empty() {
            return Err(StartError::Config("no account".to_owned()));
        }
        let mut keys = HashMap::new();
        for (i, account) in config.accounts.iter().enumerate() {
            for key in &account.keys {
                if key.is_empty() || keys.insert(key.clone(), i).is_some() {
                    return Err(StartError::Config(format!(
                        "API key of account {:?} is empty or belongs to two accounts",
                        account.name
                    )));
                }
            }
        }
        // The signing secret comes from the OS's random source and never leaves this struct.
        let rng = ring::rand::SystemRandom::new();
        let mut secret = vec![0u8; 32];
        let mut seed_bytes = [0u8; 8];
        ring::rand::SecureRandom::fill(&rng, &mut secret)
            .and_then(|()| ring::rand::SecureRandom::fill(&rng, &mut seed_bytes))
            .map_err(|_| StartError::Config("no random source".to_owned()))?;
        let seed = u64::from_le_bytes(seed_bytes);
        let (storage_dir, remove_storage_dir) = match &config.storage {
            Storage::Memory => (None, false),
            Storage::Dir(dir) => (Some(dir.clone()), false),
            Storage::TempDir => (
                Some(std::env::temp_dir().join(format!("dashscope-emulator-{seed:016x}"))),
                true,
            ),
        };
        if let Some(dir) = &storage_dir {
            std::fs::create_dir_all(dir).map_err(|source| StartError::Storage {
                path: dir.clone(),
                source,
            })?;
        }
        let policy_lifetime_ms = AtomicU64::new(config.policy_lifetime.as_millis() as u64);
        Ok(Self {
            clock: Clock::default(),
            faults: Faults::default(),
            counters: Counters::default(),
            oss_url,
            bucket: "dashscope-file-mgr",
            access_key_id: format!("LTAI5tEmu{:012x}", mix(seed) & 0xffff_ffff_ffff),
            access_key_secret: secret,
            keys,
            policy_lifetime_ms,
            credentials: Mutex::default(),
            objects: Mutex::default(),
            tasks: crate::tasks::store::Tasks::default(),
            rate: Mutex::default(),
            capacity: Mutex::default(),
            storage_dir,
            remove_storage_dir,
            next_id: AtomicU64::new(1),
            seed,
            next_part: AtomicU32::new(0),
            next_sweep: Mutex::new(SystemTime::UNIX_EPOCH),
            hosted: Mutex::default(),
            refused_downloads: Mutex::default(),
            config,
        })
    }

    pub(crate) fn account_of_key(&self, key: &str) -> Option<usize> {
        self.keys.get(key).copied()
    }

    pub(crate) fn account_hash(&self, account: usize) -> String {
        let name = self
            .config
            .accounts
            .get(account)
            .map_or("", |a| a.name.as_str());
        let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
        hex(&digest.as_ref()[..16])
    }

    /// A fresh request id, shaped like DashScope's (8-4-4-4-12 hex).
    pub(crate) fn request_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let a = mix(self.seed ^ n);
        let b = mix(a ^ n.rotate_left(17));
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    pub(crate) fn policy_lifetime(&self) -> Duration {
        Duration::from_millis(self.policy_lifetime_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn set_policy_lifetime(&self, lifetime: Duration) {
        self.policy_lifetime_ms
            .store(lifetime.as_millis() as u64, Ordering::Relaxed);
    }

    /// Records a credential request; false when (account, model) is over its per-second limit.
    /// The window is real time, not the emulator's clock: the limit is about how fast a
    /// client really sends, and tests move the clock forward by minutes at a time.
    pub(crate) fn admit_policy_request(&self, account: usize, model: &str) -> bool {
        let now = std::time::Instant::now();
        let window = self.config.policy_rate_window;
        let mut rate = lock(&self.rate);
        let times = rate.entry((account, model.to_owned())).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            times.pop_front();
        }
        if times.len() >= self.config.policy_qps as usize {
            return false;
        }
        times.push_back(now);
        true
    }

    pub(crate) fn capacity_left(&self, account: usize, date: &str) -> bool {
        let used = lock(&self.capacity)
            .get(&(account, date.to_owned()))
            .copied()
            .unwrap_or(0);
        used < self.config.capacity_limit_mb.saturating_mul(1024 * 1024)
    }

    pub(crate) fn add_capacity(&self, account: usize, date: String, bytes: u64) {
        *lock(&self.capacity).entry((account, date)).or_default() += bytes;
    }

    /// A path for an object being received; `None` when objects are kept in memory.
    pub(crate) fn part_path(&self) -> Option<PathBuf> {
        let n = self.next_part.fetch_add(1, Ordering::Relaxed);
        self.storage_dir
            .as_ref()
            .map(|d| d.join(format!("object-{n:08}")))
    }

    pub(crate) fn object_digest(&self, key: &str) -> Option<(String, u64)> {
        lock(&self.objects)
            .get(key)
            .map(|o| (o.sha256.clone(), o.size))
    }

    pub(crate) fn object_bytes(&self, key: &str) -> Option<Vec<u8>> {
        let objects = lock(&self.objects);
        match &objects.get(key)?.body {
            Body::Memory(bytes) => Some(bytes.clone()),
            Body::File(path) => {
                let path = path.clone();
                drop(objects);
                std::fs::read(path).ok()
            }
        }
    }

    /// Forgets what has expired now (a clock move calls this).
    pub(crate) fn sweep_now(&self) {
        let now = self.clock.now();
        *lock(&self.next_sweep) = now + Duration::from_secs(60);
        self.sweep(now);
    }

    /// Forgets what has expired, at most once a minute of emulator time, so that an emulator
    /// left running keeps only live state. Callers: every new credential and object.
    pub(crate) fn sweep_if_due(&self) {
        let now = self.clock.now();
        {
            let mut next = lock(&self.next_sweep);
            if now < *next {
                return;
            }
            *next = now + Duration::from_secs(60);
        }
        self.sweep(now);
    }

    /// Drops expired credentials and objects (deleting their files), empty rate windows and the
    /// capacity of past days. Nothing dropped here could still be used: an object past its
    /// lifetime already resolves as an invalid URL, and OSS checks a policy's expiration before
    /// it looks up the credential. A credential is kept an hour past its expiration all the same,
    /// so that an upload whose expiration was checked a moment before the clock moved still
    /// finds it.
    fn sweep(&self, now: SystemTime) {
        let grace = Duration::from_secs(3600);
        lock(&self.credentials).retain(|_, c| c.expires + grace > now);
        self.tasks.sweep(now, self.config.task_lifetime);
        let expired: Vec<Body> = {
            let mut objects = lock(&self.objects);
            let lifetime = self.config.object_lifetime;
            let keys: Vec<String> = objects
                .iter()
                .filter(|(_, o)| {
                    now.duration_since(o.uploaded_at)
                        .is_ok_and(|age| age >= lifetime)
                })
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter()
                .filter_map(|k| objects.remove(k))
                .map(|o| o.body)
                .collect()
        };
        // Files are deleted outside the lock.
        for body in expired {
            if let Body::File(path) = body {
                let _ = std::fs::remove_file(path);
            }
        }
        let real_now = std::time::Instant::now();
        let window = self.config.policy_rate_window;
        lock(&self.rate).retain(|_, times| {
            times
                .back()
                .is_some_and(|t| real_now.duration_since(*t) < window)
        });
        let today = crate::when::date(now);
        // ISO dates order as strings.
        lock(&self.capacity).retain(|(_, date), _| *date >= today);
    }

    /// Removes an object before its time, as a storage that lost it would; whether it was there.
    pub(crate) fn forget_object(&self, key: &str) -> bool {
        let removed = lock(&self.objects).remove(key);
        match removed {
            Some(object) => {
                if let Body::File(path) = object.body {
                    let _ = std::fs::remove_file(path);
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            policy_requests: get(&c.policy_requests),
            policy_throttled: get(&c.policy_throttled),
            uploads_ok: get(&c.uploads_ok),
            uploads_rejected: get(&c.uploads_rejected),
            bytes_received: get(&c.bytes_received),
            chat_requests: get(&c.chat_requests),
            chat_requests_with_resolve_header: get(&c.chat_requests_with_resolve_header),
            objects: lock(&self.objects).len() as u64,
            credentials: lock(&self.credentials).len() as u64,
            heap_bytes: super::heap::in_use(),
            tasks_submitted: get(&self.tasks.submitted),
            tasks: self.tasks.by_state(self.clock.now(), &self.config),
            task_queries: get(&self.tasks.queries),
            task_queries_throttled: get(&self.tasks.throttled),
            task_queries_max_per_second: get(&self.tasks.max_per_second),
            streams_finished: get(&c.streams_finished),
            streams_abandoned: get(&c.streams_abandoned),
            files_served: get(&c.files_served),
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if self.remove_storage_dir
            && let Some(dir) = &self.storage_dir
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// splitmix64: request ids that differ per run and never repeat within one.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
