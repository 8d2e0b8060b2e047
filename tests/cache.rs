//! The upload cache against the emulator: what is a hit and what must miss, the margin, healing
//! a URL the storage lost, a stale URL in a chat history, a damaged cache file, and small media
//! sent inline. The emulator's counters prove what was (not) sent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, Stats};
use dashscope_oss::chat::{ChatRequest, Message};
use dashscope_oss::{Client, Config, Error, RetryPolicy};

mod scratch;
use scratch::{Dir, PNG};

/// A PNG of its own content (the tag), written and left to settle: a fingerprint is trusted
/// only for a file that last changed more than a timestamp tick before it was taken.
fn png(path: &Path, tag: &str) -> PathBuf {
    let mut bytes = PNG.to_vec();
    bytes.extend_from_slice(tag.as_bytes());
    std::fs::write(path, bytes).expect("write");
    std::thread::sleep(Duration::from_millis(250));
    path.to_path_buf()
}

async fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::default().account("team", &["sk-team-one", "sk-team-two"]))
        .await
        .expect("emulator")
}

fn config(emulator: &Emulator) -> Config {
    Config::new()
        .api_key(DEFAULT_API_KEY)
        .base_url(emulator.base_url())
        .retry(RetryPolicy::default().initial_backoff(Duration::from_millis(5)))
}

fn client(config: Config) -> Client {
    Client::new(config).expect("client")
}

/// (credential requests, uploads stored, model calls).
fn sent(stats: Stats) -> (u64, u64, u64) {
    (stats.policy_requests, stats.uploads_ok, stats.chat_requests)
}

#[tokio::test]
async fn a_second_upload_of_the_same_content_sends_nothing() {
    let emulator = emulator().await;
    let dir = Dir::new("cache", "hit");
    let cat = png(&dir.join("cat.png"), "hit");
    let client = client(config(&emulator));
    let first = client.upload("qwen-vl-plus", &*cat).await.expect("upload");
    assert!(!first.from_cache);
    let second = client.upload("qwen-vl-plus", &*cat).await.expect("upload");
    assert!(second.from_cache);
    assert_eq!((&second.url, second.attempts), (&first.url, 0));
    // Kept to the millisecond, never later than the real expiry.
    let early = first
        .expires_at
        .duration_since(second.expires_at)
        .expect("not later");
    assert!(early < Duration::from_millis(1), "{early:?}");
    assert_eq!(sent(emulator.stats()), (1, 1, 0));
    // The same bytes under another name (a copy) are the same content.
    let copy = dir.join("copy.png");
    std::fs::copy(&cat, &copy).expect("copy");
    let third = client.upload("qwen-vl-plus", &*copy).await.expect("upload");
    assert_eq!((third.url, third.from_cache), (first.url.clone(), true));
    // A model call naming the file uses the URL too.
    client
        .chat_completion(
            ChatRequest::new("qwen-vl-plus").message(Message::user().image(&*cat).text("hi")),
        )
        .await
        .expect("chat");
    assert_eq!(sent(emulator.stats()), (1, 1, 1));
    // Off, every upload sends its file.
    let uncached = dashscope_oss::Client::new(config(&emulator).no_upload_cache()).expect("client");
    let fourth = uncached
        .upload("qwen-vl-plus", &*cat)
        .await
        .expect("upload");
    assert!(!fourth.from_cache && fourth.url != first.url);
    assert_eq!(emulator.stats().uploads_ok, 2);
}

