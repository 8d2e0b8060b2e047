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
}

impl Default for RetryPolicy {
    /// 5 tries, backoff ceilings 200 ms, 400 ms, 800 ms, 1.6 s (capped at 10 s); 10–20 s after
    /// a per-minute token throttle.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            minute_throttle_wait: Duration::from_secs(20),
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

    /// The wait before retry number `retry` after `error`: the service's `Retry-After` when
    /// it names one; a per-minute token throttle waited out over about a minute; a burst or a
    /// request throttle (and anything else) with the short exponential backoff, jittered.
    pub(crate) fn wait_after(&self, retry: u32, error: &crate::Error) -> Duration {
        match (error.throttle(), error.retry_after()) {
            (Some(crate::Throttle::Tokens), None) => self.minute_throttle_wait.mul_f64(jitter()),
            (_, after) => self.backoff(retry, after),
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
                    return;
                }
                window.front().map_or(Duration::ZERO, |first| {
                    self.window.saturating_sub(now.duration_since(*first))
                })
            };
            tokio::time::sleep(wait + Duration::from_millis(1)).await;
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
                None,
            )
        };
        // The per-minute token throttle: 10-20 s a retry, about a minute over four.
        let tokens = throttled(
            "Throttling.AllocationQuota",
            "Allocated quota exceeded.",
            &[],
        );
        for retry in 1..=4 {
            let wait = p.wait_after(retry, &tokens);
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
        assert_eq!(p.wait_after(1, &told), Duration::from_secs(3));
        // A burst and a request throttle: the short backoff.
        for (code, message) in [
            ("Throttling", "Request rate increased too quickly."),
            ("Throttling.RateQuota", "Requests rate limit exceeded."),
        ] {
            let wait = p.wait_after(1, &throttled(code, message, &[]));
            assert!(wait < Duration::from_millis(200), "{code}: {wait:?}");
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
