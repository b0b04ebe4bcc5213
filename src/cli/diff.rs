//! `argusctl diff DIR JOB_A JOB_B`: two runs of a job side by side (a
//! replay against its original): inputs, steps, outputs, timing, costs.
//!
//! The job index (`projections::jobs`) names each job's seqs; the entries
//! are read from the log over the span from the job's first seq to its
//! last, because log time across that span needs every entry in it (a
//! `clock.skew` between two of the job's entries changes how much time
//! passed). Only the entries the index lists count as the job's.
//!
//! A step is one tool call: a `tool.call_started` and the
//! `tool.call_completed` / `tool.call_failed` that ends it (paired by
//! `parent`, then `call_id`, then the oldest open call of the same tool),
//! or an end with no start. Steps of the two runs are paired by step_id
//! (the nth call of a step with the nth call of the same step), then the
//! unpaired ones by tool name in order; the rest are only in A or only in
//! B. A step's duration is the `duration_ms` its end reports, else the log
//! time from its start to its end.
use super::safe::esc;
use super::{Format, Out};
use crate::projections::jobs::{job_key, job_seqs, Job, NAME};
use crate::time::{rfc3339_ns, LogClock, CLOCK_SKEW_KIND};
use anyhow::Result;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::Path;

/// One run: what the log holds of one job.
struct RunData {
    job: Job,
    received: Option<(u64, Value)>,
    /// The last `job.completed` / `job.failed` / `job.cancelled` /
    /// `job.timed_out`: seq, kind, payload.
    ended: Option<(u64, String, Value)>,
    steps: Vec<Step>,
    /// usd per tool ("(no tool)" when neither the entry nor its step names one).
    cost_by_tool: BTreeMap<String, f64>,
    cost_usd: f64,
    cost_entries: u64,
    first: (u64, u64),
    last: (u64, u64),
    wall_ns: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Step {
    #[serde(skip_serializing_if = "Option::is_none")]
    step_id: Option<String>,
    /// 1-based: the nth call of this step_id (of this tool, without one).
    call: usize,
    tool: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_id: Option<String>,
    /// completed, failed, or open (no end in the log).
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    /// Where the duration comes from: "duration_ms" (the end's payload)
    /// or "log_time" (start to end).
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_from: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_seq: Option<u64>,
    #[serde(skip)]
    start_log_ns: Option<u64>,
}

impl Step {
    fn label(&self) -> String {
        match &self.step_id {
            Some(id) if self.call == 1 => id.clone(),
            Some(id) => format!("{id}#{}", self.call),
            None => format!("{}#{}", self.tool, self.call),
        }
    }
    fn first_seq(&self) -> u64 {
        self.started_seq.or(self.ended_seq).unwrap_or(0)
    }
}

pub fn run(dir: &Path, job_a: &str, job_b: &str, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let ((a, a_seqs), (b, b_seqs)) = st.projections.with_view(NAME, |v| {
        let one = |id: &str| -> Result<_, crate::projections::StoreError> {
            Ok((v.get_json::<Job>(&job_key(id))?, job_seqs(v, id)?))
        };
        Ok((one(job_a)?, one(job_b)?))
    })?;
    let missing =
        |id: &str| super::error::CommandError::NotFound(format!("no job {id:?} in the log")).into();
    let a = a.ok_or_else(|| -> anyhow::Error { missing(job_a) })?;
    let b = b.ok_or_else(|| -> anyhow::Error { missing(job_b) })?;
    let a = read_run(&st.reader, a, &a_seqs)?;
    let b = read_run(&st.reader, b, &b_seqs)?;
    let report = Report::new(&a, &b);
    let mut out = Out::default();
    match format {
        Format::Json => out.json(&serde_json::to_string(&report)?),
        Format::Text => {
            for l in report.text() {
                out.line(&l);
            }
        }
    }
    out.flush();
    Ok(())
}

/// Reads a job's entries (the span from its first seq to its last, for log
/// time) and folds them into a `RunData`.
fn read_run(r: &crate::log::reader::LogReader, job: Job, seqs: &[u64]) -> Result<RunData> {
    let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
        anyhow::bail!("the job index lists no entry of job {:?}", job.job_id);
    };
    let wanted: BTreeSet<u64> = seqs.iter().copied().collect();
    let registry = crate::registry::builtin().map_err(anyhow::Error::msg)?;
    let mut clock = LogClock::default();
    let mut fold = Fold::default();
    let (mut first_at, mut last_at) = ((first, 0), (last, 0));
    let (mut first_log, mut last_log) = (0, 0);
    r.for_each(first, last, |v| {
        let log_ns = if v.kind == CLOCK_SKEW_KIND {
            let a = crate::projections::admit::admit(registry, v);
            crate::projections::admit::log_time(&mut clock, v.kind, v.ts_ns, &a)
        } else {
            clock.advance(v.ts_ns, None)
        };
        if !wanted.contains(&v.seq) {
            return ControlFlow::Continue(());
        }
        if v.seq == first {
            first_at = (v.seq, v.ts_ns);
            first_log = log_ns;
        }
        last_at = (v.seq, v.ts_ns);
        last_log = log_ns;
        let payload: Value = serde_json::from_slice(v.payload).unwrap_or(Value::Null);
        fold.entry(v.seq, v.kind, v.step_id, v.parent, log_ns, payload);
        ControlFlow::Continue(())
    })?;
    let (steps, cost_by_tool, cost_usd, cost_entries) = fold.finish();
    Ok(RunData {
        job,
        received: fold.received,
        ended: fold.ended,
        steps,
        cost_by_tool,
        cost_usd,
        cost_entries,
        first: first_at,
        last: last_at,
        wall_ns: last_log.saturating_sub(first_log),
    })
}

