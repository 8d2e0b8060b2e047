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
