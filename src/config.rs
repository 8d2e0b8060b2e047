//! How a [`Client`](crate::Client) is set up: API key, region or base URL, timeouts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use crate::region::Region;
use crate::{Error, Result, Secret};

/// The environment variable read for the API key.
pub const ENV_API_KEY: &str = "DASHSCOPE_API_KEY";
/// The environment variable read for the base URL.
pub const ENV_BASE_URL: &str = "DASHSCOPE_BASE_URL";
/// The official Python SDK's variable for the base URL (usually ending in `/api/v1`), honoured
/// when [`ENV_BASE_URL`] is not set.
pub const ENV_HTTP_BASE_URL: &str = "DASHSCOPE_HTTP_BASE_URL";

/// The workspace requests name, as the official SDK reads it.
pub const ENV_WORKSPACE_ID: &str = "DASHSCOPE_WORKSPACE_ID";

/// The region, by name or id, as the official SDK reads it (`DASHSCOPE_API_REGION`).
pub const ENV_API_REGION: &str = "DASHSCOPE_API_REGION";

/// The header that names a request's workspace (the text-to-image API reference lists it among
/// the request headers; the official SDK sends it when given a workspace).
pub const WORKSPACE_HEADER: &str = "X-DashScope-WorkSpace";

impl FromStr for Region {
    type Err = Error;

    /// Accepts the short names and Alibaba Cloud's region ids (`cn-beijing`, `ap-southeast-1`, ...).
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "beijing" | "cn-beijing" | "cn" | "china" => Ok(Region::Beijing),
            "singapore" | "ap-southeast-1" | "intl" | "international" => Ok(Region::Singapore),
            "us" | "us-east-1" | "virginia" => Ok(Region::Us),
            "hongkong" | "hong-kong" | "cn-hongkong" | "hk" => Ok(Region::HongKong),
            "frankfurt" | "eu-central-1" | "germany" | "de" => Ok(Region::Frankfurt),
            "tokyo" | "ap-northeast-1" | "japan" | "jp" => Ok(Region::Tokyo),
            _ => Err(Error::Config(format!(
                "unknown region {s:?}; expected one of beijing, singapore, us, hongkong, frankfurt, tokyo"
            ))),
        }
    }
}

/// The settings of a [`Client`](crate::Client).
///
/// ```
/// use dashscope_oss::{Config, Region};
/// use std::time::Duration;
///
/// let config = Config::new()
///     .api_key("sk-...")
///     .region(Region::Singapore)
///     .read_timeout(Duration::from_secs(600));
/// assert_eq!(config.base_url_str(), "https://dashscope-intl.aliyuncs.com");
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) api_key: Option<Secret>,
    pub(crate) base_url: String,
    /// Whether `base_url` was given (then region and workspace do not move it).
    explicit_base_url: bool,
    pub(crate) region: Region,
    pub(crate) workspace: Option<String>,
    /// A setting from the environment that could not be read, reported by `Client::new`.
    pub(crate) deferred_error: Option<String>,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) timeout: Option<Duration>,
    pub(crate) user_agent: String,
    pub(crate) http_client: Option<reqwest::Client>,
    pub(crate) allow_insecure_http: bool,
    pub(crate) retry: crate::RetryPolicy,
    pub(crate) upload_concurrency: usize,
    pub(crate) credential_rate: u32,
    pub(crate) credential_margin: Duration,
    pub(crate) local_files: LocalFiles,
    pub(crate) upload_cache: UploadCacheSetting,
    pub(crate) upload_cache_margin: Duration,
    pub(crate) inline_below: u64,
    pub(crate) data_uri_limit: usize,
    pub(crate) rehost: RehostUrls,
    pub(crate) rehost_limit: u64,
    pub(crate) on_upload: Option<crate::Callback<crate::UploadEvent>>,
}

/// Where a client remembers its uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UploadCacheSetting {
    Off,
    Memory,
    Dir(std::path::PathBuf),
}

/// Which local files a client uploads when a request names them
/// ([`Config::upload_local_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalFiles {
    /// Any file this process can read (the default).
    Any,
    /// None: a local path in a request is refused.
    Never,
    /// Only a regular file whose real path (symlinks resolved) lies under one of these
    /// directories, and never one under `/proc`, `/sys` or `/dev` (whatever the directories):
    /// pseudo-files there read as regular files and hold a process's secrets. No directory
    /// admits no file.
    Under(Vec<std::path::PathBuf>),
}

impl LocalFiles {
    /// Only regular files under these directories (see [`LocalFiles::Under`]).
    pub fn under<P: Into<std::path::PathBuf>>(dirs: impl IntoIterator<Item = P>) -> Self {
        LocalFiles::Under(dirs.into_iter().map(Into::into).collect())
    }
}

