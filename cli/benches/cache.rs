//! What the upload cache saves and what it costs, against the emulator over loopback.
//!
//! 1. `dashscope chat --file` of a 100 MB video, twice with the cache (a fresh cache directory
//!    each round): wall time of each run, and the credential requests and uploads the emulator
//!    counted for each. Medians of the rounds and the ratio second/first.
//! 2. The cost of the cache on a miss, for 1 MB, 100 MB and 1 GiB: in one process, side by
//!    side and alternating, an upload with the cache off, an upload that misses the cache
//!    (hashing the file, then uploading while hashing what is sent), and the hashing alone.
//!
//! `cargo bench -p dashscope-cli --bench cache` (`CACHE_BENCH_ROUNDS`, default 5;
//! `CACHE_BENCH_SIZES_MB`, default `1,100,1024`).

#[path = "../tests/process_support/mod.rs"]
mod process_support;

use std::process::Command;
use std::time::{Duration, Instant};

use process_support::{EmulatorProcess, write_video};

use dashscope_oss::{Client, Config};

const KEY: &str = "sk-emulator-default";
const MODEL: &str = "qwen-vl-plus";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stats(base: &str) -> (u64, u64) {
    let out = Command::new("curl")
        .args(["-sS", &format!("{base}/emulator/v1/stats")])
        .output()
        .expect("curl stats");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stats json");
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    (n("policy_requests"), n("uploads_ok"))
}

fn main() {
    let rounds: usize = env_or("CACHE_BENCH_ROUNDS", 5);
    let sizes: Vec<u64> = std::env::var("CACHE_BENCH_SIZES_MB")
        .unwrap_or_else(|_| "1,100,1024".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let dir = std::env::temp_dir().join(format!("dashscope-cache-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let emulator = EmulatorProcess::spawn(
        env!("CARGO_BIN_EXE_dashscope"),
        &[
            "--policy-lifetime",
            "3600",
            "--model",
            &format!("{MODEL}=4096"),
        ],
    );
    let base = emulator.base.clone();

    // 1. The CLI, twice.
    let video = dir.join("clip.mp4");
    write_video(&video, 100 * 1000 * 1000);
    println!("dashscope chat --file of a 100 MB video, twice with the cache, {rounds} rounds:");
    let (mut firsts, mut seconds) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let home = dir.join(format!("home-{round}"));
        let run = || {
            let before = stats(&base);
            let started = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_dashscope"))
                .args(["-q", "chat", "-m", MODEL, "-f"])
                .arg(&video)
                .arg("what happens?")
                .env("XDG_CACHE_HOME", &home)
                .env("DASHSCOPE_API_KEY", KEY)
                .env("DASHSCOPE_BASE_URL", &base)
                .output()
                .expect("run dashscope");
            let secs = started.elapsed().as_secs_f64();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let after = stats(&base);
            (secs, after.0 - before.0, after.1 - before.1)
        };
        let first = run();
        let second = run();
        println!(
            "  round {round}: first {:.3} s ({} credential request, {} upload), second {:.3} s ({} credential requests, {} uploads)",
            first.0, first.1, first.2, second.0, second.1, second.2
        );
        assert_eq!(
            (second.1, second.2),
            (0, 0),
            "the second run sent something"
        );
        firsts.push(first.0);
        seconds.push(second.0);
        let _ = std::fs::remove_dir_all(&home);
    }
    let (a, b) = (median(firsts), median(seconds));
    println!(
        "  median: first {a:.3} s, second {b:.3} s, second/first {:.3}",
        b / a
    );

    // 2. The cost of a miss.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = || Config::new().api_key(KEY).base_url(&base);
    let uncached = Client::new(config().no_upload_cache()).expect("client");
    let cached = Client::new(config()).expect("client");
    println!("\nthe cost of the cache on a miss, {rounds} rounds, alternating (medians):");
    println!("  size      upload, cache off   upload, cache miss   hashing alone   miss/off");
    for mb in sizes {
        let file = dir.join(format!("file-{mb}.mp4"));
        write_video(&file, mb * 1000 * 1000);
        let (mut off, mut miss, mut hash) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            // New content each round (eight bytes changed in place), so that the cached client
            // (whose credential is as warm as the other's) misses.
            {
                use std::io::{Seek, Write};
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&file)
                    .expect("open");
                f.seek(std::io::SeekFrom::Start(16)).expect("seek");
                f.write_all(&(round as u64 + 1).to_le_bytes())
                    .expect("write");
            }
            std::thread::sleep(Duration::from_millis(300));
            let started = Instant::now();
            runtime
                .block_on(uncached.upload(MODEL, &*file))
                .expect("upload");
            off.push(started.elapsed().as_secs_f64());
            let started = Instant::now();
            let uploaded = runtime
                .block_on(cached.upload(MODEL, &*file))
                .expect("upload");
            miss.push(started.elapsed().as_secs_f64());
            assert!(!uploaded.from_cache);
            let started = Instant::now();
            dashscope_oss::cache::digest_file(&file).expect("hash");
            hash.push(started.elapsed().as_secs_f64());
        }
        let (off, miss, hash) = (median(off), median(miss), median(hash));
        println!(
            "  {:>5} MB  {off:>14.3} s  {miss:>16.3} s  {hash:>12.3} s  {:>8.3}",
            mb,
            miss / off
        );
        let _ = std::fs::remove_file(&file);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
