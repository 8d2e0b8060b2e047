//! Requests built by hand for any DashScope path: what a proxy or gateway in front of DashScope
//! sends on behalf of its own clients. They take the one execution path of every other request
//! (the key, local files in media positions, the OSS header exactly when the body then has an
//! `oss://` URL, the upload cache and its healing, retries, the shared task-query budget, typed
//! errors) and hand back the success answer unread, so that a stream can be passed on chunk by
//! chunk.

use progenitor_client::ClientInfo;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::attempt::Repeat;
use crate::media::{prepare, send_healing};
use crate::transport::Manner;
use crate::wire::{ASYNC_HEADER, OSS_RESOLVE_HEADER};
use crate::{Client, Error, Result};

/// A request to a path of the client's base URL, with a JSON body or none.
///
/// ```no_run
/// # async fn run(client: dashscope_oss::Client) -> dashscope_oss::Result<()> {
/// use dashscope_oss::RawRequest;
///
/// let body = br#"{"model":"qwen-vl-plus","messages":[{"role":"user","content":[
///     {"type":"image_url","image_url":{"url":"photos/cat.png"}},
///     {"type":"text","text":"What is this?"}]}]}"#;
/// // photos/cat.png is uploaded first, and the request carries the OSS header.
/// let answer = client
///     .send_raw(RawRequest::post("/compatible-mode/v1/chat/completions").json(body.to_vec()))
///     .await?;
/// println!("{}", answer.text().await.unwrap_or_default());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RawRequest {
    method: reqwest::Method,
    path: String,
    headers: HeaderMap,
    body: Option<bytes::Bytes>,
}