impl From<bool> for LocalFiles {
    /// `true`: [`LocalFiles::Any`]; `false`: [`LocalFiles::Never`].
    fn from(upload: bool) -> Self {
        if upload {
            LocalFiles::Any
        } else {
            LocalFiles::Never
        }
    }
}

/// When `http(s)://` media are fetched here and uploaded ([`Config::rehost_urls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RehostUrls {
    /// Never: URLs are sent as they are (the default).
    #[default]
    Never,
    /// When the service answers that it could not download a medium: fetched here, uploaded,
    /// and the request sent once more.
    OnDownloadFailure,
    /// Always, before the request is sent.
    Always,
}

/// The default of [`Config::rehost_limit`].
pub const DEFAULT_REHOST_LIMIT: u64 = 64 * 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("base_url", &self.base_url)
            .field("region", &self.region)
            .field("workspace", &self.workspace)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("timeout", &self.timeout)
            .field("user_agent", &self.user_agent)
            .field("own_http_client", &self.http_client.is_some())
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("retry", &self.retry)
            .field("upload_concurrency", &self.upload_concurrency)
            .field("credential_rate", &self.credential_rate)
            .field("credential_margin", &self.credential_margin)
            .field("local_files", &self.local_files)
            .field("upload_cache", &self.upload_cache)
            .field("upload_cache_margin", &self.upload_cache_margin)
            .field("inline_below", &self.inline_below)
            .field("data_uri_limit", &self.data_uri_limit)
            .field("rehost", &self.rehost)
            .field("rehost_limit", &self.rehost_limit)
            .field("on_upload", &self.on_upload.is_some())
            .finish()
    }
}

impl Config {
    /// Defaults: no API key, Beijing, a 10 s connect timeout, a 300 s read timeout (the longest
    /// gap between two bytes: a model may think for minutes before its first token), no total
    /// timeout (a stream may run for long), and `dashscope-oss/<version>` as user agent.
    pub fn new() -> Self {
        Self {
            api_key: None,
            base_url: Region::Beijing
                .base_url()
                .unwrap_or("https://dashscope.aliyuncs.com")
                .to_owned(),
            explicit_base_url: false,
            region: Region::Beijing,
            workspace: None,
            deferred_error: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(300),
            timeout: None,
            user_agent: concat!("dashscope-oss/", env!("CARGO_PKG_VERSION")).to_owned(),
            http_client: None,
            allow_insecure_http: false,
            retry: crate::RetryPolicy::default(),
            upload_concurrency: default_concurrency(),
            credential_rate: 100,
            credential_margin: Duration::from_secs(30),
            local_files: LocalFiles::Any,
            upload_cache: UploadCacheSetting::Memory,
            upload_cache_margin: crate::cache::DEFAULT_MARGIN,
            inline_below: 0,
            data_uri_limit: crate::wire::DATA_URI_LIMIT,
            rehost: RehostUrls::Never,
            rehost_limit: DEFAULT_REHOST_LIMIT,
            on_upload: None,
        }
    }

