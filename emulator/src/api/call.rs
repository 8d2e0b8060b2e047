//! Model calls: who may call, what a body's media are, whether they resolve for this model and
//! account, and what the emulator answers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::Value;

use super::Api;
use super::ApiError;
use super::DATA_INSPECTION;
use super::DATA_URI_LIMIT;
use super::INVALID_PARAMETER;
use super::INVALID_URL;
use super::MAX_REQUEST_BYTES;
use super::RATE_LIMITED;
use super::answer::Usage;
use super::answer::compatible_body;
use super::answer::compatible_stream;
use super::answer::native_answer;
use super::answer::native_stream;
use super::answer::sse;
use super::answer::{Behaviour, Described, Received, Shape};
use super::authenticate;
use super::error;
use super::model_spec;
use super::shaped;
use crate::MediaKind;
use crate::REJECTED_TEXT;
use crate::catalogue::Endpoint;
use crate::media::{self, sniff};
use crate::state::{FaultKind, State, bump, lock};

pub(crate) async fn compatible(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    model_call(&state, Endpoint::Chat, &headers, &body).await
}

pub(crate) async fn native(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    model_call(&state, Endpoint::Multimodal, &headers, &body).await
}

/// Text generation (`Generation.call`, and every text-only turn of the v2 SDK).
pub(crate) async fn text_generation(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    model_call(&state, Endpoint::TextGeneration, &headers, &body).await
}

/// A medium named in a request.
pub(crate) struct MediaRef {
    pub(crate) url: String,
}

pub(crate) async fn model_call(
    state: &State,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let api = match endpoint {
        Endpoint::Chat => Api::Compatible,
        _ => Api::Native,
    };
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
    let outcome = judge(state, endpoint, headers, body, resolve);
    let (received, request, spec) = match outcome {
        Ok(ok) => ok,
        Err(e) => return e.render(api, &request_id),
    };
    let streamed = match api {
        Api::Compatible => request.get("stream").and_then(Value::as_bool) == Some(true),
        Api::Native => wants_sse(headers),
    };
    if spec.stream_only && !streamed {
        // The service's refusal of a non-streamed call to a stream-only model (Omni, QwQ).
        return error(
            400,
            "InvalidParameter",
            "This model only support stream mode, please enable the stream parameter to access the model.",
        )
        .render(api, &request_id);
    }
    let prompt: String = received.texts.join(" ").chars().take(200).collect();
    let params = match api {
        Api::Compatible => Some(&request),
        Api::Native => request.get("parameters"),
    };
    let shaped = shaped::shape(params, &describe(&received), &prompt);
    let answer = shaped.text;
    let mut behaviour = Behaviour::of(api, &request, &received, &request_id, spec.thinking);
    behaviour.finish = shaped.finish;
    // `n` choices (the compatible API, not streamed: a stream carries one).
    behaviour.choices = match (api, streamed) {
        (Api::Compatible, false) => request
            .get("n")
            .and_then(Value::as_u64)
            .map_or(1, |n| usize::try_from(n.clamp(1, 4)).unwrap_or(1)),
        _ => 1,
    };
    let shape = Shape::of(endpoint, &request);
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
        Api::Compatible if streamed => {
            let include_usage = request
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                == Some(true);
            let fail = stream_error(state);
            sse(
                compatible_stream(
                    &received.model,
                    &request_id,
                    &answer,
                    &behaviour,
                    &usage,
                    include_usage,
                    fail,
                ),
                state.config.stream_pace,
                state.counters.streams_finished.clone(),
                state.counters.streams_abandoned.clone(),
                &request_id,
            )
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
        Api::Native if streamed => {
            let incremental = request
                .pointer("/parameters/incremental_output")
                .and_then(Value::as_bool)
                == Some(true);
            let fail = stream_error(state);
            sse(
                native_stream(
                    &request_id,
                    &answer,
                    &behaviour,
                    &usage,
                    incremental,
                    fail,
                    shape,
                ),
                state.config.stream_pace,
                state.counters.streams_finished.clone(),
                state.counters.streams_abandoned.clone(),
                &request_id,
            )
        }
        Api::Native => (
            StatusCode::OK,
            axum::Json(native_answer(
                &request_id,
                &answer,
                &behaviour,
                &usage,
                shape,
            )),
        )
            .into_response(),
    }
}

pub(crate) fn wants_sse(headers: &HeaderMap) -> bool {
    let header_is = |name: &str, want: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(want))
    };
    // The native API: `X-DashScope-SSE: enable` (with `Accept: text/event-stream`) turns a native
    // call into a stream; `Accept` alone does not.
    header_is("x-dashscope-sse", "enable")
}

pub(crate) fn kind_tokens(received: &Received, kind: MediaKind) -> u64 {
    received
        .media
        .iter()
        .filter(|m| m.kind == kind)
        .map(|m| m.tokens)
        .sum()
}

/// Checks a model call the way the service does, in order: size, key, fault, JSON, model,
/// content, every medium.
pub(crate) fn judge(
    state: &State,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &[u8],
    resolve: bool,
) -> Result<(Received, Value, crate::ModelSpec), ApiError> {
    let api = match endpoint {
        Endpoint::Chat => Api::Compatible,
        _ => Api::Native,
    };
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
    let spec = model_spec(state, &model, Some(endpoint))?;
    let mut texts = Vec::new();
    let mut refs = Vec::new();
    // Text generation also takes a bare `input.prompt` (the SDK's `Generation.call(prompt=…)`).
    let prompt = (endpoint == Endpoint::TextGeneration)
        .then(|| request.pointer("/input/prompt").and_then(Value::as_str))
        .flatten();
    if let Some(prompt) = prompt {
        texts.push(prompt.to_owned());
    } else {
        let messages = match api {
            Api::Compatible => request.get("messages"),
            Api::Native => request.pointer("/input/messages"),
        }
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| error(400, "InvalidParameter", INVALID_PARAMETER))?;
        for message in messages {
            collect(api, message.get("content"), &mut texts, &mut refs)?;
        }
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
        spec,
    ))
}

/// Gathers the texts and media of one message's content.
pub(crate) fn collect(
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

pub(crate) fn resolve_medium(
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
            dimensions: object.dimensions.filter(|_| kind == MediaKind::Image),
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
            dimensions: media::dimensions(&bytes).filter(|_| kind == MediaKind::Image),
        });
    }
    if r.url.starts_with("https://") || r.url.starts_with("http://") {
        if lock(&state.refused_downloads).contains(&r.url) {
            return Err(error(
                400,
                super::DOWNLOAD_FAILED_CODE,
                super::DOWNLOAD_FAILED,
            ));
        }
        // The emulator has no internet: it names the URL and assumes the model's first medium.
        let kind = accepts.first().copied().ok_or_else(inspection)?;
        return Ok(Described {
            summary: format!("{} (not fetched: the emulator is offline)", r.url),
            kind,
            tokens: 256,
            dimensions: None,
        });
    }
    Err(invalid_url())
}

/// The emulator's answer: what it received, stated plainly. It is not a model.
pub(crate) fn describe(received: &Received) -> String {
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
