//! The emulator's answers to model calls: bodies and event streams of either API, with
//! reasoning, tool calls and usage, shaped by what the request asked for.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;

use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::Api;
use super::compatible_code;
use crate::MediaKind;
use crate::catalogue::{Endpoint, Thinking};

/// How a native answer carries its text: the multimodal API's content list, the text
/// generation API's `result_format` `message` (a string content) or `text` (`output.text`, its
/// default for these models, as the SDK's `Generation.call` reads it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Multimodal,
    TextMessage,
    Text,
}

impl Shape {
    pub(crate) fn of(endpoint: Endpoint, request: &Value) -> Self {
        let format = request
            .pointer("/parameters/result_format")
            .and_then(Value::as_str);
        match (endpoint, format) {
            (Endpoint::TextGeneration, Some("message")) => Shape::TextMessage,
            (Endpoint::TextGeneration, _) => Shape::Text,
            _ => Shape::Multimodal,
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) text_in: u64,
    pub(crate) input: u64,
    pub(crate) output: u64,
    pub(crate) image: u64,
    pub(crate) audio: u64,
    pub(crate) video: u64,
}

impl Usage {
    /// The same input, with `output` tokens generated so far.
    pub(crate) fn with_output(self, output: u64) -> Self {
        Self { output, ..self }
    }
}

/// What the emulator's answer does beyond stating what it received, as a model would: reason
/// first when thinking is enabled, and call a tool when tools are offered.
pub(crate) struct Behaviour {
    /// `enable_thinking: true` (top level, or in native `parameters`).
    pub(crate) reasoning: Option<String>,
    /// Tools offered, `tool_choice` not `none`, and the conversation does not end with a tool's
    /// result: a call of the forced function, or of the first one offered.
    pub(crate) call: Option<Call>,
    /// Why the text ended (`stop`, or `length` when `max_tokens` cut it).
    pub(crate) finish: &'static str,
    /// How many choices a compatible answer has (`n`).
    pub(crate) choices: usize,
    /// `modalities` asks for audio (Omni): a stream carries it beside its text.
    pub(crate) audio: bool,
    /// Native `vl_enable_image_hw_output`: the height and width each image was read at.
    pub(crate) image_hw: Vec<(u32, u32)>,
}
impl Behaviour {
    pub(crate) fn of(
        api: Api,
        request: &Value,
        received: &Received,
        request_id: &str,
        thinking: Thinking,
    ) -> Self {
        let params = match api {
            Api::Compatible => Some(request),
            Api::Native => request.get("parameters"),
        };
        let param = |name: &str| params.and_then(|p| p.get(name));
        let prompt: String = received.texts.join(" ").chars().take(200).collect();
        // Only a model that thinks reasons: `enable_thinking` is ignored by the others.
        let thinks = match thinking {
            Thinking::Always => true,
            Thinking::OnRequest => param("enable_thinking").and_then(Value::as_bool) == Some(true),
            Thinking::Never => false,
        };
        let reasoning = thinks.then(|| {
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
        let tools: &[Value] = param("tools")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        // The tool `tool_choice` names, else the one `auto` would pick.
        let forced = choice
            .and_then(|c| c.pointer("/function/name"))
            .and_then(Value::as_str)
            .and_then(|name| {
                tools
                    .iter()
                    .find(|t| t.pointer("/function/name").and_then(Value::as_str) == Some(name))
            });
        let tool = forced.or_else(|| super::shaped::pick_tool(tools, &prompt));
        let call = match (choice.and_then(Value::as_str), tool) {
            (Some("none"), _) | (_, None) => None,
            _ if after_tool => None,
            (_, Some(tool)) => {
                let function = tool.get("function").unwrap_or(tool);
                let schema = function
                    .get("parameters")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"}));
                Some(Call {
                    id: format!("call_{}", request_id.replace('-', "")),
                    name: function
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("tool")
                        .to_owned(),
                    // Every property of the tool's parameters, as a model fills them.
                    arguments: super::shaped::example(&schema, &prompt, 0).to_string(),
                })
            }
        };
        let audio = param("modalities")
            .and_then(Value::as_array)
            .is_some_and(|m| m.iter().any(|v| v.as_str() == Some("audio")));
        // Native only: the compatible API documents no such parameter.
        let image_hw = if api == Api::Native
            && param("vl_enable_image_hw_output").and_then(Value::as_bool) == Some(true)
        {
            received
                .media
                .iter()
                .filter_map(|m| m.dimensions)
                .map(|(w, h)| (read_at(h), read_at(w)))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            reasoning,
            call,
            finish: "stop",
            choices: 1,
            audio,
            image_hw,
        }
    }
}

/// The side an image is read at: the nearest multiple of the 28-pixel patch, at least one patch
/// (Qwen-VL's resize rule; the emulator applies no pixel bounds, see docs/emulator.md).
fn read_at(side: u32) -> u32 {
    (side.saturating_add(14) / 28).max(1) * 28
}

/// The content part that reports the images' sizes, as the documentation prints it: each
/// `[height, width]` as strings.
fn image_hw_part(sizes: &[(u32, u32)]) -> Value {
    let sizes: Vec<Value> = sizes
        .iter()
        .map(|(h, w)| json!([h.to_string(), w.to_string()]))
        .collect();
    json!({"image_hw": sizes})
}

pub(crate) struct Call {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) arguments: String,
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn compatible_usage(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
        "prompt_tokens_details": {"cached_tokens": 0, "text_tokens": u.text_in, "image_tokens": u.image, "audio_tokens": u.audio, "video_tokens": u.video}
    })
}

pub(crate) fn compatible_body(
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
    let mut finish = behaviour.finish;
    if let Some(call) = &behaviour.call {
        message["content"] = json!("");
        message["tool_calls"] = json!([{"id": call.id, "type": "function", "index": 0,
            "function": {"name": call.name, "arguments": call.arguments}}]);
        finish = "tool_calls";
    }
    let choices: Vec<Value> = (0..behaviour.choices.max(1))
        .map(|index| json!({"index": index, "message": message, "finish_reason": finish, "logprobs": null}))
        .collect();
    let n = behaviour.choices.max(1) as u64;
    let usage = usage.with_output(usage.output * n);
    json!({
        "id": format!("chatcmpl-{request_id}"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model,
        "system_fingerprint": null,
        "choices": choices,
        "usage": compatible_usage(&usage)
    })
}

pub(crate) fn native_usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input,
        "output_tokens": u.output,
        "total_tokens": u.input + u.output,
        "image_tokens": u.image,
        "input_tokens_details": {"text_tokens": u.text_in, "image_tokens": u.image, "audio_tokens": u.audio, "video_tokens": u.video},
        "output_tokens_details": {"text_tokens": u.output}
    })
}

