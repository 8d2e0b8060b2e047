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

use crate::attempt::{self, Outcome, Repeat, Standing, Step};
use crate::error::{ERROR_BODY_LIMIT, Service, from_response};
use crate::retry::{RateLimiter, RetryPolicy, classify};
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

impl Failure {
    /// Where a redirection answer (3xx) points, as sent: the crate's HTTP client follows no
    /// redirect, and a fetch that follows one checks each hop itself.
    pub(crate) fn location(&self) -> Option<&str> {
        let answer = self.answer.as_ref()?;
        if !answer.status.is_redirection() {
            return None;
        }
        answer
            .headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }
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

/// How a request may be sent: what it is ([`Repeat`]), the limiter its attempts wait for, and
/// the wire format of its host's error answers.
#[derive(Clone, Copy)]
pub(crate) struct Manner<'a> {
    /// What repeating it would mean; the one table ([`attempt::next_step`]) decides.
    pub(crate) repeat: Repeat,
    /// Every attempt takes a slot of this limiter first (task queries).
    pub(crate) limiter: Option<&'a RateLimiter>,
    /// The wire format of the host's error answers, when it is not DashScope's (which is told
    /// by the path): a presigned result link is answered by OSS, in its XML.
    pub(crate) answers_in: Option<Service>,
    /// A success body is read here, within the call's deadline, up to this many bytes (more
    /// is an error): a JSON answer that the caller reads whole. `None`: handed on unread (a
    /// stream, a download, a form POST's empty answer).
    pub(crate) success_limit: Option<usize>,
}

impl Default for Manner<'_> {
    /// A request that creates nothing, answered by DashScope.
    fn default() -> Self {
        Self {
            repeat: Repeat::Repeatable,
            limiter: None,
            answers_in: None,
            success_limit: None,
        }
    }
}

/// One attempt's request, as its caller built it.
pub(crate) struct Prepared {
    pub(crate) request: reqwest::Request,
    /// A same-key repeat of the last attempt (an upload): a 409 then proves it had landed.
    pub(crate) same_target: bool,
    /// Whether another attempt can be built (a streamed body that cannot is sent once).
    pub(crate) can_repeat: bool,
}

/// A request as the one attempt loop ([`drive`]) sends it. The caller builds each attempt's
/// request and reads a success answer; the loop sends, reads an error answer in its host's
/// format, decides with the one table, backs off and traces each attempt.
pub(crate) trait Attempts: Send {
    /// What a success becomes.
    type Output;
    /// What the request is, as far as repeating it goes.
    fn manner(&self) -> Manner<'_>;
    /// The request of the next attempt; `after` is the step that led to it (`None` first).
    fn request(&mut self, after: Option<Step>) -> impl Future<Output = Result<Prepared>> + Send;
    /// A success answer, or (`None`) a same-key repeat that found its object stored.
    fn finish(
        &mut self,
        answer: Option<reqwest::Response>,
    ) -> impl Future<Output = Result<Self::Output>> + Send;
    /// Whether the storage still takes the credential of the last attempt (uploads).
    fn credential_valid(&self) -> bool {
        true
    }
    /// A request that got no answer: a lost connection, or (uploads) a source that failed.
    fn lost(&self, error: reqwest::Error) -> Error {
        Error::from_reqwest(error)
    }
    /// The secrets of the last attempt's request beyond the API key (an upload's credential),
    /// scrubbed from its error answer with the key when the error is built.
    fn secrets(&self) -> Vec<&Secret> {
        Vec::new()
    }
    /// A look at an answer before its status is read: a form POST that a caller's own HTTP
    /// client redirected stored nothing that can be known, whatever the status says.
    fn check_answer(&self, _response: &reqwest::Response) -> Result<()> {
        Ok(())
    }
}

/// The one attempt loop of every request the crate sends.
pub(crate) async fn drive<A: Attempts>(
    http: &reqwest::Client,
    key: Option<&Secret>,
    retry: RetryPolicy,
    mut request: A,
) -> std::result::Result<A::Output, Failure> {
    let mut attempts = 0u32;
    let mut after = None;
    let ends = retry.deadline.map(|d| tokio::time::Instant::now() + d);
    loop {
        attempts += 1;
        let verifying = after == Some(Step::Verify);
        let Prepared {
            request: current,
            same_target,
            can_repeat,
        } = request.request(after).await.map_err(Failure::from)?;
        let manner = request.manner();
        if let Some(limiter) = manner.limiter {
            limiter.acquire("").await;
        }
        let service = manner
            .answers_in
            .unwrap_or_else(|| service_of(current.url()));
        let span = tracing::debug_span!(
            "dashscope.attempt",
            attempt = attempts,
            method = %current.method(),
            path = current.url().path(),
        );
        // Boxed: an attempt's future is large (the request, the body read, the deadline), and
        // the loop is nested inside uploads inside requests; on the heap it costs no stack.
        let exchange = Box::pin(
            execute(http, key, service, current, &request, manner.success_limit).instrument(span),
        );
        let answered = match ends {
            Some(ends) => match tokio::time::timeout_at(ends, exchange).await {
                Ok(answered) => answered,
                Err(_) => return Err(Failure::from(past_deadline(manner.repeat, retry))),
            },
            None => exchange.await,
        };
        let (outcome, failure) = match answered {
            Ok(response) => (Outcome::Answered, Ok(Some(response))),
            // Our key, written by nobody else: an earlier attempt stored it.
            Err(failure)
                if same_target
                    && manner.repeat == Repeat::SameKeyUpload
                    && matches!(failure.error, Error::FileAlreadyExists(_)) =>
            {
                tracing::info!(
                    request_id = failure.error.request_id(),
                    "an earlier attempt had landed"
                );
                (Outcome::FoundOurs, Ok(None))
            }
            Err(failure) => (
                Outcome::Failed {
                    class: classify(&failure.error),
                    never_sent: never_sent(&failure.error),
                },
                Err(failure),
            ),
        };
        let standing = Standing {
            attempts,
            max_attempts: retry.max_attempts,
            verifying,
            can_repeat,
            credential_valid: request.credential_valid(),
        };
        let step = attempt::next_step(manner.repeat, standing, outcome);
        let failure = match (step, failure) {
            (Step::Done, Ok(answer)) => {
                return request.finish(answer).await.map_err(Failure::from);
            }
            (_, Ok(_)) => {
                // Unreachable: the table reports every answer.
                return Err(Failure::from(Error::InvalidRequest(
                    "an answer was not reported".to_owned(),
                )));
            }
            (_, Err(failure)) => failure,
        };
        match step {
            Step::Done | Step::Fail => return Err(failure),
            Step::MayHaveCreated => {
                return Err(Failure {
                    error: Error::MayHaveSubmitted(Box::new(failure.error)),
                    answer: failure.answer,
                });
            }
            Step::Retry => {
                let error = &failure.error;
                let wait = retry.wait_after(attempts, error, manner.repeat == Repeat::Safe);
                if ends.is_some_and(|ends| tokio::time::Instant::now() + wait >= ends) {
                    // No time is left for another try: the last failure is the answer.
                    return Err(failure);
                }
                tracing::warn!(error = %error, attempt = attempts, ?wait, "request failed, retrying");
                tokio::time::sleep(wait).await;
            }
            Step::Refresh | Step::Verify => {}
        }
        after = Some(step);
    }
}

