//! How every medium of a request becomes something its model can read, against the emulator:
//! which local files may be uploaded (`Config::upload_local_files`), large `data:` URIs, an
//! `oss://` URL of another model, and `http(s)://` URLs re-hosted. The emulator's counters
//! prove what was (not) uploaded and sent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, Stats};
use dashscope_oss::chat::{ChatRequest, Message};
use dashscope_oss::config::LocalFiles;
use dashscope_oss::{Client, Config, Error, RetryPolicy};

/// A PNG header the emulator sniffs as an image (448×280).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\xc0\0\0\x01\x18\x08\x02\0\0\0";

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "dashscope-oss-media-test-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        Self(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator")
}

fn config(emulator: &Emulator) -> Config {
    Config::new()
        .api_key(DEFAULT_API_KEY)
        .base_url(emulator.base_url())
        .retry(RetryPolicy::default().initial_backoff(Duration::from_millis(5)))
}

/// (uploads stored, model calls, model calls with the OSS header).
fn seen(stats: Stats) -> (u64, u64, u64) {
    (
        stats.uploads_ok,
        stats.chat_requests,
        stats.chat_requests_with_resolve_header,
    )
}

fn ask(files: &[&str]) -> ChatRequest {
    let mut message = Message::user().text("What is this?");
    for f in files {
        message = message.image(*f);
    }
    ChatRequest::new("qwen-vl-plus").message(message)
}

fn refused(err: &Error) -> bool {
    matches!(err, Error::LocalFileRefused { .. })
}

#[tokio::test]
async fn only_regular_files_under_the_admitted_directories_are_uploaded() {
    let emulator = emulator().await;
    let root = Dir::new("root");
    let outside = Dir::new("outside");
    let inside = root.file("cat.png", PNG);
    let secret = outside.file("secret.png", PNG);
    let client = Client::new(config(&emulator).upload_local_files(LocalFiles::under([&root.0])))
        .expect("client");

    // Inside, by path and by file:// URI: uploaded, sent with the header.
    let uri = format!("file://{}", inside.display());
    let path = inside.display().to_string();
    client
        .chat_completion(ask(&[&path]))
        .await
        .expect("a file inside");
    client
        .multimodal_generation(ask(&[&uri]))
        .await
        .expect("a file:// URI inside");
    let before = seen(emulator.stats());
    // The second is the first's upload again, from the upload cache.
    assert_eq!(before, (1, 2, 2));

    // Outside, a symlink inside that points outside, a `..` out of the root, /proc through a
    // link, and a FIFO inside: each a typed error, and nothing uploaded or sent.
    let link = root.0.join("link.png");
    std::os::unix::fs::symlink(&secret, &link).expect("symlink");
    let environ = root.0.join("environ.png");
    std::os::unix::fs::symlink("/proc/self/environ", &environ).expect("symlink");
    let climb = root
        .0
        .join("..")
        .join(outside.0.file_name().expect("name"))
        .join("secret.png");
    let fifo = root.0.join("pipe.png");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    for bad in [&secret, &link, &environ, &climb] {
        let shown = bad.display().to_string();
        let err = client
            .chat_completion(ask(&[&shown]))
            .await
            .expect_err("refused");
        assert!(refused(&err), "{shown}: {err:?}");
        assert!(err.to_string().contains(&shown), "{err}");
    }
    let err = client
        .chat_completion(ask(&[&fifo.display().to_string()]))
        .await
        .expect_err("a FIFO");
    assert!(matches!(err, Error::NotAFile { .. }), "{err:?}");
    // One refused file refuses the request: the admitted one beside it is not uploaded either.
    let err = client
        .chat_completion(ask(&[&path, &format!("file://{}", secret.display())]))
        .await
        .expect_err("one refused");
    assert!(refused(&err), "{err:?}");
    assert_eq!(seen(emulator.stats()), before, "nothing uploaded or sent");

    // A client that admits no directory refuses every path; URLs still go as they are.
    let none =
        Client::new(config(&emulator).upload_local_files(LocalFiles::under(Vec::<PathBuf>::new())))
            .expect("client");
    let err = none.chat_completion(ask(&[&path])).await.expect_err("none");
    assert!(refused(&err), "{err:?}");
    none.chat_completion(ask(&["https://example.com/cat.png"]))
        .await
        .expect("a URL");
    assert_eq!(seen(emulator.stats()), (1, 3, 2));
}

#[tokio::test]
async fn a_remembered_source_outside_the_admitted_directories_is_not_read_again() {
    let emulator = emulator().await;
    let outside = Dir::new("remembered");
    let file = outside.file("cat.png", PNG);
    // Uploaded by a client that may read it, then its URL ends within the margin.
    let cache = Dir::new("remembered-cache");
    let open = Client::new(config(&emulator).upload_cache(&cache.0)).expect("client");
    let url = open
        .upload("qwen-vl-plus", &*file)
        .await
        .expect("upload")
        .url;
    drop(open);
    let strict = Client::new(
        config(&emulator)
            .upload_cache(&cache.0)
            .upload_cache_margin(Duration::from_secs(49 * 3600))
            .upload_local_files(LocalFiles::under([Path::new("/nonexistent-root")])),
    )
    .expect("client");
    let before = seen(emulator.stats());
    let err = strict
        .chat_completion(ask(&[&url]))
        .await
        .expect_err("not renewed from a file it may not read");
    assert!(matches!(err, Error::UrlExpired { .. }), "{err:?}");
    assert_eq!(seen(emulator.stats()), before, "nothing uploaded or sent");
}
