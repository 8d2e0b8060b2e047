//! The client and the emulator judge requests each by its own reading of the documentation:
//! the client refuses hostile requests before sending them, the emulator refuses the same
//! requests when they arrive raw (sent with plain reqwest, past the client's checks). Both must
//! refuse every case; a rule missing on either side shows here.

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig};
use dashscope_oss::api::types;
use dashscope_oss::{Client, Config, Error};
use serde_json::{Value, json};

const TRANSCRIPTION: &str = "/api/v1/services/audio/asr/transcription";
const IMAGE_EDIT: &str = "/api/v1/services/aigc/image2image/image-synthesis";
const VIDEO: &str = "/api/v1/services/aigc/video-generation/video-synthesis";

fn transcription(files: usize) -> types::TranscriptionRequest {
    let urls = (0..files)
        .map(|i| format!("https://example.com/{i}.wav"))
        .collect::<Vec<_>>();
    types::TranscriptionRequest::builder()
        .model("paraformer-v2")
        .input(types::TranscriptionInput::builder().file_urls(urls))
        .try_into()
        .expect("request")
}

fn image_edit(function: &str) -> types::ImageSynthesisRequest {
    types::ImageSynthesisRequest::builder()
        .model("wanx2.1-imageedit")
        .input(
            types::ImageSynthesisInput::builder()
                .function(Some(function.to_owned()))
                .prompt(Some("a cat".to_owned()))
                .base_image_url(Some("https://example.com/a.png".to_owned())),
        )
        .try_into()
        .expect("request")
}

fn video(resolution: &str) -> types::VideoSynthesisRequest {
    types::VideoSynthesisRequest::builder()
        .model("wan2.2-kf2v-flash")
        .input(
            types::VideoSynthesisInput::builder()
                .first_frame_url(Some("https://example.com/first.png".to_owned()))
                .prompt(Some("it turns".to_owned())),
        )
        .parameters(Some(
            serde_json::from_value(json!({"resolution": resolution})).expect("parameters"),
        ))
        .try_into()
        .expect("request")
}

/// The emulator's answer to a raw submit of `body`, as a client that checks nothing sends it.
async fn raw_submit(emulator: &Emulator, path: &str, body: &Value) -> (u16, Value) {
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{}{path}", emulator.base_url()))
        .bearer_auth(DEFAULT_API_KEY)
        .header("X-DashScope-Async", "enable")
        .json(body)
        .send()
        .await
        .expect("answer");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn hostile_requests_are_refused_by_the_client_and_by_the_emulator() {
    dashscope_oss::install_crypto_provider();
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let client = Client::new(
        Config::new()
            .api_key(DEFAULT_API_KEY)
            .base_url(emulator.base_url()),
    )
    .expect("client");

    let too_many = transcription(101);
    let none = transcription(0);
    let function = image_edit("make_it_pop");
    let resolution = video("4K");
    let cases: Vec<(&str, &str, Value, Result<_, Error>)> = vec![
        (
            "a transcription of 101 files",
            TRANSCRIPTION,
            serde_json::to_value(&too_many).expect("json"),
            client.submit_transcription(&too_many).await,
        ),
        (
            "a transcription of no file",
            TRANSCRIPTION,
            serde_json::to_value(&none).expect("json"),
            client.submit_transcription(&none).await,
        ),
        (
            "an image edit with an undocumented function",
            IMAGE_EDIT,
            serde_json::to_value(&function).expect("json"),
            client.submit_image_edit(&function).await,
        ),
        (
            "a video of an undocumented resolution",
            VIDEO,
            serde_json::to_value(&resolution).expect("json"),
            client.submit_video_synthesis(&resolution).await,
        ),
    ];
    let mut seen = Vec::new();
    for (case, path, body, by_client) in cases {
        let refused = match by_client {
            Err(Error::InvalidRequest(message)) => message,
            other => panic!("{case}: the client did not refuse it: {other:?}"),
        };
        let (status, answer) = raw_submit(&emulator, path, &body).await;
        assert_eq!(status, 400, "{case}: the emulator took it: {answer}");
        assert_eq!(answer["code"], "InvalidParameter", "{case}: {answer}");
        seen.push(format!(
            "{case}: client {refused:?}; emulator {}",
            answer["message"]
        ));
    }
    // Nothing hostile made a task, on either path.
    assert_eq!(emulator.stats().tasks_submitted, 0, "{seen:#?}");

    // A task id that is not one path segment: the client sends nothing; the service has no
    // such path.
    let err = client.get_task("a/../b").await.expect_err("refused");
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    let raw = reqwest::Client::new()
        .get(format!("{}/api/v1/tasks/a/b", emulator.base_url()))
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .expect("answer");
    assert_eq!(raw.status().as_u16(), 404);
    assert_eq!(emulator.stats().task_queries, 0, "the client sent no query");
}
