//! Credential answers, decoded and checked as the upload path does.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dashscope_oss::fuzzing::credential(data);
});
