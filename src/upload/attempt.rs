//! The attempts of one upload: a pure decision table (retry with the same key, verify a lost
//! answer, replace the credential, give up) and the loop that follows it.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tracing::Instrument;

use super::Uploader;
use super::batch::Tally;
use super::form::Feed;
use super::form::Sent;
use super::lock_plain;
use crate::UploadSource;
use crate::UploadedFile;
use crate::retry::{Class, classify};
use crate::session::Credential;
use crate::wire::OBJECT_LIFETIME;
use crate::{Error, Result};

impl Uploader<'_> {
    /// Stores a source in the storage: credential, form POST, retries. With `hash`, the
    /// content's SHA-256 as sent by the POST that stored it is left there.
    pub(super) async fn store(
        &self,
        model: &str,
        source: &UploadSource,
        size: u64,
        index: usize,
        tally: Option<Arc<Tally>>,
        hash: Option<Sent>,
    ) -> Result<UploadedFile> {
        let settings = &self.uploads().settings;
        let span = tracing::info_span!(
            "dashscope.upload",
            model,
            size,
            key = tracing::field::Empty,
            request_id = tracing::field::Empty
        );
        async move {
            let mut attempts = 0u32;
            // Set after an attempt whose body may have arrived: the next one reuses its key.
            let mut pending: Option<(Arc<Credential>, String)> = None;
            // Set when the retry budget ran out on such an attempt: one more POST of the same
            // key only to learn whether it landed (409), so that a success is not reported as
            // a failure. It is not a retry of a refused upload.
            let mut verifying = false;
            // When the first POST of the current key was sent: the object, if stored, was
            // stored after it, so an expiry counted from here is never later than the real one.
            let mut first_sent = SystemTime::now();
            loop {
                attempts += 1;
                let mut same_key_again = false;
                let (credential, key) = match pending.take() {
                    // The margin is for starting new uploads; a same-key retry may use the
                    // credential until OSS itself says it expired.
                    Some((c, key)) if c.valid_at_oss() => {
                        same_key_again = true;
                        (c, key)
                    }
                    _ => {
                        let c = self.credential(model).await?;
                        if size > c.max_file_size {
                            return Err(Error::FileTooLarge {
                                name: source.name.clone(),
                                path: source.path_buf(),
                                size,
                                limit: c.max_file_size,
                            });
                        }
                        let key = c.claim_key(&source.name);
                        first_sent = SystemTime::now();
                        (c, key)
                    }
                };
                tracing::Span::current().record("key", key.as_str());
                let hasher = hash.as_ref().map(|_| Arc::new(Mutex::new(Some(
                    ring::digest::Context::new(&ring::digest::SHA256),
                ))));
                let outcome = self
                    .post_form(
                        &credential,
                        &key,
                        source,
                        size,
                        Feed {
                            index,
                            tally: tally.as_ref(),
                            hasher: hasher.clone(),
                        },
                    )
                    .await;
                if let (Ok(_), Some(out), Some(hasher)) = (&outcome, &hash, hasher)
                    && let Some(context) = lock_plain(&hasher).take()
                {
                    *lock_plain(out) = Some(crate::cache::hex(context.finish().as_ref()));
                }
                let (attempt, error, request_id) = match outcome {
                    Ok(request_id) => (Attempt::Stored, None, request_id),
                    // Our key, written by nobody else: an earlier attempt landed.
                    Err(Error::FileAlreadyExists(e)) if same_key_again => {
                        tracing::info!(request_id = e.request_id(), "an earlier attempt had landed");
                        (Attempt::FoundOurs, None, None)
                    }
                    Err(e) => (Attempt::Failed(classify(&e)), Some(e), None),
                };
                let state = State {
                    attempts,
                    max_attempts: settings.retry.max_attempts,
                    verifying,
                    valid_at_oss: credential.valid_at_oss(),
                };
                match (next_step(state, attempt), error) {
                    (Step::Done, _) => {
                        if let Some(id) = &request_id {
                            tracing::Span::current().record("request_id", id.as_str());
                        }
                        return Ok(done(model, key, size, request_id, attempts, first_sent));
                    }
                    (Step::Verify, _) => {
                        verifying = true;
                        pending = Some((credential, key));
                    }
                    (Step::Refresh, _) => {
                        self.forget_credential(model, &credential).await;
                    }
                    (Step::Retry, Some(e)) => {
                        // Same key again: if the body arrived after all, the retry finds it (409).
                        pending = Some((credential, key));
                        let wait = settings.retry.backoff(attempts, e.retry_after());
                        tracing::warn!(error = %e, attempt = attempts, ?wait, "upload failed, retrying");
                        tokio::time::sleep(wait).await;
                    }
                    (_, Some(e)) => return Err(e),
                    (_, None) => {
                        return Err(Error::InvalidRequest(
                            "upload ended without an outcome".to_owned(),
                        ));
                    }
                }
            }
        }
        .instrument(span)
        .await
    }
}

