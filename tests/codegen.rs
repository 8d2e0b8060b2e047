//! The generated code and the request schemas, as snapshots: editing `spec/dashscope.yaml`
//! changes these files, and the diff is what a reviewer reads.

use dashscope_oss::api::types;

#[test]
fn generated_source() {
    let source = include_str!(concat!(env!("OUT_DIR"), "/codegen.rs"));
    insta::assert_snapshot!(source);
}

#[test]
fn request_schemas() {
    insta::assert_json_snapshot!(
        "chat_completion_request_schema",
        schemars::schema_for!(types::ChatCompletionRequest)
    );
    insta::assert_json_snapshot!(
        "multimodal_generation_request_schema",
        schemars::schema_for!(types::MultimodalGenerationRequest)
    );
}
