//! Days of log time, without waiting for them. The writer's clock check
//! trusts a forward step only when nothing contradicts it: here, a writer
//! whose clock reads `ahead` past the real one and that has no boot-time
//! evidence to compare with (as after a reboot during the wait; SPEC §4.5
//! names this limit). Log time then advances by the step from the last
//! entry. Every real-clock writer that comes after records the step back as
//! a `clock.skew` entry, which credits nothing, so repeated calls add up:
//! two calls of 31 days are 62 days of log time.
//! (A clock that jumps while evidence contradicts it is tests/it/clock.rs.)
use argus::time::{BootTime, Clock};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

struct Ahead(u64);

impl Clock for Ahead {
    fn wall_ns(&self) -> u64 {
        self.0
    }
    fn boot(&self) -> Option<BootTime> {
        None
    }
}

/// Appends `entries` as agents' work, stamped `ahead_ns` after now.
pub fn append_later(dir: &Path, ahead_ns: u64, entries: &[Value]) {
    let opts = argus::log::OpenOptions {
        clock: Some(Arc::new(Ahead(argus::time::wall_now_ns() + ahead_ns))),
        ..Default::default()
    };
    let log = argus::Log::open_with(dir, &opts).expect("open log with a clock ahead");
    let actor = super::actor_of("agent");
    let parsed = entries
        .iter()
        .map(|e| argus::cli::append::parse_line(e.to_string().as_bytes(), &actor).unwrap())
        .collect();
    log.append(parsed).expect("append later");
}
