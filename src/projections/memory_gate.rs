//! Memory proposal gate (PRD-018 §4.8): every proposed long-term memory
//! write with its critic score, sources and review status.
//!
//! The seed's auto-approve rule (score >= 7.0 and at least one source with
//! authority >= 0.7) is derived here as status `auto_approvable`; it only
//! becomes `approved` when a `memory.proposal.approved` entry says so (the
//! `memory --sweep` command writes those), because a decision is an entry.
use super::status::status_enum;
use super::{Event, Projection, StoreError, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const NAME: &str = "memory_gate";

status_enum! {
    /// Where a memory proposal stands in review.
    pub enum MemoryStatus("memory proposal status") {
        Pending = "pending",
        /// Meets the gate; approved only once an entry says so.
        AutoApprovable = "auto_approvable",
        Approved = "approved",
        Rejected = "rejected",
        /// Waits for better evidence: a new score re-opens it.
        Deferred = "deferred",
    }
}

impl MemoryStatus {
    /// Approval and rejection are final.
    pub fn is_decided(self) -> bool {
        matches!(self, Self::Approved | Self::Rejected)
    }

    /// The status a review entry of this kind sets, if it is one.
    fn decided_by(kind: &str) -> Option<Self> {
        Some(match kind {
            "memory.proposal.approved" => Self::Approved,
            "memory.proposal.rejected" => Self::Rejected,
            "memory.proposal.deferred" => Self::Deferred,
            _ => return None,
        })
    }
}

pub const AUTO_APPROVE_SCORE: f64 = 7.0;
pub const AUTO_APPROVE_AUTHORITY: f64 = 0.7;
pub const AUTO_REASON: &str = "score >= 7.0 with a source of authority >= 0.7";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Source {
    pub id: String,
    pub authority: f64,
}

/// A review decision that arrived after the proposal was already decided.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LateDecision {
    pub seq: u64,
    pub kind: String,
    pub reviewer: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Proposal {
    pub proposal_id: String,
    pub source_agent: Option<String>,
    pub source_run_id: Option<String>,
    pub target_layer: Option<i64>,
    pub target_key: String,
    pub proposed_value: Value,
    pub evidence_refs: Vec<String>,
    pub sources: Vec<Source>,
    pub score: Option<f64>,
    pub score_reason: Option<String>,
    pub status: MemoryStatus,
    pub reviewer: Option<String>,
    pub review_reason: Option<String>,
    pub reviewed_seq: Option<u64>,
    pub reviewed_ts_ns: Option<u64>,
    pub created_seq: u64,
    pub created_ts_ns: u64,
    pub late_decisions: Vec<LateDecision>,
}

impl Proposal {
    pub fn max_authority(&self) -> Option<f64> {
        self.sources.iter().map(|s| s.authority).reduce(f64::max)
    }

    /// The seed's gate: score >= 7.0 and a source of authority >= 0.7.
    pub fn meets_gate(&self) -> bool {
        self.score.is_some_and(|s| s >= AUTO_APPROVE_SCORE)
            && self
                .sources
                .iter()
                .any(|s| s.authority >= AUTO_APPROVE_AUTHORITY)
    }

    /// Status of an undecided proposal from its score and sources.
    fn rederive(&mut self) {
        if matches!(
            self.status,
            MemoryStatus::Pending | MemoryStatus::AutoApprovable
        ) {
            self.status = if self.meets_gate() {
                MemoryStatus::AutoApprovable
            } else {
                MemoryStatus::Pending
            };
        }
    }
}

pub fn proposal_key(id: &str) -> Vec<u8> {
    format!("proposal/{id}").into_bytes()
}

fn strings(ev: &Event<'_>, field: &str) -> Vec<String> {
    ev.payload
        .get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `sources` entries that carry an id and a numeric authority; others are
/// not evidence the gate can weigh.
fn sources(ev: &Event<'_>) -> Vec<Source> {
    ev.payload
        .get("sources")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| {
                    Some(Source {
                        id: s.get("id")?.as_str()?.to_string(),
                        authority: s.get("authority")?.as_f64()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A new proposal from `memory.proposal.created`, its status already
/// derived from its sources; `None` without a target key.
fn created(ev: &Event<'_>, id: &str) -> Option<Proposal> {
    let target_key = ev.str("target_key")?;
    let mut p = Proposal {
        proposal_id: id.to_string(),
        source_agent: ev.str("source_agent").map(str::to_string),
        source_run_id: ev.str("source_run_id").map(str::to_string),
        target_layer: ev.payload.get("target_layer").and_then(Value::as_i64),
        target_key: target_key.to_string(),
        proposed_value: ev
            .payload
            .get("proposed_value")
            .cloned()
            .unwrap_or(Value::Null),
        evidence_refs: strings(ev, "evidence_refs"),
        sources: sources(ev),
        score: None,
        score_reason: None,
        status: MemoryStatus::Pending,
        reviewer: None,
        review_reason: None,
        reviewed_seq: None,
        reviewed_ts_ns: None,
        created_seq: ev.seq,
        created_ts_ns: ev.log_ns,
        late_decisions: Vec::new(),
    };
    p.rederive();
    Some(p)
}

/// A critic score; whether it changed anything.
fn scored(ev: &Event<'_>, p: &mut Proposal) -> bool {
    let Some(score) = ev.f64("score") else {
        return false;
    };
    p.score = Some(score);
    p.score_reason = ev.str("reason").map(str::to_string);
    // A new score re-opens a deferred proposal: deferral means "wait for
    // better evidence", and a re-score is that.
    if p.status == MemoryStatus::Deferred {
        p.status = MemoryStatus::Pending;
    }
    p.rederive();
    true
}

/// A review decision. Approval and rejection are final; a later decision
/// is kept for the record but changes nothing.
fn reviewed(ev: &Event<'_>, p: &mut Proposal, to: MemoryStatus) {
    if p.status.is_decided() {
        p.late_decisions.push(LateDecision {
            seq: ev.seq,
            kind: ev.kind.to_string(),
            reviewer: ev.str("reviewer").map(str::to_string),
        });
    } else {
        p.status = to;
        p.reviewer = ev.str("reviewer").map(str::to_string);
        p.review_reason = ev.str("reason").map(str::to_string);
        p.reviewed_seq = Some(ev.seq);
        p.reviewed_ts_ns = Some(ev.log_ns);
    }
}

pub struct MemoryGate;

impl Projection for MemoryGate {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        // 2: `status` is a `MemoryStatus` (same words).
        2
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        if !ev.kind.starts_with("memory.proposal.") {
            return Ok(());
        }
        let Some(id) = ev.str("proposal_id").filter(|s| !s.is_empty()) else {
            return Ok(());
        };
        let key = proposal_key(id);
        let existing: Option<Proposal> = tx.get_json(&key)?;
        if ev.kind == "memory.proposal.created" {
            // The first creation wins; a repeated id is not a new proposal.
            if let (None, Some(p)) = (existing, created(ev, id)) {
                tx.put_json(&key, p);
            }
            return Ok(());
        }
        // Scores and decisions for a proposal never created are ignored.
        let Some(mut p) = existing else {
            return Ok(());
        };
        let changed = match (ev.kind, MemoryStatus::decided_by(ev.kind)) {
            ("memory.proposal.scored", _) => scored(ev, &mut p),
            (_, Some(to)) => {
                reviewed(ev, &mut p, to);
                true
            }
            _ => false,
        };
        if changed {
            tx.put_json(&key, p);
        }
        Ok(())
    }
}
