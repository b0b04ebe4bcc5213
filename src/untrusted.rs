//! Argus's decoders of outside bytes beyond the format's own
//! (`log_format::untrusted`), behind one function each: an agent's JSON
//! line, a `POST /v1/entries` body, a proof bundle and a witness request.
//!
//! The fuzz targets in `fuzz/` and the property tests in
//! `tests/it/untrusted_inputs.rs` call exactly these, so what nightly
//! fuzzing explores is what stable CI checks. None may panic.
use ed25519_dalek::VerifyingKey;

/// The agent every fuzzed input is attributed to.
pub const FUZZ_AGENT: &str = "fuzz";

/// One JSON line as `argusctl append` takes it: the entry's kind, or the
/// refusal naming the field.
pub fn ingest_line(bytes: &[u8]) -> Result<String, String> {
    let actor = format!("agent:{FUZZ_AGENT}");
    crate::cli::append::parse_line(bytes, &actor).map(|e| e.kind.clone())
}

/// A request body as `POST /v1/entries` takes it from an agent token.
pub fn entries_body(bytes: &[u8], ndjson: bool) -> Result<usize, String> {
    crate::server::decode_entries_body(bytes, ndjson, FUZZ_AGENT)
}

/// A proof bundle as `verify-proof` judges it: exit code or why malformed.
pub fn proof_bundle(bytes: &[u8], key: &VerifyingKey) -> Result<i32, String> {
    crate::cli::proof::bundle_verdict(bytes, key)
}

/// A C2SP add-checkpoint request as `argusctl witness --request` reads it.
pub fn witness_request(bytes: &[u8]) -> Result<(u64, usize, u64), String> {
    crate::cli::witness::request_shape(bytes)
}
