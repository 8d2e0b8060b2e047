//! Values that must never be printed: the API key and the secret parts of an upload credential.

use std::fmt;

/// A string that is a secret: an API key, a policy, a policy signature, an access key id.
///
/// Its `Debug` prints `Secret("[REDACTED]")`; it has no `Display`. The value is reachable only
/// through [`Secret::expose`], so every place that sends it over the wire is easy to find.
#[derive(Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself. Call it only to put the secret on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"[REDACTED]\")")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl schemars::JsonSchema for Secret {
    fn schema_name() -> String {
        "Secret".to_owned()
    }

    fn json_schema(generator: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(generator)
    }
}

/// Replaces every occurrence of `secret` in `text`, for messages a server or a proxy may have
/// echoed the key into: the secret as it is, percent-encoded (a policy or signature echoed in
/// a URL: base64's `+`, `/` and `=`), and JSON-escaped (`\/`). Secrets shorter than 8 bytes
/// are not searched for: replacing a common short string would garble messages, and real keys
/// are far longer.
pub(crate) fn scrub(text: &str, secret: &Secret) -> String {
    let needle = secret.expose();
    if needle.len() < 8 {
        return text.to_owned();
    }
    let encoded = |lower: bool| -> String {
        needle
            .bytes()
            .map(|b| match b {
                b if b.is_ascii_alphanumeric() => char::from(b).to_string(),
                b if lower => format!("%{b:02x}"),
                b => format!("%{b:02X}"),
            })
            .collect()
    };
    let mut out = text.replace(needle, REDACTED);
    for form in [encoded(false), encoded(true), needle.replace('/', "\\/")] {
        if form != needle && out.contains(&form) {
            out = out.replace(&form, REDACTED);
        }
    }
    out
}

const REDACTED: &str = "[REDACTED]";

/// The one cleaning of a text a server sent, done when an error is built, before it is kept:
/// every secret the request knew (the API key; for a form POST the credential's policy,
/// signature and access key id) replaced, then control characters escaped ([`printable`]).
pub(crate) fn clean(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        out = scrub(&out, secret);
    }
    match printable(&out) {
        std::borrow::Cow::Borrowed(_) => out,
        std::borrow::Cow::Owned(escaped) => escaped,
    }
}

/// A server's text made safe for a terminal: C0 and C1 controls, DEL, the Unicode line and
/// paragraph separators and the bidirectional overrides are escaped visibly (`\n`, `\r`,
/// `\t`, `\x1b`, `\u{202e}`), so that a message cannot clear the screen, move the cursor,
/// reorder what is shown or forge a line of its own. Line feeds are escaped too: one error is
/// one line (docs/decisions.md, "Server text in errors"). Backslashes are kept as sent.
pub(crate) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write;
    if !text.chars().any(unprintable) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unprintable(c) && u32::from(c) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if unprintable(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// A URL as errors and logs may show it: the scheme, host, port and path (they say where the
/// request went), any user name, password and fragment dropped, and every query value replaced
/// but those of [`SHOWN_QUERY`]. A presigned link carries its `Signature`, `OSSAccessKeyId` and
/// `security-token` in its query; the names are kept, for debugging, those values never.
pub(crate) fn redact_url(url: &reqwest::Url) -> reqwest::Url {
    let mut out = url.clone();
    let _ = out.set_username("");
    let _ = out.set_password(None);
    out.set_fragment(None);
    if let Some(query) = url.query() {
        let redacted: Vec<String> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if SHOWN_QUERY.contains(&name) => pair.to_owned(),
                Some((name, _)) => format!("{name}={REDACTED}"),
                None => REDACTED.to_owned(),
            })
            .collect();
        out.set_query(Some(&redacted.join("&")));
    }
    out
}

/// The query parameters whose values an error may show: those of the spec's operations (none
/// is a secret, and they say which call failed) and a presigned link's `Expires` (it tells an
/// expired link). Any other name, known or not, has its value redacted: a list of what is
/// harmless cannot miss a new kind of signature, a list of what is secret could.
const SHOWN_QUERY: &[&str] = &[
    "action",
    "model",
    "model_name",
    "page_no",
    "page_size",
    "start_time",
    "end_time",
    "status",
    "Expires",
];

