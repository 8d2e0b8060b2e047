//! `dashscope gateway` as a process, against an emulator in this test, with raw HTTP in the
//! shapes OpenAI's Python SDK sends (JSON chat bodies, httpx's multipart form for
//! `audio.transcriptions.create`): local files, streams passed on as they arrive, a client
//! that goes away, transcriptions, the security rules, and bad input answered in the client's
//! shape with nothing left behind.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, TaskSteps};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../../tests/support/mod.rs"]
mod support;

const CAT: &str = "tests/fixtures/cat.png";
const WAV: &str = "tests/fixtures/hello.wav";
const TOKEN: &str = "gw-token-0123456789abcdef";

/// A running `dashscope gateway`; SIGTERM and wait when dropped.
struct Gateway {
    /// `http://127.0.0.1:PORT` (without `/v1`).
    base: String,
    /// Its `$TMPDIR`, which holds its spool directory and nothing else.
    tmp: PathBuf,
    child: Child,
}

impl Gateway {
    fn spawn(args: &[&str]) -> Self {
        Self::try_spawn(args).unwrap_or_else(|(code, stderr)| {
            panic!("the gateway did not start ({code:?}): {stderr}")
        })
    }

    /// Starts it; its exit code and stderr when it prints no URL.
    fn try_spawn(args: &[&str]) -> Result<Self, (Option<i32>, String)> {
        Self::start(args, None)
    }

    /// Starts it logging at `trace` into `log`.
    fn spawn_logged(args: &[&str], log: &std::path::Path) -> Self {
        Self::start(args, Some(log)).unwrap_or_else(|(code, stderr)| {
            panic!("the gateway did not start ({code:?}): {stderr}")
        })
    }

    fn start(args: &[&str], log: Option<&std::path::Path>) -> Result<Self, (Option<i32>, String)> {
        let tmp = support::fresh_cache_home().join("tmp");
        std::fs::create_dir_all(&tmp).expect("a TMPDIR");
        let mut command = Command::new(env!("CARGO_BIN_EXE_dashscope"));
        command
            .arg("gateway")
            .args(args)
            .env_remove("DASHSCOPE_API_KEY")
            .env_remove("DASHSCOPE_GATEWAY_TOKEN")
            .env_remove("RUST_LOG")
            .env_remove("DASHSCOPE_BASE_URL")
            .env_remove("DASHSCOPE_HTTP_BASE_URL")
            .env_remove("DASHSCOPE_WORKSPACE_ID")
            .env_remove("DASHSCOPE_API_REGION")
            .env("TMPDIR", &tmp)
            .env("XDG_CACHE_HOME", support::fresh_cache_home())
            .stdout(Stdio::piped())
            .stderr(match log {
                Some(path) => Stdio::from(std::fs::File::create(path).expect("a log file")),
                None => Stdio::piped(),
            });
        if log.is_some() {
            command.env("RUST_LOG", "trace");
        }
        let mut child = command.spawn().expect("run dashscope gateway");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.is_empty() {
            let status = child.wait().expect("wait");
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            return Err((status.code(), stderr));
        }
        // Its stderr is not read from here on: a pipe nobody reads could fill and stall it.
        drop(child.stderr.take());
        let url = line
            .trim()
            .strip_prefix("OPENAI_BASE_URL=")
            .unwrap_or_else(|| panic!("the first line is not OPENAI_BASE_URL=…: {line:?}"));
        let base = url.strip_suffix("/v1").expect("…/v1").to_owned();
        Ok(Self { base, tmp, child })
    }

    fn v1(&self, path: &str) -> String {
        format!("{}/v1{path}", self.base)
    }

