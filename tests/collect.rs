//! Streams assembled into answers, against the emulator (which reasons when thinking is enabled
//! and calls a tool when tools are offered): the collector's answer is the answer the same
//! request gets without streaming, tool calls whole from their fragments, on both APIs.

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig};
use dashscope_oss::api::types;
use dashscope_oss::chat::{Message, collect_chat, collect_generation};
use dashscope_oss::{Client, Config};
use serde_json::{Value, json};

async fn setup() -> (Emulator, Client) {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let client = Client::new(
        Config::new()
            .api_key(DEFAULT_API_KEY)
            .base_url(emulator.base_url()),
    )
    .expect("client");
    (emulator, client)
}

fn weather_tool() -> types::Tool {
    types::Tool::builder()
        .function(
            types::FunctionDefinition::builder()
                .name("get_weather")
                .description(Some("The weather in a city.".to_owned()))
                .parameters(Some(json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}))),
        )
        .try_into()
        .expect("a tool")
}

fn compatible(tools: bool, think: bool) -> types::ChatCompletionRequest {
    let question = Message::user().text("What is the weather in Hangzhou?");
    let mut builder = types::ChatCompletionRequest::builder()
        .model("qwen3-vl-plus")
        .messages(vec![question.to_compatible().expect("message")])
        .enable_thinking(Some(think));
    if tools {
        builder = builder.tools(vec![weather_tool()]);
    }
    builder.try_into().expect("request")
}

fn native(tools: bool, think: bool, incremental: bool) -> types::MultimodalGenerationRequest {
    let question = Message::user().text("What is the weather in Hangzhou?");
    let mut parameters = types::MultimodalParameters::builder()
        .enable_thinking(Some(think))
        .incremental_output(Some(incremental))
        .result_format(Some(types::ResultFormat::Message));
    if tools {
        parameters = parameters.tools(vec![weather_tool()]);
    }
    types::MultimodalGenerationRequest::builder()
        .model("qwen3-vl-plus")
        .input(
            types::MultimodalInput::builder()
                .messages(vec![question.to_native().expect("message")]),
        )
        .parameters(Some(parameters.try_into().expect("parameters")))
        .try_into()
        .expect("request")
}

/// What differs between two calls whatever they answer: ids and times; and an empty text
/// beside tool calls, which a stream does not send at all.
fn comparable(mut answer: Value) -> Value {
    for key in ["id", "created", "request_id"] {
        if let Some(v) = answer.get_mut(key) {
            *v = json!("[varies]");
        }
    }
    if let Some(Value::Array(choices)) = answer.get_mut("choices") {
        for choice in choices {
            let Some(message) = choice.get_mut("message").and_then(Value::as_object_mut) else {
                continue;
            };
            if message
                .get("content")
                .is_none_or(|c| c.is_null() || c == "")
            {
                message.remove("content");
            }
            if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
                for call in calls {
                    call["id"] = json!("[varies]");
                }
            }
        }
    }
    answer
}

#[tokio::test]
async fn a_streamed_tool_call_is_assembled_from_its_fragments() {
    let (_emulator, client) = setup().await;
    let request = compatible(true, true);
    let stream = client
        .chat_completion_stream(&request)
        .await
        .expect("stream");
    let streamed = collect_chat(stream).await.expect("assembled");
    let whole = client.chat_completion(&request).await.expect("answer");

    assert_eq!(streamed.finish_reason(), Some("tool_calls"));
    let calls = streamed.tool_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let function = calls[0].function.as_ref().expect("function");
    assert_eq!(function.name.as_deref(), Some("get_weather"));
    let arguments: Value =
        serde_json::from_str(function.arguments.as_deref().unwrap_or_default()).expect("JSON");
    // The emulator fills every property of the tool's schema (strings with the prompt).
    assert_eq!(
        arguments,
        json!({"city": "What is the weather in Hangzhou?"})
    );
    assert!(
        calls[0]
            .id
            .as_deref()
            .is_some_and(|id| id.starts_with("call_"))
    );
    assert!(streamed.reasoning().is_some_and(|r| r.contains("Hangzhou")));
    assert!(streamed.token_usage().is_some());

    // The streamed answer, assembled, is the answer without streaming.
    let mut streamed = comparable(serde_json::to_value(&streamed).expect("json"));
    let mut whole = comparable(serde_json::to_value(&whole).expect("json"));
    // The non-streamed answer says `logprobs: null`; a stream has none to say.
    whole["choices"][0]
        .as_object_mut()
        .map(|c| c.remove("logprobs"));
    streamed["choices"][0]
        .as_object_mut()
        .map(|c| c.remove("logprobs"));
    assert_eq!(streamed, whole);
    insta::assert_json_snapshot!("compatible_tool_call_assembled", streamed);
}

