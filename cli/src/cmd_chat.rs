//! `dashscope chat`: ask a model about files, the answer streamed to stdout.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use dashscope_oss::api::types;
use dashscope_oss::chat::{ChatCollector, ChatRequest, GenerationCollector, Message};
use dashscope_oss::{Callback, Error, MediaOrigin, UploadEvent, UploadSource};

use crate::Global;
use crate::connect::connect;
use crate::exit::*;
use crate::output::*;

#[derive(Args, Debug)]
pub(crate) struct ChatArgs {
    /// The model, e.g. qwen-vl-plus.
    #[arg(short, long)]
    model: String,
    /// A file to ask about (image, audio or video, by extension); repeatable.
    #[arg(short, long = "file", value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Use the native multimodal-generation API instead of the OpenAI-compatible one.
    #[arg(long)]
    native: bool,
    /// Print the whole answer as JSON (the streamed answer assembled, fields the spec does not
    /// name kept) instead of its text as it arrives.
    #[arg(long)]
    json: bool,
    /// The question.
    prompt: String,
}

/// The name and arguments of each tool call of an answer's first choice, either API.
fn tool_calls_of(answer: &serde_json::Value) -> Vec<(String, String)> {
    let calls = answer
        .pointer("/choices/0/message/tool_calls")
        .or_else(|| answer.pointer("/output/choices/0/message/tool_calls"))
        .and_then(serde_json::Value::as_array);
    let text = |call: &serde_json::Value, field: &str| {
        call.pointer(&format!("/function/{field}"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    calls
        .into_iter()
        .flatten()
        .map(|call| (text(call, "name"), text(call, "arguments")))
        .collect()
}

pub(crate) async fn run(global: &Global, args: ChatArgs) -> u8 {
    if args.model.trim().is_empty() {
        note!("dashscope: --model is empty");
        return EXIT_USAGE;
    }
    // The library uploads the files (or sends small ones inline) as it sends the request; its
    // upload observer says what each became, as `oss upload` would.
    let quiet = global.quiet;
    let observer: Callback<UploadEvent> = Arc::new(move |event: &UploadEvent| {
        if quiet {
            return;
        }
        match event {
            UploadEvent::Inlined { path, .. } => {
                note!("{}: sent inline as a data: URI", path.display());
            }
            UploadEvent::Uploaded { path, file } => {
                note!(
                    "{} -> {}",
                    summary(&path.display().to_string(), file),
                    file.url
                );
            }
            UploadEvent::Rehosted { origin, file } => {
                let what = match origin {
                    MediaOrigin::DataUri { content_type, .. } => {
                        format!("a data: URI of {content_type}")
                    }
                    MediaOrigin::OssUrl { url, model } => format!("{url} (of {model})"),
                    MediaOrigin::Web { url } => url.clone(),
                    _ => "a medium".to_owned(),
                };
                note!("{} -> {}", summary(&what, file), file.url);
            }
            _ => {}
        }
    });
    let (client, _emulator) = match connect(global, None, Some(observer)).await {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    let client = &client;
    let mut message = Message::user();
    for path in &args.files {
        if path.to_str().is_some() {
            message = message.file(path.as_path());
            continue;
        }
        // A name that is not UTF-8 cannot travel inside a JSON request to be uploaded there:
        // it is uploaded here, and its URL goes in.
        match client
            .upload(&args.model, UploadSource::path(path.clone()))
            .await
        {
            Ok(file) => {
                if !quiet {
                    note!(
                        "{} -> {}",
                        summary(&path.display().to_string(), &file),
                        file.url
                    );
                }
                message = message.file(file.url.as_str());
            }
            Err(e) => {
                report(&e, Some(&path.display().to_string()));
                return exit_code(&e);
            }
        }
    }
    let request = ChatRequest::new(&args.model).message(message.text(args.prompt));
    let mut out = Out::new();
    let json = args.json;
    // Whether anything reached stdout: a call refused before its answer prints nothing there.
    let mut wrote = false;
    // Text goes to stdout as it arrives; reasoning to stderr; tool calls after the answer. A
    // failed write ends the stream: nobody reads the rest.
    let mut show = |text: Option<&str>, reasoning: Option<&str>| -> Result<(), Ended> {
        if json {
            return Ok(());
        }
        if let Some(reasoning) = reasoning.filter(|r| !r.is_empty() && !quiet) {
            note!(no_newline, "{reasoning}");
        }
        if let Some(text) = text {
            wrote = true;
            out.text(text).map_err(Ended::Output)?;
        }
        Ok(())
    };
    let result: Result<serde_json::Value, Ended> = async {
        use futures_util::StreamExt;
        if args.native {
            let mut stream = client
                .multimodal_generation_stream(request.parameter("incremental_output", true))
                .await?;
            let mut collector = GenerationCollector::new(true);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                for choice in &chunk.output.choices {
                    let message = &choice.message;
                    if let Some(types::NativeAnswerContent::Array(items)) = &message.content {
                        for item in items {
                            show(item.text.as_deref(), None)?;
                        }
                    }
                    show(None, message.reasoning_content.as_deref())?;
                }
                collector.push(&chunk);
            }
            Ok(serde_json::to_value(collector.finish()?).unwrap_or_default())
        } else {
            let mut stream = client.chat_completion_stream(request).await?;
            let mut collector = ChatCollector::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                for choice in &chunk.choices {
                    show(
                        choice.delta.content.as_deref(),
                        choice.delta.reasoning_content.as_deref(),
                    )?;
                }
                collector.push(&chunk);
            }
            Ok(serde_json::to_value(collector.finish()?).unwrap_or_default())
        }
    }
    .await;
    let result = match result {
        Ok(answer) => {
            let tail: String = if json {
                serde_json::to_string_pretty(&answer).unwrap_or_default()
            } else {
                tool_calls_of(&answer)
                    .into_iter()
                    .map(|(name, arguments)| format!("\ntool call: {name}({arguments})"))
                    .collect()
            };
            out.text(&tail)
                .and_then(|()| out.line(""))
                .map_err(Ended::Output)
        }
        // The line an answer cut short ends with; the call's error is the one to tell.
        Err(Ended::Call(e)) if wrote => {
            let _ = out.line("");
            Err(Ended::Call(e))
        }
        Err(other) => Err(other),
    };
    // The uploads the call made are remembered before the process ends (a batch of files
    // writes its last entries here, not when the client is dropped).
    if let Some(Err(e)) = tokio::task::block_in_place(|| client.upload_cache().map(|c| c.flush())) {
        note!("dashscope: warning: the upload cache could not be written: {e}");
    }
    warn_about_cache(client);
    match result {
        Ok(()) => EXIT_OK,
        Err(Ended::Output(code)) => code,
        Err(Ended::Call(e)) => {
            report(&e, None);
            exit_code(&e)
        }
    }
}

/// Why a chat ended early: the call failed, or stdout could not be written (its exit code).
enum Ended {
    Call(Error),
    Output(u8),
}

impl From<Error> for Ended {
    fn from(e: Error) -> Self {
        Ended::Call(e)
    }
}
