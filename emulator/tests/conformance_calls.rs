//! The model-call side as clients nobody here wrote call it (issue #19), in the raw shapes the
//! official Python SDK 2.0.2 and OpenAI's SDK send: the catalogue's endpoint rules, text
//! generation, the compatible model list, streams that stream, answers shaped by the request,
//! and `x-request-id` on every answer.

mod support;

use std::time::Duration;

use dashscope_emulator::catalogue::{Endpoint, FAMILIES};
use dashscope_emulator::{DEFAULT_API_KEY, EmulatorConfig};
use serde_json::{Value, json};
use support::{COMPATIBLE, NATIVE, call, http};

const TEXT: &str = "/api/v1/services/aigc/text-generation/generation";

/// Each endpoint's path and a body in its shape for `model`.
fn request_for(endpoint: Endpoint, model: &str) -> (&'static str, Value) {
    let native = |input: Value| json!({"model": model, "input": input});
    match endpoint {
        Endpoint::Chat => (
            COMPATIBLE,
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        Endpoint::Multimodal => (
            NATIVE,
            native(json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})),
        ),
        Endpoint::TextGeneration => (
            TEXT,
            native(json!({"messages": [{"role": "user", "content": "hi"}]})),
        ),
        Endpoint::Transcription => (
            "/api/v1/services/audio/asr/transcription",
            native(json!({"file_urls": ["https://example.com/a.wav"]})),
        ),
        Endpoint::TextToImage => (
            "/api/v1/services/aigc/text2image/image-synthesis",
            native(json!({"prompt": "a cat"})),
        ),
        Endpoint::ImageEdit => (
            "/api/v1/services/aigc/image2image/image-synthesis",
            native(json!({"prompt": "a cat", "function": "colorization",
                          "base_image_url": "https://example.com/a.png"})),
        ),
        Endpoint::ImageGeneration => (
            "/api/v1/services/aigc/image-generation/generation",
            native(json!({"messages": [{"role": "user", "content": [{"text": "a cat"}]}]})),
        ),
        Endpoint::VideoSynthesis => (
            "/api/v1/services/aigc/video-generation/video-synthesis",
            native(json!({"prompt": "a cat", "img_url": "https://example.com/a.png"})),
        ),
        Endpoint::KeyframeVideo => (
            "/api/v1/services/aigc/image2video/video-synthesis",
            native(json!({"prompt": "a cat", "first_frame_url": "https://example.com/a.png"})),
        ),
        Endpoint::VoiceEnrollment => (
            "/api/v1/services/audio/tts/customization",
            native(json!({"action": "list_voice"})),
        ),
        Endpoint::Embedding => (
            "/api/v1/services/embeddings/multimodal-embedding/multimodal-embedding",
            native(json!({"contents": [{"text": "hi"}]})),
        ),
        _ => (COMPATIBLE, json!({})),
    }
}

const ENDPOINTS: [Endpoint; 11] = [
    Endpoint::Chat,
    Endpoint::Multimodal,
    Endpoint::TextGeneration,
    Endpoint::Transcription,
    Endpoint::TextToImage,
    Endpoint::ImageEdit,
    Endpoint::ImageGeneration,
    Endpoint::VideoSynthesis,
    Endpoint::KeyframeVideo,
    Endpoint::VoiceEnrollment,
    Endpoint::Embedding,
];

async fn post(
    emulator: &dashscope_emulator::Emulator,
    path: &str,
    body: &Value,
    sse: bool,
) -> support::Reply {
    let mut request = http()
        .post(format!("{}{path}", emulator.base_url()))
        .header("Authorization", format!("Bearer {DEFAULT_API_KEY}"))
        .header("Content-Type", "application/json")
        .header("X-DashScope-Async", "enable")
        .body(body.to_string());
    if sse {
        request = request
            .header("X-DashScope-SSE", "enable")
            .header("Accept", "text/event-stream");
    }
    let response = request.send().await.expect("emulator answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    support::Reply {
        status,
        headers,
        body,
    }
}

fn url_error(reply: &support::Reply) -> bool {
    reply.status == 400 && reply.body.contains("url error, please check url")
}

