//! `data:` URIs: their media type, and their bytes decoded (RFC 2397, base64 only: what every
//! client that inlines media sends, and what the service documents).

use base64::Engine;

use crate::{Error, Result};

/// Whether a string is a `data:` URI, in any case.
pub(crate) fn is_data_uri(s: &str) -> bool {
    s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:"))
}

/// A `data:` URI's media type and decoded bytes. One that is not base64, or whose base64 does
/// not decode, is an [`Error::InvalidRequest`] that describes it without quoting it (it may be
/// megabytes long, and is somebody's content).
pub(crate) fn decode(uri: &str) -> Result<(String, Vec<u8>)> {
    let rest = uri.get(5..).unwrap_or_default();
    let bad = |why: String| {
        Error::InvalidRequest(format!(
            "a data: URI of {} bytes in the request {why}; nothing was uploaded",
            uri.len()
        ))
    };
    let Some((meta, payload)) = rest.split_once(',') else {
        return Err(bad("has no `,` before its data".to_owned()));
    };
    let mut params = meta.split(';');
    let media_type = params.next().unwrap_or_default().trim();
    let media_type = if media_type.is_empty() {
        "application/octet-stream"
    } else {
        media_type
    };
    if !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return Err(bad(format!("({media_type}) is not base64")));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|e| bad(format!("({media_type}) is not valid base64: {e}")))?;
    if bytes.is_empty() {
        return Err(bad(format!("({media_type}) is empty")));
    }
    Ok((media_type.to_owned(), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_data_uris_decode_and_the_rest_is_a_typed_error() {
        assert_eq!(
            decode("data:image/png;base64,iVBORw==").ok(),
            Some(("image/png".to_owned(), b"\x89PNG".to_vec()))
        );
        assert_eq!(
            decode("DATA:;BASE64,AAEC").ok(),
            Some(("application/octet-stream".to_owned(), vec![0, 1, 2]))
        );
        for bad in [
            "data:image/png;base64,not base64!",
            "data:image/png,plain",
            "data:image/png;base64",
            "data:image/png;base64,",
        ] {
            let err = decode(bad).expect_err(bad);
            assert!(
                matches!(&err, Error::InvalidRequest(m) if !m.contains(bad)),
                "{err:?}"
            );
        }
        assert!(is_data_uri("Data:x") && !is_data_uri("dat") && !is_data_uri("https://x"));
    }
}
