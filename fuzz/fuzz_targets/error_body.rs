//! Error bodies (native JSON, compatible JSON, OSS XML) at any status.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (status, body) = match data {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) % 600, rest),
        _ => (500, data),
    };
    dashscope_oss::fuzzing::error_body(status, body);
});
