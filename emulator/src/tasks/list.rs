//! The task list, `GET /api/v1/tasks`, with its filters checked as the service checks them.
//!
//! What the sources say: the official SDKs send `page_no` (1 by default) and `page_size` (10),
//! and, when set, `start_time`/`end_time` (`YYYYMMDDhhmmss`, e.g. `20230420000000`, in the SDK
//! 2.0.2 docstrings), `model_name`, `api_key_id`, `region` and `status`; the documentation
//! digests say the time range spans 24 hours at most. The answer's shape is not settled: the
//! Java SDK (and a .NET SDK's captured answers) read `data`, the Python SDK 2.0.2's v2
//! `JobList` reads `tasks`. The emulator answers both keys, with the same tasks.
//!
//! Where they are silent, the emulator decides (docs/emulator.md): a malformed time, a range
//! over 24 hours or ending before it starts, a `page_no` below 1, a `page_size` outside 1–100
//! and an unknown `status` are 400 `InvalidParameter` with a message naming the parameter; a
//! time alone bounds a day from it (a `start_time` alone lists that day onward, an `end_time`
//! alone the day before it); times are read in the clock the answers' `submit_time` is written
//! in, so that a time copied from a task finds it; `end_time` includes its whole second.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDateTime;
use serde_json::{Value, json};

use super::open_query;
use super::store::{Task, status_of};
use crate::api::{Api, ApiError, error};
use crate::state::{State, lock};

/// The longest range `start_time`..`end_time` may span.
const MAX_RANGE: Duration = Duration::from_secs(24 * 3600);

/// The states a list can be filtered by (a listed task is never `UNKNOWN`: it is still known).
const STATES: &[&str] = &["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED"];

/// A list request's filters, checked.
#[derive(Debug, PartialEq)]
struct Filter {
    page_no: usize,
    page_size: usize,
    /// Submitted at or after the first, before the second.
    range: Option<(SystemTime, SystemTime)>,
    model: Option<String>,
    status: Option<String>,
}

fn invalid(message: &str) -> ApiError {
    error(400, "InvalidParameter", message.to_owned())
}

/// `YYYYMMDDhhmmss`, exactly fourteen digits naming a real time.
fn parse_time(value: &str) -> Option<SystemTime> {
    if value.len() != 14 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(value, "%Y%m%d%H%M%S").ok()?;
    Some(naive.and_utc().into())
}

impl Filter {
    fn parse(params: &[(String, String)]) -> Result<Self, ApiError> {
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let page_no = match param("page_no") {
            None => 1,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| invalid("page_no must be a whole number from 1"))?,
        };
        let page_size = match param("page_size") {
            None => 10,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| invalid("page_size must be a whole number from 1 to 100"))?,
        };
        let time = |name: &str| -> Result<Option<SystemTime>, ApiError> {
            param(name)
                .map(|v| {
                    parse_time(v).ok_or_else(|| {
                        invalid(&format!(
                            "{name} must be a time in the format YYYYMMDDhhmmss, e.g. 20230420000000"
                        ))
                    })
                })
                .transpose()
        };
        let second = Duration::from_secs(1);
        let range = match (time("start_time")?, time("end_time")?) {
            (None, None) => None,
            (Some(start), None) => Some((start, start + MAX_RANGE + second)),
            (None, Some(end)) => Some((end.checked_sub(MAX_RANGE).unwrap_or(end), end + second)),
            (Some(start), Some(end)) => {
                let span = end
                    .duration_since(start)
                    .map_err(|_| invalid("end_time must not be before start_time"))?;
                if span > MAX_RANGE {
                    return Err(invalid(
                        "The range from start_time to end_time must not exceed 24 hours",
                    ));
                }
                Some((start, end + second))
            }
        };
        let status = match param("status") {
            None => None,
            Some(s) if STATES.contains(&s) => Some(s.to_owned()),
            Some(_) => {
                return Err(invalid(
                    "status must be one of PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED",
                ));
            }
        };
        Ok(Self {
            page_no,
            page_size,
            range,
            model: param("model_name").map(str::to_owned),
            status,
        })
    }

    fn admits(&self, task: &Task, status: &str) -> bool {
        self.model.as_deref().is_none_or(|m| m == task.model)
            && self.status.as_deref().is_none_or(|s| s == status)
            && self
                .range
                .is_none_or(|(from, until)| task.submitted >= from && task.submitted < until)
    }
}