    /// [`Config::new`] with the key from `DASHSCOPE_API_KEY`, the region from
    /// `DASHSCOPE_API_REGION`, the workspace from `DASHSCOPE_WORKSPACE_ID`, and the base URL from
    /// `DASHSCOPE_BASE_URL`, else `DASHSCOPE_HTTP_BASE_URL`, else the region's. Empty variables
    /// count as unset; a region that cannot be read is an error of `Client::new`.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut config = Self::new();
        if let Some(key) = var(ENV_API_KEY) {
            config = config.api_key(key);
        }
        if let Some(region) = var(ENV_API_REGION) {
            match region.parse::<Region>() {
                Ok(region) => config = config.region(region),
                Err(e) => config.deferred_error = Some(format!("{ENV_API_REGION}: {e}")),
            }
        }
        if let Some(workspace) = var(ENV_WORKSPACE_ID) {
            config = config.workspace(workspace);
        }
        if let Some(url) = var(ENV_BASE_URL).or_else(|| var(ENV_HTTP_BASE_URL)) {
            config = config.base_url(url);
        }
        config
    }

    /// The API key (`sk-...`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(Secret::new(key.into()));
        self
    }

    /// The region: its own host, or with a [`Config::workspace`] its workspace domain. Of
    /// `region` and [`Config::base_url`], the later call wins. API keys work only in their own
    /// region.
    pub fn region(mut self, region: Region) -> Self {
        self.region = region;
        self.explicit_base_url = false;
        self.place();
        self
    }

    /// The workspace every DashScope request names (`X-DashScope-WorkSpace`), for keys that work
    /// only in a sub-workspace. Outside Beijing it also selects the region's workspace domain,
    /// `https://{workspace}.{region id}.maas.aliyuncs.com`, as the official SDK does. An id is
    /// letters, digits, `_` and `-`, at most 64, starting with a letter or digit (checked when the
    /// client is built: it becomes a DNS label).
    pub fn workspace(mut self, workspace: impl Into<String>) -> Self {
        self.workspace = Some(workspace.into());
        self.place();
        self
    }

    /// Any base URL: `https://host[:port][/prefix]`. A URL copied from the documentation that
    /// ends in `/api/v1` or `/compatible-mode/v1` is accepted and cut back to its root. It is
    /// checked when the client is built. It wins over the region's and the workspace's domain.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self.explicit_base_url = true;
        self
    }

    /// The base URL from the region and the workspace, unless one was given. Empty for a
    /// region reached only through a workspace domain while no workspace is set (`Client::new`
    /// says so).
    fn place(&mut self) {
        if self.explicit_base_url {
            return;
        }
        let domain = self
            .workspace
            .as_deref()
            .filter(|w| valid_workspace(w))
            .and_then(|w| self.region.workspace_base_url(w));
        self.base_url = domain
            .or_else(|| self.region.base_url().map(str::to_owned))
            .unwrap_or_default();
    }

    /// The base URL as configured (before normalisation).
    pub fn base_url_str(&self) -> &str {
        &self.base_url
    }

    /// How long to wait for a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest wait for the next bytes of a response.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// A limit on the whole of each request, response body included. Off by default.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The `User-Agent` header (ignored when you bring your own `reqwest::Client`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Use this `reqwest::Client` (proxies, certificates, connection pool of your own). The
    /// timeouts and user agent of this `Config` are then not applied; the API key still is.
    /// Call [`install_crypto_provider`](crate::install_crypto_provider) before building it.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Allow a plain `http://` base URL on a host other than loopback. Off by default, because
    /// the API key would cross the network in clear text; loopback (the emulator) is always
    /// allowed.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }
}

