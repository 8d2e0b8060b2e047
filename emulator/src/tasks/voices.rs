//! CosyVoice voice enrollment (`POST /api/v1/services/audio/tts/customization`, model
//! `voice-enrollment`), keeping each account's voices as the service does: `create_voice`
//! stores one, `list_voice` pages through them, `query_voice` answers one, `update_voice`
//! replaces its sample, `delete_voice` removes it.
//!
//! The shapes are the CosyVoice voice cloning API reference's and the official SDK 2.0.2's
//! (`audio/tts_v2/enrollment.py`, which reads `output.voice_id` and `output.voice_list`, and
//! returns `output` of a query whole): the id is `{target_model}-{prefix}-{32 hex}`; a list item
//! holds `voice_id`, `target_model`, `gmt_create`, `gmt_modified` and `status`; a query answers
//! `gmt_create`, `gmt_modified`, `resource_link`, `target_model` and `status`; update and
//! delete answer an empty `output`; every answer carries `usage.count` 1. At most 1,000 voices
//! per account (the documentation's quota). `page_index` counts from 0 (default 0) and
//! `page_size` is 0 to 1,000 (default 10).
//!
//! The prefix rule: the API reference says "digits and English letters, at most 10
//! characters", the SDK's docstring and the reference's own example say "digits and lowercase
//! letters, less than 10 characters". The emulator takes what both allow at the length the
//! API reference gives: lowercase letters and digits, 1 to 10 of them.
//!
//! Where the sources are silent the emulator decides (docs/emulator.md): a voice is `OK` at
//! once (the service reviews it, `DEPLOYING`, first); an unknown or another account's voice id
//! is 400 `BadRequest.ResourceNotExist` (the code a public client of the service matches on);
//! the other refusals are 400 `InvalidParameter` naming the field; lists are in the order the
//! voices were created; times are written like task times, to the second.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::store::Voice;
use super::{field, header_is, open_call};
use crate::MediaKind;
use crate::api::{Api, ApiError, MediaRef, error, resolve_medium};
use crate::state::{State, lock};

/// The voices one account may keep (the voice cloning documentation's quota).
const MAX_VOICES: usize = 1000;

fn invalid(message: &str) -> ApiError {
    error(400, "InvalidParameter", message.to_owned())
}

fn not_found() -> ApiError {
    error(
        400,
        "BadRequest.ResourceNotExist",
        "The voice does not exist.",
    )
}

/// Lowercase letters and digits, 1 to 10 of them.
fn is_prefix(prefix: &str) -> bool {
    (1..=10).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `YYYY-MM-DD HH:MM:SS`: a task time without its milliseconds, as the reference's examples
/// write `gmt_create`.
fn voice_time(t: std::time::SystemTime) -> String {
    let mut written = crate::when::service_time(t);
    written.truncate(19);
    written
}

/// A whole number field of `input`, or its default when absent.
fn number(request: &Value, name: &str, default: u64, max: u64) -> Result<u64, ApiError> {
    match request.pointer(&format!("/input/{name}")) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().filter(|n| *n <= max).ok_or_else(|| {
            invalid(&format!(
                "input.{name} must be a whole number from 0 to {max}"
            ))
        }),
    }
}

struct Call<'a> {
    state: &'a State,
    account: usize,
    model: String,
    accepts: Vec<MediaKind>,
    resolve: bool,
    request: Value,
}

