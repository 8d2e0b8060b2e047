//! Output that tells the truth: a stdout that cannot be written (a closed pipe, a full disk)
//! ends every command with exit 74, never a panic or a silent 0; an upload batch prints each
//! URL as its upload lands, and SIGINT or SIGTERM stop it with what landed printed and cached
//! and no new upload started.

use super::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, TaskSteps};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CAT: &str = "tests/fixtures/cat.png";
const HELLO: &str = "tests/fixtures/hello.wav";

/// Where the command's stdout goes.
#[derive(Clone, Copy, Debug)]
enum Sink {
    /// A pipe whose reading end is closed before the command starts: every write is EPIPE
    /// (or, were SIGPIPE not ignored, the process would die of it without an exit code).
    ClosedPipe,
    /// `/dev/full`: every write is ENOSPC.
    Full,
    /// Captured.
    Piped,
}

fn command(args: &[&str], base_url: Option<&str>, cache_home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dashscope"));
    command
        .args(args)
        .env("XDG_CACHE_HOME", cache_home)
        .env("TZ", "UTC")
        .env_remove("RUST_LOG")
        .env_remove("DASHSCOPE_HTTP_BASE_URL")
        .env_remove("DASHSCOPE_WORKSPACE_ID")
        .env_remove("DASHSCOPE_API_REGION")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    match base_url {
        Some(url) => command
            .env("DASHSCOPE_API_KEY", DEFAULT_API_KEY)
            .env("DASHSCOPE_BASE_URL", url),
        None => command
            .env_remove("DASHSCOPE_API_KEY")
            .env_remove("DASHSCOPE_BASE_URL"),
    };
    command
}

