//! Uploading local files to DashScope's temporary storage and getting their `oss://` URLs.
//!
//! One upload is: a credential for the model (cached and shared until shortly before it
//! expires), then a multipart form POST to the credential's `upload_host` with the fields in the
//! documented order and `file` last. The body is streamed from the source with its length
//! computed up front, so a file of any size travels in constant memory.
//!
//! # Retries, and an object that landed although its answer was lost
//!
//! Throttling (429), server errors (5xx), timeouts and broken connections are retried with
//! backoff, an expired credential is replaced, and the form is rebuilt from the source each time.
//! Every upload writes to a key no other upload of this client uses (see [`UploadSource`]); a
//! retry after an ambiguous failure (the body may have been received) reuses the same key with
//! the same credential. If OSS then answers 409 `FileAlreadyExists`, the earlier attempt did
//! land: PostObject stores an object whole or not at all, and nobody else writes that key, so
//! the upload is reported as done. If the credential had to be replaced in between, the retry
//! goes to a new key and only the new object is reported. So a success is reported only for an
//! object that OSS confirmed, and a failure only after the last attempt failed.

mod attempt;
mod batch;
mod credential;
mod form;
mod source;

use std::sync::Mutex;
use std::time::SystemTime;

use progenitor_client::ClientInfo;

use crate::api;

pub use crate::report::{MediaOrigin, Progress, UploadEvent, UploadedFile};

pub(crate) use batch::from_cache;
pub use batch::{StopUploads, UploadBatch};
#[cfg(feature = "fuzzing")]
pub(crate) use credential::check_credential;
pub use source::UploadSource;

pub use crate::wire::OBJECT_LIFETIME;

/// The upload operations of one client: its generated API (for credentials, through the one
/// execution path) and its upload state.
#[derive(Clone, Copy)]
pub(crate) struct Uploader<'a> {
    api: &'a api::Client,
}

impl<'a> Uploader<'a> {
    pub(crate) fn new(api: &'a api::Client) -> Self {
        Self { api }
    }

    fn uploads(&self) -> &'a crate::session::Uploads {
        &self.api.inner().uploads
    }

    fn http(&self) -> &'a reqwest::Client {
        self.api.client()
    }
}

fn lock_plain<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
