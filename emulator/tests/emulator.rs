//! The emulator, judged with raw requests: every row of the documented OSS and DashScope error
//! tables is produced by an offending request, and the documented correct requests succeed.

mod support;

use std::time::Duration;

use dashscope_emulator::{
    AccountStatus, DEFAULT_API_KEY, EmulatorConfig, FaultKind, MediaKind, ModelSpec, REJECTED_TEXT,
};
use serde_json::json;
use support::*;

// ------------------------------------------------------------------ credentials

/// Accounts in arrears (`sk-arrears`) and denied (`sk-denied`), another active one
/// (`sk-other`), and a model the accounts may not use.
fn troubled_config() -> EmulatorConfig {
    let mut config = EmulatorConfig::default()
        .account("other", &["sk-other"])
        .account("arrears", &["sk-arrears"])
        .account("denied", &["sk-denied"])
        .model(
            "qwen-vl-locked",
            ModelSpec {
                max_file_size_mb: 10,
                accepts: vec![MediaKind::Image],
                restricted: true,
                ..ModelSpec::default()
            },
        );
    for account in &mut config.accounts {
        account.status = match account.name.as_str() {
            "arrears" => AccountStatus::InArrears,
            "denied" => AccountStatus::Denied,
            _ => AccountStatus::Active,
        };
    }
    config
}

#[tokio::test]
async fn credential_has_every_documented_field_and_a_real_policy() {
    let emulator = start().await;
    let before = std::time::SystemTime::now();
    let r = get_policy_raw(
        &emulator,
        "action=getPolicy&model=qwen-vl-plus",
        Some(DEFAULT_API_KEY),
    )
    .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    let data = &body["data"];
    let request_id = body["request_id"].as_str().expect("request_id");
    let dir = data["upload_dir"].as_str().expect("upload_dir");
    let segments: Vec<&str> = dir.split('/').collect();
    assert_eq!(segments.len(), 4, "{dir}");
    assert_eq!(segments[0], "dashscope-instant");
    assert_eq!(segments[1].len(), 32);
    assert_eq!(
        segments[3], request_id,
        "the last segment of upload_dir is the request id"
    );
    assert_eq!(data["upload_host"], emulator.oss_url());
    assert!(
        data["expire_in_seconds"].is_u64()
            && data["max_file_size_mb"].is_u64()
            && data["capacity_limit_mb"].is_u64()
    );
    assert_eq!(data["x_oss_forbid_overwrite"], "true");
    let signature = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        data["signature"].as_str().unwrap_or_default(),
    )
    .expect("signature is base64");
    assert_eq!(signature.len(), 20, "HMAC-SHA1");

    let document = policy_document(data);
    let conditions = document["conditions"].as_array().expect("conditions");
    assert_eq!(
        conditions[0],
        json!(["content-length-range", 0, 1024u64 * 1024 * 1024])
    );
    assert_eq!(conditions[1], json!(["starts-with", "$key", dir]));
    assert!(conditions.contains(&json!({"x-oss-forbid-overwrite": "true"})));
    let expiration = document["expiration"]
        .as_str()
        .and_then(dashscope_oss_expiration)
        .expect("ISO 8601 expiration");
    // 300 s after the request, within the time it took (and the fraction of a second that this
    // test's parser drops).
    let after = std::time::SystemTime::now();
    assert!(
        expiration >= before + Duration::from_secs(299)
            && expiration <= after + Duration::from_secs(300),
        "{expiration:?} is not 300 s after {before:?}..{after:?}"
    );
    let mut shown = document.clone();
    shown["expiration"] = json!("[EXPIRATION]");
    insta::assert_snapshot!(redact(
        &serde_json::to_string_pretty(&shown).unwrap_or_default()
    ));

    // Every credential has its own directory.
    let again = default_policy(&emulator).await;
    assert_ne!(again["upload_dir"], data["upload_dir"]);
}

