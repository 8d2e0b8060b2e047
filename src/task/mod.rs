//! DashScope's asynchronous tasks: transcription, image and video synthesis. A submit answers a
//! task id at once; the task is then queried (`GET /api/v1/tasks/{id}`) until it ends.
//!
//! Everything goes through the generated operations and so the one execution path: a submit
//! gets `X-DashScope-Async: enable` and, when it carries `oss://` URLs, the OSS header (local
//! files in its URL fields are uploaded first, for its model); queries, cancels and lists share
//! the client's 20-per-second limit, every attempt included. What this module adds is the
//! waiting (a pure state rule and a backoff), typed terminal states, and the results.
//!
//! ```no_run
//! # async fn run(client: dashscope_oss::Client) -> dashscope_oss::Result<()> {
//! use dashscope_oss::api::types::{TranscriptionInput, TranscriptionRequest};
//! use dashscope_oss::task::WaitOptions;
//!
//! let request: TranscriptionRequest = TranscriptionRequest::builder()
//!     .model("paraformer-v2")
//!     .input(TranscriptionInput::builder().file_urls(vec!["meeting.wav".to_owned()]))
//!     .try_into()?;
//! let task = client.submit_transcription(&request).await?; // meeting.wav is uploaded first
//! let done = client.wait_task(&task.id, &WaitOptions::default()).await?;
//! for file in client.transcriptions(&done).await {
//!     match file.result {
//!         Ok(transcript) => println!("{}", transcript.text()),
//!         Err(e) => eprintln!("{}: {e}", file.file_url),
//!     }
//! }
//! # Ok(()) }
//! ```

mod results;
mod submit;
mod wait;

use std::sync::Arc;
use std::time::Duration;

use crate::api::types;
use crate::error::ApiError;
use crate::{Error, Result};

/// Files one transcription task takes at most.
pub const MAX_TRANSCRIPTION_FILES: usize = 100;

/// The edits `wanx2.1-imageedit` documents for `input.function`.
pub const IMAGE_EDIT_FUNCTIONS: &[&str] = &[
    "stylization_all",
    "stylization_local",
    "description_edit",
    "description_edit_with_mask",
    "remove_watermark",
    "expand",
    "super_resolution",
    "colorization",
    "doodle",
    "control_cartoon_feature",
];

/// The resolutions the Wan video models document (`parameters.resolution`).
pub const VIDEO_RESOLUTIONS: &[&str] = &["480P", "720P", "1080P"];

/// A task just submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Task {
    /// Its id: query, wait for or cancel it with this.
    pub id: String,
    /// Its state as the submit answered it (normally `PENDING`).
    pub state: TaskState,
    /// The submit's request id.
    pub request_id: Option<String>,
}

/// A task's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskState {
    /// Queued.
    Pending,
    /// Being processed.
    Running,
    /// Paused by the service (the official SDK knows it; no documentation names it).
    Suspended,
    /// Done: results are in the answer (URLs last 24 hours).
    Succeeded,
    /// Failed: `output.code` and `output.message` say why.
    Failed,
    /// Cancelled while it was pending.
    Canceled,
    /// A wrong id, another account's, or one older than the 24 hours tasks are kept.
    Unknown,
    /// A state this version does not know; read as not ended.
    Other(String),
}

impl TaskState {
    /// Reads the service's `task_status`.
    pub fn parse(status: &str) -> Self {
        match status {
            "PENDING" => TaskState::Pending,
            "RUNNING" => TaskState::Running,
            "SUSPENDED" => TaskState::Suspended,
            "SUCCEEDED" => TaskState::Succeeded,
            "FAILED" => TaskState::Failed,
            "CANCELED" => TaskState::Canceled,
            "UNKNOWN" => TaskState::Unknown,
            other => TaskState::Other(other.to_owned()),
        }
    }

    /// As the service writes it.
    pub fn as_str(&self) -> &str {
        match self {
            TaskState::Pending => "PENDING",
            TaskState::Running => "RUNNING",
            TaskState::Suspended => "SUSPENDED",
            TaskState::Succeeded => "SUCCEEDED",
            TaskState::Failed => "FAILED",
            TaskState::Canceled => "CANCELED",
            TaskState::Unknown => "UNKNOWN",
            TaskState::Other(s) => s,
        }
    }

