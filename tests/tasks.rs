//! Asynchronous tasks against the emulator (and a canned server for the wire): submits with
//! local files, every terminal state and what it becomes, cancel, the header rule, a submit that
//! is never resent, waits that survive failing queries, bad input before any request, results.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use dashscope_emulator::{
    DEFAULT_API_KEY, Emulator, EmulatorConfig, FAIL_TASK_TEXT, FaultKind, RESULT_MP4, RESULT_PNG,
    TaskSteps,
};
use dashscope_oss::api::types;
use dashscope_oss::task::{TaskFilter, TaskState, WaitOptions};
use dashscope_oss::{Client, Config, Error, RetryPolicy};
use support::{Canned, Server, TEST_KEY};

const CAT: &str = "tests/fixtures/cat.png";

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("dashscope-oss-tasks-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        Self(dir)
    }

    /// A WAV header the emulator sniffs as audio.
    fn wav(&self, name: &str) -> PathBuf {
        let mut bytes = b"RIFF\x24\0\0\0WAVEfmt ".to_vec();
        bytes.resize(64, 0);
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn emulator(steps: TaskSteps) -> Emulator {
    Emulator::start(EmulatorConfig {
        task_steps: steps,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator")
}

fn client(base: &str, key: &str) -> Client {
    Client::new(
        Config::new().api_key(key).base_url(base).retry(
            RetryPolicy::default()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(5))
                .max_backoff(Duration::from_millis(20)),
        ),
    )
    .expect("client")
}

fn fast() -> WaitOptions {
    WaitOptions::default().interval(Duration::from_millis(5), Duration::from_millis(20))
}

fn s(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Ids, keys, times and ports vary: the snapshot keeps the shape.
fn redact(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut line = line.to_owned();
        // dashscope-instant/<account>/<date>/<uuid>/<name>: keep the name, wherever it occurs.
        let from = "dashscope-instant/";
        let mut searched = 0;
        while let Some(found) = line[searched..].find(from) {
            let at = searched + found + from.len();
            let parts: Vec<&str> = line[at..].splitn(4, '/').collect();
            if parts.len() == 4 {
                let tail = parts[3].to_owned();
                line = format!("{}[DIR]/{tail}", &line[..at]);
            }
            searched = at;
        }
        // A presigned result link's query (its expiry and signature move with the clock).
        if let Some(at) = line.find("?Expires=") {
            let end = line[at..].find('"').map_or(line.len(), |e| at + e);
            line.replace_range(at..end, "?Expires=[E]&OSSAccessKeyId=[K]&Signature=[S]");
        }
        out.push_str(&line);
        out.push('\n');
    }
    let uuid = |s: &str| {
        let b = s.as_bytes();
        b.len() >= 36
            && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
            && b[..36]
                .iter()
                .enumerate()
                .all(|(i, c)| [8, 13, 18, 23].contains(&i) || c.is_ascii_hexdigit())
    };
    let mut redacted = String::new();
    let mut i = 0;
    while i < out.len() {
        if out.is_char_boundary(i) && uuid(&out[i..]) {
            redacted.push_str("[ID]");
            i += 36;
        } else {
            let c = out[i..].chars().next().unwrap_or(' ');
            redacted.push(c);
            i += c.len_utf8();
        }
    }
    let mut result = String::new();
    for line in redacted.lines() {
        let mut line = line.to_owned();
        for key in ["submit_time", "scheduled_time", "end_time"] {
            let pat = format!("\"{key}\": \"");
            if let Some(at) = line.find(&pat) {
                let start = at + pat.len();
                if let Some(len) = line[start..].find('"') {
                    line.replace_range(start..start + len, "[TIME]");
                }
            }
        }
        if let Some(at) = line.find("http://127.0.0.1:") {
            let rest = &line[at + "http://127.0.0.1:".len()..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            line.replace_range(at..at + "http://127.0.0.1:".len() + digits, "http://[HOST]");
        }
        result.push_str(&line);
        result.push('\n');
    }
    result
}

fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn transcription(model: &str, files: Vec<String>) -> types::TranscriptionRequest {
    types::TranscriptionRequest::builder()
        .model(model)
        .input(types::TranscriptionInput::builder().file_urls(files))
        .parameters(Some(
            types::TranscriptionParameters::builder()
                .language_hints(vec!["en".to_owned()])
                .try_into()
                .expect("parameters"),
        ))
        .try_into()
        .expect("request")
}

fn image_edit(
    base: &str,
    mask: Option<&str>,
    function: &str,
    prompt: &str,
) -> types::ImageSynthesisRequest {
    types::ImageSynthesisRequest::builder()
        .model("wanx2.1-imageedit")
        .input(
            types::ImageSynthesisInput::builder()
                .function(Some(function.to_owned()))
                .prompt(Some(prompt.to_owned()))
                .base_image_url(Some(base.to_owned()))
                .mask_image_url(mask.map(str::to_owned)),
        )
        .try_into()
        .expect("request")
}

fn video(model: &str, input: types::builder::VideoSynthesisInput) -> types::VideoSynthesisRequest {
    types::VideoSynthesisRequest::builder()
        .model(model)
        .input(input)
        .try_into()
        .expect("request")
}

#[tokio::test]
async fn every_submit_carries_its_local_files_as_oss_urls() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let client = client(emulator.base_url(), DEFAULT_API_KEY);
    let dir = Dir::new("submit");
    let (a, b) = (dir.wav("a.wav"), dir.wav("b.wav"));
    let last = dir.0.join("last.png");
    std::fs::copy(CAT, &last).expect("copy");
    let mut out = String::new();
    let mut show = |name: &str, task: &dashscope_oss::task::Task| {
        let body = emulator.task_request(&task.id).expect("submitted");
        out.push_str(&format!("== {name}\n{}\n", pretty(&body)));
    };

    let t = client
        .submit_transcription(&transcription(
            "paraformer-v2",
            vec![
                s(&a),
                format!("file://{}", s(&b)),
                "https://example.com/c.wav".to_owned(),
            ],
        ))
        .await
        .expect("transcription");
    assert_eq!(t.state, TaskState::Pending);
    show("transcription (paraformer-v2)", &t);
    let filetrans: types::TranscriptionRequest = types::TranscriptionRequest::builder()
        .model("qwen3-asr-flash-filetrans")
        .input(types::TranscriptionInput::builder().file_url(Some(s(&a))))
        .try_into()
        .expect("request");
    show(
        "transcription (qwen3-asr-flash-filetrans)",
        &client
            .submit_transcription(&filetrans)
            .await
            .expect("filetrans"),
    );
    let t2i: types::ImageSynthesisRequest = types::ImageSynthesisRequest::builder()
        .model("wanx2.1-t2i-turbo")
        .input(
            types::ImageSynthesisInput::builder()
                .prompt(Some("a cat".to_owned()))
                .ref_img(Some(CAT.to_owned())),
        )
        .parameters(Some(
            types::ImageSynthesisParameters::builder()
                .n(Some(2))
                .try_into()
                .expect("parameters"),
        ))
        .try_into()
        .expect("request");
    show(
        "text to image",
        &client.submit_image_synthesis(&t2i).await.expect("t2i"),
    );
    show(
        "image edit",
        &client
            .submit_image_edit(&image_edit(
                CAT,
                Some(CAT),
                "description_edit_with_mask",
                "orange",
            ))
            .await
            .expect("edit"),
    );
    show(
        "image to video",
        &client
            .submit_video_synthesis(&video(
                "wan2.2-i2v-flash",
                types::VideoSynthesisInput::builder()
                    .prompt(Some("it turns".to_owned()))
                    .img_url(Some(CAT.to_owned())),
            ))
            .await
            .expect("i2v"),
    );
    show(
        "first and last frame",
        &client
            .submit_video_synthesis(&video(
                "wan2.2-kf2v-flash",
                types::VideoSynthesisInput::builder()
                    .prompt(Some("it jumps".to_owned()))
                    .first_frame_url(Some(CAT.to_owned()))
                    .last_frame_url(Some(format!("file://{}", s(&last)))),
            ))
            .await
            .expect("kf2v"),
    );
    // One credential per model, for all of a request's files.
    let stats = emulator.stats();
    assert_eq!(stats.policy_requests, 6);
    assert_eq!(stats.tasks_submitted, 6);
    insta::assert_snapshot!(redact(&out));
}

#[tokio::test]
async fn every_end_of_a_task_is_typed() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let client = client(emulator.base_url(), DEFAULT_API_KEY);
    let dir = Dir::new("ends");
    let voice = dir.wav("voice.wav");
    let mut out = String::new();
    let mut seen: Vec<String> = Vec::new();

    // SUCCEEDED, with one file of three failed: each file its own result or error.
    let task = client
        .submit_transcription(&transcription(
            "paraformer-v2",
            vec![
                s(&voice),
                CAT.to_owned(),
                "https://example.com/c.wav".to_owned(),
            ],
        ))
        .await
        .expect("submit");
    let states = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = states.clone();
    let done = client
        .wait_task(
            &task.id,
            &fast().on_change(move |r| log.lock().expect("log").push(r.state().to_string())),
        )
        .await
        .expect("succeeded");
    seen.extend(states.lock().expect("log").iter().cloned());
    out.push_str(&format!("== SUCCEEDED, partly\n{}\n", pretty(&done)));
    for file in client.transcriptions(&done).await {
        match file.result {
            Ok(t) => out.push_str(&format!("  {}: ok: {}\n", file.file_url, t.text())),
            Err(e) => out.push_str(&format!("  {}: error: {e}\n", file.file_url)),
        }
    }
    assert_eq!(
        seen,
        ["PENDING", "RUNNING", "SUCCEEDED"],
        "every change observed"
    );

    // FAILED at HTTP 200.
    let failing = image_edit(
        CAT,
        None,
        "description_edit",
        &format!("please {FAIL_TASK_TEXT}"),
    );
    let task = client.submit_image_edit(&failing).await.expect("submit");
    let err = client
        .wait_task(&task.id, &fast())
        .await
        .expect_err("failed");
    let Error::TaskFailed { task_id, error } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(task_id, &task.id);
    assert_eq!(
        (error.status(), error.code()),
        (200, Some("InvalidParameter"))
    );
    assert!(error.request_id().is_some());
    let answer = client.get_task(&task.id).await.expect("query");
    out.push_str(&format!("== FAILED\n{}\n-> {err}\n", pretty(&answer)));

    // CANCELED: cancelled while pending.
    let task = client
        .submit_image_edit(&image_edit(CAT, None, "stylization_all", "a sketch"))
        .await
        .expect("submit");
    client
        .cancel_task(&task.id)
        .await
        .expect("cancel while pending");
    let err = client
        .wait_task(&task.id, &fast())
        .await
        .expect_err("cancelled");
    assert!(matches!(err, Error::TaskCanceled { .. }), "{err:?}");
    let answer = client.get_task(&task.id).await.expect("query");
    out.push_str(&format!("== CANCELED\n{}\n-> {err}\n", pretty(&answer)));

    // UNKNOWN: a wrong id, another account's, an expired one.
    let err = client
        .wait_task("0000-not-a-task", &fast())
        .await
        .expect_err("unknown");
    assert!(matches!(err, Error::TaskUnknown { .. }), "{err:?}");
    let answer = client.get_task("0000-not-a-task").await.expect("query");
    out.push_str(&format!("== UNKNOWN\n{}\n-> {err}\n", pretty(&answer)));

    let video_task = client
        .submit_video_synthesis(&video(
            "wan2.2-kf2v-flash",
            types::VideoSynthesisInput::builder().first_frame_url(Some(CAT.to_owned())),
        ))
        .await
        .expect("submit");
    emulator.advance_clock(Duration::from_secs(24 * 3600));
    let err = client
        .wait_task(&video_task.id, &fast())
        .await
        .expect_err("expired");
    assert!(matches!(err, Error::TaskUnknown { .. }), "{err:?}");
    out.push_str(&format!(
        "== UNKNOWN after 24 hours\n-> {}\n",
        err.to_string().replace(&video_task.id, "[ID]")
    ));
    insta::assert_snapshot!(redact(&out));
    let stats = emulator.stats();
    assert_eq!(stats.task_queries_throttled, 0);
}

#[tokio::test]
async fn another_account_sees_unknown_and_a_wait_can_time_out() {
    let emulator = Emulator::start(
        EmulatorConfig {
            task_steps: TaskSteps::Clock {
                pending: Duration::from_secs(3600),
                running: Duration::from_secs(3600),
            },
            ..EmulatorConfig::default()
        }
        .account("other", &["sk-other-account"]),
    )
    .await
    .expect("emulator");
    let mine = client(emulator.base_url(), DEFAULT_API_KEY);
    let theirs = client(emulator.base_url(), "sk-other-account");
    let task = mine
        .submit_image_edit(&image_edit(
            "https://example.com/a.png",
            None,
            "colorization",
            "x",
        ))
        .await
        .expect("submit");
    let err = theirs
        .wait_task(&task.id, &fast())
        .await
        .expect_err("foreign");
    assert!(matches!(err, Error::TaskUnknown { .. }), "{err:?}");
    let err = mine
        .wait_task(&task.id, &fast().timeout(Duration::from_millis(50)))
        .await
        .expect_err("timeout");
    match &err {
        Error::WaitTimeout { status, .. } => assert_eq!(status, "PENDING"),
        other => panic!("{other:?}"),
    }
    // Only from PENDING: once running, cancelling is an UnsupportedOperation.
    emulator.advance_clock(Duration::from_secs(3601));
    let err = mine.cancel_task(&task.id).await.expect_err("running");
    assert!(matches!(err, Error::UnsupportedOperation(_)), "{err:?}");
    assert_eq!(err.code(), Some("UnsupportedOperation"));
    assert_eq!(
        mine.get_task(&task.id).await.expect("query").state(),
        TaskState::Running
    );
}

#[tokio::test]
async fn results_are_typed_and_downloaded_without_the_key() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let client = client(emulator.base_url(), DEFAULT_API_KEY);
    let dir = Dir::new("results");
    let task = client
        .submit_transcription(&transcription("fun-asr", vec![s(&dir.wav("talk.wav"))]))
        .await
        .expect("submit");
    let done = client.wait_task(&task.id, &fast()).await.expect("done");
    let files = client.transcriptions(&done).await;
    assert_eq!(files.len(), 1);
    let transcript = files[0].result.as_ref().expect("transcript");
    let sentence = &transcript.transcripts[0].sentences[0];
    assert_eq!(
        (sentence.begin_time, sentence.end_time),
        (Some(0), Some(1000))
    );
    assert!(
        transcript
            .text()
            .contains("fun-asr received audio/wav, 64 bytes"),
        "{}",
        transcript.text()
    );

    let image = client
        .submit_image_edit(&image_edit(CAT, None, "super_resolution", "sharper"))
        .await
        .expect("submit");
    let done = client.wait_task(&image.id, &fast()).await.expect("done");
    let urls = done.image_urls();
    assert_eq!(urls.len(), 1);
    let png = dir.0.join("out.png");
    let written = client
        .download(urls[0], &png, None)
        .await
        .expect("download");
    assert_eq!(std::fs::read(&png).expect("read"), RESULT_PNG);
    assert_eq!(written, RESULT_PNG.len() as u64);

    let clip = client
        .submit_video_synthesis(&video(
            "wan2.2-kf2v-flash",
            types::VideoSynthesisInput::builder().first_frame_url(Some(CAT.to_owned())),
        ))
        .await
        .expect("submit");
    let done = client.wait_task(&clip.id, &fast()).await.expect("done");
    let mp4 = dir.0.join("out.mp4");
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let progress = seen.clone();
    client
        .download(
            done.video_url().expect("video url"),
            &mp4,
            Some(std::sync::Arc::new(move |t: &dashscope_oss::Transfer| {
                progress.store(t.written, std::sync::atomic::Ordering::Relaxed)
            })),
        )
        .await
        .expect("download");
    assert_eq!(std::fs::read(&mp4).expect("read"), RESULT_MP4);
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::Relaxed),
        RESULT_MP4.len() as u64
    );
    // A result link lasts 24 hours: then the storage refuses it in its own XML, read as
    // such (a typed refusal with its code, not an authentication failure), and no partial
    // file is left.
    emulator.advance_clock(Duration::from_secs(25 * 3600));
    let late = dir.0.join("late.mp4");
    let err = client
        .download(done.video_url().expect("url"), &late, None)
        .await
        .expect_err("expired");
    assert!(matches!(err, Error::LinkExpired(_)), "{err:?}");
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.code(), Some("AccessDenied"));
    assert!(err.request_id().is_some(), "OSS's request id is read");
    assert!(!err.is_retryable());
    assert!(!late.exists());
    // A link whose expiry was moved by hand is refused by its signature.
    let url = done.video_url().expect("url");
    let forged = url.replace("Expires=", "Expires=9");
    let err = client
        .download(&forged, &late, None)
        .await
        .expect_err("forged");
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"), "{err:?}");
}

