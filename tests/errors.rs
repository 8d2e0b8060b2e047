//! Error responses through the whole client (the generated call, the hooks, the mapping), for
//! both JSON APIs, including bodies that cannot be parsed.

mod support;

use dashscope_oss::Error;
use dashscope_oss::api::types;
use support::{Canned, Server, TEST_KEY, client};

fn chat_request() -> types::ChatCompletionRequest {
    serde_json::from_str(r#"{"model":"qwen-vl-plus","messages":[{"role":"user","content":"hi"}]}"#)
        .expect("request")
}

async fn policy_error(response: Canned) -> Error {
    let server = Server::start(response).await;
    client(&server.url)
        .upload_policy("qwen-vl-plus")
        .await
        .expect_err("error response")
}

async fn chat_error(response: Canned) -> Error {
    let server = Server::start(response).await;
    client(&server.url)
        .chat_completion(&chat_request())
        .await
        .expect_err("error response")
}

#[tokio::test]
async fn native_throttling_carries_retry_after_and_request_id() {
    let err = policy_error(
        Canned::json(429, r#"{"code":"Throttling.RateQuota","message":"Requests rate limit exceeded, please try again later.","request_id":"rq-1"}"#)
            .header("retry-after", "2"),
    )
    .await;
    assert!(matches!(err, Error::RateLimited(_)), "{err:?}");
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.code(), Some("Throttling.RateQuota"));
    assert_eq!(err.request_id(), Some("rq-1"));
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(2)));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn missing_key_answer_is_invalid_api_key() {
    let err = policy_error(Canned::json(
        401,
        r#"{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"rq-2"}"#,
    ))
    .await;
    assert!(matches!(err, Error::InvalidApiKey(_)), "{err:?}");
    assert!(!err.is_retryable());
}

/// A credential refused in a region where the temporary storage is not documented says so
/// (issue #18): the key may be right, the storage is not there. The same refusal for a client of
/// Beijing or Singapore stays `InvalidApiKey`.
#[tokio::test]
async fn a_credential_refused_outside_the_storage_regions_names_the_region() {
    use dashscope_oss::{Client, Config, Region};
    let refusal =
        r#"{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":"rq-9"}"#;
    for region in Region::ALL {
        let server = Server::start(Canned::json(401, refusal)).await;
        // The region first: a later base URL wins the address, the region stays the client's.
        let client = Client::new(
            Config::new()
                .api_key(TEST_KEY)
                .region(region)
                .base_url(&server.url),
        )
        .expect("client");
        let err = client
            .upload_policy("qwen-vl-plus")
            .await
            .expect_err("refused");
        assert_eq!(err.request_id(), Some("rq-9"), "{region}");
        assert_eq!(err.status(), Some(401), "{region}");
        assert!(!err.is_retryable(), "{region}");
        if region.has_temporary_storage() {
            assert!(matches!(err, Error::InvalidApiKey(_)), "{region}: {err:?}");
        } else {
            match &err {
                Error::StorageNotInRegion { region: named, .. } => assert_eq!(*named, region),
                other => panic!("{region}: {other:?}"),
            }
            let text = err.to_string();
            assert!(
                text.contains("documented only in China (Beijing) and Singapore"),
                "{text}"
            );
            assert!(text.contains(&format!("region {region}")), "{text}");
        }
    }
    assert!(Region::Beijing.has_temporary_storage() && Region::Singapore.has_temporary_storage());
    assert!(!Region::Frankfurt.has_temporary_storage());
}

