//! The [`Client`]: the generated API plus what the spec cannot say. Its hooks are the front of
//! the one execution path every operation takes: `pre` authenticates, uploads the local files
//! a body names and adds the OSS header by the generic rule of [`crate::wire`]; `exec` hands the
//! request to [`crate::transport`], which retries, maps errors and traces.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::time::SystemTime;

use base64::Engine;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::Value;

use crate::api::{self, types};
use crate::attempt::Repeat;
use crate::cache::{UploadCache, UrlState};
use crate::config::UploadCacheSetting;
use crate::config::normalize_base_url;
use crate::retry::RateLimiter;
use crate::session::{Inner, TASK_QUERIES_PER_SECOND, TASK_QUERY_WINDOW, UploadSettings, Uploads};
use crate::transport::{self, Manner};
use crate::upload::{self, ProgressFn, Uploader};
use crate::wire::{self, ASYNC_HEADER, Media, OSS_RESOLVE_HEADER};
use crate::{Config, Error, Result, Secret, UploadSource, UploadedFile};

/// A DashScope client. Cheap to clone; clones share the connection pool and the credentials.
///
/// ```no_run
/// # async fn run() -> dashscope_oss::Result<()> {
/// use dashscope_oss::{Client, Config};
///
/// let client = Client::new(Config::from_env())?;
/// let policy = client.upload_policy("qwen-vl-plus").await?;
/// println!("upload to {} under {}", policy.data.upload_host, policy.data.upload_dir);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    api: Arc<api::Client>,
}

impl Client {
    /// Builds a client. Fails without an API key, or with a key or base URL that is malformed.
    pub fn new(config: Config) -> Result<Self> {
        let key = config.api_key.clone().ok_or(Error::MissingApiKey)?;
        if key.expose().trim().is_empty() {
            return Err(Error::MissingApiKey);
        }
        let mut authorization =
            HeaderValue::try_from(format!("Bearer {}", key.expose())).map_err(|_| {
                Error::Config(
                    "the API key contains a character that cannot be sent in a header \
                     (a newline or control character?)"
                        .to_owned(),
                )
            })?;
        authorization.set_sensitive(true);
        let base_url = normalize_base_url(&config.base_url, config.allow_insecure_http)?;
        let http = match config.http_client.clone() {
            Some(client) => client,
            None => build_http_client(&config)?,
        };
        let margin = config.upload_cache_margin;
        let cache = match &config.upload_cache {
            UploadCacheSetting::Off => None,
            UploadCacheSetting::Memory => Some(UploadCache::in_memory(margin)),
            UploadCacheSetting::Dir(dir) => Some(UploadCache::on_disk(dir, margin)),
        };
        let inner = Inner {
            authorization,
            retry: config.retry,
            upload_local_files: config.upload_local_files,
            inline_below: config.inline_below,
            task_queries: Arc::new(RateLimiter::with_window(
                TASK_QUERIES_PER_SECOND,
                TASK_QUERY_WINDOW,
            )),
            uploads: Arc::new(Uploads::new(UploadSettings {
                retry: config.retry,
                concurrency: config.upload_concurrency,
                credential_rate: config.credential_rate,
                credential_margin: config.credential_margin,
                allow_insecure_http: config.allow_insecure_http,
                cache: cache.map(Arc::new),
                account: crate::cache::account_digest(&key, &base_url),
            })),
            key,
        };
        Ok(Self {
            api: Arc::new(api::Client::new_with_client(&base_url, http, inner)),
        })
    }

    /// [`Client::new`] with [`Config::from_env`].
    pub fn from_env() -> Result<Self> {
        Self::new(Config::from_env())
    }

    /// The normalised base URL, e.g. `https://dashscope.aliyuncs.com`.
    pub fn base_url(&self) -> &str {
        self.api.baseurl()
    }

    /// The generated client, for operations this crate does not wrap. Its calls take the same
    /// path as the others (authentication, local files, the OSS header, retries), but errors
    /// come back as progenitor's `Error<E>`; wrap a call in [`Client::call`] to get [`Error`].
    pub fn api(&self) -> &api::Client {
        &self.api
    }

