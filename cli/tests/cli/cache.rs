//! The CLI's upload cache: on by default in `$XDG_CACHE_HOME/dashscope-oss`, shared by processes
//! running at once, `--no-cache`, `cache list|clear`, and a writer killed mid-write.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\xc0\0\0\x01\x18\x08\x02\0\0\0";

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "dashscope-oss-cli-cache-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        Self(dir)
    }

    /// PNG files of distinct contents, left to settle (see tests/cache.rs).
    fn pngs(&self, n: usize) -> Vec<PathBuf> {
        let files = (0..n)
            .map(|i| {
                let path = self.0.join(format!("image-{i}.png"));
                let mut bytes = PNG.to_vec();
                bytes.extend_from_slice(format!("image {i}").as_bytes());
                std::fs::write(&path, bytes).expect("write");
                path
            })
            .collect();
        std::thread::sleep(Duration::from_millis(250));
        files
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn command(home: &Path, emulator: &Emulator, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dashscope"));
    command
        .args(args)
        .env("XDG_CACHE_HOME", home)
        .env("DASHSCOPE_API_KEY", DEFAULT_API_KEY)
        .env("DASHSCOPE_BASE_URL", emulator.base_url())
        .env_remove("RUST_LOG")
        .env_remove("DASHSCOPE_OSS_TEST_PAUSE_MID_WRITE")
        .stdin(Stdio::null());
    command
}

fn run(home: &Path, emulator: &Emulator, args: &[&str]) -> Output {
    let out = command(home, emulator, args)
        .output()
        .expect("run dashscope");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn upload(home: &Path, emulator: &Emulator, file: &Path) -> Output {
    let file = file.to_string_lossy();
    run(
        home,
        emulator,
        &["oss", "upload", "-m", "qwen-vl-plus", "-f", &file],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_share_one_cache_and_lose_no_entry() {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let dir = Dir::new("eight");
    let home = dir.0.join("home");
    let files = dir.pngs(8);
    let spawn_all = || -> Vec<Child> {
        files
            .iter()
            .map(|f| {
                let f = f.to_string_lossy();
                command(
                    &home,
                    &emulator,
                    &["oss", "upload", "-m", "qwen-vl-plus", "-f", &f],
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
            })
            .collect()
    };
    let finish = |children: Vec<Child>| -> Vec<String> {
        children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().expect("wait");
                assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
                assert!(
                    !text(&out.stderr).contains("warning"),
                    "{}",
                    text(&out.stderr)
                );
                text(&out.stdout).trim().to_owned()
            })
            .collect()
    };
    let first = finish(spawn_all());
    assert_eq!(emulator.stats().uploads_ok, 8);
    // Every process's entry survived the others' writes.
    let list = run(&home, &emulator, &["cache", "list", "--json"]);
    let listed: Vec<serde_json::Value> = text(&list.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(listed.len(), 8, "{}", text(&list.stdout));
    for url in &first {
        assert!(
            listed.iter().any(|e| e["url"] == url.as_str()),
            "{url} not listed"
        );
    }
    // Eight more processes at once: all from the cache, nothing sent.
    let second = finish(spawn_all());
    assert_eq!(second, first);
    let stats = emulator.stats();
    assert_eq!((stats.uploads_ok, stats.policy_requests), (8, 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_on_by_default_says_so_and_can_be_listed_cleared_and_skipped() {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let dir = Dir::new("default");
    let home = dir.0.join("home");
    let file = dir.pngs(1).remove(0);
    let first = upload(&home, &emulator, &file);
    let url = text(&first.stdout).trim().to_owned();
    assert!(!text(&first.stderr).contains("from the upload cache"));
    let second = upload(&home, &emulator, &file);
    assert_eq!(text(&second.stdout).trim(), url);
    assert!(
        text(&second.stderr).contains("from the upload cache (nothing sent), expires"),
        "{}",
        text(&second.stderr)
    );
    assert_eq!(emulator.stats().uploads_ok, 1);
    // chat uses it too.
    let f = file.to_string_lossy();
    let chat = run(
        &home,
        &emulator,
        &["chat", "-m", "qwen-vl-plus", "-f", &f, "what?"],
    );
    assert_eq!(chat.status.code(), Some(0), "{}", text(&chat.stderr));
    assert!(text(&chat.stdout).contains(&url));
    assert_eq!(emulator.stats().uploads_ok, 1);

    let list = run(&home, &emulator, &["cache", "list"]);
    let listed = text(&list.stdout);
    assert!(
        listed.contains(&url) && listed.contains("qwen-vl-plus"),
        "{listed}"
    );
    assert!(listed.contains(&*file.canonicalize().expect("abs").to_string_lossy()));

    // --no-cache uploads and remembers nothing new.
    let skipped = run(
        &home,
        &emulator,
        &[
            "--no-cache",
            "oss",
            "upload",
            "-m",
            "qwen-vl-plus",
            "-f",
            &f,
        ],
    );
    assert_ne!(text(&skipped.stdout).trim(), url);
    assert_eq!(emulator.stats().uploads_ok, 2);

    let cleared = run(&home, &emulator, &["cache", "clear"]);
    assert_eq!(cleared.status.code(), Some(0));
    assert!(
        text(&cleared.stderr).contains("forgot 1 upload(s)"),
        "{}",
        text(&cleared.stderr)
    );
    assert_eq!(text(&run(&home, &emulator, &["cache", "list"]).stdout), "");
    let third = upload(&home, &emulator, &file);
    assert_ne!(text(&third.stdout).trim(), url);
    assert_eq!(emulator.stats().uploads_ok, 3);

    // A damaged file: a warning, and the upload goes on.
    let cache_file = home.join("dashscope-oss").join("uploads.json");
    std::fs::write(&cache_file, b"{\"version\":1,\"entr").expect("damage");
    let after = upload(&home, &emulator, &file);
    assert_eq!(after.status.code(), Some(0));
    assert!(
        text(&after.stderr).contains("warning: the upload cache")
            && text(&after.stderr).contains("starting afresh"),
        "{}",
        text(&after.stderr)
    );
}

#[cfg(feature = "test-hooks")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_write_leaves_the_cache_whole() {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let dir = Dir::new("kill");
    let home = dir.0.join("home");
    let files = dir.pngs(2);
    let kept = text(&upload(&home, &emulator, &files[0]).stdout)
        .trim()
        .to_owned();
    let cache_dir = home.join("dashscope-oss");
    let before = std::fs::read(cache_dir.join("uploads.json")).expect("cache file");

    // The next writer stops halfway through its temporary file (a test hook) and is killed.
    let f = files[1].to_string_lossy();
    let mut child = command(
        &home,
        &emulator,
        &["oss", "upload", "-m", "qwen-vl-plus", "-f", &f],
    )
    .env("DASHSCOPE_OSS_TEST_PAUSE_MID_WRITE", "1")
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let paused = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("paused mid-write"));
    assert!(paused, "the writer never reached the hook");
    child.kill().expect("kill -9");
    let _ = child.wait();

    // The cache file is the one before, whole; the half-written file is beside it.
    assert_eq!(
        std::fs::read(cache_dir.join("uploads.json")).expect("cache file"),
        before
    );
    let temporaries = || {
        std::fs::read_dir(&cache_dir)
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count()
    };
    assert_eq!(temporaries(), 1);
    // The next process reads it without a warning, hits, writes, and removes the leftover.
    let next = upload(&home, &emulator, &files[0]);
    assert_eq!(text(&next.stdout).trim(), kept);
    assert!(
        !text(&next.stderr).contains("warning"),
        "{}",
        text(&next.stderr)
    );
    let other = upload(&home, &emulator, &files[1]);
    assert_eq!(other.status.code(), Some(0));
    assert_eq!(temporaries(), 0);
    let listed = text(&run(&home, &emulator, &["cache", "list"]).stdout);
    assert_eq!(listed.lines().count(), 2, "{listed}");
}