#[tokio::test]
async fn waits_survive_failing_queries() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let client = client(emulator.base_url(), DEFAULT_API_KEY);
    let task = client
        .submit_image_edit(&image_edit(
            "https://example.com/a.png",
            None,
            "expand",
            "wider",
        ))
        .await
        .expect("submit");
    // 5xx and dropped connections: more than one query's own retries (3 tries).
    emulator.inject(FaultKind::TaskQueryError, 4);
    client
        .wait_task(&task.id, &fast())
        .await
        .expect("survived 5xx");
    let task = client
        .submit_image_edit(&image_edit(
            "https://example.com/a.png",
            None,
            "expand",
            "wider",
        ))
        .await
        .expect("submit");
    emulator.inject(FaultKind::TaskQueryDrop, 4);
    client
        .wait_task(&task.id, &fast())
        .await
        .expect("survived drops");
}

#[tokio::test]
async fn bad_input_is_a_typed_error_before_any_request() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let client = client(emulator.base_url(), DEFAULT_API_KEY);
    let dir = Dir::new("bad");
    let too_many: Vec<String> = (0..101)
        .map(|i| format!("https://example.com/{i}.wav"))
        .collect();
    let cases: Vec<(&str, Result<dashscope_oss::task::Task, Error>)> = vec![
        (
            "101 files",
            client
                .submit_transcription(&transcription("paraformer-v2", too_many))
                .await,
        ),
        (
            "no file",
            client
                .submit_transcription(&transcription("paraformer-v2", vec![]))
                .await,
        ),
        (
            "a directory as a file",
            client
                .submit_transcription(&transcription("paraformer-v2", vec![s(&dir.0)]))
                .await,
        ),
        (
            "a missing file",
            client
                .submit_transcription(&transcription(
                    "paraformer-v2",
                    vec!["no/such/file.wav".to_owned()],
                ))
                .await,
        ),
        (
            "an unknown edit",
            client
                .submit_image_edit(&image_edit(CAT, None, "make_it_pop", "x"))
                .await,
        ),
        (
            "an unknown resolution",
            client
                .submit_video_synthesis(&types::VideoSynthesisRequest {
                    parameters: Some(
                        types::VideoSynthesisParameters::builder()
                            .resolution(Some("999P".to_owned()))
                            .try_into()
                            .expect("parameters"),
                    ),
                    ..video(
                        "wan2.2-i2v-flash",
                        types::VideoSynthesisInput::builder().img_url(Some(CAT.to_owned())),
                    )
                })
                .await,
        ),
        (
            "a bad task id",
            client
                .get_task("../uploads")
                .await
                .map(|_| unreachable_task()),
        ),
    ];
    let mut out = String::new();
    for (name, result) in cases {
        let err = result.expect_err(name);
        let kind = format!("{err:?}");
        let kind = kind.split(['(', ' ', '{']).next().unwrap_or("");
        out.push_str(&format!("{name}: {kind}: {err}\n"));
    }
    let stats = emulator.stats();
    assert_eq!(
        (
            stats.policy_requests,
            stats.uploads_ok,
            stats.tasks_submitted,
            stats.task_queries
        ),
        (0, 0, 0, 0),
        "something was sent"
    );
    insta::assert_snapshot!(out.replace(&s(&dir.0), "[DIR]"));
}