    /// Runs a call of the generated client and returns this crate's [`Error`] on failure.
    ///
    /// ```no_run
    /// # async fn run(client: dashscope_oss::Client) -> dashscope_oss::Result<()> {
    /// let policy = client
    ///     .call(client.api().get_upload_policy().action("getPolicy").model("qwen-vl-plus").send())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn call<T, E>(
        &self,
        call: impl Future<
            Output = std::result::Result<
                progenitor_client::ResponseValue<T>,
                progenitor_client::Error<E>,
            >,
        >,
    ) -> Result<T> {
        transport::run(&self.api.inner().key, call).await
    }

    /// The upload cache (see [`Config::upload_cache`]), unless it is off.
    pub fn upload_cache(&self) -> Option<&UploadCache> {
        self.api.inner().uploads.cache()
    }

    /// The API key, to scrub it from error messages.
    pub(crate) fn key(&self) -> &Secret {
        &self.api.inner().key
    }

    /// Gets an upload credential for `model` (`GET /api/v1/uploads?action=getPolicy`).
    pub async fn upload_policy(&self, model: &str) -> Result<types::UploadPolicyResponse> {
        Uploader::new(&self.api).policy(model).await
    }

    /// An OpenAI-compatible chat completion. The request is a
    /// [`types::ChatCompletionRequest`] (or its builder, or a reference to one), or a
    /// [`ChatRequest`](crate::chat::ChatRequest) that mixes text with local files and URLs.
    /// Local files in media positions are uploaded for the request's model first.
    pub async fn chat_completion<R>(&self, request: R) -> Result<types::ChatCompletionResponse>
    where
        R: TryInto<types::ChatCompletionRequest>,
        Error: From<R::Error>,
    {
        let request = request.try_into()?;
        self.call(self.api.create_chat_completion().body(request).send())
            .await
    }

    /// A native multimodal generation, of the same kinds of request as
    /// [`Client::chat_completion`] (a [`ChatRequest`](crate::chat::ChatRequest) asks either
    /// API the same question).
    pub async fn multimodal_generation<R>(
        &self,
        request: R,
    ) -> Result<types::MultimodalGenerationResponse>
    where
        R: TryInto<types::MultimodalGenerationRequest>,
        Error: From<R::Error>,
    {
        let request = request.try_into()?;
        self.call(self.api.create_multimodal_generation().body(request).send())
            .await
    }

    /// Uploads one file for `model` and returns its `oss://` URL and expiry.
    ///
    /// ```no_run
    /// # async fn run(client: dashscope_oss::Client) -> dashscope_oss::Result<()> {
    /// let file = client.upload("qwen-vl-plus", "cat.png").await?;
    /// println!("{} (until {:?})", file.url, file.expires_at);
    /// # Ok(()) }
    /// ```
    pub async fn upload(
        &self,
        model: &str,
        source: impl Into<UploadSource>,
    ) -> Result<UploadedFile> {
        Uploader::new(&self.api).upload(model, source.into()).await
    }

    /// Uploads many files for `model`, a few at a time ([`Config::upload_concurrency`]).
    /// Returns one outcome per source, in input order; a failure loses none of the others.
    pub async fn upload_many<I, S>(&self, model: &str, sources: I) -> Vec<Result<UploadedFile>>
    where
        I: IntoIterator<Item = S>,
        S: Into<UploadSource>,
    {
        self.upload_many_with_progress(model, sources, None).await
    }

    /// [`Client::upload_many`], calling `progress` as bytes go out.
    pub async fn upload_many_with_progress<I, S>(
        &self,
        model: &str,
        sources: I,
        progress: Option<ProgressFn>,
    ) -> Vec<Result<UploadedFile>>
    where
        I: IntoIterator<Item = S>,
        S: Into<UploadSource>,
    {
        let sources = sources.into_iter().map(Into::into).collect();
        Uploader::new(&self.api)
            .upload_many(model, sources, progress)
            .await
    }

    /// Prepares and sends a request built by hand (the streams), on the same path as the
    /// generated operations.
    pub(crate) async fn send_prepared(
        &self,
        mut request: reqwest::Request,
    ) -> Result<reqwest::Response> {
        prepare(&self.api, &mut request).await?;
        send_healing(&self.api, request, Manner::default())
            .await
            .map_err(|f| f.error)
    }

    /// A POST of `body` to `path`, ready for [`Client::send_prepared`].
    pub(crate) fn post_json(&self, path: &str, body: &Value) -> Result<reqwest::Request> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        self.api
            .client()
            .post(format!("{}{path}", self.base_url()))
            .header(CONTENT_TYPE, "application/json")
            .body(bytes)
            .build()
            .map_err(|e| Error::InvalidRequest(e.to_string()))
    }
}

