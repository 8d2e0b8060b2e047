//! Progress bars on a terminal, driven by the library's upload events.

use std::path::PathBuf;
use std::sync::Arc;

use dashscope_oss::{Callback, UploadEvent};

/// Progress bars on a terminal: one for the batch, one per file being sent.
pub(crate) struct Bars {
    multi: indicatif::MultiProgress,
    total: indicatif::ProgressBar,
    files: Vec<indicatif::ProgressBar>,
}

impl Bars {
    pub(crate) fn new(paths: &[PathBuf]) -> Self {
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template(
            "{msg:30!} {bar:30} {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        let total = multi.add(indicatif::ProgressBar::new(0).with_style(style.clone()));
        total.set_message(format!("{} files", paths.len()));
        let files = paths
            .iter()
            .map(|p| {
                let bar = indicatif::ProgressBar::hidden().with_style(style.clone());
                bar.set_message(
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
                bar
            })
            .collect();
        Self {
            multi,
            total,
            files,
        }
    }

    /// What the client reports as its uploads go out, drawn on these bars.
    pub(crate) fn observer(&self) -> Callback<UploadEvent> {
        let multi = self.multi.clone();
        let total = self.total.clone();
        let files = self.files.clone();
        Arc::new(move |event: &UploadEvent| {
            let UploadEvent::Progress(p) = event else {
                return;
            };
            total.set_length(p.total_size);
            total.set_position(p.total_sent);
            if let Some(bar) = files.get(p.index) {
                if bar.is_hidden() && p.file_sent < p.file_size {
                    multi.add(bar.clone());
                }
                bar.set_length(p.file_size);
                bar.set_position(p.file_sent);
                if p.file_sent >= p.file_size {
                    bar.finish_and_clear();
                }
            }
        })
    }

    /// Runs `f` (which prints on stderr) with the bars out of its way.
    pub(crate) fn suspend(&self, f: &dyn Fn()) {
        self.multi.suspend(f);
    }

    pub(crate) fn finish(self) {
        for bar in &self.files {
            bar.finish_and_clear();
        }
        self.total.finish_and_clear();
    }
}
