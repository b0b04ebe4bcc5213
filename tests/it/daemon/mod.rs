//! argusd end to end: real daemons on loopback, real producers and
//! followers over HTTP (and Python's `argus_client` where `python3` is
//! present), and the log checked afterwards with `argusctl cat` and
//! `argusctl verify`, never through the daemon's own word.
//!
//! Run with `cargo test --test it daemon::`.
#![allow(dead_code)]

pub mod harness;
pub mod http;

mod auth;
mod bad_input;
mod concurrency;
mod hostile;
mod kill9;
mod limits;
mod observe;
mod page;
mod peers;
mod routes;
mod sigterm;
mod witness;

use crate::common::Ack;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What a producer got back: each ack with the tag of the entry it acked.
pub type Acked = Vec<(Ack, (u64, u64))>;

/// Entry `i` of producer `p`: its payload names both, so the log can be
/// matched back to who sent what.
pub fn entry(p: u64, i: u64) -> Value {
    json!({"kind": "x.e2e", "job_id": format!("p{p}"), "agent": format!("producer-{p}"), "payload": {"p": p, "i": i}})
}

/// The `(p, i)` an entry of `entry` carries.
pub fn tag_of(v: &Value) -> Option<(u64, u64)> {
    Some((v["payload"]["p"].as_u64()?, v["payload"]["i"].as_u64()?))
}

/// Checks every acked entry against the log as `argusctl cat` prints it:
/// the ack's seq holds the ack's hash and the entry that was sent (its
/// tag), no two acks share a seq, and no tag is in the log twice.
pub fn assert_acked_in_log(log: &[Value], acked: &[(Ack, (u64, u64))]) {
    let by_seq: BTreeMap<u64, &Value> = log
        .iter()
        .map(|e| (e["seq"].as_u64().expect("seq"), e))
        .collect();
    assert_eq!(by_seq.len(), log.len(), "cat printed a seq twice");
    let mut seen_tags: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for e in log {
        if let Some(t) = tag_of(e) {
            if let Some(prev) = seen_tags.insert(t, e["seq"].as_u64().unwrap_or(0)) {
                panic!(
                    "entry {t:?} is in the log twice: seqs {prev} and {}",
                    e["seq"]
                );
            }
        }
    }
    let mut ack_seqs = BTreeMap::new();
    for (ack, tag) in acked {
        if let Some(other) = ack_seqs.insert(ack.seq, *tag) {
            panic!("seq {} was acked for both {other:?} and {tag:?}", ack.seq);
        }
        let e = by_seq
            .get(&ack.seq)
            .unwrap_or_else(|| panic!("acked seq {} ({tag:?}) is not in the log", ack.seq));
        assert_eq!(
            e["hash"].as_str(),
            Some(ack.hash.as_str()),
            "seq {} holds another entry than the one acked: {e}",
            ack.seq
        );
        assert_eq!(
            tag_of(e),
            Some(*tag),
            "seq {} was acked for {tag:?} but holds {e}",
            ack.seq
        );
    }
}

/// The seqs of the NDJSON entry lines among `lines` (heartbeats skipped);
/// panics on an error line unless `allow_error`.
pub fn seqs_of_lines(lines: &[String]) -> Vec<(u64, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"));
            if v.get("heartbeat").is_some() {
                return None;
            }
            assert!(v.get("error").is_none(), "unexpected error line: {l}");
            Some((
                v["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {l}")),
                v["hash"].as_str().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}
