//! A job's entries as a timeline: each entry one event with a one-line
//! summary, tool calls paired (started with completed or failed, and the
//! duration between), a running cost, and the job's state re-derived from
//! its own entries (status, cost, SLA figures) the way the projections
//! derive it.
use serde_json::{json, Value};
use std::collections::HashMap;

/// One entry of the timeline.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: u64,
    pub ts_ns: u64,
    pub kind: String,
    pub step_id: Option<String>,
    pub agent: Option<String>,
    pub actor: String,
    pub parent: Option<u64>,
    pub payload: Value,
    /// The operator's redaction of this payload (`payload` is then null).
    pub redacted: Option<crate::log::redactions::Redaction>,
    /// Set on a tool call's completion or failure: the call's duration,
    /// from the payload, else from its start.
    pub duration_ms: Option<u64>,
    /// The seq of the start a completion pairs with.
    pub paired_with: Option<u64>,
    pub cost_total_usd: f64,
    /// Recorded by Argus (auditor, argus, operator) rather than the job's agents.
    pub by_argus: bool,
    pub summary: String,
}

/// What the job's entries say about it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Derived {
    pub status: String,
    pub cost_usd: f64,
    pub entries: u64,
    pub steps: u64,
    pub tool_calls: u64,
    pub tool_failures: u64,
    pub unpaired_starts: u64,
    pub proposals: u64,
    pub approvals: u64,
    pub rejections: u64,
    pub denials: u64,
    pub anomalies: u64,
    pub kill_switch_decisions: u64,
    pub time_to_first_update_ms: Option<u64>,
    pub time_to_completion_ms: Option<u64>,
    pub duration_ms: u64,
}

fn s<'a>(p: &'a Value, k: &str) -> &'a str {
    p.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A one-line account of an entry, its most telling fields only.
pub fn summarize(kind: &str, p: &Value) -> String {
    let opt = |k: &str| {
        p.get(k)
            .and_then(Value::as_str)
            .map(|v| format!(" {k}={v}"))
    };
    match kind {
        "job.received" => format!(
            "job_type={}{}",
            s(p, "job_type"),
            opt("title").unwrap_or_default()
        ),
        "job.failed" => format!("error: {}", s(p, "error")),
        "job.retrying" => format!(
            "attempt {} of {}: {}",
            p["attempt"],
            p["max_retries"],
            s(p, "reason")
        ),
        "job.progress" => s(p, "message").to_string(),
        "tool.call_started" => format!(
            "{} {}{}",
            s(p, "tool"),
            s(p, "call_id"),
            opt("proposal_id").unwrap_or_default()
        ),
        "tool.call_completed" => format!("{} {} ok", s(p, "tool"), s(p, "call_id")),
        "tool.call_failed" => format!(
            "{} {} FAILED: {}",
            s(p, "tool"),
            s(p, "call_id"),
            s(p, "error")
        ),
        "cost.logged" => format!(
            "${} {} ({} in / {} out)",
            p["usd"],
            s(p, "model"),
            p["tokens_in"],
            p["tokens_out"]
        ),
        "proposal.created" => format!(
            "{} {} risk={}: {}",
            s(p, "proposal_id"),
            s(p, "action_type"),
            s(p, "risk"),
            s(p, "rationale")
        ),
        "proposal.approved" | "proposal.rejected" | "proposal.expired" => {
            format!("{} {}", s(p, "proposal_id"), s(p, "reason"))
        }
        "policy.denied" => format!("{} denied: {}", s(p, "tool"), s(p, "reason")),
        "anomaly.detected" => format!(
            "{} {} {}: {}",
            s(p, "severity"),
            s(p, "detector"),
            s(p, "series"),
            s(p, "reason")
        ),
        "kill.hard" | "kill.soft" | "lockdown.set" | "kill.released" | "lockdown.released" => {
            s(p, "reason").to_string()
        }
        "dlq.enqueued" => format!("dead-lettered: {}", s(p, "failure_reason")),
        "incident.declared" => {
            format!("{} {}: {}", s(p, "priority"), s(p, "level"), s(p, "reason"))
        }
        "incident.resolved" => s(p, "resolution_note").to_string(),
        "sla.breach" => format!(
            "{} {} ms (target {} ms)",
            s(p, "metric"),
            p["actual_ms"],
            p["target_ms"]
        ),
        _ => {
            let text = p.to_string();
            let mut short: String = text.chars().take(80).collect();
            if text.chars().count() > 80 {
                short.push('…');
            }
            if short == "null" || short == "{}" {
                String::new()
            } else {
                short
            }
        }
    }
}

