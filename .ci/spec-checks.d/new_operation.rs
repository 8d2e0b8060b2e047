//! Copied by `.ci/spec-checks` into a scratch copy of the crate whose spec gained the
//! EMO face-detection operation: with no hand-written code for it, a call of it takes the one
//! execution path — authenticated, `X-DashScope-OssResourceResolve` for its `oss://` URL, the
//! error typed by the table, and retried by the classifier.

mod support;

use std::time::Duration;

use dashscope_oss::api::types;
use dashscope_oss::{Client, Config, Error, RetryPolicy};
use support::{Canned, Server, TEST_KEY};

#[tokio::test]
async fn an_operation_added_to_the_spec_takes_the_one_path() {
    let server = Server::start(Canned::json(
        429,
        r#"{"code":"Throttling","message":"Requests rate limit exceeded, please try again later.","request_id":"r-1"}"#,
    ))
    .await;
    let client = Client::new(
        Config::new()
            .api_key(TEST_KEY)
            .base_url(&server.url)
            .retry(RetryPolicy::default().max_attempts(3).initial_backoff(Duration::from_millis(1)).max_backoff(Duration::from_millis(2))),
    )
    .expect("client");
    let body: types::FaceDetectRequest = types::FaceDetectRequest::builder()
        .model("emo-detect-v1")
        .input(
            types::FaceDetectInput::builder()
                .image_url("oss://dashscope-instant/abc/2026-01-01/r/cat.png".to_owned()),
        )
        .try_into()
        .expect("request");
    let err = client
        .call(client.api().create_face_detect().body(body).send())
        .await
        .expect_err("throttled every time");
    assert!(matches!(err, Error::RateLimited(_)), "{err:?}");
    assert_eq!(err.request_id(), Some("r-1"));
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "retried until the budget ran out");
    for r in &requests {
        assert_eq!(r.header("x-dashscope-ossresourceresolve"), Some("enable"));
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TEST_KEY}").as_str())
        );
        assert_eq!(r.header("api-version"), None);
    }
    println!("new operation: header on all {} tries, {err}", requests.len());
}
