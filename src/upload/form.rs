//! One PostObject form POST: the documented fields in order, `file` last, the body streamed from
//! the source with its length known up front.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use super::batch::Tally;
use super::lock_plain;
use super::source::BoxReader;
use super::source::CHUNK;
use super::source::Opened;
use super::source::SourceError;
use crate::UploadSource;
use crate::cache::Stamp;
use crate::naming::content_type;
use crate::session::Credential;
use crate::{Error, Result};

/// One form POST, built and ready to send (by the one attempt loop).
pub(super) async fn form_request(
    http: &reqwest::Client,
    credential: &Credential,
    key: &str,
    source: &UploadSource,
    size: u64,
    feed: Feed<'_>,
) -> Result<reqwest::Request> {
    let Feed {
        index,
        tally,
        hasher,
        ended,
        proof,
    } = feed;
    let content_type = content_type(&source.name);
    let fields: [(&str, &str); 8] = [
        ("OSSAccessKeyId", credential.access_key_id.expose()),
        ("Signature", credential.signature.expose()),
        ("policy", credential.policy.expose()),
        ("key", key),
        ("x-oss-object-acl", &credential.acl),
        ("x-oss-forbid-overwrite", &credential.forbid_overwrite),
        ("success_action_status", "200"),
        ("x-oss-content-type", content_type),
    ];
    let boundary = boundary();
    let file_name = key.rsplit('/').next().unwrap_or(key);
    let head = form_head(&boundary, &fields, file_name, content_type);
    let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    let length = head.len() as u64 + size + tail.len() as u64;

    let opened = source.open().await?;
    if let Some(t) = tally {
        t.restart(index);
    }
    let watched = proof.clone();
    let chunks = match opened {
        Opened::File(file) => file_stream(file, size, index, tally.cloned(), ended).left_stream(),
        Opened::Reader(reader) => reader_stream(reader, size, index, tally.cloned()).right_stream(),
    };
    let body = chunks.map(move |chunk| {
        if let Ok(bytes) = &chunk {
            if let Some(hasher) = &hasher
                && let Some(context) = lock_plain(hasher).as_mut()
            {
                context.update(bytes);
            }
            watched.saw(bytes);
        }
        chunk.map_err(std::io::Error::other)
    });
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(head) })
        .chain(body)
        // Taken only once every byte of the file was handed to the connection.
        .chain(futures_util::stream::once(async move {
            proof.whole_sent();
            Ok(tail)
        }));
    http.post(credential.upload_host.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header(reqwest::header::CONTENT_LENGTH, length)
        .body(reqwest::Body::wrap_stream(stream))
        .build()
        .map_err(|e| Error::InvalidRequest(e.to_string()))
}

/// A POST that was redirected (a caller's own HTTP client may follow redirects) stored nothing
/// that can be known, whatever the status of the page it ended on: checked before the status
/// is read, so that a redirected 409 is not taken for the earlier attempt's object.
pub(super) fn not_redirected(credential: &Credential, response: &reqwest::Response) -> Result<()> {
    if response.url() != &credential.upload_host {
        return Err(Error::decode(
            Some(response.status().as_u16()),
            "the upload was redirected: nothing can be known to have been stored",
            &[],
            None,
        ));
    }
    Ok(())
}

/// What a success answer of a form POST says: OSS's request id.
pub(super) fn stored(response: &reqwest::Response) -> Option<String> {
    let request_id = response
        .headers()
        .get("x-oss-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    tracing::debug!(status = response.status().as_u16(), request_id, "uploaded");
    request_id
}

/// Who watches the bytes of a POST go out: the batch's progress, the content's hash, and the
/// proof that the storage's answer is for all of it.
pub(super) struct Feed<'a> {
    pub(super) index: usize,
    pub(super) tally: Option<&'a Arc<Tally>>,
    pub(super) hasher: Option<Hasher>,
    /// Where a file's fingerprint goes when its last byte is read, if asked.
    pub(super) ended: Option<Ended>,
    pub(super) proof: Arc<Proof>,
}

/// Up to this size a POST's MD5 is computed as it is sent, to check OSS's `ETag` against it:
/// MD5 runs at a few hundred MB/s on one core, which a transfer over the internet never
/// notices, but above this a loopback or LAN upload would (docs/decisions.md, "A success is
/// proven").
pub(crate) const ETAG_CHECK_LIMIT: u64 = 64 * 1024 * 1024;

