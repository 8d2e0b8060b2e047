//! Model calls that carry media: messages that mix text with images, audio and video given as
//! URLs or local files, the `X-DashScope-OssResourceResolve` header, and streaming.
//!
//! ```no_run
//! # async fn run(client: dashscope_oss::Client) -> dashscope_oss::Result<()> {
//! use dashscope_oss::chat::{ChatRequest, Message};
//!
//! let request = ChatRequest::new("qwen-vl-plus")
//!     .message(Message::user().image("photos/cat.png").text("What is in this picture?"));
//! // The local file is uploaded for qwen-vl-plus first; its oss:// URL goes in the request,
//! // and the request carries `X-DashScope-OssResourceResolve: enable`.
//! let answer = client.chat(request).await?;
//! println!("{:?}", answer.choices[0].message.content);
//! # Ok(()) }
//! ```
//!
//! Only image, audio and video positions are media: a text that names a file stays text and is
//! never uploaded.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value, json};

use crate::api::types;
use crate::error::{ERROR_BODY_LIMIT, Service, from_response};
use crate::wire::audio_format;
pub use crate::wire::{Media, OSS_RESOLVE_HEADER};
use crate::{Client, Error, Result};

/// A stream of typed chunks; it ends after the last chunk, or with an error.
pub type ChunkStream<T> = Pin<Box<dyn Stream<Item = Result<T>> + Send>>;

/// Which API a stream is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Compatible,
    Native,
}

impl Api {
    fn path(self) -> &'static str {
        match self {
            Api::Compatible => "/compatible-mode/v1/chat/completions",
            Api::Native => "/api/v1/services/aigc/multimodal-generation/generation",
        }
    }

    fn service(self) -> Service {
        match self {
            Api::Compatible => Service::Compatible,
            Api::Native => Service::Native,
        }
    }
}

/// One part of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// Text. Never uploaded, whatever it says.
    Text(String),
    /// An image.
    Image(Media),
    /// An audio clip.
    Audio(Media),
    /// A video file.
    Video(Media),
    /// A video as a list of frame images.
    VideoFrames(Vec<Media>),
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions.
    System,
    /// The person asking.
    User,
    /// The model, in earlier turns.
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// A message built part by part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    role: Role,
    parts: Vec<Part>,
}

impl Message {
    /// An empty message from `role`.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            parts: Vec::new(),
        }
    }

    /// An empty user message.
    pub fn user() -> Self {
        Self::new(Role::User)
    }

    /// A system message with this text.
    pub fn system(text: impl Into<String>) -> Self {
        Self::new(Role::System).text(text)
    }

    /// An assistant message with this text (an earlier turn).
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new(Role::Assistant).text(text)
    }

    /// Adds text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.parts.push(Part::Text(text.into()));
        self
    }

    /// Adds an image: a URL, a local path or a `file://` URI.
    pub fn image(mut self, media: impl Into<Media>) -> Self {
        self.parts.push(Part::Image(media.into()));
        self
    }

    /// Adds an audio clip.
    pub fn audio(mut self, media: impl Into<Media>) -> Self {
        self.parts.push(Part::Audio(media.into()));
        self
    }

    /// Adds a video file.
    pub fn video(mut self, media: impl Into<Media>) -> Self {
        self.parts.push(Part::Video(media.into()));
        self
    }

    /// Adds a video given as frames.
    pub fn video_frames<I, M>(mut self, frames: I) -> Self
    where
        I: IntoIterator<Item = M>,
        M: Into<Media>,
    {
        self.parts.push(Part::VideoFrames(
            frames.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Adds a part.
    pub fn part(mut self, part: Part) -> Self {
        self.parts.push(part);
        self
    }

    fn compatible(&self) -> Value {
        let parts: Vec<Value> = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => json!({"type": "text", "text": t}),
                Part::Image(m) => json!({"type": "image_url", "image_url": {"url": m.as_str()}}),
                Part::Audio(m) => {
                    let mut audio = json!({"data": m.as_str()});
                    if let Some(format) = audio_format(&m.as_str()) {
                        audio["format"] = json!(format);
                    }
                    json!({"type": "input_audio", "input_audio": audio})
                }
                Part::Video(m) => json!({"type": "video_url", "video_url": {"url": m.as_str()}}),
                Part::VideoFrames(f) => {
                    json!({"type": "video", "video": f.iter().map(Media::as_str).collect::<Vec<_>>()})
                }
            })
            .collect();
        json!({"role": self.role.as_str(), "content": parts})
    }

    /// The message as the OpenAI-compatible API's generated type.
    pub fn to_compatible(&self) -> Result<types::ChatMessage> {
        typed(self.compatible())
    }

    /// The message as the native API's generated type.
    pub fn to_native(&self) -> Result<types::NativeMessage> {
        typed(self.native())
    }

    fn native(&self) -> Value {
        let items: Vec<Value> = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => json!({"text": t}),
                Part::Image(m) => json!({"image": m.as_str()}),
                Part::Audio(m) => json!({"audio": m.as_str()}),
                Part::Video(m) => json!({"video": m.as_str()}),
                Part::VideoFrames(f) => {
                    json!({"video": f.iter().map(Media::as_str).collect::<Vec<_>>()})
                }
            })
            .collect();
        json!({"role": self.role.as_str(), "content": items})
    }
}

