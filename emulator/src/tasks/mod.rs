//! The asynchronous task APIs, as the documentation of each describes them: submits that
//! need `X-DashScope-Async: enable` (403 `AccessDenied` "current user api does not support
//! synchronous calls" without it, as users report), task queries at 20 per second per account
//! (429 beyond), cancel from `PENDING` only (400 `UnsupportedOperation`), `UNKNOWN` for a wrong,
//! foreign or expired (24 hours) id, failures at HTTP 200 with `output.code`/`message`, and
//! results served by the emulator: a transcript that states what was received, a small PNG, a
//! small MP4. Also the task list (`list`), voice enrollment (`voices`) and multimodal embedding
//! (`embed`), which read file URLs too.
//!
//! Where the documentation is silent the emulator decides, and the client agrees: a transcription
//! file that is not audio or video fails alone (`InvalidFile.DecodeFailed`) while the task
//! succeeds with the others (the documented partial success); a prompt containing
//! [`FAIL_TASK_TEXT`] makes a task fail with `InvalidParameter`; the answer of a cancel is
//! `{"request_id"}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::MediaKind;
use super::api::{
    Api, ApiError, INVALID_PARAMETER, MAX_REQUEST_BYTES, MediaRef, RATE_LIMITED, authenticate,
    error, model_spec, resolve_medium,
};
use super::state::{FaultKind, State, bump, lock};

mod embed;
mod list;
mod results;
pub(crate) mod store;
mod voices;

pub use results::{RESULT_MP4, RESULT_PNG};
use results::{result, result_url};

pub use store::TaskSteps;
use store::{File, Kind, Task, status_of};

use crate::catalogue::Endpoint;

/// A prompt containing this makes a task end `FAILED` (so that the failure path can be tested).
pub const FAIL_TASK_TEXT: &str = "EMULATOR-FAIL-TASK";

pub(crate) fn routes() -> Router<Arc<State>> {
    Router::new()
        .route(
            "/api/v1/services/audio/asr/transcription",
            post(|s, h, b| submit(s, h, b, Kind::Transcription, "")),
        )
        .route(
            "/api/v1/services/aigc/text2image/image-synthesis",
            post(|s, h, b| submit(s, h, b, Kind::Image, "text2image")),
        )
        .route(
            "/api/v1/services/aigc/image2image/image-synthesis",
            post(|s, h, b| submit(s, h, b, Kind::Image, "image2image")),
        )
        .route(
            "/api/v1/services/aigc/video-generation/video-synthesis",
            post(|s, h, b| submit(s, h, b, Kind::Video, "video-generation")),
        )
        .route(
            "/api/v1/services/aigc/image2video/video-synthesis",
            post(|s, h, b| submit(s, h, b, Kind::Video, "image2video")),
        )
        .route(
            "/api/v1/services/aigc/image-generation/generation",
            post(|s, h, b| submit(s, h, b, Kind::Generation, "image-generation")),
        )
        .route("/api/v1/tasks", get(list::list))
        // The SDK's asyncio classes (and its task helpers built on `_build_api_request`) end
        // the task's path with a slash; the service answers both spellings.
        .route("/api/v1/tasks/{task_id}", get(query))
        .route("/api/v1/tasks/{task_id}/", get(query))
        .route("/api/v1/tasks/{task_id}/cancel", post(cancel))
        .route("/api/v1/tasks/{task_id}/cancel/", post(cancel))
        .route("/emulator/v1/results/{task_id}/{name}", get(result))
        .route(
            "/api/v1/services/audio/tts/customization",
            post(voices::enroll),
        )
        .route(
            "/api/v1/services/embeddings/multimodal-embedding/multimodal-embedding",
            post(embed::embed),
        )
}

fn header_is(headers: &HeaderMap, name: &str, value: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
}

