//! Reading an error answer in the three wire formats: native JSON, compatible-mode JSON and
//! OSS XML; a body that is none of them is described, with an excerpt, never trusted.

use std::time::Duration;

use super::{ApiError, ApiErrorFields, Detail, ERROR_BODY_LIMIT, EXCERPT_LIMIT, Error, Service};
use crate::Secret;

/// Turns an error response into an [`Error`]. `body` is at most [`ERROR_BODY_LIMIT`] bytes;
/// `truncated` says whether more was sent. `secrets` (the key the request was sent with, and
/// for a form POST the credential's policy, signature and access key id) are scrubbed from
/// every field kept, and control characters escaped, by the constructors.
pub(crate) fn from_response(
    service: Service,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    truncated: bool,
    secrets: &[&Secret],
) -> Error {
    let header_request_id = header_str(headers, "x-oss-request-id")
        .or_else(|| header_str(headers, "x-request-id"))
        .map(str::to_owned);
    let parsed = match service {
        Service::Oss => parse_oss_xml(body),
        Service::Native | Service::Compatible => parse_json(body),
    };
    let Some(fields) = parsed.filter(|_| !truncated) else {
        let reason = if truncated {
            format!("error body larger than {ERROR_BODY_LIMIT} bytes")
        } else if body.is_empty() {
            "empty error body".to_owned()
        } else {
            match service {
                Service::Oss => "error body is not OSS error XML".to_owned(),
                _ => "error body is not a DashScope error JSON".to_owned(),
            }
        };
        // A gateway's HTML page at 401, 403 or 429 still says what failed: the status alone
        // decides the variant (a wrong key, a refusal, a rate limit), so callers and the CLI's
        // exit code see the same kind of error as with a readable body. Other statuses stay
        // `Decode`, whose status tells the retry classifier whether to try again.
        if matches!(status, 401 | 403 | 429) {
            let excerpt = crate::secret::clean(&excerpt(body), secrets);
            return Error::from(ApiError::new(
                ApiErrorFields {
                    status,
                    service,
                    code: None,
                    message: format!("{reason}; body starts {excerpt:?}"),
                    request_id: header_request_id,
                    retry_after: header_str(headers, "retry-after").and_then(parse_retry_after),
                    detail: Detail::default(),
                },
                secrets,
            ));
        }
        return Error::decode_hiding(secrets, Some(status), reason, body, header_request_id);
    };
    Error::from(ApiError::new(
        ApiErrorFields {
            status,
            service,
            code: fields.code.filter(|c| !c.is_empty()),
            message: fields.message,
            request_id: fields.request_id.or(header_request_id),
            retry_after: header_str(headers, "retry-after").and_then(parse_retry_after),
            detail: fields.detail,
        },
        secrets,
    ))
}

fn header_str<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// `Retry-After` in delta-seconds. The HTTP-date form is not used by DashScope and is ignored.
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// The parts of an error body, whatever its format.
#[derive(Default)]
struct Fields {
    code: Option<String>,
    message: String,
    request_id: Option<String>,
    detail: Detail,
}

/// The compatible API's error answer (the spec's `CompatibleErrorResponse`). Read with these
/// private shapes, not the generated types, so that the error module stays a leaf the
/// generated client may depend on; tests/errors.rs feeds both shapes through the table.
#[derive(serde::Deserialize)]
struct CompatibleBody {
    error: Option<CompatibleInner>,
    request_id: Option<String>,
    id: Option<String>,
}

#[derive(serde::Deserialize)]
struct CompatibleInner {
    message: Option<String>,
    #[serde(rename = "type")]
    type_: Option<String>,
    param: Option<String>,
    code: Option<String>,
}

/// The native API's error answer (the spec's `NativeError`).
#[derive(serde::Deserialize)]
struct NativeBody {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
}

