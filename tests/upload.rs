//! Uploading against the emulator: success, credential reuse, expiry mid-batch, 429 storms,
//! injected 500s, dropped connections, a lost answer, limits, same-name files, bad paths; and
//! the exact form we send, against a canned server.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashscope_emulator::{
    DEFAULT_API_KEY, Emulator, EmulatorConfig, FaultKind, MediaKind, ModelSpec,
};
use dashscope_oss::{Client, Config, Error, RetryPolicy, UploadSource};

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

async fn emulator(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.expect("emulator")
}

/// A client that uploads every time: these tests are about the upload path itself, which the
/// upload cache would skip for content it has seen (tests/cache.rs is about the cache).
fn client_for(emulator: &Emulator) -> Client {
    Client::new(
        Config::new()
            .api_key(DEFAULT_API_KEY)
            .base_url(emulator.base_url())
            .no_upload_cache()
            .retry(RetryPolicy::default().initial_backoff(Duration::from_millis(5))),
    )
    .expect("client")
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dashscope-oss-upload-test-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test]
async fn uploads_a_file_and_the_bytes_land_intact() {
    let emulator = emulator(EmulatorConfig::default()).await;
    let dir = temp_dir("one");
    let path = dir.join("cat.png");
    let mut bytes = PNG.to_vec();
    bytes.extend((0..300_000u32).map(|i| (i % 251) as u8));
    std::fs::write(&path, &bytes).expect("write");

    let before = std::time::SystemTime::now();
    let file = client_for(&emulator)
        .upload("qwen-vl-plus", path.as_path())
        .await
        .expect("upload");
    assert!(
        file.url.starts_with("oss://dashscope-instant/") && file.url.ends_with("/cat.png"),
        "{}",
        file.url
    );
    assert_eq!(file.url, format!("oss://{}", file.key));
    assert_eq!(file.size, bytes.len() as u64);
    assert_eq!(file.model, "qwen-vl-plus");
    assert_eq!(file.attempts, 1);
    // The client's expiry is the storage's, or a moment earlier: never later, or a URL would be
    // used after it stopped resolving; and counted from no earlier than the call.
    let stored_until = emulator.object_expiry(&file.key).expect("stored");
    assert!(
        file.expires_at <= stored_until,
        "{:?} is after the emulator's {stored_until:?}",
        file.expires_at
    );
    assert!(file.expires_at >= before + Duration::from_secs(48 * 3600));
    assert_eq!(emulator.object_bytes(&file.key), Some(bytes));

    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn one_credential_serves_a_batch_and_later_calls() {
    let emulator = emulator(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    let sources: Vec<UploadSource> = (0..40)
        .map(|i| UploadSource::bytes(format!("f{i}.png"), PNG.to_vec()))
        .collect();
    let results = client.upload_many("qwen-vl-plus", sources).await;
    assert_eq!(results.len(), 40);
    for (i, r) in results.iter().enumerate() {
        let file = r.as_ref().expect("uploaded");
        assert!(
            file.key.ends_with(&format!("/f{i}.png")),
            "results out of order: {i} -> {}",
            file.key
        );
    }
    client
        .upload(
            "qwen-vl-plus",
            UploadSource::bytes("later.png", PNG.to_vec()),
        )
        .await
        .expect("later");
    let stats = emulator.stats();
    assert_eq!(
        stats.policy_requests, 1,
        "one credential for all: {stats:?}"
    );
    assert_eq!(stats.uploads_ok, 41);
    // Another model gets its own credential.
    client
        .upload("qwen-vl-max", UploadSource::bytes("x.png", PNG.to_vec()))
        .await
        .expect("other model");
    assert_eq!(emulator.stats().policy_requests, 2);
}

#[tokio::test]
async fn same_names_never_collide() {
    let emulator = emulator(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    let dir = temp_dir("names");
    let mut sources = Vec::new();
    for sub in ["a", "b", "c"] {
        std::fs::create_dir_all(dir.join(sub)).expect("dir");
        let path = dir.join(sub).join("cat.png");
        std::fs::write(&path, [PNG, sub.as_bytes()].concat()).expect("write");
        sources.push(UploadSource::path(path));
    }
    let results = client.upload_many("qwen-vl-plus", sources).await;
    let mut keys: Vec<String> = results
        .into_iter()
        .map(|r| r.expect("uploaded").key)
        .collect();
    let again = client
        .upload("qwen-vl-plus", dir.join("a").join("cat.png"))
        .await
        .expect("again");
    keys.push(again.key);
    // Concurrent uploads claim names in any order; each still gets its own key.
    let mut names: Vec<&str> = keys
        .iter()
        .map(|k| k.rsplit('/').next().unwrap_or_default())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["cat-2.png", "cat-3.png", "cat-4.png", "cat.png"]);
    assert!(
        keys[3].ends_with("/cat-4.png"),
        "a later call does not reuse a name"
    );
    for (key, sub) in keys.iter().zip(["a", "b", "c", "a"]) {
        assert_eq!(
            emulator.object_bytes(key),
            Some([PNG, sub.as_bytes()].concat()),
            "{key}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn credential_expiring_mid_batch_is_replaced() {
    let emulator = emulator(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    let first = client
        .upload_many(
            "qwen-vl-plus",
            (0..5).map(|i| UploadSource::bytes(format!("a{i}.png"), PNG.to_vec())),
        )
        .await;
    assert!(first.iter().all(Result::is_ok));
    // The emulator's clock passes the policy's expiration; the client's cache does not know.
    emulator.advance_clock(Duration::from_secs(301));
    let second = client
        .upload_many(
            "qwen-vl-plus",
            (0..5).map(|i| UploadSource::bytes(format!("b{i}.png"), PNG.to_vec())),
        )
        .await;
    for r in &second {
        let file = r.as_ref().expect("uploaded after a new credential");
        assert!(file.attempts <= 2, "{file:?}");
    }
    let stats = emulator.stats();
    assert_eq!(stats.policy_requests, 2, "{stats:?}");
    assert_eq!(stats.uploads_ok, 10);
    assert!(
        stats.uploads_rejected >= 1,
        "the expired policy was refused at least once"
    );
}

#[tokio::test]
async fn throttled_credential_requests_are_retried() {
    let emulator = emulator(EmulatorConfig::default()).await;
    emulator.inject(FaultKind::PolicyThrottle, 3);
    let file = client_for(&emulator)
        .upload("qwen-vl-plus", UploadSource::bytes("t.png", PNG.to_vec()))
        .await
        .expect("upload after 429s");
    assert_eq!(file.attempts, 1);
    let stats = emulator.stats();
    assert_eq!((stats.policy_throttled, stats.policy_requests), (3, 1));
}

#[tokio::test]
async fn a_429_storm_beyond_the_retry_budget_is_a_typed_error() {
    let emulator = emulator(EmulatorConfig::default()).await;
    emulator.inject(FaultKind::PolicyThrottle, 100);
    let err = client_for(&emulator)
        .upload("qwen-vl-plus", UploadSource::bytes("t.png", PNG.to_vec()))
        .await
        .expect_err("storm");
    assert!(matches!(err, Error::RateLimited(_)), "{err:?}");
    assert_eq!(emulator.stats().policy_throttled, 5, "5 tries in all");
}

#[tokio::test]
async fn exhausted_quota_is_not_retried() {
    let emulator = emulator(EmulatorConfig {
        capacity_limit_mb: 1,
        ..EmulatorConfig::default()
    })
    .await;
    let client = client_for(&emulator);
    client
        .upload(
            "qwen-vl-plus",
            UploadSource::bytes("big.bin", vec![1u8; 1024 * 1024]),
        )
        .await
        .expect("fills the quota");
    let err = client
        .upload("qwen-vl-max", UploadSource::bytes("more.png", PNG.to_vec()))
        .await
        .expect_err("quota");
    assert!(
        matches!(err, Error::QuotaExhausted(_)) && !err.is_retryable(),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried() {
    let emulator = emulator(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    emulator.inject(FaultKind::UploadError, 2);
    let file = client
        .upload("qwen-vl-plus", UploadSource::bytes("e.png", PNG.to_vec()))
        .await
        .expect("after 500s");
    assert_eq!(file.attempts, 3);
    emulator.inject(FaultKind::UploadDrop, 1);
    let big = vec![3u8; 2 * 1024 * 1024];
    let file = client
        .upload("qwen-vl-plus", UploadSource::bytes("d.bin", big.clone()))
        .await
        .expect("after a drop");
    assert_eq!(file.attempts, 2);
    assert_eq!(emulator.object_bytes(&file.key), Some(big));
}

#[tokio::test]
async fn an_answer_lost_after_the_object_landed_is_still_a_success() {
    let emulator = emulator(EmulatorConfig::default()).await;
    emulator.inject(FaultKind::UploadLoseAnswer, 1);
    let file = client_for(&emulator)
        .upload("qwen-vl-plus", UploadSource::bytes("l.png", PNG.to_vec()))
        .await
        .expect("landed");
    assert_eq!(
        file.attempts, 2,
        "the retry found the object in place (409)"
    );
    assert_eq!(emulator.object_bytes(&file.key).as_deref(), Some(PNG));
    let stats = emulator.stats();
    assert_eq!(stats.objects, 1, "exactly one object: {stats:?}");
}

#[tokio::test]
async fn an_answer_lost_on_the_last_try_is_verified_not_reported_failed() {
    let emulator = emulator(EmulatorConfig::default()).await;
    let client = Client::new(
        Config::new()
            .api_key(DEFAULT_API_KEY)
            .base_url(emulator.base_url())
            .retry(RetryPolicy::none()),
    )
    .expect("client");
    emulator.inject(FaultKind::UploadLoseAnswer, 1);
    let file = client
        .upload("qwen-vl-plus", UploadSource::bytes("v.png", PNG.to_vec()))
        .await
        .expect("the object landed");
    assert_eq!(file.attempts, 2);
    assert_eq!(emulator.stats().objects, 1);
}

#[tokio::test]
async fn retries_are_bounded() {
    let emulator = emulator(EmulatorConfig::default()).await;
    emulator.inject(FaultKind::UploadError, 50);
    let err = client_for(&emulator)
        .upload("qwen-vl-plus", UploadSource::bytes("x.png", PNG.to_vec()))
        .await
        .expect_err("500s");
    assert!(matches!(err, Error::ServerError(_)), "{err:?}");
    // Five tries, then one POST of the same key that only asks whether the last one landed.
    assert_eq!(emulator.stats().uploads_rejected, 6);
    assert_eq!(emulator.stats().objects, 0, "no false success");
}

#[tokio::test]
async fn limits_and_bad_paths_fail_before_sending_and_lose_nothing_else() {
    let emulator = emulator(EmulatorConfig::default().model(
        "tiny",
        ModelSpec {
            max_file_size_mb: 1,
            accepts: vec![MediaKind::Image],
            restricted: false,
            ..ModelSpec::default()
        },
    ))
    .await;
    let client = client_for(&emulator);
    let dir = temp_dir("bad");
    std::fs::write(dir.join("ok1.png"), PNG).expect("write");
    std::fs::write(dir.join("empty.png"), b"").expect("write");
    std::fs::write(dir.join("big.png"), vec![0u8; 1024 * 1024 + 1]).expect("write");
    std::fs::write(dir.join("ok2.png"), PNG).expect("write");
    let sources = vec![
        UploadSource::path(dir.join("ok1.png")),
        UploadSource::path(dir.join("missing.png")),
        UploadSource::path(dir.clone()),
        UploadSource::path(dir.join("empty.png")),
        UploadSource::path(dir.join("big.png")),
        UploadSource::path(dir.join("ok2.png")),
    ];
    let results = client.upload_many("tiny", sources).await;
    assert!(results[0].is_ok() && results[5].is_ok(), "{results:?}");
    assert!(
        matches!(&results[1], Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[2], Err(Error::NotAFile { .. })),
        "{:?}",
        results[2]
    );
    assert!(
        matches!(&results[3], Err(Error::EmptyFile { .. })),
        "{:?}",
        results[3]
    );
    assert!(
        matches!(
            &results[4],
            Err(Error::FileTooLarge {
                size: 1_048_577,
                limit: 1_048_576,
                ..
            })
        ),
        "{:?}",
        results[4]
    );
    let stats = emulator.stats();
    assert_eq!(
        (stats.uploads_ok, stats.uploads_rejected),
        (2, 0),
        "nothing bad was sent: {stats:?}"
    );
    assert_eq!(stats.bytes_received, 2 * PNG.len() as u64);
    let shown: Vec<String> = results[1..5]
        .iter()
        .map(|r| {
            r.as_ref()
                .err()
                .map(|e| e.to_string().replace(&dir.display().to_string(), "<DIR>"))
                .unwrap_or_default()
        })
        .collect();
    insta::assert_snapshot!(shown.join("\n"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn progress_reports_every_byte() {
    let emulator = emulator(EmulatorConfig::default()).await;
    let sizes = [300_000usize, 5, 1_000_000];
    let sources: Vec<UploadSource> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| UploadSource::bytes(format!("p{i}.bin"), vec![9u8; *n]))
        .collect();
    let last_total = Arc::new(AtomicU64::new(0));
    let seen = last_total.clone();
    let files = Arc::new(AtomicU64::new(0));
    let other = files.clone();
    let client = Client::new(
        Config::new()
            .api_key(DEFAULT_API_KEY)
            .base_url(emulator.base_url())
            .no_upload_cache()
            .on_upload(move |event| match event {
                dashscope_oss::UploadEvent::Progress(p) => {
                    seen.fetch_max(p.total_sent, Ordering::Relaxed);
                    assert!(p.file_sent <= p.file_size);
                }
                _ => {
                    other.fetch_add(1, Ordering::Relaxed);
                }
            }),
    )
    .expect("client");
    let results = client.upload_many("qwen-vl-plus", sources).await;
    // Files named by a request are reported; a direct upload's outcome is its return value.
    assert_eq!(files.load(Ordering::Relaxed), 0);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        last_total.load(Ordering::Relaxed),
        sizes.iter().sum::<usize>() as u64
    );
}

#[tokio::test]
async fn reader_sources_are_reopened_for_retries() {
    let emulator = emulator(EmulatorConfig::default()).await;
    emulator.inject(FaultKind::UploadDrop, 1);
    let opened = Arc::new(AtomicU64::new(0));
    let count = opened.clone();
    let data: Arc<[u8]> = vec![5u8; 512 * 1024].into();
    let bytes = data.clone();
    let source = UploadSource::reader("stream.bin", data.len() as u64, move || {
        count.fetch_add(1, Ordering::Relaxed);
        let bytes = bytes.clone();
        async move { Ok(std::io::Cursor::new(bytes)) }
    });
    let file = client_for(&emulator)
        .upload("qwen-vl-plus", source)
        .await
        .expect("upload");
    assert_eq!(opened.load(Ordering::Relaxed), 2);
    assert_eq!(emulator.object_bytes(&file.key).as_deref(), Some(&data[..]));
    // A reader shorter than announced is an I/O error, not a truncated object.
    let short = UploadSource::reader("short.bin", 100, || async {
        Ok(std::io::Cursor::new(vec![1u8; 10]))
    });
    let err = client_for(&emulator)
        .upload("qwen-vl-plus", short)
        .await
        .expect_err("short");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}

#[tokio::test]
async fn the_earlier_of_expire_in_seconds_and_the_policy_expiration_counts() {
    // As seen from the service, but the other way round: expire_in_seconds says 300 s while the
    // policy document itself expires after 5 s. The client plans with 5 s (less a fifth as its
    // margin), so after 4.5 s it asks for a new credential although the old one would still
    // pass OSS for half a second: only a client that planned with the policy's own expiration
    // makes two credential requests here. Each upload has seconds of slack before OSS refuses.
    let emulator = emulator(EmulatorConfig {
        policy_expiration: Some(Duration::from_secs(5)),
        ..EmulatorConfig::default()
    })
    .await;
    let client = client_for(&emulator);
    client
        .upload("qwen-vl-plus", UploadSource::bytes("a.png", PNG.to_vec()))
        .await
        .expect("first");
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let file = client
        .upload("qwen-vl-plus", UploadSource::bytes("b.png", PNG.to_vec()))
        .await
        .expect("second");
    assert_eq!(file.attempts, 1);
    let stats = emulator.stats();
    assert_eq!(
        (stats.policy_requests, stats.uploads_rejected),
        (2, 0),
        "the client planned with the policy's own expiration: {stats:?}"
    );
}
