//! Which flagged entries still lack their `research.injection_flagged`
//! record, and the record itself.
//!
//! The log is the memory: a flag record names its target seq, and a run
//! owes a record for every flagged entry no Argus-written record names yet.
//! The index holds both sides (flagged entries, and each record's target),
//! so the question costs two index lookups rather than a scan of the log,
//! and it has the same answer after a rebuild, a restart or a crash between
//! indexing and appending: a record is written once per flagged entry.
use super::inject::Finding;
use super::schema;
use super::{SearchError, SearchIndex, FLAG_KIND};
use crate::log::entry::NewEntry;
use log_format::EntryView;
use serde_json::json;
use std::collections::BTreeSet;
use tantivy::collector::DocSetCollector;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::Term;

impl SearchIndex {
    /// Values of the u64 fast field `field` over every document `query`
    /// matches.
    fn values(
        &self,
        searcher: &tantivy::Searcher,
        query: &TermQuery,
        field: &str,
    ) -> Result<BTreeSet<u64>, SearchError> {
        let docs = searcher.search(query, &DocSetCollector)?;
        let mut out = BTreeSet::new();
        let mut columns = std::collections::HashMap::new();
        for addr in docs {
            let col = match columns.entry(addr.segment_ord) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    searcher
                        .segment_reader(addr.segment_ord)
                        .fast_fields()
                        .u64(field)?,
                ),
            };
            if let Some(v) = col.first(addr.doc_id) {
                out.insert(v);
            }
        }
        Ok(out)
    }

    /// Seqs the index flagged that no Argus-written flag record targets, in
    /// seq order.
    pub fn unrecorded_flags(&self) -> Result<Vec<u64>, SearchError> {
        let searcher = self.searcher()?;
        let flagged = TermQuery::new(
            Term::from_field_u64(self.fields.flagged, 1),
            IndexRecordOption::Basic,
        );
        let records = TermQuery::new(
            Term::from_field_text(self.fields.kind, FLAG_KIND),
            IndexRecordOption::Basic,
        );
        let flagged = self.values(&searcher, &flagged, schema::SEQ)?;
        let recorded = self.values(&searcher, &records, schema::TARGET)?;
        Ok(flagged.difference(&recorded).copied().collect())
    }
}

/// The record of a finding in entry `v`: written by Argus, in the flagged
/// entry's job, its parent the flagged entry (so `inspect` lists it among
/// the entry's children).
pub fn record(v: &EntryView<'_>, finding: &Finding) -> NewEntry {
    let mut payload = json!({
        "target_seq": v.seq,
        "target_kind": v.kind,
        "patterns": finding.patterns,
        "excerpt": finding.excerpt,
    });
    if let Some(j) = v.job_id {
        payload["job_id"] = json!(j);
    }
    if let Some(a) = v.agent {
        payload["agent"] = json!(a);
    }
    NewEntry {
        job_id: v.job_id.map(str::to_string),
        parent: Some(v.seq),
        ..NewEntry::argus(FLAG_KIND, &payload)
    }
}