    /// Whether the task will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            TaskState::Succeeded | TaskState::Failed | TaskState::Canceled | TaskState::Unknown
        )
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl types::TaskResponse {
    /// The task's state.
    pub fn state(&self) -> TaskState {
        TaskState::parse(self.output.task_status.as_deref().unwrap_or(""))
    }

    /// The image URLs of a succeeded image task, in order (failed images left out). They last
    /// 24 hours.
    pub fn image_urls(&self) -> Vec<&str> {
        self.output
            .results
            .iter()
            .filter_map(|r| r.url.as_deref())
            .collect()
    }

    /// The video URL of a succeeded video task; it lasts 24 hours.
    pub fn video_url(&self) -> Option<&str> {
        self.output.video_url.as_deref()
    }
}

impl types::TaskListResponse {
    /// The page's tasks, whichever of the two documented shapes (`data` or `tasks`) the service
    /// answered with.
    pub fn tasks(&self) -> &[types::TaskOutput] {
        if self.data.is_empty() {
            &self.tasks
        } else {
            &self.data
        }
    }
}

impl types::TranscriptionResult {
    /// The text of every channel, one line each.
    pub fn text(&self) -> String {
        self.transcripts
            .iter()
            .filter_map(|t| t.text.as_deref())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What a wait ends with, as a pure rule: the task's answer for `SUCCEEDED`, a typed error for
/// the other ends, `None` while it goes on.
/// `key` is the one the query was sent with, scrubbed from the task's error.
pub(crate) fn outcome(
    task_id: &str,
    response: &types::TaskResponse,
    key: &crate::Secret,
) -> Option<Result<()>> {
    let output = &response.output;
    match response.state() {
        TaskState::Succeeded => Some(Ok(())),
        TaskState::Failed => Some(Err(Error::TaskFailed {
            task_id: task_id.to_owned(),
            error: ApiError::of_task(
                output.code.clone(),
                output.message.clone(),
                response.request_id.clone(),
                key,
            ),
        })),
        TaskState::Canceled => Some(Err(Error::TaskCanceled {
            task_id: task_id.to_owned(),
        })),
        TaskState::Unknown => Some(Err(Error::TaskUnknown {
            task_id: task_id.to_owned(),
        })),
        TaskState::Pending | TaskState::Running | TaskState::Suspended | TaskState::Other(_) => {
            None
        }
    }
}

/// The pause before the next query: doubled each time, up to `max`.
pub(crate) fn next_interval(current: Duration, max: Duration) -> Duration {
    current.saturating_mul(2).min(max)
}

/// How to wait for a task.
#[derive(Clone)]
#[non_exhaustive]
pub struct WaitOptions {
    /// The first pause between queries (default 1 s).
    pub initial_interval: Duration,
    /// The longest pause (default 8 s): the pause doubles up to it.
    pub max_interval: Duration,
    /// Give up after this long with [`Error::WaitTimeout`], a query in flight included (default
    /// 24 hours: the service forgets a task after that); the task goes on.
    pub timeout: Option<Duration>,
    /// Failed queries (after their own retries) a wait goes on through, in a row (default 10):
    /// a wait survives a service that fails for a while; the next failure ends it.
    pub max_failed_queries: u32,
    /// Called with every answer whose state differs from the one before (the first answer
    /// too).
    pub on_change: Option<crate::Callback<types::TaskResponse>>,
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(8),
            timeout: Some(Duration::from_secs(24 * 3600)),
            max_failed_queries: 10,
            on_change: None,
        }
    }
}

impl std::fmt::Debug for WaitOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitOptions")
            .field("initial_interval", &self.initial_interval)
            .field("max_interval", &self.max_interval)
            .field("timeout", &self.timeout)
            .field("max_failed_queries", &self.max_failed_queries)
            .field("on_change", &self.on_change.is_some())
            .finish()
    }
}

impl WaitOptions {
    /// The pauses: the first, and the longest.
    pub fn interval(mut self, initial: Duration, max: Duration) -> Self {
        // A pause of zero would never grow: at least a millisecond.
        self.initial_interval = initial.max(Duration::from_millis(1));
        self.max_interval = max.max(self.initial_interval);
        self
    }