#[tokio::test]
async fn a_streamed_answer_with_reasoning_is_the_whole_answer() {
    let (_emulator, client) = setup().await;
    let request = compatible(false, true);
    let streamed = collect_chat(
        client
            .chat_completion_stream(&request)
            .await
            .expect("stream"),
    )
    .await
    .expect("assembled");
    let whole = client.chat_completion(&request).await.expect("answer");
    assert_eq!(streamed.text(), whole.text());
    assert_eq!(streamed.reasoning(), whole.reasoning());
    assert!(streamed.text().is_some_and(|t| t.contains("no model ran")));
    assert!(streamed.tool_calls().is_empty());
    assert_eq!(streamed.finish_reason(), Some("stop"));
}

#[tokio::test]
async fn native_streams_assemble_alike_incremental_or_not() {
    let (_emulator, client) = setup().await;
    for tools in [true, false] {
        let whole = client
            .multimodal_generation(&native(tools, true, false))
            .await
            .expect("answer");
        for incremental in [true, false] {
            let request = native(tools, true, incremental);
            let stream = client
                .multimodal_generation_stream(&request)
                .await
                .expect("stream");
            let streamed = collect_generation(stream, incremental)
                .await
                .expect("assembled");
            let context = format!("tools {tools}, incremental {incremental}");
            assert_eq!(streamed.text(), whole.text(), "{context}");
            assert_eq!(streamed.reasoning(), whole.reasoning(), "{context}");
            assert_eq!(streamed.finish_reason(), whole.finish_reason(), "{context}");
            let names = |calls: &[types::ToolCallDelta]| -> Vec<(Option<String>, Option<String>)> {
                calls
                    .iter()
                    .map(|c| {
                        let f = c.function.as_ref();
                        (
                            f.and_then(|f| f.name.clone()),
                            f.and_then(|f| f.arguments.clone()),
                        )
                    })
                    .collect()
            };
            assert_eq!(
                names(streamed.tool_calls()),
                names(whole.tool_calls()),
                "{context}"
            );
            if tools {
                assert_eq!(streamed.tool_calls().len(), 1, "{context}");
                assert_eq!(streamed.finish_reason(), Some("tool_calls"), "{context}");
            }
        }
    }
}

#[tokio::test]
async fn no_tool_call_after_the_tool_answered_or_with_tool_choice_none() {
    let (_emulator, client) = setup().await;
    // tool_choice "none".
    let mut request = compatible(true, false);
    request.tool_choice = Some(types::ToolChoice::Mode(types::ToolChoiceMode::None));
    let answer = client.chat_completion(&request).await.expect("answer");
    assert!(answer.tool_calls().is_empty());
    // The history carries the call and its result: the model answers.
    let first = client
        .chat_completion(&compatible(true, false))
        .await
        .expect("answer");
    let call = first.tool_calls()[0].clone();
    let mut request = compatible(true, false);
    request.messages.push(
        types::ChatMessage::builder()
            .role(types::ChatRole::Assistant)
            .tool_calls(vec![call.clone()])
            .try_into()
            .expect("assistant message"),
    );
    request.messages.push(
        types::ChatMessage::builder()
            .role(types::ChatRole::Tool)
            .tool_call_id(call.id.clone())
            .content(Some(types::ChatContent::String("Sunny, 21 °C".to_owned())))
            .try_into()
            .expect("tool message"),
    );
    let answer = client.chat_completion(&request).await.expect("answer");
    assert!(answer.tool_calls().is_empty());
    assert!(
        answer.text().is_some_and(|t| t.contains("Sunny")),
        "{answer:?}"
    );
}
