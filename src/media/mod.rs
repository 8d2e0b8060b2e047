//! How the media of a request are made ready, so that each is something the request's model
//! can read: local files uploaded (or inlined as `data:` URIs), `data:` URIs over the limit
//! decoded and uploaded, web URLs fetched and uploaded when asked, `oss://` URLs the client
//! knows to be of another model or about to end uploaded again, and a remembered URL the
//! storage lost (or a web URL the service could not download) healed once after the service
//! refuses it. A body is read once: one walk finds every medium and the header decision. The
//! second half of [`crate::wire`]'s rules: those say what a medium is, this says what becomes
//! of it. Both halves of the client's hooks call it (`prepare`, `send_healing`).

mod data;
mod fetch;
mod local;

use crate::api;
use crate::cache::{Identity, UrlState, Verdict};
use crate::config::RehostUrls;
use crate::transport::{self, Manner};
use crate::upload::{UploadBatch, Uploader};
use crate::wire::{self, Media, OSS_RESOLVE_HEADER};
use crate::{Error, MediaOrigin, Result, UploadEvent, UploadSource};
use base64::Engine;
use progenitor_client::ClientInfo;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::Value;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::SystemTime;

/// The first half of the execution path, for every request: credentials, media, headers.
pub(crate) async fn prepare(api: &api::Client, request: &mut reqwest::Request) -> Result<()> {
    let mut oss = false;
    if let Some(body) = request.body().and_then(reqwest::Body::as_bytes)
        && let Some(mut walked) = walk(body, wants(api.inner()))
    {
        let resolved = resolve(api, &mut walked).await?;
        oss = resolved.oss;
        if resolved.changed {
            let bytes = serde_json::to_vec(&walked.value)
                .map_err(|e| Error::InvalidRequest(e.to_string()))?;
            *request.body_mut() = Some(bytes.into());
        }
    }
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

/// What a medium is, for what becomes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A path or `file://` URI: uploaded (or inlined).
    Local,
    /// `oss://…`: sent, unless this client knows it will not resolve for the request.
    Oss,
    /// A `data:` URI over the limit: decoded and uploaded.
    Data,
    /// `http(s)://…`, while re-hosting is on: fetched and uploaded.
    Web,
}

/// A distinct medium of a body that may need work; media that go as written (a URL of another
/// scheme, a `data:` URI within the limit, a web URL while re-hosting is off) are not kept.
struct Found {
    text: String,
    kind: Kind,
    /// Whether every place it sits in takes a `data:` URI of its kind.
    takes_inline: bool,
}

/// A body read once: its JSON, its `model`, and its media that may need work.
struct Walked {
    value: Value,
    model: Option<String>,
    media: Vec<Found>,
}

/// Which media a walk keeps.
#[derive(Clone, Copy)]
struct Wants {
    /// `data:` URIs longer than this.
    data_over: usize,
    /// Web URLs.
    web: bool,
}

fn wants(inner: &crate::session::Inner) -> Wants {
    Wants {
        data_over: inner.data_uri_limit,
        web: inner.rehost == RehostUrls::Always,
    }
}

/// The one walk of a request body: every medium it carries, classified, in one pass. `None`
/// for a body that is not JSON (nothing in it is a medium).
fn walk(body: &[u8], wants: Wants) -> Option<Walked> {
    let mut value = serde_json::from_slice::<Value>(body).ok()?;
    let mut media: Vec<Found> = Vec::new();
    wire::visit_media_at(&mut value, &mut |place, s| {
        let (kind, of) = if wire::is_oss_url(s) {
            (Kind::Oss, None)
        } else if data::is_data_uri(s) {
            if s.len() <= wants.data_over {
                return;
            }
            let mime = s[5..].split([';', ',']).next().unwrap_or_default();
            (
                Kind::Data,
                mime.split('/').next().map(str::to_ascii_lowercase),
            )
        } else if is_web_url(s) {
            if !wants.web {
                return;
            }
            (Kind::Web, None)
        } else if matches!(Media::parse(s), Media::Path(_)) {
            let mime = crate::naming::content_type(s);
            (Kind::Local, mime.split('/').next().map(str::to_owned))
        } else {
            return;
        };
        let takes = of.is_some() && wire::inline_kind(place) == of.as_deref();
        match media.iter_mut().find(|f| f.text == *s) {
            Some(found) => found.takes_inline &= takes,
            None => media.push(Found {
                text: s.clone(),
                kind,
                takes_inline: takes,
            }),
        }
    });
    let model = value
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(Walked {
        value,
        model,
        media,
    })
}

