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

/// A host that takes the request and never answers, and one that answers a credential a byte
/// at a time, forever: both end at the call's deadline, not after five read timeouts (25
/// minutes by default) or never. The limit is short here; the default is ten minutes.
#[tokio::test]
async fn a_silent_or_trickling_host_ends_at_the_deadline() {
    let silent = scripted(|mut socket| async move {
        let _ = read_request(&mut socket).await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
        drop(socket);
    })
    .await;
    let trickle = scripted(|mut socket| async move {
        let _ = read_request(&mut socket).await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            .await;
        loop {
            if socket.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    for url in [&silent, &trickle] {
        let client = Client::new(
            Config::new()
                .api_key(TEST_KEY)
                .base_url(url)
                .retry(RetryPolicy::default().deadline(Some(Duration::from_millis(1500)))),
        )
        .expect("client");
        let ended = tokio::time::timeout(
            Duration::from_secs(120),
            client.upload_policy("qwen-vl-plus"),
        )
        .await
        .expect("the deadline ends the call");
        let err = ended.expect_err("no answer");
        assert!(
            matches!(err, Error::DeadlineExceeded { .. }),
            "{url}: {err:?}"
        );
        assert!(err.to_string().contains("took longer than"), "{err}");
    }
}

/// A credential answer of 1 MiB: a credential is under 2 KiB, so the spec caps its answer at
/// 64 KiB (`x-dashscope-answer-limit`) and reading stops there, with a typed error.
#[tokio::test]
async fn an_oversized_success_answer_is_refused_not_buffered() {
    let padding = "x".repeat(1024 * 1024);
    let server = Server::start(Canned::json(
        200,
        &format!(r#"{{"request_id":"r-big","data":{{"padding":"{padding}"}}}}"#),
    ))
    .await;
    let err = client(&server.url)
        .upload_policy("qwen-vl-plus")
        .await
        .expect_err("too large");
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert!(err.to_string().contains("over the 65536 bytes"), "{err}");
}

fn stream_server(
    events: &'static [u8],
    then_ping: bool,
) -> impl Fn(tokio::net::TcpStream) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
+ Send
+ Sync
+ 'static {
    move |mut socket| {
        Box::pin(async move {
            let _ = read_request(&mut socket).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            let chunk = |bytes: &[u8]| {
                let mut c = format!("{:x}\r\n", bytes.len()).into_bytes();
                c.extend_from_slice(bytes);
                c.extend_from_slice(b"\r\n");
                c
            };
            let _ = socket.write_all(&chunk(events)).await;
            if then_ping {
                // Keep-alive comments only, forever.
                loop {
                    if socket.write_all(&chunk(b": ping\n\n")).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        })
    }
}

/// A native stream that closes while its finish reason is still `"null"` was cut short; one
/// that ends with `"stop"` is whole. A stream of nothing but keep-alive comments fails after the
/// read timeout without an event, though bytes keep coming.
#[tokio::test]
async fn native_streams_end_with_a_finish_reason_and_comments_are_not_progress() {
    use dashscope_oss::chat::{ChatRequest, Message};
    use futures_util::StreamExt;
    const CUT: &[u8] = b"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"Hel\"}]},\"finish_reason\":\"null\"}]},\"request_id\":\"r-1\"}\n\n";
    const WHOLE: &[u8] = b"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{\"output\":{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"Hello\"}]},\"finish_reason\":\"stop\"}]},\"request_id\":\"r-1\"}\n\n";
    let request = || ChatRequest::new("qwen-vl-plus").message(Message::user().text("hi"));
    let collect = |url: String, read_timeout: Duration| async move {
        let client = Client::new(
            Config::new()
                .api_key(TEST_KEY)
                .base_url(&url)
                .read_timeout(read_timeout)
                .retry(RetryPolicy::default().max_attempts(1)),
        )
        .expect("client");
        let mut stream = client
            .multimodal_generation_stream(&request())
            .await
            .expect("stream opens");
        let mut last = None;
        while let Some(item) = stream.next().await {
            last = Some(item);
        }
        last.expect("something arrived")
    };
    let cut = scripted(stream_server(CUT, false)).await;
    let err = collect(cut, Duration::from_secs(300))
        .await
        .expect_err("cut short");
    assert!(
        err.to_string().contains("before its finish reason"),
        "{err}"
    );

    let whole = scripted(stream_server(WHOLE, false)).await;
    collect(whole, Duration::from_secs(300))
        .await
        .expect("a whole stream");

    let pings = scripted(stream_server(CUT, true)).await;
    let ended = tokio::time::timeout(
        Duration::from_secs(120),
        collect(pings, Duration::from_millis(800)),
    )
    .await
    .expect("the idle limit ends the stream");
    let err = ended.expect_err("only comments");
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err:?}");
}
