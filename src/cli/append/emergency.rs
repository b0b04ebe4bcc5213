//! The emergency stop of ADR-018 S2: when redaction cannot finish on an
//! agent's payload, the entry is not written and Argus records why
//! (`redaction.failed`) together with a `lockdown.set`, in one group commit,
//! so the log never holds the refusal without the stop or the stop without
//! its cause. Agents are then refused until an operator releases the
//! lockdown; operators and the auditor still write.
use super::parse::RedactionFailure;
use crate::NewEntry;
use serde_json::json;

/// The two entries of the stop, by Argus. `line` is the refused entry's
/// line in its input; `rules_seq` the `redaction.rules_set` in force.
pub fn entries(f: &RedactionFailure, line: Option<u64>, rules_seq: Option<u64>) -> Vec<NewEntry> {
    // The names come from the agent: cut to the schema's bounds, so the
    // stop itself can never be refused for their length.
    let cut = |s: &str, n: usize| -> String { s.chars().take(n).collect() };
    let opt = |s: &Option<String>| s.as_deref().map(|s| cut(s, 256));
    let mut failed = json!({
        "reason": cut(&f.reason, 2000),
        "entry_kind": cut(&f.kind, 256),
        "actor": cut(&f.actor, 256),
        "agent": opt(&f.agent),
        "job_id": opt(&f.job_id),
        "payload_bytes": f.payload_bytes,
        "rules_seq": rules_seq,
    });
    if let (Some(line), Some(obj)) = (line, failed.as_object_mut()) {
        obj.insert("line".into(), json!(line));
    }
    let lockdown = json!({
        "reason": format!(
            "emergency stop: redaction of a {} payload from {} failed ({}); agents are refused until an operator runs `argusctl release`",
            cut(&f.kind, 256),
            cut(&f.actor, 256),
            f.reason
        ),
        "priority": "P1",
    });
    vec![
        NewEntry {
            job_id: f.job_id.clone(),
            agent: f.agent.clone(),
            ..NewEntry::argus("redaction.failed", &failed)
        },
        NewEntry::argus("lockdown.set", &lockdown),
    ]
}