/// What one form POST came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attempt {
    /// OSS confirmed the object.
    Stored,
    /// A retry of our own key found it already there (409): an earlier attempt landed.
    FoundOurs,
    /// It failed, as the classifier sees it.
    Failed(Class),
}

/// Where an upload stands after an attempt.
#[derive(Debug, Clone, Copy)]
pub(super) struct State {
    /// POSTs made so far, this one included.
    pub(super) attempts: u32,
    pub(super) max_attempts: u32,
    /// This POST only asked whether an earlier one landed.
    pub(super) verifying: bool,
    /// OSS should still accept the credential this POST used.
    pub(super) valid_at_oss: bool,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Report the object.
    Done,
    /// Report the error.
    Fail,
    /// Back off, then POST again (to the same key while the credential holds).
    Retry,
    /// Drop the credential OSS refused; the next POST gets a new one and a new key.
    Refresh,
    /// The budget is spent but the last POST may have landed: one more POST of the same key,
    /// only to learn whether it did (409), so that a success is not reported as a failure.
    Verify,
}

/// The upload's retry decisions, as a pure function of the attempt and where things stand.
pub(super) fn next_step(state: State, attempt: Attempt) -> Step {
    let class = match attempt {
        Attempt::Stored | Attempt::FoundOurs => return Step::Done,
        Attempt::Failed(class) => class,
    };
    if state.attempts >= state.max_attempts {
        return if class.may_have_arrived() && !state.verifying && state.valid_at_oss {
            Step::Verify
        } else {
            Step::Fail
        };
    }
    match class {
        Class::StaleCredential => Step::Refresh,
        Class::Permanent => Step::Fail,
        Class::Throttled | Class::Server | Class::Transient => Step::Retry,
    }
}

pub(super) fn done(
    model: &str,
    key: String,
    size: u64,
    request_id: Option<String>,
    attempts: u32,
    uploaded_at: SystemTime,
) -> UploadedFile {
    UploadedFile {
        url: format!("oss://{key}"),
        key,
        model: model.to_owned(),
        size,
        uploaded_at,
        expires_at: uploaded_at + OBJECT_LIFETIME,
        request_id,
        attempts,
        from_cache: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_decisions_of_an_upload() {
        let at = |attempts: u32, verifying: bool, valid_at_oss: bool| State {
            attempts,
            max_attempts: 3,
            verifying,
            valid_at_oss,
        };
        let failed = Attempt::Failed;
        // (state, outcome) -> step
        let table = [
            (at(1, false, true), Attempt::Stored, Step::Done),
            (at(2, false, true), Attempt::FoundOurs, Step::Done),
            (at(3, true, true), Attempt::FoundOurs, Step::Done),
            (at(1, false, true), failed(Class::Throttled), Step::Retry),
            (at(1, false, true), failed(Class::Server), Step::Retry),
            (at(2, false, false), failed(Class::Transient), Step::Retry),
            (
                at(1, false, true),
                failed(Class::StaleCredential),
                Step::Refresh,
            ),
            (at(1, false, true), failed(Class::Permanent), Step::Fail),
            // The budget is spent: verify only what may have landed, once, while OSS would
            // still take the credential.
            (at(3, false, true), failed(Class::Transient), Step::Verify),
            (at(3, false, true), failed(Class::Server), Step::Verify),
            (at(3, false, false), failed(Class::Transient), Step::Fail),
            (at(3, false, true), failed(Class::Throttled), Step::Fail),
            (
                at(3, false, true),
                failed(Class::StaleCredential),
                Step::Fail,
            ),
            (at(4, true, true), failed(Class::Transient), Step::Fail),
        ];
        for (state, attempt, want) in table {
            assert_eq!(next_step(state, attempt), want, "{state:?} {attempt:?}");
        }
    }
}
