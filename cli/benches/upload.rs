//! Uploading, side by side with curl, against the emulator over loopback.
//!
//! 1. One 1 GiB file: our client (`Client::upload`, in a child process of its own so that its
//!    peak RSS is its own) against curl doing the same two steps (`curl` for the credential, then
//!    `curl -F … -F file=@…` with the file last). Rounds alternate; medians and the ratio printed.
//! 2. 1,000 files of 100 KB in one process with `upload_many`: wall time and the number of
//!    credential requests the emulator saw.
//!
//! `cargo bench -p dashscope-cli --bench upload` (`UPLOAD_BENCH_ROUNDS`, default 3;
//! `UPLOAD_BENCH_MIB`, default 1024).

#[path = "../tests/process_support/mod.rs"]
mod process_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use process_support::EmulatorProcess;

use dashscope_oss::{Client, Config, UploadSource};

const KEY: &str = "sk-emulator-default";
const MODEL: &str = "qwen-vl-plus";

fn hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The transfer alone, as curl does it: no upload cache (whose cost on a miss, one hashing read
/// of the file, benches/cache.rs measures).
fn client(base: &str) -> Client {
    Client::new(Config::new().api_key(KEY).base_url(base).no_upload_cache()).expect("client")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Child modes: `upload BASE FILE` and `many BASE DIR`.
    if args.len() == 4 && args[1] == "upload" {
        return child_upload(&args[2], Path::new(&args[3]));
    }
    if args.len() == 4 && args[1] == "many" {
        return child_many(&args[2], Path::new(&args[3]));
    }

    let rounds: usize = env_or("UPLOAD_BENCH_ROUNDS", 3);
    let mib: u64 = env_or("UPLOAD_BENCH_MIB", 1024);
    let dir = std::env::temp_dir().join(format!("dashscope-upload-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let big = dir.join("big.bin");
    write_file(&big, mib * 1024 * 1024);

    let emulator = EmulatorProcess::spawn(
        env!("CARGO_BIN_EXE_dashscope"),
        &[
            "--policy-lifetime",
            "3600",
            "--model",
            &format!("{MODEL}=4096"),
        ],
    );
    let base = emulator.base.clone();
    let me = std::env::current_exe().expect("current exe");

    println!("{mib} MiB upload to the emulator over loopback, {rounds} rounds, alternating:");
    let (mut ours, mut theirs, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let out = Command::new(&me)
            .args(["upload", &base, &big.display().to_string()])
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut fields = text.split_whitespace();
        let secs: f64 = fields
            .next()
            .and_then(|v| v.parse().ok())
            .expect("child seconds");
        let hwm: u64 = fields
            .next()
            .and_then(|v| v.parse().ok())
            .expect("child hwm");
        let curl_secs = curl_upload(&base, &big);
        println!(
            "  round {round}: dashscope-oss {secs:.2} s (peak RSS {:.1} MiB), curl {curl_secs:.2} s",
            hwm as f64 / 1024.0
        );
        ours.push(secs);
        theirs.push(curl_secs);
        rss.push(hwm as f64 / 1024.0);
    }
    let (a, b) = (median(ours), median(theirs));
    println!(
        "  median: dashscope-oss {a:.2} s, curl {b:.2} s, ratio {:.3}; dashscope-oss peak RSS median {:.1} MiB",
        a / b,
        median(rss)
    );

    let many = dir.join("many");
    std::fs::create_dir_all(&many).expect("dir");
    for i in 0..1000 {
        write_file(&many.join(format!("img-{i:04}.png")), 100 * 1000);
    }
    let before = credential_requests(&base);
    let out = Command::new(&me)
        .args(["many", &base, &many.display().to_string()])
        .output()
        .expect("child");
    let secs: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("child seconds");
    let requests = credential_requests(&base) - before;
    println!(
        "1,000 files of 100 KB with upload_many: {secs:.2} s, {requests} credential request(s)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn write_file(path: &Path, size: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let block: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).expect("write");
        left -= n as u64;
    }
    f.flush().expect("flush");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn child_upload(base: &str, file: &Path) {
    let started = Instant::now();
    let uploaded = runtime().block_on(client(base).upload(MODEL, file));
    let secs = started.elapsed().as_secs_f64();
    let uploaded = uploaded.expect("upload");
    assert!(uploaded.url.starts_with("oss://"));
    println!("{secs} {}", hwm_kib());
}

fn child_many(base: &str, dir: &Path) {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    let started = Instant::now();
    let results = runtime().block_on(
        client(base)
            .upload_many(MODEL, paths.into_iter().map(UploadSource::path))
            .into_future(),
    );
    let secs = started.elapsed().as_secs_f64();
    let failed = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(failed, 0, "{:?}", results.iter().find(|r| r.is_err()));
    println!("{secs}");
}

fn curl_upload(base: &str, file: &Path) -> f64 {
    let started = Instant::now();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "-H",
            &format!("Authorization: Bearer {KEY}"),
        ])
        .arg(format!(
            "{base}/api/v1/uploads?action=getPolicy&model={MODEL}"
        ))
        .output()
        .expect("curl credential");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("credential json");
    let d = &v["data"];
    let s = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
    let key = format!("{}/curl-{}.bin", s("upload_dir"), std::process::id());
    let status = Command::new("curl")
        .args(["-sS", "--fail", "-o", "/dev/null"])
        .args(["-F", &format!("OSSAccessKeyId={}", s("oss_access_key_id"))])
        .args(["-F", &format!("Signature={}", s("signature"))])
        .args(["-F", &format!("policy={}", s("policy"))])
        .args(["-F", &format!("key={key}")])
        .args(["-F", &format!("x-oss-object-acl={}", s("x_oss_object_acl"))])
        .args([
            "-F",
            &format!("x-oss-forbid-overwrite={}", s("x_oss_forbid_overwrite")),
        ])
        .args(["-F", "success_action_status=200"])
        .args(["-F", &format!("file=@{}", file.display())])
        .arg(s("upload_host"))
        .status()
        .expect("curl upload");
    let secs = started.elapsed().as_secs_f64();
    assert!(status.success(), "curl upload failed");
    secs
}

fn credential_requests(base: &str) -> u64 {
    let out = Command::new("curl")
        .args(["-sS", &format!("{base}/emulator/v1/stats")])
        .output()
        .expect("stats");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["policy_requests"].as_u64().unwrap_or(0)
}
