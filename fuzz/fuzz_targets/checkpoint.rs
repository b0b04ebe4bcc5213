//! A checkpoint text: the strict C2SP signed-note parser, the log's
//! signature and a witness's cosignature.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = log_format::untrusted::checkpoint(data);
});