impl Call<'_> {
    /// The sample's URL, resolved like any model call's medium (so an `oss://` sample needs the
    /// OSS header, and the model the file was uploaded for).
    fn sample(&self) -> Result<(String, String), ApiError> {
        let url =
            field(&self.request, "/input/url").ok_or_else(|| invalid("input.url is required"))?;
        let described = resolve_medium(
            self.state,
            self.account,
            &self.model,
            &self.accepts,
            &MediaRef {
                url: url.to_owned(),
            },
            self.resolve,
        )?;
        Ok((url.to_owned(), described.summary))
    }

    fn voice_id(&self) -> Result<String, ApiError> {
        field(&self.request, "/input/voice_id")
            .map(str::to_owned)
            .ok_or_else(|| invalid("input.voice_id is required"))
    }

    /// Runs `change` on the account's voice named by `input.voice_id`.
    fn with_voice<T>(&self, change: impl FnOnce(&mut Voice) -> T) -> Result<T, ApiError> {
        let id = self.voice_id()?;
        let mut voices = lock(&self.state.tasks.voices);
        voices
            .get_mut(&id)
            .filter(|v| v.account == self.account)
            .map(change)
            .ok_or_else(not_found)
    }

    fn create(&self) -> Result<Value, ApiError> {
        let target = field(&self.request, "/input/target_model")
            .ok_or_else(|| invalid("input.target_model is required"))?
            .to_owned();
        let prefix = field(&self.request, "/input/prefix").unwrap_or("");
        if !is_prefix(prefix) {
            return Err(invalid(
                "input.prefix must be 1 to 10 lowercase letters and digits",
            ));
        }
        let (url, summary) = self.sample()?;
        let now = self.state.clock.now();
        let seq = self
            .state
            .tasks
            .voices_created
            .fetch_add(1, Ordering::Relaxed);
        // Unique per create (the sequence), and derived from what was received.
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{}\n{seq}\n{summary}", self.account).as_bytes(),
        );
        let id = format!(
            "{target}-{prefix}-{}",
            crate::state::hex(&digest.as_ref()[..16])
        );
        let mut voices = lock(&self.state.tasks.voices);
        if voices
            .values()
            .filter(|v| v.account == self.account)
            .count()
            >= MAX_VOICES
        {
            return Err(invalid(
                "The account already has 1000 voices, the most it may keep: delete one first.",
            ));
        }
        voices.insert(
            id.clone(),
            Voice {
                account: self.account,
                target_model: target,
                prefix: prefix.to_owned(),
                url,
                created: now,
                modified: now,
                seq,
            },
        );
        Ok(json!({"output": {"voice_id": id}}))
    }

    fn list(&self) -> Result<Value, ApiError> {
        let prefix = field(&self.request, "/input/prefix");
        if prefix.is_some_and(|p| !is_prefix(p)) {
            return Err(invalid(
                "input.prefix must be 1 to 10 lowercase letters and digits",
            ));
        }
        let page_index = number(&self.request, "page_index", 0, u64::from(u32::MAX))?;
        let page_size = number(&self.request, "page_size", 10, 1000)?;
        let voices = lock(&self.state.tasks.voices);
        let mut mine: Vec<(&String, &Voice)> = voices
            .iter()
            .filter(|(_, v)| v.account == self.account)
            .filter(|(_, v)| prefix.is_none_or(|p| p == v.prefix))
            .collect();
        mine.sort_by_key(|(_, v)| v.seq);
        let skip = usize::try_from(page_index.saturating_mul(page_size)).unwrap_or(usize::MAX);
        let listed: Vec<Value> = mine
            .iter()
            .skip(skip)
            .take(usize::try_from(page_size).unwrap_or(usize::MAX))
            .map(|(id, v)| {
                json!({
                    "voice_id": id, "target_model": v.target_model,
                    "gmt_create": voice_time(v.created), "gmt_modified": voice_time(v.modified),
                    "status": "OK"
                })
            })
            .collect();
        Ok(json!({"output": {"voice_list": listed}}))
    }

    fn query(&self) -> Result<Value, ApiError> {
        let output = self.with_voice(|v| {
            json!({
                "gmt_create": voice_time(v.created), "gmt_modified": voice_time(v.modified),
                "resource_link": v.url, "target_model": v.target_model, "status": "OK"
            })
        })?;
        Ok(json!({ "output": output }))
    }

    fn update(&self) -> Result<Value, ApiError> {
        // The voice first: an update of an unknown voice is refused as one, whatever its sample.
        self.with_voice(|_| ())?;
        let (url, _) = self.sample()?;
        let now = self.state.clock.now();
        self.with_voice(|v| {
            v.url = url;
            v.modified = now;
        })?;
        Ok(json!({"output": {}}))
    }

    fn delete(&self) -> Result<Value, ApiError> {
        let id = self.voice_id()?;
        let mut voices = lock(&self.state.tasks.voices);
        match voices.get(&id) {
            Some(v) if v.account == self.account => {
                voices.remove(&id);
                Ok(json!({"output": {}}))
            }
            _ => Err(not_found()),
        }
    }
}

pub(super) async fn enroll(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = state.request_id();
    let answered = open_call(
        &state,
        &headers,
        &body,
        crate::catalogue::Endpoint::VoiceEnrollment,
    )
    .and_then(|(account, model, accepts, request)| {
        let call = Call {
            state: &state,
            account,
            model,
            accepts,
            resolve: header_is(&headers, "x-dashscope-ossresourceresolve", "enable"),
            request,
        };
        match field(&call.request, "/input/action").unwrap_or("") {
            "create_voice" => call.create(),
            "list_voice" => call.list(),
            "query_voice" => call.query(),
            "update_voice" => call.update(),
            "delete_voice" => call.delete(),
            _ => Err(invalid("input.action is not supported")),
        }
    });
    match answered {
        Ok(mut body) => {
            body["usage"] = json!({"count": 1});
            body["request_id"] = json!(request_id);
            axum::Json(body).into_response()
        }
        Err(e) => e.render(Api::Native, &request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_lowercase_letters_and_digits_ten_at_most() {
        for good in ["myvoice", "announcer", "a", "0123456789", "v2"] {
            assert!(is_prefix(good), "{good}");
        }
        for bad in [
            "",
            "MyVoice",
            "my_voice",
            "my-voice",
            "01234567890",
            "语音",
            "a b",
        ] {
            assert!(!is_prefix(bad), "{bad}");
        }
    }
}
