//! The one classifier: what kind of failure an error is, for every retry decision in the crate
//! (the execution path, the uploads, `Error::is_retryable`). Callers only say whether their own
//! request is safe to repeat.

use super::Error;

/// What kind of failure an error is, for deciding whether to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// 429 that waiting cures (not an exhausted quota).
    Throttled,
    /// The service failed (5xx, or an unreadable answer with a 5xx status): the request may
    /// have been acted on.
    Server,
    /// No answer: a broken connection or a timeout. The request may have arrived.
    Transient,
    /// An upload credential that OSS no longer accepts: fetch a new one, then try again.
    StaleCredential,
    /// Anything else: trying again would fail the same way.
    Permanent,
}

impl Class {
    /// Whether trying again (after a backoff, or a new credential) may succeed.
    pub(crate) fn is_retryable(self) -> bool {
        !matches!(self, Class::Permanent)
    }

    /// Whether the request may have been acted on although it failed: a repeat of a request
    /// that is not idempotent is then unsafe, and an upload may have landed.
    pub(crate) fn may_have_arrived(self) -> bool {
        matches!(self, Class::Server | Class::Transient)
    }
}

/// The one classifier.
pub(crate) fn classify(error: &Error) -> Class {
    match error {
        Error::RateLimited(_) => Class::Throttled,
        Error::ServerError(_) => Class::Server,
        Error::Api(e) if e.status() >= 500 => Class::Server,
        Error::Api(e) if e.status() == 408 => Class::Transient,
        Error::Decode(d) => match d.status() {
            Some(s) if s >= 500 => Class::Server,
            Some(408) => Class::Transient,
            // A body cut off while it was read: the answer was lost on the way.
            None => Class::Transient,
            Some(_) => Class::Permanent,
        },
        Error::Timeout(_) => Class::Transient,
        Error::Transport(e) if !e.is_builder() && !e.is_redirect() => Class::Transient,
        Error::PolicyExpired(_) | Error::SignatureMismatch(_) | Error::InvalidAccessKeyId(_) => {
            Class::StaleCredential
        }
        _ => Class::Permanent,
    }
}
