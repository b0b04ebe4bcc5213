//! How an entry becomes an `Event`: its payload parsed, its writer class
//! judged against the registry, and its time folded into log time.
//!
//! Every fold of the log (the projection lanes, the auditor, argusd's live
//! kill-switch gate) goes through here, so a forged decision (a kind its
//! writer class may not write) is ignored the same way everywhere, and a
//! forged `clock.skew` moves log time for none of them.
use super::Event;
use crate::authority::{Actor, Class};
use crate::registry::Registry;
use crate::time::LogClock;
use log_format::EntryView;
use serde_json::Value;

/// The judgement of one entry: its parsed payload, and why its writer may
/// not write its kind (`None` when it may).
pub struct Admitted {
    pub payload: Value,
    pub refused: Option<String>,
}

pub fn admit(registry: &Registry, v: &EntryView<'_>) -> Admitted {
    let payload: Value = serde_json::from_slice(v.payload).unwrap_or(Value::Null);
    admit_parsed(registry, v.kind, v.actor, payload)
}

/// `admit` for an entry whose payload is already parsed (one read back from
/// argusd's JSON feed by a separate auditor process).
pub fn admit_parsed(registry: &Registry, kind: &str, actor: &str, payload: Value) -> Admitted {
    let allowed = registry.writers(kind).contains(&Class::of_actor(actor));
    let refused = (!allowed).then(|| {
        registry
            .authorize(kind, &Actor::parse(actor))
            .err()
            .map(|u| u.to_string())
            .unwrap_or_default()
    });
    Admitted { payload, refused }
}

/// Folds the entry's time into `clock`. Only Argus's own record of a clock
/// jump may say how much time passed across it.
pub fn log_time(clock: &mut LogClock, kind: &str, ts_ns: u64, a: &Admitted) -> u64 {
    let witnessed = (a.refused.is_none() && kind == crate::time::CLOCK_SKEW_KIND)
        .then(|| crate::time::witnessed_ns(&a.payload))
        .flatten();
    clock.advance(ts_ns, witnessed)
}

/// The `Event` of an entry view, once admitted and timed.
pub fn event<'a>(v: &EntryView<'a>, log_ns: u64, payload: &'a Value) -> Event<'a> {
    Event {
        seq: v.seq,
        log_ns,
        wall_ns: v.ts_ns,
        kind: v.kind,
        job_id: v.job_id,
        step_id: v.step_id,
        agent: v.agent,
        actor: v.actor,
        parent: v.parent,
        payload,
    }
}
