//! Helpers for in-crate unit tests of projections: fold events into a fresh
//! temporary keyspace and read it back as a view would.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::store::Tree;
use super::tx::{self, Tx, View};
use super::{Event, Projection};
use serde_json::Value;

pub struct Ev {
    pub seq: u64,
    pub ts_ns: u64,
    pub kind: &'static str,
    pub job_id: Option<String>,
    pub agent: Option<String>,
    pub payload: Value,
}

pub fn ev(seq: u64, ts_ns: u64, kind: &'static str, agent: Option<&str>, payload: Value) -> Ev {
    Ev {
        seq,
        ts_ns,
        kind,
        job_id: None,
        agent: agent.map(str::to_string),
        payload,
    }
}

pub fn tree() -> Tree {
    Tree::temporary()
}

/// Applies `evs` to `tree`, committing after each so every read path
/// (working set and tree) is exercised, and returns the state digest.
pub fn apply_all(p: &dyn Projection, tree: &Tree, evs: &[Ev]) -> [u8; 32] {
    for e in evs {
        let ev = Event {
            seq: e.seq,
            log_ns: e.ts_ns,
            wall_ns: e.ts_ns,
            kind: e.kind,
            job_id: e.job_id.as_deref(),
            step_id: None,
            agent: e.agent.as_deref(),
            actor: "tester",
            parent: None,
            payload: &e.payload,
        };
        let staged = Default::default();
        p.apply(&ev, &mut Tx::new(tree, &staged)).unwrap();
        tx::commit(tree, &staged, Vec::new()).unwrap();
    }
    tx::digest(tree).unwrap()
}

pub fn view(tree: &Tree) -> View<'_> {
    View::new(tree)
}

/// Every key and value, engine keys included, in key order.
pub fn dump(tree: &Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
    tree.iter().map(|kv| kv.unwrap()).collect()
}
