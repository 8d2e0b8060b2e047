//! What the examples share: a client for the real service when `DASHSCOPE_API_KEY` is set,
//! otherwise for an emulator started in this process.

use dashscope_emulator::{DEFAULT_API_KEY, Emulator, EmulatorConfig};
use dashscope_oss::{Client, Config};

/// The image and model from the command line: `[IMAGE [MODEL]]`.
pub fn image_and_model() -> (String, String) {
    let mut args = std::env::args().skip(1);
    let image = args
        .next()
        .unwrap_or_else(|| "tests/fixtures/cat.png".to_owned());
    let model = args.next().unwrap_or_else(|| "qwen-vl-plus".to_owned());
    (image, model)
}

/// The client, and the emulator it talks to (kept alive by the caller) if there is one.
pub async fn client() -> Result<(Client, Option<Emulator>), Box<dyn std::error::Error>> {
    if std::env::var("DASHSCOPE_API_KEY").is_ok_and(|k| !k.trim().is_empty()) {
        return Ok((Client::from_env()?, None));
    }
    let emulator = Emulator::start(EmulatorConfig::default()).await?;
    eprintln!(
        "DASHSCOPE_API_KEY is not set: using the built-in emulator at {}",
        emulator.base_url()
    );
    let config = Config::new()
        .api_key(DEFAULT_API_KEY)
        .base_url(emulator.base_url());
    Ok((Client::new(config)?, Some(emulator)))
}
