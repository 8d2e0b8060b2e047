//! How the media of a request are made ready: local files uploaded (or inlined as `data:`
//! URIs) and replaced by their URLs, `oss://` URLs the client knows are about to end uploaded
//! again, and a remembered URL the storage lost healed once after the service refuses it. The
//! second half of [`crate::wire`]'s rules: those say what a medium is, this says what becomes
//! of it. Both halves of the client's hooks call it (`prepare`, `send_healing`).

mod local;

use crate::api;
use crate::cache::UrlState;
use crate::transport::{self, Manner};
use crate::upload::{UploadBatch, Uploader};
use crate::wire::{self, Media, OSS_RESOLVE_HEADER};
use crate::{Error, Result, UploadEvent, UploadSource};
use base64::Engine;
use progenitor_client::ClientInfo;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::SystemTime;

/// The first half of the execution path, for every request: credentials, local files, headers.
pub(crate) async fn prepare(api: &api::Client, request: &mut reqwest::Request) -> Result<()> {
    if let Some(body) = request.body().and_then(reqwest::Body::as_bytes)
        && let Some(resolved) = resolve_media(api, body).await?
    {
        *request.body_mut() = Some(resolved.into());
    }
    let oss = request
        .body()
        .and_then(reqwest::Body::as_bytes)
        .is_some_and(wire::carries_oss_url);
    let headers = request.headers_mut();
    // progenitor sends the spec's `info.version` as `api-version`; DashScope has no such header.
    headers.remove("api-version");
    headers.insert(AUTHORIZATION, api.inner().authorization.clone());
    if let Some(workspace) = &api.inner().workspace {
        headers.insert(crate::config::WORKSPACE_HEADER, workspace.clone());
    }
    // Every documented DashScope request carries `Content-Type: application/json`, the
    // bodiless `GET /api/v1/uploads` included (the documentation lists it as required).
    headers
        .entry(CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    // The service reads oss:// URLs only when told to; sent exactly when the body has one.
    if oss {
        headers.insert(OSS_RESOLVE_HEADER, HeaderValue::from_static("enable"));
    }
    Ok(())
}

type Resolved<'a> = Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>>> + Send + 'a>>;

/// The media of a JSON body made ready to send, for its `model`: local files uploaded (or
/// inlined as `data:` URIs, see [`Config::inline_below`]) and replaced by their URLs, and
/// `oss://` URLs that end within the cache margin uploaded again from their files. Returns
/// `None` when nothing changed. Every file is checked before anything is uploaded. Boxed: an
/// upload asks for a credential, a generated operation whose own hook comes back here.
fn resolve_media<'a>(api: &'a api::Client, body: &'a [u8]) -> Resolved<'a> {
    Box::pin(async move {
        let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
            return Ok(None);
        };
        // Each local path, with whether every place it sits in takes a `data:` URI of its kind.
        let mut local: Vec<(String, bool)> = Vec::new();
        let mut oss: Vec<String> = Vec::new();
        wire::visit_media_at(&mut value, &mut |place, s| {
            if wire::is_oss_url(s) {
                if !oss.contains(s) {
                    oss.push(s.clone());
                }
                return;
            }
            if !matches!(Media::parse(s), Media::Path(_)) {
                return;
            }
            let takes = wire::inline_kind(place)
                .is_some_and(|kind| crate::naming::content_type(s).split('/').next() == Some(kind));
            match local.iter_mut().find(|(l, _)| l == s) {
                Some((_, inline)) => *inline &= takes,
                None => local.push((s.clone(), takes)),
            }
        });
        if let Some(cache) = api.inner().uploads.cache() {
            for url in &oss {
                cache.note_served(url);
            }
        }
        let renewed = renew_stale(api, &oss).await?;
        if local.is_empty() && renewed.is_empty() {
            return Ok(None);
        }
        let mut replace: Vec<(String, String)> = renewed;
        if !local.is_empty() {
            replace.extend(resolve_local(api, &value, local).await?);
        }
        replace_media(&mut value, &replace);
        serde_json::to_vec(&value)
            .map(Some)
            .map_err(|e| Error::InvalidRequest(e.to_string()))
    })
}

