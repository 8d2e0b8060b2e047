//! The emulator under load, as its own process: rounds of 200 concurrent clients (credential,
//! upload, model call), each round with new clients. After each round the clients are dropped,
//! the emulator's clock moves past every object's and credential's lifetime, and once all its
//! connections are closed its live heap is read. A leak — per request, per connection or per
//! object — shows as a heap that keeps growing at rest; allocator caching and fragmentation do
//! not show there (unlike RSS, which is printed for information). The 2 GiB upload and the
//! figures in docs/figures.md come from `cargo bench -p dashscope-cli --bench emulator_load`.

mod process_support;

use dashscope_oss::chat::{ChatRequest, Message};
use dashscope_oss::{Client, Config, UploadSource};
use process_support::{EmulatorProcess, judge_heap};

const ROUNDS: usize = 10;
/// Rounds that fill the allocator's and the runtime's pools before anything is judged.
const WARM_UP: usize = 2;
/// Allowed difference of the heap's medians; see `judge_heap` and docs/figures.md for the figures
/// it was chosen from.
const TOLERANCE: u64 = 512 * 1024;

#[test]
fn the_heap_judge_tells_a_leak_from_a_level() {
    let level = [
        9_000_000, 9_100_000, 8_950_000, 9_050_000, 9_000_000, 9_020_000,
    ];
    assert_eq!(judge_heap(&level, TOLERANCE), Ok(()));
    // One odd round is not a leak.
    let spike = [
        9_000_000, 9_000_000, 9_000_000, 14_000_000, 9_000_000, 9_000_000,
    ];
    assert_eq!(judge_heap(&spike, TOLERANCE), Ok(()));
    // 200 KiB more after every round, over eight rounds.
    let leak: Vec<u64> = (0..8).map(|i| 9_000_000 + i * 200 * 1024).collect();
    assert!(judge_heap(&leak, TOLERANCE).is_err());
    assert!(
        judge_heap(&leak[..3], TOLERANCE).is_err(),
        "too few to judge"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_clients() {
    // A per-second limit high enough that 200 new clients fetching credentials at once are never
    // throttled: this test is about memory, and throttling is tested elsewhere.
    let emulator =
        EmulatorProcess::spawn(env!("CARGO_BIN_EXE_dashscope"), &["--policy-qps", "100000"]);
    let base = emulator.base.clone();
    dashscope_oss::install_crypto_provider();
    let control = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("control client");
    let at_rest_fds = emulator.fds();
    let png: Vec<u8> = [
        &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0"[..],
        &[7u8; 64 * 1024][..],
    ]
    .concat();
    // 200 connection pools that keep no idle connection, so that every connection closes once
    // its request is answered (built once: building one is most of a debug client's start-up).
    let pools: Vec<reqwest::Client> = (0..200)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("pool")
        })
        .collect();
    let mut heap = Vec::new();
    for round in 1..=ROUNDS {
        // New clients every round: a new credential cache each, as 200 new processes would have.
        let clients: Vec<Client> = pools
            .iter()
            .map(|pool| {
                Client::new(
                    Config::new()
                        .api_key("sk-emulator-default")
                        .base_url(&base)
                        .http_client(pool.clone()),
                )
                .expect("client")
            })
            .collect();
        let work = clients.iter().enumerate().map(|(i, client)| {
            let png = png.clone();
            async move {
                let file = client
                    .upload(
                        "qwen-vl-plus",
                        UploadSource::bytes(format!("r{round}-{i}.png"), png),
                    )
                    .await?;
                client
                    .chat_completion(
                        ChatRequest::new("qwen-vl-plus")
                            .message(Message::user().image(file.url.as_str()).text("?")),
                    )
                    .await
                    .map(|_| ())
            }
        });
        let results = futures_util::future::join_all(work).await;
        let errors: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(ToString::to_string))
            .collect();
        assert!(
            errors.is_empty(),
            "round {round}: {} errors, first: {:?}",
            errors.len(),
            errors.first()
        );
        let busy_fds = emulator.fds();
        drop(clients);

        // Past every object's 48 h and every credential's lifetime, every connection closed: a
        // descriptor that stays open is a leak.
        let stats = emulator.at_rest(&control, at_rest_fds, round).await;
        assert_eq!(
            (&stats["objects"], &stats["credentials"]),
            (&serde_json::json!(0), &serde_json::json!(0)),
            "round {round}: expired state was kept: {stats}"
        );
        let bytes = stats["heap_bytes"].as_u64().unwrap_or_else(|| {
            panic!("the emulator cannot measure its heap on this platform: {stats}")
        });
        println!(
            "round {round}: 200 clients ok; {busy_fds} fds busy, {} at rest; heap {} KiB at rest; RSS {} KiB",
            emulator.fds(),
            bytes / 1024,
            emulator.status("VmRSS:"),
        );
        if round > WARM_UP {
            heap.push(bytes);
        }
    }
    if let Err(leak) = judge_heap(&heap, TOLERANCE) {
        panic!("{leak}");
    }
}
