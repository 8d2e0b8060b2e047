//! Hostile and odd input, through the library and the CLI: each case ends in a clear typed
//! error (CLI: a message and its exit code) or, for odd but valid names, a safe key; never a
//! panic; and nothing else in the batch is lost.
#![allow(clippy::type_complexity)] // the case tables read best as tuples

use super::support;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::Command;

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig, MediaKind, ModelSpec};
use dashscope_oss::{Client, Config, Error, UploadSource};
use support::{Canned, Server};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

fn cli(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dashscope"))
        .args(args)
        .env_remove("DASHSCOPE_API_KEY")
        // Logging on stderr would change what the snapshots record.
        .env_remove("RUST_LOG")
        .env_remove("DASHSCOPE_BASE_URL")
        .env_remove("DASHSCOPE_HTTP_BASE_URL")
        .env("XDG_CACHE_HOME", support::fresh_cache_home())
        .output()
        .expect("run dashscope");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "the CLI panicked: {stderr}");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

fn os(s: &str) -> OsString {
    OsString::from(s)
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn workdir(tag: &str) -> Dir {
    let dir =
        std::env::temp_dir().join(format!("dashscope-bad-input-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    Dir(dir)
}

/// Which variant an error is, by its Debug name.
fn variant(e: &Error) -> String {
    format!("{e:?}")
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_names() {
    let dir = workdir("files");
    let emulator = Emulator::start(EmulatorConfig::default().model(
        "tiny",
        ModelSpec {
            max_file_size_mb: 1,
            accepts: vec![MediaKind::Image],
            restricted: false,
            ..ModelSpec::default()
        },
    ))
    .await
    .expect("emulator");
    // Names are what this test checks: no cache, which would answer a file of the same content
    // with the URL (and name) of its first upload.
    let client = Client::new(
        Config::new()
            .api_key(DEFAULT_API_KEY)
            .base_url(emulator.base_url())
            .no_upload_cache(),
    )
    .expect("client");
    let d = |name: &str| dir.0.join(name);
    let good = d("good.png");
    std::fs::write(&good, PNG).expect("write");

    std::fs::write(d("empty.png"), b"").expect("write");
    std::fs::write(d("big.png"), vec![1u8; 1024 * 1024 + 1]).expect("write");
    std::fs::write(d("locked.png"), PNG).expect("write");
    let _ = Command::new("chmod")
        .arg("000")
        .arg(d("locked.png"))
        .status();
    let _ = Command::new("mkfifo").arg(d("fifo.png")).status();
    std::os::unix::fs::symlink(d("nowhere.png"), d("dangling.png")).expect("symlink");
    std::fs::write(d("my photo (1).PNG"), PNG).expect("write");
    std::fs::write(d("back\\slash.png"), PNG).expect("write");
    std::fs::write(d("😺 cat.png"), PNG).expect("write");
    std::fs::write(d("图片.jpg"), PNG).expect("write");
    let non_utf8 = dir.0.join(OsString::from_vec(b"caf\xe9.png".to_vec()));
    std::fs::write(&non_utf8, PNG).expect("write");
    std::fs::create_dir_all(d("sub")).expect("dir");
    std::fs::write(d("sub/dotted.png"), PNG).expect("write");
    // Root reads anything: then the locked file is not an error, and the case says so.
    let locked_readable = std::fs::read(d("locked.png")).is_ok();

    // (name, path, expected outcome: Err(variant, exit code) or Ok(key suffix))
    let cases: Vec<(&str, PathBuf, Result<&str, (&str, i32)>)> = vec![
        ("missing file", d("missing.png"), Err(("Io", 5))),
        ("a directory", dir.0.clone(), Err(("NotAFile", 5))),
        ("a FIFO", d("fifo.png"), Err(("NotAFile", 5))),
        ("a dangling symlink", d("dangling.png"), Err(("Io", 5))),
        (
            "a file used as a directory",
            d("good.png/x.png"),
            Err(("Io", 5)),
        ),
        ("an empty file", d("empty.png"), Err(("EmptyFile", 5))),
        (
            "an unreadable file",
            d("locked.png"),
            if locked_readable {
                Ok("/locked.png")
            } else {
                Err(("Io", 5))
            },
        ),
        (
            "over the size limit",
            d("big.png"),
            Err(("FileTooLarge", 5)),
        ),
        (
            "spaces and parentheses",
            d("my photo (1).PNG"),
            Ok("/my_photo__1_.PNG"),
        ),
        ("a backslash", d("back\\slash.png"), Ok("/back_slash.png")),
        ("emoji", d("😺 cat.png"), Ok("/__cat.png")),
        ("CJK", d("图片.jpg"), Ok("/图片.jpg")),
        ("a non-UTF-8 name", non_utf8.clone(), Ok("/caf_.png")),
        (
            "a path through ..",
            d("sub/../sub/dotted.png"),
            Ok("/dotted.png"),
        ),
    ];
    for (name, path, expected) in &cases {
        // Library: the bad source in a batch with a good one.
        let results = client
            .upload_many(
                "tiny",
                [
                    UploadSource::path(path.clone()),
                    UploadSource::path(good.clone()),
                ],
            )
            .await;
        assert!(
            results[1].is_ok(),
            "{name}: the good file of the batch was lost: {:?}",
            results[1]
        );
        match (&results[0], expected) {
            (Ok(file), Ok(suffix)) => {
                assert!(file.key.ends_with(suffix), "{name}: key {}", file.key)
            }
            (Err(e), Err((want, _))) => {
                assert_eq!(&variant(e), want, "{name}: {e:?}");
                assert!(!e.to_string().is_empty());
            }
            (got, _) => panic!("{name}: expected {expected:?}, got {got:?}"),
        }
        // CLI: the same, as `-f bad -f good`.
        let (code, stdout, stderr) = cli(&[
            &os("oss.upload"),
            &os("-m"),
            &os("tiny"),
            &os("-f"),
            path.as_os_str(),
            &os("-f"),
            good.as_os_str(),
            &os("--api-key"),
            &os(DEFAULT_API_KEY),
            &os("--base-url"),
            &os(emulator.base_url()),
        ]);
        match expected {
            Ok(_) => assert_eq!(code, Some(0), "{name}: {stderr}"),
            Err(_) => {
                assert_eq!(code, Some(1), "{name}: a partial failure: {stderr}");
                assert!(
                    stderr.contains("dashscope:"),
                    "{name}: no message: {stderr}"
                );
            }
        }
        assert_eq!(
            stdout.lines().count(),
            if expected.is_ok() { 2 } else { 1 },
            "{name}: {stdout}"
        );
        // CLI, the bad file alone: its class's exit code.
        if let Err((_, exit)) = expected {
            let (code, _, stderr) = cli(&[
                &os("oss.upload"),
                &os("-m"),
                &os("tiny"),
                &os("-f"),
                path.as_os_str(),
                &os("--api-key"),
                &os(DEFAULT_API_KEY),
                &os("--base-url"),
                &os(emulator.base_url()),
            ]);
            assert_eq!(code, Some(*exit), "{name}: {stderr}");
        }
    }

    // A non-UTF-8 name in a chat: uploaded (it cannot travel inside the JSON request), then
    // asked about by its URL.
    let (code, stdout, stderr) = cli(&[
        &os("chat"),
        &os("-m"),
        &os("tiny"),
        &os("-f"),
        non_utf8.as_os_str(),
        &os("--api-key"),
        &os(DEFAULT_API_KEY),
        &os("--base-url"),
        &os(emulator.base_url()),
        &os("what is it?"),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("/caf_.png"), "{stderr}");
    assert!(stdout.contains("tiny received 1 medium"), "{stdout}");
    // A missing file in a chat: its exit code, and nothing on stdout (no call was answered).
    let (code, stdout, stderr) = cli(&[
        &os("chat"),
        &os("-m"),
        &os("tiny"),
        &os("-f"),
        d("nowhere.png").as_os_str(),
        &os("--api-key"),
        &os(DEFAULT_API_KEY),
        &os("--base-url"),
        &os(emulator.base_url()),
        &os("what is it?"),
    ]);
    assert_eq!(code, Some(5), "{stderr}");
    assert_eq!(stdout, "", "{stderr}");

    // A 1,024-byte name (longer than a file system allows, so from memory): cut to fit a key.
    let long = format!("{}.png", "n".repeat(1020));
    let file = client
        .upload("tiny", UploadSource::bytes(long, PNG.to_vec()))
        .await
        .expect("a long name");
    assert!(
        file.key.len() <= 1023 && file.key.ends_with(".png"),
        "{}",
        file.key
    );
    // A reader shorter than it said.
    let err = client
        .upload(
            "tiny",
            UploadSource::reader("short.png", 1000, || async {
                Ok(std::io::Cursor::new(vec![1u8; 10]))
            }),
        )
        .await
        .expect_err("short reader");
    assert_eq!(variant(&err), "Io");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_keys_and_urls() {
    let dir = workdir("models");
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .expect("emulator");
    let base = emulator.base_url().to_owned();
    let cat = dir.0.join("cat.png");
    std::fs::write(&cat, PNG).expect("write");
    let cat = cat.display().to_string();

    // (name, config, model, expected variant, CLI args before `oss.upload`, CLI model, exit code)
    type Setup = fn(&str) -> Config;
    let cases: Vec<(&str, Setup, &str, &str, Vec<String>, i32)> = vec![
        (
            "empty model",
            |b| Config::new().api_key(DEFAULT_API_KEY).base_url(b),
            "",
            "InvalidRequest",
            vec![],
            2,
        ),
        (
            "unknown model",
            |b| Config::new().api_key(DEFAULT_API_KEY).base_url(b),
            "qwen-nope",
            "ModelNotFound",
            vec![],
            7,
        ),
        (
            "a model name with a newline",
            |b| Config::new().api_key(DEFAULT_API_KEY).base_url(b),
            "qwen\nvl",
            "ModelNotFound",
            vec![],
            7,
        ),
        (
            "no API key",
            |b| Config::new().base_url(b),
            "qwen-vl-plus",
            "MissingApiKey",
            vec!["--no-key".into()],
            3,
        ),
        (
            "a wrong API key",
            |b| Config::new().api_key("sk-wrong").base_url(b),
            "qwen-vl-plus",
            "InvalidApiKey",
            vec!["--api-key".into(), "sk-wrong".into()],
            3,
        ),
        (
            "a key with a newline",
            |b| Config::new().api_key("sk-a\nb").base_url(b),
            "qwen-vl-plus",
            "Config",
            vec!["--api-key".into(), "sk-a\nb".into()],
            2,
        ),
        (
            "a malformed base URL",
            |_| Config::new().api_key(DEFAULT_API_KEY).base_url("htp:/nope"),
            "qwen-vl-plus",
            "Config",
            vec!["--base-url".into(), "htp:/nope".into()],
            2,
        ),
        (
            "plain http off loopback",
            |_| {
                Config::new()
                    .api_key(DEFAULT_API_KEY)
                    .base_url("http://dashscope.aliyuncs.com")
            },
            "qwen-vl-plus",
            "Config",
            vec!["--base-url".into(), "http://dashscope.aliyuncs.com".into()],
            2,
        ),
    ];
    for (name, setup, model, want, extra, exit) in cases {
        let outcome = match Client::new(setup(&base)) {
            Ok(client) => client
                .upload(model, UploadSource::path(cat.clone()))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        let err = outcome.expect_err(name);
        assert_eq!(variant(&err), want, "{name}: {err:?}");
        let mut args: Vec<OsString> =
            vec![os("oss.upload"), os("-m"), os(model), os("-f"), os(&cat)];
        let has_key = extra.iter().any(|a| a == "--api-key" || a == "--no-key");
        let has_base = extra.iter().any(|a| a == "--base-url");
        args.extend(extra.iter().filter(|a| *a != "--no-key").map(|a| os(a)));
        if !has_key {
            args.extend([os("--api-key"), os(DEFAULT_API_KEY)]);
        }
        if !has_base {
            args.extend([os("--base-url"), os(&base)]);
        }
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(OsString::as_os_str).collect();
        let (code, stdout, stderr) = cli(&refs);
        assert_eq!(code, Some(exit), "{name}: {stderr}");
        assert!(
            stdout.is_empty() && stderr.contains("dashscope"),
            "{name}: {stdout} / {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_answers_that_make_no_sense() {
    let dir = workdir("answers");
    let cat = dir.0.join("cat.png");
    std::fs::write(&cat, PNG).expect("write");
    let policy = |host: &str, drop_field: Option<&str>| {
        let mut v = serde_json::json!({"request_id": "r", "data": {
            "policy": "eyJleHBpcmF0aW9uIjoiMjA5OS0wMS0wMVQwMDowMDowMC4wMDBaIiwiY29uZGl0aW9ucyI6W119",
            "signature": "c2ln", "upload_dir": "dashscope-instant/a/2025-01-01/r", "upload_host": host,
            "expire_in_seconds": 300, "max_file_size_mb": 100, "capacity_limit_mb": 1,
            "oss_access_key_id": "id", "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true"}});
        if let Some(field) = drop_field
            && let Some(data) = v["data"].as_object_mut()
        {
            data.remove(field);
        }
        v.to_string()
    };
    let cases: Vec<(&str, Canned, &str)> = vec![
        (
            "an HTML page from a proxy",
            Canned::raw(
                502,
                "text/html",
                "<html><body>502 Bad Gateway</body></html>",
            ),
            "Decode",
        ),
        (
            "truncated JSON",
            Canned::json(200, r#"{"request_id":"r","data":{"policy":"eyJ"#),
            "Decode",
        ),
        (
            "a 10 MiB body",
            Canned::raw(500, "text/plain", vec![b'x'; 10 * 1024 * 1024]),
            "Decode",
        ),
        (
            "a credential with a missing field",
            Canned::json(200, &policy("https://127.0.0.1:9", Some("signature"))),
            "Decode",
        ),
        (
            "an upload_host that is not a URL",
            Canned::json(200, &policy("not a url", None)),
            "Decode",
        ),
        (
            "a numeric field that is not a number",
            Canned::json(
                200,
                &policy("https://127.0.0.1:9", None)
                    .replace("\"max_file_size_mb\":100", "\"max_file_size_mb\":\"lots\""),
            ),
            "Decode",
        ),
    ];
    for (name, answer, want) in cases {
        let server = Server::start(answer).await;
        let client = Client::new(
            Config::new()
                .api_key(DEFAULT_API_KEY)
                .base_url(&server.url)
                .retry(
                    dashscope_oss::RetryPolicy::default()
                        .max_attempts(2)
                        .initial_backoff(std::time::Duration::from_millis(1)),
                ),
        )
        .expect("client");
        let err = client
            .upload("qwen-vl-plus", UploadSource::path(cat.clone()))
            .await
            .expect_err(name);
        assert_eq!(variant(&err), want, "{name}: {err:?}");
        assert!(
            format!("{err}").len() < 2048,
            "{name}: an unbounded message"
        );
        let (code, _, stderr) = cli(&[
            &os("oss.upload"),
            &os("-m"),
            &os("qwen-vl-plus"),
            &os("-f"),
            cat.as_os_str(),
            &os("--api-key"),
            &os(DEFAULT_API_KEY),
            &os("--base-url"),
            &os(&server.url),
        ]);
        assert_eq!(code, Some(7), "{name}: {stderr}");
        assert!(
            stderr.len() < 4096,
            "{name}: {} bytes of stderr",
            stderr.len()
        );
    }
}
