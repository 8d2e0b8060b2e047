//! Assembling the chunks of a stream into the answer a non-streamed call would have given.

use futures_util::StreamExt;
use serde_json::{Map, Value, json};

use super::ChunkStream;
use crate::api::types;
use crate::{Error, Result};

/// Assembles the chunks of a streamed chat completion into the answer a non-streamed call
/// would have given: each choice's text, reasoning, tool calls joined from their fragments (by
/// `index`), Omni's audio pieces joined (in `message.extra["audio"]`), the finish reason and
/// the usage. What the chunks carry that the spec does not name is kept. Pure: feed it chunks
/// from anywhere.
#[derive(Debug, Default)]
pub struct ChatCollector {
    pub(super) top: Map<String, Value>,
    pub(super) choices: std::collections::BTreeMap<i64, ChoiceParts>,
    pub(super) usage: Option<Value>,
}

#[derive(Debug, Default)]
pub(super) struct ChoiceParts {
    pub(super) role: Option<String>,
    pub(super) text: Option<String>,
    pub(super) reasoning: Option<String>,
    /// By the fragment's `index` (or arrival order where none is sent).
    pub(super) calls: std::collections::BTreeMap<i64, Map<String, Value>>,
    pub(super) audio: Option<Map<String, Value>>,
    pub(super) finish_reason: Option<String>,
    pub(super) logprobs: Vec<Value>,
    pub(super) extra: Map<String, Value>,
}

impl ChoiceParts {
    pub(super) fn add_text(slot: &mut Option<String>, piece: Option<&Value>) {
        if let Some(piece) = piece.and_then(Value::as_str) {
            slot.get_or_insert_with(String::new).push_str(piece);
        }
    }

    /// Joins one batch of tool-call fragments: the first fragment of an index gives the id,
    /// type and name; every fragment's `arguments` piece is appended (a null piece is empty).
    pub(super) fn add_calls(&mut self, fragments: &[Value]) {
        for fragment in fragments {
            let Some(fragment) = fragment.as_object() else {
                continue;
            };
            let index = match fragment.get("index").and_then(Value::as_i64) {
                Some(index) => index,
                // No index (the native API's printed example): a fragment with an id not seen
                // yet starts a call; one without an id, or with a known one, continues it.
                None => {
                    let id = fragment
                        .get("id")
                        .and_then(Value::as_str)
                        .filter(|id| !id.is_empty());
                    let known = id.and_then(|id| {
                        self.calls
                            .iter()
                            .find(|(_, c)| c.get("id").and_then(Value::as_str) == Some(id))
                            .map(|(i, _)| *i)
                    });
                    let last = self.calls.keys().next_back().copied();
                    match (id, known, last) {
                        (_, Some(i), _) => i,
                        (Some(_), None, Some(last)) => last.saturating_add(1),
                        (None, None, Some(last)) => last,
                        (_, None, None) => 0,
                    }
                }
            };
            let call = self.calls.entry(index).or_default();
            for (key, value) in fragment {
                match key.as_str() {
                    "function" => {
                        let function = call
                            .entry("function")
                            .or_insert_with(|| json!({}))
                            .as_object_mut();
                        let (Some(function), Some(piece)) = (function, value.as_object()) else {
                            continue;
                        };
                        for (fkey, fvalue) in piece {
                            match (fkey.as_str(), fvalue) {
                                ("arguments", Value::String(more)) => {
                                    let joined =
                                        function.entry("arguments").or_insert_with(|| json!(""));
                                    if let Value::String(so_far) = joined {
                                        so_far.push_str(more);
                                    }
                                }
                                (_, Value::Null) => {}
                                (_, Value::String(s)) if s.is_empty() => {}
                                (other, v) => {
                                    function.entry(other).or_insert_with(|| v.clone());
                                }
                            }
                        }
                        function.entry("arguments").or_insert_with(|| json!(""));
                    }
                    // Later fragments repeat or blank these: the first one counts.
                    _ if value.is_null() || value.as_str() == Some("") => {}
                    _ => {
                        call.entry(key.clone()).or_insert_with(|| value.clone());
                    }
                }
            }
            call.insert("index".to_owned(), json!(index));
        }
    }

