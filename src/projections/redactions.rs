//! Redactions by target seq: which payloads an operator erased, so a view
//! of a few entries (a job's replay) finds their redactions without reading
//! every entry after them. What a redaction means is decided once, in
//! `log::redactions`; this projection only remembers the first valid one
//! naming each seq, as the readers' scan does.
use super::View;
use super::{Event, Projection, StoreError, Tx};
use crate::log::redactions::{Redaction, Redactions as Found, KIND};

pub const NAME: &str = "redactions";

pub fn target_key(seq: u64) -> Vec<u8> {
    format!("t/{seq:020}").into_bytes()
}

pub struct Redactions;

impl Projection for Redactions {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        1
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        if ev.kind != KIND {
            return Ok(());
        }
        let Some(r) = Redaction::from_parts(ev.seq, ev.kind, ev.actor, ev.wall_ns, ev.payload)
        else {
            return Ok(());
        };
        let key = target_key(r.target_seq);
        if !tx.has(&key)? {
            tx.put_json(&key, r);
        }
        Ok(())
    }
}

/// The redactions of `seqs`: what a view of a few entries reads instead of
/// scanning the log after them.
pub fn of_seqs(view: &View<'_>, seqs: &[u64]) -> Result<Found, StoreError> {
    let mut out = Found::default();
    for &seq in seqs {
        if let Some(r) = view.get_json::<Redaction>(&target_key(seq))? {
            out.add(r);
        }
    }
    Ok(out)
}
