//! Each operation of the typed client against a canned server: the exact request sent and the
//! response decoded, from the documented examples.

mod support;

use dashscope_oss::api::types;
use dashscope_oss::{Client, Config, Error};
use support::{Canned, Server, TEST_KEY, client};

/// The 200 answer captured from the real service (the wire protocols, docs/sources.md): numbers as JSON numbers.
const POLICY_NUMBERS: &str = r#"{"data":{"policy":"eyJleHBpcmF0aW9uIjoiMjAyNS0wNy0xMlQxMjoxMDoyNC40ODhaIn0=","signature":"n3dNsecretsig=","upload_dir":"dashscope-instant/52afe077fb4825c6d74411758cb1ab98/2025-07-12/b744f4f8-1a9c-9c6b-950d-0d327e331f2f","upload_host":"https://dashscope-file-mgr.oss-cn-beijing.aliyuncs.com","expire_in_seconds":300,"max_file_size_mb":1024,"capacity_limit_mb":999999999,"oss_access_key_id":"LTAIsecretaccesskeyid","x_oss_object_acl":"private","x_oss_forbid_overwrite":"true"},"request_id":"b744f4f8-1a9c-9c6b-950d-0d327e331f2f"}"#;

/// The documentation's table says the numeric fields are strings; accept that too.
const POLICY_STRINGS: &str = r#"{"request_id":"52f4383a-c67d-9f8c-xxxxxx","data":{"policy":"eyJl...1ZSJ=","signature":"eWy...=","upload_dir":"dashscope-instant/xxx/2024-07-18/xxx","upload_host":"https://dashscope-file-xxx.oss-cn-beijing.aliyuncs.com","expire_in_seconds":"300","max_file_size_mb":"100","capacity_limit_mb":"999999999","oss_access_key_id":"LTA...","x_oss_object_acl":"private","x_oss_forbid_overwrite":"true","some_future_field":1}}"#;

#[tokio::test]
async fn upload_policy_request_and_numeric_response() {
    let server = Server::start(Canned::json(200, POLICY_NUMBERS)).await;
    let policy = client(&server.url)
        .upload_policy("qwen-vl-plus")
        .await
        .expect("policy");

    let sent = server.only_request();
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {TEST_KEY}").as_str())
    );
    assert_eq!(
        sent.header("api-version"),
        None,
        "progenitor's api-version header leaked"
    );
    insta::assert_snapshot!(sent.render());

    assert_eq!(policy.data.expire_in_seconds.as_u64(), Some(300));
    assert_eq!(policy.data.max_file_size_mb.as_u64(), Some(1024));
    assert_eq!(policy.data.signature.expose(), "n3dNsecretsig=");
    let debug = format!("{policy:#?}");
    for secret in [
        "n3dNsecretsig=",
        "LTAIsecretaccesskeyid",
        "eyJleHBpcmF0aW9u",
    ] {
        assert!(!debug.contains(secret), "Debug shows {secret}");
    }
    insta::assert_snapshot!(debug);
}

#[tokio::test]
async fn upload_policy_accepts_numbers_sent_as_strings() {
    let server = Server::start(Canned::json(200, POLICY_STRINGS)).await;
    let policy = client(&server.url)
        .upload_policy("qwen-vl-plus")
        .await
        .expect("policy");
    assert_eq!(policy.data.expire_in_seconds.as_u64(), Some(300));
    assert_eq!(policy.data.max_file_size_mb.as_u64(), Some(100));
    // Unused by the client, kept as sent (any type).
    assert_eq!(
        policy.data.capacity_limit_mb,
        Some(serde_json::json!("999999999"))
    );
    assert_eq!(policy.request_id, "52f4383a-c67d-9f8c-xxxxxx");
}

