//! The digests that name content and accounts (SHA-256, hex).

use std::io::Read;
use std::path::Path;

use crate::secret::Secret;

/// The one-way digest of the credentials an upload was made with: a different key or base URL
/// is a different account as far as the cache knows (a miss costs an upload; a wrong hit, a
/// failed model call).
pub(crate) fn account_digest(key: &Secret, base_url: &str) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"dashscope-oss upload cache v1\0");
    context.update(key.expose().as_bytes());
    context.update(b"\0");
    context.update(base_url.as_bytes());
    hex(context.finish().as_ref())
}

/// SHA-256 of bytes, hex.
pub(crate) fn digest_bytes(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// SHA-256 of a file's content, hex, read in 1 MiB blocks: how the upload cache names content
/// ([`CachedUpload::content`](super::CachedUpload::content)), so a file can be checked against an entry. Blocking: call it
/// off the runtime.
pub fn digest_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    // No more than the file needs: a batch of small files hashes each in a few KiB.
    let len = file.metadata().map_or(0, |m| m.len());
    let mut buf = vec![
        0u8;
        usize::try_from(len.saturating_add(1))
            .unwrap_or(1 << 20)
            .clamp(4096, 1 << 20)
    ];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        context.update(&buf[..n]);
    }
    Ok(hex(context.finish().as_ref()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
