//! Redactions: which payloads an operator erased, who, when and why. One
//! place decides what an `entry.redacted` entry means, for the readers that
//! show payloads, for compaction (which zeroes the bytes) and for verify
//! (which accepts a zeroed payload only with a redaction behind it).
//!
//! A redaction is a decision, so readers show a payload as erased from the
//! moment the redaction is sealed, before compaction removes the bytes.
use crate::authority::Class;
use crate::error::Result;
use crate::log::reader::LogReader;
use log_format::{EntryView, Hash32};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

/// The kind an operator's erasure is recorded as.
pub const KIND: &str = "entry.redacted";
/// Longest `reason` the registry's schema accepts (characters).
pub const REASON_MAX: usize = 1024;

/// One `entry.redacted` entry, read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Redaction {
    /// Seq of the `entry.redacted` entry.
    pub by_seq: u64,
    pub target_seq: u64,
    /// The target's payload hash as the redaction names it, so it erases
    /// exactly the bytes the operator saw.
    pub payload_hash: Hash32,
    pub actor: String,
    pub ts_ns: u64,
    pub reason: String,
}

impl Redaction {
    /// The redaction `v` records, or `None` when `v` is not one that
    /// carries authority: another kind, a class other than operator (SPEC
    /// §4.6: readers ignore a decision from a class that may not write it),
    /// a payload that does not parse (an erased redaction included) or a
    /// target that is not before it.
    pub fn from_entry(v: &EntryView<'_>) -> Option<Self> {
        if v.kind != KIND {
            return None;
        }
        let p: Value = serde_json::from_slice(v.payload).ok()?;
        Self::from_parts(v.seq, v.kind, v.actor, v.ts_ns, &p)
    }

    /// `from_entry` for an entry already decoded (a projection's event).
    pub fn from_parts(seq: u64, kind: &str, actor: &str, ts_ns: u64, p: &Value) -> Option<Self> {
        if kind != KIND || Class::of_actor(actor) != Class::Operator {
            return None;
        }
        let target_seq = p.get("target_seq")?.as_u64()?;
        let hash = p.get("payload_hash")?.as_str()?;
        // SPEC §4.2.1: exactly 64 lowercase hex digits, as the writer prints it.
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let hash = hex::decode(hash).ok()?;
        let reason = p.get("reason")?.as_str()?.to_string();
        (target_seq < seq).then_some(())?;
        Some(Self {
            by_seq: seq,
            target_seq,
            payload_hash: hash.try_into().ok()?,
            actor: actor.to_string(),
            ts_ns,
            reason,
        })
    }

    /// Whether this redaction erases `v`: the same seq and payload hash.
    pub fn covers(&self, v: &EntryView<'_>) -> bool {
        self.target_seq == v.seq && self.payload_hash == v.payload_hash
    }

    pub fn json(&self) -> Value {
        serde_json::json!({
            "by_seq": self.by_seq,
            "actor": self.actor,
            "ts": crate::time::rfc3339_ns(self.ts_ns),
            "reason": self.reason,
        })
    }
}

/// Whether a payload of `kind` may be erased: what agents write (tool
/// calls, outputs, their `x.` kinds), where secrets and personal data
/// land. Decisions, Argus's own records and the auditor's findings may not:
/// projections and the auditor derive standing state from them (a kill, an
/// approval, a policy), and `entry.redacted` itself must stay readable or
/// its own target could no longer be explained.
pub fn erasable(kind: &str) -> bool {
    match crate::registry::builtin() {
        Ok(reg) => reg.writers(kind).contains(&Class::Agent),
        Err(_) => false,
    }
}

/// How a reader must show one entry's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown<'r> {
    /// As stored.
    Payload,
    /// Erased by this redaction (the bytes may still be there until
    /// `argusctl compact`; they are not shown).
    Erased(&'r Redaction),
    /// Zero bytes that no redaction explains: content tampering, which a
    /// reader refuses as it refuses a payload that does not match its hash.
    Unexplained,
}

/// Redactions by target seq (the first that names each target's payload
/// hash; a later duplicate changes nothing).
#[derive(Debug, Clone, Default)]
pub struct Redactions {
    by_target: BTreeMap<u64, Redaction>,
}

impl Redactions {
    /// Every redaction of an entry at or after `from`, found by reading the
    /// sealed entries from `from` to the head (a redaction always comes
    /// after its target). This is a scan, not an index: a reader pays one
    /// pass over the entries after the first one it shows.
    pub fn scan(reader: &LogReader, from: u64) -> Result<Self> {
        let mut out = Self::default();
        reader.for_each(from, u64::MAX, |v| {
            if let Some(r) = Redaction::from_entry(v) {
                if r.target_seq >= from {
                    out.add(r);
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Keeps `r` unless an earlier redaction already names its target.
    pub fn add(&mut self, r: Redaction) {
        self.by_target.entry(r.target_seq).or_insert(r);
    }

    /// The redaction naming `seq`, whatever hash it names.
    pub fn get(&self, seq: u64) -> Option<&Redaction> {
        self.by_target.get(&seq)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Redaction> {
        self.by_target.values()
    }

    pub fn len(&self) -> usize {
        self.by_target.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_target.is_empty()
    }

    /// How `v`'s payload is to be shown.
    pub fn shown(&self, v: &EntryView<'_>) -> Shown<'_> {
        match self.get(v.seq) {
            Some(r) if r.covers(v) && erasable(v.kind) => Shown::Erased(r),
            _ if v.payload_erased() => Shown::Unexplained,
            _ => Shown::Payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(seq: u64, kind: &'a str, actor: &'a str, payload: &'a [u8]) -> EntryView<'a> {
        EntryView {
            seq,
            ts_ns: 5,
            parent: None,
            prev: [0; 32],
            payload_hash: log_format::hash::payload_hash(payload),
            kind,
            job_id: None,
            step_id: None,
            agent: None,
            actor,
            payload,
        }
    }

    #[test]
    fn only_an_operators_well_formed_redaction_of_an_earlier_seq_counts() {
        let h = "ab".repeat(32);
        let p = format!(r#"{{"payload_hash":"{h}","reason":"pii","target_seq":3}}"#);
        let ok = Redaction::from_entry(&entry(9, KIND, "operator:uid:1:al", p.as_bytes()));
        assert_eq!(
            ok.map(|r| (r.target_seq, r.payload_hash)),
            Some((3, [0xab; 32]))
        );
        assert!(Redaction::from_entry(&entry(9, KIND, "agent:uid:1:al", p.as_bytes())).is_none());
        assert!(
            Redaction::from_entry(&entry(3, KIND, "operator:uid:1:al", p.as_bytes())).is_none()
        );
        assert!(
            Redaction::from_entry(&entry(9, KIND, "operator:uid:1:al", &[0; 40])).is_none(),
            "an erased redaction explains nothing"
        );
    }

    #[test]
    fn governance_kinds_are_not_erasable() {
        assert!(erasable("tool.call_started"));
        assert!(erasable("x.team.note"));
        for k in [
            KIND,
            "kill.hard",
            "proposal.approved",
            "log.recovered",
            "clock.skew",
        ] {
            assert!(!erasable(k), "{k}");
        }
    }
}
