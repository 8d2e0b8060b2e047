//! `dashscope oss upload` and `dashscope oss.upload`.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use dashscope_oss::UploadSource;
use futures_util::StreamExt;

use crate::Global;
use crate::connect::connect;
use crate::exit::*;
use crate::output::*;
use crate::progress::Bars;
use crate::signals::{self, Signals};

#[derive(Subcommand, Debug)]
pub(crate) enum OssCommand {
    /// Upload files; prints one oss:// URL per file.
    Upload(UploadArgs),
}

#[derive(Args, Debug)]
pub(crate) struct UploadArgs {
    /// The model that will read the files; only it can use the URLs.
    #[arg(short, long)]
    model: String,
    /// A file to upload; repeatable.
    #[arg(short, long = "file", value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Read more paths from LIST, one per line (`-` for stdin).
    #[arg(long = "from-file", value_name = "LIST")]
    from_file: Option<PathBuf>,
    /// Files uploaded at once (at least 1).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    concurrency: Option<usize>,
    /// One JSON object per file on stdout instead of bare URLs.
    #[arg(long)]
    json: bool,
}

/// A count of at least 1 (0 uploads at once would upload nothing).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn read_list(list: &PathBuf) -> std::io::Result<Vec<PathBuf>> {
    let reader: Box<dyn BufRead> = if list.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(list)?))
    };
    let mut paths = Vec::new();
    for line in reader.lines() {
        let line = line?;
        let line = line.trim_end_matches('\r');
        if !line.trim().is_empty() {
            paths.push(PathBuf::from(line));
        }
    }
    Ok(paths)
}

/// The files of an upload command, from `--file` and `--from-file`.
pub(crate) fn upload_paths(args: &UploadArgs) -> Result<Vec<PathBuf>, u8> {
    let mut paths = args.files.clone();
    if let Some(list) = &args.from_file {
        match read_list(list) {
            Ok(more) => paths.extend(more),
            Err(e) => {
                note!("dashscope: cannot read the list {}: {e}", list.display());
                return Err(EXIT_FILE);
            }
        }
    }
    if paths.is_empty() {
        note!("dashscope: no files: give --file PATH (repeatable) or --from-file LIST");
        return Err(EXIT_USAGE);
    }
    if args.model.trim().is_empty() {
        note!("dashscope: --model is empty");
        return Err(EXIT_USAGE);
    }
    Ok(paths)
}

/// Arguments first (a usage error must not wait for, or fail on, the connection), then the
/// client with the bars as its upload observer, then the uploads.
pub(crate) async fn run(global: &Global, args: &UploadArgs) -> u8 {
    let paths = match upload_paths(args) {
        Ok(paths) => paths,
        Err(code) => return code,
    };
    // Bars only where someone watches, and only when there is something to watch: several
    // files, or one large enough to take a while.
    let large = || {
        paths
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum::<u64>()
            > 8 * 1024 * 1024
    };
    let show = !global.quiet && std::io::stderr().is_terminal() && (paths.len() > 1 || large());
    let bars = show.then(|| Bars::new(&paths));
    let (client, _emulator) =
        match connect(global, args.concurrency, bars.as_ref().map(Bars::observer)).await {
            Ok(connected) => connected,
            Err(code) => return code,
        };
    let client = &client;
    // Listening before the first upload: from here on a signal stops the batch instead of
    // killing the process.
    let mut signals = Signals::listen();
    let sources = paths.iter().map(|p| UploadSource::path(p.clone()));
    let mut batch = client.upload_many(&args.model, sources);
    let stop = batch.stop_handle();
    let say = |f: &dyn Fn()| match &bars {
        Some(b) => b.suspend(f),
        None => f(),
    };
    let mut out = Out::new();
    let mut signalled = None;
    let mut aborted = false;
    let mut output_failed = None;
    let mut failures = Vec::new();
    let mut done = 0;
    loop {
        let result = tokio::select! {
            result = batch.next() => match result {
                Some(result) => result,
                None => break,
            },
            code = signals.next() => {
                if signalled.is_some() {
                    // A second signal: the uploads in flight are dropped, unreported.
                    say(&|| note!("dashscope: {}: aborting the uploads in flight", signals::name(code)));
                    aborted = true;
                    break;
                }
                signalled = Some(code);
                stop.stop();
                say(&|| {
                    note!(
                        "dashscope: {}: starting no more uploads, finishing those in flight (a second signal aborts them)",
                        signals::name(code)
                    );
                });
                continue;
            }
        };
        // Outcomes come in input order and stop at the first file not started.
        let Some(path) = paths.get(done) else {
            break;
        };
        done += 1;
        let shown = path.display().to_string();
        let line = match (&result, args.json) {
            (Ok(file), false) => file.url.clone(),
            (Ok(file), true) => json_ok(&shown, file).to_string(),
            (Err(e), true) => json_err(&shown, e).to_string(),
            (Err(_), false) => String::new(),
        };
        // Each line as soon as its upload is done: an interrupted batch has printed what
        // landed. Once stdout fails, nobody reads it: no more uploads start.
        if !line.is_empty()
            && output_failed.is_none()
            && let Err(code) = out.line(&line)
        {
            output_failed = Some(code);
            stop.stop();
        }
        match &result {
            Ok(file) if !global.quiet => say(&|| note!("{}", summary(&shown, file))),
            Ok(_) => {}
            Err(e) => {
                say(&|| report(e, Some(&shown)));
                failures.push(exit_code(e));
            }
        }
    }
    drop(batch);
    if let Some(b) = bars {
        b.finish();
    }
    if done < paths.len() {
        note!(
            "dashscope: {} of {} files not uploaded{}",
            paths.len() - done,
            paths.len(),
            // Aborted in flight, an object may have landed without its answer.
            if aborted { " or not confirmed" } else { "" }
        );
    }
    // What landed is remembered before the process ends, however it ends (a blocking write:
    // the runtime's other work moves to another thread meanwhile).
    if let Some(Err(e)) = tokio::task::block_in_place(|| client.upload_cache().map(|c| c.flush())) {
        note!("dashscope: warning: the upload cache could not be written: {e}");
    }
    warn_about_cache(client);
    if let Some(code) = signalled.or(output_failed) {
        return code;
    }
    match (failures.len(), done) {
        (0, _) => EXIT_OK,
        (f, n) if f < n => EXIT_PARTIAL,
        _ => failures.first().copied().unwrap_or(EXIT_SERVICE),
    }
}