#[tokio::test]
async fn another_model_key_or_base_url_misses() {
    let emulator = emulator().await;
    let dir = Dir::new("cache", "miss");
    let cache = dir.join("cache");
    let cat = png(&dir.join("cat.png"), "miss");
    let one = client(
        config(&emulator)
            .api_key("sk-team-one")
            .upload_cache(&cache),
    );
    let url = one.upload("qwen-vl-plus", &*cat).await.expect("upload").url;

    // Another model: its own upload (only the model it was uploaded for can read a URL).
    let other_model = one.upload("qwen-vl-max", &*cat).await.expect("upload");
    assert!(!other_model.from_cache && other_model.url != url);
    // Another key of the same account, sharing the cache directory: a miss (a miss costs an
    // upload; a wrong hit, a failed model call).
    let two = client(
        config(&emulator)
            .api_key("sk-team-two")
            .upload_cache(&cache),
    );
    let other_key = two.upload("qwen-vl-plus", &*cat).await.expect("upload");
    assert!(!other_key.from_cache && other_key.url != url);
    // The same key from another process (a new client on the directory): a hit. (A client
    // writes its uploads to the directory in batches, at least once a second, and when it is
    // dropped; flushed here, as another process would find them.)
    one.upload_cache().expect("cache").flush().expect("flush");
    let again = client(
        config(&emulator)
            .api_key("sk-team-one")
            .upload_cache(&cache),
    );
    let hit = again.upload("qwen-vl-plus", &*cat).await.expect("upload");
    assert_eq!((hit.url, hit.from_cache), (url, true));
    // Another base URL (the same emulator by another name): a miss.
    let by_name = emulator.base_url().replace("127.0.0.1", "localhost");
    let elsewhere = client(
        config(&emulator)
            .api_key("sk-team-one")
            .base_url(by_name)
            .upload_cache(&cache),
    );
    assert!(
        !elsewhere
            .upload("qwen-vl-plus", &*cat)
            .await
            .expect("upload")
            .from_cache
    );
    assert_eq!(emulator.stats().uploads_ok, 4);
    // Nothing secret is written.
    for c in [&one, &two, &again, &elsewhere] {
        c.upload_cache().expect("cache").flush().expect("flush");
    }
    let written = std::fs::read_to_string(cache.join("uploads.json")).expect("cache file");
    assert!(!written.contains("sk-team"), "{written}");
    assert!(!written.contains("Signature") && !written.contains("policy\""));
}

#[tokio::test]
async fn a_same_size_rewrite_in_the_same_second_misses() {
    let emulator = emulator().await;
    let dir = Dir::new("cache", "rewrite");
    let cache = dir.join("cache");
    let path = png(&dir.join("photo.png"), "first!");
    let client = client(config(&emulator).upload_cache(&cache));
    let first = client.upload("qwen-vl-plus", &*path).await.expect("upload");
    // Rewritten with other bytes of the same size, its modification time put back: only the
    // change time (which no program can set) tells.
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    let mut bytes = PNG.to_vec();
    bytes.extend_from_slice(b"second");
    std::fs::write(&path, &bytes).expect("rewrite");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(modified))
        .expect("set mtime");
    assert_eq!(
        std::fs::metadata(&path).expect("meta").len() as usize,
        bytes.len()
    );
    let second = client.upload("qwen-vl-plus", &*path).await.expect("upload");
    assert!(!second.from_cache && second.url != first.url);
    assert_eq!(
        emulator.object_bytes(&second.key).as_deref(),
        Some(&bytes[..]),
        "the new URL holds the new content"
    );
    // Unchanged since: a hit on the new upload.
    std::thread::sleep(Duration::from_millis(250));
    let third = client.upload("qwen-vl-plus", &*path).await.expect("upload");
    assert_eq!((third.url, third.from_cache), (second.url, true));
}

#[tokio::test]
async fn a_url_is_reused_only_while_it_outlasts_the_margin() {
    let emulator = emulator().await;
    let dir = Dir::new("cache", "margin");
    let cache = dir.join("cache");
    let cat = png(&dir.join("cat.png"), "margin");
    let uploaded = client(config(&emulator).upload_cache(&cache))
        .upload("qwen-vl-plus", &*cat)
        .await
        .expect("upload");
    // A fresh URL has (almost) 48 hours left: more than 47 h 59 min, less than 48 h.
    let within = client(
        config(&emulator)
            .upload_cache(&cache)
            .upload_cache_margin(Duration::from_secs(48 * 3600 - 60)),
    );
    assert!(
        within
            .upload("qwen-vl-plus", &*cat)
            .await
            .expect("upload")
            .from_cache
    );
    let beyond = client(
        config(&emulator)
            .upload_cache(&cache)
            .upload_cache_margin(Duration::from_secs(48 * 3600)),
    );
    let renewed = beyond.upload("qwen-vl-plus", &*cat).await.expect("upload");
    assert!(!renewed.from_cache && renewed.url != uploaded.url);
    assert_eq!(emulator.stats().uploads_ok, 2);
}

