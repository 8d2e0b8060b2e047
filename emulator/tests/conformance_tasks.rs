//! The task side of the emulator, driven with raw HTTP in the shapes the official Python SDK
//! 2.0.2 sends (read from its source: `audio/tts_v2/enrollment.py`, `client/base_api.py`'s
//! `list` and task helpers, `embeddings/multimodal_embedding.py`, `aigc/image_generation.py`,
//! `aigc/image_synthesis.py`'s asyncio class), one test per point of issue #19 that the task
//! side owns: voices kept per account, the task list's shapes and filters, embeddings of the
//! documented dimension, task paths that end with a slash, and wan2.6 image generation.

mod support;

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, RESULT_PNG, TaskSteps};
use serde_json::{Value, json};
use support::{Reply, http, upload};

/// A WAV header: audio, by its bytes.
const WAV: &[u8] =
    b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0data\0\0\0\0";

const OTHER_KEY: &str = "sk-conformance-other";

const ENROLL: &str = "/api/v1/services/audio/tts/customization";
const EMBED: &str = "/api/v1/services/embeddings/multimodal-embedding/multimodal-embedding";
const TEXT2IMAGE: &str = "/api/v1/services/aigc/text2image/image-synthesis";
const IMAGE_GENERATION: &str = "/api/v1/services/aigc/image-generation/generation";

/// Tasks move by queries, a second account, generous query limits (these tests count no
/// refusals).
async fn emulator() -> Emulator {
    // wan2.6-t2i and the embedding models are in the catalogue.
    let mut config = EmulatorConfig::default().account("other", &[OTHER_KEY]);
    config.task_steps = TaskSteps::Polls(1);
    config.task_query_qps = 10_000;
    support::start_with(config).await
}

