//! The rules every DashScope request body follows, whatever its operation: which JSON strings
//! are media (and so may be local files to upload first, or `oss://` URLs that need
//! [`OSS_RESOLVE_HEADER`]), and how people write a medium's location. A leaf: it knows JSON and
//! paths, not clients, so that the client, the chat helpers and the uploads all depend on it and
//! not on each other.
//!
//! One generic rule, no list of operations: a string is a medium when the key that holds it (or
//! holds the array it is in) names a medium — `image`, `audio`, `video`, `images`, `url`, `data`,
//! `ref_img`, or any key ending in `_url`, `_urls` or `_img`. So `image_url.url`,
//! `input_audio.data`, native `{"image": …}`, a video's frame list, and the URL fields of the task
//! APIs (`file_urls`, `base_image_url`, `first_frame_url`, …) are media; `text`, `content` as a
//! string, `prompt` and everything else are not. Tool definitions, tool calls and response
//! formats hold JSON Schemas and arguments, never media: they are not searched.

use std::path::PathBuf;

use serde_json::Value;

/// The header that lets the service read `oss://` URLs.
pub const OSS_RESOLVE_HEADER: &str = "X-DashScope-OssResourceResolve";

/// How long an uploaded file stays readable by the model.
pub const OBJECT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(48 * 3600);

/// The header a task submit needs (`enable`); without it the service refuses the call.
pub const ASYNC_HEADER: &str = "X-DashScope-Async";

/// Whether a key's string value (or array of strings) is a medium's location.
pub(crate) fn is_media_key(key: &str) -> bool {
    matches!(
        key,
        "image" | "audio" | "video" | "images" | "url" | "data" | "ref_img"
    ) || key.ends_with("_url")
        || key.ends_with("_urls")
        || key.ends_with("_img")
}

/// Keys whose values are never searched for media: schemas, arguments, answers.
fn is_opaque_key(key: &str) -> bool {
    matches!(
        key,
        "tools" | "tool_calls" | "functions" | "response_format" | "tool_choice" | "metadata"
    )
}

/// Calls `f` on every media string of a request body.
pub(crate) fn visit_media(body: &mut Value, f: &mut dyn FnMut(&mut String)) {
    walk(body, "", &mut |_, s| f(s));
}

/// Where a media string sits: the key that holds it (or its array) and the key of the object
/// around that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place<'a> {
    pub key: &'a str,
    pub parent: &'a str,
}

/// [`visit_media`], telling `f` where each string sits.
pub(crate) fn visit_media_at(body: &mut Value, f: &mut dyn FnMut(Place<'_>, &mut String)) {
    walk(body, "", f);
}

fn walk(body: &mut Value, parent: &str, f: &mut dyn FnMut(Place<'_>, &mut String)) {
    match body {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if is_opaque_key(key) {
                    continue;
                }
                let place = Place { key, parent };
                if is_media_key(key) {
                    match value {
                        Value::String(s) => {
                            f(place, s);
                            continue;
                        }
                        Value::Array(items) => {
                            // A list of locations (frames, files); objects in it are searched.
                            for item in items {
                                match item {
                                    Value::String(s) => f(place, s),
                                    other => walk(other, key, f),
                                }
                            }
                            continue;
                        }
                        _ => {}
                    }
                }
                walk(value, key, f);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, parent, f);
            }
        }
        _ => {}
    }
}

/// What a `data:` URI may carry at a place, if the API reading it accepts one there: an image
/// at compatible `image_url.url` or native `image`, audio at compatible `input_audio.data` or
/// native `audio` (Qwen-VL, Qwen-Omni and Qwen-ASR documentation, see spec/SOURCES.md). The
/// task APIs' URL fields (`file_urls`, `base_image_url`, …) take none.
pub(crate) fn inline_kind(place: Place<'_>) -> Option<&'static str> {
    match (place.parent, place.key) {
        ("image_url", "url") | (_, "image") => Some("image"),
        ("input_audio", "data") | (_, "audio") => Some("audio"),
        _ => None,
    }
}

/// The service's limit on one `data:` URI (`Exceeded limit on max bytes per data-uri item :
/// 10485760`).
pub const DATA_URI_LIMIT: usize = 10 * 1024 * 1024;

/// `oss://…`, in any case.
pub(crate) fn is_oss_url(s: &str) -> bool {
    s.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("oss://"))
}

/// Where a medium is: a URL the service reads (`https://`, `oss://`, `data:`) or a local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// Sent as it is.
    Url(String),
    /// Uploaded for the request's model, then sent as its `oss://` URL.
    Path(PathBuf),
}