pub(crate) fn native_body(
    request_id: &str,
    usage: &Usage,
    finish: &str,
    text: Option<&str>,
    shape: Shape,
) -> Value {
    let output = match shape {
        Shape::Multimodal => {
            let content = match text {
                Some(t) => json!([{"text": t}]),
                None => json!([]),
            };
            json!({"choices": [{"finish_reason": finish, "message": {"role": "assistant", "content": content}}]})
        }
        Shape::TextMessage => json!({"choices": [{"finish_reason": finish,
            "message": {"role": "assistant", "content": text.unwrap_or("")}}]}),
        Shape::Text => json!({"text": text.unwrap_or(""), "finish_reason": finish}),
    };
    json!({
        "output": output,
        "usage": native_usage(usage),
        "request_id": request_id
    })
}

/// The message of a native body (the text shape has none: the output stands for it).
fn message_of(body: &mut Value) -> &mut Value {
    if body.pointer("/output/choices/0/message").is_some() {
        &mut body["output"]["choices"][0]["message"]
    } else {
        &mut body["output"]
    }
}

/// Where a native body's finish reason is.
fn finish_of(body: &mut Value) -> &mut Value {
    if body.pointer("/output/choices/0").is_some() {
        &mut body["output"]["choices"][0]["finish_reason"]
    } else {
        &mut body["output"]["finish_reason"]
    }
}

/// The whole native answer: reasoning, then the text or a tool call.
pub(crate) fn native_answer(
    request_id: &str,
    answer: &str,
    behaviour: &Behaviour,
    usage: &Usage,
    shape: Shape,
) -> Value {
    let mut body = native_body(request_id, usage, behaviour.finish, Some(answer), shape);
    push_image_hw(message_of(&mut body), behaviour, shape);
    let message = message_of(&mut body);
    if let Some(reasoning) = &behaviour.reasoning {
        message["reasoning_content"] = json!(reasoning);
    }
    if let Some(call) = &behaviour.call {
        if shape == Shape::Multimodal {
            message["content"] = json!([]);
        } else if shape == Shape::TextMessage {
            message["content"] = json!("");
        }
        message["tool_calls"] = json!([{"id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": call.arguments}}]);
        *finish_of(&mut body) = json!("tool_calls");
    }
    body
}

/// The `image_hw` part after the text, when asked for (the multimodal shape only).
fn push_image_hw(message: &mut Value, behaviour: &Behaviour, shape: Shape) {
    if shape != Shape::Multimodal || behaviour.image_hw.is_empty() {
        return;
    }
    if let Some(content) = message.get_mut("content").and_then(Value::as_array_mut) {
        content.push(image_hw_part(&behaviour.image_hw));
    }
}

/// The answer cut into a few pieces at word boundaries, as a model would stream it.
pub(crate) fn pieces(answer: &str) -> Vec<String> {
    let words: Vec<&str> = answer.split_inclusive(' ').collect();
    let per = words.len().div_ceil(4).max(1);
    words.chunks(per).map(|c| c.concat()).collect()
}

