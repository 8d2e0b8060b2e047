//! The OSS host: PostObject (signature V1) as the OSS PostObject documentation describes it
//! (`docs/sources.md` of the repository).
//!
//! The body is parsed as a stream: the form fields before `file` are read (each at most
//! 64 KiB), checked, and then the file is written to storage chunk by chunk while its sha256 is
//! computed, so memory stays flat whatever the file's size.
//!
//! Order of checks: Content-Length → multipart → required fields → key → policy document →
//! access key id → signature → expiration → conditions → size → number of files → overwrite.
//! The protocol notes suggest checking the signature before the policy; we parse the policy first so
//! that a malformed policy gets `InvalidPolicyDocument` even unsigned (the real OSS cannot
//! verify a condition of a document it cannot read either). Our decision, noted here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use base64::Engine;
use md5::Digest;
use tokio::io::AsyncWriteExt;

use super::media::{self, HEAD_LEN};
use super::server::DropConnection;
use super::state::{self, Body as ObjectBody, FaultKind, Object, State, bump, lock};

/// The longest value of a form field before `file`.
const FIELD_LIMIT: usize = 64 * 1024;

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", post(post_object))
        .fallback(not_supported)
        .with_state(state)
}

async fn not_supported(AxState(state): AxState<Arc<State>>) -> Response {
    OssError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "The specified method is not allowed against this resource. The emulator's OSS host accepts PostObject (POST /) only.",
    )
    .into_response(&state)
}

/// An OSS error answer.
pub(crate) struct OssError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl OssError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn malformed() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MalformedPOSTRequest",
            "The body of your POST request is not well-formed multipart/form-data.",
        )
    }

    pub(crate) fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    fn invalid_policy(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidPolicyDocument",
            format!("Invalid Policy: {detail}"),
        )
    }

    /// OSS's detailed error code; the values are the emulator's own, stable per code.
    fn ec(&self) -> &'static str {
        match self.code {
            "AccessDenied" => "0002-00000213",
            "SignatureDoesNotMatch" => "0002-00000040",
            "InvalidAccessKeyId" => "0002-00000005",
            "InvalidArgument" => "0006-00000005",
            "InvalidPolicyDocument" => "0006-00000201",
            "EntityTooLarge" => "0006-00000212",
            "EntityTooSmall" => "0006-00000211",
            "MalformedPOSTRequest" => "0006-00000203",
            "RequestIsNotMultiPartContent" => "0006-00000202",
            "IncorrectNumberOfFilesInPOSTRequest" => "0006-00000204",
            "InvalidObjectName" => "0016-00000005",
            "NoSuchKey" => "0026-00000001",
            "FileAlreadyExists" => "0015-00000008",
            "MissingContentLength" => "0006-00000014",
            "InternalError" => "0003-00000001",
            _ => "0000-00000000",
        }
    }

    pub(crate) fn into_response(self, state: &State) -> Response {
        let request_id = oss_request_id(state);
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>{}</Code>\n  <Message>{}</Message>\n  <RequestId>{}</RequestId>\n  <HostId>{}.oss-emulator.local</HostId>\n  <EC>{}</EC>\n</Error>\n",
            self.code,
            xml_escape(&self.message),
            request_id,
            state.bucket,
            self.ec()
        );
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        insert(headers, "x-oss-request-id", &request_id);
        headers.insert("x-oss-ec", HeaderValue::from_static(self.ec()));
        response
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

fn oss_request_id(state: &State) -> String {
    state
        .request_id()
        .replace('-', "")
        .chars()
        .take(24)
        .collect::<String>()
        .to_ascii_uppercase()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn post_object(
    AxState(state): AxState<Arc<State>>,
    Extension(switch): Extension<DropConnection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    state.faults.delay().await;
    match receive(&state, &switch, &headers, body).await {
        Ok(response) => {
            bump(&state.counters.uploads_ok);
            response
        }
        Err(error) => {
            bump(&state.counters.uploads_rejected);
            error.into_response(&state)
        }
    }
}

/// Hands multer one chunk per poll. multer reads its input until it would block, so on a fast
/// connection and a slower disk it would buffer a whole upload in memory; yielding after each
/// chunk lets the file writer drain multer's buffer first, which keeps memory flat.
struct OneChunkPerPoll<S> {
    inner: S,
    just_yielded: bool,
}

impl<S> OneChunkPerPoll<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            just_yielded: false,
        }
    }
}