    /// A choice's finish reason (not the native stream's string `"null"`) and logprobs.
    pub(super) fn add_choice_fields(&mut self, choice: &Map<String, Value>) {
        if let Some(reason) = choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .filter(|r| *r != "null")
        {
            self.finish_reason = Some(reason.to_owned());
        }
        if let Some(Value::Object(logprobs)) = choice.get("logprobs")
            && let Some(Value::Array(content)) = logprobs.get("content")
        {
            self.logprobs.extend(content.iter().cloned());
        }
    }

    /// A message field both APIs write alike: the role, reasoning pieces, tool-call fragments;
    /// anything else is kept as it comes.
    pub(super) fn add_field(&mut self, key: String, value: Value) {
        match key.as_str() {
            "role" => {
                if let Some(role) = value.as_str() {
                    self.role = Some(role.to_owned());
                }
            }
            "reasoning_content" => Self::add_text(&mut self.reasoning, Some(&value)),
            "tool_calls" => {
                if let Value::Array(fragments) = &value {
                    self.add_calls(fragments);
                }
            }
            _ if value.is_null() => {}
            _ => {
                self.extra.insert(key, value);
            }
        }
    }

    pub(super) fn message(self) -> (Value, Option<String>, Vec<Value>) {
        let mut message = self.extra;
        message.insert(
            "role".to_owned(),
            json!(self.role.unwrap_or_else(|| "assistant".to_owned())),
        );
        message.insert("content".to_owned(), json!(self.text));
        if let Some(reasoning) = self.reasoning {
            message.insert("reasoning_content".to_owned(), json!(reasoning));
        }
        if !self.calls.is_empty() {
            let calls: Vec<Value> = self.calls.into_values().map(Value::Object).collect();
            message.insert("tool_calls".to_owned(), Value::Array(calls));
        }
        if let Some(audio) = self.audio {
            message.insert("audio".to_owned(), Value::Object(audio));
        }
        (Value::Object(message), self.finish_reason, self.logprobs)
    }
}

impl ChatCollector {
    /// An empty answer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one chunk.
    pub fn push(&mut self, chunk: &types::ChatCompletionChunk) {
        let Ok(Value::Object(mut chunk)) = serde_json::to_value(chunk) else {
            return;
        };
        if let Some(usage) = chunk.remove("usage").filter(|u| !u.is_null()) {
            self.usage = Some(usage);
        }
        let choices = chunk.remove("choices");
        for (key, value) in chunk {
            self.top.insert(key, value);
        }
        let Some(Value::Array(choices)) = choices else {
            return;
        };
        for (position, choice) in choices.into_iter().enumerate() {
            let Value::Object(mut choice) = choice else {
                continue;
            };
            let index = choice
                .get("index")
                .and_then(Value::as_i64)
                .unwrap_or(i64::try_from(position).unwrap_or(0));
            let parts = self.choices.entry(index).or_default();
            parts.add_choice_fields(&choice);
            let Some(Value::Object(delta)) = choice.remove("delta") else {
                continue;
            };
            for (key, value) in delta {
                match key.as_str() {
                    "content" => ChoiceParts::add_text(&mut parts.text, Some(&value)),

                    "audio" => {
                        if let Value::Object(piece) = value {
                            let audio = parts.audio.get_or_insert_with(Map::new);
                            for (akey, avalue) in piece {
                                match (akey.as_str(), &avalue) {
                                    ("data" | "transcript", Value::String(more)) => {
                                        let joined = audio.entry(akey).or_insert_with(|| json!(""));
                                        if let Value::String(so_far) = joined {
                                            so_far.push_str(more);
                                        }
                                    }
                                    (_, Value::Null) => {}
                                    _ => {
                                        audio.insert(akey, avalue);
                                    }
                                }
                            }
                        }
                    }
                    _ => parts.add_field(key, value),
                }
            }
        }
    }

