//! The model catalogue: model families by their documented name patterns, each with the
//! endpoints it may call, the media it reads, its file-size limit and what its answers do. A
//! model is known by the first family whose pattern matches its name; the sources of each row
//! are in `docs/emulator.md` ("The model catalogue"). A leaf: data and matching only.

use crate::MediaKind;

/// An API endpoint a model may be called on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /compatible-mode/v1/chat/completions`.
    Chat,
    /// `POST /api/v1/services/aigc/multimodal-generation/generation`.
    Multimodal,
    /// `POST /api/v1/services/aigc/text-generation/generation`.
    TextGeneration,
    /// `POST /api/v1/services/audio/asr/transcription` (a task).
    Transcription,
    /// `POST /api/v1/services/aigc/text2image/image-synthesis` (a task).
    TextToImage,
    /// `POST /api/v1/services/aigc/image2image/image-synthesis` (a task).
    ImageEdit,
    /// `POST /api/v1/services/aigc/image-generation/generation` (wan2.6 messages; a task).
    ImageGeneration,
    /// `POST /api/v1/services/aigc/video-generation/video-synthesis` (a task).
    VideoSynthesis,
    /// `POST /api/v1/services/aigc/image2video/video-synthesis` (first and last frame; a task).
    KeyframeVideo,
    /// `POST /api/v1/services/audio/tts/customization`.
    VoiceEnrollment,
    /// `POST /api/v1/services/embeddings/multimodal-embedding/multimodal-embedding`.
    Embedding,
}

/// A family of models.
#[derive(Debug)]
pub struct Family {
    /// Its name (what `--model NAME=FAMILY` names).
    pub name: &'static str,
    /// Name patterns, `*` standing for any run of characters.
    pub patterns: &'static [&'static str],
    /// Model names of the family the compatible model list shows.
    pub examples: &'static [&'static str],
    /// The endpoints its models may call; any other answers "url error".
    pub endpoints: &'static [Endpoint],
    /// The media it reads; any other fails data inspection.
    pub accepts: &'static [MediaKind],
    /// The largest file a credential for it admits, in MiB.
    pub max_file_size_mb: u64,
    /// It answers only streamed calls.
    pub stream_only: bool,
    /// Whether `enable_thinking` makes it reason (`Thinking::Never` ignores it).
    pub thinking: Thinking,
}

/// What a family does with `enable_thinking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thinking {
    /// It never reasons: the parameter is ignored.
    Never,
    /// It reasons when `enable_thinking` is true (hybrid models).
    OnRequest,
    /// It always reasons.
    Always,
}

use Endpoint::*;
use MediaKind::{Audio, Image, Video};

const CHATS: &[Endpoint] = &[Chat, Multimodal];
const TEXT_CHATS: &[Endpoint] = &[Chat, TextGeneration];