/// What one POST can prove of its answer: that the whole body was handed to the connection
/// before the answer came, and the MD5 of the file's bytes (small files).
pub(super) struct Proof {
    whole: AtomicBool,
    /// Whether `whole` was already true when the answer's head arrived.
    answered_whole: AtomicBool,
    md5: Mutex<Option<md5::Md5>>,
}

impl Proof {
    pub(super) fn new(size: u64) -> Arc<Self> {
        Arc::new(Self {
            whole: AtomicBool::new(false),
            answered_whole: AtomicBool::new(false),
            md5: Mutex::new((size <= ETAG_CHECK_LIMIT).then(<md5::Md5 as md5::Digest>::new)),
        })
    }

    fn saw(&self, bytes: &[u8]) {
        if let Some(md5) = lock_plain(&self.md5).as_mut() {
            md5::Digest::update(md5, bytes);
        }
    }

    fn whole_sent(&self) {
        self.whole.store(true, Ordering::Release);
    }

    /// Called when the answer's head arrives: whether the last byte had been handed over then.
    pub(super) fn note_answer(&self) {
        let whole = self.whole.load(Ordering::Acquire);
        self.answered_whole.store(whole, Ordering::Release);
    }

    /// The file's MD5 in upper-case hex, as OSS writes its ETag; `None` above the limit.
    fn md5_hex(&self) -> Option<String> {
        lock_plain(&self.md5).take().map(|md5| {
            md5::Digest::finalize(md5)
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect()
        })
    }
}

/// How much of a form POST's success body is read: OSS answers `success_action_status=200`
/// with an empty one (`../shared/reference/protocol.md`).
const SUCCESS_BODY_LIMIT: usize = 4096;

/// A 2xx of a form POST counts only in the shape OSS answers it: the status asked for
/// (`success_action_status=200`), sent after the whole body was handed over, with an empty
/// body, and an `ETag` that is the content's MD5 where both are known. Anything else is a host
/// that did not store the file (an admin page, the API host, a proxy) or answered before it
/// had it all: never an uploaded file.
pub(super) async fn prove_stored(response: reqwest::Response, proof: &Proof) -> Result<()> {
    let status = response.status().as_u16();
    let refuse = |reason: String| Err(Error::decode(Some(status), reason, &[], None));
    if !proof.answered_whole.load(Ordering::Acquire) {
        return refuse(
            "the storage answered before the whole file was sent: nothing can be known to have been stored"
                .to_owned(),
        );
    }
    if status != 200 {
        return refuse(format!(
            "the storage answered {status}, not the 200 the form asked for"
        ));
    }
    let etag = response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().trim_matches('"').to_ascii_uppercase());
    let (body, _) = crate::transport::read_limited(response, SUCCESS_BODY_LIMIT)
        .await
        .map_err(Error::from_reqwest)?;
    if !body.is_empty() {
        return refuse(format!(
            "the storage's 200 carried a body ({} bytes or more), which OSS's does not: not an OSS upload host",
            body.len()
        ));
    }
    if let (Some(etag), Some(md5)) = (etag, proof.md5_hex())
        && etag.len() == 32
        && etag.bytes().all(|b| b.is_ascii_hexdigit())
        && etag != md5
    {
        return refuse(format!(
            "the storage's ETag {etag} is not the MD5 of what was sent ({md5})"
        ));
    }
    Ok(())
}

/// Where the SHA-256 of what a POST sent is left (hex), once it stored the object, with the
/// fingerprint its file had when its last byte was read.
pub(super) type Sent = Arc<Mutex<Option<(String, Option<Stamp>)>>>;
/// The fingerprint a file had when one POST read its last byte.
pub(super) type Ended = Arc<Mutex<Option<Stamp>>>;
/// The running SHA-256 of one POST's file bytes.
pub(super) type Hasher = Arc<Mutex<Option<ring::digest::Context>>>;

/// A random-enough multipart boundary (it only has to be absent from the form's text fields:
/// the file part is delimited by length on our side and by this string on OSS's).
pub(super) fn boundary() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("dashscope-oss-{t:016x}{n:08x}")
}

