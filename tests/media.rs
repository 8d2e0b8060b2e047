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

mod scratch;
use scratch::{Dir, PNG};

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
    let root = Dir::new("media", "root");
    let outside = Dir::new("media", "outside");
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
    let outside = Dir::new("media", "remembered");
    let file = outside.file("cat.png", PNG);
    // Uploaded by a client that may read it, then its URL ends within the margin.
    let cache = Dir::new("media", "remembered-cache");
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

type Events = std::sync::Arc<std::sync::Mutex<Vec<dashscope_oss::UploadEvent>>>;

fn observed(config: Config) -> (Config, Events) {
    let events: Events = Default::default();
    let sink = events.clone();
    let config = config.on_upload(move |e: &dashscope_oss::UploadEvent| {
        if !matches!(e, dashscope_oss::UploadEvent::Progress(_)) {
            sink.lock().expect("events").push(e.clone());
        }
    });
    (config, events)
}

fn origins(events: &Events) -> Vec<dashscope_oss::MediaOrigin> {
    events
        .lock()
        .expect("events")
        .iter()
        .filter_map(|e| match e {
            dashscope_oss::UploadEvent::Rehosted { origin, .. } => Some(origin.clone()),
            _ => None,
        })
        .collect()
}

fn data_uri(bytes: &[u8]) -> String {
    use base64::Engine;
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The key of the object an answer of the emulator names (`…, oss://bucket/key…`).
fn object_key(answer: &str) -> String {
    let at = answer.find("oss://").expect("an oss:// URL in the answer");
    let url: String = answer[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ';')
        .collect();
    let url = url.trim_end_matches(['.', '"']).to_owned();
    url["oss://".len()..].to_owned()
}

#[tokio::test]
async fn a_data_uri_over_the_limit_is_uploaded_and_bad_ones_are_typed_errors() {
    let emulator = emulator().await;
    let (config, events) = observed(config(&emulator));
    let client = Client::new(config).expect("client");
    // 12 MiB of image: what an OpenAI-style client sends for a large picture.
    let mut big = PNG.to_vec();
    big.resize(9 * 1024 * 1024, 7);
    let uri = data_uri(&big);
    assert!(uri.len() > 12 * 1024 * 1024);
    let answer = client
        .chat_completion(ask(&[&uri]))
        .await
        .expect("uploaded, then answered");
    let text = answer.text().unwrap_or_default().into_owned();
    assert!(text.contains("oss://"), "{text}");
    assert_eq!(seen(emulator.stats()), (1, 1, 1));
    let key = object_key(&text);
    // Compared, never printed: 9 MiB.
    assert!(
        emulator.object_bytes(&key).as_deref() == Some(&big[..]),
        "the decoded bytes are stored under {key}"
    );
    assert_eq!(
        origins(&events),
        vec![dashscope_oss::MediaOrigin::DataUri {
            content_type: "image/png".to_owned(),
            size: big.len() as u64
        }]
    );
    // On the native API too (the same content: from the upload cache, nothing sent again).
    client
        .multimodal_generation(ask(&[&uri]))
        .await
        .expect("native");
    assert_eq!(seen(emulator.stats()), (1, 2, 2));

    // Bad base64, and a request without a model: typed errors, nothing uploaded or sent.
    let bad = format!("data:image/png;base64,{}!!", "A".repeat(11 * 1024 * 1024));
    let err = client
        .chat_completion(ask(&[&bad]))
        .await
        .expect_err("bad base64");
    assert!(
        matches!(&err, Error::InvalidRequest(m) if m.contains("base64")),
        "{err:?}"
    );
    let nameless = ChatRequest::new("").message(Message::user().image(uri.as_str()).text("?"));
    let err = client
        .chat_completion(nameless)
        .await
        .expect_err("no model");
    assert!(
        matches!(&err, Error::InvalidRequest(m) if m.contains("model")),
        "{err:?}"
    );
    assert_eq!(
        seen(emulator.stats()),
        (1, 2, 2),
        "nothing uploaded or sent"
    );

    // Inline asked for at its size, and within the service's limit: it stays inline.
    let (config, _) = observed(
        self::config(&emulator)
            .upload_data_uris_over(1024)
            .inline_below(1024 * 1024),
    );
    let inline = Client::new(config).expect("client");
    let small = data_uri(&PNG.repeat(100));
    let answer = inline
        .chat_completion(ask(&[&small]))
        .await
        .expect("inline");
    assert!(answer.text().unwrap_or_default().contains("data URI"));
    assert_eq!(seen(emulator.stats()), (1, 3, 2));
}

#[tokio::test]
async fn an_oss_url_of_another_model_is_uploaded_again_before_sending() {
    let emulator = emulator().await;
    let dir = Dir::new("media", "other-model");
    let file = dir.file("cat.png", PNG);
    let (config, events) = observed(config(&emulator));
    let client = Client::new(config).expect("client");
    let url = client
        .upload("qwen-vl-plus", &*file)
        .await
        .expect("upload")
        .url;
    assert_eq!(seen(emulator.stats()), (1, 0, 0));

    // The conversation moves to another model: its file goes up for that model first, and
    // the one call sent is answered (no refusal, no second call).
    let answer = client
        .chat_completion(
            ChatRequest::new("qwen3-vl-plus")
                .message(Message::user().image(url.as_str()).text("and now?")),
        )
        .await
        .expect("answered by the other model");
    let text = answer.text().unwrap_or_default().into_owned();
    assert!(!text.contains(&url), "{text}");
    assert_eq!(seen(emulator.stats()), (2, 1, 1));
    assert_eq!(
        origins(&events),
        vec![dashscope_oss::MediaOrigin::OssUrl {
            url: url.clone(),
            model: "qwen-vl-plus".to_owned()
        }]
    );

    // Content the cache holds for the other model already: that URL, nothing uploaded.
    let again = client
        .chat_completion(
            ChatRequest::new("qwen3-vl-plus").message(Message::user().image(url.as_str())),
        )
        .await
        .expect("from the cache");
    assert!(again.text().unwrap_or_default().contains("oss://"));
    assert_eq!(seen(emulator.stats()), (2, 2, 2));

    // Its file gone and no upload for that model: a typed error before anything is sent.
    std::fs::remove_file(&file).expect("remove");
    let err = client
        .chat_completion(
            ChatRequest::new("qwen-vl-max").message(Message::user().image(url.as_str())),
        )
        .await
        .expect_err("cannot be uploaded again");
    assert!(
        matches!(&err, Error::InvalidRequest(m) if m.contains("qwen-vl-plus") && m.contains(&url)),
        "{err:?}"
    );
    assert_eq!(
        seen(emulator.stats()),
        (2, 2, 2),
        "nothing uploaded or sent"
    );
    // For its own model it goes as it is.
    client
        .chat_completion(
            ChatRequest::new("qwen-vl-plus").message(Message::user().image(url.as_str())),
        )
        .await
        .expect("its own model");
    assert_eq!(seen(emulator.stats()), (2, 3, 3));
}

#[tokio::test]
async fn a_url_the_service_cannot_download_is_rehosted_once_when_asked() {
    let emulator = emulator().await;
    let url = emulator.host_file("cat.png", PNG);
    emulator.refuse_download(&url);

    // By default the refusal is the answer, typed, and nothing is fetched.
    let plain = Client::new(config(&emulator)).expect("client");
    let err = plain
        .chat_completion(ask(&[&url]))
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::DownloadFailed(_)), "{err:?}");
    let err = plain
        .multimodal_generation(ask(&[&url]))
        .await
        .expect_err("refused natively");
    assert!(matches!(err, Error::DownloadFailed(_)), "{err:?}");
    assert_eq!(emulator.stats().files_served, 0);
    assert_eq!(seen(emulator.stats()), (0, 2, 0));

    // On a download failure: fetched here, uploaded, sent once more with the header.
    let (config, events) = observed(
        config(&emulator).rehost_urls(dashscope_oss::config::RehostUrls::OnDownloadFailure),
    );
    let client = Client::new(config).expect("client");
    let answer = client.chat_completion(ask(&[&url])).await.expect("healed");
    assert!(answer.text().unwrap_or_default().contains("oss://"));
    assert_eq!(emulator.stats().files_served, 1);
    assert_eq!(seen(emulator.stats()), (1, 4, 1));
    client
        .multimodal_generation(ask(&[&url]))
        .await
        .expect("healed natively");
    assert_eq!(emulator.stats().files_served, 2);
    assert_eq!(
        seen(emulator.stats()),
        (1, 6, 2),
        "the second upload came from the cache"
    );
    assert_eq!(
        origins(&events),
        vec![
            dashscope_oss::MediaOrigin::Web { url: url.clone() },
            dashscope_oss::MediaOrigin::Web { url: url.clone() }
        ]
    );
    // A URL the service downloads is not fetched.
    let fine = emulator.host_file("fine.png", PNG);
    client.chat_completion(ask(&[&fine])).await.expect("fine");
    assert_eq!(emulator.stats().files_served, 2);
}

