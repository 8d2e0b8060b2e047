//! The API host: upload credentials, the two model endpoints, and the emulator's controls.
//!
//! Requests are judged from raw JSON (`serde_json::Value`), never through the client's types, so
//! a bug in the client's serializers cannot hide behind the same bug here.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use super::media::{self, sniff};
use super::oss::sign_policy;
use super::state::{Credential, FaultKind, State, bump, lock};
use super::{AccountStatus, MediaKind};

/// The service's limit on one `data:` URI, from its refusal ("Exceeded limit on max bytes per
/// data-uri item : 10485760", the error-messages page).
const DATA_URI_LIMIT: usize = 10 * 1024 * 1024;

/// Model-call bodies larger than this answer 413 `BadRequest.TooLarge`. The service's own limit
/// is not documented; it must exceed one `data:` URI's documented 10 MiB, so 32 MiB (inferred).
pub(super) const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// Text that makes the emulator answer 400 `DataInspectionFailed`, so that the content-rejected
/// path can be tested.
pub const REJECTED_TEXT: &str = "EMULATOR-REJECT-CONTENT";

pub(super) const INVALID_URL: &str =
    "The provided URL does not appear to be valid. Ensure it is correctly formatted.";
pub(super) const DATA_INSPECTION: &str =
    "The media format is not supported or incorrect for the data inspection.";
pub(super) const INVALID_PARAMETER: &str =
    "Required parameter(s) missing or invalid, please check the request parameters.";
pub(super) const RATE_LIMITED: &str = "Requests rate limit exceeded, please try again later.";

/// The API host: these endpoints, the task endpoints (`tasks`, given by the caller so that
/// the two do not depend on each other) and the emulator's control endpoints.
pub(crate) fn router(state: Arc<State>, tasks: Router<Arc<State>>) -> Router {
    Router::new()
        .route("/api/v1/uploads", get(get_policy))
        .route("/compatible-mode/v1/chat/completions", post(compatible))
        .route(
            "/api/v1/services/aigc/multimodal-generation/generation",
            post(native),
        )
        .merge(tasks)
        .route("/emulator/v1/stats", get(stats))
        .route("/emulator/v1/clock", post(clock))
        .route("/emulator/v1/faults", post(faults))
        .fallback(not_found)
        // Bodies are bounded by MAX_REQUEST_BYTES below, with the documented 413.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Which error format an endpoint answers in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Api {
    Native,
    Compatible,
}

pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

pub(super) fn error(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        code,
        message: message.into(),
    }
}

