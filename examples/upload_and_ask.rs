//! Upload a local image, then ask about it through both APIs.
//!
//! `cargo run --example upload_and_ask [-- IMAGE [MODEL]]`
//! (against DashScope when `DASHSCOPE_API_KEY` is set, else against the built-in emulator).

#[path = "common/mod.rs"]
mod common;

use dashscope_oss::api::types;
use dashscope_oss::chat::Message;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (image, model) = common::image_and_model();
    let (client, _emulator) = common::client().await?;

    // 1. Upload it: the oss:// URL is valid for 48 hours, for this model only.
    let file = client.upload(&model, image.as_str()).await?;
    println!("uploaded {} ({} bytes) as {}", image, file.size, file.url);

    // 2. Ask with the OpenAI-compatible API, building the generated request type with its
    //    builder; the client sends X-DashScope-OssResourceResolve because of the oss:// URL.
    let question = Message::user()
        .image(file.url.as_str())
        .text("What is in this picture?");
    let request: types::ChatCompletionRequest = types::ChatCompletionRequest::builder()
        .model(model.as_str())
        .messages(vec![question.to_compatible()?])
        .temperature(0.2)
        .try_into()?;
    let answer = client.chat_completion(&request).await?;
    println!("compatible: {}", answer.text().unwrap_or_default());

    // 3. The same with the native API.
    let request: types::MultimodalGenerationRequest = types::MultimodalGenerationRequest::builder()
        .model(model.as_str())
        .input(types::MultimodalInput::builder().messages(vec![question.to_native()?]))
        .parameters(Some(
            types::MultimodalParameters::builder()
                .temperature(0.2)
                .try_into()?,
        ))
        .try_into()?;
    let answer = client.multimodal_generation(&request).await?;
    println!("native: {}", answer.text().unwrap_or_default());
    Ok(())
}