#[tokio::test]
async fn compatible_invalid_url_hints_at_the_header() {
    let err = chat_error(Canned::json(400, r#"{"error":{"message":"InternalError.Algo.InvalidParameter: The provided URL does not appear to be valid. Ensure it is correctly formatted.","type":"invalid_request_error","param":null,"code":"invalid_parameter_error"},"request_id":"rq-3"}"#)).await;
    assert!(matches!(err, Error::InvalidUrl(_)), "{err:?}");
    assert!(err.to_string().contains("X-DashScope-OssResourceResolve"));
    assert_eq!(err.request_id(), Some("rq-3"));
}

#[tokio::test]
async fn proxy_html_is_a_decode_error_with_status() {
    let err = chat_error(Canned::raw(
        502,
        "text/html",
        "<html><body><h1>502 Bad Gateway</h1></body></html>",
    ))
    .await;
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    assert_eq!(err.status(), Some(502));
    assert!(err.is_retryable());
    assert!(err.to_string().contains("502 Bad Gateway"));
}

#[tokio::test]
async fn truncated_and_empty_bodies() {
    let err = policy_error(Canned::json(500, r#"{"code":"InternalEr"#)).await;
    assert!(
        matches!(err, Error::Decode(_)) && err.status() == Some(500),
        "{err:?}"
    );
    let err = policy_error(Canned::json(503, "")).await;
    assert!(
        matches!(err, Error::Decode(_)) && err.status() == Some(503),
        "{err:?}"
    );
    // A success whose body is cut short.
    let err = policy_error(Canned::json(200, r#"{"request_id":"x","data":{"policy":"#)).await;
    assert!(
        matches!(err, Error::Decode(_)) && err.status() == Some(200),
        "{err:?}"
    );
}

#[tokio::test]
async fn ten_mib_error_body_is_cut_not_buffered() {
    let body = vec![b'<'; 10 * 1024 * 1024];
    let err = chat_error(Canned::raw(500, "text/plain", body)).await;
    let Error::Decode(decode) = &err else {
        panic!("expected Decode, got {err:?}");
    };
    assert_eq!(decode.status(), Some(500));
    assert!(
        decode.reason().contains("larger than"),
        "{}",
        decode.reason()
    );
    assert!(decode.excerpt().len() <= 600);
}

#[tokio::test]
async fn connection_refused_is_a_retryable_transport_error() {
    // Port 1: nothing listens there, and tests bind only ephemeral ports.
    let url = "http://127.0.0.1:1".to_owned();
    let err = client(&url)
        .upload_policy("qwen-vl-plus")
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.status().is_none());
}

#[tokio::test]
async fn echoed_key_never_reaches_the_error() {
    let body =
        format!(r#"{{"code":"InvalidApiKey","message":"Invalid API-key provided: {TEST_KEY}"}}"#);
    let err = policy_error(Canned::json(401, &body)).await;
    let shown = format!("{err} {err:?} {}", err.message());
    assert!(!shown.contains(TEST_KEY), "{shown}");
    assert!(shown.contains("[REDACTED]"));
}

/// The per-minute token throttle, natively and in compatible mode, each followed by a 200: the
/// call ends in the answer (the wait shortened for the test; by default about a minute in
/// all). A free allocation used up is not retried.
#[tokio::test]
async fn a_token_throttle_is_waited_out_and_a_used_up_free_tier_is_not() {
    let answer = r#"{"id":"c-1","object":"chat.completion","created":1,"model":"qwen-vl-plus","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;
    let fast = |url: &str| {
        dashscope_oss::Client::new(
            dashscope_oss::Config::new()
                .api_key(TEST_KEY)
                .base_url(url)
                .retry(
                    dashscope_oss::RetryPolicy::default()
                        .minute_throttle_wait(std::time::Duration::from_millis(20)),
                ),
        )
        .expect("client")
    };
    for throttled in [
        Canned::json(
            429,
            r#"{"code":"Throttling.AllocationQuota","message":"Allocated quota exceeded, please increase your quota limit.","request_id":"r-1"}"#,
        ),
        Canned::json(
            429,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For details, see: https://help.aliyun.com/zh/model-studio/error-code#token-limit","type":"insufficient_quota","param":null,"code":"insufficient_quota"},"request_id":"r-2"}"#,
        ),
    ] {
        let server = Server::sequence(vec![throttled, Canned::json(200, answer)]).await;
        let got = fast(&server.url)
            .chat_completion(&chat_request())
            .await
            .expect("answered after the throttle");
        assert_eq!(got.text().as_deref(), Some("hi"));
        assert_eq!(server.requests().len(), 2);
    }
    let server = Server::sequence(vec![
        Canned::json(
            403,
            r#"{"code":"AllocationQuota.FreeTierOnly","message":"The free tier of the model has been exhausted.","request_id":"r-3"}"#,
        ),
        Canned::json(200, answer),
    ])
    .await;
    let err = fast(&server.url)
        .chat_completion(&chat_request())
        .await
        .expect_err("not retried");
    assert!(matches!(err, Error::QuotaExhausted(_)), "{err:?}");
    assert_eq!(server.requests().len(), 1);
}

/// A credential answer with `upload_host` set to `oss`, and its `data` changed by `edit`.
fn credential(
    oss: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> String {
    let mut data = serde_json::json!({
        "policy": "eyJleHBpcmF0aW9uIjoiMjA5OS0wMS0wMVQwMDowMDowMC4wMDBaIn0=",
        "signature": "c2lnbmF0dXJlLXNlY3JldA==",
        "upload_dir": "dashscope-instant/52afe077fb4825c6d74411758cb1ab98/2025-07-12/b744f4f8",
        "upload_host": oss,
        "expire_in_seconds": 300,
        "max_file_size_mb": 100,
        "capacity_limit_mb": 999999999,
        "oss_access_key_id": "LTAI5tSecretAccessKeyId",
        "x_oss_object_acl": "private",
        "x_oss_forbid_overwrite": "true"
    });
    if let Some(map) = data.as_object_mut() {
        edit(map);
    }
    serde_json::json!({"request_id": "rq-1", "data": data}).to_string()
}

/// Uploads one small file with the credential `answer`: the error, and whether the form POST
/// was sent. The upload host refuses every POST with a fixed OSS error, so that an accepted
/// credential shows as a POST made.
async fn upload_with(answer: impl FnOnce(&str) -> String) -> (Error, bool) {
    let xml =
        "<Error><Code>EntityTooLarge</Code><Message>m</Message><RequestId>5F1</RequestId></Error>";
    let oss = Server::start(Canned::raw(400, "application/xml", xml)).await;
    let api = Server::start(Canned::json(200, &answer(&oss.url))).await;
    let err = client(&api.url)
        .upload(
            "qwen-vl-plus",
            dashscope_oss::UploadSource::bytes("a.png", b"x".to_vec()),
        )
        .await
        .expect_err("refused");
    (err, !oss.requests().is_empty())
}

/// A credential's unused `capacity_limit_mb` may be missing or of any type, and a whole number
/// written as a float is a number (#22): neither refuses the credential.
#[tokio::test]
async fn odd_but_harmless_credential_fields_are_accepted() {
    type Edit = Box<dyn FnOnce(&mut serde_json::Map<String, serde_json::Value>)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "a float size",
            Box::new(|m| {
                m.insert("max_file_size_mb".into(), serde_json::json!(100.0));
            }),
        ),
        (
            "a float lifetime",
            Box::new(|m| {
                m.insert("expire_in_seconds".into(), serde_json::json!(300.0));
            }),
        ),
        (
            "a float string",
            Box::new(|m| {
                m.insert("max_file_size_mb".into(), serde_json::json!("100.0"));
            }),
        ),
        (
            "a float capacity",
            Box::new(|m| {
                m.insert("capacity_limit_mb".into(), serde_json::json!(1.5));
            }),
        ),
        (
            "no capacity",
            Box::new(|m| {
                m.remove("capacity_limit_mb");
            }),
        ),
        (
            "a null capacity",
            Box::new(|m| {
                m.insert("capacity_limit_mb".into(), serde_json::Value::Null);
            }),
        ),
        (
            "a capacity object",
            Box::new(|m| {
                m.insert(
                    "capacity_limit_mb".into(),
                    serde_json::json!({"daily": "lots"}),
                );
            }),
        ),
        (
            "a negative capacity",
            Box::new(|m| {
                m.insert("capacity_limit_mb".into(), serde_json::json!(-1));
            }),
        ),
    ];
    for (name, edit) in cases {
        let (err, posted) = upload_with(|oss| credential(oss, edit)).await;
        assert!(posted, "{name}: the credential was refused: {err}");
        assert!(matches!(err, Error::EntityTooLarge(_)), "{name}: {err:?}");
    }
}

/// A fractional or negative size or lifetime is a clear decode error, and nothing is posted.
#[tokio::test]
async fn fractional_or_negative_credential_numbers_are_refused() {
    for (field, value) in [
        ("max_file_size_mb", serde_json::json!(1.5)),
        ("max_file_size_mb", serde_json::json!(-100)),
        ("max_file_size_mb", serde_json::json!(-100.0)),
        ("expire_in_seconds", serde_json::json!(299.5)),
        ("expire_in_seconds", serde_json::json!("1e400")),
    ] {
        let (err, posted) = upload_with(|oss| {
            credential(oss, |m| {
                m.insert(field.into(), value.clone());
            })
        })
        .await;
        assert!(!posted, "{field} {value}: a POST was made");
        let Error::Decode(d) = &err else {
            panic!("{field} {value}: {err:?}");
        };
        assert!(
            d.reason().contains(field) && d.reason().contains("not a whole number"),
            "{field} {value}: {err}"
        );
    }
}

/// An `upload_dir` is printed in every `oss://` URL and sent as the form's key: one with
/// control characters, `..`, a leading `/` or empty segments is refused before any upload
/// (#22), its reason shown escaped.
#[tokio::test]
async fn an_upload_dir_that_would_forge_output_or_climb_is_refused() {
    for dir in [
        "dashscope-instant/a\x1b[2J/r",
        "dashscope-instant/a\r\ndashscope: forged/r",
        "dashscope-instant/../../etc",
        "/dashscope-instant/a/r",
        "dashscope-instant//r",
        "dashscope-instant/a\u{202e}/r",
    ] {
        let (err, posted) = upload_with(|oss| {
            credential(oss, |m| {
                m.insert("upload_dir".into(), serde_json::json!(dir));
            })
        })
        .await;
        assert!(!posted, "{dir:?}: a POST was made");
        assert!(matches!(err, Error::Decode(_)), "{dir:?}: {err:?}");
        let shown = err.to_string();
        assert!(shown.contains("upload_dir"), "{shown}");
        assert!(
            !shown.contains(['\x1b', '\r', '\n', '\u{202e}']),
            "{shown:?}"
        );
    }
}
