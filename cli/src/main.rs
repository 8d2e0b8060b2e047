//! The `dashscope` command-line tool (feature `cli`). Everything it does is the library's; this
//! program only reads arguments and prints.
//!
//! Exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | everything succeeded |
//! | 1 | a batch partly failed (some files uploaded, some not) |
//! | 2 | usage error (bad flags, no files, empty model) |
//! | 3 | authentication or permission (no key, invalid key, access denied, arrears) |
//! | 4 | rate limit or quota |
//! | 5 | a local file: missing, unreadable, not a file, empty, too large |
//! | 6 | network: connection, timeout |
//! | 7 | the service refused the request or answered something unreadable |
//! | 8 | a task ended without success: failed, cancelled, or unknown |
//! | 9 | gave up waiting for a task (`--timeout`); the task goes on |
//! | 70 | internal failure (the emulator could not start) |

mod tasks;

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};

use dashscope_emulator::{
    Account, AccountStatus, DEFAULT_API_KEY, Emulator, EmulatorConfig, FaultKind, MediaKind,
    ModelSpec, Storage,
};
use dashscope_oss::api::types;
use dashscope_oss::cache::UploadCache;
use dashscope_oss::chat::{ChatCollector, ChatRequest, GenerationCollector, Message};
use dashscope_oss::{Client, Config, Error, Progress, Region, UploadSource, UploadedFile};

/// Everything succeeded.
pub const EXIT_OK: u8 = 0;
/// A batch partly failed.
pub const EXIT_PARTIAL: u8 = 1;
/// A command line that cannot be understood.
pub const EXIT_USAGE: u8 = 2;
/// Authentication or permission.
pub const EXIT_AUTH: u8 = 3;
/// Rate limit or quota.
pub const EXIT_RATE: u8 = 4;
/// A local file.
pub const EXIT_FILE: u8 = 5;
/// Network.
pub const EXIT_NETWORK: u8 = 6;
/// The service refused or answered nonsense.
pub const EXIT_SERVICE: u8 = 7;
/// A task ended without success (failed, cancelled, unknown).
pub const EXIT_TASK: u8 = 8;
/// Gave up waiting for a task.
pub const EXIT_WAIT: u8 = 9;
/// A failure of the tool itself.
pub const EXIT_SOFTWARE: u8 = 70;

#[derive(Parser, Debug)]
#[command(
    name = "dashscope",
    version,
    about = "DashScope temporary storage and multimodal calls, from the command line",
    after_help = "Exit codes: 0 ok, 1 partial batch failure, 2 usage, 3 auth, 4 rate/quota, 5 file, 6 network, 7 service, 8 task failed/cancelled/unknown, 9 gave up waiting, 70 internal."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// API key (default: DASHSCOPE_API_KEY). Prefer the variable: flags end up in shell history.
    #[arg(long = "api-key", alias = "api_key", global = true, value_name = "KEY")]
    api_key: Option<String>,
    /// Base URL (default: DASHSCOPE_BASE_URL, DASHSCOPE_HTTP_BASE_URL, or the region's).
    #[arg(
        long = "base-url",
        global = true,
        value_name = "URL",
        conflicts_with = "region"
    )]
    base_url: Option<String>,
    /// Region: beijing, singapore, us, hongkong.
    #[arg(long, global = true, value_name = "NAME")]
    region: Option<String>,
    /// Run against an emulator started inside this process: offline, no API key needed.
    #[arg(long, global = true)]
    emulator: bool,
    /// No summary or progress on stderr (errors are still printed).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Upload every file, remembering none: no upload cache. By default an upload of the same
    /// content for the same model with the same key and base URL reuses the earlier URL while
    /// it lasts more than an hour, from $XDG_CACHE_HOME/dashscope-oss (else
    /// ~/.cache/dashscope-oss). With --emulator the cache lives in memory only.
    #[arg(long = "no-cache", global = true)]
    no_cache: bool,
    /// Send images and audio smaller than SIZE (e.g. 5MB, 512KiB) inside the request as base64
    /// data: URIs instead of uploading them (off by default; video is always uploaded).
    #[arg(long = "inline-below", global = true, value_name = "SIZE", value_parser = parse_size)]
    inline_below: Option<u64>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Upload files to the temporary storage; prints one oss:// URL per file (the official
    /// CLI's spelling).
    #[command(name = "oss.upload")]
    OssUploadDotted(UploadArgs),
    /// Temporary storage.
    Oss {
        #[command(subcommand)]
        command: OssCommand,
    },
    /// Ask a model about files: uploads them, then streams the answer to stdout.
    Chat(ChatArgs),
    /// Transcribe recorded audio or video files (an async task); prints each file's transcript.
    Transcribe(tasks::TranscribeArgs),
    /// Image tasks.
    Image {
        #[command(subcommand)]
        command: tasks::ImageCommand,
    },
    /// Make a video from frames or an image (an async task).
    Video(tasks::VideoArgs),
    /// Query, wait for or cancel an async task by its id.
    Task {
        #[command(subcommand)]
        command: tasks::TaskCommand,
    },
    /// The upload cache: what was uploaded, for which model, until when.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Run the offline DashScope + OSS emulator until SIGINT/SIGTERM. Prints
    /// `DASHSCOPE_BASE_URL=http://127.0.0.1:PORT` as its first line.
    Emulator(EmulatorArgs),
}