/// A model call, for either API.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    model: String,
    messages: Vec<Message>,
    parameters: Map<String, Value>,
}

impl ChatRequest {
    /// A request to `model` with no messages yet.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            messages: Vec::new(),
            parameters: Map::new(),
        }
    }

    /// Adds a message.
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// Sets a generation parameter (`temperature`, `max_tokens`, `enable_thinking`, …). In the
    /// compatible API it goes at the top level of the body, in the native API in `parameters`.
    pub fn parameter(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.parameters.insert(name.into(), value.into());
        self
    }

    /// The model.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The request as the OpenAI-compatible API's generated type: parameters the spec names
    /// land in their typed fields (and must have their type), the others in `extra`.
    pub fn to_compatible(&self) -> Result<types::ChatCompletionRequest> {
        typed(self.compatible_json())
    }

    /// The request as the native API's generated type; parameters go in `parameters`.
    pub fn to_native(&self) -> Result<types::MultimodalGenerationRequest> {
        typed(self.native_json())
    }

    fn compatible_json(&self) -> Value {
        let mut body = self.parameters.clone();
        body.insert("model".into(), json!(self.model));
        body.insert(
            "messages".into(),
            Value::Array(self.messages.iter().map(Message::compatible).collect()),
        );
        Value::Object(body)
    }

    fn native_json(&self) -> Value {
        let mut body = json!({
            "model": self.model,
            "input": {"messages": self.messages.iter().map(Message::native).collect::<Vec<_>>()},
        });
        if !self.parameters.is_empty() {
            body["parameters"] = Value::Object(self.parameters.clone());
        }
        body
    }
}

impl Client {
    /// An OpenAI-compatible chat completion of a [`ChatRequest`]: [`Client::chat_completion`]
    /// of [`ChatRequest::to_compatible`].
    pub async fn chat(&self, request: ChatRequest) -> Result<types::ChatCompletionResponse> {
        self.chat_completion(&request.to_compatible()?).await
    }

    /// A native multimodal generation of a [`ChatRequest`]: [`Client::multimodal_generation`]
    /// of [`ChatRequest::to_native`].
    pub async fn generate(
        &self,
        request: ChatRequest,
    ) -> Result<types::MultimodalGenerationResponse> {
        self.multimodal_generation(&request.to_native()?).await
    }

    /// [`Client::chat_completion_stream`] of a [`ChatRequest`].
    pub async fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> Result<ChunkStream<types::ChatCompletionChunk>> {
        self.chat_completion_stream(&request.to_compatible()?).await
    }

