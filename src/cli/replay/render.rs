//! The timeline as a person reads it (columns, durations, a summary) and
//! as tools read it (JSON Lines, one event per line, then the summary).
use super::timeline::{event_json, Derived, Event};
use crate::cli::safe::esc;
use crate::cli::{rfc3339_ns, Out};
use crate::projections::jobs::Job;
use serde_json::json;

/// `+1.234s`, `+2m03.4s`, `+1h02m03s`: time since the job's first entry.
fn rel(ns: u64) -> String {
    let ms = ns / 1_000_000;
    let s = ms / 1000;
    if s < 60 {
        format!("+{}.{:03}s", s, ms % 1000)
    } else if s < 3600 {
        format!("+{}m{:02}.{}s", s / 60, s % 60, (ms % 1000) / 100)
    } else {
        format!("+{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60)
    }
}

fn dur(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        crate::time::human_ns(ms.saturating_mul(1_000_000))
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut c: String = s.chars().take(n.saturating_sub(1)).collect();
    c.push('…');
    c
}

pub fn text(out: &mut Out, job: &Job, events: &[Event], d: &Derived, detailed: bool) {
    let t0 = events.first().map_or(0, |e| e.ts_ns);
    out.line(&format!(
        "job {} ({}) · {} · agent {} · {} entries, seqs {}..{}",
        esc(&job.job_id),
        esc(job.job_type.as_deref().unwrap_or("-")),
        esc(job.status.as_str()),
        esc(job.agent.as_deref().unwrap_or("-")),
        events.len(),
        events.first().map_or(0, |e| e.seq),
        events.last().map_or(0, |e| e.seq),
    ));
    out.line(&format!("started {}", rfc3339_ns(t0)));
    out.line("");
    out.line(&format!(
        "{:>10} {:>7}  {:<22} {:<6} {:<12} {:>9} {:>9}  {}",
        "time", "seq", "kind", "step", "who", "took", "cost", "detail"
    ));
    for e in events {
        let who = if e.by_argus {
            format!("*{}", e.actor.split(':').next().unwrap_or(""))
        } else {
            e.agent.clone().unwrap_or_else(|| "-".into())
        };
        let took = e.duration_ms.map(dur).unwrap_or_default();
        out.line(&format!(
            "{:>10} {:>7}  {:<22} {:<6} {:<12} {:>9} {:>9}  {}",
            rel(e.ts_ns.saturating_sub(t0)),
            e.seq,
            esc(&clip(&e.kind, 22)),
            esc(&clip(e.step_id.as_deref().unwrap_or("-"), 6)),
            esc(&clip(&who, 12)),
            took,
            format!("${:.4}", e.cost_total_usd),
            esc(&clip(&e.summary, 100)),
        ));
        if let Some(p) = e.parent {
            if detailed {
                out.line(&format!("{:>20}  parent {p}", ""));
            }
        }
        if detailed {
            let shown = match &e.redacted {
                Some(r) => crate::cli::erased_text(r),
                None => e.payload.to_string(),
            };
            out.line(&format!("{:>20}  {}", "", esc(&shown)));
        }
    }
    out.line("");
    out.line(&format!(
        "summary: {} · {} tool calls, {} failed{} · {} steps · cost ${:.4} · {}{}{}",
        esc(&d.status),
        d.tool_calls,
        d.tool_failures,
        if d.unpaired_starts > 0 {
            format!(", {} never finished", d.unpaired_starts)
        } else {
            String::new()
        },
        d.steps,
        d.cost_usd,
        format_args!("took {}", dur(d.duration_ms)),
        d.time_to_first_update_ms
            .map(|m| format!(" · first update after {}", dur(m)))
            .unwrap_or_default(),
        if d.anomalies + d.kill_switch_decisions + d.denials > 0 {
            format!(
                " · {} anomalies, {} kill-switch decisions, {} policy denials (* = recorded by Argus)",
                d.anomalies, d.kill_switch_decisions, d.denials
            )
        } else {
            String::new()
        }
    ));
    out.line(&agreement(job, d));
}

/// Whether the job index agrees with what the entries say.
fn agreement(job: &Job, d: &Derived) -> String {
    let mut diffs = Vec::new();
    if (job.cost_usd - d.cost_usd).abs() > 1e-9 {
        diffs.push(format!("cost ${:.6} in the index", job.cost_usd));
    }
    if job.status.as_str() != d.status && !job.status.as_str().starts_with("dlq") {
        diffs.push(format!("status {} in the index", job.status.as_str()));
    }
    if diffs.is_empty() {
        "index:   the job index agrees (status, cost)".into()
    } else {
        format!("index:   differs: {}", diffs.join(", "))
    }
}

pub fn json(out: &mut Out, job: &Job, events: &[Event], d: &Derived, detailed: bool) {
    let t0 = events.first().map_or(0, |e| e.ts_ns);
    for e in events {
        out.json(&event_json(e, t0, detailed).to_string());
    }
    out.json(
        &json!({"summary": {
            "job_id": job.job_id,
            "job_type": job.job_type,
            "derived": d,
            "index": {"status": job.status, "cost_usd": job.cost_usd, "entries": job.entries},
        }})
        .to_string(),
    );
}
