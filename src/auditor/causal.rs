//! Causal integrity (events out of logical sequence): a per-job state
//! machine and the proposal lifecycle. Each rule is critical on its own:
//! these are not statistics, they are things that cannot happen in a
//! correct run.
//!
//! - a tool call completed or failed that never started;
//! - a tool call citing a proposal that is not approved;
//! - a proposal executing, or reporting an outcome, when it was rejected or
//!   expired (or never approved);
//! - `job.completed` (or `job.failed`) for a job never received;
//! - an agent's entry for a job after a kill that covers it.
use super::finding::Finding;
use crate::projections::control::ControlState;
use crate::projections::Event;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proposal {
    Created,
    Approved,
    Rejected,
    Expired,
}

#[derive(Debug, Default)]
struct Job {
    received: bool,
    /// Open tool calls by call_id, with the seq that started them.
    open: HashMap<String, u64>,
    /// Open calls without a call_id, by tool.
    open_by_tool: HashMap<String, Vec<u64>>,
}

#[derive(Debug, Default)]
pub struct Causal {
    jobs: HashMap<String, Job>,
    proposals: HashMap<String, (Proposal, u64)>,
}

impl Causal {
    /// Judges one admitted entry. `agent_class` says whether an agent wrote
    /// it (only agents' entries can break a kill); `ctl` is the kill state
    /// before this entry.
    pub fn observe(
        &mut self,
        ev: &Event<'_>,
        agent_class: bool,
        ctl: &ControlState,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let job = ev.job_id;
        if agent_class && job.is_some() {
            if let Some(r) = ctl.refusal(ev.agent, job) {
                out.push(Finding::causal(
                    format!("causal/after_kill/{}", job.unwrap_or("")),
                    format!(
                        "{} for job {} after {} (seq {}): {}",
                        ev.kind,
                        job.unwrap_or(""),
                        r.what.replace('_', " "),
                        r.seq,
                        r.reason
                    ),
                    vec![r.seq, ev.seq],
                ));
            }
        }
        if let Some(f) = self.proposal(ev) {
            out.push(f);
        }
        if let Some(j) = job {
            if let Some(f) = self.job(j, ev) {
                out.push(f);
            }
        }
        out.into_iter().map(|f| f.at(ev.job_id, ev.agent)).collect()
    }

    fn proposal(&mut self, ev: &Event<'_>) -> Option<Finding> {
        let id = ev.str("proposal_id")?;
        let now = (ev.kind, ev.seq);
        let state = match ev.kind {
            "proposal.created" => Some(Proposal::Created),
            "proposal.approved" => Some(Proposal::Approved),
            "proposal.rejected" => Some(Proposal::Rejected),
            "proposal.expired" => Some(Proposal::Expired),
            _ => None,
        };
        if let Some(s) = state {
            // A decision on an executed proposal does not undo it; keep the
            // first terminal word, as the approvals projection does.
            let e = self.proposals.entry(id.to_string()).or_insert((s, ev.seq));
            if e.0 == Proposal::Created {
                *e = (s, ev.seq);
            }
            return None;
        }
        let acts = matches!(
            ev.kind,
            "tool.call_started"
                | "proposal.executing"
                | "proposal.completed"
                | "proposal.failed"
                | "proposal.rolled_back"
        );
        if !acts {
            return None;
        }
        let (state, at) = match self.proposals.get(id) {
            Some(&(Proposal::Approved, _)) => return None,
            Some(&(s, at)) => (Some(s), Some(at)),
            None => (None, None),
        };
        let what = match state {
            Some(Proposal::Rejected) => "rejected",
            Some(Proposal::Expired) => "expired",
            Some(Proposal::Created) => "not approved",
            _ => "unknown",
        };
        let mut evidence = vec![now.1];
        evidence.extend(at);
        Some(Finding::causal(
            format!("causal/proposal/{id}"),
            format!(
                "{} for proposal {id}, which is {what}{}",
                now.0,
                at.map(|s| format!(" (seq {s})")).unwrap_or_default()
            ),
            evidence,
        ))
    }

    fn job(&mut self, id: &str, ev: &Event<'_>) -> Option<Finding> {
        let j = self.jobs.entry(id.to_string()).or_default();
        match ev.kind {
            "job.received" => {
                j.received = true;
                None
            }
            "job.completed" | "job.failed" if !j.received => Some(Finding::causal(
                format!("causal/order/{id}"),
                format!("{} for job {id}, which was never received", ev.kind),
                vec![ev.seq],
            )),
            "job.completed" | "job.failed" | "job.cancelled" => {
                j.open.clear();
                j.open_by_tool.clear();
                None
            }
            "tool.call_started" => {
                match ev.str("call_id") {
                    Some(c) => {
                        j.open.insert(c.to_string(), ev.seq);
                    }
                    None => j
                        .open_by_tool
                        .entry(ev.str("tool").unwrap_or("").to_string())
                        .or_default()
                        .push(ev.seq),
                }
                None
            }
            "tool.call_completed" | "tool.call_failed" => {
                let tool = ev.str("tool").unwrap_or("");
                let started = match ev.str("call_id") {
                    Some(c) => j.open.remove(c).or_else(|| {
                        // A call started without its id and finished with one.
                        j.open_by_tool.get_mut(tool).and_then(Vec::pop)
                    }),
                    None => j.open_by_tool.get_mut(tool).and_then(Vec::pop).or_else(|| {
                        let first = j
                            .open
                            .iter()
                            .min_by_key(|(_, s)| **s)
                            .map(|(c, _)| c.clone());
                        first.and_then(|c| j.open.remove(&c))
                    }),
                };
                match started {
                    Some(_) => None,
                    None => Some(Finding::causal(
                        format!("causal/unstarted/{id}"),
                        format!(
                            "{} for tool {tool}{} in job {id} with no tool.call_started",
                            ev.kind,
                            ev.str("call_id")
                                .map(|c| format!(" call {c}"))
                                .unwrap_or_default()
                        ),
                        vec![ev.seq],
                    )),
                }
            }
            _ => None,
        }
    }
}