fn unreachable_task() -> dashscope_oss::task::Task {
    panic!("a bad id was accepted")
}

#[tokio::test]
async fn the_headers_on_the_wire_and_a_submit_never_resent() {
    // A canned service that answers every request with a task: what the client sends.
    let server = Server::start(Canned::json(
        200,
        r#"{"request_id":"r-1","output":{"task_id":"t-1","task_status":"PENDING"}}"#,
    ))
    .await;
    let client = client(&server.url, TEST_KEY);
    let oss = "oss://dashscope-instant/x/2026-01-01/y/a.wav";
    client
        .submit_transcription(&transcription("paraformer-v2", vec![oss.to_owned()]))
        .await
        .expect("submit");
    client
        .submit_transcription(&transcription(
            "paraformer-v2",
            vec!["https://example.com/a.wav".to_owned()],
        ))
        .await
        .expect("submit");
    let _ = client.get_task("t-1").await;
    let _ = client.cancel_task("t-1").await;
    let requests = server.requests();
    let headers = |i: usize| {
        (
            requests[i].header("x-dashscope-async"),
            requests[i].header("x-dashscope-ossresourceresolve"),
        )
    };
    assert_eq!(
        headers(0),
        (Some("enable"), Some("enable")),
        "submit with oss://"
    );
    assert_eq!(headers(1), (Some("enable"), None), "submit without oss://");
    assert_eq!(headers(2), (None, None), "query");
    assert_eq!(headers(3), (None, None), "cancel");
    assert_eq!(requests[2].target, "/api/v1/tasks/t-1");
    assert_eq!(requests[3].target, "/api/v1/tasks/t-1/cancel");

    // A 500 may have created the task: sent once, and the error says so.
    let failing = Server::start(Canned::json(
        500,
        r#"{"code":"InternalError","message":"oops","request_id":"r-2"}"#,
    ))
    .await;
    let err = client_for(&failing)
        .submit_transcription(&transcription("paraformer-v2", vec![oss.to_owned()]))
        .await
        .expect_err("500");
    assert!(
        matches!(&err, Error::MayHaveSubmitted(inner) if matches!(**inner, Error::ServerError(_))),
        "{err:?}"
    );
    assert!(err.to_string().contains("the task may exist"), "{err}");
    assert_eq!(err.request_id(), Some("r-2"));
    assert_eq!(
        failing.requests().len(),
        1,
        "a submit that may have arrived was resent"
    );
    // A 429 did not create it: retried.
    let throttled = Server::start(Canned::json(
        429,
        r#"{"code":"Throttling","message":"slow down","request_id":"r-3"}"#,
    ))
    .await;
    let err = client_for(&throttled)
        .submit_transcription(&transcription("paraformer-v2", vec![oss.to_owned()]))
        .await
        .expect_err("429");
    assert!(matches!(err, Error::RateLimited(_)), "{err:?}");
    assert_eq!(throttled.requests().len(), 3);
    // Queries are safe to repeat: a 500 is retried.
    let err = client_for(&failing).get_task("t-1").await.expect_err("500");
    assert!(matches!(err, Error::ServerError(_)), "{err:?}");
    assert_eq!(failing.requests().len(), 4);
}

