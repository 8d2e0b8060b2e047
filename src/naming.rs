//! Object names and content types: what an uploaded file is called and how it is labelled.

/// An object name made safe: what follows the last `/` only; letters, digits, `.`, `-`, `_`
/// kept (any script), everything else (a backslash too: on Unix it is part of a file's name)
/// `_`; no leading dots; the extension kept; at most `max_bytes` bytes.
pub(crate) fn safe_name(name: &str, max_bytes: usize) -> String {
    let last = name.rsplit('/').next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_owned();
    let (stem, ext) = match split_ext(&cleaned) {
        (stem, ext) if ext.len() <= 16 => (stem, ext),
        _ => (cleaned.as_str(), ""),
    };
    let stem = if stem.is_empty() { "file" } else { stem };
    let room = max_bytes.saturating_sub(ext.len()).max(1);
    let mut cut = stem.len().min(room);
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ext}", &stem[..cut])
}

/// (`cat`, `.png`) for `cat.png`; (`archive.tar`, `.gz`) for `archive.tar.gz`; no extension → "".
pub(crate) fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// Whether a local file of this name and size is sent inline as a `data:` URI by a client with
/// [`Config::inline_below`](crate::Config::inline_below) set to `below`: an image or audio file
/// smaller than `below` whose encoding stays within the service's 10 MiB per `data:` URI.
pub fn inlines(name: &str, size: u64, below: u64) -> bool {
    let mime = content_type(name);
    let encoded = "data:;base64,".len() as u64 + mime.len() as u64 + size.div_ceil(3) * 4;
    size < below
        && matches!(mime.split('/').next(), Some("image" | "audio"))
        && encoded <= crate::wire::DATA_URI_LIMIT as u64
}

/// The MIME type for a file name's extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = split_ext(name)
        .1
        .trim_start_matches('.')
        .to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" | "jpe" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "heic" => "image/heic",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" | "oga" => "audio/ogg",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "amr" => "audio/amr",
        "opus" => "audio/opus",
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "avi" => "video/x-msvideo",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        "flv" => "video/x-flv",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}

/// The extension a file of this MIME type is named with, so that the storage labels an
/// upload of bytes without a name (a decoded `data:` URI, a fetched URL) as what it is: the
/// inverse of [`content_type`] (`bin` for a type it does not know).
pub(crate) fn extension_for(mime: &str) -> &'static str {
    let mime = mime
        .split(';')
        .next()
        .unwrap_or(mime)
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/bmp" => "bmp",
        "image/tiff" => "tiff",
        "image/heic" => "heic",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/flac" | "audio/x-flac" => "flac",
        "audio/ogg" => "ogg",
        "audio/mp4" | "audio/x-m4a" | "audio/m4a" => "m4a",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "audio/opus" => "opus",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/x-msvideo" => "avi",
        "video/x-matroska" => "mkv",
        "video/webm" => "webm",
        "video/x-flv" => "flv",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe_and_keep_their_extension() {
        for (raw, want) in [
            ("cat.png", "cat.png"),
            ("my cat (1).PNG", "my_cat__1_.PNG"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\me\\photo.jpg", "C__Users_me_photo.jpg"),
            ("😺.png", "_.png"),
            ("图片.jpg", "图片.jpg"),
            (".hidden", "hidden"),
            ("..", "file"),
            ("", "file"),
            (
                "a.verylongextensionthatisnotone",
                "a.verylongextensionthatisnotone",
            ),
        ] {
            assert_eq!(safe_name(raw, 200), want, "{raw:?}");
        }
        let long = format!("{}.png", "é".repeat(600));
        let safe = safe_name(&long, 100);
        assert!(safe.len() <= 100 && safe.ends_with(".png"), "{safe}");
    }

    #[test]
    fn extensions_by_content_type_name_what_content_type_reads_back() {
        for mime in [
            "image/png",
            "image/jpeg",
            "audio/mpeg",
            "audio/wav",
            "video/mp4",
        ] {
            assert_eq!(content_type(&format!("x.{}", extension_for(mime))), mime);
        }
        assert_eq!(extension_for("IMAGE/PNG; charset=x"), "png");
        assert_eq!(extension_for("application/x-unknown"), "bin");
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("a.PNG"), "image/png");
        assert_eq!(content_type("clip.mp4"), "video/mp4");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
