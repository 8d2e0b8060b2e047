//! What `dashscope gateway` adds, against the emulator (a `dashscope emulator` process) over
//! loopback, the gateway a process of its own:
//!
//! 1. A text-only chat, straight to the emulator and through the gateway, alternating, with
//!    one kept-alive HTTP client each: medians, the difference and the ratio.
//! 2. The time to the first chunk of a streamed chat, the same way.
//! 3. A 100 MB local video asked about through the gateway three times (a fresh gateway and
//!    cache each round): wall times of each request, and the uploads the emulator counted.
//!
//! `cargo bench -p dashscope-cli --bench gateway` (`GATEWAY_BENCH_CALLS`, default 50;
//! `GATEWAY_BENCH_ROUNDS`, default 3).

#[path = "../tests/process_support/mod.rs"]
mod process_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use futures_util::StreamExt;
use process_support::{EmulatorProcess, stats, write_video};
use serde_json::{Value, json};

const KEY: &str = "sk-emulator-default";

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

/// A `dashscope gateway` process; killed when dropped.
struct GatewayProcess {
    base: String,
    child: Child,
}

impl GatewayProcess {
    fn spawn(emulator: &str, files: &Path, cache_home: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dashscope"))
            .args(["-q", "gateway", "--base-url", emulator, "--files"])
            .arg(files)
            .env_remove("DASHSCOPE_API_KEY")
            .env("XDG_CACHE_HOME", cache_home)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the gateway");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the gateway's first line");
        let base = line
            .trim()
            .trim_start_matches("OPENAI_BASE_URL=")
            .trim_end_matches("/v1")
            .to_owned();
        Self { base, child }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> reqwest::Response {
    let response = http
        .post(url)
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("post");
    assert!(response.status().is_success(), "{}", response.status());
    response
}

/// Seconds for a whole answer.
async fn whole(http: &reqwest::Client, url: &str, body: &Value) -> f64 {
    let started = Instant::now();
    let response = post(http, url, body).await;
    let _ = response.bytes().await.expect("body");
    started.elapsed().as_secs_f64()
}

/// Seconds to the first chunk of a stream (the rest is read, untimed).
async fn first_chunk(http: &reqwest::Client, url: &str, body: &Value) -> f64 {
    let started = Instant::now();
    let response = post(http, url, body).await;
    let mut chunks = response.bytes_stream();
    let _ = chunks.next().await.expect("a chunk").expect("bytes");
    let secs = started.elapsed().as_secs_f64();
    while chunks.next().await.is_some() {}
    secs
}

fn uploads(stats: &Value) -> u64 {
    stats["uploads_ok"].as_u64().unwrap_or(0)
}

fn main() {
    dashscope_oss::install_crypto_provider();
    let calls: usize = env_or("GATEWAY_BENCH_CALLS", 50);
    let rounds: usize = env_or("GATEWAY_BENCH_ROUNDS", 3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("dashscope-gateway-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let emulator = EmulatorProcess::spawn(
        env!("CARGO_BIN_EXE_dashscope"),
        &["--policy-lifetime", "3600", "--model", "qwen-vl-plus=4096"],
    );
    let emu = emulator.base.clone();
    runtime.block_on(async {
        let direct = reqwest::Client::builder().no_proxy().build().expect("http");
        let through = reqwest::Client::builder().no_proxy().build().expect("http");
        let home = dir.join("home-latency");
        let gateway = GatewayProcess::spawn(&emu, &dir, &home);
        let direct_url = format!("{emu}/compatible-mode/v1/chat/completions");
        let gateway_url = format!("{}/v1/chat/completions", gateway.base);
        let text = json!({"model": "qwen-plus", "messages": [{"role": "user", "content": "Say hello."}]});
        // Warm both connections.
        whole(&direct, &direct_url, &text).await;
        whole(&through, &gateway_url, &text).await;
        let (mut d, mut g) = (Vec::new(), Vec::new());
        for _ in 0..calls {
            d.push(whole(&direct, &direct_url, &text).await);
            g.push(whole(&through, &gateway_url, &text).await);
        }
        let (d, g) = (median(d), median(g));
        println!("text-only chat, {calls} alternating calls each:");
        println!(
            "  median direct {:.2} ms, through the gateway {:.2} ms: +{:.2} ms, x{:.2}",
            d * 1e3,
            g * 1e3,
            (g - d) * 1e3,
            g / d
        );

        let mut streamed = text.clone();
        streamed["stream"] = json!(true);
        let (mut d, mut g) = (Vec::new(), Vec::new());
        for _ in 0..calls {
            d.push(first_chunk(&direct, &direct_url, &streamed).await);
            g.push(first_chunk(&through, &gateway_url, &streamed).await);
        }
        let (d, g) = (median(d), median(g));
        println!("time to the first chunk of a stream, {calls} alternating calls each:");
        println!(
            "  median direct {:.2} ms, through the gateway {:.2} ms: +{:.2} ms, x{:.2}",
            d * 1e3,
            g * 1e3,
            (g - d) * 1e3,
            g / d
        );
        drop(gateway);

        let video = dir.join("clip.mp4");
        write_video(&video, 100 * 1000 * 1000);
        let ask = json!({"model": "qwen-vl-plus", "messages": [{"role": "user", "content": [
            {"type": "video_url", "video_url": {"url": video.display().to_string()}},
            {"type": "text", "text": "What happens?"}]}]});
        println!("a 100 MB local video through the gateway, three times, {rounds} rounds (a fresh gateway and cache each):");
        let (mut firsts, mut seconds, mut thirds) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=rounds {
            let home = dir.join(format!("home-{round}"));
            let gateway = GatewayProcess::spawn(&emu, &dir, &home);
            let http = reqwest::Client::builder().no_proxy().build().expect("http");
            let url = format!("{}/v1/chat/completions", gateway.base);
            let before = uploads(&stats(&direct, &emu).await);
            let first = whole(&http, &url, &ask).await;
            let between = uploads(&stats(&direct, &emu).await);
            let second = whole(&http, &url, &ask).await;
            let third = whole(&http, &url, &ask).await;
            let after = uploads(&stats(&direct, &emu).await);
            println!(
                "  round {round}: first {first:.3} s ({} upload), second {second:.3} s, third {third:.3} s ({} uploads)",
                between - before,
                after - between
            );
            assert_eq!(after, between, "a later request uploaded again");
            firsts.push(first);
            seconds.push(second);
            thirds.push(third);
            drop(gateway);
            let _ = std::fs::remove_dir_all(&home);
        }
        let (a, b, c) = (median(firsts), median(seconds), median(thirds));
        println!(
            "  median: first {a:.3} s, second {b:.3} s, third {c:.3} s, second/first {:.3}",
            b / a
        );
    });
    drop(emulator);
    let _ = std::fs::remove_dir_all(&dir);
}