pub(super) fn form_head(
    boundary: &str,
    fields: &[(&str, &str)],
    file_name: &str,
    content_type: &str,
) -> Bytes {
    let mut head = String::with_capacity(4096);
    for (name, value) in fields {
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    head.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {content_type}\r\n\r\n",
        file_name.replace(['"', '\r', '\n'], "_")
    ));
    Bytes::from(head)
}

/// A file's bytes, exactly `size` of them, read on the blocking threads a chunk ahead of the
/// connection: the next chunk is read while this one is sent, into a buffer that is not
/// zeroed first and is sent as it is (no copy through an async file's own buffer).
pub(super) fn file_stream(
    file: std::fs::File,
    size: u64,
    index: usize,
    progress: Option<Arc<Tally>>,
    ended: Option<Ended>,
) -> impl futures_util::Stream<Item = std::result::Result<Bytes, SourceError>> + Send {
    type Reading = tokio::task::JoinHandle<(std::fs::File, std::io::Result<Bytes>)>;
    fn start(mut file: std::fs::File, sent: u64, size: u64, ended: Option<Ended>) -> Reading {
        tokio::task::spawn_blocking(move || {
            let chunk = read_chunk(&mut file, sent, size);
            // In the same trip as the last read: whether the file moved while it was read.
            if let (Ok(bytes), Some(ended)) = (&chunk, ended)
                && sent + bytes.len() as u64 == size
            {
                *lock_plain(&ended) = file.metadata().ok().and_then(|m| Stamp::of(&m));
            }
            (file, chunk)
        })
    }
    futures_util::stream::try_unfold(
        (Some(start(file, 0, size, ended.clone())), 0u64, progress),
        move |(reading, sent, progress)| {
            let ended = ended.clone();
            async move {
                let Some(reading) = reading else {
                    return Ok(None);
                };
                let (file, chunk) = reading.await.map_err(|e| SourceError(e.to_string()))?;
                let chunk = chunk.map_err(|e| SourceError(e.to_string()))?;
                let sent = sent + chunk.len() as u64;
                if let Some(p) = &progress {
                    p.report(index, sent, size);
                }
                let next = (sent < size).then(|| start(file, sent, size, ended));
                Ok(Some((chunk, (next, sent, progress))))
            }
        },
    )
}

/// The next chunk of a file at `sent` of `size` bytes; the last one also checks that the
/// file ends there (a source longer than announced would corrupt the form). Blocking.
fn read_chunk(file: &mut std::fs::File, sent: u64, size: u64) -> std::io::Result<Bytes> {
    use std::io::Read;
    let want = (size - sent).min(CHUNK as u64);
    let mut buf = Vec::with_capacity(want as usize);
    (&mut *file).take(want).read_to_end(&mut buf)?;
    let got = sent + buf.len() as u64;
    if got < sent + want {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the source ended after {got} of {size} bytes"),
        ));
    }
    if got == size && file.read(&mut [0u8; 1])? != 0 {
        return Err(std::io::Error::other(format!(
            "the source is longer than its {size} bytes"
        )));
    }
    Ok(Bytes::from(buf))
}

/// A reader's bytes, exactly `size` of them, read in chunks as the connection takes them.
pub(super) fn reader_stream(
    reader: BoxReader,
    size: u64,
    index: usize,
    progress: Option<Arc<Tally>>,
) -> impl futures_util::Stream<Item = std::result::Result<Bytes, SourceError>> + Send {
    futures_util::stream::try_unfold(
        (reader, 0u64, progress),
        move |(mut reader, sent, progress)| async move {
            if sent == size {
                // A source longer than announced would corrupt the form: refuse it.
                let mut probe = [0u8; 1];
                return match reader.read(&mut probe).await {
                    Ok(0) => Ok(None),
                    Ok(_) => Err(SourceError(format!(
                        "the source is longer than its {size} bytes"
                    ))),
                    Err(e) => Err(SourceError(e.to_string())),
                };
            }
            let want = CHUNK.min((size - sent) as usize);
            let mut buf = vec![0u8; want];
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| SourceError(e.to_string()))?;
            if n == 0 {
                return Err(SourceError(format!(
                    "the source ended after {sent} of {size} bytes"
                )));
            }
            buf.truncate(n);
            let sent = sent + n as u64;
            if let Some(p) = &progress {
                p.report(index, sent, size);
            }
            Ok(Some((Bytes::from(buf), (reader, sent, progress))))
        },
    )
}