impl ApiError {
    pub(super) fn render(self, api: Api, request_id: &str) -> Response {
        let body = match api {
            Api::Native => {
                json!({"code": self.code, "message": self.message, "request_id": request_id})
            }
            Api::Compatible => {
                let (code, kind) = compatible_code(self.code);
                // The documented compatible-mode form of the invalid-URL error carries the
                // algorithm's code as a prefix.
                let message = if self.message == INVALID_URL {
                    format!("InternalError.Algo.InvalidParameter: {INVALID_URL}")
                } else {
                    self.message
                };
                json!({
                    "error": {"message": message, "type": kind, "param": null, "code": code},
                    "request_id": request_id
                })
            }
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// The compatible mode's (code, type) for a native code. Our reading of the compatible-mode
/// documentation; the invalid-URL form is the documented one.
fn compatible_code(native: &'static str) -> (&'static str, &'static str) {
    match native {
        "InvalidApiKey" => ("invalid_api_key", "invalid_request_error"),
        "InvalidParameter" | "InvalidParameter.DataInspection" => {
            ("invalid_parameter_error", "invalid_request_error")
        }
        "DataInspectionFailed" => ("data_inspection_failed", "data_inspection_failed"),
        "ModelNotFound" => ("model_not_found", "invalid_request_error"),
        "Throttling" | "Throttling.RateQuota" => ("limit_requests", "limit_requests"),
        "Throttling.AllocationQuota" => ("insufficient_quota", "insufficient_quota"),
        "Arrearage" => ("Arrearage", "Arrearage"),
        // No lower-case form is documented for these: the native code travels in the envelope.
        "AccessDenied" | "AccessDenied.Unpurchased" | "BadRequest.TooLarge" => {
            (native, "invalid_request_error")
        }
        _ => ("internal_error", "internal_error"),
    }
}

async fn not_found(AxState(state): AxState<Arc<State>>) -> Response {
    error(
        404,
        "NotFound",
        "The requested path is not served by the DashScope emulator.",
    )
    .render(Api::Native, &state.request_id())
}

/// The account of the request's bearer key.
pub(super) fn authenticate(state: &State, headers: &HeaderMap) -> Result<usize, ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let Some(given) = given else {
        return Err(error(401, "InvalidApiKey", "No API-key provided."));
    };
    // The documented form is `Bearer <key>`; a bare key is refused, so a client that drops
    // the scheme fails here as it would against the service.
    let key = match given.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
        _ => return Err(error(401, "InvalidApiKey", "Invalid API-key provided.")),
    };
    let account = state
        .account_of_key(key)
        .ok_or_else(|| error(401, "InvalidApiKey", "Invalid API-key provided."))?;
    match state.config.accounts.get(account).map(|a| a.status) {
        Some(AccountStatus::InArrears) => Err(error(
            400,
            "Arrearage",
            "Access denied, please make sure your account is in good standing.",
        )),
        Some(AccountStatus::Denied) => Err(error(403, "AccessDenied", "Access denied.")),
        _ => Ok(account),
    }
}

async fn get_policy(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    state.faults.delay().await;
    let request_id = state.request_id();
    match issue_policy(&state, &headers, &query, &request_id) {
        Ok(body) => {
            bump(&state.counters.policy_requests);
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(e) => e.render(Api::Native, &request_id),
    }
}

fn issue_policy(
    state: &State,
    headers: &HeaderMap,
    query: &[(String, String)],
    request_id: &str,
) -> Result<Value, ApiError> {
    let account = authenticate(state, headers)?;
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    if param("action") != Some("getPolicy") {
        return Err(error(400, "InvalidParameter", INVALID_PARAMETER));
    }
    let model = param("model").ok_or_else(|| error(400, "InvalidParameter", INVALID_PARAMETER))?;
    let spec = model_spec(state, model)?;
    if state.faults.take(FaultKind::PolicyError) {
        return Err(error(
            500,
            "InternalError",
            "An internal error has occured, please try again later.",
        ));
    }
    if state.faults.take(FaultKind::PolicyThrottle) || !state.admit_policy_request(account, model) {
        bump(&state.counters.policy_throttled);
        return Err(error(429, "Throttling.RateQuota", RATE_LIMITED));
    }
    let now = state.clock.now();
    let date = crate::when::date(now);
    if !state.capacity_left(account, &date) {
        return Err(error(
            429,
            "Throttling.AllocationQuota",
            "The daily upload capacity of the temporary storage is used up.",
        ));
    }
    let upload_dir = format!(
        "dashscope-instant/{}/{}/{}",
        state.account_hash(account),
        date,
        request_id
    );
    let lifetime = state.policy_lifetime();
    let max_bytes = spec.max_file_size_mb.saturating_mul(1024 * 1024);
    let expires = now + state.config.policy_expiration.unwrap_or(lifetime);
    let (policy, signature) = sign_policy(state, &upload_dir, max_bytes, expires);
    state.sweep_if_due();
    lock(&state.credentials).insert(
        upload_dir.clone(),
        Credential {
            account,
            model: model.to_owned(),
            expires,
        },
    );
    Ok(json!({
        "data": {
            "policy": policy,
            "signature": signature,
            "upload_dir": upload_dir,
            "upload_host": state.oss_url,
            "expire_in_seconds": lifetime.as_secs(),
            "max_file_size_mb": spec.max_file_size_mb,
            "capacity_limit_mb": state.config.capacity_limit_mb,
            "oss_access_key_id": state.access_key_id,
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true"
        },
        "request_id": request_id
    }))
}

/// A model the emulator serves to this caller: 404 `ModelNotFound` for an unknown one, 403 for
/// one the account has not bought.
pub(super) fn model_spec<'a>(
    state: &'a State,
    model: &str,
) -> Result<&'a super::ModelSpec, ApiError> {
    let spec = state
        .config
        .models
        .get(model)
        .ok_or_else(|| error(404, "ModelNotFound", "Model not exist."))?;
    if spec.restricted {
        return Err(unpurchased());
    }
    Ok(spec)
}