/// `http://…` or `https://…`, in any case.
fn is_web_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// What resolving a body did.
struct Resolved {
    /// Whether the body changed (and must be serialized again).
    changed: bool,
    /// Whether the body now carries an `oss://` URL in a media position: the header rule.
    oss: bool,
}

/// An upload a body needs, and what to tell the observer of it.
struct Pending {
    from: String,
    model: String,
    source: UploadSource,
    told: Told,
}

enum Told {
    Local(PathBuf),
    Origin(MediaOrigin),
}

/// The media of a walked body made ready to send: local files uploaded (or inlined, see
/// [`crate::Config::inline_below`]), `data:` URIs over the limit decoded and uploaded, web
/// URLs fetched and uploaded (with [`RehostUrls::Always`]), and `oss://` URLs this client knows
/// to be of another model or to end within the cache margin uploaded again. Everything is
/// checked (paths admitted, data decoded, URLs fetched) before anything is uploaded. Boxed: an
/// upload asks for a credential, a generated operation whose own hook comes back here.
fn resolve<'a>(
    api: &'a api::Client,
    walked: &'a mut Walked,
) -> Pin<Box<dyn Future<Output = Result<Resolved>> + Send + 'a>> {
    Box::pin(async move {
        let model = walked.model.clone().filter(|m| !m.trim().is_empty());
        let needs_model = |what: &str| {
            model.clone().ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "a request with {what} needs a top-level `model` to upload them for"
                ))
            })
        };
        let mut replace: Vec<(String, String)> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let of = |kind: Kind| walked.media.iter().filter(move |f| f.kind == kind);

        if let Some(cache) = api.inner().uploads.cache() {
            for found in of(Kind::Oss) {
                cache.note_served(&found.text);
            }
        }
        for found in of(Kind::Oss) {
            match renewal(api, &found.text, model.as_deref()).await? {
                Renewal::Keep => {}
                Renewal::Replace(url) => replace.push((found.text.clone(), url)),
                Renewal::Upload(p) => pending.push(p),
            }
        }

        let local: Vec<&Found> = of(Kind::Local).collect();
        if !local.is_empty() {
            let model = needs_model("local files")?;
            let named: Vec<PathBuf> = local
                .iter()
                .map(|f| Media::parse(&f.text).as_path())
                .collect();
            // Every path is admitted before any is read; what is read is what was admitted.
            let real = local::admit_all(&api.inner().local_files, named.clone()).await?;
            for ((found, named), real) in local.into_iter().zip(named).zip(real) {
                let source = UploadSource::path_read_from(&named, real.clone());
                let size = source.size().await?;
                match inline(api, found.takes_inline, &found.text, &real, size).await? {
                    Some(uri) => replace.push((found.text.clone(), uri)),
                    None => pending.push(Pending {
                        from: found.text.clone(),
                        model: model.clone(),
                        source,
                        told: Told::Local(named),
                    }),
                }
            }
        }

        let inline_below = api.inner().inline_below;
        for found in of(Kind::Data) {
            let model = needs_model("a data: URI over the limit")?;
            let (mime, bytes) = data::decode(&found.text)?;
            let size = bytes.len() as u64;
            // Inline was asked for at this size, and the service takes it: it stays.
            if found.takes_inline && size < inline_below && found.text.len() <= wire::DATA_URI_LIMIT
            {
                continue;
            }
            let name = format!("data.{}", crate::naming::extension_for(&mime));
            pending.push(Pending {
                from: found.text.clone(),
                model,
                source: UploadSource::bytes(name, bytes),
                told: Told::Origin(MediaOrigin::DataUri {
                    content_type: mime,
                    size,
                }),
            });
        }

        let web: Vec<String> = of(Kind::Web).map(|f| f.text.clone()).collect();
        if !web.is_empty() {
            let model = needs_model("URLs to re-host")?;
            pending.extend(fetch_all(api, &model, web).await?);
        }

        replace.extend(upload_all(api, pending).await?);
        let oss = walked.media.iter().any(|found| {
            let sent = replace
                .iter()
                .find(|(from, _)| *from == found.text)
                .map_or(found.text.as_str(), |(_, to)| to.as_str());
            wire::is_oss_url(sent)
        });
        if replace.is_empty() {
            return Ok(Resolved {
                changed: false,
                oss,
            });
        }
        replace_media(&mut walked.value, &replace);
        Ok(Resolved { changed: true, oss })
    })
}