    /// [`Client::multimodal_generation_stream`] of a [`ChatRequest`].
    pub async fn generate_stream(
        &self,
        request: ChatRequest,
    ) -> Result<ChunkStream<types::MultimodalGenerationChunk>> {
        self.multimodal_generation_stream(&request.to_native()?)
            .await
    }

    /// A streamed chat completion: chunks until `[DONE]`, the last one with the token usage
    /// (`stream_options.include_usage` is set unless the request says otherwise). Local files
    /// are uploaded first; 429 and 5xx are retried before the first chunk, never after.
    /// [`collect_chat`] assembles the chunks into one answer.
    pub async fn chat_completion_stream(
        &self,
        request: &types::ChatCompletionRequest,
    ) -> Result<ChunkStream<types::ChatCompletionChunk>> {
        let mut body =
            serde_json::to_value(request).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        body["stream"] = json!(true);
        if body.get("stream_options").is_none_or(Value::is_null) {
            body["stream_options"] = json!({"include_usage": true});
        }
        self.stream(Api::Compatible, &body).await
    }

    /// A streamed native generation. Each event carries only what is new
    /// (`parameters.incremental_output` is set to true unless the request sets it); with
    /// `incremental_output: false`, each carries the whole answer so far. [`collect_generation`]
    /// assembles the events into one answer.
    pub async fn multimodal_generation_stream(
        &self,
        request: &types::MultimodalGenerationRequest,
    ) -> Result<ChunkStream<types::MultimodalGenerationChunk>> {
        let mut body =
            serde_json::to_value(request).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        // Left to the model, some stream increments and some the whole answer so far: the
        // crate asks for increments unless the request says otherwise, so that a reader (and
        // `collect_generation`) knows what each event holds.
        if body
            .pointer("/parameters/incremental_output")
            .is_none_or(Value::is_null)
        {
            if body.get("parameters").is_none_or(Value::is_null) {
                body["parameters"] = json!({});
            }
            body["parameters"]["incremental_output"] = json!(true);
        }
        self.stream(Api::Native, &body).await
    }

    async fn stream<T>(&self, api: Api, body: &Value) -> Result<ChunkStream<T>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let mut request = self.post_json(api.path(), body)?;
        let headers = request.headers_mut();
        headers.insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_static("text/event-stream"),
        );
        if api == Api::Native {
            headers.insert(
                "X-DashScope-SSE",
                reqwest::header::HeaderValue::from_static("enable"),
            );
        }
        // The one execution path: local files, headers, retries before any chunk.
        let response = self.send_prepared(request).await?;
        // A 200 that is not an event stream (a proxy's page, a non-streamed answer) would
        // otherwise read as a stream with no chunks.
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !content_type.starts_with("text/event-stream") {
            let status = response.status().as_u16();
            let (body, _) = crate::transport::read_limited(response, ERROR_BODY_LIMIT)
                .await
                .map_err(Error::from_reqwest)?;
            return Err(Error::decode(
                Some(status),
                format!("expected an event stream, got {content_type:?}"),
                &body,
                None,
            ));
        }
        // From here on nothing is retried: chunks may already be in the caller's hands.
        Ok(Box::pin(sse_chunks::<T>(api, response, self.key().clone())))
    }
}

fn typed<T: serde::de::DeserializeOwned>(body: Value) -> Result<T> {
    serde_json::from_value(body)
        .map_err(|e| Error::InvalidRequest(format!("the request does not fit the spec: {e}")))
}

