//! The exact requests the chat builders send and the chunks decoded from canned event streams.

mod support;

use dashscope_oss::Error;
use dashscope_oss::chat::{ChatRequest, Message};
use futures_util::StreamExt;
use support::{Canned, Server, client};

const OSS: &str = "oss://dashscope-instant/52afe077/2025-07-12/b744f4f8/cat.png";

fn request() -> ChatRequest {
    ChatRequest::new("qwen-vl-plus")
        .message(Message::system("Answer briefly."))
        .message(
            Message::user()
                .image(OSS)
                .audio("https://example.com/a.mp3")
                .video_frames(["https://example.com/1.jpg", "https://example.com/2.jpg"])
                .text("What is this?"),
        )
        .parameter("temperature", 0.2)
        .parameter("enable_thinking", false)
}

const COMPLETION: &str = r#"{"choices":[{"message":{"content":"A cat.","role":"assistant"},"finish_reason":"stop","index":0}],"object":"chat.completion","usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12},"created":1739349052,"model":"qwen-vl-plus","id":"chatcmpl-1"}"#;
const GENERATION: &str = r#"{"output":{"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":[{"text":"A cat."}]}}]},"usage":{"input_tokens":10,"output_tokens":2},"request_id":"r1"}"#;

#[tokio::test]
async fn compatible_request_as_sent() {
    let server = Server::start(Canned::json(200, COMPLETION)).await;
    client(&server.url)
        .chat_completion(request())
        .await
        .expect("answer");
    insta::assert_snapshot!(server.only_request().render());
}

#[tokio::test]
async fn native_request_as_sent() {
    let server = Server::start(Canned::json(200, GENERATION)).await;
    client(&server.url)
        .multimodal_generation(request())
        .await
        .expect("answer");
    insta::assert_snapshot!(server.only_request().render());
}

#[tokio::test]
async fn compatible_stream_decoded() {
    let sse = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"qwen-vl-plus\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"qwen-vl-plus\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A cat.\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"qwen-vl-plus\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"total_tokens\":12}}\n\n",
        "data: [DONE]\n\n",
        "data: {\"never\":\"read\"}\n\n"
    );
    let server = Server::start(Canned::raw(200, "text/event-stream", sse)).await;
    let stream = client(&server.url)
        .chat_completion_stream(request())
        .await
        .expect("stream");
    let chunks: Vec<_> = stream.collect().await;
    assert_eq!(chunks.len(), 3, "stops at [DONE]");
    let sent = server.only_request();
    assert_eq!(sent.header("accept"), Some("text/event-stream"));
    insta::assert_snapshot!(sent.render());
    insta::assert_debug_snapshot!(chunks);
}

#[tokio::test]
async fn native_stream_with_an_error_mid_way() {
    let sse = concat!(
        "id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"content\":[{\"text\":\"A\"}],\"role\":\"assistant\"},\"finish_reason\":\"null\"}]},\"usage\":{\"input_tokens\":10,\"output_tokens\":1},\"request_id\":\"r2\"}\n\n",
        "id:2\nevent:error\n:HTTP_STATUS/400\ndata:{\"code\":\"DataInspectionFailed\",\"message\":\"Output data may contain inappropriate content.\",\"request_id\":\"r2\"}\n\n"
    );
    let server = Server::start(Canned::raw(200, "text/event-stream", sse)).await;
    let mut stream = client(&server.url)
        .multimodal_generation_stream(request())
        .await
        .expect("stream");
    let first = stream.next().await.expect("a chunk").expect("ok chunk");
    assert_eq!(
        first.output.choices[0].finish_reason.as_deref(),
        Some("null")
    );
    let err = stream
        .next()
        .await
        .expect("an item")
        .expect_err("the error");
    assert!(matches!(err, Error::ContentRejected(_)), "{err:?}");
    assert_eq!((err.status(), err.request_id()), (Some(400), Some("r2")));
    assert!(
        stream.next().await.is_none(),
        "the stream ends after the error"
    );
    let sent = server.only_request();
    assert_eq!(sent.header("x-dashscope-sse"), Some("enable"));
    insta::assert_snapshot!(sent.render());
}

#[tokio::test]
async fn a_refused_stream_is_a_typed_error_before_any_chunk() {
    let server = Server::start(Canned::json(
        401,
        r#"{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"r3"}"#,
    ))
    .await;
    let err = client(&server.url)
        .multimodal_generation_stream(request())
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, Error::InvalidApiKey(_)), "{err:?}");
}

#[tokio::test]
async fn a_stream_cut_short_or_not_a_stream_is_an_error() {
    let cut = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A c\"},\"finish_reason\":null}]}\n\n";
    let server = Server::start(Canned::raw(200, "text/event-stream", cut)).await;
    let items: Vec<_> = client(&server.url)
        .chat_completion_stream(request())
        .await
        .expect("stream")
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok());
    assert!(
        matches!(&items[1], Err(Error::Decode(d)) if d.reason().contains("[DONE]")),
        "{:?}",
        items[1]
    );

    let server = Server::start(Canned::json(200, COMPLETION)).await;
    let err = client(&server.url)
        .chat_completion_stream(request())
        .await
        .err()
        .expect("not a stream");
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
}