/// A model of every family is served on its own endpoints and refused with the service's
/// "url error" on every other; a name the catalogue does not know is `ModelNotFound` on all.
#[tokio::test]
async fn each_family_calls_its_own_endpoints_only() {
    let emulator = support::start().await;
    for family in FAMILIES {
        let model = family.examples[0];
        for endpoint in ENDPOINTS {
            let (path, mut body) = request_for(endpoint, model);
            let sse = family.stream_only;
            if sse && endpoint == Endpoint::Chat {
                body["stream"] = json!(true);
            }
            let reply = post(&emulator, path, &body, sse).await;
            if family.endpoints.contains(&endpoint) {
                assert!(
                    !url_error(&reply) && reply.status != 404,
                    "{model} on {endpoint:?}: {} {}",
                    reply.status,
                    reply.body
                );
            } else {
                assert!(
                    url_error(&reply),
                    "{model} on {endpoint:?} must be refused: {} {}",
                    reply.status,
                    reply.body
                );
            }
        }
    }
    for endpoint in ENDPOINTS {
        let (path, body) = request_for(endpoint, "no-such-model-1");
        let reply = post(&emulator, path, &body, false).await;
        assert_eq!(reply.status, 404, "{endpoint:?}: {}", reply.body);
        assert!(reply.body.contains("ModelNotFound") || reply.body.contains("model_not_found"));
    }
    // The user's gap the issue named: names the old list did not know.
    for model in [
        "qwen3-vl-plus",
        "qwen-vl-max-latest",
        "qwen2.5-vl-7b-instruct",
        "qwen-image-edit",
        "wan2.5-i2v-preview",
        "wan2.2-t2i-flash",
        "wanx-v1",
        "qwen-plus",
        "tongyi-embedding-vision-plus",
        "qwen3-asr-flash",
    ] {
        let r = support::get_policy_raw(
            &emulator,
            &format!("action=getPolicy&model={model}"),
            Some(DEFAULT_API_KEY),
        )
        .await;
        assert_eq!(r.status, 200, "{model}: {}", r.body);
    }
}

/// `Generation.call(model, messages=…, result_format="message")`, its default text format and
/// `prompt=`, and the v2 client's text-only turn, which routes there; the stream of it.
#[tokio::test]
async fn text_generation_answers_in_both_result_formats() {
    let emulator = support::start().await;
    let messages = json!([{"role": "user", "content": "What is DashScope?"}]);
    let message = call(
        &emulator,
        TEXT,
        DEFAULT_API_KEY,
        &json!({"model": "qwen-plus", "input": {"messages": messages},
                "parameters": {"result_format": "message"}}),
        false,
        false,
    )
    .await;
    assert_eq!(message.status, 200, "{}", message.body);
    let body = message.json();
    let content = &body["output"]["choices"][0]["message"]["content"];
    assert!(
        content
            .as_str()
            .is_some_and(|c| c.contains("What is DashScope?")),
        "{body}"
    );
    assert_eq!(body["output"]["choices"][0]["finish_reason"], "stop");
    assert!(
        body["usage"]["output_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );

    let text = call(
        &emulator,
        TEXT,
        DEFAULT_API_KEY,
        &json!({"model": "qwen-plus", "input": {"prompt": "Hello there"}}),
        false,
        false,
    )
    .await;
    assert_eq!(text.status, 200, "{}", text.body);
    let body = text.json();
    assert!(
        body["output"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Hello there")),
        "{body}"
    );
    assert_eq!(body["output"]["finish_reason"], "stop");

    let stream = call(
        &emulator,
        TEXT,
        DEFAULT_API_KEY,
        &json!({"model": "qwen-plus", "input": {"messages": messages},
                "parameters": {"incremental_output": true}}),
        false,
        true,
    )
    .await;
    assert_eq!(stream.status, 200, "{}", stream.body);
    let events = data_events(&stream.body);
    assert!(events.len() > 1, "{}", stream.body);
    let last = events.last().expect("events");
    assert_eq!(last["output"]["finish_reason"], "stop", "{last}");
    let joined: String = events
        .iter()
        .filter_map(|e| e["output"]["text"].as_str())
        .collect();
    assert!(joined.contains("What is DashScope?"), "{joined}");
}

fn data_events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
        })
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

/// OpenAI's `models.list()`: the catalogue's names, for a valid key only.
#[tokio::test]
async fn the_compatible_model_list() {
    let emulator = support::start().await;
    let listed = http()
        .get(format!("{}/compatible-mode/v1/models", emulator.base_url()))
        .header("Authorization", format!("Bearer {DEFAULT_API_KEY}"))
        .send()
        .await
        .expect("answer");
    assert_eq!(listed.status(), 200);
    assert!(listed.headers().get("x-request-id").is_some());
    let body: Value = listed.json().await.expect("json");
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    for id in ["qwen-vl-plus", "qwen-plus", "paraformer-v2", "wanx-v1"] {
        assert!(ids.contains(&id), "{id}: {ids:?}");
    }
    let refused = http()
        .get(format!("{}/compatible-mode/v1/models", emulator.base_url()))
        .header("Authorization", "Bearer sk-wrong")
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 401);
}

