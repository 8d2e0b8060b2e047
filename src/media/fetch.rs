//! Fetching an `http(s)://` medium to upload it for the model ([`crate::Config::rehost_urls`]):
//! on the one execution path (its attempts retried and classified as every request's are; the
//! API key is never sent: the execution path adds none, the client's hooks do), following
//! redirects one hop at a time so that each is checked, and within a size limit.

use progenitor_client::ClientInfo;

use crate::api;
use crate::attempt::Repeat;
use crate::transport::{self, Manner};
use crate::{Error, Result};

/// Redirects followed before a fetch gives up (reqwest's own default is 10; a medium behind
/// more than a few is not worth following).
const MAX_REDIRECTS: usize = 5;

/// What a fetch brought back: a name to upload it under, and its bytes.
pub(crate) struct Fetched {
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
}

/// A URL as it may be shown (in errors, events, logs): no user info, query or fragment, since
/// a presigned URL's query is its credential.
pub(crate) fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "a URL that does not parse".to_owned(),
    }
}

/// Fetches `url`, at most `limit` bytes.
pub(crate) async fn fetch(api: &api::Client, url: &str, limit: u64) -> Result<Fetched> {
    let inner = api.inner();
    let mut current = reqwest::Url::parse(url)
        .map_err(|e| Error::InvalidRequest(format!("{}: not a URL ({e})", shown(url))))?;
    for _ in 0..=MAX_REDIRECTS {
        let request = api
            .client()
            .get(current.clone())
            .build()
            .map_err(|e| Error::InvalidRequest(format!("{}: {e}", shown(current.as_str()))))?;
        let manner = Manner {
            repeat: Repeat::Safe,
            ..Manner::default()
        };
        let failure =
            match transport::send_raw(api.client(), &inner.key, inner.retry, request, manner).await
            {
                Ok(response) => return read(response, current.as_str(), limit).await,
                Err(failure) => failure,
            };
        let Some(location) = failure.location() else {
            return Err(failure.error);
        };
        let next = current.join(location).map_err(|e| {
            Error::InvalidRequest(format!(
                "{} redirects to a location that is not a URL ({e}); nothing was uploaded",
                shown(current.as_str())
            ))
        })?;
        // Only to the web, and never down from https: a redirect must not turn a fetch into
        // a read of another kind of resource, or into clear text.
        let allowed = matches!(
            (current.scheme(), next.scheme()),
            ("https", "https") | ("http", "http" | "https")
        );
        if !allowed {
            return Err(Error::InvalidRequest(format!(
                "{} redirects from {} to {}: a re-hosted URL follows redirects only to http(s), \
                 never from https to http; nothing was uploaded",
                shown(current.as_str()),
                current.scheme(),
                next.scheme()
            )));
        }
        tracing::debug!(from = %shown(current.as_str()), to = %shown(next.as_str()), "following a redirect");
        current = next;
    }
    Err(Error::InvalidRequest(format!(
        "{} redirects more than {MAX_REDIRECTS} times; nothing was uploaded",
        shown(url)
    )))
}

async fn read(response: reqwest::Response, url: &str, limit: u64) -> Result<Fetched> {
    let over = || {
        Error::InvalidRequest(format!(
            "{} is over the {limit} bytes a re-hosted URL may have (Config::rehost_limit); \
             nothing was uploaded",
            shown(url)
        ))
    };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(over());
    }
    let mime = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    let (bytes, truncated) = transport::read_limited(response, cap)
        .await
        .map_err(Error::from_reqwest)?;
    if truncated {
        return Err(over());
    }
    Ok(Fetched {
        name: name_of(url, mime.as_deref()),
        bytes,
    })
}

/// The name a fetched medium is uploaded under: the URL's last path segment when it has an
/// extension (what the model reads the type from), else `file` with the extension of the
/// answer's content type.
fn name_of(url: &str, mime: Option<&str>) -> String {
    let segment = reqwest::Url::parse(url).ok().and_then(|u| {
        u.path_segments()
            .and_then(|mut s| s.next_back().map(str::to_owned))
    });
    let decoded = segment.map(|s| {
        percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned()
    });
    match decoded {
        Some(name) if crate::naming::split_ext(&name).1.len() > 1 => name,
        _ => format!(
            "file.{}",
            crate::naming::extension_for(mime.unwrap_or_default())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_path_or_the_content_type() {
        assert_eq!(
            name_of("https://x/a/cat%20one.png?sig=1", None),
            "cat one.png"
        );
        assert_eq!(
            name_of("https://x/a/download", Some("image/jpeg")),
            "file.jpg"
        );
        assert_eq!(name_of("https://x/", None), "file.bin");
    }

    #[test]
    fn shown_urls_lose_their_credentials() {
        assert_eq!(
            shown("https://user:pw@x.example/a.png?Signature=abc#f"),
            "https://x.example/a.png"
        );
    }
}
