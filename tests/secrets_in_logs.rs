//! Everything the crate and its HTTP stack log at TRACE, on success and on errors, never holds
//! the API key. (A binary of its own: it installs a global subscriber.)

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::{Canned, Server, TEST_KEY, client};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn trace_logs_never_show_the_key() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("global subscriber");
    // Records of the `log` crate (reqwest, hyper-util) too.
    let _ = tracing_log::LogTracer::init();

    let ok = Server::start(Canned::json(200, r#"{"request_id":"r","data":{"policy":"p","signature":"s","upload_dir":"d","upload_host":"h","expire_in_seconds":1,"max_file_size_mb":1,"capacity_limit_mb":1,"oss_access_key_id":"a","x_oss_object_acl":"private","x_oss_forbid_overwrite":"true"}}"#)).await;
    client(&ok.url)
        .upload_policy("qwen-vl-plus")
        .await
        .expect("policy");
    let echo = format!(
        r#"{{"code":"InvalidApiKey","message":"Invalid API-key provided: {TEST_KEY}","request_id":"r-401"}}"#
    );
    let bad = Server::start(Canned::json(401, &echo)).await;
    let err = client(&bad.url)
        .upload_policy("qwen-vl-plus")
        .await
        .expect_err("401");
    tracing::info!(error = %err, debug = ?err, "the error as an application would log it");

    // Hostile servers: a credential whose request id echoes the key with a control sequence,
    // then an upload host whose OSS error echoes the key and the whole credential in every
    // field. Nothing of it is logged raw.
    let xml = format!(
        "<Error><Code>InvalidArgument</Code><Message>{TEST_KEY} c2lnbmF0dXJlLWxvZ2dlZA== LTAI5tLoggedAccessKey &#27;[2J</Message><RequestId>{TEST_KEY}</RequestId><EC>{TEST_KEY}</EC></Error>"
    );
    let oss = Server::start(Canned::raw(400, "application/xml", xml)).await;
    let credential = serde_json::json!({
        "request_id": format!("{TEST_KEY} \x1b[2J"),
        "data": {
            "policy": "eyJleHBpcmF0aW9uIjoiMjA5OS0wMS0wMVQwMDowMDowMC4wMDBaIn0=",
            "signature": "c2lnbmF0dXJlLWxvZ2dlZA==", "oss_access_key_id": "LTAI5tLoggedAccessKey",
            "upload_dir": "dashscope-instant/abc/2026-01-01/r", "upload_host": oss.url,
            "expire_in_seconds": 300, "max_file_size_mb": 100,
            "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true"
        }
    });
    let api = Server::start(Canned::json(200, &credential.to_string())).await;
    let err = client(&api.url)
        .upload(
            "qwen-vl-plus",
            dashscope_oss::UploadSource::bytes("a.png", b"x".to_vec()),
        )
        .await
        .expect_err("400");
    tracing::info!(error = %err, debug = ?err, "the upload error as an application would log it");

    let text = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
    assert!(
        text.contains("dashscope error response"),
        "nothing was logged:\n{text}"
    );
    assert!(text.contains("r-401"));
    assert!(!text.contains(TEST_KEY), "the key was logged:\n{text}");
    assert!(!text.contains("never-print-me"));
    for secret in ["c2lnbmF0dXJlLWxvZ2dlZA==", "LTAI5tLoggedAccessKey"] {
        assert!(!text.contains(secret), "{secret} was logged:\n{text}");
    }
    assert!(text.contains("the upload error"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "a raw control character was logged:\n{text}"
    );
}
