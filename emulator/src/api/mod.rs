//! The API host: upload credentials, the two model endpoints, and the emulator's controls.
//!
//! Requests are judged from raw JSON (`serde_json::Value`), never through the client's types, so
//! a bug in the client's serializers cannot hide behind the same bug here.

mod answer;
mod call;
mod control;
mod credential;
mod shaped;

pub(crate) use call::{MediaRef, resolve_medium};

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::AccountStatus;
use super::state::State;
use crate::api::call::compatible;
use crate::api::call::native;
use crate::api::call::text_generation;
use crate::api::control::clock;
use crate::api::control::faults;
use crate::api::control::stats;
use crate::api::credential::get_policy;
use crate::catalogue::Endpoint;

/// The service's limit on one `data:` URI, from its refusal ("Exceeded limit on max bytes per
/// data-uri item : 10485760", the error-messages page).
pub(crate) const DATA_URI_LIMIT: usize = 10 * 1024 * 1024;

/// Model-call bodies larger than this answer 413 `BadRequest.TooLarge`. The service's own limit
/// is not documented; it must exceed one `data:` URI's documented 10 MiB, so 32 MiB (inferred).
pub(crate) const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// Text that makes the emulator answer 400 `DataInspectionFailed`, so that the content-rejected
/// path can be tested.
pub const REJECTED_TEXT: &str = "EMULATOR-REJECT-CONTENT";

pub(crate) const INVALID_URL: &str =
    "The provided URL does not appear to be valid. Ensure it is correctly formatted.";

pub(crate) const DATA_INSPECTION: &str =
    "The media format is not supported or incorrect for the data inspection.";

pub(crate) const INVALID_PARAMETER: &str =
    "Required parameter(s) missing or invalid, please check the request parameters.";

/// The service's answer to a model call whose medium it could not download (reported
/// verbatim: agentscope-ai/agentscope-java #2700 natively, BerriAI/litellm #6307 in compatible
/// mode, where the message carries the native code behind `<400>`).
pub(crate) const DOWNLOAD_FAILED: &str = "Failed to download multimodal content";

/// Its native code.
pub(crate) const DOWNLOAD_FAILED_CODE: &str = "InternalError.Algo.InvalidParameter";

pub(crate) const RATE_LIMITED: &str = "Requests rate limit exceeded, please try again later.";

/// The API host: these endpoints, the task endpoints (`tasks`, given by the caller so that
/// the two do not depend on each other) and the emulator's control endpoints.
pub(crate) fn router(state: Arc<State>, tasks: Router<Arc<State>>) -> Router {
    Router::new()
        .route("/api/v1/uploads", get(get_policy))
        .route("/compatible-mode/v1/chat/completions", post(compatible))
        .route(
            "/api/v1/services/aigc/multimodal-generation/generation",
            post(native),
        )
        .route(
            "/api/v1/services/aigc/text-generation/generation",
            post(text_generation),
        )
        .merge(tasks)
        .route("/emulator/v1/stats", get(stats))
        .route("/emulator/v1/clock", post(clock))
        .route("/emulator/v1/faults", post(faults))
        .route("/emulator/v1/files/{name}", get(control::hosted_file))
        .route("/compatible-mode/v1/models", get(models))
        .fallback(not_found)
        // Bodies are bounded by MAX_REQUEST_BYTES below, with the documented 413.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            with_request_id,
        ))
        .with_state(state)
}

/// Every answer carries its request id in `x-request-id`, as the service's do (the official
/// CLI prints it, OpenAI's SDKs read it): the body's `request_id` when it has one, else a new
/// one. Streams set theirs when they start.
async fn with_request_id(AxState(state): AxState<Arc<State>>, response: Response) -> Response {
    if response.headers().contains_key("x-request-id") {
        return response;
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (mut parts, body) = response.into_parts();
    let (body, id) = if json {
        match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
            Ok(bytes) => {
                // A compatible answer names it in its `id` (`chatcmpl-<request id>`).
                let id = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| {
                        v.get("request_id")
                            .and_then(|id| id.as_str())
                            .or_else(|| v.get("id")?.as_str()?.strip_prefix("chatcmpl-"))
                            .map(str::to_owned)
                    });
                (axum::body::Body::from(bytes), id)
            }
            Err(_) => (axum::body::Body::empty(), None),
        }
    } else {
        (body, None)
    };
    let id = id.unwrap_or_else(|| state.request_id());
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        parts.headers.insert("x-request-id", value);
    }
    Response::from_parts(parts, body)
}

