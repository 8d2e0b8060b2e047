//! `dashscope emulator`: the offline DashScope + OSS emulator as a process.

use crate::output::Out;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use dashscope_emulator::{
    Account, AccountStatus, DEFAULT_API_KEY, Emulator, EmulatorConfig, FaultKind, MediaKind,
    ModelSpec, Storage, catalogue,
};

use crate::exit::*;

#[derive(Args, Debug)]
pub(crate) struct EmulatorArgs {
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
    /// A model, `NAME=FAMILY` (a family of the catalogue: vl, omni, text, t2i, i2v, …; see the
    /// emulator's docs), `NAME=FAMILY:MAX_MB`, or `NAME=MAX_MB` (the family its name matches,
    /// else a chat model reading images, audio and video, with that file-size limit);
    /// repeatable.
    #[arg(long = "model", value_name = "NAME=FAMILY[:MAX_MB]", value_parser = parse_model)]
    models: Vec<(String, ModelSpec)>,
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

fn parse_model(s: &str) -> Result<(String, ModelSpec), String> {
    let (name, what) = s
        .split_once('=')
        .ok_or("expected NAME=FAMILY, NAME=FAMILY:MAX_MB or NAME=MAX_MB")?;
    let name = name.trim();
    if name.is_empty() {
        return Err("the model name is empty".to_owned());
    }
    let size = |mb: &str| match mb.trim().parse::<u64>() {
        Ok(mb) if mb > 0 => Ok(mb),
        _ => Err(format!("{mb:?} is not a positive whole number of MiB")),
    };
    let (family, mb) = match what.split_once(':') {
        Some((family, mb)) => (Some(family.trim()), Some(size(mb)?)),
        None if what.trim().bytes().all(|b| b.is_ascii_digit()) => (None, Some(size(what)?)),
        None => (Some(what.trim()), None),
    };
    let mut spec = match family {
        Some(family) => ModelSpec::of(catalogue::family_named(family).ok_or_else(|| {
            let known: Vec<&str> = catalogue::FAMILIES.iter().map(|f| f.name).collect();
            format!("unknown family {family:?}; known: {}", known.join(", "))
        })?),
        None => catalogue::family_of(name).map_or_else(
            || ModelSpec {
                accepts: vec![MediaKind::Image, MediaKind::Audio, MediaKind::Video],
                ..ModelSpec::default()
            },
            ModelSpec::of,
        ),
    };
    if let Some(mb) = mb {
        spec.max_file_size_mb = mb;
    }
    Ok((name.to_owned(), spec))
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

pub(crate) async fn run_emulator(args: EmulatorArgs) -> u8 {
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
    for (name, spec) in args.models {
        config.models.insert(name, spec);
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
            note!("dashscope emulator: {e}");
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
    // Nobody reads a URL that cannot be written: the emulator would serve no one.
    if let Err(code) = Out::new().line(&format!("DASHSCOPE_BASE_URL={}", emulator.base_url())) {
        emulator.shutdown().await;
        return code;
    }
    note!(
        "DashScope emulator: API {} , OSS {}",
        emulator.base_url(),
        emulator.oss_url()
    );
    if default_key {
        note!("  API key of the default account: {DEFAULT_API_KEY}");
    }
    note!(
        "  stats: GET {}/emulator/v1/stats; stop with Ctrl-C",
        emulator.base_url()
    );
    emulator.run_until(stop).await;
    EXIT_OK
}
