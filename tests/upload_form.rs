//! The exact form POST the client sends to OSS, against canned servers: field order, headers,
//! `Content-Length` (never chunked), the file part; and what it does with a credential whose
//! `upload_host` is not usable.

mod support;

use dashscope_oss::{Error, UploadSource};
use support::{Canned, Server, TEST_KEY, client};

fn policy_json(upload_host: &str) -> String {
    serde_json::json!({
        "request_id": "b744f4f8-1a9c-9c6b-950d-0d327e331f2f",
        "data": {
            // {"expiration":"2099-01-01T00:00:00.000Z","conditions":[]}
            "policy": "eyJleHBpcmF0aW9uIjoiMjA5OS0wMS0wMVQwMDowMDowMC4wMDBaIiwiY29uZGl0aW9ucyI6W119",
            "signature": "c2lnbmF0dXJlLXNlY3JldA==",
            "upload_dir": "dashscope-instant/52afe077fb4825c6d74411758cb1ab98/2025-07-12/b744f4f8-1a9c-9c6b-950d-0d327e331f2f",
            "upload_host": upload_host,
            "expire_in_seconds": 300,
            "max_file_size_mb": 1024,
            "capacity_limit_mb": 999999999,
            "oss_access_key_id": "LTAI5tSecretAccessKeyId",
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true"
        }
    })
    .to_string()
}

#[tokio::test]
async fn the_form_post_as_sent() {
    let oss =
        Server::start(Canned::raw(200, "text/plain", "").header("x-oss-request-id", "OSSREQ1"))
            .await;
    let api = Server::start(Canned::json(200, &policy_json(&oss.url))).await;
    let file = client(&api.url)
        .upload(
            "qwen-vl-plus",
            UploadSource::bytes("my cat.png", b"\x89PNG-pretend-image-bytes".to_vec()),
        )
        .await
        .expect("upload");
    assert_eq!(file.request_id.as_deref(), Some("OSSREQ1"));

    let sent = oss.only_request();
    // OSS must never see the API key.
    assert!(sent.header("authorization").is_none());
    assert!(!String::from_utf8_lossy(&sent.body).contains(TEST_KEY));
    let length: usize = sent
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("Content-Length");
    assert_eq!(length, sent.body.len());
    assert!(sent.header("transfer-encoding").is_none(), "never chunked");
    let content_type = sent.header("content-type").unwrap_or_default().to_owned();
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("boundary")
        .to_owned();
    let body = String::from_utf8_lossy(&sent.body).replace(&boundary, "<BOUNDARY>");
    let headers: Vec<String> = sent
        .headers
        .iter()
        .filter(|(n, _)| n != "host")
        .map(|(n, v)| format!("{n}: {}", v.replace(&boundary, "<BOUNDARY>")))
        .collect();
    insta::assert_snapshot!(format!(
        "{} {}\n{}\n\n{}",
        sent.method,
        sent.target,
        headers.join("\n"),
        body
    ));
}

#[tokio::test]
async fn unusable_upload_hosts_are_typed_errors() {
    for host in ["not a url", "ftp://oss.example/", "http://oss.example.com"] {
        let api = Server::start(Canned::json(200, &policy_json(host))).await;
        let err = client(&api.url)
            .upload("qwen-vl-plus", UploadSource::bytes("a.png", b"x".to_vec()))
            .await
            .expect_err(host);
        assert!(matches!(err, Error::Decode(_)), "{host}: {err:?}");
        assert!(err.to_string().contains("upload_host"), "{err}");
    }
}