#[derive(Subcommand, Debug)]
enum CacheCommand {
    /// One line per remembered upload: URL, model, size, expiry, file.
    List {
        /// One JSON object per upload instead.
        #[arg(long)]
        json: bool,
    },
    /// Forget every upload.
    Clear,
}

#[derive(Subcommand, Debug)]
enum OssCommand {
    /// Upload files; prints one oss:// URL per file.
    Upload(UploadArgs),
}

#[derive(Args, Debug)]
struct UploadArgs {
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

#[derive(Args, Debug)]
struct ChatArgs {
    /// The model, e.g. qwen-vl-plus.
    #[arg(short, long)]
    model: String,
    /// A file to ask about (image, audio or video, by extension); repeatable.
    #[arg(short, long = "file", value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Use the native multimodal-generation API instead of the OpenAI-compatible one.
    #[arg(long)]
    native: bool,
    /// Print the whole answer as JSON (the streamed answer assembled, fields the spec does not
    /// name kept) instead of its text as it arrives.
    #[arg(long)]
    json: bool,
    /// The question.
    prompt: String,
}

#[derive(Args, Debug)]
struct EmulatorArgs {
    /// Address of the API host.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Address of the OSS host.
    #[arg(long, default_value = "127.0.0.1:0")]
    oss_listen: SocketAddr,
    /// An account and its keys, `NAME=KEY[,KEY…]`; repeatable. Without any, one account
    /// `default` with the key `sk-emulator-default`.
    #[arg(long = "account", value_name = "NAME=KEY[,KEY…]", value_parser = parse_account)]
    accounts: Vec<Account>,
    /// A model and the largest file it accepts, `NAME=MAX_MB`; repeatable. Added models read
    /// images, audio and video; a known model keeps the media it reads.
    #[arg(long = "model", value_name = "NAME=MAX_MB", value_parser = parse_model)]
    models: Vec<(String, u64)>,
    /// Keep uploaded objects in this directory (default: a temporary directory, removed on exit).
    #[arg(long, conflicts_with = "memory")]
    data_dir: Option<PathBuf>,
    /// Keep uploaded objects in memory.
    #[arg(long)]
    memory: bool,
    /// A fault to inject from the start, `KIND=N` (the next N requests of the kind fail);
    /// repeatable. Kinds: policy_error, policy_throttle, upload_error, upload_drop,
    /// upload_lose_answer, chat_error, chat_throttle, stream_error.
    #[arg(long = "fault", value_name = "KIND=N", value_parser = parse_fault)]
    faults: Vec<(FaultKind, u32)>,
    /// Delay every answer by this many milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Lifetime of upload credentials, in seconds.
    #[arg(long, default_value_t = 300)]
    policy_lifetime: u64,
    /// Credential requests admitted per second for each account and model (the service's
    /// documented limit is 100).
    #[arg(long, default_value_t = 100)]
    policy_qps: u32,
}

fn parse_account(s: &str) -> Result<Account, String> {
    let (name, keys) = s.split_once('=').ok_or("expected NAME=KEY[,KEY…]")?;
    let keys: Vec<String> = keys
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    if name.trim().is_empty() || keys.is_empty() {
        return Err("expected NAME=KEY[,KEY…] with a name and at least one key".to_owned());
    }
    Ok(Account {
        name: name.trim().to_owned(),
        keys,
        status: AccountStatus::Active,
    })
}

fn parse_model(s: &str) -> Result<(String, u64), String> {
    let (name, mb) = s.split_once('=').ok_or("expected NAME=MAX_MB")?;
    let mb = mb
        .trim()
        .parse::<u64>()
        .map_err(|_| "MAX_MB must be a whole number of MiB".to_owned())?;
    if name.trim().is_empty() || mb == 0 {
        return Err("expected NAME=MAX_MB with a name and a positive size".to_owned());
    }
    Ok((name.trim().to_owned(), mb))
}

fn parse_fault(s: &str) -> Result<(FaultKind, u32), String> {
    let (kind, n) = s.split_once('=').unwrap_or((s, "1"));
    let kind = FaultKind::ALL
        .into_iter()
        .find(|k| k.name() == kind.trim())
        .ok_or_else(|| {
            let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown fault kind; expected one of {}", names.join(", "))
        })?;
    let n = n
        .trim()
        .parse::<u32>()
        .map_err(|_| "N must be a whole number".to_owned())?;
    Ok((kind, n))
}

/// Logs to stderr at the level `RUST_LOG` names (`trace`, `debug`, `info`, `warn`, `error`;
/// in `target=level` form the last level counts). Nothing is logged without it.
fn init_logging() {
    let Ok(value) = std::env::var("RUST_LOG") else {
        return;
    };
    let level = value.rsplit(['=', ',']).next().unwrap_or("").trim();
    let Ok(level) = level.parse::<tracing::level_filters::LevelFilter>() else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the tool with the process's arguments.
fn main() -> ExitCode {
    init_logging();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // File I/O runs on tokio's blocking pool; its default of 512 threads would let hundreds of
    // concurrent uploads each grow a thread (and its allocator arena) in the emulator.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(32)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dashscope: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_SOFTWARE);
        }
    };
    ExitCode::from(runtime.block_on(run(cli)))
}