/// A request that is sent as built: each attempt a clone of it, while it can be cloned.
struct Resend<'a> {
    request: Option<reqwest::Request>,
    manner: Manner<'a>,
}

impl Attempts for Resend<'_> {
    type Output = reqwest::Response;

    fn manner(&self) -> Manner<'_> {
        self.manner
    }

    async fn request(&mut self, _after: Option<Step>) -> Result<Prepared> {
        let Some(current) = self.request.take() else {
            // Unreachable: the table repeats only what could be cloned.
            return Err(Error::InvalidRequest("no request to send".to_owned()));
        };
        self.request = current.try_clone();
        Ok(Prepared {
            request: current,
            same_target: false,
            can_repeat: self.request.is_some(),
        })
    }

    async fn finish(&mut self, answer: Option<reqwest::Response>) -> Result<reqwest::Response> {
        answer.ok_or_else(|| Error::InvalidRequest("no answer to read".to_owned()))
    }
}

/// Sends a built request through [`drive`]: DashScope operations, streams, result downloads.
pub(crate) async fn send_raw(
    http: &reqwest::Client,
    key: &Secret,
    retry: RetryPolicy,
    request: reqwest::Request,
    manner: Manner<'_>,
) -> std::result::Result<reqwest::Response, Failure> {
    let span = tracing::debug_span!(
        "dashscope.request",
        method = %request.method(),
        path = request.url().path(),
    );
    let resend = Resend {
        request: Some(request),
        manner,
    };
    drive(http, Some(key), retry, resend).instrument(span).await
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            answer: None,
        }
    }
}

/// The call's deadline passed while an attempt was in flight. A submit that was in flight may
/// have arrived: said as for a lost answer.
fn past_deadline(repeat: Repeat, retry: RetryPolicy) -> Error {
    let error = Error::DeadlineExceeded {
        what: "the call",
        limit: retry.deadline.unwrap_or_default(),
    };
    if repeat == Repeat::Creates {
        Error::MayHaveSubmitted(Box::new(error))
    } else {
        error
    }
}

/// A failure before the request left: no connection was made.
fn never_sent(error: &Error) -> bool {
    matches!(error, Error::Transport(e) | Error::Timeout(e) if e.is_connect())
}

/// One attempt: a success answer as it is, an error answer as an [`Error`].
async fn execute(
    http: &reqwest::Client,
    key: Option<&Secret>,
    service: Service,
    request: reqwest::Request,
    attempts: &impl Attempts,
    success_limit: Option<usize>,
) -> std::result::Result<reqwest::Response, Failure> {
    let lost = |e| Failure {
        error: attempts.lost(e),
        answer: None,
    };
    let response = http.execute(request).await.map_err(lost)?;
    attempts.check_answer(&response).map_err(Failure::from)?;
    let status = response.status();
    if status.is_success() {
        let Some(limit) = success_limit else {
            return Ok(response);
        };
        let headers = response.headers().clone();
        let (body, truncated) = read_limited(response, limit).await.map_err(lost)?;
        if truncated {
            return Err(Failure::from(Error::decode(
                Some(status.as_u16()),
                format!("the answer is over the {limit} bytes this operation's answer may have"),
                &[],
                headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            )));
        }
        return Ok(Answer {
            status,
            headers,
            body,
        }
        .into_response());
    }
    // At most ERROR_BODY_LIMIT bytes are read: a proxy's endless page costs nothing.
    let headers = response.headers().clone();
    let (body, truncated) = read_limited(response, ERROR_BODY_LIMIT)
        .await
        .map_err(lost)?;
    let mut secrets: Vec<&Secret> = key.into_iter().collect();
    secrets.extend(attempts.secrets());
    let error = from_response(
        service,
        status.as_u16(),
        &headers,
        &body,
        truncated,
        &secrets,
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
    /// The operation creates something (a task submit): see [`Repeat::Creates`].
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
        P::InvalidResponsePayload(body, e) => Error::decode_hiding(
            &[key],
            status,
            e.to_string(),
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