    /// The assembled answer.
    pub fn finish(self) -> Result<types::ChatCompletionResponse> {
        let mut answer = self.top;
        answer.insert("object".to_owned(), json!("chat.completion"));
        let choices: Vec<Value> = self
            .choices
            .into_iter()
            .map(|(index, parts)| {
                let (message, finish_reason, logprobs) = parts.message();
                let mut choice =
                    json!({"index": index, "message": message, "finish_reason": finish_reason});
                if !logprobs.is_empty() {
                    choice["logprobs"] = json!({"content": logprobs});
                }
                choice
            })
            .collect();
        answer.insert("choices".to_owned(), Value::Array(choices));
        if let Some(usage) = self.usage {
            answer.insert("usage".to_owned(), usage);
        }
        answer_of(Value::Object(answer))
    }
}

/// Assembles a chat completion stream into one answer (see [`ChatCollector`]).
pub async fn collect_chat(
    mut stream: ChunkStream<types::ChatCompletionChunk>,
) -> Result<types::ChatCompletionResponse> {
    let mut collector = ChatCollector::new();
    while let Some(chunk) = stream.next().await {
        collector.push(&chunk?);
    }
    collector.finish()
}

/// Assembles the events of a streamed native generation into the answer a non-streamed call
/// would have given. With `incremental_output` (`incremental: true`) each event's text,
/// reasoning and tool-call pieces are appended; without it each event carries the whole
/// answer so far, and the last one counts. `usage` counts so far in every event: the last one
/// counts. `finish_reason` `"null"` (the string) is read as "not yet".
#[derive(Debug)]
pub struct GenerationCollector {
    pub(super) incremental: bool,
    pub(super) top: Map<String, Value>,
    pub(super) output: Map<String, Value>,
    pub(super) choices: std::collections::BTreeMap<i64, ChoiceParts>,
    pub(super) usage: Option<Value>,
}

impl GenerationCollector {
    /// An empty answer; `incremental` as the request's `parameters.incremental_output`.
    pub fn new(incremental: bool) -> Self {
        Self {
            incremental,
            top: Map::new(),
            output: Map::new(),
            choices: Default::default(),
            usage: None,
        }
    }

    /// Adds one event.
    pub fn push(&mut self, chunk: &types::MultimodalGenerationChunk) {
        let Ok(Value::Object(mut chunk)) = serde_json::to_value(chunk) else {
            return;
        };
        if let Some(usage) = chunk.remove("usage").filter(|u| !u.is_null()) {
            self.usage = Some(usage);
        }
        let output = chunk.remove("output");
        for (key, value) in chunk {
            self.top.insert(key, value);
        }
        let Some(Value::Object(mut output)) = output else {
            return;
        };
        let choices = output.remove("choices");
        for (key, value) in output {
            if key == "text" && self.incremental {
                let joined = self.output.entry(key).or_insert_with(|| json!(""));
                if let (Value::String(so_far), Some(more)) = (joined, value.as_str()) {
                    so_far.push_str(more);
                }
            } else if !value.is_null() && value.as_str() != Some("null") {
                self.output.insert(key, value);
            }
        }
        let Some(Value::Array(choices)) = choices else {
            return;
        };
        for (position, choice) in choices.into_iter().enumerate() {
            let Value::Object(mut choice) = choice else {
                continue;
            };
            let index = i64::try_from(position).unwrap_or(0);
            if !self.incremental {
                // The whole answer so far: start this choice again.
                self.choices.remove(&index);
            }
            let parts = self.choices.entry(index).or_default();
            parts.add_choice_fields(&choice);
            let Some(Value::Object(message)) = choice.remove("message") else {
                continue;
            };
            for (key, value) in message {
                match key.as_str() {
                    "content" => match value {
                        Value::String(text) => {
                            ChoiceParts::add_text(&mut parts.text, Some(&json!(text)))
                        }
                        Value::Array(items) => {
                            for item in items {
                                match item {
                                    Value::Object(mut item) => {
                                        if let Some(text) = item.remove("text") {
                                            ChoiceParts::add_text(&mut parts.text, Some(&text));
                                        }
                                        // Other items (`image_hw`, …) are kept as they come.
                                        if !item.is_empty() {
                                            let others = parts
                                                .extra
                                                .entry("content_items")
                                                .or_insert_with(|| json!([]));
                                            if let Value::Array(others) = others {
                                                others.push(Value::Object(item));
                                            }
                                        }
                                    }
                                    other => {
                                        ChoiceParts::add_text(&mut parts.text, Some(&other));
                                    }
                                }
                            }
                        }
                        _ => {}
                    },

                    _ => parts.add_field(key, value),
                }
            }
        }
    }

