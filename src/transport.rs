//! The one execution path of a request to DashScope: send it, read an error answer and map it
//! through the one table, retry through the one classifier, trace each attempt. Every generated
//! operation reaches it through the client's `exec` hook, and the hand-written streams call it
//! directly, so an operation added to the spec gets all of this with no code of its own.
//!
//! A leaf beside `error` and `retry`: it knows requests and responses, not uploads or chats.

use std::cell::RefCell;
use std::future::Future;

use progenitor_client::ResponseValue;
use tracing::Instrument;

use crate::error::{ERROR_BODY_LIMIT, Service, from_response};
use crate::retry::{Class, RateLimiter, RetryPolicy, classify};
use crate::{Error, Result, Secret};

/// Which wire format answers a request, by its path: one rule for every operation.
pub(crate) fn service_of(url: &reqwest::Url) -> Service {
    if url.path().starts_with("/compatible-mode/") {
        Service::Compatible
    } else {
        Service::Native
    }
}

/// A request that failed: the typed error, and the error answer as received, if there was one
/// (for callers of the raw generated client, who parse it themselves).
pub(crate) struct Failure {
    pub(crate) error: Error,
    pub(crate) answer: Option<Answer>,
}

/// An error answer as received (its body cut at `ERROR_BODY_LIMIT`).
pub(crate) struct Answer {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    /// The answer again, for progenitor to read.
    pub(crate) fn into_response(self) -> reqwest::Response {
        let mut response = http::Response::new(self.body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        reqwest::Response::from(response)
    }
}

/// How an operation may be sent, from the spec's marks on it.
#[derive(Clone, Copy, Default)]
pub(crate) struct Manner<'a> {
    /// It creates something (a task submit): it is not sent again once it may have arrived.
    pub(crate) creates: bool,
    /// Every attempt takes a slot of this limiter first (task queries).
    pub(crate) limiter: Option<&'a RateLimiter>,
    /// The wire format of the host's error answers, when it is not DashScope's (which is told
    /// by the path): a presigned result link is answered by OSS, in its XML.
    pub(crate) answers_in: Option<Service>,
}

/// Sends `request`, retrying what the classifier says is worth retrying, and turns an error
/// answer into an [`Error`]. A request whose body cannot be cloned (a stream) is sent once.
pub(crate) async fn send_raw(
    http: &reqwest::Client,
    key: &Secret,
    retry: RetryPolicy,
    request: reqwest::Request,
    manner: Manner<'_>,
) -> std::result::Result<reqwest::Response, Failure> {
    let service = manner
        .answers_in
        .unwrap_or_else(|| service_of(request.url()));
    let span = tracing::debug_span!(
        "dashscope.request",
        method = %request.method(),
        path = request.url().path(),
        attempts = tracing::field::Empty,
    );
    async move {
        let mut attempt = 0u32;
        let mut request = Some(request);
        loop {
            attempt += 1;
            tracing::Span::current().record("attempts", attempt);
            let Some(current) = request.take() else {
                // Unreachable: the loop continues only after putting a clone back.
                return Err(Failure {
                    error: Error::InvalidRequest("no request to send".to_owned()),
                    answer: None,
                });
            };
            let spare = current.try_clone();
            if let Some(limiter) = manner.limiter {
                limiter.acquire("").await;
            }
            let failure = match execute(http, key, service, current).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            let error = &failure.error;
            // An operation that creates nothing can be sent twice with no harm beyond cost (a
            // repeated model call spends its tokens again): throttling, server errors and lost
            // connections are all retried. One that creates a task is repeated only after a
            // failure that proves it was not acted on; otherwise the error says it may exist.
            let class = classify(error);
            if manner.creates && class.may_have_arrived() && !never_sent(error) {
                return Err(Failure {
                    error: Error::MayHaveSubmitted(Box::new(failure.error)),
                    answer: failure.answer,
                });
            }
            let retry_it = class.is_retryable()
                && class != Class::StaleCredential
                && attempt < retry.max_attempts
                && spare.is_some();
            if !retry_it {
                return Err(failure);
            }
            let wait = retry.backoff(attempt, error.retry_after());
            tracing::warn!(error = %error, attempt, ?wait, "request failed, retrying");
            tokio::time::sleep(wait).await;
            request = spare;
        }
    }
    .instrument(span)
    .await
}

/// A failure before the request left: no connection was made.
fn never_sent(error: &Error) -> bool {
    matches!(error, Error::Transport(e) | Error::Timeout(e) if e.is_connect())
}

