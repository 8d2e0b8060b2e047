//! Model calls against the emulator: the `X-DashScope-OssResourceResolve` header exactly when a
//! request carries an `oss://` URL, local files uploaded on the fly, streaming on both APIs,
//! errors and retries.

mod support;

use std::time::Duration;

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, FaultKind};
use dashscope_oss::chat::{ChatRequest, Message};
use dashscope_oss::{Client, Config, Error, RetryPolicy, UploadSource};
use futures_util::StreamExt;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\xc0\0\0\x01\x18\x08\x02\0\0\0";

async fn setup() -> (Emulator, Client) {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let client = Client::new(
        Config::new()
            .api_key(DEFAULT_API_KEY)
            .base_url(emulator.base_url())
            .retry(RetryPolicy::default().initial_backoff(Duration::from_millis(5))),
    )
    .expect("client");
    (emulator, client)
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dashscope-oss-chat-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn header_count(emulator: &Emulator) -> (u64, u64) {
    let s = emulator.stats();
    (s.chat_requests, s.chat_requests_with_resolve_header)
}

#[tokio::test]
async fn header_exactly_when_an_oss_url_is_in_a_media_position() {
    let (emulator, client) = setup().await;
    let url = client
        .upload("qwen-vl-plus", UploadSource::bytes("cat.png", PNG.to_vec()))
        .await
        .expect("upload")
        .url;

    // No oss:// URL: no header, on both APIs.
    let https = ChatRequest::new("qwen-vl-plus").message(
        Message::user()
            .image("https://example.com/cat.png")
            .text("hi"),
    );
    client
        .chat_completion(https.clone())
        .await
        .expect("compatible");
    client.multimodal_generation(https).await.expect("native");
    // An oss:// URL in text is text: no header (and nothing to resolve).
    let text =
        ChatRequest::new("qwen-vl-plus").message(Message::user().text(format!("what is {url}?")));
    client
        .chat_completion(text.clone())
        .await
        .expect("compatible");
    client.multimodal_generation(text).await.expect("native");
    assert_eq!(header_count(&emulator), (4, 0));

    // An oss:// URL deep in the conversation: the header, on both APIs, streamed or not.
    let deep = ChatRequest::new("qwen-vl-plus")
        .message(Message::system("You are terse."))
        .message(Message::user().text("first"))
        .message(Message::assistant("ok"))
        .message(
            Message::user()
                .text("and this?")
                .video_frames(["https://example.com/1.jpg", url.as_str()]),
        );
    client
        .chat_completion(deep.clone())
        .await
        .expect("compatible");
    client
        .multimodal_generation(deep.clone())
        .await
        .expect("native");
    drain(
        client
            .chat_completion_stream(deep.clone())
            .await
            .expect("stream"),
    )
    .await
    .expect("chunks");
    drain(
        client
            .multimodal_generation_stream(deep)
            .await
            .expect("stream"),
    )
    .await
    .expect("chunks");
    assert_eq!(header_count(&emulator), (8, 4));

    // The generated client's own calls get the header too.
    let raw: dashscope_oss::api::types::ChatCompletionRequest = serde_json::from_value(serde_json::json!({
        "model": "qwen-vl-plus",
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    }))
    .expect("request");
    client.chat_completion(&raw).await.expect("raw call");
    assert_eq!(header_count(&emulator), (9, 5));
}

async fn drain<T: std::fmt::Debug>(
    mut stream: dashscope_oss::chat::ChunkStream<T>,
) -> Result<Vec<T>, Error> {
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk?);
    }
    Ok(chunks)
}

#[tokio::test]
async fn local_files_are_uploaded_for_the_requests_model() {
    let (emulator, client) = setup().await;
    let path = temp_file("local-cat.png", PNG);
    let uri = format!("file://{}", path.display());
    let request = ChatRequest::new("qwen-vl-plus").message(
        Message::user()
            .image(path.as_path())
            .image(uri.as_str())
            .text("Two pictures?"),
    );
    let answer = client.chat_completion(request).await.expect("answer");
    let text = answer.choices[0]
        .message
        .content
        .clone()
        .unwrap_or_default();
    assert!(
        text.contains("2 media") && text.contains("image/png") && text.contains("local-cat.png"),
        "{text}"
    );
    let stats = emulator.stats();
    // The same file named twice is uploaded once.
    assert_eq!(
        (
            stats.policy_requests,
            stats.uploads_ok,
            stats.chat_requests_with_resolve_header
        ),
        (1, 1, 1)
    );

    let native =
        ChatRequest::new("qwen-vl-plus").message(Message::user().image(path.as_path()).text("?"));
    let answer = client
        .multimodal_generation(native)
        .await
        .expect("native answer");
    let text = answer.text().unwrap_or_default();
    assert!(text.contains("image/png"), "{text}");
}