#[tokio::test]
async fn upload_policy_with_a_missing_field_is_a_decode_error() {
    let body = POLICY_NUMBERS.replace(
        r#""upload_host":"https://dashscope-file-mgr.oss-cn-beijing.aliyuncs.com","#,
        "",
    );
    let server = Server::start(Canned::json(200, &body)).await;
    let err = client(&server.url)
        .upload_policy("qwen-vl-plus")
        .await
        .expect_err("no upload_host");
    assert!(matches!(err, dashscope_oss::Error::Decode(_)), "{err:?}");
    assert_eq!(err.status(), Some(200));
    assert!(err.to_string().contains("upload_host"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn empty_model_is_refused_before_sending() {
    let server = Server::start(Canned::json(200, POLICY_NUMBERS)).await;
    let err = client(&server.url)
        .upload_policy(" ")
        .await
        .expect_err("empty model");
    assert!(
        matches!(err, dashscope_oss::Error::InvalidRequest(_)),
        "{err:?}"
    );
    assert!(server.requests().is_empty());
}

/// The documentation's curl example (compatible mode) and its sample response.
#[tokio::test]
async fn chat_completion_round_trip() {
    let response = r#"{"choices":[{"message":{"content":"This is a picture of a white cat running on the grass.","role":"assistant"},"finish_reason":"stop","index":0,"logprobs":null}],"object":"chat.completion","usage":{"prompt_tokens":1253,"completion_tokens":104,"total_tokens":1357},"created":1739349052,"system_fingerprint":null,"model":"qwen-vl-plus","id":"chatcmpl-cfc4f2aa-22a8-9a94-8243-44c5bd9899bc"}"#;
    let server = Server::start(Canned::json(200, response)).await;
    let request: types::ChatCompletionRequest = serde_json::from_str(
        r#"{"model":"qwen-vl-plus","messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"oss://dashscope-instant/xxx/2024-07-18/xxxx/cat.png"}}]}],"enable_thinking":false}"#,
    )
    .expect("documented request parses");
    let answer = client(&server.url)
        .chat_completion(&request)
        .await
        .expect("completion");
    insta::assert_snapshot!(server.only_request().render());
    insta::assert_debug_snapshot!(answer);
}

/// The documentation's native example (Python SDK) and its sample response, with the
/// `image_hw` item from the Java sample.
#[tokio::test]
async fn multimodal_generation_round_trip() {
    let response = r#"{"status_code":200,"request_id":"ccd9dcfb-98f0-92bc-xxxxxx","code":"","message":"","output":{"text":null,"finish_reason":null,"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":[{"text":"This is a photo of a cat running on the grass."},{"image_hw":[["924","924"]]}]}}]},"usage":{"input_tokens":1112,"output_tokens":91,"input_tokens_details":{"text_tokens":21,"image_tokens":1091},"prompt_tokens_details":{"cached_tokens":0},"total_tokens":1203,"output_tokens_details":{"text_tokens":91},"image_tokens":1091}}"#;
    let server = Server::start(Canned::json(200, response)).await;
    let request: types::MultimodalGenerationRequest = serde_json::from_str(
        r#"{"model":"qwen-vl-plus","input":{"messages":[{"role":"system","content":[{"text":"You are a helpful assistant."}]},{"role":"user","content":[{"image":"oss://dashscope-instant/xxx/2024-07-18/xxxx/cat.png"},{"text":"What is this?"}]}]},"parameters":{"vl_high_resolution_images":true,"enable_thinking":false}}"#,
    )
    .expect("documented request parses");
    let answer = client(&server.url)
        .multimodal_generation(&request)
        .await
        .expect("generation");
    insta::assert_snapshot!(server.only_request().render());
    insta::assert_debug_snapshot!(answer);
}

#[test]
fn request_types_round_trip_their_json() {
    // Unknown request parameters survive in `extra`; native items keep their shape.
    let text = r#"{"model":"qwen-vl-max","input":{"messages":[{"role":"user","content":[{"video":["oss://a/1.jpg","oss://a/2.jpg"]},{"audio":"https://x/a.mp3"},{"text":"hi"}]}]},"parameters":{"incremental_output":true,"enable_thinking":true,"thinking_budget":50}}"#;
    let request: types::MultimodalGenerationRequest = serde_json::from_str(text).expect("parses");
    let back: serde_json::Value = serde_json::to_value(&request).expect("serializes");
    let original: serde_json::Value = serde_json::from_str(text).expect("json");
    assert_eq!(back, original);
    // A medium's options sit beside it, named (`fps`) or not (kept in the item's `extra`).
    let text = r#"{"model":"m","input":{"messages":[{"role":"user","content":[{"video":["a.jpg","b.jpg"],"fps":2.0,"max_pixels":655360,"a_future_option":true}]}]}}"#;
    let request: types::MultimodalGenerationRequest = serde_json::from_str(text).expect("parses");
    let back: serde_json::Value = serde_json::to_value(&request).expect("serializes");
    assert_eq!(
        back,
        serde_json::from_str::<serde_json::Value>(text).expect("json")
    );
    let types::NativeContent::Array(items) =
        &request.input.messages[0].content.clone().expect("content")
    else {
        panic!("a list of items");
    };
    assert_eq!(
        (items[0].fps, items[0].max_pixels),
        (Some(2.0), Some(655_360))
    );
    assert_eq!(
        items[0].extra.get("a_future_option"),
        Some(&serde_json::json!(true))
    );
}

/// A credential that does not fit the spec, through the raw generated call: described, never
/// quoted (it carries the policy, its signature and the access key id).
#[tokio::test]
async fn a_broken_credential_is_never_quoted_through_the_raw_call() {
    let body = r#"{"request_id":"r","data":{"policy":"eyJTOPSECRETPOLICY","signature":"TOPSECRETSIG","oss_access_key_id":"LTAITOPSECRET"}}"#;
    let server = Server::start(Canned::json(200, body)).await;
    let client = client(&server.url);
    let err = client
        .call(
            client
                .api()
                .get_upload_policy()
                .action(types::UploadAction::GetPolicy)
                .model("qwen-vl-plus")
                .send(),
        )
        .await
        .expect_err("missing fields");
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, dashscope_oss::Error::Decode(_)), "{shown}");
    assert!(!shown.contains("TOPSECRET"), "{shown}");
    assert!(shown.contains("withheld"), "{shown}");
}

/// `Config::upload_local_files(false)`: a local path in a media position is refused before
/// anything is sent, on any request.
#[tokio::test]
async fn local_files_can_be_refused() {
    let server = Server::start(Canned::json(200, r#"{"choices":[]}"#)).await;
    let client = dashscope_oss::Client::new(
        dashscope_oss::Config::new()
            .api_key(TEST_KEY)
            .base_url(&server.url)
            .upload_local_files(false),
    )
    .expect("client");
    let request: types::ChatCompletionRequest = serde_json::from_value(serde_json::json!({
        "model": "qwen-vl-plus",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "/etc/hostname"}},
            {"type": "text", "text": "?"}]}]
    }))
    .expect("request");
    let err = client.chat_completion(&request).await.expect_err("refused");
    assert!(
        matches!(&err, dashscope_oss::Error::LocalFileRefused { path, .. } if path.as_os_str() == "/etc/hostname"),
        "{err:?}"
    );
    assert!(err.to_string().contains("/etc/hostname"), "{err}");
    assert!(server.requests().is_empty(), "nothing was sent");
    // A URL is still sent as it is.
    let request: types::ChatCompletionRequest = serde_json::from_value(serde_json::json!({
        "model": "qwen-vl-plus",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]
    }))
    .expect("request");
    client.chat_completion(&request).await.expect("sent");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_workspace_is_named_on_every_dashscope_request() {
    let server = Server::start(Canned::json(
        200,
        r#"{"id":"c-1","object":"chat.completion","created":1,"model":"qwen-plus","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#,
    ))
    .await;
    let client = Client::new(
        Config::new()
            .api_key(TEST_KEY)
            .base_url(&server.url)
            .workspace("ws-1"),
    )
    .expect("client");
    let request = dashscope_oss::chat::ChatRequest::new("qwen-plus")
        .message(dashscope_oss::chat::Message::user().text("hi"));
    client.chat_completion(request).await.expect("answer");
    let sent = server.only_request();
    assert_eq!(
        sent.header("x-dashscope-workspace"),
        Some("ws-1"),
        "{}",
        sent.render()
    );

    // A region reached only through a workspace domain needs one; a malformed id is refused.
    let err = Client::new(
        Config::new()
            .api_key(TEST_KEY)
            .region(dashscope_oss::Region::Frankfurt),
    )
    .expect_err("no workspace");
    assert!(err.to_string().contains("workspace domain"), "{err}");
    let err =
        Client::new(Config::new().api_key(TEST_KEY).workspace("a.b")).expect_err("not a DNS label");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}