impl<S: futures_util::Stream + Unpin> futures_util::Stream for OneChunkPerPoll<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.just_yielded {
            self.just_yielded = false;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        let next = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        if let std::task::Poll::Ready(Some(_)) = &next {
            self.just_yielded = true;
        }
        next
    }
}

/// A file being received: where it goes, and what has been seen of it.
struct Incoming {
    path: Option<std::path::PathBuf>,
    file: Option<tokio::fs::File>,
    memory: Vec<u8>,
    head: Vec<u8>,
    size: u64,
    digest: ring::digest::Context,
    /// OSS's ETag of an object stored by PostObject is its content's MD5.
    md5: md5::Md5,
}

impl Incoming {
    async fn new(state: &State) -> Result<Self, OssError> {
        let path = state.part_path();
        let file = match &path {
            Some(p) => Some(tokio::fs::File::create(p).await.map_err(internal)?),
            None => None,
        };
        Ok(Self {
            path,
            file,
            memory: Vec::new(),
            head: Vec::new(),
            size: 0,
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            md5: md5::Md5::new(),
        })
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), OssError> {
        self.size += chunk.len() as u64;
        self.digest.update(chunk);
        self.md5.update(chunk);
        if self.head.len() < HEAD_LEN {
            let take = chunk.len().min(HEAD_LEN - self.head.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        match &mut self.file {
            Some(file) => file.write_all(chunk).await.map_err(internal),
            None => {
                self.memory.extend_from_slice(chunk);
                Ok(())
            }
        }
    }

    /// The object, the head of the form, its size, and its SHA-256 and MD5 (hex).
    async fn finish(mut self) -> Result<(ObjectBody, Vec<u8>, u64, String, String), OssError> {
        let body = match (self.file.take(), self.path.take()) {
            (Some(mut file), Some(path)) => {
                file.flush().await.map_err(internal)?;
                ObjectBody::File(path)
            }
            _ => {
                // Growth by doubling leaves up to twice the object's size allocated.
                self.memory.shrink_to_fit();
                ObjectBody::Memory(std::mem::take(&mut self.memory))
            }
        };
        let digest = state::hex(self.digest.clone().finish().as_ref());
        let md5 = state::hex(&self.md5.clone().finalize());
        Ok((body, std::mem::take(&mut self.head), self.size, digest, md5))
    }
}

impl Drop for Incoming {
    /// A file that was not stored (an error, a dropped connection) leaves nothing behind.
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn internal(e: impl std::fmt::Display) -> OssError {
    OssError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalError",
        format!("We encountered an internal error. Please try again. ({e})"),
    )
}

async fn receive(
    state: &State,
    switch: &DropConnection,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, OssError> {
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            OssError::new(
                StatusCode::LENGTH_REQUIRED,
                "MissingContentLength",
                "You must provide the Content-Length HTTP header.",
            )
        })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let not_multipart = || {
        OssError::new(
            StatusCode::BAD_REQUEST,
            "RequestIsNotMultiPartContent",
            "Bucket POST must be of the enclosure-type multipart/form-data.",
        )
    };
    let is_form = content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("multipart/form-data"));
    if !is_form {
        return Err(not_multipart());
    }
    let boundary = multer::parse_boundary(content_type).map_err(|_| OssError::malformed())?;
    let mut multipart =
        multer::Multipart::new(OneChunkPerPoll::new(body.into_data_stream()), boundary);