/// 240 samples of 16-bit silence (10 ms at 24 kHz), base64: the audio of one streamed piece.
fn silence_10_ms() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([0u8; 480])
}

pub(crate) fn compatible_stream(
    model: &str,
    request_id: &str,
    answer: &str,
    behaviour: &Behaviour,
    usage: &Usage,
    include_usage: bool,
    fail: bool,
) -> Vec<String> {
    let id = format!("chatcmpl-{request_id}");
    let created = unix_now();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut out = Vec::new();
    let mut push = |v: Value| out.push(format!("data: {v}\n\n"));
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
    let mut finish = behaviour.finish;
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
            if behaviour.audio {
                // As Omni streams speech: its transcript, then its samples (base64 PCM, 16-bit
                // mono at 24 kHz; here 10 ms of silence per piece).
                push(chunk(json!({"audio": {"transcript": piece}}), Value::Null));
                push(chunk(
                    json!({"audio": {"data": silence_10_ms()}}),
                    Value::Null,
                ));
            }
        }
    }
    push(chunk(json!({}), json!(finish)));
    if include_usage {
        push(
            json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [], "usage": compatible_usage(usage)}),
        );
    }
    out.push("data: [DONE]\n\n".to_owned());
    out
}

pub(crate) fn native_stream(
    request_id: &str,
    answer: &str,
    behaviour: &Behaviour,
    usage: &Usage,
    incremental: bool,
    fail: bool,
    shape: Shape,
) -> Vec<String> {
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
    let mut out = Vec::new();
    let last = events.len().saturating_sub(1);
    // Usage counts so far in every event, final in the last (as the native stream reports it).
    let mut text_so_far = String::new();
    let mut call_started = false;
    for (i, (reasoning, text, arguments)) in events.into_iter().enumerate() {
        let n = i + 1;
        if fail && i == 1 {
            let data = json!({"code": "InternalError.Algo", "message": "An internal error has occured during execution, please try again later.", "request_id": request_id});
            out.push(format!(
                "id:{n}\nevent:error\n:HTTP_STATUS/500\ndata:{data}\n\n"
            ));
            return out;
        }
        let finish = match (i == last, &behaviour.call) {
            (false, _) => "null",
            (true, Some(_)) => "tool_calls",
            (true, None) => behaviour.finish,
        };
        match (&text, incremental) {
            (Some(t), true) => text_so_far.push_str(t),
            (Some(t), false) => text_so_far = t.clone(),
            (None, _) => {}
        }
        let so_far = if i == last {
            usage.output
        } else {
            crate::media::text_tokens(&text_so_far).min(usage.output)
        };
        let usage = usage.with_output(so_far);
        let mut data = native_body(request_id, &usage, finish, text.as_deref(), shape);
        let message = message_of(&mut data);
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
        if i == last {
            push_image_hw(message, behaviour, shape);
        }
        out.push(format!(
            "id:{n}\nevent:result\n:HTTP_STATUS/200\ndata:{data}\n\n"
        ));
    }
    out
}

/// An event stream written as it is produced: each event `pace` after the one before, so a
/// client sees its first event long before the last (and `--delay-ms` delays the first byte,
/// not the whole body). `finished` is counted once the last event was handed on.
pub(crate) fn sse(
    events: Vec<String>,
    pace: Duration,
    finished: Arc<AtomicU64>,
    abandoned: Arc<AtomicU64>,
    request_id: &str,
) -> Response {
    /// Counts its stream as abandoned when the stream is dropped before its last event.
    struct Watch {
        sent_last: Arc<std::sync::atomic::AtomicBool>,
        abandoned: Arc<AtomicU64>,
    }
    impl Drop for Watch {
        fn drop(&mut self) {
            if !self.sent_last.load(Ordering::Relaxed) {
                self.abandoned.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let sent_last = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = Watch {
        sent_last: sent_last.clone(),
        abandoned,
    };
    let last = events.len().saturating_sub(1);
    let stream =
        futures_util::stream::iter(events.into_iter().enumerate()).then(move |(i, event)| {
            let _watched = &watch;
            let finished = finished.clone();
            let sent_last = sent_last.clone();
            async move {
                if i > 0 {
                    tokio::time::sleep(pace).await;
                }
                if i == last {
                    finished.fetch_add(1, Ordering::Relaxed);
                    sent_last.store(true, Ordering::Relaxed);
                }
                Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(event))
            }
        });
    let mut response = Response::new(axum::body::Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream;charset=UTF-8"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}

/// What a request asked about, once every medium is resolved.
pub(crate) struct Received {
    pub(crate) model: String,
    pub(crate) texts: Vec<String>,
    pub(crate) media: Vec<Described>,
}

pub(crate) struct Described {
    pub(crate) summary: String,
    pub(crate) kind: MediaKind,
    pub(crate) tokens: u64,
    /// An image's width and height, when the emulator could read them.
    pub(crate) dimensions: Option<(u32, u32)>,
}
