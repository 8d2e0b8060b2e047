//! Hostile servers on 127.0.0.1 that echo the API key and the upload credential's secrets in
//! every field of every error format, and send terminal control sequences: no field of the
//! error (Display, Debug, `code()`, `request_id()`, `message()`, the excerpt) keeps a secret
//! or a raw control character (issue #22, "Scrubbing in one place").

mod support;

use dashscope_oss::api::types;
use dashscope_oss::{Error, RetryPolicy, UploadSource};
use support::{Canned, Server, TEST_KEY};

const POLICY: &str = "eyJleHBpcmF0aW9uIjoiMjA5OS0wMS0wMVQwMDowMDowMC4wMDBaIiwiY29uZGl0aW9ucyI6W119";
const SIGNATURE: &str = "c2lnbmF0dXJlLXNlY3JldA==";
const ACCESS_KEY_ID: &str = "LTAI5tSecretAccessKeyId";
/// What a terminal would act on: clear the screen, return, a new line that looks like ours,
/// and a right-to-left override.
const FORGERY: &str = "\x1b[2J\r\ndashscope: all uploads done\u{202e}";

fn client(url: &str) -> dashscope_oss::Client {
    dashscope_oss::Client::new(
        dashscope_oss::Config::new()
            .api_key(TEST_KEY)
            .base_url(url)
            .retry(RetryPolicy::none()),
    )
    .expect("client")
}

fn policy_json(upload_host: &str) -> String {
    serde_json::json!({
        "request_id": "rq-credential",
        "data": {
            "policy": POLICY,
            "signature": SIGNATURE,
            "upload_dir": "dashscope-instant/52afe077fb4825c6d74411758cb1ab98/2025-07-12/b744f4f8",
            "upload_host": upload_host,
            "expire_in_seconds": 300,
            "max_file_size_mb": 1024,
            "capacity_limit_mb": 999999999,
            "oss_access_key_id": ACCESS_KEY_ID,
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true"
        }
    })
    .to_string()
}

/// Every way the error can be shown or read, for the assertions.
fn shown(err: &Error) -> Vec<(&'static str, String)> {
    let mut all = vec![
        ("Display", err.to_string()),
        ("Debug", format!("{err:?}")),
        ("message()", err.message().into_owned()),
        ("code()", err.code().unwrap_or_default().to_owned()),
        (
            "request_id()",
            err.request_id().unwrap_or_default().to_owned(),
        ),
    ];
    if let Some(api) = err.api_error() {
        for (name, field) in [
            ("error_type()", api.error_type()),
            ("param()", api.param()),
            ("oss_ec()", api.oss_ec()),
        ] {
            all.push((name, field.unwrap_or_default().to_owned()));
        }
    }
    if let Error::Decode(d) = err {
        all.push(("excerpt()", d.excerpt().to_owned()));
        all.push(("reason()", d.reason().to_owned()));
    }
    all
}

fn assert_clean(case: &str, err: &Error, secrets: &[&str]) {
    for (how, text) in shown(err) {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{case}: {secret} shows in {how}: {text}"
            );
        }
        assert!(
            !text.contains(['\x1b', '\r', '\n', '\u{202e}']),
            "{case}: a raw control character shows in {how}: {text:?}"
        );
    }
    let display = err.to_string();
    assert!(display.contains("[REDACTED]"), "{case}: {display}");
    // The forgery is there, visibly escaped, on the error's one line (an excerpt shows line
    // breaks as spaces).
    assert!(display.contains(r"\x1b[2J"), "{case}: {display}");
    assert!(display.contains(r"u{202e}"), "{case}: {display}");
}

/// Every secret the server knows, then the forgery.
fn echo(secrets: &[&str]) -> String {
    format!("{} {FORGERY}", secrets.join(" "))
}

#[tokio::test]
async fn a_native_error_echoing_the_key_in_every_field() {
    let echo = echo(&[TEST_KEY]);
    let body = serde_json::json!({"code": echo, "message": echo, "request_id": echo});
    let server = Server::start(Canned::json(400, &body.to_string())).await;
    let err = client(&server.url)
        .upload_policy("qwen-vl-plus")
        .await
        .expect_err("400");
    assert_clean("native", &err, &[TEST_KEY]);
    assert_eq!(err.status(), Some(400));
    assert_eq!(
        err.code(),
        Some(r"[REDACTED] \x1b[2J\r\ndashscope: all uploads done\u{202e}")
    );
    assert_eq!(err.code(), err.request_id());
}