fn client_for(server: &Server) -> Client {
    client(&server.url, TEST_KEY)
}

#[tokio::test]
async fn the_service_refuses_a_submit_without_the_async_header_and_oss_without_its_header() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let client = client(emulator.base_url(), DEFAULT_API_KEY);
    let url = client
        .upload("paraformer-v2", CAT)
        .await
        .expect("upload")
        .url;
    let http = reqwest::Client::new();
    let post = |headers: &[(&str, &str)]| {
        let mut request = http
            .post(format!(
                "{}/api/v1/services/audio/asr/transcription",
                emulator.base_url()
            ))
            .bearer_auth(DEFAULT_API_KEY)
            .json(&serde_json::json!({"model": "paraformer-v2", "input": {"file_urls": [url]}}));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send()
    };
    let sync = post(&[]).await.expect("send");
    assert_eq!(sync.status(), 403);
    let body: serde_json::Value = sync.json().await.expect("json");
    assert_eq!(
        body["message"],
        "current user api does not support synchronous calls"
    );
    let no_oss = post(&[("X-DashScope-Async", "enable")])
        .await
        .expect("send");
    assert_eq!(no_oss.status(), 400);
    let both = post(&[
        ("X-DashScope-Async", "enable"),
        ("X-DashScope-OssResourceResolve", "enable"),
    ])
    .await
    .expect("send");
    assert_eq!(both.status(), 200);
    // The URL is bound to its model: another model's task cannot read it (sent by a client
    // that does not know the URL, so that the service judges it).
    let stranger = self::client(emulator.base_url(), DEFAULT_API_KEY);
    let err = stranger
        .submit_transcription(&transcription("fun-asr", vec![url.clone()]))
        .await
        .expect_err("other model");
    assert!(matches!(err, Error::InvalidUrl(_)), "{err:?}");
    // The client that uploaded it uploads its file again for that model first (#20).
    let uploads = emulator.stats().uploads_ok;
    client
        .submit_transcription(&transcription("fun-asr", vec![url.clone()]))
        .await
        .expect("uploaded again for fun-asr, then submitted");
    assert_eq!(emulator.stats().uploads_ok, uploads + 1);
}

