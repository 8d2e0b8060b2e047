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
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            Error::InvalidRequest(format!("{:?} is not a URL: {e}", redact_url_text(url)))
        })?;
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
                // `from_reqwest` redacts the link's query: its signature.
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
