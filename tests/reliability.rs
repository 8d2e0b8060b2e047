//! The fault batch: many small files through a hostile emulator (the 100-per-second credential
//! limit, injected 500s, connections dropped mid-body, credentials that expire after every 300
//! uploads).
//! Every file must either land exactly as sent or come back as a typed error: no file lost, no
//! false success. `RELIABILITY_FILES` sets the size (10,000 by default; more for a soak).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, FaultKind, Storage};
use dashscope_oss::{Client, Config, RetryPolicy, UploadSource};

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_files_through_faults() {
    let files: usize = std::env::var("RELIABILITY_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let emulator = Emulator::start(EmulatorConfig {
        storage: Storage::Memory,
        policy_lifetime: Duration::from_secs(30),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    emulator.set_fault_rate(FaultKind::UploadError, 10_000); // 1 %
    emulator.set_fault_rate(FaultKind::UploadDrop, 10_000); // 1 %

    // Credentials expire under the client's feet: after every 300 form POSTs the emulator's
    // clock jumps 30 s, past the life of every credential issued so far, while the client's
    // cache still trusts them. Counted in work, not time, so a slow machine sees the same
    // number of expiries per file as a fast one.
    let running = Arc::new(AtomicBool::new(true));
    let ticking = running.clone();
    let emulator = Arc::new(emulator);
    let clock = emulator.clone();
    let ticker = tokio::spawn(async move {
        let mut next = 300;
        while ticking.load(Ordering::Relaxed) {
            let stats = clock.stats();
            if stats.uploads_ok + stats.uploads_rejected >= next {
                clock.advance_clock(Duration::from_secs(30));
                next += 300;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });

    let client = Client::new(
        Config::new()
            .api_key(DEFAULT_API_KEY)
            .base_url(emulator.base_url())
            .retry(
                RetryPolicy::default()
                    .max_attempts(6)
                    .initial_backoff(Duration::from_millis(2))
                    .max_backoff(Duration::from_millis(50)),
            )
            .upload_concurrency(16),
    )
    .expect("client");
    let contents: Vec<Vec<u8>> = (0..files)
        .map(|i| format!("file {i} ").repeat(1 + i % 50).into_bytes())
        .collect();
    let sources = contents
        .iter()
        .enumerate()
        .map(|(i, c)| UploadSource::bytes(format!("f{i}.txt"), c.clone()));
    let started = Instant::now();
    let results = client.upload_many("qwen-vl-plus", sources).await;
    let elapsed = started.elapsed();
    running.store(false, Ordering::Relaxed);
    let _ = ticker.await;

    assert_eq!(results.len(), files, "one outcome per file");
    let (mut ok, mut failed, mut retried, mut attempts) = (0, 0, 0, 0u64);
    for (i, result) in results.iter().enumerate() {
        match result {
            Ok(file) => {
                ok += 1;
                attempts += u64::from(file.attempts);
                if file.attempts > 1 {
                    retried += 1;
                }
                let (sha, size) = emulator
                    .object(&file.key)
                    .unwrap_or_else(|| panic!("false success: {} is not stored", file.key));
                assert_eq!(size, contents[i].len() as u64, "{}", file.key);
                assert_eq!(
                    sha,
                    sha256_hex(&contents[i]),
                    "{} holds other bytes",
                    file.key
                );
            }
            Err(e) => {
                failed += 1;
                // Typed, and one of the kinds the faults can cause.
                assert!(
                    e.is_retryable() || matches!(e, dashscope_oss::Error::PolicyExpired(_)),
                    "file {i}: {e:?}"
                );
            }
        }
    }
    let stats = emulator.stats();
    println!(
        "{files} files in {:.1} s: {ok} uploaded ({retried} after retries, {attempts} form POSTs), {failed} failed; \
         emulator: {} credentials, {} throttled, {} uploads refused or dropped, {} objects",
        elapsed.as_secs_f64(),
        stats.policy_requests,
        stats.policy_throttled,
        stats.uploads_rejected,
        stats.objects
    );
    assert_eq!(ok + failed, files, "no file lost");
    assert!(
        retried > 0 && stats.uploads_rejected > 0,
        "the faults fired"
    );
    assert!(
        stats.policy_requests > 1,
        "credentials expired and were replaced"
    );
    // Every reported success was checked above; extra objects could only be strays left under
    // an expired credential's key, which the service deletes after 48 h.
    assert!(stats.objects >= ok as u64);
    // With 6 tries per file and 1 % + 1 % faults, a file failing every try is a one-in-10^10 event.
    assert_eq!(failed, 0);
}
