//! The emulator's own control endpoints under `/emulator/v1/`: stats, the clock, faults.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::{FaultKind, State};

pub(crate) async fn stats(AxState(state): AxState<Arc<State>>) -> Response {
    axum::Json(state.stats()).into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct ClockRequest {
    pub(crate) advance_seconds: f64,
}

pub(crate) async fn clock(AxState(state): AxState<Arc<State>>, body: Bytes) -> Response {
    // try_from_secs_f64 refuses negative, NaN and too-large values instead of panicking.
    let by = serde_json::from_slice::<ClockRequest>(&body)
        .ok()
        .and_then(|req| Duration::try_from_secs_f64(req.advance_seconds).ok());
    match by {
        Some(by) => {
            state.clock.advance(by);
            state.sweep_now();
            axum::Json(json!({"now": crate::when::iso8601(state.clock.now())})).into_response()
        }
        None => control_error("expected {\"advance_seconds\": <non-negative number>}"),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultRequest {
    pub(crate) kind: Option<String>,
    pub(crate) count: Option<u32>,
    pub(crate) rate_per_million: Option<u32>,
    pub(crate) delay_ms: Option<u64>,
    pub(crate) policy_lifetime_seconds: Option<u64>,
}

pub(crate) async fn faults(AxState(state): AxState<Arc<State>>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<FaultRequest>(&body) else {
        return control_error(
            "expected {\"kind\", \"count\"} and/or {\"delay_ms\"} and/or {\"policy_lifetime_seconds\"}",
        );
    };
    if let Some(name) = &req.kind {
        let Some(kind) = FaultKind::ALL.into_iter().find(|k| k.name() == name) else {
            let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
            return control_error(&format!(
                "unknown fault kind; expected one of {}",
                names.join(", ")
            ));
        };
        match req.rate_per_million {
            Some(rate) => state.faults.set_rate(kind, rate),
            None => state.faults.inject(kind, req.count.unwrap_or(1)),
        }
    }
    if let Some(ms) = req.delay_ms {
        state.faults.set_delay(Duration::from_millis(ms));
    }
    if let Some(secs) = req.policy_lifetime_seconds {
        state.set_policy_lifetime(Duration::from_secs(secs));
    }
    axum::Json(json!({"ok": true})).into_response()
}

pub(crate) fn control_error(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"code": "InvalidParameter", "message": message})),
    )
        .into_response()
}

/// The emulator's file host (`Emulator::host_file`, `Emulator::host_redirect`): a stand-in for
/// somebody's web server, so that a client that fetches a URL to re-host it has one on
/// loopback. No key is asked for, as a public URL asks for none.
pub(crate) async fn hosted_file(
    AxState(state): AxState<Arc<State>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    crate::state::bump(&state.counters.files_served);
    let hosted = crate::state::lock(&state.hosted).get(&name).cloned();
    match hosted {
        Some(crate::state::Hosted::File(bytes)) => {
            let mime = crate::media::sniff(&bytes).map_or("application/octet-stream", |(_, m)| m);
            ([(axum::http::header::CONTENT_TYPE, mime)], bytes).into_response()
        }
        Some(crate::state::Hosted::Redirect(to)) => {
            (StatusCode::FOUND, [(axum::http::header::LOCATION, to)]).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