impl Config {
    /// How failed requests (credentials, uploads) are retried. Default: 5 tries, exponential
    /// backoff from 200 ms with jitter, `Retry-After` honoured.
    pub fn retry(mut self, policy: crate::RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How many files of a batch upload at once. Default: 4 per CPU, between 4 and 32 (uploads
    /// wait on the network, not the CPU).
    pub fn upload_concurrency(mut self, n: usize) -> Self {
        self.upload_concurrency = n.max(1);
        self
    }

    /// The most credential requests per second per model (the service allows 100 per account
    /// and model). Default 100.
    pub fn credential_rate(mut self, per_second: u32) -> Self {
        self.credential_rate = per_second.max(1);
        self
    }

    /// How long before its expiry a cached credential is replaced (at most a fifth of its
    /// lifetime). Default 30 s: an upload started just before expiry still has time to finish.
    pub fn credential_margin(mut self, margin: Duration) -> Self {
        self.credential_margin = margin;
        self
    }

    /// Which local paths (and `file://` URIs) in the media positions of any request are
    /// uploaded for the request's model: any file (`true`, [`LocalFiles::Any`], the default),
    /// none (`false`, [`LocalFiles::Never`]), or only regular files under some directories
    /// ([`LocalFiles::under`]). Restrict it in a service that puts URLs it was given by others
    /// into requests: a path would otherwise make this process upload one of its own files. A
    /// path that is not admitted fails the request with [`Error::LocalFileRefused`] before
    /// anything is uploaded or sent.
    ///
    /// ```
    /// use dashscope_oss::config::{Config, LocalFiles};
    ///
    /// let served = Config::new().upload_local_files(LocalFiles::under(["/srv/media"]));
    /// let none = Config::new().upload_local_files(false);
    /// # drop((served, none));
    /// ```
    pub fn upload_local_files(mut self, which: impl Into<LocalFiles>) -> Self {
        self.local_files = which.into();
        self
    }

    /// Keeps the upload cache in `dir` (created when first written), shared by every client
    /// and process that uses the same directory. By default a client remembers its uploads in
    /// memory only. An upload of the same content for the same model with the same key and
    /// base URL then returns the earlier `oss://` URL while it has more than
    /// [`Config::upload_cache_margin`] left, and sends nothing. The file holds content digests,
    /// URLs, models, paths and a one-way digest of the key and base URL: never a secret. A
    /// client writes its uploads there in batches, off the async threads: its first at once,
    /// then every 64 or at least once a second, and when it is dropped (handed to the
    /// runtime's blocking threads inside a runtime; `UploadCache::flush` makes sure).
    pub fn upload_cache(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.upload_cache = UploadCacheSetting::Dir(dir.into());
        self
    }

    /// Remembers no upload: every upload sends its file.
    pub fn no_upload_cache(mut self) -> Self {
        self.upload_cache = UploadCacheSetting::Off;
        self
    }

    /// How long a remembered URL must still last to be used, or sent in a request (default one
    /// hour). A URL this client knows (from its uploads or the cache) that ends sooner is
    /// uploaded again from its file before a request is sent, or the request fails with
    /// [`Error::UrlExpired`] when the file is gone or changed.
    pub fn upload_cache_margin(mut self, margin: Duration) -> Self {
        self.upload_cache_margin = margin;
        self
    }

    /// Sends local images and audio smaller than `bytes` inside the request as base64 `data:`
    /// URIs instead of uploading them (0, the default, never does). Video is always uploaded,
    /// and so is a file whose encoding would exceed the service's 10 MiB per `data:` URI; the
    /// task APIs (transcription, image and video synthesis) take no `data:` URIs. The official
    /// CLI inlines images under 5 MB; the documentation advises base64 only under about 7 MB.
    pub fn inline_below(mut self, bytes: u64) -> Self {
        self.inline_below = bytes;
        self
    }

    /// Decodes a `data:` URI in a media position that is longer than `bytes` (the service's
    /// 10 MiB by default) and uploads it for
    /// the request's model instead, so that what an OpenAI-style client sends for a large image
    /// still reaches the model. One that the service takes (within its limit) stays inline when
    /// inline was asked for at its size ([`Config::inline_below`]). Its base64 must decode, and
    /// the request must name its `model`, or the request fails before anything is uploaded.
    pub fn upload_data_uris_over(mut self, bytes: usize) -> Self {
        self.data_uri_limit = bytes;
        self
    }

    /// Whether `http(s)://` media are fetched here and uploaded for the request's model:
    /// [`RehostUrls::Never`] (the default), [`RehostUrls::OnDownloadFailure`] (when the service
    /// answers that it could not download a medium, [`Error::DownloadFailed`], every web URL of
    /// the request is fetched, uploaded, and the request sent once more), or
    /// [`RehostUrls::Always`]. A fetch takes the one execution path (retries, the one
    /// classifier; the API key is never sent to the URL's host), follows redirects only to
    /// `http(s)` and never from `https` to `http`, and stops at [`Config::rehost_limit`].
    pub fn rehost_urls(mut self, when: RehostUrls) -> Self {
        self.rehost = when;
        self
    }

    /// The most bytes a re-hosted URL may have (64 MiB by default): the fetch is held in memory
    /// until it is uploaded. Over it, the request fails with [`Error::InvalidRequest`] and
    /// nothing is uploaded.
    pub fn rehost_limit(mut self, bytes: u64) -> Self {
        self.rehost_limit = bytes;
        self
    }

    /// Calls `observer` with what the uploads of this client do: bytes going out
    /// ([`UploadEvent::Progress`](crate::UploadEvent::Progress)), and what each local file a
    /// request names became (uploaded, from the cache, or inline), so that a caller can show
    /// what was sent where.
    pub fn on_upload(
        mut self,
        observer: impl Fn(&crate::UploadEvent) + Send + Sync + 'static,
    ) -> Self {
        self.on_upload = Some(std::sync::Arc::new(observer));
        self
    }
}

/// A workspace id as the official SDK checks it: `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`.
pub(crate) fn valid_workspace(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn default_concurrency() -> usize {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cpus * 4).clamp(4, 32)
}

/// Checks a base URL and cuts it back to the root that the spec's paths hang from.
pub(crate) fn normalize_base_url(raw: &str, allow_insecure_http: bool) -> Result<String> {
    let raw = raw.trim();
    let url = reqwest::Url::parse(raw)
        // Not echoed: whatever was pasted here (a key, by mistake?) stays out of messages.
        .map_err(|e| {
            Error::Config(format!(
                "the base URL is not a URL ({e}); expected https://host[/prefix]"
            ))
        })?;
    // Messages show the URL without user info, query or fragment: people paste keys there.
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    let trimmed = shown.as_str().trim_end_matches('/');
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => {
            return Err(Error::Config(format!(
                "base URL {trimmed:?} is plain http on a non-loopback host: the API key would be \
                 sent in clear text (use https, or Config::allow_insecure_http)"
            )));
        }
        other => {
            return Err(Error::Config(format!(
                "base URL {trimmed:?} has scheme {other:?}; expected https"
            )));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::Config(format!("base URL {trimmed:?} has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "base URL {trimmed:?} must not have a query or fragment"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(
            "base URL must not carry credentials; use Config::api_key".to_owned(),
        ));
    }
    let mut path = url.path().trim_end_matches('/').to_owned();
    for suffix in ["/api/v1", "/compatible-mode/v1"] {
        if let Some(stripped) = path.strip_suffix(suffix) {
            path = stripped.to_owned();
            break;
        }
    }
    let mut root = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        root.push_str(&format!(":{port}"));
    }
    root.push_str(&path);
    Ok(root)
}

pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_urls_are_normalised() {
        for (raw, want) in [
            (
                "https://dashscope.aliyuncs.com",
                "https://dashscope.aliyuncs.com",
            ),
            (
                "https://dashscope.aliyuncs.com/",
                "https://dashscope.aliyuncs.com",
            ),
            (
                "https://dashscope.aliyuncs.com/api/v1",
                "https://dashscope.aliyuncs.com",
            ),
            (
                "https://dashscope.aliyuncs.com/api/v1/",
                "https://dashscope.aliyuncs.com",
            ),
            (
                "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
                "https://dashscope-intl.aliyuncs.com",
            ),
            (
                "  https://proxy.example/ds/api/v1 ",
                "https://proxy.example/ds",
            ),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://localhost:9/api/v1", "http://localhost:9"),
            ("http://[::1]:7", "http://[::1]:7"),
        ] {
            assert_eq!(
                normalize_base_url(raw, false).ok().as_deref(),
                Some(want),
                "{raw}"
            );
        }
    }

