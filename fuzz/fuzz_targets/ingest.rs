//! One agent JSON line, as `argusctl append` parses and validates it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = argus::untrusted::ingest_line(data);
});
