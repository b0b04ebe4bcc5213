//! The proposal record: what Janus asked for, where it stands, and the
//! decisions about it that changed nothing.
use super::super::status::status_enum;
use super::super::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

status_enum! {
    /// Where a proposal stands: awaiting a decision, decided, or (from the
    /// executor's entries) acted on.
    #[derive(Default)]
    pub enum ProposalStatus("proposal status") {
        #[default]
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
        /// Past its deadline in log time (recorded or not: see
        /// `Proposal::expiry_recorded`).
        Expired = "expired",
        Executing = "executing",
        Completed = "completed",
        Failed = "failed",
        RolledBack = "rolled_back",
    }
}

impl ProposalStatus {
    /// Acting on a proposal in this status is a constitutional violation.
    pub fn is_unapproved(self) -> bool {
        matches!(self, Self::Pending | Self::Rejected | Self::Expired)
    }

    /// The status an executor's outcome entry sets, if `kind` is one.
    pub(super) fn outcome(kind: &str) -> Option<Self> {
        Some(match kind {
            "proposal.executing" => Self::Executing,
            "proposal.completed" => Self::Completed,
            "proposal.failed" => Self::Failed,
            "proposal.rolled_back" => Self::RolledBack,
            _ => return None,
        })
    }
}

pub const PROPOSAL_PREFIX: &[u8] = b"proposal/";

pub fn proposal_key(id: &str) -> Vec<u8> {
    format!("proposal/{id}").into_bytes()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Proposal {
    pub proposal_id: String,
    pub job_id: Option<String>,
    pub agent: Option<String>,
    pub action_type: String,
    pub risk: String,
    pub rationale: String,
    pub mission_context: Option<String>,
    pub rollback_plan: Option<String>,
    pub parameters: Value,
    pub parameter_hash: String,
    /// 1 for the original; +1 for each changed proposal (new parameters).
    pub revision: u64,
    pub first_seq: u64,
    /// Seq and time of the current revision: the deadline counts from here.
    pub created_seq: u64,
    pub created_ts_ns: u64,
    pub timeout_s: u64,
    pub deadline_ns: u64,
    pub status: ProposalStatus,
    /// False while the deadline has passed but no `proposal.expired` entry
    /// records it yet (`argusctl approvals sweep` writes it).
    pub expiry_recorded: bool,
    pub decided_seq: Option<u64>,
    pub decided_ts_ns: Option<u64>,
    pub approver: Option<String>,
    pub reason: Option<String>,
    /// The mode the approval entry names (as written: it is the
    /// approver's claim, kept verbatim for the record).
    pub approval_mode: Option<String>,
    pub playbook: Option<String>,
    pub error: Option<String>,
    pub last_seq: u64,
    /// Set when the proposal was acted on without approval (a
    /// constitutional violation): which entry, and the status it had.
    #[serde(default)]
    pub violation: Option<String>,
    /// The label the approver gave (`--actor`), beside the principal.
    #[serde(default)]
    pub approver_label: Option<String>,
    /// Decisions about this proposal that changed nothing, and why: a
    /// forged approval, one bound to other parameters, one by the proposal's
    /// own agent, an expiry not yet due in log time.
    #[serde(default)]
    pub ignored: Vec<Ignored>,
}

/// A decision entry the queue did not honour.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Ignored {
    pub seq: u64,
    pub kind: String,
    pub actor: String,
    pub reason: String,
}

/// Most ignored decisions kept per record; more would let a flood of
/// forged entries grow one record without bound.
pub(super) const IGNORED_KEPT: usize = 32;

impl Proposal {
    pub(super) fn ignore(&mut self, ev: &Event<'_>, reason: impl Into<String>) {
        if self.ignored.len() < IGNORED_KEPT {
            self.ignored.push(Ignored {
                seq: ev.seq,
                kind: ev.kind.to_string(),
                actor: ev.actor.to_string(),
                reason: reason.into(),
            });
        }
    }

    pub fn is_pending(&self) -> bool {
        self.status == ProposalStatus::Pending
    }

    /// Expired by log time, but no `proposal.expired` entry says so yet.
    pub fn expiry_unrecorded(&self) -> bool {
        self.status == ProposalStatus::Expired && !self.expiry_recorded
    }

    pub fn display_status(&self) -> String {
        if self.expiry_unrecorded() {
            "expired (unrecorded)".into()
        } else {
            self.status.to_string()
        }
    }
}
