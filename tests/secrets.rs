//! The API key never shows in Debug, Display or errors, and bad keys fail before anything is sent.

mod support;

use dashscope_oss::{Client, Config, Error};
use support::TEST_KEY;

#[test]
fn config_and_client_debug_hide_the_key() {
    let config = Config::new()
        .api_key(TEST_KEY)
        .base_url("http://127.0.0.1:9");
    assert!(!format!("{config:?} {config:#?}").contains(TEST_KEY));
    let client = Client::new(config).expect("client");
    let shown = format!("{client:?} {client:#?} {:?}", client.api());
    assert!(!shown.contains(TEST_KEY), "{shown}");
    assert!(
        !shown.contains("0f9e8d7c6b5a4"),
        "part of the key shows: {shown}"
    );
}

#[test]
fn keys_that_cannot_be_sent_are_config_errors_that_do_not_echo_them() {
    for bad in [format!("{TEST_KEY}\n"), format!("{TEST_KEY}\r\nX-Evil: 1")] {
        let err = Client::new(Config::new().api_key(bad).base_url("http://127.0.0.1:9"))
            .expect_err("a key with a newline");
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(!format!("{err} {err:?}").contains(TEST_KEY));
    }
    for missing in [Config::new(), Config::new().api_key("  ")] {
        let err = Client::new(missing).expect_err("no key");
        assert!(matches!(err, Error::MissingApiKey), "{err:?}");
    }
}

#[test]
fn plain_http_off_loopback_is_refused_unless_allowed() {
    let err = Client::new(
        Config::new()
            .api_key(TEST_KEY)
            .base_url("http://dashscope.aliyuncs.com"),
    )
    .expect_err("plain http");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let ok = Client::new(
        Config::new()
            .api_key(TEST_KEY)
            .base_url("http://proxy.internal:8080/api/v1")
            .allow_insecure_http(true),
    )
    .expect("allowed explicitly");
    assert_eq!(ok.base_url(), "http://proxy.internal:8080");
}

/// A result download cut short: the error names what happened, never the link's signature or
/// access key id (reqwest quotes a request's URL in its errors; a presigned link's query is
/// its credential).
#[tokio::test]
async fn a_broken_download_does_not_quote_the_presigned_link() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = [0u8; 4096];
            let _ = socket.read(&mut head).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\nabc")
                .await;
            let _ = socket.shutdown().await;
        }
    });
    let client = dashscope_oss::Client::new(
        dashscope_oss::Config::new()
            .api_key(support::TEST_KEY)
            .base_url(format!("http://127.0.0.1:{port}"))
            .retry(dashscope_oss::RetryPolicy::none()),
    )
    .expect("client");
    let url = format!(
        "http://127.0.0.1:{port}/r/0.png?Expires=1&OSSAccessKeyId=LTAI5tSECRETID&Signature=SECRETsig%3D"
    );
    let dir = std::env::temp_dir().join(format!("dashscope-oss-secret-dl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let err = client
        .download(&url, &dir.join("0.png"), None)
        .await
        .expect_err("cut short");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("SECRETsig") && !shown.contains("LTAI5tSECRETID"),
        "{shown}"
    );
    assert!(!dir.join("0.png").exists());

    // A link whose host does not answer: the connection error names no query either.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let gone = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!(
        "http://127.0.0.1:{gone}/r/0.png?Expires=1&OSSAccessKeyId=LTAI5tSECRETID&Signature=SECRETsig%3D"
    );
    let err = client
        .download(&url, &dir.join("0.png"), None)
        .await
        .expect_err("refused");
    let shown = format!("{err} {err:?}");
    assert!(
        matches!(err, Error::Transport(_) | Error::Timeout(_)),
        "{shown}"
    );
    assert!(
        !shown.contains("SECRETsig") && !shown.contains("LTAI5tSECRETID"),
        "{shown}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
