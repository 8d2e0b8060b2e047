//! 100 tasks submitted and waited on at once by one client, against the emulator in this
//! process: the most task queries the emulator saw arrive within any one second (the service
//! allows 20 per account), refusals, and the states the tasks ended in.
//!
//! `cargo bench --bench tasks` (`TASKS_BENCH_N`, default 100;
//! `TASKS_BENCH_ROUNDS`, default 3). Tasks move by the emulator's clock (a second `PENDING`, a
//! second `RUNNING`), and the waits use the default options (1 s, doubling to 8 s).

use std::time::Instant;

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, FAIL_TASK_TEXT};
use dashscope_oss::api::types;
use dashscope_oss::task::WaitOptions;
use dashscope_oss::{Client, Config, Error};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let n: usize = env_or("TASKS_BENCH_N", 100);
    let rounds: usize = env_or("TASKS_BENCH_ROUNDS", 3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("{n} tasks at once, one client, {rounds} rounds (a fifth of them made to fail):");
    for round in 1..=rounds {
        runtime.block_on(async {
            let emulator = Emulator::start(EmulatorConfig::default())
                .await
                .expect("emulator");
            let client = Client::new(
                Config::new()
                    .api_key(DEFAULT_API_KEY)
                    .base_url(emulator.base_url()),
            )
            .expect("client");
            let started = Instant::now();
            let waits = (0..n).map(|i| {
                let client = client.clone();
                async move {
                    let prompt = if i % 5 == 0 {
                        format!("{FAIL_TASK_TEXT} {i}")
                    } else {
                        format!("a cat, take {i}")
                    };
                    let body: types::ImageSynthesisRequest =
                        types::ImageSynthesisRequest::builder()
                            .model("wanx2.1-t2i-turbo")
                            .input(types::ImageSynthesisInput::builder().prompt(Some(prompt)))
                            .try_into()
                            .expect("request");
                    let task = client.submit_image_synthesis(&body).await.expect("submit");
                    (i, client.wait_task(&task.id, &WaitOptions::default()).await)
                }
            });
            let ends = futures_util::future::join_all(waits).await;
            let secs = started.elapsed().as_secs_f64();
            let right = ends
                .iter()
                .filter(|(i, end)| match end {
                    Err(Error::TaskFailed { .. }) => i % 5 == 0,
                    Ok(done) => i % 5 != 0 && done.image_urls().len() == 1,
                    Err(_) => false,
                })
                .count();
            let stats = emulator.stats();
            println!(
                "  round {round}: {secs:.1} s, {} queries, at most {} in any second, {} refused; \
                 {right} of {n} ended in their right state ({:?})",
                stats.task_queries,
                stats.task_queries_max_per_second,
                stats.task_queries_throttled,
                stats.tasks
            );
            assert_eq!(right, n, "a task ended in the wrong state");
            assert!(stats.task_queries_max_per_second <= 20);
            emulator.shutdown().await;
        });
    }
}