/// One attempt: a success answer as it is, an error answer as an [`Error`].
async fn execute(
    http: &reqwest::Client,
    key: &Secret,
    service: Service,
    request: reqwest::Request,
) -> std::result::Result<reqwest::Response, Failure> {
    let lost = |e| Failure {
        error: Error::from_reqwest(e),
        answer: None,
    };
    let response = http.execute(request).await.map_err(lost)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    // At most ERROR_BODY_LIMIT bytes are read: a proxy's endless page costs nothing.
    let headers = response.headers().clone();
    let (body, truncated) = read_limited(response, ERROR_BODY_LIMIT)
        .await
        .map_err(lost)?;
    let error = from_response(
        service,
        status.as_u16(),
        &headers,
        &body,
        truncated,
        Some(key),
    );
    tracing::debug!(
        status = status.as_u16(),
        code = error.code(),
        request_id = error.request_id(),
        "dashscope error response"
    );
    Err(Failure {
        error,
        answer: Some(Answer {
            status,
            headers,
            body,
        }),
    })
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

/// What the hooks of one generated call learned: the status of a success (to describe a body
/// that does not decode) and the typed error, which progenitor's own error type cannot carry.
#[derive(Default)]
struct Exchange {
    status: Option<u16>,
    error: Option<Error>,
    /// The operation creates something (a task submit): see [`Manner::creates`].
    creates: bool,
}

tokio::task_local! {
    static EXCHANGE: RefCell<Exchange>;
}

/// Whether the current generated call runs inside [`run`] (not through the raw client).
pub(crate) fn in_run() -> bool {
    EXCHANGE.try_with(|_| ()).is_ok()
}

/// Leaves the typed error of the current generated call for [`run`] (outside it, a no-op).
pub(crate) fn leave_error(error: Error) {
    let _ = EXCHANGE.try_with(|x| x.borrow_mut().error = Some(error));
}

/// Records the status of a success answer for [`run`], and whether the operation creates
/// something.
pub(crate) fn note_success(status: u16, creates: bool) {
    let _ = EXCHANGE.try_with(|x| {
        let mut x = x.borrow_mut();
        x.status = Some(status);
        x.creates = creates;
    });
}

/// Runs one generated call and turns its outcome into this crate's types.
pub(crate) async fn run<T, E>(
    key: &Secret,
    call: impl Future<Output = std::result::Result<ResponseValue<T>, progenitor_client::Error<E>>>,
) -> Result<T> {
    let (outcome, exchange) = EXCHANGE
        .scope(RefCell::new(Exchange::default()), async {
            let outcome = call.await;
            (outcome, EXCHANGE.with(|x| x.take()))
        })
        .await;
    match (outcome, exchange.error) {
        (Ok(value), _) => Ok(value.into_inner()),
        (Err(_), Some(error)) => Err(error),
        (Err(e), None) => {
            let error = map_progenitor_error(e, exchange.status, key);
            Err(if exchange.creates {
                after_success_of_a_create(error)
            } else {
                error
            })
        }
    }
}

/// An operation that creates something was answered 2xx, but the answer was lost or could not
/// be read: it was acted on, so it may exist. The other half of the rule is in [`send_raw`]
/// (a failure before any answer); together they are the one place that says it, whether the
/// call came through a typed method or `Client::call` of a raw generated operation.
fn after_success_of_a_create(error: Error) -> Error {
    match error {
        Error::Transport(t) | Error::Timeout(t) if !t.is_connect() => {
            Error::MayHaveSubmitted(Box::new(Error::from_reqwest(t)))
        }
        Error::Decode(d) if d.status().is_some_and(|s| (200..300).contains(&s)) => {
            Error::MayHaveSubmitted(Box::new(Error::Decode(d)))
        }
        other => other,
    }
}

fn map_progenitor_error<E>(
    e: progenitor_client::Error<E>,
    status: Option<u16>,
    key: &Secret,
) -> Error {
    use progenitor_client::Error as P;
    match e {
        P::CommunicationError(e) | P::ResponseBodyError(e) | P::InvalidUpgrade(e) => {
            Error::from_reqwest(e)
        }
        P::InvalidResponsePayload(body, e) => Error::decode(
            status,
            crate::secret::scrub(&e.to_string(), key),
            crate::secret::withhold_credentials(&body),
            None,
        ),
        P::InvalidRequest(msg) | P::Custom(msg) => Error::InvalidRequest(msg),
        // Error statuses become `Error` in the exec hook; what is left is a status the spec
        // does not list (a 1xx/3xx the HTTP client did not follow).
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

/// A stand-in for an answer whose error was taken by [`leave_error`]; progenitor's result for
/// it is discarded in [`run`].
pub(crate) fn stand_in(status: u16) -> reqwest::Response {
    let mut response = http::Response::new(Vec::<u8>::new());
    *response.status_mut() =
        reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
    reqwest::Response::from(response)
}
