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
use super::{Event, Projection, StoreError, Tx};
use crate::registry::{parameter_hash, Risk};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const NAME: &str = "approvals";

/// Seed 002: "Default timeout: 24 hours".
pub const DEFAULT_TIMEOUT_S: u64 = 24 * 3600;
pub const BETA_DAYS_IN_ALPHA_MIN: u64 = 30;
pub const OMEGA_DAYS_IN_BETA_MIN: u64 = 180;
pub const APPROVAL_RATE_PCT_MIN: u64 = 95;
pub const CONSTITUTION_DETECTOR: &str = "constitution";
pub const MODES: [&str; 3] = ["alpha", "beta", "omega"];

pub const NS_PER_S: u64 = 1_000_000_000;
pub const NS_PER_DAY: u64 = 86_400 * NS_PER_S;

pub const PENDING: &str = "pending";
pub const APPROVED: &str = "approved";
pub const REJECTED: &str = "rejected";
pub const EXPIRED: &str = "expired";

pub const PROPOSAL_PREFIX: &[u8] = b"proposal/";
pub const PLAYBOOK_PREFIX: &[u8] = b"playbook/";
pub const MODE_KEY: &[u8] = b"mode";
const DEADLINE_PREFIX: &[u8] = b"deadline/";
const TIMEOUT_POLICY_PREFIX: &[u8] = b"timeout_policy/";
/// Lower bound of every deadline in the index, so most events need one
/// `get` and no scan. It may be stale-low after an approval removed the
/// earliest deadline; the next due check corrects it.
const NEXT_DEADLINE_KEY: &[u8] = b"next_deadline";

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
    pub status: String,
    /// False while the deadline has passed but no `proposal.expired` entry
    /// records it yet (`argusctl approvals sweep` writes it).
    pub expiry_recorded: bool,
    pub decided_seq: Option<u64>,
    pub decided_ts_ns: Option<u64>,
    pub approver: Option<String>,
    pub reason: Option<String>,
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

/// Most ignored decisions kept per proposal; more would let a flood of
/// forged entries grow one record without bound.
const IGNORED_KEPT: usize = 32;

impl Proposal {
    fn ignore(&mut self, ev: &Event<'_>, reason: impl Into<String>) {
        if self.ignored.len() < IGNORED_KEPT {
            self.ignored.push(Ignored {
                seq: ev.seq,
                kind: ev.kind.to_string(),
                actor: ev.actor.to_string(),
                reason: reason.into(),
            });
        }
    }
}

