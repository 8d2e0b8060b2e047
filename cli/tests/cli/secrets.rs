//! Every CLI path at RUST_LOG=trace, with a recognisable API key: the key, the policy, its
//! `Signature` and the `OSSAccessKeyId` appear in no output.

use std::process::Command;

use dashscope_emulator::{Emulator, EmulatorConfig};

const KEY: &str = "sk-RECOGNISABLE-5ec7e7-do-not-print";
const WRONG_KEY: &str = "sk-WRONG-RECOGNISABLE-0badc0de";
const CAT: &str = "tests/fixtures/cat.png";

/// A base64 HMAC-SHA1 (28 characters, one `=` of padding): what a leaked signature looks like.
fn looks_like_a_signature(word: &str) -> bool {
    word.len() == 28
        && word.ends_with('=')
        && word[..27]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cli_path_prints_a_secret_even_at_trace() {
    let emulator = Emulator::start(EmulatorConfig::default().account("me", &[KEY]))
        .await
        .expect("emulator");
    let base = emulator.base_url().to_owned();
    // The emulator's access key id, as any credential carries it.
    dashscope_oss::install_crypto_provider();
    let credential: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/uploads?action=getPolicy&model=qwen-vl-plus"
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("credential")
        .json()
        .await
        .expect("json");
    let access_key_id = credential["data"]["oss_access_key_id"]
        .as_str()
        .expect("id")
        .to_owned();

    let by_flag = ["--base-url", base.as_str(), "--api_key", KEY];
    let paths: Vec<(&str, Vec<&str>, bool)> = vec![
        (
            "upload",
            [
                &["oss.upload", "-m", "qwen-vl-plus", "-f", CAT][..],
                &by_flag[..],
            ]
            .concat(),
            false,
        ),
        (
            "upload --json",
            [
                &["oss", "upload", "-m", "qwen-vl-plus", "-f", CAT, "--json"][..],
                &by_flag[..],
            ]
            .concat(),
            false,
        ),
        (
            "upload, key from the environment",
            vec![
                "oss.upload",
                "-m",
                "qwen-vl-plus",
                "-f",
                CAT,
                "--base-url",
                &base,
            ],
            true,
        ),
        (
            "upload errors",
            [
                &[
                    "oss.upload",
                    "-m",
                    "qwen-nope",
                    "-f",
                    CAT,
                    "-f",
                    "/missing.png",
                    "--json",
                ][..],
                &by_flag[..],
            ]
            .concat(),
            false,
        ),
        (
            "chat",
            [
                &["chat", "-m", "qwen-vl-plus", "-f", CAT, "what?"][..],
                &by_flag[..],
            ]
            .concat(),
            false,
        ),
        (
            "chat --native",
            [
                &["chat", "--native", "-m", "qwen-vl-plus", "-f", CAT, "what?"][..],
                &by_flag[..],
            ]
            .concat(),
            false,
        ),
        (
            "a wrong key",
            vec![
                "oss.upload",
                "-m",
                "qwen-vl-plus",
                "-f",
                CAT,
                "--base-url",
                &base,
                "--api-key",
                WRONG_KEY,
            ],
            false,
        ),
        (
            "a key with a newline",
            vec![
                "oss.upload",
                "-m",
                "qwen-vl-plus",
                "-f",
                CAT,
                "--base-url",
                &base,
                "--api-key",
                "sk-RECOGNISABLE\nX",
            ],
            false,
        ),
    ];
    for (run, (name, args, env_key)) in paths.into_iter().enumerate() {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dashscope"));
        command
            .args(&args)
            .env("RUST_LOG", "trace")
            .env_remove("DASHSCOPE_BASE_URL");
        if env_key {
            command.env("DASHSCOPE_API_KEY", KEY);
        } else {
            command.env_remove("DASHSCOPE_API_KEY");
        }
        // The upload cache is written too: it must hold no secret either.
        let cache_home = std::env::temp_dir().join(format!(
            "dashscope-oss-secrets-cache-{}-{}",
            std::process::id(),
            run
        ));
        let _ = std::fs::remove_dir_all(&cache_home);
        command.env("XDG_CACHE_HOME", &cache_home);
        let out = command.output().expect("run");
        let mut cached = String::new();
        for entry in std::fs::read_dir(cache_home.join("dashscope-oss"))
            .into_iter()
            .flatten()
            .flatten()
        {
            cached.push_str(&String::from_utf8_lossy(
                &std::fs::read(entry.path()).unwrap_or_default(),
            ));
        }
        let _ = std::fs::remove_dir_all(&cache_home);
        let text = format!(
            "{}{}{cached}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("TRACE") || text.contains("DEBUG") || name.contains("newline"),
            "{name}: nothing was logged"
        );
        for secret in [
            KEY,
            WRONG_KEY,
            "RECOGNISABLE",
            access_key_id.as_str(),
            "eyJleHBpcmF0aW9u",
        ] {
            assert!(
                !text.contains(secret),
                "{name}: {secret} appears in the output:\n{text}"
            );
        }
        let leaked: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || "\"'(),;:{}[]".contains(c))
            .filter(|w| looks_like_a_signature(w))
            .collect();
        assert!(
            leaked.is_empty(),
            "{name}: a signature-like value appears: {leaked:?}"
        );
    }
    assert!(emulator.stats().uploads_ok >= 5, "the paths did run");
}