    /// The assembled answer.
    pub fn finish(self) -> Result<types::MultimodalGenerationResponse> {
        let mut output = self.output;
        if !self.choices.is_empty() {
            let choices: Vec<Value> = self
                .choices
                .into_values()
                .map(|parts| {
                    let (message, finish_reason, logprobs) = parts.message();
                    // Native answers are lists of items: the text, then whatever else came.
                    let mut message = message;
                    let text = message.get("content").cloned().unwrap_or(Value::Null);
                    let mut items = Vec::new();
                    if let Value::String(text) = text {
                        items.push(json!({"text": text}));
                    }
                    if let Some(Value::Array(others)) = message
                        .as_object_mut()
                        .and_then(|m| m.remove("content_items"))
                    {
                        items.extend(others);
                    }
                    message["content"] = Value::Array(items);
                    let mut choice = json!({"message": message, "finish_reason": finish_reason});
                    if !logprobs.is_empty() {
                        choice["logprobs"] = json!({"content": logprobs});
                    }
                    choice
                })
                .collect();
            output.insert("choices".to_owned(), Value::Array(choices));
        }
        let mut answer = self.top;
        answer.insert("output".to_owned(), Value::Object(output));
        if let Some(usage) = self.usage {
            answer.insert("usage".to_owned(), usage);
        }
        answer_of(Value::Object(answer))
    }
}

/// Assembles a native generation stream into one answer (see [`GenerationCollector`]);
/// `incremental` as the request's `parameters.incremental_output`, which
/// [`Client::multimodal_generation_stream`](crate::Client::multimodal_generation_stream) sets to true unless the request says otherwise.
pub async fn collect_generation(
    mut stream: ChunkStream<types::MultimodalGenerationChunk>,
    incremental: bool,
) -> Result<types::MultimodalGenerationResponse> {
    let mut collector = GenerationCollector::new(incremental);
    while let Some(chunk) = stream.next().await {
        collector.push(&chunk?);
    }
    collector.finish()
}