/// A stream is written as it is produced: with a minute between events, the first arrives and
/// the emulator has not written the last (a buffered body would deliver both at once, after the
/// minute). `--delay-ms` delays the first byte only.
#[tokio::test]
async fn a_stream_delivers_its_first_event_before_its_last_is_written() {
    let emulator = support::start_with(EmulatorConfig {
        stream_pace: Duration::from_secs(60),
        ..EmulatorConfig::default()
    })
    .await;
    emulator.set_delay(Duration::from_millis(200));
    let mut response = http()
        .post(format!("{}{COMPATIBLE}", emulator.base_url()))
        .header("Authorization", format!("Bearer {DEFAULT_API_KEY}"))
        .header("Content-Type", "application/json")
        .body(
            json!({"model": "qwen-vl-plus", "stream": true,
                   "messages": [{"role": "user", "content": "a question of several words"}]})
            .to_string(),
        )
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-request-id").is_some());
    let first = tokio::time::timeout(Duration::from_secs(30), response.chunk())
        .await
        .expect("the first event comes at once, not after the minutes of the rest")
        .expect("a chunk")
        .expect("not the end");
    assert!(
        String::from_utf8_lossy(&first).starts_with("data: "),
        "{first:?}"
    );
    assert_eq!(
        emulator.stats().streams_finished,
        0,
        "the last event is not written yet"
    );
}

/// Native usage grows chunk by chunk and is final in the last event.
#[tokio::test]
async fn native_usage_grows_chunk_by_chunk() {
    let emulator = support::start_with(EmulatorConfig {
        stream_pace: Duration::ZERO,
        ..EmulatorConfig::default()
    })
    .await;
    let reply = call(
        &emulator,
        NATIVE,
        DEFAULT_API_KEY,
        &json!({"model": "qwen-vl-plus", "input": {"messages": [{"role": "user",
                "content": [{"text": "a question of quite a few words, to be answered at length"}]}]},
                "parameters": {"incremental_output": true}}),
        false,
        true,
    )
    .await;
    let events = data_events(&reply.body);
    let outputs: Vec<u64> = events
        .iter()
        .filter_map(|e| e["usage"]["output_tokens"].as_u64())
        .collect();
    assert!(outputs.len() > 2, "{outputs:?}");
    assert!(outputs.windows(2).all(|w| w[0] <= w[1]), "{outputs:?}");
    assert!(outputs[0] < *outputs.last().expect("last"), "{outputs:?}");
    assert_eq!(emulator.stats().streams_finished, 1);
}