#[tokio::test]
async fn text_naming_a_file_is_never_uploaded() {
    let (emulator, client) = setup().await;
    let path = temp_file("secret-notes.png", PNG);
    let request =
        ChatRequest::new("qwen-vl-plus").message(Message::user().text(path.display().to_string()));
    client
        .chat_completion(request.clone())
        .await
        .expect("compatible");
    client.multimodal_generation(request).await.expect("native");
    assert_eq!(emulator.stats().uploads_ok, 0);
}

#[tokio::test]
async fn a_missing_file_fails_before_anything_is_sent() {
    let (emulator, client) = setup().await;
    let present = temp_file("present.png", PNG);
    let request = ChatRequest::new("qwen-vl-plus").message(
        Message::user()
            .image(present.as_path())
            .image("/no/such/dir/missing.png")
            .text("?"),
    );
    let err = client
        .chat_completion(request)
        .await
        .expect_err("missing file");
    assert!(
        matches!(&err, Error::Io { path: Some(p), .. } if p.ends_with("missing.png")),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing.png"), "{err}");
    let stats = emulator.stats();
    assert_eq!(
        (stats.policy_requests, stats.uploads_ok, stats.chat_requests),
        (0, 0, 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn urls_the_service_refuses_are_typed() {
    let (emulator, client) = setup().await;
    // Uploaded by another client: this one does not know the URL, so the service judges it
    // (a URL this client knows to be of another model is uploaded again first: tests/media.rs).
    let stranger = Client::new(
        Config::new()
            .api_key(DEFAULT_API_KEY)
            .base_url(emulator.base_url()),
    )
    .expect("client");
    let other_model = stranger
        .upload("qwen-vl-max", UploadSource::bytes("cat.png", PNG.to_vec()))
        .await
        .expect("upload")
        .url;
    let err = client
        .chat_completion(
            ChatRequest::new("qwen-vl-plus").message(Message::user().image(other_model.as_str())),
        )
        .await
        .expect_err("other model");
    assert!(matches!(err, Error::InvalidUrl(_)), "{err:?}");

    let url = client
        .upload("qwen-vl-plus", UploadSource::bytes("old.png", PNG.to_vec()))
        .await
        .expect("upload")
        .url;
    emulator.advance_clock(Duration::from_secs(48 * 3600));
    let err = client
        .multimodal_generation(
            ChatRequest::new("qwen-vl-plus").message(Message::user().image(url.as_str())),
        )
        .await
        .expect_err("expired");
    assert!(matches!(err, Error::InvalidUrl(_)), "{err:?}");

    let not_an_image = client
        .upload(
            "qwen-vl-plus",
            UploadSource::bytes("fake.png", b"plain text".to_vec()),
        )
        .await
        .expect("upload")
        .url;
    for api in ["compatible", "native"] {
        let request =
            ChatRequest::new("qwen-vl-plus").message(Message::user().image(not_an_image.as_str()));
        let err = if api == "native" {
            client.multimodal_generation(request).await.map(|_| ())
        } else {
            client.chat_completion(request).await.map(|_| ())
        }
        .expect_err("not media");
        assert!(matches!(err, Error::DataInspection(_)), "{api}: {err:?}");
    }
}

#[tokio::test]
async fn streams_on_both_apis() {
    let (emulator, client) = setup().await;
    // One upload for every call, so that the answers name the same key.
    let url = client
        .upload("qwen-vl-plus", temp_file("stream-cat.png", PNG).as_path())
        .await
        .expect("upload")
        .url;
    let request = ChatRequest::new("qwen-vl-plus")
        .message(Message::user().image(url.as_str()).text("Describe it."));

    let chunks = drain(
        client
            .chat_completion_stream(request.clone())
            .await
            .expect("stream"),
    )
    .await
    .expect("chunks");
    let text: String = chunks
        .iter()
        .flat_map(|c| c.choices.iter())
        .filter_map(|c| c.delta.content.clone())
        .collect();
    assert!(text.contains("image/png"), "{text}");
    let last = chunks.last().expect("chunks");
    assert!(
        last.choices.is_empty() && last.usage.as_ref().and_then(|u| u.total_tokens).is_some(),
        "{last:?}"
    );

    // Cumulative (asked for: the crate asks for increments otherwise): the last event has the
    // whole text.
    let chunks = drain(
        client
            .multimodal_generation_stream(request.clone().parameter("incremental_output", false))
            .await
            .expect("stream"),
    )
    .await
    .expect("chunks");
    let last = chunks.last().expect("chunks");
    assert_eq!(
        last.output.choices[0].finish_reason.as_deref(),
        Some("stop")
    );
    let whole = chunk_text(last);
    assert!(whole.contains("image/png"));
    // Incremental (the crate's default): the pieces add up to the same text.
    let chunks = drain(
        client
            .multimodal_generation_stream(request.clone())
            .await
            .expect("stream"),
    )
    .await
    .expect("chunks");
    let joined: String = chunks.iter().map(chunk_text).collect();
    assert_eq!(joined, whole);

    // A mid-stream error (HTTP 200, event:error) ends the stream with the typed error.
    for api in ["compatible", "native"] {
        emulator.inject(FaultKind::StreamError, 1);
        let result = if api == "native" {
            drain(
                client
                    .multimodal_generation_stream(request.clone())
                    .await
                    .expect("stream"),
            )
            .await
            .map(|c| c.len())
        } else {
            drain(
                client
                    .chat_completion_stream(request.clone())
                    .await
                    .expect("stream"),
            )
            .await
            .map(|c| c.len())
        };
        let err = result.expect_err("mid-stream error");
        assert!(matches!(err, Error::ServerError(_)), "{api}: {err:?}");
        assert_eq!(
            err.code(),
            Some(if api == "native" {
                "InternalError.Algo"
            } else {
                "internal_error"
            })
        );
    }
}

#[tokio::test]
async fn throttled_and_failing_calls_are_retried_before_streaming() {
    let (emulator, client) = setup().await;
    let request = ChatRequest::new("qwen-vl-plus").message(Message::user().text("hi"));
    emulator.inject(FaultKind::ChatThrottle, 2);
    client
        .chat_completion(request.clone())
        .await
        .expect("after two 429s");
    emulator.inject(FaultKind::ChatError, 1);
    client
        .multimodal_generation(request.clone())
        .await
        .expect("after a 500");
    emulator.inject(FaultKind::ChatThrottle, 1);
    drain(
        client
            .chat_completion_stream(request.clone())
            .await
            .expect("stream after a 429"),
    )
    .await
    .expect("chunks");
    assert_eq!(emulator.stats().chat_requests, 7);
    // Not retried: a refusal that retrying cannot cure.
    let err = client
        .chat_completion(ChatRequest::new("qwen-nope").message(Message::user().text("hi")))
        .await
        .expect_err("404");
    assert!(matches!(err, Error::ModelNotFound(_)), "{err:?}");
    assert_eq!(emulator.stats().chat_requests, 8);
}

/// The text items of a native event's first choice, joined.
fn chunk_text(chunk: &dashscope_oss::api::types::MultimodalGenerationChunk) -> String {
    use dashscope_oss::api::types::NativeAnswerContent;
    match chunk
        .output
        .choices
        .first()
        .and_then(|c| c.message.content.as_ref())
    {
        Some(NativeAnswerContent::Array(items)) => {
            items.iter().filter_map(|i| i.text.clone()).collect()
        }
        Some(NativeAnswerContent::String(text)) => text.clone(),
        None => String::new(),
    }
}

#[tokio::test]
async fn the_upload_observer_is_told_what_each_local_file_became() {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let client = Client::new(
        Config::new()
            .api_key(DEFAULT_API_KEY)
            .base_url(emulator.base_url())
            .inline_below(64)
            .on_upload(move |event| {
                let line = match event {
                    dashscope_oss::UploadEvent::Uploaded { path, file } => format!(
                        "uploaded {} -> oss {} cache {}",
                        path.file_name().unwrap_or_default().to_string_lossy(),
                        file.url.starts_with("oss://"),
                        file.from_cache
                    ),
                    dashscope_oss::UploadEvent::Inlined {
                        path,
                        content_type,
                        size,
                    } => format!(
                        "inlined {} {content_type} {size}",
                        path.file_name().unwrap_or_default().to_string_lossy()
                    ),
                    dashscope_oss::UploadEvent::Progress(_) => return,
                    other => format!("{other:?}"),
                };
                seen.lock().expect("events").push(line);
            }),
    )
    .expect("client");
    let small = temp_file("small.png", &PNG[..24]);
    let large = temp_file("large.png", &[PNG, &[0u8; 200]].concat());
    let ask = || {
        ChatRequest::new("qwen-vl-plus").message(
            Message::user()
                .image(&*small)
                .image(&*large)
                .text("which is larger?"),
        )
    };
    client.chat_completion(ask()).await.expect("first");
    client.chat_completion(ask()).await.expect("second");
    assert_eq!(
        *events.lock().expect("events"),
        [
            "inlined small.png image/png 24",
            "uploaded large.png -> oss true cache false",
            "inlined small.png image/png 24",
            "uploaded large.png -> oss true cache true",
        ]
    );
    assert_eq!(
        emulator.stats().uploads_ok,
        1,
        "the second call sent nothing"
    );
}
