//! The live auditor (seed 000): detectors that watch the committed stream
//! and write `anomaly.detected`, kill and lockdown decisions, incidents and
//! staleness records, as the `auditor` principal.
//!
//! The detectors are a deterministic fold of log time (`fold.rs`), like the
//! projections: they see entries admitted and timed by
//! `projections::admit`, never the wall clock. `replay.rs` runs the fold
//! over a log on disk (`argusctl audit`, restarts, benchmarks); argusd runs
//! it live (`server::auditor`). What each detector judges, and why, is in
//! docs/AUDITOR.md; every number is in `config.rs`.
pub mod causal;
pub mod config;
pub mod drift;
pub mod economic;
pub mod finding;
pub mod fold;
pub mod replay;
pub mod staleness;
pub mod stats;

pub use config::Config;
pub use finding::{Finding, Output, Severity};
pub use fold::Auditor;