#[tokio::test]
async fn the_service_refuses_the_twenty_first_query_in_a_second() {
    let emulator = Emulator::start(EmulatorConfig {
        // A wide window: the count, not the machine's speed, decides.
        task_rate_window: Duration::from_secs(60),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let r = http
            .get(format!("{}/api/v1/tasks/whatever", emulator.base_url()))
            .bearer_auth(DEFAULT_API_KEY)
            .send()
            .await
            .expect("send");
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 20);
    assert_eq!(statuses[20..], [429; 5]);
    let stats = emulator.stats();
    assert_eq!((stats.task_queries, stats.task_queries_throttled), (25, 5));
}

#[tokio::test]
async fn voice_enrollment_and_embedding_read_local_files_too() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let client = client(emulator.base_url(), DEFAULT_API_KEY);
    let dir = Dir::new("enroll");
    let sample = dir.wav("sample.wav");
    let body: types::VoiceEnrollmentRequest = types::VoiceEnrollmentRequest::builder()
        .model("voice-enrollment")
        .input(
            types::VoiceEnrollmentInput::builder()
                .action("create_voice")
                .target_model(Some("cosyvoice-v2".to_owned()))
                .prefix(Some("demo".to_owned()))
                .url(Some(s(&sample))),
        )
        .try_into()
        .expect("request");
    let enrolled = client
        .call(client.api().create_voice_enrollment().body(body).send())
        .await
        .expect("enrolled");
    let voice = enrolled.output.and_then(|o| o.voice_id).unwrap_or_default();
    assert!(voice.starts_with("cosyvoice-v2-demo-"), "{voice}");
    let embed: types::MultimodalEmbeddingRequest = types::MultimodalEmbeddingRequest::builder()
        .model("multimodal-embedding-v1")
        .input(types::MultimodalEmbeddingInput::builder().contents(vec![
            types::EmbeddingContent::builder()
                .text(Some("a cat".to_owned()))
                .try_into()
                .expect("text"),
            types::EmbeddingContent::builder()
                .image(Some(CAT.to_owned()))
                .try_into()
                .expect("image"),
        ]))
        .try_into()
        .expect("request");
    let embedded = client
        .call(
            client
                .api()
                .create_multimodal_embedding()
                .body(embed)
                .send(),
        )
        .await
        .expect("embedded");
    let vectors = embedded.output.map(|o| o.embeddings).unwrap_or_default();
    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[1].type_.as_deref(), Some("image"));
    let stats = emulator.stats();
    assert_eq!((stats.policy_requests, stats.uploads_ok), (2, 2));
}