pub(super) fn answer_of<T: serde::de::DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| {
        Error::decode(
            Some(200),
            format!("the assembled stream does not fit the spec: {e}"),
            &[],
            None,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(v: Value) -> types::ChatCompletionChunk {
        serde_json::from_value(v).expect("a chunk")
    }

    /// The fragment quirks of the documentation's examples: a later fragment with an empty id
    /// and a null name, the Omni variant whose first fragment has null arguments and whose
    /// second repeats the id, and two calls interleaved by index.
    #[test]
    fn tool_call_fragments_are_joined_by_index() {
        let mut c = ChatCollector::new();
        let delta = |calls: Value| {
            chunk(
                json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
                "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": null}]}),
            )
        };
        c.push(&chunk(json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": null, "reasoning_content": ""}}]})));
        c.push(&delta(json!([{"index": 0, "id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":"}}])));
        c.push(&delta(json!([{"index": 1, "id": "call_b", "type": "function", "function": {"name": "time", "arguments": null}}])));
        c.push(&delta(json!([{"index": 0, "id": "", "type": "function", "function": {"name": null, "arguments": " \"Hangzhou\"}"}}])));
        c.push(&delta(
            json!([{"index": 1, "id": "call_b", "function": {"arguments": "{}"}}]),
        ));
        c.push(&chunk(json!({"choices": [{"index": 0, "delta": {"audio": {"id": "audio_1", "data": "AAA", "expires_at": 1}}}]})));
        c.push(&chunk(
            json!({"choices": [{"index": 0, "delta": {"audio": {"data": "BBB"}}}]}),
        ));
        c.push(&chunk(
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        ));
        c.push(&chunk(json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})));
        let answer = c.finish().expect("an answer");
        let calls: Vec<(Option<&str>, Option<&str>, Option<&str>)> = answer
            .tool_calls()
            .iter()
            .map(|t| {
                let f = t.function.as_ref();
                (
                    t.id.as_deref(),
                    f.and_then(|f| f.name.as_deref()),
                    f.and_then(|f| f.arguments.as_deref()),
                )
            })
            .collect();
        assert_eq!(
            calls,
            [
                (
                    Some("call_a"),
                    Some("weather"),
                    Some("{\"city\": \"Hangzhou\"}")
                ),
                (Some("call_b"), Some("time"), Some("{}")),
            ]
        );
        assert_eq!(answer.finish_reason(), Some("tool_calls"));
        assert_eq!(answer.reasoning(), Some(""));
        assert_eq!(answer.text(), None);
        let audio = &answer.choices[0].message.extra["audio"];
        assert_eq!(
            audio,
            &json!({"id": "audio_1", "data": "AAABBB", "expires_at": 1})
        );
        assert_eq!(answer.token_usage().and_then(|u| u.total_tokens), Some(7));
    }

    /// Native fragments carry no index: a new id starts a call, no id continues the last one.
    #[test]
    fn fragments_without_an_index_follow_their_ids() {
        let event = |calls: Value| -> types::MultimodalGenerationChunk {
            serde_json::from_value(json!({"output": {"choices": [{"finish_reason": "null",
                "message": {"role": "assistant", "content": [], "tool_calls": calls}}]}}))
            .expect("an event")
        };
        let mut c = GenerationCollector::new(true);
        c.push(&event(json!([{"id": "call_a", "type": "function", "function": {"name": "a", "arguments": "{\"x\""}}])));
        c.push(&event(
            json!([{"id": "", "function": {"arguments": ":1}"}}]),
        ));
        c.push(&event(json!([{"id": "call_b", "type": "function", "function": {"name": "b", "arguments": "{}"}}])));
        let answer = c.finish().expect("answer");
        let calls: Vec<(Option<&str>, Option<&str>)> = answer
            .tool_calls()
            .iter()
            .map(|t| {
                let f = t.function.as_ref();
                (
                    f.and_then(|f| f.name.as_deref()),
                    f.and_then(|f| f.arguments.as_deref()),
                )
            })
            .collect();
        assert_eq!(
            calls,
            [(Some("a"), Some("{\"x\":1}")), (Some("b"), Some("{}"))]
        );
    }

    /// Cumulative native events (no `incremental_output`): the last one counts, and the string
    /// `"null"` is not a finish reason.
    #[test]
    fn cumulative_native_events_keep_the_last() {
        let event = |text: &str, finish: &str| -> types::MultimodalGenerationChunk {
            serde_json::from_value(
                json!({"request_id": "r", "output": {"choices": [{"finish_reason": finish,
                "message": {"role": "assistant", "content": [{"text": text}]}}]},
                "usage": {"output_tokens": text.len()}}),
            )
            .expect("an event")
        };
        let mut c = GenerationCollector::new(false);
        c.push(&event("A cat", "null"));
        c.push(&event("A cat on grass.", "stop"));
        let answer = c.finish().expect("an answer");
        assert_eq!(answer.text().as_deref(), Some("A cat on grass."));
        assert_eq!(answer.finish_reason(), Some("stop"));
        assert_eq!(answer.token_usage().and_then(|u| u.output_tokens), Some(15));
        let mut c = GenerationCollector::new(true);
        c.push(&event("A cat", "null"));
        assert_eq!(c.finish().expect("answer").finish_reason(), None);
    }
}