#[tokio::test]
async fn a_compatible_error_echoing_the_key_in_every_field() {
    let echo = echo(&[TEST_KEY]);
    let body = serde_json::json!({
        "error": {"message": echo, "type": echo, "param": echo, "code": echo},
        "request_id": echo
    });
    let server = Server::start(Canned::json(400, &body.to_string())).await;
    let request: types::ChatCompletionRequest = serde_json::from_str(
        r#"{"model":"qwen-vl-plus","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .expect("request");
    let err = client(&server.url)
        .chat_completion(&request)
        .await
        .expect_err("400");
    assert_clean("compatible", &err, &[TEST_KEY]);
    let api = err.api_error().expect("an API error");
    assert_eq!(api.error_type(), api.param());
    assert_eq!(api.error_type(), err.code());
}

#[tokio::test]
async fn a_request_id_header_echoing_the_key() {
    let body = r#"{"code":"InvalidParameter","message":"bad"}"#;
    let server = Server::start(Canned::json(400, body).header("x-request-id", TEST_KEY)).await;
    let err = client(&server.url)
        .upload_policy("qwen-vl-plus")
        .await
        .expect_err("400");
    assert_eq!(err.request_id(), Some("[REDACTED]"));
    for (how, text) in shown(&err) {
        assert!(!text.contains(TEST_KEY), "{how}: {text}");
    }
    // The same for an answer that is no error JSON at all.
    let page = format!("<html>{}</html>", echo(&[TEST_KEY]));
    let server = Server::start(
        Canned::raw(400, "text/html", page.as_bytes()).header("x-request-id", TEST_KEY),
    )
    .await;
    // (Not a credential request: its unreadable answers are withheld whole.)
    let err = client(&server.url).get_task("t-1").await.expect_err("400");
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert_clean("unparsable", &err, &[TEST_KEY]);
    assert_eq!(err.request_id(), Some("[REDACTED]"));
}

/// The upload host answers the form POST with OSS error XML that echoes what the form carried
/// (as OSS's `SignatureDoesNotMatch` does: `OSSAccessKeyId`, `SignatureProvided`,
/// `StringToSign`) and the API key the credential was fetched with.
#[tokio::test]
async fn an_oss_error_echoing_the_credential_in_every_field() {
    let secrets = [TEST_KEY, POLICY, SIGNATURE, ACCESS_KEY_ID];
    let echo = echo(&secrets);
    // XML has no raw ESC: OSS would send a character reference.
    let xml_echo = echo.replace('\x1b', "&#27;").replace('\r', "&#x0D;");
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code><Message>{xml_echo}</Message><RequestId>{xml_echo}</RequestId><EC>{xml_echo}</EC><OSSAccessKeyId>{ACCESS_KEY_ID}</OSSAccessKeyId><SignatureProvided>{SIGNATURE}</SignatureProvided><StringToSign>{POLICY}</StringToSign></Error>"
    );
    let oss = Server::start(Canned::raw(400, "application/xml", xml)).await;
    let api = Server::start(Canned::json(200, &policy_json(&oss.url))).await;
    let err = client(&api.url)
        .upload("qwen-vl-plus", UploadSource::bytes("a.png", b"x".to_vec()))
        .await
        .expect_err("400");
    assert!(matches!(err, Error::InvalidUploadForm(_)), "{err:?}");
    assert_clean("OSS XML", &err, &secrets);
    assert_eq!(err.code(), Some("InvalidArgument"));
    assert_eq!(err.message(), err.request_id().unwrap_or_default());

    // The same echoes in a body that is no OSS XML, at a status that is typed by itself
    // (403) and at one that is not (400): the excerpt is cleaned too.
    for status in [403, 400] {
        let page = format!("<html>{echo}</html>");
        let oss = Server::start(Canned::raw(status, "text/html", page)).await;
        let api = Server::start(Canned::json(200, &policy_json(&oss.url))).await;
        let err = client(&api.url)
            .upload("qwen-vl-plus", UploadSource::bytes("a.png", b"x".to_vec()))
            .await
            .expect_err("refused");
        assert_clean(&format!("OSS page at {status}"), &err, &secrets);
    }
}

/// A presigned link's query values never reach an error; its path does (it says which file).
#[tokio::test]
async fn a_transport_error_keeps_the_path_of_a_presigned_link_and_not_its_query() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let gone = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!(
        "http://127.0.0.1:{gone}/r/0.png?Expires=1&OSSAccessKeyId=LTAI5tSECRETID&Signature=SECRETsig%3D&security-token=SECRETtoken"
    );
    let dir = std::env::temp_dir().join(format!("dashscope-oss-hostile-dl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let err = client(&format!("http://127.0.0.1:{gone}"))
        .download(&url, &dir.join("0.png"), None)
        .await
        .expect_err("refused");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        matches!(err, Error::Transport(_) | Error::Timeout(_)),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    for secret in ["LTAI5tSECRETID", "SECRETsig", "SECRETtoken"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(
        shown.contains("/r/0.png?Expires=1&OSSAccessKeyId=[REDACTED]&Signature=[REDACTED]"),
        "{shown}"
    );
}

/// A result link that points back at a hostile host, which answers a page echoing the key with
/// a control sequence: the decode error quotes neither, nor the link's signature.
#[tokio::test]
async fn a_result_page_echoing_the_key_is_quoted_cleaned() {
    let page = format!("<html>{} {FORGERY}</html>", TEST_KEY);
    let server = Server::start(Canned::raw(200, "text/html", page)).await;
    let link = format!("{}/t/1.json?Expires=1&Signature=SECRETsig%3D", server.url);
    let done: types::TaskResponse = serde_json::from_value(serde_json::json!({
        "request_id": "rq-1",
        "output": {
            "task_id": "t-1",
            "task_status": "SUCCEEDED",
            "results": [{"file_url": "https://example.invalid/a.wav", "transcription_url": link, "subtask_status": "SUCCEEDED"}]
        }
    }))
    .expect("a task answer");
    let files = client(&server.url).transcriptions(&done).await;
    let err = files
        .into_iter()
        .next()
        .expect("one file")
        .result
        .expect_err("not JSON");
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert_clean("result page", &err, &[TEST_KEY, "SECRETsig"]);
    assert!(err.to_string().contains("/t/1.json"), "{err}");
}