pub(super) async fn list(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let request_id = state.request_id();
    let answered = open_query(&state, &headers).and_then(|account| {
        let filter = Filter::parse(&params)?;
        Ok(page(&state, account, &filter))
    });
    match answered {
        Ok(mut body) => {
            body["request_id"] = json!(request_id);
            axum::Json(body).into_response()
        }
        Err(e) => e.render(Api::Native, &request_id),
    }
}

/// One page of the account's tasks, in the order they were submitted.
fn page(state: &State, account: usize, filter: &Filter) -> Value {
    let now = state.clock.now();
    let tasks = lock(&state.tasks.tasks);
    let mut mine: Vec<(&String, &Task, &'static str)> = tasks
        .iter()
        .filter(|(_, t)| t.account == account)
        .map(|(id, t)| (id, t, status_of(t, now, &state.config)))
        .filter(|(_, t, status)| filter.admits(t, status))
        .collect();
    mine.sort_by_key(|(_, t, _)| t.seq);
    let total = mine.len();
    let listed: Vec<Value> = mine
        .iter()
        .skip((filter.page_no - 1).saturating_mul(filter.page_size))
        .take(filter.page_size)
        .map(|(id, t, status)| {
            json!({
                "task_id": id, "task_status": status,
                "model_name": t.model, "submit_time": crate::when::service_time(t.submitted)
            })
        })
        .collect();
    json!({
        "data": listed, "tasks": listed, "total": total,
        "total_page": total.div_ceil(filter.page_size),
        "page_no": filter.page_no, "page_size": filter.page_size
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<Filter, String> {
        let params: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Filter::parse(&params).map_err(|e| e.message)
    }

    #[test]
    fn times_are_fourteen_digits_of_a_real_time() {
        assert!(parse_time("20230420000000").is_some());
        for bad in [
            "",
            "2023042000000",
            "202304200000000",
            "2023-04-20 00:00",
            "20231320000000",
            "20230230000000",
            "20230420250000",
            "+2023042000000",
        ] {
            assert!(parse_time(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn ranges_span_a_day_at_most_and_run_forward() {
        let day = parse(&[
            ("start_time", "20230420000000"),
            ("end_time", "20230421000000"),
        ]);
        assert!(day.is_ok(), "{day:?}");
        let over = parse(&[
            ("start_time", "20230420000000"),
            ("end_time", "20230421000001"),
        ]);
        assert!(over.is_err_and(|m| m.contains("24 hours")));
        let backwards = parse(&[
            ("start_time", "20230421000000"),
            ("end_time", "20230420000000"),
        ]);
        assert!(backwards.is_err_and(|m| m.contains("before")));
        let malformed = parse(&[("end_time", "2023-04-20")]);
        assert!(malformed.is_err_and(|m| m.starts_with("end_time")));
    }

    #[test]
    fn pages_and_states_are_bounded() {
        let defaults = parse(&[]).expect("defaults");
        assert_eq!((defaults.page_no, defaults.page_size), (1, 10));
        for (name, value) in [
            ("page_no", "0"),
            ("page_no", "x"),
            ("page_size", "0"),
            ("page_size", "101"),
            ("page_size", "-1"),
            ("status", "DONE"),
        ] {
            assert!(parse(&[(name, value)]).is_err(), "{name}={value}");
        }
        assert!(parse(&[("page_size", "100"), ("status", "CANCELED")]).is_ok());
    }
}