fn unpurchased() -> ApiError {
    error(
        403,
        "AccessDenied.Unpurchased",
        "Access to model denied. Please make sure you are eligible for using the model.",
    )
}

async fn compatible(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    model_call(&state, Api::Compatible, &headers, &body).await
}

async fn native(AxState(state): AxState<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    model_call(&state, Api::Native, &headers, &body).await
}

/// A medium named in a request.
pub(super) struct MediaRef {
    pub(super) url: String,
}

/// What a request asked about, once every medium is resolved.
struct Received {
    model: String,
    texts: Vec<String>,
    media: Vec<Described>,
}

pub(super) struct Described {
    pub(super) summary: String,
    pub(super) kind: MediaKind,
    pub(super) tokens: u64,
}

async fn model_call(state: &State, api: Api, headers: &HeaderMap, body: &[u8]) -> Response {
    state.faults.delay().await;
    bump(&state.counters.chat_requests);
    let resolve = headers
        .get("x-dashscope-ossresourceresolve")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("enable"));
    if resolve {
        bump(&state.counters.chat_requests_with_resolve_header);
    }
    let request_id = state.request_id();
    let outcome = judge(state, api, headers, body, resolve);
    let (received, request) = match outcome {
        Ok(ok) => ok,
        Err(e) => return e.render(api, &request_id),
    };
    let answer = describe(&received);
    let behaviour = Behaviour::of(api, &request, &received, &request_id);
    let input_tokens = received
        .texts
        .iter()
        .map(|t| media::text_tokens(t))
        .sum::<u64>()
        + received.media.iter().map(|m| m.tokens).sum::<u64>();
    let usage = Usage {
        text_in: received.texts.iter().map(|t| media::text_tokens(t)).sum(),
        input: input_tokens,
        output: media::text_tokens(&answer),
        image: kind_tokens(&received, MediaKind::Image),
        audio: kind_tokens(&received, MediaKind::Audio),
        video: kind_tokens(&received, MediaKind::Video),
    };
    let stream_error = |state: &State| state.faults.take(FaultKind::StreamError);
    match api {
        Api::Compatible if request.get("stream").and_then(Value::as_bool) == Some(true) => {
            let include_usage = request
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                == Some(true);
            let fail = stream_error(state);
            sse(compatible_stream(
                &received.model,
                &request_id,
                &answer,
                &behaviour,
                &usage,
                include_usage,
                fail,
            ))
        }
        Api::Compatible => (
            StatusCode::OK,
            axum::Json(compatible_body(
                &received.model,
                &request_id,
                &answer,
                &behaviour,
                &usage,
            )),
        )
            .into_response(),
        Api::Native if wants_sse(headers) => {
            let incremental = request
                .pointer("/parameters/incremental_output")
                .and_then(Value::as_bool)
                == Some(true);
            let fail = stream_error(state);
            sse(native_stream(
                &request_id,
                &answer,
                &behaviour,
                &usage,
                incremental,
                fail,
            ))
        }
        Api::Native => (
            StatusCode::OK,
            axum::Json(native_answer(&request_id, &answer, &behaviour, &usage)),
        )
            .into_response(),
    }
}

fn wants_sse(headers: &HeaderMap) -> bool {
    let header_is = |name: &str, want: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(want))
    };
    // protocol.md: `X-DashScope-SSE: enable` (with `Accept: text/event-stream`) turns a native
    // call into a stream; `Accept` alone does not.
    header_is("x-dashscope-sse", "enable")
}

