//! A C2SP tlog-witness add-checkpoint request, as `argusctl witness
//! --request` reads it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = argus::untrusted::witness_request(data);
});
