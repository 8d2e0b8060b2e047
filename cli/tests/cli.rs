//! The `dashscope` binary as a process, against an emulator: stdout, stderr and exit codes for
//! success, `--json`, and each error class.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, FaultKind};

#[path = "../../tests/support/mod.rs"]
mod support;

// The other command groups, as modules of this binary (each test binary costs a link).
#[path = "cli/bad_input.rs"]
mod bad_input;
#[path = "cli/cache.rs"]
mod cache;
#[path = "cli/emulator_command.rs"]
mod emulator_command;
#[path = "cli/output.rs"]
mod output;
#[path = "cli/refusals.rs"]
mod refusals;
#[path = "cli/secrets.rs"]
mod secrets;
#[path = "cli/tasks.rs"]
mod tasks;

const CAT: &str = "tests/fixtures/cat.png";

fn dashscope(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dashscope"))
        .args(args)
        .env_remove("DASHSCOPE_API_KEY")
        // Logging on stderr would change what the snapshots record.
        .env_remove("RUST_LOG")
        .env_remove("DASHSCOPE_BASE_URL")
        .env_remove("DASHSCOPE_HTTP_BASE_URL")
        .env_remove("DASHSCOPE_WORKSPACE_ID")
        .env_remove("DASHSCOPE_API_REGION")
        .env("TZ", "UTC")
        .env("XDG_CACHE_HOME", support::fresh_cache_home())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dashscope");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.unwrap_or("").as_bytes());
    }
    child.wait_with_output().expect("output")
}

/// Replaces what changes from run to run: upload dirs, times, ports, request ids.
fn redact(text: &str, emulator: Option<&Emulator>) -> String {
    let mut out = redact_uuids(text);
    if let Some(e) = emulator {
        out = out
            .replace(e.base_url(), "http://[EMULATOR]")
            .replace(e.oss_url(), "http://[OSS]");
    }
    let mut result = String::new();
    for token in out.split_inclusive(|c: char| c.is_whitespace() || c == '"' || c == ',') {
        let (word, sep) = token.split_at(
            token
                .trim_end_matches(|c: char| c.is_whitespace() || c == '"' || c == ',')
                .len(),
        );
        let replaced = if let Some(rest) = word.strip_prefix("oss://dashscope-instant/") {
            format!(
                "oss://dashscope-instant/[DIR]/{}",
                rest.rsplit('/').next().unwrap_or_default()
            )
        } else if let Some(rest) = word.strip_prefix("dashscope-instant/") {
            format!(
                "dashscope-instant/[DIR]/{}",
                rest.rsplit('/').next().unwrap_or_default()
            )
        } else if word.len() >= 19
            && word.as_bytes().get(4) == Some(&b'-')
            && word
                .as_bytes()
                .get(10)
                .is_some_and(|b| *b == b'T' || *b == b' ')
        {
            "[TIME]".to_owned()
        } else if word.len() == 10
            && word.as_bytes().get(4) == Some(&b'-')
            && word.as_bytes().get(7) == Some(&b'-')
        {
            "[DATE]".to_owned()
        } else if word.len() == 8
            && word.as_bytes().get(2) == Some(&b':')
            && word.as_bytes().get(5) == Some(&b':')
        {
            "[CLOCK]".to_owned()
        } else if word.starts_with("(20") && word.ends_with("Z)") {
            "([TIME])".to_owned()
        } else if word.starts_with("http://127.0.0.1:") {
            "http://127.0.0.1:[PORT]".to_owned()
        } else {
            word.to_owned()
        };
        result.push_str(&replaced);
        result.push_str(sep);
    }
    result
}