#[tokio::test]
async fn the_account_s_tasks_can_be_listed() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let client = client(emulator.base_url(), DEFAULT_API_KEY);
    let mut ids = Vec::new();
    for prompt in ["one", "two", "three"] {
        let task = client
            .submit_image_edit(&image_edit(
                "https://example.com/a.png",
                None,
                "expand",
                prompt,
            ))
            .await
            .expect("submit");
        ids.push(task.id);
    }
    client.cancel_task(&ids[1]).await.expect("cancel");
    let page = client
        .list_tasks(&TaskFilter::default().page(1, 2))
        .await
        .expect("list");
    assert_eq!((page.total, page.total_page), (Some(3), Some(2)));
    let listed: Vec<&str> = page
        .tasks()
        .iter()
        .filter_map(|t| t.task_id.as_deref())
        .collect();
    assert_eq!(listed, [ids[0].as_str(), ids[1].as_str()]);
    let cancelled = client
        .list_tasks(&TaskFilter::default().status(TaskState::Canceled))
        .await
        .expect("list");
    // The raw generated operation, through `Client::call`, lists the same.
    let raw = client
        .call(client.api().list_tasks().status("CANCELED").send())
        .await
        .expect("list");
    let ids_of = |page: &types::TaskListResponse| -> Vec<Option<String>> {
        page.tasks().iter().map(|t| t.task_id.clone()).collect()
    };
    assert_eq!(ids_of(&raw), ids_of(&cancelled));
    let listed: Vec<&str> = cancelled
        .tasks()
        .iter()
        .filter_map(|t| t.task_id.as_deref())
        .collect();
    assert_eq!(listed, [ids[1].as_str()]);
    // The Python SDK's reading of the answer (`tasks`) is read the same way.
    let python: types::TaskListResponse = serde_json::from_value(
        serde_json::json!({"tasks": [{"task_id": "t-9", "task_status": "RUNNING"}]}),
    )
    .expect("decode");
    assert_eq!(python.tasks()[0].task_id.as_deref(), Some("t-9"));
}