/// Web URLs fetched (every one before any is uploaded), as the uploads they need.
async fn fetch_all(api: &api::Client, model: &str, urls: Vec<String>) -> Result<Vec<Pending>> {
    let limit = api.inner().rehost_limit;
    let mut pending = Vec::with_capacity(urls.len());
    for url in urls {
        let fetched = fetch::fetch(api, &url, limit).await?;
        pending.push(Pending {
            model: model.to_owned(),
            source: UploadSource::bytes(fetched.name, fetched.bytes),
            told: Told::Origin(MediaOrigin::Web {
                url: fetch::shown(&url),
            }),
            from: url,
        });
    }
    Ok(pending)
}

/// Uploads what a body needs, a batch per model, and tells the observer what each became;
/// each `(from, to)` to put in the body.
async fn upload_all(api: &api::Client, pending: Vec<Pending>) -> Result<Vec<(String, String)>> {
    let mut replace = Vec::with_capacity(pending.len());
    let mut pending = pending;
    let observer = api.inner().uploads.settings.observer.clone();
    while let Some(first) = pending.first() {
        let model = first.model.clone();
        let (batch, rest): (Vec<Pending>, Vec<Pending>) =
            pending.into_iter().partition(|p| p.model == model);
        pending = rest;
        let mut told = Vec::with_capacity(batch.len());
        let mut sources = Vec::with_capacity(batch.len());
        for p in batch {
            told.push((p.from, p.told));
            sources.push(p.source);
        }
        let results = UploadBatch::new(Uploader::new(api), &model, sources).await;
        for ((from, what), result) in told.into_iter().zip(results) {
            let file = result?;
            if let Some(tell) = &observer {
                tell(&match what {
                    Told::Local(path) => UploadEvent::Uploaded {
                        path,
                        file: file.clone(),
                    },
                    Told::Origin(origin) => UploadEvent::Rehosted {
                        origin,
                        file: file.clone(),
                    },
                });
            }
            replace.push((from, file.url));
        }
    }
    Ok(replace)
}

/// What an `oss://` URL of a request needs.
enum Renewal {
    /// Nothing: not one this client knows, or fine for this request.
    Keep,
    /// Already uploaded for the request's model, and lasting: that URL.
    Replace(String),
    /// Its file uploaded again.
    Upload(Pending),
}

