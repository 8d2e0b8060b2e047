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

    let text = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
    assert!(
        text.contains("dashscope error response"),
        "nothing was logged:\n{text}"
    );
    assert!(text.contains("r-401"));
    assert!(!text.contains(TEST_KEY), "the key was logged:\n{text}");
    assert!(!text.contains("never-print-me"));
}