#[tokio::test]
async fn filetrans_answers_one_result_and_a_task_whose_every_file_failed_fails() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let client = client(emulator.base_url(), DEFAULT_API_KEY);
    let dir = Dir::new("filetrans");
    let one: types::TranscriptionRequest = types::TranscriptionRequest::builder()
        .model("qwen3-asr-flash-filetrans")
        .input(types::TranscriptionInput::builder().file_url(Some(s(&dir.wav("one.wav")))))
        .try_into()
        .expect("request");
    let task = client.submit_transcription(&one).await.expect("submit");
    let done = client.wait_task(&task.id, &fast()).await.expect("done");
    assert!(done.output.results.is_empty() && done.output.result.is_some());
    let files = client.transcriptions(&done).await;
    assert_eq!(files.len(), 1);
    assert!(
        files[0]
            .result
            .as_ref()
            .expect("transcript")
            .text()
            .contains("qwen3-asr-flash-filetrans received audio/wav")
    );

    let none = client
        .submit_transcription(&transcription("paraformer-v2", vec![CAT.to_owned()]))
        .await
        .expect("submit");
    let err = client
        .wait_task(&none.id, &fast())
        .await
        .expect_err("nothing decodable");
    assert!(
        matches!(&err, Error::TaskFailed { error, .. } if error.code() == Some("InvalidFile.DecodeFailed")),
        "{err:?}"
    );
}