/// The typed chunks of an event stream; an `event:error` (native) or an `{"error": …}` chunk
/// (compatible) ends it with the typed error.
fn sse_chunks<T>(
    api: Api,
    response: reqwest::Response,
    key: crate::Secret,
) -> impl Stream<Item = Result<T>> + Send
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    struct State {
        body: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
        parser: crate::sse::Parser,
        queue: std::collections::VecDeque<crate::sse::Event>,
        eof: bool,
        done: bool,
    }
    let state = State {
        body: Box::pin(response.bytes_stream()),
        parser: crate::sse::Parser::default(),
        queue: Default::default(),
        eof: false,
        done: false,
    };
    futures_util::stream::unfold(state, move |mut st| {
        let key = key.clone();
        async move {
            loop {
                if let Some(event) = st.queue.pop_front() {
                    match decode_event::<T>(api, &event, &key) {
                        Decoded::Chunk(chunk) => return Some((Ok(chunk), st)),
                        Decoded::Skip => continue,
                        Decoded::End => return None,
                        Decoded::Fail(e) => {
                            st.queue.clear();
                            st.done = true;
                            return Some((Err(e), st));
                        }
                    }
                }
                if st.done {
                    return None;
                }
                if st.eof {
                    st.done = true;
                    // A compatible-mode stream ends with `data: [DONE]` (which returns above);
                    // one that just stops was cut short, and its text is incomplete.
                    if api == Api::Compatible {
                        let cut = Error::decode(
                            Some(200),
                            "the event stream ended before [DONE]",
                            &[],
                            None,
                        );
                        return Some((Err(cut), st));
                    }
                    return None;
                }
                match st.body.next().await {
                    Some(Ok(bytes)) => match st.parser.feed(&bytes) {
                        Ok(events) => st.queue.extend(events),
                        Err(crate::sse::Malformed(why)) => {
                            st.done = true;
                            return Some((
                                Err(Error::decode(
                                    Some(200),
                                    format!("malformed event stream: {why}"),
                                    &[],
                                    None,
                                )),
                                st,
                            ));
                        }
                    },
                    Some(Err(e)) => {
                        st.done = true;
                        return Some((Err(Error::from_reqwest(e)), st));
                    }
                    None => {
                        st.eof = true;
                        st.queue.extend(st.parser.finish());
                    }
                }
            }
        }
    })
}

enum Decoded<T> {
    Chunk(T),
    Skip,
    End,
    Fail(Error),
}

fn decode_event<T: serde::de::DeserializeOwned>(
    api: Api,
    event: &crate::sse::Event,
    key: &crate::Secret,
) -> Decoded<T> {
    let data = event.data.trim();
    if data.is_empty() {
        return Decoded::Skip;
    }
    if api == Api::Compatible && data == "[DONE]" {
        return Decoded::End;
    }
    let failed = event.event.as_deref() == Some("error")
        || event.http_status.is_some_and(|s| s >= 400)
        || (api == Api::Compatible
            && data.starts_with('{')
            && data.contains("\"error\"")
            && is_error_chunk(data));
    if failed {
        let status = event.http_status.filter(|s| *s >= 400).unwrap_or(500);
        let headers = reqwest::header::HeaderMap::new();
        return Decoded::Fail(from_response(
            api.service(),
            status,
            &headers,
            data.as_bytes(),
            false,
            Some(key),
        ));
    }
    match serde_json::from_str::<T>(data) {
        Ok(chunk) => Decoded::Chunk(chunk),
        Err(e) => Decoded::Fail(Error::decode(
            Some(200),
            format!("stream chunk: {e}"),
            data.as_bytes(),
            None,
        )),
    }
}

fn is_error_chunk(data: &str) -> bool {
    serde_json::from_str::<Value>(data).is_ok_and(|v| v.get("error").is_some_and(Value::is_object))
}

// ------------------------------------------------------------------ assembling answers

/// Assembles the chunks of a streamed chat completion into the answer a non-streamed call
/// would have given: each choice's text, reasoning, tool calls joined from their fragments (by
/// `index`), Omni's audio pieces joined (in `message.extra["audio"]`), the finish reason and
/// the usage. What the chunks carry that the spec does not name is kept. Pure: feed it chunks
/// from anywhere.
#[derive(Debug, Default)]
pub struct ChatCollector {
    top: Map<String, Value>,
    choices: std::collections::BTreeMap<i64, ChoiceParts>,
    usage: Option<Value>,
}

