//! Results, as the storage behind a presigned link serves them: the link's expiry and
//! signature checked first, refusals in OSS's XML, then the object (a transcript, a PNG, an
//! MP4) while its task is known.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::store::{Kind, status_of};
use crate::oss::OssError;
use crate::state::{State, lock};

/// A 1×1 PNG: what every image task makes.
pub const RESULT_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// A small MP4 (an `ftyp` box and an empty `free` box): what every video task makes.
pub const RESULT_MP4: &[u8] = &[
    0x00, 0x00, 0x00, 0x18, b'f', b't', b'y', b'p', b'i', b's', b'o', b'm', 0x00, 0x00, 0x02, 0x00,
    b'i', b's', b'o', b'm', b'm', b'p', b'4', b'1', 0x00, 0x00, 0x00, 0x08, b'f', b'r', b'e', b'e',
];

/// A result, as the storage behind a presigned URL would serve it: no key needed; gone (404)
/// once the task is forgotten.
pub(super) async fn result(
    AxState(state): AxState<Arc<State>>,
    Path((task_id, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    // A presigned URL is its own authorization: OSS refuses a second one, and a client that
    // sends its API key here would be sending it to a storage host.
    if headers.contains_key(header::AUTHORIZATION) {
        return OssError::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Only one auth mechanism allowed; only one of the query parameters Signature or the header Authorization should be specified.",
        )
        .into_response(&state);
    }
    let now = state.clock.now();
    let expires = query.get("Expires").and_then(|e| e.parse::<u64>().ok());
    let signed = query
        .get("Signature")
        .zip(expires)
        .is_some_and(|(signature, expires)| {
            *signature == link_signature(&state, &task_id, &name, expires)
        });
    let Some(expires) = expires.filter(|_| signed) else {
        return OssError::new(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
        .into_response(&state);
    };
    if unix_secs(now) >= expires {
        return OssError::denied("Request has expired.").into_response(&state);
    }
    let no_such_key = || {
        OssError::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
        .into_response(&state)
    };
    let task = lock(&state.tasks.tasks).get(&task_id).cloned();
    let Some(task) = task.filter(|t| status_of(t, now, &state.config) == "SUCCEEDED") else {
        return no_such_key();
    };
    let (stem, ext) = name.split_once('.').unwrap_or((name.as_str(), ""));
    let index: usize = stem.parse().unwrap_or(usize::MAX);
    match (task.kind, ext) {
        (Kind::Transcription, "json") => {
            let Some(file) = task.files.get(index) else {
                return no_such_key();
            };
            let Ok(summary) = &file.outcome else {
                return no_such_key();
            };
            let text = format!(
                "[DashScope emulator, no model ran] {} received {summary}.",
                task.model
            );
            let mut sentence =
                json!({"begin_time": 0, "end_time": 1000, "text": text, "sentence_id": 1});
            if task.diarization {
                sentence["speaker_id"] = json!(0);
            }
            axum::Json(json!({
                "file_url": file.url,
                "properties": {
                    "audio_format": "unknown", "channels": [0],
                    "original_sampling_rate": 16000, "original_duration_in_milliseconds": 1000
                },
                "transcripts": [{
                    "channel_id": 0, "content_duration_in_milliseconds": 1000,
                    "text": text, "sentences": [sentence]
                }]
            }))
            .into_response()
        }
        (Kind::Image | Kind::Generation, "png") if (index as u64) < task.images => {
            ([(header::CONTENT_TYPE, "image/png")], RESULT_PNG).into_response()
        }
        (Kind::Video, "mp4") if index == 0 => {
            ([(header::CONTENT_TYPE, "video/mp4")], RESULT_MP4).into_response()
        }
        _ => no_such_key(),
    }
}

/// A result link as the storage presigns it: `Expires` (Unix seconds, `result_lifetime` after
/// the query that gave it), the access key id and a signature over the object and the expiry.
pub(super) fn result_url(
    state: &State,
    base: &str,
    task_id: &str,
    name: &str,
    now: SystemTime,
) -> String {
    let expires = now
        .checked_add(state.config.result_lifetime)
        .map_or(u64::MAX, unix_secs);
    format!(
        "{base}/emulator/v1/results/{task_id}/{name}?Expires={expires}&OSSAccessKeyId=LTAI5tEmulatorResults&Signature={}",
        link_signature(state, task_id, name, expires)
    )
}

/// The signature of a result link (hex HMAC-SHA256 under the emulator's secret, so that a
/// link with a changed expiry is refused).
fn link_signature(state: &State, task_id: &str, name: &str, expires: u64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &state.access_key_secret);
    let tag = ring::hmac::sign(&key, format!("{task_id}/{name}\n{expires}").as_bytes());
    crate::state::hex(tag.as_ref())
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
