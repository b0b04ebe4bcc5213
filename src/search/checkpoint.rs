//! The index's checkpoint, stored as the payload of each tantivy commit.
//!
//! Keeping it in the commit (rather than a file beside the index) makes the
//! documents and the checkpoint one atomic unit: after a crash, the index
//! opens at its last commit, and that commit says exactly which seqs it
//! holds. `last_hash` is the entry hash at `next_seq - 1`; since each entry
//! hash covers the chain before it, a match means the whole indexed prefix
//! is the log's, and a log swapped or rewritten underneath is detected.
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "argus.search";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: String,
    /// `schema::SCHEMA_VERSION` of the code that wrote it.
    pub version: u32,
    /// The index holds seqs `0..next_seq`.
    pub next_seq: u64,
    /// Hex entry hash at `next_seq - 1`; empty when `next_seq` is 0.
    pub last_hash: String,
    /// `Scanner::identity` of the patterns the `flagged` field was computed
    /// with.
    pub patterns: String,
}

impl Checkpoint {
    pub fn new(next_seq: u64, last_hash: String, patterns: &str) -> Self {
        Self {
            format: FORMAT.into(),
            version: super::schema::SCHEMA_VERSION,
            next_seq,
            last_hash,
            patterns: patterns.into(),
        }
    }

    /// The checkpoint in a commit payload; one that does not decode, or was
    /// written by other code, counts as none (the index is rebuilt).
    pub fn decode(payload: Option<&str>) -> Option<Self> {
        let cp: Self = serde_json::from_str(payload?).ok()?;
        (cp.format == FORMAT && cp.version == super::schema::SCHEMA_VERSION).then_some(cp)
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_versions_and_garbage() {
        let cp = Checkpoint::new(7, "ab".repeat(32), "p");
        assert_eq!(Checkpoint::decode(Some(&cp.encode())), Some(cp.clone()));
        let mut old = cp;
        old.version += 1;
        assert_eq!(Checkpoint::decode(Some(&old.encode())), None);
        assert_eq!(Checkpoint::decode(Some("{")), None);
        assert_eq!(Checkpoint::decode(None), None);
    }
}
