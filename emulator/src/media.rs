//! What a file is, judged from its first bytes (never from its name), and how many tokens a
//! model would plausibly count for it.

use super::MediaKind;

/// Bytes of an object kept for sniffing.
pub(crate) const HEAD_LEN: usize = 64 * 1024;

/// The media kind and MIME type of a file, from its magic numbers.
pub(crate) fn sniff(head: &[u8]) -> Option<(MediaKind, &'static str)> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    use MediaKind::*;
    Some(if starts(b"\x89PNG\r\n\x1a\n") {
        (Image, "image/png")
    } else if starts(b"\xff\xd8\xff") {
        (Image, "image/jpeg")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        (Image, "image/gif")
    } else if starts(b"RIFF") && at(8, b"WEBP") {
        (Image, "image/webp")
    } else if starts(b"BM") && head.len() >= 26 {
        (Image, "image/bmp")
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        (Image, "image/tiff")
    } else if starts(b"RIFF") && at(8, b"WAVE") {
        (Audio, "audio/wav")
    } else if starts(b"RIFF") && at(8, b"AVI ") {
        (Video, "video/x-msvideo")
    } else if starts(b"ID3")
        || (head.len() >= 2 && head[0] == 0xff && head[1] & 0xe0 == 0xe0 && head[1] & 0x06 != 0)
    {
        (Audio, "audio/mpeg")
    } else if starts(b"fLaC") {
        (Audio, "audio/flac")
    } else if starts(b"OggS") {
        (Audio, "audio/ogg")
    } else if at(4, b"ftyp") {
        match head.get(8..12) {
            Some(b"M4A ") | Some(b"M4B ") => (Audio, "audio/mp4"),
            Some(b"qt  ") => (Video, "video/quicktime"),
            _ => (Video, "video/mp4"),
        }
    } else if starts(b"\x1a\x45\xdf\xa3") {
        (Video, "video/webm")
    } else {
        return None;
    })
}

/// Width and height of a PNG or JPEG, when the head says.
pub(crate) fn dimensions(head: &[u8]) -> Option<(u32, u32)> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") && head.get(12..16) == Some(b"IHDR") {
        let w = u32::from_be_bytes(head.get(16..20)?.try_into().ok()?);
        let h = u32::from_be_bytes(head.get(20..24)?.try_into().ok()?);
        return Some((w, h));
    }
    if head.starts_with(b"\xff\xd8") {
        // Walk the JPEG segments to the first start-of-frame.
        let mut i = 2;
        while i + 9 < head.len() {
            if head[i] != 0xff {
                return None;
            }
            let marker = head[i + 1];
            let len = usize::from(u16::from_be_bytes([head[i + 2], head[i + 3]]));
            if matches!(marker, 0xc0..=0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf) {
                let h = u32::from(u16::from_be_bytes([head[i + 5], head[i + 6]]));
                let w = u32::from(u16::from_be_bytes([head[i + 7], head[i + 8]]));
                return Some((w, h));
            }
            i += 2 + len;
        }
    }
    None
}

/// Tokens for one medium. Images: one per 28×28 patch as Qwen-VL counts them, 4 to 16,384,
/// 256 when the size cannot be read; audio: 25 per second, taking 16 KB/s; video: 4 frames of
/// 256. An emulator's guess, stable and documented, not the service's billing.
pub(crate) fn tokens(kind: MediaKind, head: &[u8], size: u64) -> u64 {
    match kind {
        MediaKind::Image => match dimensions(head) {
            Some((w, h)) => {
                let patches = u64::from(w.div_ceil(28)) * u64::from(h.div_ceil(28));
                patches.clamp(4, 16_384) + 2
            }
            None => 256,
        },
        MediaKind::Audio => (size / 16_000).max(1) * 25,
        MediaKind::Video => 4 * 256,
    }
}

/// Tokens of a text: about four characters each.
pub(crate) fn text_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\xc0\0\0\x01\x18\x08\x02";
        assert_eq!(sniff(png), Some((MediaKind::Image, "image/png")));
        assert_eq!(dimensions(png), Some((448, 280)));
        assert_eq!(tokens(MediaKind::Image, png, 100), 16 * 10 + 2);
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WAVEfmt "),
            Some((MediaKind::Audio, "audio/wav"))
        );
        assert_eq!(
            sniff(b"\0\0\0\x18ftypmp42"),
            Some((MediaKind::Video, "video/mp4"))
        );
        assert_eq!(sniff(b"hello, this is text"), None);
        assert_eq!(sniff(b""), None);
    }
}