async fn run(cli: Cli) -> u8 {
    let global = cli.global;
    match cli.command {
        Command::Emulator(args) => run_emulator(args).await,
        Command::OssUploadDotted(args)
        | Command::Oss {
            command: OssCommand::Upload(args),
        } => {
            // Arguments first: a usage error must not wait for (or fail on) the connection.
            let paths = match upload_paths(&args) {
                Ok(paths) => paths,
                Err(code) => return code,
            };
            match connect(&global, args.concurrency).await {
                Ok((client, _emulator)) => upload(&client, &global, &args, paths).await,
                Err(code) => code,
            }
        }
        Command::Cache { command } => cache_command(&command),
        Command::Transcribe(args) => match connect(&global, None).await {
            Ok((client, _emulator)) => tasks::transcribe(&client, &global, args)
                .await
                .unwrap_or_else(|code| code),
            Err(code) => code,
        },
        Command::Image { command } => match connect(&global, None).await {
            Ok((client, _emulator)) => tasks::image(&client, &global, command)
                .await
                .unwrap_or_else(|code| code),
            Err(code) => code,
        },
        Command::Video(args) => match connect(&global, None).await {
            Ok((client, _emulator)) => tasks::video(&client, &global, args)
                .await
                .unwrap_or_else(|code| code),
            Err(code) => code,
        },
        Command::Task { command } => match connect(&global, None).await {
            Ok((client, _emulator)) => tasks::task(&client, &global, command).await,
            Err(code) => code,
        },
        Command::Chat(args) => match connect(&global, None).await {
            Ok((client, _emulator)) => chat(&client, &global, args).await,
            Err(code) => code,
        },
    }
}