/// OpenAI's `chat.completions.parse(response_format=Model)` sends a strict json_schema: the
/// answer is JSON valid against it. `json_object` gives an object; tools get arguments with
/// every required property; a named `tool_choice` is the tool called; `auto` picks the tool the
/// question is about; `max_tokens` cuts with `length`; `stop` cuts; `n` gives n choices.
#[tokio::test]
async fn answers_are_shaped_by_the_request() {
    let emulator = support::start().await;
    let ask = |extra: Value| {
        let mut body = json!({"model": "qwen-plus",
            "messages": [{"role": "user", "content": "What is the weather in Hangzhou?"}]});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        body
    };
    let content = |reply: &support::Reply| {
        reply.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let schema = json!({"type": "object", "title": "Weather",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "number"},
                       "sunny": {"type": "boolean"}},
        "required": ["city", "celsius", "sunny"], "additionalProperties": false});
    let parsed = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &ask(json!({"response_format": {"type": "json_schema",
            "json_schema": {"name": "Weather", "schema": schema, "strict": true}}})),
        false,
        false,
    )
    .await;
    assert_eq!(parsed.status, 200, "{}", parsed.body);
    let value: Value = serde_json::from_str(&content(&parsed)).expect("JSON content");
    assert!(
        value["city"].is_string() && value["celsius"].is_number() && value["sunny"].is_boolean(),
        "{value}"
    );

    let object = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &ask(json!({"response_format": {"type": "json_object"}})),
        false,
        false,
    )
    .await;
    let value: Value = serde_json::from_str(&content(&object)).expect("JSON content");
    assert!(value.is_object(), "{value}");

    let tools = json!([
        {"type": "function", "function": {"name": "get_time", "description": "The current time",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}},
        {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                "days": {"type": "integer"}}, "required": ["city", "days"]}}}
    ]);
    let auto = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &ask(json!({"tools": tools})),
        false,
        false,
    )
    .await;
    let call_of = |reply: &support::Reply| {
        reply.json()["choices"][0]["message"]["tool_calls"][0]["function"].clone()
    };
    let function = call_of(&auto);
    assert_eq!(function["name"], "get_weather", "{}", auto.body);
    let arguments: Value =
        serde_json::from_str(function["arguments"].as_str().unwrap_or("")).expect("arguments");
    assert!(
        arguments["city"].is_string() && arguments["days"].is_i64(),
        "{arguments}"
    );
    let forced = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &ask(json!({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "get_time"}}})),
        false,
        false,
    )
    .await;
    let function = call_of(&forced);
    assert_eq!(function["name"], "get_time", "{}", forced.body);
    let arguments: Value =
        serde_json::from_str(function["arguments"].as_str().unwrap_or("")).expect("arguments");
    assert!(arguments["zone"].is_string(), "{arguments}");

    let cut = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &ask(json!({"max_tokens": 3})),
        false,
        false,
    )
    .await;
    assert_eq!(
        cut.json()["choices"][0]["finish_reason"],
        "length",
        "{}",
        cut.body
    );
    assert_eq!(content(&cut).chars().count(), 12, "{}", cut.body);
    assert_eq!(cut.json()["usage"]["completion_tokens"], 3);

    let stopped = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &ask(json!({"stop": ["received"]})),
        false,
        false,
    )
    .await;
    assert!(!content(&stopped).contains("received"), "{}", stopped.body);
    assert_eq!(stopped.json()["choices"][0]["finish_reason"], "stop");

    let two = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &ask(json!({"n": 2})),
        false,
        false,
    )
    .await;
    let choices = two.json()["choices"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(choices.len(), 2, "{}", two.body);
    assert_eq!(choices[1]["index"], 1);
}

/// Only a model that thinks reasons; a stream-only model (Omni) refuses a plain call and, asked
/// for audio, streams `delta.audio` beside its text.
#[tokio::test]
async fn thinking_and_omni_as_the_service_has_them() {
    let emulator = support::start().await;
    let thinking = |model: &str| {
        json!({"model": model, "enable_thinking": true,
               "messages": [{"role": "user", "content": "Why?"}]})
    };
    let plain = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &thinking("qwen-vl-max"),
        false,
        false,
    )
    .await;
    assert!(
        plain.json()["choices"][0]["message"]
            .get("reasoning_content")
            .is_none(),
        "{}",
        plain.body
    );
    let thinks = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &thinking("qwen3-vl-plus"),
        false,
        false,
    )
    .await;
    assert!(
        thinks.json()["choices"][0]["message"]["reasoning_content"].is_string(),
        "{}",
        thinks.body
    );

    let omni = |stream: bool| {
        json!({"model": "qwen3-omni-flash", "stream": stream, "modalities": ["text", "audio"],
               "audio": {"voice": "Cherry", "format": "wav"},
               "messages": [{"role": "user", "content": "Say hello"}]})
    };
    let refused = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &omni(false),
        false,
        false,
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("only support stream mode"),
        "{}",
        refused.body
    );
    let streamed = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &omni(true),
        false,
        false,
    )
    .await;
    assert_eq!(streamed.status, 200, "{}", streamed.body);
    let events = data_events(&streamed.body);
    let audio: Vec<&str> = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["audio"]["data"].as_str())
        .collect();
    assert!(!audio.is_empty(), "{}", streamed.body);
    use base64::Engine;
    let pcm = base64::engine::general_purpose::STANDARD
        .decode(audio[0])
        .expect("base64 audio");
    assert_eq!(pcm.len() % 2, 0, "16-bit samples");
    assert!(
        events
            .iter()
            .any(|e| e["choices"][0]["delta"]["audio"]["transcript"].is_string()),
        "{}",
        streamed.body
    );
}

