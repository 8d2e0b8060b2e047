//! The emulator under load, as a separate process so that its own memory and descriptors are
//! measured: rounds of 200 concurrent 1 MiB uploads, then one 2 GiB upload streamed from a
//! generator. After each round the emulator's clock moves past the objects' lifetime and its
//! heap at rest is read (`Stats::heap_bytes`) beside its RSS. Prints the figures; asserts nothing
//! about time (the machine is noisy), but fails if the heap at rest keeps growing, descriptors
//! stay open or an upload is lost.
//!
//! `cargo bench -p dashscope-cli --bench emulator_load` (`EMULATOR_LOAD_ROUNDS`, default 30;
//! `EMULATOR_LOAD_GIB=0` skips the big file).

#[path = "../tests/process_support/mod.rs"]
mod process_support;

use std::time::Instant;

use process_support::EmulatorProcess;

use futures_util::StreamExt;

const BOUNDARY: &str = "----emulator-load-boundary";

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

#[tokio::main]
async fn main() {
    let emulator = EmulatorProcess::spawn(
        env!("CARGO_BIN_EXE_dashscope"),
        &["--policy-lifetime", "3600", "--model", "qwen-vl-plus=4096"],
    );
    let (pid, base) = (emulator.pid, emulator.base.clone());
    dashscope_oss::install_crypto_provider();
    // No idle connections: each closes once answered, so the emulator can come to rest.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client");
    let mut data = credential(&http, &base).await;
    let oss = data["upload_host"].as_str().unwrap_or_default().to_owned();
    let payload = vec![0x5au8; 1024 * 1024];

    println!(
        "emulator pid {pid}; start: RSS {} KiB, {} fds",
        emulator.status("VmRSS:"),
        emulator.fds()
    );
    let rounds: usize = std::env::var("EMULATOR_LOAD_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let at_rest_fds = emulator.fds();
    let mut heap = Vec::new();
    for round in 1..=rounds {
        // A new credential each round: the last one expired when the clock moved.
        data = credential(&http, &base).await;
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
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(ok, 200, "uploads lost: {statuses:?}");
        // Past the objects' 48 h and the credential's hour, every connection closed.
        let stats = emulator.at_rest(&http, at_rest_fds, round).await;
        let bytes = stats["heap_bytes"]
            .as_u64()
            .unwrap_or_else(|| panic!("no heap figure on this platform: {stats}"));
        println!(
            "round {round}: 200 concurrent 1 MiB uploads, {ok} ok, {secs:.2} s; at rest: heap {} KiB, RSS {} KiB, {} fds, {} objects",
            bytes / 1024,
            emulator.status("VmRSS:"),
            emulator.fds(),
            stats["objects"]
        );
        // Two rounds fill the runtime's and the allocator's pools before anything is judged.
        if round > 2 {
            heap.push(bytes);
        }
    }
    if let Err(leak) = process_support::judge_heap(&heap, 512 * 1024) {
        panic!("{leak}");
    }

    let gib: u64 = std::env::var("EMULATOR_LOAD_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    if gib > 0 {
        data = credential(&http, &base).await;
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
        let before = emulator.status("VmHWM:");
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
        let peak = emulator.status("VmHWM:");
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