impl Proposal {
    pub fn display_status(&self) -> String {
        if self.status == EXPIRED && !self.expiry_recorded {
            "expired (unrecorded)".into()
        } else {
            self.status.clone()
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Playbook {
    pub playbook: String,
    pub action_types: Vec<String>,
    pub max_risk: String,
    pub description: Option<String>,
    pub approved_by: Option<String>,
    pub set_seq: u64,
}

impl Playbook {
    pub fn matches(&self, p: &Proposal) -> bool {
        let (Some(risk), Some(max)) = (Risk::parse(&p.risk), Risk::parse(&self.max_risk)) else {
            return false;
        };
        risk <= max && self.action_types.contains(&p.action_type)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModeChange {
    pub seq: u64,
    pub ts_ns: u64,
    pub from: String,
    pub to: String,
    pub actor: String,
    pub reason: String,
    /// Preconditions the log did not show when the change was applied
    /// (empty for every change made through `argusctl mode set`).
    pub unmet: Vec<String>,
}

/// A `mode.changed` entry that did not change the mode, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IgnoredModeChange {
    pub seq: u64,
    pub actor: String,
    pub to: String,
    pub reason: String,
}

/// The operating mode and the evidence its next change is judged on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModeState {
    pub mode: String,
    /// Log time the current mode began: the first entry for the initial alpha.
    pub since_ns: u64,
    /// Human decisions since the current mode began. Playbook approvals are
    /// counted apart so they cannot inflate the rate that gates promotion.
    pub approved: u64,
    pub rejected: u64,
    pub expired: u64,
    pub auto_approved: u64,
    /// Constitutional violations since the current mode began; restarting
    /// alpha (`mode set alpha`) is how a violation is put behind.
    pub violations: u64,
    pub violations_total: u64,
    pub history: Vec<ModeChange>,
    /// Mode changes written by someone who may not change the mode.
    #[serde(default)]
    pub ignored: Vec<IgnoredModeChange>,
}

impl Default for ModeState {
    fn default() -> Self {
        Self::starting_at(0)
    }
}

fn rank(mode: &str) -> Option<usize> {
    MODES.iter().position(|m| *m == mode)
}

/// Whole and tenth days, floored, so "29.9" never prints as "30.0".
pub fn days_text(ns: u64) -> String {
    let tenths = ns / (NS_PER_DAY / 10);
    format!("{}.{}", tenths / 10, tenths % 10)
}

impl ModeState {
    pub fn starting_at(ts_ns: u64) -> Self {
        Self {
            mode: "alpha".into(),
            since_ns: ts_ns,
            approved: 0,
            rejected: 0,
            expired: 0,
            auto_approved: 0,
            violations: 0,
            violations_total: 0,
            history: Vec::new(),
            ignored: Vec::new(),
        }
    }

    pub fn in_mode_ns(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.since_ns)
    }

    pub fn decided(&self) -> u64 {
        self.approved + self.rejected + self.expired
    }

    /// approved / (approved + rejected + expired); None before any decision.
    pub fn approval_rate(&self) -> Option<f64> {
        let d = self.decided();
        (d > 0).then(|| self.approved as f64 / d as f64)
    }
}

/// Every reason the log does not (yet) allow a change to `to` at log time
/// `now_ns`; empty means allowed. Moving down (to less autonomy) is always
/// allowed, and so is restarting alpha, which resets the evidence window.
/// Omega's unanimous Trinity recommendation is not in the log, so the
/// caller checks it.
pub fn preconditions(s: &ModeState, to: &str, now_ns: u64) -> Vec<String> {
    let (Some(from_rank), Some(to_rank)) = (rank(&s.mode), rank(to)) else {
        return vec![format!("unknown mode {to:?}; use alpha, beta or omega")];
    };
    if to == "alpha" || to_rank < from_rank {
        return Vec::new();
    }
    if to_rank == from_rank {
        return vec![format!("already in {to}")];
    }
    let mut unmet = Vec::new();
    let in_mode = s.in_mode_ns(now_ns);
    let (need_mode, need_days) = if to == "beta" {
        ("alpha", BETA_DAYS_IN_ALPHA_MIN)
    } else {
        ("beta", OMEGA_DAYS_IN_BETA_MIN)
    };
    if s.mode != need_mode {
        unmet.push(format!(
            "{to} requires {need_days} days in {need_mode}; the current mode is {}",
            s.mode
        ));
    } else if in_mode < need_days * NS_PER_DAY {
        unmet.push(format!(
            "{} days in {need_mode} (log time); at least {need_days} are required",
            days_text(in_mode)
        ));
    }
    let decided = s.decided();
    if decided == 0 {
        unmet.push(format!(
            "no proposals decided in {} yet; an approval rate of at least {APPROVAL_RATE_PCT_MIN}% is required",
            s.mode
        ));
    } else if s.approved * 100 < APPROVAL_RATE_PCT_MIN * decided {
        unmet.push(format!(
            "approval rate {:.1}% ({}/{decided}) in {}; at least {APPROVAL_RATE_PCT_MIN}% is required",
            s.approved as f64 * 100.0 / decided as f64,
            s.approved,
            s.mode
        ));
    }
    if s.violations > 0 {
        unmet.push(format!(
            "{} constitutional violation(s) in {}; zero are required",
            s.violations, s.mode
        ));
    }
    unmet
}

pub fn proposal_key(id: &str) -> Vec<u8> {
    format!("proposal/{id}").into_bytes()
}

pub fn playbook_key(name: &str) -> Vec<u8> {
    format!("playbook/{name}").into_bytes()
}

/// Zero-padded so the index sorts by deadline: due items are a prefix.
fn deadline_key(deadline_ns: u64, id: &str) -> Vec<u8> {
    format!("deadline/{deadline_ns:020}/{id}").into_bytes()
}

fn parse_deadline_key(key: &[u8]) -> Option<(u64, String)> {
    let rest = std::str::from_utf8(key).ok()?.strip_prefix("deadline/")?;
    let (num, id) = rest.split_at_checked(20)?;
    Some((num.parse().ok()?, id.strip_prefix('/')?.to_string()))
}

fn timeout_policy_key(policy_id: &str) -> Vec<u8> {
    format!("timeout_policy/{policy_id}").into_bytes()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct TimeoutPolicy {
    seconds: u64,
    set_seq: u64,
}

fn add_deadline(tx: &mut Tx<'_>, p: &Proposal) -> Result<(), StoreError> {
    tx.put(&deadline_key(p.deadline_ns, &p.proposal_id), Vec::new());
    let next: Option<u64> = tx.get_json(NEXT_DEADLINE_KEY)?;
    if next.is_none_or(|n| p.deadline_ns < n) {
        tx.put_json(NEXT_DEADLINE_KEY, p.deadline_ns);
    }
    Ok(())
}

fn remove_deadline(tx: &mut Tx<'_>, p: &Proposal) {
    tx.del(&deadline_key(p.deadline_ns, &p.proposal_id));
}

/// Marks every pending proposal whose deadline is at or before this entry's
/// time as expired. The index is in deadline order, so the walk stops at the
/// first item not yet due.
fn expire_due(ev: &Event<'_>, tx: &mut Tx<'_>, mode: &mut ModeState) -> Result<(), StoreError> {
    let next: Option<u64> = tx.get_json(NEXT_DEADLINE_KEY)?;
    if next.is_none_or(|n| ev.log_ns < n) {
        return Ok(());
    }
    let mut remaining = None;
    for (key, _) in tx.scan(DEADLINE_PREFIX)? {
        let Some((deadline_ns, id)) = parse_deadline_key(&key) else {
            tx.del(&key);
            continue;
        };
        if deadline_ns > ev.log_ns {
            remaining = Some(deadline_ns);
            break;
        }
        tx.del(&key);
        let pkey = proposal_key(&id);
        let Some(mut p) = tx.get_json::<Proposal>(&pkey)? else {
            continue;
        };
        if p.status == PENDING && p.deadline_ns == deadline_ns {
            p.status = EXPIRED.into();
            p.expiry_recorded = false;
            p.decided_seq = Some(ev.seq);
            p.decided_ts_ns = Some(ev.log_ns);
            mode.expired += 1;
            tx.put_json(&pkey, p);
        }
    }
    match remaining {
        Some(d) => tx.put_json(NEXT_DEADLINE_KEY, d),
        None => tx.del(NEXT_DEADLINE_KEY),
    }
    Ok(())
}

/// The global `approval_timeout` policy set most recently, if any.
fn policy_timeout_s(tx: &Tx<'_>) -> Result<Option<u64>, StoreError> {
    Ok(tx
        .scan_json::<TimeoutPolicy>(TIMEOUT_POLICY_PREFIX)?
        .into_iter()
        .map(|(_, p)| p)
        .max_by_key(|p| p.set_seq)
        .map(|p| p.seconds))
}

fn opt_str(ev: &Event<'_>, field: &str) -> Option<String> {
    ev.str(field).map(str::to_string)
}

fn on_created(ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
    let Some(id) = ev.str("proposal_id") else {
        return Ok(());
    };
    let parameters = match ev.payload.get("parameters") {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => Value::Object(Default::default()),
    };
    let hash = parameter_hash(&parameters);
    let key = proposal_key(id);
    let old: Option<Proposal> = tx.get_json(&key)?;
    if let Some(old) = &old {
        // A resubmission with the same parameters changes nothing; only
        // changed parameters make it a new revision needing a new review.
        if old.parameter_hash == hash {
            return Ok(());
        }
        if old.status == PENDING {
            remove_deadline(tx, old);
        }
    }
    let timeout_s = match ev.u64("timeout_s") {
        Some(s) if s >= 1 => s,
        _ => policy_timeout_s(tx)?.unwrap_or(DEFAULT_TIMEOUT_S),
    };
    let p = Proposal {
        proposal_id: id.to_string(),
        job_id: ev.job_id.map(str::to_string),
        agent: ev
            .agent
            .map(str::to_string)
            .or_else(|| opt_str(ev, "agent")),
        action_type: ev.str("action_type").unwrap_or_default().to_string(),
        risk: ev.str("risk").unwrap_or_default().to_string(),
        rationale: ev.str("rationale").unwrap_or_default().to_string(),
        mission_context: opt_str(ev, "mission_context"),
        rollback_plan: opt_str(ev, "rollback_plan"),
        parameters,
        parameter_hash: hash,
        revision: old.as_ref().map_or(1, |o| o.revision + 1),
        first_seq: old.as_ref().map_or(ev.seq, |o| o.first_seq),
        created_seq: ev.seq,
        created_ts_ns: ev.log_ns,
        timeout_s,
        deadline_ns: ev.log_ns.saturating_add(timeout_s.saturating_mul(NS_PER_S)),
        status: PENDING.into(),
        last_seq: ev.seq,
        ..Proposal::default()
    };
    add_deadline(tx, &p)?;
    tx.put_json(&key, p);
    Ok(())
}

fn on_approved(ev: &Event<'_>, tx: &mut Tx<'_>, mode: &mut ModeState) -> Result<(), StoreError> {
    let Some(id) = ev.str("proposal_id") else {
        return Ok(());
    };
    let key = proposal_key(id);
    let Some(mut p) = tx.get_json::<Proposal>(&key)? else {
        return Ok(());
    };
    let playbook = ev.str("playbook");
    let refusal = if p.status != PENDING {
        Some(format!(
            "the proposal is {}, not pending",
            p.display_status()
        ))
    } else if ev.str("parameter_hash") != Some(p.parameter_hash.as_str()) {
        Some(format!(
            "bound to parameter_hash {}, but the proposal's parameters now hash to {}",
            ev.str("parameter_hash").unwrap_or("(none)"),
            p.parameter_hash
        ))
    } else {
        own_agent(ev, &p)
    };
    if let Some(reason) = refusal {
        p.ignore(ev, reason);
        tx.put_json(&key, p);
        return Ok(());
    }
    if let Some(name) = playbook {
        let book: Option<Playbook> = tx.get_json(&playbook_key(name))?;
        let why = if mode.mode == "alpha" {
            Some("a playbook approval in mode alpha".to_string())
        } else if !book.is_some_and(|b| b.matches(&p)) {
            Some(format!("playbook {name} does not cover this proposal"))
        } else {
            None
        };
        if let Some(reason) = why {
            p.ignore(ev, reason);
            tx.put_json(&key, p);
            return Ok(());
        }
        mode.auto_approved += 1;
    } else {
        mode.approved += 1;
    }
    remove_deadline(tx, &p);
    p.status = APPROVED.into();
    p.decided_seq = Some(ev.seq);
    p.decided_ts_ns = Some(ev.log_ns);
    p.approver = Some(ev.actor.to_string());
    p.approver_label = opt_str(ev, "actor_label");
    p.reason = opt_str(ev, "reason");
    p.approval_mode = Some(ev.str("mode").unwrap_or(&mode.mode).to_string());
    p.playbook = playbook.map(str::to_string);
    p.last_seq = ev.seq;
    tx.put_json(&key, p);
    Ok(())
}

fn on_rejected(ev: &Event<'_>, tx: &mut Tx<'_>, mode: &mut ModeState) -> Result<(), StoreError> {
    let Some(id) = ev.str("proposal_id") else {
        return Ok(());
    };
    let key = proposal_key(id);
    let Some(mut p) = tx.get_json::<Proposal>(&key)? else {
        return Ok(());
    };
    if p.status != PENDING {
        p.ignore(
            ev,
            format!("the proposal is {}, not pending", p.display_status()),
        );
        tx.put_json(&key, p);
        return Ok(());
    }
    remove_deadline(tx, &p);
    mode.rejected += 1;
    p.status = REJECTED.into();
    p.decided_seq = Some(ev.seq);
    p.decided_ts_ns = Some(ev.log_ns);
    p.approver = Some(ev.actor.to_string());
    p.approver_label = opt_str(ev, "actor_label");
    p.reason = opt_str(ev, "reason");
    p.last_seq = ev.seq;
    tx.put_json(&key, p);
    Ok(())
}

fn on_expired(ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
    let Some(id) = ev.str("proposal_id") else {
        return Ok(());
    };
    let key = proposal_key(id);
    let Some(mut p) = tx.get_json::<Proposal>(&key)? else {
        return Ok(());
    };
    if p.status == PENDING {
        // Expiry is a rule of log time: an expiry stamped by a clock that ran
        // ahead of the log's is not due, and changes nothing.
        let reason = format!(
            "not due in log time: the deadline is {}, the entry's log time {}",
            crate::time::rfc3339_ns(p.deadline_ns),
            crate::time::rfc3339_ns(ev.log_ns)
        );
        p.ignore(ev, reason);
        tx.put_json(&key, p);
        return Ok(());
    } else if p.status != EXPIRED || p.expiry_recorded {
        return Ok(());
    }
    p.expiry_recorded = true;
    p.last_seq = ev.seq;
    tx.put_json(&key, p);
    Ok(())
}

/// executing / completed / failed / rolled_back come from the executor; the
/// log is the truth about what ran, so they apply to any known proposal.
fn on_lifecycle(
    ev: &Event<'_>,
    tx: &mut Tx<'_>,
    mode: &mut ModeState,
    status: &str,
) -> Result<(), StoreError> {
    let Some(id) = ev.str("proposal_id") else {
        return Ok(());
    };
    let key = proposal_key(id);
    let Some(mut p) = tx.get_json::<Proposal>(&key)? else {
        return Ok(());
    };
    if p.status == PENDING {
        remove_deadline(tx, &p);
    }
    if [PENDING, REJECTED, EXPIRED].contains(&p.status.as_str()) {
        // Acted on without approval: the log shows a constitutional violation.
        p.violation = Some(format!("seq {}: {} while {}", ev.seq, ev.kind, p.status));
        mode.violations += 1;
        mode.violations_total += 1;
    }
    p.status = status.into();
    if let Some(e) = ev.str("error") {
        p.error = Some(e.to_string());
    }
    p.last_seq = ev.seq;
    tx.put_json(&key, p);
    Ok(())
}

/// Separation of duties: the agent that proposed may not approve, whatever
/// class it writes as. Compared by name: the approver's principal name, and
/// the label it gave, against the proposal's agent.
fn own_agent(ev: &Event<'_>, p: &Proposal) -> Option<String> {
    let agent = p.agent.as_deref()?;
    let approver = crate::authority::Actor::parse(ev.actor);
    let label = ev.str("actor_label");
    (approver.name() == agent || label == Some(agent)).then(|| {
        format!("separation of duties: the approver {approver} is the proposal's own agent {agent}")
    })
}

fn on_playbook_set(ev: &Event<'_>, tx: &mut Tx<'_>) {
    let Some(name) = ev.str("playbook") else {
        return;
    };
    let action_types = ev
        .payload
        .get("action_types")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let book = Playbook {
        playbook: name.to_string(),
        action_types,
        max_risk: ev.str("max_risk").unwrap_or_default().to_string(),
        description: opt_str(ev, "description"),
        approved_by: opt_str(ev, "approved_by"),
        set_seq: ev.seq,
    };
    tx.put_json(&playbook_key(name), book);
}

fn on_policy_set(ev: &Event<'_>, tx: &mut Tx<'_>) {
    let Some(id) = ev.str("policy_id") else {
        return;
    };
    let key = timeout_policy_key(id);
    let seconds = ev
        .payload
        .get("config")
        .and_then(|c| c.get("seconds"))
        .and_then(Value::as_u64)
        .filter(|s| *s >= 1);
    let enabled = ev
        .payload
        .get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    match seconds {
        Some(seconds)
            if enabled
                && ev.str("policy_type") == Some("approval_timeout")
                && ev.str("scope") == Some("global") =>
        {
            tx.put_json(
                &key,
                TimeoutPolicy {
                    seconds,
                    set_seq: ev.seq,
                },
            );
        }
        // The id now names something else (or is disabled): it no longer sets the timeout.
        _ => tx.del(&key),
    }
}

fn on_mode_changed(ev: &Event<'_>, mode: &mut ModeState) {
    let Some(to) = ev.str("to").filter(|t| rank(t).is_some()) else {
        return;
    };
    let unmet = preconditions(mode, to, ev.log_ns);
    let mut history = std::mem::take(&mut mode.history);
    history.push(ModeChange {
        seq: ev.seq,
        ts_ns: ev.log_ns,
        from: mode.mode.clone(),
        to: to.to_string(),
        actor: ev.actor.to_string(),
        reason: ev.str("reason").unwrap_or_default().to_string(),
        unmet,
    });
    *mode = ModeState {
        history,
        violations_total: mode.violations_total,
        ignored: std::mem::take(&mut mode.ignored),
        ..ModeState::starting_at(ev.log_ns)
    };
    mode.mode = to.to_string();
}

pub struct Approvals;

impl Projection for Approvals {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        3
    }
    fn apply_refused(
        &self,
        ev: &Event<'_>,
        reason: &str,
        tx: &mut Tx<'_>,
    ) -> Result<(), StoreError> {
        match ev.kind {
            "proposal.approved" | "proposal.rejected" | "proposal.expired" => {
                let Some(id) = ev.str("proposal_id") else {
                    return Ok(());
                };
                let key = proposal_key(id);
                if let Some(mut p) = tx.get_json::<Proposal>(&key)? {
                    p.ignore(ev, format!("forged: {reason}"));
                    tx.put_json(&key, p);
                }
            }
            "mode.changed" => {
                let mut mode: ModeState = tx
                    .get_json(MODE_KEY)?
                    .unwrap_or_else(|| ModeState::starting_at(ev.log_ns));
                if mode.ignored.len() < IGNORED_KEPT {
                    mode.ignored.push(IgnoredModeChange {
                        seq: ev.seq,
                        actor: ev.actor.to_string(),
                        to: ev.str("to").unwrap_or_default().to_string(),
                        reason: format!("forged: {reason}"),
                    });
                }
                tx.put_json(MODE_KEY, mode);
            }
            _ => {}
        }
        Ok(())
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        if !touches_mode(ev, tx)? {
            // Most entries: the mode record is neither read nor written.
            return apply_kind(ev, tx, &mut ModeState::default());
        }
        // The first entry of the log starts alpha's clock.
        let stored: Option<ModeState> = tx.get_json(MODE_KEY)?;
        let mut mode = stored
            .clone()
            .unwrap_or_else(|| ModeState::starting_at(ev.log_ns));
        // Before the entry itself: an approval stamped after the deadline
        // finds the proposal already expired.
        expire_due(ev, tx, &mut mode)?;
        apply_kind(ev, tx, &mut mode)?;
        if stored.as_ref() != Some(&mode) {
            tx.put_json(MODE_KEY, mode);
        }
        Ok(())
    }
}

/// Whether this entry can change the mode record: a decision, an execution
/// outcome (a violation if unapproved), a mode change, an anomaly, a deadline
/// now due, or the log's first entry.
fn touches_mode(ev: &Event<'_>, tx: &Tx<'_>) -> Result<bool, StoreError> {
    if matches!(
        ev.kind,
        "proposal.approved"
            | "proposal.rejected"
            | "proposal.expired"
            | "proposal.executing"
            | "proposal.completed"
            | "proposal.failed"
            | "proposal.rolled_back"
            | "mode.changed"
            | "anomaly.detected"
    ) || !tx.has(MODE_KEY)?
    {
        return Ok(true);
    }
    let next: Option<u64> = tx.get_json(NEXT_DEADLINE_KEY)?;
    Ok(next.is_some_and(|n| ev.log_ns >= n))
}

/// The entry's own effect; `mode` is only touched by the kinds `touches_mode`
/// names.
fn apply_kind(ev: &Event<'_>, tx: &mut Tx<'_>, mode: &mut ModeState) -> Result<(), StoreError> {
    match ev.kind {
        "proposal.created" => on_created(ev, tx)?,
        "proposal.approved" => on_approved(ev, tx, mode)?,
        "proposal.rejected" => on_rejected(ev, tx, mode)?,
        "proposal.expired" => on_expired(ev, tx)?,
        "proposal.executing" => on_lifecycle(ev, tx, mode, "executing")?,
        "proposal.completed" => on_lifecycle(ev, tx, mode, "completed")?,
        "proposal.failed" => on_lifecycle(ev, tx, mode, "failed")?,
        "proposal.rolled_back" => on_lifecycle(ev, tx, mode, "rolled_back")?,
        "playbook.set" => on_playbook_set(ev, tx),
        "playbook.removed" => {
            if let Some(name) = ev.str("playbook") {
                tx.del(&playbook_key(name));
            }
        }
        "policy.set" => on_policy_set(ev, tx),
        "policy.removed" => {
            if let Some(id) = ev.str("policy_id") {
                tx.del(&timeout_policy_key(id));
            }
        }
        "mode.changed" => on_mode_changed(ev, mode),
        "anomaly.detected" if ev.str("detector") == Some(CONSTITUTION_DETECTOR) => {
            mode.violations += 1;
            mode.violations_total += 1;
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = NS_PER_DAY;

    fn alpha(days_in: u64, approved: u64, rejected: u64, expired: u64) -> (ModeState, u64) {
        let mut s = ModeState::starting_at(1_000 * DAY);
        s.approved = approved;
        s.rejected = rejected;
        s.expired = expired;
        (s, 1_000 * DAY + days_in)
    }

    #[test]
    fn beta_needs_30_days_95_percent_and_no_violations() {
        let (s, now) = alpha(30 * DAY, 19, 1, 0);
        assert_eq!(preconditions(&s, "beta", now), Vec::<String>::new());

        let (s, now) = alpha(30 * DAY - 1, 19, 1, 0);
        let u = preconditions(&s, "beta", now);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u[0].contains("29.9 days in alpha"), "{u:?}");

        // 18/19 = 94.7 %: expiries count against the rate like rejections.
        let (s, now) = alpha(31 * DAY, 18, 0, 1);
        let u = preconditions(&s, "beta", now);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u[0].contains("approval rate 94.7% (18/19)"), "{u:?}");

        let (mut s, now) = alpha(31 * DAY, 20, 0, 0);
        s.violations = 1;
        let u = preconditions(&s, "beta", now);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u[0].contains("1 constitutional violation"), "{u:?}");

        // Every failed reason is listed, not just the first.
        let (mut s, now) = alpha(2 * DAY, 1, 1, 0);
        s.violations = 2;
        assert_eq!(preconditions(&s, "beta", now).len(), 3);
        let (s, now) = alpha(0, 0, 0, 0);
        let u = preconditions(&s, "beta", now);
        assert_eq!(u.len(), 2, "{u:?}");
        assert!(u[1].contains("no proposals decided"), "{u:?}");
    }

    #[test]
    fn omega_needs_180_days_in_beta_and_alpha_is_always_allowed() {
        let (mut s, _) = alpha(0, 100, 0, 0);
        s.mode = "beta".into();
        let now = s.since_ns + 180 * DAY;
        assert!(preconditions(&s, "omega", now).is_empty());
        assert!(preconditions(&s, "omega", now - 1)[0].contains("179.9 days in beta"));
        assert!(preconditions(&s, "beta", now)[0].contains("already in beta"));
        s.violations = 3;
        s.rejected = 100;
        assert!(preconditions(&s, "alpha", now).is_empty());
        assert_eq!(preconditions(&s, "omega", now).len(), 2);
        // From alpha straight to omega is refused whatever the numbers.
        let (s, now) = alpha(400 * DAY, 100, 0, 0);
        let u = preconditions(&s, "omega", now);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u[0].contains("current mode is alpha"), "{u:?}");
        // Moving down never needs evidence.
        let mut s = ModeState::starting_at(0);
        s.mode = "omega".into();
        s.violations = 1;
        assert!(preconditions(&s, "beta", 0).is_empty());
    }

    #[test]
    fn deadline_keys_sort_by_time_and_round_trip() {
        let a = deadline_key(9 * NS_PER_S, "z/with/slash");
        let b = deadline_key(10 * NS_PER_S, "a");
        assert!(a < b);
        assert_eq!(
            parse_deadline_key(&a),
            Some((9 * NS_PER_S, "z/with/slash".into()))
        );
        assert_eq!(parse_deadline_key(b"deadline/12"), None);
    }

    #[test]
    fn playbook_matches_action_type_and_risk_ceiling() {
        let book = Playbook {
            playbook: "maintenance-001".into(),
            action_types: vec!["file_write".into()],
            max_risk: "medium".into(),
            ..Playbook::default()
        };
        let mut p = Proposal {
            action_type: "file_write".into(),
            risk: "medium".into(),
            ..Proposal::default()
        };
        assert!(book.matches(&p));
        p.risk = "high".into();
        assert!(!book.matches(&p));
        p.risk = "low".into();
        p.action_type = "deploy".into();
        assert!(!book.matches(&p));
    }
}
