//! Ask about a local file and print the answer as it streams in. The file is uploaded on the
//! fly for the request's model.
//!
//! `cargo run --example stream [-- IMAGE [MODEL]]`

#[path = "common/mod.rs"]
mod common;

use std::io::Write;

use dashscope_oss::chat::{ChatRequest, Message};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (image, model) = common::image_and_model();
    let (client, _emulator) = common::client().await?;

    let request = ChatRequest::new(&model).message(
        Message::user()
            .image(image.as_str())
            .text("Describe this picture."),
    );
    let mut stream = client.chat_completion_stream(request).await?;
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        for choice in &chunk.choices {
            if let Some(text) = &choice.delta.content {
                write!(out, "{text}")?;
                out.flush()?;
            }
        }
        if let Some(usage) = &chunk.usage {
            writeln!(out, "\n[{} tokens]", usage.total_tokens.unwrap_or(0))?;
        }
    }
    Ok(())
}
