//! The [`Client`]: the generated API plus what the spec cannot say (authentication, error
//! mapping, which headers go out).

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Once};

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo, ResponseValue};
use reqwest::header::{AUTHORIZATION, HeaderValue};

use crate::api::{self, types};
use crate::config::normalize_base_url;
use crate::error::{ERROR_BODY_LIMIT, Service, from_response};
use crate::{Config, Error, Result, Secret};

/// What the generated client's hooks need: the key, as a ready header.
#[derive(Debug, Clone)]
pub struct Inner {
    key: Secret,
    authorization: HeaderValue,
}

/// A DashScope client. Cheap to clone; clones share the connection pool.
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
    pub(crate) uploads: Arc<crate::upload::Uploads>,
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
        let inner = Inner { key, authorization };
        let uploads = crate::upload::Uploads::new(crate::upload::UploadSettings {
            retry: config.retry,
            concurrency: config.upload_concurrency,
            credential_rate: config.credential_rate,
            credential_margin: config.credential_margin,
            allow_insecure_http: config.allow_insecure_http,
        });
        Ok(Self {
            api: Arc::new(api::Client::new_with_client(&base_url, http, inner)),
            uploads: Arc::new(uploads),
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

    /// The generated client, for operations this crate does not wrap. Its calls are
    /// authenticated, but errors come back as progenitor's `Error<E>`, not as [`Error`].
    pub fn api(&self) -> &api::Client {
        &self.api
    }

    /// The `Authorization` header (marked sensitive), for the hand-written streaming calls.
    pub(crate) fn authorization(&self) -> HeaderValue {
        self.api.inner().authorization.clone()
    }

    /// The API key, to scrub it from error messages.
    pub(crate) fn key(&self) -> &Secret {
        &self.api.inner().key
    }

    /// The HTTP client, shared with the upload path (which never sends the API key to OSS).
    pub(crate) fn http(&self) -> &reqwest::Client {
        self.api.client()
    }

    /// Gets an upload credential for `model` (`GET /api/v1/uploads?action=getPolicy`).
    pub async fn upload_policy(&self, model: &str) -> Result<types::UploadPolicyResponse> {
        if model.trim().is_empty() {
            return Err(Error::InvalidRequest("the model name is empty".to_owned()));
        }
        let call = self
            .api
            .get_upload_policy(types::UploadAction::GetPolicy, model);
        // A credential body holds the policy, its signature and the access key id: if it cannot
        // be decoded, say why but never quote it.
        self.run(Service::Native, call).await.map_err(|e| match e {
            Error::Decode(d) => Error::decode(
                d.status(),
                d.reason(),
                b"[withheld: a credential]",
                d.request_id().map(str::to_owned),
            ),
            other => other,
        })
    }

    /// An OpenAI-compatible chat completion (not streamed).
    pub async fn chat_completion(
        &self,
        request: &types::ChatCompletionRequest,
    ) -> Result<types::ChatCompletionResponse> {
        self.run(
            Service::Compatible,
            self.api.create_chat_completion(request),
        )
        .await
    }

    /// A native multimodal generation (not streamed).
    pub async fn multimodal_generation(
        &self,
        request: &types::MultimodalGenerationRequest,
    ) -> Result<types::MultimodalGenerationResponse> {
        self.run(
            Service::Native,
            self.api.create_multimodal_generation(request),
        )
        .await
    }

    /// Runs one generated call and turns its outcome into this crate's types. The `exec` hook
    /// below parses error responses inside this scope, where it knows which service answered.
    async fn run<T, E>(
        &self,
        service: Service,
        call: impl Future<Output = std::result::Result<ResponseValue<T>, progenitor_client::Error<E>>>,
    ) -> Result<T> {
        let (outcome, exchange) = EXCHANGE
            .scope(RefCell::new(Exchange::new(service)), async {
                let outcome = call.await;
                (
                    outcome,
                    EXCHANGE.with(|x| x.replace(Exchange::new(service))),
                )
            })
            .await;
        match (outcome, exchange.error) {
            (Ok(value), _) => Ok(value.into_inner()),
            (Err(_), Some(error)) => Err(error),
            (Err(e), None) => Err(self.map_progenitor_error(e, exchange.status)),
        }
    }

    fn map_progenitor_error<E>(
        &self,
        e: progenitor_client::Error<E>,
        status: Option<u16>,
    ) -> Error {
        use progenitor_client::Error as P;
        match e {
            P::CommunicationError(e) | P::ResponseBodyError(e) | P::InvalidUpgrade(e) => {
                Error::from_reqwest(e)
            }
            P::InvalidResponsePayload(body, e) => Error::decode(
                status,
                crate::secret::scrub(&e.to_string(), &self.api.inner().key),
                &body,
                None,
            ),
            P::InvalidRequest(msg) | P::Custom(msg) => Error::InvalidRequest(msg),
            // Error statuses are turned into `Error` by the exec hook; what is left is a status
            // the spec does not list (a 1xx/3xx the HTTP client did not follow).
            P::ErrorResponse(rv) => Error::decode(
                Some(rv.status().as_u16()),
                "unexpected error response",
                &[],
                None,
            ),
            P::UnexpectedResponse(resp) => Error::decode(
                Some(resp.status().as_u16()),
                "unexpected response status",
                &[],
                None,
            ),
        }
    }
}

/// What one call learned on the wire, kept for the duration of [`Client::run`].
struct Exchange {
    service: Service,
    status: Option<u16>,
    error: Option<Error>,
}

impl Exchange {
    fn new(service: Service) -> Self {
        Self {
            service,
            status: None,
            error: None,
        }
    }
}

tokio::task_local! {
    static EXCHANGE: RefCell<Exchange>;
}

impl ClientHooks<Inner> for api::Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> std::result::Result<(), progenitor_client::Error<E>> {
        // The service reads oss:// URLs only when told to; sent exactly when the body has one.
        let oss = crate::chat::Api::of_operation(info.operation_id).is_some_and(|api| {
            request
                .body()
                .and_then(reqwest::Body::as_bytes)
                .is_some_and(|body| crate::chat::carries_oss_url(api, body))
        });
        let headers = request.headers_mut();
        // progenitor sends the spec's `info.version` as `api-version`; DashScope has no such header.
        headers.remove("api-version");
        headers.insert(AUTHORIZATION, self.inner().authorization.clone());
        // Every documented DashScope request carries `Content-Type: application/json`, the
        // bodiless `GET /api/v1/uploads` included (the documentation lists it as required).
        headers
            .entry(reqwest::header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static("application/json"));
        if oss {
            headers.insert(
                crate::chat::OSS_RESOLVE_HEADER,
                HeaderValue::from_static("enable"),
            );
        }
        Ok(())
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let response = self.client().execute(request).await?;
        let status = response.status();
        let Ok(service) = EXCHANGE.try_with(|x| {
            let mut x = x.borrow_mut();
            x.status = Some(status.as_u16());
            x.service
        }) else {
            // Called through `Client::api()`: leave the response to progenitor.
            return Ok(response);
        };
        if status.is_success() {
            return Ok(response);
        }
        // Read at most ERROR_BODY_LIMIT bytes of the error body and classify it here, where the
        // status and headers are still at hand (progenitor drops them for unparsable bodies).
        let headers = response.headers().clone();
        let (body, truncated) = match read_limited(response, ERROR_BODY_LIMIT).await {
            Ok(read) => read,
            Err(e) => {
                let _ = EXCHANGE.try_with(|x| x.borrow_mut().error = Some(Error::from_reqwest(e)));
                return Ok(empty_response(status));
            }
        };
        let error = from_response(
            service,
            status.as_u16(),
            &headers,
            &body,
            truncated,
            Some(&self.inner().key),
        );
        tracing::debug!(
            status = status.as_u16(),
            code = error.code(),
            request_id = error.request_id(),
            "dashscope error response"
        );
        let _ = EXCHANGE.try_with(|x| x.borrow_mut().error = Some(error));
        Ok(empty_response(status))
    }
}

/// A stand-in for an error response whose body was consumed above; progenitor's result for it
/// is discarded in [`Client::run`].
fn empty_response(status: reqwest::StatusCode) -> reqwest::Response {
    let mut response = http::Response::new(Vec::<u8>::new());
    *response.status_mut() = status;
    reqwest::Response::from(response)
}

/// Reads up to `limit` bytes of a body; says whether there was more.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> reqwest::Result<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
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
