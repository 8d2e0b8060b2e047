//! The emulator under load, as a separate process so that its own memory and descriptors are
//! measured: rounds of 200 concurrent uploads, then one 2 GiB upload streamed from a generator.
//! Prints the figures; asserts nothing about time (the machine is noisy), but fails if memory or
//! descriptors grow without bound or an upload is lost.
//!
//! `cargo bench --features cli --bench emulator_load` (`EMULATOR_LOAD_GIB=0` skips the big file).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use futures_util::StreamExt;

const BOUNDARY: &str = "----emulator-load-boundary";

fn proc_status(pid: u32, field: &str) -> u64 {
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

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn head(fields: &[(String, String)], file_name: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (n, v) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
    body
}

fn tail() -> Vec<u8> {
    format!("\r\n--{BOUNDARY}--\r\n").into_bytes()
}

async fn credential(http: &reqwest::Client, base: &str) -> serde_json::Value {
    let r = http
        .get(format!(
            "{base}/api/v1/uploads?action=getPolicy&model=qwen-vl-plus"
        ))
        .bearer_auth("sk-emulator-default")
        .send()
        .await
        .expect("credential");
    let v: serde_json::Value = r.json().await.expect("json");
    v["data"].clone()
}

fn fields(data: &serde_json::Value, name: &str) -> Vec<(String, String)> {
    let s = |k: &str| data[k].as_str().unwrap_or_default().to_owned();
    vec![
        ("OSSAccessKeyId".into(), s("oss_access_key_id")),
        ("Signature".into(), s("signature")),
        ("policy".into(), s("policy")),
        ("key".into(), format!("{}/{name}", s("upload_dir"))),
        ("x-oss-object-acl".into(), s("x_oss_object_acl")),
        ("x-oss-forbid-overwrite".into(), s("x_oss_forbid_overwrite")),
        ("success_action_status".into(), "200".into()),
    ]
}

/// Stops the emulator process however `main` ends, a failed assertion included.
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

#[tokio::main]
async fn main() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dashscope"))
        .args([
            "emulator",
            "--policy-lifetime",
            "3600",
            "--model",
            "qwen-vl-plus=4096",
        ])
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
    dashscope_oss::install_crypto_provider();
    let http = reqwest::Client::new();
    let data = credential(&http, &base).await;
    let oss = data["upload_host"].as_str().unwrap_or_default().to_owned();
    let payload = vec![0x5au8; 1024 * 1024];

    println!(
        "emulator pid {pid}; start: RSS {} KiB, {} fds",
        proc_status(pid, "VmRSS:"),
        open_fds(pid)
    );
    // Allocators keep what they once used: growth is judged after three warm-up rounds.
    let mut warm = (0, 0);
    for round in 1..=8 {
        let started = Instant::now();
        let uploads = (0..200).map(|i| {
            let mut body = head(&fields(&data, &format!("r{round}-{i}.bin")), "f.bin");
            body.extend_from_slice(&payload);
            body.extend_from_slice(&tail());
            let request = http
                .post(&oss)
                .header(
                    "Content-Type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(body);
            async move { request.send().await.map(|r| r.status().as_u16()) }
        });
        let statuses = futures_util::future::join_all(uploads).await;
        let ok = statuses.iter().filter(|s| matches!(s, Ok(200))).count();
        let (rss, fds) = (proc_status(pid, "VmRSS:"), open_fds(pid));
        println!(
            "round {round}: 200 concurrent 1 MiB uploads, {ok} ok, {:.2} s; RSS {rss} KiB, {fds} fds, {} threads",
            started.elapsed().as_secs_f64(),
            proc_status(pid, "Threads:")
        );
        assert_eq!(ok, 200, "uploads lost: {statuses:?}");
        if round == 3 {
            warm = (rss, fds);
        }
    }
    let (rss, fds) = (proc_status(pid, "VmRSS:"), open_fds(pid));
    assert!(
        rss < warm.0 + 32 * 1024,
        "RSS grew from {} to {rss} KiB",
        warm.0
    );
    assert!(fds <= warm.1 + 16, "fds grew from {} to {fds}", warm.1);

    let gib: u64 = std::env::var("EMULATOR_LOAD_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    if gib > 0 {
        let size = gib * 1024 * 1024 * 1024;
        let head = head(&fields(&data, "big.bin"), "big.bin");
        let tail = tail();
        let length = head.len() as u64 + size + tail.len() as u64;
        let chunk = bytes::Bytes::from(vec![0xa5u8; 1024 * 1024]);
        let chunks = size / chunk.len() as u64;
        let stream = futures_util::stream::iter(
            std::iter::once(bytes::Bytes::from(head))
                .chain((0..chunks).map(move |_| chunk.clone()))
                .chain(std::iter::once(bytes::Bytes::from(tail))),
        )
        .map(Ok::<_, std::io::Error>);
        let before = proc_status(pid, "VmHWM:");
        let started = Instant::now();
        let status = http
            .post(&oss)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .header("Content-Length", length.to_string())
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map(|r| r.status().as_u16());
        let secs = started.elapsed().as_secs_f64();
        let peak = proc_status(pid, "VmHWM:");
        println!(
            "one {gib} GiB upload: {status:?} in {secs:.1} s ({:.0} MiB/s); emulator peak RSS {before} KiB before, {peak} KiB after",
            size as f64 / 1048576.0 / secs
        );
        assert_eq!(status.ok(), Some(200));
        assert!(
            peak < before + 64 * 1024,
            "peak RSS grew by {} KiB during a {gib} GiB upload",
            peak - before
        );
    }
}