/// The first half of the execution path, for every request: credentials, local files, headers.
async fn prepare(api: &api::Client, request: &mut reqwest::Request) -> Result<()> {
    if let Some(body) = request.body().and_then(reqwest::Body::as_bytes)
        && let Some(resolved) = resolve_media(api, body).await?
    {
        *request.body_mut() = Some(resolved.into());
    }
    let oss = request
        .body()
        .and_then(reqwest::Body::as_bytes)
        .is_some_and(wire::carries_oss_url);
    let headers = request.headers_mut();
    // progenitor sends the spec's `info.version` as `api-version`; DashScope has no such header.
    headers.remove("api-version");
    headers.insert(AUTHORIZATION, api.inner().authorization.clone());
    // Every documented DashScope request carries `Content-Type: application/json`, the
    // bodiless `GET /api/v1/uploads` included (the documentation lists it as required).
    headers
        .entry(CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    // The service reads oss:// URLs only when told to; sent exactly when the body has one.
    if oss {
        headers.insert(OSS_RESOLVE_HEADER, HeaderValue::from_static("enable"));
    }
    Ok(())
}

type Resolved<'a> = Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>>> + Send + 'a>>;

/// The media of a JSON body made ready to send, for its `model`: local files uploaded (or
/// inlined as `data:` URIs, see [`Config::inline_below`]) and replaced by their URLs, and
/// `oss://` URLs that end within the cache margin uploaded again from their files. Returns
/// `None` when nothing changed. Every file is checked before anything is uploaded. Boxed: an
/// upload asks for a credential, a generated operation whose own hook comes back here.
fn resolve_media<'a>(api: &'a api::Client, body: &'a [u8]) -> Resolved<'a> {
    Box::pin(async move {
        let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
            return Ok(None);
        };
        // Each local path, with whether every place it sits in takes a `data:` URI of its kind.
        let mut local: Vec<(String, bool)> = Vec::new();
        let mut oss: Vec<String> = Vec::new();
        wire::visit_media_at(&mut value, &mut |place, s| {
            if wire::is_oss_url(s) {
                if !oss.contains(s) {
                    oss.push(s.clone());
                }
                return;
            }
            if !matches!(Media::parse(s), Media::Path(_)) {
                return;
            }
            let takes = wire::inline_kind(place)
                .is_some_and(|kind| upload::content_type(s).split('/').next() == Some(kind));
            match local.iter_mut().find(|(l, _)| l == s) {
                Some((_, inline)) => *inline &= takes,
                None => local.push((s.clone(), takes)),
            }
        });
        if let Some(cache) = api.inner().uploads.cache() {
            for url in &oss {
                cache.note_served(url);
            }
        }
        let renewed = renew_stale(api, &oss).await?;
        if local.is_empty() && renewed.is_empty() {
            return Ok(None);
        }
        let mut replace: Vec<(String, String)> = renewed;
        if !local.is_empty() {
            replace.extend(resolve_local(api, &value, local).await?);
        }
        replace_media(&mut value, &replace);
        serde_json::to_vec(&value)
            .map(Some)
            .map_err(|e| Error::InvalidRequest(e.to_string()))
    })
}

/// The local files of a body, each with what replaces it: a `data:` URI or an `oss://` URL.
async fn resolve_local(
    api: &api::Client,
    body: &Value,
    local: Vec<(String, bool)>,
) -> Result<Vec<(String, String)>> {
    if !api.inner().upload_local_files {
        return Err(Error::InvalidRequest(format!(
            "{:?} is a local path, and this client does not upload local files \
             (Config::upload_local_files)",
            local[0].0
        )));
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Error::InvalidRequest(
                "a request with local files needs a top-level `model` to upload them for"
                    .to_owned(),
            )
        })?
        .to_owned();
    let sources: Vec<UploadSource> = local
        .iter()
        .map(|(s, _)| UploadSource::path(Media::parse(s).as_path()))
        .collect();
    let mut sizes = Vec::with_capacity(sources.len());
    for source in &sources {
        sizes.push(source.size().await?);
    }
    let mut replace = Vec::with_capacity(local.len());
    let mut upload = Vec::new();
    for ((s, takes_inline), (source, size)) in local.into_iter().zip(sources.into_iter().zip(sizes))
    {
        match inline(api, takes_inline, &s, size).await? {
            Some(uri) => replace.push((s, uri)),
            None => upload.push((s, source)),
        }
    }
    let (names, sources): (Vec<String>, Vec<UploadSource>) = upload.into_iter().unzip();
    let results = Uploader::new(api).upload_many(&model, sources, None).await;
    for (name, result) in names.into_iter().zip(results) {
        replace.push((name, result?.url));
    }
    Ok(replace)
}

