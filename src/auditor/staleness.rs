//! Staleness, judged on the writer's clock (log time): heartbeats gone
//! stale, agents stalled on a running job, SLA targets missed, and worker
//! claims that outlived their lease. Each is a deadline; an entry whose log
//! time passes a deadline triggers the record (`auditor.tick` entries carry
//! time forward on a quiet log), so a replay finds the same records at the
//! same seqs.
use super::config::Config;
use super::finding::Output;
use crate::projections::Event;
use serde_json::{json, Map};
use std::collections::{BTreeSet, HashMap};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Due {
    Heartbeat { worker: String },
    Stall { job: String },
    Sla { job: String, first_update: bool },
    Claim { worker: String, job: String },
}

#[derive(Debug, Clone)]
struct Armed {
    at: u64,
    /// Log time the clock started from (last heartbeat, activity, receipt, renewal).
    since: u64,
    since_seq: u64,
    agent: Option<String>,
    /// For SLA: job type and target; for claims: lease.
    extra: (String, u64),
}

#[derive(Debug, Default)]
pub struct Staleness {
    queue: BTreeSet<(u64, Due)>,
    armed: HashMap<Due, Armed>,
    /// SLA targets per job type: (time to first update, time to completion), ms.
    targets: HashMap<String, (Option<u64>, Option<u64>)>,
    /// Running jobs: type and agent.
    jobs: HashMap<String, (String, Option<String>)>,
}

impl Staleness {
    fn arm(&mut self, due: Due, a: Armed) {
        if let Some(old) = self.armed.remove(&due) {
            self.queue.remove(&(old.at, due.clone()));
        }
        self.queue.insert((a.at, due.clone()));
        self.armed.insert(due, a);
    }

    fn disarm(&mut self, due: &Due) {
        if let Some(old) = self.armed.remove(due) {
            self.queue.remove(&(old.at, due.clone()));
        }
    }

    /// The earliest deadline, in log time.
    pub fn next_deadline(&self) -> Option<u64> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Records every deadline that `ev`'s log time has passed, triggered by `ev`.
    pub fn expire(&mut self, cfg: &Config, ev: &Event<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        if !cfg.staleness.enabled {
            return out;
        }
        while let Some((at, due)) = self.queue.first().cloned() {
            if at > ev.log_ns {
                break;
            }
            self.queue.pop_first();
            let Some(a) = self.armed.remove(&due) else {
                continue;
            };
            let waited_ms = (ev.log_ns - a.since) / MS;
            let mut p = Map::new();
            let o = match &due {
                Due::Heartbeat { worker } => {
                    p.insert("worker_id".into(), json!(worker));
                    p.insert("last_seen_ms".into(), json!(waited_ms));
                    p.insert("last_seq".into(), json!(a.since_seq));
                    Output::new("heartbeat.stale", ev.seq, None, None, p)
                }
                Due::Stall { job } => {
                    p.insert(
                        "reason".into(),
                        json!(format!(
                            "job {job}: no entry from its agent for {} s",
                            waited_ms / 1000
                        )),
                    );
                    p.insert("stalled_for_ms".into(), json!(waited_ms));
                    p.insert("last_seq".into(), json!(a.since_seq));
                    Output::new("agent.stalled", ev.seq, Some(job), a.agent.as_deref(), p)
                }
                Due::Sla { job, first_update } => {
                    p.insert("job_type".into(), json!(a.extra.0));
                    p.insert(
                        "metric".into(),
                        json!(if *first_update {
                            "time_to_first_update"
                        } else {
                            "time_to_completion"
                        }),
                    );
                    p.insert("target_ms".into(), json!(a.extra.1));
                    p.insert("actual_ms".into(), json!(waited_ms));
                    Output::new("sla.breach", ev.seq, Some(job), a.agent.as_deref(), p)
                }
                Due::Claim { worker, job } => {
                    p.insert("worker_id".into(), json!(worker));
                    p.insert(
                        "reason".into(),
                        json!(format!(
                            "claim by {worker} outlived its {} ms lease by {} ms with no renewal",
                            a.extra.1,
                            waited_ms.saturating_sub(a.extra.1)
                        )),
                    );
                    p.insert("claimed_seq".into(), json!(a.since_seq));
                    p.insert("lease_ms".into(), json!(a.extra.1));
                    p.insert(
                        "overdue_ms".into(),
                        json!(waited_ms.saturating_sub(a.extra.1)),
                    );
                    Output::new("job.requeued", ev.seq, Some(job), None, p)
                }
            };
            out.push(o);
        }
        out
    }

