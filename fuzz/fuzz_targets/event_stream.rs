//! Server-sent event streams, cut into chunks anywhere.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (cuts, bytes) = data.split_at(data.len().min(8));
    dashscope_oss::fuzzing::event_stream(bytes, cuts);
});