fn run(args: &[&str], base_url: Option<&str>, cache_home: &Path, sink: Sink) -> Output {
    let mut command = command(args, base_url, cache_home);
    match sink {
        Sink::ClosedPipe => {
            let (reader, writer) = std::io::pipe().expect("a pipe");
            drop(reader);
            command.stdout(writer);
        }
        Sink::Full => {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("open /dev/full");
            command.stdout(full);
        }
        Sink::Piped => {
            command.stdout(Stdio::piped());
        }
    }
    command.output().expect("run dashscope")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// `count` files of different contents (the upload cache would serve copies of one file).
fn files(dir: &Path, count: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("a test folder");
    (0..count)
        .map(|i| {
            let path = dir.join(format!("file-{i}.png"));
            std::fs::write(&path, format!("not really a png, number {i}")).expect("a file");
            path
        })
        .collect()
}

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dashscope-cli-output-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_that_prints_says_a_failed_write_and_exits_74() {
    let emulator = Emulator::start(EmulatorConfig {
        task_steps: TaskSteps::Polls(1),
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let base = Some(emulator.base_url());
    let cache_home = support::fresh_cache_home();
    // Something to print for the task and cache commands.
    let submitted = run(
        &[
            "image",
            "edit",
            "--function",
            "colorization",
            "--base-image",
            CAT,
            "--async",
            "in colour",
        ],
        base,
        &cache_home,
        Sink::Piped,
    );
    assert_eq!(submitted.status.code(), Some(0), "{}", show(&submitted));
    let id = text(&submitted.stdout).trim().to_owned();
    let uploaded = run(
        &["oss", "upload", "-m", "qwen-vl-plus", "-f", CAT],
        base,
        &cache_home,
        Sink::Piped,
    );
    assert_eq!(uploaded.status.code(), Some(0), "{}", show(&uploaded));

    let image = [
        "image",
        "edit",
        "--function",
        "colorization",
        "--base-image",
        CAT,
        "--poll-interval",
        "0.01",
        "in colour",
    ];
    let commands: Vec<Vec<&str>> = vec![
        vec!["oss", "upload", "-m", "qwen-vl-plus", "-f", CAT],
        vec![
            "oss.upload",
            "--model",
            "qwen-vl-plus",
            "--file",
            CAT,
            "--json",
        ],
        vec!["chat", "-m", "qwen-vl-plus", "-f", CAT, "What is this?"],
        vec!["chat", "-m", "qwen-vl-plus", "--json", "What is this?"],
        vec!["chat", "-m", "qwen-vl-plus", "--native", "What is this?"],
        image.to_vec(),
        [&image[..8], &["--async", "in colour"]].concat(),
        vec![
            "video",
            "-m",
            "wan2.2-i2v-flash",
            "--image",
            CAT,
            "--poll-interval",
            "0.01",
            "a cat walks",
        ],
        vec![
            "transcribe",
            "-m",
            "paraformer-v2",
            "--poll-interval",
            "0.01",
            HELLO,
        ],
        vec!["task", "get", &id],
        vec!["task", "get", &id, "--json"],
        vec!["task", "wait", &id, "--poll-interval", "0.01"],
        vec!["task", "list"],
        vec!["cache", "list"],
        vec!["cache", "list", "--json"],
        vec!["--help"],
        vec!["--version"],
        vec!["emulator", "--memory"],
    ];
    for args in &commands {
        for sink in [Sink::ClosedPipe, Sink::Full] {
            let out = run(args, base, &cache_home, sink);
            let stderr = text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(74),
                "{args:?} into {sink:?} (None: killed by a signal)\n{}",
                show(&out)
            );
            assert!(
                stderr.contains("dashscope: cannot write to stdout"),
                "{args:?} into {sink:?}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        }
    }
    // The same commands into a pipe that is read print and exit 0: the 74 was the pipe's.
    for args in [vec!["task", "get", &id], vec!["cache", "list"]] {
        let out = run(&args, base, &cache_home, Sink::Piped);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", show(&out));
        assert!(!out.stdout.is_empty(), "{args:?}: {}", show(&out));
    }
}

/// A stderr that cannot be written loses its messages, never the command: the output and the
/// exit code are what they would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stderr_that_cannot_be_written_changes_nothing_else() {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let cache_home = support::fresh_cache_home();
    let cases: [(&[&str], i32); 3] = [
        (&["oss", "upload", "-m", "qwen-vl-plus", "-f", CAT], 0),
        (
            &["chat", "-m", "qwen-vl-plus", "-f", CAT, "What is this?"],
            0,
        ),
        (
            &[
                "oss",
                "upload",
                "-m",
                "qwen-vl-plus",
                "-f",
                "no/such/file.png",
            ],
            5,
        ),
    ];
    for (args, code) in cases {
        for closed in [true, false] {
            let mut command = command(args, Some(emulator.base_url()), &cache_home);
            if closed {
                let (reader, writer) = std::io::pipe().expect("a pipe");
                drop(reader);
                command.stderr(writer);
            } else {
                let full = std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .expect("open /dev/full");
                command.stderr(full);
            }
            let out = command
                .stdout(Stdio::piped())
                .output()
                .expect("run dashscope");
            assert_eq!(
                out.status.code(),
                Some(code),
                "{args:?}, stderr closed: {closed}: {}",
                text(&out.stdout)
            );
            assert_eq!(out.stdout.is_empty(), code != 0, "{args:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_stdout_closes_starts_no_more_uploads_and_caches_what_landed() {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let dir = test_dir("closed-batch");
    let paths = files(&dir, 5);
    let cache_home = support::fresh_cache_home();
    let mut args = vec!["oss", "upload", "-m", "qwen-vl-plus", "--concurrency", "1"];
    for p in &paths {
        args.extend(["-f", p.to_str().expect("a UTF-8 temp path")]);
    }
    let out = run(
        &args,
        Some(emulator.base_url()),
        &cache_home,
        Sink::ClosedPipe,
    );
    assert_eq!(out.status.code(), Some(74), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Broken pipe"), "{stderr}");
    assert!(stderr.contains("4 of 5 files not uploaded"), "{stderr}");
    // One at a time: the first URL could not be written, so no second upload started.
    assert_eq!(emulator.stats().uploads_ok, 1, "{stderr}");
    // What landed is in the upload cache: nothing stored is recorded nowhere.
    let listed = run(&["cache", "list"], None, &cache_home, Sink::Piped);
    let listed = text(&listed.stdout);
    let urls: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(urls.len(), 1, "{listed}");
    let key = urls[0].trim_start_matches("oss://");
    assert_eq!(
        emulator.object_bytes(key),
        std::fs::read(&paths[0]).ok(),
        "{listed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An OSS host in front of the emulator's that holds every upload until the test releases it,
/// and counts the uploads that arrived. Each request goes to the emulator on its own
/// connection, closed after the answer, so that every upload passes the gate.
struct Gate {
    url: String,
    arrived: Arc<AtomicUsize>,
    released: Arc<AtomicUsize>,
}

impl Gate {
    async fn start(oss_url: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let target = oss_url.trim_start_matches("http://").to_owned();
        let arrived = Arc::new(AtomicUsize::new(0));
        let released = Arc::new(AtomicUsize::new(0));
        let (seen, let_go) = (arrived.clone(), released.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (seen, let_go, target) = (seen.clone(), let_go.clone(), target.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match client.read(&mut byte).await {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let ticket = seen.fetch_add(1, Ordering::SeqCst);
                    while let_go.load(Ordering::SeqCst) <= ticket {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let line_end = head.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
                    let mut forwarded = head[..line_end + 2].to_vec();
                    forwarded.extend_from_slice(b"Connection: close\r\n");
                    forwarded.extend_from_slice(&head[line_end + 2..]);
                    if server.write_all(&forwarded).await.is_ok() {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self {
            url,
            arrived,
            released,
        }
    }

    fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    /// Lets `n` more uploads through, in the order they arrived.
    fn release(&self, n: usize) {
        self.released.fetch_add(n, Ordering::SeqCst);
    }

    /// Waits (a backstop of a minute, never a measure) until `n` uploads are held.
    async fn wait_for(&self, n: usize) {
        for _ in 0..12_000 {
            if self.arrived() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{} uploads arrived, expected {n}", self.arrived());
    }
}

/// An API host that answers every credential request with one real credential of the
/// emulator, whose `upload_host` is the gate: the uploads pass the gate to the emulator, which
/// checks them as ever.
async fn credential_through(emulator: &Emulator, gate: &Gate) -> support::Server {
    dashscope_oss::install_crypto_provider();
    let answer: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/uploads?action=getPolicy&model=qwen-vl-plus",
            emulator.base_url()
        ))
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .expect("a credential")
        .json()
        .await
        .expect("its JSON");
    let mut answer = answer;
    answer["data"]["upload_host"] = serde_json::Value::String(gate.url.clone());
    support::Server::start(support::Canned::json(200, &answer.to_string())).await
}

/// Reads the child's stderr on a thread, line by line, into a channel.
fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr piped");
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if send.send(line).is_err() {
                return;
            }
        }
    });
    receive
}

/// Waits for a stderr line containing `wanted`; every line read is kept in `seen`.
fn wait_line(lines: &std::sync::mpsc::Receiver<String>, wanted: &str, seen: &mut Vec<String>) {
    loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let found = line.contains(wanted);
                seen.push(line);
                if found {
                    return;
                }
            }
            Err(e) => panic!(
                "no line {wanted:?} ({e}); stderr so far:\n{}",
                seen.join("\n")
            ),
        }
    }
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{name}");
}

/// A batch of 6 files, 2 at a time, through the gate: the signal comes once both uploads in
/// flight are held, and the gate lets them land only after the command said it stops.
async fn interrupted_batch(signal_name: &str, no_cache: bool, second_signal: bool) {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let gate = Gate::start(emulator.oss_url()).await;
    let api = credential_through(&emulator, &gate).await;
    let dir = test_dir(&format!("signal-{signal_name}-{no_cache}-{second_signal}"));
    let paths = files(&dir, 6);
    let cache_home = support::fresh_cache_home();
    let mut args = vec!["oss", "upload", "-m", "qwen-vl-plus", "--concurrency", "2"];
    if no_cache {
        args.push("--no-cache");
    }
    for p in &paths {
        args.extend(["-f", p.to_str().expect("a UTF-8 temp path")]);
    }
    let mut child = command(&args, Some(&api.url), &cache_home)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start dashscope");
    let lines = stderr_lines(&mut child);
    gate.wait_for(2).await;
    signal(&child, signal_name);
    let mut stderr = Vec::new();
    wait_line(&lines, "starting no more uploads", &mut stderr);
    if second_signal {
        signal(&child, signal_name);
        wait_line(&lines, "aborting the uploads in flight", &mut stderr);
    } else {
        gate.release(usize::MAX / 2);
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("dashscope ends");
    stderr.extend(lines.iter());
    let stderr = stderr.join("\n");
    let expected = if signal_name == "INT" { 130 } else { 143 };
    assert_eq!(
        out.status.code(),
        Some(expected),
        "{}\n{stderr}",
        show(&out)
    );
    // No upload started after the signal.
    assert_eq!(gate.arrived(), 2, "{stderr}");
    let stdout = text(&out.stdout);
    let printed: Vec<&str> = stdout.lines().collect();
    if second_signal {
        // Aborted while held: nothing landed, nothing printed.
        assert!(printed.is_empty(), "{stdout}");
        assert_eq!(emulator.stats().uploads_ok, 0, "{stderr}");
    } else {
        // Every line printed is a URL the emulator stored, of the file in that position, and
        // every object stored was printed.
        assert_eq!(printed.len(), 2, "{stdout}\n{stderr}");
        for (line, path) in printed.iter().zip(&paths) {
            let key = line.trim_start_matches("oss://");
            assert_eq!(
                emulator.object_bytes(key),
                std::fs::read(path).ok(),
                "{line}"
            );
        }
        assert_eq!(emulator.stats().uploads_ok, 2, "{stderr}");
    }
    let not_uploaded = if second_signal { 6 } else { 4 };
    assert!(
        stderr.contains(&format!("{not_uploaded} of 6 files not uploaded")),
        "{stderr}"
    );
    // And the cache has what landed, unless told to keep none.
    let listed = run(&["cache", "list"], None, &cache_home, Sink::Piped);
    let listed = text(&listed.stdout);
    let mut cached: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split('\t').next())
        .collect();
    cached.sort_unstable();
    let mut expected_cached = if no_cache { Vec::new() } else { printed };
    expected_cached.sort_unstable();
    assert_eq!(cached, expected_cached, "{listed}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_a_batch_with_what_landed_printed_and_cached() {
    interrupted_batch("INT", false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_batch_without_the_cache_with_what_landed_printed() {
    interrupted_batch("TERM", true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_aborts_the_uploads_in_flight() {
    interrupted_batch("INT", false, true).await;
}

/// The library's batch as a stream: an outcome as soon as its upload lands (before the next
/// upload even started), and a stop that lets the upload in flight end and starts no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_streams_its_outcomes_and_stops_on_request() {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let gate = Gate::start(emulator.oss_url()).await;
    let api = credential_through(&emulator, &gate).await;
    let dir = test_dir("library-stream");
    let paths = files(&dir, 4);
    let client = Arc::new(
        dashscope_oss::Client::new(
            dashscope_oss::Config::new()
                .api_key(support::TEST_KEY)
                .base_url(&api.url)
                .upload_concurrency(1),
        )
        .expect("client"),
    );
    let (sources, stop) = (paths.clone(), Arc::new(std::sync::Mutex::new(None)));
    let (taken, stopper) = (client.clone(), stop.clone());
    // The batch lives in a task, which sends its outcomes as they come.
    let (send, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut batch = taken.upload_many("qwen-vl-plus", sources);
        *stopper.lock().expect("lock") = Some(batch.stop_handle());
        while let Some(outcome) = batch.next().await {
            let _ = send.send(outcome);
        }
    });
    gate.wait_for(1).await;
    gate.release(1);
    let first = outcomes.recv().await.expect("an outcome");
    let first = first.expect("the first upload");
    assert_eq!(
        emulator.object_bytes(&first.key),
        std::fs::read(&paths[0]).ok()
    );
    // The second upload is held at the gate: the first outcome did not wait for the batch.
    gate.wait_for(2).await;
    assert_eq!(emulator.stats().uploads_ok, 1);
    stop.lock()
        .expect("lock")
        .as_ref()
        .expect("the stop handle")
        .stop();
    gate.release(usize::MAX / 2);
    task.await.expect("the batch ends");
    let mut rest = Vec::new();
    while let Some(outcome) = outcomes.recv().await {
        rest.push(outcome);
    }
    assert_eq!(rest.len(), 1, "{rest:?}");
    let second = rest[0].as_ref().expect("the upload in flight lands");
    assert_eq!(
        emulator.object_bytes(&second.key),
        std::fs::read(&paths[1]).ok()
    );
    // Nothing started after the stop.
    assert_eq!(gate.arrived(), 2);
    assert_eq!(emulator.stats().uploads_ok, 2);
    // Awaited whole, a batch is every outcome in input order, as before.
    let all = client.upload_many("qwen-vl-plus", paths.clone()).await;
    assert_eq!(all.len(), 4);
    for (outcome, path) in all.iter().zip(&paths) {
        let file = outcome.as_ref().expect("an upload");
        assert_eq!(emulator.object_bytes(&file.key), std::fs::read(path).ok());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `dashscope oss upload … | head -n 1` on a 1,000-file batch: the first line arrives, the pipe
/// closes, and the command ends with 74, having started no more uploads than it had in hand, and
/// with every object it stored in the upload cache. (The 1,000 JSON lines are more than a pipe
/// holds, so the command is still writing when the reader goes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_n_1_on_a_large_batch_ends_it_with_74_and_loses_no_upload() {
    use std::io::BufRead;
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let dir = test_dir("head-n-1");
    let paths = files(&dir, 1000);
    let list = dir.join("list.txt");
    let names: Vec<&str> = paths
        .iter()
        .map(|p| p.to_str().expect("a UTF-8 temp path"))
        .collect();
    std::fs::write(&list, names.join("\n")).expect("the list");
    let cache_home = support::fresh_cache_home();
    let mut child = command(
        &[
            "oss",
            "upload",
            "-m",
            "qwen-vl-plus",
            "--json",
            "--from-file",
            list.to_str().expect("UTF-8"),
        ],
        Some(emulator.base_url()),
        &cache_home,
    )
    .stdout(Stdio::piped())
    .spawn()
    .expect("start dashscope");
    let stdout = child.stdout.take().expect("stdout piped");
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the first line");
        line
    })
    .await
    .expect("join");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("dashscope ends");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{first}\n{stderr}");
    let first: serde_json::Value = serde_json::from_str(&first).expect("a JSON line");
    let key = first["url"]
        .as_str()
        .expect("a URL")
        .trim_start_matches("oss://");
    assert_eq!(emulator.object_bytes(key), std::fs::read(&paths[0]).ok());
    let stored = emulator.stats().uploads_ok;
    assert!(
        stored < 1000,
        "{stored} uploads after the pipe closed\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("{} of 1000 files not uploaded", 1000 - stored)),
        "{stored}: {stderr}"
    );
    let listed = run(&["cache", "list"], None, &cache_home, Sink::Piped);
    assert_eq!(
        text(&listed.stdout).lines().count() as u64,
        stored,
        "every stored object is cached\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
