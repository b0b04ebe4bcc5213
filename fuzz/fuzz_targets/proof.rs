//! A proof bundle (inclusion, consistency or job) as `verify-proof` judges it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = argus::untrusted::proof_bundle(data, &log_format::untrusted::fuzz_key());
});