/// Builds the timeline from a job's entries in seq order.
pub fn build(mut events: Vec<Event>) -> (Vec<Event>, Derived) {
    events.sort_by_key(|e| e.seq);
    let mut d = Derived {
        status: "received".into(),
        ..Derived::default()
    };
    let mut open: HashMap<String, (u64, u64)> = HashMap::new();
    let mut steps = std::collections::BTreeSet::new();
    let received = events
        .iter()
        .find(|e| e.kind == "job.received")
        .map(|e| e.ts_ns);
    let first_ts = events.first().map_or(0, |e| e.ts_ns);
    let last_ts = events.last().map_or(0, |e| e.ts_ns);
    for e in &mut events {
        d.entries += 1;
        if let Some(st) = &e.step_id {
            steps.insert(st.clone());
        }
        let call_key = |p: &Value| {
            let id = s(p, "call_id");
            if id.is_empty() {
                format!("tool:{}", s(p, "tool"))
            } else {
                format!("call:{id}")
            }
        };
        match e.kind.as_str() {
            "tool.call_started" => {
                d.tool_calls += 1;
                open.insert(call_key(&e.payload), (e.seq, e.ts_ns));
            }
            "tool.call_completed" | "tool.call_failed" => {
                if e.kind == "tool.call_failed" {
                    d.tool_failures += 1;
                }
                if let Some((seq, ts)) = open.remove(&call_key(&e.payload)) {
                    e.paired_with = Some(seq);
                    e.duration_ms = e.payload["duration_ms"]
                        .as_u64()
                        .or(Some(e.ts_ns.saturating_sub(ts) / 1_000_000));
                } else {
                    e.duration_ms = e.payload["duration_ms"].as_u64();
                }
            }
            "cost.logged" => d.cost_usd += e.payload["usd"].as_f64().unwrap_or(0.0),
            "proposal.created" => d.proposals += 1,
            "proposal.approved" => d.approvals += 1,
            "proposal.rejected" => d.rejections += 1,
            "policy.denied" => d.denials += 1,
            "anomaly.detected" => d.anomalies += 1,
            "kill.hard" | "kill.soft" | "lockdown.set" | "kill.released" | "lockdown.released" => {
                d.kill_switch_decisions += 1
            }
            "job.completed" => d.status = "completed".into(),
            "job.failed" => d.status = "failed".into(),
            "job.cancelled" => d.status = "cancelled".into(),
            "job.timed_out" => d.status = "timed_out".into(),
            "job.retrying" => d.status = "retrying".into(),
            "dlq.enqueued" => d.status = "dead_lettered".into(),
            k if k.starts_with("job.") && d.status == "received" && k != "job.received" => {
                d.status = "running".into()
            }
            _ => {}
        }
        if e.kind.starts_with("job.") && e.kind != "job.received" {
            if let Some(r) = received {
                d.time_to_first_update_ms
                    .get_or_insert(e.ts_ns.saturating_sub(r) / 1_000_000);
            }
        }
        if matches!(
            e.kind.as_str(),
            "job.completed" | "job.failed" | "job.cancelled" | "job.timed_out"
        ) {
            if let Some(r) = received {
                d.time_to_completion_ms = Some(e.ts_ns.saturating_sub(r) / 1_000_000);
            }
        }
        e.cost_total_usd = d.cost_usd;
    }
    d.steps = steps.len() as u64;
    d.unpaired_starts = open.len() as u64;
    d.duration_ms = last_ts.saturating_sub(first_ts) / 1_000_000;
    (events, d)
}

/// One event as a JSON line (`replay -o json`).
pub fn event_json(e: &Event, t0_ns: u64, detailed: bool) -> Value {
    let mut v = json!({
        "seq": e.seq,
        "ts": crate::time::rfc3339_ns(e.ts_ns),
        "rel_ms": e.ts_ns.saturating_sub(t0_ns) / 1_000_000,
        "kind": e.kind,
        "step_id": e.step_id,
        "agent": e.agent,
        "actor": e.actor,
        "parent": e.parent,
        "by_argus": e.by_argus,
        "summary": e.summary,
        "cost_total_usd": (e.cost_total_usd * 1e6).round() / 1e6,
    });
    if let Some(d) = e.duration_ms {
        v["duration_ms"] = json!(d);
    }
    if let Some(p) = e.paired_with {
        v["started_seq"] = json!(p);
    }
    if detailed {
        v["payload"] = e.payload.clone();
    }
    if let Some(r) = &e.redacted {
        v["redacted"] = r.json();
    }
    v
}
