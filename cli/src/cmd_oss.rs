//! `dashscope oss upload` and `dashscope oss.upload`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use dashscope_oss::UploadSource;

use crate::Global;
use crate::connect::connect;
use crate::exit::*;
use crate::output::*;
use crate::progress::Bars;

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
    /// Files uploaded at once.
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    /// One JSON object per file on stdout instead of bare URLs.
    #[arg(long)]
    json: bool,
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
                eprintln!("dashscope: cannot read the list {}: {e}", list.display());
                return Err(EXIT_FILE);
            }
        }
    }
    if paths.is_empty() {
        eprintln!("dashscope: no files: give --file PATH (repeatable) or --from-file LIST");
        return Err(EXIT_USAGE);
    }
    if args.model.trim().is_empty() {
        eprintln!("dashscope: --model is empty");
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
    let sources = paths.iter().map(|p| UploadSource::path(p.clone()));
    let results = client.upload_many(&args.model, sources).await;
    if let Some(b) = bars {
        b.finish();
    }
    warn_about_cache(client);

    let mut stdout = std::io::stdout().lock();
    let mut failures = Vec::new();
    for (path, result) in paths.iter().zip(&results) {
        let shown = path.display().to_string();
        let line = match (result, args.json) {
            (Ok(file), false) => file.url.clone(),
            (Ok(file), true) => json_ok(&shown, file).to_string(),
            (Err(e), true) => json_err(&shown, e).to_string(),
            (Err(_), false) => String::new(),
        };
        if !line.is_empty() {
            let _ = writeln!(stdout, "{line}");
        }
        match result {
            Ok(file) if !global.quiet => eprintln!("{}", summary(&shown, file)),
            Ok(_) => {}
            Err(e) => {
                report(e, Some(&shown));
                failures.push(exit_code(e));
            }
        }
    }
    let _ = stdout.flush();
    match (failures.len(), results.len()) {
        (0, _) => EXIT_OK,
        (f, n) if f < n => EXIT_PARTIAL,
        _ => failures.first().copied().unwrap_or(EXIT_SERVICE),
    }
}
