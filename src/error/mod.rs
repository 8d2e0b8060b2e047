//! One error type for everything the crate does, filled from one mapping table.
//!
//! DashScope answers errors in three wire formats: the native JSON `{code, message, request_id}`,
//! the OpenAI-compatible JSON `{error: {message, type, param, code}}`, and OSS XML
//! `<Error><Code>…</Code>…</Error>`. All three are parsed into an [`ApiError`] and classified by
//! one table (`RULES` in `table.rs`) into a variant of [`Error`] that callers `match` on. The raw
//! status, code, message and request id stay reachable on every variant. By concern: the types
//! here, the table in `table.rs`, reading the three wire formats in `parse.rs`.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::Secret;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The most bytes of an error body that are read. Real error bodies are well under 1 KiB; a
/// proxy's HTML page or a runaway body is cut here instead of filling memory.
pub(crate) const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The most bytes of an unparsable body kept in an error, for people to read.
const EXCERPT_LIMIT: usize = 512;

/// Which limit a 429 that waiting cures came from (see [`Error::throttle`]). The service's
/// rate-limiting documentation names per-minute quotas (requests, tokens), per-second limits,
/// and a limit on sudden growth; it says a throttle "typically resumes within one minute".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Throttle {
    /// Too many requests (`Throttling`, `Throttling.RateQuota`, `limit_requests`): a short
    /// backoff.
    Requests,
    /// Too many tokens in the minute (`Throttling.AllocationQuota` natively, `insufficient_quota`
    /// in compatible mode, "You exceeded your current quota"): it clears within about a minute,
    /// so retries wait that out instead of failing.
    Tokens,
    /// Requests rose too quickly ("Request rate increased too quickly"): a short backoff with
    /// jitter, and a steadier ramp-up.
    Burst,
}

/// Which service and wire format an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Service {
    /// The native DashScope API (`/api/v1/...`): JSON `{code, message, request_id}`.
    Native,
    /// The OpenAI-compatible API (`/compatible-mode/v1/...`): JSON `{error: {...}}`.
    Compatible,
    /// The OSS upload host: XML `<Error>`.
    Oss,
}

/// An error answered by DashScope or OSS, as sent.
///
/// Boxed so that `Result<T, Error>` stays small on the happy path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(Box<ApiErrorFields>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct ApiErrorFields {
    status: u16,
    service: Service,
    code: Option<String>,
    message: String,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    detail: Detail,
}

/// The fields only one wire format has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Detail {
    /// OpenAI-compatible `error.type`.
    error_type: Option<String>,
    /// OpenAI-compatible `error.param`.
    param: Option<String>,
    /// OSS `<EC>`, the detailed error code OSS support asks for.
    ec: Option<String>,
}

impl ApiError {
    /// The error of a task that failed, as its query answered it (HTTP 200).
    /// `key` is the one the query was sent with: a server may echo it.
    pub(crate) fn of_task(
        code: Option<String>,
        message: Option<String>,
        request_id: Option<String>,
        key: &Secret,
    ) -> Self {
        ApiError::new(
            ApiErrorFields {
                status: 200,
                service: Service::Native,
                code,
                message: message.unwrap_or_default(),
                request_id,
                retry_after: None,
                detail: Detail::default(),
            },
            &[key],
        )
    }

    /// The one way an `ApiError` is made: every text field a server sent is cleaned
    /// ([`crate::secret::clean`]: the secrets the request knew, then control characters)
    /// before it is kept, so that Display, Debug, the accessors, logs and JSON output all
    /// show the same safe text and no caller can forget it.
    fn new(fields: ApiErrorFields, secrets: &[&Secret]) -> Self {
        let clean = |text: &str| crate::secret::clean(text, secrets);
        let clean_opt = |text: Option<String>| text.map(|t| clean(&t));
        ApiError(Box::new(ApiErrorFields {
            status: fields.status,
            service: fields.service,
            code: clean_opt(fields.code),
            message: clean(&fields.message),
            request_id: clean_opt(fields.request_id),
            retry_after: fields.retry_after,
            detail: Detail {
                error_type: clean_opt(fields.detail.error_type),
                param: clean_opt(fields.detail.param),
                ec: clean_opt(fields.detail.ec),
            },
        }))
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.0.status
    }
    /// The service-specific code, e.g. `Throttling.RateQuota` or `AccessDenied`.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }
    /// The message as the service sent it, with any echoed secret (the API key, an upload
    /// credential's policy, signature or access key id) redacted and control characters
    /// escaped (`\n`, `\x1b`): one line, safe on a terminal. The same holds for every text
    /// field of this type.
    pub fn message(&self) -> &str {
        &self.0.message
    }
    /// The request id, from the body or the `x-oss-request-id`/`x-request-id` header.
    pub fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
    /// Which service answered.
    pub fn service(&self) -> Service {
        self.0.service
    }
    /// The delay the service asked for in `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }
    /// OpenAI-compatible `error.type`, e.g. `invalid_request_error`.
    pub fn error_type(&self) -> Option<&str> {
        self.0.detail.error_type.as_deref()
    }
    /// OpenAI-compatible `error.param`.
    pub fn param(&self) -> Option<&str> {
        self.0.detail.param.as_deref()
    }
    /// OSS's detailed error code (`<EC>`).
    pub fn oss_ec(&self) -> Option<&str> {
        self.0.detail.ec.as_deref()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.0.status)?;
        if let Some(code) = &self.0.code {
            write!(f, " {code}")?;
        }
        if !self.0.message.is_empty() {
            write!(f, ": {}", self.0.message)?;
        }
        if let Some(id) = &self.0.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// A body that could not be parsed: an HTML page from a proxy, truncated JSON, an empty body,
/// a credential with a missing field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(Box<DecodeFields>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct DecodeFields {
    status: Option<u16>,
    reason: String,
    excerpt: String,
    request_id: Option<String>,
}

