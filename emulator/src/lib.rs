//! An offline emulator of DashScope and its temporary OSS storage, for tests, benchmarks and the
//! quickstart. It depends on no crate of the SDK: it reads the documentation itself.
//!
//! Two real HTTP servers on 127.0.0.1: the API host (upload credentials, chat completions,
//! multimodal generation, and the emulator's own control endpoints under `/emulator/v1/`) and the
//! OSS host that the credentials point to. It behaves like the documented service
//! (DashScope's temporary-storage and API documentation), judging requests with its own parsing, never with the
//! client's types.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use dashscope_emulator::{Emulator, EmulatorConfig, DEFAULT_API_KEY};
//!
//! let emulator = Emulator::start(EmulatorConfig::default()).await?;
//! // Point any DashScope client at it: `DASHSCOPE_BASE_URL` and `DASHSCOPE_API_KEY`.
//! println!("{} {DEFAULT_API_KEY}", emulator.base_url());
//! emulator.advance_clock(std::time::Duration::from_secs(600)); // credentials have now expired
//! # Ok(()) }
//! ```

mod api;
pub mod catalogue;
mod heap;
mod media;
mod oss;
mod server;
mod state;
mod tasks;
mod when;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use api::REJECTED_TEXT;
pub use state::{FaultKind, Stats};

use state::State;
pub use tasks::{FAIL_TASK_TEXT, RESULT_MP4, RESULT_PNG, TaskSteps};

/// The API key of the default account, so that the quickstart needs no set-up.
pub const DEFAULT_API_KEY: &str = "sk-emulator-default";

/// The name of the default account.
pub const DEFAULT_ACCOUNT: &str = "default";

/// A kind of media a model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MediaKind {
    /// PNG, JPEG, GIF, WebP, BMP, TIFF.
    Image,
    /// WAV, MP3, FLAC, OGG, AAC/M4A.
    Audio,
    /// MP4/MOV, WebM/MKV, AVI.
    Video,
}

/// What the emulator knows of a model: by default its family's row of the catalogue
/// ([`catalogue::FAMILIES`]); [`EmulatorConfig::model`] sets one by name.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// The largest file a credential for this model admits, in MiB (`max_file_size_mb`).
    pub max_file_size_mb: u64,
    /// The media the model reads; anything else fails data inspection.
    pub accepts: Vec<MediaKind>,
    /// Whether calls answer 403 `AccessDenied.Unpurchased` (the account may not use it).
    pub restricted: bool,
    /// The endpoints it may call; any other answers 400 "url error".
    pub endpoints: Vec<catalogue::Endpoint>,
    /// It answers only streamed calls.
    pub stream_only: bool,
    /// What it does with `enable_thinking`.
    pub thinking: catalogue::Thinking,
}

impl ModelSpec {
    /// A model of `family`.
    pub fn of(family: &catalogue::Family) -> Self {
        Self {
            max_file_size_mb: family.max_file_size_mb,
            accepts: family.accepts.to_vec(),
            restricted: false,
            endpoints: family.endpoints.to_vec(),
            stream_only: family.stream_only,
            thinking: family.thinking,
        }
    }
}

impl Default for ModelSpec {
    /// A vision-language model (the `vl` family: both chat endpoints, images and video).
    fn default() -> Self {
        catalogue::family_named("vl").map_or_else(
            || Self {
                max_file_size_mb: 1024,
                accepts: vec![MediaKind::Image, MediaKind::Video],
                restricted: false,
                endpoints: vec![catalogue::Endpoint::Chat, catalogue::Endpoint::Multimodal],
                stream_only: false,
                thinking: catalogue::Thinking::Never,
            },
            Self::of,
        )
    }
}

/// The standing of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccountStatus {
    /// Everything works.
    #[default]
    Active,
    /// Every call answers 400 `Arrearage`.
    InArrears,
    /// Every call answers 403 `AccessDenied`.
    Denied,
}

/// An account and its API keys. Files uploaded with one key resolve for every key of the account.
#[derive(Debug, Clone)]
pub struct Account {
    /// A name, used for the account hash in `upload_dir`.
    pub name: String,
    /// The API keys.
    pub keys: Vec<String>,
    /// The account's standing.
    pub status: AccountStatus,
}

/// Where uploaded objects are kept.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// Files in a temporary directory, removed when the emulator stops (the default).
    #[default]
    TempDir,
    /// Files in this directory (kept when the emulator stops).
    Dir(PathBuf),
    /// In memory (every object held whole: only for small files).
    Memory,
}