impl Media {
    /// Reads a string the way people write media: `file://` URIs (`file:///C:/x.png` included)
    /// are paths; `data:` URIs and anything with a URL scheme (`https://`, `oss://`,
    /// `fileid://`, …) are URLs; everything else is a path.
    pub fn parse(s: &str) -> Media {
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("file://") {
            return Media::Path(file_uri_path(s));
        }
        if lower.starts_with("data:") || has_scheme(s) {
            return Media::Url(s.to_owned());
        }
        Media::Path(PathBuf::from(s))
    }

    /// The path of a local file (a URL as if it were one).
    pub(crate) fn as_path(&self) -> PathBuf {
        match self {
            Media::Url(u) => PathBuf::from(u),
            Media::Path(p) => p.clone(),
        }
    }

    /// The location as written in a request (a path as its display form).
    pub fn as_str(&self) -> String {
        match self {
            Media::Url(u) => u.clone(),
            Media::Path(p) => p.display().to_string(),
        }
    }
}

impl From<&str> for Media {
    fn from(s: &str) -> Self {
        Media::parse(s)
    }
}

impl From<String> for Media {
    fn from(s: String) -> Self {
        Media::parse(&s)
    }
}

impl From<PathBuf> for Media {
    fn from(p: PathBuf) -> Self {
        Media::Path(p)
    }
}

impl From<&std::path::Path> for Media {
    fn from(p: &std::path::Path) -> Self {
        Media::Path(p.to_path_buf())
    }
}

/// `scheme://…` with an RFC 3986 scheme of two letters or more (so that `C:\x` and `C:/x`,
/// Windows drives, stay paths).
fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once("://") else {
        return false;
    };
    scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `file:///home/me/a%20b.png` → `/home/me/a b.png`; `file:///C:/x.png` → `C:/x.png`;
/// `file://localhost/x` → `/x`.
fn file_uri_path(uri: &str) -> PathBuf {
    let rest = &uri["file://".len()..];
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let decoded = percent_encoding::percent_decode_str(rest).decode_utf8_lossy();
    let b = decoded.as_bytes();
    // A Windows drive: `/C:/…` or `/C|/…`.
    if b.len() >= 3 && b[0] == b'/' && b[1].is_ascii_alphabetic() && (b[2] == b':' || b[2] == b'|')
    {
        return PathBuf::from(format!("{}:{}", &decoded[1..2], &decoded[3..]));
    }
    PathBuf::from(decoded.into_owned())
}