fn kind_tokens(received: &Received, kind: MediaKind) -> u64 {
    received
        .media
        .iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.tokens)
        .sum()
}

/// Checks a model call the way the service does, in order: size, key, fault, JSON, model,
/// content, every medium.
fn judge(
    state: &State,
    api: Api,
    headers: &HeaderMap,
    body: &[u8],
    resolve: bool,
) -> Result<(Received, Value), ApiError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(error(413, "BadRequest.TooLarge", "Payload Too Large"));
    }
    let account = authenticate(state, headers)?;
    if state.faults.take(FaultKind::ChatError) {
        return Err(error(
            500,
            "InternalError.Algo",
            "An internal error has occured during execution, please try again later.",
        ));
    }
    if state.faults.take(FaultKind::ChatThrottle) {
        return Err(error(429, "Throttling", RATE_LIMITED));
    }
    let request: Value = serde_json::from_slice(body)
        .map_err(|_| error(400, "InvalidParameter", INVALID_PARAMETER))?;
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| error(400, "InvalidParameter", INVALID_PARAMETER))?
        .to_owned();
    let spec = model_spec(state, &model)?;
    let messages = match api {
        Api::Compatible => request.get("messages"),
        Api::Native => request.pointer("/input/messages"),
    }
    .and_then(Value::as_array)
    .filter(|m| !m.is_empty())
    .ok_or_else(|| error(400, "InvalidParameter", INVALID_PARAMETER))?;

    let mut texts = Vec::new();
    let mut refs = Vec::new();
    for message in messages {
        collect(api, message.get("content"), &mut texts, &mut refs)?;
    }
    if texts.iter().any(|t| t.contains(REJECTED_TEXT)) {
        return Err(error(
            400,
            "DataInspectionFailed",
            "Input or output data may contain inappropriate content.",
        ));
    }
    let mut media = Vec::new();
    for r in refs {
        media.push(resolve_medium(
            state,
            account,
            &model,
            &spec.accepts,
            &r,
            resolve,
        )?);
    }
    Ok((
        Received {
            model,
            texts,
            media,
        },
        request,
    ))
}

/// Gathers the texts and media of one message's content.
fn collect(
    api: Api,
    content: Option<&Value>,
    texts: &mut Vec<String>,
    refs: &mut Vec<MediaRef>,
) -> Result<(), ApiError> {
    let bad = || error(400, "InvalidParameter", INVALID_PARAMETER);
    let items = match content {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => {
            texts.push(s.clone());
            return Ok(());
        }
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad()),
    };
    let mut push_url = |v: Option<&Value>| -> Result<(), ApiError> {
        match v {
            Some(Value::String(url)) => refs.push(MediaRef { url: url.clone() }),
            Some(Value::Array(frames)) if !frames.is_empty() => {
                for frame in frames {
                    let url = frame.as_str().ok_or_else(bad)?;
                    refs.push(MediaRef {
                        url: url.to_owned(),
                    });
                }
            }
            _ => return Err(bad()),
        }
        Ok(())
    };
    for item in items {
        match api {
            Api::Compatible => match item.get("type").and_then(Value::as_str) {
                Some("text") => texts.push(
                    item.get("text")
                        .and_then(Value::as_str)
                        .ok_or_else(bad)?
                        .to_owned(),
                ),
                Some("image_url") => push_url(item.pointer("/image_url/url"))?,
                Some("input_audio") => {
                    // The documented part is `{data, format}`.
                    item.pointer("/input_audio/format")
                        .and_then(Value::as_str)
                        .ok_or_else(bad)?;
                    push_url(item.pointer("/input_audio/data"))?
                }
                Some("video") => push_url(item.get("video"))?,
                Some("video_url") => push_url(item.pointer("/video_url/url"))?,
                _ => return Err(bad()),
            },
            Api::Native => {
                let object = item.as_object().ok_or_else(bad)?;
                if let Some(text) = object.get("text") {
                    texts.push(text.as_str().ok_or_else(bad)?.to_owned());
                } else if let Some(v) = object
                    .get("image")
                    .or_else(|| object.get("audio"))
                    .or_else(|| object.get("video"))
                {
                    push_url(Some(v))?;
                } else {
                    return Err(bad());
                }
            }
        }
    }
    Ok(())
}

