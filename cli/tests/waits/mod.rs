//! 30 `dashscope task wait` processes sharing one cache folder: what the test
//! (`tests/shared_budget.rs`) and the benchmark (`benches/task_waits.rs`) both start.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};

use dashscope_emulator::{DEFAULT_API_KEY, Emulator};
use dashscope_oss::api::types;
use dashscope_oss::{Client, Config};

/// `n` text-to-image tasks submitted to `emulator`; their ids.
pub async fn image_tasks(emulator: &Emulator, n: usize) -> Vec<String> {
    let client = Client::new(
        Config::new()
            .api_key(DEFAULT_API_KEY)
            .base_url(emulator.base_url()),
    )
    .expect("client");
    let mut ids = Vec::new();
    for i in 0..n {
        let body: types::ImageSynthesisRequest = types::ImageSynthesisRequest::builder()
            .model("wanx2.1-t2i-turbo")
            .input(types::ImageSynthesisInput::builder().prompt(Some(format!("a cat, take {i}"))))
            .try_into()
            .expect("request");
        ids.push(
            client
                .submit_image_synthesis(&body)
                .await
                .expect("submit")
                .id,
        );
    }
    ids
}

/// One `binary task wait ID` per id, all at once, sharing `cache` as `XDG_CACHE_HOME`; their
/// output is piped (`piped`) or dropped.
pub fn spawn_waits(
    binary: &str,
    ids: &[String],
    emulator: &Emulator,
    cache: &Path,
    piped: bool,
) -> Vec<Child> {
    let out = || {
        if piped { Stdio::piped() } else { Stdio::null() }
    };
    ids.iter()
        .map(|id| {
            Command::new(binary)
                .args(["task", "wait", id.as_str()])
                .env("DASHSCOPE_API_KEY", DEFAULT_API_KEY)
                .env("DASHSCOPE_BASE_URL", emulator.base_url())
                .env("XDG_CACHE_HOME", cache)
                .env_remove("RUST_LOG")
                .env_remove("DASHSCOPE_HTTP_BASE_URL")
                .stdout(out())
                .stderr(out())
                .spawn()
                .expect("spawn dashscope")
        })
        .collect()
}