/// The job's entries, in seq order, becoming steps, costs, input and output.
#[derive(Default)]
struct Fold {
    received: Option<(u64, Value)>,
    ended: Option<(u64, String, Value)>,
    calls: Vec<Step>,
    /// Open calls (index into `calls`) by start seq, call_id and tool.
    open_by_seq: HashMap<u64, usize>,
    open_by_call: HashMap<String, usize>,
    open_by_tool: HashMap<String, Vec<usize>>,
    /// cost.logged: (tool named in it, step_id, usd).
    costs: Vec<(Option<String>, Option<String>, f64)>,
}

fn str_of(p: &Value, k: &str) -> Option<String> {
    p.get(k).and_then(Value::as_str).map(str::to_string)
}

impl Fold {
    fn entry(
        &mut self,
        seq: u64,
        kind: &str,
        step_id: Option<&str>,
        parent: Option<u64>,
        log_ns: u64,
        payload: Value,
    ) {
        match kind {
            "job.received" => {
                self.received.get_or_insert((seq, payload));
            }
            "job.completed" | "job.failed" | "job.cancelled" | "job.timed_out" => {
                self.ended = Some((seq, kind.to_string(), payload));
            }
            "cost.logged" => {
                let usd = payload.get("usd").and_then(Value::as_f64).unwrap_or(0.0);
                self.costs
                    .push((str_of(&payload, "tool"), step_id.map(str::to_string), usd));
            }
            "tool.call_started" => {
                let i = self.calls.len();
                let tool = str_of(&payload, "tool").unwrap_or_default();
                let call_id = str_of(&payload, "call_id");
                self.open_by_seq.insert(seq, i);
                match &call_id {
                    Some(c) => {
                        self.open_by_call.insert(c.clone(), i);
                    }
                    None => self.open_by_tool.entry(tool.clone()).or_default().push(i),
                }
                self.calls.push(Step {
                    step_id: step_id.map(str::to_string),
                    call: 0,
                    tool,
                    call_id,
                    outcome: "open",
                    error: None,
                    duration_ms: None,
                    duration_from: None,
                    started_seq: Some(seq),
                    ended_seq: None,
                    start_log_ns: Some(log_ns),
                });
            }
            "tool.call_completed" | "tool.call_failed" => {
                let tool = str_of(&payload, "tool").unwrap_or_default();
                let call_id = str_of(&payload, "call_id");
                let i = self.take_open(parent, call_id.as_deref(), &tool);
                let i = i.unwrap_or_else(|| {
                    // An end with no start: a step of its own.
                    self.calls.push(Step {
                        step_id: step_id.map(str::to_string),
                        call: 0,
                        tool: tool.clone(),
                        call_id: call_id.clone(),
                        outcome: "open",
                        error: None,
                        duration_ms: None,
                        duration_from: None,
                        started_seq: None,
                        ended_seq: None,
                        start_log_ns: None,
                    });
                    self.calls.len() - 1
                });
                let Some(s) = self.calls.get_mut(i) else {
                    return;
                };
                s.outcome = if kind == "tool.call_completed" {
                    "completed"
                } else {
                    "failed"
                };
                s.error = str_of(&payload, "error");
                s.ended_seq = Some(seq);
                if s.step_id.is_none() {
                    s.step_id = step_id.map(str::to_string);
                }
                match payload.get("duration_ms").and_then(Value::as_u64) {
                    Some(ms) => {
                        s.duration_ms = Some(ms);
                        s.duration_from = Some("duration_ms");
                    }
                    None => {
                        if let Some(start) = s.start_log_ns {
                            s.duration_ms = Some(log_ns.saturating_sub(start) / 1_000_000);
                            s.duration_from = Some("log_time");
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The open call an end closes: the one its parent names, else the one
    /// with its call_id, else the oldest open call of its tool.
    fn take_open(
        &mut self,
        parent: Option<u64>,
        call_id: Option<&str>,
        tool: &str,
    ) -> Option<usize> {
        let by_parent = parent.and_then(|p| self.open_by_seq.get(&p).copied());
        let i = by_parent
            .or_else(|| call_id.and_then(|c| self.open_by_call.get(c).copied()))
            .or_else(|| self.open_by_tool.get(tool).and_then(|v| v.first().copied()))?;
        let s = self.calls.get(i)?;
        if let Some(seq) = s.started_seq {
            self.open_by_seq.remove(&seq);
        }
        if let Some(c) = &s.call_id {
            if self.open_by_call.get(c) == Some(&i) {
                self.open_by_call.remove(c);
            }
        }
        if let Some(v) = self.open_by_tool.get_mut(&s.tool) {
            v.retain(|x| *x != i);
        }
        Some(i)
    }

    fn finish(&mut self) -> (Vec<Step>, BTreeMap<String, f64>, f64, u64) {
        let mut steps = std::mem::take(&mut self.calls);
        steps.sort_by_key(Step::first_seq);
        let mut nth: HashMap<(bool, String), usize> = HashMap::new();
        for s in &mut steps {
            let key = match &s.step_id {
                Some(id) => (true, id.clone()),
                None => (false, s.tool.clone()),
            };
            let n = nth.entry(key).or_default();
            *n += 1;
            s.call = *n;
        }
        let tool_of_step: HashMap<&str, &str> = steps
            .iter()
            .rev()
            .filter_map(|s| Some((s.step_id.as_deref()?, s.tool.as_str())))
            .collect();
        let mut by_tool = BTreeMap::new();
        let mut total = 0.0;
        for (tool, step, usd) in &self.costs {
            let tool = tool
                .as_deref()
                .or_else(|| step.as_deref().and_then(|s| tool_of_step.get(s).copied()))
                .filter(|t| !t.is_empty())
                .unwrap_or("(no tool)");
            *by_tool.entry(tool.to_string()).or_insert(0.0) += usd;
            total += usd;
        }
        let n = self.costs.len() as u64;
        (steps, by_tool, total, n)
    }
}

/// Rounds away binary-float noise from sums and differences of dollars.
fn usd(x: f64) -> f64 {
    (x * 1e10).round() / 1e10
}

fn delta(a: u64, b: u64) -> i64 {
    let d = i128::from(b) - i128::from(a);
    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
}

// ---- the report -------------------------------------------------------------

#[derive(Serialize)]
struct Report {
    a: Header,
    b: Header,
    inputs: Compared,
    steps: Vec<Row>,
    outputs: Compared,
    timing: Timing,
    costs: Costs,
}

#[derive(Serialize)]
struct Header {
    job_id: String,
    job_type: Option<String>,
    status: String,
    entries: u64,
}

/// A field-by-field comparison of two payloads.
#[derive(Serialize)]
struct Compared {
    /// Seq of the entry compared on each side (null: the run has none).
    a_seq: Option<u64>,
    b_seq: Option<u64>,
    fields: Vec<Field>,
    /// Every field is the same.
    same: bool,
}

#[derive(Serialize)]
struct Field {
    /// Dotted path into the payload (`input.query`).
    field: String,
    /// Absent on a side that lacks the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    a: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b: Option<Value>,
    same: bool,
}

#[derive(Serialize)]
struct Row {
    step: String,
    /// "step_id" or "tool"; null for a step only one run has.
    matched_by: Option<&'static str>,
    /// "a" or "b" for a step only one run has.
    only_in: Option<&'static str>,
    a: Option<Step>,
    b: Option<Step>,
    /// Tool, outcome or error differ (always true for an unpaired step).
    changed: bool,
    /// B's duration minus A's, in ms.
    duration_delta_ms: Option<i64>,
}

#[derive(Serialize)]
struct Timing {
    a: Span,
    b: Span,
    /// B's wall time minus A's, in ms.
    delta_ms: i64,
    steps: Vec<StepTime>,
}

#[derive(Serialize)]
struct Span {
    first_seq: u64,
    last_seq: u64,
    /// The entries' own timestamps, for display.
    first_ts: String,
    last_ts: String,
    /// Log time from the first entry to the last.
    wall_ms: u64,
}

#[derive(Serialize)]
struct StepTime {
    step: String,
    a_ms: Option<u64>,
    b_ms: Option<u64>,
    delta_ms: Option<i64>,
}

#[derive(Serialize)]
struct Costs {
    a_usd: f64,
    b_usd: f64,
    delta_usd: f64,
    a_entries: u64,
    b_entries: u64,
    by_tool: Vec<ToolCost>,
}

#[derive(Serialize)]
struct ToolCost {
    tool: String,
    a_usd: f64,
    b_usd: f64,
    delta_usd: f64,
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        _ if prefix.is_empty() && matches!(v, Value::Object(_)) => {}
        _ => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}

fn compare(a: Option<(u64, Map<String, Value>)>, b: Option<(u64, Map<String, Value>)>) -> Compared {
    let mut fa = BTreeMap::new();
    let mut fb = BTreeMap::new();
    if let Some((_, m)) = &a {
        flatten("", &Value::Object(m.clone()), &mut fa);
    }
    if let Some((_, m)) = &b {
        flatten("", &Value::Object(m.clone()), &mut fb);
    }
    let keys: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    let fields: Vec<Field> = keys
        .into_iter()
        .map(|k| {
            let (x, y) = (fa.get(k).cloned(), fb.get(k).cloned());
            Field {
                field: k.clone(),
                same: x == y,
                a: x,
                b: y,
            }
        })
        .collect();
    Compared {
        a_seq: a.as_ref().map(|x| x.0),
        b_seq: b.as_ref().map(|x| x.0),
        same: fields.iter().all(|f| f.same) && a.is_some() == b.is_some(),
        fields,
    }
}

fn as_object(v: &Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => {
            let mut m = Map::new();
            m.insert("payload".into(), other.clone());
            m
        }
    }
}

/// Pairs the steps of the two runs; rows in A's order, each step only in B
/// placed after the row of the B step before it.
fn align(a: &[Step], b: &[Step]) -> Vec<Row> {
    let mut pair_of_a: Vec<Option<(usize, &'static str)>> = vec![None; a.len()];
    let mut paired_b = vec![false; b.len()];
    let b_by_key: HashMap<(&str, usize), usize> = b
        .iter()
        .enumerate()
        .filter_map(|(j, s)| Some(((s.step_id.as_deref()?, s.call), j)))
        .collect();
    for (i, s) in a.iter().enumerate() {
        let Some(id) = s.step_id.as_deref() else {
            continue;
        };
        if let Some(&j) = b_by_key.get(&(id, s.call)) {
            pair_of_a[i] = Some((j, "step_id"));
            paired_b[j] = true;
        }
    }
    // Then by tool name, in order, among what is left.
    let mut left_b: HashMap<&str, std::collections::VecDeque<usize>> = HashMap::new();
    for (j, s) in b.iter().enumerate() {
        if !paired_b[j] {
            left_b.entry(s.tool.as_str()).or_default().push_back(j);
        }
    }
    for (i, s) in a.iter().enumerate() {
        if pair_of_a[i].is_some() {
            continue;
        }
        if let Some(j) = left_b.get_mut(s.tool.as_str()).and_then(|q| q.pop_front()) {
            pair_of_a[i] = Some((j, "tool"));
            paired_b[j] = true;
        }
    }
    let mut a_of_b: Vec<Option<usize>> = vec![None; b.len()];
    for (i, p) in pair_of_a.iter().enumerate() {
        if let Some((j, _)) = p {
            if let Some(slot) = a_of_b.get_mut(*j) {
                *slot = Some(i);
            }
        }
    }
    // (anchor, order): A's rows at (i, 0); a B-only step after the A row
    // paired with the nearest B step before it, in B's order.
    let mut rows: Vec<((i64, usize), Row)> = Vec::new();
    for (i, s) in a.iter().enumerate() {
        let anchor = (i as i64, 0);
        let row = match pair_of_a[i].and_then(|(j, by)| Some((b.get(j)?, by))) {
            Some((t, by)) => {
                let changed = s.tool != t.tool || s.outcome != t.outcome || s.error != t.error;
                let step = if s.label() == t.label() {
                    s.label()
                } else {
                    format!("{} / {}", s.label(), t.label())
                };
                Row {
                    step,
                    matched_by: Some(by),
                    only_in: None,
                    duration_delta_ms: s.duration_ms.zip(t.duration_ms).map(|(x, y)| delta(x, y)),
                    a: Some(s.clone()),
                    b: Some(t.clone()),
                    changed,
                }
            }
            None => Row {
                step: s.label(),
                matched_by: None,
                only_in: Some("a"),
                a: Some(s.clone()),
                b: None,
                changed: true,
                duration_delta_ms: None,
            },
        };
        rows.push((anchor, row));
    }
    for (j, t) in b.iter().enumerate() {
        if paired_b[j] {
            continue;
        }
        let before = (0..j).rev().find_map(|k| a_of_b.get(k).copied().flatten());
        let anchor = (before.map_or(-1, |i| i as i64), j + 1);
        rows.push((
            anchor,
            Row {
                step: t.label(),
                matched_by: None,
                only_in: Some("b"),
                a: None,
                b: Some(t.clone()),
                changed: true,
                duration_delta_ms: None,
            },
        ));
    }
    rows.sort_by_key(|(k, _)| *k);
    rows.into_iter().map(|(_, r)| r).collect()
}

fn span(r: &RunData) -> Span {
    Span {
        first_seq: r.first.0,
        last_seq: r.last.0,
        first_ts: rfc3339_ns(r.first.1),
        last_ts: rfc3339_ns(r.last.1),
        wall_ms: r.wall_ns / 1_000_000,
    }
}

impl Report {
    fn new(a: &RunData, b: &RunData) -> Self {
        let header = |r: &RunData| Header {
            job_id: r.job.job_id.clone(),
            job_type: r.job.job_type.clone(),
            status: r.job.status.as_str().to_string(),
            entries: r.job.entries,
        };
        let inputs = compare(
            a.received.as_ref().map(|(s, p)| (*s, as_object(p))),
            b.received.as_ref().map(|(s, p)| (*s, as_object(p))),
        );
        let ended = |r: &RunData| {
            r.ended.as_ref().map(|(s, kind, p)| {
                let mut m = Map::new();
                m.insert("kind".into(), Value::from(kind.clone()));
                m.insert("payload".into(), Value::Object(as_object(p)));
                (*s, m)
            })
        };
        let outputs = compare(ended(a), ended(b));
        let steps = align(&a.steps, &b.steps);
        let step_times = steps
            .iter()
            .filter(|r| r.only_in.is_none())
            .map(|r| {
                let (x, y) = (
                    r.a.as_ref().and_then(|s| s.duration_ms),
                    r.b.as_ref().and_then(|s| s.duration_ms),
                );
                StepTime {
                    step: r.step.clone(),
                    a_ms: x,
                    b_ms: y,
                    delta_ms: r.duration_delta_ms,
                }
            })
            .collect();
        let (sa, sb) = (span(a), span(b));
        let tools: BTreeSet<&String> = a.cost_by_tool.keys().chain(b.cost_by_tool.keys()).collect();
        let by_tool = tools
            .into_iter()
            .map(|t| {
                let x = a.cost_by_tool.get(t).copied().unwrap_or(0.0);
                let y = b.cost_by_tool.get(t).copied().unwrap_or(0.0);
                ToolCost {
                    tool: t.clone(),
                    a_usd: usd(x),
                    b_usd: usd(y),
                    delta_usd: usd(y - x),
                }
            })
            .collect();
        Report {
            a: header(a),
            b: header(b),
            inputs,
            steps,
            outputs,
            timing: Timing {
                delta_ms: delta(sa.wall_ms, sb.wall_ms),
                a: sa,
                b: sb,
                steps: step_times,
            },
            costs: Costs {
                a_usd: usd(a.cost_usd),
                b_usd: usd(b.cost_usd),
                delta_usd: usd(b.cost_usd - a.cost_usd),
                a_entries: a.cost_entries,
                b_entries: b.cost_entries,
                by_tool,
            },
        }
    }

    fn text(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (side, h) in [("A", &self.a), ("B", &self.b)] {
            out.push(format!(
                "{side}  {}  ({}, {}, {} entries)",
                esc(&h.job_id),
                esc(h.job_type.as_deref().unwrap_or("no type")),
                esc(&h.status),
                h.entries
            ));
        }
        for (title, c) in [
            ("INPUTS (job.received)", &self.inputs),
            ("OUTPUTS (job.completed / job.failed / ...)", &self.outputs),
        ] {
            out.push(String::new());
            out.push(format!(
                "{title}{}",
                match (c.a_seq, c.b_seq) {
                    (Some(x), Some(y)) => format!("  seq {x} / seq {y}"),
                    (Some(x), None) => format!("  seq {x} / B has none"),
                    (None, Some(y)) => format!("  A has none / seq {y}"),
                    (None, None) => "  neither run has one".to_string(),
                }
            ));
            let mut rows = vec![cells(&["", "field", "A", "B"])];
            for f in &c.fields {
                rows.push(vec![
                    if f.same { "" } else { "≠" }.to_string(),
                    esc(&f.field).to_string(),
                    value_cell(f.a.as_ref()),
                    value_cell(f.b.as_ref()),
                ]);
            }
            if !c.fields.is_empty() {
                out.extend(table(&rows));
            }
        }
        out.push(String::new());
        let paired = self.steps.iter().filter(|r| r.only_in.is_none()).count();
        let only = |s: &str| self.steps.iter().filter(|r| r.only_in == Some(s)).count();
        out.push(format!(
            "STEPS (tool calls): {paired} paired, {} only in A, {} only in B",
            only("a"),
            only("b")
        ));
        let mut rows = vec![cells(&[
            "",
            "step",
            "by",
            "A tool",
            "A outcome",
            "A ms",
            "B tool",
            "B outcome",
            "B ms",
            "Δ ms",
        ])];
        for r in &self.steps {
            let side = |s: &Option<Step>| match s {
                None => ["-".to_string(), "-".to_string(), "-".to_string()],
                Some(s) => [
                    esc(&s.tool).to_string(),
                    match &s.error {
                        Some(e) => format!("{}: {}", s.outcome, esc(e)),
                        None => s.outcome.to_string(),
                    },
                    s.duration_ms.map_or("-".to_string(), |d| d.to_string()),
                ],
            };
            let [at, ao, ams] = side(&r.a);
            let [bt, bo, bms] = side(&r.b);
            rows.push(vec![
                if r.changed { "≠" } else { "" }.to_string(),
                esc(&r.step).to_string(),
                match (r.matched_by, r.only_in) {
                    (Some(by), _) => by.to_string(),
                    (None, Some(s)) => format!("only {}", s.to_uppercase()),
                    _ => "-".to_string(),
                },
                at,
                ao,
                ams,
                bt,
                bo,
                bms,
                r.duration_delta_ms.map_or("-".to_string(), signed),
            ]);
        }
        if !self.steps.is_empty() {
            out.extend(table(&rows));
        }
        out.push(String::new());
        out.push("TIMING (wall time: log time from the first entry to the last)".into());
        let t = &self.timing;
        let rows = vec![
            cells(&["", "A", "B", "Δ"]),
            vec![
                "first entry".into(),
                format!("seq {} {}", t.a.first_seq, t.a.first_ts),
                format!("seq {} {}", t.b.first_seq, t.b.first_ts),
                String::new(),
            ],
            vec![
                "last entry".into(),
                format!("seq {} {}", t.a.last_seq, t.a.last_ts),
                format!("seq {} {}", t.b.last_seq, t.b.last_ts),
                String::new(),
            ],
            vec![
                "wall time".into(),
                format!("{} ms", t.a.wall_ms),
                format!("{} ms", t.b.wall_ms),
                format!("{} ms", signed(t.delta_ms)),
            ],
        ];
        out.extend(table(&rows));
        out.push(String::new());
        let c = &self.costs;
        out.push(format!(
            "COSTS (cost.logged usd): {} / {} entries",
            c.a_entries, c.b_entries
        ));
        let mut rows = vec![cells(&["tool", "A", "B", "Δ"])];
        for t in &c.by_tool {
            rows.push(vec![
                esc(&t.tool).to_string(),
                format!("{:.4}", t.a_usd),
                format!("{:.4}", t.b_usd),
                format!("{:+.4}", t.delta_usd),
            ]);
        }
        rows.push(vec![
            "total".into(),
            format!("{:.4}", c.a_usd),
            format!("{:.4}", c.b_usd),
            format!("{:+.4}", c.delta_usd),
        ]);
        out.extend(table(&rows));
        out
    }
}

fn signed(d: i64) -> String {
    format!("{d:+}")
}

fn cells(s: &[&str]) -> Vec<String> {
    s.iter().map(|c| c.to_string()).collect()
}

/// A value for a text cell: compact JSON, stored text escaped.
fn value_cell(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".to_string(),
        Some(v) => super::safe::text(&v.to_string()).into_owned(),
    }
}

/// Widest a text cell gets before it is cut (JSON keeps everything).
const CELL_MAX: usize = 48;

/// Left-aligned columns, two spaces apart; numbers stay left-aligned too,
/// so a column reads the same in every section.
fn table(rows: &[Vec<String>]) -> Vec<String> {
    let cut = |s: &str| -> String {
        if s.chars().count() <= CELL_MAX {
            s.to_string()
        } else {
            let mut t: String = s.chars().take(CELL_MAX - 1).collect();
            t.push('…');
            t
        }
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            let mut line = String::from(" ");
            for (i, c) in r.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                line.push(' ');
                line.push_str(c);
                if i + 1 < r.len() {
                    line.push_str(&" ".repeat(w.saturating_sub(c.chars().count()) + 1));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}