/// Request ids look like `ceacb018-d212-725b-d227-73c3b9194e2c`.
fn redact_uuids(text: &str) -> String {
    let shape = [8, 4, 4, 4, 12];
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    'scan: while i < chars.len() {
        let mut j = i;
        for (n, len) in shape.iter().enumerate() {
            let part = chars.get(j..j + len);
            if !part.is_some_and(|p| p.iter().all(|c| c.is_ascii_hexdigit())) {
                out.push(chars[i]);
                i += 1;
                continue 'scan;
            }
            j += len;
            if n < 4 {
                if chars.get(j) != Some(&'-') {
                    out.push(chars[i]);
                    i += 1;
                    continue 'scan;
                }
                j += 1;
            }
        }
        out.push_str("[REQUEST-ID]");
        i = j;
    }
    out
}

fn show(out: &Output, emulator: Option<&Emulator>) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        redact(&String::from_utf8_lossy(&out.stdout), emulator),
        redact(&String::from_utf8_lossy(&out.stderr), emulator)
    )
}

async fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_spelling_prints_only_the_url() {
    let emulator = emulator().await;
    let out = dashscope(
        &[
            "oss.upload",
            "--model",
            "qwen-vl-plus",
            "--file",
            CAT,
            "--api_key",
            DEFAULT_API_KEY,
            "--base-url",
            emulator.base_url(),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        show(&out, Some(&emulator))
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("oss://dashscope-instant/") && lines[0].ends_with("/cat.png"));
    let key = lines[0].trim_start_matches("oss://");
    assert_eq!(emulator.object_bytes(key), std::fs::read(CAT).ok());
    insta::assert_snapshot!(show(&out, Some(&emulator)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_form_json_and_a_list_from_stdin() {
    let emulator = emulator().await;
    let out = dashscope(
        &[
            "oss",
            "upload",
            "-m",
            "qwen-vl-plus",
            "-f",
            CAT,
            "--from-file",
            "-",
            "--json",
            // One at a time, so that the two uploads of cat.png claim their names in input order.
            "--concurrency",
            "1",
            "--api-key",
            DEFAULT_API_KEY,
            "--base-url",
            emulator.base_url(),
        ],
        Some("tests/fixtures/cat.png\n\n/no/such/file.png\n"),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "partial failure: {}",
        show(&out, Some(&emulator))
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let objects: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(objects.len(), 3, "one object per file, in input order");
    assert!(objects[0]["url"].is_string() && objects[1]["url"].is_string());
    // The same file twice is uploaded once: the second comes from the upload cache.
    assert_eq!(objects[0]["url"], objects[1]["url"]);
    assert_eq!(
        (
            objects[0]["from_cache"].as_bool(),
            objects[1]["from_cache"].as_bool()
        ),
        (Some(false), Some(true))
    );
    assert_eq!(emulator.stats().uploads_ok, 1);
    assert_eq!(objects[2]["error"]["exit_code"], 5);
    insta::assert_snapshot!(show(&out, Some(&emulator)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_error_class_has_its_exit_code() {
    let emulator = emulator().await;
    let base = emulator.base_url().to_owned();
    // Port 1: nothing listens there, and no test can take it (tests bind ephemeral ports), unlike
    // a port freed by dropping a listener, which a test running in parallel may bind again.
    let closed = "http://127.0.0.1:1".to_owned();
    let mut shown = String::new();
    let mut case = |name: &str, args: Vec<&str>, code: i32, emulator: Option<&Emulator>| {
        let out = dashscope(&args, None);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{name}: {}",
            show(&out, emulator)
        );
        assert!(out.stdout.is_empty(), "{name}: stdout must stay clean");
        shown.push_str(&format!("=== {name}\n{}\n", show(&out, emulator)));
    };
    case(
        "usage: no files",
        vec!["oss.upload", "--model", "qwen-vl-plus"],
        2,
        None,
    );
    case(
        "usage: unknown flag",
        vec!["oss.upload", "--modle", "x"],
        2,
        None,
    );
    case(
        "usage: unknown region",
        vec![
            "--region",
            "mars",
            "oss.upload",
            "-m",
            "m",
            "-f",
            CAT,
            "--api-key",
            "k",
        ],
        2,
        None,
    );
    case(
        "auth: no key",
        vec![
            "oss.upload",
            "-m",
            "qwen-vl-plus",
            "-f",
            CAT,
            "--base-url",
            &base,
        ],
        3,
        Some(&emulator),
    );
    case(
        "auth: wrong key",
        vec![
            "oss.upload",
            "-m",
            "qwen-vl-plus",
            "-f",
            CAT,
            "--base-url",
            &base,
            "--api-key",
            "sk-wrong",
        ],
        3,
        Some(&emulator),
    );
    case(
        "file: missing",
        vec![
            "oss.upload",
            "-m",
            "qwen-vl-plus",
            "-f",
            "/no/such.png",
            "--base-url",
            &base,
            "--api-key",
            DEFAULT_API_KEY,
        ],
        5,
        Some(&emulator),
    );
    case(
        "file: a directory",
        vec![
            "oss.upload",
            "-m",
            "qwen-vl-plus",
            "-f",
            "tests",
            "--base-url",
            &base,
            "--api-key",
            DEFAULT_API_KEY,
        ],
        5,
        Some(&emulator),
    );
    case(
        "network: nothing listening",
        vec![
            "oss.upload",
            "-m",
            "qwen-vl-plus",
            "-f",
            CAT,
            "--base-url",
            &closed,
            "--api-key",
            DEFAULT_API_KEY,
        ],
        6,
        None,
    );
    case(
        "service: unknown model",
        vec![
            "oss.upload",
            "-m",
            "qwen-nope",
            "-f",
            CAT,
            "--base-url",
            &base,
            "--api-key",
            DEFAULT_API_KEY,
        ],
        7,
        Some(&emulator),
    );
    emulator.inject(FaultKind::PolicyThrottle, 100);
    case(
        "rate: throttled past the retries",
        vec![
            "oss.upload",
            "-m",
            "qwen-vl-plus",
            "-f",
            CAT,
            "--base-url",
            &base,
            "--api-key",
            DEFAULT_API_KEY,
        ],
        4,
        Some(&emulator),
    );
    let shown = shown.replace(&closed, "http://127.0.0.1:[CLOSED]");
    insta::assert_snapshot!(shown);
}

#[test]
fn chat_on_the_built_in_emulator() {
    let out = dashscope(
        &[
            "--emulator",
            "chat",
            "--model",
            "qwen-vl-plus",
            "--file",
            CAT,
            "What is in this picture?",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out, None));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("image/png") && stdout.contains("What is in this picture?"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("built-in emulator") && stderr.contains("-> oss://"),
        "{stderr}"
    );
    insta::assert_snapshot!(show(&out, None));

    let native = dashscope(
        &[
            "--emulator",
            "-q",
            "chat",
            "--native",
            "-m",
            "qwen-vl-plus",
            "-f",
            CAT,
            "?",
        ],
        None,
    );
    assert_eq!(native.status.code(), Some(0));
    assert!(
        native.stderr.is_empty(),
        "-q: {}",
        String::from_utf8_lossy(&native.stderr)
    );
    assert!(String::from_utf8_lossy(&native.stdout).contains("image/png"));
}

/// `chat --json`: the whole answer, assembled from the stream, as the API's response type.
#[test]
fn chat_json_prints_the_whole_typed_answer() {
    for api in [None, Some("--native")] {
        let mut args = vec![
            "--emulator",
            "-q",
            "chat",
            "--json",
            "-m",
            "qwen-vl-plus",
            "-f",
            CAT,
        ];
        args.extend(api);
        args.push("What is this?");
        let out = dashscope(&args, None);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out, None));
        let answer: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
        let text = match api {
            None => answer.pointer("/choices/0/message/content"),
            Some(_) => answer.pointer("/output/choices/0/message/content/0/text"),
        };
        assert!(
            text.and_then(|t| t.as_str())
                .is_some_and(|t| t.contains("image/png")),
            "{answer:#}"
        );
        assert!(answer.get("usage").is_some(), "{answer:#}");
        let mut answer = answer;
        if let Some(created) = answer.get_mut("created") {
            *created = serde_json::json!("[UNIX TIME]");
        }
        let shown = redact(
            &serde_json::to_string_pretty(&answer).unwrap_or_default(),
            None,
        );
        insta::assert_snapshot!(
            format!("chat_json{}", api.unwrap_or("").replace('-', "_")),
            shown
        );
    }
}

#[test]
fn help_lists_the_commands_and_exit_codes() {
    let out = dashscope(&["--help"], None);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "oss.upload",
        "oss",
        "chat",
        "emulator",
        "--emulator",
        "Exit codes",
    ] {
        assert!(help.contains(word), "{word} missing from --help");
    }
}

/// A gateway's HTML page instead of DashScope's JSON: the status still decides the class, so a
/// 401 page exits as an authentication failure (3) and a 429 page as a rate limit (4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_pages_exit_by_their_status() {
    let page = |status: u16, title: &str| {
        support::Canned::raw(
            status,
            "text/html",
            format!("<html><head><title>{title}</title></head><body>gateway</body></html>"),
        )
    };
    let mut shown = String::new();
    for (answer, code) in [
        (page(401, "401 Authorization Required"), 3),
        (page(403, "403 Forbidden"), 3),
        (
            page(429, "429 Too Many Requests").header("retry-after", "0"),
            4,
        ),
    ] {
        let server = support::Server::start(answer).await;
        let out = dashscope(
            &[
                "oss.upload",
                "-m",
                "qwen-vl-plus",
                "-f",
                CAT,
                "--base-url",
                &server.url,
                "--api-key",
                DEFAULT_API_KEY,
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(code), "{}", show(&out, None));
        shown.push_str(&format!(
            "=== requests received: {} (429 is retried)\n{}\n",
            server.requests().len(),
            show(&out, None)
        ));
    }
    insta::assert_snapshot!(shown);
}

/// A workspace from the environment is named on the request (the chat, against a canned
/// server that records it); `--region frankfurt` is known, and needs a workspace.
#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_from_the_environment_is_named_on_the_request() {
    let stream = "data: {\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"qwen-plus\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let server =
        support::Server::start(support::Canned::raw(200, "text/event-stream", stream)).await;
    let url = server.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_dashscope"))
            .args(["chat", "--model", "qwen-plus", "hello"])
            .env("DASHSCOPE_API_KEY", support::TEST_KEY)
            .env("DASHSCOPE_BASE_URL", &url)
            .env("DASHSCOPE_WORKSPACE_ID", "ws-1")
            .env_remove("DASHSCOPE_API_REGION")
            .env_remove("RUST_LOG")
            .env("XDG_CACHE_HOME", support::fresh_cache_home())
            .output()
            .expect("run dashscope")
    })
    .await
    .expect("joined");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    let sent = server.only_request();
    insta::assert_snapshot!(sent.render());

    let frankfurt = dashscope(
        &[
            "--region",
            "frankfurt",
            "--api-key",
            "sk-x",
            "chat",
            "--model",
            "m",
            "hi",
        ],
        None,
    );
    assert_eq!(
        frankfurt.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&frankfurt.stderr)
    );
    assert!(
        String::from_utf8_lossy(&frankfurt.stderr).contains("workspace domain"),
        "{}",
        String::from_utf8_lossy(&frankfurt.stderr)
    );
}