/// How the emulator is set up.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The accounts; by default one, [`DEFAULT_ACCOUNT`], with the key [`DEFAULT_API_KEY`].
    pub accounts: Vec<Account>,
    /// Models set by name, over the catalogue's families (none by default: every model the
    /// catalogue's patterns name is known).
    pub models: BTreeMap<String, ModelSpec>,
    /// How long a credential is valid: its `expire_in_seconds` and its policy's `expiration`.
    pub policy_lifetime: Duration,
    /// When the policy document itself expires, if not with `policy_lifetime`: the service was
    /// seen sending `expire_in_seconds: 300` with a policy valid for 23 minutes, so a client
    /// must plan with the earlier of the two.
    pub policy_expiration: Option<Duration>,
    /// How long an uploaded object resolves (48 h).
    pub object_lifetime: Duration,
    /// The smallest file a policy admits, in bytes (the lower bound of its
    /// `content-length-range`; 0 as in the policies the real service issues).
    pub min_file_size: u64,
    /// The daily upload capacity per account, in MiB (`capacity_limit_mb`).
    pub capacity_limit_mb: u64,
    /// Credential requests allowed per `policy_rate_window` per account and model.
    pub policy_qps: u32,
    /// The real-time window `policy_qps` counts in: a second, as documented. Tests that count
    /// refusals widen it, so that a slow machine cannot spread their requests over two windows.
    pub policy_rate_window: Duration,
    /// Where objects are kept.
    pub storage: Storage,
    /// The API host's address (port 0: any free port).
    pub api_addr: SocketAddr,
    /// The OSS host's address (port 0: any free port).
    pub oss_addr: SocketAddr,
    /// How tasks move from `PENDING` to their end (by default a second of the emulator's clock
    /// in each of `PENDING` and `RUNNING`).
    pub task_steps: TaskSteps,
    /// Task queries (query, cancel, list) allowed per `task_rate_window` per account (20, as
    /// documented).
    pub task_query_qps: u32,
    /// The real-time window `task_query_qps` counts in: a second, as documented (tests that
    /// count refusals widen it; see `policy_rate_window`).
    pub task_rate_window: Duration,
    /// How long a task is known after its submit (24 hours); `UNKNOWN` after.
    pub task_lifetime: Duration,
    /// How long a result link (a presigned URL) works after the query that gave it: 24 hours,
    /// as the task documentation says of result URLs. After it, the storage answers 403
    /// `AccessDenied` "Request has expired." in its XML.
    pub result_lifetime: Duration,
    /// The pause between two events of a streamed answer (5 ms): a stream is written as it is
    /// produced, so its first event arrives before its last is written.
    pub stream_pace: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            accounts: vec![Account {
                name: DEFAULT_ACCOUNT.to_owned(),
                keys: vec![DEFAULT_API_KEY.to_owned()],
                status: AccountStatus::Active,
            }],
            models: BTreeMap::new(),
            policy_lifetime: Duration::from_secs(300),
            policy_expiration: None,
            object_lifetime: Duration::from_secs(48 * 3600),
            min_file_size: 0,
            capacity_limit_mb: 999_999_999,
            policy_qps: 100,
            policy_rate_window: Duration::from_secs(1),
            storage: Storage::TempDir,
            api_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            oss_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            task_steps: TaskSteps::default(),
            task_query_qps: 20,
            task_rate_window: Duration::from_secs(1),
            task_lifetime: Duration::from_secs(24 * 3600),
            result_lifetime: Duration::from_secs(24 * 3600),
            stream_pace: Duration::from_millis(5),
        }
    }
}

impl EmulatorConfig {
    /// Adds an account with its keys (replacing one of the same name).
    pub fn account(mut self, name: impl Into<String>, keys: &[&str]) -> Self {
        let name = name.into();
        self.accounts.retain(|a| a.name != name);
        self.accounts.push(Account {
            name,
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            status: AccountStatus::Active,
        });
        self
    }

    /// Adds or replaces a model.
    pub fn model(mut self, name: impl Into<String>, spec: ModelSpec) -> Self {
        self.models.insert(name.into(), spec);
        self
    }