#[tokio::test]
async fn credential_errors() {
    let config = troubled_config();
    let emulator = start_with(config).await;
    let cases: Vec<(&str, &str, Option<&str>)> = vec![
        ("no key", "action=getPolicy&model=qwen-vl-plus", None),
        (
            "unknown key",
            "action=getPolicy&model=qwen-vl-plus",
            Some("sk-nope"),
        ),
        (
            "wrong action",
            "action=getPolicies&model=qwen-vl-plus",
            Some(DEFAULT_API_KEY),
        ),
        ("missing model", "action=getPolicy", Some(DEFAULT_API_KEY)),
        (
            "unknown model",
            "action=getPolicy&model=qwen-nope",
            Some(DEFAULT_API_KEY),
        ),
        (
            "unpurchased model",
            "action=getPolicy&model=qwen-vl-locked",
            Some(DEFAULT_API_KEY),
        ),
        (
            "account in arrears",
            "action=getPolicy&model=qwen-vl-plus",
            Some("sk-arrears"),
        ),
        (
            "account denied",
            "action=getPolicy&model=qwen-vl-plus",
            Some("sk-denied"),
        ),
    ];
    let mut out = String::new();
    for (name, query, key) in cases {
        let r = get_policy_raw(&emulator, query, key).await;
        out.push_str(&format!("== {name}: HTTP {}\n{}\n", r.status, r.redacted()));
    }
    emulator.inject(FaultKind::PolicyError, 1);
    let r = get_policy_raw(
        &emulator,
        "action=getPolicy&model=qwen-vl-plus",
        Some(DEFAULT_API_KEY),
    )
    .await;
    out.push_str(&format!(
        "== injected 500: HTTP {}\n{}\n",
        r.status,
        r.redacted()
    ));
    insta::assert_snapshot!(out);
}