/// A small file as a `data:` URI, when the client inlines files of its size and every place it
/// sits in takes one; `None` to upload it.
async fn inline(api: &api::Client, takes: bool, path: &str, size: u64) -> Result<Option<String>> {
    if !takes || !upload::inlines(path, size, api.inner().inline_below) {
        return Ok(None);
    }
    let mime = upload::content_type(path);
    let file = Media::parse(path).as_path();
    let bytes = tokio::fs::read(&file).await.map_err(|source| Error::Io {
        path: Some(file.clone()),
        source,
    })?;
    let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
    Ok(Some(format!("data:{mime};base64,{data}")))
}

/// The `oss://` URLs of a request that this client knows end within the cache margin, each
/// with the URL of its file uploaded again; an error, before anything is sent, for one whose
/// file is gone or changed.
async fn renew_stale(api: &api::Client, urls: &[String]) -> Result<Vec<(String, String)>> {
    let uploads = &api.inner().uploads;
    let Some(cache) = uploads.cache() else {
        return Ok(Vec::new());
    };
    let mut renewed = Vec::new();
    for url in urls {
        let UrlState::Stale(entry) = cache.url_state(uploads.account(), url, SystemTime::now())
        else {
            continue;
        };
        let expired = || Error::UrlExpired {
            url: url.clone(),
            expires_at: entry.expires_at(),
            file: entry.source.clone(),
        };
        let Some(path) = entry
            .source
            .clone()
            .filter(|_| api.inner().upload_local_files)
        else {
            return Err(expired());
        };
        if !holds(&path, &entry.content).await {
            return Err(expired());
        }
        tracing::info!(url, "ends within the margin: uploading its file again");
        let file = Uploader::new(api)
            .upload(&entry.model, UploadSource::path(path))
            .await?;
        renewed.push((url.clone(), file.url));
    }
    Ok(renewed)
}

/// Puts each `(from, to)` of `replace` in place of `from` in the media positions of a body.
fn replace_media(body: &mut Value, replace: &[(String, String)]) {
    wire::visit_media(body, &mut |s| {
        if let Some((_, to)) = replace.iter().find(|(from, _)| from == s) {
            *s = to.clone();
        }
    });
}

/// Whether a file still holds the content of this SHA-256 (hashed off the runtime).
async fn holds(path: &std::path::Path, content: &str) -> bool {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || crate::cache::digest_file(&path).ok())
        .await
        .ok()
        .flatten()
        .is_some_and(|digest| digest == content)
}

/// Sends a prepared request on the one execution path. When the service refuses an `oss://`
/// URL of it (invalid URL, or data inspection) that the upload cache knows, the cache forgets
/// it, the file is uploaded again, and the request is sent once more with the new URL: a
/// remembered URL the storage has lost costs one upload, not a failed call.
async fn send_healing(
    api: &api::Client,
    request: reqwest::Request,
    manner: Manner<'_>,
) -> std::result::Result<reqwest::Response, transport::Failure> {
    let inner = api.inner();
    let copy = (inner.uploads.cache().is_some()
        && request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .is_some_and(wire::carries_oss_url))
    .then(|| request.try_clone())
    .flatten();
    let sent = transport::send_raw(api.client(), &inner.key, inner.retry, request, manner).await;
    let failure = match sent {
        Err(f) if matches!(f.error, Error::InvalidUrl(_) | Error::DataInspection(_)) => f,
        other => return other,
    };
    let Some(mut copy) = copy else {
        return Err(failure);
    };
    match heal(api, &mut copy).await {
        Ok(true) => {
            tracing::warn!(error = %failure.error, "a remembered URL was refused: uploaded again, sending once more");
            transport::send_raw(api.client(), &inner.key, inner.retry, copy, manner).await
        }
        Ok(false) => Err(failure),
        Err(error) => Err(transport::Failure {
            error,
            answer: None,
        }),
    }
}

/// Forgets the cached `oss://` URLs of a request's body, uploads their files again and puts
/// the new URLs in; `false` when no URL of the body came from the cache with a file. Boxed for
/// the same reason as [`resolve_media`].
fn heal<'a>(
    api: &'a api::Client,
    request: &'a mut reqwest::Request,
) -> Pin<Box<dyn Future<Output = Result<bool>> + Send + 'a>> {
    Box::pin(heal_body(api, request))
}

