//! Upload credentials: the policy request, what a form POST needs of its answer, and the
//! single flight that shares one credential per model among the uploads waiting for it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use progenitor_client::ClientInfo;
use tracing::Instrument;

use super::Uploader;
use crate::api::types;
use crate::session::Credential;
use crate::session::UploadSettings;
use crate::{Error, Result};

impl Uploader<'_> {
    /// An upload credential for `model`, through the one execution path (which retries it).
    pub(crate) async fn policy(&self, model: &str) -> Result<types::UploadPolicyResponse> {
        if model.trim().is_empty() {
            return Err(Error::InvalidRequest("the model name is empty".to_owned()));
        }
        let call = self
            .api
            .get_upload_policy()
            .action(types::UploadAction::GetPolicy)
            .model(model)
            .send();
        // A credential body holds the policy, its signature and the access key id: if it cannot
        // be decoded, say why but never quote it.
        let region = self.api.inner().region;
        crate::transport::run(&self.api.inner().key, call)
            .await
            .map_err(|e| match e {
                // Keys of another region, or a region without the storage, answer 401
                // (`../shared/reference/live-service.md`, "Regions").
                Error::InvalidApiKey(error) | Error::AccessDenied(error)
                    if !region.has_temporary_storage() =>
                {
                    Error::StorageNotInRegion { region, error }
                }
                Error::Decode(d) => Error::decode(
                    d.status(),
                    d.reason(),
                    b"[withheld: a credential]",
                    d.request_id().map(str::to_owned),
                ),
                other => other,
            })
    }

    /// A usable credential for `model`: the cached one, or one fetched by the first caller
    /// while the others wait for it (no stampede).
    pub(super) async fn credential(&self, model: &str) -> Result<Arc<Credential>> {
        let slot = self.uploads().slot(model);
        let waited_from = slot.ended.load(Ordering::Acquire);
        let mut state = slot.state.lock().await;
        if let Some(c) = state.credential.as_ref().filter(|c| c.usable()) {
            return Ok(c.clone());
        }
        // A fetch that ended while this upload waited has failed: its error, not another round
        // of requests (a batch against a failing service fails fast).
        if let Some((fetch, error)) = &state.failed
            && *fetch > waited_from
            && let Some(again) = error.repeat()
        {
            return Err(again);
        }
        let fetch = slot.fetches.fetch_add(1, Ordering::AcqRel) + 1;
        let fetched = self.fetch_credential(model).await;
        slot.ended.store(fetch, Ordering::Release);
        match fetched {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                state.credential = Some(fresh.clone());
                state.failed = None;
                Ok(fresh)
            }
            Err(error) => {
                state.failed = error.repeat().map(|copy| (fetch, copy));
                Err(error)
            }
        }
    }

    pub(super) async fn forget_credential(&self, model: &str, used: &Arc<Credential>) {
        let slot = self.uploads().slot(model);
        let mut state = slot.state.lock().await;
        if state
            .credential
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, used))
        {
            state.credential = None;
        }
    }

    /// A new credential, within the client's rate limit. The request is retried by the one
    /// execution path, like every other.
    pub(super) async fn fetch_credential(&self, model: &str) -> Result<Credential> {
        let settings = &self.uploads().settings;
        let span = tracing::info_span!(
            "dashscope.credential",
            model,
            request_id = tracing::field::Empty
        );
        async move {
            self.uploads().limiter.acquire(model).await;
            let obtained = Instant::now();
            let response = self.policy(model).await?;
            // Server text in a log: cleaned like an error's (an echoed key, control characters).
            let request_id = crate::secret::clean(&response.request_id, &[&self.api.inner().key]);
            tracing::Span::current().record("request_id", request_id.as_str());
            credential_from(response.data, obtained, settings)
        }
        .instrument(span)
        .await
    }
}

/// Turns a credential answer into a [`Credential`], checking what a form POST will need.
pub(super) fn credential_from(
    data: crate::api::types::UploadPolicy,
    obtained: Instant,
    settings: &UploadSettings,
) -> Result<Credential> {
    let bad = |reason: String| Error::decode(Some(200), reason, &[], None);
    let upload_host = reqwest::Url::parse(data.upload_host.trim()).map_err(|e| {
        bad(format!(
            "credential upload_host {:?} is not a URL: {e}",
            data.upload_host
        ))
    })?;
    match upload_host.scheme() {
        "https" => {}
        "http" if settings.allow_insecure_http || crate::config::is_loopback(&upload_host) => {}
        other => {
            return Err(bad(format!(
                "credential upload_host has scheme {other:?}; the policy and signature must not travel in clear text"
            )));
        }
    }
    let upload_dir = checked_upload_dir(&data.upload_dir).map_err(|why| {
        bad(format!(
            "credential upload_dir {:?} cannot hold keys: {why}",
            data.upload_dir
        ))
    })?;
    let whole = |name: &str, value: &crate::api::types::FlexibleInteger| {
        value.as_u64().ok_or_else(|| {
            bad(format!(
                "credential {name} is {value}, not a whole number of at least 0"
            ))
        })
    };
    let max_mb = whole("max_file_size_mb", &data.max_file_size_mb)?;
    let lifetime = Duration::from_secs(whole("expire_in_seconds", &data.expire_in_seconds)?);
    // The policy's own expiration may come sooner than expire_in_seconds (or later: the wire protocols, docs/sources.md,
    // saw 23 minutes against 300 s); plan with the earlier of the two.
    let lifetime = match policy_expiration(data.policy.expose()) {
        Some(expires) => lifetime.min(
            expires
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
        ),
        None => lifetime,
    };
    // A lifetime beyond a day is not believable (a broken or hostile answer), and would
    // overflow `Instant` arithmetic if huge.
    let lifetime = lifetime.min(Duration::from_secs(24 * 3600));
    let margin = settings.credential_margin.min(lifetime / 5);
    Ok(Credential {
        policy: data.policy,
        signature: data.signature,
        access_key_id: data.oss_access_key_id,
        upload_dir,
        upload_host,
        acl: data.x_oss_object_acl,
        forbid_overwrite: data.x_oss_forbid_overwrite,
        max_file_size: max_mb.saturating_mul(1024 * 1024),
        usable_until: obtained + lifetime.saturating_sub(margin),
        expires: obtained + lifetime,
        names: Mutex::default(),
    })
}