/// Every answer carries `x-request-id`: a success (the body's id), an error, a stream.
#[tokio::test]
async fn every_answer_names_its_request_id() {
    let emulator = support::start().await;
    let ok = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &json!({"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}),
        false,
        false,
    )
    .await;
    let id = ok
        .header("x-request-id")
        .expect("a success names it")
        .to_owned();
    assert!(ok.body.contains(&id), "the body's own id: {id} {}", ok.body);
    let refused = call(
        &emulator,
        NATIVE,
        "sk-wrong",
        &json!({"model": "qwen-vl-plus", "input": {}}),
        false,
        false,
    )
    .await;
    assert_eq!(refused.status, 401);
    let id = refused.header("x-request-id").expect("an error names it");
    assert!(refused.body.contains(id), "{}", refused.body);
    let stream = call(
        &emulator,
        NATIVE,
        DEFAULT_API_KEY,
        &json!({"model": "qwen-vl-plus", "input": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}}),
        false,
        true,
    )
    .await;
    let id = stream.header("x-request-id").expect("a stream names it");
    assert!(stream.body.contains(id), "{}", stream.body);
    let missing = http()
        .get(format!("{}/api/v1/nowhere", emulator.base_url()))
        .send()
        .await
        .expect("answer");
    assert!(missing.headers().get("x-request-id").is_some());
}

/// A PNG head of `width` × `height` (the emulator reads sizes from the header).
fn png_of(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(b"\x08\x02\0\0\0");
    png
}

/// The `image_hw` parts of a native answer's content.
fn image_hw_of(message: &Value) -> Vec<Value> {
    message["content"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p.get("image_hw").cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// Native `vl_enable_image_hw_output: true` (the Java SDK's `vlEnableImageHwOutput`) adds an
/// `image_hw` part after the text, `[height, width]` as strings, each side read at the nearest
/// multiple of 28: 500 × 300 is read at 504 × 308. Not asked for, or on the compatible API,
/// there is none; a stream carries it in its last event.
#[tokio::test]
async fn image_sizes_are_reported_when_asked_for() {
    use base64::Engine;
    let emulator = support::start().await;
    let model = "qwen-vl-plus";
    let url = support::upload(
        &emulator,
        model,
        DEFAULT_API_KEY,
        "wide.png",
        &png_of(500, 300),
    )
    .await;
    let asked = |ask: bool| {
        let mut body = support::native_image(model, &url);
        if ask {
            body["parameters"] = json!({"vl_enable_image_hw_output": true});
        }
        body
    };
    let answered = call(
        &emulator,
        NATIVE,
        DEFAULT_API_KEY,
        &asked(true),
        true,
        false,
    )
    .await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    let message = &answered.json()["output"]["choices"][0]["message"];
    assert_eq!(
        image_hw_of(message),
        vec![json!([["308", "504"]])],
        "{}",
        answered.body
    );
    assert!(
        message["content"][0]["text"].is_string(),
        "the text comes first: {message}"
    );

    let plain = call(
        &emulator,
        NATIVE,
        DEFAULT_API_KEY,
        &asked(false),
        true,
        false,
    )
    .await;
    assert!(image_hw_of(&plain.json()["output"]["choices"][0]["message"]).is_empty());

    let mut compatible = support::compatible_image(model, &url);
    compatible["vl_enable_image_hw_output"] = json!(true);
    let compatible = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &compatible,
        true,
        false,
    )
    .await;
    assert_eq!(compatible.status, 200, "{}", compatible.body);
    assert!(!compatible.body.contains("image_hw"), "{}", compatible.body);

    // A data URI is read the same way; a stream reports it once, in its last event.
    let data = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png_of(28, 20))
    );
    let mut streamed = support::native_image(model, &data);
    streamed["parameters"] = json!({"vl_enable_image_hw_output": true, "incremental_output": true});
    let stream = call(&emulator, NATIVE, DEFAULT_API_KEY, &streamed, false, true).await;
    assert_eq!(stream.status, 200, "{}", stream.body);
    let events = data_events(&stream.body);
    assert!(events.len() > 1, "{}", stream.body);
    let reported: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| !image_hw_of(&e["output"]["choices"][0]["message"]).is_empty())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(reported, vec![events.len() - 1], "{}", stream.body);
    assert_eq!(
        image_hw_of(&events[events.len() - 1]["output"]["choices"][0]["message"]),
        vec![json!([["28", "28"]])]
    );
}
