//! Errors in the shape the client speaks: OpenAI's `{error: {message, type, param, code}}` on
//! `/v1`, DashScope's `{code, message, request_id}` on `/api/v1`, with a fitting status.
//!
//! Statuses and types follow OpenAI's API reference ("Error codes": 400 bad request, 401
//! authentication, 403 permission, 404 not found, 413 too large, 429 rate limit or quota, 5xx
//! server) and the `type`s its SDKs read (`invalid_request_error`, `authentication_error`,
//! `permission_error`, `rate_limit_error`, `insufficient_quota`, `server_error`). An error
//! DashScope answered in OpenAI's shape (compatible mode) keeps its own type and code.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dashscope_oss::Error;
use serde_json::json;

/// Which wire format a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `/v1/…`: OpenAI's.
    OpenAi,
    /// `/api/v1/…`: DashScope's native one.
    DashScope,
}

/// A refusal of the gateway's own (bad input, a wrong token), not the service's.
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// Bad input: 400.
    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub(crate) fn render(&self, shape: Shape) -> Response {
        let kind = type_of_status(self.status.as_u16());
        render(shape, self.status, kind, self.code, &self.message, None)
    }
}

/// An error of the library, answered to the client.
pub(crate) fn respond(shape: Shape, error: &Error) -> Response {
    let (status, kind, code) = classify(error);
    let mut message = error.to_string();
    if matches!(error, Error::LocalFileRefused { .. }) {
        // The library's words name its setting; the client needs the gateway's.
        message.push_str(
            " (this gateway reads local files only under the directories given with --files)",
        );
    }
    render(shape, status, &kind, &code, &message, error.request_id())
}

fn render(
    shape: Shape,
    status: StatusCode,
    kind: &str,
    code: &str,
    message: &str,
    request_id: Option<&str>,
) -> Response {
    let body = match shape {
        Shape::OpenAi => json!({"error": {
            "message": message, "type": kind, "param": null, "code": code,
        }}),
        Shape::DashScope => json!({
            "code": code, "message": message, "request_id": request_id.unwrap_or_default(),
        }),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}

/// OpenAI's error type for a status.
fn type_of_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        500.. => "server_error",
        _ => "invalid_request_error",
    }
}

/// The status, OpenAI type and code of an error.
fn classify(error: &Error) -> (StatusCode, String, String) {
    let status = |n: u16| StatusCode::from_u16(n).unwrap_or(StatusCode::BAD_GATEWAY);
    let local = |n: u16, code: &str| (status(n), type_of_status(n).to_owned(), code.to_owned());
    match error {
        Error::MayHaveSubmitted(inner) => classify(inner),
        Error::MissingApiKey => local(401, "missing_api_key"),
        Error::InvalidRequest(_) | Error::Config(_) | Error::UrlExpired { .. } => {
            local(400, "invalid_request")
        }
        Error::Io { .. }
        | Error::NotAFile { .. }
        | Error::EmptyFile { .. }
        | Error::LocalFileRefused { .. } => local(400, "invalid_file"),
        Error::FileTooLarge { .. } => local(413, "file_too_large"),
        Error::QuotaExhausted(_) => (
            status(429),
            "insufficient_quota".to_owned(),
            code_of(error, "insufficient_quota"),
        ),
        Error::Transport(_) => local(502, "upstream_unreachable"),
        Error::Timeout(_) | Error::DeadlineExceeded { .. } | Error::WaitTimeout { .. } => {
            local(504, "upstream_timeout")
        }
        // A transcription whose file the model could not read failed as a task (at HTTP 200):
        // the input's fault, unless the service says it failed itself.
        Error::TaskFailed { .. } => {
            let code = code_of(error, "task_failed");
            let n = if code.contains("Internal") { 500 } else { 400 };
            (status(n), type_of_status(n).to_owned(), code)
        }
        Error::TaskCanceled { .. } | Error::TaskUnknown { .. } => local(500, "task_failed"),
        Error::Decode(_) => local(502, "bad_upstream_answer"),
        other => {
            let n = other.status().filter(|n| *n >= 400).unwrap_or(502);
            let api = other.api_error();
            let kind = api
                .and_then(|a| a.error_type())
                .map_or_else(|| type_of_status(n).to_owned(), str::to_owned);
            (status(n), kind, code_of(other, "upstream_error"))
        }
    }
}

fn code_of(error: &Error, fallback: &str) -> String {
    error.code().unwrap_or(fallback).to_owned()
}
