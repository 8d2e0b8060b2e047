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

use std::path::PathBuf;
use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value, json};

use crate::api::types;
use crate::error::{ERROR_BODY_LIMIT, Service, from_response};
use crate::{Client, Error, Result, UploadSource};

/// The header that lets the service read `oss://` URLs.
pub const OSS_RESOLVE_HEADER: &str = "X-DashScope-OssResourceResolve";

/// A stream of typed chunks; it ends after the last chunk, or with an error.
pub type ChunkStream<T> = Pin<Box<dyn Stream<Item = Result<T>> + Send>>;

/// Which API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
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

    /// The API of a generated operation, for the pre-request hook.
    pub(crate) fn of_operation(operation_id: &str) -> Option<Api> {
        match operation_id {
            "create_chat_completion" => Some(Api::Compatible),
            "create_multimodal_generation" => Some(Api::Native),
            _ => None,
        }
    }
}

/// Where a medium is: a URL the service reads (`https://`, `oss://`, `data:`) or a local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// Sent as it is.
    Url(String),
    /// Uploaded for the request's model, then sent as its `oss://` URL.
    Path(PathBuf),
}

impl Media {
    /// Reads a string the way people write media: `https://`, `http://`, `oss://` and `data:`
    /// are URLs; `file://` URIs (`file:///C:/x.png` included) and everything else are paths.
    pub fn parse(s: &str) -> Media {
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        if ["https://", "http://", "oss://", "data:"]
            .iter()
            .any(|p| lower.starts_with(p))
        {
            return Media::Url(s.to_owned());
        }
        if lower.starts_with("file://") {
            return Media::Path(file_uri_path(s));
        }
        Media::Path(PathBuf::from(s))
    }

    fn as_str(&self) -> String {
        match self {
            Media::Url(u) => u.clone(),
            Media::Path(p) => p.display().to_string(),
        }
    }
}

impl From<&str> for Media {
    fn from(s: &str) -> Self {
        Media::parse(s)
    }
}

impl From<String> for Media {
    fn from(s: String) -> Self {
        Media::parse(&s)
    }
}

impl From<PathBuf> for Media {
    fn from(p: PathBuf) -> Self {
        Media::Path(p)
    }
}

impl From<&std::path::Path> for Media {
    fn from(p: &std::path::Path) -> Self {
        Media::Path(p.to_path_buf())
    }
}

/// `file:///home/me/a%20b.png` → `/home/me/a b.png`; `file:///C:/x.png` → `C:/x.png`;
/// `file://localhost/x` → `/x`.
fn file_uri_path(uri: &str) -> PathBuf {
    let rest = &uri["file://".len()..];
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let decoded = percent_decode(rest);
    let b = decoded.as_bytes();
    // A Windows drive: `/C:/…` or `/C|/…`.
    if b.len() >= 3 && b[0] == b'/' && b[1].is_ascii_alphabetic() && (b[2] == b':' || b[2] == b'|')
    {
        return PathBuf::from(format!("{}:{}", &decoded[1..2], &decoded[3..]));
    }
    PathBuf::from(decoded)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `format` of an `input_audio` part, from the file or URL's extension.
fn audio_format(location: &str) -> Option<&'static str> {
    let path = location.split(['?', '#']).next().unwrap_or(location);
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "mp3" => "mp3",
        "wav" => "wav",
        "m4a" => "m4a",
        "aac" => "aac",
        "amr" => "amr",
        "flac" => "flac",
        "ogg" | "oga" => "ogg",
        "opus" => "opus",
        "pcm" => "pcm",
        _ => return None,
    })
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