pub(super) fn resolve_medium(
    state: &State,
    account: usize,
    model: &str,
    accepts: &[MediaKind],
    r: &MediaRef,
    resolve: bool,
) -> Result<Described, ApiError> {
    let invalid_url = || error(400, "InvalidParameter", INVALID_URL);
    let inspection = || error(400, "InvalidParameter.DataInspection", DATA_INSPECTION);
    let accepted = |kind: MediaKind| accepts.contains(&kind);
    if let Some(key) = r.url.strip_prefix("oss://") {
        if !resolve {
            return Err(invalid_url());
        }
        let objects = lock(&state.objects);
        let object = objects.get(key).ok_or_else(invalid_url)?;
        let age = state
            .clock
            .now()
            .duration_since(object.uploaded_at)
            .unwrap_or(Duration::ZERO);
        if age >= state.config.object_lifetime || object.model != model || object.account != account
        {
            return Err(invalid_url());
        }
        let (kind, mime) = object
            .kind
            .filter(|(k, _)| accepted(*k))
            .ok_or_else(inspection)?;
        return Ok(Described {
            summary: format!(
                "{mime}, {} bytes, sha256 {}…, {}",
                object.size,
                &object.sha256[..12],
                r.url
            ),
            kind,
            tokens: object.tokens,
        });
    }
    if let Some(rest) = r.url.strip_prefix("data:") {
        // The service's own words and limit for one data: URI (error-messages page).
        if r.url.len() > DATA_URI_LIMIT {
            return Err(error(
                400,
                "InvalidParameter",
                format!(
                    "Exceeded limit on max bytes per data-uri item : {}",
                    DATA_URI_LIMIT
                ),
            ));
        }
        let (meta, payload) = rest.split_once(',').ok_or_else(invalid_url)?;
        if !meta.ends_with(";base64") {
            return Err(invalid_url());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|_| invalid_url())?;
        let (kind, mime) = sniff(&bytes)
            .filter(|(k, _)| accepted(*k))
            .ok_or_else(inspection)?;
        return Ok(Described {
            summary: format!("{mime}, {} bytes, data URI", bytes.len()),
            kind,
            tokens: media::tokens(kind, &bytes, bytes.len() as u64),
        });
    }
    if r.url.starts_with("https://") || r.url.starts_with("http://") {
        // The emulator has no internet: it names the URL and assumes the model's first medium.
        let kind = accepts.first().copied().ok_or_else(inspection)?;
        return Ok(Described {
            summary: format!("{} (not fetched: the emulator is offline)", r.url),
            kind,
            tokens: 256,
        });
    }
    Err(invalid_url())
}

/// The emulator's answer: what it received, stated plainly. It is not a model.
fn describe(received: &Received) -> String {
    let mut answer = format!(
        "[DashScope emulator, no model ran] {} received",
        received.model
    );
    if received.media.is_empty() {
        answer.push_str(" no media");
    } else {
        let n = received.media.len();
        answer.push_str(&format!(
            " {n} {}: ",
            if n == 1 { "medium" } else { "media" }
        ));
        let list: Vec<&str> = received.media.iter().map(|m| m.summary.as_str()).collect();
        answer.push_str(&list.join("; "));
    }
    let prompt = received.texts.join(" ");
    if !prompt.is_empty() {
        let shown: String = prompt.chars().take(200).collect();
        answer.push_str(&format!(". Prompt: {shown:?}"));
    }
    answer.push('.');
    answer
}

struct Usage {
    text_in: u64,
    input: u64,
    output: u64,
    image: u64,
    audio: u64,
    video: u64,
}

/// What the emulator's answer does beyond stating what it received, as a model would: reason
/// first when thinking is enabled, and call a tool when tools are offered.
struct Behaviour {
    /// `enable_thinking: true` (top level, or in native `parameters`).
    reasoning: Option<String>,
    /// Tools offered, `tool_choice` not `none`, and the conversation does not end with a tool's
    /// result: a call of the forced function, or of the first one offered.
    call: Option<Call>,
}

