//! What a request says: messages that mix text with images, audio and video given as URLs or
//! local files, and a request that either API can be asked.

use serde_json::{Map, Value, json};

use super::stream::typed;
use crate::Media;
use crate::Result;
use crate::api::types;
use crate::wire::audio_format;

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
#[non_exhaustive]
pub enum Role {
    /// Instructions.
    System,
    /// The person asking.
    User,
    /// The model, in earlier turns.
    Assistant,
}

impl Role {
    pub(super) fn as_str(self) -> &'static str {
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
    pub(super) role: Role,
    pub(super) parts: Vec<Part>,
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

    /// Adds a medium whose kind its name tells: audio or video by the extension of the file
    /// or URL path (`.wav`, `.mp3`, `.mp4`, …), an image otherwise.
    pub fn file(self, media: impl Into<Media>) -> Self {
        let media = media.into();
        let kind = crate::naming::content_type(&media.as_str());
        match kind.split('/').next() {
            Some("audio") => self.audio(media),
            Some("video") => self.video(media),
            _ => self.image(media),
        }
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

    pub(super) fn compatible(&self) -> Value {
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

    pub(super) fn native(&self) -> Value {
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
    pub(super) model: String,
    pub(super) messages: Vec<Message>,
    pub(super) parameters: Map<String, Value>,
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

    pub(super) fn compatible_json(&self) -> Value {
        let mut body = self.parameters.clone();
        body.insert("model".into(), json!(self.model));
        body.insert(
            "messages".into(),
            Value::Array(self.messages.iter().map(Message::compatible).collect()),
        );
        Value::Object(body)
    }

    pub(super) fn native_json(&self) -> Value {
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

impl TryFrom<&ChatRequest> for types::ChatCompletionRequest {
    type Error = crate::Error;
    fn try_from(request: &ChatRequest) -> Result<Self> {
        request.to_compatible()
    }
}

impl TryFrom<ChatRequest> for types::ChatCompletionRequest {
    type Error = crate::Error;
    fn try_from(request: ChatRequest) -> Result<Self> {
        request.to_compatible()
    }
}

impl TryFrom<&ChatRequest> for types::MultimodalGenerationRequest {
    type Error = crate::Error;
    fn try_from(request: &ChatRequest) -> Result<Self> {
        request.to_native()
    }
}

impl TryFrom<ChatRequest> for types::MultimodalGenerationRequest {
    type Error = crate::Error;
    fn try_from(request: ChatRequest) -> Result<Self> {
        request.to_native()
    }
}
