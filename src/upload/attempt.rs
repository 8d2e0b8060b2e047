//! The attempts of one upload, as the one attempt loop drives them: each builds its form POST
//! (a new credential and key, or the same key again), and a success or a same-key repeat that
//! found its object becomes the uploaded file. What is repeated is decided by the crate's one
//! table ([`crate::attempt`]) for a same-key upload.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tracing::Instrument;

use super::Uploader;
use super::batch::Tally;
use super::form::{
    Ended, Feed, Hasher, Proof, Sent, form_request, not_redirected, prove_stored, stored,
};
use super::lock_plain;
use super::source::source_error;
use crate::UploadSource;
use crate::UploadedFile;
use crate::attempt::{Repeat, Step};
use crate::error::Service;
use crate::session::Credential;
use crate::transport::{self, Attempts, Manner, Prepared};
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
        let span = tracing::info_span!(
            "dashscope.upload",
            model,
            size,
            key = tracing::field::Empty,
            request_id = tracing::field::Empty
        );
        let post = FormPost {
            uploader: self,
            model,
            source,
            size,
            index,
            tally,
            hash,
            current: None,
            hasher: None,
            ended: None,
            proof: None,
            posts: 0,
            first_sent: SystemTime::now(),
        };
        // A form POST's length grows with its file: no call deadline (RetryPolicy::deadline);
        // the read timeout bounds a stall, Config::timeout an attempt.
        let retry = self.uploads().settings.retry.deadline(None);
        transport::drive(self.http(), None, retry, post)
            .instrument(span)
            .await
            .map_err(|failure| failure.error)
    }
}

/// One upload in flight: what it sends, and what its attempts so far used.
struct FormPost<'u, 'a> {
    uploader: &'u Uploader<'a>,
    model: &'u str,
    source: &'u UploadSource,
    size: u64,
    index: usize,
    tally: Option<Arc<Tally>>,
    /// Where the SHA-256 of what the storing POST sent goes, if asked.
    hash: Option<Sent>,
    /// The credential and key of the last attempt: a same-key repeat reuses them.
    current: Option<(Arc<Credential>, String)>,
    /// The running hash of the last attempt's file bytes.
    hasher: Option<Hasher>,
    /// The last attempt's file fingerprint when its last byte was read.
    ended: Option<Ended>,
    /// What the last attempt can prove of its answer.
    proof: Option<Arc<Proof>>,
    /// Form POSTs made.
    posts: u32,
    /// When the first POST of the current key was sent: the object, if stored, was stored
    /// after it, so an expiry counted from here is never later than the real one.
    first_sent: SystemTime,
}

impl FormPost<'_, '_> {
    /// A new credential (the cached one, or one fetched) and a key of its own.
    async fn new_key(&mut self) -> Result<(Arc<Credential>, String)> {
        let credential = self.uploader.credential(self.model).await?;
        if self.size > credential.max_file_size {
            return Err(Error::FileTooLarge {
                name: self.source.name.clone(),
                path: self.source.path_buf(),
                size: self.size,
                limit: credential.max_file_size,
            });
        }
        let key = credential.claim_key(&self.source.name);
        self.first_sent = SystemTime::now();
        Ok((credential, key))
    }
}

impl Attempts for FormPost<'_, '_> {
    type Output = UploadedFile;

    fn manner(&self) -> Manner<'_> {
        Manner {
            repeat: Repeat::SameKeyUpload,
            limiter: None,
            answers_in: Some(Service::Oss),
            success_limit: None,
        }
    }

    async fn request(&mut self, after: Option<Step>) -> Result<Prepared> {
        let last = self.current.take();
        if let (Some(Step::Refresh), Some((credential, _))) = (after, &last) {
            self.uploader
                .forget_credential(self.model, credential)
                .await;
        }
        let (credential, key, same_target) = match last {
            // The margin is for starting new uploads; a same-key repeat may use the
            // credential until OSS itself says it expired.
            Some((credential, key))
                if matches!(after, Some(Step::Retry | Step::Verify))
                    && credential.valid_at_oss() =>
            {
                (credential, key, true)
            }
            _ => {
                let (credential, key) = self.new_key().await?;
                (credential, key, false)
            }
        };
        tracing::Span::current().record("key", key.as_str());
        self.posts += 1;
        self.ended = self.hash.as_ref().map(|_| Arc::new(Mutex::new(None)));
        self.hasher = self.hash.as_ref().map(|_| {
            Arc::new(Mutex::new(Some(ring::digest::Context::new(
                &ring::digest::SHA256,
            ))))
        });
        let proof = Proof::new(self.size);
        self.proof = Some(proof.clone());
        let feed = Feed {
            index: self.index,
            tally: self.tally.as_ref(),
            hasher: self.hasher.clone(),
            ended: self.ended.clone(),
            proof,
        };
        let request = form_request(
            self.uploader.http(),
            &credential,
            &key,
            self.source,
            self.size,
            feed,
        )
        .await?;
        self.current = Some((credential, key));
        Ok(Prepared {
            request,
            same_target,
            can_repeat: true,
        })
    }

    async fn finish(&mut self, answer: Option<reqwest::Response>) -> Result<UploadedFile> {
        let Some((_, key)) = self.current.take() else {
            return Err(Error::InvalidRequest(
                "upload ended without an outcome".to_owned(),
            ));
        };
        // Whether this POST stored the object (not a same-key repeat that found it).
        let answered = answer.is_some();
        let request_id = match answer {
            Some(response) => {
                let request_id = stored(&response);
                if let Some(proof) = &self.proof {
                    prove_stored(response, proof).await?;
                }
                request_id
            }
            // A same-key repeat found the object: stored by an earlier POST.
            None => None,
        };
        if let (Some(out), Some(hasher)) = (&self.hash, self.hasher.take())
            && answered
            && let Some(context) = lock_plain(&hasher).take()
        {
            let ended = self.ended.take().and_then(|e| lock_plain(&e).take());
            *lock_plain(out) = Some((crate::cache::hex(context.finish().as_ref()), ended));
        }
        if let Some(id) = &request_id {
            tracing::Span::current().record("request_id", id.as_str());
        }
        Ok(done(
            self.model,
            key,
            self.size,
            request_id,
            self.posts,
            self.first_sent,
        ))
    }

    fn check_answer(&self, response: &reqwest::Response) -> Result<()> {
        if let Some(proof) = &self.proof {
            proof.note_answer();
        }
        match &self.current {
            Some((credential, _)) => not_redirected(credential, response),
            None => Ok(()),
        }
    }

    /// A hostile upload host may echo the form's fields, or the key its credential was
    /// fetched with, in its error answer.
    fn secrets(&self) -> Vec<&crate::Secret> {
        let mut secrets = vec![&progenitor_client::ClientInfo::inner(self.uploader.api).key];
        if let Some((credential, _)) = &self.current {
            secrets.extend([
                &credential.policy,
                &credential.signature,
                &credential.access_key_id,
            ]);
        }
        secrets
    }

    fn credential_valid(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|(credential, _)| credential.valid_at_oss())
    }

    fn lost(&self, error: reqwest::Error) -> Error {
        source_error(error, self.source)
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
