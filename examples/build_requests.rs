//! Every request type of the spec, built with its generated builder, printed as the JSON that
//! would be sent. No network.
//!
//! `cargo run --example build_requests`
//!
//! `.ci/spec-checks` compiles this file again after giving every schema of a scratch copy of
//! the spec a new optional field: code written with builders keeps compiling when the spec grows.

use dashscope_oss::api::types;
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // OpenAI-compatible: every kind of content part, tools, structured output, Omni audio.
    let parts: Vec<types::ChatContentPart> = vec![
        types::ChatContentPart::TextPart(
            types::TextPart::builder()
                .text("What is in these?")
                .try_into()?,
        ),
        types::ChatContentPart::ImageUrlPart(
            types::ImageUrlPart::builder()
                .image_url(types::ImageUrl::builder().url("photos/cat.png"))
                .max_pixels(Some(2_621_440))
                .try_into()?,
        ),
        types::ChatContentPart::InputAudioPart(
            types::InputAudioPart::builder()
                .input_audio(
                    types::InputAudio::builder()
                        .data("https://example.com/a.wav")
                        .format(Some("wav".to_owned())),
                )
                .try_into()?,
        ),
        types::ChatContentPart::VideoFramesPart(
            types::VideoFramesPart::builder()
                .video(vec!["f1.jpg".to_owned(), "f2.jpg".to_owned()])
                .fps(Some(2.0))
                .try_into()?,
        ),
        types::ChatContentPart::VideoUrlPart(
            types::VideoUrlPart::builder()
                .video_url(types::VideoUrl::builder().url("clip.mp4"))
                .try_into()?,
        ),
    ];
    let user: types::ChatMessage = types::ChatMessage::builder()
        .role(types::ChatRole::User)
        .content(Some(types::ChatContent::Array(parts)))
        .try_into()?;
    let tool: types::Tool = types::Tool::builder()
        .function(
            types::FunctionDefinition::builder()
                .name("get_weather")
                .description(Some("The weather in a city.".to_owned()))
                .parameters(Some(
                    json!({"type": "object", "properties": {"city": {"type": "string"}}}),
                )),
        )
        .try_into()?;
    let format: types::ResponseFormat = types::ResponseFormat::builder()
        .type_(types::ResponseFormatType::JsonSchema)
        .json_schema(Some(
            types::JsonSchemaFormat::builder()
                .name("answer")
                .schema(Some(json!({"type": "object"})))
                .try_into()?,
        ))
        .try_into()?;
    let compatible: types::ChatCompletionRequest = types::ChatCompletionRequest::builder()
        .model("qwen3-omni-flash")
        .messages(vec![user])
        .tools(vec![tool.clone()])
        .tool_choice(Some(types::ToolChoice::Function(
            types::ToolChoiceFunction::builder()
                .function(types::ToolChoiceFunctionName::builder().name("get_weather"))
                .try_into()?,
        )))
        .response_format(Some(format))
        .modalities(vec![
            types::OutputModality::Text,
            types::OutputModality::Audio,
        ])
        .audio(Some(
            types::AudioOutputOptions::builder()
                .voice("Cherry")
                .format("wav")
                .try_into()?,
        ))
        .stream_options(Some(
            types::StreamOptions::builder()
                .include_usage(Some(true))
                .try_into()?,
        ))
        .enable_thinking(false)
        .top_k(20)
        .try_into()?;
    println!("{}", serde_json::to_string_pretty(&compatible)?);

    // Native: items with their options, parameters.
    let items: Vec<types::NativeContentItem> = vec![
        types::NativeContentItem::builder()
            .video(Some(types::NativeVideo::Array(vec![
                "f1.jpg".to_owned(),
                "f2.jpg".to_owned(),
            ])))
            .fps(Some(2.0))
            .try_into()?,
        types::NativeContentItem::builder()
            .image(Some("photos/cat.png".to_owned()))
            .try_into()?,
        types::NativeContentItem::builder()
            .text(Some("What is in these?".to_owned()))
            .try_into()?,
    ];
    let native: types::MultimodalGenerationRequest = types::MultimodalGenerationRequest::builder()
        .model("qwen-vl-max")
        .input(types::MultimodalInput::builder().messages(vec![
                types::NativeMessage::builder()
                    .role(types::ChatRole::User)
                    .content(Some(types::NativeContent::Array(items)))
                    .try_into()?,
            ]))
        .parameters(Some(
            types::MultimodalParameters::builder()
                .result_format(Some(types::ResultFormat::Message))
                .vl_enable_image_hw_output(true)
                .tools(vec![tool])
                .try_into()?,
        ))
        .try_into()?;
    println!("{}", serde_json::to_string_pretty(&native)?);

    // The task APIs: local paths in their URL fields are uploaded when the request is sent.
    let transcription: types::TranscriptionRequest = types::TranscriptionRequest::builder()
        .model("paraformer-v2")
        .input(types::TranscriptionInput::builder().file_urls(vec!["meeting.wav".to_owned()]))
        .parameters(Some(
            types::TranscriptionParameters::builder()
                .language_hints(vec!["zh".to_owned(), "en".to_owned()])
                .diarization_enabled(Some(true))
                .try_into()?,
        ))
        .resources(vec![
            types::TranscriptionResource::builder()
                .resource_id("phrase-1")
                .resource_type("asr_phrase")
                .try_into()?,
        ])
        .try_into()?;
    let edit: types::ImageSynthesisRequest = types::ImageSynthesisRequest::builder()
        .model("wanx2.1-imageedit")
        .input(
            types::ImageSynthesisInput::builder()
                .function(Some("description_edit_with_mask".to_owned()))
                .prompt(Some("an orange cat".to_owned()))
                .base_image_url(Some("photos/cat.png".to_owned()))
                .mask_image_url(Some("photos/mask.png".to_owned())),
        )
        .parameters(Some(
            types::ImageSynthesisParameters::builder()
                .n(Some(2))
                .try_into()?,
        ))
        .try_into()?;
    let video: types::VideoSynthesisRequest = types::VideoSynthesisRequest::builder()
        .model("wan2.2-kf2v-flash")
        .input(
            types::VideoSynthesisInput::builder()
                .prompt(Some("the cat jumps".to_owned()))
                .first_frame_url(Some("first.png".to_owned()))
                .last_frame_url(Some("last.png".to_owned()))
                .media(vec![
                    types::VideoMedia::builder()
                        .type_("first_frame")
                        .url("first.png")
                        .try_into()?,
                ]),
        )
        .parameters(Some(
            types::VideoSynthesisParameters::builder()
                .resolution(Some("480P".to_owned()))
                .try_into()?,
        ))
        .try_into()?;
    let enrollment: types::VoiceEnrollmentRequest = types::VoiceEnrollmentRequest::builder()
        .model("voice-enrollment")
        .input(
            types::VoiceEnrollmentInput::builder()
                .action("create_voice")
                .url(Some("sample.wav".to_owned())),
        )
        .try_into()?;
    let embedding: types::MultimodalEmbeddingRequest = types::MultimodalEmbeddingRequest::builder()
        .model("multimodal-embedding-v1")
        .input(types::MultimodalEmbeddingInput::builder().contents(vec![
            types::EmbeddingContent::builder()
                .image(Some("photos/cat.png".to_owned()))
                .try_into()?,
        ]))
        .try_into()?;
    for request in [
        serde_json::to_value(&transcription)?,
        serde_json::to_value(&edit)?,
        serde_json::to_value(&video)?,
        serde_json::to_value(&enrollment)?,
        serde_json::to_value(&embedding)?,
    ] {
        println!("{}", serde_json::to_string_pretty(&request)?);
    }
    Ok(())
}