    /// Give up after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Observe state changes.
    pub fn on_change(mut self, f: impl Fn(&types::TaskResponse) + Send + Sync + 'static) -> Self {
        self.on_change = Some(Arc::new(f));
        self
    }
}

/// One file of a transcription task: its transcript, or why it has none.
#[derive(Debug)]
#[non_exhaustive]
pub struct FileTranscription {
    /// The file, as the task named it.
    pub file_url: String,
    /// Its transcript, fetched from the result's `transcription_url` (which lasts 24 hours).
    pub result: Result<types::TranscriptionResult>,
}

/// Which tasks [`Client::list_tasks`](crate::Client::list_tasks) lists: every filter is optional (the service's
/// defaults: the first page of 10, the last 24 hours).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskFilter {
    /// The page, from 1.
    pub page_no: Option<i64>,
    /// Tasks per page.
    pub page_size: Option<i64>,
    /// From, `YYYYMMDDhhmmss` (the span may be 24 hours at most).
    pub start_time: Option<String>,
    /// Until, `YYYYMMDDhhmmss`.
    pub end_time: Option<String>,
    /// Only this model's tasks.
    pub model: Option<String>,
    /// Only tasks in this state.
    pub status: Option<TaskState>,
}

impl TaskFilter {
    /// Page `page_no` (from 1) of `page_size` tasks.
    pub fn page(mut self, page_no: i64, page_size: i64) -> Self {
        self.page_no = Some(page_no);
        self.page_size = Some(page_size);
        self
    }

    /// Between two times, `YYYYMMDDhhmmss`.
    pub fn between(mut self, start: impl Into<String>, end: impl Into<String>) -> Self {
        self.start_time = Some(start.into());
        self.end_time = Some(end.into());
        self
    }

    /// Only this model's tasks.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Only tasks in this state.
    pub fn status(mut self, status: TaskState) -> Self {
        self.status = Some(status);
        self
    }
}

/// A task id goes into a path: it must be one segment.
pub(crate) fn check_id(task_id: &str) -> Result<()> {
    if task_id.is_empty()
        || !task_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::InvalidRequest(format!(
            "{task_id:?} is not a task id (letters, digits, - and _)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: &str, code: Option<&str>) -> types::TaskResponse {
        serde_json::from_value(serde_json::json!({
            "request_id": "r-1",
            "output": {"task_id": "t-1", "task_status": status, "code": code, "message": code.map(|_| "why")}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_end_is_typed_and_the_rest_goes_on() {
        assert!(matches!(
            outcome(
                "t-1",
                &response("SUCCEEDED", None),
                &crate::Secret::new("k")
            ),
            Some(Ok(()))
        ));
        match outcome(
            "t-1",
            &response("FAILED", Some("InvalidParameter")),
            &crate::Secret::new("k"),
        ) {
            Some(Err(Error::TaskFailed { task_id, error })) => {
                assert_eq!(task_id, "t-1");
                assert_eq!(
                    (
                        error.code(),
                        error.message(),
                        error.request_id(),
                        error.status()
                    ),
                    (Some("InvalidParameter"), "why", Some("r-1"), 200)
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            outcome("t-1", &response("CANCELED", None), &crate::Secret::new("k")),
            Some(Err(Error::TaskCanceled { .. }))
        ));
        assert!(matches!(
            outcome("t-1", &response("UNKNOWN", None), &crate::Secret::new("k")),
            Some(Err(Error::TaskUnknown { .. }))
        ));
        for going_on in ["PENDING", "RUNNING", "SUSPENDED", "SOMETHING_NEW"] {
            assert!(
                outcome("t-1", &response(going_on, None), &crate::Secret::new("k")).is_none(),
                "{going_on}"
            );
        }
    }

    #[test]
    fn pauses_double_up_to_the_cap() {
        let max = Duration::from_secs(8);
        let mut d = Duration::from_secs(1);
        let mut seen = vec![d];
        for _ in 0..5 {
            d = next_interval(d, max);
            seen.push(d);
        }
        let secs: Vec<u64> = seen.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8, 8, 8]);
    }

    #[test]
    fn task_ids_are_one_path_segment() {
        assert!(check_id("0385dc79-5ff8-4d82-bcb6-aaaaaa").is_ok());
        for bad in ["", "../x", "a/b", "a?b", "a b"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
