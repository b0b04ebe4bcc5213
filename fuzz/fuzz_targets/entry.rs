//! One entry frame's body: rkyv bytecheck validation, then hashing.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = log_format::untrusted::entry(data);
});