/// Parses either JSON error shape: both APIs have been seen answering in the other's format
/// (a gateway's 401 on the compatible endpoint is native-shaped), so both are accepted anywhere.
fn parse_json(body: &[u8]) -> Option<Fields> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if value.get("error").is_some_and(serde_json::Value::is_object) {
        let compat: CompatibleBody = serde_json::from_value(value).ok()?;
        let inner = compat.error?;
        return Some(Fields {
            code: inner.code,
            message: inner.message.unwrap_or_default(),
            request_id: compat.request_id.or(compat.id),
            detail: Detail {
                error_type: inner.type_,
                param: inner.param,
                ec: None,
            },
        });
    }
    let native: NativeBody = serde_json::from_value(value).ok()?;
    if native.code.is_none() && native.message.is_none() {
        return None;
    }
    Some(Fields {
        code: native.code,
        message: native.message.unwrap_or_default(),
        request_id: native.request_id,
        detail: Detail::default(),
    })
}

/// Parses an OSS `<Error>` document. Only the direct children of `<Error>` are read; an
/// element that is not well-formed makes the whole body unparsable.
fn parse_oss_xml(body: &[u8]) -> Option<Fields> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut fields = Fields::default();
    let mut depth = 0usize;
    let mut in_error = false;
    let mut current: Option<Vec<u8>> = None;
    let mut text = String::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(start) => {
                depth += 1;
                if depth == 1 {
                    if start.name().as_ref() != b"Error" {
                        return None;
                    }
                    in_error = true;
                } else if depth == 2 {
                    current = Some(start.name().as_ref().to_vec());
                    text.clear();
                }
            }
            Event::Text(t) if depth == 2 => text.push_str(&t.decode().ok()?),
            Event::GeneralRef(r) if depth == 2 => {
                let name = r.decode().ok()?;
                let resolved = match name.as_ref() {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    "apos" => '\'',
                    // A character reference (`&#27;`, `&#x1b;`): read, then escaped like any
                    // control character when the error is built.
                    number => {
                        let number = number.strip_prefix('#')?;
                        let code = match number.strip_prefix(['x', 'X']) {
                            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                            None => number.parse().ok()?,
                        };
                        char::from_u32(code)?
                    }
                };
                text.push(resolved);
            }
            Event::CData(c) if depth == 2 => text.push_str(std::str::from_utf8(&c).ok()?),
            Event::End(_) => {
                if depth == 2 {
                    let value = std::mem::take(&mut text);
                    match current.take().as_deref() {
                        Some(b"Code") => fields.code = Some(value),
                        Some(b"Message") => fields.message = value,
                        Some(b"RequestId") => fields.request_id = Some(value),
                        Some(b"EC") => fields.detail.ec = Some(value),
                        _ => {}
                    }
                }
                depth = depth.checked_sub(1)?;
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    (in_error && depth == 0 && fields.code.is_some()).then_some(fields)
}

/// The start of a body, for people to read: lossy UTF-8, line breaks and tabs as spaces (an
/// HTML page reads better so); the other control characters are escaped by the constructor.
pub(super) fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(EXCERPT_LIMIT)];
    let text = String::from_utf8_lossy(cut);
    let mut out: String = text
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    if body.len() > EXCERPT_LIMIT {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oss_xml_rejects_other_documents() {
        assert!(parse_oss_xml(b"<html><body>502</body></html>").is_none());
        assert!(parse_oss_xml(b"<Error><Code>X</Code>").is_none());
        assert!(parse_oss_xml(b"").is_none());
        let f =
            parse_oss_xml(b"<Error><Code>A&amp;B</Code><Message><![CDATA[m<]]></Message></Error>");
        let f = f.expect("well-formed error");
        assert_eq!(f.code.as_deref(), Some("A&B"));
        assert_eq!(f.message, "m<");
    }

    #[test]
    fn excerpt_is_bounded_and_printable() {
        let body = vec![b'\n'; 10 * 1024 * 1024];
        let e = excerpt(&body);
        assert!(e.chars().count() <= EXCERPT_LIMIT + 1);
        assert!(!e.contains('\n'));
    }
}
