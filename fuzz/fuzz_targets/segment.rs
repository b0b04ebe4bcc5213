//! A segment file's bytes (`.seg`), and the same bytes as a compressed
//! segment (`.segz`): frame walk, chain walk with every check, tail
//! judgement, archive layout and block inflation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = log_format::untrusted::segment(data);
    let _ = log_format::untrusted::archive(data);
});
