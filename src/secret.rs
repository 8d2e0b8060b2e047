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
/// echoed the key into. Secrets shorter than 8 bytes are not searched for: replacing a common
/// short string would garble messages, and real keys are far longer.
pub(crate) fn scrub(text: &str, secret: &Secret) -> String {
    let needle = secret.expose();
    if needle.len() < 8 {
        return text.to_owned();
    }
    text.replace(needle, "[REDACTED]")
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
    }
}