/// The local files of a body, each with what replaces it: a `data:` URI or an `oss://` URL.
async fn resolve_local(
    api: &api::Client,
    body: &Value,
    local: Vec<(String, bool)>,
) -> Result<Vec<(String, String)>> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| {
            Error::InvalidRequest(
                "a request with local files needs a top-level `model` to upload them for"
                    .to_owned(),
            )
        })?
        .to_owned();
    let named: Vec<PathBuf> = local
        .iter()
        .map(|(s, _)| Media::parse(s).as_path())
        .collect();
    // Every path is admitted before any is read; what is read is what was admitted.
    let real = local::admit_all(&api.inner().local_files, named.clone()).await?;
    let sources: Vec<UploadSource> = named
        .iter()
        .zip(&real)
        .map(|(named, real)| UploadSource::path_read_from(named, real.clone()))
        .collect();
    let mut sizes = Vec::with_capacity(sources.len());
    for source in &sources {
        sizes.push(source.size().await?);
    }
    let mut replace = Vec::with_capacity(local.len());
    let mut upload = Vec::new();
    for (((s, takes_inline), (source, size)), real) in local
        .into_iter()
        .zip(sources.into_iter().zip(sizes))
        .zip(real)
    {
        match inline(api, takes_inline, &s, &real, size).await? {
            Some(uri) => replace.push((s, uri)),
            None => upload.push((s, source)),
        }
    }
    let (names, sources): (Vec<String>, Vec<UploadSource>) = upload.into_iter().unzip();
    let results = UploadBatch::new(Uploader::new(api), &model, sources).await;
    let observer = api.inner().uploads.settings.observer.as_ref();
    for (name, result) in names.into_iter().zip(results) {
        let file = result?;
        if let Some(tell) = observer {
            tell(&UploadEvent::Uploaded {
                path: Media::parse(&name).as_path(),
                file: file.clone(),
            });
        }
        replace.push((name, file.url));
    }
    Ok(replace)
}

/// A small file as a `data:` URI, when the client inlines files of its size and every place it
/// sits in takes one; `None` to upload it.
async fn inline(
    api: &api::Client,
    takes: bool,
    path: &str,
    real: &std::path::Path,
    size: u64,
) -> Result<Option<String>> {
    if !takes || !crate::naming::inlines(path, size, api.inner().inline_below) {
        return Ok(None);
    }
    let mime = crate::naming::content_type(path);
    let file = Media::parse(path).as_path();
    let bytes = tokio::fs::read(real).await.map_err(|source| Error::Io {
        path: Some(file.clone()),
        source,
    })?;
    let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
    if let Some(tell) = &api.inner().uploads.settings.observer {
        tell(&UploadEvent::Inlined {
            path: file,
            content_type: mime,
            size,
        });
    }
    Ok(Some(format!("data:{mime};base64,{data}")))
}

/// The `oss://` URLs of a request that this client knows end within the cache margin, each
/// with the URL of its file uploaded again; an error, before anything is sent, for one whose
/// file is gone or changed.
async fn renew_stale(api: &api::Client, urls: &[String]) -> Result<Vec<(String, String)>> {
    let uploads = &api.inner().uploads;
    let Some(cache) = uploads.cache() else {
        return Ok(Vec::new());
    };
    let mut renewed = Vec::new();
    for url in urls {
        let UrlState::Stale(entry) = cache
            .url_state(uploads.account(), url, SystemTime::now())
            .await
        else {
            continue;
        };
        let expired = || Error::UrlExpired {
            url: url.clone(),
            expires_at: entry.expires_at(),
            file: entry.source.clone(),
        };
        let Some(path) = admitted(api, entry.source.clone()).await else {
            return Err(expired());
        };
        if !holds(&path, &entry.content).await {
            return Err(expired());
        }
        tracing::info!(url, "ends within the margin: uploading its file again");
        let file = Uploader::new(api)
            .upload(&entry.model, UploadSource::path(path))
            .await?;
        renewed.push((url.clone(), file.url));
    }
    Ok(renewed)
}

/// Puts each `(from, to)` of `replace` in place of `from` in the media positions of a body.
fn replace_media(body: &mut Value, replace: &[(String, String)]) {
    wire::visit_media(body, &mut |s| {
        if let Some((_, to)) = replace.iter().find(|(from, _)| from == s) {
            *s = to.clone();
        }
    });
}