    // Fields before `file`, by lower-cased name; the first of a name wins.
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut file_field = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|_| OssError::malformed())?
    {
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            file_field = Some(field);
            break;
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|_| OssError::malformed())? {
            if value.len() + chunk.len() > FIELD_LIMIT {
                return Err(OssError::malformed());
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value).map_err(|_| OssError::malformed())?;
        fields.entry(name).or_insert(value);
    }
    let Some(mut file) = file_field else {
        return Err(incorrect_file_count());
    };

    let form = Form::check(state, &fields)?;

    let drop_half_way = state.faults.take(FaultKind::UploadDrop);
    let mut incoming = Incoming::new(state).await?;
    let max = form.max_size;
    while let Some(chunk) = file.chunk().await.map_err(|_| OssError::malformed())? {
        state
            .counters
            .bytes_received
            .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        incoming.write(&chunk).await?;
        if incoming.size > max {
            return Err(too_large());
        }
        if drop_half_way && incoming.size >= declared_length / 2 {
            bump(&state.counters.uploads_rejected);
            switch.pull();
            // The connection task drops this future with the connection: no answer is sent.
            std::future::pending::<()>().await;
        }
    }
    // A file smaller than half the form ends before the mark: the connection is lost after its
    // last byte instead, still before the body is complete.
    if drop_half_way {
        bump(&state.counters.uploads_rejected);
        switch.pull();
        std::future::pending::<()>().await;
    }
    // multer hands out one field at a time: the file part must be released first.
    drop(file);
    // OSS ignores fields after the file, but not a second file.
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| OssError::malformed())?
    {
        let name = field.name().unwrap_or_default();
        if name.eq_ignore_ascii_case("file") || field.file_name().is_some() {
            return Err(incorrect_file_count());
        }
    }
    if incoming.size < form.min_size {
        return Err(OssError::new(
            StatusCode::BAD_REQUEST,
            "EntityTooSmall",
            "Your proposed upload smaller than the minimum allowed size.",
        ));
    }
    if state.faults.take(FaultKind::UploadError) {
        return Err(internal("injected fault"));
    }

    let (body, head, size, sha256, md5) = incoming.finish().await?;
    let now = state.clock.now();
    let kind = media::sniff(&head);
    let tokens = kind.map_or(0, |(k, _)| media::tokens(k, &head, size));
    let dimensions = media::dimensions(&head);
    drop(head);
    state.sweep_if_due();
    {
        let mut objects = lock(&state.objects);
        if let Some(existing) = objects.get(&form.key) {
            let alive = now
                .duration_since(existing.uploaded_at)
                .map_or(true, |age| age < state.config.object_lifetime);
            if alive && form.forbid_overwrite {
                drop(objects);
                remove(&body);
                return Err(OssError::new(
                    StatusCode::CONFLICT,
                    "FileAlreadyExists",
                    "The object you specified already exists and can not be overwritten.",
                ));
            }
        }
        let previous = objects.insert(
            form.key.clone(),
            Object {
                account: form.account,
                model: form.model.clone(),
                size,
                sha256: sha256.clone(),
                uploaded_at: now,
                body,
                kind,
                tokens,
                dimensions,
            },
        );
        if let Some(previous) = previous {
            remove(&previous.body);
        }
    }
    state.add_capacity(form.account, crate::when::date(now), size);
    if state.faults.take(FaultKind::UploadLoseAnswer) {
        bump(&state.counters.uploads_ok);
        switch.pull();
        std::future::pending::<()>().await;
    }

    let request_id = oss_request_id(state);
    // As OSS documents it for PostObject and PutObject: the content's MD5, upper-case, quoted.
    let etag = format!("\"{}\"", md5.to_ascii_uppercase());
    let mut response = match form.success_status {
        201 => {
            let location = format!("{}/{}", state.oss_url, form.key);
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse>\n  <Bucket>{}</Bucket>\n  <Location>{}</Location>\n  <Key>{}</Key>\n  <ETag>{}</ETag>\n</PostResponse>\n",
                state.bucket,
                xml_escape(&location),
                xml_escape(&form.key),
                xml_escape(&etag)
            );
            let mut r = (StatusCode::CREATED, xml).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
            r
        }
        200 => StatusCode::OK.into_response(),
        _ => StatusCode::NO_CONTENT.into_response(),
    };
    insert(response.headers_mut(), "x-oss-request-id", &request_id);
    insert(response.headers_mut(), "etag", &etag);
    Ok(response)
}

