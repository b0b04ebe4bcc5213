//! Argus: a signed, hash-chained, append-only flight recorder for autonomous
//! agents. See `docs/ARCHITECTURE.md` for the map.
#![deny(clippy::unwrap_used, clippy::expect_used)]
// The one exception, mapping sealed segments, is `log::mmap`.
#![deny(unsafe_code)]

pub mod auditor;
pub mod authority;
pub mod error;
pub mod json;
pub mod log;
pub mod projections;
pub mod registry;
pub mod search;
pub mod secrets;
pub mod server;
pub mod time;
pub mod tokens;
pub mod untrusted;

pub use error::{Error, Result};
pub use log::writer::{Ack, NewEntry};
pub use log::Log;

/// The `argusctl` commands, kept in the library so integration tests and
/// benches exercise the same code the binary runs.
pub mod cli;