/// Whether an `oss://` URL this client knows will not do for the request — uploaded for
/// another model (a URL resolves only for its own), or ending within the cache margin — and
/// what then replaces it: the same content already uploaded for the request's model, else its
/// file uploaded again, else an error before anything is sent.
async fn renewal(api: &api::Client, url: &str, model: Option<&str>) -> Result<Renewal> {
    let uploads = &api.inner().uploads;
    let Some(cache) = uploads.cache() else {
        return Ok(Renewal::Keep);
    };
    let account = uploads.account();
    let now = SystemTime::now();
    // url_state catches up with the files off the runtime: the answers below are from memory.
    let (entry, stale) = match cache.url_state(account, url, now).await {
        UrlState::Stale(entry) => (entry, true),
        UrlState::Send => match cache.entry(account, url).await {
            Some(entry) if model.is_some_and(|m| m != entry.model) => (entry, false),
            _ => return Ok(Renewal::Keep),
        },
    };
    let target = model.unwrap_or(&entry.model).to_owned();
    let origin = MediaOrigin::OssUrl {
        url: url.to_owned(),
        model: entry.model.clone(),
    };
    let identity = Identity {
        content: entry.content.clone(),
        content_type: entry.content_type.clone(),
        model: target.clone(),
        account: account.to_owned(),
    };
    if let Verdict::Fresh(found) = cache.lookup(&identity, now)
        && found.url != url
    {
        cache.note_served(&found.url);
        let file = crate::upload::from_cache(found, &target);
        if let Some(tell) = &uploads.settings.observer {
            tell(&UploadEvent::Rehosted {
                origin,
                file: file.clone(),
            });
        }
        return Ok(Renewal::Replace(file.url));
    }
    let cannot = || {
        if stale {
            Error::UrlExpired {
                url: url.to_owned(),
                expires_at: entry.expires_at(),
                file: entry.source.clone(),
            }
        } else {
            let why = entry.source.as_ref().map_or_else(
                || "it was not uploaded from a file".to_owned(),
                |p| {
                    format!(
                        "its file {} is gone, changed, or not to be read",
                        p.display()
                    )
                },
            );
            Error::InvalidRequest(format!(
                "{url} was uploaded for model {:?} and resolves only for it; {why}, so it \
                 cannot be uploaded again for {target:?}; nothing was sent",
                entry.model,
            ))
        }
    };
    let Some(path) = admitted(api, entry.source.clone()).await else {
        return Err(cannot());
    };
    if !holds(&path, &entry.content).await {
        return Err(cannot());
    }
    tracing::info!(
        url,
        model = target,
        stale,
        "a remembered URL will not do: uploading its file again"
    );
    Ok(Renewal::Upload(Pending {
        from: url.to_owned(),
        model: target,
        source: UploadSource::path_read_from(&path, path.clone()),
        told: Told::Origin(origin),
    }))
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

/// Sends a prepared request on the one execution path, and heals it once:
/// - when the service refuses an `oss://` URL of it (invalid URL, or data inspection) that
///   the upload cache knows, the cache forgets it, the file is uploaded again, and the request
///   is sent once more with the new URL: a remembered URL the storage has lost costs one
///   upload, not a failed call;
/// - with [`RehostUrls::OnDownloadFailure`], when the service answers that it could not
///   download a medium, every web URL of the request is fetched here and uploaded, and the
///   request is sent once more.
pub(crate) async fn send_healing(
    api: &api::Client,
    request: reqwest::Request,
    manner: Manner<'_>,
) -> std::result::Result<reqwest::Response, transport::Failure> {
    let inner = api.inner();
    // The header says what the one walk found (`prepare` sets it exactly when the body carries
    // an oss:// URL): the body is not read again. A copy of a body in memory shares its bytes.
    let oss = request.headers().contains_key(OSS_RESOLVE_HEADER);
    let rehost = inner.rehost == RehostUrls::OnDownloadFailure;
    let copy = ((inner.uploads.cache().is_some() && oss) || rehost)
        .then(|| request.try_clone())
        .flatten();
    let sent = transport::send_raw(api.client(), &inner.key, inner.retry, request, manner).await;
    let (failure, healed) = match sent {
        Err(f) if oss && matches!(f.error, Error::InvalidUrl(_) | Error::DataInspection(_)) => {
            (f, Heal::Oss)
        }
        Err(f) if rehost && matches!(f.error, Error::DownloadFailed(_)) => (f, Heal::Web),
        other => return other,
    };
    let Some(mut copy) = copy else {
        return Err(failure);
    };
    match heal(api, &mut copy, healed).await {
        Ok(true) => {
            tracing::warn!(error = %failure.error, "uploaded again what the service refused, sending once more");
            transport::send_raw(api.client(), &inner.key, inner.retry, copy, manner).await
        }
        Ok(false) => Err(failure),
        Err(error) => Err(transport::Failure {
            error,
            answer: None,
        }),
    }
}

/// What a refusal asks to heal.
#[derive(Clone, Copy)]
enum Heal {
    /// `oss://` URLs from the cache, which the storage may have lost.
    Oss,
    /// Web URLs the service could not download.
    Web,
}

/// Heals a refused request's body (see [`send_healing`]); `false` when nothing of it could
/// be. Boxed for the same reason as [`resolve`].
fn heal<'a>(
    api: &'a api::Client,
    request: &'a mut reqwest::Request,
    what: Heal,
) -> Pin<Box<dyn Future<Output = Result<bool>> + Send + 'a>> {
    Box::pin(async move {
        match what {
            Heal::Oss => heal_body(api, request).await,
            Heal::Web => rehost_web(api, request).await,
        }
    })
}

