//! The index's fields. Only what a query filters or sorts on is indexed,
//! and only the seq and payload hash are stored: a hit is shown from the
//! log, never from the index, so storing more would only slow indexing.
use tantivy::schema::{Field, Schema, FAST, INDEXED, STORED, STRING, TEXT};

/// Bump whenever a field, its options or what is put in it changes: an
/// index built by another version is thrown away and rebuilt.
pub const SCHEMA_VERSION: u32 = 1;

/// Field names, also the names a query may use (`kind:tool.call_completed`).
pub const SEQ: &str = "seq";
pub const KIND: &str = "kind";
pub const JOB: &str = "job";
pub const AGENT: &str = "agent";
pub const ACTOR: &str = "actor";
pub const TS: &str = "ts";
pub const TEXT_FIELD: &str = "text";
pub const FLAGGED: &str = "flagged";
pub const TARGET: &str = "target";
pub const PAYLOAD_HASH: &str = "payload_hash";

#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// The entry's seq: indexed, fast (results are ordered by it) and stored.
    pub seq: Field,
    /// kind, job_id, agent, actor: exact strings, not tokenized.
    pub kind: Field,
    pub job: Field,
    pub agent: Field,
    pub actor: Field,
    /// The entry's stored time (ns since the epoch), fast for ranges.
    pub ts: Field,
    /// Words of the payload (`text::payload_text`), tokenized, with positions
    /// so phrases work.
    pub text: Field,
    /// 1 when the injection scan matched this entry, else 0.
    pub flagged: Field,
    /// On a `research.injection_flagged` entry written by Argus: the seq it
    /// flags. How a run knows which flags the log already holds.
    pub target: Field,
    /// Hex BLAKE3 payload hash, compared with the log's on every hit.
    pub payload_hash: Field,
}

pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        seq: b.add_u64_field(SEQ, INDEXED | FAST | STORED),
        kind: b.add_text_field(KIND, STRING),
        job: b.add_text_field(JOB, STRING),
        agent: b.add_text_field(AGENT, STRING),
        actor: b.add_text_field(ACTOR, STRING),
        ts: b.add_u64_field(TS, INDEXED | FAST),
        text: b.add_text_field(TEXT_FIELD, TEXT),
        flagged: b.add_u64_field(FLAGGED, INDEXED | FAST),
        target: b.add_u64_field(TARGET, INDEXED | FAST),
        payload_hash: b.add_text_field(PAYLOAD_HASH, STORED),
    };
    (b.build(), fields)
}
