//! Answering a search: the user's query text (tantivy's query language over
//! the payload words), AND the filters, newest entry first.
//!
//! Hits are ordered by seq, descending, not by relevance: an audit search
//! asks "where did this happen", the answer must not depend on how the
//! index happens to be segmented, and a rebuilt index must answer byte for
//! byte as the one it replaced.
use super::schema::{self, Fields};
use super::{SearchError, SearchIndex};
use std::ops::Bound;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{Order, TantivyDocument, Term};

/// Filters, each ANDed with the query.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Exact kind, or a family with a trailing `.*` (`tool.*`).
    pub kind: Option<String>,
    pub job: Option<String>,
    pub agent: Option<String>,
    /// Entry time bounds, ns since the epoch, inclusive.
    pub since_ns: Option<u64>,
    pub until_ns: Option<u64>,
    /// Only entries the injection scan flagged.
    pub flagged: bool,
}

/// One matching entry, as the index has it. Only a pointer: the caller
/// reads the entry from the log and compares payload hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub seq: u64,
    /// The hex payload hash the index recorded for `seq`.
    pub stored_payload_hash: String,
}

/// The newest `limit` hits and how many entries match in all.
#[derive(Debug, Clone)]
pub struct Answer {
    pub hits: Vec<Hit>,
    pub total: usize,
}

fn term(f: tantivy::schema::Field, s: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(f, s),
        IndexRecordOption::Basic,
    ))
}

/// The query and filters as one tantivy query.
fn build(
    index: &tantivy::Index,
    f: &Fields,
    text: &str,
    filters: &Filters,
) -> Result<Box<dyn Query>, SearchError> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if !text.trim().is_empty() {
        let mut parser = QueryParser::for_index(index, vec![f.text]);
        parser.set_conjunction_by_default();
        let q = parser
            .parse_query(text)
            .map_err(|e| SearchError::Query(e.to_string()))?;
        clauses.push((Occur::Must, q));
    }
    if let Some(kind) = &filters.kind {
        match kind.strip_suffix(".*") {
            // Every kind starting "family.": '/' is the byte after '.'.
            Some(family) => clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_text(f.kind, &format!("{family}."))),
                    Bound::Excluded(Term::from_field_text(f.kind, &format!("{family}/"))),
                )),
            )),
            None => clauses.push((Occur::Must, term(f.kind, kind))),
        }
    }
    if let Some(job) = &filters.job {
        clauses.push((Occur::Must, term(f.job, job)));
    }
    if let Some(agent) = &filters.agent {
        clauses.push((Occur::Must, term(f.agent, agent)));
    }
    if filters.since_ns.is_some() || filters.until_ns.is_some() {
        let lo = Term::from_field_u64(f.ts, filters.since_ns.unwrap_or(0));
        let hi = Term::from_field_u64(f.ts, filters.until_ns.unwrap_or(u64::MAX));
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(Bound::Included(lo), Bound::Included(hi))),
        ));
    }
    if filters.flagged {
        clauses.push((
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_u64(f.flagged, 1),
                IndexRecordOption::Basic,
            )),
        ));
    }
    Ok(match clauses.len() {
        0 => Box::new(AllQuery),
        1 => clauses.remove(0).1,
        _ => Box::new(BooleanQuery::new(clauses)),
    })
}

impl SearchIndex {
    /// The index as of this process's last commit (or its opening).
    pub(super) fn searcher(&self) -> Result<tantivy::Searcher, SearchError> {
        Ok(self.reader.searcher())
    }

    /// Refuses query text that does not parse, before any other work.
    pub fn check_query(&self, text: &str) -> Result<(), SearchError> {
        build(&self.index, &self.fields, text, &Filters::default()).map(|_| ())
    }

    /// The newest `limit` entries matching `text` and `filters`, as of the
    /// last commit. `limit` 0 counts only.
    pub fn search(
        &self,
        text: &str,
        filters: &Filters,
        limit: usize,
    ) -> Result<Answer, SearchError> {
        let query = build(&self.index, &self.fields, text, filters)?;
        let searcher = self.searcher()?;
        if limit == 0 {
            return Ok(Answer {
                hits: Vec::new(),
                total: searcher.search(&query, &Count)?,
            });
        }
        let top = TopDocs::with_limit(limit).order_by_fast_field::<u64>(schema::SEQ, Order::Desc);
        let (docs, total) = searcher.search(&query, &(top, Count))?;
        let mut hits = Vec::with_capacity(docs.len());
        for (seq, addr) in docs {
            let Some(seq) = seq else { continue };
            let doc: TantivyDocument = searcher.doc(addr)?;
            let stored = doc
                .get_first(self.fields.payload_hash)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            hits.push(Hit {
                seq,
                stored_payload_hash: stored,
            });
        }
        Ok(Answer { hits, total })
    }
}
