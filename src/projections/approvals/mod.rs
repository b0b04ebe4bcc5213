//! Approval queue (seed 002): Janus proposals from creation to outcome, the
//! operating mode (alpha, beta, omega) and the Mode Beta playbooks.
//!
//! Approve, reject and expiry are entries (invariant 4), so the queue, its
//! timeouts and the mode's preconditions must be re-derivable from the log
//! alone. Time is log time: a pending proposal expires when the first entry
//! with `ts >= deadline` is applied, whatever that entry is, so a replay
//! expires the same proposals at the same seq.
//!
//! Two rules are enforced here rather than only in `argusctl`, because an
//! entry can also arrive through `argusctl append` or a producer:
//! - an approval binds to a parameter hash: a `proposal.approved` whose
//!   `parameter_hash` is not the hash of the parameters the proposal holds
//!   now (it changed since review) is ignored and the proposal stays pending;
//! - a playbook approval (one naming a `playbook`) counts only while the mode
//!   is beta or omega and the named playbook still matches the proposal.
//!
//! Mode changes are not gated here: the log is the truth, and an operator
//! who appends `mode.changed` directly has still made (and signed) that
//! decision. The projection records which preconditions the log did not show
//! at that moment (`ModeChange::unmet`), so `argusctl mode show` exposes it.
//!
//! Constitutional violations come from two places: an execution outcome
//! (`proposal.executing`, `.completed`, `.failed`, `.rolled_back`) for a
//! proposal that is pending, rejected or expired, i.e. acted on without
//! approval, which this projection sees itself; and `anomaly.detected`
//! entries with detector `constitution`, which the auditor will write.
//!
//! Files: `proposal.rs` (the record and its status), `lifecycle.rs` (what
//! each proposal entry does to it), `deadlines.rs` (timeouts and expiry),
//! `mode.rs` (the mode and its preconditions), `playbook.rs`, and
//! `projection.rs` (which entry goes where).
mod deadlines;
mod lifecycle;
mod mode;
mod playbook;
mod projection;
mod proposal;

pub use deadlines::DEFAULT_TIMEOUT_S;
pub use mode::{
    days_text, preconditions, IgnoredModeChange, Mode, ModeChange, ModeState,
    APPROVAL_RATE_PCT_MIN, BETA_DAYS_IN_ALPHA_MIN, MODE_KEY, OMEGA_DAYS_IN_BETA_MIN,
};
pub use playbook::{playbook_key, Playbook, PLAYBOOK_PREFIX};
pub use projection::{Approvals, CONSTITUTION_DETECTOR};
pub use proposal::{proposal_key, Ignored, Proposal, ProposalStatus, PROPOSAL_PREFIX};

pub const NAME: &str = "approvals";

pub const NS_PER_S: u64 = 1_000_000_000;
pub const NS_PER_DAY: u64 = 86_400 * NS_PER_S;
