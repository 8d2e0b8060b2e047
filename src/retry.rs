//! How failed requests are tried again: bounded attempts, exponential backoff with full jitter,
//! `Retry-After` honoured; and the client-side limit on credential requests. What kind of
//! failure an error is — the one classifier every retry decision reads — is
//! [`crate::error::classify`].

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) use crate::error::{Class, classify};

/// How often and how patiently to retry. Built from [`RetryPolicy::default`] (or
/// [`RetryPolicy::none`]) with its setters, so that a field added later breaks nobody:
///
/// ```
/// use std::time::Duration;
/// let policy = dashscope_oss::RetryPolicy::default()
///     .max_attempts(3)
///     .initial_backoff(Duration::from_millis(50));
/// assert_eq!(policy.max_attempts, 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Tries in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The backoff ceiling before the first retry; it doubles each time.
    pub initial_backoff: Duration,
    /// The largest backoff ceiling.
    pub max_backoff: Duration,
    /// The wait ceiling after a per-minute token throttle ([`crate::Throttle::Tokens`]) that
    /// names no `Retry-After`: the service says throttles "typically resume within one
    /// minute", so the default 20 s (each wait a random point in its upper half) spreads the
    /// default four retries over about a minute.
    pub minute_throttle_wait: Duration,
    /// The longest one call may take, every attempt and every wait between them included
    /// ([`crate::Error::DeadlineExceeded`] after it; `None`: no limit). It covers DashScope
    /// requests with their answers, and a stream or a download until its answer begins (then
    /// the read timeout guards each pause); not a form POST, whose length grows with its file
    /// (the read timeout and [`Config::timeout`](crate::Config::timeout) bound those).
    pub deadline: Option<Duration>,
}

/// The default deadline of a call: a silent host fails within it (two read timeouts), where
/// five tries of the 300 s read timeout would have taken 25 minutes.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);

impl Default for RetryPolicy {
    /// 5 tries, backoff ceilings 200 ms, 400 ms, 800 ms, 1.6 s (capped at 10 s); 10–20 s after
    /// a per-minute token throttle; 10 minutes per call.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            minute_throttle_wait: Duration::from_secs(20),
            deadline: Some(DEFAULT_DEADLINE),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Tries in all, the first included (1 = never retry; 0 is read as 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The backoff ceiling before the first retry; it doubles each time.
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The largest backoff ceiling.
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The wait ceiling after a per-minute token throttle (see the field).
    pub fn minute_throttle_wait(mut self, wait: Duration) -> Self {
        self.minute_throttle_wait = wait;
        self
    }

    /// The longest one call may take, all attempts and waits included (see the field).
    pub fn deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The wait before retry number `retry` after `error`: the service's `Retry-After` when
    /// it names one; a per-minute token throttle waited out over about a minute; a burst or a
    /// request throttle (and anything else) with the short exponential backoff, jittered. A
    /// throttled read (`read_only`: a task query, a credential request) waits at least a second
    /// (up to 1.5 s, jittered): the service counts those per second and per account, so an
    /// earlier retry lands in the same full second.
    pub(crate) fn wait_after(&self, retry: u32, error: &crate::Error, read_only: bool) -> Duration {
        let wait = match (error.throttle(), error.retry_after()) {
            (Some(crate::Throttle::Tokens), None) => self.minute_throttle_wait.mul_f64(jitter()),
            (_, after) => self.backoff(retry, after),
        };
        if read_only && error.is_rate_limited() {
            wait.max(Duration::from_secs(1).mul_f64(0.5 + jitter()))
        } else {
            wait
        }
    }

    /// The wait before retry number `retry` (1-based): a random point below the doubled ceiling
    /// ("full jitter", so that many clients throttled at once do not retry in step), but never
    /// shorter than the server's `Retry-After`.
    pub(crate) fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
            .min(self.max_backoff);
        let jittered = ceiling.mul_f64(jitter());
        // A server's wish is honoured up to a minute (or max_backoff, if longer): a huge
        // Retry-After from a broken proxy must not park a batch for a day.
        let cap = self.max_backoff.max(Duration::from_secs(60));
        retry_after.map_or(jittered, |after| after.min(cap).max(jittered))
    }
}

/// A number in [0.5, 1): enough randomness to spread retries, kept away from zero so that a
/// retry storm still backs off.
fn jitter() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    let mut z = seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    0.5 + (z >> 11) as f64 / (1u64 << 53) as f64 / 2.0
}

/// At most `per_second` requests in any one-second window (or a longer `window`), per key:
/// credential requests per model, task queries per client.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_second: u32,
    window: Duration,
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Where every process of the account takes its slots too, if the client keeps its state
    /// on disk ([`crate::budget`]).
    shared: Option<Shared>,
}

#[derive(Debug)]
struct Shared {
    dir: std::path::PathBuf,
    /// What the slots are for, and whose (the account digest): part of the book's name.
    name: &'static str,
    account: String,
    /// Said once: a book that cannot be used leaves the per-client limit alone.
    warned: std::sync::atomic::AtomicBool,
}

impl RateLimiter {
    pub(crate) fn new(per_second: u32) -> Self {
        Self::with_window(per_second, Duration::from_secs(1))
    }

