//! The book of uploads and the pure rules that read it: what is a hit, what is stale, what
//! is kept when the book is pruned, and the edits a client makes to it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::CachedUpload;
use super::KEEP_EXPIRED;
use super::stamp::Mark;

/// Everything the cache knows; what the cache file holds.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(super) struct Book {
    pub(super) version: u32,
    pub(super) entries: Vec<CachedUpload>,
    pub(super) marks: Vec<Mark>,
}
impl Book {
    /// Drops entries long expired, marks no entry needs, and older duplicates.
    pub(super) fn prune(&mut self, now: SystemTime) {
        let now = ms(now);
        let keep = millis(KEEP_EXPIRED);
        self.entries
            .retain(|e| e.expires_at_ms.saturating_add(keep) > now);
        // One entry per URL, and per identity the one that lasts longest.
        self.entries
            .sort_by_key(|e| std::cmp::Reverse(e.expires_at_ms));
        let mut seen = std::collections::HashSet::new();
        self.entries.retain(|e| seen.insert(e.url.clone()));
        let contents: std::collections::HashSet<&str> =
            self.entries.iter().map(|e| e.content.as_str()).collect();
        self.marks.retain(|m| contents.contains(m.content.as_str()));
        let mut paths = std::collections::HashSet::new();
        // The latest mark of a path wins (marks are appended).
        self.marks.reverse();
        self.marks.retain(|m| paths.insert(m.path.clone()));
        self.marks.reverse();
    }
}

/// What a lookup found for an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A URL with more than the margin left.
    Fresh(CachedUpload),
    /// Nothing usable: upload.
    Miss,
}

/// The pure rule of a lookup: the longest-lasting entry of the identity, if it outlasts the
/// margin.
pub(super) fn verdict<'a>(
    entries: impl IntoIterator<Item = &'a CachedUpload>,
    identity: &Identity,
    now: SystemTime,
    margin: Duration,
) -> Verdict {
    let usable_after = ms(now).saturating_add(millis(margin));
    entries
        .into_iter()
        .filter(|e| {
            e.content == identity.content
                && e.content_type == identity.content_type
                && e.model == identity.model
                && e.account == identity.account
        })
        .filter(|e| e.expires_at_ms > usable_after)
        .max_by_key(|e| e.expires_at_ms)
        .cloned()
        .map_or(Verdict::Miss, Verdict::Fresh)
}

/// What a URL the client is about to send needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlState {
    /// Not one of ours, or fine: send it.
    Send,
    /// Ends within the margin (or already ended); `source` is where it came from, if known.
    Stale(CachedUpload),
}

pub(super) fn url_state<'a>(
    entries: impl IntoIterator<Item = &'a CachedUpload>,
    account: &str,
    url: &str,
    now: SystemTime,
    margin: Duration,
) -> UrlState {
    let usable_after = ms(now).saturating_add(millis(margin));
    match entries
        .into_iter()
        .find(|e| e.url == url && e.account == account)
    {
        Some(e) if e.expires_at_ms <= usable_after => UrlState::Stale(e.clone()),
        _ => UrlState::Send,
    }
}

/// The identity of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub content: String,
    pub content_type: String,
    pub model: String,
    pub account: String,
}

pub(super) fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH)
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whether an entry read from the file can be true: an `oss://` URL, a SHA-256, and times an
/// upload can have (stored before now, expiring 48 hours later at most). Anything else, edited
/// by hand or damaged, is dropped: never served, never shown.
pub(super) fn plausible(entry: &CachedUpload, now: SystemTime) -> bool {
    let lifetime = millis(crate::wire::OBJECT_LIFETIME);
    let skew = 24 * 3600 * 1000;
    entry.url.starts_with("oss://")
        && entry.content.len() == 64
        && entry.content.bytes().all(|b| b.is_ascii_hexdigit())
        && entry.uploaded_at_ms <= ms(now).saturating_add(skew)
        && entry.expires_at_ms >= entry.uploaded_at_ms
        && entry.expires_at_ms <= entry.uploaded_at_ms.saturating_add(lifetime)
}

/// One change to the book: applied to memory at once, to the cache's journal in batches (one
/// JSON line each).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Edit {
    Add(CachedUpload),
    Mark(Mark),
    /// Forget every entry of this one's identity.
    Forget(CachedUpload),
    Clear,
}
