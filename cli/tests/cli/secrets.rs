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
