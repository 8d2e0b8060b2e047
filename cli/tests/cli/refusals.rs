//! Flags refused by their documented range (usage, exit 2), and a task answer whose result URL
//! is no http(s) URL: the service's fault (exit 7), never the user's.

use super::support;

use std::process::{Command, Output};

use support::{Canned, Server};

const CAT: &str = "tests/fixtures/cat.png";

fn run(args: &[&str], base_url: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dashscope"));
    command
        .args(args)
        .env("XDG_CACHE_HOME", support::fresh_cache_home())
        .env_remove("RUST_LOG")
        .env_remove("DASHSCOPE_HTTP_BASE_URL")
        .env_remove("DASHSCOPE_WORKSPACE_ID")
        .env_remove("DASHSCOPE_API_REGION");
    match base_url {
        Some(url) => command
            .env("DASHSCOPE_API_KEY", support::TEST_KEY)
            .env("DASHSCOPE_BASE_URL", url),
        None => command
            .env_remove("DASHSCOPE_API_KEY")
            .env_remove("DASHSCOPE_BASE_URL"),
    };
    command.output().expect("run dashscope")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn counts_out_of_their_range_are_usage_errors() {
    let edit = |n: &str| {
        run(
            &[
                "--emulator",
                "image",
                "edit",
                "--function",
                "colorization",
                "--base-image",
                CAT,
                "--async",
                "-n",
                n,
                "in colour",
            ],
            None,
        )
    };
    for n in ["0", "5", "99", "two"] {
        let out = edit(n);
        assert_eq!(out.status.code(), Some(2), "-n {n}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("-n"), "-n {n}: {stderr}");
        assert!(out.stdout.is_empty(), "-n {n}: {}", show(&out));
    }
    // The documented range itself is taken: a task is submitted, its id printed.
    for n in ["1", "4"] {
        let out = edit(n);
        assert_eq!(out.status.code(), Some(0), "-n {n}: {}", show(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim().len(), 36);
    }
    for args in [
        &["task", "list", "--page", "0"][..],
        &["task", "list", "--page-size", "0"],
        &[
            "oss",
            "upload",
            "-m",
            "qwen-vl-plus",
            "-f",
            CAT,
            "--concurrency",
            "0",
        ],
    ] {
        let out = run(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_url_that_is_not_http_is_the_services_fault() {
    for url in ["file:///etc/passwd", "ftp://127.0.0.1/a.png", "not a url"] {
        let submitted =
            r#"{"request_id":"r-1","output":{"task_id":"t-1","task_status":"PENDING"}}"#;
        let done = serde_json::json!({
            "request_id": "r-2",
            "output": {"task_id": "t-1", "task_status": "SUCCEEDED", "results": [{"url": url}]}
        })
        .to_string();
        let server =
            Server::sequence(vec![Canned::json(200, submitted), Canned::json(200, &done)]).await;
        let dir = std::env::temp_dir().join(format!(
            "dashscope-cli-refusals-{}-{}",
            std::process::id(),
            url.len()
        ));
        std::fs::create_dir_all(&dir).expect("a folder");
        let target = dir.join("out.png");
        let out = run(
            &[
                "image",
                "edit",
                "--function",
                "colorization",
                "--base-image",
                "http://127.0.0.1:9/a.png",
                "--poll-interval",
                "0.001",
                "-o",
                target.to_str().expect("a UTF-8 temp path"),
                "in colour",
            ],
            Some(&server.url),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{url}: {}", show(&out));
        assert!(stderr.contains("result"), "{url}: {stderr}");
        assert!(!target.exists(), "{url}: nothing is written");
        // Only the submit and the query reached the server: the URL was never fetched.
        assert!(
            server
                .requests()
                .iter()
                .all(|r| r.method != "GET" || r.target.contains("/tasks/")),
            "{url}: {:?}",
            server.requests()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
