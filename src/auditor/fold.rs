//! The auditor as one deterministic fold of the log.
//!
//! `Auditor::observe` takes each committed entry in seq order (admitted and
//! timed exactly as the projections take it) and returns the entries the
//! auditor writes because of it. It reads nothing else: no wall clock, no
//! randomness, no environment, so a live run, a run restarted halfway and
//! `argusctl audit` over the finished log produce the same outputs, each
//! stamped with the seq that triggered it.
//!
//! Responses (the kill-switch policy, documented in docs/AUDITOR.md):
//! - a critical causal rule, or two independent detectors critical on one
//!   job within `kill_window_s`: `kill.hard` + a P0 `incident.declared`;
//! - a warning, or a lone statistical critical: `lockdown.set` + a P1
//!   `incident.declared`;
//! - info: the anomaly entry only.
//!
//! A decision already standing (or decided and not yet read back) is not
//! repeated. An operator's release re-baselines the series that fired, so
//! the override is what the model learns from, not a loop of re-fires.
use super::causal::Causal;
use super::config::Config;
use super::drift::Drift;
use super::economic::{Burn, Measure, Point, Spikes};
use super::finding::{key_of, Finding, Output, Severity};
use super::staleness::Staleness;
use crate::authority::Class;
use crate::projections::control::ControlState;
use crate::projections::Event;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub struct Auditor {
    cfg: Config,
    spikes: Spikes,
    burn: Burn,
    drift: Drift,
    causal: Causal,
    stale: Staleness,
    /// The kill state as the log records it.
    ctl: ControlState,
    /// Decided by this fold and not yet read back from the log.
    pending_hard: bool,
    pending_lockdown: bool,
    /// Critical findings per job: (detector, seq, log time).
    criticals: HashMap<String, Vec<(&'static str, u64, u64)>>,
    /// Job type and agent per job, for the job-type series.
    jobs: HashMap<String, (String, Option<String>)>,
    /// Series that fired since the last release.
    fired: BTreeSet<String>,
    /// Outputs computed and not yet seen in the log, by key.
    unwritten: BTreeMap<String, Output>,
    /// Entries observed (the next seq).
    pub next_seq: u64,
    pub last_log_ns: u64,
}

impl Auditor {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            spikes: Spikes::default(),
            burn: Burn::default(),
            drift: Drift::default(),
            causal: Causal::default(),
            stale: Staleness::default(),
            ctl: ControlState::default(),
            pending_hard: false,
            pending_lockdown: false,
            criticals: HashMap::new(),
            jobs: HashMap::new(),
            fired: BTreeSet::new(),
            unwritten: BTreeMap::new(),
            next_seq: 0,
            last_log_ns: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The earliest staleness deadline (log time), for `auditor.tick`.
    pub fn next_deadline(&self) -> Option<u64> {
        self.stale.next_deadline()
    }

    /// Outputs computed but not yet seen in the log (what a restarted
    /// auditor still owes), in trigger order.
    pub fn unwritten(&self) -> Vec<Output> {
        let mut v: Vec<Output> = self.unwritten.values().cloned().collect();
        v.sort_by_key(|o| o.trigger_seq);
        v
    }

    /// Marks an output as written (its append was acknowledged).
    pub fn written(&mut self, o: &Output) {
        self.unwritten.remove(&o.key());
    }

    /// Folds one entry; `refused` is true when its writer class may not
    /// write its kind (it then only moves time).
    pub fn observe(&mut self, ev: &Event<'_>, refused: bool) -> Vec<Output> {
        self.next_seq = ev.seq + 1;
        self.last_log_ns = ev.log_ns;
        let mut out = self.stale.expire(&self.cfg, ev);
        if refused {
            return self.remember(out);
        }
        let class = Class::of_actor(ev.actor);
        if class == Class::Auditor {
            self.read_back(ev);
        }
        self.control(ev, class);
        if class == Class::Agent || class == Class::Operator {
            let mut findings = Vec::new();
            if self.cfg.causal.enabled {
                findings.extend(self.causal.observe(ev, class == Class::Agent, &self.ctl));
            }
            if class == Class::Agent {
                findings.extend(self.statistics(ev));
            } else {
                self.operator_config(ev);
            }
            out.extend(self.respond(ev, findings));
        }
        self.stale.observe(&self.cfg, ev, class == Class::Agent);
        self.remember(out)
    }

    fn remember(&mut self, out: Vec<Output>) -> Vec<Output> {
        for o in &out {
            self.unwritten.insert(o.key(), o.clone());
        }
        out
    }

    /// One of the auditor's own entries read back: no longer owed.
    fn read_back(&mut self, ev: &Event<'_>) {
        if let Some(t) = ev.u64("trigger_seq") {
            let key = key_of(ev.kind, t, ev.job_id, ev.payload);
            self.unwritten.remove(&key);
            match ev.kind {
                "kill.hard" => self.pending_hard = false,
                "lockdown.set" => self.pending_lockdown = false,
                _ => {}
            }
        }
    }

    fn control(&mut self, ev: &Event<'_>, class: Class) {
        let released = matches!(ev.kind, "kill.released" | "lockdown.released");
        if !self.ctl.apply(ev) || !released || class != Class::Operator {
            return;
        }
        // The operator overrode: what fired is taken as the new normal.
        for s in std::mem::take(&mut self.fired) {
            self.spikes.reset(&s);
            self.drift.reset(&s);
        }
        self.criticals.clear();
        if self.ctl.hard_kill.is_none() {
            self.pending_hard = false;
        }
        if self.ctl.lockdown.is_none() {
            self.pending_lockdown = false;
        }
    }

    fn operator_config(&mut self, ev: &Event<'_>) {
        match ev.kind {
            "policy.set" if ev.str("policy_type") == Some("budget") => {
                let enabled = ev.payload.get("enabled").and_then(Value::as_bool) != Some(false);
                let daily = ev
                    .payload
                    .get("config")
                    .and_then(|c| c.get("daily_usd"))
                    .and_then(Value::as_f64)
                    .filter(|_| enabled);
                if let Some(scope) = ev.str("scope") {
                    self.burn.budget(scope, daily);
                }
            }
            _ => {}
        }
    }

    fn statistics(&mut self, ev: &Event<'_>) -> Vec<Finding> {
        let mut f = Vec::new();
        let (job, agent) = (ev.job_id, ev.agent);
        if ev.kind == "job.received" {
            if let Some(j) = job {
                let jt = ev.str("job_type").unwrap_or("").to_string();
                self.jobs
                    .insert(j.to_string(), (jt, agent.map(str::to_string)));
            }
        }
        let job_type = job.and_then(|j| self.jobs.get(j)).map(|(t, _)| t.clone());
        let cfg = &self.cfg;
        let mut spike = |measure, series: String, value: f64, f: &mut Vec<Finding>| {
            let p = Point {
                measure,
                series,
                value,
                seq: ev.seq,
                job,
                agent,
            };
            f.extend(self.spikes.observe(cfg, p));
        };
        match ev.kind {
            "cost.logged" => {
                if let Some(usd) = ev.f64("usd") {
                    let m = Measure::CostUsd;
                    if let Some(a) = agent {
                        spike(m, format!("cost/agent/{a}"), usd, &mut f);
                    }
                    if let Some(t) = ev.str("tool") {
                        spike(m, format!("cost/tool/{t}"), usd, &mut f);
                    }
                    if let Some(jt) = &job_type {
                        spike(m, format!("cost/job_type/{jt}"), usd, &mut f);
                    }
                    f.extend(self.burn.observe(cfg, usd, ev.log_ns, ev.seq, job, agent));
                }
            }
            "tool.call_completed" | "tool.call_failed" => {
                let tool = ev.str("tool").unwrap_or("");
                if let Some(ms) = ev.u64("duration_ms") {
                    spike(
                        Measure::DurationMs,
                        format!("duration/tool/{tool}"),
                        ms as f64,
                        &mut f,
                    );
                    if let Some(a) = agent {
                        let series = format!("duration/agent/{a}");
                        spike(Measure::DurationMs, series, ms as f64, &mut f);
                    }
                }
                let bad = ev.kind == "tool.call_failed";
                let series = format!("failure/agent/{}/tool/{tool}", agent.unwrap_or("-"));
                f.extend(self.drift.observe(cfg, series, bad, ev.seq, job, agent));
            }
            "job.completed" | "job.retrying" => {
                if ev.kind == "job.completed" {
                    if let (Some(ms), Some(jt)) = (ev.u64("duration_ms"), &job_type) {
                        spike(
                            Measure::DurationMs,
                            format!("duration/job_type/{jt}"),
                            ms as f64,
                            &mut f,
                        );
                    }
                }
                let series = format!("retry/agent/{}", agent.unwrap_or("-"));
                let bad = ev.kind == "job.retrying";
                f.extend(self.drift.observe(cfg, series, bad, ev.seq, job, agent));
            }
            _ => {}
        }
        f
    }

    /// The anomaly entries for `findings`, and the decisions they call for.
    fn respond(&mut self, ev: &Event<'_>, findings: Vec<Finding>) -> Vec<Output> {
        let mut out: Vec<Output> = findings
            .iter()
            .map(|f| Output::anomaly(f, ev.seq))
            .collect();
        let mut hard: Option<&Finding> = None;
        let mut lock: Option<&Finding> = None;
        let window_ns = self.cfg.response.kill_window_s * 1_000_000_000;
        for f in &findings {
            if f.severity >= Severity::Warning {
                self.fired.insert(f.series.clone());
            }
            match f.severity {
                Severity::Critical if f.detector == "causal" => {
                    hard = hard.or(Some(f));
                }
                Severity::Critical => {
                    let two = f.job.as_ref().is_some_and(|j| {
                        let seen = self.criticals.entry(j.clone()).or_default();
                        seen.retain(|(_, _, t)| t + window_ns >= ev.log_ns);
                        seen.push((f.detector, ev.seq, ev.log_ns));
                        let mut dets: Vec<&str> = seen.iter().map(|(d, _, _)| *d).collect();
                        dets.sort_unstable();
                        dets.dedup();
                        dets.len() >= 2
                    });
                    if two {
                        hard = hard.or(Some(f));
                    } else {
                        lock = lock.or(Some(f));
                    }
                }
                Severity::Warning => lock = lock.or(Some(f)),
                Severity::Info => {}
            }
        }
        let r = &self.cfg.response;
        let hard_standing = self.ctl.hard_kill.is_some() || self.pending_hard;
        if let (Some(f), true, false) = (hard, r.kill_on_critical, hard_standing) {
            self.pending_hard = true;
            let evidence = self.kill_evidence(f, ev.seq);
            out.push(decision("kill.hard", "P0", f, ev, &evidence));
            out.push(incident("P0", f, ev, &evidence));
            return out;
        }
        let lock_standing = hard_standing || self.ctl.lockdown.is_some() || self.pending_lockdown;
        if let (Some(f), true, false) = (lock, r.lockdown_on_warning, lock_standing) {
            self.pending_lockdown = true;
            out.push(decision("lockdown.set", "P1", f, ev, &f.evidence_seqs));
            out.push(incident("P1", f, ev, &f.evidence_seqs));
        }
        out
    }

    /// A kill's evidence: the finding's, and for two detectors on one job,
    /// the other critical's seq too.
    fn kill_evidence(&self, f: &Finding, seq: u64) -> Vec<u64> {
        let mut e = f.evidence_seqs.clone();
        if let Some(j) = &f.job {
            e.extend(
                self.criticals
                    .get(j)
                    .into_iter()
                    .flatten()
                    .map(|(_, s, _)| *s),
            );
        }
        e.push(seq);
        e.sort_unstable();
        e.dedup();
        e
    }
}

fn decision(
    kind: &'static str,
    priority: &str,
    f: &Finding,
    ev: &Event<'_>,
    evidence: &[u64],
) -> Output {
    let mut p = Map::new();
    p.insert(
        "reason".into(),
        json!(format!(
            "{} {}: {}",
            f.severity.as_str(),
            f.detector,
            f.reason
        )),
    );
    p.insert("priority".into(), json!(priority));
    p.insert("evidence_seqs".into(), json!(evidence));
    Output::new(kind, ev.seq, f.job.as_deref(), None, p)
}

fn incident(priority: &str, f: &Finding, ev: &Event<'_>, evidence: &[u64]) -> Output {
    let mut p = Map::new();
    p.insert("level".into(), json!("incident"));
    p.insert("priority".into(), json!(priority));
    p.insert(
        "reason".into(),
        json!(format!(
            "{priority}: {} {}: {}",
            f.severity.as_str(),
            f.detector,
            f.reason
        )),
    );
    p.insert("evidence_seqs".into(), json!(evidence));
    Output::new("incident.declared", ev.seq, f.job.as_deref(), None, p)
}
