//! The [`Client`]: the generated API plus what the spec cannot say. Its hooks are the front of
//! the one execution path every operation takes: `pre` authenticates, uploads the local files
//! a body names and adds the OSS header by the generic rule of [`crate::wire`]; `exec` hands the
//! request to [`crate::transport`], which retries, maps errors and traces.

use std::future::Future;
use std::sync::{Arc, Once};

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::Value;

use crate::api::{self, types};
use crate::attempt::Repeat;
use crate::cache::UploadCache;
use crate::config::UploadCacheSetting;
use crate::config::normalize_base_url;
use crate::media::{prepare, send_healing};
use crate::retry::RateLimiter;
use crate::session::{Inner, TASK_QUERIES_PER_SECOND, TASK_QUERY_WINDOW, UploadSettings, Uploads};
use crate::transport::{self, Manner};
use crate::upload::{UploadBatch, Uploader};
use crate::wire::ASYNC_HEADER;
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
        if let Some(error) = &config.deferred_error {
            return Err(Error::Config(error.clone()));
        }
        let workspace = match &config.workspace {
            Some(id) if !crate::config::valid_workspace(id) => {
                return Err(Error::Config(format!(
                    "workspace {id:?}: an id is letters, digits, `_` and `-`, at most 64, starting with a letter or digit"
                )));
            }
            Some(id) => HeaderValue::from_str(id).ok(),
            None => None,
        };
        if config.base_url.is_empty() {
            return Err(Error::Config(format!(
                "the region {} is reached only through a workspace domain: set a workspace \
                 (Config::workspace, {}) or a base URL",
                config.region,
                crate::config::ENV_WORKSPACE_ID
            )));
        }
        let base_url = normalize_base_url(&config.base_url, config.allow_insecure_http)?;
        let http = match config.http_client.clone() {
            Some(client) => client,
            None => build_http_client(&config)?,
        };
        let margin = config.upload_cache_margin;
        let cache = match &config.upload_cache {
            UploadCacheSetting::Off => None,
            UploadCacheSetting::Memory => Some(UploadCache::new(None, margin)),
            UploadCacheSetting::Dir(dir) => Some(UploadCache::new(Some(dir.clone()), margin)),
        };
        // Clients that keep their state in one folder (every `dashscope` command does) share
        // the account's budgets of task queries and credential requests there.
        let account = crate::cache::account_digest(&key, &base_url);
        let budget_dir = match &config.upload_cache {
            UploadCacheSetting::Dir(dir) => Some(dir.clone()),
            _ => None,
        };
        let mut task_queries = RateLimiter::with_window(TASK_QUERIES_PER_SECOND, TASK_QUERY_WINDOW);
        if let Some(dir) = &budget_dir {
            task_queries = task_queries.shared_in(dir.clone(), "task-queries", account.clone());
        }
        let inner = Inner {
            authorization,
            workspace,
            region: config.region,
            stream_idle: config.read_timeout,
            retry: config.retry,
            local_files: config.local_files.clone(),
            inline_below: config.inline_below,
            task_queries: Arc::new(task_queries),
            uploads: Arc::new(Uploads::new(UploadSettings {
                retry: config.retry,
                concurrency: config.upload_concurrency,
                credential_rate: config.credential_rate,
                credential_margin: config.credential_margin,
                allow_insecure_http: config.allow_insecure_http,
                cache: cache.map(Arc::new),
                account,
                budget_dir,
                observer: config.on_upload.clone(),
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
    /// Awaited, the batch is one outcome per source, in input order; a failure loses none of
    /// the others. As a stream it yields those outcomes as the uploads end (still in input
    /// order), and it can be stopped from starting more ([`UploadBatch`]). Progress goes to
    /// [`Config::on_upload`].
    ///
    /// ```no_run
    /// # async fn run(client: dashscope_oss::Client) {
    /// use futures_util::StreamExt;
    /// let mut batch = client.upload_many("qwen-vl-plus", ["a.png", "b.png"]);
    /// let stop = batch.stop_handle(); // e.g. for a Ctrl-C handler: `stop.stop()`
    /// while let Some(outcome) = batch.next().await {
    ///     match outcome {
    ///         Ok(file) => println!("{}", file.url),
    ///         Err(e) => eprintln!("{e}"),
    ///     }
    /// }
    /// # drop(stop); }
    /// ```
    pub fn upload_many<I, S>(&self, model: &str, sources: I) -> UploadBatch<'_>
    where
        I: IntoIterator<Item = S>,
        S: Into<UploadSource>,
    {
        let sources = sources.into_iter().map(Into::into).collect();
        UploadBatch::new(Uploader::new(&self.api), model, sources)
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
            success_limit: Some(api::success_limit(info.operation_id)),
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