impl DecodeError {
    /// The HTTP status of the response, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }
    /// Why the body could not be read.
    pub fn reason(&self) -> &str {
        &self.0.reason
    }
    /// The start of the body (at most 512 bytes, lossily decoded, line breaks and tabs shown as
    /// spaces, other control characters escaped, echoed secrets redacted).
    pub fn excerpt(&self) -> &str {
        &self.0.excerpt
    }
    /// The request id from the response headers, if any.
    pub fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.status {
            Some(status) => write!(f, "HTTP {status}: {}", self.0.reason)?,
            None => f.write_str(&self.0.reason)?,
        }
        write!(f, "; body starts {:?}", self.0.excerpt)?;
        if let Some(id) = &self.0.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong. Match on the variants you handle; every variant answers
/// [`status`](Error::status), [`code`](Error::code), [`message`](Error::message),
/// [`request_id`](Error::request_id) and [`is_retryable`](Error::is_retryable).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 401 `InvalidApiKey`: the key is wrong, revoked, of another region, or was not sent.
    #[error("invalid API key: {0}")]
    InvalidApiKey(ApiError),
    /// An upload credential refused as `InvalidApiKey` or `AccessDenied` by a client set to a
    /// region where the temporary storage is not documented
    /// ([`Region::has_temporary_storage`](crate::Region::has_temporary_storage)): the key may be
    /// right and the storage absent there. Use a key of China (Beijing) or Singapore for files.
    #[error(
        "the temporary storage is documented only in China (Beijing) and Singapore, and this client is set to region {region}: {error}"
    )]
    StorageNotInRegion {
        /// The client's region.
        region: crate::region::Region,
        /// The service's refusal.
        error: ApiError,
    },
    /// 429 that waiting cures: too many requests (`Throttling`, `Throttling.RateQuota`), too
    /// many tokens in the minute (`Throttling.AllocationQuota`, compatible `insufficient_quota`),
    /// or a burst; [`Error::throttle`] tells which. The upload credential API allows 100
    /// requests per second per account and model.
    #[error("rate limited: {0}")]
    RateLimited(ApiError),
    /// A quota that is really gone: a free allocation used up (`AllocationQuota.FreeTierOnly`,
    /// "Free allocated quota exceeded"); retrying does not help.
    #[error("quota exhausted: {0}")]
    QuotaExhausted(ApiError),
    /// 403 `AccessDenied` "Policy expired": the upload credential ran out; get a new one.
    #[error("upload credential expired: {0}")]
    PolicyExpired(ApiError),
    /// 403 `AccessDenied` "Request has expired" from the storage: a presigned link (a task's
    /// result URL) is past its `Expires`. Result links last 24 hours; after that the task must
    /// run again.
    #[error("link expired: {0}")]
    LinkExpired(ApiError),
    /// 403 `AccessDenied` "Policy Condition failed": the form broke a condition of the policy
    /// (a key outside `upload_dir`, a changed ACL, ...).
    #[error("upload refused by the policy: {0}")]
    PolicyConditionFailed(ApiError),
    /// 403 `SignatureDoesNotMatch`: the policy or its signature was altered.
    #[error("upload signature mismatch: {0}")]
    SignatureMismatch(ApiError),
    /// 403 `InvalidAccessKeyId`: OSS does not know the credential's access key id.
    #[error("unknown OSS access key id: {0}")]
    InvalidAccessKeyId(ApiError),
    /// 400 from OSS for a malformed form: `InvalidArgument`, `InvalidPolicyDocument`,
    /// `MalformedPOSTRequest`, `RequestIsNotMultiPartContent`,
    /// `IncorrectNumberOfFilesInPOSTRequest`, `InvalidObjectName`.
    #[error("upload form rejected: {0}")]
    InvalidUploadForm(ApiError),
    /// 400 `EntityTooLarge`: the file is over the policy's size range.
    #[error("file too large for the upload policy: {0}")]
    EntityTooLarge(ApiError),
    /// 400 `EntityTooSmall`: the file is under the policy's size range.
    #[error("file too small for the upload policy: {0}")]
    EntityTooSmall(ApiError),
    /// 409 `FileAlreadyExists`: the key exists and the policy forbids overwriting.
    #[error("file already exists: {0}")]
    FileAlreadyExists(ApiError),
    /// 400 `invalid_parameter_error` "The provided URL does not appear to be valid".
    #[error(
        "invalid URL: {0} (a request carrying an oss:// URL needs the header \
         `X-DashScope-OssResourceResolve: enable`; this client adds it by itself, so check that \
         the URL is complete, not expired, and uploaded for this model and account)"
    )]
    InvalidUrl(ApiError),
    /// 400 `InvalidParameter.DataInspection`: the media is not a format the model reads.
    #[error("media not readable by the model: {0}")]
    DataInspection(ApiError),
    /// 400 `DataInspectionFailed`: input or output was rejected as inappropriate.
    #[error("content rejected by inspection: {0}")]
    ContentRejected(ApiError),
    /// 400 `InvalidParameter`: the request is missing or has a wrong parameter.
    #[error("invalid parameter: {0}")]
    InvalidParameter(ApiError),
    /// 403 `AccessDenied` (not about a policy), `AccessDenied.Unpurchased`.
    #[error("access denied: {0}")]
    AccessDenied(ApiError),
    /// 400 `Arrearage`: the account is not in good standing.
    #[error("account in arrears: {0}")]
    Arrearage(ApiError),
    /// 404 `ModelNotFound`.
    #[error("model not found: {0}")]
    ModelNotFound(ApiError),
    /// 413 `BadRequest.TooLarge`: the request body is too large.
    #[error("request too large: {0}")]
    RequestTooLarge(ApiError),
    /// 5xx `InternalError`, `InternalError.Algo`, or any 5xx: the service failed; retrying may succeed.
    #[error("server error: {0}")]
    ServerError(ApiError),
    /// 400 `UnsupportedOperation`: e.g. cancelling a task that is no longer `PENDING`.
    #[error("unsupported operation: {0}")]
    UnsupportedOperation(ApiError),
    /// Any other error the service answered.
    #[error("API error: {0}")]
    Api(ApiError),
    /// A task ended `FAILED`: its `output.code` and `output.message`, answered at HTTP 200
    /// (so `status()` is `Some(200)` for this error), with the request id of the query that
    /// saw it.
    #[error("task {task_id} failed: {error}")]
    TaskFailed {
        /// The task.
        task_id: String,
        /// Its code, message and request id.
        error: ApiError,
    },
    /// A task ended `CANCELED`.
    #[error("task {task_id} was cancelled")]
    TaskCanceled {
        /// The task.
        task_id: String,
    },
    /// The service does not know the task (`UNKNOWN`): a wrong id, another account's, or one
    /// older than the 24 hours tasks are kept.
    #[error(
        "task {task_id} is unknown: a wrong id, another account's, or expired (tasks are kept 24 hours)"
    )]
    TaskUnknown {
        /// The task.
        task_id: String,
    },
    /// A wait ran out of time before the task ended; the task goes on.
    // `status` is the service's `task_status` as sent (a state this version does not know is
    // kept as text): escaped when shown, like every server text in an error.
    #[error(
        "gave up waiting for task {task_id} after {waited:?}: it is still {}",
        crate::secret::printable(status)
    )]
    WaitTimeout {
        /// The task.
        task_id: String,
        /// Its last state.
        status: String,
        /// How long the wait lasted.
        waited: Duration,
    },
    /// A task submit failed in a way that may have reached the service (a 5xx, a lost
    /// connection or answer): the task may exist, so it was not sent again. Look for it
    /// ([`Client::list_tasks`](crate::Client::list_tasks)) before submitting again.
    #[error(
        "{0}; the submit may have arrived, so the task may exist: it was not sent again (find it with Client::list_tasks, or `dashscope task list`, before submitting again)"
    )]
    MayHaveSubmitted(Box<Error>),
    /// A response whose body could not be parsed.
    #[error("unreadable response: {0}")]
    Decode(DecodeError),
    /// No API key was configured (`DASHSCOPE_API_KEY` or `Config::api_key`).
    #[error("no API key: set DASHSCOPE_API_KEY (or Config::api_key, or --api-key)")]
    MissingApiKey,
    /// The configuration is invalid (a malformed base URL, a key with a control character, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The request could not be built.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The connection failed or broke.
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// A connect, read or total timeout elapsed.
    #[error("timed out: {0}")]
    Timeout(#[source] reqwest::Error),
    /// A call ran past its deadline ([`RetryPolicy::deadline`](crate::RetryPolicy::deadline)),
    /// every attempt and wait included, or a stream went that long (its read timeout) without
    /// an event, keep-alive comments aside.
    #[error("{what} took longer than {limit:?}; given up")]
    DeadlineExceeded {
        /// What ran out of time: "the call", "the stream".
        what: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// A file is larger than the model's `max_file_size_mb`; nothing was sent.
    #[error("{name} is {size} bytes, over the model's limit of {limit} bytes; nothing was sent")]
    FileTooLarge {
        /// The name it would have been uploaded under.
        name: String,
        /// The file, for a path source.
        path: Option<PathBuf>,
        /// Its size.
        size: u64,
        /// The credential's limit.
        limit: u64,
    },
    /// An empty file. OSS would store it, but a model refuses it with
    /// `InvalidParameter.DataInspection`, so it is refused before any request.
    #[error(
        "{name} is empty: a model would refuse it (InvalidParameter.DataInspection); nothing was sent"
    )]
    EmptyFile {
        /// The name it would have been uploaded under.
        name: String,
        /// The file, for a path source.
        path: Option<PathBuf>,
    },
    /// A path that is not a regular file (a directory, a FIFO, a device).
    #[error("{}: not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A local file a request named that this client does not upload
    /// ([`Config::upload_local_files`](crate::Config::upload_local_files)): local files are
    /// off, or its real path (symlinks resolved) lies outside the admitted directories, or
    /// under `/proc`, `/sys` or `/dev`. Nothing was uploaded or sent.
    #[error("{}: not uploaded: {reason}; nothing was sent", path.display())]
    LocalFileRefused {
        /// The file, as the request named it.
        path: PathBuf,
        /// Why, in a few words.
        reason: &'static str,
    },
    /// An `oss://` URL in a request ends within the cache margin (or has ended), and its file
    /// is gone or has changed, so it cannot be uploaded again: nothing was sent.
    #[error(
        "{url} expires at {}, within the upload cache margin, and cannot be uploaded again ({}); nothing was sent",
        crate::timefmt::format_iso8601(*expires_at),
        file.as_ref().map_or("its file is not known".into(), |p| format!("{} is gone, changed, or not to be uploaded", p.display()))
    )]
    UrlExpired {
        /// The URL.
        url: String,
        /// When it stops (or stopped) resolving.
        expires_at: std::time::SystemTime,
        /// The file it was uploaded from, when known.
        file: Option<PathBuf>,
    },
    /// A local file could not be read.
    #[error("{}: {source}", path.as_ref().map_or("I/O error".into(), |p| p.display().to_string()))]
    Io {
        /// The file, when there is one.
        path: Option<PathBuf>,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The API error, for the variants that carry one.
    pub fn api_error(&self) -> Option<&ApiError> {
        use Error::*;
        match self {
            InvalidApiKey(e)
            | RateLimited(e)
            | QuotaExhausted(e)
            | PolicyExpired(e)
            | LinkExpired(e)
            | PolicyConditionFailed(e)
            | SignatureMismatch(e)
            | InvalidAccessKeyId(e)
            | InvalidUploadForm(e)
            | EntityTooLarge(e)
            | EntityTooSmall(e)
            | FileAlreadyExists(e)
            | InvalidUrl(e)
            | DataInspection(e)
            | ContentRejected(e)
            | InvalidParameter(e)
            | AccessDenied(e)
            | Arrearage(e)
            | ModelNotFound(e)
            | RequestTooLarge(e)
            | ServerError(e)
            | UnsupportedOperation(e)
            | Api(e)
            | TaskFailed { error: e, .. }
            | StorageNotInRegion { error: e, .. } => Some(e),
            MayHaveSubmitted(inner) => inner.api_error(),
            Decode(_)
            | MissingApiKey
            | Config(_)
            | InvalidRequest(_)
            | Transport(_)
            | Timeout(_)
            | DeadlineExceeded { .. }
            | Io { .. }
            | FileTooLarge { .. }
            | EmptyFile { .. }
            | NotAFile { .. }
            | LocalFileRefused { .. }
            | UrlExpired { .. }
            | TaskCanceled { .. }
            | TaskUnknown { .. }
            | WaitTimeout { .. } => None,
        }
    }

    /// The HTTP status, when a response was received.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Decode(d) => d.status(),
            Error::Transport(e) | Error::Timeout(e) => e.status().map(|s| s.as_u16()),
            Error::MayHaveSubmitted(inner) => inner.status(),
            other => other.api_error().map(ApiError::status),
        }
    }

    /// The service's error code (e.g. `Throttling.RateQuota`), when it sent one.
    pub fn code(&self) -> Option<&str> {
        self.api_error().and_then(ApiError::code)
    }

    /// The service's message for API errors; a description for the others.
    pub fn message(&self) -> Cow<'_, str> {
        match self.api_error() {
            Some(e) => Cow::Borrowed(e.message()),
            None => Cow::Owned(self.to_string()),
        }
    }

    /// The request id, when the service sent one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Decode(d) => d.request_id(),
            Error::MayHaveSubmitted(inner) => inner.request_id(),
            other => other.api_error().and_then(ApiError::request_id),
        }
    }

    /// Whether the same operation may succeed if tried again: throttling, server errors,
    /// timeouts, broken connections, and an upload credential OSS no longer accepts (after
    /// fetching a new one). Decided by the crate's one retry classifier.
    pub fn is_retryable(&self) -> bool {
        classify(self).is_retryable()
    }

    /// Whether this is a 429 that waiting cures (not an exhausted quota).
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Error::RateLimited(_))
    }

    /// The delay the service asked for (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.api_error().and_then(ApiError::retry_after)
    }

    /// Which throttle a [`Error::RateLimited`] is, by its code and message (the rows of the
    /// error table): it decides how long a retry waits.
    pub fn throttle(&self) -> Option<Throttle> {
        let Error::RateLimited(e) = self else {
            return self.may_have_submitted_inner().and_then(Error::throttle);
        };
        let message = e.message().to_ascii_lowercase();
        Some(if message.contains("rate increased too quickly") {
            Throttle::Burst
        } else if matches!(
            e.code(),
            Some("Throttling.AllocationQuota" | "insufficient_quota")
        ) {
            Throttle::Tokens
        } else {
            Throttle::Requests
        })
    }

    fn may_have_submitted_inner(&self) -> Option<&Error> {
        match self {
            Error::MayHaveSubmitted(inner) => Some(inner),
            _ => None,
        }
    }

    /// The one way a transport error is kept: its URL redacted
    /// ([`crate::secret::redact_transport`]), since reqwest quotes it and a presigned link's
    /// query is its credential.
    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        let e = crate::secret::redact_transport(e);
        if e.is_timeout() {
            Error::Timeout(e)
        } else {
            Error::Transport(e)
        }
    }

    /// The same error again, for another caller waiting on the same failed request: API
    /// errors and unreadable answers can be repeated; a transport error cannot (`None`).
    pub(crate) fn repeat(&self) -> Option<Error> {
        match self {
            Error::Decode(d) => Some(Error::Decode(d.clone())),
            other => other.api_error().cloned().map(Error::from),
        }
    }

    /// An answer that could not be read, from a host that was sent no secret (or a body with
    /// none to hide): see [`Error::decode_hiding`].
    pub(crate) fn decode(
        status: Option<u16>,
        reason: impl Into<String>,
        body: &[u8],
        request_id: Option<String>,
    ) -> Self {
        Error::decode_hiding(&[], status, reason, body, request_id)
    }

    /// An answer that could not be read, its reason, excerpt and request id cleaned of
    /// `secrets` and of control characters ([`crate::secret::clean`]) before they are kept:
    /// the one way a [`DecodeError`] is made.
    pub(crate) fn decode_hiding(
        secrets: &[&Secret],
        status: Option<u16>,
        reason: impl Into<String>,
        body: &[u8],
        request_id: Option<String>,
    ) -> Self {
        let clean = |text: &str| crate::secret::clean(text, secrets);
        Error::Decode(DecodeError(Box::new(DecodeFields {
            status,
            reason: clean(&reason.into()),
            excerpt: clean(&parse::excerpt(body)),
            request_id: request_id.map(|id| clean(&id)),
        })))
    }
}

/// A conversion that cannot fail (a request passed as it is).
impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

mod class;
mod parse;
mod table;

pub(crate) use class::{Class, classify};

pub(crate) use parse::from_response;

#[cfg(test)]
#[path = "table_tests.rs"]
mod table_tests;
