//! `dashscope emulator` as a process: its first stdout line is the base URL, it serves until
//! SIGTERM, and it takes accounts from flags.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the emulator did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn prints_its_base_url_first_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dashscope"))
        .args([
            "emulator",
            "--account",
            "team=sk-team-1,sk-team-2",
            "--fault",
            "policy_throttle=1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dashscope emulator");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("first line");
    let base = first
        .trim()
        .strip_prefix("DASHSCOPE_BASE_URL=http://127.0.0.1:")
        .map(|port| format!("http://127.0.0.1:{port}"));
    let Some(base) = base else {
        let _ = child.kill();
        panic!("first line was {first:?}");
    };
    dashscope_oss::install_crypto_provider();
    let http = reqwest::Client::new();
    let stats = http
        .get(format!("{base}/emulator/v1/stats"))
        .send()
        .await
        .expect("stats");
    assert_eq!(stats.status(), 200);
    let policy = |key: &'static str| {
        http.get(format!(
            "{base}/api/v1/uploads?action=getPolicy&model=qwen-vl-plus"
        ))
        .bearer_auth(key)
        .send()
    };
    // The fault given at start is spent on the first credential request.
    assert_eq!(policy("sk-team-2").await.expect("answer").status(), 429);
    assert_eq!(policy("sk-team-2").await.expect("answer").status(), 200);
    // --account replaces the default account.
    assert_eq!(
        policy("sk-emulator-default")
            .await
            .expect("answer")
            .status(),
        401
    );
    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_flags_are_usage_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_dashscope"))
        .args(["emulator", "--account", "no-equals-sign"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME=KEY"));
    let out = Command::new(env!("CARGO_BIN_EXE_dashscope"))
        .args(["emulator", "--fault", "no_such_fault=1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
