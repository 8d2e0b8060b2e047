//! Reading answers: the text, reasoning and tool calls of either API's response.

use std::borrow::Cow;

use crate::api::types;

impl types::ChatCompletionResponse {
    /// The first choice's text.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        self.choices
            .first()?
            .message
            .content
            .as_deref()
            .map(Cow::Borrowed)
    }

    /// The first choice's reasoning (thinking models).
    pub fn reasoning(&self) -> Option<&str> {
        self.choices.first()?.message.reasoning_content.as_deref()
    }

    /// The first choice's tool calls (empty when it made none).
    pub fn tool_calls(&self) -> &[types::ToolCall] {
        self.choices
            .first()
            .and_then(|c| c.message.tool_calls.as_deref())
            .unwrap_or_default()
    }

    /// Why the first choice stopped (`stop`, `length`, `tool_calls`).
    pub fn finish_reason(&self) -> Option<&str> {
        self.choices.first()?.finish_reason.as_deref()
    }

    /// The token counts.
    pub fn token_usage(&self) -> Option<&types::CompletionUsage> {
        self.usage.as_ref()
    }
}

impl types::MultimodalGenerationResponse {
    /// The first choice's text: its text items joined (or `output.text` with
    /// `result_format: text`).
    pub fn text(&self) -> Option<Cow<'_, str>> {
        let Some(choice) = self.output.choices.first() else {
            return self.output.text.as_deref().map(Cow::Borrowed);
        };
        match choice.message.content.as_ref()? {
            types::NativeAnswerContent::String(text) => Some(Cow::Borrowed(text)),
            types::NativeAnswerContent::Array(items) => {
                let texts: Vec<&str> = items.iter().filter_map(|i| i.text.as_deref()).collect();
                match texts.as_slice() {
                    [] => None,
                    [one] => Some(Cow::Borrowed(one)),
                    _ => Some(Cow::Owned(texts.concat())),
                }
            }
        }
    }

    /// The first choice's reasoning (thinking models).
    pub fn reasoning(&self) -> Option<&str> {
        self.output
            .choices
            .first()?
            .message
            .reasoning_content
            .as_deref()
    }

    /// The first choice's tool calls (empty when it made none).
    pub fn tool_calls(&self) -> &[types::ToolCallDelta] {
        self.output
            .choices
            .first()
            .and_then(|c| c.message.tool_calls.as_deref())
            .unwrap_or_default()
    }

    /// Why the first choice stopped (`stop`, `length`, `tool_calls`).
    pub fn finish_reason(&self) -> Option<&str> {
        match self.output.choices.first() {
            Some(choice) => choice.finish_reason.as_deref(),
            None => self.output.finish_reason.as_deref(),
        }
        .filter(|r| *r != "null")
    }

    /// The token counts.
    pub fn token_usage(&self) -> Option<&types::MultimodalUsage> {
        self.usage.as_ref()
    }
}