#[tokio::test]
async fn oss_errors_arrive_typed() {
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the maximum allowed size.</Message><RequestId>5F1</RequestId><HostId>h</HostId><EC>0006-00000212</EC></Error>";
    let oss = Server::start(Canned::raw(400, "application/xml", xml)).await;
    let api = Server::start(Canned::json(200, &policy_json(&oss.url))).await;
    let err = client(&api.url)
        .upload("qwen-vl-plus", UploadSource::bytes("a.png", b"x".to_vec()))
        .await
        .expect_err("400");
    assert!(matches!(err, Error::EntityTooLarge(_)), "{err:?}");
    assert_eq!(err.request_id(), Some("5F1"));
    assert_eq!(oss.requests().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn a_redirect_is_never_an_upload() {
    let oss = Server::start(
        Canned::raw(302, "text/html", "").header("location", "http://127.0.0.1:9/portal"),
    )
    .await;
    let api = Server::start(Canned::json(200, &policy_json(&oss.url))).await;
    let err = client(&api.url)
        .upload("qwen-vl-plus", UploadSource::bytes("a.png", b"x".to_vec()))
        .await
        .expect_err("a 302 stores nothing");
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert_eq!(err.status(), Some(302));
}

#[tokio::test]
async fn a_credential_that_cannot_be_decoded_is_not_quoted() {
    // The upload host is never reached (the answer fails first), and is loopback anyway.
    let mut value: serde_json::Value =
        serde_json::from_str(&policy_json("https://127.0.0.1:9")).expect("json");
    if let Some(data) = value["data"].as_object_mut() {
        data.remove("x_oss_object_acl");
    }
    let body = value.to_string();
    let api = Server::start(Canned::json(200, &body)).await;
    let err = client(&api.url)
        .upload("qwen-vl-plus", UploadSource::bytes("a.png", b"x".to_vec()))
        .await
        .expect_err("missing field");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("x_oss_object_acl"), "{shown}");
    for secret in [
        "eyJleHBpcmF0aW9u",
        "c2lnbmF0dXJlLXNlY3JldA",
        "LTAI5tSecretAccessKeyId",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[tokio::test]
/// The cap itself (a day) is checked in `upload::tests::an_absurd_lifetime_is_capped_at_a_day`;
/// here the whole path takes the absurd answer without a panic.
async fn an_absurd_lifetime_does_not_crash_the_client() {
    let body = policy_json(&Server::start(Canned::raw(200, "text/plain", "")).await.url)
        .replace(
            "\"expire_in_seconds\":300",
            "\"expire_in_seconds\":\"18446744073709551615\"",
        )
        .replace(
            "eyJleHBpcmF0aW9uIjoiMjA5OS0wMS0wMVQwMDowMDowMC4wMDBaIiwiY29uZGl0aW9ucyI6W119",
            "bm90IGpzb24=",
        );
    let api = Server::start(Canned::json(200, &body)).await;
    client(&api.url)
        .upload("qwen-vl-plus", UploadSource::bytes("a.png", b"x".to_vec()))
        .await
        .expect("uploads, planning with at most a day");
}

/// A batch against a credential service that keeps failing fails fast: the uploads waiting on
/// the one credential request get its error, instead of each making (and retrying) their own.
#[tokio::test]
async fn a_failed_credential_fails_the_waiting_uploads_once() {
    let api = Server::start(Canned::json(
        500,
        r#"{"code":"InternalError","message":"An internal error has occured.","request_id":"r"}"#,
    ))
    .await;
    let client = dashscope_oss::Client::new(
        dashscope_oss::Config::new()
            .api_key(TEST_KEY)
            .base_url(&api.url)
            .upload_concurrency(20)
            .retry(
                dashscope_oss::RetryPolicy::default()
                    .max_attempts(2)
                    .initial_backoff(std::time::Duration::from_millis(1))
                    .max_backoff(std::time::Duration::from_millis(2)),
            ),
    )
    .expect("client");
    let sources =
        (0..20).map(|i| UploadSource::bytes(format!("f{i}.png"), b"\x89PNG....".to_vec()));
    let results = client.upload_many("qwen-vl-plus", sources).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(Error::ServerError(_)))),
        "{results:?}"
    );
    // One credential request and its one retry, for twenty uploads.
    assert_eq!(api.requests().len(), 2);
}

/// An upload host that answers 200 as soon as it has the request's head, and never reads the
/// body: 0 bytes of the file arrived. 32 MiB cannot fit in the sockets' buffers, so the answer
/// always comes before the last byte was handed over.
async fn answers_before_reading() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match socket.read(&mut byte).await {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ = socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nx-oss-request-id: EARLY\r\n\r\n",
                )
                .await;
            // Held open, never read: the client's writes stall.
            held.push(socket);
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_200_before_the_body_arrived_is_not_an_upload() {
    let (oss, server) = answers_before_reading().await;
    let api = Server::start(Canned::json(200, &policy_json(&oss))).await;
    let err = client(&api.url)
        .upload(
            "qwen-vl-plus",
            UploadSource::bytes("big.mp4", vec![7u8; 32 * 1024 * 1024]),
        )
        .await
        .expect_err("an answer before the file is no upload");
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert!(
        err.to_string().contains("before the whole file was sent"),
        "{err}"
    );
    assert!(!err.is_retryable(), "{err}");
    server.abort();
}

/// A 200 page that is not OSS's answer (an admin page, the API host), and a 200 whose ETag is
/// not the MD5 of what was sent: neither is an upload. The emulator's answers (ETag = MD5, as
/// OSS documents) are, which every emulator test shows.
#[tokio::test]
async fn a_200_that_oss_would_not_send_is_not_an_upload() {
    let page = Server::start(Canned::raw(
        200,
        "text/html",
        "<html><body>Admin console</body></html>",
    ))
    .await;
    let wrong_etag = Server::start(
        Canned::raw(200, "text/plain", "")
            .header("etag", "\"0123456789ABCDEF0123456789ABCDEF\"")
            .header("x-oss-request-id", "OSSREQ2"),
    )
    .await;
    let no_content = Server::start(Canned::raw(204, "text/plain", "")).await;
    for (oss, says) in [
        (&page.url, "carried a body"),
        (&wrong_etag.url, "is not the MD5 of what was sent"),
        (&no_content.url, "not the 200 the form asked for"),
    ] {
        let api = Server::start(Canned::json(200, &policy_json(oss))).await;
        let err = client(&api.url)
            .upload(
                "qwen-vl-plus",
                UploadSource::bytes("a.png", b"png".to_vec()),
            )
            .await
            .expect_err(says);
        assert!(matches!(err, Error::Decode(_)), "{says}: {err:?}");
        assert!(err.to_string().contains(says), "{err}");
    }
    // The right MD5 of "png", in OSS's upper case or in lower case, is an upload.
    for etag in [
        "\"BFF139FA05AC583F685A523AB3D110A0\"",
        "bff139fa05ac583f685a523ab3d110a0",
    ] {
        let oss = Server::start(Canned::raw(200, "text/plain", "").header("etag", etag)).await;
        let api = Server::start(Canned::json(200, &policy_json(&oss.url))).await;
        let file = client(&api.url)
            .upload(
                "qwen-vl-plus",
                UploadSource::bytes("a.png", b"png".to_vec()),
            )
            .await
            .expect(etag);
        assert!(file.url.starts_with("oss://"), "{file:?}");
    }
}