fn remove(body: &ObjectBody) {
    if let ObjectBody::File(path) = body {
        let _ = std::fs::remove_file(path);
    }
}

fn incorrect_file_count() -> OssError {
    OssError::new(
        StatusCode::BAD_REQUEST,
        "IncorrectNumberOfFilesInPOSTRequest",
        "POST requires exactly one file upload per request.",
    )
}

fn too_large() -> OssError {
    OssError::new(
        StatusCode::BAD_REQUEST,
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size.",
    )
}

/// A form whose fields passed every check that comes before the file.
struct Form {
    key: String,
    account: usize,
    model: String,
    min_size: u64,
    max_size: u64,
    forbid_overwrite: bool,
    success_status: u16,
}

impl Form {
    fn check(state: &State, fields: &HashMap<String, String>) -> Result<Self, OssError> {
        let get = |name: &str| fields.get(name).map(String::as_str);
        let (id, policy_b64, signature) = (get("ossaccesskeyid"), get("policy"), get("signature"));
        match (id, policy_b64, signature) {
            (Some(_), Some(_), Some(_)) => {}
            (None, None, None) => {
                return Err(OssError::denied(
                    "You have no right to access this object because of bucket acl.",
                ));
            }
            _ => {
                let missing = [
                    ("OSSAccessKeyId", id),
                    ("policy", policy_b64),
                    ("Signature", signature),
                ]
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ");
                return Err(OssError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    format!(
                        "Formfield {missing} is required when OSSAccessKeyId, policy or Signature is given."
                    ),
                ));
            }
        }
        let (Some(id), Some(policy_b64), Some(signature)) = (id, policy_b64, signature) else {
            return Err(OssError::malformed());
        };
        let key = get("key").ok_or_else(|| {
            OssError::new(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "The bucket POST must contain the specified 'key'. If it is specified, please check the order of the fields.",
            )
        })?;
        if key.is_empty()
            || key.len() > 1023
            || key.starts_with('/')
            || key.starts_with('\\')
            || key.chars().any(|c| c.is_control())
        {
            return Err(OssError::new(
                StatusCode::BAD_REQUEST,
                "InvalidObjectName",
                "The specified object is not valid.",
            ));
        }

        let document = base64::engine::general_purpose::STANDARD
            .decode(policy_b64.trim())
            .map_err(|e| OssError::invalid_policy(format_args!("Invalid Base64: {e}")))?;
        let policy: serde_json::Value = serde_json::from_slice(&document)
            .map_err(|e| OssError::invalid_policy(format_args!("Invalid JSON: {e}")))?;
        let expiration = policy
            .get("expiration")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| OssError::invalid_policy("Missing 'expiration'"))?;
        let conditions = policy
            .get("conditions")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| OssError::invalid_policy("Missing 'conditions'"))?;

        if id != state.access_key_id {
            return Err(OssError::new(
                StatusCode::FORBIDDEN,
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
            ));
        }
        let hmac_key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            &state.access_key_secret,
        );
        let given = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .unwrap_or_default();
        if ring::hmac::verify(&hmac_key, policy_b64.as_bytes(), &given).is_err() {
            return Err(OssError::new(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            ));
        }

        let expires = crate::when::parse_expiration(expiration)
            .ok_or_else(|| OssError::invalid_policy("Invalid 'expiration' value"))?;
        if state.clock.now() >= expires {
            return Err(OssError::denied(
                "Invalid according to Policy: Policy expired.",
            ));
        }

        let mut range = (0u64, u64::MAX);
        let mut upload_dir = None;
        for condition in conditions {
            if let Some(("content-length-range", min, max)) = length_range(condition) {
                range = (min, max);
                continue;
            }
            if let Some(prefix) = starts_with_key(condition) {
                upload_dir = Some(prefix.to_owned());
            }
            if !holds(state, condition, fields) {
                return Err(OssError::denied(format!(
                    "Invalid according to Policy: Policy Condition failed: {}",
                    render_condition(condition)
                )));
            }
        }
        // Every policy the emulator signs names its upload_dir; that is how an object finds its
        // account and model.
        let credential = upload_dir
            .and_then(|dir| lock(&state.credentials).get(&dir).cloned())
            .ok_or_else(|| OssError::denied("Invalid according to Policy: unknown credential."))?;
        let success_status = get("success_action_status")
            .and_then(|s| s.trim().parse::<u16>().ok())
            .filter(|s| matches!(s, 200 | 201 | 204))
            .unwrap_or(204);
        Ok(Self {
            key: key.to_owned(),
            account: credential.account,
            model: credential.model,
            min_size: range.0,
            max_size: range.1,
            forbid_overwrite: get("x-oss-forbid-overwrite")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            success_status,
        })
    }
}

