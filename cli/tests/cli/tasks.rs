//! The task commands of the CLI: transcribe, image edit, video, task get|wait|cancel, `--async`,
//! exit codes 8 (a task that did not succeed) and 9 (gave up waiting).

use super::support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use dashscope_emulator::{
    DEFAULT_API_KEY, Emulator, EmulatorConfig, FAIL_TASK_TEXT, RESULT_MP4, RESULT_PNG, TaskSteps,
};

const CAT: &str = "tests/fixtures/cat.png";
const HELLO: &str = "tests/fixtures/hello.wav";

fn run(emulator: Option<&Emulator>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dashscope"));
    command
        .args(args)
        .env("XDG_CACHE_HOME", support::fresh_cache_home())
        .env_remove("RUST_LOG")
        .env_remove("DASHSCOPE_HTTP_BASE_URL");
    match emulator {
        Some(e) => command
            .env("DASHSCOPE_API_KEY", DEFAULT_API_KEY)
            .env("DASHSCOPE_BASE_URL", e.base_url()),
        None => command
            .env_remove("DASHSCOPE_API_KEY")
            .env_remove("DASHSCOPE_BASE_URL"),
    };
    let out = command.output().expect("run dashscope");
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

async fn emulator(steps: TaskSteps) -> Emulator {
    Emulator::start(EmulatorConfig {
        task_steps: steps,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator")
}

#[test]
fn transcribe_prints_the_transcript_with_the_built_in_emulator() {
    let out = run(
        None,
        &[
            "--emulator",
            "transcribe",
            "-m",
            "paraformer-v2",
            "--poll-interval",
            "0.05",
            HELLO,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "[DashScope emulator, no model ran] paraformer-v2 received audio/wav, 3244 bytes"
        ),
        "{}",
        show(&out)
    );
    // Not a terminal: the state changes are lines on stderr.
    let stderr = text(&out.stderr);
    for state in ["PENDING", "RUNNING", "SUCCEEDED"] {
        assert!(stderr.contains(&format!(": {state}\n")), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_transcription_prints_what_succeeded_and_exits_1() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let out = run(
        Some(&emulator),
        &[
            "transcribe",
            "-m",
            "fun-asr",
            "--poll-interval",
            "0.01",
            HELLO,
            CAT,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("fun-asr received audio/wav"), "{stdout}");
    assert!(
        stdout.contains("/hello.wav\n"),
        "each file headed by its URL: {stdout}"
    );
    assert!(
        text(&out.stderr).contains("InvalidFile.DecodeFailed"),
        "{}",
        show(&out)
    );
    // --json: every file, its transcript or its error.
    let out = run(
        Some(&emulator),
        &[
            "transcribe",
            "-m",
            "fun-asr",
            "--json",
            "--poll-interval",
            "0.01",
            HELLO,
            CAT,
        ],
    );
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let files = all["files"].as_array().expect("files");
    assert_eq!(files.len(), 2);
    assert!(files[0]["transcript"]["transcripts"][0]["sentences"][0]["end_time"].is_number());
    assert_eq!(files[1]["error"]["code"], "InvalidFile.DecodeFailed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_edit_and_video_write_their_results() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let dir = std::env::temp_dir().join(format!("dashscope-oss-cli-tasks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let png = dir.join("edited.png");
    let out = run(
        Some(&emulator),
        &[
            "image",
            "edit",
            "--function",
            "description_edit_with_mask",
            "--base-image",
            CAT,
            "--mask",
            CAT,
            "-n",
            "2",
            "-o",
            &png.to_string_lossy(),
            "--poll-interval",
            "0.01",
            "an orange cat",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    for n in [1, 2] {
        let path = dir.join(format!("edited-{n}.png"));
        assert_eq!(std::fs::read(&path).expect("result"), RESULT_PNG);
        assert!(text(&out.stdout).contains(&*path.to_string_lossy()));
    }
    let mp4 = dir.join("clip.mp4");
    let out = run(
        Some(&emulator),
        &[
            "video",
            "-m",
            "wan2.2-kf2v-flash",
            "--first-frame",
            CAT,
            "--last-frame",
            CAT,
            "--resolution",
            "480P",
            "-o",
            &mp4.to_string_lossy(),
            "--poll-interval",
            "0.01",
            "it jumps",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(std::fs::read(&mp4).expect("result"), RESULT_MP4);
    // Without -o: the URL, and a reminder that it lasts 24 hours.
    let out = run(
        Some(&emulator),
        &[
            "video",
            "-m",
            "wan2.2-i2v-flash",
            "--image",
            CAT,
            "--poll-interval",
            "0.01",
            "it turns",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        text(&out.stdout).trim().contains("/0.mp4?Expires="),
        "{}",
        show(&out)
    );
    assert!(text(&out.stderr).contains("24 hours"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_result_link_is_a_file_error_not_authentication() {
    // Links that expire as they are given: the download is refused by the storage (403
    // AccessDenied "Request has expired.", in its XML), which is no authentication failure.
    let emulator = Emulator::start(EmulatorConfig {
        task_steps: TaskSteps::Polls(1),
        result_lifetime: Duration::ZERO,
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let dir = std::env::temp_dir().join(format!("dashscope-oss-cli-late-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let png = dir.join("late.png");
    let out = run(
        Some(&emulator),
        &[
            "image",
            "edit",
            "--function",
            "super_resolution",
            "--base-image",
            CAT,
            "-o",
            &png.to_string_lossy(),
            "--poll-interval",
            "0.01",
            "sharper",
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("link expired") && stderr.contains("AccessDenied"),
        "{stderr}"
    );
    assert!(stderr.contains("run the task again"), "{stderr}");
    assert!(!png.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_then_task_get_wait_and_cancel() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let submit = |prompt: &str| {
        let out = run(
            Some(&emulator),
            &[
                "image",
                "edit",
                "--function",
                "colorization",
                "--base-image",
                CAT,
                "--async",
                prompt,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        text(&out.stdout).trim().to_owned()
    };
    let id = submit("in colour");
    assert_eq!(id.len(), 36, "only the task id: {id}");
    let got = run(Some(&emulator), &["task", "get", &id]);
    assert_eq!(text(&got.stdout), "PENDING\n", "{}", show(&got));
    let waited = run(
        Some(&emulator),
        &["task", "wait", &id, "--poll-interval", "0.01"],
    );
    assert_eq!(waited.status.code(), Some(0), "{}", show(&waited));
    let lines: Vec<String> = text(&waited.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "SUCCEEDED");
    assert!(lines[1].contains("/0.png?Expires="), "{lines:?}");

    let pending = submit("another");
    let cancelled = run(Some(&emulator), &["task", "cancel", &pending]);
    assert_eq!(cancelled.status.code(), Some(0), "{}", show(&cancelled));
    // Cancelling it again is no error: the task is cancelled, as asked.
    let again = run(Some(&emulator), &["task", "cancel", &pending]);
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    // A task that ran cannot be cancelled: refused, with its code and a hint.
    let late = run(Some(&emulator), &["task", "cancel", &id]);
    assert_eq!(late.status.code(), Some(7), "{}", show(&late));
    assert!(
        text(&late.stderr).contains("UnsupportedOperation"),
        "{}",
        show(&late)
    );
    assert!(
        text(&late.stderr).contains("only a PENDING task"),
        "{}",
        show(&late)
    );
    let ended = run(
        Some(&emulator),
        &["task", "wait", &pending, "--poll-interval", "0.01"],
    );
    assert_eq!(ended.status.code(), Some(8), "{}", show(&ended));
    assert!(text(&ended.stderr).contains("was cancelled"));
    let unknown = run(
        Some(&emulator),
        &["task", "wait", "no-such-task", "--poll-interval", "0.01"],
    );
    assert_eq!(unknown.status.code(), Some(8), "{}", show(&unknown));

    // Both tasks are listed, one line each (id, state, submit time); the filter takes one.
    let listed = run(Some(&emulator), &["task", "list"]);
    assert_eq!(listed.status.code(), Some(0), "{}", show(&listed));
    let rows: Vec<Vec<String>> = text(&listed.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    let states: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(
        states,
        [(id.as_str(), "SUCCEEDED"), (pending.as_str(), "CANCELED")],
        "{}",
        show(&listed)
    );
    assert!(
        rows.iter().all(|r| r.len() == 3 && !r[2].is_empty()),
        "{rows:?}"
    );
    let cancelled = run(Some(&emulator), &["task", "list", "--status", "canceled"]);
    assert_eq!(
        text(&cancelled.stdout).lines().count(),
        1,
        "{}",
        show(&cancelled)
    );
    assert!(text(&cancelled.stdout).starts_with(&pending));
    let json = run(Some(&emulator), &["task", "list", "--json"]);
    let page: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(page["total"], 2, "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_exits_8_and_a_timeout_9() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let prompt = format!("make it {FAIL_TASK_TEXT}");
    let out = run(
        Some(&emulator),
        &[
            "image",
            "edit",
            "--function",
            "expand",
            "--base-image",
            CAT,
            "--poll-interval",
            "0.01",
            &prompt,
        ],
    );
    assert_eq!(out.status.code(), Some(8), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("failed") && stderr.contains("InvalidParameter"),
        "{stderr}"
    );
    assert!(stderr.contains("request id"), "{stderr}");

    let slow = emulator_slow().await;
    let out = run(
        Some(&slow),
        &[
            "video",
            "-m",
            "wan2.2-i2v-flash",
            "--image",
            "https://example.com/a.png",
            "--poll-interval",
            "0.01",
            "--timeout",
            "0.1",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(9), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("still PENDING"),
        "{}",
        show(&out)
    );
}

async fn emulator_slow() -> Emulator {
    emulator(TaskSteps::Clock {
        pending: Duration::from_secs(3600),
        running: Duration::from_secs(3600),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_before_any_request() {
    let emulator = emulator(TaskSteps::Polls(1)).await;
    let dir = Path::new("tests/fixtures");
    let out = run(
        Some(&emulator),
        &["transcribe", "-m", "paraformer-v2", &dir.to_string_lossy()],
    );
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    let out = run(
        Some(&emulator),
        &[
            "image",
            "edit",
            "--function",
            "nonsense",
            "--base-image",
            CAT,
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let out = run(Some(&emulator), &["video", "-m", "wan2.2-kf2v-flash", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stats = emulator.stats();
    assert_eq!((stats.policy_requests, stats.tasks_submitted), (0, 0));
}
