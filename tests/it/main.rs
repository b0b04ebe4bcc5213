//! Argus's integration tests, one binary (one link, not one per file). Each
//! module drives the real `argusctl` binary, or the library, on real files
//! and real processes; `common` holds what they share.
//!
//! Run one group with `cargo test --test it crash::`, one test by its name.
mod common;

mod append_parallel;
mod architecture;
mod artifacts;
mod auditor;
mod authority;
mod bad_input;
mod checkpoint_strict;
mod client_mode;
mod clock;
mod compact;
mod crash;
mod crashloop;
mod daemon;
mod engine_errors;
mod enospc;
mod exec;
mod export;
mod fault_sim;
mod files_hostile;
mod golden_vectors;
mod inspect;
mod key_rotation;
mod lockdown;
mod output_safety;
mod payload_form;
mod projections_approvals;
mod projections_catalog;
mod projections_determinism;
mod projections_jobs;
mod projections_logtime;
mod projections_policy;
mod projections_reliability;
mod proof_rotation;
mod proofs;
mod python_crosscheck;
mod read_once;
mod readonly_copy;
mod recovery_record;
mod redact;
mod redact_ingest;
mod replay;
mod roundtrip;
mod scenario;
mod search;
mod systemd;
mod tail_faults;
mod tamper;
mod tokens;
mod untrusted_inputs;
mod user_path;
mod verify_batch;
mod witness;