/// Runs `dashscope` off the runtime with the test key, a fresh cache, none of the user's
/// DashScope variables, and `env` on top.
async fn dashscope_with(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dashscope"));
        command
            .args(&args)
            .env("DASHSCOPE_API_KEY", support::TEST_KEY);
        for name in [
            "DASHSCOPE_BASE_URL",
            "DASHSCOPE_HTTP_BASE_URL",
            "DASHSCOPE_API_REGION",
            "DASHSCOPE_WORKSPACE_ID",
            "RUST_LOG",
        ] {
            command.env_remove(name);
        }
        command
            .envs(env)
            .env("XDG_CACHE_HOME", support::fresh_cache_home())
            .output()
            .expect("run dashscope")
    })
    .await
    .expect("joined")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The per-minute token throttle, followed by an answer: the chat ends in the answer, exit 0.
/// A free allocation used up: exit 4 at once, and the hint says waiting will not help.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_throttle_is_waited_out_and_a_used_up_free_tier_is_not() {
    let stream = "data: {\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"qwen-plus\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let chat = |url: String| {
        dashscope_with(
            strings(&["chat", "--model", "qwen-plus", "hello"]),
            vec![("DASHSCOPE_BASE_URL", url)],
        )
    };
    // Retry-After keeps the test short; without it the wait is about a minute in all.
    let throttled = support::Server::sequence(vec![
        support::Canned::json(
            429,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        )
        .header("retry-after", "1"),
        support::Canned::raw(200, "text/event-stream", stream),
    ])
    .await;
    let out = chat(throttled.url.clone()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    assert_eq!(throttled.requests().len(), 2);

    let free = support::Server::start(support::Canned::json(
        403,
        r#"{"code":"AllocationQuota.FreeTierOnly","message":"The free tier of the model has been exhausted.","request_id":"r-9"}"#,
    ))
    .await;
    let out = chat(free.url.clone()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("waiting will not help"), "{stderr}");
    assert_eq!(free.requests().len(), 1);
}