    /// What the emulator knows of `model`: set by name, else its catalogue family's.
    pub fn spec_of(&self, model: &str) -> Option<ModelSpec> {
        self.models
            .get(model)
            .cloned()
            .or_else(|| catalogue::family_of(model).map(ModelSpec::of))
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The storage directory could not be created.
    #[error("cannot create the storage directory {path}: {source}")]
    Storage {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is inconsistent (an API key in two accounts, no account, ...).
    #[error("invalid emulator configuration: {0}")]
    Config(String),
}

/// A running emulator. It stops when dropped or [shut down](Emulator::shutdown).
pub struct Emulator {
    state: Arc<State>,
    base_url: String,
    oss_url: String,
    servers: Vec<server::Running>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("base_url", &self.base_url)
            .field("oss_url", &self.oss_url)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts both hosts on their addresses (free ports on 127.0.0.1 by default).
    pub async fn start(config: EmulatorConfig) -> Result<Self, StartError> {
        let api_listener = bind(config.api_addr).await?;
        let oss_listener = bind(config.oss_addr).await?;
        let oss_url = format!("http://{}", local_addr(&oss_listener, config.oss_addr));
        let base_url = format!("http://{}", local_addr(&api_listener, config.api_addr));
        let state = Arc::new(State::new(config, oss_url.clone())?);
        let servers = vec![
            server::serve(api_listener, api::router(state.clone(), tasks::routes())),
            server::serve(oss_listener, oss::router(state.clone())),
        ];
        Ok(Self {
            state,
            base_url,
            oss_url,
            servers,
        })
    }

    /// The API host, e.g. `http://127.0.0.1:41234`: use it as the client's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The OSS host that credentials name as `upload_host`.
    pub fn oss_url(&self) -> &str {
        &self.oss_url
    }

    /// Moves the emulator's clock forward (policy expiry, the 48 h object lifetime) without
    /// sleeping.
    pub fn advance_clock(&self, by: Duration) {
        self.state.clock.advance(by);
        self.state.sweep_now();
    }

    /// The counters of what it has seen.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Makes the next `count` requests of a kind fail (see [`FaultKind`]).
    pub fn inject(&self, kind: FaultKind, count: u32) {
        self.state.faults.inject(kind, count);
    }

    /// Makes a share of the requests of a kind fail, in parts per million (10,000 = 1 %), from
    /// a fixed pseudo-random sequence.
    pub fn set_fault_rate(&self, kind: FaultKind, per_million: u32) {
        self.state.faults.set_rate(kind, per_million);
    }

    /// Delays every response of the API and OSS hosts by this much (zero to stop).
    pub fn set_delay(&self, delay: Duration) {
        self.state.faults.set_delay(delay);
    }

    /// Changes the lifetime of credentials issued from now on.
    pub fn set_policy_lifetime(&self, lifetime: Duration) {
        self.state.set_policy_lifetime(lifetime);
    }

    /// The sha256 (hex) and size of a stored object, by key; `None` if there is none.
    pub fn object(&self, key: &str) -> Option<(String, u64)> {
        self.state.object_digest(key)
    }

    /// When the object under `key` stops resolving, by the emulator's clock: its upload time
    /// plus the object lifetime (48 h).
    pub fn object_expiry(&self, key: &str) -> Option<std::time::SystemTime> {
        state::lock(&self.state.objects)
            .get(key)
            .map(|o| o.uploaded_at + self.state.config.object_lifetime)
    }

    /// The body a task was submitted with, as the emulator received it (local files already
    /// replaced by their `oss://` URLs); `None` for an unknown task.
    pub fn task_request(&self, task_id: &str) -> Option<serde_json::Value> {
        self.state.tasks.request(task_id)
    }

    /// Forgets a stored object before it expires, as a storage that lost it would: model calls
    /// that name it then fail with the invalid-URL error. Whether there was one.
    pub fn forget_object(&self, key: &str) -> bool {
        self.state.forget_object(key)
    }

    /// The bytes of a stored object, by key (tests compare them with what was sent).
    pub fn object_bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.state.object_bytes(key)
    }

    /// Serves `bytes` at `{base_url}/emulator/v1/files/{name}` (no key needed, as for a public
    /// URL) and returns that URL: a web server on loopback for tests that re-host URLs. Model
    /// calls that carry it answer as for any `http(s)://` URL (the emulator fetches nothing),
    /// unless it is [refused](Emulator::refuse_download).
    pub fn host_file(&self, name: &str, bytes: impl Into<Vec<u8>>) -> String {
        state::lock(&self.state.hosted).insert(name.to_owned(), state::Hosted::File(bytes.into()));
        self.hosted_url(name)
    }

    /// Answers `302 Found` with `Location: {location}` at `{base_url}/emulator/v1/files/{name}`,
    /// and returns that URL.
    pub fn host_redirect(&self, name: &str, location: &str) -> String {
        state::lock(&self.state.hosted).insert(
            name.to_owned(),
            state::Hosted::Redirect(location.to_owned()),
        );
        self.hosted_url(name)
    }

    fn hosted_url(&self, name: &str) -> String {
        format!("{}/emulator/v1/files/{name}", self.base_url)
    }

    /// Makes `url` undownloadable for the model: a model call that carries it in a media
    /// position answers as the service does when it cannot fetch a medium, 400
    /// `InternalError.Algo.InvalidParameter` "Failed to download multimodal content" (in
    /// compatible mode `invalid_parameter_error`, the native code in the message).
    pub fn refuse_download(&self, url: &str) {
        state::lock(&self.state.refused_downloads).insert(url.to_owned());
    }

    /// Stops both hosts and waits for their tasks; stored objects in a temporary directory are
    /// removed.
    pub async fn shutdown(mut self) {
        for server in self.servers.drain(..) {
            server.stop().await;
        }
    }

    /// Runs until SIGINT or SIGTERM, then shuts down. For the `dashscope emulator` process.
    pub async fn run_until_signalled(self) {
        self.run_until(stop_signal()).await;
    }

    /// Runs until `stop` resolves, then shuts down.
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()>) {
        stop.await;
        self.shutdown().await;
    }
}

/// SIGINT or SIGTERM, listened for from the moment this is called: call it before telling anyone
/// the emulator is up, so that a signal sent right after is not missed.
pub fn stop_signal() -> impl std::future::Future<Output = ()> + Send {
    server::stop_signal()
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

fn local_addr(listener: &tokio::net::TcpListener, fallback: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(fallback)
}
