//! `argusd`: one log served to many agents, operators and auditors at once.
//!
//! The daemon is a layer above the engine, never a second copy of it: it
//! owns the log's writer (`crate::Log`, whose group commit already merges
//! concurrent producers) and the projections, and turns HTTP requests into
//! the same calls `argusctl` makes. Appends are parsed by `argusctl
//! append`'s line parser, views and decisions run the `argusctl` command
//! functions themselves, and the live stream is the follower `tail -f` uses.
//! What lives here is only what a network adds: who the caller is, limits
//! and overload, streaming, discovery, signals and metrics.
mod auditor;
pub mod auditor_remote;
pub mod auth;
mod commands;
pub mod config;
mod control;
mod discovery;
mod errors;
mod fairness;
mod feed;
mod health;
mod ingest;
mod listen;
mod relief;
mod routes;
mod run;
mod stream;
mod ui;
mod witness_push;

pub use config::{Config, Limits};
pub use discovery::{Discovery, DISCOVERY_FILE};
pub use run::{run, serve};

/// What `POST /v1/entries` makes of a body, for an agent token `agent`:
/// the number of entries it would append, or the refusal's message. No
/// daemon and no log: the fuzz targets and property tests drive this.
pub fn decode_entries_body(bytes: &[u8], ndjson: bool, agent: &str) -> Result<usize, String> {
    let caller = auth::Caller::Token {
        name: agent.to_string(),
        role: crate::authority::Class::Agent,
    };
    let kind = if ndjson {
        ingest::BodyKind::Ndjson
    } else {
        ingest::BodyKind::Json
    };
    let rules = crate::secrets::builtin().map_err(|e| e.to_string())?;
    let (entries, err) = ingest::parse_body(
        bytes,
        kind,
        &caller,
        rules,
        Limits::default().line_bytes_max,
        1,
    );
    match err {
        Some(e) => Err(e.to_string()),
        None => Ok(entries.len()),
    }
}
