//! A checkpoint text (strict C2SP signed-note parser, signature and
//! cosignature checks) and the same bytes as a witness request.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = log_format::untrusted::checkpoint(data);
    let _ = argus::untrusted::witness_request(data);
});