/// `DASHSCOPE_API_REGION=us` (beside a base URL, which wins the address) and a refused credential: the error says the storage is not documented there
/// and the hint names the regions that have it (exit 3, as for a key refused). The same refusal
/// in Beijing stays "invalid API key".
#[tokio::test(flavor = "multi_thread")]
async fn a_credential_refused_outside_the_storage_regions_names_them() {
    let refusal =
        r#"{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"r-3"}"#;
    for (region, storage) in [("us", false), ("beijing", true)] {
        let server = support::Server::start(support::Canned::json(401, refusal)).await;
        let out = dashscope_with(
            strings(&[
                "oss",
                "upload",
                "--model",
                "qwen-vl-plus",
                "-f",
                "tests/fixtures/cat.png",
            ]),
            vec![
                ("DASHSCOPE_API_REGION", region.to_owned()),
                ("DASHSCOPE_BASE_URL", server.url.clone()),
            ],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(out.stdout.is_empty());
        if storage {
            assert!(stderr.contains("invalid API key"), "{stderr}");
        } else {
            assert!(
                stderr.contains("documented only in China (Beijing) and Singapore"),
                "{stderr}"
            );
            assert!(stderr.contains("--region"), "{stderr}");
        }
        assert_eq!(
            server.requests().len(),
            1,
            "{region}: a refusal is not repeated"
        );
    }
}

/// A host that takes the request and never answers: `--deadline` ends the command (exit 6, the
/// network's) with a hint, instead of five read timeouts of 300 s. Bad values are usage errors.
#[tokio::test(flavor = "multi_thread")]
async fn deadline_flags_end_a_silent_host() {
    let silent = support::scripted(|mut socket| async move {
        let _ = support::read_request(&mut socket).await;
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        drop(socket);
    })
    .await;
    let run = |args: Vec<String>| dashscope_with(args, Vec::new());
    let upload = |extra: &[&str]| {
        let mut args: Vec<String> = vec!["--base-url".into(), silent.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(
            [
                "oss",
                "upload",
                "-m",
                "qwen-vl-plus",
                "-f",
                "tests/fixtures/cat.png",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args
    };
    let out = run(upload(&["--deadline", "1.5", "--read-timeout", "600"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("took longer than"), "{stderr}");
    assert!(stderr.contains("--deadline"), "{stderr}");
    assert!(out.stdout.is_empty());
    for bad in [
        ["--deadline", "-1"],
        ["--read-timeout", "0"],
        ["--connect-timeout", "soon"],
    ] {
        let out = run(upload(&bad)).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