/// The file a cache entry came from, to read again, if this client may read it now.
async fn admitted(api: &api::Client, source: Option<PathBuf>) -> Option<PathBuf> {
    let source = source?;
    local::admit_all(&api.inner().local_files, vec![source])
        .await
        .ok()?
        .pop()
}

/// Whether a file still holds the content of this SHA-256 (hashed off the runtime).
async fn holds(path: &std::path::Path, content: &str) -> bool {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || crate::cache::digest_file(&path).ok())
        .await
        .ok()
        .flatten()
        .is_some_and(|digest| digest == content)
}

/// Sends a prepared request on the one execution path. When the service refuses an `oss://`
/// URL of it (invalid URL, or data inspection) that the upload cache knows, the cache forgets
/// it, the file is uploaded again, and the request is sent once more with the new URL: a
/// remembered URL the storage has lost costs one upload, not a failed call.
pub(crate) async fn send_healing(
    api: &api::Client,
    request: reqwest::Request,
    manner: Manner<'_>,
) -> std::result::Result<reqwest::Response, transport::Failure> {
    let inner = api.inner();
    let copy = (inner.uploads.cache().is_some()
        && request
            .body()
            .and_then(reqwest::Body::as_bytes)
            .is_some_and(wire::carries_oss_url))
    .then(|| request.try_clone())
    .flatten();
    let sent = transport::send_raw(api.client(), &inner.key, inner.retry, request, manner).await;
    let failure = match sent {
        Err(f) if matches!(f.error, Error::InvalidUrl(_) | Error::DataInspection(_)) => f,
        other => return other,
    };
    let Some(mut copy) = copy else {
        return Err(failure);
    };
    match heal(api, &mut copy).await {
        Ok(true) => {
            tracing::warn!(error = %failure.error, "a remembered URL was refused: uploaded again, sending once more");
            transport::send_raw(api.client(), &inner.key, inner.retry, copy, manner).await
        }
        Ok(false) => Err(failure),
        Err(error) => Err(transport::Failure {
            error,
            answer: None,
        }),
    }
}

/// Forgets the cached `oss://` URLs of a request's body, uploads their files again and puts
/// the new URLs in; `false` when no URL of the body came from the cache with a file. Boxed for
/// the same reason as [`resolve_media`].
fn heal<'a>(
    api: &'a api::Client,
    request: &'a mut reqwest::Request,
) -> Pin<Box<dyn Future<Output = Result<bool>> + Send + 'a>> {
    Box::pin(heal_body(api, request))
}

async fn heal_body(api: &api::Client, request: &mut reqwest::Request) -> Result<bool> {
    let uploads = &api.inner().uploads;
    let (Some(cache), Some(body)) = (
        uploads.cache(),
        request.body().and_then(reqwest::Body::as_bytes),
    ) else {
        return Ok(false);
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return Ok(false);
    };
    let mut urls: Vec<String> = Vec::new();
    wire::visit_media(&mut value, &mut |s| {
        if wire::is_oss_url(s) && !urls.contains(s) {
            urls.push(s.clone());
        }
    });
    let mut replace = Vec::new();
    for url in urls {
        // Only a URL the cache gave (or a request carried): one uploaded for this very request
        // and refused is the media's fault, not the storage's.
        if !cache.was_served(&url) {
            continue;
        }
        let Some(entry) = cache.entry(uploads.account(), &url).await else {
            continue;
        };
        cache.forget_content(&entry).await;
        let Some(path) = admitted(api, entry.source.clone()).await else {
            continue;
        };
        // The file must still hold what the URL held: otherwise the answer would be about
        // other content than the request named.
        if !holds(&path, &entry.content).await {
            continue;
        }
        let file = Uploader::new(api)
            .upload(&entry.model, UploadSource::path(path))
            .await?;
        replace.push((url, file.url));
    }
    if replace.is_empty() {
        return Ok(false);
    }
    replace_media(&mut value, &replace);
    let bytes = serde_json::to_vec(&value).map_err(|e| Error::InvalidRequest(e.to_string()))?;
    *request.body_mut() = Some(bytes.into());
    Ok(true)
}