struct Call {
    id: String,
    name: String,
    arguments: String,
}

impl Behaviour {
    fn of(api: Api, request: &Value, received: &Received, request_id: &str) -> Self {
        let params = match api {
            Api::Compatible => Some(request),
            Api::Native => request.get("parameters"),
        };
        let param = |name: &str| params.and_then(|p| p.get(name));
        let prompt: String = received.texts.join(" ").chars().take(200).collect();
        let reasoning = (param("enable_thinking").and_then(Value::as_bool) == Some(true)).then(|| {
            format!(
                "[DashScope emulator, no model thought] The question was {prompt:?}; the answer states what was received."
            )
        });
        let messages = match api {
            Api::Compatible => request.get("messages"),
            Api::Native => request.pointer("/input/messages"),
        };
        let after_tool = messages
            .and_then(Value::as_array)
            .and_then(|m| m.last())
            .and_then(|m| m.get("role"))
            .and_then(Value::as_str)
            == Some("tool");
        let choice = param("tool_choice");
        let forced = choice
            .and_then(|c| c.pointer("/function/name"))
            .and_then(Value::as_str);
        let first = param("tools")
            .and_then(Value::as_array)
            .and_then(|t| t.first())
            .and_then(|t| t.pointer("/function/name"))
            .and_then(Value::as_str);
        let call = match (choice.and_then(Value::as_str), forced.or(first)) {
            (Some("none"), _) | (_, None) => None,
            _ if after_tool => None,
            (_, Some(name)) => Some(Call {
                id: format!("call_{}", request_id.replace('-', "")),
                name: name.to_owned(),
                arguments: json!({"prompt": prompt}).to_string(),
            }),
        };
        Self { reasoning, call }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn compatible_usage(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
        "prompt_tokens_details": {"cached_tokens": 0, "text_tokens": u.text_in, "image_tokens": u.image, "audio_tokens": u.audio, "video_tokens": u.video}
    })
}

fn compatible_body(
    model: &str,
    request_id: &str,
    answer: &str,
    behaviour: &Behaviour,
    usage: &Usage,
) -> Value {
    let mut message = json!({"role": "assistant", "content": answer});
    if let Some(reasoning) = &behaviour.reasoning {
        message["reasoning_content"] = json!(reasoning);
    }
    let mut finish = "stop";
    if let Some(call) = &behaviour.call {
        message["content"] = json!("");
        message["tool_calls"] = json!([{"id": call.id, "type": "function", "index": 0,
            "function": {"name": call.name, "arguments": call.arguments}}]);
        finish = "tool_calls";
    }
    json!({
        "id": format!("chatcmpl-{request_id}"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "system_fingerprint": null,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
        "usage": compatible_usage(usage)
    })
}

fn native_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input,
        "output_tokens": u.output,
        "total_tokens": u.input + u.output,
        "image_tokens": u.image,
        "input_tokens_details": {"text_tokens": u.text_in, "image_tokens": u.image, "audio_tokens": u.audio, "video_tokens": u.video},
        "output_tokens_details": {"text_tokens": u.output}
    })
}

fn native_body(
    request_id: &str,
    _answer: &str,
    usage: &Usage,
    finish: &str,
    text: Option<&str>,
) -> Value {
    let content = match text {
        Some(t) => json!([{"text": t}]),
        None => json!([]),
    };
    json!({
        "output": {"choices": [{"finish_reason": finish, "message": {"role": "assistant", "content": content}}]},
        "usage": native_usage(usage),
        "request_id": request_id
    })
}

