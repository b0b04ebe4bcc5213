//! The index's fields. Only what a query filters or sorts on is indexed,
//! and only the seq and payload hash are stored: a hit is shown from the
//! log, never from the index, so storing more would only slow indexing.
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST,
    INDEXED, STORED,
};

/// Bump whenever a field, its options or what is put in it changes: an
/// index built by another version is thrown away and rebuilt.
pub const SCHEMA_VERSION: u32 = 3;

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
    /// The entry's seq: fast (results are ordered by it) and stored.
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

/// Hits are ordered by seq and never scored, so no field keeps field
/// norms (a byte per document per field that only BM25 reads).
fn exact() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic),
    )
}

fn words() -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    )
}

/// A number read from its column only (sorting, ranges, lookups). Not put
/// in the term dictionary: seq and ts are unique per entry, and a million
/// unique terms each would cost indexing time for no query that needs them.
fn column() -> NumericOptions {
    NumericOptions::from(FAST)
}

pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        seq: b.add_u64_field(SEQ, column() | STORED),
        kind: b.add_text_field(KIND, exact()),
        job: b.add_text_field(JOB, exact()),
        agent: b.add_text_field(AGENT, exact()),
        actor: b.add_text_field(ACTOR, exact()),
        ts: b.add_u64_field(TS, column()),
        text: b.add_text_field(TEXT_FIELD, words()),
        flagged: b.add_u64_field(FLAGGED, NumericOptions::from(INDEXED | FAST)),
        target: b.add_u64_field(TARGET, column()),
        payload_hash: b.add_text_field(PAYLOAD_HASH, TextOptions::default() | STORED),
    };
    (b.build(), fields)
}