fn length_range(condition: &serde_json::Value) -> Option<(&str, u64, u64)> {
    let list = condition.as_array()?;
    match list.as_slice() {
        [name, min, max] if name.as_str() == Some("content-length-range") => {
            Some(("content-length-range", min.as_u64()?, max.as_u64()?))
        }
        _ => None,
    }
}

fn starts_with_key(condition: &serde_json::Value) -> Option<&str> {
    match condition.as_array()?.as_slice() {
        [op, field, prefix]
            if op.as_str() == Some("starts-with") && field.as_str() == Some("$key") =>
        {
            prefix.as_str()
        }
        _ => None,
    }
}

/// Whether a form satisfies one policy condition. Unknown condition shapes fail, as OSS
/// refuses what it cannot evaluate.
fn holds(state: &State, condition: &serde_json::Value, fields: &HashMap<String, String>) -> bool {
    let value_of = |name: &str| -> Option<String> {
        let name = name.trim_start_matches('$').to_ascii_lowercase();
        if name == "bucket" {
            return Some(state.bucket.to_owned());
        }
        fields.get(&name).cloned()
    };
    if let Some(object) = condition.as_object() {
        return object.iter().all(|(name, want)| {
            want.as_str()
                .is_some_and(|want| value_of(name).as_deref() == Some(want))
        });
    }
    let Some(list) = condition.as_array() else {
        return false;
    };
    let op = list
        .first()
        .and_then(serde_json::Value::as_str)
        .map(str::to_ascii_lowercase);
    let field = list
        .get(1)
        .and_then(serde_json::Value::as_str)
        .and_then(value_of);
    match (op.as_deref(), field, list.get(2)) {
        (Some("eq"), Some(v), Some(want)) => want.as_str() == Some(v.as_str()),
        (Some("starts-with"), Some(v), Some(prefix)) => {
            prefix.as_str().is_some_and(|p| v.starts_with(p))
        }
        (Some("in"), Some(v), Some(serde_json::Value::Array(options))) => {
            options.iter().any(|o| o.as_str() == Some(v.as_str()))
        }
        (Some("not-in"), Some(v), Some(serde_json::Value::Array(options))) => {
            !options.iter().any(|o| o.as_str() == Some(v.as_str()))
        }
        (Some("not-in"), None, Some(serde_json::Value::Array(_))) => true,
        _ => false,
    }
}

/// A condition as OSS quotes it in messages: `["starts-with", "$key", "…"]`.
fn render_condition(condition: &serde_json::Value) -> String {
    match condition {
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// The credential for one `getPolicy` answer: the policy document, its signature.
pub(crate) fn sign_policy(
    state: &State,
    upload_dir: &str,
    max_bytes: u64,
    expires: SystemTime,
) -> (String, String) {
    let document = serde_json::json!({
        "expiration": crate::when::iso8601(expires),
        "conditions": [
            ["content-length-range", state.config.min_file_size, max_bytes],
            ["starts-with", "$key", upload_dir],
            {"bucket": state.bucket},
            {"x-oss-object-acl": "private"},
            {"x-oss-forbid-overwrite": "true"}
        ]
    });
    let policy = base64::engine::general_purpose::STANDARD.encode(document.to_string());
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        &state.access_key_secret,
    );
    let tag = ring::hmac::sign(&key, policy.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    (policy, signature)
}
