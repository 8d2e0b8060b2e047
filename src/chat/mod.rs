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
//! let answer = client.chat_completion(request).await?;
//! println!("{:?}", answer.choices[0].message.content);
//! # Ok(()) }
//! ```
//!
//! Only image, audio and video positions are media: a text that names a file stays text and is
//! never uploaded.

mod answer;
mod collect;
mod message;
mod stream;

use std::pin::Pin;

use futures_util::Stream;
use serde_json::{Value, json};

use crate::api::types;
use crate::error::{ERROR_BODY_LIMIT, Service};
pub use crate::wire::{Media, OSS_RESOLVE_HEADER};
use crate::{Client, Error, Result};

pub use collect::{ChatCollector, GenerationCollector, collect_chat, collect_generation};
pub use message::{ChatRequest, Message, Part, Role};
use stream::sse_chunks;

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

impl Client {
    /// A streamed chat completion: chunks until `[DONE]`, the last one with the token usage
    /// (`stream_options.include_usage` is set unless the request says otherwise). Local files
    /// are uploaded first; 429 and 5xx are retried before the first chunk, never after.
    /// [`collect_chat`] assembles the chunks into one answer.
    pub async fn chat_completion_stream<R>(
        &self,
        request: R,
    ) -> Result<ChunkStream<types::ChatCompletionChunk>>
    where
        R: TryInto<types::ChatCompletionRequest>,
        Error: From<R::Error>,
    {
        let request = request.try_into()?;
        let mut body =
            serde_json::to_value(&request).map_err(|e| Error::InvalidRequest(e.to_string()))?;
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
    pub async fn multimodal_generation_stream<R>(
        &self,
        request: R,
    ) -> Result<ChunkStream<types::MultimodalGenerationChunk>>
    where
        R: TryInto<types::MultimodalGenerationRequest>,
        Error: From<R::Error>,
    {
        let request = request.try_into()?;
        let mut body =
            serde_json::to_value(&request).map_err(|e| Error::InvalidRequest(e.to_string()))?;
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
            return Err(Error::decode_hiding(
                &[self.key()],
                Some(status),
                format!("expected an event stream, got {content_type:?}"),
                &body,
                None,
            ));
        }
        // From here on nothing is retried: chunks may already be in the caller's hands.
        let idle = self.api().inner.stream_idle;
        Ok(Box::pin(sse_chunks::<T>(
            api,
            response,
            self.key().clone(),
            idle,
        )))
    }
}