/// The request's JSON, its account and model (known to the emulator).
fn open_call(
    state: &State,
    headers: &HeaderMap,
    body: &[u8],
    endpoint: Endpoint,
) -> Result<(usize, String, Vec<MediaKind>, Value), ApiError> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(error(413, "BadRequest.TooLarge", "Payload Too Large"));
    }
    let account = authenticate(state, headers)?;
    let request: Value = serde_json::from_slice(body)
        .map_err(|_| error(400, "InvalidParameter", INVALID_PARAMETER))?;
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| error(400, "InvalidParameter", INVALID_PARAMETER))?
        .to_owned();
    let accepts = model_spec(state, &model, Some(endpoint))?.accepts;
    Ok((account, model, accepts, request))
}

fn field<'a>(request: &'a Value, pointer: &str) -> Option<&'a str> {
    request
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

async fn submit(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
    kind: Kind,
    route: &'static str,
) -> Response {
    state.faults.delay().await;
    let request_id = state.request_id();
    match create(&state, &headers, &body, kind, route) {
        Ok(task_id) => axum::Json(json!({
            "request_id": request_id,
            "output": {"task_id": task_id, "task_status": "PENDING"}
        }))
        .into_response(),
        Err(e) => e.render(Api::Native, &request_id),
    }
}

fn create(
    state: &State,
    headers: &HeaderMap,
    body: &[u8],
    kind: Kind,
    route: &str,
) -> Result<String, ApiError> {
    let endpoint = match (kind, route) {
        (Kind::Transcription, _) => Endpoint::Transcription,
        (Kind::Image, "image2image") => Endpoint::ImageEdit,
        (Kind::Image, _) => Endpoint::TextToImage,
        (Kind::Video, "image2video") => Endpoint::KeyframeVideo,
        (Kind::Video, _) => Endpoint::VideoSynthesis,
        (Kind::Generation, _) => Endpoint::ImageGeneration,
    };
    let (account, model, accepts, request) = open_call(state, headers, body, endpoint)?;
    if !header_is(headers, "x-dashscope-async", "enable") {
        return Err(error(
            403,
            "AccessDenied",
            "current user api does not support synchronous calls",
        ));
    }
    let resolve = header_is(headers, "x-dashscope-ossresourceresolve", "enable");
    let invalid = |what: &str| error(400, "InvalidParameter", what.to_owned());
    let prompt = if kind == Kind::Generation {
        message_text(&request)
    } else {
        field(&request, "/input/prompt").unwrap_or("").to_owned()
    };
    let mut task = Task {
        account,
        model: model.clone(),
        kind,
        submitted: state.clock.now(),
        polls: 0,
        canceled: false,
        failure: prompt.contains(FAIL_TASK_TEXT).then(|| {
            (
                "InvalidParameter".to_owned(),
                "The task failed as the emulator was asked to (EMULATOR-FAIL-TASK in the prompt)."
                    .to_owned(),
            )
        }),
        files: Vec::new(),
        images: 1,
        diarization: request
            .pointer("/parameters/diarization_enabled")
            .and_then(Value::as_bool)
            == Some(true),
        prompt,
        request: request.clone(),
        seq: 0,
    };
    let resolve_one = |url: &str| {
        resolve_medium(
            state,
            account,
            &model,
            &accepts,
            &MediaRef {
                url: url.to_owned(),
            },
            resolve,
        )
    };
    match kind {
        Kind::Transcription => {
            let mut urls: Vec<String> = request
                .pointer("/input/file_urls")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(one) = field(&request, "/input/file_url") {
                urls.push(one.to_owned());
            }
            if urls.is_empty() {
                return Err(invalid("input.file_urls must name at least one file"));
            }
            if urls.len() > 100 {
                return Err(invalid("input.file_urls takes at most 100 files"));
            }
            for url in urls {
                let outcome = match resolve_one(&url) {
                    Ok(described) => Ok(described.summary),
                    // A file that is not audio fails alone; the task goes on with the others.
                    Err(e) if e.code == "InvalidParameter.DataInspection" => Err((
                        "InvalidFile.DecodeFailed".to_owned(),
                        "The audio file cannot be decoded.".to_owned(),
                    )),
                    Err(e) => return Err(e),
                };
                task.files.push(File { url, outcome });
            }
            // A task succeeds when one file did; when none did, it fails (the recorded-file transcription documentation).
            if task.files.iter().all(|f| f.outcome.is_err()) {
                task.failure = Some((
                    "InvalidFile.DecodeFailed".to_owned(),
                    "No file of the task could be decoded.".to_owned(),
                ));
            }
        }
        Kind::Image => {
            if route == "image2image" {
                let function = field(&request, "/input/function");
                if model.contains("imageedit") {
                    match function {
                        Some(f) if is_image_edit_function(f) => {}
                        _ => return Err(invalid("input.function is missing or not supported")),
                    }
                }
                if field(&request, "/input/base_image_url").is_none()
                    && request.pointer("/input/images").is_none()
                {
                    return Err(invalid("input.base_image_url is required"));
                }
            } else if task.prompt.is_empty() {
                return Err(invalid("input.prompt is required"));
            }
            task.images = request
                .pointer("/parameters/n")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            if !(1..=4).contains(&task.images) {
                return Err(invalid("parameters.n must be from 1 to 4"));
            }
        }
        Kind::Generation => {
            if request
                .pointer("/input/messages")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                return Err(invalid("input.messages is required"));
            }
            if task.prompt.is_empty() {
                return Err(invalid("input.messages must hold a text"));
            }
            task.images = request
                .pointer("/parameters/n")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            if !(1..=4).contains(&task.images) {
                return Err(invalid("parameters.n must be from 1 to 4"));
            }
        }
        Kind::Video => {
            if route == "image2video" && field(&request, "/input/first_frame_url").is_none() {
                return Err(invalid("input.first_frame_url is required"));
            }
            if let Some(r) = field(&request, "/parameters/resolution")
                && !matches!(r, "480P" | "720P" | "1080P")
            {
                return Err(invalid("parameters.resolution must be 480P, 720P or 1080P"));
            }
        }
    }
    if kind != Kind::Transcription {
        // Every medium the request names must resolve, by the same rules as a model call.
        for url in task_media(&request) {
            resolve_one(url)?;
        }
    }
    let id = state.request_id();
    task.seq = state
        .tasks
        .submitted
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    lock(&state.tasks.tasks).insert(id.clone(), task);
    state.sweep_if_due();
    Ok(id)
}

