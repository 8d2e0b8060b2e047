//! The book in memory, indexed: every question an upload asks of the cache (can a file of this
//! size hit, the entry of an identity, of a URL, the content a fingerprint stands for) is one
//! hash lookup, so that a batch of n files costs O(n), not O(n) per file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::CachedUpload;
use super::KEEP_EXPIRED;
use super::book::{Book, Edit, Identity, UrlState, Verdict, millis, ms, url_state, verdict};
use super::stamp::{Mark, Stamp};

/// (model, account, size): what a hit needs before the content is known.
type SizeKey = (String, String, u64);

#[derive(Debug, Default)]
pub(super) struct Index {
    /// One entry per URL: the one that lasts longest.
    entries: HashMap<String, CachedUpload>,
    /// The URLs of each content digest (an identity is a content and more: the candidates
    /// are checked by [`verdict`]).
    by_content: HashMap<String, Vec<String>>,
    /// The latest expiry of the entries of each size for a model and account.
    by_size: HashMap<SizeKey, u64>,
    /// The latest mark of each path.
    marks: HashMap<PathBuf, Mark>,
}

impl Index {
    pub(super) fn from_book(book: Book) -> Self {
        let mut index = Self::default();
        for entry in book.entries {
            index.add(entry);
        }
        for mark in book.marks {
            index.marks.insert(mark.path.clone(), mark);
        }
        index
    }

    /// Entries and marks: what pruning is amortised against.
    pub(super) fn len(&self) -> usize {
        self.entries.len() + self.marks.len()
    }

    /// The book to write: every entry and mark, pruned.
    pub(super) fn to_book(&self, version: u32, now: SystemTime) -> Book {
        let mut book = Book {
            version,
            entries: self.entries.values().cloned().collect(),
            marks: self.marks.values().cloned().collect(),
        };
        book.prune(now);
        book
    }

    pub(super) fn apply(&mut self, edit: Edit) {
        match edit {
            Edit::Add(entry) => self.add(entry),
            Edit::Mark(mark) => {
                self.marks.insert(mark.path.clone(), mark);
            }
            Edit::Forget(gone) => self.forget(&gone),
            Edit::Clear => *self = Self::default(),
        }
    }

    fn add(&mut self, entry: CachedUpload) {
        if let Some(old) = self.entries.get(&entry.url) {
            if old.expires_at_ms >= entry.expires_at_ms {
                return;
            }
            let old = old.clone();
            self.unlink(&old);
        }
        self.by_content
            .entry(entry.content.clone())
            .or_default()
            .push(entry.url.clone());
        let latest = self
            .by_size
            .entry((entry.model.clone(), entry.account.clone(), entry.size))
            .or_default();
        *latest = (*latest).max(entry.expires_at_ms);
        self.entries.insert(entry.url.clone(), entry);
    }

    /// Takes an entry out of the content index (the size index is rebuilt by whoever removes).
    fn unlink(&mut self, entry: &CachedUpload) {
        if let Some(urls) = self.by_content.get_mut(&entry.content) {
            urls.retain(|u| *u != entry.url);
            if urls.is_empty() {
                self.by_content.remove(&entry.content);
            }
        }
    }

    /// Every entry of the identity of `gone`. Rare (a URL the service refused): the size index
    /// is rebuilt, so that it stays exact.
    fn forget(&mut self, gone: &CachedUpload) {
        let Some(urls) = self.by_content.get(&gone.content).cloned() else {
            return;
        };
        for url in urls {
            let same = self.entries.get(&url).is_some_and(|e| {
                e.content_type == gone.content_type
                    && e.model == gone.model
                    && e.account == gone.account
            });
            if same && let Some(entry) = self.entries.remove(&url) {
                self.unlink(&entry);
            }
        }
        self.rebuild_sizes();
    }

    fn rebuild_sizes(&mut self) {
        self.by_size.clear();
        for e in self.entries.values() {
            let latest = self
                .by_size
                .entry((e.model.clone(), e.account.clone(), e.size))
                .or_default();
            *latest = (*latest).max(e.expires_at_ms);
        }
    }

    /// Drops entries long expired and marks whose content has no entry left.
    pub(super) fn prune(&mut self, now: SystemTime) {
        let now = ms(now);
        let keep = millis(KEEP_EXPIRED);
        let gone: Vec<CachedUpload> = self
            .entries
            .values()
            .filter(|e| e.expires_at_ms.saturating_add(keep) <= now)
            .cloned()
            .collect();
        if !gone.is_empty() {
            for entry in &gone {
                self.entries.remove(&entry.url);
                self.unlink(entry);
            }
            self.rebuild_sizes();
        }
        let contents = &self.by_content;
        self.marks.retain(|_, m| contents.contains_key(&m.content));
    }