#[derive(Debug, Default)]
struct ChoiceParts {
    role: Option<String>,
    text: Option<String>,
    reasoning: Option<String>,
    /// By the fragment's `index` (or arrival order where none is sent).
    calls: std::collections::BTreeMap<i64, Map<String, Value>>,
    audio: Option<Map<String, Value>>,
    finish_reason: Option<String>,
    logprobs: Vec<Value>,
    extra: Map<String, Value>,
}

impl ChoiceParts {
    fn add_text(slot: &mut Option<String>, piece: Option<&Value>) {
        if let Some(piece) = piece.and_then(Value::as_str) {
            slot.get_or_insert_with(String::new).push_str(piece);
        }
    }

    /// Joins one batch of tool-call fragments: the first fragment of an index gives the id,
    /// type and name; every fragment's `arguments` piece is appended (a null piece is empty).
    fn add_calls(&mut self, fragments: &[Value]) {
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
    fn add_choice_fields(&mut self, choice: &Map<String, Value>) {
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
    fn add_field(&mut self, key: String, value: Value) {
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

    fn message(self) -> (Value, Option<String>, Vec<Value>) {
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
    incremental: bool,
    top: Map<String, Value>,
    output: Map<String, Value>,
    choices: std::collections::BTreeMap<i64, ChoiceParts>,
    usage: Option<Value>,
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
/// [`Client::multimodal_generation_stream`] sets to true unless the request says otherwise.
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

fn answer_of<T: serde::de::DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| {
        Error::decode(
            Some(200),
            format!("the assembled stream does not fit the spec: {e}"),
            &[],
            None,
        )
    })
}

// ------------------------------------------------------------------ reading answers

impl types::ChatCompletionResponse {
    /// The first choice's text.
    pub fn text(&self) -> Option<&str> {
        self.choices.first()?.message.content.as_deref()
    }

    /// The first choice's reasoning (thinking models).
    pub fn reasoning(&self) -> Option<&str> {
        self.choices.first()?.message.reasoning_content.as_deref()
    }

    /// The first choice's tool calls (empty when it made none).
    pub fn tool_calls(&self) -> &[types::ToolCall] {
        self.choices
            .first()
            .and_then(|c| c.message.tool_calls.as_deref())
            .unwrap_or_default()
    }

    /// Why the first choice stopped (`stop`, `length`, `tool_calls`).
    pub fn finish_reason(&self) -> Option<&str> {
        self.choices.first()?.finish_reason.as_deref()
    }

    /// The token counts.
    pub fn token_usage(&self) -> Option<&types::CompletionUsage> {
        self.usage.as_ref()
    }
}

impl types::MultimodalGenerationResponse {
    /// The first choice's text: its text items joined (or `output.text` with
    /// `result_format: text`).
    pub fn text(&self) -> Option<String> {
        let Some(choice) = self.output.choices.first() else {
            return self.output.text.clone();
        };
        match choice.message.content.as_ref()? {
            types::NativeAnswerContent::String(text) => Some(text.clone()),
            types::NativeAnswerContent::Array(items) => {
                let texts: Vec<&str> = items.iter().filter_map(|i| i.text.as_deref()).collect();
                (!texts.is_empty()).then(|| texts.concat())
            }
        }
    }

    /// The first choice's reasoning (thinking models).
    pub fn reasoning(&self) -> Option<&str> {
        self.output
            .choices
            .first()?
            .message
            .reasoning_content
            .as_deref()
    }

    /// The first choice's tool calls (empty when it made none).
    pub fn tool_calls(&self) -> &[types::ToolCallDelta] {
        self.output
            .choices
            .first()
            .and_then(|c| c.message.tool_calls.as_deref())
            .unwrap_or_default()
    }

    /// Why the first choice stopped (`stop`, `length`, `tool_calls`).
    pub fn finish_reason(&self) -> Option<&str> {
        match self.output.choices.first() {
            Some(choice) => choice.finish_reason.as_deref(),
            None => self.output.finish_reason.as_deref(),
        }
        .filter(|r| *r != "null")
    }

    /// The token counts.
    pub fn token_usage(&self) -> Option<&types::MultimodalUsage> {
        self.usage.as_ref()
    }
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