/// Counts a task query of an account; `false` when it is over the limit.
fn admit_query(state: &State, account: usize) -> bool {
    bump(&state.tasks.queries);
    let now = Instant::now();
    let mut windows = lock(&state.tasks.windows);
    let window = windows.entry(account).or_default();
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= state.config.task_rate_window)
    {
        window.pop_front();
    }
    let admitted = window.len() < state.config.task_query_qps as usize;
    window.push_back(now);
    state
        .tasks
        .max_per_second
        .fetch_max(window.len() as u64, std::sync::atomic::Ordering::Relaxed);
    if !admitted {
        bump(&state.tasks.throttled);
    }
    admitted
}

/// Authenticates a task query and counts it against the account's limit.
fn open_query(state: &State, headers: &HeaderMap) -> Result<usize, ApiError> {
    let account = authenticate(state, headers)?;
    if !admit_query(state, account) {
        return Err(error(429, "Throttling.RateQuota", RATE_LIMITED));
    }
    Ok(account)
}

/// The base of result URLs: the host the client reached the emulator at.
fn base_of(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

async fn query(
    AxState(state): AxState<Arc<State>>,
    Path(task_id): Path<String>,
    axum::Extension(switch): axum::Extension<super::server::DropConnection>,
    headers: HeaderMap,
) -> Response {
    state.faults.delay().await;
    let request_id = state.request_id();
    let account = match open_query(&state, &headers) {
        Ok(a) => a,
        Err(e) => return e.render(Api::Native, &request_id),
    };
    if state.faults.take(FaultKind::TaskQueryDrop) {
        switch.pull();
        // The connection task drops this future with the connection: no answer is sent.
        std::future::pending::<()>().await;
    }
    if state.faults.take(FaultKind::TaskQueryError) {
        return error(
            500,
            "InternalError",
            "An internal error has occured, please try again later.",
        )
        .render(Api::Native, &request_id);
    }
    let now = state.clock.now();
    let mut tasks = lock(&state.tasks.tasks);
    let Some(task) = tasks.get_mut(&task_id).filter(|t| t.account == account) else {
        return axum::Json(json!({
            "request_id": request_id,
            "output": {"task_id": task_id, "task_status": "UNKNOWN"}
        }))
        .into_response();
    };
    let status = status_of(task, now, &state.config);
    task.polls = task.polls.saturating_add(1);
    let task = task.clone();
    drop(tasks);
    let mut output = json!({"task_id": task_id, "task_status": status});
    let mut usage = Value::Null;
    if status != "UNKNOWN" {
        output["submit_time"] = json!(crate::when::service_time(task.submitted));
    }
    if matches!(status, "RUNNING" | "SUCCEEDED" | "FAILED") {
        output["scheduled_time"] = json!(crate::when::service_time(
            task.submitted + Duration::from_millis(10)
        ));
    }
    if matches!(status, "SUCCEEDED" | "FAILED" | "CANCELED") {
        output["end_time"] = json!(crate::when::service_time(now));
    }
    if status == "FAILED"
        && let Some((code, message)) = &task.failure
    {
        output["code"] = json!(code);
        output["message"] = json!(message);
    }
    if status == "SUCCEEDED" {
        let base = base_of(&headers);
        match task.kind {
            Kind::Transcription => {
                let results: Vec<Value> = task
                    .files
                    .iter()
                    .enumerate()
                    .map(|(i, f)| match &f.outcome {
                        Ok(_) => json!({
                            "file_url": f.url, "subtask_status": "SUCCEEDED",
                            "transcription_url": result_url(&state, &base, &task_id, &format!("{i}.json"), now)
                        }),
                        Err((code, message)) => json!({
                            "file_url": f.url, "subtask_status": "FAILED",
                            "code": code, "message": message
                        }),
                    })
                    .collect();
                let ok = task.files.iter().filter(|f| f.outcome.is_ok()).count();
                // qwen3-asr-flash-filetrans documents one `result`, the others `results[]`.
                if task.model.contains("filetrans")
                    && let [only] = results.as_slice()
                {
                    output["result"] = only.clone();
                } else {
                    output["results"] = json!(results);
                }
                output["task_metrics"] = json!({
                    "TOTAL": task.files.len(), "SUCCEEDED": ok, "FAILED": task.files.len() - ok
                });
                usage = json!({"duration": ok});
            }
            Kind::Image => {
                let results: Vec<Value> = (0..task.images)
                    .map(|i| {
                        json!({
                            "url": result_url(&state, &base, &task_id, &format!("{i}.png"), now),
                            "orig_prompt": task.prompt
                        })
                    })
                    .collect();
                output["results"] = json!(results);
                output["task_metrics"] =
                    json!({"TOTAL": task.images, "SUCCEEDED": task.images, "FAILED": 0});
                usage = json!({"image_count": task.images});
            }
            Kind::Generation => {
                // One choice per image, as the SDK's `ImageGenerationOutput` reads them
                // (`choices[].message.content[].image`) and the wan2.6 query answer shows.
                let choices: Vec<Value> = (0..task.images)
                    .map(|i| {
                        let url = result_url(&state, &base, &task_id, &format!("{i}.png"), now);
                        json!({
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": [{"image": url, "type": "image"}]}
                        })
                    })
                    .collect();
                output["choices"] = json!(choices);
                output["finished"] = json!(true);
                let size = field(&task.request, "/parameters/size").unwrap_or("1280*1280");
                usage = json!({"image_count": task.images, "size": size});
            }
            Kind::Video => {
                output["video_url"] = json!(result_url(&state, &base, &task_id, "0.mp4", now));
                usage = json!({"video_count": 1, "video_duration": 5, "video_ratio": "832*480"});
            }
        }
    }
    let mut answer = json!({"request_id": request_id, "output": output});
    if !usage.is_null() {
        answer["usage"] = usage;
    }
    axum::Json(answer).into_response()
}

async fn cancel(
    AxState(state): AxState<Arc<State>>,
    Path(task_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let request_id = state.request_id();
    let account = match open_query(&state, &headers) {
        Ok(a) => a,
        Err(e) => return e.render(Api::Native, &request_id),
    };
    let now = state.clock.now();
    let mut tasks = lock(&state.tasks.tasks);
    match tasks.get_mut(&task_id).filter(|t| t.account == account) {
        Some(task) if status_of(task, now, &state.config) == "PENDING" => {
            task.canceled = true;
            axum::Json(json!({"request_id": request_id})).into_response()
        }
        _ => error(
            400,
            "UnsupportedOperation",
            "Failed to cancel the task, please confirm if the task status is PENDING.",
        )
        .render(Api::Native, &request_id),
    }
}

/// The edits `wanx2.1-imageedit` documents for `input.function` (the image editing documentation).
fn is_image_edit_function(f: &str) -> bool {
    matches!(
        f,
        "stylization_all"
            | "stylization_local"
            | "description_edit"
            | "description_edit_with_mask"
            | "remove_watermark"
            | "expand"
            | "super_resolution"
            | "colorization"
            | "doodle"
            | "control_cartoon_feature"
    )
}

/// The text of a messages-protocol submit: every `text` part of its messages.
fn message_text(request: &Value) -> String {
    message_parts(request)
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The content parts of a messages-protocol submit (`input.messages[].content[]`).
fn message_parts(request: &Value) -> impl Iterator<Item = &Value> {
    request
        .pointer("/input/messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
}

/// The media an image or video submit names, by the fields the documentation and the official
/// SDK's upload step list for those APIs (the image editing and synthesis documentation,
/// `check_and_upload_local` of the video classes, `media[i].url`). Read here, not taken from the
/// client, so that a field the client forgets is a disagreement a test can see.
fn task_media(request: &Value) -> Vec<&str> {
    const SINGLE: &[&str] = &[
        "base_image_url",
        "mask_image_url",
        "sketch_image_url",
        "ref_img",
        "img_url",
        "image_url",
        "audio_url",
        "video_url",
        "head_frame",
        "tail_frame",
        "first_frame_url",
        "last_frame_url",
        "reference_url",
    ];
    const LISTS: &[&str] = &["images", "reference_video_urls", "reference_urls"];
    let Some(input) = request.get("input") else {
        return Vec::new();
    };
    let mut found: Vec<&str> = SINGLE
        .iter()
        .filter_map(|k| input.get(*k).and_then(Value::as_str))
        .collect();
    for list in LISTS {
        if let Some(items) = input.get(*list).and_then(Value::as_array) {
            found.extend(items.iter().filter_map(Value::as_str));
        }
    }
    // The messages protocol (wan2.6): media are content parts, as in a model call.
    found.extend(message_parts(request).filter_map(|part| {
        ["image", "video", "audio"]
            .iter()
            .find_map(|k| part.get(*k).and_then(Value::as_str))
    }));
    if let Some(media) = input.get("media").and_then(Value::as_array) {
        found.extend(
            media
                .iter()
                .filter(|m| m.get("type").and_then(Value::as_str) != Some("link"))
                .filter_map(|m| m.get("url").and_then(Value::as_str)),
        );
    }
    found
}
