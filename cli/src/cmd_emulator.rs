//! `dashscope emulator`: the offline DashScope + OSS emulator as a process.

use crate::output::Out;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use dashscope_emulator::{
    Account, AccountStatus, DEFAULT_API_KEY, Emulator, EmulatorConfig, FaultKind, MediaKind,
    ModelSpec, Storage,
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