    /// Whether a fresh entry of this size for this model and account exists: a hit needs one,
    /// so without it a file need not be read before it is sent (hashed as it goes, instead).
    pub(super) fn may_hold(
        &self,
        model: &str,
        account: &str,
        size: u64,
        now: SystemTime,
        margin: Duration,
    ) -> bool {
        let usable_after = ms(now).saturating_add(millis(margin));
        self.by_size
            .get(&(model.to_owned(), account.to_owned(), size))
            .is_some_and(|latest| *latest > usable_after)
    }

    pub(super) fn lookup(&self, identity: &Identity, now: SystemTime, margin: Duration) -> Verdict {
        let candidates = self
            .by_content
            .get(&identity.content)
            .into_iter()
            .flatten()
            .filter_map(|url| self.entries.get(url));
        verdict(candidates, identity, now, margin)
    }

    pub(super) fn url_state(
        &self,
        account: &str,
        url: &str,
        now: SystemTime,
        margin: Duration,
    ) -> UrlState {
        url_state(self.entries.get(url), account, url, now, margin)
    }

    pub(super) fn entry(&self, account: &str, url: &str) -> Option<CachedUpload> {
        self.entries
            .get(url)
            .filter(|e| e.account == account)
            .cloned()
    }

    pub(super) fn known_content(&self, path: &Path, stamp: &Stamp) -> Option<String> {
        self.marks
            .get(path)
            .filter(|m| m.stamp == *stamp)
            .map(|m| m.content.clone())
    }

    /// Every entry, longest-lasting first.
    pub(super) fn list(&self) -> Vec<CachedUpload> {
        let mut entries: Vec<CachedUpload> = self.entries.values().cloned().collect();
        entries.sort_by(|a, b| {
            b.expires_at_ms
                .cmp(&a.expires_at_ms)
                .then_with(|| a.url.cmp(&b.url))
        });
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    fn entry(content: &str, size: u64, url: &str, expires_at_ms: u64) -> CachedUpload {
        CachedUpload {
            content: content.to_owned(),
            content_type: "image/png".to_owned(),
            model: "m".to_owned(),
            account: "a".to_owned(),
            url: url.to_owned(),
            size,
            uploaded_at_ms: 0,
            expires_at_ms,
            source: None,
        }
    }

    #[test]
    fn the_size_index_is_exact_after_a_forget_and_a_prune() {
        let now = super::super::book::from_ms(1000 * HOUR);
        let mut index = Index::default();
        index.apply(Edit::Add(entry("c", 7, "oss://c", 1040 * HOUR)));
        index.apply(Edit::Add(entry("d", 7, "oss://d", 1010 * HOUR)));
        index.apply(Edit::Add(entry("e", 9, "oss://e", 800 * HOUR)));
        assert!(index.may_hold("m", "a", 7, now, Duration::ZERO));
        assert!(
            !index.may_hold("m", "b", 7, now, Duration::ZERO),
            "other account"
        );
        assert!(
            !index.may_hold("m", "a", 8, now, Duration::ZERO),
            "other size"
        );
        assert!(!index.may_hold("m", "a", 9, now, Duration::ZERO), "expired");
        // Forgetting the longest-lasting entry of size 7 leaves the other one's expiry.
        index.apply(Edit::Forget(entry("c", 7, "oss://c", 0)));
        assert!(index.may_hold("m", "a", 7, now, Duration::ZERO));
        assert!(!index.may_hold("m", "a", 7, now, Duration::from_millis(20 * HOUR)));
        assert_eq!(index.entry("a", "oss://c"), None);
        // A later entry of a URL replaces an earlier one; an earlier one is ignored.
        index.apply(Edit::Add(entry("d", 7, "oss://d", 1020 * HOUR)));
        index.apply(Edit::Add(entry("d", 7, "oss://d", 1005 * HOUR)));
        assert_eq!(
            index.entry("a", "oss://d").map(|e| e.expires_at_ms),
            Some(1020 * HOUR)
        );
        assert_eq!(index.list().len(), 2);
        // Long expired: pruned, and its size no longer answers.
        index.prune(super::super::book::from_ms(2000 * HOUR));
        assert_eq!(index.list().len(), 0);
        assert!(index.by_size.is_empty() && index.by_content.is_empty());
    }
}
