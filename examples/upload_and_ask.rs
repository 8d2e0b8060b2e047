//! Upload a local image, then ask about it through both APIs.
//!
//! `cargo run --features emulator --example upload_and_ask [-- IMAGE [MODEL]]`
//! (against DashScope when `DASHSCOPE_API_KEY` is set, else against the built-in emulator).

#[path = "common/mod.rs"]
mod common;

use dashscope_oss::chat::{ChatRequest, Message};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (image, model) = common::image_and_model();
    let (client, _emulator) = common::client().await?;

    // 1. Upload it: the oss:// URL is valid for 48 hours, for this model only.
    let file = client.upload(&model, image.as_str()).await?;
    println!("uploaded {} ({} bytes) as {}", image, file.size, file.url);

    // 2. Ask with the OpenAI-compatible API; the client sends X-DashScope-OssResourceResolve.
    let request = ChatRequest::new(&model).message(
        Message::user()
            .image(file.url.as_str())
            .text("What is in this picture?"),
    );
    let answer = client.chat(request.clone()).await?;
    println!(
        "compatible: {}",
        answer.choices[0].message.content.as_deref().unwrap_or("")
    );

    // 3. The same with the native API.
    let answer = client.generate(request).await?;
    let text = answer.output.choices[0]
        .message
        .content
        .first()
        .and_then(|i| i.text.as_deref());
    println!("native: {}", text.unwrap_or(""));
    Ok(())
}
