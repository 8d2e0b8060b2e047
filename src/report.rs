//! What the crate tells its caller as work goes on, and the one shape of every callback
//! ([`Callback`]): the files uploaded, the bytes of a batch going out, the media a request's
//! local files became, a download's bytes. A leaf: the client, the uploads and the tasks all
//! report through it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// The one shape of a callback: called with a reference to what happened, from whichever task
/// it happened on. See [`Config::on_upload`](crate::Config::on_upload),
/// [`WaitOptions::on_change`](crate::task::WaitOptions::on_change) and
/// [`Client::download`](crate::Client::download).
pub type Callback<T> = Arc<dyn Fn(&T) + Send + Sync>;

/// A file in the temporary storage.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadedFile {
    /// `oss://` + key: what a model call takes.
    pub url: String,
    /// The object key, `upload_dir/<name>`.
    pub key: String,
    /// The model it was uploaded for; only that model can read it.
    pub model: String,
    /// Its size in bytes.
    pub size: u64,
    /// When the POST that stored it was sent: no later than the storage's own upload time, so
    /// that `expires_at` is never later than the object's real expiry.
    pub uploaded_at: SystemTime,
    /// When it stops resolving: 48 hours after `uploaded_at` (a few moments early, never late).
    pub expires_at: SystemTime,
    /// OSS's request id of the upload that stored it.
    pub request_id: Option<String>,
    /// Form POSTs made (1 without retries; 0 when it came from the cache).
    pub attempts: u32,
    /// Whether the URL came from the upload cache (nothing was sent): see `Config::upload_cache`.
    pub from_cache: bool,
}

/// Progress of a batch, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Which source, by its position in the batch.
    pub index: usize,
    /// Bytes of this file sent in the current attempt.
    pub file_sent: u64,
    /// The file's size.
    pub file_size: u64,
    /// Bytes sent for the whole batch (a retried file counts its current attempt only).
    pub total_sent: u64,
    /// The size of every file of the batch (those that could be read).
    pub total_size: u64,
}

/// What the uploads of a client report to [`Config::on_upload`](crate::Config::on_upload).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UploadEvent {
    /// Bytes went out: of one upload, or of a batch (then `index` is the file's position in
    /// it, and the totals are the batch's).
    Progress(Progress),
    /// A local file that a request named was uploaded for its model, or its earlier upload
    /// came from the upload cache (`file.from_cache`): the request carries `file.url`.
    Uploaded {
        /// The file, as the request named it.
        path: PathBuf,
        /// Where it is now.
        file: UploadedFile,
    },
    /// A medium of a request that its model could not read as written went to the storage
    /// for the request's model, or its earlier upload came from the upload cache
    /// (`file.from_cache`): the request carries `file.url` instead.
    Rehosted {
        /// What the request carried.
        origin: MediaOrigin,
        /// Where it is now.
        file: UploadedFile,
    },
    /// A local file that a request named went inline, as a `data:` URI
    /// ([`Config::inline_below`](crate::Config::inline_below)).
    Inlined {
        /// The file, as the request named it.
        path: PathBuf,
        /// Its content type, by its extension.
        content_type: &'static str,
        /// Its size in bytes.
        size: u64,
    },
}

/// What a request carried that was uploaded for its model ([`UploadEvent::Rehosted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaOrigin {
    /// A `data:` URI over the limit
    /// ([`Config::upload_data_uris_over`](crate::Config::upload_data_uris_over)), decoded.
    DataUri {
        /// Its media type, as the URI gave it.
        content_type: String,
        /// Its decoded size in bytes.
        size: u64,
    },
    /// An `oss://` URL this client uploaded for another model, or one that ends within the
    /// cache margin: uploaded again from its file (or found uploaded for this model already).
    OssUrl {
        /// The URL.
        url: String,
        /// The model it was uploaded for.
        model: String,
    },
    /// An `http(s)://` URL fetched here ([`Config::rehost_urls`](crate::Config::rehost_urls)),
    /// shown without its user info, query and fragment (a presigned URL's query is its
    /// credential).
    Web {
        /// The URL, so shortened.
        url: String,
    },
}

/// How far a download has come, for [`Client::download`](crate::Client::download).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transfer {
    /// Bytes written so far.
    pub written: u64,
    /// The length the server announced, if it did.
    pub total: Option<u64>,
}
