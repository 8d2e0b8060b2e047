//! `dashscope cache list|clear`: the upload cache.

use std::time::SystemTime;

use clap::Subcommand;
use dashscope_oss::cache::UploadCache;

use crate::connect::cache_dir;
use crate::exit::*;
use crate::output::*;

#[derive(Subcommand, Debug)]
pub(crate) enum CacheCommand {
    /// One line per remembered upload: URL, model, size, expiry, file.
    List {
        /// One JSON object per upload instead.
        #[arg(long)]
        json: bool,
    },
    /// Forget every upload.
    Clear,
}

pub(crate) fn cache_command(command: &CacheCommand) -> u8 {
    let Some(dir) = cache_dir() else {
        note!("dashscope: no cache directory: set XDG_CACHE_HOME or HOME");
        return EXIT_USAGE;
    };
    let cache = UploadCache::on_disk(&dir);
    let entries = cache.list();
    if let Some(warning) = cache.take_warning() {
        note!("dashscope: warning: {warning}");
    }
    match command {
        CacheCommand::List { json } => {
            let now = SystemTime::now();
            let mut out = Out::new();
            for e in &entries {
                let source = e.source.as_ref().map(|p| p.display().to_string());
                let line = if *json {
                    serde_json::json!({
                        "url": e.url, "model": e.model, "size": e.size,
                        "content_type": e.content_type, "sha256": e.content,
                        "uploaded_at": rfc3339(e.uploaded_at()),
                        "expires_at": rfc3339(e.expires_at()),
                        "expired": e.expires_at() <= now, "source": source,
                    })
                    .to_string()
                } else {
                    format!(
                        "{}\t{}\t{}\t{} {}\t{}",
                        e.url,
                        e.model,
                        human_size(e.size),
                        if e.expires_at() <= now {
                            "expired"
                        } else {
                            "expires"
                        },
                        rfc3339(e.expires_at()),
                        source.as_deref().unwrap_or("-")
                    )
                };
                if let Err(code) = out.line(&line) {
                    return code;
                }
            }
            EXIT_OK
        }
        CacheCommand::Clear => match cache.clear() {
            Ok(()) => {
                note!(
                    "dashscope: forgot {} upload(s) in {}",
                    entries.len(),
                    dir.display()
                );
                EXIT_OK
            }
            Err(e) => {
                note!("dashscope: cannot clear {}: {e}", dir.display());
                EXIT_FILE
            }
        },
    }
}
