//! Hostile servers on 127.0.0.1 (issue #22): answers that look like success and are not, and
//! targets that must not be replaced. Each case is a server of our own that sends exact bytes.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use dashscope_oss::task::WaitOptions;
use dashscope_oss::{Client, Config, Error, RetryPolicy};
use support::{Canned, Server, TEST_KEY, read_request, scripted};
use tokio::io::AsyncWriteExt;

/// A client that tries once: these servers lie the same way every time.
fn client(url: &str) -> Client {
    Client::new(
        Config::new()
            .api_key(TEST_KEY)
            .base_url(url)
            .retry(RetryPolicy::default().max_attempts(1)),
    )
    .expect("client")
}

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "dashscope-oss-hostile-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        Self(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A result download without `Content-Length` and not chunked, cut after 10 of its bytes: it
/// ends as a whole one would (the connection closes), so it is refused and nothing is written.
/// The same bytes chunked, and cut before the last chunk, are an error too; chunked and whole,
/// a download.
#[tokio::test]
async fn a_download_whose_end_cannot_be_known_is_refused() {
    let close_delimited = scripted(|mut socket| async move {
        let _ = read_request(&mut socket).await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n\r\n0123456789")
            .await;
        let _ = socket.shutdown().await;
    })
    .await;
    let cut_chunked = scripted(|mut socket| async move {
        let _ = read_request(&mut socket).await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n")
            .await;
        let _ = socket.shutdown().await;
    })
    .await;
    let whole_chunked = scripted(|mut socket| async move {
        let _ = read_request(&mut socket).await;
        let _ = socket
            .write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n",
            )
            .await;
        let _ = socket.shutdown().await;
    })
    .await;
    let dir = Dir::new("framing");
    let client = client("http://127.0.0.1:9");
    for (url, says) in [
        (&close_delimited, "length is unknown"),
        (&cut_chunked, "transport error"),
    ] {
        let path = dir.0.join("out.png");
        let err = client
            .download(&format!("{url}/r.png?Signature=s3cr3t"), &path, None)
            .await
            .expect_err(says);
        assert!(err.to_string().contains(says), "{err}");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        assert!(!path.exists(), "{says}: nothing is written under the path");
        let left: Vec<_> = std::fs::read_dir(&dir.0).expect("dir").collect();
        assert!(left.is_empty(), "no temporary file is left: {left:?}");
    }
    let path = dir.0.join("whole.png");
    let n = client
        .download(&format!("{whole_chunked}/r.png"), &path, None)
        .await
        .expect("a whole chunked body");
    assert_eq!(n, 10);
    assert_eq!(std::fs::read(&path).expect("read"), b"0123456789");
}

/// `-o` names a device, a FIFO, a directory: a character device is written in place (never
/// replaced by a regular file); a FIFO named by its own path and a directory are refused before
/// anything is fetched, and stay what they were.
#[tokio::test]
async fn a_download_never_replaces_what_is_not_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let server = Server::start(Canned::raw(200, "image/png", "0123456789")).await;
    let client = client(&server.url);
    let url = format!("{}/r.png", server.url);

    let n = client
        .download(&url, std::path::Path::new("/dev/null"), None)
        .await
        .expect("/dev/null is written in place");
    assert_eq!(n, 10);
    let null = std::fs::metadata("/dev/null").expect("/dev/null");
    assert!(null.file_type().is_char_device(), "still a device");
    if std::path::Path::new("/dev/full").exists() {
        let err = client
            .download(&url, std::path::Path::new("/dev/full"), None)
            .await
            .expect_err("a full device is a write error");
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        let full = std::fs::metadata("/dev/full").expect("/dev/full");
        assert!(full.file_type().is_char_device(), "still a device");
    }

    let dir = Dir::new("targets");
    let fifo = dir.0.join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let asked = server.requests().len();
    for target in [fifo.clone(), dir.0.clone()] {
        let err = client
            .download(&url, &target, None)
            .await
            .expect_err("refused");
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
    assert_eq!(server.requests().len(), asked, "refused before any request");
    let kind = std::fs::metadata(&fifo).expect("fifo").file_type();
    assert!(kind.is_fifo(), "the FIFO is still a FIFO");
}

/// A task query answered about another task, or without a state: never taken as the task's.
#[tokio::test]
async fn a_task_answer_must_be_about_the_task_asked() {
    let other = Server::start(Canned::json(
        200,
        r#"{"request_id":"r-1","output":{"task_id":"t-other","task_status":"SUCCEEDED","results":[{"url":"http://127.0.0.1:9/x.png"}]}}"#,
    ))
    .await;
    let err = client(&other.url)
        .get_task("t-mine")
        .await
        .expect_err("another task's answer");
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert!(
        err.to_string().contains("for task t-other, not t-mine"),
        "{err}"
    );
    assert_eq!(err.request_id(), Some("r-1"));

    let stateless = Server::start(Canned::json(
        200,
        r#"{"request_id":"r-2","output":{"task_id":"t-mine"}}"#,
    ))
    .await;
    // Without the check this waits out the timeout (a day by default): the backstop is long.
    let waited = tokio::time::timeout(
        Duration::from_secs(120),
        client(&stateless.url).wait_task("t-mine", &WaitOptions::default()),
    )
    .await
    .expect("the wait ends on the first answer");
    let err = waited.expect_err("no state");
    assert!(err.to_string().contains("has no task_status"), "{err}");
    assert_eq!(
        stateless.requests().len(),
        1,
        "one query, not a day of them"
    );
}