/// Calls `f` on every media URL of a request body (image, audio and video positions only).
pub(crate) fn visit_media(api: Api, body: &mut Value, f: &mut dyn FnMut(&mut String)) {
    let messages = match api {
        Api::Compatible => body.get_mut("messages"),
        Api::Native => body.pointer_mut("/input/messages"),
    };
    let Some(Value::Array(messages)) = messages else {
        return;
    };
    let mut visit = |v: Option<&mut Value>| match v {
        Some(Value::String(s)) => f(s),
        Some(Value::Array(frames)) => {
            for frame in frames {
                if let Value::String(s) = frame {
                    f(s);
                }
            }
        }
        _ => {}
    };
    for message in messages {
        let Some(Value::Array(items)) = message.get_mut("content") else {
            continue;
        };
        for item in items {
            match api {
                Api::Compatible => {
                    let kind = item.get("type").and_then(Value::as_str).map(str::to_owned);
                    match kind.as_deref() {
                        Some("image_url") => visit(item.pointer_mut("/image_url/url")),
                        Some("input_audio") => visit(item.pointer_mut("/input_audio/data")),
                        Some("video") => visit(item.get_mut("video")),
                        Some("video_url") => visit(item.pointer_mut("/video_url/url")),
                        _ => {}
                    }
                }
                Api::Native => {
                    for key in ["image", "audio", "video"] {
                        visit(item.get_mut(key));
                    }
                }
            }
        }
    }
}