#[tokio::test]
async fn a_url_the_storage_lost_is_uploaded_again_and_the_call_sent_once_more() {
    let emulator = emulator().await;
    let dir = Dir::new("cache", "heal");
    let cat = png(&dir.join("cat.png"), "heal");
    let client = client(config(&emulator));
    let ask = || ChatRequest::new("qwen-vl-plus").message(Message::user().image(&*cat).text("?"));
    client.chat_completion(ask()).await.expect("first call");
    let lost = client.upload("qwen-vl-plus", &*cat).await.expect("cached");
    assert!(lost.from_cache);
    assert!(emulator.forget_object(&lost.key));

    let answer = client.chat_completion(ask()).await.expect("healed");
    let text = answer.text().unwrap_or_default().into_owned();
    assert!(!text.contains(&lost.url), "{text}");
    // Two uploads, and three model calls: the first, the refused one, the one sent again.
    assert_eq!(sent(emulator.stats()), (1, 2, 3));
    let healed = client.upload("qwen-vl-plus", &*cat).await.expect("cached");
    assert!(healed.from_cache && healed.url != lost.url && text.contains(&healed.url));

    // A file uploaded for the call and refused (not an image) is the media's fault: no second
    // upload, no second call.
    let before = sent(emulator.stats());
    let fake = dir.join("fake.png");
    std::fs::write(&fake, b"this is not an image at all").expect("write");
    let err = client
        .chat_completion(
            ChatRequest::new("qwen-vl-plus").message(Message::user().image(&*fake).text("?")),
        )
        .await
        .expect_err("not an image");
    assert!(matches!(err, Error::DataInspection(_)), "{err:?}");
    assert_eq!(
        sent(emulator.stats()),
        (before.0, before.1 + 1, before.2 + 1)
    );

    // A URL the cache does not know is not healed: the error stands.
    let foreign = "oss://dashscope-instant/x/2026-01-01/y/unknown.png";
    let err = client
        .chat_completion(
            ChatRequest::new("qwen-vl-plus").message(Message::user().image(foreign).text("?")),
        )
        .await
        .expect_err("unknown URL");
    assert!(matches!(err, Error::InvalidUrl(_)), "{err:?}");
    assert_eq!(emulator.stats().uploads_ok, 3);
}

#[tokio::test]
async fn a_stale_url_in_a_history_is_renewed_or_refused_before_sending() {
    let emulator = emulator().await;
    let dir = Dir::new("cache", "stale");
    let cache = dir.join("cache");
    let cat = png(&dir.join("cat.png"), "stale");
    let old = client(config(&emulator).upload_cache(&cache))
        .upload("qwen-vl-plus", &*cat)
        .await
        .expect("upload")
        .url;
    // Later (a margin of 48 h makes every URL stale), the history holds the old URL.
    let later = client(
        config(&emulator)
            .upload_cache(&cache)
            .upload_cache_margin(Duration::from_secs(48 * 3600)),
    );
    let history = || {
        ChatRequest::new("qwen-vl-plus")
            .message(Message::user().image(old.as_str()).text("what is this?"))
            .message(Message::assistant("a cat"))
            .message(Message::user().text("and its colour?"))
    };
    let answer = later.chat_completion(history()).await.expect("renewed");
    let text = answer.text().unwrap_or_default();
    assert!(!text.contains(&old) && text.contains("oss://"), "{text}");
    assert_eq!(sent(emulator.stats()), (2, 2, 1));

    // The file gone: a typed error, and no model call.
    std::fs::remove_file(&cat).expect("remove");
    let err = later.chat_completion(history()).await.expect_err("expired");
    match &err {
        Error::UrlExpired { url, file, .. } => {
            assert_eq!((url, file.as_deref()), (&old, Some(&*cat)));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("nothing was sent"));
    assert_eq!(emulator.stats().chat_requests, 1);
}

#[tokio::test]
async fn a_damaged_cache_file_is_a_warning_and_a_fresh_start() {
    let emulator = emulator().await;
    let dir = Dir::new("cache", "damaged");
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).expect("dir");
    let cat = png(&dir.join("cat.png"), "damaged");
    // An entry no upload can have made (it would never expire) is dropped, never served.
    let forever = format!(
        "{{\"version\":1,\"marks\":[],\"entries\":[{{\"content\":\"{}\",\"content_type\":\"image/png\",\
         \"model\":\"qwen-vl-plus\",\"account\":\"x\",\"url\":\"oss://forever/cat.png\",\"size\":1,\
         \"uploaded_at_ms\":0,\"expires_at_ms\":18446744073709551615,\"source\":null}}]}}",
        "0".repeat(64)
    );
    std::fs::write(cache.join("uploads.json"), &forever).expect("write");
    let listed = dashscope_oss::cache::UploadCache::on_disk(&cache).list();
    assert!(listed.is_empty(), "{listed:?}");
    for damage in [
        &b"{\"version\":1,\"entries\":[{\"url\":"[..],
        b"\0\0\0garbage",
        b"{\"version\":99,\"entries\":[],\"marks\":[]}",
    ] {
        std::fs::write(cache.join("uploads.json"), damage).expect("damage");
        let client = client(config(&emulator).upload_cache(&cache));
        let file = client.upload("qwen-vl-plus", &*cat).await.expect("upload");
        assert!(!file.from_cache);
        let warning = client
            .upload_cache()
            .and_then(|c| c.take_warning())
            .expect("a warning");
        assert!(warning.contains("starting afresh"), "{warning}");
        // Written whole again: the next client hits without a warning.
        client
            .upload_cache()
            .expect("cache")
            .flush()
            .expect("flush");
        let next = self::client(config(&emulator).upload_cache(&cache));
        let hit = next.upload("qwen-vl-plus", &*cat).await.expect("upload");
        assert_eq!((hit.url, hit.from_cache), (file.url, true));
        assert_eq!(next.upload_cache().and_then(|c| c.take_warning()), None);
    }
}