/// The client the global flags describe, and the in-process emulator if `--emulator`.
async fn connect(
    global: &Global,
    concurrency: Option<usize>,
) -> Result<(Client, Option<Emulator>), u8> {
    let mut config = Config::from_env();
    if let Some(n) = concurrency {
        config = config.upload_concurrency(n);
    }
    let mut emulator = None;
    if global.emulator {
        let started = Emulator::start(EmulatorConfig::default())
            .await
            .map_err(|e| {
                eprintln!("dashscope: cannot start the built-in emulator: {e}");
                EXIT_SOFTWARE
            })?;
        if !global.quiet {
            eprintln!(
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
                    eprintln!("dashscope: {e}");
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
    if let Some(below) = global.inline_below {
        config = config.inline_below(below);
    }
    // The built-in emulator is new at every run (a new port, new objects): its URLs are
    // remembered for this run only.
    config = match (global.no_cache, global.emulator, cache_dir()) {
        (true, _, _) => config.no_upload_cache(),
        (false, false, Some(dir)) => config.upload_cache(dir),
        _ => config,
    };
    match Client::new(config) {
        Ok(client) => Ok((client, emulator)),
        Err(e) => {
            report(&e, None);
            Err(exit_code(&e))
        }
    }
}

/// The CLI's upload cache: `$XDG_CACHE_HOME/dashscope-oss`, else `~/.cache/dashscope-oss`.
fn cache_dir() -> Option<PathBuf> {
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

fn cache_command(command: &CacheCommand) -> u8 {
    let Some(dir) = cache_dir() else {
        eprintln!("dashscope: no cache directory: set XDG_CACHE_HOME or HOME");
        return EXIT_USAGE;
    };
    let cache = UploadCache::on_disk(&dir, dashscope_oss::cache::DEFAULT_MARGIN);
    let entries = cache.list();
    if let Some(warning) = cache.take_warning() {
        eprintln!("dashscope: warning: {warning}");
    }
    match command {
        CacheCommand::List { json } => {
            let now = SystemTime::now();
            let mut stdout = std::io::stdout().lock();
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
                let _ = writeln!(stdout, "{line}");
            }
            EXIT_OK
        }
        CacheCommand::Clear => match cache.clear() {
            Ok(()) => {
                eprintln!(
                    "dashscope: forgot {} upload(s) in {}",
                    entries.len(),
                    dir.display()
                );
                EXIT_OK
            }
            Err(e) => {
                eprintln!("dashscope: cannot clear {}: {e}", dir.display());
                EXIT_FILE
            }
        },
    }
}

/// Says why the upload cache was not used, if it was not (a warning: the command went on).
fn warn_about_cache(client: &Client) {
    if let Some(warning) = client.upload_cache().and_then(UploadCache::take_warning) {
        eprintln!("dashscope: warning: {warning}");
    }
}

/// `5MB`, `512KiB`, `1.5M`, `1000`: bytes (K, M, G as powers of 1000, KiB, MiB, GiB of 1024).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 5MB, 512KiB, 1000)"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (B, KB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    Ok((number * factor).round() as u64)
}

/// The exit code of an error's class.
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::InvalidApiKey(_)
        | Error::MissingApiKey
        | Error::AccessDenied(_)
        | Error::Arrearage(_) => EXIT_AUTH,
        Error::RateLimited(_) | Error::QuotaExhausted(_) => EXIT_RATE,
        Error::Io { .. }
        | Error::NotAFile { .. }
        | Error::EmptyFile { .. }
        | Error::FileTooLarge { .. }
        | Error::UrlExpired { .. }
        | Error::LinkExpired(_) => EXIT_FILE,
        Error::Transport(_) | Error::Timeout(_) => EXIT_NETWORK,
        Error::Config(_) | Error::InvalidRequest(_) => EXIT_USAGE,
        Error::TaskFailed { .. } | Error::TaskCanceled { .. } | Error::TaskUnknown { .. } => {
            EXIT_TASK
        }
        Error::WaitTimeout { .. } => EXIT_WAIT,
        Error::MayHaveSubmitted(inner) => exit_code(inner),
        _ => EXIT_SERVICE,
    }
}