/// Whether a request body carries an `oss://` URL in a media position.
pub(crate) fn carries_oss_url(api: Api, body: &[u8]) -> bool {
    // Cheap test first: most requests carry no such string at all.
    if !body.windows(6).any(|w| w == b"oss://") {
        return false;
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let mut found = false;
    visit_media(api, &mut value, &mut |url| {
        found |= url.starts_with("oss://")
    });
    found
}

impl Client {
    /// An OpenAI-compatible chat completion. Local files are uploaded first.
    pub async fn chat(&self, request: ChatRequest) -> Result<types::ChatCompletionResponse> {
        let body = self
            .resolve(Api::Compatible, &request.model, request.compatible_json())
            .await?;
        let typed: types::ChatCompletionRequest = typed(body)?;
        self.with_retries(|| self.chat_completion(&typed)).await
    }

    /// A native multimodal generation. Local files are uploaded first.
    pub async fn generate(
        &self,
        request: ChatRequest,
    ) -> Result<types::MultimodalGenerationResponse> {
        let body = self
            .resolve(Api::Native, &request.model, request.native_json())
            .await?;
        let typed: types::MultimodalGenerationRequest = typed(body)?;
        self.with_retries(|| self.multimodal_generation(&typed))
            .await
    }

    /// A streamed chat completion: chunks until `[DONE]`, the last one with the token usage.
    pub async fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> Result<ChunkStream<types::ChatCompletionChunk>> {
        let mut body = self
            .resolve(Api::Compatible, &request.model, request.compatible_json())
            .await?;
        body["stream"] = json!(true);
        if body.get("stream_options").is_none() {
            body["stream_options"] = json!({"include_usage": true});
        }
        self.stream(Api::Compatible, body).await
    }

    /// A streamed native generation. With the parameter `incremental_output: true` each chunk
    /// carries only new text; otherwise each carries the whole text so far.
    pub async fn generate_stream(
        &self,
        request: ChatRequest,
    ) -> Result<ChunkStream<types::MultimodalGenerationChunk>> {
        let body = self
            .resolve(Api::Native, &request.model, request.native_json())
            .await?;
        self.stream(Api::Native, body).await
    }

    /// Uploads the local files of a body for `model` and puts their `oss://` URLs in place.
    /// Every file is checked before anything is uploaded: a missing one fails the call first.
    async fn resolve(&self, api: Api, model: &str, mut body: Value) -> Result<Value> {
        let mut local: Vec<String> = Vec::new();
        visit_media(api, &mut body, &mut |url| {
            if let Media::Path(_) = Media::parse(url)
                && !local.contains(url)
            {
                local.push(url.clone());
            }
        });
        if local.is_empty() {
            return Ok(body);
        }
        let sources: Vec<UploadSource> = local
            .iter()
            .map(|s| match Media::parse(s) {
                Media::Path(p) => UploadSource::path(p),
                Media::Url(u) => UploadSource::path(u),
            })
            .collect();
        for source in &sources {
            source.size().await?;
        }
        let uploaded = self.upload_many(model, sources).await;
        let mut urls = Vec::with_capacity(uploaded.len());
        for result in uploaded {
            urls.push(result?.url);
        }
        visit_media(api, &mut body, &mut |url| {
            if let Some(i) = local.iter().position(|l| l == url) {
                *url = urls[i].clone();
            }
        });
        Ok(body)
    }

    /// Retries 429 (not an exhausted quota) and 5xx with backoff.
    async fn with_retries<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let policy = self.uploads.settings().retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match call().await {
                Err(e) if attempt < policy.max_attempts && retry_model_call(&e) => {
                    let wait = policy.backoff(attempt, e.retry_after());
                    tracing::warn!(error = %e, attempt, ?wait, "model call failed, retrying");
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn stream<T>(&self, api: Api, body: Value) -> Result<ChunkStream<T>>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        let bytes = serde_json::to_vec(&body).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let oss = carries_oss_url(api, &bytes);
        let url = format!("{}{}", self.base_url(), api.path());
        let response = self
            .with_retries(|| async {
                let mut request = self
                    .http()
                    .post(&url)
                    .header(reqwest::header::AUTHORIZATION, self.authorization())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::ACCEPT, "text/event-stream")
                    .body(bytes.clone());
                if api == Api::Native {
                    request = request.header("X-DashScope-SSE", "enable");
                }
                if oss {
                    request = request.header(OSS_RESOLVE_HEADER, "enable");
                }
                let response = request.send().await.map_err(Error::from_reqwest)?;
                let status = response.status();
                if status.is_success() {
                    return Ok(response);
                }
                let headers = response.headers().clone();
                let (body, truncated) = crate::client::read_limited(response, ERROR_BODY_LIMIT)
                    .await
                    .map_err(Error::from_reqwest)?;
                Err(from_response(
                    api.service(),
                    status.as_u16(),
                    &headers,
                    &body,
                    truncated,
                    Some(self.key()),
                ))
            })
            .await?;
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
            let (body, _) = crate::client::read_limited(response, ERROR_BODY_LIMIT)
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

fn retry_model_call(e: &Error) -> bool {
    matches!(e, Error::RateLimited(_) | Error::ServerError(_))
        || matches!(e, Error::Decode(d) if d.status().is_some_and(|s| s >= 500))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_strings_are_read_as_people_write_them() {
        assert_eq!(
            Media::parse("https://x/cat.png"),
            Media::Url("https://x/cat.png".into())
        );
        assert_eq!(
            Media::parse("OSS://bucket/k"),
            Media::Url("OSS://bucket/k".into())
        );
        assert_eq!(
            Media::parse("data:image/png;base64,AAAA"),
            Media::Url("data:image/png;base64,AAAA".into())
        );
        assert_eq!(Media::parse("cat.png"), Media::Path("cat.png".into()));
        assert_eq!(
            Media::parse("file:///home/me/a%20b.png"),
            Media::Path("/home/me/a b.png".into())
        );
        assert_eq!(
            Media::parse("file:///C:/Users/me/cat.png"),
            Media::Path("C:/Users/me/cat.png".into())
        );
        assert_eq!(
            Media::parse("file://localhost/tmp/x.png"),
            Media::Path("/tmp/x.png".into())
        );
        assert_eq!(
            Media::parse("C:\\Users\\me\\cat.png"),
            Media::Path("C:\\Users\\me\\cat.png".into())
        );
    }

    #[test]
    fn oss_urls_are_found_in_media_positions_only() {
        let compat = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "see oss://a/b.png"}]}]});
        assert!(!carries_oss_url(
            Api::Compatible,
            compat.to_string().as_bytes()
        ));
        let deep = json!({"model": "m", "messages": [
            {"role": "system", "content": "plain"},
            {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "video", "video": ["https://a/1.jpg", "oss://a/2.jpg"]}]}]});
        assert!(carries_oss_url(
            Api::Compatible,
            deep.to_string().as_bytes()
        ));
        let native = json!({"model": "m", "input": {"messages": [{"role": "user", "content": [{"audio": "oss://a/b.mp3"}]}]}});
        assert!(carries_oss_url(Api::Native, native.to_string().as_bytes()));
        let native_text = json!({"model": "m", "input": {"messages": [{"role": "user", "content": [{"text": "oss://a/b.mp3"}]}]}});
        assert!(!carries_oss_url(
            Api::Native,
            native_text.to_string().as_bytes()
        ));
    }
}