/// The compatible model list (`GET /compatible-mode/v1/models`, OpenAI's `models.list`): the
/// catalogue's example names and the models set by name, for a valid key.
async fn models(AxState(state): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    let request_id = state.request_id();
    if let Err(e) = authenticate(&state, &headers) {
        return e.render(Api::Compatible, &request_id);
    }
    let mut names: Vec<&str> = crate::catalogue::FAMILIES
        .iter()
        .flat_map(|f| f.examples.iter().copied())
        .chain(state.config.models.keys().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    let data: Vec<serde_json::Value> = names
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "system"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// Which error format an endpoint answers in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Native,
    Compatible,
}

pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}
impl ApiError {
    pub(crate) fn render(self, api: Api, request_id: &str) -> Response {
        let body = match api {
            Api::Native => {
                json!({"code": self.code, "message": self.message, "request_id": request_id})
            }
            Api::Compatible => {
                let (code, kind) = compatible_code(self.code);
                // The documented compatible-mode form of the invalid-URL error carries the
                // algorithm's code as a prefix.
                let message = if self.message == INVALID_URL {
                    format!("InternalError.Algo.InvalidParameter: {INVALID_URL}")
                } else if self.code == DOWNLOAD_FAILED_CODE {
                    format!("<400> {DOWNLOAD_FAILED_CODE}: {}", self.message)
                } else {
                    self.message
                };
                json!({
                    "error": {"message": message, "type": kind, "param": null, "code": code},
                    "request_id": request_id
                })
            }
        };
        (self.status, axum::Json(body)).into_response()
    }
}

pub(crate) fn error(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        code,
        message: message.into(),
    }
}

/// The compatible mode's (code, type) for a native code. Our reading of the compatible-mode
/// documentation; the invalid-URL form is the documented one.
pub(crate) fn compatible_code(native: &'static str) -> (&'static str, &'static str) {
    match native {
        "InvalidApiKey" => ("invalid_api_key", "invalid_request_error"),
        "InvalidParameter" | "InvalidParameter.DataInspection" | DOWNLOAD_FAILED_CODE => {
            ("invalid_parameter_error", "invalid_request_error")
        }
        "DataInspectionFailed" => ("data_inspection_failed", "data_inspection_failed"),
        "ModelNotFound" => ("model_not_found", "invalid_request_error"),
        "Throttling" | "Throttling.RateQuota" => ("limit_requests", "limit_requests"),
        "Throttling.AllocationQuota" => ("insufficient_quota", "insufficient_quota"),
        "Arrearage" => ("Arrearage", "Arrearage"),
        // No lower-case form is documented for these: the native code travels in the envelope.
        "AccessDenied" | "AccessDenied.Unpurchased" | "BadRequest.TooLarge" => {
            (native, "invalid_request_error")
        }
        _ => ("internal_error", "internal_error"),
    }
}

pub(crate) async fn not_found(AxState(state): AxState<Arc<State>>) -> Response {
    error(
        404,
        "NotFound",
        "The requested path is not served by the DashScope emulator.",
    )
    .render(Api::Native, &state.request_id())
}

/// The account of the request's bearer key.
pub(crate) fn authenticate(state: &State, headers: &HeaderMap) -> Result<usize, ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let Some(given) = given else {
        return Err(error(401, "InvalidApiKey", "No API-key provided."));
    };
    // The documented form is `Bearer <key>`; a bare key is refused, so a client that drops
    // the scheme fails here as it would against the service.
    let key = match given.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
        _ => return Err(error(401, "InvalidApiKey", "Invalid API-key provided.")),
    };
    let account = state
        .account_of_key(key)
        .ok_or_else(|| error(401, "InvalidApiKey", "Invalid API-key provided."))?;
    match state.config.accounts.get(account).map(|a| a.status) {
        Some(AccountStatus::InArrears) => Err(error(
            400,
            "Arrearage",
            "Access denied, please make sure your account is in good standing.",
        )),
        Some(AccountStatus::Denied) => Err(error(403, "AccessDenied", "Access denied.")),
        _ => Ok(account),
    }
}

/// A model the emulator serves to this caller on `endpoint` (`None`: the credential endpoint,
/// which any known model may use): 404 `ModelNotFound` for an unknown one, 403 for one the
/// account has not bought, and the service's "url error" for a model called on an endpoint its
/// family does not serve (users report it verbatim, e.g. a multimodal model sent to text
/// generation).
pub(crate) fn model_spec(
    state: &State,
    model: &str,
    endpoint: Option<Endpoint>,
) -> Result<super::ModelSpec, ApiError> {
    let spec = state
        .config
        .spec_of(model)
        .ok_or_else(|| error(404, "ModelNotFound", "Model not exist."))?;
    if spec.restricted {
        return Err(unpurchased());
    }
    if let Some(endpoint) = endpoint
        && !spec.endpoints.contains(&endpoint)
    {
        return Err(error(400, "InvalidParameter", URL_ERROR));
    }
    Ok(spec)
}

/// The service's answer to a model called on an endpoint that does not serve it.
pub(crate) const URL_ERROR: &str = "url error, please check url\u{ff01} For details, see: https://help.aliyun.com/zh/model-studio/error-code#error-url";

pub(crate) fn unpurchased() -> ApiError {
    error(
        403,
        "AccessDenied.Unpurchased",
        "Access to model denied. Please make sure you are eligible for using the model.",
    )
}