#[tokio::test]
async fn small_images_and_audio_go_inline_and_the_rest_is_uploaded() {
    let emulator = emulator().await;
    let dir = Dir::new("cache", "inline");
    let cat = png(&dir.join("cat.png"), "inline");
    let mut wav = b"RIFF\x24\0\0\0WAVEfmt ".to_vec();
    wav.resize(64, 0);
    let voice = dir.join("voice.wav");
    std::fs::write(&voice, &wav).expect("write");
    let mut mp4 = b"\0\0\0\x18ftypmp42".to_vec();
    mp4.resize(64, 0);
    let clip = dir.join("clip.mp4");
    std::fs::write(&clip, &mp4).expect("write");
    let client = client(config(&emulator).inline_below(1024));

    // Omni answers streamed calls only, as the service does.
    let stream = client
        .chat_completion_stream(
            ChatRequest::new("qwen-omni-turbo").message(
                Message::user()
                    .image(&*cat)
                    .audio(&*voice)
                    .video(&*clip)
                    .text("?"),
            ),
        )
        .await
        .expect("chat");
    let answer = dashscope_oss::chat::collect_chat(stream)
        .await
        .expect("assembled");
    let text = answer.text().unwrap_or_default();
    assert_eq!(text.matches("data URI").count(), 2, "{text}");
    assert_eq!(
        text.matches("oss://").count(),
        1,
        "the video is uploaded: {text}"
    );
    assert_eq!(emulator.stats().uploads_ok, 1);

    // Native: the same rule.
    let native = client
        .multimodal_generation(
            ChatRequest::new("qwen-vl-plus").message(Message::user().image(&*cat).text("?")),
        )
        .await
        .expect("generate");
    assert!(native.text().unwrap_or_default().contains("data URI"));
    // Above the size: uploaded.
    let small = self::client(config(&emulator).inline_below(8));
    let answer = small
        .chat_completion(
            ChatRequest::new("qwen-vl-plus").message(Message::user().image(&*cat).text("?")),
        )
        .await
        .expect("chat");
    assert!(answer.text().unwrap_or_default().contains("oss://"));
    assert_eq!(emulator.stats().uploads_ok, 2);
}

#[tokio::test]
async fn the_emulator_refuses_a_data_uri_over_the_service_limit() {
    let emulator = emulator().await;
    // A client that sends every data: URI as it is (by default it uploads those over the
    // limit: tests/media.rs).
    let client = client(config(&emulator).upload_data_uris_over(usize::MAX));
    let mut big = PNG.to_vec();
    // Just over 10 MiB once encoded.
    big.resize(7 * 1024 * 1024 + 512 * 1024, 0);
    use base64::Engine;
    let uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&big)
    );
    let err = client
        .chat_completion(
            ChatRequest::new("qwen-vl-plus").message(Message::user().image(uri).text("?")),
        )
        .await
        .expect_err("over the limit");
    assert!(
        err.to_string()
            .contains("Exceeded limit on max bytes per data-uri item : 10485760"),
        "{err}"
    );
    assert_eq!(err.status(), Some(400));
}

