//! `argusctl policy check|list` and `argusctl budget`: the policy service
//! (PRD-018 §4.2) over the policy and incident projections.
//!
//! `check` decides at "now" as the writer would stamp it (the later of the
//! wall clock and the newest entry, `state::now_ns`), so a quiet log's
//! rate-limit window still slides and a new UTC day renews budgets. A denial is an Argus decision and
//! is recorded as one `policy.denied` entry (invariant 4); an allowed check
//! writes nothing.
use super::safe::{self, esc};
use super::state::{self, Decision};
use super::{Format, Out};
use crate::projections::incident;
use crate::projections::policy::check::{self, fmt_usd, Request};
use crate::projections::policy::{self, Policy, DAY_NS};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Exit code of `policy check` when the call is denied.
pub const EXIT_DENIED: i32 = 3;

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCmd {
    /// Decide whether AGENT may call TOOL now; records every denial as a policy.denied entry.
    #[command(
        after_help = "Prints one JSON object: {\"allowed\": bool, \"reason\": str|null, \"retry_after\": seconds|null}, plus\n\"policy_id\" and \"recorded_seq\" (the policy.denied entry) when denied, and \"incident\": true,\n\"max_retries\": 1 while the system is in incident mode (daily budgets are then halved).\nretry_after null on a denial means retrying will not help.\n\nExit codes: 0 allowed, 3 denied, 1 could not decide.\n\nExamples:\n  argusctl policy check ./audit --agent researcher --tool browser.fetch --cost 0.02 --domain docs.rs --job job-7f3a\n  if argusctl policy check ./audit --agent coder --tool bash > /dev/null; then run_tool; fi"
    )]
    Check {
        dir: PathBuf,
        #[arg(long)]
        agent: String,
        #[arg(long)]
        tool: String,
        /// Expected cost of the call in USD, counted against budgets (0..=1e9).
        #[arg(long, value_name = "USD", default_value_t = 0.0, value_parser = super::args::usd)]
        cost: f64,
        /// Domain the call will contact, checked against allowlists.
        #[arg(long)]
        domain: Option<String>,
        /// Run (job id) the call belongs to, for per-run budgets.
        #[arg(long)]
        job: Option<String>,
        /// Action type, checked against safety policies' require_approval_for.
        #[arg(long)]
        action: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// Every policy with scope, type, config and whether it is enabled.
    #[command(
        after_help = "Policies are set with policy.set entries and deleted with policy.removed.\n\nExamples:\n  echo '{\"kind\":\"policy.set\",\"payload\":{\"policy_id\":\"budget-researcher\",\"scope\":\"agent:researcher\",\"policy_type\":\"budget\",\"config\":{\"daily_usd\":5.0,\"per_run_usd\":0.5}}}' | argusctl append ./audit\n  argusctl policy list ./audit -o json | jq 'select(.policy_type==\"budget\")'"
    )]
    List {
        dir: PathBuf,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

pub fn run(cmd: PolicyCmd) -> Result<i32> {
    match cmd {
        PolicyCmd::Check {
            dir,
            agent,
            tool,
            cost,
            domain,
            job,
            action,
            format,
        } => check_cmd(
            &dir,
            &Request {
                agent: &agent,
                tool: &tool,
                cost_usd: cost,
                domain: domain.as_deref(),
                job: job.as_deref(),
                action: action.as_deref(),
            },
            format,
        ),
        PolicyCmd::List { dir, format } => list(&dir, format).map(|_| 0),
    }
}

fn check_cmd(dir: &Path, req: &Request<'_>, format: Format) -> Result<i32> {
    if req.agent.is_empty() || req.tool.is_empty() {
        bail!("--agent and --tool must not be empty");
    }
    if !req.cost_usd.is_finite() || req.cost_usd < 0.0 {
        bail!("--cost must be a non-negative number of USD");
    }
    let st = state::open(dir)?;
    let now_ns = state::now_ns(&st)?;
    let judged = judge(&st, req, now_ns)?;
    // Release the projection store before writing: the log has its own lock.
    drop(st);
    let Judged { denial, incident } = judged;
    let mut out = json!({"allowed": denial.is_none(), "reason": null, "retry_after": null});
    if let Some(d) = &denial {
        let seq = record_denial(dir, "policy check", req, d)?;
        out["reason"] = d.reason.as_str().into();
        out["retry_after"] = d.retry_after_s.into();
        out["policy_id"] = d.policy_id.as_str().into();
        out["recorded_seq"] = seq.into();
    }
    if incident {
        out["incident"] = true.into();
        out["max_retries"] = 1.into();
    }
    // Exit 3 is the answer: a closed stdout must not turn a denial into 0.
    let mut o = Out::keeping_exit_code();
    match format {
        Format::Json => o.json(&out.to_string()),
        Format::Text => match &denial {
            None => o.line("allowed"),
            Some(d) => o.line(&format!(
                "denied: {}{}",
                esc(&d.reason),
                d.retry_after_s
                    .map(|s| format!(" (retry after {s} s)"))
                    .unwrap_or_default()
            )),
        },
    }
    o.flush();
    Ok(if denial.is_some() { EXIT_DENIED } else { 0 })
}

/// What `policy check` decides, before anything is recorded.
pub struct Judged {
    pub denial: Option<check::Denial>,
    /// Incident mode (daily budgets halved, one retry).
    pub incident: bool,
}

/// The policy decision for `req` at `now_ns` over an open state: budgets,
/// rate limits, allowlists and safety rules. Writes nothing; `policy check`
/// and `exec` both decide through this.
pub fn judge(st: &state::State, req: &Request<'_>, now_ns: u64) -> Result<Judged> {
    let (policies, today, run, calls) = st.projections.with_view(policy::NAME, |v| {
        Ok((
            policy::policies(v)?,
            policy::day_spend(v, now_ns / DAY_NS, req.agent)?,
            req.job.map(|j| policy::run_spend(v, j)).transpose()?,
            policy::calls(v, req.agent, req.tool)?,
        ))
    })?;
    let mode = st
        .projections
        .with_view(incident::NAME, incident::current)?;
    let killed = st
        .projections
        .with_view(
            crate::projections::control::NAME,
            crate::projections::control::current,
        )?
        .refusal(Some(req.agent), req.job);
    // A standing kill or lockdown answers first: no policy can allow what
    // an operator or the auditor has stopped.
    let denial = killed
        .map(|r| check::Denial {
            policy_id: format!("{}:{}", r.what, r.seq),
            reason: r.to_string(),
            retry_after_s: None,
        })
        .or_else(|| {
            check::evaluate(
                req,
                &check::Input {
                    policies: &policies,
                    today: &today,
                    run: run.as_ref(),
                    calls_ts_ns: &calls,
                    now_ns,
                    incident: mode.is_incident(),
                },
            )
        });
    Ok(Judged {
        denial,
        incident: mode.is_incident(),
    })
}

/// Records a policy denial as `policy check` does (one `policy.denied`
/// entry in the argus class); returns its seq.
pub fn record_denial(
    dir: &Path,
    operation: &str,
    req: &Request<'_>,
    d: &check::Denial,
) -> Result<u64> {
    record_refusal(
        dir,
        operation,
        req,
        &d.reason,
        d.retry_after_s,
        Some(&d.policy_id),
    )
}

/// Records any refusal of a tool call (a policy's, or a kill switch's or a
/// breaker's, which name no policy) as one `policy.denied` entry.
pub fn record_refusal(
    dir: &Path,
    operation: &str,
    req: &Request<'_>,
    reason: &str,
    retry_after_s: Option<u64>,
    policy_id: Option<&str>,
) -> Result<u64> {
    let mut payload = json!({
        "agent": req.agent,
        "tool": req.tool,
        "reason": reason,
        "retry_after_s": retry_after_s,
        "cost_usd": req.cost_usd,
    });
    if let Some(id) = policy_id {
        payload["policy_id"] = id.into();
    }
    if let Some(dom) = req.domain {
        payload["domain"] = dom.into();
    }
    state::append_one(
        dir,
        operation,
        Decision {
            class: crate::authority::Class::Argus,
            kind: "policy.denied",
            job_id: req.job,
            agent: Some(req.agent),
            parent: None,
            payload,
        },
    )
}

fn list(dir: &Path, format: Format) -> Result<()> {
    let st = state::open(dir)?;
    let policies = st.projections.with_view(policy::NAME, policy::policies)?;
    let header = format!(
        "{:<24} {:<24} {:<16} {:<8} config",
        "policy", "scope", "type", "enabled"
    );
    super::print_rows(format, &policies, &header, super::as_json, |p| {
        format!(
            "{:<24} {:<24} {:<16} {:<8} {}",
            esc(&p.policy_id),
            esc(&p.scope),
            esc(&p.policy_type),
            p.enabled,
            safe::json(&p.config.to_string())
        )
    })
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian).
pub fn parse_day(s: &str) -> Result<u64> {
    let bad = || anyhow::anyhow!("--day {s:?}: expected YYYY-MM-DD");
    let mut it = s.splitn(3, '-');
    let mut num = |len: usize| -> Result<i64> {
        let part = it.next().filter(|p| p.len() == len).ok_or_else(bad)?;
        part.parse::<i64>().map_err(|_| bad())
    };
    let (y, m, d) = (num(4)?, num(2)?, num(2)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Days-from-civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let days = u64::try_from(days).map_err(|_| anyhow::anyhow!("--day {s:?} is before 1970"))?;
    if day_string(days) != s {
        return Err(bad());
    }
    Ok(days)
}

pub fn day_string(day: u64) -> String {
    super::rfc3339_ns(day.saturating_mul(DAY_NS))[..10].to_string()
}

/// The tightest enabled limit an agent has across global and `agent:` budgets
/// (tool-scoped budgets apply per tool and are left out here).
fn agent_limit(policies: &[Policy], agent: &str, field: &str) -> Option<(u64, String)> {
    policies
        .iter()
        .filter(|p| p.policy_type == "budget" && p.scoped_tool().is_none())
        .filter(|p| p.applies_to(agent, ""))
        .filter_map(|p| p.config_micros(field).map(|l| (l, p.policy_id.clone())))
        .min_by_key(|(l, _)| *l)
}

pub fn budget(dir: &Path, agent: Option<&str>, day: Option<&str>, format: Format) -> Result<()> {
    let day = day.map(parse_day).transpose()?;
    let st = state::open(dir)?;
    let now_ns = state::now_ns(&st)?;
    let day = day.unwrap_or(now_ns / DAY_NS);
    let (policies, days) = st.projections.with_view(policy::NAME, |v| {
        Ok((policy::policies(v)?, policy::days(v, day)?))
    })?;
    let mode = st
        .projections
        .with_view(incident::NAME, incident::current)?;
    let mut agents: BTreeSet<String> = days.iter().map(|d| d.agent.clone()).collect();
    for p in &policies {
        if let Some(a) = p.scope.strip_prefix("agent:") {
            if p.policy_type == "budget" {
                agents.insert(a.to_string());
            }
        }
    }
    if let Some(a) = agent {
        agents.retain(|x| x == a);
        agents.insert(a.to_string());
    }
    let mut rows = Vec::new();
    for a in &agents {
        let spend = days
            .iter()
            .find(|d| &d.agent == a)
            .map(|d| d.spend.clone())
            .unwrap_or_default();
        let limit = agent_limit(&policies, a, "daily_usd")
            .map(|(l, id)| (if mode.is_incident() { l / 2 } else { l }, id));
        let cpu_limit = agent_limit(&policies, a, "max_cpu_seconds");
        rows.push(json!({
            "agent": a,
            "day": day_string(day),
            "spent_usd": policy::from_micros(spend.usd_micros),
            "daily_limit_usd": limit.as_ref().map(|(l, _)| policy::from_micros(*l)),
            "remaining_usd": limit.as_ref().map(|(l, _)| policy::from_micros(l.saturating_sub(spend.usd_micros))),
            "policy_id": limit.as_ref().map(|(_, id)| id.clone()),
            "cpu_seconds": policy::from_micros(spend.cpu_micros),
            "max_cpu_seconds": cpu_limit.map(|(l, _)| policy::from_micros(l)),
            "cost_entries": spend.entries,
            "incident": mode.is_incident(),
        }));
    }
    let mut out = Out::default();
    match format {
        Format::Json => rows.iter().for_each(|r| out.json(&r.to_string())),
        Format::Text => {
            out.line(&format!(
                "{:<20} {:<10} {:>10} {:>10} {:>10} {:>10}",
                "agent", "day", "spent_usd", "limit_usd", "remaining", "cpu_s"
            ));
            let usd = |v: &Value| {
                v.as_f64()
                    .map(|x| fmt_usd(policy::to_micros(x)))
                    .unwrap_or_else(|| "-".into())
            };
            for r in &rows {
                out.line(&format!(
                    "{:<20} {:<10} {:>10} {:>10} {:>10} {:>10.1}",
                    esc(r["agent"].as_str().unwrap_or("-")),
                    r["day"].as_str().unwrap_or("-"),
                    usd(&r["spent_usd"]),
                    usd(&r["daily_limit_usd"]),
                    usd(&r["remaining_usd"]),
                    r["cpu_seconds"].as_f64().unwrap_or(0.0)
                ));
            }
            if mode.is_incident() {
                out.line("(incident mode: daily limits are halved)");
            }
        }
    }
    out.flush();
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    #[test]
    fn days_round_trip() {
        assert_eq!(super::parse_day("1970-01-01").unwrap(), 0);
        assert_eq!(
            super::parse_day("2026-11-23").unwrap(),
            1_795_435_200 / 86_400
        );
        assert_eq!(super::parse_day("2000-02-29").unwrap(), 11_016);
        assert!(super::parse_day("2026-02-30").is_err());
        assert!(super::parse_day("2026-1-01").is_err());
        assert!(super::parse_day("1969-12-31").is_err());
    }
}