#[tokio::test]
async fn results_refuse_an_api_key_and_the_client_never_sends_one() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let client = client(emulator.base_url(), DEFAULT_API_KEY);
    let task = client
        .submit_image_edit(&image_edit(
            "https://example.com/a.png",
            None,
            "expand",
            "wider",
        ))
        .await
        .expect("submit");
    let done = client.wait_task(&task.id, &fast()).await.expect("done");
    let url = done.image_urls()[0].to_owned();
    let with_key = reqwest::Client::new()
        .get(&url)
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .expect("send");
    assert_eq!(with_key.status(), 400);
    let dir = Dir::new("nokey");
    client
        .download(&url, &dir.0.join("x.png"), None)
        .await
        .expect("downloaded without the key");
}

#[tokio::test]
async fn a_submit_answer_lost_after_200_says_the_task_exists() {
    let server = Server::start(Canned::raw(
        200,
        "application/json",
        "{\"request_id\": \"r-4\", \"outp",
    ))
    .await;
    let err = client_for(&server)
        .submit_transcription(&transcription(
            "paraformer-v2",
            vec!["https://example.com/a.wav".to_owned()],
        ))
        .await
        .expect_err("unreadable answer");
    assert!(
        matches!(&err, Error::MayHaveSubmitted(inner) if matches!(**inner, Error::Decode(_))),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(200));
    assert_eq!(server.requests().len(), 1);

    // The same submit as a raw generated operation through `Client::call`: the same rule.
    let client = client_for(&server);
    let raw = client
        .call(
            client
                .api()
                .create_transcription()
                .body(transcription(
                    "paraformer-v2",
                    vec!["https://example.com/a.wav".to_owned()],
                ))
                .send(),
        )
        .await
        .expect_err("unreadable answer");
    assert!(
        matches!(&raw, Error::MayHaveSubmitted(inner) if matches!(**inner, Error::Decode(_))),
        "{raw:?}"
    );
    assert_eq!(server.requests().len(), 2, "sent once more, never resent");
}

#[tokio::test]
async fn a_signed_link_of_a_forgotten_task_is_no_such_key() {
    // Links that outlive the task: the storage checks the signature and expiry, then finds no
    // object (404 `NoSuchKey`, in OSS's XML).
    let emulator = Emulator::start(EmulatorConfig {
        task_steps: TaskSteps::Polls(1),
        result_lifetime: Duration::from_secs(72 * 3600),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let client = client(emulator.base_url(), DEFAULT_API_KEY);
    let task = client
        .submit_image_edit(&image_edit(CAT, None, "super_resolution", "sharper"))
        .await
        .expect("submit");
    let done = client.wait_task(&task.id, &fast()).await.expect("done");
    let url = done.image_urls()[0].to_owned();
    emulator.advance_clock(Duration::from_secs(25 * 3600));
    let dir = Dir::new("forgotten");
    let err = client
        .download(&url, &dir.0.join("x.png"), None)
        .await
        .expect_err("forgotten");
    assert_eq!(err.status(), Some(404), "{err:?}");
    assert_eq!(err.code(), Some("NoSuchKey"), "{err:?}");
}