/// What to do about an error, in a few words.
fn hint(e: &Error) -> Option<&'static str> {
    Some(match e {
        Error::MissingApiKey => "set DASHSCOPE_API_KEY (or try --emulator)",
        Error::InvalidApiKey(_) => {
            "check DASHSCOPE_API_KEY; keys work only in their own region (--region)"
        }
        Error::RateLimited(_) => {
            "wait and retry; credentials are limited to 100 requests per second per model"
        }
        Error::QuotaExhausted(_) => "a quota is used up; waiting will not help",
        Error::FileTooLarge { .. } => "this model does not take files this large",
        Error::ModelNotFound(_) => "check the model name",
        Error::Transport(_) | Error::Timeout(_) => {
            "check the network and the base URL (--base-url, --region)"
        }
        Error::InvalidUrl(_) => "upload the file again for this model and account",
        Error::LinkExpired(_) => "result links last 24 hours: run the task again",
        Error::MayHaveSubmitted(_) => {
            "look for the task (GET /api/v1/tasks) before submitting again"
        }
        Error::UnsupportedOperation(_) => "only a PENDING task can be cancelled",
        _ => return None,
    })
}

/// Prints an error on stderr: what, the code and request id, and a hint.
pub fn report(e: &Error, path: Option<&str>) {
    let mut line = String::from("dashscope: ");
    let message = e.to_string();
    if let Some(p) = path.filter(|p| !message.starts_with(p)) {
        line.push_str(&format!("{p}: "));
    }
    line.push_str(&message);
    if let Some(code) = e.code()
        && !line.contains(code)
    {
        line.push_str(&format!(" [code {code}]"));
    }
    if let Some(id) = e.request_id()
        && !line.contains(id)
    {
        line.push_str(&format!(" [request id {id}]"));
    }
    if let Some(h) = hint(e) {
        line.push_str(&format!("\n  hint: {h}"));
    }
    eprintln!("{line}");
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
fn upload_paths(args: &UploadArgs) -> Result<Vec<PathBuf>, u8> {
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

async fn upload(client: &Client, global: &Global, args: &UploadArgs, paths: Vec<PathBuf>) -> u8 {
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
    let progress = bars.as_ref().map(|b| b.callback());
    let sources = paths.iter().map(|p| UploadSource::path(p.clone()));
    let results = client
        .upload_many_with_progress(&args.model, sources, progress)
        .await;
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

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn json_ok(path: &str, file: &UploadedFile) -> serde_json::Value {
    serde_json::json!({
        "path": path, "url": file.url, "key": file.key, "model": file.model,
        "size": file.size, "expires_at": rfc3339(file.expires_at),
        "from_cache": file.from_cache
    })
}

fn json_err(path: &str, e: &Error) -> serde_json::Value {
    serde_json::json!({
        "path": path,
        "error": {
            "message": e.to_string(), "code": e.code(), "status": e.status(),
            "request_id": e.request_id(), "exit_code": exit_code(e)
        }
    })
}

/// `cat.png: 367 B, expires 2026-11-27 18:54:55 +08:00 (2026-11-27T10:54:55Z)`.
fn summary(path: &str, file: &UploadedFile) -> String {
    let local = chrono::DateTime::<chrono::Local>::from(file.expires_at);
    format!(
        "{path}: {}{}, expires {} ({})",
        human_size(file.size),
        if file.from_cache {
            ", from the upload cache (nothing sent)"
        } else {
            ""
        },
        local.format("%Y-%m-%d %H:%M:%S %:z"),
        rfc3339(file.expires_at)
    )
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Progress bars on a terminal: one for the batch, one per file being sent.
struct Bars {
    multi: indicatif::MultiProgress,
    total: indicatif::ProgressBar,
    files: Vec<indicatif::ProgressBar>,
}

impl Bars {
    fn new(paths: &[PathBuf]) -> Self {
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

    fn callback(&self) -> dashscope_oss::upload::ProgressFn {
        let multi = self.multi.clone();
        let total = self.total.clone();
        let files = self.files.clone();
        Arc::new(move |p: Progress| {
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

    fn finish(self) {
        for bar in &self.files {
            bar.finish_and_clear();
        }
        self.total.finish_and_clear();
    }
}

/// `url` as an image, audio or video part, by the file's extension (image when unknown).
fn attach(message: Message, path: &std::path::Path, url: &str) -> Message {
    let mime = dashscope_oss::upload::content_type(&path.to_string_lossy());
    match mime.split('/').next() {
        Some("audio") => message.audio(url),
        Some("video") => message.video(url),
        _ => message.image(url),
    }
}

/// The name and arguments of each tool call of an answer's first choice, either API.
fn tool_calls_of(answer: &serde_json::Value) -> Vec<(String, String)> {
    let calls = answer
        .pointer("/choices/0/message/tool_calls")
        .or_else(|| answer.pointer("/output/choices/0/message/tool_calls"))
        .and_then(serde_json::Value::as_array);
    let text = |call: &serde_json::Value, field: &str| {
        call.pointer(&format!("/function/{field}"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    calls
        .into_iter()
        .flatten()
        .map(|call| (text(call, "name"), text(call, "arguments")))
        .collect()
}

async fn chat(client: &Client, global: &Global, args: ChatArgs) -> u8 {
    if args.model.trim().is_empty() {
        eprintln!("dashscope: --model is empty");
        return EXIT_USAGE;
    }
    // Upload first, here rather than inside the call, so that the URLs can be shown. Files small
    // enough to go inline are left to the library, which sends them as data: URIs.
    let inline_below = global.inline_below.unwrap_or(0);
    let inlined = |path: &PathBuf| {
        std::fs::metadata(path).is_ok_and(|m| {
            m.is_file()
                && dashscope_oss::upload::inlines(&path.to_string_lossy(), m.len(), inline_below)
        })
    };
    let (inline, upload): (Vec<&PathBuf>, Vec<&PathBuf>) =
        args.files.iter().partition(|p| inlined(p));
    let sources = upload.iter().map(|p| UploadSource::path(*p));
    let mut message = Message::user();
    for path in &inline {
        if !global.quiet {
            eprintln!("{}: sent inline as a data: URI", path.display());
        }
        message = attach(message, path, &path.to_string_lossy());
    }
    for (path, result) in upload
        .iter()
        .zip(client.upload_many(&args.model, sources).await)
    {
        match result {
            Ok(file) => {
                if !global.quiet {
                    eprintln!(
                        "{} -> {}",
                        summary(&path.display().to_string(), &file),
                        file.url
                    );
                }
                message = attach(message, path, &file.url);
            }
            Err(e) => {
                report(&e, Some(&path.display().to_string()));
                return exit_code(&e);
            }
        }
    }
    warn_about_cache(client);
    let request = ChatRequest::new(&args.model).message(message.text(args.prompt));
    let mut stdout = std::io::stdout().lock();
    let quiet = global.quiet;
    let json = args.json;
    // Text goes to stdout as it arrives; reasoning to stderr; tool calls after the answer.
    let mut show = |text: Option<&str>, reasoning: Option<&str>| {
        if json {
            return;
        }
        if let Some(reasoning) = reasoning.filter(|r| !r.is_empty() && !quiet) {
            eprint!("{reasoning}");
        }
        if let Some(text) = text {
            let _ = write!(stdout, "{text}");
            let _ = stdout.flush();
        }
    };
    let result: Result<serde_json::Value, Error> = async {
        use futures_util::StreamExt;
        if args.native {
            let mut stream = client
                .multimodal_generation_stream(request.parameter("incremental_output", true))
                .await?;
            let mut collector = GenerationCollector::new(true);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                for choice in &chunk.output.choices {
                    let message = &choice.message;
                    if let Some(types::NativeAnswerContent::Array(items)) = &message.content {
                        for item in items {
                            show(item.text.as_deref(), None);
                        }
                    }
                    show(None, message.reasoning_content.as_deref());
                }
                collector.push(&chunk);
            }
            Ok(serde_json::to_value(collector.finish()?).unwrap_or_default())
        } else {
            let mut stream = client.chat_completion_stream(request).await?;
            let mut collector = ChatCollector::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                for choice in &chunk.choices {
                    show(
                        choice.delta.content.as_deref(),
                        choice.delta.reasoning_content.as_deref(),
                    );
                }
                collector.push(&chunk);
            }
            Ok(serde_json::to_value(collector.finish()?).unwrap_or_default())
        }
    }
    .await
    .inspect(|answer| {
        if json {
            let _ = write!(
                stdout,
                "{}",
                serde_json::to_string_pretty(answer).unwrap_or_default()
            );
        } else {
            for (name, arguments) in tool_calls_of(answer) {
                let _ = write!(stdout, "\ntool call: {name}({arguments})");
            }
        }
    });
    let _ = writeln!(stdout);
    match result {
        Ok(_) => EXIT_OK,
        Err(e) => {
            report(&e, None);
            exit_code(&e)
        }
    }
}

async fn run_emulator(args: EmulatorArgs) -> u8 {
    let mut config = EmulatorConfig {
        api_addr: args.listen,
        oss_addr: args.oss_listen,
        policy_lifetime: Duration::from_secs(args.policy_lifetime),
        policy_qps: args.policy_qps,
        ..EmulatorConfig::default()
    };
    if !args.accounts.is_empty() {
        config.accounts = args.accounts;
    }
    for (name, max_file_size_mb) in args.models {
        let accepts = config.models.get(&name).map_or_else(
            || vec![MediaKind::Image, MediaKind::Audio, MediaKind::Video],
            |m| m.accepts.clone(),
        );
        config.models.insert(
            name,
            ModelSpec {
                max_file_size_mb,
                accepts,
                restricted: false,
            },
        );
    }
    if args.memory {
        config.storage = Storage::Memory;
    } else if let Some(dir) = args.data_dir {
        config.storage = Storage::Dir(dir);
    }
    let default_key = config
        .accounts
        .iter()
        .any(|a| a.keys.iter().any(|k| k == DEFAULT_API_KEY));
    let emulator = match Emulator::start(config).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("dashscope emulator: {e}");
            return EXIT_SOFTWARE;
        }
    };
    for (kind, count) in args.faults {
        emulator.inject(kind, count);
    }
    emulator.set_delay(Duration::from_millis(args.delay_ms));
    // Listening for SIGTERM before the URL is printed: a script that reads the URL and stops
    // the emulator at once must not kill it by default disposition.
    let stop = dashscope_emulator::stop_signal();
    // The first stdout line is for scripts: `eval "$(dashscope emulator | head -n1)"`.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "DASHSCOPE_BASE_URL={}", emulator.base_url());
    let _ = out.flush();
    drop(out);
    eprintln!(
        "DashScope emulator: API {} , OSS {}",
        emulator.base_url(),
        emulator.oss_url()
    );
    if default_key {
        eprintln!("  API key of the default account: {DEFAULT_API_KEY}");
    }
    eprintln!(
        "  stats: GET {}/emulator/v1/stats; stop with Ctrl-C",
        emulator.base_url()
    );
    emulator.run_until(stop).await;
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(367), "367 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
