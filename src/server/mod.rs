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
