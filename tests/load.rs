//! The emulator under load, as its own process: 200 concurrent clients (credential, upload,
//! model call) for several rounds. No error that no fault caused, and no growth in the
//! emulator's memory or open descriptors once warm. (The 2 GiB upload and the figures in the
//! README come from `cargo bench --bench emulator_load`.)
#![cfg(feature = "cli")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use dashscope_oss::chat::{ChatRequest, Message};
use dashscope_oss::{Client, Config, UploadSource};

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_clients() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dashscope"))
        .args(["emulator"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the emulator");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let _stop = Stop(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let base = line
        .trim()
        .trim_start_matches("DASHSCOPE_BASE_URL=")
        .to_owned();

    // 200 clients, each with its own connection pool and credential cache.
    let clients: Vec<Client> = (0..200)
        .map(|_| {
            Client::new(Config::new().api_key("sk-emulator-default").base_url(&base))
                .expect("client")
        })
        .collect();
    let png: Vec<u8> = [
        &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0"[..],
        &[7u8; 64 * 1024][..],
    ]
    .concat();
    let mut warm = (0, 0);
    for round in 1..=8 {
        let work = clients.iter().enumerate().map(|(i, client)| {
            let png = png.clone();
            async move {
                let file = client
                    .upload(
                        "qwen-vl-plus",
                        UploadSource::bytes(format!("r{round}-{i}.png"), png),
                    )
                    .await?;
                client
                    .chat(
                        ChatRequest::new("qwen-vl-plus")
                            .message(Message::user().image(file.url.as_str()).text("?")),
                    )
                    .await
                    .map(|_| ())
            }
        });
        let results = futures_util::future::join_all(work).await;
        let errors: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(ToString::to_string))
            .collect();
        assert!(
            errors.is_empty(),
            "round {round}: {} errors, first: {:?}",
            errors.len(),
            errors.first()
        );
        let (rss, open) = (status_kib(pid, "VmRSS:"), fds(pid));
        println!(
            "round {round}: 200 clients ok; emulator RSS {rss} KiB, {open} fds, {} threads",
            status_kib(pid, "Threads:")
        );
        if round == 4 {
            warm = (rss, open);
        }
    }
    let (rss, open) = (status_kib(pid, "VmRSS:"), fds(pid));
    // In memory the objects themselves add 200 × 64 KiB = 12.5 MiB a round: allow them and no more.
    assert!(
        rss <= warm.0 + 3 * 13 * 1024 + 16 * 1024,
        "RSS grew from {} to {rss} KiB",
        warm.0
    );
    assert!(open <= warm.1 + 16, "fds grew from {} to {open}", warm.1);
}