/// The `format` of an `input_audio` part: a `data:` URI's media subtype, or the file or URL's
/// extension.
pub(crate) fn audio_format(location: &str) -> Option<&'static str> {
    let ext = match location.get(..5) {
        Some(scheme) if scheme.eq_ignore_ascii_case("data:") => {
            // data:audio/wav;base64,… → wav (x-wav and mpeg spelled as files are)
            let media_type = location[5..].split([';', ',']).next().unwrap_or_default();
            let subtype = media_type.rsplit('/').next().unwrap_or_default();
            let subtype = subtype.to_ascii_lowercase();
            match subtype.trim_start_matches("x-") {
                "mpeg" => "mp3".to_owned(),
                "mp4" => "m4a".to_owned(),
                other => other.to_owned(),
            }
        }
        _ => {
            let path = location.split(['?', '#']).next().unwrap_or(location);
            path.rsplit_once('.')?.1.to_ascii_lowercase()
        }
    };
    Some(match ext.as_str() {
        "mp3" => "mp3",
        "wav" => "wav",
        "m4a" => "m4a",
        "aac" => "aac",
        "amr" => "amr",
        "flac" => "flac",
        "ogg" | "oga" => "ogg",
        "opus" => "opus",
        "pcm" => "pcm",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn media_strings_are_read_as_people_write_them() {
        assert_eq!(
            Media::parse("https://x/cat.png"),
            Media::Url("https://x/cat.png".into())
        );
        assert_eq!(
            Media::parse("OSS://bucket/k"),
            Media::Url("OSS://bucket/k".into())
        );
        assert_eq!(
            Media::parse("data:image/png;base64,AAAA"),
            Media::Url("data:image/png;base64,AAAA".into())
        );
        assert_eq!(Media::parse("cat.png"), Media::Path("cat.png".into()));
        assert_eq!(
            Media::parse("file:///home/me/a%20b.png"),
            Media::Path("/home/me/a b.png".into())
        );
        assert_eq!(
            Media::parse("file:///C:/Users/me/cat.png"),
            Media::Path("C:/Users/me/cat.png".into())
        );
        assert_eq!(
            Media::parse("file://localhost/tmp/x.png"),
            Media::Path("/tmp/x.png".into())
        );
        assert_eq!(
            Media::parse("C:\\Users\\me\\cat.png"),
            Media::Path("C:\\Users\\me\\cat.png".into())
        );
        assert_eq!(Media::parse("C:/x.png"), Media::Path("C:/x.png".into()));
        // Other schemes are somebody's URLs, never local paths.
        for url in ["fileid://file-abc", "s3://bucket/k.png", "HTTPS://x/y"] {
            assert_eq!(Media::parse(url), Media::Url(url.into()));
        }
    }

    fn media_of(body: Value) -> Vec<String> {
        let mut body = body;
        let mut found = Vec::new();
        visit_media(&mut body, &mut |s| found.push(s.clone()));
        // Object keys may be visited in any order.
        found.sort();
        found
    }

    fn sorted<const N: usize>(items: [&str; N]) -> Vec<String> {
        let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn one_rule_finds_the_media_of_every_api() {
        let compatible = json!({"model": "m", "messages": [
            {"role": "system", "content": "see oss://a/not-media.png"},
            {"role": "user", "content": [
                {"type": "text", "text": "oss://a/text.png"},
                {"type": "image_url", "image_url": {"url": "oss://a/1.png"}, "max_pixels": 100},
                {"type": "input_audio", "input_audio": {"data": "a.mp3", "format": "mp3"}},
                {"type": "video", "video": ["f1.jpg", "https://x/f2.jpg"]},
                {"type": "video_url", "video_url": {"url": "clip.mp4"}}]}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters":
                {"type": "object", "properties": {"url": {"type": "string", "default": "x.png"}}}}}]});
        assert_eq!(
            media_of(compatible),
            sorted([
                "oss://a/1.png",
                "a.mp3",
                "f1.jpg",
                "https://x/f2.jpg",
                "clip.mp4"
            ])
        );
        let native = json!({"model": "m", "input": {"messages": [{"role": "user", "content": [
            {"text": "oss://a/text"}, {"image": "cat.png"}, {"audio": "oss://a/b.mp3"},
            {"video": ["1.jpg", "2.jpg"], "fps": 2}]}]}});
        assert_eq!(
            media_of(native),
            sorted(["cat.png", "oss://a/b.mp3", "1.jpg", "2.jpg"])
        );
        // The task APIs' fields, with no list of operations.
        let tasks = json!({"model": "m", "input": {
            "file_urls": ["a.wav", "b.wav"], "base_image_url": "base.png", "mask_image_url": "m.png",
            "ref_img": "r.png", "first_frame_url": "f.png", "prompt": "draw cat.png",
            "media": [{"type": "image", "url": "x.png"}]}});
        assert_eq!(
            media_of(tasks),
            sorted([
                "a.wav", "b.wav", "base.png", "m.png", "r.png", "f.png", "x.png"
            ])
        );
    }

    #[test]
    fn data_uris_go_only_where_the_apis_take_them() {
        let mut body = json!({"model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "a.png"}},
                {"type": "input_audio", "input_audio": {"data": "b.mp3"}},
                {"type": "video_url", "video_url": {"url": "c.mp4"}},
                {"type": "video", "video": ["d.jpg"]}]}],
            "input": {"messages": [{"content": [{"image": "e.png"}, {"audio": "f.wav"}]}],
                "base_image_url": "g.png", "file_urls": ["h.wav"],
                "media": [{"type": "first_frame", "url": "i.png"}]}});
        let mut kinds = Vec::new();
        visit_media_at(&mut body, &mut |place, s| {
            kinds.push((s.clone(), inline_kind(place)))
        });
        kinds.sort();
        assert_eq!(
            kinds,
            vec![
                ("a.png".to_owned(), Some("image")),
                ("b.mp3".to_owned(), Some("audio")),
                ("c.mp4".to_owned(), None),
                ("d.jpg".to_owned(), None),
                ("e.png".to_owned(), Some("image")),
                ("f.wav".to_owned(), Some("audio")),
                ("g.png".to_owned(), None),
                ("h.wav".to_owned(), None),
                ("i.png".to_owned(), None),
            ]
        );
    }

    #[test]
    fn audio_formats_from_extensions_and_data_uris() {
        assert_eq!(audio_format("a.MP3"), Some("mp3"));
        assert_eq!(audio_format("https://x/a.wav?sig=1"), Some("wav"));
        assert_eq!(audio_format("data:audio/wav;base64,UklG"), Some("wav"));
        assert_eq!(audio_format("data:audio/x-wav;base64,UklG"), Some("wav"));
        assert_eq!(audio_format("data:audio/mpeg;base64,SUQz"), Some("mp3"));
        assert_eq!(audio_format("data:audio/unknown;base64,AA"), None);
        assert_eq!(audio_format("noext"), None);
    }
}
