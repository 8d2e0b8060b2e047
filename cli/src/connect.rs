//! The client the global flags describe, the built-in emulator, and the CLI's cache folder.

use std::path::PathBuf;

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig};
use dashscope_oss::{Callback, Client, Config, Region, RetryPolicy, UploadEvent};

use crate::Global;
use crate::exit::*;

/// The client the global flags describe, and the in-process emulator if `--emulator`.
/// `observer` is told what the uploads do (progress bars, the files a request sent).
pub(crate) async fn connect(
    global: &Global,
    concurrency: Option<usize>,
    observer: Option<Callback<UploadEvent>>,
) -> Result<(Client, Option<Emulator>), u8> {
    let (config, emulator) = configure(global, concurrency, observer).await?;
    match Client::new(config) {
        Ok(client) => Ok((client, emulator)),
        Err(e) => {
            report(&e, None);
            Err(exit_code(&e))
        }
    }
}

/// The configuration the global flags describe (a client is built from it), and the
/// in-process emulator if `--emulator`.
pub(crate) async fn configure(
    global: &Global,
    concurrency: Option<usize>,
    observer: Option<Callback<UploadEvent>>,
) -> Result<(Config, Option<Emulator>), u8> {
    let mut config = Config::from_env();
    if let Some(observer) = observer {
        config = config.on_upload(move |event| observer(event));
    }
    if let Some(n) = concurrency {
        config = config.upload_concurrency(n);
    }
    let mut emulator = None;
    if global.emulator {
        let started = Emulator::start(EmulatorConfig::default())
            .await
            .map_err(|e| {
                note!("dashscope: cannot start the built-in emulator: {e}");
                EXIT_SOFTWARE
            })?;
        if !global.quiet {
            note!(
                "dashscope: using the built-in emulator at {} (offline; nothing leaves this machine)",
                started.base_url()
            );
        }
        config = config.api_key(DEFAULT_API_KEY).base_url(started.base_url());
        emulator = Some(started);
    } else {
        if let Some(region) = &global.region {
            match region.parse::<Region>() {
                Ok(r) => config = config.region(r),
                Err(e) => {
                    note!("dashscope: {e}");
                    return Err(EXIT_USAGE);
                }
            }
        }
        if let Some(url) = &global.base_url {
            config = config.base_url(url.clone());
        }
    }
    if let Some(key) = &global.api_key
        && !global.emulator
    {
        config = config.api_key(key.clone());
    }
    if let Some(workspace) = &global.workspace {
        config = config.workspace(workspace.clone());
    }
    if let Some(below) = global.inline_below {
        config = config.inline_below(below);
    }
    if let Some(t) = global.connect_timeout {
        config = config.connect_timeout(t);
    }
    if let Some(t) = global.read_timeout {
        config = config.read_timeout(t);
    }
    if let Some(crate::Deadline(deadline)) = global.deadline {
        config = config.retry(RetryPolicy::default().deadline(deadline));
    }
    // The built-in emulator is new at every run (a new port, new objects): its URLs are
    // remembered for this run only.
    config = match (global.no_cache, global.emulator, cache_dir()) {
        (true, _, _) => config.no_upload_cache(),
        (false, false, Some(dir)) => config.upload_cache(dir),
        _ => config,
    };
    Ok((config, emulator))
}

/// The CLI's upload cache: `$XDG_CACHE_HOME/dashscope-oss`, else `~/.cache/dashscope-oss`.
pub(crate) fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_CACHE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|home| home.join(".cache")))
        .map(|base| base.join("dashscope-oss"))
}