/// Hostile servers on 127.0.0.1 that echo the key and the upload credential in every field of
/// their errors, with a screen-clearing, line-forging message: the CLI's stderr and its
/// `--json` output show neither a secret nor a raw control character, and show the forgery
/// escaped (issue #22).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_servers_echoing_every_secret_reach_no_output() {
    use super::support::{Canned, Server};
    const POLICY: &str = "eyJleHBpcmF0aW9uIjoiMjA5OS0wMS0wMVQwMDowMDowMC4wMDBaIn0=";
    const SIGNATURE: &str = "c2lnbmF0dXJlLXNlY3JldC1ob3N0aWxl";
    const ACCESS_KEY_ID: &str = "LTAI5tHostileAccessKeyId";
    const FORGERY: &str = "\x1b[2J\r\ndashscope: all uploads done";
    let secrets = [KEY, POLICY, SIGNATURE, ACCESS_KEY_ID];
    let echo = format!("{} {FORGERY}", secrets.join(" "));
    let xml_echo = echo.replace('\x1b', "&#27;").replace('\r', "&#13;");
    let oss = Server::start(Canned::raw(
        400,
        "application/xml",
        format!(
            "<Error><Code>InvalidArgument</Code><Message>{xml_echo}</Message><RequestId>{xml_echo}</RequestId><EC>{xml_echo}</EC><OSSAccessKeyId>{ACCESS_KEY_ID}</OSSAccessKeyId><SignatureProvided>{SIGNATURE}</SignatureProvided><StringToSign>{POLICY}</StringToSign></Error>"
        ),
    ))
    .await;
    let credential = serde_json::json!({
        "request_id": "rq-1",
        "data": {
            "policy": POLICY, "signature": SIGNATURE, "oss_access_key_id": ACCESS_KEY_ID,
            "upload_dir": "dashscope-instant/abc/2026-01-01/r", "upload_host": oss.url,
            "expire_in_seconds": 300, "max_file_size_mb": 100, "capacity_limit_mb": 1,
            "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true"
        }
    });
    let with_oss = Server::start(Canned::json(200, &credential.to_string())).await;
    // The API host knows only the key (it has given no credential).
    let key_echo = format!("{KEY} {FORGERY}");
    let native = serde_json::json!({"code": key_echo, "message": key_echo, "request_id": key_echo});
    let refusing =
        Server::start(Canned::json(400, &native.to_string()).header("x-request-id", KEY)).await;
    for (name, base) in [
        ("an OSS error", &with_oss.url),
        ("a credential error", &refusing.url),
    ] {
        for json in [false, true] {
            let mut args = vec![
                "oss.upload",
                "-m",
                "qwen-vl-plus",
                "-f",
                CAT,
                "--base-url",
                base,
                "--api-key",
                KEY,
            ];
            if json {
                args.push("--json");
            }
            let out = Command::new(env!("CARGO_BIN_EXE_dashscope"))
                .args(&args)
                .env_remove("RUST_LOG")
                .env_remove("DASHSCOPE_API_KEY")
                .env_remove("DASHSCOPE_BASE_URL")
                .env("XDG_CACHE_HOME", super::support::fresh_cache_home())
                .output()
                .expect("run");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_ne!(out.status.code(), Some(0), "{name}: {stderr}");
            for secret in secrets {
                assert!(
                    !stdout.contains(secret) && !stderr.contains(secret),
                    "{name}, json {json}: {secret} shows:\n{stdout}\n{stderr}"
                );
            }
            for text in [&stdout, &stderr] {
                assert!(
                    !text.contains(['\x1b', '\r']),
                    "{name}, json {json}: a raw control character: {text:?}"
                );
                assert!(
                    !text
                        .lines()
                        .any(|l| l.starts_with("dashscope: all uploads done")),
                    "{name}, json {json}: a forged line: {text}"
                );
            }
            let shown = if json { &stdout } else { &stderr };
            assert!(
                shown.contains("[REDACTED]") && shown.contains(r"x1b[2J"),
                "{name}, json {json}: the echo is not shown escaped: {shown}"
            );
            if json {
                let line: serde_json::Value =
                    serde_json::from_str(stdout.lines().next().expect("a JSON line"))
                        .expect("JSON");
                let error = &line["error"];
                for field in ["message", "code", "request_id"] {
                    let value = error[field].as_str().unwrap_or_default();
                    assert!(
                        secrets.iter().all(|s| !value.contains(s)) && !value.contains('\x1b'),
                        "{name}: {field} = {value:?}"
                    );
                }
            }
        }
    }
}
