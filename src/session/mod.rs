//! What one client holds between calls, as the generated client's inner type: the key, the
//! retry policy, the task-query limit and the upload state. A leaf below `api`, so that the
//! generated client, `client`, `upload` and `task` all depend on it and it on none of them.

mod uploads;

use std::sync::Arc;

use reqwest::header::HeaderValue;

use crate::Secret;
use crate::retry::{RateLimiter, RetryPolicy};

pub(crate) use uploads::{Credential, UploadSettings, Uploads};

/// What the generated client's hooks need: the key (as a ready header), the retry policy that
/// governs every call, and the upload state (credentials, rate limit) that local files use.
#[derive(Debug, Clone)]
pub struct Inner {
    pub(crate) key: Secret,
    pub(crate) authorization: HeaderValue,
    /// `X-DashScope-WorkSpace`, when the client names a workspace.
    pub(crate) workspace: Option<HeaderValue>,
    /// The region the client is set to (the default when only a base URL was given): a
    /// refused credential names it where the temporary storage is not documented.
    pub(crate) region: crate::region::Region,
    /// The longest wait for a stream's next event (the read timeout): keep-alive comments do
    /// not reset it.
    pub(crate) stream_idle: std::time::Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) uploads: Arc<Uploads>,
    /// Which local files requests may name ([`crate::config::LocalFiles`]).
    pub(crate) local_files: crate::config::LocalFiles,
    pub(crate) inline_below: u64,
    /// Every task query, cancel and list of this client takes a slot (see [`TASK_QUERY_WINDOW`]).
    pub(crate) task_queries: Arc<RateLimiter>,
}

/// The task endpoints allow 20 queries per second per account. The service counts arrivals,
/// and two queries sent a second apart may arrive closer together: this client sends at most
/// 20 in any 1.2 s, so that a delay of up to 200 ms never puts 21 in one of the service's
/// seconds.
pub const TASK_QUERY_WINDOW: std::time::Duration = std::time::Duration::from_millis(1200);

/// The documented limit of task queries per second per account.
pub const TASK_QUERIES_PER_SECOND: u32 = 20;