/// The whole native answer: reasoning, then the text or a tool call.
fn native_answer(request_id: &str, answer: &str, behaviour: &Behaviour, usage: &Usage) -> Value {
    let mut body = native_body(request_id, answer, usage, "stop", Some(answer));
    let message = &mut body["output"]["choices"][0]["message"];
    if let Some(reasoning) = &behaviour.reasoning {
        message["reasoning_content"] = json!(reasoning);
    }
    if let Some(call) = &behaviour.call {
        message["content"] = json!([]);
        message["tool_calls"] = json!([{"id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": call.arguments}}]);
        body["output"]["choices"][0]["finish_reason"] = json!("tool_calls");
    }
    body
}

/// The answer cut into a few pieces at word boundaries, as a model would stream it.
fn pieces(answer: &str) -> Vec<String> {
    let words: Vec<&str> = answer.split_inclusive(' ').collect();
    let per = words.len().div_ceil(4).max(1);
    words.chunks(per).map(|c| c.concat()).collect()
}

fn compatible_stream(
    model: &str,
    request_id: &str,
    answer: &str,
    behaviour: &Behaviour,
    usage: &Usage,
    include_usage: bool,
    fail: bool,
) -> String {
    let id = format!("chatcmpl-{request_id}");
    let created = unix_now();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut out = String::new();
    let mut push = |v: Value| out.push_str(&format!("data: {v}\n\n"));
    if let Some(reasoning) = &behaviour.reasoning {
        // As documented for thinking models: content null and empty reasoning first.
        push(chunk(
            json!({"role": "assistant", "content": null, "reasoning_content": ""}),
            Value::Null,
        ));
        for piece in pieces(reasoning) {
            push(chunk(json!({"reasoning_content": piece}), Value::Null));
        }
    } else {
        push(chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        ));
    }
    let mut finish = "stop";
    if let Some(call) = &behaviour.call {
        // Fragments joined by `index`: the first names the function, later ones carry an
        // empty id, no name and the next piece of the arguments.
        for (i, piece) in pieces(&call.arguments).into_iter().enumerate() {
            let fragment = if i == 0 {
                json!({"index": 0, "id": call.id, "type": "function",
                       "function": {"name": call.name, "arguments": piece}})
            } else {
                json!({"index": 0, "id": "", "type": "function",
                       "function": {"name": null, "arguments": piece}})
            };
            push(chunk(json!({"tool_calls": [fragment]}), Value::Null));
        }
        finish = "tool_calls";
    } else {
        for (i, piece) in pieces(answer).into_iter().enumerate() {
            if fail && i == 1 {
                let (code, kind) = compatible_code("InternalError.Algo");
                push(
                    json!({"error": {"message": "An internal error has occured during execution, please try again later.", "type": kind, "param": null, "code": code}, "request_id": request_id}),
                );
                return out;
            }
            push(chunk(json!({"content": piece}), Value::Null));
        }
    }
    push(chunk(json!({}), json!(finish)));
    if include_usage {
        push(
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [], "usage": compatible_usage(usage)}),
        );
    }
    out.push_str("data: [DONE]\n\n");
    out
}

