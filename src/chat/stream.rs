//! Server-sent events into typed chunks: one event at a time, an error event as an error.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use serde_json::Value;

use super::Api;
use crate::error::from_response;
use crate::{Error, Result};

pub(super) fn typed<T: serde::de::DeserializeOwned>(body: Value) -> Result<T> {
    serde_json::from_value(body)
        .map_err(|e| Error::InvalidRequest(format!("the request does not fit the spec: {e}")))
}

/// The typed chunks of an event stream; an `event:error` (native) or an `{"error": …}` chunk
/// (compatible) ends it with the typed error.
///
/// `idle` is the longest wait for the next event: keep-alive comments do not count, so a
/// server that sends only those fails the stream after it (the read timeout, which any byte
/// resets, would wait forever). A native stream ends with a finish reason; one that closes
/// while every chunk still says `"null"` was cut short.
pub(super) fn sse_chunks<T>(
    api: Api,
    response: reqwest::Response,
    key: crate::Secret,
    idle: std::time::Duration,
) -> impl Stream<Item = Result<T>> + Send
where
    T: serde::de::DeserializeOwned + Send + 'static,
{
    struct State {
        body: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
        parser: crate::sse::Parser,
        queue: std::collections::VecDeque<crate::sse::Event>,
        eof: bool,
        done: bool,
        /// When the last event (or field of one) arrived.
        progress: tokio::time::Instant,
        /// A native chunk said why generation stopped.
        finished: bool,
    }
    let state = State {
        body: Box::pin(response.bytes_stream()),
        parser: crate::sse::Parser::default(),
        queue: Default::default(),
        eof: false,
        done: false,
        progress: tokio::time::Instant::now(),
        finished: false,
    };
    futures_util::stream::unfold(state, move |mut st| {
        let key = key.clone();
        async move {
            loop {
                if let Some(event) = st.queue.pop_front() {
                    match decode_event::<T>(api, &event, &key) {
                        Decoded::Chunk(chunk) => {
                            st.finished |= api == Api::Native && native_finished(&event.data);
                            return Some((Ok(chunk), st));
                        }
                        Decoded::Skip => continue,
                        Decoded::End => return None,
                        Decoded::Fail(e) => {
                            st.queue.clear();
                            st.done = true;
                            return Some((Err(e), st));
                        }
                    }
                }
                if st.done {
                    return None;
                }
                if st.eof {
                    st.done = true;
                    // A compatible-mode stream ends with `data: [DONE]` (which returns above);
                    // one that just stops was cut short, and its text is incomplete.
                    let cut = match api {
                        Api::Compatible => "the event stream ended before [DONE]",
                        Api::Native if !st.finished => {
                            "the event stream ended before its finish reason"
                        }
                        Api::Native => return None,
                    };
                    return Some((Err(Error::decode(Some(200), cut, &[], None)), st));
                }
                let next = tokio::time::timeout_at(st.progress + idle, st.body.next()).await;
                let Ok(next) = next else {
                    st.done = true;
                    let quiet = Error::DeadlineExceeded {
                        what: "waiting for the stream's next event",
                        limit: idle,
                    };
                    return Some((Err(quiet), st));
                };
                match next {
                    Some(Ok(bytes)) => match st.parser.feed(&bytes) {
                        Ok(events) => {
                            if st.parser.progressed() {
                                st.progress = tokio::time::Instant::now();
                            }
                            st.queue.extend(events);
                        }
                        Err(crate::sse::Malformed(why)) => {
                            st.done = true;
                            return Some((
                                Err(Error::decode(
                                    Some(200),
                                    format!("malformed event stream: {why}"),
                                    &[],
                                    None,
                                )),
                                st,
                            ));
                        }
                    },
                    Some(Err(e)) => {
                        st.done = true;
                        return Some((Err(Error::from_reqwest(e)), st));
                    }
                    None => {
                        st.eof = true;
                        match st.parser.finish() {
                            Ok(last) => st.queue.extend(last),
                            Err(crate::sse::Malformed(why)) => {
                                st.done = true;
                                let broken = Error::decode(
                                    Some(200),
                                    format!("malformed event stream: {why}"),
                                    &[],
                                    None,
                                );
                                return Some((Err(broken), st));
                            }
                        }
                    }
                }
            }
        }
    })
}

pub(super) enum Decoded<T> {
    Chunk(T),
    Skip,
    End,
    Fail(Error),
}

pub(super) fn decode_event<T: serde::de::DeserializeOwned>(
    api: Api,
    event: &crate::sse::Event,
    key: &crate::Secret,
) -> Decoded<T> {
    let data = event.data.trim();
    if data.is_empty() {
        return Decoded::Skip;
    }
    if api == Api::Compatible && data == "[DONE]" {
        return Decoded::End;
    }
    let failed = event.event.as_deref() == Some("error")
        || event.http_status.is_some_and(|s| s >= 400)
        || (api == Api::Compatible
            && data.starts_with('{')
            && data.contains("\"error\"")
            && is_error_chunk(data));
    if failed {
        let status = event.http_status.filter(|s| *s >= 400).unwrap_or(500);
        let headers = reqwest::header::HeaderMap::new();
        return Decoded::Fail(from_response(
            api.service(),
            status,
            &headers,
            data.as_bytes(),
            false,
            &[key],
        ));
    }
    match serde_json::from_str::<T>(data) {
        Ok(chunk) => Decoded::Chunk(chunk),
        Err(e) => Decoded::Fail(Error::decode_hiding(
            &[key],
            Some(200),
            format!("stream chunk: {e}"),
            data.as_bytes(),
            None,
        )),
    }
}

pub(super) fn is_error_chunk(data: &str) -> bool {
    serde_json::from_str::<Value>(data).is_ok_and(|v| v.get("error").is_some_and(Value::is_object))
}

/// Whether a native chunk says why generation stopped: `output.finish_reason` (text format) or
/// a choice's, set and not the string `"null"` the stream carries until its last event.
fn native_finished(data: &str) -> bool {
    let Ok(chunk) = serde_json::from_str::<Value>(data) else {
        return false;
    };
    let Some(output) = chunk.get("output") else {
        return false;
    };
    let stopped = |v: &Value| v.as_str().is_some_and(|r| !r.is_empty() && r != "null");
    output.get("finish_reason").is_some_and(stopped)
        || output
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(|choices| {
                choices
                    .iter()
                    .any(|c| c.get("finish_reason").is_some_and(stopped))
            })
}