    /// Arms, re-arms or clears deadlines for one admitted entry.
    pub fn observe(&mut self, cfg: &Config, ev: &Event<'_>, agent_class: bool) {
        let st = &cfg.staleness;
        if !st.enabled {
            return;
        }
        let t = ev.log_ns;
        let armed = |at: u64, agent: Option<&str>, extra: (String, u64)| Armed {
            at,
            since: t,
            since_seq: ev.seq,
            agent: agent.map(str::to_string),
            extra,
        };
        match ev.kind {
            "sla.target_set" => {
                if let Some(jt) = ev.str("job_type") {
                    self.targets.insert(
                        jt.to_string(),
                        (
                            ev.u64("time_to_first_update_ms"),
                            ev.u64("time_to_completion_ms"),
                        ),
                    );
                }
                return;
            }
            "worker.heartbeat" | "heartbeat.ok" if agent_class => {
                if let Some(w) = ev.str("worker_id") {
                    let due = Due::Heartbeat {
                        worker: w.to_string(),
                    };
                    self.arm(
                        due,
                        armed(t + st.heartbeat_stale_s * S, None, Default::default()),
                    );
                    // A heartbeat naming its job renews that claim.
                    if let Some(j) = ev.str("job_id") {
                        let due = Due::Claim {
                            worker: w.to_string(),
                            job: j.to_string(),
                        };
                        if let Some(lease) = self.armed.get(&due).map(|a| a.extra.1) {
                            let at = t + lease * MS + st.claim_grace_s * S;
                            self.arm(due, armed(at, None, (String::new(), lease)));
                        }
                    }
                }
            }
            "worker.claimed" if agent_class => {
                if let (Some(w), Some(j)) = (ev.str("worker_id"), ev.str("job_id")) {
                    let lease = ev.u64("lease_ms").unwrap_or(st.default_lease_s * 1000);
                    let at = t + lease * MS + st.claim_grace_s * S;
                    let due = Due::Claim {
                        worker: w.to_string(),
                        job: j.to_string(),
                    };
                    self.arm(due, armed(at, None, (String::new(), lease)));
                }
            }
            "worker.released" => {
                if let (Some(w), Some(j)) = (ev.str("worker_id"), ev.str("job_id")) {
                    self.disarm(&Due::Claim {
                        worker: w.to_string(),
                        job: j.to_string(),
                    });
                }
            }
            _ => {}
        }
        let Some(job) = ev.job_id.filter(|_| agent_class) else {
            return;
        };
        let job_s = job.to_string();
        match ev.kind {
            "job.received" => {
                let jt = ev.str("job_type").unwrap_or("").to_string();
                let agent = ev.agent;
                self.jobs
                    .insert(job_s.clone(), (jt.clone(), agent.map(str::to_string)));
                if let Some(&(ttfu, ttc)) = self.targets.get(&jt) {
                    if let Some(ms) = ttfu {
                        let due = Due::Sla {
                            job: job_s.clone(),
                            first_update: true,
                        };
                        self.arm(due, armed(t + ms * MS, agent, (jt.clone(), ms)));
                    }
                    if let Some(ms) = ttc {
                        let due = Due::Sla {
                            job: job_s.clone(),
                            first_update: false,
                        };
                        self.arm(due, armed(t + ms * MS, agent, (jt.clone(), ms)));
                    }
                }
            }
            "job.completed" | "job.failed" | "job.cancelled" | "job.timed_out" => {
                self.jobs.remove(&job_s);
                self.disarm(&Due::Stall { job: job_s.clone() });
                self.disarm(&Due::Sla {
                    job: job_s.clone(),
                    first_update: true,
                });
                self.disarm(&Due::Sla {
                    job: job_s.clone(),
                    first_update: false,
                });
                let claims: Vec<Due> = self
                    .armed
                    .keys()
                    .filter(|d| matches!(d, Due::Claim { job: j, .. } if *j == job_s))
                    .cloned()
                    .collect();
                for d in claims {
                    self.disarm(&d);
                }
                return;
            }
            _ => {
                self.disarm(&Due::Sla {
                    job: job_s.clone(),
                    first_update: true,
                });
            }
        }
        if let Some((_, agent)) = self.jobs.get(&job_s).cloned() {
            let agent = ev.agent.map(str::to_string).or(agent);
            let due = Due::Stall { job: job_s };
            self.arm(
                due,
                armed(
                    t + st.agent_stall_s * S,
                    agent.as_deref(),
                    Default::default(),
                ),
            );
        }
    }
}
