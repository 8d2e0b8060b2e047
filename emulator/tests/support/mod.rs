//! Raw requests to the emulator: hand-built multipart bodies and JSON, sent with plain reqwest,
//! so that the emulator is judged independently of the client's serializers.
#![allow(dead_code)]

use base64::Engine;
use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig};
use serde_json::Value;

pub const BOUNDARY: &str = "----emulator-test-boundary-7d93a1";

/// A 1×1 PNG.
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82";

pub async fn start() -> Emulator {
    start_with(EmulatorConfig::default()).await
}

pub async fn start_with(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.expect("emulator starts")
}

pub fn http() -> reqwest::Client {
    // reqwest may be built with rustls and no provider (the SDK's choice, unified in the
    // workspace); plain http needs none, but the builder insists on one being installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("http client")
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body with the emulator's run-specific values replaced, for snapshots.
    pub fn redacted(&self) -> String {
        redact(&self.body)
    }
}

/// Replaces request ids (UUID-like and OSS's 24 hex), account hashes and dates.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        let is_hex = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit());
        let parts: Vec<&str> = token.split('-').collect();
        let uuid = parts.len() == 5 && parts.iter().all(|p| is_hex(p)) && token.len() == 36;
        if uuid {
            out.push_str("[REQUEST-ID]");
        } else if token.len() == 24 && is_hex(token) && token.chars().any(|c| c.is_ascii_digit()) {
            out.push_str("[OSS-REQUEST-ID]");
        } else if token.len() == 32 && is_hex(token) {
            out.push_str("[ACCOUNT-HASH]");
        } else if token.len() == 10
            && token.as_bytes()[4] == b'-'
            && token.as_bytes()[7] == b'-'
            && token.replace('-', "").chars().all(|c| c.is_ascii_digit())
        {
            out.push_str("[DATE]");
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get_policy_raw(emulator: &Emulator, query: &str, key: Option<&str>) -> Reply {
    let mut request = http().get(format!("{}/api/v1/uploads?{query}", emulator.base_url()));
    if let Some(key) = key {
        request = request.header("Authorization", format!("Bearer {key}"));
    }
    reply(request.send().await.expect("emulator answers")).await
}

/// A credential's `data`, fetched with a raw request.
pub async fn policy(emulator: &Emulator, model: &str, key: &str) -> Value {
    let r = get_policy_raw(
        emulator,
        &format!("action=getPolicy&model={model}"),
        Some(key),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"].clone()
}

pub async fn default_policy(emulator: &Emulator) -> Value {
    policy(emulator, "qwen-vl-plus", DEFAULT_API_KEY).await
}

/// The documented form fields of a credential, in the official SDKs' order, `file` excluded.
pub fn form_fields(data: &Value, file_name: &str) -> Vec<(String, String)> {
    let s = |k: &str| data[k].as_str().unwrap_or_default().to_owned();
    vec![
        ("OSSAccessKeyId".into(), s("oss_access_key_id")),
        ("Signature".into(), s("signature")),
        ("policy".into(), s("policy")),
        ("key".into(), format!("{}/{file_name}", s("upload_dir"))),
        ("x-oss-object-acl".into(), s("x_oss_object_acl")),
        ("x-oss-forbid-overwrite".into(), s("x_oss_forbid_overwrite")),
        ("success_action_status".into(), "200".into()),
    ]
}

/// A multipart body: `before` fields, then the file part (if any), then `after` fields.
pub fn multipart(
    before: &[(String, String)],
    file: Option<(&str, &[u8])>,
    after: &[(String, String)],
) -> Vec<u8> {
    fn field(body: &mut Vec<u8>, name: &str, value: &str) {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    let mut body = Vec::new();
    for (n, v) in before {
        field(&mut body, n, v);
    }
    if let Some((name, bytes)) = file {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    for (n, v) in after {
        field(&mut body, n, v);
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub async fn post_form(emulator: &Emulator, body: Vec<u8>) -> Reply {
    post_raw(
        emulator,
        &format!("multipart/form-data; boundary={BOUNDARY}"),
        body,
    )
    .await
}

pub async fn post_raw(emulator: &Emulator, content_type: &str, body: Vec<u8>) -> Reply {
    let response = http()
        .post(emulator.oss_url())
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .expect("OSS answers");
    reply(response).await
}

/// Uploads bytes with a fresh default credential; returns the `oss://` URL.
pub async fn upload(
    emulator: &Emulator,
    model: &str,
    key: &str,
    name: &str,
    bytes: &[u8],
) -> String {
    let data = policy(emulator, model, key).await;
    let fields = form_fields(&data, name);
    let object_key = fields[3].1.clone();
    let r = post_form(emulator, multipart(&fields, Some((name, bytes)), &[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    format!("oss://{object_key}")
}

pub async fn call(
    emulator: &Emulator,
    path: &str,
    key: &str,
    body: &Value,
    resolve: bool,
    sse: bool,
) -> Reply {
    let mut request = http()
        .post(format!("{}{path}", emulator.base_url()))
        .header("Authorization", format!("Bearer {key}"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if resolve {
        request = request.header("X-DashScope-OssResourceResolve", "enable");
    }
    if sse {
        request = request
            .header("X-DashScope-SSE", "enable")
            .header("Accept", "text/event-stream");
    }
    reply(request.send().await.expect("emulator answers")).await
}

pub const COMPATIBLE: &str = "/compatible-mode/v1/chat/completions";
pub const NATIVE: &str = "/api/v1/services/aigc/multimodal-generation/generation";

pub fn compatible_image(model: &str, url: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}}
    ]}]})
}

pub fn native_image(model: &str, url: &str) -> Value {
    serde_json::json!({"model": model, "input": {"messages": [{"role": "user", "content": [
        {"image": url}, {"text": "What is this?"}
    ]}]}})
}

/// Decodes a credential's policy document.
pub fn policy_document(data: &Value) -> Value {
    let b64 = data["policy"].as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("policy is base64");
    serde_json::from_slice(&bytes).expect("policy is JSON")
}

pub fn encode_policy(document: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(document.to_string())
}