/// Fetches every web URL of a refused body, uploads it for the body's model and puts the new
/// URLs in; `false` when the body has none.
async fn rehost_web(api: &api::Client, request: &mut reqwest::Request) -> Result<bool> {
    let Some(mut walked) = request
        .body()
        .and_then(reqwest::Body::as_bytes)
        .and_then(|b| {
            walk(
                b,
                Wants {
                    data_over: usize::MAX,
                    web: true,
                },
            )
        })
    else {
        return Ok(false);
    };
    let web: Vec<String> = walked
        .media
        .iter()
        .filter(|f| f.kind == Kind::Web)
        .map(|f| f.text.clone())
        .collect();
    if web.is_empty() {
        return Ok(false);
    }
    let model = walked.model.clone().ok_or_else(|| {
        Error::InvalidRequest(
            "a request with URLs to re-host needs a top-level `model` to upload them for"
                .to_owned(),
        )
    })?;
    let pending = fetch_all(api, &model, web).await?;
    let replace = upload_all(api, pending).await?;
    replace_media(&mut walked.value, &replace);
    let bytes =
        serde_json::to_vec(&walked.value).map_err(|e| Error::InvalidRequest(e.to_string()))?;
    *request.body_mut() = Some(bytes.into());
    request
        .headers_mut()
        .insert(OSS_RESOLVE_HEADER, HeaderValue::from_static("enable"));
    Ok(true)
}

/// Forgets the cached `oss://` URLs of a request's body, uploads their files again and puts
/// the new URLs in; `false` when no URL of the body came from the cache with a file.
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The header rule for a body that needs no upload: what `prepare` decides from the walk.
    fn carries_oss_url(body: &[u8]) -> bool {
        let wants = Wants {
            data_over: usize::MAX,
            web: false,
        };
        walk(body, wants).is_some_and(|w| w.media.iter().any(|f| f.kind == Kind::Oss))
    }

    #[test]
    fn the_header_rule_needs_an_oss_url_in_a_media_position() {
        let text_only = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "see oss://a/b.png"}]}]});
        assert!(!carries_oss_url(text_only.to_string().as_bytes()));
        let frames = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "video", "video": ["https://a/1.jpg", "OSS://a/2.jpg"]}]}]});
        assert!(carries_oss_url(frames.to_string().as_bytes()));
        let native = json!({"input": {"messages": [{"content": [{"audio": "oss://a/b.mp3"}]}]}});
        assert!(carries_oss_url(native.to_string().as_bytes()));
        assert!(!carries_oss_url(b"not json oss://"));
    }

    #[test]
    fn one_walk_finds_every_kind_of_medium_once() {
        let big = format!("data:image/png;base64,{}", "A".repeat(64));
        let body = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "cat.png"}},
            {"type": "video", "video": ["cat.png", "oss://a/1.jpg", "https://x/2.jpg"]},
            {"type": "image_url", "image_url": {"url": big}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "image_url", "image_url": {"url": "fileid://f"}}]}]});
        let bytes = body.to_string();
        let walked = walk(
            bytes.as_bytes(),
            Wants {
                data_over: 40,
                web: true,
            },
        )
        .expect("JSON");
        assert_eq!(walked.model.as_deref(), Some("m"));
        let mut kinds: Vec<(Kind, bool)> = walked
            .media
            .iter()
            .map(|f| (f.kind, f.takes_inline))
            .collect();
        kinds.sort_by_key(|(k, _)| *k as u8);
        // cat.png sits in an image_url (takes inline) and a frame list (does not): not inline.
        assert_eq!(
            kinds,
            vec![
                (Kind::Local, false),
                (Kind::Oss, false),
                (Kind::Data, true),
                (Kind::Web, false)
            ]
        );
        // Re-hosting off, and data within the limit: neither is kept.
        let walked = walk(
            bytes.as_bytes(),
            Wants {
                data_over: usize::MAX,
                web: false,
            },
        )
        .expect("JSON");
        assert_eq!(walked.media.len(), 2);
    }
}
