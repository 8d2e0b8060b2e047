//! A finished task's results: transcripts, and files downloaded without the key.

use std::path::Path;

use futures_util::StreamExt;
use progenitor_client::ClientInfo;
use tokio::io::AsyncWriteExt;

use crate::api::types;
use crate::attempt::Repeat;
use crate::error::ApiError;
use crate::transport::{self, Manner};
use crate::{Client, Error, Result};

use super::{FileTranscription, TaskState};
use crate::secret::redact_url_text;

impl Client {
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
                        self.key(),
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
                format!(
                    "the result at {} is over {LIMIT} bytes",
                    redact_url_text(url)
                ),
                &[],
                None,
            ));
        }
        // The key is never sent to a result host, but a hostile API host may name itself one.
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::decode_hiding(
                &[self.key()],
                Some(200),
                format!(
                    "the result at {} is not the expected JSON: {e}",
                    redact_url_text(url)
                ),
                &bytes,
                None,
            )
        })
    }

    /// A GET of a result URL: presigned, so without the API key (it must never reach another
    /// host), retried like every request, its refusals read as the storage's (OSS XML).
    async fn fetch(&self, url: &str) -> Result<reqwest::Response> {
        // Result URLs come from the service's answer: one that is no http(s) URL is the answer's
        // fault (Decode), not a request of the caller's to correct.
        let unreadable = |why: String| {
            Error::decode(
                Some(200),
                format!("the task's result {:?} {why}", redact_url_text(url)),
                &[],
                None,
            )
        };
        let parsed =
            reqwest::Url::parse(url).map_err(|e| unreadable(format!("is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(unreadable("is not an http(s) URL".to_owned()));
        }
        let request =
            self.api().client().get(parsed).build().map_err(|e| {
                Error::InvalidRequest(crate::secret::redact_transport(e).to_string())
            })?;
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
                success_limit: None,
            },
        )
        .await
        .map_err(|f| f.error)
    }

    /// Downloads a result (an image or video URL) to `path`, streamed, through a temporary file
    /// beside it that is renamed when complete: an interrupted download leaves no partial file
    /// under `path`. `progress` is told the bytes written and the length, when announced. Result
    /// URLs last 24 hours. Returns the bytes written.
    ///
    /// A download is complete only when its end is known: the announced `Content-Length`
    /// reached, or a chunked body's last chunk; a close-delimited answer is refused. A `path`
    /// that is a character device (`/dev/null`), or a pipe named through `/dev/` (`/dev/stdout`),
    /// is written in place; any other existing thing that is not a regular file (a directory, a
    /// FIFO by its own path) is refused before anything is fetched, never replaced.
    pub async fn download(
        &self,
        url: &str,
        path: &Path,
        progress: Option<crate::Callback<crate::Transfer>>,
    ) -> Result<u64> {
        let io = |source| Error::Io {
            path: Some(path.to_path_buf()),
            source,
        };
        let target = Target::of(path).await.map_err(io)?;
        let response = self.fetch(url).await?;
        let total = response.content_length();
        if total.is_none() && !chunked(&response) {
            // Close-delimited: a connection cut half-way ends it just as the last byte does.
            return Err(Error::decode(
                Some(response.status().as_u16()),
                "the result's length is unknown (no Content-Length, not chunked): a download cut short could not be told from a whole one",
                &[],
                None,
            ));
        }
        if target == Target::InPlace {
            // A device the caller named (`/dev/stdout`, `/dev/null`): nothing to rename, and a
            // write error (`/dev/full`) is the caller's to see.
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .await
                .map_err(io)?;
            return copy_body(response, &mut file, path, total, progress).await;
        }
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let partial = Partial(path.with_file_name(format!(
            ".{}.{}-{}.part",
            path.file_name()
                .map_or_else(|| "download".into(), |n| n.to_string_lossy()),
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )));
        let mut file = tokio::fs::File::create(&partial.0).await.map_err(io)?;
        let copied = copy_body(response, &mut file, path, total, progress).await;
        drop(file);
        let written = copied?;
        tokio::fs::rename(&partial.0, path).await.map_err(io)?;
        partial.keep();
        Ok(written)
    }
}

/// Streams a result's body into `file`; the bytes written, once they are as many as announced.
async fn copy_body(
    response: reqwest::Response,
    file: &mut tokio::fs::File,
    path: &Path,
    total: Option<u64>,
    progress: Option<crate::Callback<crate::Transfer>>,
) -> Result<u64> {
    let io = |source| Error::Io {
        path: Some(path.to_path_buf()),
        source,
    };
    let mut written = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        // `from_reqwest` redacts the link's query: its signature.
        let chunk = chunk.map_err(Error::from_reqwest)?;
        file.write_all(&chunk).await.map_err(io)?;
        written += chunk.len() as u64;
        if let Some(report) = &progress {
            report(&crate::Transfer { written, total });
        }
    }
    file.flush().await.map_err(io)?;
    if let Some(total) = total.filter(|t| *t != written) {
        return Err(Error::decode(
            Some(200),
            format!("the download ended after {written} of {total} bytes"),
            &[],
            None,
        ));
    }
    Ok(written)
}

/// How a download reaches its path.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A new or regular file: through a temporary file renamed into place.
    Replace,
    /// A character device (`/dev/null`, a terminal), or a pipe or socket named through `/dev/`
    /// or `/proc/` (`/dev/stdout` in a pipeline): written in place, never replaced.
    InPlace,
}

impl Target {
    /// Refuses any other existing thing (a directory, a block device, a FIFO or socket named
    /// by its own path): renaming over it would replace it, writing into it is not a download.
    async fn of(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::FileTypeExt;
        let kind = match tokio::fs::metadata(path).await {
            Ok(meta) => meta.file_type(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::Replace),
            Err(e) => return Err(e),
        };
        let named_stream = path.starts_with("/dev/") || path.starts_with("/proc/");
        if kind.is_file() {
            Ok(Target::Replace)
        } else if kind.is_char_device() || (named_stream && (kind.is_fifo() || kind.is_socket())) {
            Ok(Target::InPlace)
        } else {
            Err(std::io::Error::other(format!(
                "{} exists and is not a regular file (a {}): it is neither replaced nor written into",
                path.display(),
                if kind.is_dir() {
                    "directory"
                } else if kind.is_block_device() {
                    "block device"
                } else if kind.is_fifo() {
                    "FIFO"
                } else if kind.is_socket() {
                    "socket"
                } else {
                    "special file"
                }
            )))
        }
    }
}

/// Whether the body is chunked: its end is a zero-length chunk, so a cut-off transfer fails.
fn chunked(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get_all(reqwest::header::TRANSFER_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("chunked"))
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
