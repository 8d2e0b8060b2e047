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

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use progenitor_client::ClientInfo;
use tokio::io::AsyncWriteExt;

use crate::api::types;
use crate::attempt::Repeat;
use crate::error::ApiError;
use crate::transport::{self, Manner};
use crate::{Client, Error, Result};

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
pub(crate) fn outcome(task_id: &str, response: &types::TaskResponse) -> Option<Result<()>> {
    let output = &response.output;
    match response.state() {
        TaskState::Succeeded => Some(Ok(())),
        TaskState::Failed => Some(Err(Error::TaskFailed {
            task_id: task_id.to_owned(),
            error: ApiError::of_task(
                output.code.clone(),
                output.message.clone(),
                response.request_id.clone(),
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

/// Which tasks [`Client::list_tasks`] lists: every filter is optional (the service's
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

impl Client {
    /// Submits any task operation of the generated client (its builder's `send()`), on the one
    /// execution path, and returns the task.
    ///
    /// ```no_run
    /// # async fn run(client: dashscope_oss::Client, body: dashscope_oss::api::types::ImageSynthesisRequest) -> dashscope_oss::Result<()> {
    /// let task = client
    ///     .submit(client.api().create_image_synthesis().body(body).send())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn submit<E>(
        &self,
        call: impl std::future::Future<
            Output = std::result::Result<
                progenitor_client::ResponseValue<types::TaskSubmitResponse>,
                progenitor_client::Error<E>,
            >,
        >,
    ) -> Result<Task> {
        // A submit that may have arrived is `MayHaveSubmitted`, by the one execution path.
        let answer = self.call(call).await?;
        Ok(Task {
            state: TaskState::parse(answer.output.task_status.as_deref().unwrap_or("PENDING")),
            id: answer.output.task_id,
            request_id: answer.request_id,
        })
    }

    /// Submits a recorded-file transcription. At most 100 files ([`MAX_TRANSCRIPTION_FILES`]);
    /// local paths are uploaded first.
    pub async fn submit_transcription(
        &self,
        request: &types::TranscriptionRequest,
    ) -> Result<Task> {
        let files = request.input.file_urls.len() + usize::from(request.input.file_url.is_some());
        if files == 0 {
            return Err(Error::InvalidRequest(
                "a transcription needs at least one file (input.file_urls or input.file_url)"
                    .to_owned(),
            ));
        }
        if request.input.file_urls.len() > MAX_TRANSCRIPTION_FILES {
            return Err(Error::InvalidRequest(format!(
                "{} files: a transcription task takes at most {MAX_TRANSCRIPTION_FILES}; split them into several tasks",
                request.input.file_urls.len()
            )));
        }
        self.submit(
            self.api()
                .create_transcription()
                .body(request.clone())
                .send(),
        )
        .await
    }

    /// Submits a text-to-image task.
    pub async fn submit_image_synthesis(
        &self,
        request: &types::ImageSynthesisRequest,
    ) -> Result<Task> {
        self.submit(
            self.api()
                .create_image_synthesis()
                .body(request.clone())
                .send(),
        )
        .await
    }

    /// Submits an image-editing task (`input.function` chooses the edit).
    pub async fn submit_image_edit(&self, request: &types::ImageSynthesisRequest) -> Result<Task> {
        if request.model.contains("imageedit") {
            match request.input.function.as_deref() {
                Some(f) if IMAGE_EDIT_FUNCTIONS.contains(&f) => {}
                other => {
                    return Err(Error::InvalidRequest(format!(
                        "{} needs input.function, one of {}; got {other:?}",
                        request.model,
                        IMAGE_EDIT_FUNCTIONS.join(", ")
                    )));
                }
            }
        }
        if request.input.base_image_url.is_none() && request.input.images.is_empty() {
            return Err(Error::InvalidRequest(
                "an image edit needs input.base_image_url (or input.images)".to_owned(),
            ));
        }
        self.submit(self.api().create_image_edit().body(request.clone()).send())
            .await
    }

    /// Submits a video task: first/last-frame models (`kf2v` in the name) go to
    /// `image2video/video-synthesis`, the others to `video-generation/video-synthesis`, as the
    /// official SDK routes them.
    pub async fn submit_video_synthesis(
        &self,
        request: &types::VideoSynthesisRequest,
    ) -> Result<Task> {
        if let Some(r) = request
            .parameters
            .as_ref()
            .and_then(|p| p.resolution.as_deref())
            .filter(|r| !VIDEO_RESOLUTIONS.contains(r))
        {
            return Err(Error::InvalidRequest(format!(
                "resolution {r:?} is not one of {}",
                VIDEO_RESOLUTIONS.join(", ")
            )));
        }
        if request.model.contains("kf2v") {
            if request.input.first_frame_url.is_none() {
                return Err(Error::InvalidRequest(format!(
                    "{} needs input.first_frame_url",
                    request.model
                )));
            }
            self.submit(
                self.api()
                    .create_keyframe_video_synthesis()
                    .body(request.clone())
                    .send(),
            )
            .await
        } else {
            self.submit(
                self.api()
                    .create_video_synthesis()
                    .body(request.clone())
                    .send(),
            )
            .await
        }
    }

    /// The task as it is now. A failed task is an `Ok` answer here (its state says so); see
    /// [`outcome`] or [`Client::wait_task`] for typed ends.
    pub async fn get_task(&self, task_id: &str) -> Result<types::TaskResponse> {
        check_id(task_id)?;
        self.call(self.api().get_task().task_id(task_id).send())
            .await
    }

    /// Cancels a task that is still `PENDING`; any other state is
    /// Lists the account's tasks (a task query: it takes a slot of the client's limit). Finds
    /// a task whose submit answer was lost ([`Error::MayHaveSubmitted`]).
    pub async fn list_tasks(&self, filter: &TaskFilter) -> Result<types::TaskListResponse> {
        let mut op = self.api().list_tasks();
        if let Some(n) = filter.page_no {
            op = op.page_no(n);
        }
        if let Some(n) = filter.page_size {
            op = op.page_size(n);
        }
        if let Some(t) = &filter.start_time {
            op = op.start_time(t.clone());
        }
        if let Some(t) = &filter.end_time {
            op = op.end_time(t.clone());
        }
        if let Some(m) = &filter.model {
            op = op.model_name(m.clone());
        }
        if let Some(s) = &filter.status {
            op = op.status(s.as_str().to_owned());
        }
        self.call(op.send()).await
    }

    /// [`Error::UnsupportedOperation`].
    pub async fn cancel_task(&self, task_id: &str) -> Result<types::TaskCancelResponse> {
        check_id(task_id)?;
        match self
            .call(self.api().cancel_task().task_id(task_id).send())
            .await
        {
            // A retried cancel whose first try worked is refused: the task says which it was.
            Err(Error::UnsupportedOperation(e)) => match self.get_task(task_id).await {
                Ok(task) if task.state() == TaskState::Canceled => {
                    // Built, not written as a literal: a field the spec adds later is no break.
                    types::TaskCancelResponse::builder()
                        .request_id(task.request_id)
                        .try_into()
                        .map_err(Error::from)
                }
                _ => Err(Error::UnsupportedOperation(e)),
            },
            other => other,
        }
    }

    /// Queries a task until it ends: its answer when it succeeded, [`Error::TaskFailed`],
    /// [`Error::TaskCanceled`], [`Error::TaskUnknown`] or [`Error::WaitTimeout`] otherwise.
    /// Queries pause `initial_interval`, doubling to `max_interval`; all of this client's task
    /// queries together stay within the service's 20 per second however many tasks wait.
    pub async fn wait_task(
        &self,
        task_id: &str,
        options: &WaitOptions,
    ) -> Result<types::TaskResponse> {
        check_id(task_id)?;
        let started = Instant::now();
        let mut interval = options.initial_interval;
        let mut last_state: Option<TaskState> = None;
        let mut failed_in_a_row = 0u32;
        loop {
            let query = self.get_task(task_id);
            let answered = match options.timeout {
                Some(timeout) => {
                    let left = timeout.saturating_sub(started.elapsed());
                    match tokio::time::timeout(left, query).await {
                        Ok(answered) => answered,
                        Err(_) => {
                            return Err(Error::WaitTimeout {
                                task_id: task_id.to_owned(),
                                status: last_state
                                    .map_or("not yet known".to_owned(), |s| s.to_string()),
                                waited: started.elapsed(),
                            });
                        }
                    }
                }
                None => query.await,
            };
            match answered {
                Ok(response) => {
                    failed_in_a_row = 0;
                    let state = response.state();
                    if last_state.as_ref() != Some(&state) {
                        tracing::debug!(task_id, state = state.as_str(), "task state");
                        if let Some(f) = &options.on_change {
                            f(&response);
                        }
                        last_state = Some(state);
                    }
                    if let Some(end) = outcome(task_id, &response) {
                        return end.map(|()| response);
                    }
                }
                Err(e) if e.is_retryable() && failed_in_a_row < options.max_failed_queries => {
                    failed_in_a_row += 1;
                    tracing::warn!(task_id, error = %e, "task query failed; waiting on");
                }
                Err(e) => return Err(e),
            }
            let mut pause = interval;
            if let Some(timeout) = options.timeout {
                let left = timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(Error::WaitTimeout {
                        task_id: task_id.to_owned(),
                        status: last_state.map_or("not yet known".to_owned(), |s| s.to_string()),
                        waited: started.elapsed(),
                    });
                }
                pause = pause.min(left);
            }
            tokio::time::sleep(pause).await;
            interval = next_interval(interval, options.max_interval);
        }
    }

    /// The transcript of every file of a succeeded transcription task, in the task's order: a
    /// file that failed (or whose transcript cannot be fetched) has its own error, the others
    /// their transcript. The transcripts are fetched without the API key (their URLs are
    /// presigned) and last 24 hours.
    pub async fn transcriptions(&self, done: &types::TaskResponse) -> Vec<FileTranscription> {
        let task_id = done.output.task_id.clone().unwrap_or_default();
        // qwen3-asr-flash-filetrans answers one `output.result`; the others `output.results[]`.
        let results: Vec<&types::TaskResult> = done
            .output
            .results
            .iter()
            .chain(done.output.result.as_ref())
            .collect();
        let mut files = Vec::with_capacity(results.len());
        for result in results {
            let file_url = result.file_url.clone().unwrap_or_default();
            let failed = TaskState::parse(result.subtask_status.as_deref().unwrap_or(""))
                == TaskState::Failed
                || result.code.is_some();
            let fetched = match (&result.transcription_url, failed) {
                (Some(url), false) => self.fetch_json(url).await,
                _ => Err(Error::TaskFailed {
                    task_id: task_id.clone(),
                    error: ApiError::of_task(
                        result.code.clone(),
                        result.message.clone().or_else(|| {
                            Some("the service gave this file no transcript".to_owned())
                        }),
                        done.request_id.clone(),
                    ),
                }),
            };
            files.push(FileTranscription {
                file_url,
                result: fetched,
            });
        }
        files
    }

    /// A result's JSON, fetched without the API key.
    async fn fetch_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T> {
        const LIMIT: usize = 64 * 1024 * 1024;
        let response = self.fetch(url).await?;
        let (bytes, truncated) = transport::read_limited(response, LIMIT)
            .await
            .map_err(Error::from_reqwest)?;
        if truncated {
            return Err(Error::decode(
                Some(200),
                format!("the result at {} is over {LIMIT} bytes", redact_query(url)),
                &[],
                None,
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::decode(
                Some(200),
                format!(
                    "the result at {} is not the expected JSON: {e}",
                    redact_query(url)
                ),
                &bytes,
                None,
            )
        })
    }

    /// A GET of a result URL: presigned, so without the API key (it must never reach another
    /// host), retried like every request, its refusals read as the storage's (OSS XML).
    async fn fetch(&self, url: &str) -> Result<reqwest::Response> {
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            Error::InvalidRequest(format!("{:?} is not a URL: {e}", redact_query(url)))
        })?;
        let request = self
            .api()
            .client()
            .get(parsed)
            .build()
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let inner = self.api().inner();
        transport::send_raw(
            self.api().client(),
            self.key(),
            inner.retry,
            request,
            Manner {
                repeat: Repeat::Safe,
                answers_in: Some(crate::error::Service::Oss),
                limiter: None,
            },
        )
        .await
        .map_err(|f| f.error)
    }

    /// Downloads a result (an image or video URL) to `path`, streamed, through a temporary file
    /// beside it that is renamed when complete: an interrupted download leaves no partial file
    /// under `path`. `progress` is told the bytes written and the length, when announced. Result
    /// URLs last 24 hours. Returns the bytes written.
    pub async fn download(
        &self,
        url: &str,
        path: &Path,
        progress: Option<crate::Callback<crate::Transfer>>,
    ) -> Result<u64> {
        let response = self.fetch(url).await?;
        let total = response.content_length();
        let io = |source| Error::Io {
            path: Some(path.to_path_buf()),
            source,
        };
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let partial = Partial(path.with_file_name(format!(
            ".{}.{}-{}.part",
            path.file_name()
                .map_or_else(|| "download".into(), |n| n.to_string_lossy()),
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )));
        let mut file = tokio::fs::File::create(&partial.0).await.map_err(io)?;
        let mut written = 0u64;
        let mut body = response.bytes_stream();
        let copied: Result<()> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Error::from_reqwest)?;
                file.write_all(&chunk).await.map_err(io)?;
                written += chunk.len() as u64;
                if let Some(report) = &progress {
                    report(&crate::Transfer { written, total });
                }
            }
            file.flush().await.map_err(io)?;
            Ok(())
        }
        .await;
        drop(file);
        copied?;
        if let Some(total) = total.filter(|t| *t != written) {
            return Err(Error::decode(
                Some(200),
                format!("the download ended after {written} of {total} bytes"),
                &[],
                None,
            ));
        }
        tokio::fs::rename(&partial.0, path).await.map_err(io)?;
        partial.keep();
        Ok(written)
    }
}

/// A download's temporary file, removed when the download fails or is dropped half-way.
struct Partial(std::path::PathBuf);

impl Partial {
    /// Renamed into place: nothing to remove.
    fn keep(mut self) {
        self.0 = std::path::PathBuf::new();
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// A task id goes into a path: it must be one segment.
fn check_id(task_id: &str) -> Result<()> {
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

/// A URL without its query: presigned result URLs carry their signature there.
fn redact_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
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
            outcome("t-1", &response("SUCCEEDED", None)),
            Some(Ok(()))
        ));
        match outcome("t-1", &response("FAILED", Some("InvalidParameter"))) {
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
            outcome("t-1", &response("CANCELED", None)),
            Some(Err(Error::TaskCanceled { .. }))
        ));
        assert!(matches!(
            outcome("t-1", &response("UNKNOWN", None)),
            Some(Err(Error::TaskUnknown { .. }))
        ));
        for going_on in ["PENDING", "RUNNING", "SUSPENDED", "SOMETHING_NEW"] {
            assert!(
                outcome("t-1", &response(going_on, None)).is_none(),
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
