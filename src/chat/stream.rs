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
pub(super) fn sse_chunks<T>(
    api: Api,
    response: reqwest::Response,
    key: crate::Secret,
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
    }
    let state = State {
        body: Box::pin(response.bytes_stream()),
        parser: crate::sse::Parser::default(),
        queue: Default::default(),
        eof: false,
        done: false,
    };
    futures_util::stream::unfold(state, move |mut st| {
        let key = key.clone();
        async move {
            loop {
                if let Some(event) = st.queue.pop_front() {
                    match decode_event::<T>(api, &event, &key) {
                        Decoded::Chunk(chunk) => return Some((Ok(chunk), st)),
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
                    if api == Api::Compatible {
                        let cut = Error::decode(
                            Some(200),
                            "the event stream ended before [DONE]",
                            &[],
                            None,
                        );
                        return Some((Err(cut), st));
                    }
                    return None;
                }
                match st.body.next().await {
                    Some(Ok(bytes)) => match st.parser.feed(&bytes) {
                        Ok(events) => st.queue.extend(events),
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
                        st.queue.extend(st.parser.finish());
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