/// A POST as the SDK sends it: bearer key, JSON, and the given extra headers.
async fn post(
    emulator: &Emulator,
    path: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Reply {
    let mut request = http()
        .post(format!("{}{path}", emulator.base_url()))
        .header("Authorization", format!("Bearer {key}"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request).await
}

async fn get(emulator: &Emulator, path_and_query: &str, key: &str) -> Reply {
    answer(
        http()
            .get(format!("{}{path_and_query}", emulator.base_url()))
            .header("Authorization", format!("Bearer {key}")),
    )
    .await
}

async fn answer(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("emulator answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

/// `VoiceEnrollmentService.__call_with_input`: the action and its fields in `input`.
async fn enroll(emulator: &Emulator, key: &str, input: Value) -> Reply {
    post(
        emulator,
        ENROLL,
        key,
        // The SDK adds no OSS header here; a user passes it to the constructor (`headers=`).
        &[("X-DashScope-OssResourceResolve", "enable")],
        &json!({"model": "voice-enrollment", "input": input}),
    )
    .await
}

fn refused(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.json()["code"], code, "{}", reply.body);
    assert!(reply.json()["request_id"].is_string(), "{}", reply.body);
}

#[tokio::test]
async fn voice_enrollment_keeps_each_account_s_voices() {
    let emulator = emulator().await;
    let sample = upload(
        &emulator,
        "voice-enrollment",
        DEFAULT_API_KEY,
        "sample.wav",
        WAV,
    )
    .await;
    let create = |prefix: &str| json!({"action": "create_voice", "target_model": "cosyvoice-v2", "prefix": prefix, "url": sample});
    let created = enroll(&emulator, DEFAULT_API_KEY, create("demo")).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let voice = created.json()["output"]["voice_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // `{target_model}-{prefix}-{32 hex}`, as the reference's examples show it.
    let unique = voice.strip_prefix("cosyvoice-v2-demo-").unwrap_or_default();
    assert!(
        unique.len() == 32 && unique.bytes().all(|b| b.is_ascii_hexdigit()),
        "{voice}"
    );
    assert_eq!(created.json()["usage"]["count"], 1);

    // `list_voices()`: the SDK sends page_index 0 and page_size 10 and reads `voice_list`.
    let list = json!({"action": "list_voice", "page_index": 0, "page_size": 10});
    let listed = enroll(&emulator, DEFAULT_API_KEY, list.clone()).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let voices = listed.json()["output"]["voice_list"].clone();
    assert_eq!(voices.as_array().map(Vec::len), Some(1), "{voices}");
    for field in ["gmt_create", "gmt_modified"] {
        let time = voices[0][field].as_str().unwrap_or_default();
        assert_eq!(time.len(), "2024-12-11 13:38:02".len(), "{field}: {time}");
    }
    assert_eq!(
        (
            &voices[0]["voice_id"],
            &voices[0]["status"],
            &voices[0]["target_model"]
        ),
        (&json!(voice), &json!("OK"), &json!("cosyvoice-v2"))
    );

    // `query_voice(voice_id)` returns `output` whole.
    let query = json!({"action": "query_voice", "voice_id": voice});
    let queried = enroll(&emulator, DEFAULT_API_KEY, query.clone()).await;
    assert_eq!(queried.status, 200, "{}", queried.body);
    assert_eq!(queried.json()["output"]["resource_link"], json!(sample));
    assert_eq!(queried.json()["output"]["status"], "OK");

    // Another account sees none of them, and cannot reach this one.
    let theirs = enroll(&emulator, OTHER_KEY, list.clone()).await;
    assert_eq!(
        theirs.json()["output"]["voice_list"],
        json!([]),
        "{}",
        theirs.body
    );
    refused(
        &enroll(&emulator, OTHER_KEY, query.clone()).await,
        400,
        "BadRequest.ResourceNotExist",
    );
    refused(
        &enroll(
            &emulator,
            DEFAULT_API_KEY,
            json!({"action": "query_voice", "voice_id": "cosyvoice-v2-demo-nope"}),
        )
        .await,
        400,
        "BadRequest.ResourceNotExist",
    );

    // `update_voice(voice_id, url)`: a new sample, resolved like the first; the time moves.
    emulator.advance_clock(std::time::Duration::from_secs(5));
    let second = upload(
        &emulator,
        "voice-enrollment",
        DEFAULT_API_KEY,
        "again.wav",
        WAV,
    )
    .await;
    let updated = enroll(
        &emulator,
        DEFAULT_API_KEY,
        json!({"action": "update_voice", "voice_id": voice, "url": second}),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.json()["output"], json!({}));
    let after = enroll(&emulator, DEFAULT_API_KEY, query.clone())
        .await
        .json();
    assert_eq!(after["output"]["resource_link"], json!(second));
    assert!(
        after["output"]["gmt_modified"].as_str() > after["output"]["gmt_create"].as_str(),
        "{after}"
    );
    // A sample that is not audio is refused as any model call's medium is.
    let picture = upload(
        &emulator,
        "voice-enrollment",
        DEFAULT_API_KEY,
        "cat.png",
        support::PNG,
    )
    .await;
    refused(
        &enroll(
            &emulator,
            DEFAULT_API_KEY,
            json!({"action": "update_voice", "voice_id": voice, "url": picture}),
        )
        .await,
        400,
        "InvalidParameter.DataInspection",
    );

    // The documented prefix rule: lowercase letters and digits, at most 10.
    for bad in ["My_Voice", "abcdefghijk", ""] {
        refused(
            &enroll(&emulator, DEFAULT_API_KEY, create(bad)).await,
            400,
            "InvalidParameter",
        );
    }
    assert_eq!(
        enroll(&emulator, DEFAULT_API_KEY, create("abcdefghij"))
            .await
            .status,
        200
    );

    // Pages: page_index counts from 0.
    for prefix in ["two", "three"] {
        assert_eq!(
            enroll(&emulator, DEFAULT_API_KEY, create(prefix))
                .await
                .status,
            200
        );
    }
    let page = |index: u64, size: u64| json!({"action": "list_voice", "page_index": index, "page_size": size});
    let second_page = enroll(&emulator, DEFAULT_API_KEY, page(1, 3)).await.json();
    let ids: Vec<&str> = second_page["output"]["voice_list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["voice_id"].as_str())
        .collect();
    assert!(
        ids.len() == 1 && ids[0].starts_with("cosyvoice-v2-three-"),
        "{second_page}"
    );
    let demo_only = json!({"action": "list_voice", "prefix": "demo"});
    let demo = enroll(&emulator, DEFAULT_API_KEY, demo_only.clone())
        .await
        .json();
    assert_eq!(
        demo["output"]["voice_list"].as_array().map(Vec::len),
        Some(1),
        "{demo}"
    );
    refused(
        &enroll(&emulator, DEFAULT_API_KEY, page(0, 1001)).await,
        400,
        "InvalidParameter",
    );

    // `delete_voice(voice_id)`: gone from the list and from queries.
    let deleted = enroll(
        &emulator,
        DEFAULT_API_KEY,
        json!({"action": "delete_voice", "voice_id": voice}),
    )
    .await;
    assert_eq!(
        (deleted.status, deleted.json()["output"].clone()),
        (200, json!({}))
    );
    let demo = enroll(&emulator, DEFAULT_API_KEY, demo_only).await.json();
    assert_eq!(demo["output"]["voice_list"], json!([]), "{demo}");
    refused(
        &enroll(&emulator, DEFAULT_API_KEY, query).await,
        400,
        "BadRequest.ResourceNotExist",
    );
}

/// `ImageSynthesis.async_call`'s submit: the prompt in `input`, the async header.
async fn submit_image(emulator: &Emulator, prompt: &str) -> String {
    let submitted = post(
        emulator,
        TEXT2IMAGE,
        DEFAULT_API_KEY,
        &[("X-DashScope-Async", "enable")],
        &json!({"model": "wanx2.1-t2i-turbo", "input": {"prompt": prompt}, "parameters": {"n": 1}}),
    )
    .await;
    assert_eq!(submitted.status, 200, "{}", submitted.body);
    submitted.json()["output"]["task_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `2026-12-04 21:01:10.123` → `20261204210110`, the list filters' format.
fn filter_time(submit_time: &str) -> String {
    submit_time
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect()
}

#[tokio::test]
async fn the_task_list_answers_both_shapes_and_checks_its_filters() {
    let emulator = emulator().await;
    let ids = [
        submit_image(&emulator, "one").await,
        submit_image(&emulator, "two").await,
    ];
    // `BaseAsyncApi.list()`: page_no and page_size always, filters when set.
    let listed = get(
        &emulator,
        "/api/v1/tasks?page_no=1&page_size=10",
        DEFAULT_API_KEY,
    )
    .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let page = listed.json();
    // The Java SDK reads `data`, the Python SDK's v2 `JobList` reads `tasks`: both are there.
    assert_eq!(page["data"], page["tasks"], "{page}");
    let listed_ids: Vec<&str> = page["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["task_id"].as_str())
        .collect();
    assert_eq!(
        listed_ids,
        ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(
        (
            &page["total"],
            &page["total_page"],
            &page["page_no"],
            &page["page_size"]
        ),
        (&json!(2), &json!(1), &json!(1), &json!(10))
    );

    // A range of one second, the tasks' own, finds them (its end includes the whole second)…
    let at = filter_time(page["data"][0]["submit_time"].as_str().unwrap_or_default());
    let until = filter_time(page["data"][1]["submit_time"].as_str().unwrap_or_default());
    let within = get(
        &emulator,
        &format!("/api/v1/tasks?page_no=1&page_size=10&start_time={at}&end_time={until}"),
        DEFAULT_API_KEY,
    )
    .await;
    assert_eq!(within.json()["total"], 2, "{}", within.body);
    // …and a day long before it finds none.
    let earlier = get(
        &emulator,
        "/api/v1/tasks?start_time=20200101000000&end_time=20200101235959",
        DEFAULT_API_KEY,
    )
    .await;
    assert_eq!(earlier.json()["total"], 0, "{}", earlier.body);

    // Refused as the service refuses them: over 24 hours, malformed, backwards, out of bounds.
    for query in [
        "start_time=20230420000000&end_time=20230421000001",
        "start_time=2023-04-20&end_time=20230420120000",
        "start_time=20230421000000&end_time=20230420000000",
        "end_time=20231340000000",
        "page_size=0",
        "page_size=101",
        "page_no=0",
        "status=DONE",
    ] {
        let reply = get(
            &emulator,
            &format!("/api/v1/tasks?{query}"),
            DEFAULT_API_KEY,
        )
        .await;
        refused(&reply, 400, "InvalidParameter");
        assert!(
            !reply.json()["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
        );
    }
    // The largest page is allowed; another account lists nothing.
    let big = get(&emulator, "/api/v1/tasks?page_size=100", DEFAULT_API_KEY).await;
    assert_eq!(big.json()["total"], 2, "{}", big.body);
    let theirs = get(&emulator, "/api/v1/tasks", OTHER_KEY).await;
    assert_eq!(
        (
            theirs.json()["total"].clone(),
            theirs.json()["data"].clone()
        ),
        (json!(0), json!([]))
    );
}

/// `MultiModalEmbedding.call(model, input=[...], dimension=…)`: `dimension` in `parameters`.
async fn embed(emulator: &Emulator, model: &str, text: &str, dimension: Option<u64>) -> Reply {
    let mut body = json!({"model": model, "input": {"contents": [{"text": text}]}});
    if let Some(d) = dimension {
        body["parameters"] = json!({"dimension": d});
    }
    post(emulator, EMBED, DEFAULT_API_KEY, &[], &body).await
}

fn vector_of(reply: &Reply) -> Vec<f64> {
    reply.json()["output"]["embeddings"][0]["embedding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect()
}

#[tokio::test]
async fn embeddings_have_the_model_s_documented_dimension() {
    let emulator = emulator().await;
    for (model, size) in [
        ("multimodal-embedding-v1", 1024),
        ("tongyi-embedding-vision-plus", 1152),
        ("tongyi-embedding-vision-flash", 768),
        ("qwen3-vl-embedding", 2560),
    ] {
        let reply = embed(&emulator, model, "a cat", None).await;
        assert_eq!(reply.status, 200, "{model}: {}", reply.body);
        let vector = vector_of(&reply);
        assert_eq!(vector.len(), size, "{model}");
        let norm = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-6, "{model}: {norm}");
        // Derived from the content: the same text the same vector, another text another.
        assert_eq!(
            vector_of(&embed(&emulator, model, "a cat", None).await),
            vector
        );
        assert_ne!(
            vector_of(&embed(&emulator, model, "a dog", None).await),
            vector
        );
    }
    // `dimension` where the model documents it, refused where it does not.
    let smaller = embed(&emulator, "qwen3-vl-embedding", "a cat", Some(512)).await;
    assert_eq!(vector_of(&smaller).len(), 512, "{}", smaller.body);
    refused(
        &embed(&emulator, "qwen3-vl-embedding", "a cat", Some(500)).await,
        400,
        "InvalidParameter",
    );
    refused(
        &embed(&emulator, "multimodal-embedding-v1", "a cat", Some(512)).await,
        400,
        "InvalidParameter",
    );
    let same = embed(&emulator, "multimodal-embedding-v1", "a cat", Some(1024)).await;
    assert_eq!(vector_of(&same).len(), 1024, "{}", same.body);
}

/// Polls a task the way the SDK's asyncio `wait` does (a slash after the id) until it ends.
async fn wait_with_slash(emulator: &Emulator, id: &str) -> Value {
    for _ in 0..10 {
        let reply = get(emulator, &format!("/api/v1/tasks/{id}/"), DEFAULT_API_KEY).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        match body["output"]["task_status"].as_str() {
            Some("PENDING" | "RUNNING") => {}
            _ => return body,
        }
    }
    panic!("task {id} did not end within 10 queries");
}

/// A result link, fetched as a presigned URL is: no key.
async fn fetch(url: &str) -> Vec<u8> {
    let response = http().get(url).send().await.expect("result answers");
    assert_eq!(response.status().as_u16(), 200, "{url}");
    response.bytes().await.expect("body").to_vec()
}

#[tokio::test]
async fn task_paths_may_end_with_a_slash_as_the_asyncio_classes_send_them() {
    let emulator = emulator().await;
    // `AioImageSynthesis.call`: submit, then `GET /api/v1/tasks/<id>/` until it ends.
    let id = submit_image(&emulator, "a cat").await;
    let done = wait_with_slash(&emulator, &id).await;
    assert_eq!(done["output"]["task_id"], json!(id), "{done}");
    assert_eq!(done["output"]["task_status"], "SUCCEEDED", "{done}");
    let url = done["output"]["results"][0]["url"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(fetch(url).await, RESULT_PNG);
    // Without the slash, the same task.
    let plain = get(&emulator, &format!("/api/v1/tasks/{id}"), DEFAULT_API_KEY).await;
    assert_eq!(
        plain.json()["output"]["task_id"],
        json!(id),
        "{}",
        plain.body
    );

    // Cancel, as `_build_api_request` spells it (`…/cancel/`), of a task still PENDING.
    let pending = submit_image(&emulator, "a dog").await;
    let cancelled = post(
        &emulator,
        &format!("/api/v1/tasks/{pending}/cancel/"),
        DEFAULT_API_KEY,
        &[],
        &json!({}),
    )
    .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let state = get(
        &emulator,
        &format!("/api/v1/tasks/{pending}/"),
        DEFAULT_API_KEY,
    )
    .await;
    assert_eq!(
        state.json()["output"]["task_status"],
        "CANCELED",
        "{}",
        state.body
    );
    // A second cancel is refused the same way with or without the slash.
    for path in [
        format!("/api/v1/tasks/{pending}/cancel/"),
        format!("/api/v1/tasks/{pending}/cancel"),
    ] {
        refused(
            &post(&emulator, &path, DEFAULT_API_KEY, &[], &json!({})).await,
            400,
            "UnsupportedOperation",
        );
    }
}

#[tokio::test]
async fn wan26_image_generation_is_a_task_answered_as_choices() {
    let emulator = emulator().await;
    let reference = upload(
        &emulator,
        "wan2.6-t2i",
        DEFAULT_API_KEY,
        "ref.png",
        support::PNG,
    )
    .await;
    // `ImageGeneration.async_call(model, messages, n=2, size=…)`: the messages in `input`,
    // the rest in `parameters`, the async header, and the OSS header for the uploaded image.
    let body = |content: Value| {
        json!({
            "model": "wan2.6-t2i",
            "input": {"messages": [{"role": "user", "content": content}]},
            "parameters": {"n": 2, "size": "1024*1024"}
        })
    };
    let content = json!([{"text": "a cat in the style of the picture"}, {"image": reference}]);
    let both = [
        ("X-DashScope-Async", "enable"),
        ("X-DashScope-OssResourceResolve", "enable"),
    ];
    let submitted = post(
        &emulator,
        IMAGE_GENERATION,
        DEFAULT_API_KEY,
        &both,
        &body(content.clone()),
    )
    .await;
    assert_eq!(submitted.status, 200, "{}", submitted.body);
    assert_eq!(submitted.json()["output"]["task_status"], "PENDING");
    let id = submitted.json()["output"]["task_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let done = wait_with_slash(&emulator, &id).await;
    assert_eq!(done["output"]["task_status"], "SUCCEEDED", "{done}");
    // `ImageGenerationOutput` reads `choices[].message.content[].image`.
    let choices = done["output"]["choices"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(choices.len(), 2, "{done}");
    for choice in &choices {
        assert_eq!(choice["message"]["role"], "assistant");
        let url = choice["message"]["content"][0]["image"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(fetch(url).await, RESULT_PNG);
    }
    assert_eq!(done["usage"]["image_count"], 2, "{done}");
    assert_eq!(done["usage"]["size"], "1024*1024", "{done}");

    // Media in the messages resolve like any other: the OSS header, the model bound at upload.
    let async_only = [("X-DashScope-Async", "enable")];
    refused(
        &post(
            &emulator,
            IMAGE_GENERATION,
            DEFAULT_API_KEY,
            &async_only,
            &body(content.clone()),
        )
        .await,
        400,
        "InvalidParameter",
    );
    let elsewhere = upload(
        &emulator,
        "qwen-vl-plus",
        DEFAULT_API_KEY,
        "cat.png",
        support::PNG,
    )
    .await;
    refused(
        &post(
            &emulator,
            IMAGE_GENERATION,
            DEFAULT_API_KEY,
            &both,
            &body(json!([{"text": "a cat"}, {"image": elsewhere}])),
        )
        .await,
        400,
        "InvalidParameter",
    );
    // The task protocol's own rules: the async header, a text, at most 4 images.
    refused(
        &post(
            &emulator,
            IMAGE_GENERATION,
            DEFAULT_API_KEY,
            &[("X-DashScope-OssResourceResolve", "enable")],
            &body(content),
        )
        .await,
        403,
        "AccessDenied",
    );
    refused(
        &post(
            &emulator,
            IMAGE_GENERATION,
            DEFAULT_API_KEY,
            &both,
            &body(json!([{"image": reference}])),
        )
        .await,
        400,
        "InvalidParameter",
    );
    let mut five = body(json!([{"text": "a cat"}]));
    five["parameters"]["n"] = json!(5);
    refused(
        &post(&emulator, IMAGE_GENERATION, DEFAULT_API_KEY, &both, &five).await,
        400,
        "InvalidParameter",
    );
}