/// A non-UTF-8 file name in a batch (#22): its entry and fingerprint are written exactly (JSON
/// strings cannot hold the name, so it is kept as bytes), the other files' entries are written
/// too, and the next client hits the cache for all of them.
#[cfg(unix)]
#[tokio::test]
async fn a_non_utf8_name_in_a_batch_breaks_no_cache_write() {
    use std::os::unix::ffi::OsStringExt;
    let emulator = emulator().await;
    let dir = Dir::new("cache", "non-utf8");
    let cache = dir.join("cache");
    let latin1 = dir
        .0
        .join(std::ffi::OsString::from_vec(b"caf\xe9.png".to_vec()));
    let files = [
        png(&dir.join("cat.png"), "non-utf8 cat"),
        png(&latin1, "non-utf8 cafe"),
        png(&dir.join("dog.png"), "non-utf8 dog"),
    ];
    let first = client(config(&emulator).upload_cache(&cache));
    let stored = first
        .upload_many("qwen-vl-plus", files.iter().map(|p| &**p))
        .await;
    let urls: Vec<String> = stored
        .into_iter()
        .map(|r| r.expect("uploaded").url)
        .collect();
    let on_disk = first.upload_cache().expect("cache");
    on_disk.flush().expect("the cache file is written");
    assert_eq!(on_disk.take_warning(), None);
    drop(first);
    let uploads = emulator.stats().uploads_ok;
    assert_eq!(uploads, 3);

    let listed = dashscope_oss::cache::UploadCache::on_disk(&cache).list();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        listed.iter().any(|e| e.source.as_deref() == Some(&*latin1)),
        "the non-UTF-8 source is kept exactly: {listed:?}"
    );
    let next = client(config(&emulator).upload_cache(&cache));
    let again = next
        .upload_many("qwen-vl-plus", files.iter().map(|p| &**p))
        .await;
    for (file, url) in again.into_iter().zip(&urls) {
        let file = file.expect("from the cache");
        assert!(file.from_cache, "{file:?}");
        assert_eq!(&file.url, url);
    }
    assert_eq!(emulator.stats().uploads_ok, uploads, "nothing sent again");
    assert_eq!(next.upload_cache().and_then(|c| c.take_warning()), None);
}

/// A symlink planted as the cache's lock file, to a path that does not exist (#22): the upload
/// still succeeds, the cache says clearly why it was not written, and the link's target is
/// never created.
#[cfg(unix)]
#[tokio::test]
async fn a_symlinked_lock_file_is_refused_and_its_target_not_created() {
    let emulator = emulator().await;
    let dir = Dir::new("cache", "lock-link");
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).expect("dir");
    let target = dir.join("planted-target");
    std::os::unix::fs::symlink(&target, cache.join("uploads.lock")).expect("symlink");
    let cat = png(&dir.join("cat.png"), "lock-link");
    let client = client(config(&emulator).upload_cache(&cache));
    let file = client.upload("qwen-vl-plus", &*cat).await.expect("upload");
    assert!(!file.from_cache);
    let on_disk = client.upload_cache().expect("cache");
    let err = on_disk.flush().expect_err("the lock is a symlink");
    assert!(
        err.to_string().contains("uploads.lock is a symlink"),
        "{err}"
    );
    // The batched write after the upload failed the same way, and said so once.
    let warning = on_disk.take_warning().unwrap_or_default();
    assert!(warning.contains("uploads.lock is a symlink"), "{warning}");
    drop(client);
    assert!(!target.exists(), "the link's target was created");
    assert!(
        !cache.join("uploads.json").exists(),
        "written without the lock"
    );
}

