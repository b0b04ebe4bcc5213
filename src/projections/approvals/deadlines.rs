//! Timeouts: how long a proposal may wait (its own `timeout_s`, else the
//! global `approval_timeout` policy, else 24 h), and expiry in log time.
//!
//! Pending proposals sit in an index ordered by deadline, so each entry
//! checks one key (`NEXT_DEADLINE_KEY`) and expiring visits only what is due.
use super::super::{Event, StoreError, Tx};
use super::mode::ModeState;
use super::proposal::{proposal_key, Proposal, ProposalStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Seed 002: "Default timeout: 24 hours".
pub const DEFAULT_TIMEOUT_S: u64 = 24 * 3600;

const DEADLINE_PREFIX: &[u8] = b"deadline/";
const TIMEOUT_POLICY_PREFIX: &[u8] = b"timeout_policy/";
/// Lower bound of every deadline in the index, so most events need one
/// `get` and no scan. It may be stale-low after an approval removed the
/// earliest deadline; the next due check corrects it.
const NEXT_DEADLINE_KEY: &[u8] = b"next_deadline";

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

pub(super) fn add_deadline(tx: &mut Tx<'_>, p: &Proposal) -> Result<(), StoreError> {
    tx.put(&deadline_key(p.deadline_ns, &p.proposal_id), Vec::new());
    let next: Option<u64> = tx.get_json(NEXT_DEADLINE_KEY)?;
    if next.is_none_or(|n| p.deadline_ns < n) {
        tx.put_json(NEXT_DEADLINE_KEY, p.deadline_ns);
    }
    Ok(())
}

pub(super) fn remove_deadline(tx: &mut Tx<'_>, p: &Proposal) {
    tx.del(&deadline_key(p.deadline_ns, &p.proposal_id));
}

/// Whether some deadline may be due at this entry's log time.
pub(super) fn any_due(ev: &Event<'_>, tx: &Tx<'_>) -> Result<bool, StoreError> {
    let next: Option<u64> = tx.get_json(NEXT_DEADLINE_KEY)?;
    Ok(next.is_some_and(|n| ev.log_ns >= n))
}

/// Marks every pending proposal whose deadline is at or before this entry's
/// time as expired. The index is in deadline order, so the walk stops at the
/// first item not yet due.
pub(super) fn expire_due(
    ev: &Event<'_>,
    tx: &mut Tx<'_>,
    mode: &mut ModeState,
) -> Result<(), StoreError> {
    if !any_due(ev, tx)? {
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
        if p.is_pending() && p.deadline_ns == deadline_ns {
            p.status = ProposalStatus::Expired;
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

/// How long a new proposal may wait: its own `timeout_s` if at least 1,
/// else the most recent global `approval_timeout` policy, else the default.
pub(super) fn timeout_s(ev: &Event<'_>, tx: &Tx<'_>) -> Result<u64, StoreError> {
    if let Some(s) = ev.u64("timeout_s").filter(|s| *s >= 1) {
        return Ok(s);
    }
    let policy = tx
        .scan_json::<TimeoutPolicy>(TIMEOUT_POLICY_PREFIX)?
        .into_iter()
        .map(|(_, p)| p)
        .max_by_key(|p| p.set_seq);
    Ok(policy.map_or(DEFAULT_TIMEOUT_S, |p| p.seconds))
}

/// Keeps the global approval timeout policies; any other policy under the
/// same id (or a disabled one) no longer sets the timeout.
pub(super) fn on_policy_set(ev: &Event<'_>, tx: &mut Tx<'_>) {
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
        _ => tx.del(&key),
    }
}

pub(super) fn on_policy_removed(ev: &Event<'_>, tx: &mut Tx<'_>) {
    if let Some(id) = ev.str("policy_id") {
        tx.del(&timeout_policy_key(id));
    }
}

#[cfg(test)]
mod tests {
    use super::super::NS_PER_S;
    use super::*;

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
}
