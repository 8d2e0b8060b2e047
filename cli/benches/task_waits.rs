//! 30 `dashscope task wait` processes at once against one emulator, sharing one cache folder as
//! a user's shell does: the most task queries the emulator saw arrive within any one second
//! (the service allows 20 per account), how many it refused, and the wall time.
//!
//! `cargo bench -p dashscope-cli --bench task_waits` (`TASK_WAITS_N`, default 30;
//! `TASK_WAITS_ROUNDS`, default 3; `TASK_WAITS_OTHER=/path/to/dashscope` runs that binary too,
//! alternating, e.g. the release before). Tasks stay 4 s `PENDING` and 4 s `RUNNING` by the
//! emulator's clock; the waits use the default options (1 s, doubling to 8 s).

#[path = "../tests/waits/mod.rs"]
mod waits;

use std::time::{Duration, Instant};

use dashscope_emulator::{Emulator, EmulatorConfig, TaskSteps};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn round(binary: &str, n: usize) -> String {
    let emulator = Emulator::start(EmulatorConfig {
        task_steps: TaskSteps::Clock {
            pending: Duration::from_secs(4),
            running: Duration::from_secs(4),
        },
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let ids = waits::image_tasks(&emulator, n).await;
    let cache = std::env::temp_dir().join(format!(
        "dashscope-oss-task-waits-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&cache);
    let started = Instant::now();
    let children = waits::spawn_waits(binary, &ids, &emulator, &cache, false);
    let ok = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .filter_map(|mut c| c.wait().ok())
            .filter(|s| s.success())
            .count()
    })
    .await
    .expect("joined");
    let elapsed = started.elapsed();
    let stats = emulator.stats();
    let _ = std::fs::remove_dir_all(&cache);
    format!(
        "{:.1} s, {} queries, at most {} in any second, {} refused; {ok} of {n} waits succeeded",
        elapsed.as_secs_f64(),
        stats.task_queries,
        stats.task_queries_max_per_second,
        stats.task_queries_throttled
    )
}

fn main() {
    let n: usize = env_or("TASK_WAITS_N", 30);
    let rounds: usize = env_or("TASK_WAITS_ROUNDS", 3);
    let ours = env!("CARGO_BIN_EXE_dashscope").to_owned();
    let other = std::env::var("TASK_WAITS_OTHER").ok();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("{n} `dashscope task wait` processes at once, one cache folder, {rounds} rounds:");
    for r in 1..=rounds {
        println!(
            "  round {r}, this build: {}",
            runtime.block_on(round(&ours, n))
        );
        if let Some(other) = &other {
            println!(
                "  round {r}, {other}: {}",
                runtime.block_on(round(other, n))
            );
        }
    }
}