/// A miss costs no read ahead (issue #22, and #21's "a miss costs no extra read"): no entry of
/// the file's size exists for the model, so the file is only read as it is sent and its digest
/// recorded from what was sent; the second upload, which can hit, is looked up (read ahead) and
/// sends nothing. A 3 GiB sparse file over the model's 1 MiB limit is refused by its size, never
/// read. Which files were read ahead is told by the `test-hooks` feature.
#[cfg(feature = "test-hooks")]
#[tokio::test]
async fn a_miss_is_not_read_ahead_and_an_oversized_file_not_at_all() {
    use dashscope_emulator::{MediaKind, ModelSpec};
    use dashscope_oss::cache::hashed_ahead;
    let emulator = Emulator::start(EmulatorConfig::default().model(
        "qwen-vl-tiny",
        ModelSpec {
            max_file_size_mb: 1,
            accepts: vec![MediaKind::Image],
            ..ModelSpec::default()
        },
    ))
    .await
    .expect("emulator");
    let dir = Dir::new("cache", "miss-reads");
    let client = client(config(&emulator).upload_cache(dir.join("cache")));
    let big = dir.join("big.png");
    let mut bytes = PNG.to_vec();
    bytes.resize(512 * 1024, 7);
    std::fs::write(&big, &bytes).expect("write");
    let absolute = std::fs::canonicalize(&big).expect("absolute");
    let read_ahead = |path: &Path| hashed_ahead().iter().filter(|p| *p == path).count();

    let first = client
        .upload("qwen-vl-plus", dashscope_oss::UploadSource::path(&big))
        .await
        .expect("upload");
    assert_eq!(read_ahead(&absolute), 0, "a certain miss is not read ahead");
    let second = client
        .upload("qwen-vl-plus", dashscope_oss::UploadSource::path(&big))
        .await
        .expect("upload");
    assert!(
        second.from_cache,
        "the digest of what was sent was recorded"
    );
    assert_eq!(second.url, first.url);
    assert_eq!(read_ahead(&absolute), 1, "a possible hit is looked up");
    assert_eq!(emulator.stats().uploads_ok, 1);

    let huge = dir.join("huge.png");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(3 << 30))
        .expect("a sparse file");
    let err = client
        .upload("qwen-vl-tiny", dashscope_oss::UploadSource::path(&huge))
        .await
        .expect_err("over the limit");
    assert!(matches!(err, Error::FileTooLarge { .. }), "{err:?}");
    let huge = std::fs::canonicalize(&huge).expect("absolute");
    assert_eq!(read_ahead(&huge), 0, "refused by its size, never hashed");
    assert_eq!(emulator.stats().uploads_ok, 1);
}

/// A cache write that has to wait for the lock does not stall the other tasks of a
/// current-thread runtime (#21). The lock is held by a thread of this test, with the same OS
/// file lock another process takes. While the upload's write waits for it (a test hook says
/// when the write found it held), a counting task goes on working on the runtime's one thread,
/// and only after it has done 1,000 turns of work is the lock let go. Counted, never timed:
/// were the wait on the runtime's thread, the counting task could not run, nobody would tell
/// the holder to let go, and the holder gives up after a long while and the test fails.
#[cfg(feature = "test-hooks")]
#[test]
fn a_cache_write_waiting_for_the_lock_stalls_no_other_task() {
    use dashscope_oss::cache::{UploadCache, lock_waits};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = Dir::new("cache", "lock-wait");
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).expect("dir");
    let cat = png(&dir.join("cat.png"), "lock-wait");
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let lock_path = cache.join("uploads.lock");
    let holder = std::thread::spawn(move || {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .expect("lock file");
        file.lock().expect("lock");
        locked_tx.send(()).expect("say locked");
        // Only a broken build waits this long: the counting task never got to say "let go".
        let told = release_rx.recv_timeout(Duration::from_secs(120)).is_ok();
        file.unlock().expect("unlock");
        told
    });
    locked_rx.recv().expect("locked");
    let waits = |dir: &Path| lock_waits().iter().filter(|d| *d == dir).count();
    runtime.block_on(async {
        let emulator = emulator().await;
        let client = client(config(&emulator).upload_cache(&cache));
        let upload = tokio::spawn(async move { client.upload("qwen-vl-plus", &*cat).await });
        let mut work = 0u64;
        while waits(&cache) == 0 {
            assert!(!upload.is_finished(), "the upload ended without waiting");
            tokio::task::yield_now().await;
            work += 1;
        }
        let waiting_since = work;
        for _ in 0..1000 {
            tokio::task::yield_now().await;
            work += 1;
        }
        assert_eq!(work - waiting_since, 1000);
        assert!(
            !upload.is_finished(),
            "the upload's write did not wait for the lock"
        );
        assert_eq!(emulator.stats().uploads_ok, 1, "the file was stored first");
        release_tx.send(()).expect("let go");
        let file = upload.await.expect("task").expect("upload");
        assert!(!file.from_cache);
        assert!(
            holder.join().expect("holder"),
            "the lock was let go only because nobody said so: the runtime was stalled"
        );
        assert_eq!(waits(&cache), 1);
        // Written once the lock was free.
        let listed = tokio::task::spawn_blocking(move || UploadCache::on_disk(&cache).list())
            .await
            .expect("listed");
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].url, file.url);
    });
}
