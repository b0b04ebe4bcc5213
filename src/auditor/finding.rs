//! What the detectors find and what the auditor writes.
//!
//! A `Finding` is a detector's judgement of one point; an `Output` is one
//! entry the auditor writes because of it (the `anomaly.detected` that
//! explains it, and any decision it leads to). Every output carries the seq
//! of the entry that triggered it (`trigger_seq`), so a restarted auditor
//! can tell what it already wrote (`Output::key`) and a replay can be
//! compared with what a live run wrote.
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// One detector's judgement of one point.
#[derive(Debug, Clone)]
pub struct Finding {
    pub detector: &'static str,
    pub severity: Severity,
    pub series: String,
    pub reason: String,
    pub observed: Option<f64>,
    pub baseline: Option<f64>,
    pub score: Option<f64>,
    pub threshold: Option<f64>,
    pub window: Option<u64>,
    pub samples: Option<u64>,
    pub warm_up: bool,
    pub evidence_seqs: Vec<u64>,
    pub job: Option<String>,
    pub agent: Option<String>,
}

impl Finding {
    /// A causal rule's finding: always critical, no statistics.
    pub fn causal(series: String, reason: String, evidence: Vec<u64>) -> Self {
        Self {
            detector: "causal",
            severity: Severity::Critical,
            series,
            reason,
            observed: None,
            baseline: None,
            score: None,
            threshold: None,
            window: None,
            samples: None,
            warm_up: false,
            evidence_seqs: evidence,
            job: None,
            agent: None,
        }
    }

    pub fn at(mut self, job: Option<&str>, agent: Option<&str>) -> Self {
        self.job = job.map(str::to_string);
        self.agent = agent.map(str::to_string);
        self
    }
}

/// JSON has no NaN or infinity; a number that is not finite is left out.
fn num(x: Option<f64>) -> Value {
    match x {
        Some(v) if v.is_finite() => {
            // Six significant decimals: enough to explain, and the same
            // text on every run (the value itself is already deterministic).
            let r = (v * 1e6).round() / 1e6;
            json!(r)
        }
        _ => Value::Null,
    }
}

/// One entry the auditor writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub trigger_seq: u64,
    pub kind: &'static str,
    pub job_id: Option<String>,
    pub agent: Option<String>,
    pub payload: Value,
}

impl Output {
    pub fn anomaly(f: &Finding, trigger_seq: u64) -> Self {
        let mut evidence = f.evidence_seqs.clone();
        evidence.sort_unstable();
        evidence.dedup();
        let payload = json!({
            "detector": f.detector,
            "severity": f.severity.as_str(),
            "reason": f.reason,
            "series": f.series,
            "observed": num(f.observed),
            "baseline": num(f.baseline),
            "score": num(f.score),
            "threshold": num(f.threshold),
            "window": f.window,
            "samples": f.samples,
            "warm_up": f.warm_up,
            "trigger_seq": trigger_seq,
            "evidence_seqs": evidence,
        });
        Self {
            trigger_seq,
            kind: "anomaly.detected",
            job_id: f.job.clone(),
            agent: f.agent.clone(),
            payload,
        }
    }

    pub fn new(
        kind: &'static str,
        trigger_seq: u64,
        job: Option<&str>,
        agent: Option<&str>,
        mut payload: Map<String, Value>,
    ) -> Self {
        payload.insert("trigger_seq".into(), json!(trigger_seq));
        Self {
            trigger_seq,
            kind,
            job_id: job.map(str::to_string),
            agent: agent.map(str::to_string),
            payload: Value::Object(payload),
        }
    }

    /// Identifies this output among everything the auditor writes: the
    /// kind, the trigger, and what distinguishes two outputs of one kind
    /// from one trigger (the series, the worker, the metric, the job).
    pub fn key(&self) -> String {
        key_of(
            self.kind,
            self.trigger_seq,
            self.job_id.as_deref(),
            &self.payload,
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind,
            "job_id": self.job_id,
            "agent": self.agent,
            "payload": self.payload,
        })
    }
}

/// The key of an output, from an entry read back from the log as well.
pub fn key_of(kind: &str, trigger_seq: u64, job: Option<&str>, payload: &Value) -> String {
    let field = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or("");
    let disc = match kind {
        "anomaly.detected" => field("series"),
        "heartbeat.stale" | "job.requeued" => field("worker_id"),
        "sla.breach" => field("metric"),
        "kill.soft" => field("target"),
        _ => "",
    };
    format!("{kind}|{trigger_seq}|{}|{disc}", job.unwrap_or(""))
}