    /// `per_window` requests in any `window`.
    pub(crate) fn with_window(per_window: u32, window: Duration) -> Self {
        Self {
            per_second: per_window.max(1),
            window,
            windows: Mutex::default(),
            shared: None,
        }
    }

    /// The same limit, also kept for every process in `dir` (a client's cache directory):
    /// `name` says what for, `account` whose.
    pub(crate) fn shared_in(
        mut self,
        dir: std::path::PathBuf,
        name: &'static str,
        account: String,
    ) -> Self {
        self.shared = Some(Shared {
            dir,
            name,
            account,
            warned: std::sync::atomic::AtomicBool::new(false),
        });
        self
    }

    /// Takes a slot of the shared book, waiting for one; an unusable book is said once and
    /// then left alone (the per-client limit still holds).
    async fn acquire_shared(&self, shared: &Shared, key: &str) {
        let path = crate::budget::book_path(&shared.dir, shared.name, &shared.account, key);
        let budget = crate::budget::SharedBudget::new(path, self.per_second, self.window);
        loop {
            let taking = budget.clone();
            match tokio::task::spawn_blocking(move || taking.try_take()).await {
                Ok(Ok(Ok(_))) => return,
                Ok(Ok(Err(wait))) => {
                    // Jittered, so that processes waiting for the same slot do not wake in step.
                    tokio::time::sleep(wait + Duration::from_millis(1).mul_f64(jitter() * 20.0))
                        .await;
                }
                Ok(Err(e)) => {
                    if !shared.warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "the shared rate budget cannot be used; this client paces itself alone");
                    }
                    return;
                }
                Err(_) => return,
            }
        }
    }

    /// Waits until a request for `model` fits in the window, and takes the slot.
    pub(crate) async fn acquire(&self, model: &str) {
        loop {
            let wait = {
                let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
                let window = windows.entry(model.to_owned()).or_default();
                let now = Instant::now();
                while window
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    window.pop_front();
                }
                if window.len() < self.per_second as usize {
                    window.push_back(now);
                    None
                } else {
                    Some(window.front().map_or(Duration::ZERO, |first| {
                        self.window.saturating_sub(now.duration_since(*first))
                    }))
                }
            };
            match wait {
                Some(wait) => tokio::time::sleep(wait + Duration::from_millis(1)).await,
                None => break,
            }
        }
        if let Some(shared) = &self.shared {
            self.acquire_shared(shared, model).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_honours_retry_after() {
        let p = RetryPolicy::default();
        for retry in 1..=10 {
            let ceiling = Duration::from_millis(200 * (1 << (retry - 1))).min(p.max_backoff);
            let b = p.backoff(retry, None);
            assert!(
                b >= ceiling / 2 && b < ceiling,
                "retry {retry}: {b:?} vs {ceiling:?}"
            );
        }
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn each_throttle_waits_for_its_own_window() {
        let p = RetryPolicy::default();
        let throttled = |code: &str, message: &str, headers: &[(&'static str, &'static str)]| {
            let mut map = reqwest::header::HeaderMap::new();
            for (n, v) in headers {
                map.insert(*n, reqwest::header::HeaderValue::from_static(v));
            }
            let body = serde_json::json!({"code": code, "message": message}).to_string();
            crate::error::from_response(
                crate::Service::Native,
                429,
                &map,
                body.as_bytes(),
                false,
                &[],
            )
        };
        // The per-minute token throttle: 10-20 s a retry, about a minute over four.
        let tokens = throttled(
            "Throttling.AllocationQuota",
            "Allocated quota exceeded.",
            &[],
        );
        for retry in 1..=4 {
            let wait = p.wait_after(retry, &tokens, false);
            assert!(
                wait >= Duration::from_secs(10) && wait < Duration::from_secs(20),
                "{wait:?}"
            );
        }
        // Unless the service says how long.
        let told = throttled(
            "Throttling.AllocationQuota",
            "Allocated quota exceeded.",
            &[("retry-after", "3")],
        );
        assert_eq!(p.wait_after(1, &told, false), Duration::from_secs(3));
        // A burst and a request throttle: the short backoff.
        for (code, message) in [
            ("Throttling", "Request rate increased too quickly."),
            ("Throttling.RateQuota", "Requests rate limit exceeded."),
        ] {
            let wait = p.wait_after(1, &throttled(code, message, &[]), false);
            assert!(wait < Duration::from_millis(200), "{code}: {wait:?}");
            // A throttled query or credential request: at least a second, jittered.
            let read = p.wait_after(1, &throttled(code, message, &[]), true);
            assert!(
                read >= Duration::from_secs(1) && read < Duration::from_millis(1500),
                "{code}: {read:?}"
            );
        }
    }

    #[tokio::test]
    async fn limiter_spreads_requests_over_seconds() {
        let limiter = RateLimiter::new(5);
        let start = Instant::now();
        for _ in 0..6 {
            limiter.acquire("m").await;
        }
        // The sixth request at 5 per second waits for the first window to pass.
        assert!(
            start.elapsed() >= Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        // Another model has its own window.
        assert!(
            futures_util::FutureExt::now_or_never(limiter.acquire("other")).is_some(),
            "another model waited"
        );
    }
}
