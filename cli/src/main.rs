//! The `dashscope` command-line tool (crate `dashscope-cli`). Everything it does is the
//! library's, through its public API; this program only reads arguments and prints. One file
//! per command group (`cmd_*.rs`); exit codes, output, progress bars and the connection are
//! shared modules.
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
//! | 5 | a local file (missing, unreadable, not a file, empty, too large) or an expired link |
//! | 6 | network: connection, timeout |
//! | 7 | the service refused the request or answered something unreadable |
//! | 8 | a task ended without success: failed, cancelled, or unknown |
//! | 9 | gave up waiting for a task (`--timeout`); the task goes on |
//! | 70 | internal failure (the emulator could not start) |
//! | 74 | stdout could not be written (a closed pipe, a full disk) |
//! | 130, 143 | an upload batch stopped by SIGINT, SIGTERM (what landed is printed) |

/// `eprintln!` (or, with `no_newline`, `eprint!`) that never panics: a stderr that cannot be
/// written (closed, full) loses the message, not the command, whose exit code still tells.
macro_rules! note {
    (no_newline, $($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod cmd_cache;
mod cmd_chat;
mod cmd_emulator;
mod cmd_oss;
mod cmd_task;
mod connect;
mod exit;
mod gateway;
mod output;
mod progress;
mod signals;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use cmd_cache::CacheCommand;
use cmd_chat::ChatArgs;
use cmd_emulator::EmulatorArgs;
use cmd_oss::{OssCommand, UploadArgs};
use connect::connect;
use exit::*;

#[derive(Parser, Debug)]
#[command(
    name = "dashscope",
    version,
    about = "DashScope temporary storage and multimodal calls, from the command line",
    after_help = "Exit codes: 0 ok, 1 partial batch failure, 2 usage, 3 auth, 4 rate/quota, 5 file, 6 network, 7 service, 8 task failed/cancelled/unknown, 9 gave up waiting, 70 internal, 74 stdout not writable, 130/143 upload batch stopped by SIGINT/SIGTERM."
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
    /// Region: beijing, singapore, us, hongkong, frankfurt, tokyo, or an id such as
    /// eu-central-1 (default: DASHSCOPE_API_REGION, else beijing).
    #[arg(long, global = true, value_name = "NAME")]
    region: Option<String>,
    /// Workspace every request names (X-DashScope-WorkSpace; default: DASHSCOPE_WORKSPACE_ID).
    /// Outside Beijing it also selects the region's workspace domain.
    #[arg(long, global = true, value_name = "ID")]
    workspace: Option<String>,
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
    /// Seconds to wait for a connection (default 10).
    #[arg(long = "connect-timeout", global = true, value_name = "SECS", value_parser = parse_secs)]
    connect_timeout: Option<std::time::Duration>,
    /// Seconds to wait for the next bytes of an answer, or for a stream's next event (default
    /// 300: a model may think for minutes; keep-alive comments do not count).
    #[arg(long = "read-timeout", global = true, value_name = "SECS", value_parser = parse_secs)]
    read_timeout: Option<std::time::Duration>,
    /// Seconds one request may take, all retries included (default 600; 0 for none). Uploads'
    /// form POSTs are not limited by it: their time grows with the file.
    #[arg(long, global = true, value_name = "SECS", value_parser = parse_deadline)]
    deadline: Option<Deadline>,
}

/// A positive number of seconds (fractions allowed).
fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n <= 86_400.0 => {
            Ok(std::time::Duration::from_secs_f64(n))
        }
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 86400"
        )),
    }
}

/// `--deadline`: seconds, or none (0).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(pub(crate) Option<std::time::Duration>);

fn parse_deadline(s: &str) -> Result<Deadline, String> {
    if s.trim().parse::<f64>() == Ok(0.0) {
        return Ok(Deadline(None));
    }
    parse_secs(s).map(|d| Deadline(Some(d)))
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
    Transcribe(cmd_task::TranscribeArgs),
    /// Image tasks.
    Image {
        #[command(subcommand)]
        command: cmd_task::ImageCommand,
    },
    /// Make a video from frames or an image (an async task).
    Video(cmd_task::VideoArgs),
    /// Query, wait for or cancel an async task by its id.
    Task {
        #[command(subcommand)]
        command: cmd_task::TaskCommand,
    },
    /// The upload cache: what was uploaded, for which model, until when.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Run the offline DashScope + OSS emulator until SIGINT/SIGTERM. Prints
    /// `DASHSCOPE_BASE_URL=http://127.0.0.1:PORT` as its first line.
    Emulator(EmulatorArgs),
    /// A local HTTP server for OpenAI-compatible and DashScope clients, with local files.
    /// Prints `OPENAI_BASE_URL=http://127.0.0.1:PORT/v1` as its first line.
    Gateway(gateway::GatewayArgs),
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
            let printed = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else if let Err(e) = printed {
                // --help or --version into a closed pipe or a full disk.
                note!("dashscope: cannot write to stdout: {e}");
                ExitCode::from(EXIT_OUTPUT)
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
            note!("dashscope: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_SOFTWARE);
        }
    };
    ExitCode::from(runtime.block_on(run(cli)))
}

async fn run(cli: Cli) -> u8 {
    let global = cli.global;
    // Commands that watch uploads connect themselves, with their observer.
    let connected = |code: Result<u8, u8>| code.unwrap_or_else(|code| code);
    match cli.command {
        Command::Emulator(args) => cmd_emulator::run_emulator(args).await,
        Command::Gateway(args) => gateway::run(&global, args).await,
        Command::OssUploadDotted(args)
        | Command::Oss {
            command: OssCommand::Upload(args),
        } => cmd_oss::run(&global, &args).await,
        Command::Cache { command } => cmd_cache::cache_command(&command),
        Command::Chat(args) => cmd_chat::run(&global, args).await,
        Command::Transcribe(args) => match connect(&global, None, None).await {
            Ok((client, _emulator)) => {
                connected(cmd_task::transcribe(&client, &global, args).await)
            }
            Err(code) => code,
        },
        Command::Image { command } => match connect(&global, None, None).await {
            Ok((client, _emulator)) => connected(cmd_task::image(&client, &global, command).await),
            Err(code) => code,
        },
        Command::Video(args) => match connect(&global, None, None).await {
            Ok((client, _emulator)) => connected(cmd_task::video(&client, &global, args).await),
            Err(code) => code,
        },
        Command::Task { command } => match connect(&global, None, None).await {
            Ok((client, _emulator)) => cmd_task::task(&client, &global, command).await,
            Err(code) => code,
        },
    }
}