fn native_stream(
    request_id: &str,
    answer: &str,
    behaviour: &Behaviour,
    usage: &Usage,
    incremental: bool,
    fail: bool,
) -> String {
    // Each event: (reasoning, text, arguments) as sent — the new piece when incremental, the
    // whole so far otherwise.
    let mut events: Vec<(Option<String>, Option<String>, Option<String>)> = Vec::new();
    let grow = |so_far: &mut String, piece: &str| {
        so_far.push_str(piece);
        if incremental {
            piece.to_owned()
        } else {
            so_far.clone()
        }
    };
    let mut reasoning_so_far = String::new();
    if let Some(reasoning) = &behaviour.reasoning {
        for piece in pieces(reasoning) {
            events.push((Some(grow(&mut reasoning_so_far, &piece)), None, None));
        }
    }
    let whole_reasoning =
        (!incremental && behaviour.reasoning.is_some()).then(|| reasoning_so_far.clone());
    let mut so_far = String::new();
    match &behaviour.call {
        Some(call) => {
            for piece in pieces(&call.arguments) {
                events.push((
                    whole_reasoning.clone(),
                    None,
                    Some(grow(&mut so_far, &piece)),
                ));
            }
        }
        None => {
            for piece in pieces(answer) {
                events.push((
                    whole_reasoning.clone(),
                    Some(grow(&mut so_far, &piece)),
                    None,
                ));
            }
        }
    }
    let mut out = String::new();
    let last = events.len().saturating_sub(1);
    let mut call_started = false;
    for (i, (reasoning, text, arguments)) in events.into_iter().enumerate() {
        let n = i + 1;
        if fail && i == 1 {
            let data = json!({"code": "InternalError.Algo", "message": "An internal error has occured during execution, please try again later.", "request_id": request_id});
            out.push_str(&format!(
                "id:{n}\nevent:error\n:HTTP_STATUS/500\ndata:{data}\n\n"
            ));
            return out;
        }
        let finish = match (i == last, &behaviour.call) {
            (false, _) => "null",
            (true, Some(_)) => "tool_calls",
            (true, None) => "stop",
        };
        let mut data = native_body(request_id, answer, usage, finish, text.as_deref());
        let message = &mut data["output"]["choices"][0]["message"];
        if let Some(reasoning) = reasoning {
            message["reasoning_content"] = json!(reasoning);
        }
        if let (Some(call), Some(arguments)) = (&behaviour.call, arguments) {
            // As in the documentation's printed example: no index; the first piece (or, when
            // not incremental, every event) carries the id and the name.
            let first = !incremental || !call_started;
            call_started = true;
            let (id, name) = if first {
                (call.id.as_str(), Some(call.name.as_str()))
            } else {
                ("", None)
            };
            message["tool_calls"] = json!([{"id": id, "type": "function",
                "function": {"name": name, "arguments": arguments}}]);
        }
        out.push_str(&format!(
            "id:{n}\nevent:result\n:HTTP_STATUS/200\ndata:{data}\n\n"
        ));
    }
    out
}

fn sse(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream;charset=UTF-8"),
    );
    response
}

async fn stats(AxState(state): AxState<Arc<State>>) -> Response {
    axum::Json(state.stats()).into_response()
}

#[derive(serde::Deserialize)]
struct ClockRequest {
    advance_seconds: f64,
}

async fn clock(AxState(state): AxState<Arc<State>>, body: Bytes) -> Response {
    // try_from_secs_f64 refuses negative, NaN and too-large values instead of panicking.
    let by = serde_json::from_slice::<ClockRequest>(&body)
        .ok()
        .and_then(|req| Duration::try_from_secs_f64(req.advance_seconds).ok());
    match by {
        Some(by) => {
            state.clock.advance(by);
            state.sweep_now();
            axum::Json(json!({"now": crate::when::iso8601(state.clock.now())})).into_response()
        }
        None => control_error("expected {\"advance_seconds\": <non-negative number>}"),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    kind: Option<String>,
    count: Option<u32>,
    rate_per_million: Option<u32>,
    delay_ms: Option<u64>,
    policy_lifetime_seconds: Option<u64>,
}

async fn faults(AxState(state): AxState<Arc<State>>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<FaultRequest>(&body) else {
        return control_error(
            "expected {\"kind\", \"count\"} and/or {\"delay_ms\"} and/or {\"policy_lifetime_seconds\"}",
        );
    };
    if let Some(name) = &req.kind {
        let Some(kind) = FaultKind::ALL.into_iter().find(|k| k.name() == name) else {
            let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
            return control_error(&format!(
                "unknown fault kind; expected one of {}",
                names.join(", ")
            ));
        };
        match req.rate_per_million {
            Some(rate) => state.faults.set_rate(kind, rate),
            None => state.faults.inject(kind, req.count.unwrap_or(1)),
        }
    }
    if let Some(ms) = req.delay_ms {
        state.faults.set_delay(Duration::from_millis(ms));
    }
    if let Some(secs) = req.policy_lifetime_seconds {
        state.set_policy_lifetime(Duration::from_secs(secs));
    }
    axum::Json(json!({"ok": true})).into_response()
}

fn control_error(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"code": "InvalidParameter", "message": message})),
    )
        .into_response()
}
