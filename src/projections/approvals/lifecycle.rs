//! What each proposal entry does to its proposal: created (or revised),
//! approved, rejected, expiry recorded, and the executor's outcomes.
//!
//! A decision that cannot apply (the proposal is not pending, the approval
//! is bound to other parameters or comes from the proposal's own agent, a
//! playbook that does not cover it) changes nothing but is kept on the
//! proposal as `ignored`, with the reason, so the view can show it.
use super::super::{Event, StoreError, Tx};
use super::deadlines::{add_deadline, remove_deadline, timeout_s};
use super::mode::{Mode, ModeState};
use super::playbook::{playbook_key, Playbook};
use super::proposal::{proposal_key, Proposal, ProposalStatus};
use super::NS_PER_S;
use crate::registry::parameter_hash;
use serde_json::Value;

fn opt_str(ev: &Event<'_>, field: &str) -> Option<String> {
    ev.str(field).map(str::to_string)
}

/// The proposal an entry names, with its key, if it exists.
fn named(ev: &Event<'_>, tx: &Tx<'_>) -> Result<Option<(Vec<u8>, Proposal)>, StoreError> {
    let Some(id) = ev.str("proposal_id") else {
        return Ok(None);
    };
    let key = proposal_key(id);
    Ok(tx.get_json::<Proposal>(&key)?.map(|p| (key, p)))
}

pub(super) fn on_created(ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
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
        if old.is_pending() {
            remove_deadline(tx, old);
        }
    }
    let timeout_s = timeout_s(ev, tx)?;
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
        status: ProposalStatus::Pending,
        last_seq: ev.seq,
        ..Proposal::default()
    };
    add_deadline(tx, &p)?;
    tx.put_json(&key, p);
    Ok(())
}

/// Why an approval cannot apply to `p` whatever its playbook: not pending,
/// bound to other parameters, or by the proposal's own agent.
fn approval_refused(ev: &Event<'_>, p: &Proposal) -> Option<String> {
    if !p.is_pending() {
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
        own_agent(ev, p)
    }
}

/// Why a playbook approval does not count: playbooks act only in beta and
/// omega, and only for what they cover.
fn playbook_refused(
    tx: &Tx<'_>,
    name: &str,
    p: &Proposal,
    mode: &ModeState,
) -> Result<Option<String>, StoreError> {
    if mode.mode == Mode::Alpha {
        return Ok(Some("a playbook approval in mode alpha".to_string()));
    }
    let book: Option<Playbook> = tx.get_json(&playbook_key(name))?;
    Ok((!book.is_some_and(|b| b.matches(p)))
        .then(|| format!("playbook {name} does not cover this proposal")))
}

pub(super) fn on_approved(
    ev: &Event<'_>,
    tx: &mut Tx<'_>,
    mode: &mut ModeState,
) -> Result<(), StoreError> {
    let Some((key, mut p)) = named(ev, tx)? else {
        return Ok(());
    };
    let playbook = ev.str("playbook");
    let refusal = match (approval_refused(ev, &p), playbook) {
        (Some(reason), _) => Some(reason),
        (None, Some(name)) => playbook_refused(tx, name, &p, mode)?,
        (None, None) => None,
    };
    if let Some(reason) = refusal {
        p.ignore(ev, reason);
        tx.put_json(&key, p);
        return Ok(());
    }
    if playbook.is_some() {
        mode.auto_approved += 1;
    } else {
        mode.approved += 1;
    }
    remove_deadline(tx, &p);
    decide(&mut p, ev, ProposalStatus::Approved);
    p.approval_mode = Some(
        ev.str("mode")
            .map_or_else(|| mode.mode.to_string(), str::to_string),
    );
    p.playbook = playbook.map(str::to_string);
    tx.put_json(&key, p);
    Ok(())
}

/// What an approval and a rejection both record: the outcome, when, and
/// who decided (the entry's actor, never a field of its payload).
fn decide(p: &mut Proposal, ev: &Event<'_>, status: ProposalStatus) {
    p.status = status;
    p.decided_seq = Some(ev.seq);
    p.decided_ts_ns = Some(ev.log_ns);
    p.approver = Some(ev.actor.to_string());
    p.approver_label = opt_str(ev, "actor_label");
    p.reason = opt_str(ev, "reason");
    p.last_seq = ev.seq;
}

pub(super) fn on_rejected(
    ev: &Event<'_>,
    tx: &mut Tx<'_>,
    mode: &mut ModeState,
) -> Result<(), StoreError> {
    let Some((key, mut p)) = named(ev, tx)? else {
        return Ok(());
    };
    if !p.is_pending() {
        p.ignore(
            ev,
            format!("the proposal is {}, not pending", p.display_status()),
        );
        tx.put_json(&key, p);
        return Ok(());
    }
    remove_deadline(tx, &p);
    mode.rejected += 1;
    decide(&mut p, ev, ProposalStatus::Rejected);
    tx.put_json(&key, p);
    Ok(())
}

/// Records an expiry the projection already derived. Expiry is a rule of
/// log time: an expiry stamped by a clock that ran ahead of the log's is
/// not due, and changes nothing.
pub(super) fn on_expired(ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
    let Some((key, mut p)) = named(ev, tx)? else {
        return Ok(());
    };
    if p.is_pending() {
        let reason = format!(
            "not due in log time: the deadline is {}, the entry's log time {}",
            crate::time::rfc3339_ns(p.deadline_ns),
            crate::time::rfc3339_ns(ev.log_ns)
        );
        p.ignore(ev, reason);
        tx.put_json(&key, p);
        return Ok(());
    }
    if !p.expiry_unrecorded() {
        return Ok(());
    }
    p.expiry_recorded = true;
    p.last_seq = ev.seq;
    tx.put_json(&key, p);
    Ok(())
}

/// executing / completed / failed / rolled_back come from the executor; the
/// log is the truth about what ran, so they apply to any known proposal.
pub(super) fn on_outcome(
    ev: &Event<'_>,
    tx: &mut Tx<'_>,
    mode: &mut ModeState,
    status: ProposalStatus,
) -> Result<(), StoreError> {
    let Some((key, mut p)) = named(ev, tx)? else {
        return Ok(());
    };
    if p.is_pending() {
        remove_deadline(tx, &p);
    }
    if p.status.is_unapproved() {
        // Acted on without approval: the log shows a constitutional violation.
        p.violation = Some(format!("seq {}: {} while {}", ev.seq, ev.kind, p.status));
        mode.violation();
    }
    p.status = status;
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
