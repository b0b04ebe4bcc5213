//! A `POST /v1/entries` body, as JSON (first byte even) or NDJSON (odd).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((mode, body)) = data.split_first() {
        let _ = argus::untrusted::entries_body(body, mode & 1 == 1);
    }
});