#[tokio::test]
async fn always_rehosting_fetches_first_within_its_limits() {
    let emulator = emulator().await;
    let url = emulator.host_file("cat.png", PNG);
    let always = |c: Config| c.rehost_urls(dashscope_oss::config::RehostUrls::Always);
    let client = Client::new(always(config(&emulator))).expect("client");
    let answer = client
        .chat_completion(ask(&[&url]))
        .await
        .expect("re-hosted");
    assert!(answer.text().unwrap_or_default().contains("oss://"));
    assert_eq!(emulator.stats().files_served, 1);
    assert_eq!(seen(emulator.stats()), (1, 1, 1));
    // A redirect on the web is followed.
    let hop = emulator.host_redirect("hop.png", &url);
    client
        .chat_completion(ask(&[&hop]))
        .await
        .expect("followed");
    assert_eq!(emulator.stats().files_served, 3);

    // Over the size limit, a redirect to another scheme, a missing file: typed errors, and
    // nothing uploaded or sent.
    let before = seen(emulator.stats());
    let small = Client::new(always(config(&emulator)).rehost_limit(8)).expect("client");
    let err = small
        .chat_completion(ask(&[&url]))
        .await
        .expect_err("too large");
    assert!(
        matches!(&err, Error::InvalidRequest(m) if m.contains("rehost_limit")),
        "{err:?}"
    );
    let file = emulator.host_redirect("passwd.png", "file:///etc/passwd");
    let err = client
        .chat_completion(ask(&[&file]))
        .await
        .expect_err("file://");
    assert!(
        matches!(&err, Error::InvalidRequest(m) if m.contains("to file")),
        "{err:?}"
    );
    let missing = format!("{}/emulator/v1/files/missing.png", emulator.base_url());
    let err = client
        .chat_completion(ask(&[&url, &missing]))
        .await
        .expect_err("404");
    assert_eq!(err.status(), Some(404), "{err:?}");
    assert_eq!(seen(emulator.stats()), before, "nothing uploaded or sent");
}