impl RawRequest {
    /// A request of `method` to `path_and_query` (`/api/v1/…` or `/compatible-mode/v1/…`, with
    /// its query if any), relative to the client's base URL.
    pub fn new(method: reqwest::Method, path_and_query: impl Into<String>) -> Self {
        Self {
            method,
            path: path_and_query.into(),
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// A `GET` of `path_and_query`.
    pub fn get(path_and_query: impl Into<String>) -> Self {
        Self::new(reqwest::Method::GET, path_and_query)
    }

    /// A `POST` to `path_and_query`.
    pub fn post(path_and_query: impl Into<String>) -> Self {
        Self::new(reqwest::Method::POST, path_and_query)
    }

    /// The body, serialized JSON. Its media are made ready as any request's are.
    pub fn json(mut self, body: impl Into<bytes::Bytes>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A header to send, such as `X-DashScope-Async: enable` (which also makes the request a
    /// task submit: never sent twice once it may have arrived) or `X-DashScope-SSE: enable`.
    /// The execution path's own headers are not taken from here: the authorization, the
    /// workspace and the OSS header (sent exactly when the body has an `oss://` URL) are the
    /// client's; hop-by-hop and length headers are the HTTP client's.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if !owned_by_the_path(&name) {
            self.headers.append(name, value);
        }
        self
    }
}

/// Headers a caller may not set on a raw request.
fn owned_by_the_path(name: &HeaderName) -> bool {
    name == header::AUTHORIZATION
        || name == header::HOST
        || name == header::CONTENT_LENGTH
        || name == header::TRANSFER_ENCODING
        || name == header::CONNECTION
        || name == header::TE
        || name == header::UPGRADE
        || name == header::PROXY_AUTHORIZATION
        || name.as_str().eq_ignore_ascii_case(OSS_RESOLVE_HEADER)
        || name
            .as_str()
            .eq_ignore_ascii_case(crate::config::WORKSPACE_HEADER)
        || name.as_str().eq_ignore_ascii_case("keep-alive")
}

/// What a raw request is, as far as repeating it goes: a submit (it says so with the async
/// header) creates a task; a `GET` only reads; anything else may cost something again.
fn repeat_of(request: &RawRequest) -> Repeat {
    let submit = request
        .headers
        .get(ASYNC_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("enable"));
    if submit {
        Repeat::Creates
    } else if matches!(request.method, reqwest::Method::GET | reqwest::Method::HEAD) {
        Repeat::Safe
    } else {
        Repeat::Repeatable
    }
}

/// Whether a path is one of the task endpoints, whose queries share the client's budget.
fn is_task_path(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    path == "/api/v1/tasks" || path.starts_with("/api/v1/tasks/")
}

impl Client {
    /// Sends a request built by hand to a path of the base URL, on the one execution path,
    /// and returns the success answer with its body unread (a stream can be read as it
    /// arrives); an error answer is the typed [`Error`]. 429, 5xx and lost connections are
    /// retried before the answer is handed over, a submit never once it may have arrived.
    ///
    /// A path that would leave the base URL's host (`//other.example/…`, a full URL) is an
    /// [`Error::InvalidRequest`], and nothing is sent.
    pub async fn send_raw(&self, request: RawRequest) -> Result<reqwest::Response> {
        let url = self.url_of(&request.path)?;
        let repeat = repeat_of(&request);
        let api = self.api();
        let mut built = api.client().request(request.method, url);
        for (name, value) in &request.headers {
            built = built.header(name, value);
        }
        if let Some(body) = request.body {
            built = built
                .header(header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let mut built = built
            .build()
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        prepare(api, &mut built).await?;
        if repeat == Repeat::Creates {
            built.headers_mut().insert(
                ASYNC_HEADER,
                reqwest::header::HeaderValue::from_static("enable"),
            );
        }
        let manner = Manner {
            repeat,
            limiter: is_task_path(&request.path).then(|| &*api.inner().task_queries),
            answers_in: None,
            success_limit: None,
        };
        send_healing(api, built, manner)
            .await
            .map_err(|failure| failure.error)
    }

    /// The URL of a path of the base URL; refused when it would name another host.
    fn url_of(&self, path: &str) -> Result<reqwest::Url> {
        let refuse = |why: &str| Error::InvalidRequest(format!("path {path:?}: {why}"));
        if !path.starts_with('/') || path.starts_with("//") || path.contains('\\') {
            return Err(refuse(
                "a path starts with one `/` and stays on the base URL",
            ));
        }
        if path.chars().any(|c| c.is_control() || c == ' ' || c == '#') {
            return Err(refuse(
                "a path has no spaces, fragments or control characters",
            ));
        }
        let base = reqwest::Url::parse(self.base_url()).map_err(|e| refuse(&e.to_string()))?;
        let url = reqwest::Url::parse(&format!("{}{path}", self.base_url()))
            .map_err(|e| refuse(&e.to_string()))?;
        let same_host = url.scheme() == base.scheme()
            && url.host_str() == base.host_str()
            && url.port_or_known_default() == base.port_or_known_default();
        let dots = path
            .split('?')
            .next()
            .unwrap_or_default()
            .split('/')
            .any(|s| {
                matches!(
                    s.to_ascii_lowercase().as_str(),
                    "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
                )
            });
        if !same_host || dots {
            return Err(refuse("it must stay on the base URL"));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submit_is_never_repeated_and_a_get_only_reads() {
        let submit = RawRequest::post("/api/v1/services/audio/asr/transcription").header(
            ASYNC_HEADER.parse().unwrap(),
            HeaderValue::from_static("Enable"),
        );
        assert_eq!(repeat_of(&submit), Repeat::Creates);
        assert_eq!(repeat_of(&RawRequest::get("/api/v1/tasks/t")), Repeat::Safe);
        assert_eq!(
            repeat_of(&RawRequest::post("/compatible-mode/v1/chat/completions")),
            Repeat::Repeatable
        );
    }

    #[test]
    fn the_paths_own_headers_are_not_taken() {
        let request = RawRequest::get("/api/v1/tasks")
            .header(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"))
            .header(
                OSS_RESOLVE_HEADER.parse().unwrap(),
                HeaderValue::from_static("enable"),
            )
            .header(
                "x-dashscope-sse".parse().unwrap(),
                HeaderValue::from_static("enable"),
            );
        let names: Vec<&str> = request.headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-dashscope-sse"]);
    }

    #[test]
    fn task_paths_share_the_budget() {
        assert!(is_task_path("/api/v1/tasks"));
        assert!(is_task_path("/api/v1/tasks/abc?x=1"));
        assert!(!is_task_path("/api/v1/tasksx"));
        assert!(!is_task_path(
            "/api/v1/services/aigc/multimodal-generation/generation"
        ));
    }

    #[test]
    fn a_path_cannot_leave_the_base_url() {
        let client = Client::new(
            crate::Config::new()
                .api_key("k")
                .base_url("http://127.0.0.1:9"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(client.url_of("/api/v1/tasks?a=b").is_ok());
        for bad in [
            "//evil.example/api/v1",
            "http://evil.example/",
            "api/v1",
            "/api/../x",
            "/a b",
            "/a\\b",
            "/x#y",
            "@evil.example/",
        ] {
            assert!(client.url_of(bad).is_err(), "{bad:?}");
        }
    }
}
