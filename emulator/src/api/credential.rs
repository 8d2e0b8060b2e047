//! `GET /api/v1/uploads?action=getPolicy`: an upload credential, as the service issues one.

use std::sync::Arc;

use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Api;
use super::ApiError;
use super::INVALID_PARAMETER;
use super::RATE_LIMITED;
use super::authenticate;
use super::error;
use super::model_spec;
use crate::oss::sign_policy;
use crate::state::{Credential, FaultKind, State, bump, lock};

pub(crate) async fn get_policy(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    state.faults.delay().await;
    let request_id = state.request_id();
    match issue_policy(&state, &headers, &query, &request_id) {
        Ok(body) => {
            bump(&state.counters.policy_requests);
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(e) => e.render(Api::Native, &request_id),
    }
}

pub(crate) fn issue_policy(
    state: &State,
    headers: &HeaderMap,
    query: &[(String, String)],
    request_id: &str,
) -> Result<Value, ApiError> {
    let account = authenticate(state, headers)?;
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    if param("action") != Some("getPolicy") {
        return Err(error(400, "InvalidParameter", INVALID_PARAMETER));
    }
    let model = param("model").ok_or_else(|| error(400, "InvalidParameter", INVALID_PARAMETER))?;
    let spec = model_spec(state, model, None)?;
    if state.faults.take(FaultKind::PolicyError) {
        return Err(error(
            500,
            "InternalError",
            "An internal error has occured, please try again later.",
        ));
    }
    if state.faults.take(FaultKind::PolicyThrottle) || !state.admit_policy_request(account, model) {
        bump(&state.counters.policy_throttled);
        return Err(error(429, "Throttling.RateQuota", RATE_LIMITED));
    }
    let now = state.clock.now();
    let date = crate::when::date(now);
    if !state.capacity_left(account, &date) {
        return Err(error(
            429,
            "Throttling.AllocationQuota",
            "The daily upload capacity of the temporary storage is used up.",
        ));
    }
    let upload_dir = format!(
        "dashscope-instant/{}/{}/{}",
        state.account_hash(account),
        date,
        request_id
    );
    let lifetime = state.policy_lifetime();
    let max_bytes = spec.max_file_size_mb.saturating_mul(1024 * 1024);
    let expires = now + state.config.policy_expiration.unwrap_or(lifetime);
    let (policy, signature) = sign_policy(state, &upload_dir, max_bytes, expires);
    state.sweep_if_due();
    lock(&state.credentials).insert(
        upload_dir.clone(),
        Credential {
            account,
            model: model.to_owned(),
            expires,
        },
    );
    Ok(json!({
        "data": {
            "policy": policy,
            "signature": signature,
            "upload_dir": upload_dir,
            "upload_host": state.oss_url,
            "expire_in_seconds": lifetime.as_secs(),
            "max_file_size_mb": spec.max_file_size_mb,
            "capacity_limit_mb": state.config.capacity_limit_mb,
            "oss_access_key_id": state.access_key_id,
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true"
        },
        "request_id": request_id
    }))
}