#[tokio::test]
async fn credential_requests_are_limited_per_account_and_model() {
    // Five per minute instead of a hundred per second: the counting below cannot be spread
    // over two windows by a slow machine.
    let config = EmulatorConfig {
        policy_qps: 5,
        policy_rate_window: Duration::from_secs(60),
        ..EmulatorConfig::default()
    }
    .account("other", &["sk-other"]);
    let emulator = start_with(config).await;
    let policy = |model: &'static str, key: &'static str| {
        let emulator = &emulator;
        async move {
            get_policy_raw(
                emulator,
                &format!("action=getPolicy&model={model}"),
                Some(key),
            )
            .await
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(policy("qwen-vl-plus", DEFAULT_API_KEY).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let r = policy("qwen-vl-plus", DEFAULT_API_KEY).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (429, Some("Throttling.RateQuota"))
    );
    // Another model and another account have windows of their own.
    assert_eq!(policy("qwen-vl-max", DEFAULT_API_KEY).await.status, 200);
    assert_eq!(policy("qwen-vl-plus", "sk-other").await.status, 200);
    // The window is real time: moving the emulator's clock (which also sweeps expired state)
    // does not reopen it.
    emulator.advance_clock(Duration::from_secs(3600));
    assert_eq!(policy("qwen-vl-plus", DEFAULT_API_KEY).await.status, 429);
    let stats = emulator.stats();
    assert_eq!(stats.policy_throttled, 5);
    assert_eq!(stats.policy_requests, 7);
}

/// The documented one-second window reopens: after it has passed, a full window admits again.
/// (Only this direction is timed: waiting longer than asked can never flip it.)
#[tokio::test]
async fn the_credential_window_reopens_after_a_second() {
    let emulator = start_with(EmulatorConfig {
        policy_qps: 1,
        ..EmulatorConfig::default()
    })
    .await;
    for _ in 0..2 {
        let r = get_policy_raw(
            &emulator,
            "action=getPolicy&model=qwen-vl-plus",
            Some(DEFAULT_API_KEY),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
}

#[tokio::test]
async fn daily_capacity_is_enforced() {
    let emulator = start_with(EmulatorConfig {
        capacity_limit_mb: 1,
        ..EmulatorConfig::default()
    })
    .await;
    let big = vec![0x42u8; 1024 * 1024];
    upload(&emulator, "qwen-vl-plus", DEFAULT_API_KEY, "a.bin", &big).await;
    let r = get_policy_raw(
        &emulator,
        "action=getPolicy&model=qwen-vl-plus",
        Some(DEFAULT_API_KEY),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (429, Some("Throttling.AllocationQuota"))
    );
    // The next day (emulator time) there is room again.
    emulator.advance_clock(Duration::from_secs(86_400));
    assert_eq!(
        get_policy_raw(
            &emulator,
            "action=getPolicy&model=qwen-vl-plus",
            Some(DEFAULT_API_KEY)
        )
        .await
        .status,
        200
    );
}

// ------------------------------------------------------------------ OSS PostObject

#[tokio::test]
async fn documented_form_post_stores_the_object() {
    let emulator = start().await;
    let data = default_policy(&emulator).await;
    let fields = form_fields(&data, "cat.png");
    let key = fields[3].1.clone();
    let r = post_form(&emulator, multipart(&fields, Some(("cat.png", PNG)), &[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.is_empty(),
        "success_action_status=200 answers an empty body"
    );
    assert!(r.header("x-oss-request-id").is_some());
    assert!(r.header("etag").is_some());
    assert_eq!(emulator.object_bytes(&key).as_deref(), Some(PNG));
    let (sha, size) = emulator.object(&key).expect("stored");
    assert_eq!(size, PNG.len() as u64);
    assert_eq!(sha.len(), 64);
    let stats = emulator.stats();
    assert_eq!(
        (stats.uploads_ok, stats.objects, stats.bytes_received),
        (1, 1, PNG.len() as u64)
    );
}

#[tokio::test]
async fn expired_objects_and_credentials_are_forgotten() {
    let emulator = start().await;
    let data = default_policy(&emulator).await;
    let fields = form_fields(&data, "old.png");
    let r = post_form(&emulator, multipart(&fields, Some(("old.png", PNG)), &[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let old_key = fields[3].1.clone();
    let stats = emulator.stats();
    assert_eq!((stats.objects, stats.credentials), (1, 1));

    // 47 h later: the object still lives; the 300 s credential is long expired and swept.
    emulator.advance_clock(Duration::from_secs(47 * 3600));
    let stats = emulator.stats();
    assert_eq!((stats.objects, stats.credentials), (1, 0));
    assert!(emulator.object(&old_key).is_some());

    // A new object, then past the first one's 48 h: only the new one is left.
    let data = default_policy(&emulator).await;
    let fields = form_fields(&data, "new.png");
    let r = post_form(&emulator, multipart(&fields, Some(("new.png", PNG)), &[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // (Credentials are kept an hour past their expiration: see `State::sweep`.)
    emulator.advance_clock(Duration::from_secs(2 * 3600));
    let stats = emulator.stats();
    assert_eq!((stats.objects, stats.credentials), (1, 0));
    assert!(emulator.object(&old_key).is_none());
    assert!(emulator.object(&fields[3].1).is_some());
}

#[tokio::test]
async fn success_action_status_201_and_default_204() {
    let emulator = start().await;
    let data = default_policy(&emulator).await;
    let mut fields = form_fields(&data, "a.png");
    fields[6].1 = "201".into();
    let r = post_form(&emulator, multipart(&fields, Some(("a.png", PNG)), &[])).await;
    assert_eq!(r.status, 201);
    assert!(
        r.body.contains("<PostResponse>") && r.body.contains("<Key>"),
        "{}",
        r.body
    );
    let mut fields = form_fields(&data, "b.png");
    fields.remove(6);
    let r = post_form(&emulator, multipart(&fields, Some(("b.png", PNG)), &[])).await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn lenient_in_what_it_accepts() {
    let emulator = start().await;
    let data = default_policy(&emulator).await;
    // Upper-case names, another order, a field we never send, and a field after the file.
    let mut fields: Vec<(String, String)> = form_fields(&data, "x.png")
        .into_iter()
        .map(|(n, v)| (n.to_ascii_uppercase(), v))
        .rev()
        .collect();
    fields.push(("x-oss-content-type".into(), "image/png".into()));
    let after = vec![("ignored-after-file".to_owned(), "1".to_owned())];
    let r = post_form(&emulator, multipart(&fields, Some(("x.png", PNG)), &after)).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Each row of the documented OSS error table, produced by the offending raw request.
#[tokio::test]
async fn every_oss_error_row() {
    let emulator = start_with(
        EmulatorConfig {
            min_file_size: 1,
            ..EmulatorConfig::default()
        }
        .model(
            "tiny",
            ModelSpec {
                max_file_size_mb: 1,
                accepts: vec![MediaKind::Image],
                restricted: false,
                ..ModelSpec::default()
            },
        ),
    )
    .await;
    let mut out = String::new();
    let mut row = |name: &str, reply: Reply, code: &str, status: u16| {
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
        assert!(
            reply.body.contains(&format!("<Code>{code}</Code>")),
            "{name}: {}",
            reply.body
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/xml"),
            "{name}"
        );
        assert!(reply.header("x-oss-request-id").is_some(), "{name}");
        out.push_str(&format!(
            "== {name}: HTTP {}\n{}\n",
            reply.status,
            reply.redacted()
        ));
    };

    // policy expired
    let expiring = default_policy(&emulator).await;
    emulator.advance_clock(Duration::from_secs(301));
    let r = post_form(
        &emulator,
        multipart(
            &form_fields(&expiring, "late.png"),
            Some(("late.png", PNG)),
            &[],
        ),
    )
    .await;
    row("policy expired", r, "AccessDenied", 403);
    let data = default_policy(&emulator).await;
    let good = |name: &str| form_fields(&data, name);

    // condition failed: a key outside upload_dir
    let mut f = good("x.png");
    f[3].1 = "dashscope-instant/elsewhere/x.png".into();
    row(
        "condition failed",
        post_form(&emulator, multipart(&f, Some(("x.png", PNG)), &[])).await,
        "AccessDenied",
        403,
    );
    // bad signature
    row(
        "bad signature",
        post_form(
            &emulator,
            multipart(
                &with_(&data, "x.png", "Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
                Some(("x.png", PNG)),
                &[],
            ),
        )
        .await,
        "SignatureDoesNotMatch",
        403,
    );
    // unknown access key id
    row(
        "unknown access key id",
        post_form(
            &emulator,
            multipart(
                &with_(&data, "x.png", "OSSAccessKeyId", "LTAIunknown"),
                Some(("x.png", PNG)),
                &[],
            ),
        )
        .await,
        "InvalidAccessKeyId",
        403,
    );
    // only some of OSSAccessKeyId/policy/Signature
    row(
        "signature missing",
        post_form(
            &emulator,
            multipart(
                &without_(&data, "x.png", "Signature"),
                Some(("x.png", PNG)),
                &[],
            ),
        )
        .await,
        "InvalidArgument",
        400,
    );
    // policy is not valid JSON
    let garbage = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "{not json");
    row(
        "policy not JSON",
        post_form(
            &emulator,
            multipart(
                &with_(&data, "x.png", "policy", &garbage),
                Some(("x.png", PNG)),
                &[],
            ),
        )
        .await,
        "InvalidPolicyDocument",
        400,
    );
    // file over the range: a model with a 1 MiB limit
    let tiny = policy(&emulator, "tiny", DEFAULT_API_KEY).await;
    let big = vec![0u8; 1024 * 1024 + 1];
    row(
        "file over the range",
        post_form(
            &emulator,
            multipart(&form_fields(&tiny, "big.png"), Some(("big.png", &big)), &[]),
        )
        .await,
        "EntityTooLarge",
        400,
    );
    // file under the range (this emulator's policies start at 1 byte)
    row(
        "file under the range",
        post_form(
            &emulator,
            multipart(&good("empty.png"), Some(("empty.png", b"")), &[]),
        )
        .await,
        "EntityTooSmall",
        400,
    );
    // body not well-formed
    let mut broken = multipart(&good("x.png"), Some(("x.png", PNG)), &[]);
    broken.truncate(broken.len() - 30);
    row(
        "body not well-formed",
        post_form(&emulator, broken).await,
        "MalformedPOSTRequest",
        400,
    );
    // not multipart
    row(
        "not multipart",
        post_raw(
            &emulator,
            "application/x-www-form-urlencoded",
            b"key=a&file=b".to_vec(),
        )
        .await,
        "RequestIsNotMultiPartContent",
        400,
    );
    // no file
    row(
        "no file",
        post_form(&emulator, multipart(&good("x.png"), None, &[])).await,
        "IncorrectNumberOfFilesInPOSTRequest",
        400,
    );
    // two files
    let mut two = multipart(&good("x.png"), Some(("x.png", PNG)), &[]);
    let tail = format!("--{BOUNDARY}--\r\n");
    two.truncate(two.len() - tail.len());
    two.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file2\"; filename=\"y.png\"\r\n\r\nyy\r\n{tail}").as_bytes());
    row(
        "several files",
        post_form(&emulator, two).await,
        "IncorrectNumberOfFilesInPOSTRequest",
        400,
    );
    // no key
    row(
        "no key",
        post_form(
            &emulator,
            multipart(&without_(&data, "x.png", "key"), Some(("x.png", PNG)), &[]),
        )
        .await,
        "InvalidArgument",
        400,
    );
    // key after file
    let mut f = good("x.png");
    let key_field = f.remove(3);
    row(
        "key after file",
        post_form(&emulator, multipart(&f, Some(("x.png", PNG)), &[key_field])).await,
        "InvalidArgument",
        400,
    );
    // bad object name
    let mut f = good("x.png");
    f[3].1 = "/leading-slash.png".into();
    row(
        "bad object name",
        post_form(&emulator, multipart(&f, Some(("x.png", PNG)), &[])).await,
        "InvalidObjectName",
        400,
    );
    // key exists, forbid-overwrite
    let f = good("twice.png");
    assert_eq!(
        post_form(&emulator, multipart(&f, Some(("twice.png", PNG)), &[]))
            .await
            .status,
        200
    );
    row(
        "key exists",
        post_form(&emulator, multipart(&f, Some(("twice.png", PNG)), &[])).await,
        "FileAlreadyExists",
        409,
    );
    // no Content-Length (a chunked body)
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(multipart(
        &good("c.png"),
        Some(("c.png", PNG)),
        &[],
    ))]);
    let response = http()
        .post(emulator.oss_url())
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    row(
        "no Content-Length",
        Reply {
            status,
            headers,
            body,
        },
        "MissingContentLength",
        411,
    );

    insta::assert_snapshot!(out);
    let stats = emulator.stats();
    assert_eq!(stats.uploads_ok, 1);
    assert_eq!(stats.uploads_rejected, 17);
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` → time, parsed here independently of the crate's own parser.
fn dashscope_oss_expiration(s: &str) -> Option<std::time::SystemTime> {
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // Days from civil (proleptic Gregorian).
    let (y, m) = if m <= 2 { (y - 1, m + 12) } else { (y, m) };
    let days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * (m - 3) + 2) / 5 + d - 719_469;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(u64::try_from(secs).ok()?))
}

fn with_(data: &serde_json::Value, name: &str, field: &str, value: &str) -> Vec<(String, String)> {
    form_fields(data, name)
        .into_iter()
        .map(|(n, v)| {
            if n == field {
                (n, value.to_owned())
            } else {
                (n, v)
            }
        })
        .collect()
}

fn without_(data: &serde_json::Value, name: &str, field: &str) -> Vec<(String, String)> {
    form_fields(data, name)
        .into_iter()
        .filter(|(n, _)| n != field)
        .collect()
}

#[tokio::test]
async fn dropped_connection_fault_stores_nothing() {
    let emulator = start().await;
    let data = default_policy(&emulator).await;
    let fields = form_fields(&data, "drop.bin");
    let key = fields[3].1.clone();
    emulator.inject(FaultKind::UploadDrop, 1);
    let body = multipart(&fields, Some(("drop.bin", &vec![7u8; 256 * 1024])), &[]);
    let result = http()
        .post(emulator.oss_url())
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body.clone())
        .send()
        .await;
    assert!(
        result.is_err(),
        "the connection should drop without an answer: {result:?}"
    );
    assert!(emulator.object(&key).is_none());
    // The fault is spent: the same form now succeeds.
    assert_eq!(post_form(&emulator, body).await.status, 200);
    emulator.inject(FaultKind::UploadError, 1);
    let r = post_form(
        &emulator,
        multipart(&form_fields(&data, "e.bin"), Some(("e.bin", b"abc")), &[]),
    )
    .await;
    assert_eq!(r.status, 500);
    assert!(r.body.contains("<Code>InternalError</Code>"));
}

// ------------------------------------------------------------------ model calls

#[tokio::test]
async fn compatible_call_resolves_oss_urls_with_the_header() {
    let emulator = start().await;
    let url = upload(&emulator, "qwen-vl-plus", DEFAULT_API_KEY, "cat.png", PNG).await;
    let r = call(
        &emulator,
        COMPATIBLE,
        DEFAULT_API_KEY,
        &compatible_image("qwen-vl-plus", &url),
        true,
        false,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let answer = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(
        answer.contains("image/png") && answer.contains(&url),
        "{answer}"
    );
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap_or(0) > 4);
    insta::assert_snapshot!(redact(
        &serde_json::to_string_pretty(&body["choices"]).unwrap_or_default()
    ));
    assert_eq!(emulator.stats().chat_requests_with_resolve_header, 1);
}

#[tokio::test]
async fn native_call_resolves_oss_urls_with_the_header() {
    let emulator = start().await;
    let url = upload(&emulator, "qwen-vl-plus", DEFAULT_API_KEY, "cat.png", PNG).await;
    let r = call(
        &emulator,
        NATIVE,
        DEFAULT_API_KEY,
        &native_image("qwen-vl-plus", &url),
        true,
        false,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(body["output"]["choices"][0]["finish_reason"], "stop");
    let text = body["output"]["choices"][0]["message"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("image/png"), "{text}");
    assert!(body["usage"]["image_tokens"].as_u64().unwrap_or(0) >= 4);
}

/// Each DashScope error row a model call can produce, on both APIs.
#[tokio::test]
async fn every_model_call_error_row() {
    let config = troubled_config();
    let emulator = start_with(config).await;
    let png = upload(&emulator, "qwen-vl-plus", DEFAULT_API_KEY, "cat.png", PNG).await;
    let text = upload(
        &emulator,
        "qwen-vl-plus",
        DEFAULT_API_KEY,
        "notes.png",
        b"just some text, not an image",
    )
    .await;
    // An audio model both endpoints serve (qwen-audio-turbo is native only).
    let audio_model = upload(
        &emulator,
        "qwen3-asr-flash",
        DEFAULT_API_KEY,
        "cat.png",
        PNG,
    )
    .await;
    let expiring = upload(&emulator, "qwen-vl-plus", DEFAULT_API_KEY, "old.png", PNG).await;

    let mut out = String::new();
    for (api, path) in [("compatible", COMPATIBLE), ("native", NATIVE)] {
        let image = |model: &str, url: &str| {
            if api == "native" {
                native_image(model, url)
            } else {
                compatible_image(model, url)
            }
        };
        let cases: Vec<(&str, &str, serde_json::Value, bool, u16)> = vec![
            (
                "oss:// without the header",
                DEFAULT_API_KEY,
                image("qwen-vl-plus", &png),
                false,
                400,
            ),
            (
                "unknown object",
                DEFAULT_API_KEY,
                image("qwen-vl-plus", "oss://dashscope-instant/nope/x.png"),
                true,
                400,
            ),
            (
                "object of another model",
                DEFAULT_API_KEY,
                image("qwen3-asr-flash", &png),
                true,
                400,
            ),
            (
                "object of another account",
                "sk-other",
                image("qwen-vl-plus", &png),
                true,
                400,
            ),
            (
                "bytes that are not media",
                DEFAULT_API_KEY,
                image("qwen-vl-plus", &text),
                true,
                400,
            ),
            (
                "image for an audio model",
                DEFAULT_API_KEY,
                image("qwen3-asr-flash", &audio_model),
                true,
                400,
            ),
            (
                "a local path",
                DEFAULT_API_KEY,
                image("qwen-vl-plus", "/tmp/cat.png"),
                true,
                400,
            ),
            ("content rejected", DEFAULT_API_KEY, json!(null), true, 400),
            (
                "no messages",
                DEFAULT_API_KEY,
                json!({"model": "qwen-vl-plus"}),
                true,
                400,
            ),
            (
                "unknown model",
                DEFAULT_API_KEY,
                image("qwen-nope", &png),
                true,
                404,
            ),
            (
                "unpurchased model",
                DEFAULT_API_KEY,
                image("qwen-vl-locked", &png),
                true,
                403,
            ),
            (
                "no such key",
                "sk-wrong",
                image("qwen-vl-plus", &png),
                true,
                401,
            ),
            (
                "account in arrears",
                "sk-arrears",
                image("qwen-vl-plus", &png),
                true,
                400,
            ),
            (
                "account denied",
                "sk-denied",
                image("qwen-vl-plus", &png),
                true,
                403,
            ),
        ];
        for (name, key, mut body, resolve, status) in cases {
            if name == "content rejected" {
                body = if api == "native" {
                    json!({"model": "qwen-vl-plus", "input": {"messages": [{"role": "user", "content": [{"text": REJECTED_TEXT}]}]}})
                } else {
                    json!({"model": "qwen-vl-plus", "messages": [{"role": "user", "content": REJECTED_TEXT}]})
                };
            }
            let r = call(&emulator, path, key, &body, resolve, false).await;
            assert_eq!(r.status, status, "{api} {name}: {}", r.body);
            out.push_str(&format!(
                "== {api}, {name}: HTTP {}\n{}\n",
                r.status,
                r.redacted()
            ));
        }
        // 413: a body over 32 MiB
        let huge = json!({"model": "qwen-vl-plus", "messages": [{"role": "user", "content": "x".repeat(33 * 1024 * 1024)}]});
        let r = call(&emulator, path, DEFAULT_API_KEY, &huge, false, false).await;
        assert_eq!(r.status, 413);
        out.push_str(&format!(
            "== {api}, body too large: HTTP {}\n{}\n",
            r.status,
            r.redacted()
        ));
        for (fault, name, status) in [
            (FaultKind::ChatThrottle, "throttled", 429),
            (FaultKind::ChatError, "internal error", 500),
        ] {
            emulator.inject(fault, 1);
            let r = call(
                &emulator,
                path,
                DEFAULT_API_KEY,
                &image("qwen-vl-plus", &png),
                true,
                false,
            )
            .await;
            assert_eq!(r.status, status);
            out.push_str(&format!(
                "== {api}, {name}: HTTP {}\n{}\n",
                r.status,
                r.redacted()
            ));
        }
    }
    // 48 hours later the object is gone.
    emulator.advance_clock(Duration::from_secs(48 * 3600));
    let r = call(
        &emulator,
        NATIVE,
        DEFAULT_API_KEY,
        &native_image("qwen-vl-plus", &expiring),
        true,
        false,
    )
    .await;
    assert_eq!(r.status, 400);
    out.push_str(&format!(
        "== native, expired object: HTTP {}\n{}\n",
        r.status,
        r.redacted()
    ));
    insta::assert_snapshot!(out);
}

#[tokio::test]
async fn another_key_of_the_same_account_resolves() {
    let emulator =
        start_with(EmulatorConfig::default().account("team", &["sk-team-a", "sk-team-b"])).await;
    let url = upload(&emulator, "qwen-vl-plus", "sk-team-a", "cat.png", PNG).await;
    let r = call(
        &emulator,
        COMPATIBLE,
        "sk-team-b",
        &compatible_image("qwen-vl-plus", &url),
        true,
        false,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn text_that_names_an_oss_url_is_text() {
    let emulator = start().await;
    let body = json!({"model": "qwen-vl-plus", "messages": [{"role": "user", "content": "what is oss://dashscope-instant/x/y.png?"}]});
    let r = call(&emulator, COMPATIBLE, DEFAULT_API_KEY, &body, false, false).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn streams_on_both_apis() {
    let emulator = start().await;
    let url = upload(&emulator, "qwen-vl-plus", DEFAULT_API_KEY, "cat.png", PNG).await;

    let mut body = compatible_image("qwen-vl-plus", &url);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = call(&emulator, COMPATIBLE, DEFAULT_API_KEY, &body, true, false).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
    );
    let events: Vec<&str> = r.body.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    let usage_chunk: serde_json::Value =
        serde_json::from_str(events[events.len() - 2].trim_start_matches("data: "))
            .unwrap_or_default();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["total_tokens"].as_u64().is_some());

    let r = call(
        &emulator,
        NATIVE,
        DEFAULT_API_KEY,
        &native_image("qwen-vl-plus", &url),
        true,
        true,
    )
    .await;
    assert_eq!(r.status, 200);
    let events: Vec<&str> = r.body.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert!(events.len() >= 2);
    assert!(
        events[0].starts_with("id:1\nevent:result\n:HTTP_STATUS/200\ndata:{"),
        "{}",
        events[0]
    );
    assert!(events[0].contains("\"finish_reason\":\"null\""));
    assert!(
        events
            .last()
            .is_some_and(|e| e.contains("\"finish_reason\":\"stop\""))
    );

    // Incremental output: the pieces add up to the cumulative last event.
    let mut inc = native_image("qwen-vl-plus", &url);
    inc["parameters"] = json!({"incremental_output": true});
    let r = call(&emulator, NATIVE, DEFAULT_API_KEY, &inc, true, true).await;
    let text_of = |e: &str| -> String {
        let data = e
            .lines()
            .find_map(|l| l.strip_prefix("data:"))
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        v["output"]["choices"][0]["message"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let joined: String = r
        .body
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(text_of)
        .collect();
    assert_eq!(joined, text_of(events.last().copied().unwrap_or_default()));

    // A mid-stream error arrives with HTTP 200.
    emulator.inject(FaultKind::StreamError, 1);
    let r = call(
        &emulator,
        NATIVE,
        DEFAULT_API_KEY,
        &native_image("qwen-vl-plus", &url),
        true,
        true,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("event:error\n:HTTP_STATUS/500\ndata:{\"code\":\"InternalError.Algo\""),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn stats_and_controls_over_http() {
    let emulator = start().await;
    default_policy(&emulator).await;
    let stats: serde_json::Value = http()
        .get(format!("{}/emulator/v1/stats", emulator.base_url()))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    for field in [
        "policy_requests",
        "policy_throttled",
        "uploads_ok",
        "uploads_rejected",
        "bytes_received",
        "chat_requests",
        "objects",
    ] {
        assert!(stats[field].is_u64(), "{field} missing: {stats}");
    }
    assert_eq!(stats["policy_requests"], 1);
    let control = |path: &'static str, body: serde_json::Value| {
        let url = format!("{}/emulator/v1/{path}", emulator.base_url());
        async move {
            http()
                .post(url)
                .body(body.to_string())
                .send()
                .await
                .expect("control")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        control("faults", json!({"kind": "policy_throttle", "count": 1})).await,
        200
    );
    assert_eq!(
        get_policy_raw(
            &emulator,
            "action=getPolicy&model=qwen-vl-plus",
            Some(DEFAULT_API_KEY)
        )
        .await
        .status,
        429
    );
    assert_eq!(
        control("faults", json!({"kind": "no_such_fault"})).await,
        400
    );
    assert_eq!(
        control("faults", json!({"policy_lifetime_seconds": 30})).await,
        200
    );
    assert_eq!(default_policy(&emulator).await["expire_in_seconds"], 30);
    let data = default_policy(&emulator).await;
    assert_eq!(control("clock", json!({"advance_seconds": 31})).await, 200);
    let r = post_form(
        &emulator,
        multipart(
            &form_fields(&data, "late.png"),
            Some(("late.png", PNG)),
            &[],
        ),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("Policy expired"));
    assert_eq!(control("clock", json!({"advance_seconds": -1})).await, 400);
    // A clock moved past any calendar stops there: the emulator goes on answering.
    assert_eq!(
        control("clock", json!({"advance_seconds": 1e13})).await,
        200
    );
    assert_eq!(
        control("clock", json!({"advance_seconds": 1e13})).await,
        200
    );
    assert!(default_policy(&emulator).await["expire_in_seconds"].is_number());
}

#[tokio::test]
async fn in_memory_storage_and_shutdown() {
    let emulator = start_with(EmulatorConfig {
        storage: dashscope_emulator::Storage::Memory,
        ..EmulatorConfig::default()
    })
    .await;
    let url = upload(&emulator, "qwen-vl-plus", DEFAULT_API_KEY, "m.png", PNG).await;
    let key = url.trim_start_matches("oss://");
    assert_eq!(emulator.object_bytes(key).as_deref(), Some(PNG));
    let base = emulator.base_url().to_owned();
    emulator.shutdown().await;
    assert!(
        http()
            .get(format!("{base}/emulator/v1/stats"))
            .send()
            .await
            .is_err(),
        "still serving after shutdown"
    );
}