/// The folder of every key, as the credential gave it (one trailing `/` allowed): it is printed
/// in every `oss://` URL and sent as the form's `key`, so a folder that a terminal would act on
/// (control characters, bidi overrides), that climbs (`..`) or is absolute, or that has empty
/// or `.` segments is refused before any upload. OSS object names are at most 1,023 bytes;
/// 900 leaves room for the file's name.
fn checked_upload_dir(dir: &str) -> std::result::Result<String, &'static str> {
    let dir = dir.strip_suffix('/').unwrap_or(dir);
    if dir.is_empty() {
        return Err("it is empty");
    }
    if dir.len() > 900 {
        return Err("it is over 900 bytes");
    }
    if dir.starts_with('/') {
        return Err("it is absolute");
    }
    if crate::secret::printable(dir) != dir || dir.contains('\\') {
        return Err("it has control characters or a backslash");
    }
    if dir
        .split('/')
        .any(|segment| matches!(segment, "" | "." | ".."))
    {
        return Err("it has an empty, `.` or `..` segment");
    }
    Ok(dir.to_owned())
}

/// [`credential_from`] with default settings, for the fuzz target.
#[cfg(feature = "fuzzing")]
pub(crate) fn check_credential(data: crate::api::types::UploadPolicy) -> Result<()> {
    let settings = UploadSettings {
        retry: crate::RetryPolicy::default(),
        concurrency: 1,
        credential_rate: 100,
        credential_margin: Duration::from_secs(30),
        allow_insecure_http: false,
        cache: None,
        account: String::new(),
        observer: None,
        budget_dir: None,
    };
    let credential = credential_from(data, Instant::now(), &settings)?;
    let _ = credential.claim_key("fuzz.png");
    Ok(())
}

/// The `expiration` of a base64 policy document, if it can be read.
pub(super) fn policy_expiration(policy: &str) -> Option<SystemTime> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(policy.trim())
        .ok()?;
    let document: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    crate::timefmt::parse_iso8601(document.get("expiration")?.as_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::RetryPolicy;

    fn settings() -> UploadSettings {
        UploadSettings {
            retry: RetryPolicy::default(),
            concurrency: 1,
            credential_rate: 100,
            credential_margin: Duration::from_secs(30),
            allow_insecure_http: false,
            cache: None,
            account: String::new(),
            observer: None,
            budget_dir: None,
        }
    }

    fn policy_data(
        expire_in_seconds: serde_json::Value,
        policy: &str,
    ) -> crate::api::types::UploadPolicy {
        serde_json::from_value(serde_json::json!({
            "policy": policy,
            "signature": "c2ln",
            "upload_dir": "dashscope-instant/abc/2026-01-01/r",
            "upload_host": "https://example.invalid",
            "expire_in_seconds": expire_in_seconds,
            "max_file_size_mb": 100,
            "capacity_limit_mb": 999,
            "oss_access_key_id": "LTAI",
            "x_oss_object_acl": "private",
            "x_oss_forbid_overwrite": "true"
        }))
        .expect("a credential")
    }

    /// A lifetime of u64::MAX seconds and a policy that cannot be read: the plan is capped at a
    /// day, and reuse stops a margin before that.
    #[test]
    fn an_absurd_lifetime_is_capped_at_a_day() {
        let now = Instant::now();
        let unreadable = base64::engine::general_purpose::STANDARD.encode("not json");
        let data = policy_data(serde_json::json!("18446744073709551615"), &unreadable);
        let c = credential_from(data, now, &settings()).expect("a credential");
        assert_eq!(c.expires, now + Duration::from_secs(24 * 3600));
        assert_eq!(c.usable_until, c.expires - Duration::from_secs(30));
        // A believable lifetime is kept as given.
        let data = policy_data(serde_json::json!(300), &unreadable);
        let c = credential_from(data, now, &settings()).expect("a credential");
        assert_eq!(c.expires, now + Duration::from_secs(300));
    }

    #[test]
    fn upload_dirs_that_would_reach_a_terminal_or_climb_are_refused() {
        assert_eq!(
            checked_upload_dir("dashscope-instant/abc/2026-01-01/r/").as_deref(),
            Ok("dashscope-instant/abc/2026-01-01/r")
        );
        for bad in [
            "",
            "/",
            "/abs/dir",
            "a//b",
            "a/../../etc",
            "..",
            "a/./b",
            "a//",
            "a\x1b[2J/b",
            "a\r\nforged",
            "a\u{202e}b",
            "a\\..\\b",
        ] {
            assert!(checked_upload_dir(bad).is_err(), "{bad:?}");
        }
        assert!(checked_upload_dir(&"a".repeat(901)).is_err());
    }
}
