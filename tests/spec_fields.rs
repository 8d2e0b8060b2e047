//! The chat fields of the documentation's examples (see spec/SOURCES.md), each parsed into the
//! generated types and sent: every field lands in a typed field (none in an `extra` map), the
//! body sent is the body written, and the snapshots show it as sent.

mod support;

use dashscope_oss::api::types;
use serde_json::{Value, json};
use support::{Canned, Server, client};

/// Every `extra` map reached from `value` through the typed structure must be empty: checks by
/// serializing each typed part and comparing with what the spec names. Simplest form: a typed
/// round trip that loses nothing, and no `extra` left in the Debug rendering.
fn assert_all_named<T: std::fmt::Debug>(typed: &T) {
    let debug = format!("{typed:?}");
    assert!(
        !debug.contains("extra: {\"") && !debug.contains("extra: {\n"),
        "a documented field is not named by the spec: {debug}"
    );
}

async fn sent(path_json: Value, native: bool) -> String {
    let server = Server::start(Canned::json(
        200,
        r#"{"output":{"choices":[]},"choices":[]}"#,
    ))
    .await;
    let client = client(&server.url);
    if native {
        let request: types::MultimodalGenerationRequest =
            serde_json::from_value(path_json.clone()).expect("the documented request parses");
        assert_all_named(&request);
        assert_eq!(serde_json::to_value(&request).expect("json"), path_json);
        let _ = client.multimodal_generation(&request).await;
    } else {
        let request: types::ChatCompletionRequest =
            serde_json::from_value(path_json.clone()).expect("the documented request parses");
        assert_all_named(&request);
        assert_eq!(serde_json::to_value(&request).expect("json"), path_json);
        let _ = client.chat_completion(&request).await;
    }
    server.only_request().render()
}

#[tokio::test]
async fn compatible_tools_thinking_and_sampling() {
    let body = json!({
        "model": "qwen3-vl-plus",
        "messages": [
            {"role": "user", "content": "What is the weather in Hangzhou?"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "index": 0,
                "function": {"name": "get_weather", "arguments": "{\"city\": \"Hangzhou\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": "auto",
        "parallel_tool_calls": true,
        "enable_thinking": true,
        "thinking_budget": 50,
        "top_k": 20,
        "repetition_penalty": 1.05,
        "presence_penalty": 1.5,
        "logprobs": true,
        "top_logprobs": 2,
        "vl_high_resolution_images": true,
        "seed": 1234,
        "stop": ["\n\n"],
        "n": 1
    });
    insta::assert_snapshot!(sent(body, false).await);
}

#[tokio::test]
async fn compatible_media_options_structured_output_and_omni_audio() {
    let body = json!({
        "model": "qwen3-omni-flash",
        "messages": [{"role": "user", "content": [
            {"type": "video", "video": ["https://x/f1.jpg", "https://x/f2.jpg"], "total_pixels": 134217728},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png"}, "min_pixels": 65536, "max_pixels": 2621440},
            {"type": "video_url", "video_url": {"url": "https://x/clip.mp4"}, "max_pixels": 655360, "fps": 2.0},
            {"type": "input_audio", "input_audio": {"data": "https://x/a.wav", "format": "wav"}},
            {"type": "text", "text": "Describe them in JSON."}
        ]}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "scene", "strict": true,
            "schema": {"type": "object", "properties": {"summary": {"type": "string"}}}}},
        "modalities": ["text", "audio"],
        "audio": {"voice": "Cherry", "format": "wav"},
        "stream_options": {"include_usage": true},
        "max_completion_tokens": 512
    });
    insta::assert_snapshot!(sent(body, false).await);
}

#[tokio::test]
async fn native_items_options_and_parameters() {
    let body = json!({
        "model": "qwen-vl-max",
        "input": {"messages": [
            {"role": "system", "content": [{"text": "Answer briefly."}]},
            {"role": "user", "content": [
                {"video": ["https://x/f1.jpg", "https://x/f2.jpg"], "fps": 2.0},
                {"video": "https://x/clip.mp4", "max_frames": 64, "min_pixels": 50176, "max_pixels": 655360},
                {"image": "https://x/cat.png", "max_pixels": 1003520},
                {"audio": "https://x/a.mp3"},
                {"text": "What happens?"}
            ]}
        ]},
        "parameters": {
            "result_format": "message",
            "incremental_output": true,
            "vl_enable_image_hw_output": true,
            "vl_high_resolution_images": false,
            "enable_thinking": false,
            "repetition_penalty": 1.0,
            "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
            "response_format": {"type": "json_object"},
            "logprobs": true,
            "top_logprobs": 1
        }
    });
    insta::assert_snapshot!(sent(body, true).await);
}

/// The responses of the documentation's examples keep every field: tool calls, reasoning,
/// logprobs, the token details of both APIs, an Omni audio delta.
#[test]
fn documented_responses_parse_into_named_fields() {
    let compatible: types::ChatCompletionResponse = serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "qwen3-vl-plus",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
            "logprobs": {"content": [{"token": "I", "logprob": -0.1, "bytes": [73], "top_logprobs": [{"token": "I", "logprob": -0.1, "bytes": [73]}]}]},
            "message": {"role": "assistant", "content": "", "reasoning_content": "Think.",
                "tool_calls": [{"id": "call_1", "type": "function", "index": 0, "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 0, "text_tokens": 4, "image_tokens": 6},
            "completion_tokens_details": {"text_tokens": 3, "reasoning_tokens": 2, "audio_tokens": null}}
    }))
    .expect("parses");
    assert_all_named(&compatible);
    assert_eq!(compatible.reasoning(), Some("Think."));
    assert_eq!(compatible.tool_calls().len(), 1);
    let details = compatible
        .token_usage()
        .and_then(|u| u.completion_tokens_details.as_ref())
        .and_then(|d| d.reasoning_tokens);
    assert_eq!(details, Some(2));

    let chunk: types::ChatCompletionChunk = serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "qwen3-omni-flash",
        "choices": [{"index": 0, "finish_reason": null, "delta": {"audio": {"data": "AAAA", "expires_at": 1757000000, "id": "audio_1"}}}]
    }))
    .expect("parses");
    assert_all_named(&chunk);

    let native: types::MultimodalGenerationResponse = serde_json::from_value(json!({
        "request_id": "r", "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
            "content": [{"text": "A cat."}, {"image_hw": [[924, 924]]}], "reasoning_content": "Look."}}]},
        "usage": {"input_tokens": 100, "output_tokens": 3, "total_tokens": 103, "image_tokens": 90,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 90},
            "output_tokens_details": {"text_tokens": 3, "reasoning_tokens": 0}}
    }))
    .expect("parses");
    assert_all_named(&native);
    assert_eq!(native.text().as_deref(), Some("A cat."));
}