async fn heal_body(api: &api::Client, request: &mut reqwest::Request) -> Result<bool> {
    let uploads = &api.inner().uploads;
    let (Some(cache), Some(body)) = (
        uploads.cache(),
        request.body().and_then(reqwest::Body::as_bytes),
    ) else {
        return Ok(false);
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return Ok(false);
    };
    let mut urls: Vec<String> = Vec::new();
    wire::visit_media(&mut value, &mut |s| {
        if wire::is_oss_url(s) && !urls.contains(s) {
            urls.push(s.clone());
        }
    });
    let mut replace = Vec::new();
    for url in urls {
        // Only a URL the cache gave (or a request carried): one uploaded for this very request
        // and refused is the media's fault, not the storage's.
        if !cache.was_served(&url) {
            continue;
        }
        let Some(entry) = cache.entry(uploads.account(), &url) else {
            continue;
        };
        cache.forget_content(&entry);
        let Some(path) = entry.source.clone() else {
            continue;
        };
        // The file must still hold what the URL held: otherwise the answer would be about
        // other content than the request named.
        if !holds(&path, &entry.content).await {
            continue;
        }
        let file = Uploader::new(api)
            .upload(&entry.model, UploadSource::path(path))
            .await?;
        replace.push((url, file.url));
    }
    if replace.is_empty() {
        return Ok(false);
    }
    replace_media(&mut value, &replace);
    let bytes = serde_json::to_vec(&value).map_err(|e| Error::InvalidRequest(e.to_string()))?;
    *request.body_mut() = Some(bytes.into());
    Ok(true)
}

impl ClientHooks<Inner> for api::Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> std::result::Result<(), progenitor_client::Error<E>> {
        prepare(self, request).await.map_err(|error| {
            let message = error.to_string();
            transport::leave_error(error);
            progenitor_client::Error::Custom(message)
        })?;
        // A task submit (marked in the spec) is refused without it.
        if api::ASYNC_OPERATIONS.contains(&info.operation_id) {
            request
                .headers_mut()
                .insert(ASYNC_HEADER, HeaderValue::from_static("enable"));
        }
        Ok(())
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        // What the operation is, from the spec's marks and its method.
        let repeat = if api::ASYNC_OPERATIONS.contains(&info.operation_id) {
            Repeat::Creates
        } else if request.method() == reqwest::Method::GET {
            Repeat::Safe
        } else {
            Repeat::Repeatable
        };
        let manner = Manner {
            repeat,
            limiter: api::TASK_QUERY_OPERATIONS
                .contains(&info.operation_id)
                .then(|| &*self.inner().task_queries),
            answers_in: None,
        };
        match send_healing(self, request, manner).await {
            Ok(response) => {
                transport::note_success(response.status().as_u16(), repeat == Repeat::Creates);
                Ok(response)
            }
            Err(failure) if transport::in_run() => {
                let status = failure.error.status().unwrap_or(502);
                transport::leave_error(failure.error);
                Ok(transport::stand_in(status))
            }
            // A caller of the raw generated client gets the answer itself, or the lost
            // connection, as progenitor would have.
            Err(failure) => match (failure.answer, failure.error) {
                (Some(answer), _) => Ok(answer.into_response()),
                (None, Error::Transport(e) | Error::Timeout(e)) => Err(e),
                (None, error) => Ok(transport::stand_in(error.status().unwrap_or(502))),
            },
        }
    }
}

fn build_http_client(config: &Config) -> Result<reqwest::Client> {
    install_crypto_provider();
    // No redirects: a proxy or portal answering 302 to a form POST would turn it into a GET
    // that "succeeds" without storing anything.
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(config.user_agent.clone())
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout);
    if let Some(timeout) = config.timeout {
        builder = builder.timeout(timeout);
    }
    builder
        .build()
        .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))
}

/// Installs rustls's `ring` crypto provider for the process, unless one is installed already.
///
/// This crate builds reqwest with `rustls-no-provider` (the `ring` backend compiles much faster
/// than the default `aws-lc-rs`); [`Client::new`] calls this by itself. Call it before building
/// a `reqwest::Client` of your own (for [`Config::http_client`]) if nothing else in your
/// program enables reqwest's default TLS: without a provider, reqwest panics when building it.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