/// [`redact_url`] of a URL given as text (a result link a server sent): a text that does not
/// parse is cut before its query and fragment, and its control characters escaped.
pub(crate) fn redact_url_text(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => redact_url(&parsed).to_string(),
        Err(_) => {
            let cut = url.split(['?', '#']).next().unwrap_or(url);
            printable(cut).into_owned()
        }
    }
}

/// A transport error with the URL it quotes redacted ([`redact_url`]): reqwest's `Display`
/// includes the request's URL, whose query may be a presigned link's credential.
pub(crate) fn redact_transport(mut error: reqwest::Error) -> reqwest::Error {
    if let Some(url) = error.url_mut() {
        *url = redact_url(url);
    }
    error
}

/// A body to quote in an error, unless it carries an upload credential (its policy, signature
/// or access key id), which is described instead.
pub(crate) fn withhold_credentials(body: &[u8]) -> &[u8] {
    let has = |field: &[u8]| body.windows(field.len()).any(|w| w == field);
    if has(b"\"signature\"") || has(b"\"oss_access_key_id\"") || has(b"\"policy\"") {
        b"[withheld: a credential]"
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new("sk-0123456789abcdef");
        assert_eq!(format!("{s:?}"), "Secret(\"[REDACTED]\")");
        assert_eq!(format!("{s:#?}"), "Secret(\"[REDACTED]\")");
        assert_eq!(s.expose(), "sk-0123456789abcdef");
    }

    #[test]
    fn scrub_replaces_echoed_keys() {
        let s = Secret::new("sk-0123456789abcdef");
        assert_eq!(
            scrub("Invalid key sk-0123456789abcdef given", &s),
            "Invalid key [REDACTED] given"
        );
        assert_eq!(scrub("abc", &Secret::new("abc")), "abc");
        let policy = Secret::new("eyJleHBp+cmF0/aW9uIjo=");
        assert_eq!(
            scrub(
                "a eyJleHBp+cmF0/aW9uIjo= b eyJleHBp%2BcmF0%2FaW9uIjo%3D c eyJleHBp%2bcmF0%2faW9uIjo%3d d eyJleHBp+cmF0\\/aW9uIjo=",
                &policy
            ),
            "a [REDACTED] b [REDACTED] c [REDACTED] d [REDACTED]"
        );
    }

    #[test]
    fn printable_escapes_what_a_terminal_would_act_on() {
        assert_eq!(printable("plain text, \\ kept"), "plain text, \\ kept");
        assert_eq!(
            printable("a\x1b[2J\rb\nc\td\u{7f}\u{9b}e\u{202e}f\u{2028}"),
            "a\\x1b[2J\\rb\\nc\\td\\x7f\\x9be\\u{202e}f\\u{2028}"
        );
        // Cleaning twice changes nothing more: errors rebuilt from errors are not garbled.
        let once = clean(
            "x\x1by sk-0123456789abcdef",
            &[&Secret::new("sk-0123456789abcdef")],
        );
        assert_eq!(once, "x\\x1by [REDACTED]");
        assert_eq!(clean(&once, &[]), once);
    }

    #[test]
    fn urls_keep_their_path_and_lose_their_query_values() {
        let url = reqwest::Url::parse(
            "https://u:p@bucket.oss.example/dir/a.png?Expires=1&OSSAccessKeyId=LTAIabc&Signature=c2ln%3D&security-token=t&flag#frag",
        )
        .expect("url");
        assert_eq!(
            redact_url(&url).as_str(),
            "https://bucket.oss.example/dir/a.png?Expires=1&OSSAccessKeyId=[REDACTED]&Signature=[REDACTED]&security-token=[REDACTED]&[REDACTED]"
        );
        assert_eq!(
            redact_url_text("not a url/x?Signature=abc\x1b"),
            "not a url/x"
        );
        assert_eq!(redact_url_text("nope\x1b[2J"), "nope\\x1b[2J");
    }
}
