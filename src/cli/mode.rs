//! `argusctl mode show|set`: the Janus operating mode (seed 002).
//!
//! A promotion is written only when the log already shows its
//! preconditions, judged in log time (the newest entry's timestamp), so
//! anyone replaying the log can check the decision was allowed.
use super::safe::esc;
use super::state::{lock_for_decision, Decision};
use super::{rfc3339_ns, Format, Out};
use crate::projections::approvals::{self, days_text, preconditions, ModeState, MODE_KEY, NAME};
use anyhow::{bail, Result};
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Alpha,
    Beta,
    Omega,
}

impl From<Mode> for approvals::Mode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Alpha => Self::Alpha,
            Mode::Beta => Self::Beta,
            Mode::Omega => Self::Omega,
        }
    }
}

#[derive(Subcommand)]
pub enum ModeCmd {
    /// Current mode, days in it, approval rate, constitutional violations, and what the next mode still needs.
    #[command(
        after_help = "Days are log time: from the entry that began the mode to the newest entry.\n\nExamples:\n  argusctl mode show ./audit\n  argusctl mode show ./audit -o json | jq .approval_rate"
    )]
    Show {
        dir: PathBuf,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Change mode; a promotion is refused, with every unmet precondition, unless the log shows them.
    #[command(
        after_help = "beta:  30+ days in alpha, approval rate >= 95%, zero constitutional violations.\nomega: 180+ days in beta, the same rate and violation rules, and --recommendation (the\n       unanimous Trinity recommendation, recorded in the entry's reason).\nalpha: always allowed; re-entering alpha restarts the 30-day evidence window.\n\nExamples:\n  argusctl mode set ./audit beta --reason 'First Citizen authorization 2026-12-01'\n  argusctl mode set ./audit omega --recommendation 'Trinity vote 3/3, minutes #42'\n  argusctl mode set ./audit alpha --reason 'incident 17'"
    )]
    Set {
        dir: PathBuf,
        #[arg(value_enum)]
        to: Mode,
        #[arg(long)]
        reason: Option<String>,
        /// Required for omega: the unanimous Trinity recommendation.
        #[arg(long)]
        recommendation: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

pub fn run(cmd: ModeCmd) -> Result<i32> {
    match cmd {
        ModeCmd::Show { dir, format } => show(&dir, format),
        ModeCmd::Set {
            dir,
            to,
            reason,
            recommendation,
            format,
        } => set(&dir, to, reason, recommendation, format),
    }
    .map(|_| 0)
}

/// The mode state and log time "now".
fn load(dir: &Path) -> Result<(ModeState, u64)> {
    let st = super::state::open(dir)?;
    let mode: ModeState = st
        .projections
        .with_view(NAME, |v| v.get_json(MODE_KEY))?
        .unwrap_or_default();
    let now_ns = super::state::now_ns(&st)?;
    Ok((mode, now_ns))
}

fn show(dir: &Path, format: Format) -> Result<()> {
    let (m, now_ns) = load(dir)?;
    let in_mode = m.in_mode_ns(now_ns);
    let next = m.mode.next();
    let unmet = next
        .map(|n| preconditions(&m, n, now_ns))
        .unwrap_or_default();
    let mut out = Out::default();
    match format {
        Format::Json => {
            let v = json!({
                "mode": m.mode,
                "since": rfc3339_ns(m.since_ns),
                "since_ns": m.since_ns,
                "days_in_mode": in_mode as f64 / crate::projections::approvals::NS_PER_DAY as f64,
                "approved": m.approved,
                "rejected": m.rejected,
                "expired": m.expired,
                "auto_approved": m.auto_approved,
                "approval_rate": m.approval_rate(),
                "constitutional_violations": m.violations,
                "constitutional_violations_total": m.violations_total,
                "next_mode": next,
                "next_mode_unmet": unmet,
                "history": m.history,
                "ignored": m.ignored,
            });
            out.json(&v.to_string());
        }
        Format::Text => {
            out.line(&format!(
                "mode:                     {}",
                esc(m.mode.as_str())
            ));
            out.line(&format!(
                "days in mode:             {} (since {})",
                days_text(in_mode),
                rfc3339_ns(m.since_ns)
            ));
            out.line(&format!(
                "approval rate:            {} (approved {}, rejected {}, expired {}; playbook approvals {} not counted)",
                m.approval_rate()
                    .map(|r| format!("{:.1}%", r * 100.0))
                    .unwrap_or_else(|| "n/a".into()),
                m.approved,
                m.rejected,
                m.expired,
                m.auto_approved
            ));
            out.line(&format!(
                "constitutional violations: {} in this mode ({} in all)",
                m.violations, m.violations_total
            ));
            if let Some(n) = next {
                if unmet.is_empty() {
                    out.line(&format!("to {n}: the log shows every precondition"));
                } else {
                    out.line(&format!("to {n}: not yet"));
                    for u in &unmet {
                        out.line(&format!("  - {}", esc(u)));
                    }
                }
            }
            for h in &m.history {
                out.line(&format!(
                    "seq {:>8} {} {} -> {} by {}: {}{}",
                    h.seq,
                    rfc3339_ns(h.ts_ns),
                    esc(h.from.as_str()),
                    esc(h.to.as_str()),
                    esc(&h.actor),
                    esc(&h.reason),
                    if h.unmet.is_empty() {
                        String::new()
                    } else {
                        format!("  [preconditions not shown: {}]", esc(&h.unmet.join("; ")))
                    }
                ));
            }
            for i in &m.ignored {
                out.line(&format!(
                    "seq {:>8} IGNORED mode change to {} by {}: {}",
                    i.seq,
                    esc(&i.to),
                    esc(&i.actor),
                    esc(&i.reason)
                ));
            }
        }
    }
    out.flush();
    Ok(())
}

fn set(
    dir: &Path,
    to: Mode,
    reason: Option<String>,
    recommendation: Option<String>,
    format: Format,
) -> Result<()> {
    let lock = lock_for_decision(dir, "mode set")?;
    let (m, now_ns) = load(dir)?;
    let to = approvals::Mode::from(to);
    let mut unmet = preconditions(&m, to, now_ns);
    let recommendation = recommendation.filter(|r| !r.trim().is_empty());
    if to == approvals::Mode::Omega && m.mode != approvals::Mode::Omega && recommendation.is_none()
    {
        unmet.push(
            "omega requires a unanimous Trinity recommendation: pass --recommendation TEXT".into(),
        );
    }
    if !unmet.is_empty() {
        bail!(
            "refusing mode change {} -> {to}; the log does not show:\n  - {}",
            m.mode,
            unmet.join("\n  - ")
        );
    }
    let mut parts: Vec<String> = reason
        .filter(|r| !r.trim().is_empty())
        .into_iter()
        .collect();
    if to != approvals::Mode::Alpha && to > m.mode {
        parts.push(format!(
            "{} days in {}, approval rate {:.1}% ({}/{}), {} constitutional violations",
            days_text(m.in_mode_ns(now_ns)),
            m.mode,
            m.approval_rate().unwrap_or(0.0) * 100.0,
            m.approved,
            m.decided(),
            m.violations
        ));
    }
    if let Some(r) = recommendation {
        parts.push(format!("unanimous Trinity recommendation: {r}"));
    }
    if parts.is_empty() {
        parts.push(format!("operator set mode {to}"));
    }
    let payload = json!({"from": m.mode, "to": to, "reason": parts.join("; ")});
    let seq = lock.append(Decision {
        class: crate::authority::Class::Operator,
        kind: "mode.changed",
        job_id: None,
        agent: None,
        parent: m.history.last().map(|h| h.seq),
        payload: payload.clone(),
    })?;
    let mut out = Out::default();
    match format {
        Format::Json => {
            out.json(&json!({"seq": seq, "kind": "mode.changed", "payload": payload}).to_string())
        }
        Format::Text => out.line(&format!(
            "mode {} -> {to} (seq {seq})",
            esc(m.mode.as_str())
        )),
    }
    out.flush();
    Ok(())
}
