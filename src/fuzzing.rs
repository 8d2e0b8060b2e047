//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not a stable API). Each one
//! feeds arbitrary bytes to a parser that reads what a server or a proxy sends, and must return
//! without panicking whatever the bytes are.

use crate::error::{Service, from_response};

/// An error body in each wire format, at an arbitrary status.
pub fn error_body(status: u16, body: &[u8]) {
    let headers = reqwest::header::HeaderMap::new();
    let key = crate::Secret::new("sk-fuzzing-key-0123456789");
    for service in [Service::Native, Service::Compatible, Service::Oss] {
        let error = from_response(service, status, &headers, body, false, &[&key]);
        // Every accessor must work on whatever came out.
        let _ = (
            error.status(),
            error.code(),
            error.message(),
            error.request_id(),
        );
        let _ = (
            error.is_retryable(),
            error.retry_after(),
            error.to_string(),
            format!("{error:?}"),
        );
    }
}

/// An event stream cut into chunks at the given points.
pub fn event_stream(bytes: &[u8], cuts: &[u8]) {
    let mut parser = crate::sse::Parser::default();
    let mut rest = bytes;
    for cut in cuts {
        let at = usize::from(*cut).min(rest.len());
        let (chunk, tail) = rest.split_at(at);
        if parser.feed(chunk).is_err() {
            return;
        }
        rest = tail;
    }
    let _ = parser.feed(rest);
    let _ = parser.finish();
}

/// A credential answer, decoded and checked as the upload path does.
pub fn credential(body: &[u8]) {
    if let Ok(response) = serde_json::from_slice::<crate::api::types::UploadPolicyResponse>(body) {
        let _ = crate::upload::check_credential(response.data);
    }
}
