//! The `Projection` impl: which entry goes to which handler, and when the
//! mode record is read and written (rarely: most entries touch neither).
use super::super::{Event, Projection, StoreError, Tx};
use super::deadlines::{any_due, expire_due, on_policy_removed, on_policy_set};
use super::lifecycle::{on_approved, on_created, on_expired, on_outcome, on_rejected};
use super::mode::{on_mode_changed, IgnoredModeChange, ModeState, MODE_KEY};
use super::playbook::{on_playbook_removed, on_playbook_set};
use super::proposal::{proposal_key, Proposal, ProposalStatus, IGNORED_KEPT};
use super::NAME;

/// `anomaly.detected` entries from this detector are constitutional
/// violations.
pub const CONSTITUTION_DETECTOR: &str = "constitution";

pub struct Approvals;

impl Projection for Approvals {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        // 4: statuses and modes are enums (same words).
        4
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
    any_due(ev, tx)
}

/// The entry's own effect; `mode` is only touched by the kinds `touches_mode`
/// names.
fn apply_kind(ev: &Event<'_>, tx: &mut Tx<'_>, mode: &mut ModeState) -> Result<(), StoreError> {
    if let Some(status) = ProposalStatus::outcome(ev.kind) {
        return on_outcome(ev, tx, mode, status);
    }
    match ev.kind {
        "proposal.created" => on_created(ev, tx)?,
        "proposal.approved" => on_approved(ev, tx, mode)?,
        "proposal.rejected" => on_rejected(ev, tx, mode)?,
        "proposal.expired" => on_expired(ev, tx)?,
        "playbook.set" => on_playbook_set(ev, tx),
        "playbook.removed" => on_playbook_removed(ev, tx),
        "policy.set" => on_policy_set(ev, tx),
        "policy.removed" => on_policy_removed(ev, tx),
        "mode.changed" => on_mode_changed(ev, mode),
        "anomaly.detected" if ev.str("detector") == Some(CONSTITUTION_DETECTOR) => {
            mode.violation();
        }
        _ => {}
    }
    Ok(())
}