/// The families, most specific first: the first whose pattern matches names the model.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "embedding",
        patterns: &[
            "multimodal-embedding-*",
            "tongyi-embedding-vision-*",
            "qwen3-vl-embedding*",
            "*-embedding-*",
        ],
        examples: &[
            "multimodal-embedding-v1",
            "tongyi-embedding-vision-plus",
            "tongyi-embedding-vision-flash",
            "qwen3-vl-embedding",
        ],
        endpoints: &[Embedding],
        accepts: &[Image, Video],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "vl-ocr",
        patterns: &["qwen-vl-ocr*"],
        examples: &["qwen-vl-ocr", "qwen-vl-ocr-latest"],
        endpoints: CHATS,
        accepts: &[Image],
        max_file_size_mb: 10,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "qvq",
        patterns: &["qvq-*"],
        examples: &["qvq-max", "qvq-plus"],
        endpoints: CHATS,
        accepts: &[Image, Video],
        max_file_size_mb: 1024,
        stream_only: true,
        thinking: Thinking::Always,
    },
    Family {
        name: "omni",
        patterns: &["qwen*-omni-*", "qwen-omni*"],
        examples: &["qwen-omni-turbo", "qwen3-omni-flash"],
        endpoints: CHATS,
        accepts: &[Image, Audio, Video],
        max_file_size_mb: 1024,
        stream_only: true,
        thinking: Thinking::Never,
    },
    Family {
        name: "asr-filetrans",
        patterns: &["qwen3-asr-flash-filetrans*"],
        examples: &["qwen3-asr-flash-filetrans"],
        endpoints: &[Transcription],
        accepts: &[Audio, Video],
        max_file_size_mb: 1024,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "asr",
        patterns: &["qwen3-asr-flash*", "qwen-audio-asr*"],
        examples: &["qwen3-asr-flash"],
        endpoints: CHATS,
        accepts: &[Audio],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "vl-thinking",
        patterns: &["qwen3-vl-*"],
        examples: &["qwen3-vl-plus", "qwen3-vl-flash"],
        endpoints: CHATS,
        accepts: &[Image, Video],
        max_file_size_mb: 1024,
        stream_only: false,
        thinking: Thinking::OnRequest,
    },
    Family {
        name: "vl",
        patterns: &["qwen-vl-*", "qwen*-vl-*"],
        examples: &[
            "qwen-vl-plus",
            "qwen-vl-max",
            "qwen-vl-max-latest",
            "qwen2.5-vl-72b-instruct",
            "qwen2.5-vl-7b-instruct",
        ],
        endpoints: CHATS,
        accepts: &[Image, Video],
        max_file_size_mb: 1024,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "audio",
        patterns: &["qwen-audio-*", "qwen*-audio-*"],
        examples: &["qwen-audio-turbo", "qwen2-audio-instruct"],
        endpoints: &[Multimodal],
        accepts: &[Audio],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "image-edit",
        patterns: &["qwen-image-edit*"],
        examples: &["qwen-image-edit"],
        endpoints: &[Multimodal],
        accepts: &[Image],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "wan-image",
        patterns: &["wan2.6-t2i*", "wan2.6-image*"],
        examples: &["wan2.6-t2i", "wan2.6-image"],
        endpoints: &[ImageGeneration, Multimodal],
        accepts: &[Image],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "t2i",
        patterns: &[
            "wan*-t2i-*",
            "wanx*-t2i-*",
            "wanx-v1",
            "qwen-image",
            "qwen-image-plus*",
        ],
        examples: &[
            "wanx2.1-t2i-turbo",
            "wan2.2-t2i-flash",
            "wanx-v1",
            "qwen-image",
        ],
        endpoints: &[TextToImage],
        accepts: &[Image],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "image2image",
        patterns: &["wanx*-imageedit*", "wan*-i2i-*"],
        examples: &["wanx2.1-imageedit", "wan2.5-i2i-preview"],
        endpoints: &[ImageEdit],
        accepts: &[Image],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "kf2v",
        patterns: &["*-kf2v-*"],
        examples: &["wan2.2-kf2v-flash", "wanx2.1-kf2v-plus"],
        endpoints: &[KeyframeVideo],
        accepts: &[Image],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "i2v",
        patterns: &["wan*-i2v-*", "wanx*-i2v-*"],
        examples: &["wan2.2-i2v-flash", "wan2.5-i2v-preview"],
        endpoints: &[VideoSynthesis],
        accepts: &[Image, Audio],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "t2v",
        patterns: &["wan*-t2v-*", "wanx*-t2v-*"],
        examples: &["wan2.2-t2v-plus", "wanx2.1-t2v-turbo"],
        endpoints: &[VideoSynthesis],
        accepts: &[Image, Audio],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "transcription",
        patterns: &["paraformer-*", "fun-asr*", "sensevoice-*"],
        examples: &["paraformer-v2", "fun-asr"],
        endpoints: &[Transcription],
        accepts: &[Audio, Video],
        max_file_size_mb: 1024,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "voice-enrollment",
        patterns: &["voice-enrollment"],
        examples: &["voice-enrollment"],
        endpoints: &[VoiceEnrollment],
        accepts: &[Audio],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::Never,
    },
    Family {
        name: "thinking-text",
        patterns: &["qwq-*", "deepseek-r1*"],
        examples: &["qwq-plus", "deepseek-r1"],
        endpoints: TEXT_CHATS,
        accepts: &[],
        max_file_size_mb: 100,
        stream_only: true,
        thinking: Thinking::Always,
    },
    Family {
        name: "hybrid-text",
        patterns: &["qwen3-*", "qwen-plus*", "qwen-flash*", "qwen-turbo*"],
        examples: &["qwen-plus", "qwen-flash", "qwen-turbo", "qwen3-235b-a22b"],
        endpoints: TEXT_CHATS,
        accepts: &[],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::OnRequest,
    },
    Family {
        name: "text",
        patterns: &[
            "qwen-max*",
            "qwen-long*",
            "qwen2.5-*",
            "qwen2-*",
            "deepseek-*",
        ],
        examples: &[
            "qwen-max",
            "qwen-long",
            "qwen2.5-72b-instruct",
            "deepseek-v3",
        ],
        endpoints: TEXT_CHATS,
        accepts: &[],
        max_file_size_mb: 100,
        stream_only: false,
        thinking: Thinking::Never,
    },
];

/// The family that names `model`, if any.
pub fn family_of(model: &str) -> Option<&'static Family> {
    FAMILIES
        .iter()
        .find(|f| f.patterns.iter().any(|p| matches(p, model)))
}

/// The family called `name`.
pub fn family_named(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// Whether `name` matches `pattern` (`*`: any run of characters, also none).
fn matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = match parts.split_first() {
        Some(split) => split,
        None => return name.is_empty(),
    };
    let Some(mut left) = name.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return left.is_empty();
    };
    for part in middle {
        match left.find(part) {
            Some(at) => left = &left[at + part.len()..],
            None => return false,
        }
    }
    left.len() >= last.len() && left.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_globs() {
        assert!(matches("qwen*-vl-*", "qwen2.5-vl-7b-instruct"));
        assert!(matches("qwen-vl-*", "qwen-vl-max-latest"));
        assert!(!matches("qwen-vl-*", "qwen-vl"));
        assert!(matches("*-kf2v-*", "wan2.2-kf2v-flash"));
        assert!(matches("wanx-v1", "wanx-v1"));
        assert!(!matches("wanx-v1", "wanx-v10"));
        assert!(matches("qwen-omni*", "qwen-omni-turbo"));
        assert!(!matches("a*b*c", "acb"));
        assert!(matches("a*b*c", "abbc"));
    }

    #[test]
    fn every_example_names_its_own_family() {
        for family in FAMILIES {
            for example in family.examples {
                assert_eq!(
                    family_of(example).map(|f| f.name),
                    Some(family.name),
                    "{example}"
                );
            }
        }
    }
}