    /// What is in its spool directory: the names of the uploads it still keeps.
    fn spooled(&self) -> Vec<String> {
        let spools: Vec<PathBuf> = std::fs::read_dir(&self.tmp)
            .expect("read TMPDIR")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(spools.len(), 1, "one spool directory: {spools:?}");
        std::fs::read_dir(&spools[0])
            .expect("read the spool")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

async fn emulator(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.expect("start the emulator")
}

/// A directory of files clients may name, with the fixtures in it.
fn files_dir() -> PathBuf {
    let dir = support::fresh_cache_home().join("files");
    std::fs::create_dir_all(&dir).expect("files dir");
    std::fs::copy(CAT, dir.join("cat.png")).expect("copy cat");
    std::fs::copy(WAV, dir.join("hello.wav")).expect("copy wav");
    dir
}

fn http() -> reqwest::Client {
    dashscope_oss::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// A chat body as OpenAI's SDK sends it: an image part and a text part.
fn chat_body(image: &str, stream: bool) -> Value {
    json!({
        "model": "qwen-vl-plus",
        "stream": stream,
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": image}},
            {"type": "text", "text": "What is in this picture?"},
        ]}],
    })
}

async fn post_chat(gateway: &Gateway, key: &str, body: &Value) -> (u16, Value) {
    let response = http()
        .post(gateway.v1("/chat/completions"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("user-agent", "OpenAI/Python 1.0")
        .body(body.to_string())
        .send()
        .await
        .expect("chat");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json answer"))
}

fn answer_text(answer: &Value) -> &str {
    answer
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no answer text: {answer}"))
}

/// httpx's multipart form, as `audio.transcriptions.create(model=…, file=…)` sends it.
fn form(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "a8f4b2c0d1e9f7a6b5c4d3e2f1a0b9c8".to_owned();
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn transcribe(gateway: &Gateway, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    http()
        .post(gateway.v1("/audio/transcriptions"))
        .bearer_auth(DEFAULT_API_KEY)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("transcription")
}

/// OpenAI's error shape, with the code.
fn openai_error(answer: &Value) -> (&str, &str, &str) {
    let field = |name: &str| {
        answer
            .pointer(&format!("/error/{name}"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no error.{name}: {answer}"))
    };
    (field("type"), field("code"), field("message"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_with_a_local_path_and_a_file_uri_uploads_and_sends_the_header() {
    let emulator = emulator(EmulatorConfig::default()).await;
    let files = files_dir();
    let gateway = Gateway::spawn(&[
        "--base-url",
        emulator.base_url(),
        "--files",
        files.to_str().expect("utf-8"),
    ]);
    let path = files.join("cat.png").display().to_string();
    for image in [path.clone(), format!("file://{path}")] {
        let (status, answer) =
            post_chat(&gateway, DEFAULT_API_KEY, &chat_body(&image, false)).await;
        assert_eq!(status, 200, "{answer}");
        let text = answer_text(&answer);
        assert!(text.contains("image/png, 367 bytes"), "{text}");
        assert!(text.contains("oss://dashscope-instant/"), "{text}");
    }
    let stats = emulator.stats();
    assert_eq!(stats.uploads_ok, 1, "the second from the upload cache");
    assert_eq!(stats.chat_requests, 2);
    assert_eq!(stats.chat_requests_with_resolve_header, 2);
    // A text-only chat carries no header; the list of models comes through.
    let text_only = json!({"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]});
    let (status, answer) = post_chat(&gateway, DEFAULT_API_KEY, &text_only).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(emulator.stats().chat_requests_with_resolve_header, 2);
    let models: Value = http()
        .get(gateway.v1("/models"))
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .expect("models")
        .json()
        .await
        .expect("json");
    assert_eq!(models["object"], "list");
    assert!(
        models["data"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["id"] == "paraformer-v2")),
        "{models}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_12_mib_data_uri_is_uploaded_instead_of_refused() {
    use base64::Engine;
    let emulator = emulator(EmulatorConfig::default()).await;
    let gateway = Gateway::spawn(&["--base-url", emulator.base_url()]);
    // A PNG signature, then 12 MiB: over the service's 10 MiB per data: URI.
    let mut png = std::fs::read(CAT).expect("cat");
    png.resize(12 * 1024 * 1024, 0);
    let uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&png)
    );
    let (status, answer) = post_chat(&gateway, DEFAULT_API_KEY, &chat_body(&uri, false)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer_text(&answer).contains("oss://"), "{answer}");
    let stats = emulator.stats();
    assert_eq!(stats.uploads_ok, 1);
    assert_eq!(stats.chat_requests_with_resolve_header, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_arrives_before_the_upstream_ends_and_a_client_that_leaves_cancels_it() {
    // An hour between events: the stream cannot end while the test runs, so its first chunk
    // through the gateway proves the gateway did not wait for the last.
    let emulator = emulator(EmulatorConfig {
        stream_pace: Duration::from_secs(3600),
        ..EmulatorConfig::default()
    })
    .await;
    let files = files_dir();
    let gateway = Gateway::spawn(&[
        "--base-url",
        emulator.base_url(),
        "--files",
        files.to_str().expect("utf-8"),
    ]);
    let image = files.join("cat.png").display().to_string();
    let response = http()
        .post(gateway.v1("/chat/completions"))
        .bearer_auth(DEFAULT_API_KEY)
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(chat_body(&image, true).to_string())
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut body = response.bytes_stream();
    let first = body.next().await.expect("a first chunk").expect("bytes");
    let first = String::from_utf8_lossy(&first);
    assert!(first.starts_with("data: {"), "{first}");
    assert!(first.contains("chat.completion.chunk"), "{first}");
    let stats = emulator.stats();
    assert_eq!(stats.streams_finished, 0, "the upstream has not ended");
    assert_eq!(stats.chat_requests_with_resolve_header, 1);
    // The client goes away: the gateway drops the upstream call.
    drop(body);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while emulator.stats().streams_abandoned == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upstream stream was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(emulator.stats().streams_finished, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_transcription_answers_in_every_openai_shape() {
    let emulator = emulator(EmulatorConfig {
        task_steps: TaskSteps::Polls(0),
        ..EmulatorConfig::default()
    })
    .await;
    let gateway = Gateway::spawn(&["--base-url", emulator.base_url()]);
    let wav = std::fs::read(WAV).expect("wav");
    let ask = |format: &'static str| {
        let wav = wav.clone();
        let gateway = &gateway;
        async move {
            let (content_type, body) = form(
                &[("model", "paraformer-v2"), ("response_format", format)],
                Some(("hello.wav", &wav)),
            );
            transcribe(gateway, &content_type, body).await
        }
    };
    let json: Value = ask("json").await.json().await.expect("json");
    let text = json["text"].as_str().unwrap_or_else(|| panic!("{json}"));
    assert!(text.contains("paraformer-v2 received audio/wav"), "{text}");
    assert!(text.contains("oss://"), "{text}");
    let plain = ask("text").await.text().await.expect("text");
    assert_eq!(plain.trim_end(), text);
    let verbose: Value = ask("verbose_json").await.json().await.expect("json");
    assert_eq!(verbose["task"], "transcribe");
    assert_eq!(verbose["text"], text);
    assert_eq!(verbose["duration"], 1.0);
    assert_eq!(verbose["segments"][0]["start"], 0.0);
    assert_eq!(verbose["segments"][0]["end"], 1.0);
    assert_eq!(verbose["segments"][0]["text"], text);
    let srt = ask("srt").await.text().await.expect("srt");
    assert!(
        srt.starts_with("1\n00:00:00,000 --> 00:00:01,000\n"),
        "{srt}"
    );
    // Each went to the storage and then to a task, with the OSS URL.
    let stats = emulator.stats();
    assert_eq!(stats.tasks_submitted, 4);
    assert!(stats.uploads_ok >= 1);
    assert!(gateway.spooled().is_empty(), "{:?}", gateway.spooled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_files_only_under_files_and_none_without() {
    let emulator = emulator(EmulatorConfig::default()).await;
    let files = files_dir();
    let outside = files.parent().expect("a parent").join("secret.png");
    std::fs::copy(CAT, &outside).expect("copy");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, files.join("link.png")).expect("symlink");
    let gateway = Gateway::spawn(&[
        "--base-url",
        emulator.base_url(),
        "--files",
        files.to_str().expect("utf-8"),
    ]);
    let escape = format!("{}/../secret.png", files.display());
    for image in [
        outside.display().to_string(),
        format!("file://{}", outside.display()),
        escape,
        files.join("link.png").display().to_string(),
        "/proc/self/environ".to_owned(),
        "/etc/passwd".to_owned(),
    ] {
        let (status, answer) =
            post_chat(&gateway, DEFAULT_API_KEY, &chat_body(&image, false)).await;
        assert_eq!(status, 400, "{image}: {answer}");
        let (kind, code, message) = openai_error(&answer);
        assert_eq!(
            (kind, code),
            ("invalid_request_error", "invalid_file"),
            "{image}"
        );
        assert!(
            message.contains("not under a directory admitted")
                || message.contains("never uploaded"),
            "{image}: {message}"
        );
        assert!(message.contains("--files"), "{image}: {message}");
    }
    let stats = emulator.stats();
    assert_eq!((stats.uploads_ok, stats.chat_requests), (0, 0));

    // Without --files, no local file at all, on either shape of path.
    let closed = Gateway::spawn(&["--base-url", emulator.base_url()]);
    let (status, answer) = post_chat(
        &closed,
        DEFAULT_API_KEY,
        &chat_body(&files.join("cat.png").display().to_string(), false),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(openai_error(&answer).2.contains("--files"), "{answer}");
    let native = http()
        .post(format!(
            "{}/api/v1/services/aigc/multimodal-generation/generation",
            closed.base
        ))
        .bearer_auth(DEFAULT_API_KEY)
        .header("content-type", "application/json")
        .body(
            json!({"model": "qwen-vl-plus", "input": {"messages": [{"role": "user", "content": [
                {"image": "cat.png"}, {"text": "?"}]}]}})
            .to_string(),
        )
        .send()
        .await
        .expect("native");
    assert_eq!(native.status(), 400);
    let answer: Value = native.json().await.expect("json");
    assert_eq!(answer["code"], "invalid_file", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--files")
    );
    assert_eq!(emulator.stats().uploads_ok, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_paths_gain_local_files_and_answer_in_dashscopes_shape() {
    let emulator = emulator(EmulatorConfig::default()).await;
    let files = files_dir();
    let gateway = Gateway::spawn(&[
        "--base-url",
        emulator.base_url(),
        "--files",
        files.to_str().expect("utf-8"),
    ]);
    let native = |key: &'static str, body: Value| {
        let url = format!(
            "{}/api/v1/services/aigc/multimodal-generation/generation",
            gateway.base
        );
        async move {
            let response = http()
                .post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("native");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json"))
        }
    };
    let body = json!({"model": "qwen-vl-plus", "input": {"messages": [{"role": "user", "content": [
        {"image": files.join("cat.png").display().to_string()}, {"text": "What is this?"}]}]}});
    let (status, answer) = native(DEFAULT_API_KEY, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.to_string().contains("image/png, 367 bytes"),
        "{answer}"
    );
    assert_eq!(emulator.stats().chat_requests_with_resolve_header, 1);
    // A key DashScope does not know: its own code, in its own shape.
    let (status, answer) = native("sk-not-a-key", body).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["code"], "InvalidApiKey", "{answer}");
    assert!(answer["request_id"].is_string(), "{answer}");
    assert!(!answer.to_string().contains("sk-not-a-key"), "{answer}");
    // A task submit with a local file: uploaded, then submitted with its URL.
    let submit: Value = http()
        .post(format!(
            "{}/api/v1/services/audio/asr/transcription",
            gateway.base
        ))
        .bearer_auth(DEFAULT_API_KEY)
        .header("content-type", "application/json")
        .header("x-dashscope-async", "enable")
        .body(
            json!({"model": "paraformer-v2", "input": {"file_urls": [
                files.join("hello.wav").display().to_string()]}})
            .to_string(),
        )
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("json");
    let task_id = submit
        .pointer("/output/task_id")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{submit}"));
    let sent = emulator.task_request(task_id).expect("the task's request");
    let url = sent
        .pointer("/input/file_urls/0")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(url.starts_with("oss://"), "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_when_given_and_a_wrong_one_is_401() {
    let emulator = emulator(EmulatorConfig::default()).await;
    let gateway = Gateway::spawn(&[
        "--base-url",
        emulator.base_url(),
        "--api-key",
        DEFAULT_API_KEY,
        "--token",
        TOKEN,
    ]);
    let text_only = json!({"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]});
    for wrong in ["", "gw-token-0123456789abcdeX", DEFAULT_API_KEY] {
        let (status, answer) = post_chat(&gateway, wrong, &text_only).await;
        assert_eq!(status, 401, "{wrong:?}: {answer}");
        assert_eq!(openai_error(&answer).0, "authentication_error");
        let native = http()
            .get(format!("{}/api/v1/tasks/abc", gateway.base))
            .bearer_auth(wrong)
            .send()
            .await
            .expect("native");
        assert_eq!(native.status(), 401);
        let answer: Value = native.json().await.expect("json");
        assert_eq!(answer["code"], "invalid_token", "{answer}");
    }
    assert_eq!(emulator.stats().chat_requests, 0);
    let (status, answer) = post_chat(&gateway, TOKEN, &text_only).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_only_without_a_token() {
    for listen in ["0.0.0.0", "0.0.0.0:0", "::"] {
        let refused = Gateway::try_spawn(&["--emulator", "--listen", listen]);
        match refused {
            Err((code, stderr)) => {
                assert_eq!(code, Some(2), "{listen}: {stderr}");
                assert!(stderr.contains("token"), "{listen}: {stderr}");
            }
            Ok(_) => panic!("{listen}: started without a token"),
        }
    }
    // With one, it starts (and names a loopback URL for this machine's own scripts).
    let open = Gateway::spawn(&["--emulator", "--listen", "0.0.0.0", "--token", TOKEN]);
    assert!(open.base.starts_with("http://127.0.0.1:"), "{}", open.base);
    let (status, _) = post_chat(
        &open,
        TOKEN,
        &json!({"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200);
    // Without a token, a browser page (Origin) and another host name (DNS rebinding) are
    // refused on loopback too.
    let local = Gateway::spawn(&["--emulator"]);
    let from_page = http()
        .get(local.v1("/models"))
        .header("origin", "https://example.com")
        .send()
        .await
        .expect("models");
    assert_eq!(from_page.status(), 403);
    let port = local.base.rsplit(':').next().unwrap_or_default().to_owned();
    let rebound = http()
        .get(local.v1("/models"))
        .header("host", format!("attacker.example:{port}"))
        .send()
        .await
        .expect("models");
    assert_eq!(rebound.status(), 403);
    let plain = http()
        .get(local.v1("/models"))
        .send()
        .await
        .expect("models");
    assert_eq!(plain.status(), 200);
}

/// Reads one HTTP answer from a raw connection: its status and body.
async fn read_answer(stream: &mut tokio::net::TcpStream) -> (u16, Value) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().expect("status");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "closed mid-answer");
        buf.extend_from_slice(&chunk[..n]);
    }
    (
        status,
        serde_json::from_slice(&buf[head_end..head_end + length]).expect("json"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_clients_shape_and_leaves_nothing_behind() {
    let emulator = emulator(EmulatorConfig {
        task_steps: TaskSteps::Polls(0),
        ..EmulatorConfig::default()
    })
    .await;
    let gateway = Gateway::spawn(&["--base-url", emulator.base_url(), "--max-upload", "1MiB"]);
    let check = |status: u16, answer: &Value, want_status: u16, want_code: &str| {
        assert_eq!(status, want_status, "{answer}");
        assert_eq!(openai_error(answer).1, want_code, "{answer}");
    };

    // A form without a file.
    let (content_type, body) = form(&[("model", "paraformer-v2")], None);
    let response = transcribe(&gateway, &content_type, body).await;
    let status = response.status().as_u16();
    check(
        status,
        &response.json().await.expect("json"),
        400,
        "invalid_request",
    );
    // Not a form at all.
    let response = transcribe(&gateway, "application/json", b"{}".to_vec()).await;
    let status = response.status().as_u16();
    check(
        status,
        &response.json().await.expect("json"),
        400,
        "invalid_request",
    );
    // A form without a model: the file it spooled goes at once.
    let wav = std::fs::read(WAV).expect("wav");
    let (content_type, body) = form(&[], Some(("hello.wav", &wav)));
    let response = transcribe(&gateway, &content_type, body).await;
    let status = response.status().as_u16();
    check(
        status,
        &response.json().await.expect("json"),
        400,
        "invalid_request",
    );
    assert!(gateway.spooled().is_empty(), "{:?}", gateway.spooled());

    // 2 GiB announced: refused from the headers, before a byte of the body is read.
    let address = gateway.base.trim_start_matches("http://").to_owned();
    let mut raw = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {DEFAULT_API_KEY}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        2u64 << 30
    );
    raw.write_all(head.as_bytes()).await.expect("write");
    let (status, answer) = read_answer(&mut raw).await;
    check(status, &answer, 413, "file_too_large");

    // 2 GiB streamed without a length (chunked): refused past the limit, the rest read and
    // dropped so that the client reads the answer; what was spooled is gone.
    let (content_type, preamble) = form(&[("model", "paraformer-v2")], Some(("big.wav", b"")));
    let head_len = preamble.len() - b"\r\n--a8f4b2c0d1e9f7a6b5c4d3e2f1a0b9c8--\r\n".len();
    let opening = bytes::Bytes::from(preamble[..head_len].to_vec());
    let zeros = bytes::Bytes::from(vec![0u8; 1024 * 1024]);
    let chunks = std::iter::once(opening).chain(std::iter::repeat_n(zeros, 2048));
    let stream = futures_util::stream::iter(chunks.map(Ok::<_, std::io::Error>));
    let response = http()
        .post(gateway.v1("/audio/transcriptions"))
        .bearer_auth(DEFAULT_API_KEY)
        .header("content-type", content_type)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("a streamed upload");
    let status = response.status().as_u16();
    check(
        status,
        &response.json().await.expect("json"),
        413,
        "file_too_large",
    );
    assert!(gateway.spooled().is_empty(), "{:?}", gateway.spooled());

    // A file the model cannot read: the task's own code, as OpenAI's error.
    let png = std::fs::read(CAT).expect("cat");
    let (content_type, body) = form(&[("model", "paraformer-v2")], Some(("cat.png", &png)));
    let response = transcribe(&gateway, &content_type, body).await;
    let status = response.status().as_u16();
    let answer: Value = response.json().await.expect("json");
    check(status, &answer, 400, "InvalidFile.DecodeFailed");

    // JSON that is not JSON, and an unknown path.
    let response = http()
        .post(gateway.v1("/chat/completions"))
        .bearer_auth(DEFAULT_API_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("chat");
    let status = response.status().as_u16();
    check(
        status,
        &response.json().await.expect("json"),
        400,
        "invalid_request",
    );
    let response = http()
        .get(gateway.v1("/nothing"))
        .send()
        .await
        .expect("404");
    let status = response.status().as_u16();
    check(
        status,
        &response.json().await.expect("json"),
        404,
        "not_found",
    );

    assert!(gateway.spooled().is_empty(), "{:?}", gateway.spooled());
    // Nothing of the refused uploads reached the storage: only the PNG was uploaded.
    assert_eq!(emulator.stats().uploads_ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_or_signature_is_logged_or_answered() {
    let emulator = emulator(EmulatorConfig::default().account("test", &[support::TEST_KEY])).await;
    let files = files_dir();
    let log = support::fresh_cache_home().join("gateway.log");
    let gateway = Gateway::spawn_logged(
        &[
            "--base-url",
            emulator.base_url(),
            "--files",
            files.to_str().expect("utf-8"),
        ],
        &log,
    );
    let image = files.join("cat.png").display().to_string();
    let (status, answer) = post_chat(&gateway, support::TEST_KEY, &chat_body(&image, false)).await;
    assert_eq!(status, 200, "{answer}");
    let (content_type, body) = form(
        &[("model", "paraformer-v2")],
        Some(("hello.wav", &std::fs::read(WAV).expect("wav"))),
    );
    let response = http()
        .post(gateway.v1("/audio/transcriptions"))
        .bearer_auth(support::TEST_KEY)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("transcription");
    assert_eq!(response.status(), 200);
    // A wrong key's refusal does not echo it.
    let (status, answer) =
        post_chat(&gateway, "sk-wrong-0123456789", &chat_body(&image, false)).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        !answer.to_string().contains("sk-wrong-0123456789"),
        "{answer}"
    );
    drop(gateway);
    let logged = std::fs::read_to_string(&log).expect("the log");
    assert!(
        logged.contains("dashscope.request"),
        "nothing was logged: {logged}"
    );
    for secret in [
        support::TEST_KEY,
        "sk-wrong-0123456789",
        "Signature",
        "OSSAccessKeyId",
    ] {
        assert!(!logged.contains(secret), "{secret} in the log");
    }
}