    #[test]
    fn bad_urls_are_refused() {
        for raw in [
            "",
            "dashscope.aliyuncs.com",
            "ftp://dashscope.aliyuncs.com",
            "http://dashscope.aliyuncs.com",
            "https://dashscope.aliyuncs.com/?a=b",
            "https://user:pw@dashscope.aliyuncs.com",
            "https://",
        ] {
            assert!(
                matches!(normalize_base_url(raw, false), Err(Error::Config(_))),
                "{raw:?} was accepted"
            );
        }
        assert!(normalize_base_url("http://10.0.0.1:80", true).is_ok());
    }

    #[test]
    fn regions_parse_by_name_and_id() {
        for region in Region::ALL {
            assert_eq!(region.name().parse::<Region>().ok(), Some(region));
        }
        assert_eq!(
            "ap-southeast-1".parse::<Region>().ok(),
            Some(Region::Singapore)
        );
        assert!("mars".parse::<Region>().is_err());
        assert_eq!(
            "eu-central-1".parse::<Region>().ok(),
            Some(Region::Frankfurt)
        );
        assert_eq!("ap-northeast-1".parse::<Region>().ok(), Some(Region::Tokyo));
        for region in Region::ALL {
            assert_eq!(region.id().parse::<Region>().ok(), Some(region));
        }
    }

    #[test]
    fn workspaces_select_their_domain_and_a_given_url_wins() {
        let at = |c: Config| c.base_url_str().to_owned();
        assert_eq!(
            at(Config::new().region(Region::Frankfurt).workspace("ws-1")),
            "https://ws-1.eu-central-1.maas.aliyuncs.com"
        );
        assert_eq!(
            at(Config::new().workspace("ws-1").region(Region::Singapore)),
            "https://ws-1.ap-southeast-1.maas.aliyuncs.com"
        );
        // Beijing keeps its host; the workspace is then a header only.
        assert_eq!(
            at(Config::new().workspace("ws-1")),
            "https://dashscope.aliyuncs.com"
        );
        // Frankfurt has no host of its own.
        assert_eq!(at(Config::new().region(Region::Frankfurt)), "");
        // A given URL is kept whatever the workspace; a later region replaces it.
        let given = Config::new()
            .base_url("http://127.0.0.1:9")
            .workspace("ws-1");
        assert_eq!(at(given.clone()), "http://127.0.0.1:9");
        assert_eq!(
            at(given.region(Region::Us)),
            "https://ws-1.us-east-1.maas.aliyuncs.com"
        );
        for (id, ok) in [
            ("ws-1", true),
            ("W_2", true),
            ("-x", false),
            ("a.b", false),
            ("", false),
        ] {
            assert_eq!(valid_workspace(id), ok, "{id:?}");
        }
        assert!(!valid_workspace(&"w".repeat(65)));
    }

    #[test]
    fn debug_hides_the_key() {
        let c = Config::new().api_key("sk-visible-in-no-debug-output");
        assert!(!format!("{c:?}").contains("visible"));
    }
}
